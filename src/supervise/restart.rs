//! The restart limit and its backoff (the decisions that use them are `machine`'s). After a crash: a master that dies while
//! serving has its orphaned workers cleared and a new gunicorn starts on the same socket, so
//! that connections wait in the socket's backlog instead of being refused. At most `burst`
//! restarts within `interval` (systemd's start limit, 5 within 10 s, by default); one more
//! crash ends the launcher with the master's status, for systemd's `Restart=` to take over.
//! Backoff: the first restart in a quiet period is immediate, the next ones wait 100 ms,
//! 200 ms, 400 ms … (at most 2 s), counting the crashes within `interval`.
//!
//! The same command serves a USR2 upgrade on the held socket (`upgrade`): gunicorn's
//! own re-exec hands a socket it got with `LISTEN_FDS` to the new master at the wrong
//! descriptor (it keeps the socket at another number than 3), so the new master would fail.

use crate::spawn;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How to start gunicorn again, and how often that may happen.
pub struct Respawn {
    /// The same command, with the held socket as fd 3.
    pub command: spawn::Command,
    pub burst: u32,
    pub interval: Duration,
}

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

#[cfg(test)]
mod tests;
