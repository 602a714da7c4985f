//! Verification against real gunicorn and real sockets: the problem the
//! launcher exists for, across a network (two namespaces joined by a veth pair), readiness
//! notification, config hooks that defeat the command line, a port held by
//! another program, IPv6 dual-stack and v6-only, and `check`.

mod common;
use common::*;
use nix::sys::signal::Signal;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

/// The problem as operators meet it: bare gunicorn on 127.0.0.1 is refused from
/// another host; the same command through the launcher answers 200.
/// A program that is not gunicorn bound to one address: the single-address verdict names it
/// and does not send the operator to gunicorn's config hooks, which it has none of.
#[test]
fn a_single_address_program_that_is_not_gunicorn_is_not_blamed_on_gunicorn_hooks() {
    let ns = Netns::new();
    let mut other = Proc::spawn({
        let mut c = ns.cmd(python());
        c.args([
            "-c",
            "import http.server\n\
             s = http.server.HTTPServer(('127.0.0.1', 8001), http.server.SimpleHTTPRequestHandler)\n\
             print('serving', flush=True)\n\
             s.serve_forever()\n",
        ]);
        c
    });
    other.wait_line("serving", LONG);
    let (code, out) = check(&ns, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("bound to a single address"), "{out}");
    assert!(out.contains(&other.pid().to_string()), "{out}");
    assert!(!out.contains("gunicorn.conf.py"), "{out}");
    other.signal(Signal::SIGKILL);
    other.wait_exit(LONG);
}

#[test]
fn loopback_gunicorn_is_refused_elsewhere_and_the_launcher_is_not() {
    let lan = Lan::new();
    let app = AppDir::new();
    assert_eq!(check(&lan.server, &[]).0, 3, "nothing listens yet");

    let mut bare = lan.server.cmd(gunicorn());
    bare.args(["-b", "127.0.0.1:8001", "hello:app"])
        .current_dir(app.path())
        .env("XDG_RUNTIME_DIR", app.path().join("run"));
    let mut bare = Proc::spawn(bare);
    bare.wait_line("Booting worker", LONG);
    wait_until("bare gunicorn to answer on loopback", LONG, || {
        lan.server.http_status("http://127.0.0.1:8001/") == Ok(200)
    });
    // curl exit 7: failed to connect (connection refused).
    assert_eq!(
        lan.client.http_status(&url()),
        Err(7),
        "a browser elsewhere: ERR_CONNECTION_REFUSED"
    );
    let (code, out) = check(&lan.server, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("127.0.0.1:8001") && out.contains(&bare.pid().to_string()),
        "{out}"
    );
    bare.signal(Signal::SIGTERM);
    bare.wait_exit(LONG);

    let mut l = Proc::spawn(app.launcher_in(
        &lan.server,
        &[
            "run",
            "--",
            &gunicorn(),
            "-b",
            "127.0.0.1:8001",
            "hello:app",
        ],
    ));
    let verified = l.wait_line("verified:", LONG);
    assert!(
        verified.contains(SERVER_IP),
        "the probe covered the LAN address: {verified}"
    );
    assert_eq!(lan.client.http_status(&url()), Ok(200));
    let (code, out) = check(&lan.server, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("0.0.0.0:8001")
            && out.contains(&format!("{SERVER_IP}:8001"))
            && out.contains("HTTP 200"),
        "{out}"
    );
    let (code, json) = check(&lan.server, &["--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["verdict"], "ok");
    assert_eq!(v["listeners"][0]["address"], "0.0.0.0");
    assert!(
        v["listeners"][0]["owners"].as_array().unwrap().len() >= 2,
        "master and worker own it: {json}"
    );
    assert!(
        v["probes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["status"] == 200),
        "{json}"
    );
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait_exit(LONG).code(), Some(0));
    assert_eq!(check(&lan.server, &[]).0, 3, "nothing listens after stop");
}

struct NotifyListener {
    sock: UnixDatagram,
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl NotifyListener {
    fn new() -> NotifyListener {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let sock = UnixDatagram::bind(&path).unwrap();
        NotifyListener {
            sock,
            _dir: dir,
            path,
        }
    }

    /// Waits for a datagram containing `needle`; returns it whole.
    fn wait_for(&self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no notify message with {needle:?} within {within:?}"
            );
            self.sock.set_read_timeout(Some(left)).unwrap();
            if let Ok(n) = self.sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                if msg.contains(needle) {
                    return msg;
                }
            }
        }
    }
}

