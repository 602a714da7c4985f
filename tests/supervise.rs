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
import os, signal

def on_starting(server):
    handle = server.signal
    master = os.getpid()

    def stamped(sig, frame):
        # A worker inherits this handler until it installs its own, and the master passes
        # USR1 on to its workers: only the master's own handler counts.
        if os.getpid() == master:
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
            // TTINs add workers; the final TERM should not wait out 30 s for them.
            "--graceful-timeout",
            "2",
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
    // Each was seen taken (handed over, and the master blocked since), none sent blind.
    assert!(!l.output().contains("has not taken"), "{}", l.output());
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

/// Launches `gunicorn -c stamp.py hello:app` under the launcher (extra `run` flags first)
/// and waits until it is verified.
fn stamped_launcher(ns: &Netns, app: &AppDir, flags: &[&str]) -> Proc {
    app.write("stamp.py", STAMP_HOOK);
    let mut args = vec!["run"];
    args.extend(flags);
    args.extend(["--", "gunicorn", "-c", "stamp.py", "hello:app"]);
    let mut l = Proc::spawn(app.launcher_in(ns, &args));
    l.wait_line("verified:", LONG);
    l
}

/// Every signal the launcher passes on reaches gunicorn's master as itself, counted by
/// gunicorn's own handler: HUP, USR1, TTIN, TTOU and a WINCH a process sent (a terminal's
/// own WINCH, from the kernel, is not an order: the transition's tests hold that), then
/// each stop signal, INT, QUIT and TERM, in a run of its own; and USR2 (forwarded: no held
/// socket).
#[test]
fn every_forwarded_signal_arrives_at_gunicorn_as_itself() {
    let ns = Netns::new();
    let app = AppDir::new();
    let mut l = stamped_launcher(&ns, &app, &[]);
    let _cleanup = KillTreeOnDrop(l.pid());
    let passed = [
        Signal::SIGHUP,
        Signal::SIGUSR1,
        Signal::SIGTTIN,
        Signal::SIGTTOU,
        Signal::SIGWINCH,
    ];
    for (n, sig) in passed.into_iter().enumerate() {
        if sig == Signal::SIGUSR1 {
            // After a HUP: passed on only once the reload is verified, none is lost.
            l.wait_line("reloaded and verified:", LONG);
        }
        l.signal(sig);
        wait_until(&format!("{sig} at gunicorn's master"), LONG, || {
            stamps(&app).len() == n + 1
        });
        assert_eq!(stamps(&app)[n], sig.as_str(), "{}", l.output());
    }
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait_exit(LONG).code(), Some(0), "{}", l.output());
    assert_eq!(stamps(&app).last().map(String::as_str), Some("SIGTERM"));
    for stop in [Signal::SIGINT, Signal::SIGQUIT, Signal::SIGUSR2] {
        let app = AppDir::new();
        let mut l = stamped_launcher(&ns, &app, &[]);
        let _cleanup = KillTreeOnDrop(l.pid());
        l.signal(stop);
        wait_until(&format!("{stop} at gunicorn's master"), LONG, || {
            !stamps(&app).is_empty()
        });
        assert_eq!(stamps(&app)[0], stop.as_str(), "{}", l.output());
        if stop == Signal::SIGUSR2 {
            l.signal(Signal::SIGTERM);
        }
        l.wait_exit(LONG);
    }
}

/// At most 64 signals are held while gunicorn has no handlers yet; the rest are dropped,
/// said once, and gunicorn's master gets exactly 64 (USR1: reopening the logs is harmless).
#[test]
fn at_most_64_held_signals_reach_gunicorn() {
    let ns = Netns::new();
    let app = AppDir::new();
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
    for _ in 0..70 {
        l.signal(Signal::SIGUSR1);
        wait_until("the launcher to take it", LONG, || {
            no_signal_pending(l.pid())
        });
    }
    l.wait_line(
        "more than 64 signals before gunicorn was up; dropping the rest",
        LONG,
    );
    app.write("go", "");
    l.wait_line("verified:", LONG);
    wait_until("64 USR1s at gunicorn's master", LONG, || {
        stamps(&app).len() >= 64
    });
    // gunicorn queues at most 5 signals between two turns of its loop and drops the rest, a
    // TERM among them (on a busy machine its loop may lag the last USR1s): TERM again until
    // the launcher ends, as an operator would.
    let ended = (0..5).find_map(|_| {
        l.signal(Signal::SIGTERM);
        l.exited_within(std::time::Duration::from_secs(5))
    });
    assert_eq!(ended.and_then(|e| e.code()), Some(0), "{}", l.output());
    let got = stamps(&app);
    assert_eq!(
        got.iter().filter(|s| *s == "SIGUSR1").count(),
        64,
        "{got:?}"
    );
    assert_eq!(l.output().matches("holding SIGUSR1").count(), 64);
}

