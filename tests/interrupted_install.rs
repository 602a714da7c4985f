//! `install --socket-unit` is a transaction that neither a closed output nor a signal can
//! split, against a real systemd 252 in private namespaces (tests/common/systemd.rs). After
//! each attempt the host is in exactly one of two states: the whole change (the drop-in and
//! the socket unit written, systemd holding the port, the unit running the launcher,
//! verified) or the old one (the files byte for byte as they were, the original gunicorn
//! running, no socket unit). Signals are sent at each step: a `systemctl` placed first on
//! PATH counts its calls and, at the chosen one, signals the launcher before running the
//! real `systemctl`.

mod common;
#[path = "common/systemd.rs"]
mod harness;

use harness::Systemd;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(60);

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + LONG;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {LONG:?} waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The real `systemctl` after a counting wrapper that signals its caller at one call.
const WRAPPER: &str = "#!/bin/sh\n\
    n=$(cat /opt/wrap/count 2>/dev/null || echo 0); n=$((n+1)); echo $n > /opt/wrap/count\n\
    echo \"$n $*\" >> /opt/wrap/log\n\
    if [ \"$n\" = \"$(cat /opt/wrap/at)\" ]; then kill -s \"$(cat /opt/wrap/signal)\" $PPID; fi\n\
    exec REAL \"$@\"\n";

/// A SolvIT-style unit on 127.0.0.1:8001, running, with the wrapper in place.
fn boot() -> Systemd {
    let sd = Systemd::boot(&common::systemd_binds());
    sd.add_second_interface();
    let hello = std::fs::read_to_string(common::root().join("examples/hello.py")).unwrap();
    sd.write("/opt/solvit/hello.py", &hello);
    sd.write(
        "/etc/systemd/system/solvit.service",
        &format!(
            "[Unit]\nDescription=SolvIT\nDefaultDependencies=no\n[Service]\n\
             WorkingDirectory=/opt/solvit\nRuntimeDirectory=solvit\n\
             Environment=XDG_RUNTIME_DIR=/run/solvit\n\
             ExecStart={}/bin/gunicorn --workers 1 --graceful-timeout 2 --bind 127.0.0.1:8001 hello:app\n",
            common::venv().display()
        ),
    );
    assert!(sd.systemctl(&["daemon-reload"]).status.success());
    assert!(sd.systemctl(&["start", "solvit.service"]).status.success());
    wait_for("gunicorn on 127.0.0.1:8001", || {
        sd.listeners(8001) == ["127.0.0.1:8001"]
    });
    let real = sd.text(&["sh", "-c", "command -v systemctl"]);
    sd.write("/opt/wrap/systemctl", &WRAPPER.replace("REAL", real.trim()));
    assert!(
        sd.run(&["chmod", "755", "/opt/wrap/systemctl"])
            .status
            .success()
    );
    sd
}

/// `install --socket-unit solvit.service` with the wrapper signalling at call `at` (0:
/// never), output as `shell` arranges it (`%` is the command): exit code and output.
fn install(sd: &Systemd, at: usize, signal: &str, shell: &str) -> (i32, String) {
    sd.write("/opt/wrap/count", "0");
    sd.write("/opt/wrap/at", &at.to_string());
    sd.write("/opt/wrap/signal", signal);
    sd.write("/opt/wrap/log", "");
    let command = format!(
        "{} install --socket-unit solvit.service",
        common::launcher().display()
    );
    let out = sd
        .cmd("bash")
        .args(["-c", &shell.replace('%', &command)])
        .env(
            "PATH",
            format!("/opt/wrap:{}", std::env::var("PATH").unwrap_or_default()),
        )
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

type Files = BTreeMap<PathBuf, Vec<u8>>;

/// Which of the two states the host is in; panics when it is in neither.
fn state(sd: &Systemd, before: &Files, after: &Files, said: &str) -> &'static str {
    let files = sd.tree("/etc/systemd/system");
    let launcher = std::fs::canonicalize(common::launcher())
        .unwrap()
        .display()
        .to_string();
    sd.wait_prop("solvit.service", "ActiveState", "active", LONG);
    let main = sd.prop("solvit.service", "MainPID");
    if &files == before {
        assert_eq!(sd.prop("solvit.socket", "LoadState"), "not-found", "{said}");
        assert_ne!(sd.exe(&main), launcher, "old files, new process: {said}");
        wait_for("the original gunicorn on 127.0.0.1", || {
            sd.listeners(8001) == ["127.0.0.1:8001"]
        });
        "old"
    } else if &files == after {
        assert_eq!(sd.prop("solvit.socket", "ActiveState"), "active", "{said}");
        assert_eq!(sd.exe(&main), launcher, "new files, old process: {said}");
        assert!(
            sd.prop("solvit.service", "StatusText")
                .starts_with("verified: "),
            "{said}"
        );
        assert_eq!(sd.http_status("http://198.18.0.1:8001/"), Ok(200));
        "whole"
    } else {
        panic!("half done: the unit files are neither the old nor the new ones\n{said}");
    }
}

