//! Bad input never becomes a restart loop, a false verdict or a moved
//! service: values that cannot work are refused where they are read (78 from
//! a config, 2 from the command line) with the reason, a command the kernel
//! would refuse is refused before exec, and failures say what happened (a
//! worker killed at boot by a signal, named with the signal and how often;
//! no hint about a port that was free).

mod common;
use common::cgroup::MemoryCgroup;
use common::*;
use std::process::Command;

fn launcher_with(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(launcher())
        .args(args)
        .env("PATH", format!("{}/bin:/usr/bin:/bin", venv().display()))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Each value that cannot work, from a config file, for `run` and
/// `print-command` alike: exit 78, the file, line, column and key, and why;
/// nothing started.
#[test]
fn values_that_cannot_work_are_config_errors_for_run_and_print_command() {
    let app = AppDir::new();
    let cases = [
        (
            "[verify]\nstartup_timeout = \"0s\"\n",
            ":2:19: key `verify.startup_timeout`: \"0s\" is zero: gunicorn could never be verified",
        ),
        (
            "[verify]\nprobe_timeout = \"0s\"\n",
            ":2:17: key `verify.probe_timeout`: \"0s\" is zero: no HTTP probe could ever be answered",
        ),
        (
            "[supervise]\nstop_timeout = \"0s\"\n",
            ":2:16: key `supervise.stop_timeout`: \"0s\" is zero: every stop would be a SIGKILL",
        ),
        (
            "[gunicorn]\napp = \"\"\n",
            ":2:7: key `gunicorn.app`: empty; give the WSGI app",
        ),
        (
            "[gunicorn]\ncommand = \"\"\n",
            ":2:11: key `gunicorn.command`: empty",
        ),
        (
            "[verify]\npath = \"nopath\"\n",
            ":2:8: key `verify.path`: \"nopath\" is not a request path",
        ),
    ];
    for (text, expect) in cases {
        let path = app.write("bad.toml", text);
        let config = path.to_str().unwrap();
        for verb in ["run", "print-command"] {
            let (code, out, err) = launcher_with(&[verb, "--config", config]);
            assert_eq!(code, 78, "{verb} {text:?}: {err}");
            assert!(
                err.contains(&format!("{config}{expect}")),
                "{verb} {text:?}: {err}"
            );
            assert!(
                !err.contains("started gunicorn") && out.is_empty(),
                "{err}{out}"
            );
        }
    }
}

/// An argument longer than the kernel takes (128 KiB) is refused before
/// exec, naming the limit: never "not executable" (126).
#[test]
fn an_argument_the_kernel_would_refuse_is_refused_before_exec() {
    let app = AppDir::new();
    let long = "x".repeat(200_000);
    let path = app.write("long.toml", &format!("[gunicorn]\napp = \"{long}\"\n"));
    for verb in ["run", "print-command"] {
        let (code, out, err) = launcher_with(&[verb, "--config", path.to_str().unwrap()]);
        assert_eq!(code, 78, "{verb}: {err}");
        assert!(
            err.contains("argument 3 of the gunicorn command is 200000 bytes long")
                && err.contains("131071 bytes (MAX_ARG_STRLEN)"),
            "{verb}: {err}"
        );
        assert!(!err.contains("not executable") && out.is_empty(), "{err}");
    }
}

/// `check`'s flags follow the config's rules, as usage errors (2): a path
/// that is not absolute or has a space, a zero timeout, a host name that is
/// not a name.
#[test]
fn check_flags_that_cannot_work_are_usage_errors() {
    for (args, expect) in [
        (
            &["--path", "nopath"][..],
            "\"nopath\" is not a request path",
        ),
        (&["--path", "/x y"], "\"/x y\" is not a request path"),
        (&["--timeout", "0s"], "\"0s\" is zero"),
        (&["--timeout", "soon"], "\"soon\" is not a duration"),
        (&["--host-name", "http://solvit"], "is not a host name"),
    ] {
        let mut argv = vec!["check"];
        argv.extend(args);
        let (code, out, err) = launcher_with(&argv);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(expect), "{args:?}: {err}");
        assert!(out.is_empty(), "{out}");
    }
}

