//! What became of gunicorn's workers while a verification is failing: how
//! many died, and of what (a signal such as SIGSEGV, or SIGKILL from the
//! kernel's OOM killer, or an exit status).
//!
//! Workers are the master's children, not ours: the master reaps them, and
//! their status never reaches the launcher through `waitpid`. Each worker
//! seen is watched through a pidfd, which the supervisor polls: it becomes
//! readable when the worker exits. The status is then read from the zombie's
//! `/proc/PID/stat`, or, once the master has reaped it, from the pidfd itself
//! (`PIDFD_GET_INFO`, Linux 6.15); on an older kernel a worker reaped first
//! is counted with its status unknown. The OOM killer is also counted from
//! the service's cgroup (`memory.events`), which needs no race at all.

use crate::process::tree::Proc;
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// The workers being watched, and what the dead ones died of.
#[derive(Default)]
pub struct Census {
    watched: Vec<(Proc, OwnedFd)>,
    /// How many died of each signal, and with each exit status.
    signals: BTreeMap<i32, usize>,
    statuses: BTreeMap<i32, usize>,
    unknown: usize,
    oom_kills_before: Option<u64>,
}

impl Census {
    pub fn new() -> Census {
        Census {
            oom_kills_before: oom_kills(),
            ..Census::default()
        }
    }

    /// Starts watching the master's workers that are not watched yet.
    pub fn refresh(&mut self, master: Pid) {
        let children = crate::process::procfs::children(master.as_raw()).unwrap_or_default();
        for child in crate::process::tree::named(children.into_iter().map(Pid::from_raw)) {
            if self.watched.iter().any(|(p, _)| *p == child) {
                continue;
            }
            if let Some(fd) = pidfd(child.pid) {
                self.watched.push((child, fd));
            }
        }
    }

    /// The pidfds to poll (readable once their worker has exited).
    pub fn fds(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        self.watched.iter().map(|(_, fd)| fd.as_fd())
    }

    /// Records the workers whose pidfd polled readable (`ready`, in
    /// [`Census::fds`]' order) and stops watching them.
    pub fn on_ready(&mut self, ready: &[bool]) {
        let mut i = 0;
        let mut dead = Vec::new();
        self.watched.retain(|(p, fd)| {
            let gone = ready.get(i).copied().unwrap_or(false);
            i += 1;
            if gone {
                dead.push(exit_status(p.pid, fd));
            }
            !gone
        });
        for status in dead {
            match status {
                Some(s) if s & 0x7f != 0 => *self.signals.entry(s & 0x7f).or_default() += 1,
                Some(s) => *self.statuses.entry((s >> 8) & 0xff).or_default() += 1,
                None => self.unknown += 1,
            }
        }
    }

    /// One sentence: how many workers died and of what, if any did.
    pub fn report(&self) -> Option<String> {
        let died = self.signals.values().sum::<usize>()
            + self.statuses.values().sum::<usize>()
            + self.unknown;
        let oom = match (self.oom_kills_before, oom_kills()) {
            (Some(before), Some(now)) if now > before => Some(now - before),
            _ => None,
        };
        if died == 0 && oom.is_none() {
            return None;
        }
        let mut causes: Vec<String> = self
            .signals
            .iter()
            .map(|(&sig, &n)| {
                let name = nix::sys::signal::Signal::try_from(sig)
                    .map_or_else(|_| format!("signal {sig}"), |s| s.to_string());
                format!("killed by {name} {}", times(n))
            })
            .collect();
        causes.extend(
            self.statuses
                .iter()
                .map(|(&code, &n)| format!("exit status {code} {}", times(n))),
        );
        if self.unknown > 0 {
            causes.push(format!("{} with a status not seen", self.unknown));
        }
        let mut text = format!(
            "gunicorn's workers kept dying: {died} exited{}",
            if causes.is_empty() {
                String::new()
            } else {
                format!(" ({})", causes.join(", "))
            }
        );
        if let Some(n) = oom {
            text.push_str(&format!(
                "; the kernel's OOM killer killed {n} process(es) of this service (counted by its memory cgroup): \
                 the app needs more memory than the service may use (MemoryMax=, the host's RAM)"
            ));
        } else if self.signals.contains_key(&9) {
            text.push_str("; SIGKILL is what the kernel's OOM killer sends");
        }
        Some(text)
    }
}

