//! Probes under way on non-blocking sockets: each connects, sends its request
//! and reads its status line as its descriptor becomes ready, before its own
//! deadline. At most a few hundred are open at once (fewer when the process may
//! open few files): a host with thousands of addresses is probed in turn, never
//! past `RLIMIT_NOFILE`. No thread is started and nothing here waits: the caller
//! polls the descriptors and hands back what is ready.

use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags};

use super::http::{
    MAX_STATUS_LINE, Request, StatusLine, build_request, parse_status_line, preview,
};
use super::{Outcome, ProbeResult};

/// Longest timeout honoured; larger ones (up to `Duration::MAX`) would overflow
/// `Instant` arithmetic, and nobody waits a year for a probe.
const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Probes under way, on non-blocking sockets whose readiness the caller
/// waits for: the supervisor polls them beside its signalfd, so it never
/// waits for an app that is slow to answer; [`probe_all`](super::probe_all)
/// polls them alone. No thread is started.
///
/// Each probe connects, sends `GET <path> HTTP/1.1` with its [`Request`]'s
/// `Host`, `User-Agent: gunicorn-launcher` and
/// `Connection: close`, and reads until the end of the status line (at most
/// [`MAX_STATUS_LINE`] bytes), which it parses as `HTTP/x.y NNN`. Everything,
/// connect included, happens before the shared deadline.
pub struct Probes {
    timeout: Duration,
    path: String,
    /// Probes open at once, at most.
    slots: usize,
    probes: Vec<Probe>,
}

struct Probe {
    request: Request,
    stage: Stage,
    /// Set when it starts.
    deadline: Option<Instant>,
    /// Once connected, wait for [`Probes::release`] before sending.
    hold: bool,
}

enum Stage {
    /// Waiting for a slot.
    Queued,
    /// Connected, the request not sent until [`Probes::release`]: the caller first finds
    /// out which process took the connection.
    Held {
        socket: OwnedFd,
        request: Vec<u8>,
    },
    /// `connect` is under way; then `request` is sent.
    Connecting {
        socket: OwnedFd,
        request: Vec<u8>,
    },
    /// `request[sent..]` is still to be written.
    Sending {
        socket: OwnedFd,
        request: Vec<u8>,
        sent: usize,
    },
    /// The status line so far.
    Reading {
        socket: OwnedFd,
        received: Vec<u8>,
    },
    Done(Outcome),
}

impl Probes {
    /// Starts a probe of each address (as many at once as `slots()` allows, the
    /// rest as others end); a zero `timeout` times them all out at once.
    pub fn start(requests: &[Request], path: &str, timeout: Duration) -> Probes {
        Probes::start_in(requests, path, timeout, slots())
    }

    /// [`Probes::start`] with at most `slots` probes open at once.
    pub(super) fn start_in(
        requests: &[Request],
        path: &str,
        timeout: Duration,
        slots: usize,
    ) -> Probes {
        let mut probes = Probes::queued(requests, path, timeout, slots, false);
        probes.start_queued(Instant::now());
        probes
    }

    /// The probes, none started; `hold` makes each wait for [`Probes::release`] once
    /// connected.
    fn queued(
        requests: &[Request],
        path: &str,
        timeout: Duration,
        slots: usize,
        hold: bool,
    ) -> Probes {
        let probes = requests
            .iter()
            .map(|request| Probe {
                request: request.clone(),
                stage: if timeout.is_zero() {
                    Stage::Done(Outcome::Timeout)
                } else {
                    Stage::Queued
                },
                deadline: None,
                hold,
            })
            .collect();
        Probes {
            timeout: timeout.min(MAX_TIMEOUT),
            path: path.to_string(),
            slots: slots.max(1),
            probes,
        }
    }

