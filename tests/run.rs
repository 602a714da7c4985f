//! `run` against the real pinned gunicorn: binds, signals, supervision, exit
//! codes. Each test has its own network namespace (so port 8001 is free and
//! nothing listens on the host).

mod common;
use common::*;
use nix::sys::signal::Signal;
use std::time::Duration;

fn start(app: &AppDir, ns: &Netns, args: &[&str]) -> Proc {
    Proc::spawn(app.launcher_in(ns, args))
}

#[test]
fn every_loopback_bind_collapses_into_one_all_interfaces_listener() {
    let ns = Netns::new();
    let app = AppDir::new();
    app.write("gunicorn.conf.py", "bind = '127.0.0.1:8001'\nworkers = 1\n");
    let mut cmd = app.launcher_in(
        &ns,
        &[
            "run",
            "--",
            "gunicorn",
            "-b",
            "127.0.0.1:8001",
            "--bind=127.0.0.1:8002",
            "-b127.0.0.1:8003",
            "--bi",
            "127.0.0.1:8004",
            "-Rb",
            "127.0.0.1:8005",
            "hello:app",
        ],
    );
    cmd.env("GUNICORN_CMD_ARGS", "--bind 127.0.0.1:8001 --workers 1");
    let mut l = Proc::spawn(cmd);
    l.wait_line("verified:", LONG);
    // The kernel: exactly one listener, on all interfaces.
    let all: Vec<String> = ns
        .cmd("ss")
        .args(["-ltnH"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter_map(|l| l.split_whitespace().nth(3).map(String::from))
                .collect()
        })
        .unwrap();
    assert_eq!(all, vec!["0.0.0.0:8001".to_string()], "{}", l.output());
    assert_eq!(ns.http_status("http://127.0.0.1:8001/"), Ok(200));
    // Each change was logged once, plainly.
    let out = l.output();
    for spelling in [
        "-b 127.0.0.1:8001",
        "--bind=127.0.0.1:8002",
        "-b127.0.0.1:8003",
        "--bi 127.0.0.1:8004",
        "-b 127.0.0.1:8005",
    ] {
        let line = format!("replaced {spelling} with 0.0.0.0:8001");
        assert_eq!(
            out.matches(&line).count(),
            1,
            "{line:?} not logged once in:\n{out}"
        );
    }
    assert!(
        out.contains("replaced --bind 127.0.0.1:8001 in GUNICORN_CMD_ARGS with 0.0.0.0:8001"),
        "{out}"
    );
    let tree = descendants(l.pid());
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait_exit(LONG).code(), Some(0), "{}", l.output());
    assert!(alive(&tree).is_empty(), "left behind: {:?}", alive(&tree));
}

#[test]
fn hup_reloads_workers_ttin_adds_one_term_stops_cleanly() {
    let ns = Netns::new();
    let app = AppDir::new();
    let mut l = start(
        &app,
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
    l.wait_line("verified:", LONG);
    let master = master_of(l.pid());
    wait_until("two workers", LONG, || children(master).len() == 2);
    let before = children(master);

    l.signal(Signal::SIGHUP);
    wait_until("HUP to replace both workers", LONG, || {
        let now = children(master);
        now.len() == 2 && now.iter().all(|p| !before.contains(p))
    });
    l.wait_line("verified:", LONG);
    assert!(
        alive(&[l.pid(), master]).len() == 2,
        "launcher and master must live on"
    );
    assert_eq!(ns.http_status("http://127.0.0.1:8001/"), Ok(200));

    l.signal(Signal::SIGTTIN);
    wait_until("TTIN to add a third worker", LONG, || {
        children(master).len() == 3
    });

    let tree = descendants(l.pid());
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait_exit(LONG).code(), Some(0), "{}", l.output());
    assert!(alive(&tree).is_empty(), "left behind: {:?}", alive(&tree));
}

#[test]
fn sigkill_to_the_master_makes_the_launcher_exit_137_and_clean_up() {
    let ns = Netns::new();
    let app = AppDir::new();
    let mut l = start(
        &app,
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
    l.wait_line("verified:", LONG);
    let master = master_of(l.pid());
    let tree = descendants(l.pid());
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(master), Signal::SIGKILL).unwrap();
    assert_eq!(l.wait_exit(LONG).code(), Some(137), "{}", l.output());
    assert!(alive(&tree).is_empty(), "left behind: {:?}", alive(&tree));
}

