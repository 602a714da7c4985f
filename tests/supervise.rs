//! The supervisor's loop against the real gunicorn: signals read and passed
//! on while a verification waits for a slow app, held signals delivered one
//! by one, a reload vouched for only by the new generation, the launcher as
//! PID 1. gunicorn's master stamps every signal its handler receives (a
//! config hook), so arrival is asserted from gunicorn's side; each test has
//! its own network namespace and waits for events with deadlines.

mod common;
use common::*;
use nix::sys::signal::Signal;

/// A gunicorn config file whose `on_starting` hook (it runs just before the
/// master installs its signal handlers) wraps the master's handler: each
/// signal it receives is appended by name to `stamps.txt`, then handled as
/// usual.
const STAMP_HOOK: &str = "\
import signal

def on_starting(server):
    handle = server.signal

    def stamped(sig, frame):
        with open('stamps.txt', 'a') as f:
            f.write(signal.Signals(sig).name + '\\n')
        handle(sig, frame)

    server.signal = stamped
";

/// An app whose import waits until the file `go` exists (the test decides
/// when the workers have loaded it).
const GATED_APP: &str = "\
import os, sys, time
print('importing gated', file=sys.stderr, flush=True)
while not os.path.exists('go'):
    time.sleep(0.02)
from hello import app
";

