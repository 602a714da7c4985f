//! A new gunicorn on the socket the launcher holds. After a crash: a master that dies while
//! serving has its orphaned workers cleared and a new gunicorn starts on the same socket, so
//! that connections wait in the socket's backlog instead of being refused. At most `burst`
//! restarts within `interval` (systemd's start limit, 5 within 10 s, by default); one more
//! crash ends the launcher with the master's status, for systemd's `Restart=` to take over.
//! Backoff: the first restart in a quiet period is immediate, the next ones wait 100 ms,
//! 200 ms, 400 ms … (at most 2 s), counting the crashes within `interval`.
//!
//! The same command serves a USR2 upgrade on the held socket ([`super::upgrade`]): gunicorn's
//! own re-exec hands a socket it got with `LISTEN_FDS` to the new master at the wrong
//! descriptor (it keeps the socket at another number than 3), so the new master would fail.

use super::{State, Supervisor, first_check};
use crate::error::Failure;
use crate::log;
use crate::spawn;
use crate::tree;
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::WaitStatus;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How to start gunicorn again, and how often that may happen.
pub struct Respawn {
    /// The same command, with the held socket as fd 3.
    pub command: spawn::Command,
    pub burst: u32,
    pub interval: Duration,
}

/// How long the orphaned workers of a dead master get for TERM before SIGKILL.
const ORPHANS: Duration = Duration::from_secs(5);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The pause before restart `n` within the interval (0 for the first).
pub fn backoff(recent: usize) -> Duration {
    if recent == 0 {
        return Duration::ZERO;
    }
    let factor = 1u32 << (recent - 1).min(5);
    (FIRST_BACKOFF * factor).min(MAX_BACKOFF)
}

/// Whether a crash at `now` may be restarted, given the earlier crashes in `recent` (oldest
/// first): crashes older than `interval` are forgotten; within the limit the crash is recorded
/// and the pause before the restart returned; past it (`burst` restarts already within
/// `interval`), `None`, and nothing is recorded.
pub fn admit(
    recent: &mut VecDeque<Instant>,
    now: Instant,
    burst: u32,
    interval: Duration,
) -> Option<Duration> {
    while recent
        .front()
        .is_some_and(|&t| now.duration_since(t) >= interval)
    {
        recent.pop_front();
    }
    if recent.len() >= burst as usize {
        return None;
    }
    let delay = backoff(recent.len());
    recent.push_back(now);
    Some(delay)
}

impl Supervisor {
    /// When the master died of `status`: restarts it if it had been serving, the socket is
    /// held and the limit allows. Returns whether a restart is under way.
    pub(super) fn restart_after_crash(&mut self, status: WaitStatus) -> bool {
        let Some(respawn) = &self.respawn else {
            return false;
        };
        if !matches!(self.state, State::Serving { .. } | State::Reloading { .. }) {
            return false;
        }
        let now = Instant::now();
        let window = respawn.interval;
        let what = super::describe_status(status);
        let Some(delay) = admit(&mut self.crashes, now, respawn.burst, window) else {
            log::error(&format!(
                "gunicorn's master died ({what}): {}, more than supervise.restart_burst = {} \
                 allows; not restarting it, exiting with its status",
                crate::log::count(self.crashes.len() + 1, "crash", "crashes")
                    + &format!(" within {window:?}"),
                respawn.burst
            ));
            return false;
        };
        self.restarts += 1;
        let line = format!(
            "gunicorn's master died ({what}) while serving; the socket stays open and a new \
             gunicorn starts on it{} (restart {} of at most {} within {window:?}; {} in all)",
            if delay.is_zero() {
                String::new()
            } else {
                format!(" in {delay:?}")
            },
            self.crashes.len(),
            respawn.burst,
            self.restarts
        );
        log::warn(&line);
        self.systemd.status(&line);
        let orphans = self.gunicorns();
        tree::signal_all(&orphans, Signal::SIGTERM);
        tree::signal_all(&orphans, Signal::SIGCONT);
        self.outbox.queue.clear();
        self.census = None;
        self.in_flight = None;
        self.state = State::Restarting {
            at: now + delay,
            crashed: status,
            orphans_deadline: now + ORPHANS.min(self.settings.stop_timeout),
            killed: false,
            orphans_gone: false,
        };
        true
    }

