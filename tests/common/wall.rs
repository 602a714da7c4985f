//! The host firewall between two machines: a server namespace and a client namespace on a
//! veth pair (IPv4 and IPv6), with a small HTTP server on port 8001 and another on 8002 in
//! the server (each names its port in every answer, so a redirected connection is seen for
//! what it is), and the kernel as the oracle: what the client's own connection meets.

use super::{Lan, Netns, SERVER_IP, run_in};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub const SERVER_IP6: &str = "fd00:198::1";
pub const CLIENT_IP: &str = "198.18.0.2";
pub const CLIENT_IP6: &str = "fd00:198::2";

/// What the client's connection met.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// Answered by the server on this port (8001: gunicorn's place; 8002: elsewhere).
    Answered(u16),
    /// Refused at once: a reset or an ICMP error (the errno).
    Refused(String),
    /// Nothing came back before the timeout.
    Silence,
}

impl Seen {
    /// The verdict word `check` must give for this.
    pub fn verdict(&self) -> &'static str {
        match self {
            Seen::Answered(8002) => "redirected",
            Seen::Answered(_) => "open",
            Seen::Refused(_) => "rejected",
            Seen::Silence => "dropped",
        }
    }
}

pub struct Wall {
    pub lan: Lan,
    stop: Arc<AtomicBool>,
}

impl Wall {
    /// The network with the two port-naming servers on 8001 and 8002.
    pub fn new() -> Wall {
        let wall = Wall::bare();
        for port in [8001, 8002] {
            serve(&wall.lan.server.name, port, wall.stop.clone());
        }
        for ip in [SERVER_IP, SERVER_IP6] {
            assert_eq!(
                wall.client_sees(ip.parse().unwrap()),
                Seen::Answered(8001),
                "the test network does not work"
            );
        }
        wall
    }