#[test]
fn sigkill_to_the_launcher_leaves_no_gunicorn_within_two_seconds() {
    let ns = Netns::new();
    let app = AppDir::new();
    let mut l = start(
        &app,
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
    l.wait_line("verified:", LONG);
    let master = master_of(l.pid());
    wait_until("two workers", LONG, || children(master).len() == 2);
    let tree = descendants(l.pid());
    assert_eq!(tree.len(), 3, "master and two workers: {tree:?}");
    l.signal(Signal::SIGKILL);
    l.wait_exit(LONG);
    wait_until(
        "the whole gunicorn tree to be gone (2 s)",
        Duration::from_secs(2),
        || alive(&tree).is_empty(),
    );
}

/// USR2 forwarded (no held socket): gunicorn re-executes itself; its new master (the old
/// one's child, with `GUNICORN_PID=<old>`) is tried like the launcher's own: once one of its
/// workers has answered, the old master is stopped, the new one adopted and verified.
#[test]
fn a_forwarded_usr2_stops_the_old_master_once_a_new_worker_answers() {
    let ns = Netns::new();
    let app = AppDir::new();
    let mut l = start(
        &app,
        &ns,
        &["run", "--", "gunicorn", "-w", "1", "hello:app"],
    );
    l.wait_line("verified:", LONG);
    let old = master_of(l.pid());
    l.signal(Signal::SIGUSR2);
    let answered = l.wait_line(&format!("stopping the old master {old} gracefully"), LONG);
    // "... a worker of the new gunicorn (pid N) answered; ..."
    let new: i32 = answered
        .split("the new gunicorn (pid ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no new master's pid in {answered:?}"));
    assert_ne!(new, old);
    l.wait_line(&format!("adopted the new master {new}"), LONG);
    wait_until("the old master to be reaped", LONG, || {
        alive(&[old]).is_empty() && parent(new) == Some(l.pid())
    });
    l.wait_line("verified:", LONG);
    assert_eq!(ns.http_status("http://127.0.0.1:8001/"), Ok(200));
    let tree = descendants(l.pid());
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait_exit(LONG).code(), Some(0), "{}", l.output());
    assert!(alive(&tree).is_empty(), "left behind: {:?}", alive(&tree));
    assert!(zombies_of(l.pid()).is_empty());
}

/// The same on a kernel the launcher cannot ask through sock_diag (its netlink sockets
/// refused by a seccomp filter, as on a kernel built without them): which generation took a trial
/// connection cannot be read, so the new master is adopted once a worker of its own exists
/// and the trial got an answer.
#[test]
fn without_sock_diag_a_forwarded_usr2_is_still_adopted() {
    let ns = Netns::new();
    let app = AppDir::new();
    let mut cmd = app.launcher_in(&ns, &["run", "--", "gunicorn", "-w", "1", "hello:app"]);
    with_syscall_refused(
        &mut cmd,
        nix::libc::SYS_socket,
        &[
            (0, nix::libc::AF_NETLINK as u64),
            (2, nix::libc::NETLINK_SOCK_DIAG as u64),
        ],
        nix::libc::EPROTONOSUPPORT,
    );
    let mut l = Proc::spawn(cmd);
    let _cleanup = KillTreeOnDrop(l.pid());
    l.wait_line("verified:", LONG);
    assert!(under_seccomp_filter(l.pid()));
    let old = master_of(l.pid());
    l.signal(Signal::SIGUSR2);
    l.wait_line(&format!("stopping the old master {old} gracefully"), LONG);
    l.wait_line("adopted the new master", LONG);
    wait_until("the old master to be reaped", LONG, || {
        alive(&[old]).is_empty()
    });
    assert_eq!(ns.http_status("http://127.0.0.1:8001/"), Ok(200));
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait_exit(LONG).code(), Some(0), "{}", l.output());
}

