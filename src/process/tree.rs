//! gunicorn's processes, found by the process tree and never by name.
//!
//! The launcher is a child subreaper, so every process gunicorn leaves behind
//! (workers of a killed master, a re-executed master after USR2, a
//! daemonised grandchild) is re-parented to the launcher: "gunicorn's
//! processes" is exactly "the launcher's descendants". Names are useless
//! here: after a USR2 re-exec the master may be called `python3`.

use crate::process::procfs as proc;
use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// Every live descendant of `root`, parents before children. The walk
/// follows the tree's own children lists, so it costs what the tree holds,
/// not what the host runs; without them (a kernel built without
/// `CONFIG_PROC_CHILDREN`) every process's parent is read once.
pub fn descendants(root: Pid) -> Vec<Pid> {
    let Some(first) = proc::children(root.as_raw()) else {
        return descendants_by_parent(root);
    };
    let mut out = Vec::new();
    let mut queue: Vec<i32> = first;
    queue.reverse();
    while let Some(p) = queue.pop() {
        out.push(Pid::from_raw(p));
        let mut below = proc::children(p).unwrap_or_default();
        below.reverse();
        queue.extend(below);
    }
    out
}

fn descendants_by_parent(root: Pid) -> Vec<Pid> {
    let children = proc::children_by_parent();
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

/// One process, named by pid and start time so that a reused pid is never
/// taken for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proc {
    pub pid: Pid,
    start: u64,
}

impl Proc {
    pub fn of(pid: Pid) -> Option<Proc> {
        proc::stat(pid.as_raw()).map(|s| Proc {
            pid,
            start: s.start,
        })
    }

    /// A process as the tests name it (no /proc read).
    #[cfg(test)]
    pub fn named_for_test(pid: i32, start: u64) -> Proc {
        Proc {
            pid: Pid::from_raw(pid),
            start,
        }
    }

    /// Still running: the same process, not yet exited (a zombie serves nothing).
    pub fn running(&self) -> bool {
        proc::stat(self.pid.as_raw()).is_some_and(|s| s.start == self.start && s.state != 'Z')
    }
}

/// The processes in `pids` that exist now, as [`Proc`]s.
pub fn named(pids: impl IntoIterator<Item = Pid>) -> Vec<Proc> {
    pids.into_iter().filter_map(Proc::of).collect()
}

/// Sends `signal` to each process; ones that are already gone are fine.
pub fn signal_all(pids: &[Pid], signal: Signal) {
    for &p in pids {
        let _ = send(p, signal);
    }
}

/// Whether a pid (or process group) may be signalled at all: 0, -1 and 1 would reach the
/// launcher's own group, every process, or init. The kernel names no child of ours so, but a
/// pid that came from a misread `/proc` file must not get that far.
pub fn signallable(pid: Pid) -> bool {
    pid.as_raw() > 1
}

/// `kill(2)` to one process; a pid that is not [`signallable`] is refused as gone (`ESRCH`).
pub fn send(pid: Pid, signal: impl Into<Option<Signal>>) -> nix::Result<()> {
    if !signallable(pid) {
        return Err(Errno::ESRCH);
    }
    kill(pid, signal)
}

/// `killpg(2)` to one process group, with [`send`]'s guard (group 0 is the launcher's own).
pub fn send_to_group(group: Pid, signal: impl Into<Option<Signal>>) -> nix::Result<()> {
    if !signallable(group) {
        return Err(Errno::ESRCH);
    }
    killpg(group, signal)
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
mod tests;
