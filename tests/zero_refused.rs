//! Zero refused connections: with the socket held by the launcher (`run --hold-socket`) or
//! passed by systemd (socket activation), a client from another network namespace gets no
//! ERR_CONNECTION_REFUSED while gunicorn crashes and is started again; a bare gunicorn
//! restarted the ordinary way refuses, which shows the load would notice.
//!
//! The load is a few threads in the client's namespace, each connecting, sending a
//! `GET /` and reading the status line in a loop (tests/common/load.rs).

mod common;

use common::load::{Counts, Load};
use common::*;
use nix::sys::signal::Signal;
use std::net::SocketAddr;
use std::time::Duration;

const THREADS: usize = 4;

fn server_addr() -> SocketAddr {
    format!("{SERVER_IP}:8001").parse().unwrap()
}

/// `kills` SIGKILLs of the master under `run --hold-socket`, each once the one before was
/// restarted and verified; returns what the load saw.
fn kill_the_master_under_load(kills: usize) -> Counts {
    let lan = Lan::new();
    let app = AppDir::new();
    // Ten crashes in well under the default window: raise the limit for this test.
    app.write("launcher.toml", "[supervise]\nrestart_burst = 20\n");
    let mut l = Proc::spawn(app.launcher_in(
        &lan.server,
        &[
            "run",
            "--hold-socket",
            "--config",
            "launcher.toml",
            "--",
            "gunicorn",
            "-w",
            "2",
            // The final TERM may come while a worker boots, whose TERM gunicorn <= 23
            // can miss; it then waits its whole graceful timeout: keep that short.
            "--graceful-timeout",
            "2",
            "hello:app",
        ],
    ));
    let _cleanup = KillTreeOnDrop(l.pid());
    l.wait_line("verified:", LONG);
    let load = Load::start(&lan.client.name, server_addr(), THREADS);
    load.wait_answered(20, LONG);
    for i in 1..=kills {
        let master = master_of(l.pid());
        signal_pid(master, Signal::SIGKILL);
        l.wait_line(&format!("{i} in all)"), LONG);
        l.wait_line("restarted gunicorn", LONG);
        l.wait_line("verified:", LONG);
        load.wait_answered(10, LONG);
    }
    let counts = load.stop();
    let tree = descendants(l.pid());
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait_exit(LONG).code(), Some(0), "{}", l.output());
    assert!(alive(&tree).is_empty(), "left behind: {:?}", alive(&tree));
    counts
}

#[test]
fn a_held_socket_refuses_nothing_across_ten_master_kills() {
    let counts = kill_the_master_under_load(10);
    eprintln!("held socket, 10 SIGKILLs of the master: {counts:?}");
    assert_eq!(counts.refused, 0, "{counts:?}");
    assert_eq!(counts.timed_out, 0, "{counts:?}");
    // Requests in flight in a killed worker may be reset; everything else is answered.
    assert!(counts.answered > 10 * 10, "{counts:?}");
}

/// The same load against gunicorn stopped and started again, as a service manager restarts
/// it without a held socket: between one gunicorn's exit and the next one's bind the port is
/// closed and clients are refused.
#[test]
fn a_bare_gunicorn_restarted_refuses_connections() {
    let lan = Lan::new();
    let app = AppDir::new();
    let bare = || {
        let mut c = lan.server.cmd(gunicorn());
        c.args([
            "-b",
            "0.0.0.0:8001",
            "-w",
            "2",
            "--graceful-timeout",
            "2",
            "hello:app",
        ])
        .current_dir(app.path())
        .env("XDG_RUNTIME_DIR", app.path().join("run"));
        let mut g = Proc::spawn(c);
        g.wait_line("Booting worker", LONG);
        g
    };
    let mut g = bare();
    wait_until("bare gunicorn to answer", LONG, || {
        lan.server.http_status("http://127.0.0.1:8001/") == Ok(200)
    });
    let load = Load::start(&lan.client.name, server_addr(), THREADS);
    load.wait_answered(20, LONG);
    for _ in 0..3 {
        let refused = load.counts().refused;
        g.signal(Signal::SIGTERM);
        assert!(g.wait_exit(LONG).success(), "{}", g.output());
        // Nothing listens now: the load is refused before a new gunicorn binds.
        wait_until("a refused connection", LONG, || {
            load.counts().refused > refused
        });
        g = bare();
        load.wait_answered(10, LONG);
    }
    let counts = load.stop();
    g.signal(Signal::SIGTERM);
    g.wait_exit(LONG);
    eprintln!("bare gunicorn, 3 restarts: {counts:?}");
    assert!(counts.refused >= 3, "{counts:?}");
}