/// Held signals go one at a time, each once the master has taken the last: the kernel
/// keeps one pending signal of a kind, so a second USR1 sent while the first is still
/// pending would be lost. Here gunicorn's master blocks USR1 from `on_starting` until
/// 0.2 s into `when_ready` (its handlers are installed in between, so the launcher starts
/// delivering): the five held USR1s must all reach its handler.
#[test]
fn a_held_signal_waits_until_the_master_has_taken_the_last() {
    let ns = Netns::new();
    let app = AppDir::new();
    app.write(
        "gunicorn.conf.py",
        &format!(
            "import os, signal, sys, time\nprint('config loading', file=sys.stderr, flush=True)\n\
             while not os.path.exists('go'):\n    time.sleep(0.02)\n{STAMP_HOOK}\n\
             stamp_starting = on_starting\n\
             def on_starting(server):\n    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])\n    \
             stamp_starting(server)\n\
             def when_ready(server):\n    time.sleep(0.2)\n    \
             signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGUSR1])\n"
        ),
    );
    let mut l = Proc::spawn(app.launcher_in(&ns, &["run", "--", "gunicorn", "hello:app"]));
    let _cleanup = KillTreeOnDrop(l.pid());
    l.wait_line("config loading", LONG);
    for _ in 0..5 {
        l.signal(Signal::SIGUSR1);
        wait_until("the launcher to take it", LONG, || {
            no_signal_pending(l.pid())
        });
    }
    app.write("go", "");
    l.wait_line("verified:", LONG);
    wait_until("5 USR1s at gunicorn's master", LONG, || {
        stamps(&app).len() >= 5
    });
    // gunicorn queues at most 5 signals between two turns of its loop and drops the rest:
    // the TERM goes once its loop has handled them.
    wait_until("gunicorn to handle the 5 USR1s", LONG, || {
        l.output().matches("Handling signal: usr1").count() >= 5
    });
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait_exit(LONG).code(), Some(0), "{}", l.output());
    let got = stamps(&app);
    assert_eq!(got[..5], ["SIGUSR1"; 5], "{got:?}");
    assert_eq!(got.iter().filter(|s| *s == "SIGUSR1").count(), 5, "{got:?}");
    assert_eq!(l.output().matches("holding SIGUSR1").count(), 5);
}

/// A gunicorn hook that lists its descriptors (number and target) into fds.txt at
/// `on_starting`, before gunicorn opens anything of its own.
const FDS_HOOK: &str = "import os\ndef on_starting(server):\n    fds = sorted(int(f) for f in os.listdir('/proc/self/fd'))\n    \
     links = []\n    for fd in fds:\n        try:\n            links.append('%d %s' % (fd, os.readlink('/proc/self/fd/%d' % fd)))\n        \
     except OSError:\n            pass\n    \
     with open('fds.txt', 'w') as f:\n        f.write('\\n'.join(links) + '\\n')\n";

/// What FDS_HOOK listed; the listing's own descriptor is closed by the time it is read
/// back, so it drops out.
fn fds_at_start(app: &AppDir) -> Vec<(i32, String)> {
    let fds = std::fs::read_to_string(app.path().join("fds.txt")).unwrap();
    fds.lines()
        .map(|l| {
            let (fd, target) = l.split_once(' ').unwrap();
            (fd.parse().unwrap(), target.to_string())
        })
        .collect()
}