/// The same with a bad deploy: gunicorn's new master binds, says READY=1, its workers exit
/// 3 and it exits. The launcher says so (log and STATUS) and the old master serves on.
#[test]
fn a_forwarded_usr2_to_an_app_that_cannot_import_leaves_the_old_one_serving() {
    let ns = Netns::new();
    let app = AppDir::new();
    let notify = NotifySocket::new();
    let mut l = app.launcher_notifying(
        &ns,
        &["run", "--", "gunicorn", "-w", "1", "hello:app"],
        &notify,
    );
    let _cleanup = KillTreeOnDrop(l.pid());
    notify.wait_for("READY=1", LONG);
    let old = master_of(l.pid());
    app.write("hello.py", "raise RuntimeError('a bad deploy')\n");
    l.signal(Signal::SIGUSR2);
    let failed = l.wait_line("USR2 upgrade failed", LONG);
    assert!(failed.contains("exited"), "{failed}");
    assert!(
        failed.contains(&format!("the old one (pid {old}) goes on serving")),
        "{failed}"
    );
    notify.wait_for("USR2 upgrade failed", LONG);
    assert_eq!(master_of(l.pid()), old);
    assert_eq!(ns.http_status("http://127.0.0.1:8001/"), Ok(200));
    assert!(!l.output().contains("adopted"), "{}", l.output());
    let tree = descendants(l.pid());
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait_exit(LONG).code(), Some(0), "{}", l.output());
    assert!(alive(&tree).is_empty(), "left behind: {:?}", alive(&tree));
}

#[test]
fn an_app_that_cannot_import_passes_gunicorns_status_through_and_explains_it() {
    let ns = Netns::new();
    let app = AppDir::new();
    app.write("broken.py", "raise ImportError('no such thing')\n");
    // Without --preload the worker fails to boot: gunicorn exits 3.
    let mut l = start(&app, &ns, &["run", "--", "gunicorn", "broken:app"]);
    assert_eq!(l.wait_exit(LONG).code(), Some(3), "{}", l.output());
    assert!(l.output().contains("WORKER_BOOT_ERROR"), "{}", l.output());
    // A module without the named callable: the worker reports an app load
    // error and gunicorn exits 4.
    app.write("noapp.py", "x = 1\n");
    let mut l = start(&app, &ns, &["run", "--", "gunicorn", "noapp:app"]);
    assert_eq!(l.wait_exit(LONG).code(), Some(4), "{}", l.output());
    assert!(l.output().contains("APP_LOAD_ERROR"), "{}", l.output());
}

#[test]
fn missing_or_unexecutable_gunicorn_gives_127_or_126_with_a_hint() {
    let app = AppDir::new();
    let out = std::process::Command::new(launcher())
        .args(["run", "--", "/nonexistent/venv/bin/gunicorn", "app:app"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/venv/bin/gunicorn") && err.contains("virtualenv"),
        "{err}"
    );

    let out = std::process::Command::new(launcher())
        .args(["run", "--", "gunicorn", "app:app"])
        .env("PATH", app.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not on PATH"));

    let fake = app.write("gunicorn", "#!/bin/sh\nexit 0\n");
    let out = std::process::Command::new(launcher())
        .args(["run", "--"])
        .arg(&fake)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(126));
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod +x"));
}

#[test]
fn each_bad_config_exits_78_naming_the_place_and_starts_nothing() {
    let app = AppDir::new();
    let cases = [
        ("[gunicorn]\nwrokers = 3\n", ":2:1: key `gunicorn.wrokers`"),
        (
            "[bind]\nhost = \"127.0.0.1\"\n",
            ":2:8: key `bind.host`: 127.0.0.1 is a loopback",
        ),
        ("[bind]\nport = 0\n", ":2:8: key `bind.port`"),
        ("[bind]\nport = 70000\n", ":2:8: key `bind.port`"),
        ("[bind]\nport = \"8001\"\n", ":2:8: key `bind.port`"),
        (
            "[verify]\non_failure = \"shrug\"\n",
            ":2:14: key `verify.on_failure`",
        ),
        ("[bind\n", ":1:"),
    ];
    for (text, expect) in cases {
        let path = app.write("bad.toml", text);
        let out = std::process::Command::new(launcher())
            .args(["run", "--config"])
            .arg(&path)
            .env("PATH", format!("{}/bin", venv().display()))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{text:?}: {err}");
        assert!(
            err.contains(&format!("{}{expect}", path.display())),
            "{text:?}: {err}"
        );
        assert!(!err.contains("started gunicorn"), "{err}");
    }
    let out = std::process::Command::new(launcher())
        .args(["run", "--config", "/nonexistent.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.toml: cannot read"));
}

#[test]
fn not_gunicorn_is_refused_as_a_usage_error() {
    let out = std::process::Command::new(launcher())
        .args(["run", "--", "sh", "-c", "sleep 1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`sh` is not gunicorn"));
}

#[test]
fn print_command_shows_argv_and_environment_and_starts_nothing() {
    let out = std::process::Command::new(launcher())
        .args([
            "print-command",
            "--port",
            "9000",
            "--",
            "gunicorn",
            "-D",
            "-b",
            "127.0.0.1:8001",
            "app:app",
        ])
        .env("PATH", format!("{}/bin", venv().display()))
        .env("LISTEN_FDS", "1")
        .env("GUNICORN_CMD_ARGS", "-w 2 -b 127.0.0.1:1")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let argv: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("argv: "))
        .collect();
    assert_eq!(argv, ["gunicorn", "--bind", "0.0.0.0:9000", "app:app"]);
    assert!(text.contains("env-unset: LISTEN_FDS"), "{text}");
    assert!(text.contains("env-set: GUNICORN_CMD_ARGS=-w 2"), "{text}");
}

