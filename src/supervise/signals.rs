//! The signals the supervisor takes: blocked before gunicorn exists and read from a
//! signalfd, so none is lost or taken by its default action meanwhile.

use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// What the launcher passes on (or acts on), besides SIGCHLD.
const FORWARDED: [Signal; 9] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGWINCH,
];

/// si_code of a signal the kernel raised itself (a terminal's WINCH or ^C).
pub(super) const SI_KERNEL: i32 = 0x80;

/// Blocks every signal the supervisor handles and opens the signalfd that receives them.
/// Done before gunicorn exists, and before any thread exists, so every thread inherits the
/// mask.
pub fn take_signals() -> Result<SignalFd, String> {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    set.add(Signal::SIGCHLD);
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
        .map_err(|e| format!("cannot block signals: {e}"))?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| format!("cannot create a signalfd: {e}"))
}