/// Back to the old state after a whole install.
fn undo(sd: &Systemd, before: &Files) {
    let out = sd
        .cmd(common::launcher())
        .args(["uninstall", "solvit.service"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(&sd.tree("/etc/systemd/system"), before);
    sd.wait_prop("solvit.service", "ActiveState", "active", LONG);
    wait_for("the original gunicorn on 127.0.0.1", || {
        sd.listeners(8001) == ["127.0.0.1:8001"]
    });
}

#[test]
fn an_install_signalled_at_each_step_is_whole_or_undone() {
    let sd = boot();
    let before = sd.tree("/etc/systemd/system");
    // Once without a signal: the whole change, and how many systemctl calls it makes.
    let (code, out) = install(&sd, 0, "INT", "%");
    assert_eq!(code, 0, "{out}");
    let after = sd.tree("/etc/systemd/system");
    assert_eq!(state(&sd, &before, &after, &out), "whole");
    let calls = std::fs::read_to_string(sd.path("/opt/wrap/count"))
        .unwrap()
        .trim()
        .parse::<usize>()
        .unwrap();
    assert!(calls >= 5, "{calls} systemctl calls");
    undo(&sd, &before);
    let mut seen = BTreeMap::new();
    for at in 1..=calls {
        for (signal, number) in [("INT", 2), ("TERM", 15)] {
            let (code, out) = install(&sd, at, signal, "%");
            let log = std::fs::read_to_string(sd.path("/opt/wrap/log")).unwrap();
            let said = format!("SIG{signal} at systemctl call {at}:\n{out}\ncalls:\n{log}");
            assert_eq!(code, 128 + number, "{said}");
            assert!(
                out.contains(&format!("interrupted (SIG{signal})")),
                "{said}"
            );
            let now = state(&sd, &before, &after, &said);
            *seen.entry(now).or_insert(0) += 1;
            if now == "whole" {
                undo(&sd, &before);
            }
        }
    }
    eprintln!("{calls} steps, 2 signals each: {seen:?}");
    assert!(
        seen.contains_key("old") && seen.contains_key("whole"),
        "{seen:?}"
    );
}

/// The reader of the output goes away after one line (`| head -n 1`), of stdout alone and
/// of both; or stderr is closed outright: the change is made all the same, and the exit
/// status says it was.
#[test]
fn an_install_whose_reader_goes_away_finishes_the_change() {
    let sd = boot();
    let before = sd.tree("/etc/systemd/system");
    let (code, out) = install(&sd, 0, "INT", "% | head -n 1; exit ${PIPESTATUS[0]}");
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
    let after = sd.tree("/etc/systemd/system");
    assert_eq!(state(&sd, &before, &after, &out), "whole");
    undo(&sd, &before);
    for shell in [
        "% 2>&1 | head -n 1; exit ${PIPESTATUS[0]}",
        "% >/dev/null 2>&-",
    ] {
        let (code, out) = install(&sd, 0, "INT", shell);
        assert_eq!(code, 0, "{shell}: {out}");
        assert_eq!(state(&sd, &before, &after, &out), "whole");
        undo(&sd, &before);
    }
}

/// `uninstall` signalled at each of its `systemctl` calls finishes what it started (half of
/// it would leave a unit running the launcher without its drop-in), then exits 128+N.
#[test]
fn an_uninstall_signalled_at_each_step_finishes() {
    let sd = boot();
    let before = sd.tree("/etc/systemd/system");
    let (code, out) = install(&sd, 0, "INT", "%");
    assert_eq!(code, 0, "{out}");
    let after = sd.tree("/etc/systemd/system");
    let uninstall = |at: usize, signal: &str| {
        sd.write("/opt/wrap/count", "0");
        sd.write("/opt/wrap/at", &at.to_string());
        sd.write("/opt/wrap/signal", signal);
        let out = sd
            .cmd(common::launcher())
            .args(["uninstall", "solvit.service"])
            .env(
                "PATH",
                format!("/opt/wrap:{}", std::env::var("PATH").unwrap_or_default()),
            )
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    };
    let (code, out) = uninstall(0, "INT");
    assert_eq!(code, 0, "{out}");
    assert_eq!(state(&sd, &before, &after, &out), "old");
    let calls = std::fs::read_to_string(sd.path("/opt/wrap/count"))
        .unwrap()
        .trim()
        .parse::<usize>()
        .unwrap();
    for at in 1..=calls {
        for (signal, number) in [("INT", 2), ("TERM", 15)] {
            let (code, out) = install(&sd, 0, "INT", "%");
            assert_eq!(code, 0, "{out}");
            let (code, out) = uninstall(at, signal);
            let said = format!("SIG{signal} at systemctl call {at} of uninstall:\n{out}");
            assert_eq!(code, 128 + number, "{said}");
            assert_eq!(state(&sd, &before, &after, &said), "old");
        }
    }
}