/// READY=1 only once the other host already gets 200, even though the app
/// takes 3 s to import and gunicorn itself says READY right after bind().
#[test]
fn ready_is_sent_only_when_the_other_host_already_gets_200() {
    let lan = Lan::new();
    let app = AppDir::new();
    app.write(
        "slow.py",
        "import time\ntime.sleep(3)\nfrom hello import app\n",
    );
    let notify = NotifyListener::new();
    let mut cmd = app.launcher_in(&lan.server, &["run", "--", "gunicorn", "slow:app"]);
    cmd.env("NOTIFY_SOCKET", &notify.path);
    let mut l = Proc::spawn(cmd);
    let ready = notify.wait_for("READY=1", LONG);
    assert_eq!(
        lan.client.http_status(&url()),
        Ok(200),
        "READY came before the service answered"
    );
    assert!(ready.contains("STATUS=verified:"), "{ready}");
    assert!(
        ready.contains("0.0.0.0:8001") && ready.contains(SERVER_IP) && ready.contains("127.0.0.1"),
        "{ready}"
    );
    l.signal(Signal::SIGTERM);
    notify.wait_for("STOPPING=1", LONG);
    assert_eq!(l.wait_exit(LONG).code(), Some(0), "{}", l.output());
}

const REBIND_HOOK: &str =
    "def on_starting(server):\n    server.cfg.set('bind', ['127.0.0.1:8001'])\n";

#[test]
fn a_config_hook_that_rebinds_to_loopback_is_caught() {
    let ns = Netns::new();
    let app = AppDir::new();
    app.write("gunicorn.conf.py", REBIND_HOOK);
    let notify = NotifyListener::new();
    // Failed at once, maybe while a worker boots: a short graceful timeout keeps gunicorn
    // <= 23 from waiting 30 s for it.
    let mut cmd = app.launcher_in(
        &ns,
        &[
            "run",
            "--",
            "gunicorn",
            "-w",
            "2",
            "--graceful-timeout",
            "2",
            "hello:app",
        ],
    );
    cmd.env("NOTIFY_SOCKET", &notify.path);
    let mut l = Proc::spawn(cmd);
    assert_eq!(l.wait_exit(LONG).code(), Some(69), "{}", l.output());
    let out = l.output();
    assert!(
        out.contains("127.0.0.1:8001") && out.contains("single address"),
        "{out}"
    );
    // Never READY, though the launcher did talk to systemd; nothing left running.
    notify.sock.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    let mut said = Vec::new();
    while let Ok(n) = notify.sock.recv(&mut buf) {
        said.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(!said.is_empty(), "the launcher sent systemd nothing at all");
    assert!(
        !said.iter().any(|m| m.contains("READY=1")),
        "READY sent for a loopback bind: {said:?}"
    );
    assert!(ns.listeners(8001).is_empty(), "{:?}", ns.listeners(8001));
}

#[test]
fn on_failure_warn_keeps_running_and_says_so_in_status() {
    let ns = Netns::new();
    let app = AppDir::new();
    app.write("gunicorn.conf.py", REBIND_HOOK);
    app.write("launcher.toml", "[verify]\non_failure = \"warn\"\n");
    let notify = NotifyListener::new();
    let mut cmd = app.launcher_in(
        &ns,
        &[
            "run",
            "--config",
            "launcher.toml",
            "--",
            "gunicorn",
            "hello:app",
        ],
    );
    cmd.env("NOTIFY_SOCKET", &notify.path);
    let mut l = Proc::spawn(cmd);
    let msg = notify.wait_for("STATUS=", LONG);
    let msg = if msg.contains("WARNING") {
        msg
    } else {
        notify.wait_for("WARNING", LONG)
    };
    assert!(msg.contains("127.0.0.1:8001"), "{msg}");
    l.wait_line("keeps running", LONG);
    assert_eq!(
        ns.http_status("http://127.0.0.1:8001/"),
        Ok(200),
        "still serving on loopback"
    );
    assert!(
        l.child.try_wait().unwrap().is_none(),
        "launcher must keep running"
    );
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait_exit(LONG).code(), Some(0));
}