    /// Starts the new gunicorn once the old one's processes are gone and the backoff has
    /// passed; SIGKILLs orphans that outlive their TERM.
    pub(super) fn restart_if_due(&mut self, now: Instant) {
        if !matches!(self.state, State::Restarting { .. }) {
            return;
        }
        let orphans = self.gunicorns();
        let State::Restarting {
            at,
            orphans_deadline,
            killed,
            crashed,
            orphans_gone,
        } = &mut self.state
        else {
            return;
        };
        *orphans_gone = orphans.is_empty();
        if !orphans.is_empty() {
            if !*killed && now >= *orphans_deadline {
                *killed = true;
                log::warn(&format!(
                    "{} process(es) of the dead master did not stop within {ORPHANS:?}; killing them",
                    orphans.len()
                ));
                let _ = killpg(self.group, Signal::SIGKILL);
                tree::signal_all(&orphans, Signal::SIGKILL);
            }
            return;
        }
        if now < *at {
            return;
        }
        let crashed = *crashed;
        let Some(respawn) = &self.respawn else {
            return;
        };
        match spawn::spawn(&respawn.command) {
            Ok(master) => {
                log::info(&format!("restarted gunicorn, pid {master}"));
                self.master = master;
                self.group = master;
                self.last_id += 1;
                self.state = State::Starting {
                    check: first_check(self.last_id, now, self.settings.startup_timeout),
                    held: Vec::new(),
                };
            }
            Err(Failure { code, message }) => {
                log::error(&format!("cannot restart gunicorn: {message}"));
                self.systemd
                    .status(&format!("cannot restart gunicorn: {message}"));
                self.code = Some(code);
                self.master_status = Some(crashed);
                // Nothing runs and nothing will: the loop ends once the reap sees no child.
                self.state = State::Stopping(super::Stop {
                    signal: None,
                    deadline: now,
                    killed: true,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_restart_is_immediate_and_the_next_ones_back_off() {
        let ms = |n| Duration::from_millis(n);
        let waits: Vec<Duration> = (0..8).map(backoff).collect();
        assert_eq!(
            waits,
            [0, 100, 200, 400, 800, 1600, 2000, 2000].map(ms).to_vec()
        );
    }

    const BURST: u32 = 5;
    const INTERVAL: Duration = Duration::from_secs(10);

    /// The verdicts for crashes at these offsets (ms) from a start, with the default limit.
    fn verdicts(offsets_ms: &[u64]) -> Vec<Option<Duration>> {
        let start = Instant::now();
        let mut recent = VecDeque::new();
        offsets_ms
            .iter()
            .map(|&ms| {
                let now = start + Duration::from_millis(ms);
                admit(&mut recent, now, BURST, INTERVAL)
            })
            .collect()
    }

    #[test]
    fn a_master_crashing_every_few_seconds_for_a_minute_is_restarted_every_time() {
        for every_ms in [2_500, 3_000, 5_000] {
            let offsets: Vec<u64> = (0..=60_000 / every_ms).map(|n| n * every_ms).collect();
            let got = verdicts(&offsets);
            assert!(
                got.iter().all(Option::is_some),
                "every {every_ms} ms: {got:?}"
            );
        }
    }

    #[test]
    fn one_crash_past_the_burst_within_the_interval_is_not_restarted() {
        let got = verdicts(&[0, 1_000, 2_000, 3_000, 4_000, 5_000]);
        assert!(got[..5].iter().all(Option::is_some), "{got:?}");
        assert_eq!(got[5], None);
        // Exactly one interval after the first crash, that one is forgotten.
        assert!(verdicts(&[0, 1_000, 2_000, 3_000, 4_000, 10_000])[5].is_some());
    }

    #[test]
    fn a_refused_crash_is_not_counted_and_a_quiet_interval_starts_afresh() {
        let ms = |n| Some(Duration::from_millis(n));
        let got = verdicts(&[0, 100, 200, 300, 400, 500, 600, 20_000, 20_100]);
        assert_eq!(got[5], None);
        assert_eq!(got[6], None);
        assert_eq!(got[7..], [ms(0), ms(100)]);
    }

    #[test]
    fn a_burst_of_zero_never_restarts() {
        let mut recent = VecDeque::new();
        assert_eq!(admit(&mut recent, Instant::now(), 0, INTERVAL), None);
        assert!(recent.is_empty());
    }

    proptest::proptest! {
        /// Whatever the crash times, no `interval`-long span holds more than `burst` admitted
        /// crashes, and a crash is refused only when `burst` admitted ones precede it within
        /// `interval`.
        #[test]
        fn admitted_crashes_never_exceed_the_burst_in_any_interval(
            gaps in proptest::collection::vec(0u64..4_000, 1..60),
            burst in 0u32..8,
        ) {
            let start = Instant::now();
            let mut recent = VecDeque::new();
            let mut admitted: Vec<Instant> = Vec::new();
            let mut at = start;
            for gap in gaps {
                at += Duration::from_millis(gap);
                let before = admitted
                    .iter()
                    .filter(|&&t| at.duration_since(t) < INTERVAL)
                    .count();
                let verdict = admit(&mut recent, at, burst, INTERVAL);
                proptest::prop_assert_eq!(verdict.is_none(), before >= burst as usize);
                if verdict.is_some() {
                    admitted.push(at);
                }
            }
        }
    }
}