#[test]
fn the_python_launch_forms_run_real_gunicorn() {
    let venv = venv();
    let python = venv.join("bin/python3").to_string_lossy().into_owned();
    let script = venv.join("bin/gunicorn").to_string_lossy().into_owned();
    for form in [
        vec![python.as_str(), "-m", "gunicorn"],
        vec![python.as_str(), "-u", script.as_str()],
    ] {
        let ns = Netns::new();
        let app = AppDir::new();
        let mut args = vec!["run", "--"];
        args.extend(form.iter().copied());
        args.extend(["-b", "127.0.0.1:8001", "hello:app"]);
        let mut l = start(&app, &ns, &args);
        l.wait_line("verified:", LONG);
        assert_eq!(
            ns.listeners(8001),
            vec!["0.0.0.0:8001".to_string()],
            "{form:?}"
        );
        l.signal(Signal::SIGTERM);
        assert_eq!(
            l.wait_exit(LONG).code(),
            Some(0),
            "{form:?}: {}",
            l.output()
        );
    }
}

/// In a terminal, Ctrl-C reaches gunicorn once (through the launcher), not
/// twice (once from the terminal, once forwarded): gunicorn runs in its own
/// process group, outside the terminal's foreground group.
#[test]
fn ctrl_c_in_a_terminal_stops_gunicorn_once() {
    use std::io::Write;
    let ns = Netns::new();
    let app = AppDir::new();
    let inner = format!(
        "cd {} && XDG_RUNTIME_DIR={}/run PATH={}/bin:$PATH exec ip netns exec {} {} run -- gunicorn hello:app",
        app.path().display(),
        app.path().display(),
        venv().display(),
        ns.name,
        launcher().display()
    );
    // `script` gives the launcher a real pseudo-terminal as its controlling
    // terminal; a 0x03 byte written to it is the terminal's Ctrl-C.
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qfec", &inner, "/dev/null"]);
    cmd.stdin(std::process::Stdio::piped());
    let mut l = Proc::spawn_with_stdin(cmd);
    l.wait_line("verified:", LONG);
    l.stdin().write_all(b"\x03").unwrap();
    l.stdin().flush().unwrap();
    let st = l.wait_exit(LONG);
    let out = l.output();
    assert_eq!(out.matches("Handling signal: int").count(), 1, "{out}");
    assert_eq!(st.code(), Some(0), "{out}");
}

/// `daemon = True` in a config file cannot be overridden from the command
/// line: gunicorn forks away. The launcher says so, stops what was left
/// behind (re-parented to it as subreaper) and fails.
#[test]
fn a_config_file_that_daemonizes_gunicorn_is_caught_and_cleaned_up() {
    let ns = Netns::new();
    let app = AppDir::new();
    app.write("gunicorn.conf.py", "daemon = True\n");
    let mut l = start(&app, &ns, &["run", "--", "gunicorn", "hello:app"]);
    assert_eq!(l.wait_exit(LONG).code(), Some(69), "{}", l.output());
    assert!(l.output().contains("daemon = True"), "{}", l.output());
    wait_until("the daemonized gunicorn to be gone", LONG, || {
        ns.listeners(8001).is_empty()
    });
}