fn times(n: usize) -> String {
    if n == 1 {
        "once".into()
    } else {
        format!("{n} times")
    }
}

/// A pidfd for `pid` (Linux 5.3), readable once it has exited; `None` when the process is
/// gone or the kernel has none.
pub fn pidfd(pid: Pid) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor
    // or -1; no memory is passed.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: `fd` was just returned by the kernel and is owned by nothing else.
    Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// The wait status of an exited process: from its zombie's stat while its
/// parent has not reaped it, else from the pidfd (`PIDFD_GET_INFO` with
/// `PIDFD_INFO_EXIT`, Linux 6.15).
fn exit_status(pid: Pid, fd: &OwnedFd) -> Option<i32> {
    if let Some(stat) = crate::process::procfs::stat(pid.as_raw())
        && stat.state == 'Z'
    {
        return stat.exit_code;
    }
    pidfd_exit_code(fd)
}

/// `struct pidfd_info` (include/uapi/linux/pidfd.h), version 0: 64 bytes.
#[repr(C)]
#[derive(Default)]
struct PidfdInfo {
    mask: u64,
    cgroupid: u64,
    ids: [u32; 11],
    exit_code: i32,
    coredump_mask: u32,
    spare: u32,
}

const PIDFD_INFO_EXIT: u64 = 1 << 3;
/// `_IOWR(0xFF, 11, struct pidfd_info)`.
const PIDFD_GET_INFO: u64 = 0xC040_FF0B;

fn pidfd_exit_code(fd: &OwnedFd) -> Option<i32> {
    let mut info = PidfdInfo {
        mask: PIDFD_INFO_EXIT,
        ..PidfdInfo::default()
    };
    // SAFETY: PIDFD_GET_INFO fills at most size_of::<PidfdInfo>() (64)
    // bytes of the struct it is given, which is that size and lives across
    // the call; an older kernel fails with ENOTTY and writes nothing.
    let done = unsafe {
        nix::libc::ioctl(
            fd.as_raw_fd(),
            PIDFD_GET_INFO as _,
            &mut info as *mut PidfdInfo,
        )
    };
    (done == 0 && info.mask & PIDFD_INFO_EXIT != 0).then_some(info.exit_code)
}

/// `oom_kill` of this process's memory cgroup: `memory.events` on cgroup v2, or
/// `memory.oom_control` of the v1 memory controller (hosts still on the legacy hierarchy).
fn oom_kills() -> Option<u64> {
    let cgroup = crate::process::procfs::read("/proc/self/cgroup", 1024)?;
    let cgroup = String::from_utf8_lossy(&cgroup);
    let (v1, v2) = memory_cgroup_files(&cgroup);
    [v2, v1].into_iter().flatten().find_map(|file| {
        let text = crate::process::procfs::read(&file, 512)?;
        oom_kill_count(&String::from_utf8_lossy(&text))
    })
}

/// The files that count OOM kills for the cgroups named in `/proc/self/cgroup`: the v1
/// memory controller's `memory.oom_control` and the v2 `memory.events`.
fn memory_cgroup_files(proc_self_cgroup: &str) -> (Option<String>, Option<String>) {
    let mut v1 = None;
    let mut v2 = None;
    for line in proc_self_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if controllers.is_empty() {
            v2 = Some(format!("/sys/fs/cgroup{path}/memory.events"));
        } else if controllers.split(',').any(|c| c == "memory") {
            v1 = Some(format!("/sys/fs/cgroup/memory{path}/memory.oom_control"));
        }
    }
    (v1, v2)
}

/// The `oom_kill N` line of `memory.events` or `memory.oom_control`.
fn oom_kill_count(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
}

#[cfg(test)]
mod tests;
