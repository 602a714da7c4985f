//! Work on non-blocking descriptors (probes, the firewall's tools) as one shape: what to
//! poll, what to do with what is ready, and by when. The supervisor polls such work beside
//! its own event sources; a caller with nothing else to wait for runs it to the end here.

use nix::poll::{PollFd, PollFlags, PollTimeout};
use std::time::Instant;

/// Work that goes on as its descriptors become ready.
pub trait Pollable {
    /// The descriptors to poll now, in the order [`Pollable::advance`] takes their events.
    fn poll_fds(&self) -> Vec<PollFd<'_>>;
    /// Moves on with what is ready (`ready`: the `revents` of `poll_fds`, in its order).
    fn advance(&mut self, ready: &[PollFlags], now: Instant);
    fn done(&self) -> bool;
    /// When the work gives up on what has not come.
    fn deadline(&self) -> Instant;
}

/// Polls `work` alone until it is done.
pub fn run_to_end(work: &mut impl Pollable) {
    while !work.done() {
        let mut fds = work.poll_fds();
        let wait = timeout(work.deadline());
        let ready: Vec<PollFlags> = match nix::poll::poll(&mut fds, wait) {
            Ok(_) => fds
                .iter()
                .map(|f| f.revents().unwrap_or(PollFlags::empty()))
                .collect(),
            Err(_) => Vec::new(),
        };
        drop(fds);
        work.advance(&ready, Instant::now());
    }
}

/// Milliseconds until `deadline`, rounded up (rounding down would wake early and spin on a
/// zero timeout).
pub fn timeout(deadline: Instant) -> PollTimeout {
    let ms = deadline
        .saturating_duration_since(Instant::now())
        .as_micros()
        .div_ceil(1000)
        .min(i32::MAX as u128);
    PollTimeout::try_from(ms as i32).unwrap_or(PollTimeout::MAX)
}
