use super::*;
use crate::test_support::processes::ForkingShell;

#[test]
fn stat_survives_odd_command_names() {
    let tail = "42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 1000";
    assert_eq!(
        parse_stat(&format!("42 (gunicorn: a) b)) S 41 {tail}")),
        Some(Stat {
            state: 'S',
            ppid: 41,
            start: 123456,
            exit_code: None,
        })
    );
    assert_eq!(parse_stat("42 (x) S 41 42"), None);
    assert_eq!(parse_stat(&format!("42 x S 41 {tail}")), None);
    let me = std::process::id() as i32;
    assert_eq!(ppid(me), Some(nix::unistd::getppid().as_raw()));
    assert!(all_pids().contains(&me));
    assert!(stat(me).is_some_and(|s| s.state.is_ascii_uppercase() && s.start > 0));
}

#[test]
fn parses_status() {
    let status = "Name:\tgunicorn: worker\nUmask:\t0022\nState:\tS (sleeping)\nPid:\t42\nPPid:\t41\n\
            Uid:\t0\t33\t33\t33\nGid:\t0\t0\t0\t0\nFDSize:\t64\n";
    let info = parse_status(status).unwrap();
    assert_eq!(
        info,
        Status {
            name: "gunicorn: worker".into(),
            uids: [0, 33, 33, 33],
            fd_size: 64
        }
    );
    assert_eq!(info.effective_uid(), 33);
    assert_eq!(parse_status("Name:\tx\nUid:\t1\t2\n"), None);
    assert_eq!(parse_status(""), None);
}

proptest::proptest! {
    #[test]
    fn status_parser_never_panics(line in ".{0,200}") {
        let _ = parse_status(&line);
    }
}

#[test]
fn user_names_come_from_passwd_lines() {
    let passwd = b"root:x:0:0:root:/root:/bin/bash\n#x:x:7:7::/:\n\
                       solvit:x:998:998::/opt/solvit:/usr/sbin/nologin\nbad\n:x:5:5::/:\n";
    assert_eq!(name_in_passwd(passwd, 0).as_deref(), Some("root"));
    assert_eq!(name_in_passwd(passwd, 998).as_deref(), Some("solvit"));
    assert_eq!(name_in_passwd(passwd, 7), None);
    assert_eq!(name_in_passwd(passwd, 5), None);
    assert_eq!(name_in_passwd(passwd, 99), None);
    assert_eq!(user_name(0), "root");
    assert_eq!(user_name(4_000_000_000), "4000000000");
}

#[test]
fn children_and_pending_signals_of_real_processes() {
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let me = std::process::id() as i32;
    assert!(children(me).unwrap().contains(&pid));
    assert_eq!(children(pid), Some(Vec::new()));
    // A stopped process keeps what is sent to it pending.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGSTOP,
    )
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while stat(pid).map(|s| s.state) != Some('T') {
        assert!(std::time::Instant::now() < deadline, "never stopped");
        std::thread::yield_now();
    }
    assert_eq!(pending_signals(pid), Some(0));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGUSR1,
    )
    .unwrap();
    assert_eq!(pending_signals(pid), Some(1 << (10 - 1)));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(children(-5), None);
}

#[test]
fn a_process_that_blocks_again_has_slept_once_more() {
    use std::io::Write;
    let mut cat = std::process::Command::new("cat")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = cat.id() as i32;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let wait_for = |what: &str, done: &dyn Fn() -> bool| {
        while !done() {
            assert!(std::time::Instant::now() < deadline, "never {what}");
            std::thread::yield_now();
        }
    };
    // Blocked reading its stdin: it has slept at least once.
    wait_for("blocked", &|| stat(pid).map(|s| s.state) == Some('S'));
    let before = voluntary_sleeps(pid).unwrap();
    assert!(before >= 1, "{before}");
    // A line wakes it; reading the next, it blocks again.
    cat.stdin.as_mut().unwrap().write_all(b"line\n").unwrap();
    wait_for("blocked again", &|| voluntary_sleeps(pid).unwrap() > before);
    cat.kill().unwrap();
    cat.wait().unwrap();
    assert_eq!(voluntary_sleeps(-5), None);
}

#[test]
fn command_line_and_environment_of_a_real_process() {
    let me = std::process::id() as i32;
    assert!(command_line(me).is_some_and(|c| !c.is_empty()));
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .env("GL_PROC_TEST", "a=b")
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    // Until exec, /proc shows the environment copied from us.
    while command_line(pid).as_deref() != Some("sleep 30") {
        assert!(std::time::Instant::now() < deadline, "child never exec'd");
        std::thread::yield_now();
    }
    assert_eq!(environ_var(pid, "GL_PROC_TEST").as_deref(), Some("a=b"));
    assert_eq!(environ_var(pid, "GL_PROC"), None);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_children_file_is_read_as_its_pids() {
    assert_eq!(parse_pids(b"12 3456 7 "), [12, 3456, 7]);
    assert_eq!(parse_pids(b"5\n"), [5]);
    assert!(parse_pids(b"").is_empty());
    // Nothing but pids is taken, however the text was cut.
    assert_eq!(parse_pids(b"8 x 9\xff 10"), [8, 10]);
}

proptest::proptest! {
    #[test]
    fn every_pid_written_as_the_kernel_writes_it_is_read_back(pids in proptest::collection::vec(1..i32::MAX, 0..50)) {
        let text: String = pids.iter().map(|pid| format!("{pid} ")).collect();
        proptest::prop_assert_eq!(parse_pids(text.as_bytes()), pids);
    }
}

#[test]
fn the_main_threads_children_are_those_it_forked() {
    // The shell forks both sleeps from its only thread.
    let sh = ForkingShell::spawn();
    let pid = sh.pid();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut forked = main_thread_children(pid);
    while forked.len() < 2 && std::time::Instant::now() < deadline {
        std::thread::yield_now();
        forked = main_thread_children(pid);
    }
    // While they live, the kernel names the shell as their parent.
    let parents: Vec<Option<i32>> = forked
        .iter()
        .map(|&child| stat(child).map(|s| s.ppid))
        .collect();
    sh.end();
    assert_eq!(forked.len(), 2, "{forked:?}");
    assert_eq!(parents, [Some(pid), Some(pid)], "{forked:?}");
    assert!(main_thread_children(i32::MAX).is_empty());
}