fn stamps(app: &AppDir) -> Vec<String> {
    std::fs::read_to_string(app.path().join("stamps.txt"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// While the launcher verifies (its HTTP probe waits for a worker that is
/// still importing the app), three TTINs and a TERM sent to it each reach
/// gunicorn's master. With a probe that waits in the loop, the launcher
/// would not take a signal until the probe gave up (`probe_timeout`, here a
/// minute), and three TTINs would merge into one.
#[test]
fn signals_during_a_verification_all_reach_gunicorn() {
    let ns = Netns::new();
    let app = AppDir::new();
    app.write("stamp.py", STAMP_HOOK);
    app.write("gated.py", GATED_APP);
    app.write("launcher.toml", "[verify]\nprobe_timeout = \"60s\"\n");
    let mut l = Proc::spawn(app.launcher_in(
        &ns,
        &[
            "run",
            "--config",
            "launcher.toml",
            "--",
            "gunicorn",
            "-c",
            "stamp.py",
            "gated:app",
        ],
    ));
    let _cleanup = KillTreeOnDrop(l.pid());
    l.wait_line("importing gated", LONG);
    for n in 1..=3 {
        l.signal(Signal::SIGTTIN);
        wait_until("the launcher to take the TTIN", LONG, || {
            no_signal_pending(l.pid())
        });
        wait_until("gunicorn's master to receive it", LONG, || {
            stamps(&app).len() == n
        });
    }
    assert!(!l.output().contains("verified:"), "{}", l.output());
    l.signal(Signal::SIGTERM);
    wait_until("gunicorn's master to receive the TERM", LONG, || {
        stamps(&app).len() == 4
    });
    // Let the importing workers finish, so that the stop is graceful.
    app.write("go", "");
    let status = l.wait_exit(LONG);
    assert_eq!(
        stamps(&app),
        ["SIGTTIN", "SIGTTIN", "SIGTTIN", "SIGTERM"],
        "{}",
        l.output()
    );
    assert_eq!(status.code(), Some(0), "{}", l.output());
}

/// TTINs sent before gunicorn has its handlers are held, then delivered one
/// at a time: Python runs one handler for any number of the same signal that
/// arrive before it looks, so a burst would be one TTIN.
#[test]
fn signals_held_during_gunicorns_startup_each_arrive() {
    let ns = Netns::new();
    let app = AppDir::new();
    // Read before the master installs its handlers (and before
    // on_starting): gunicorn waits there until the file `go` exists.
    app.write(
        "gunicorn.conf.py",
        &format!(
            "import os, sys, time\nprint('config loading', file=sys.stderr, flush=True)\n\
             while not os.path.exists('go'):\n    time.sleep(0.02)\n{STAMP_HOOK}"
        ),
    );
    let mut l = Proc::spawn(app.launcher_in(&ns, &["run", "--", "gunicorn", "hello:app"]));
    let _cleanup = KillTreeOnDrop(l.pid());
    l.wait_line("config loading", LONG);
    for _ in 0..3 {
        l.signal(Signal::SIGTTIN);
        l.wait_line("holding SIGTTIN", LONG);
    }
    app.write("go", "");
    wait_until("three TTINs at gunicorn's master", LONG, || {
        stamps(&app).len() == 3
    });
    l.wait_line("verified:", LONG);
    let master = master_of(l.pid());
    wait_until("four workers", LONG, || children(master).len() == 4);
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait_exit(LONG).code(), Some(0), "{}", l.output());
    assert_eq!(
        stamps(&app),
        ["SIGTTIN", "SIGTTIN", "SIGTTIN", "SIGTERM"],
        "{}",
        l.output()
    );
}

/// After a HUP, READY=1 comes only once every worker of the previous
/// generation is gone: the probe that vouches for the reload can only have
/// been answered by a new worker.
#[test]
fn a_reload_is_ready_only_once_the_previous_workers_are_gone() {
    let ns = Netns::new();
    let app = AppDir::new();
    let notify = NotifySocket::new();
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
    let _cleanup = KillTreeOnDrop(l.pid());
    notify.wait_for("READY=1", LONG);
    let master = master_of(l.pid());
    wait_until("two workers", LONG, || children(master).len() == 2);
    let previous = children(master);
    l.signal(Signal::SIGHUP);
    let reloading = notify.wait_for("RELOADING=1", LONG);
    assert!(reloading.contains("STATUS=reloading"), "{reloading}");
    notify.wait_for("READY=1", LONG);
    assert!(
        alive(&previous).is_empty(),
        "READY=1 while workers of the previous generation run: {:?}",
        alive(&previous)
    );
    l.wait_line("reloaded and verified:", LONG);
    // Exited workers may linger as zombies until the master reaps them.
    let now = alive(&children(master));
    assert!(
        now.iter().all(|w| !previous.contains(w)),
        "{now:?} {previous:?}"
    );
    assert_eq!(ns.http_status("http://127.0.0.1:8001/"), Ok(200));
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait_exit(LONG).code(), Some(0), "{}", l.output());
}

/// A reload whose new workers never finish importing the app: the old
/// workers drain and go, nothing answers, and no READY=1 follows the
/// RELOADING=1; STATUS says it is reloading until `startup_timeout`, when
/// the launcher reports the failed reload and stops (on_failure = "fail").
#[test]
fn a_reload_whose_workers_hang_is_never_reported_ready() {
    let ns = Netns::new();
    let app = AppDir::new();
    let notify = NotifySocket::new();
    // Once `gate` exists, every new worker waits at import until it is gone.
    app.write(
        "reloading.py",
        "import os, sys, time\n\
         if os.path.exists('gate'):\n\
         \x20   print('hanging at import', file=sys.stderr, flush=True)\n\
         \x20   while os.path.exists('gate'):\n\
         \x20       time.sleep(0.02)\n\
         from hello import app\n",
    );
    app.write(
        "launcher.toml",
        "[verify]\nstartup_timeout = \"4s\"\nprobe_timeout = \"500ms\"\n",
    );
    let mut cmd = app.launcher_in(
        &ns,
        &[
            "run",
            "--config",
            "launcher.toml",
            "--",
            "gunicorn",
            "reloading:app",
        ],
    );
    cmd.env("NOTIFY_SOCKET", &notify.path);
    let mut l = Proc::spawn(cmd);
    let _cleanup = KillTreeOnDrop(l.pid());
    notify.wait_for("READY=1", LONG);
    let master = master_of(l.pid());
    let tree = descendants(l.pid());
    app.write("gate", "");
    l.signal(Signal::SIGHUP);
    notify.wait_for("RELOADING=1", LONG);
    l.wait_line("hanging at import", LONG);
    l.wait_line("reload not verified", LONG);
    // The failure is reported: let the new workers go, so the stop is quick.
    std::fs::remove_file(app.path().join("gate")).unwrap();
    let status = l.wait_exit(LONG);
    let after: Vec<String> = notify.drain();
    assert!(
        after.iter().all(|m| !m.lines().any(|f| f == "READY=1")),
        "READY=1 after RELOADING=1: {after:?}"
    );
    assert!(
        after
            .iter()
            .any(|m| m.contains("STATUS=reloading gunicorn")
                || m.contains("STATUS=reload not verified")),
        "{after:?}"
    );
    assert!(
        after
            .iter()
            .any(|m| m.contains("STATUS=reload not verified")),
        "{after:?}"
    );
    assert_eq!(status.code(), Some(69), "{}", l.output());
    assert!(reaped(master));
    assert!(alive(&tree).is_empty(), "left behind: {:?}", alive(&tree));
}

/// As PID 1 of a PID namespace (a container), a TERM that gunicorn dies of
/// before it has its handlers cannot end the launcher by the same signal
/// (the kernel discards it for PID 1): it exits 143 instead, never crashes.
#[test]
fn as_pid_1_a_term_during_startup_ends_in_exit_143() {
    let ns = Netns::new();
    let app = AppDir::new();
    app.write(
        "gunicorn.conf.py",
        "import sys, time\nprint('config loading', file=sys.stderr, flush=True)\ntime.sleep(30)\n",
    );
    let mut l = Proc::spawn(app.launcher_under(
        &ns,
        &["unshare", "--pid", "--fork", "--kill-child", "--mount-proc"],
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
    ));
    l.wait_line("config loading", LONG);
    let launcher = children(l.pid())[0];
    let nspid = status_field(launcher, "NSpid").unwrap_or_default();
    assert_eq!(nspid.split_whitespace().last(), Some("1"), "{nspid:?}");
    let tree = descendants(launcher);
    signal_pid(launcher, Signal::SIGTERM);
    let status = l.wait_exit(LONG);
    assert_eq!(status.code(), Some(143), "{status:?}: {}", l.output());
    assert!(alive(&tree).is_empty(), "left behind: {:?}", alive(&tree));
}

/// A HUP that gunicorn never acts on (gunicorn <= 23 drops signals while
/// five wait; here a hook swallows it): no new worker ever comes, the
/// workers that served before still serve. After the startup timeout the
/// launcher says so, verifies them, and READY=1 carries the reason.
#[test]
fn a_reload_that_gunicorn_ignores_is_reported_not_vouched_for() {
    let ns = Netns::new();
    let app = AppDir::new();
    let notify = NotifySocket::new();
    app.write(
        "deaf.py",
        "import signal\n\
         def on_starting(server):\n\
         \x20   handle = server.signal\n\
         \x20   def deaf(sig, frame):\n\
         \x20       if sig != signal.SIGHUP:\n\
         \x20           handle(sig, frame)\n\
         \x20   server.signal = deaf\n",
    );
    app.write("launcher.toml", "[verify]\nstartup_timeout = \"2s\"\n");
    let mut cmd = app.launcher_in(
        &ns,
        &[
            "run",
            "--config",
            "launcher.toml",
            "--",
            "gunicorn",
            "-c",
            "deaf.py",
            "hello:app",
        ],
    );
    cmd.env("NOTIFY_SOCKET", &notify.path);
    let mut l = Proc::spawn(cmd);
    let _cleanup = KillTreeOnDrop(l.pid());
    notify.wait_for("READY=1", LONG);
    let master = master_of(l.pid());
    wait_until("the worker", LONG, || children(master).len() == 1);
    let workers = children(master);
    l.signal(Signal::SIGHUP);
    notify.wait_for("RELOADING=1", LONG);
    let ready = notify.wait_for("READY=1", LONG);
    assert!(
        ready.contains("STATUS=verified:") && ready.contains("did not act on the signal"),
        "{ready}"
    );
    assert!(
        l.wait_line("still running after 2s", LONG)
            .contains("warning"),
        "{}",
        l.output()
    );
    assert_eq!(alive(&children(master)), workers);
    assert_eq!(ns.http_status("http://127.0.0.1:8001/"), Ok(200));
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait_exit(LONG).code(), Some(0), "{}", l.output());
}
