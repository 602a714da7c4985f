//! The HTTP probe: proves that an HTTP server answers behind each address of
//! the host, not merely that a socket is listening.
//!
//! Any status line counts as reachable, a 400 as much as a 200: the question
//! is "does HTTP answer on this address", not "is the app healthy" (what a
//! rejected `Host` means is [`crate::verify`]'s to say). The work is split by
//! job: which addresses of the host are probed (`targets`), the request and
//! the reading of its status line (`http`), and the probes themselves on
//! non-blocking sockets ([`Probes`](crate::probe::Probes), which the supervisor polls beside its
//! signalfd; [`probe_all`](crate::probe::probe_all) polls them alone for `check` and the installer).
//! `docs/sockets-and-probes.md` gives the reasons.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

mod http;
mod nonblocking;
mod targets;
#[cfg(test)]
mod tests;

pub use http::{MAX_STATUS_LINE, Request, StatusLine, parse_status_line};
pub use nonblocking::Probes;
pub use targets::{Addresses, Families, ipv6_flags, loopback_only, targets, unused_because};

/// What one probe found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP status line arrived; the status code.
    Status(u16),
    /// Nothing listens on the address (the ERR_CONNECTION_REFUSED case).
    Refused,
    /// No status line before the deadline (connect, send or read).
    Timeout,
    /// Anything else: "connection reset", "not HTTP: `<first bytes>`", ...
    Error(String),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Status(code) => write!(f, "HTTP {code}"),
            Outcome::Refused => f.write_str("connection refused"),
            // The timeout is not stored in the outcome; callers that want
            // "timed out after 2s" append the duration they passed.
            Outcome::Timeout => f.write_str("timed out"),
            Outcome::Error(message) => f.write_str(message),
        }
    }
}

/// One address and what probing it found.
#[derive(Clone, Debug)]
pub struct ProbeResult {
    pub addr: SocketAddr,
    /// The `Host` header sent.
    pub host: String,
    pub outcome: Outcome,
}

impl ProbeResult {
    /// Any status line counts as reachable (see the module doc).
    pub fn reachable(&self) -> bool {
        matches!(self.outcome, Outcome::Status(_))
    }
}

impl fmt::Display for ProbeResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (Host {}): {}", self.addr, self.host, self.outcome)
    }
}

/// One probe, alone, with the address as its Host.
pub fn probe(addr: SocketAddr, path: &str, timeout: Duration) -> ProbeResult {
    probe_all(&[Request::to(addr)], path, timeout).remove(0)
}

/// Makes every probe at once and returns the results in the order of
/// `requests`. The whole call is bounded by `timeout`: every probe shares one
/// deadline. This is [`Probes`] run to its end alone, for callers that have
/// nothing else to wait for (`check`, the installer).
pub fn probe_all(requests: &[Request], path: &str, timeout: Duration) -> Vec<ProbeResult> {
    let mut probes = Probes::start(requests, path, timeout);
    crate::pollset::run_to_end(&mut probes);
    probes.results()
}