    /// One probe that connects and then waits for [`Probes::release`] before it sends its
    /// request (to learn first which process accepted the connection).
    pub fn start_held(request: Request, path: &str, timeout: Duration) -> Probes {
        let mut probes = Probes::queued(std::slice::from_ref(&request), path, timeout, 1, true);
        probes.start_queued(Instant::now());
        if let Some(p) = probes.probes.first_mut() {
            // Connected at once: held before anything is sent.
            p.stage = match std::mem::replace(&mut p.stage, Stage::Queued) {
                Stage::Sending {
                    socket, request, ..
                } => Stage::Held { socket, request },
                other => other,
            };
        }
        probes
    }

    /// The connection's two ends (this side, the server's) while the probe is held.
    pub fn held(&self) -> Option<(SocketAddr, SocketAddr)> {
        self.probes.iter().find_map(|p| match &p.stage {
            Stage::Held { socket, .. } => {
                let local: nix::sys::socket::SockaddrStorage =
                    nix::sys::socket::getsockname(socket.as_raw_fd()).ok()?;
                Some((storage_addr(&local)?, p.request.addr))
            }
            _ => None,
        })
    }

    /// Sends the held probe's request.
    pub fn release(&mut self) {
        for p in &mut self.probes {
            p.stage = match std::mem::replace(&mut p.stage, Stage::Queued) {
                Stage::Held { socket, request } => send_more(socket, request, 0),
                other => other,
            };
        }
    }

    /// Starts queued probes while slots are free.
    fn start_queued(&mut self, now: Instant) {
        let mut open = self.probes.iter().filter(|p| p.open()).count();
        for p in self
            .probes
            .iter_mut()
            .filter(|p| matches!(p.stage, Stage::Queued))
        {
            if open >= self.slots {
                break;
            }
            p.stage = match connect(&p.request, &self.path) {
                // A connect to an address of this host is as a rule complete by the time
                // `connect` returns, though a non-blocking one says EINPROGRESS: sending
                // at once saves a trip round the caller's loop. EAGAIN (still connecting)
                // leaves it waiting to be writable; a failed connect shows as the send's
                // error, which is the connect's.
                Stage::Connecting { socket, request } if !p.hold => send_more(socket, request, 0),
                other => other,
            };
            p.deadline = Some(now + self.timeout);
            open += usize::from(p.open());
        }
    }

    /// What the first probe found, once it is done.
    pub fn first_outcome(&self) -> Option<&Outcome> {
        match &self.probes.first()?.stage {
            Stage::Done(outcome) => Some(outcome),
            _ => None,
        }
    }

    /// The results in the order of the addresses; an unfinished probe
    /// counts as timed out.
    pub fn results(self) -> Vec<ProbeResult> {
        self.probes
            .into_iter()
            .map(|p| ProbeResult {
                addr: p.request.addr,
                host: p.request.host,
                outcome: match p.stage {
                    Stage::Done(outcome) => outcome,
                    _ => Outcome::Timeout,
                },
            })
            .collect()
    }
}

impl crate::pollset::Pollable for Probes {
    /// The nearest deadline of the probes under way.
    fn deadline(&self) -> Instant {
        self.probes
            .iter()
            .filter(|p| p.open())
            .filter_map(|p| p.deadline)
            .min()
            .unwrap_or_else(Instant::now)
    }

    /// Every probe has its outcome.
    fn done(&self) -> bool {
        self.probes
            .iter()
            .all(|p| matches!(p.stage, Stage::Done(_)))
    }

