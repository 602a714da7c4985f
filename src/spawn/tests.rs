use super::*;
use nix::sys::wait::WaitStatus;

fn run(program: &str, argv: &[&str], set: &[(&str, &str)]) -> Result<WaitStatus, Failure> {
    let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    let env = ChildEnv::of(std::env::vars_os().collect(), Vec::new());
    let cmd = Command::new(Path::new(program), &argv, &env, set).unwrap();
    let pid = spawn(&cmd)?;
    Ok(waitpid(pid, None).unwrap())
}

#[test]
fn the_child_gets_its_own_session_stdin_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let script = format!(
        "read -r x; echo \"stdin=${{x:-empty}} sid=$(ps -o sid= -p $$) pid=$$ v=$GL_SPAWN_TEST\" > {}",
        out.display()
    );
    let status = run(
        "/bin/sh",
        &["sh", "-c", &script],
        &[("GL_SPAWN_TEST", "a b")],
    )
    .unwrap();
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
    let text = std::fs::read_to_string(&out).unwrap();
    let pid = status.pid().unwrap().as_raw();
    assert!(text.starts_with("stdin=empty sid="), "{text}");
    let sid: i32 = text
        .split("sid=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(sid, pid, "{text}");
    assert!(text.trim_end().ends_with("v=a b"), "{text}");
}

/// The socket arrives as fd 3, with LISTEN_FDS=1 and LISTEN_PID the child's own pid,
/// wherever the launcher holds it (at fd 3 itself, or elsewhere); twice from one
/// command, as a restart does.
#[test]
fn a_held_socket_is_passed_as_fd_3_with_the_childs_own_pid() {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let inode = std::fs::metadata(format!("/proc/self/fd/{}", listener.as_raw_fd()))
        .unwrap()
        .ino();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let script = format!(
        "echo \"$LISTEN_FDS $LISTEN_PID $$ $(stat -L -c %i /proc/$$/fd/3)\" >> {}",
        out.display()
    );
    let argv: Vec<String> = ["sh", "-c", script.as_str()].map(String::from).to_vec();
    // A stale LISTEN_PID is replaced by the child's own; LISTEN_FDS comes with the env.
    let mut env = ChildEnv::of(std::env::vars_os().collect(), Vec::new());
    env.put("LISTEN_PID", Some("1"));
    env.put("LISTEN_FDS", Some("1"));
    let cmd = Command::new(Path::new("/bin/sh"), &argv, &env, &[])
        .unwrap()
        .with_listen_fd(listener.as_raw_fd());
    let mut pids = Vec::new();
    for _ in 0..2 {
        let pid = spawn(&cmd).unwrap();
        assert_eq!(waitpid(pid, None).unwrap(), WaitStatus::Exited(pid, 0));
        pids.push(pid);
    }
    let text = std::fs::read_to_string(&out).unwrap();
    let want: String = pids
        .iter()
        .map(|p| format!("1 {p} {p} {inode}\n"))
        .collect();
    assert_eq!(text, want);
}

#[test]
fn missing_and_unrunnable_programs_have_their_exit_codes() {
    let e = run("/nonexistent/gunicorn", &["gunicorn"], &[]).unwrap_err();
    assert_eq!(e.code, crate::exit::NOT_FOUND, "{}", e.message);
    assert!(e.message.contains("/nonexistent/gunicorn"), "{}", e.message);
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("gunicorn");
    std::fs::write(&plain, "not a program").unwrap();
    let e = run(plain.to_str().unwrap(), &["gunicorn"], &[]).unwrap_err();
    assert_eq!(e.code, crate::exit::NOT_EXECUTABLE, "{}", e.message);
}

#[test]
fn an_argument_with_a_nul_byte_is_refused_before_any_fork() {
    let e = Command::new(
        Path::new("/bin/true"),
        &["a\0b".into()],
        &ChildEnv::default(),
        &[],
    )
    .err()
    .unwrap();
    assert!(e.contains("NUL byte"), "{e}");
}
