use super::*;
use std::process::{Command, Stdio};

#[test]
fn finds_children_and_grandchildren() {
    let mut child = Command::new("sh")
        .args(["-c", "sleep 30 & echo $!; wait"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let grandchild = Pid::from_raw(line.trim().parse().unwrap());
    let me = Pid::this();
    let found = descendants(me);
    let scanned = descendants_by_parent(me);
    let sh = Pid::from_raw(child.id() as i32);
    assert!(found.contains(&sh), "{found:?}");
    assert!(found.contains(&grandchild), "{found:?}");
    assert!(
        scanned.contains(&sh) && scanned.contains(&grandchild),
        "{scanned:?}"
    );
    assert!(found.iter().position(|p| *p == sh) < found.iter().position(|p| *p == grandchild));
    let named_now = named([sh, grandchild]);
    assert_eq!(named_now.len(), 2);
    assert!(named_now.iter().all(Proc::running));
    signal_all(&[grandchild, sh], Signal::SIGKILL);
    child.wait().unwrap();
    // sh is reaped: gone; the grandchild, orphaned, is reaped by init or
    // a subreaper, and until then a zombie: not running either way.
    assert!(!named_now[0].running());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while named_now[1].running() {
        assert!(
            std::time::Instant::now() < deadline,
            "the grandchild never died"
        );
        std::thread::yield_now();
    }
}

#[test]
fn successor_is_recognised_by_its_environment() {
    let me = Pid::this();
    let mut child = Command::new("sleep")
        .arg("30")
        .env("GUNICORN_PID", me.to_string())
        .spawn()
        .unwrap();
    let pid = Pid::from_raw(child.id() as i32);
    // Until exec, /proc shows the environment copied from us.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !is_successor_of(pid, me) {
        assert!(
            std::time::Instant::now() < deadline,
            "GUNICORN_PID never seen in the child's environment"
        );
        std::thread::yield_now();
    }
    assert!(!is_successor_of(pid, Pid::from_raw(1)));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn no_signal_goes_to_our_group_to_every_process_or_to_init() {
    // Signal 0 only asks whether the kernel would deliver: were the guard gone, these would
    // be answered for the test's group, for every process and for init, and nothing is sent.
    for pid in [0, -1, 1] {
        assert_eq!(
            send(Pid::from_raw(pid), None),
            Err(Errno::ESRCH),
            "pid {pid}"
        );
        assert_eq!(
            send_to_group(Pid::from_raw(pid), None),
            Err(Errno::ESRCH),
            "group {pid}"
        );
    }
    // A shell in a group of its own: the test's own group may be 1 in a container.
    let sh = crate::test_support::processes::ForkingShell::spawn();
    assert_eq!(send(Pid::from_raw(sh.pid()), None), Ok(()));
    assert_eq!(send_to_group(Pid::from_raw(sh.pid()), None), Ok(()));
    sh.end();
}

#[test]
fn only_pids_above_init_are_signallable() {
    for pid in [i32::MIN, -2, -1, 0, 1] {
        assert!(!signallable(Pid::from_raw(pid)), "pid {pid}");
    }
    for pid in [2, 300, i32::MAX] {
        assert!(signallable(Pid::from_raw(pid)), "pid {pid}");
    }
}
