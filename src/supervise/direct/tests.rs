use super::*;
use crate::test_support::processes::ForkingShell;
use std::time::{Duration, Instant};

#[test]
fn only_a_users_reload_or_scaling_signal_goes_direct() {
    let user = 0; // SI_USER: sent by kill(2)
    let hup = Signal::SIGHUP as u32;
    assert_eq!(direct_signal(hup, user), Some(Signal::SIGHUP));
    assert_eq!(
        direct_signal(Signal::SIGTTOU as u32, user),
        Some(Signal::SIGTTOU)
    );
    assert_eq!(
        direct_signal(Signal::SIGWINCH as u32, user),
        Some(Signal::SIGWINCH)
    );
    // A terminal's WINCH is raised by the kernel: the decisions drop it.
    assert_eq!(direct_signal(Signal::SIGWINCH as u32, SI_KERNEL), None);
    assert_eq!(direct_signal(hup, SI_KERNEL), Some(Signal::SIGHUP));
    for stop_or_upgrade in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGUSR2,
        Signal::SIGCHLD,
    ] {
        assert_eq!(direct_signal(stop_or_upgrade as u32, user), None);
    }
    assert_eq!(direct_signal(999, user), None);
    assert_eq!(direct_signal(u32::MAX, user), None);
}

#[test]
fn a_children_file_is_read_as_its_pids() {
    assert_eq!(
        parse_children(b"12 3456 7 "),
        [Pid::from_raw(12), Pid::from_raw(3456), Pid::from_raw(7)]
    );
    assert!(parse_children(b"").is_empty());
    assert_eq!(parse_children(b"5\n"), [Pid::from_raw(5)]);
}

#[test]
fn the_plan_reads_what_the_masters_main_thread_forked() {
    let sh = ForkingShell::spawn();
    let plan = Plan::new(Pid::from_raw(sh.pid()));
    let mut buf: Children = [0; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    let pids = loop {
        let len = read_children(&plan, &mut buf).unwrap();
        let pids = parse_children(&buf[..len]);
        // Forked, and then exec'd (a child is named as its parent until then).
        let sleeping = pids.iter().all(|p| comm(*p) == "sleep\n");
        if (pids.len() == 2 && sleeping) || Instant::now() > deadline {
            break pids;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let named: Vec<String> = pids.iter().map(|p| comm(*p)).collect();
    sh.end();
    assert_eq!(named, ["sleep\n", "sleep\n"], "{pids:?}");
    // Gone: nothing to read, and that is not an overflow.
    assert_eq!(read_children(&plan, &mut buf), Some(0));
}

#[test]
fn the_hot_pages_name_the_code_that_runs_before_the_kill() {
    let pages = hot_pages();
    assert!(pages.contains(&(take as *const () as usize)));
    assert!(pages.contains(&(nix::libc::kill as *const () as usize)));
    assert!(pages.iter().all(|&a| a != 0));
}

fn comm(pid: Pid) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default()
}
