//! The listening socket the launcher holds for gunicorn: bound by the launcher itself
//! (`run --hold-socket`), or handed over by systemd (socket activation, `LISTEN_FDS`).
//! Either way the launcher keeps it open for its whole life, so that while one gunicorn
//! exits and the next starts, connections wait in its backlog instead of being refused;
//! each gunicorn takes it as fd 3 with `LISTEN_FDS=1` and its own pid in `LISTEN_PID`
//! ([`crate::spawn`]), and then binds nothing itself.

use crate::error::Failure;
use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, SockaddrIn, SockaddrIn6, SockaddrLike,
    SockaddrStorage, bind, getsockname, getsockopt, listen, setsockopt, socket, sockopt,
};
use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
pub const FIRST_PASSED_FD: RawFd = 3;

/// Who made the socket the launcher holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The launcher bound it (`--hold-socket`).
    Launcher,
    /// systemd passed it (a `.socket` unit).
    Systemd,
    /// The launcher bound it once, and systemd gave it back from its file descriptor store.
    Store,
}

/// A listening TCP socket on a wildcard address, held open by the launcher.
#[derive(Debug)]
pub struct Held {
    pub fd: OwnedFd,
    pub addr: SocketAddr,
    pub origin: Origin,
}

impl Held {
    /// How the log and `print-command` say it.
    pub fn describe(&self) -> String {
        match self.origin {
            Origin::Launcher => format!("{}, bound and held by the launcher", self.addr),
            Origin::Systemd => format!("{}, passed by systemd (socket activation)", self.addr),
            Origin::Store => format!(
                "{}, held by the launcher, taken back from systemd's file descriptor store",
                self.addr
            ),
        }
    }
}

/// Binds `host:port` (a wildcard address) and listens with `backlog`: the socket the
/// launcher holds with `--hold-socket`. `[::]` is made dual-stack, so that it also takes
/// IPv4, as the launcher's verdict requires.
pub fn bind_and_hold(host: IpAddr, port: u16, backlog: u32) -> Result<Held, Failure> {
    let addr = SocketAddr::new(host, port);
    let cannot = |what: &str, e: Errno| {
        Failure::software(format!("cannot hold {addr} for gunicorn: {what}: {e}"))
    };
    let family = if host.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)
        .map_err(|e| cannot("socket", e))?;
    // As gunicorn does: a restart must not wait for the last connections' TIME_WAIT.
    setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(|e| cannot("SO_REUSEADDR", e))?;
    let bound = match addr {
        SocketAddr::V4(v4) => bind(fd.as_raw_fd(), &SockaddrIn::from(v4)),
        SocketAddr::V6(v6) => {
            setsockopt(&fd, sockopt::Ipv6V6Only, &false).map_err(|e| cannot("IPV6_V6ONLY", e))?;
            bind(fd.as_raw_fd(), &SockaddrIn6::from(v6))
        }
    };
    match bound {
        Ok(()) => {}
        Err(Errno::EADDRINUSE) => {
            return Err(Failure::new(
                crate::exit::UNVERIFIED,
                format!(
                    "cannot hold {addr} for gunicorn: the port is in use{}; stop that program or \
                     choose another port (--port, bind.port)",
                    holders(port)
                ),
            ));
        }
        Err(e) => return Err(cannot("bind", e)),
    }
    let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
    // nix refuses a backlog above SOMAXCONN; the kernel caps it there anyway.
    let backlog = Backlog::new(backlog).unwrap_or(Backlog::MAXCONN);
    listen(&fd, backlog).map_err(|e| cannot("listen", e))?;
    Ok(Held {
        fd,
        addr,
        origin: Origin::Launcher,
    })
}

