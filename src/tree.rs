//! gunicorn's processes, found by the process tree and never by name.
//!
//! The launcher is a child subreaper, so every process gunicorn leaves behind
//! (workers of a killed master, a re-executed master after USR2, a
//! daemonised grandchild) is re-parented to the launcher: "gunicorn's
//! processes" is exactly "the launcher's descendants". Names are useless
//! here: after a USR2 re-exec the master may be called `python3`.

use crate::proc;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::HashMap;

/// Every live descendant of `root`, parents before children.
pub fn descendants(root: Pid) -> Vec<Pid> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for pid in proc::all_pids() {
        if let Some(ppid) = proc::ppid(pid) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut out = Vec::new();
    let mut queue = vec![root.as_raw()];
    while let Some(p) = queue.pop() {
        for &c in children.get(&p).map(Vec::as_slice).unwrap_or_default() {
            out.push(Pid::from_raw(c));
            queue.push(c);
        }
    }
    out
}

/// Sends `signal` to each process; ones that are already gone are fine.
pub fn signal_all(pids: &[Pid], signal: Signal) {
    for &p in pids {
        let _ = kill(p, signal);
    }
}

/// After a USR2 the old master forks and re-executes gunicorn with
/// `GUNICORN_PID=<old master>` in its environment (gunicorn's `reexec`); we
/// scrub that variable from the first master's environment, so a child of
/// ours that carries it with the old master's pid is the new master.
pub fn is_successor_of(candidate: Pid, old_master: Pid) -> bool {
    proc::environ_var(candidate.as_raw(), "GUNICORN_PID").and_then(|v| v.parse::<i32>().ok())
        == Some(old_master.as_raw())
}

/// Short description of a process for messages: `1234 (gunicorn: master [app])`.
pub fn describe(pid: Pid) -> String {
    match proc::command_line(pid.as_raw()) {
        Some(cmd) => format!("{pid} ({cmd})"),
        None => pid.to_string(),
    }
}

#[cfg(test)]
mod tests {
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
        let sh = Pid::from_raw(child.id() as i32);
        assert!(found.contains(&sh), "{found:?}");
        assert!(found.contains(&grandchild), "{found:?}");
        assert!(found.iter().position(|p| *p == sh) < found.iter().position(|p| *p == grandchild));
        signal_all(&[grandchild, sh], Signal::SIGKILL);
        child.wait().unwrap();
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
}
