//! Every command with a reader that went away: stdout is a pipe whose read end is closed
//! (`gunicorn-launcher check | head -n 0`), the write fails with EPIPE. No command panics
//! (the standard library's `println!` would, with exit 101); a command that only shows
//! something ends as SIGPIPE would have ended it (141), silently; `install` and `uninstall`
//! finish their change and exit with its status; `run` starts, verifies and stops as usual.

mod common;
use common::*;
use nix::sys::signal::Signal;
use std::path::Path;
use std::process::{Command, Stdio};

/// `command` with stdout into a pipe nobody reads: its exit code and stderr.
fn closed_stdout(mut command: Command) -> (i32, String) {
    let (read, write) = nix::unistd::pipe().unwrap();
    drop(read);
    let out = command
        .stdout(Stdio::from(write))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn launcher_with(args: &[&str]) -> Command {
    let mut c = Command::new(launcher());
    c.args(args);
    c
}

/// A copy of a fixture unit tree, for `--root`.
fn tree(case: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("cp")
        .arg("-a")
        .arg(root().join("tests/fixtures/units").join(case).join("."))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

fn dropin(root: &Path) -> std::path::PathBuf {
    root.join("etc/systemd/system/solvit.service.d/zz-gunicorn-launcher.conf")
}

#[test]
fn commands_that_only_show_something_end_quietly_with_141() {
    let units = tree("solvit");
    let root = units.path().to_str().unwrap();
    let g = gunicorn();
    let cases: Vec<Vec<&str>> = vec![
        vec!["--help"],
        vec!["check", "--port", "1"],
        vec!["check", "--port", "1", "--json"],
        vec!["print-command", "--", &g, "-b", "127.0.0.1:8001", "app:app"],
        vec!["status", "--root", root],
        vec!["status", "--root", root, "--json"],
        vec!["generate", "man"],
        vec!["generate", "bash"],
    ];
    for args in cases {
        let (code, stderr) = closed_stdout(launcher_with(&args));
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        // clap's own --help ends 0 whatever became of its text; everything else is ours.
        let want = if args == ["--help"] { 0 } else { 141 };
        assert_eq!(code, want, "{args:?}: {stderr}");
    }
}

#[test]
fn install_and_uninstall_finish_their_change_whoever_reads() {
    let units = tree("solvit");
    let root = units.path().to_str().unwrap();
    let before = std::fs::read_dir(units.path().join("etc/systemd/system"))
        .unwrap()
        .count();
    let (code, stderr) = closed_stdout(launcher_with(&[
        "install",
        "--root",
        root,
        "--launcher",
        "/usr/bin/gunicorn-launcher",
    ]));
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(dropin(units.path()).is_file(), "the drop-in was written");
    let (code, stderr) = closed_stdout(launcher_with(&["uninstall", "--root", root]));
    assert_eq!(code, 0, "{stderr}");
    assert!(!dropin(units.path()).exists(), "the drop-in was removed");
    assert_eq!(
        std::fs::read_dir(units.path().join("etc/systemd/system"))
            .unwrap()
            .count(),
        before
    );
}

#[test]
fn run_with_its_output_unread_still_serves_and_stops_cleanly() {
    let ns = Netns::new();
    let app = AppDir::new();
    let mut cmd = app.launcher_in(&ns, &["run", "--", "gunicorn", "hello:app"]);
    let (read_out, write_out) = nix::unistd::pipe().unwrap();
    let (read_err, write_err) = nix::unistd::pipe().unwrap();
    drop((read_out, read_err));
    cmd.stdout(Stdio::from(write_out))
        .stderr(Stdio::from(write_err));
    let mut child = cmd.spawn().unwrap();
    let _cleanup = KillTreeOnDrop(child.id() as i32);
    wait_until("gunicorn to answer through the launcher", LONG, || {
        ns.http_status("http://127.0.0.1:8001/") == Ok(200)
    });
    signal_pid(child.id() as i32, Signal::SIGTERM);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
}

/// Started with stdin, stdout and stderr closed (`<&- >&- 2>&-`), as a careless unit or
/// script can: the launcher puts /dev/null on each before it opens anything, so no
/// descriptor of its own (its signalfd, gunicorn's notify socket) is taken for them, and it
/// serves as usual.
#[test]
fn closed_stdin_and_stdout_become_dev_null_before_anything_is_opened() {
    let ns = Netns::new();
    let app = AppDir::new();
    let cmd = app.launcher_in(&ns, &["run", "--", "gunicorn", "hello:app"]);
    let mut closing = Command::new("bash");
    closing
        .args(["-c", "exec \"$@\" <&- >&- 2>&-", "bash"])
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .current_dir(cmd.get_current_dir().unwrap());
    let mut child = closing.spawn().unwrap();
    let pid = child.id() as i32;
    let _cleanup = KillTreeOnDrop(pid);
    wait_until("gunicorn to answer through the launcher", LONG, || {
        ns.http_status("http://127.0.0.1:8001/") == Ok(200)
    });
    for fd in [0, 1, 2] {
        let link = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap();
        assert_eq!(link, Path::new("/dev/null"), "fd {fd}");
    }
    signal_pid(pid, Signal::SIGTERM);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
}