#[test]
fn a_port_held_by_another_program_is_named_with_pid_and_command() {
    let ns = Netns::new();
    let app = AppDir::new();
    let mut holder = ns.cmd("python3");
    holder.args(["-c", "import socket,time\ns=socket.socket()\ns.bind(('0.0.0.0',8001))\ns.listen()\nprint('holding',flush=True)\ntime.sleep(300)"]);
    let mut holder = Proc::spawn(holder);
    holder.wait_line("holding", LONG);
    let mut l = Proc::spawn(app.launcher_in(&ns, &["run", "--", "gunicorn", "hello:app"]));
    let code = l.wait_exit(LONG).code();
    let out = l.output();
    assert_eq!(code, Some(69), "{out}");
    assert!(
        out.contains(&format!("pid {}", holder.pid())) && out.contains("python3"),
        "{out}"
    );
    // With a held socket the launcher's own bind meets the holder: the port-in-use hint,
    // the holder named, and gunicorn never started.
    let mut l = Proc::spawn(app.launcher_in(
        &ns,
        &["run", "--hold-socket", "--", "gunicorn", "hello:app"],
    ));
    let code = l.wait_exit(LONG).code();
    let out = l.output();
    assert_eq!(code, Some(69), "{out}");
    assert!(
        out.contains("cannot hold 0.0.0.0:8001 for gunicorn: the port is in use"),
        "{out}"
    );
    assert!(out.contains(&format!("pid {}", holder.pid())), "{out}");
    assert!(!out.contains("started gunicorn"), "{out}");
}

#[test]
fn dual_stack_is_all_interfaces_and_v6_only_is_not() {
    let ns = Netns::new();
    let app = AppDir::new();
    app.write("v6.toml", "[bind]\nhost = \"::\"\n");
    let mut l = Proc::spawn(app.launcher_in(
        &ns,
        &["run", "--config", "v6.toml", "--", "gunicorn", "hello:app"],
    ));
    let verified = l.wait_line("verified:", LONG);
    assert!(
        verified.contains("[::]:8001")
            && verified.contains("127.0.0.1")
            && verified.contains("::1"),
        "{verified}"
    );
    assert_eq!(ns.http_status("http://127.0.0.1:8001/"), Ok(200));
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait_exit(LONG).code(), Some(0));

    // The same with bindv6only=1 in this namespace: [::] no longer takes IPv4.
    let st = ns
        .cmd("sysctl")
        .args(["-qw", "net.ipv6.bindv6only=1"])
        .status()
        .unwrap();
    assert!(st.success());
    // A bind that cannot fix itself fails at once, possibly while the worker still boots:
    // gunicorn <= 23 then waits its whole graceful timeout for it, so keep that short.
    let mut l = Proc::spawn(app.launcher_in(
        &ns,
        &[
            "run",
            "--config",
            "v6.toml",
            "--",
            "gunicorn",
            "--graceful-timeout",
            "2",
            "hello:app",
        ],
    ));
    assert_eq!(l.wait_exit(LONG).code(), Some(69), "{}", l.output());
    assert!(l.output().contains("IPV6_V6ONLY"), "{}", l.output());
}

#[test]
fn a_listener_that_does_not_answer_http_is_exit_4_for_check() {
    let ns = Netns::new();
    let mut holder = ns.cmd("python3");
    holder.args(["-c", "import socket,time\ns=socket.socket()\ns.bind(('0.0.0.0',8001))\ns.listen()\nprint('holding',flush=True)\ntime.sleep(300)"]);
    let mut holder = Proc::spawn(holder);
    holder.wait_line("holding", LONG);
    let (code, out) = check(&ns, &["--timeout", "300ms"]);
    assert_eq!(code, 4, "{out}");
    assert!(
        out.contains("timed out") && out.contains(&holder.pid().to_string()),
        "{out}"
    );
}

/// HUP: RELOADING=1, then READY=1 again once verified; with WATCHDOG_USEC
/// set, WATCHDOG=1 keeps coming while healthy.
#[test]
fn reload_and_watchdog_notifications() {
    let ns = Netns::new();
    let app = AppDir::new();
    let notify = NotifyListener::new();
    let mut cmd = app.launcher_in(&ns, &["run", "--", "gunicorn", "hello:app"]);
    cmd.env("NOTIFY_SOCKET", &notify.path)
        .env("WATCHDOG_USEC", "400000");
    let mut l = Proc::spawn(cmd);
    notify.wait_for("READY=1", LONG);
    notify.wait_for("WATCHDOG=1", LONG);
    notify.wait_for("WATCHDOG=1", LONG);
    l.signal(Signal::SIGHUP);
    let reloading = notify.wait_for("RELOADING=1", LONG);
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    let ready = notify.wait_for("READY=1", LONG);
    assert!(ready.contains("STATUS=verified:"), "{ready}");
    l.wait_line("verified:", LONG);
    l.wait_line("verified:", LONG);
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait_exit(LONG).code(), Some(0));
}