/// ` (held by pid N: COMMAND)` for the programs that listen on `port`, as far as they can
/// be seen; empty when none can.
fn holders(port: u16) -> String {
    let Ok(listeners) = crate::sockets::listeners_on_port(port) else {
        return String::new();
    };
    let mut owners: Vec<String> = crate::process::owners::owners_on_host(&listeners)
        .into_values()
        .flatten()
        .map(|o| format!("pid {}: {}", o.pid, crate::log::one_line(&o.command)))
        .collect();
    owners.sort();
    owners.dedup();
    owners.truncate(3);
    if owners.is_empty() {
        String::new()
    } else {
        format!(" (held by {})", owners.join("; "))
    }
}

/// The prefix of the launcher's names in systemd's file descriptor store.
const STORE_PREFIX: &str = "gunicorn-launcher-port-";

/// The held socket's name in systemd's file descriptor store: the launcher and the port
/// (`gunicorn-launcher-port-8001`; systemd takes printable ASCII without `:`).
pub fn store_name(port: u16) -> String {
    format!("{STORE_PREFIX}{port}")
}

/// What systemd passed this very process (`LISTEN_PID` is ours) from fd 3 on, told apart by
/// name (`LISTEN_FDNAMES`): a `.socket` unit's sockets (socket activation), and the
/// launcher's own socket given back from the file descriptor store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Passed {
    /// A `.socket` unit's descriptors.
    pub activation: Vec<RawFd>,
    /// Sockets the launcher stored, each with its name.
    pub stored: Vec<(RawFd, String)>,
}

impl Passed {
    /// Reads the three variables (nothing is opened or taken). A count that is not a
    /// number is a configuration error; names that do not match the count are ignored, as
    /// sd_listen_fds_with_names ignores them.
    pub fn read(
        listen_pid: Option<&str>,
        listen_fds: Option<&str>,
        listen_fdnames: Option<&str>,
    ) -> Result<Passed, Failure> {
        let ours = listen_pid
            .and_then(|p| p.trim().parse::<u32>().ok())
            .is_some_and(|p| p == std::process::id());
        let Some(count) = listen_fds.filter(|_| ours) else {
            return Ok(Passed::default());
        };
        let count: RawFd = count.trim().parse().map_err(|_| {
            Failure::config(format!(
                "systemd passed LISTEN_FDS={}, not a number of descriptors",
                crate::log::one_line(count.trim())
            ))
        })?;
        let names: Vec<&str> = listen_fdnames.map_or(Vec::new(), |n| n.split(':').collect());
        let mut passed = Passed::default();
        for (i, fd) in (FIRST_PASSED_FD..FIRST_PASSED_FD.saturating_add(count.max(0))).enumerate() {
            match names.get(i).filter(|_| names.len() == count as usize) {
                Some(name) if name.starts_with(STORE_PREFIX) => {
                    passed.stored.push((fd, name.to_string()))
                }
                _ => passed.activation.push(fd),
            }
        }
        Ok(passed)
    }

    /// A `.socket` unit passed the port: socket activation.
    pub fn activated(&self) -> bool {
        !self.activation.is_empty()
    }
}

/// A stored socket the launcher does not take back, and why; it is closed, and systemd is
/// asked to forget it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dropped {
    pub name: String,
    pub why: String,
}

/// What the launcher takes from what systemd passed.
#[derive(Debug, Default)]
pub struct Taken {
    pub held: Option<Held>,
    pub dropped: Vec<Dropped>,
}