#[test]
fn crashes_beyond_the_limit_end_the_launcher_with_the_masters_status() {
    let ns = Netns::new();
    let app = AppDir::new();
    app.write(
        "launcher.toml",
        "[bind]\nhold_socket = true\n[supervise]\nrestart_burst = 2\nrestart_interval = \"1m\"\n",
    );
    let mut l = Proc::spawn(app.launcher_in(
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
    l.wait_line("verified:", LONG);
    for i in 1..=2 {
        signal_pid(master_of(l.pid()), Signal::SIGKILL);
        l.wait_line(&format!("restart {i} of at most 2 within 60s"), LONG);
        l.wait_line("verified:", LONG);
    }
    let tree = descendants(l.pid());
    signal_pid(master_of(l.pid()), Signal::SIGKILL);
    assert_eq!(l.wait_exit(LONG).code(), Some(137), "{}", l.output());
    let out = l.output();
    assert!(
        out.contains("3 crashes within 60s, more than supervise.restart_burst = 2 allows"),
        "{out}"
    );
    assert!(alive(&tree).is_empty(), "left behind: {:?}", alive(&tree));
}

/// `restart_burst = 0`: the first crash is already one too many, and said in the singular.
#[test]
fn a_restart_burst_of_zero_ends_at_the_first_crash_and_says_one_crash() {
    let ns = Netns::new();
    let app = AppDir::new();
    app.write(
        "launcher.toml",
        "[bind]\nhold_socket = true\n[supervise]\nrestart_burst = 0\n",
    );
    let mut l = Proc::spawn(app.launcher_in(
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
    l.wait_line("verified:", LONG);
    signal_pid(master_of(l.pid()), Signal::SIGKILL);
    assert_eq!(l.wait_exit(LONG).code(), Some(137), "{}", l.output());
    let out = l.output();
    assert!(
        out.contains("1 crash within 10s, more than supervise.restart_burst = 0 allows"),
        "{out}"
    );
    assert!(!out.contains("1 crashes"), "{out}");
}

#[test]
fn reuse_port_is_refused_with_a_held_socket() {
    let ns = Netns::new();
    let app = AppDir::new();
    let mut l = Proc::spawn(app.launcher_in(
        &ns,
        &[
            "run",
            "--hold-socket",
            "--",
            "gunicorn",
            "--reuse-port",
            "hello:app",
        ],
    ));
    assert_eq!(l.wait_exit(LONG).code(), Some(78), "{}", l.output());
    assert!(
        l.output()
            .contains("--reuse-port on gunicorn's command line turns on gunicorn's reuse_port"),
        "{}",
        l.output()
    );
    app.write("gunicorn.conf.py", "workers = 2\nreuse_port = True\n");
    let mut l = Proc::spawn(app.launcher_in(
        &ns,
        &["run", "--hold-socket", "--", "gunicorn", "hello:app"],
    ));
    assert_eq!(l.wait_exit(LONG).code(), Some(78), "{}", l.output());
    assert!(
        l.output()
            .contains("gunicorn.conf.py:2: `reuse_port = True`"),
        "{}",
        l.output()
    );
    assert!(ns.listeners(8001).is_empty(), "{:?}", ns.listeners(8001));
}

/// Socket activation without a booted systemd: `systemd-socket-activate` listens, starts
/// the launcher on the first connection and passes the socket (LISTEN_FDS=1); the launcher
/// hands it to gunicorn, and the first client, waiting in the backlog meanwhile, is answered.
#[test]
fn a_socket_passed_by_systemd_is_served_and_a_wrong_one_is_refused() {
    let ns = Netns::new();
    let app = AppDir::new();
    let activate = |listen: &str| {
        let mut c = ns.cmd("systemd-socket-activate");
        c.args(["-l", listen, "-E", "PATH", "-E", "XDG_RUNTIME_DIR"])
            .arg(launcher())
            .args(["run", "--", "gunicorn", "hello:app"]);
        app.launcher_env_for(c)
    };
    let mut a = Proc::spawn(activate("0.0.0.0:8001"));
    let _cleanup = KillTreeOnDrop(a.pid());
    a.wait_line("Listening on", LONG);
    assert_eq!(ns.http_status("http://127.0.0.1:8001/"), Ok(200));
    a.wait_line("passed by systemd (socket activation)", LONG);
    let tree = descendants(a.pid());
    a.signal(Signal::SIGTERM);
    assert_eq!(a.wait_exit(LONG).code(), Some(0), "{}", a.output());
    assert!(alive(&tree).is_empty(), "left behind: {:?}", alive(&tree));

    let mut a = Proc::spawn(activate("127.0.0.1:8001"));
    a.wait_line("Listening on", LONG);
    // The connection that starts the launcher is closed when it refuses the socket.
    let _ = ns.http_status("http://127.0.0.1:8001/");
    assert_eq!(a.wait_exit(LONG).code(), Some(78), "{}", a.output());
    assert!(
        a.output().contains(
            "systemd passed fd 3 as the socket to serve, but it is bound to 127.0.0.1:8001, a single address"
        ),
        "{}",
        a.output()
    );
    let _ = Duration::ZERO;
}

/// USR2 with a held socket: gunicorn's own re-exec cannot pass the socket on, so the
/// launcher starts a new gunicorn on it beside the old one, stops the old one once a worker
/// of the new one has answered, and vouches for the new generation only. Nothing is refused meanwhile.
#[test]
fn a_usr2_upgrade_on_a_held_socket_refuses_nothing() {
    let lan = Lan::new();
    let app = AppDir::new();
    let mut l = Proc::spawn(app.launcher_in(
        &lan.server,
        &[
            "run",
            "--hold-socket",
            "--",
            "gunicorn",
            "-w",
            "2",
            "--graceful-timeout",
            "2",
            "hello:app",
        ],
    ));
    let _cleanup = KillTreeOnDrop(l.pid());
    l.wait_line("verified:", LONG);
    let old = master_of(l.pid());
    // READY=1 needs one worker answering; the second may still be booting.
    wait_until("two workers", LONG, || children(old).len() == 2);
    let old_workers = children(old);
    let load = Load::start(&lan.client.name, server_addr(), THREADS);
    load.wait_answered(20, LONG);
    l.signal(Signal::SIGUSR2);
    l.wait_line("USR2: started a new gunicorn", LONG);
    let answered = l.wait_line(&format!("stopping the old master {old} gracefully"), LONG);
    assert!(
        answered.contains("a worker of the new gunicorn"),
        "{answered}"
    );
    l.wait_line("reloaded and verified:", LONG);
    // Only the new generation runs, under a new master, the launcher's only child.
    let mut old_tree = old_workers.clone();
    old_tree.push(old);
    assert!(
        alive(&old_tree).is_empty(),
        "old generation left: {:?}",
        alive(&old_tree)
    );
    let new = master_of(l.pid());
    assert_ne!(new, old);
    assert_eq!(children(l.pid()), vec![new]);
    load.wait_answered(20, LONG);
    let counts = load.stop();
    eprintln!("held socket, USR2 upgrade: {counts:?}");
    assert_eq!(counts.refused, 0, "{counts:?}");
    assert_eq!(counts.timed_out, 0, "{counts:?}");
    let tree = descendants(l.pid());
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait_exit(LONG).code(), Some(0), "{}", l.output());
    assert!(alive(&tree).is_empty(), "left behind: {:?}", alive(&tree));
}

/// A bad deploy under load: the app on disk replaced by one that raises at import, then
/// USR2. The new master says READY=1 as soon as it has bound, before any worker has
/// imported the app; its workers then exit 3. The old generation is stopped only once a new
/// worker has answered, so here it never is: it serves on, nothing is refused, and the
/// failure is in the log and in STATUS. The deploy fixed, the next USR2 goes through.
#[test]
fn a_usr2_upgrade_to_an_app_that_cannot_import_leaves_the_old_one_serving() {
    let lan = Lan::new();
    let app = AppDir::new();
    let notify = NotifySocket::new();
    let mut l = app.launcher_notifying(
        &lan.server,
        &[
            "run",
            "--hold-socket",
            "--",
            "gunicorn",
            "-w",
            "2",
            "--graceful-timeout",
            "2",
            "hello:app",
        ],
        &notify,
    );
    let _cleanup = KillTreeOnDrop(l.pid());
    notify.wait_for("READY=1", LONG);
    let old = master_of(l.pid());
    wait_until("two workers", LONG, || children(old).len() == 2);
    let old_workers = children(old);
    let load = Load::start(&lan.client.name, server_addr(), THREADS);
    load.wait_answered(20, LONG);

    let good = std::fs::read_to_string(app.path().join("hello.py")).unwrap();
    app.write("hello.py", "raise RuntimeError('a bad deploy')\n");
    l.signal(Signal::SIGUSR2);
    let failed = l.wait_line("USR2 upgrade failed", LONG);
    assert!(
        failed.contains("exited") && failed.contains("exit status 3"),
        "says the new master exited and what its workers died of: {failed}"
    );
    assert!(
        failed.contains(&format!("the old one (pid {old}) goes on serving")),
        "{failed}"
    );
    let status = notify.wait_for("USR2 upgrade failed", LONG);
    assert!(status.contains("STATUS="), "{status}");
    // The old generation is untouched and still the one serving.
    assert_eq!(master_of(l.pid()), old);
    assert_eq!(alive(&old_workers), old_workers);
    load.wait_answered(20, LONG);
    assert!(
        !l.output().contains("stopping the old master"),
        "{}",
        l.output()
    );

    // The deploy fixed: the next USR2 replaces the old generation.
    app.write("hello.py", &good);
    l.signal(Signal::SIGUSR2);
    l.wait_line("a worker of the new gunicorn", LONG);
    l.wait_line("reloaded and verified:", LONG);
    let new = master_of(l.pid());
    assert_ne!(new, old);
    assert!(alive(&[old]).is_empty(), "the old master stopped");
    load.wait_answered(20, LONG);
    let counts = load.stop();
    eprintln!("held socket, a broken USR2 deploy then a good one: {counts:?}");
    assert_eq!(counts.refused, 0, "{counts:?}");
    assert_eq!(counts.timed_out, 0, "{counts:?}");
    assert_eq!(notify.ignored(), 0);
    let tree = descendants(l.pid());
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait_exit(LONG).code(), Some(0), "{}", l.output());
    assert!(alive(&tree).is_empty(), "left behind: {:?}", alive(&tree));
}

/// A new gunicorn that never says READY=1 (here its `on_starting` hook hangs) is stopped at
/// the startup timeout, said in those words, and the old one serves on.
#[test]
fn a_usr2_master_silent_past_the_startup_timeout_is_stopped() {
    let ns = Netns::new();
    let app = AppDir::new();
    app.write(
        "launcher.toml",
        "[bind]\nhold_socket = true\n[verify]\nstartup_timeout = \"2s\"\n",
    );
    app.write(
        "hang.py",
        "import os, time\ndef on_starting(server):\n    while os.path.exists('hang'):\n        time.sleep(0.05)\n",
    );
    let mut l = Proc::spawn(app.launcher_in(
        &ns,
        &[
            "run",
            "--config",
            "launcher.toml",
            "--",
            "gunicorn",
            "-c",
            "hang.py",
            "hello:app",
        ],
    ));
    let _cleanup = KillTreeOnDrop(l.pid());
    l.wait_line("verified:", LONG);
    let old = master_of(l.pid());
    app.write("hang", "");
    l.signal(Signal::SIGUSR2);
    let started = l.wait_line("USR2: started a new gunicorn, pid ", LONG);
    let new: i32 = started
        .split("pid ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{started}"));
    let failed = l.wait_line("USR2 upgrade failed", LONG);
    assert!(
        failed.contains(&format!(
            "the new gunicorn (pid {new}) sent no READY=1 within the startup timeout; stopped it, the old one (pid {old}) goes on serving"
        )),
        "{failed}"
    );
    wait_until("the silent gunicorn to be gone", LONG, || {
        alive(&[new]).is_empty()
    });
    assert_eq!(master_of(l.pid()), old);
    assert_eq!(ns.http_status("http://127.0.0.1:8001/"), Ok(200));
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait_exit(LONG).code(), Some(0), "{}", l.output());
}