/// A notify socket that nobody reads (systemd busy, or its queue filled by a flood): the
/// launcher's messages to it are dropped, never waited for. The queue is filled here
/// before a HUP; the reload is still carried out and verified, nothing the launcher sent
/// got in, and once the queue is read again its messages come again.
#[test]
fn a_full_notify_queue_never_holds_the_launcher_up() {
    let ns = Netns::new();
    let app = AppDir::new();
    let notify = NotifyListener::new();
    let mut cmd = app.launcher_in(&ns, &["run", "--", "gunicorn", "hello:app"]);
    cmd.env("NOTIFY_SOCKET", &notify.path)
        .env("WATCHDOG_USEC", "400000");
    let mut l = Proc::spawn(cmd);
    notify.wait_for("READY=1", LONG);
    // Fill the queue with datagrams of our own until a fresh sender cannot add one (one
    // sender alone may first run out of its own send buffer).
    let mut fillers = Vec::new();
    let mut queued = 0;
    loop {
        let filler = UnixDatagram::unbound().unwrap();
        filler.set_nonblocking(true).unwrap();
        let before = queued;
        while filler.send_to(b"FILLER", &notify.path).is_ok() {
            queued += 1;
        }
        fillers.push(filler);
        if queued == before {
            break;
        }
    }
    assert!(queued > 0, "the notify socket took nothing");
    l.signal(Signal::SIGHUP);
    l.wait_line("reloading gunicorn (HUP)", LONG);
    l.wait_line("reloaded and verified:", LONG);
    // That line is logged just before READY=1 is sent (and dropped: the queue is full); the
    // launcher's next sleep in poll() comes after the send, so the drain below cannot let it in.
    wait_until(
        "the launcher to sleep in poll() after READY=1",
        LONG,
        || asleep_in_poll(l.pid()),
    );
    // Nothing got in behind our last datagram: the launcher's RELOADING=1, READY=1 and
    // watchdog pings were dropped while the queue was full (any of its messages that
    // came before or between ours were sent while there was still room).
    notify.sock.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    let mut drained = Vec::new();
    while let Ok(n) = notify.sock.recv(&mut buf) {
        drained.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert_eq!(drained.iter().filter(|m| *m == "FILLER").count(), queued);
    assert_eq!(
        drained.last().map(String::as_str),
        Some("FILLER"),
        "queued past a full queue: {:?}",
        &drained[drained.len().saturating_sub(5)..]
    );
    notify.sock.set_nonblocking(false).unwrap();
    notify.wait_for("WATCHDOG=1", LONG);
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait_exit(LONG).code(), Some(0), "{}", l.output());
}

/// With a recheck interval, a service that stops answering after READY is
/// noticed (here: its only worker is frozen with SIGSTOP), reported in the
/// log and in STATUS (on_failure = "warn"), and its recovery too.
#[test]
fn recheck_notices_a_service_that_stops_answering_and_its_recovery() {
    let ns = Netns::new();
    let app = AppDir::new();
    app.write("l.toml", "[verify]\nrecheck_interval = \"300ms\"\nprobe_timeout = \"300ms\"\non_failure = \"warn\"\n");
    let notify = NotifyListener::new();
    let mut cmd = app.launcher_in(
        &ns,
        &[
            "run",
            "--config",
            "l.toml",
            "--",
            "gunicorn",
            "-w",
            "1",
            "hello:app",
        ],
    );
    cmd.env("NOTIFY_SOCKET", &notify.path);
    let mut l = Proc::spawn(cmd);
    notify.wait_for("READY=1", LONG);
    let master = master_of(l.pid());
    wait_until("one worker", LONG, || children(master).len() == 1);
    let worker = nix::unistd::Pid::from_raw(children(master)[0]);
    nix::sys::signal::kill(worker, Signal::SIGSTOP).unwrap();
    l.wait_line("verification failed", LONG);
    let status = notify.wait_for("WARNING", LONG);
    assert!(status.contains("timed out"), "{status}");
    nix::sys::signal::kill(worker, Signal::SIGCONT).unwrap();
    l.wait_line("verified again", LONG);
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait_exit(LONG).code(), Some(0), "{}", l.output());
}

