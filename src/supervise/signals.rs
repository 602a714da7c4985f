//! Signals in and out: which ones the supervisor takes, which it holds
//! while gunicorn has no handlers yet, and how held ones are passed on one
//! at a time (Python runs one handler for any number of the same signal
//! that arrive before it looks).

use super::verification::gunicorns_workers;
use super::{State, Supervisor};
use crate::log;
use crate::tree;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::time::{Duration, Instant};

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

/// Reload and scaling signals kept while gunicorn starts; beyond that an
/// operator is hammering, and gunicorn itself (up to 23) keeps only five.
pub(super) const MAX_HELD: usize = 64;

/// Held signals go out one at a time: gunicorn (Python) runs one handler
/// for any number of the same signal that arrive before it looks, so the
/// next waits until the last one is no longer pending in the master, and
/// then this long, for Python to have run its handler.
const HELD_GAP: Duration = Duration::from_millis(10);
/// How often to look whether the last held signal was taken; and how long
/// to wait for that at most (a master that never takes it is stuck anyway).
const HELD_POLL: Duration = Duration::from_millis(5);
const HELD_PATIENCE: Duration = Duration::from_secs(1);

/// si_code of a signal the kernel raised itself (a terminal's WINCH or ^C).
const SI_KERNEL: i32 = 0x80;

/// Blocks every signal the supervisor handles and opens the signalfd that
/// receives them. Done before gunicorn exists, so none is lost or taken by
/// its default action meanwhile; before any thread exists, so every thread
/// inherits the mask.
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

impl Supervisor {
    pub(super) fn on_signal(&mut self, signo: i32, code: i32) {
        let Ok(sig) = Signal::try_from(signo) else {
            return;
        };
        match sig {
            Signal::SIGCHLD => {}
            // A terminal's resize is not an order to gunicorn: on WINCH a
            // daemonised gunicorn stops all its workers.
            Signal::SIGWINCH if code == SI_KERNEL => {}
            Signal::SIGTERM | Signal::SIGINT | Signal::SIGQUIT => self.begin_stop(Some(sig)),
            _ => match &mut self.state {
                // Stopping: gunicorn would not act on a reload or scaling
                // signal, and once Python has begun to exit its handlers are
                // gone: HUP, USR1 or USR2 would kill it (a clean stop turned
                // into exit 129), TTIN or TTOU stop it.
                State::Stopping(_) => {}
                State::Restarting { .. } => log::warn(&format!(
                    "{sig} not passed on: no gunicorn runs while it restarts after a crash"
                )),
                State::Starting { held, .. } => {
                    if held.len() < MAX_HELD {
                        log::info(&format!(
                            "holding {sig} until gunicorn has its signal handlers"
                        ));
                        held.push(sig);
                    } else if held.len() == MAX_HELD {
                        log::warn(&format!(
                            "more than {MAX_HELD} signals before gunicorn was up; dropping the rest"
                        ));
                        held.push(sig);
                    }
                }
                // Behind the held ones, to keep their order.
                _ if !self.outbox.queue.is_empty() => self.outbox.queue.push_back(sig),
                _ => self.deliver(sig),
            },
        }
    }

    /// gunicorn has installed its signal handlers (it sent READY=1, which
    /// every version does after setting them up, or it answered HTTP): what
    /// was held goes out now, one at a time.
    pub(super) fn gunicorn_is_up(&mut self) {
        // A READY=1 in any other state (a USR2 master's, an app's) changes nothing here.
        if !matches!(self.state, State::Starting { .. }) {
            return;
        }
        let State::Starting { check, held } = std::mem::replace(
            &mut self.state,
            State::Serving {
                verified: false,
                next_tick: None,
                recheck: None,
            },
        ) else {
            return;
        };
        let mut check = check;
        // gunicorn says it bound: look now rather than at the next retry.
        check.next = Instant::now();
        self.state = State::Verifying { check };
        self.outbox.queue.extend(held.into_iter().take(MAX_HELD));
        self.outbox.next = Instant::now();
    }

    /// A reload, upgrade or scaling signal, to a gunicorn that can take it.
    pub(super) fn deliver(&mut self, sig: Signal) {
        match sig {
            Signal::SIGHUP => {
                // Named before the signal goes: after it, new workers appear.
                let previous = tree::named(gunicorns_workers(self.master));
                self.forward(sig);
                log::info("reloading gunicorn (HUP); READY=1 again once the new workers answer");
                self.reload(previous);
            }
            // gunicorn's own USR2 cannot pass on a socket it was given with LISTEN_FDS:
            // the launcher upgrades on the socket it holds instead.
            Signal::SIGUSR2 if self.respawn.is_some() => self.upgrade_on_held_socket(),
            Signal::SIGUSR2 => {
                self.forward(sig);
                log::info(
                    "forwarded USR2: gunicorn starts a new master; the old one is stopped once a new worker answers",
                );
                self.watch_forwarded_upgrade();
            }
            _ => self.forward(sig),
        }
    }

    pub(super) fn forward(&self, sig: Signal) {
        if let Err(e) = kill(self.master, sig) {
            log::warn(&format!(
                "could not forward {sig} to gunicorn pid {}: {e}",
                self.master
            ));
        }
    }

    /// Delivers the next held signal once the last one has been taken.
    pub(super) fn deliver_next_held(&mut self, now: Instant) {
        if let Some((last, sent)) = self.outbox.last
            && now < sent + HELD_PATIENCE
            && crate::proc::pending_signals(self.master.as_raw())
                .is_some_and(|mask| mask & (1 << (last as i32 - 1)) != 0)
        {
            self.outbox.next = now + HELD_POLL;
            return;
        }
        let Some(sig) = self.outbox.queue.pop_front() else {
            return;
        };
        self.deliver(sig);
        self.outbox.last = Some((sig, now));
        self.outbox.next = now + HELD_GAP;
    }
}
