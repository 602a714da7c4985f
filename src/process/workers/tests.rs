use super::*;
use std::process::Command;

/// What the census says of a master (a bash running `script`) once every child it saw is
/// gone.
fn census_of(script: &str) -> String {
    let mut master = Command::new("bash")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = Pid::from_raw(master.id() as i32);
    let mut census = Census::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while census.watched.is_empty() {
        assert!(std::time::Instant::now() < deadline, "no child seen");
        census.refresh(pid);
    }
    loop {
        let mut fds: Vec<nix::poll::PollFd> = census
            .fds()
            .map(|fd| nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN))
            .collect();
        nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(5000u16)).unwrap();
        let ready: Vec<bool> = fds.iter().map(|f| f.any().unwrap_or(false)).collect();
        drop(fds);
        census.on_ready(&ready);
        if census.watched.is_empty() {
            break;
        }
    }
    master.kill().unwrap();
    master.wait().unwrap();
    census.report().unwrap()
}

#[test]
fn a_grandchild_killed_by_a_signal_is_counted_with_its_signal() {
    // bash stands for gunicorn's master: its one child dies of SIGSEGV
    // and bash reaps it; the census sees the death all the same. (The
    // half-second wait is a `read` that times out on a silent pipe, so
    // that no other child appears.)
    let report =
        census_of("sleep 30 & p=$!; read -t 0.5 -r _; kill -SEGV $p; wait $p; read -t 30 -r _");
    assert!(
        report.starts_with("gunicorn's workers kept dying: 1 exited (killed by SIGSEGV once"),
        "{report}"
    );
}

#[test]
fn a_grandchild_that_exits_is_counted_with_its_status() {
    // The child is a shell whose own child (the sleep) the census does not watch.
    let report = census_of("sh -c 'sleep 0.5; exit 3' & p=$!; wait $p; read -t 30 -r _");
    assert!(
        report.starts_with("gunicorn's workers kept dying: 1 exited (exit status 3 once"),
        "{report}"
    );
}

#[test]
fn nothing_died_nothing_to_say() {
    assert_eq!(Census::new().report(), None);
    let mut c = Census::new();
    c.signals.insert(9, 3);
    c.statuses.insert(1, 1);
    let r = c.report().unwrap();
    assert!(
        r.contains("4 exited (killed by SIGKILL 3 times, exit status 1 once)"),
        "{r}"
    );
    assert!(r.contains("OOM killer sends"), "{r}");
}

#[test]
fn the_oom_counter_is_found_on_either_cgroup_hierarchy() {
    let v1 = "12:pids:/x\n4:memory:/process_api/abc/test\n1:name=systemd:/\n0::/\n";
    assert_eq!(
        memory_cgroup_files(v1),
        (
            Some("/sys/fs/cgroup/memory/process_api/abc/test/memory.oom_control".into()),
            Some("/sys/fs/cgroup//memory.events".into())
        )
    );
    let v2 = "0::/system.slice/solvit.service\n";
    assert_eq!(
        memory_cgroup_files(v2),
        (
            None,
            Some("/sys/fs/cgroup/system.slice/solvit.service/memory.events".into())
        )
    );
    let joined = "3:cpu,memory:/a\n";
    assert_eq!(
        memory_cgroup_files(joined).0.as_deref(),
        Some("/sys/fs/cgroup/memory/a/memory.oom_control")
    );
    assert_eq!(memory_cgroup_files("garbage\n"), (None, None));
    assert_eq!(
        oom_kill_count("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"),
        Some(3)
    );
    assert_eq!(
        oom_kill_count("low 0\nhigh 0\nmax 9\noom 2\noom_kill 2\noom_group_kill 0\n"),
        Some(2)
    );
    assert_eq!(oom_kill_count("oom_kill_disable 0\n"), None);
}