/// What gunicorn is given, read from the real process: the variables the README says are
/// removed are absent, NOTIFY_SOCKET is the launcher's own, LISTEN_FDS=1 and LISTEN_PID its
/// own pid with the held socket; descriptors 0-2 and the held socket at 3 only (read by a
/// hook before gunicorn opens anything of its own); stdin is /dev/null though the
/// launcher's own stdin is a pipe.
#[test]
fn gunicorns_environment_and_descriptors_are_what_the_readme_says() {
    let ns = Netns::new();
    let app = AppDir::new();
    app.write("fds.py", FDS_HOOK);
    let mut cmd = app.launcher_in(
        &ns,
        &[
            "run",
            "--hold-socket",
            "--",
            "gunicorn",
            "-c",
            "fds.py",
            "hello:app",
        ],
    );
    for var in [
        "GUNICORN_FD",
        "GUNICORN_PID",
        "LISTEN_FDNAMES",
        "LISTEN_PID",
        "LISTEN_FDS",
    ] {
        cmd.env(var, "7");
    }
    cmd.env("NOTIFY_SOCKET", "/run/not-ours")
        .env("GUNICORN_CMD_ARGS", "--bind 127.0.0.1:9 --workers 1");
    cmd.stdin(std::process::Stdio::piped());
    let mut l = Proc::spawn_with_stdin(cmd);
    let _cleanup = KillTreeOnDrop(l.pid());
    l.wait_line("verified:", LONG);
    let master = master_of(l.pid());
    let environ = std::fs::read(format!("/proc/{master}/environ")).unwrap();
    let vars: Vec<String> = environ
        .split(|b| *b == 0)
        .map(|kv| String::from_utf8_lossy(kv).into_owned())
        .collect();
    let value = |name: &str| {
        vars.iter()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")).map(str::to_owned))
    };
    assert_eq!(value("GUNICORN_FD"), None, "{vars:?}");
    assert_eq!(value("GUNICORN_PID"), None);
    assert_eq!(value("LISTEN_FDNAMES"), None);
    assert_eq!(value("LISTEN_FDS").as_deref(), Some("1"));
    assert_eq!(value("LISTEN_PID"), Some(master.to_string()));
    assert!(
        value("NOTIFY_SOCKET")
            .unwrap()
            .starts_with("@gunicorn-launcher/")
    );
    assert_eq!(value("GUNICORN_CMD_ARGS").as_deref(), Some("--workers 1"));
    // At on_starting (before gunicorn opens anything of its own): 0-2 and the held socket.
    let fds = fds_at_start(&app);
    let numbers: Vec<i32> = fds.iter().map(|(fd, _)| *fd).collect();
    assert_eq!(numbers, [0, 1, 2, 3], "{fds:?}");
    assert_eq!(fds[0].1, "/dev/null", "stdin: {fds:?}");
    assert!(
        fds[3].1.starts_with("socket:"),
        "the held socket at 3: {fds:?}"
    );
    assert_eq!(
        std::fs::read_link(format!("/proc/{master}/fd/0")).unwrap(),
        std::path::Path::new("/dev/null")
    );
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait_exit(LONG).code(), Some(0), "{}", l.output());
}