    /// What to poll, one entry per open probe, in the order [`Probes::advance`](crate::pollset::Pollable::advance)
    /// takes the results.
    fn poll_fds(&self) -> Vec<PollFd<'_>> {
        self.probes
            .iter()
            .filter_map(|p| {
                let (socket, events) = match &p.stage {
                    Stage::Connecting { socket, .. } | Stage::Sending { socket, .. } => {
                        (socket, PollFlags::POLLOUT)
                    }
                    Stage::Reading { socket, .. } => (socket, PollFlags::POLLIN),
                    Stage::Queued | Stage::Held { .. } | Stage::Done(_) => return None,
                };
                Some(PollFd::new(socket.as_fd(), events))
            })
            .collect()
    }

    /// Moves each probe on whose descriptor is ready (`ready` holds the
    /// `revents` in [`Probes::poll_fds`](crate::pollset::Pollable::poll_fds)' order; a shorter slice leaves the
    /// rest as they are), times out those past their deadline, and starts
    /// queued ones in the slots that freed.
    fn advance(&mut self, ready: &[PollFlags], now: Instant) {
        let mut ready = ready.iter();
        for probe in &mut self.probes {
            if !probe.open() {
                continue;
            }
            let Some(&events) = ready.next() else { break };
            if !events.is_empty() {
                probe.step();
            }
        }
        for probe in &mut self.probes {
            if probe.open() && probe.deadline.is_some_and(|d| now >= d) {
                probe.stage = Stage::Done(Outcome::Timeout);
            }
        }
        self.start_queued(now);
    }
}

/// Probe sockets open at once, at most: a share of the descriptors this process may still
/// open (`RLIMIT_NOFILE`'s soft limit; raising it would raise gunicorn's too, which inherits
/// it), and never more than a few hundred.
fn slots() -> usize {
    const MOST: usize = 256;
    let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(soft, _)| soft);
    let open = open_fds().unwrap_or(64);
    let free = usize::try_from(soft)
        .unwrap_or(usize::MAX)
        .saturating_sub(open);
    (free / 2).clamp(1, MOST)
}

/// How many descriptors this process has open: the size Linux 6.2 and later report for
/// `/proc/self/fd` (one `stat`; it counts slots taken but not yet filled, as by an `accept`
/// under way, which the limit counts too), or, where that is 0, the count of its entries.
pub(super) fn open_fds() -> Option<usize> {
    let size = std::fs::metadata("/proc/self/fd").ok()?.len();
    match usize::try_from(size) {
        Ok(open) if open > 0 => Some(open),
        _ => std::fs::read_dir("/proc/self/fd").ok().map(Iterator::count),
    }
}

/// The first stage of a probe: a non-blocking connect.
fn connect(request: &Request, path: &str) -> Stage {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, SockaddrIn6, socket};
    let addr = request.addr;
    let request = match build_request(&request.host, path) {
        Ok(request) => request,
        Err(message) => return Stage::Done(Outcome::Error(message)),
    };
    if let SocketAddr::V6(v6) = addr
        && v6.ip().is_unicast_link_local()
        && v6.scope_id() == 0
    {
        // The kernel would answer EINVAL ("Invalid argument"), which hides
        // the real cause.
        return Stage::Done(Outcome::Error(
            "link-local address without a scope id".to_owned(),
        ));
    }
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
    let socket = match socket(family, SockType::Stream, flags, None) {
        Ok(socket) => socket,
        Err(e) => return Stage::Done(errno_outcome(e)),
    };
    let fd = socket.as_raw_fd();
    let connected = match addr {
        SocketAddr::V4(v4) => nix::sys::socket::connect(fd, &SockaddrIn::from(v4)),
        SocketAddr::V6(v6) => nix::sys::socket::connect(fd, &SockaddrIn6::from(v6)),
    };
    match connected {
        Ok(()) => Stage::Sending {
            socket,
            request,
            sent: 0,
        },
        Err(Errno::EINPROGRESS | Errno::EINTR) => Stage::Connecting { socket, request },
        Err(e) => Stage::Done(errno_outcome(e)),
    }
}

impl Probe {
    /// Started and not yet done: it holds a socket.
    fn open(&self) -> bool {
        !matches!(self.stage, Stage::Queued | Stage::Done(_))
    }