/// A gunicorn that sends the launcher no READY=1 is verified all the same.
/// Here a config file points gunicorn's notifications at another socket:
/// gunicorn's READY=1 arriving there shows the launcher's got nothing.
#[test]
fn a_gunicorn_that_never_notifies_is_still_verified() {
    let ns = Netns::new();
    let app = AppDir::new();
    let elsewhere = NotifyListener::new();
    app.write(
        "gunicorn.conf.py",
        &format!(
            "import os\nos.environ['NOTIFY_SOCKET'] = {:?}\n",
            elsewhere.path.to_str().unwrap()
        ),
    );
    let mut l = Proc::spawn(app.launcher_in(&ns, &["run", "--", "gunicorn", "hello:app"]));
    elsewhere.wait_for("READY=1", LONG);
    l.wait_line("verified:", LONG);
    assert_eq!(ns.http_status("http://127.0.0.1:8001/"), Ok(200));
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait_exit(LONG).code(), Some(0));
}

/// A USR2's new master says READY=1 to the launcher's notify socket (it inherits gunicorn's
/// environment) while the old master still serves: that changes nothing, and systemd's
/// watchdog keeps getting its pings. (It once put the launcher back to "not verified" and
/// silenced the watchdog, for which systemd kills the unit.)
#[test]
fn a_ready_from_a_usr2_master_keeps_the_watchdog_going() {
    let ns = Netns::new();
    let app = AppDir::new();
    let notify = NotifyListener::new();
    let mut cmd = app.launcher_in(&ns, &["run", "--", "gunicorn", "hello:app"]);
    cmd.env("NOTIFY_SOCKET", &notify.path)
        .env("WATCHDOG_USEC", "400000");
    let mut l = Proc::spawn(cmd);
    let _cleanup = KillTreeOnDrop(l.pid());
    notify.wait_for("READY=1", LONG);
    let old = master_of(l.pid());
    l.signal(Signal::SIGUSR2);
    // The new master is the old one's child; it has bound (sent READY=1) once it listens.
    let new = {
        let mut found = 0;
        wait_until("the USR2 master", LONG, || {
            found = children(old)
                .into_iter()
                .find(|&p| {
                    cmdline(p).iter().any(|a| a.contains("gunicorn")) && !children(p).is_empty()
                })
                .unwrap_or(0);
            found != 0
        });
        found
    };
    assert_ne!(new, old);
    // What was sent before is not the answer: only pings sent from now on count.
    notify.sock.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    while notify.sock.recv(&mut buf).is_ok() {}
    notify.sock.set_nonblocking(false).unwrap();
    // Pings go on after it: two more within the deadline (one every 200 ms).
    notify.wait_for("WATCHDOG=1", LONG);
    notify.wait_for("WATCHDOG=1", LONG);
    let tree = descendants(l.pid());
    l.signal(Signal::SIGTERM);
    l.wait_exit(LONG);
    assert!(alive(&tree).is_empty(), "left behind: {:?}", alive(&tree));
}

/// The probes of a look go out together, not one after another: with eight of the host's
/// addresses silently dropping the launcher's SYNs (each probe waits out its 20 s timeout),
/// several of its connections are in SYN-SENT at once.
#[test]
fn probes_to_many_addresses_wait_together() {
    let ns = Netns::new();
    ns.add_addresses(8);
    let nft = ns
        .cmd("nft")
        .args([
            "add table inet t; add chain inet t in { type filter hook input priority 0; }; \
             add rule inet t in ip daddr 10.77.0.0/24 tcp dport 8001 drop",
        ])
        .output()
        .unwrap();
    assert!(
        nft.status.success(),
        "{}",
        String::from_utf8_lossy(&nft.stderr)
    );
    let app = AppDir::new();
    app.write("launcher.toml", "[verify]\nprobe_timeout = \"20s\"\n");
    let l = Proc::spawn(app.launcher_in(
        &ns,
        &[
            "run",
            "--config",
            "launcher.toml",
            "--",
            "gunicorn",
            "hello:app",
        ],
    ));
    let _cleanup = KillTreeOnDrop(l.pid());
    let waiting = || {
        let out = ns
            .cmd("ss")
            .args(["-Htn", "state", "syn-sent", "( dport = :8001 )"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).lines().count()
    };
    wait_until("several probes in SYN-SENT at once", LONG, || {
        waiting() >= 4
    });
}
