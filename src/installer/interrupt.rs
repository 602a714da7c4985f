//! A change that a signal cannot split. While `install` and `uninstall` change units,
//! SIGINT (a terminal's Ctrl-C), SIGTERM and SIGHUP are caught instead of ending the
//! process halfway: `install` looks at them between its steps (before it writes: nothing
//! changed; after: the previous files back), `uninstall` finishes (its half would leave a
//! unit running the launcher without its drop-in). The command then exits 128+N, as the
//! signal would have ended it. Their `systemctl` runs in a process group of its own, so a
//! terminal's Ctrl-C reaches the launcher alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

pub struct Interrupts {
    /// The last signal caught, or 0.
    seen: Arc<AtomicUsize>,
}

impl Interrupts {
    /// Catches the signals from here on (for the rest of the process).
    pub fn catch() -> Interrupts {
        let seen = Arc::new(AtomicUsize::new(0));
        for signal in [SIGINT, SIGTERM, SIGHUP] {
            // Not caught is the worse outcome, but the change must not stop for it.
            let _ = signal_hook::flag::register_usize(signal, seen.clone(), signal as usize);
        }
        Interrupts { seen }
    }

    /// The signal caught so far, if any.
    pub fn caught(&self) -> Option<i32> {
        match self.seen.load(Ordering::SeqCst) {
            0 => None,
            n => i32::try_from(n).ok(),
        }
    }

    /// The exit status for the signal caught: 128+N.
    pub fn status(signal: i32) -> i32 {
        128 + signal
    }

    /// The signal's name, for a message.
    pub fn name(signal: i32) -> String {
        nix::sys::signal::Signal::try_from(signal)
            .map_or_else(|_| format!("signal {signal}"), |s| s.to_string())
    }
}