/// Takes what systemd passed, for a launcher that serves `port` and holds its socket
/// (`hold`) or not. A `.socket` unit's socket: exactly one, a listening TCP socket on a
/// wildcard address that takes IPv4, on `port`; anything else is a configuration error that
/// names what was passed. A socket from the store: taken back after the same checks when the
/// launcher holds its socket and no `.socket` unit passed one; otherwise (another port after
/// a config change, no longer listening, not held any more) dropped, with why.
pub fn take(passed: &Passed, port: u16, hold: bool) -> Result<Taken, Failure> {
    let mut taken = Taken::default();
    if passed.activated() {
        taken.held = Some(activation_socket(&passed.activation, port)?);
    }
    for (fd, name) in &passed.stored {
        let Some(fd) = open_passed(*fd) else {
            continue;
        };
        let why = if taken.held.is_some() && passed.activated() {
            "a .socket unit passes the port now".to_string()
        } else if taken.held.is_some() {
            "another stored socket was taken back".to_string()
        } else if !hold {
            "the launcher does not hold the socket now (no --hold-socket)".to_string()
        } else {
            match check_passed(fd.as_fd(), port) {
                Ok(addr) => {
                    taken.held = Some(Held {
                        fd,
                        addr,
                        origin: Origin::Store,
                    });
                    continue;
                }
                Err(what) => format!("it is {what}"),
            }
        };
        taken.dropped.push(Dropped {
            name: name.clone(),
            why,
        });
    }
    Ok(taken)
}

/// The one socket a `.socket` unit passed.
fn activation_socket(fds: &[RawFd], port: u16) -> Result<Held, Failure> {
    let unit_hint = "use one ListenStream=0.0.0.0:PORT (or [::]:PORT with BindIPv6Only=both) in \
                     the .socket unit";
    let &[first] = fds else {
        return Err(Failure::config(format!(
            "systemd passed LISTEN_FDS={}: the launcher takes exactly one socket; {unit_hint}",
            fds.len()
        )));
    };
    let Some(fd) = open_passed(first) else {
        return Err(Failure::config(format!(
            "systemd said it passed a socket (LISTEN_FDS=1), but fd {first} is not open; \
             {unit_hint}"
        )));
    };
    let addr = check_passed(fd.as_fd(), port).map_err(|what| {
        Failure::config(format!(
            "systemd passed fd {first} as the socket to serve, but it is {what}; \
             {unit_hint}, with the launcher's port {port}"
        ))
    })?;
    Ok(Held {
        fd,
        addr,
        origin: Origin::Systemd,
    })
}

/// Takes ownership of a descriptor systemd passed, if it is open.
fn open_passed(fd: RawFd) -> Option<OwnedFd> {
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).ok()?;
    // SAFETY: `fd` is open (checked above), systemd passed it to this process (LISTEN_PID is
    // ours, and it is within LISTEN_FDS), and each passed number is taken once, here.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The passed socket's address, or what is wrong with it, in words.
pub(crate) fn check_passed(fd: BorrowedFd<'_>, port: u16) -> Result<SocketAddr, String> {
    match getsockopt(&fd, sockopt::SockType) {
        Ok(SockType::Stream) => {}
        Ok(other) => return Err(format!("a {other:?} socket, not a TCP stream")),
        Err(e) => return Err(format!("not a socket ({e})")),
    }
    if !getsockopt(&fd, sockopt::AcceptConn).unwrap_or(false) {
        return Err("a socket that does not listen".into());
    }
    let name: SockaddrStorage =
        getsockname(fd.as_raw_fd()).map_err(|e| format!("a socket without an address ({e})"))?;
    let addr = match (name.as_sockaddr_in(), name.as_sockaddr_in6()) {
        (Some(v4), _) => SocketAddr::V4(SocketAddrV4::new(v4.ip(), v4.port())),
        (_, Some(v6)) => SocketAddr::V6(SocketAddrV6::new(v6.ip(), v6.port(), 0, 0)),
        _ => {
            return Err(format!(
                "a socket of family {:?}, not TCP over IP",
                name.family()
            ));
        }
    };
    if !addr.ip().is_unspecified() {
        return Err(format!(
            "bound to {addr}, a single address: the launcher serves every interface"
        ));
    }
    if addr.is_ipv6() && getsockopt(&fd, sockopt::Ipv6V6Only).unwrap_or(true) {
        return Err(format!(
            "bound to {addr} for IPv6 only (BindIPv6Only=ipv6-only): IPv4 clients would be refused"
        ));
    }
    if addr.port() != port {
        return Err(format!("bound to {addr}, another port"));
    }
    Ok(addr)
}

#[cfg(test)]
mod tests;