/// While the dead master's workers are cleared before a restart (here one is busy with a
/// long request and ignores TERM, so it is SIGKILLed after 5 s), the launcher waits for
/// their exit without spinning, then restarts gunicorn on the held socket.
#[test]
fn clearing_a_dead_masters_workers_waits_without_spinning() {
    let ns = Netns::new();
    let app = AppDir::new();
    app.write(
        "busy.py",
        "import time\ndef app(environ, start_response):\n    if environ['PATH_INFO'] == '/busy':\n        time.sleep(120)\n    start_response('200 OK', [])\n    return [b'ok']\n",
    );
    app.write(
        "gunicorn.conf.py",
        "import signal\ntimeout = 300\ndef post_fork(server, worker):\n    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n",
    );
    let mut l =
        Proc::spawn(app.launcher_in(&ns, &["run", "--hold-socket", "--", "gunicorn", "busy:app"]));
    let _cleanup = KillTreeOnDrop(l.pid());
    l.wait_line("verified:", LONG);
    let master = master_of(l.pid());
    let worker = children(master)[0];
    // Keep the worker busy: a request that takes two minutes.
    let mut busy = ns.cmd("curl");
    busy.args(["-s", "--max-time", "100", "http://127.0.0.1:8001/busy"]);
    let mut busy = busy.spawn().unwrap();
    wait_until("the worker to take the request", LONG, || {
        status_field(worker, "State").is_some_and(|s| s.starts_with('S'))
            && std::fs::read_to_string(format!("/proc/{worker}/wchan"))
                .is_ok_and(|w| w.contains("sleep"))
    });
    let before = cpu_ticks(l.pid()).unwrap();
    let killed = std::time::Instant::now();
    signal_pid(master, Signal::SIGKILL);
    l.wait_line("did not stop within 5s; killing them", LONG);
    l.wait_line("restarted gunicorn", LONG);
    let wall = killed.elapsed();
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .unwrap()
        .unwrap() as f64;
    let cpu = (cpu_ticks(l.pid()).unwrap() - before) as f64 / hz;
    assert!(wall >= Duration::from_secs(4), "{wall:?}: {}", l.output());
    // CPU time, not a share of the wall clock: a busy machine stretches the clearing but adds
    // nothing to the launcher's own CPU; a loop that spun would burn most of the 5 s.
    assert!(
        cpu < 1.0,
        "the launcher used {cpu:.2} s of CPU in {wall:?} of clearing: it spun"
    );
    l.wait_line("verified:", LONG);
    let _ = busy.kill();
    let _ = busy.wait();
    let tree = descendants(l.pid());
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait_exit(LONG).code(), Some(0), "{}", l.output());
    assert!(alive(&tree).is_empty(), "left behind: {:?}", alive(&tree));
}