    /// One step on a ready descriptor: never blocks.
    fn step(&mut self) {
        let stage = std::mem::replace(&mut self.stage, Stage::Done(Outcome::Timeout));
        self.stage = match stage {
            Stage::Connecting { socket, request } => {
                match nix::sys::socket::getsockopt(&socket, nix::sys::socket::sockopt::SocketError)
                {
                    Ok(0) if self.hold => Stage::Held { socket, request },
                    Ok(0) => send_more(socket, request, 0),
                    Ok(errno) => Stage::Done(errno_outcome(Errno::from_raw(errno))),
                    Err(e) => Stage::Done(errno_outcome(e)),
                }
            }
            Stage::Sending {
                socket,
                request,
                sent,
            } => send_more(socket, request, sent),
            Stage::Reading {
                socket,
                mut received,
            } => read_more(socket, &mut received),
            other @ (Stage::Queued | Stage::Held { .. } | Stage::Done(_)) => other,
        };
    }
}

/// A socket address as the standard library names it.
fn storage_addr(s: &nix::sys::socket::SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = s.as_sockaddr_in() {
        return Some(SocketAddr::from((v4.ip(), v4.port())));
    }
    s.as_sockaddr_in6()
        .map(|v6| SocketAddr::from((v6.ip(), v6.port())))
}

/// Writes what the socket takes of the request; reading begins once all
/// of it is gone.
fn send_more(socket: OwnedFd, request: Vec<u8>, mut sent: usize) -> Stage {
    use nix::sys::socket::{MsgFlags, send};
    while sent < request.len() {
        match send(socket.as_raw_fd(), &request[sent..], MsgFlags::MSG_NOSIGNAL) {
            Ok(n) => sent += n,
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                return Stage::Sending {
                    socket,
                    request,
                    sent,
                };
            }
            Err(e) => return Stage::Done(errno_outcome(e)),
        }
    }
    Stage::Reading {
        socket,
        received: Vec::new(),
    }
}

/// Reads what has arrived, until the status line is complete, proven not
/// to be HTTP, or too long.
fn read_more(socket: OwnedFd, received: &mut Vec<u8>) -> Stage {
    let mut buf = [0u8; MAX_STATUS_LINE];
    loop {
        let room = MAX_STATUS_LINE - received.len();
        match nix::sys::socket::recv(
            socket.as_raw_fd(),
            &mut buf[..room],
            nix::sys::socket::MsgFlags::empty(),
        ) {
            Ok(0) if received.is_empty() => {
                return Stage::Done(Outcome::Error(
                    "connection closed before any response".to_owned(),
                ));
            }
            Ok(0) => {
                return Stage::Done(Outcome::Error(format!(
                    "connection closed inside the status line: {}",
                    preview(received)
                )));
            }
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => {
                return Stage::Reading {
                    socket,
                    received: std::mem::take(received),
                };
            }
            Err(e) => return Stage::Done(errno_outcome(e)),
        }
        match parse_status_line(received) {
            StatusLine::Status(code) => return Stage::Done(Outcome::Status(code)),
            StatusLine::NotHttp => {
                return Stage::Done(Outcome::Error(format!("not HTTP: {}", preview(received))));
            }
            StatusLine::Incomplete if received.len() == MAX_STATUS_LINE => {
                return Stage::Done(Outcome::Error(format!(
                    "no end of status line in the first {MAX_STATUS_LINE} bytes: {}",
                    preview(received)
                )));
            }
            StatusLine::Incomplete => {}
        }
    }
}

/// Short lowercase words for the errors an operator will meet, so a `check`
/// report reads "connection reset" rather than "Connection reset by peer (os error 104)".
pub(super) fn errno_outcome(e: Errno) -> Outcome {
    let message = match e {
        Errno::ETIMEDOUT => return Outcome::Timeout,
        Errno::ECONNREFUSED => return Outcome::Refused,
        Errno::ECONNRESET => "connection reset",
        Errno::ECONNABORTED => "connection aborted",
        Errno::EPIPE => "connection closed before the request was sent",
        Errno::EHOSTUNREACH => "host unreachable",
        Errno::ENETUNREACH => "network unreachable",
        // E.g. an address removed, or still tentative (IPv6 DAD), meanwhile.
        Errno::EADDRNOTAVAIL => "address not available",
        _ => return Outcome::Error(format!("{} ({e})", e.desc())),
    };
    Outcome::Error(message.to_owned())
}