    /// The network alone: port 8001 is the test's to serve (gunicorn through the launcher).
    pub fn bare() -> Wall {
        let lan = Lan::new();
        let (a, b) = (
            format!("{}a", lan.server.name),
            format!("{}b", lan.server.name),
        );
        run(
            &lan.client,
            &[
                "ip",
                "addr",
                "add",
                &format!("{CLIENT_IP6}/64"),
                "dev",
                &b,
                "nodad",
            ],
        );
        // The server's interface is eth0, as on a real host (rules name it).
        run(&lan.server, &["ip", "link", "set", &a, "down"]);
        run(&lan.server, &["ip", "link", "set", &a, "name", "eth0"]);
        run(&lan.server, &["ip", "link", "set", "eth0", "up"]);
        run(
            &lan.server,
            &[
                "ip",
                "addr",
                "add",
                &format!("{SERVER_IP6}/64"),
                "dev",
                "eth0",
                "nodad",
            ],
        );
        // Neighbours known for good: a ruleset that drops ARP (netdev ingress) or ICMPv6
        // (an IPv6 policy drop) would otherwise cut the link itself, which is not what
        // the judge is asked about (the fate of the connection's first packet).
        let (server_mac, client_mac) = (mac(&lan.server, "eth0"), mac(&lan.client, &b));
        for (ns, dev, ip, lladdr) in [
            (&lan.server, "eth0", CLIENT_IP, &client_mac),
            (&lan.server, "eth0", CLIENT_IP6, &client_mac),
            (&lan.client, b.as_str(), SERVER_IP, &server_mac),
            (&lan.client, b.as_str(), SERVER_IP6, &server_mac),
        ] {
            run(
                ns,
                &[
                    "ip",
                    "neigh",
                    "replace",
                    ip,
                    "lladdr",
                    lladdr,
                    "dev",
                    dev,
                    "nud",
                    "permanent",
                ],
            );
        }
        // Every reject answered at once: the kernel rate-limits ICMP errors to one a second
        // per destination by default, which would turn a quick second reject into silence.
        run(
            &lan.server,
            &[
                "sysctl",
                "-qw",
                "net.ipv4.icmp_ratelimit=0",
                "net.ipv6.icmp.ratelimit=0",
            ],
        );
        Wall {
            lan,
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// `argv` run in the server's namespace inside a private mount namespace of its own,
    /// where the firewall tools' files (`/etc/ufw`, `/etc/default/ufw`, `/lib/ufw`,
    /// `/etc/firewalld`) are copies in `state`, and `/run` and `/var/log` are empty: nothing
    /// they write reaches the host's files. Returns stdout and stderr together, and whether
    /// it succeeded.
    pub fn privately(&self, state: &Private, script: &str) -> (bool, String) {
        let out = self
            .lan
            .server
            .cmd("unshare")
            .args([
                "-m",
                "--propagation",
                "private",
                "bash",
                "-c",
                &format!("{}\n{script}", state.mounts()),
            ])
            .env("XTABLES_LOCKFILE", state.dir.path().join("xtables.lock"))
            .stdin(std::process::Stdio::null())
            .output()
            .expect("unshare");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// Replaces the server's nftables ruleset (nft's syntax; `nft -f`).
    pub fn load(&self, ruleset: &str) {
        if let Err(e) = self.try_load(ruleset) {
            panic!("nft -f refused the ruleset:\n{ruleset}\n{e}");
        }
    }

    /// As `load`, or nft's complaint.
    pub fn try_load(&self, ruleset: &str) -> Result<(), String> {
        self.nft(&["flush", "ruleset"]);
        // nft 1.0.6 wants a newline (or `;`) between closing braces on one line.
        let mut text = ruleset.to_string();
        while text.contains("} }") {
            text = text.replace("} }", "}\n}");
        }
        let mut child = self
            .lan
            .server
            .cmd("nft")
            .args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("THIS TEST NEEDS nft (nftables): run scripts/setup-test-env");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    pub fn nft(&self, args: &[&str]) {
        let mut argv = vec!["nft"];
        argv.extend(args);
        run(&self.lan.server, &argv);
    }

    /// The client's own connection to `ip:8001`, and the first line of what answered.
    pub fn client_sees(&self, ip: IpAddr) -> Seen {
        connect_from(&self.lan.client.name, SocketAddr::new(ip, 8001))
    }
}

/// Copies of the firewall tools' configuration, for [`Wall::privately`].
pub struct Private {
    pub dir: tempfile::TempDir,
}

impl Private {
    pub fn new() -> Private {
        let dir = tempfile::tempdir().unwrap();
        for (from, to) in [
            ("/etc/ufw", "etc_ufw"),
            ("/etc/default/ufw", "default_ufw"),
            ("/lib/ufw", "lib_ufw"),
            ("/etc/firewalld", "etc_firewalld"),
        ] {
            assert!(
                std::path::Path::new(from).exists(),
                "THIS TEST NEEDS {from} (ufw and firewalld, installed by scripts/setup-test-env)"
            );
            let status = std::process::Command::new("cp")
                .args(["-a", from])
                .arg(dir.path().join(to))
                .status()
                .unwrap();
            assert!(status.success(), "cp -a {from}");
        }
        std::fs::create_dir(dir.path().join("log")).unwrap();
        Private { dir }
    }

    pub fn mounts(&self) -> String {
        let d = self.dir.path().display();
        format!(
            "set -e\nmount -t tmpfs tmpfs /run\nmount --bind {d}/etc_ufw /etc/ufw\nmount --bind {d}/default_ufw /etc/default/ufw\n\
             mount --bind {d}/lib_ufw /lib/ufw\nmount --bind {d}/etc_firewalld /etc/firewalld\nmount --bind {d}/log /var/log\nset +e"
        )
    }
}

impl Drop for Wall {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn mac(ns: &Netns, dev: &str) -> String {
    let out = ns
        .cmd("cat")
        .arg(format!("/sys/class/net/{dev}/address"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn run(ns: &Netns, argv: &[&str]) {
    let out = ns
        .cmd(argv[0])
        .args(&argv[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {argv:?}: {e}"));
    assert!(
        out.status.success(),
        "{argv:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// How long a connection may go unanswered before it counts as dropped: the veth answers
/// in microseconds, and a reject now comes back at once.
const SILENCE: Duration = Duration::from_millis(300);

pub fn connect_from(ns: &str, addr: SocketAddr) -> Seen {
    run_in(ns, move || connect(addr))
}

/// A connection with IP_RECVERR/IPV6_RECVERR on, so that an ICMP error ends it at once
/// (without it, Linux keeps retrying a SYN that met an ICMPv6 error, or an ICMP host
/// unreachable, until its own timeout: the error is there, only reported late).
fn connect(addr: SocketAddr) -> Seen {
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrStorage, connect, setsockopt, socket, sockopt,
    };
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    if addr.is_ipv4() {
        setsockopt(&fd, sockopt::Ipv4RecvErr, &true).unwrap();
    } else {
        setsockopt(&fd, sockopt::Ipv6RecvErr, &true).unwrap();
    }
    match connect(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrStorage::from(addr),
    ) {
        Ok(()) | Err(nix::errno::Errno::EINPROGRESS) => {}
        Err(e) => return Seen::Refused(e.to_string()),
    }
    let mut fds = [nix::poll::PollFd::new(
        std::os::fd::AsFd::as_fd(&fd),
        nix::poll::PollFlags::POLLOUT,
    )];
    let ready = nix::poll::poll(
        &mut fds,
        nix::poll::PollTimeout::try_from(SILENCE.as_millis() as i32).unwrap(),
    )
    .unwrap();
    if ready == 0 {
        return Seen::Silence;
    }
    match nix::sys::socket::getsockopt(&fd, sockopt::SocketError).unwrap() {
        0 => {}
        e => return Seen::Refused(nix::errno::Errno::from_raw(e).to_string()),
    }
    let mut s = TcpStream::from(fd);
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    // The servers greet before they read: what answered is known without a request.
    let port = answer
        .rsplit("port ")
        .next()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(0);
    Seen::Answered(port)
}

/// An HTTP server on `[::]:port` (dual stack) in namespace `ns`, a thread of this test,
/// answering `port N` to every request until `stop`.
fn serve(ns: &str, port: u16, stop: Arc<AtomicBool>) {
    let listener = run_in(ns, move || {
        TcpListener::bind(("::", port)).expect("bind in the server namespace")
    });
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            let mut fds = [nix::poll::PollFd::new(
                std::os::fd::AsFd::as_fd(&listener),
                nix::poll::PollFlags::POLLIN,
            )];
            let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(100u16));
            while let Ok((mut s, _)) = listener.accept() {
                std::thread::spawn(move || {
                    let _ = s.set_nonblocking(false);
                    let body = format!("port {port}");
                    let _ = write!(
                        s,
                        "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = s.shutdown(std::net::Shutdown::Write);
                    // What the client sent, read so that closing does not reset it.
                    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                    let mut buf = [0u8; 1024];
                    let _ = s.read(&mut buf);
                });
            }
        }
    });
}