/// A gunicorn stopped before its signal handlers exist dies of the forwarded
/// TERM; the launcher then ends itself by TERM too (systemd counts that as a
/// clean stop; exit 143 would be Result=exit-code).
#[test]
fn a_stop_before_gunicorn_has_handlers_ends_the_launcher_by_the_same_signal() {
    use std::os::unix::process::ExitStatusExt;
    let ns = Netns::new();
    let app = AppDir::new();
    // The config file is read before gunicorn installs its handlers.
    app.write(
        "gunicorn.conf.py",
        "import sys, time\nprint('config loading', file=sys.stderr, flush=True)\ntime.sleep(30)\n",
    );
    let mut l = start(&app, &ns, &["run", "--", "gunicorn", "hello:app"]);
    l.wait_line("config loading", LONG);
    let tree = descendants(l.pid());
    l.signal(Signal::SIGTERM);
    let st = l.wait_exit(LONG);
    assert_eq!(
        st.signal(),
        Some(Signal::SIGTERM as i32),
        "{st:?}: {}",
        l.output()
    );
    assert!(alive(&tree).is_empty());
}

/// A HUP (or USR1, USR2, TTIN, TTOU) that arrives before gunicorn has its
/// signal handlers would kill or stop it; the launcher holds it until
/// gunicorn is up, then delivers it.
#[test]
fn a_reload_signal_during_gunicorns_startup_is_held_until_it_is_up() {
    let ns = Netns::new();
    let app = AppDir::new();
    // The config file is read before gunicorn installs its handlers.
    app.write(
        "gunicorn.conf.py",
        "import sys, time\nprint('config loading', file=sys.stderr, flush=True)\ntime.sleep(1)\n",
    );
    let mut l = start(&app, &ns, &["run", "--", "gunicorn", "hello:app"]);
    l.wait_line("config loading", LONG);
    l.signal(Signal::SIGHUP);
    l.wait_line("holding SIGHUP", LONG);
    l.wait_line("reloading gunicorn (HUP)", LONG);
    l.wait_line("verified:", LONG);
    // The reload done: gunicorn said "Hang up" and booted the reload's
    // worker (the second "Booting worker"). gunicorn <= 23 told to stop in
    // the middle of a reload waits out its whole graceful timeout.
    wait_until("gunicorn to finish the HUP reload", LONG, || {
        let out = l.output();
        out.contains("Hang up") && out.matches("Booting worker").count() >= 2
    });
    assert_eq!(ns.http_status("http://127.0.0.1:8001/"), Ok(200));
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait_exit(LONG).code(), Some(0), "{}", l.output());
}

/// With every netlink socket refused (a seccomp filter, as some containers have), the
/// host's addresses cannot be listed and the firewall cannot be read: the launcher still
/// verifies over loopback at once and says what it could not do, instead of retrying in
/// silence until the startup timeout. `ip netns exec` itself needs netlink, so the
/// launcher enters the namespace through `nsenter`.
#[test]
fn with_every_netlink_socket_refused_the_verdict_says_only_loopback_was_probed() {
    let ns = Netns::new();
    let app = AppDir::new();
    let mut entered = std::process::Command::new("nsenter");
    entered
        .arg(format!("--net=/run/netns/{}", ns.name))
        .arg(launcher())
        .args(["run", "--", "gunicorn", "-w", "1", "hello:app"]);
    let mut cmd = app.launcher_env_for(entered);
    with_syscall_refused(
        &mut cmd,
        nix::libc::SYS_socket,
        &[(0, nix::libc::AF_NETLINK as u64)],
        nix::libc::EPROTONOSUPPORT,
    );
    let mut l = Proc::spawn(cmd);
    let _cleanup = KillTreeOnDrop(l.pid());
    let verified = l.wait_line("verified:", LONG);
    assert!(verified.contains("HTTP 200 from 127.0.0.1"), "{verified}");
    assert!(
        verified.contains(
            "only loopback was probed, as this host's addresses could not be listed: Protocol not supported"
        ),
        "{verified}"
    );
    assert!(verified.contains("firewall not read"), "{verified}");
    assert_eq!(ns.http_status("http://127.0.0.1:8001/"), Ok(200));
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait_exit(LONG).code(), Some(0), "{}", l.output());
}