/// A worker that segfaults at every boot: gunicorn restarts it again and
/// again, nothing ever answers; when the startup timeout passes the
/// launcher says of what the workers died, and how often.
#[test]
fn workers_killed_at_boot_are_named_with_the_signal_and_how_often() {
    let ns = Netns::new();
    let app = AppDir::new();
    app.write(
        "crash.py",
        "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n",
    );
    app.write(
        "launcher.toml",
        "[verify]\nstartup_timeout = \"4s\"\nprobe_timeout = \"500ms\"\n",
    );
    let mut l = Proc::spawn(app.launcher_in(
        &ns,
        &[
            "run",
            "--config",
            "launcher.toml",
            "--",
            "gunicorn",
            "crash:app",
        ],
    ));
    let _cleanup = KillTreeOnDrop(l.pid());
    assert_eq!(l.wait_exit(LONG).code(), Some(69), "{}", l.output());
    let out = l.output();
    let failure = out
        .lines()
        .find(|line| line.contains("verification failed"))
        .unwrap_or_else(|| panic!("{out}"));
    let died = failure
        .split("gunicorn's workers kept dying: ")
        .nth(1)
        .unwrap_or_else(|| panic!("{failure}"));
    let n: usize = died.split(' ').next().unwrap().parse().unwrap();
    assert!(n >= 2, "{failure}");
    assert!(died.contains("killed by SIGSEGV"), "{failure}");
}

/// A worker that allocates past its service's memory limit at every boot: the kernel's OOM
/// killer ends it, and the failure counts those kills from the launcher's own memory cgroup
/// (a real one, with a real limit: the cgroup v2 `memory.events` or, on a host still on the
/// v1 hierarchy, the memory controller's `memory.oom_control`).
#[test]
fn workers_killed_by_the_oom_killer_are_counted_from_the_cgroup() {
    let Some(cgroup) = MemoryCgroup::new(96 << 20) else {
        panic!(
            "no writable memory cgroup here (neither a v2 cgroup with the memory controller nor \
             the v1 memory hierarchy): this test needs one, as systemd units have"
        );
    };
    let app = AppDir::new();
    // Touch every page (bytes * n writes them), so the memory is charged at once.
    app.write(
        "hog.py",
        "hog = b'x' * (400 << 20)\ndef app(e, r):\n    pass\n",
    );
    app.write(
        "launcher.toml",
        "[verify]\nstartup_timeout = \"6s\"\nprobe_timeout = \"500ms\"\n",
    );
    let mut launcher = Command::new(common::launcher());
    launcher.args([
        "run",
        "--config",
        "launcher.toml",
        "--",
        "gunicorn",
        "hog:app",
    ]);
    let launcher = app.launcher_env_for(launcher);
    let mut l = Proc::spawn(cgroup.enter(launcher));
    let _cleanup = KillTreeOnDrop(l.pid());
    assert_eq!(l.wait_exit(LONG).code(), Some(69), "{}", l.output());
    let out = l.output();
    let failure = out
        .lines()
        .find(|line| line.contains("verification failed"))
        .unwrap_or_else(|| panic!("{out}"));
    let killed = failure
        .split("the kernel's OOM killer killed ")
        .nth(1)
        .unwrap_or_else(|| panic!("no OOM count: {failure}"));
    let n: u64 = killed.split(' ').next().unwrap().parse().unwrap();
    assert!(n >= 1, "{failure}");
    assert!(
        n <= cgroup.oom_kills(),
        "{failure}: more than the cgroup counted"
    );
    assert!(failure.contains("killed by SIGKILL"), "{failure}");
}

/// gunicorn exits 1 because two workers failed to import the app: the port
/// was free, so no word about a port in use.
#[test]
fn an_exit_1_with_a_free_port_says_nothing_of_a_port_in_use() {
    let ns = Netns::new();
    let app = AppDir::new();
    app.write("badimport.py", "import nonexistent_module_of_the_test\n");
    // gunicorn <= 23 may miss the TERM it sends a worker still booting, then waits its
    // whole graceful timeout for it: keep that short.
    let mut l = Proc::spawn(app.launcher_in(
        &ns,
        &[
            "run",
            "--",
            "gunicorn",
            "-w",
            "2",
            "--graceful-timeout",
            "2",
            "badimport:app",
        ],
    ));
    let _cleanup = KillTreeOnDrop(l.pid());
    let code = l.wait_exit(LONG).code();
    let out = l.output();
    let exited = out
        .lines()
        .find(|line| line.contains("gunicorn exited during its start"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(code == Some(1) || code == Some(3), "{code:?}: {out}");
    assert!(!exited.contains("port"), "{exited}");
}
