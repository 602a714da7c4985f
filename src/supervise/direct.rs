//! A user's signal sent on to gunicorn's master the moment it is read, before the loop
//! runs anything else.
//!
//! Once serving, the launcher gives back the pages of its code ([`crate::memory`]), and
//! each page the next event runs is faulted back in, with its neighbours: on this path,
//! tens of microseconds each. So what stands between a signal and gunicorn is kept small
//! and resident: one read of the signalfd, for a HUP one read of the master's children (the
//! generation it replaces, read before the signal makes new ones), and one `kill`. The
//! decision is the machine's, made before the loop went to sleep ([`Plan`]); what the
//! signal sets in motion is worked out after it went, once the master had the CPU first.
//! [`hot_pages`] names the code this path runs, for the release to keep.

use super::machine::goes_direct;
use super::signals::SI_KERNEL;
use nix::sys::signal::{Signal, kill};
use nix::sys::signalfd::{SignalFd, siginfo};
use nix::sys::uio::pread;
use nix::unistd::Pid;
use std::fs::File;

/// Where a signal read now goes at once: the master, and its main thread's children file,
/// held open (reading it again is one `pread`, without the path's lookup; and the file
/// stays that process's, whatever its pid becomes).
pub struct Plan {
    pub master: Pid,
    children: Option<File>,
}

impl Plan {
    pub fn new(master: Pid) -> Plan {
        let children = File::open(format!("/proc/{master}/task/{master}/children")).ok();
        Plan { master, children }
    }
}

/// Room for the children's pids of one master (7 digits and a space each: 512 of them).
pub type Children = [u8; 4096];

/// One signal read from the signalfd.
pub enum Taken {
    /// Already sent to `master`; for a HUP `children` holds what the master's children file
    /// said just before.
    Sent {
        signal: Signal,
        master: Pid,
        sent: nix::Result<()>,
        children: usize,
    },
    /// For the decisions to take.
    Read(siginfo),
}

/// Reads one signal; sends it at once if `plan` says it goes straight to the master.
/// `buf` receives a HUP's children (its first `children` bytes). `None`: nothing to read.
pub fn take(signals: &SignalFd, plan: Option<&Plan>, buf: &mut Children) -> Option<Taken> {
    let info = signals.read_signal().ok()??;
    let Some(plan) = plan else {
        return Some(Taken::Read(info));
    };
    let Some(signal) = direct_signal(info.ssi_signo, info.ssi_code) else {
        return Some(Taken::Read(info));
    };
    let mut children = 0;
    if signal == Signal::SIGHUP {
        match read_children(plan, buf) {
            Some(n) => children = n,
            // More children than the buffer holds: the decisions read them all.
            None => return Some(Taken::Read(info)),
        }
    }
    let sent = kill(plan.master, signal);
    // On a busy CPU the master was woken beside the launcher, which has its reload's work
    // to do next: the master goes first (measured: half the time to its handler).
    let _ = nix::sched::sched_yield();
    Some(Taken::Sent {
        signal,
        master: plan.master,
        sent,
        children,
    })
}

/// The signal a signalfd read (`ssi_signo`, `ssi_code`) carries, if it is one that goes
/// straight to the master.
fn direct_signal(signo: u32, code: i32) -> Option<Signal> {
    let signal = Signal::try_from(i32::try_from(signo).ok()?).ok()?;
    goes_direct(signal, code == SI_KERNEL).then_some(signal)
}

/// The master's children file into `buf`: its length, 0 if it cannot be read (the master
/// is gone, or the kernel has no such file), `None` if it does not fit.
fn read_children(plan: &Plan, buf: &mut Children) -> Option<usize> {
    let Some(file) = &plan.children else {
        return Some(0);
    };
    let mut len = 0;
    loop {
        match pread(file, &mut buf[len..], len as i64) {
            Ok(0) | Err(_) => return Some(len),
            Ok(n) => len += n,
        }
        if len == buf.len() {
            return None;
        }
    }
}

/// The pids in a children file's text ([`crate::process::procfs::parse_pids`]).
pub fn parse_children(text: &[u8]) -> Vec<Pid> {
    crate::process::procfs::parse_pids(text)
        .into_iter()
        .map(Pid::from_raw)
        .collect()
}

/// Addresses in the code that [`take`] runs: the release keeps their pages resident.
pub fn hot_pages() -> [usize; 9] {
    [
        take as *const () as usize,
        read_children as *const () as usize,
        nix::unistd::read as *const () as usize,
        nix::libc::read as *const () as usize,
        nix::libc::pread as *const () as usize,
        nix::libc::kill as *const () as usize,
        nix::libc::sched_yield as *const () as usize,
        goes_direct as *const () as usize,
        direct_signal as *const () as usize,
    ]
}

#[cfg(test)]
mod tests;
