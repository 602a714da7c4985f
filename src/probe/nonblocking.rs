//! Probes under way on non-blocking sockets: each connects, sends its request
//! and reads its status line as its descriptor becomes ready, all before one
//! shared deadline. No thread is started and nothing here waits: the caller
//! polls the descriptors ([`Probes::poll_fds`]) and hands back what is ready.

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
    deadline: Instant,
    probes: Vec<Probe>,
}

struct Probe {
    request: Request,
    stage: Stage,
}

enum Stage {
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
    /// Starts a probe of each address; a zero `timeout` times them all out
    /// at once.
    pub fn start(requests: &[Request], path: &str, timeout: Duration) -> Probes {
        let deadline = Instant::now() + timeout.min(MAX_TIMEOUT);
        let probes = requests
            .iter()
            .map(|request| Probe {
                request: request.clone(),
                stage: if timeout.is_zero() {
                    Stage::Done(Outcome::Timeout)
                } else {
                    connect(request, path)
                },
            })
            .collect();
        Probes { deadline, probes }
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
    fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Every probe has its outcome.
    fn done(&self) -> bool {
        self.probes
            .iter()
            .all(|p| matches!(p.stage, Stage::Done(_)))
    }

    /// What to poll, one entry per probe (a finished probe asks for nothing),
    /// in the order [`Probes::advance`] takes the results.
    fn poll_fds(&self) -> Vec<PollFd<'_>> {
        self.probes
            .iter()
            .filter_map(|p| {
                let (socket, events) = match &p.stage {
                    Stage::Connecting { socket, .. } | Stage::Sending { socket, .. } => {
                        (socket, PollFlags::POLLOUT)
                    }
                    Stage::Reading { socket, .. } => (socket, PollFlags::POLLIN),
                    Stage::Done(_) => return None,
                };
                Some(PollFd::new(socket.as_fd(), events))
            })
            .collect()
    }

    /// Moves each probe on whose descriptor is ready (`ready` holds the
    /// `revents` in [`Probes::poll_fds`]' order; a shorter slice leaves the
    /// rest as they are), then times out what is left at the deadline.
    fn advance(&mut self, ready: &[PollFlags], now: Instant) {
        let mut ready = ready.iter();
        for probe in &mut self.probes {
            if matches!(probe.stage, Stage::Done(_)) {
                continue;
            }
            let Some(&events) = ready.next() else { break };
            if !events.is_empty() {
                probe.step();
            }
        }
        if now >= self.deadline {
            for probe in &mut self.probes {
                if !matches!(probe.stage, Stage::Done(_)) {
                    probe.stage = Stage::Done(Outcome::Timeout);
                }
            }
        }
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
    /// One step on a ready descriptor: never blocks.
    fn step(&mut self) {
        let stage = std::mem::replace(&mut self.stage, Stage::Done(Outcome::Timeout));
        self.stage = match stage {
            Stage::Connecting { socket, request } => {
                match nix::sys::socket::getsockopt(&socket, nix::sys::socket::sockopt::SocketError)
                {
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
            done @ Stage::Done(_) => done,
        };
    }
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
fn errno_outcome(e: Errno) -> Outcome {
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