/// On a kernel whose close_range has no CLOEXEC flag (before Linux 5.11, as in Debian 11)
/// the launcher marks its inherited descriptors one by one from /proc/self/fd. Made to
/// happen here by a seccomp filter that fails close_range with EINVAL as such a kernel
/// does: a descriptor the launcher inherits (9) still stays out of gunicorn, and
/// gunicorn's 0-2 are still there, its stderr the launcher's own.
#[test]
fn without_close_range_inherited_descriptors_still_stay_out_of_gunicorn() {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let ns = Netns::new();
    let app = AppDir::new();
    app.write("fds.py", FDS_HOOK);
    let stray_path = app.path().join("stray");
    let stray = std::fs::File::create(&stray_path).unwrap();
    let stray_fd = stray.as_raw_fd();
    let mut cmd = app.launcher_in(
        &ns,
        &[
            "run",
            "--hold-socket",
            "--",
            "gunicorn",
            "-c",
            "fds.py",
            "hello:app",
        ],
    );
    // SAFETY: between fork and exec the child only calls dup2: no allocation, no lock.
    unsafe {
        cmd.pre_exec(move || {
            if nix::libc::dup2(stray_fd, 9) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    with_syscall_refused(&mut cmd, nix::libc::SYS_close_range, &[], nix::libc::EINVAL);
    let mut l = Proc::spawn(cmd);
    let _cleanup = KillTreeOnDrop(l.pid());
    l.wait_line("verified:", LONG);
    drop(stray);
    let launcher_fd = |fd: i32| std::fs::read_link(format!("/proc/{}/fd/{fd}", l.pid()));
    assert_eq!(
        launcher_fd(9).unwrap(),
        stray_path,
        "the launcher inherited 9"
    );
    assert!(
        under_seccomp_filter(l.pid()),
        "the launcher runs under the filter"
    );
    let fds = fds_at_start(&app);
    let numbers: Vec<i32> = fds.iter().map(|(fd, _)| *fd).collect();
    assert_eq!(numbers, [0, 1, 2, 3], "{fds:?}");
    assert_eq!(
        std::path::PathBuf::from(&fds[2].1),
        launcher_fd(2).unwrap(),
        "gunicorn's stderr is the launcher's: {fds:?}"
    );
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait_exit(LONG).code(), Some(0), "{}", l.output());
}

/// A listener of gunicorn's own tree on a single address fails verification even beside a
/// wildcard one (here an `on_starting` hook adds `[::1]:8001` before gunicorn binds
/// `0.0.0.0:8001`, so every socket table with the wildcard in it has the hook's listener
/// too; with a held socket the wildcard is there first, and a look taken before the hook ran
/// could pass): some clients would be served by it alone.
#[test]
fn a_single_address_listener_beside_a_wildcard_one_fails_verification() {
    let ns = Netns::new();
    let app = AppDir::new();
    app.write(
        "extra.py",
        "import socket\nkeep = []\ndef on_starting(server):\n    \
         s = socket.socket(socket.AF_INET6)\n    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)\n    \
         s.bind(('::1', 8001))\n    s.listen(8)\n    keep.append(s)\n",
    );
    let mut l = Proc::spawn(app.launcher_in(
        &ns,
        &["run", "--", "gunicorn", "-c", "extra.py", "hello:app"],
    ));
    let _cleanup = KillTreeOnDrop(l.pid());
    assert_eq!(l.wait_exit(LONG).code(), Some(69), "{}", l.output());
    let out = l.output();
    assert!(
        out.contains("bound to a single address, not all interfaces: [::1]:8001"),
        "{out}"
    );
    assert!(!out.contains("verified:"), "{out}");
}

/// A stop while a crashed master is being replaced (its orphaned worker ignores TERM, so
/// the launcher waits for it) ends the launcher cleanly, exit 0, and starts nothing.
#[test]
fn a_term_while_a_crashed_master_is_replaced_stops_without_restarting() {
    let ns = Netns::new();
    let app = AppDir::new();
    app.write(
        "hooks.py",
        "import signal\ndef post_worker_init(worker):\n    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n    \
         print('worker ignores TERM', flush=True)\n",
    );
    let mut l = Proc::spawn(app.launcher_in(
        &ns,
        &[
            "run",
            "--hold-socket",
            "--",
            "gunicorn",
            "-c",
            "hooks.py",
            "hello:app",
        ],
    ));
    let _cleanup = KillTreeOnDrop(l.pid());
    // Either order: gunicorn may run post_worker_init before or after the worker answers.
    wait_until("verified, and the worker ignoring TERM", LONG, || {
        let out = l.output();
        out.contains("verified:") && out.contains("ignores TERM")
    });
    signal_pid(master_of(l.pid()), Signal::SIGKILL);
    l.wait_line(
        "the socket stays open and a new gunicorn starts on it",
        LONG,
    );
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait_exit(LONG).code(), Some(0), "{}", l.output());
    let out = l.output();
    assert!(
        out.contains("while gunicorn restarts after a crash: not restarting it"),
        "{out}"
    );
    assert!(!out.contains("restarted gunicorn"), "{out}");
}
