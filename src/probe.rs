//! HTTP reachability probe: proves that an HTTP server answers behind each
//! address of the host, not merely that a socket is listening.
//!
//! Why `GET` and not `HEAD` (what `curl -I` sends): gunicorn >= 27 logs a
//! warning for every HEAD request answered by an app that writes a body, which
//! plain WSGI apps do, so a HEAD probe would put a warning in the app's log at
//! every start and every reload. The probe reads only the status line and then
//! closes, so the body of a GET costs nothing.
//!
//! Why any status line counts: the question is "does HTTP answer on this
//! address", not "is the app healthy". The probe's `Host` is the probed
//! address, which Django rejects with 400 unless it is in `ALLOWED_HOSTS`; a
//! 400 (or 404, or 500) still proves that the port is reachable on that address
//! and served by an HTTP server.
//!
//! Why link-local IPv6 needs a scope id: an `fe80::/10` address is unique only
//! on its own link. Without the interface index in `sin6_scope_id` the kernel
//! cannot tell which link is meant, `connect` fails with `EINVAL`, and a
//! perfectly reachable address would be reported as unreachable.
//!
//! Concurrency: [`probe_all`] runs one short-lived thread per address, all
//! sharing one deadline. A host has a handful of addresses, so a handful of
//! threads is cheap (tens of microseconds each), and blocking std sockets with
//! per-call timeouts keep each probe a straight-line function that std already
//! makes EINTR- and SIGPIPE-safe. A poll loop over non-blocking sockets would
//! save those threads at the price of a hand-written connect/read state machine.
//! The threads are joined before `probe_all` returns, so an idle launcher keeps
//! none of them.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags};

use nix::ifaddrs::getifaddrs;
use nix::net::if_::{InterfaceFlags, if_nametoindex};

/// The most bytes read while waiting for the end of the status line. Real
/// status lines are about 20 bytes; the bound stops a server that streams
/// bytes without a newline from holding the probe or its memory.
pub const MAX_STATUS_LINE: usize = 1024;

/// Longest timeout honoured; larger ones (up to `Duration::MAX`) would overflow
/// `Instant` arithmetic, and nobody waits a year for a probe.
const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// How many bytes of a bad answer go into an error message: enough to
/// recognise the protocol (`SSH-2.0-...`, a TLS alert), short enough for a log line.
const PREVIEW_BYTES: usize = 48;

/// Address families to probe: those covered by the listener (`0.0.0.0` covers
/// IPv4 only; a dual-stack `::` covers both).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Families {
    pub ipv4: bool,
    pub ipv6: bool,
}

/// The host's addresses for a listener: those to probe, and those left out
/// with the reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Addresses {
    pub probe: Vec<SocketAddr>,
    pub skipped: Vec<(SocketAddr, &'static str)>,
}

/// The addresses to probe: loopback (127.0.0.1 if ipv4, ::1 if ipv6 and the
/// host has it) plus every address of every interface that is UP (IFF_UP) in
/// the requested families, from getifaddrs. IPv6 link-local (fe80::/10)
/// addresses carry the interface's scope id. Deduplicated, loopback first,
/// then in the kernel's interface order. IPv6 addresses the kernel does not
/// use (tentative, duplicate address detection failed) or is retiring
/// (deprecated) are not probed but listed, with the reason: a probe of one
/// would fail for reasons that have nothing to do with gunicorn.
pub fn targets(port: u16, families: Families) -> io::Result<Addresses> {
    let v6_flags = crate::proc::read("/proc/thread-self/net/if_inet6", 4096)
        .map(|text| ipv6_flags(&text))
        .unwrap_or_default();
    let mut found = Vec::new();
    let mut skipped = Vec::new();
    for ifa in getifaddrs()? {
        // A down interface's addresses are not configured for traffic; probing
        // them would fail for reasons that have nothing to do with gunicorn.
        if !ifa.flags.contains(InterfaceFlags::IFF_UP) {
            continue;
        }
        let Some(address) = ifa.address else { continue };
        if let Some(sin) = address.as_sockaddr_in() {
            if families.ipv4 {
                found.push(SocketAddr::V4(SocketAddrV4::new(sin.ip(), port)));
            }
        } else if let Some(sin6) = address.as_sockaddr_in6() {
            if !families.ipv6 {
                continue;
            }
            let ip = sin6.ip();
            let scope_id = if ip.is_unicast_link_local() {
                // Unusable without a scope (see the module doc), so skip it
                // rather than report a failure that is the probe's own.
                match link_scope(&ifa.interface_name, sin6.scope_id()) {
                    Some(scope_id) => scope_id,
                    None => continue,
                }
            } else {
                0
            };
            let addr = SocketAddr::V6(SocketAddrV6::new(ip, port, 0, scope_id));
            let flags = v6_flags
                .iter()
                .find(|(a, name, _)| *a == ip && *name == ifa.interface_name)
                .map_or(0, |(_, _, flags)| *flags);
            match unused_because(flags) {
                Some(why) => skipped.push((addr, why)),
                None => found.push(addr),
            }
        }
    }
    Ok(Addresses {
        probe: order_targets(port, families, found),
        skipped,
    })
}

/// `IFA_F_*` bits of an IPv6 address (linux/if_addr.h).
const IFA_F_DADFAILED: u32 = 0x08;
const IFA_F_DEPRECATED: u32 = 0x20;
const IFA_F_TENTATIVE: u32 = 0x40;

/// Why an IPv6 address with these flags is not probed, if it is not.
pub fn unused_because(flags: u32) -> Option<&'static str> {
    if flags & IFA_F_DADFAILED != 0 {
        Some("duplicate address detection failed: the kernel does not use it")
    } else if flags & IFA_F_TENTATIVE != 0 {
        Some("tentative (duplicate address detection under way): the kernel does not use it yet")
    } else if flags & IFA_F_DEPRECATED != 0 {
        Some("deprecated: the kernel is retiring it")
    } else {
        None
    }
}

/// `/proc/net/if_inet6`: one line per IPv6 address, `address ifindex
/// prefixlen scope flags name` (address 32 hex digits, the numbers hex).
pub fn ipv6_flags(text: &[u8]) -> Vec<(Ipv6Addr, String, u32)> {
    String::from_utf8_lossy(text)
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [hex, _, _, _, flags, name] = fields[..] else {
                return None;
            };
            let bits = u128::from_str_radix(hex, 16)
                .ok()
                .filter(|_| hex.len() == 32)?;
            let flags = u32::from_str_radix(flags, 16).ok()?;
            Some((Ipv6Addr::from(bits), name.to_owned(), flags))
        })
        .collect()
}

/// The scope of a link-local address: the interface's index by name, or what
/// getifaddrs reported if the interface vanished between the two calls.
fn link_scope(interface: &str, reported: u32) -> Option<u32> {
    match if_nametoindex(interface) {
        Ok(index) if index != 0 => Some(index),
        _ if reported != 0 => Some(reported),
        _ => None,
    }
}

/// Loopback first, because a failure there is the most telling (gunicorn is
/// not answering at all) and the one a reader checks first; then the
/// interface addresses in the order found, each once.
fn order_targets(port: u16, families: Families, found: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = Vec::with_capacity(found.len() + 1);
    if families.ipv4 {
        out.push(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    // ::1 only when the host has it: with IPv6 disabled on `lo`, probing it
    // would fail on a host where nothing is wrong.
    let v6_loopback = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
    if families.ipv6 && found.contains(&v6_loopback) {
        out.push(v6_loopback);
    }
    for addr in found {
        let wanted = if addr.is_ipv4() {
            families.ipv4
        } else {
            families.ipv6
        };
        if wanted && !out.contains(&addr) {
            out.push(addr);
        }
    }
    out
}

/// What one probe found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP status line arrived; the status code.
    Status(u16),
    /// Nothing listens on the address (the ERR_CONNECTION_REFUSED case).
    Refused,
    /// No status line before the deadline (connect, send or read).
    Timeout,
    /// Anything else: "connection reset", "not HTTP: <first bytes>", ...
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

/// One probe to make: the address to connect to, and the `Host` header to
/// send, as a browser would.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub addr: SocketAddr,
    pub host: String,
}

impl Request {
    /// What a browser pointed at the address itself sends
    /// (`http://198.18.0.1:8001/`).
    pub fn to(addr: SocketAddr) -> Request {
        Request {
            addr,
            host: host_header(&address_host(addr.ip()), addr.port()),
        }
    }

    /// What a browser sends for `http://NAME:PORT/`, delivered to `addr`
    /// (where the name resolves for the clients).
    pub fn named(addr: SocketAddr, name: &str) -> Request {
        Request {
            addr,
            host: host_header(name, addr.port()),
        }
    }

    /// The Host names the address itself, not a configured name.
    pub fn is_address(&self) -> bool {
        self.host == Request::to(self.addr).host
    }
}

/// An IP address as a URL's host: IPv6 in brackets, without the `%scope`
/// (a zone id means nothing to the server, and a raw `%` is not valid there).
fn address_host(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// `host:port`, or `host` alone on port 80, as browsers write it.
fn host_header(host: &str, port: u16) -> String {
    if port == 80 {
        host.to_owned()
    } else {
        format!("{host}:{port}")
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
/// deadline. This is [`Probes`] with a poll loop of its own, for callers
/// that have nothing else to wait for (`check`, the installer).
pub fn probe_all(requests: &[Request], path: &str, timeout: Duration) -> Vec<ProbeResult> {
    let mut probes = Probes::start(requests, path, timeout);
    while !probes.done() {
        let mut fds = probes.poll_fds();
        let wait = poll_timeout(probes.deadline());
        let ready = match nix::poll::poll(&mut fds, wait) {
            Ok(_) => fds
                .iter()
                .map(|f| f.revents().unwrap_or(PollFlags::empty()))
                .collect(),
            Err(_) => Vec::new(),
        };
        drop(fds);
        probes.advance(&ready, Instant::now());
    }
    probes.results()
}

/// Milliseconds until `deadline`, rounded up (rounding down would wake
/// early and spin on a zero timeout).
pub fn poll_timeout(deadline: Instant) -> nix::poll::PollTimeout {
    let ms = deadline
        .saturating_duration_since(Instant::now())
        .as_micros()
        .div_ceil(1000)
        .min(i32::MAX as u128);
    nix::poll::PollTimeout::try_from(ms as i32).unwrap_or(nix::poll::PollTimeout::MAX)
}

/// Probes under way, on non-blocking sockets whose readiness the caller
/// waits for: the supervisor polls them beside its signalfd, so it never
/// waits for an app that is slow to answer; [`probe_all`] polls them alone.
/// No thread is started.
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

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Every probe has its outcome.
    pub fn done(&self) -> bool {
        self.probes
            .iter()
            .all(|p| matches!(p.stage, Stage::Done(_)))
    }

    /// What to poll, one entry per probe (a finished probe asks for nothing),
    /// in the order [`Probes::advance`] takes the results.
    pub fn poll_fds(&self) -> Vec<PollFd<'_>> {
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
    pub fn advance(&mut self, ready: &[PollFlags], now: Instant) {
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

/// The request bytes, or why `path` or `host` cannot be sent: a space or a
/// control character would end the request line early or inject a header.
fn build_request(host: &str, path: &str) -> Result<Vec<u8>, String> {
    let path = if path.is_empty() { "/" } else { path };
    if !path.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "invalid probe path {path:?}: only visible ASCII is allowed (percent-encode the rest)"
        ));
    }
    if host.is_empty() || !host.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "invalid Host {host:?}: only visible ASCII is allowed"
        ));
    }
    Ok(format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: gunicorn-launcher\r\nConnection: close\r\n\r\n"
    )
    .into_bytes())
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

/// The first bytes of an answer, escaped so that binary junk stays one
/// printable line.
fn preview(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(PREVIEW_BYTES)];
    let ellipsis = if bytes.len() > PREVIEW_BYTES {
        "..."
    } else {
        ""
    };
    format!("{}{ellipsis}", shown.escape_ascii())
}

/// What the bytes received so far say about the status line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusLine {
    /// A complete status line (terminated by CRLF or a bare LF); the code.
    Status(u16),
    /// Everything so far fits a status line; its end has not arrived.
    Incomplete,
    /// These bytes cannot begin an HTTP status line.
    NotHttp,
}

/// Parses the start of an HTTP response: `HTTP/<digit>.<digit> <3 digits>`,
/// then an optional `SP reason-phrase`, then CRLF or a bare LF (RFC 9112
/// allows both for a tolerant recipient). Status codes 100–999 (RFC 9110's
/// three digits, the first not 0). Any major version counts: an odd but
/// answering HTTP server is still proof that the port is reachable.
///
/// Total on any input and decided on a prefix: garbage is rejected by its
/// first wrong byte, without waiting for a newline that may never come.
pub fn parse_status_line(buf: &[u8]) -> StatusLine {
    // 'D' is any digit, 'N' a digit 1-9; every other byte must match exactly.
    const SHAPE: &[u8; 12] = b"HTTP/D.D NDD";
    let mut code: u16 = 0;
    for (i, &b) in buf.iter().enumerate() {
        let fits = match SHAPE.get(i) {
            Some(b'D') => b.is_ascii_digit(),
            Some(b'N') => matches!(b, b'1'..=b'9'),
            Some(&expected) => b == expected,
            None => match b {
                b'\n' => return StatusLine::Status(code),
                b'\r' => {
                    return match buf.get(i + 1) {
                        None => StatusLine::Incomplete,
                        Some(b'\n') => StatusLine::Status(code),
                        Some(_) => StatusLine::NotHttp,
                    };
                }
                // Right after the code only the separator may follow, so
                // "HTTP/1.1 2000" is not taken for a 200.
                b' ' => true,
                _ if i == SHAPE.len() => false,
                // reason-phrase = *( HTAB / SP / VCHAR / obs-text )
                b'\t' | b'!'..=b'~' | 0x80..=0xff => true,
                _ => false,
            },
        };
        if !fits {
            return StatusLine::NotHttp;
        }
        if (9..12).contains(&i) {
            code = code * 10 + u16::from(b - b'0');
        }
    }
    StatusLine::Incomplete
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::{BufRead, Write};
    use std::net::TcpListener;
    use std::net::TcpStream;
    use std::sync::mpsc;
    use std::thread;

    const QUICK: Duration = Duration::from_millis(300);
    const GENEROUS: Duration = Duration::from_secs(5);
    /// Time allowed beyond a timeout before a probe counts as overrunning it:
    /// thread start-up and scheduling on a busy 2-core machine.
    const SLACK: Duration = Duration::from_millis(250);

    // ---------------------------------------------------------------- parser

    #[test]
    fn parses_common_status_lines() {
        let cases: &[(&[u8], u16)] = &[
            (b"HTTP/1.1 200 OK\r\n", 200),
            (b"HTTP/1.0 200 OK\r\n", 200),
            (b"HTTP/1.1 400 Bad Request\r\n", 400),
            (b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 404),
            (b"HTTP/1.1 500 Internal Server Error\r\n", 500),
            (b"HTTP/1.1 301 Moved Permanently\r\nLocation: /x\r\n", 301),
            (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n", 100),
            (b"HTTP/1.1 204\r\n", 204),
            (b"HTTP/1.1 204 \r\n", 204),
            (b"HTTP/1.1 200 OK\n", 200),
            (b"HTTP/1.1 200\n", 200),
            (b"HTTP/1.1 999 Whatever\r\n", 999),
            (b"HTTP/2.0 200 OK\r\n", 200),
            (b"HTTP/1.1 200 \xc3\xa9t\xc3\xa9\tfine\r\n", 200),
            (b"HTTP/1.1 200 OK  with  spaces \r\n", 200),
            (
                b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n",
                503,
            ),
        ];
        for (input, code) in cases {
            assert_eq!(
                parse_status_line(input),
                StatusLine::Status(*code),
                "{}",
                input.escape_ascii()
            );
        }
    }

    #[test]
    fn incomplete_until_the_line_ends() {
        let cases: &[&[u8]] = &[
            b"",
            b"H",
            b"HTTP",
            b"HTTP/",
            b"HTTP/1",
            b"HTTP/1.1",
            b"HTTP/1.1 ",
            b"HTTP/1.1 2",
            b"HTTP/1.1 200",
            b"HTTP/1.1 200 ",
            b"HTTP/1.1 200 OK",
            b"HTTP/1.1 200 OK\r",
            b"HTTP/1.1 200\r",
        ];
        for input in cases {
            assert_eq!(
                parse_status_line(input),
                StatusLine::Incomplete,
                "{}",
                input.escape_ascii()
            );
        }
    }

    #[test]
    fn rejects_what_is_not_a_status_line() {
        let cases: &[&[u8]] = &[
            b"\r\n",
            b"\n",
            b" HTTP/1.1 200 OK\r\n",
            b"\r\nHTTP/1.1 200 OK\r\n",
            b"http/1.1 200 OK\r\n",
            b"HTTPS/1.1 200 OK\r\n",
            b"HTTP/1.1  200 OK\r\n",
            b"HTTP/1.1 200OK\r\n",
            b"HTTP/1.1 2000 OK\r\n",
            b"HTTP/1.1 20 OK\r\n",
            b"HTTP/1.1 20\r\n",
            b"HTTP/1.1 099 Low\r\n",
            b"HTTP/1.1 000\r\n",
            b"HTTP/11 200 OK\r\n",
            b"HTTP/1.10 200 OK\r\n",
            b"HTTP/a.b 200 OK\r\n",
            b"HTTP/1.1 2x0 OK\r\n",
            b"HTTP/1.1\t200 OK\r\n",
            b"HTTP/1.1 200 O\rK\r\n",
            b"HTTP/1.1 200 O\x00K\r\n",
            b"HTTP/1.1 200 O\x7fK\r\n",
            b"HTTP/1.1 200\rX",
            b"SSH-2.0-OpenSSH_9.6\r\n",
            b"\x15\x03\x01\x00\x02\x02\x46",
            b"<html>",
            b"\x00",
            b"GET / HTTP/1.1\r\n",
            b"ICY 200 OK\r\n",
            b"RTSP/1.0 200 OK\r\n",
        ];
        for input in cases {
            assert_eq!(
                parse_status_line(input),
                StatusLine::NotHttp,
                "{}",
                input.escape_ascii()
            );
        }
    }

    #[test]
    fn garbage_is_rejected_by_its_first_wrong_byte() {
        assert_eq!(parse_status_line(b"S"), StatusLine::NotHttp);
        assert_eq!(parse_status_line(b"HTTP/1.1 0"), StatusLine::NotHttp);
        assert_eq!(parse_status_line(b"HTTP/1.1 200X"), StatusLine::NotHttp);
    }

    fn status_line() -> impl Strategy<Value = (Vec<u8>, u16)> {
        (
            0u8..10,
            0u8..10,
            100u16..1000,
            proptest::option::of("[ -~\t]{0,40}"),
            prop_oneof![Just("\r\n"), Just("\n")],
        )
            .prop_map(|(major, minor, code, reason, end)| {
                let reason = reason.map(|r| format!(" {r}")).unwrap_or_default();
                let line = format!("HTTP/{major}.{minor} {code}{reason}{end}");
                (line.into_bytes(), code)
            })
    }

    proptest! {
        #[test]
        fn parser_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            if let StatusLine::Status(code) = parse_status_line(&bytes) {
                prop_assert!(bytes.starts_with(b"HTTP/"));
                prop_assert!(bytes.contains(&b'\n'));
                prop_assert!((100..1000).contains(&code));
            }
        }

        #[test]
        fn valid_lines_parse_and_their_prefixes_wait(
            (line, code) in status_line(),
            rest in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let end = line.len() - if line.ends_with(b"\r\n") { 2 } else { 1 };
            for cut in 0..=end {
                prop_assert_eq!(parse_status_line(&line[..cut]), StatusLine::Incomplete);
            }
            prop_assert_eq!(parse_status_line(&line), StatusLine::Status(code));
            // Whatever follows (headers, body, junk) does not change the verdict.
            let mut longer = line.clone();
            longer.extend_from_slice(&rest);
            prop_assert_eq!(parse_status_line(&longer), StatusLine::Status(code));
        }

        #[test]
        fn a_verdict_never_changes_with_more_bytes(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
            more in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let first = parse_status_line(&bytes);
            if first != StatusLine::Incomplete {
                let mut longer = bytes.clone();
                longer.extend_from_slice(&more);
                prop_assert_eq!(parse_status_line(&longer), first);
            }
        }
    }

    // --------------------------------------------------------------- request

    #[test]
    fn request_for_ipv4() {
        let addr: SocketAddr = "192.0.2.7:8001".parse().unwrap();
        let request = build_request(&Request::to(addr).host, "/health").unwrap();
        assert_eq!(
            request,
            b"GET /health HTTP/1.1\r\nHost: 192.0.2.7:8001\r\n\
              User-Agent: gunicorn-launcher\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn request_for_ipv6_brackets_the_host_without_scope() {
        let addr = SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 8001, 0, 2));
        let request =
            String::from_utf8(build_request(&Request::to(addr).host, "/").unwrap()).unwrap();
        assert!(
            request.contains("\r\nHost: [fe80::1]:8001\r\n"),
            "{request}"
        );
        // Port 80 is left out, as browsers leave it out.
        let addr: SocketAddr = "[::1]:80".parse().unwrap();
        let request =
            String::from_utf8(build_request(&Request::to(addr).host, "").unwrap()).unwrap();
        assert!(
            request.starts_with("GET / HTTP/1.1\r\nHost: [::1]\r\n"),
            "{request}"
        );
    }

    #[test]
    fn named_requests_carry_the_name_and_the_port() {
        let addr: SocketAddr = "198.18.0.1:8001".parse().unwrap();
        let named = Request::named(addr, "solvit.example.com");
        assert_eq!(named.host, "solvit.example.com:8001");
        assert!(!named.is_address());
        assert!(Request::to(addr).is_address());
        assert_eq!(
            Request::named("198.18.0.1:80".parse().unwrap(), "a.b").host,
            "a.b"
        );
        for host in ["", "a b", "x\r\nX-Evil: 1", "é"] {
            assert!(build_request(host, "/").is_err(), "{host:?}");
        }
    }

    #[test]
    fn paths_that_would_break_the_request_are_refused() {
        let addr: SocketAddr = "127.0.0.1:8001".parse().unwrap();
        for path in ["/a b", "/x\r\nX-Evil: 1", "/\t", "/é", "/\0"] {
            assert!(
                build_request(&Request::to(addr).host, path).is_err(),
                "{path:?}"
            );
            let outcome = probe(addr, path, QUICK).outcome;
            assert!(
                matches!(&outcome, Outcome::Error(m) if m.contains("invalid probe path")),
                "{outcome:?}"
            );
        }
        assert!(build_request(&Request::to(addr).host, "/search?q=a%20b&x=1#frag").is_ok());
    }

    #[test]
    fn outcomes_read_plainly() {
        assert_eq!(Outcome::Status(200).to_string(), "HTTP 200");
        assert_eq!(Outcome::Refused.to_string(), "connection refused");
        assert_eq!(Outcome::Timeout.to_string(), "timed out");
        assert_eq!(
            Outcome::Error("connection reset".into()).to_string(),
            "connection reset"
        );
        let result = ProbeResult {
            addr: "127.0.0.1:8001".parse().unwrap(),
            host: "127.0.0.1:8001".into(),
            outcome: Outcome::Status(400),
        };
        assert!(result.reachable());
        assert_eq!(
            result.to_string(),
            "127.0.0.1:8001 (Host 127.0.0.1:8001): HTTP 400"
        );
        for outcome in [
            Outcome::Refused,
            Outcome::Timeout,
            Outcome::Error("x".into()),
        ] {
            assert!(
                !ProbeResult {
                    addr: result.addr,
                    host: result.host.clone(),
                    outcome
                }
                .reachable()
            );
        }
    }

    #[test]
    fn preview_escapes_and_shortens() {
        assert_eq!(preview(b"SSH-2.0\r\n"), "SSH-2.0\\r\\n");
        assert_eq!(preview(b"\x00\xff"), "\\x00\\xff");
        let long = vec![b'a'; 100];
        assert_eq!(preview(&long), format!("{}...", "a".repeat(PREVIEW_BYTES)));
    }

    // --------------------------------------------------------- real sockets

    /// Serves one connection on `bind` with `handler`, in a detached thread.
    fn serve_one(bind: &str, handler: impl FnOnce(TcpStream) + Send + 'static) -> SocketAddr {
        let listener = TcpListener::bind(bind).unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            if let Ok((stream, _)) = listener.accept() {
                handler(stream);
            }
        });
        addr
    }

    /// The request head (up to the blank line), as the server received it.
    fn read_head(stream: &mut TcpStream) -> Vec<u8> {
        stream.set_read_timeout(Some(GENEROUS)).unwrap();
        let mut reader = io::BufReader::new(stream);
        let mut head = Vec::new();
        loop {
            let before = head.len();
            match reader.read_until(b'\n', &mut head) {
                Ok(0) | Err(_) => break,
                Ok(_) if head[before..] == *b"\r\n" => break,
                Ok(_) if head.len() > 8192 => break,
                Ok(_) => {}
            }
        }
        head
    }

    /// A server that reads the request, hands it to the test, and answers `response`.
    fn answering(bind: &str, response: &'static [u8]) -> (SocketAddr, mpsc::Receiver<Vec<u8>>) {
        let (tx, rx) = mpsc::channel();
        let addr = serve_one(bind, move |mut stream| {
            let head = read_head(&mut stream);
            let _ = tx.send(head);
            let _ = stream.write_all(response);
        });
        (addr, rx)
    }

    /// A server that accepts and then says nothing until the returned sender is dropped.
    fn silent() -> (SocketAddr, mpsc::Sender<()>) {
        let (hold, held) = mpsc::channel::<()>();
        let addr = serve_one("127.0.0.1:0", move |stream| {
            let _ = held.recv();
            drop(stream);
        });
        (addr, hold)
    }

    /// A free port: bound, then released, so connecting to it is refused.
    fn closed_port() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    }

    fn received(rx: &mpsc::Receiver<Vec<u8>>) -> String {
        String::from_utf8(rx.recv_timeout(GENEROUS).unwrap()).unwrap()
    }

    #[test]
    fn answers_200_with_the_request_we_mean() {
        let (addr, rx) = answering(
            "127.0.0.1:0",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        );
        let result = probe(addr, "/health?x=1", GENEROUS);
        assert_eq!(result.outcome, Outcome::Status(200));
        assert!(result.reachable());
        assert_eq!(result.addr, addr);
        let head = received(&rx);
        let mut lines = head.split("\r\n");
        assert_eq!(lines.next(), Some("GET /health?x=1 HTTP/1.1"));
        let headers: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
        assert!(
            headers.contains(&format!("Host: {addr}").as_str()),
            "{head}"
        );
        assert!(headers.contains(&"Connection: close"), "{head}");
        assert!(headers.contains(&"User-Agent: gunicorn-launcher"), "{head}");
        assert!(head.ends_with("\r\n\r\n"), "{head}");
    }

    #[test]
    fn a_400_counts_as_reachable() {
        let (addr, rx) = answering(
            "127.0.0.1:0",
            b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\n\r\n<h1>Bad Request (400)</h1>",
        );
        let result = probe(addr, "/", GENEROUS);
        assert_eq!(result.outcome, Outcome::Status(400));
        assert!(result.reachable());
        assert!(received(&rx).starts_with("GET / HTTP/1.1\r\n"));
    }

    #[test]
    fn a_server_that_closes_at_once_is_an_error() {
        let addr = serve_one("127.0.0.1:0", drop);
        let result = probe(addr, "/", GENEROUS);
        assert!(matches!(result.outcome, Outcome::Error(_)), "{result}");
        assert!(!result.reachable());
    }

    #[test]
    fn a_server_that_closes_after_reading_says_closed() {
        let addr = serve_one("127.0.0.1:0", |mut stream| {
            read_head(&mut stream);
        });
        let outcome = probe(addr, "/", GENEROUS).outcome;
        assert_eq!(
            outcome,
            Outcome::Error("connection closed before any response".into())
        );
    }

    #[test]
    fn a_reset_says_reset() {
        let addr = serve_one("127.0.0.1:0", |mut stream| {
            read_head(&mut stream);
            // SO_LINGER 0 makes close() send RST instead of FIN.
            let linger = nix::libc::linger {
                l_onoff: 1,
                l_linger: 0,
            };
            nix::sys::socket::setsockopt(&stream, nix::sys::socket::sockopt::Linger, &linger)
                .unwrap();
        });
        let outcome = probe(addr, "/", GENEROUS).outcome;
        assert_eq!(outcome, Outcome::Error("connection reset".into()));
    }

    #[test]
    fn garbage_is_not_http() {
        let (addr, _rx) = answering("127.0.0.1:0", b"SSH-2.0-OpenSSH_9.6\r\n");
        let outcome = probe(addr, "/", GENEROUS).outcome;
        assert_eq!(
            outcome,
            Outcome::Error("not HTTP: SSH-2.0-OpenSSH_9.6\\r\\n".into())
        );

        let (addr, _rx) = answering("127.0.0.1:0", b"\x15\x03\x01\x00\x02\x02\x46");
        let outcome = probe(addr, "/", GENEROUS).outcome;
        assert_eq!(
            outcome,
            Outcome::Error("not HTTP: \\x15\\x03\\x01\\x00\\x02\\x02F".into())
        );
    }

    #[test]
    fn garbage_without_newline_is_rejected_without_waiting() {
        let (addr, hold) = silent_after(b"<html>");
        let started = Instant::now();
        let outcome = probe(addr, "/", GENEROUS).outcome;
        assert_eq!(outcome, Outcome::Error("not HTTP: <html>".into()));
        assert!(started.elapsed() < GENEROUS / 2);
        drop(hold);
    }

    /// Sends `bytes`, then holds the connection open until the sender is dropped.
    fn silent_after(bytes: &'static [u8]) -> (SocketAddr, mpsc::Sender<()>) {
        let (hold, held) = mpsc::channel::<()>();
        let addr = serve_one("127.0.0.1:0", move |mut stream| {
            let _ = stream.write_all(bytes);
            let _ = held.recv();
        });
        (addr, hold)
    }

    #[test]
    fn a_silent_server_times_out_on_time() {
        let (addr, hold) = silent();
        let started = Instant::now();
        let result = probe(addr, "/", QUICK);
        let took = started.elapsed();
        assert_eq!(result.outcome, Outcome::Timeout);
        assert!(!result.reachable());
        assert!(took >= QUICK && took < QUICK + SLACK, "{took:?}");
        drop(hold);
    }

    #[test]
    fn a_trickling_server_cannot_stretch_the_deadline() {
        let addr = serve_one("127.0.0.1:0", |mut stream| {
            stream.set_nodelay(true).unwrap();
            let started = Instant::now();
            for &b in b"HTTP/1.1 200 ".iter().chain([b'a'; 500].iter()) {
                if stream.write_all(&[b]).is_err() || started.elapsed() > GENEROUS {
                    break;
                }
                thread::sleep(Duration::from_millis(20));
            }
        });
        let started = Instant::now();
        let outcome = probe(addr, "/", QUICK).outcome;
        let took = started.elapsed();
        assert_eq!(outcome, Outcome::Timeout);
        assert!(took < QUICK + SLACK, "{took:?}");
    }

    #[test]
    fn an_endless_status_line_is_cut_off() {
        let (hold, held) = mpsc::channel::<()>();
        let addr = serve_one("127.0.0.1:0", move |mut stream| {
            let mut line = b"HTTP/1.1 200 ".to_vec();
            line.resize(64 * 1024, b'a');
            let _ = stream.write_all(&line);
            let _ = held.recv();
        });
        let outcome = probe(addr, "/", GENEROUS).outcome;
        let Outcome::Error(message) = &outcome else {
            panic!("{outcome:?}")
        };
        assert!(
            message.starts_with("no end of status line in the first 1024 bytes: HTTP/1.1 200 aaa"),
            "{message}"
        );
        drop(hold);
    }

    #[test]
    fn a_status_line_split_across_writes_still_parses() {
        let addr = serve_one("127.0.0.1:0", |mut stream| {
            read_head(&mut stream);
            stream.set_nodelay(true).unwrap();
            for part in [&b"HT"[..], b"TP/1.1 2", b"04 No", b" Content\r", b"\n\r\n"] {
                stream.write_all(part).unwrap();
                thread::sleep(Duration::from_millis(30));
            }
        });
        assert_eq!(probe(addr, "/", GENEROUS).outcome, Outcome::Status(204));
    }

    #[test]
    fn a_closed_port_is_refused() {
        let result = probe(closed_port(), "/", GENEROUS);
        assert_eq!(result.outcome, Outcome::Refused);
        assert!(!result.reachable());
    }

    #[test]
    fn a_full_backlog_times_out_in_connect() {
        use nix::sys::socket::{
            AddressFamily, Backlog, SockFlag, SockType, SockaddrIn, bind, getsockname, listen,
            socket,
        };
        // Backlog 0 admits one unaccepted connection; Linux then drops further
        // SYNs, so the probe's connect hangs like one to a firewalled host.
        let fd = socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        bind(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            &SockaddrIn::new(127, 0, 0, 1, 0),
        )
        .unwrap();
        listen(&fd, Backlog::new(0).unwrap()).unwrap();
        let local: SockaddrIn = getsockname(std::os::fd::AsRawFd::as_raw_fd(&fd)).unwrap();
        let addr = SocketAddr::V4(local.into());
        let _filler = TcpStream::connect_timeout(&addr, GENEROUS).unwrap();
        let started = Instant::now();
        let outcome = probe(addr, "/", QUICK).outcome;
        let took = started.elapsed();
        assert_eq!(outcome, Outcome::Timeout);
        assert!(took < QUICK + SLACK, "{took:?}");
    }

    #[test]
    fn a_zero_timeout_times_out_at_once() {
        let (addr, _rx) = answering("127.0.0.1:0", b"HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(probe(addr, "/", Duration::ZERO).outcome, Outcome::Timeout);
        assert!(
            probe_all(&[Request::to(addr), Request::to(addr)], "/", Duration::ZERO)
                .iter()
                .all(|r| r.outcome == Outcome::Timeout)
        );
    }

    #[test]
    fn link_local_without_scope_says_so() {
        let addr: SocketAddr = "[fe80::1]:8001".parse().unwrap();
        assert_eq!(
            probe(addr, "/", QUICK).outcome,
            Outcome::Error("link-local address without a scope id".into())
        );
    }

    #[test]
    fn a_huge_timeout_does_not_overflow() {
        let (addr, _rx) = answering("127.0.0.1:0", b"HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(
            probe(addr, "/", Duration::MAX).outcome,
            Outcome::Status(200)
        );
    }

    #[test]
    fn probes_ipv6_loopback() {
        crate::testnet::private_network_with_ipv6();
        let (addr, rx) = answering("[::1]:0", b"HTTP/1.0 200 OK\r\n\r\n");
        assert_eq!(probe(addr, "/v6", GENEROUS).outcome, Outcome::Status(200));
        let head = received(&rx);
        assert!(head.starts_with("GET /v6 HTTP/1.1\r\n"), "{head}");
        assert!(
            head.contains(&format!("\r\nHost: [::1]:{}\r\n", addr.port())),
            "{head}"
        );
    }

    #[test]
    fn probe_all_keeps_order_and_runs_concurrently() {
        let (ok, _rx) = answering("127.0.0.1:0", b"HTTP/1.1 200 OK\r\n\r\n");
        let (bad_host, _rx2) = answering("127.0.0.1:0", b"HTTP/1.1 400 Bad Request\r\n\r\n");
        let (quiet1, hold1) = silent();
        let (quiet2, hold2) = silent();
        let refused = closed_port();
        let addrs = [quiet1, ok, refused, quiet2, bad_host];
        let started = Instant::now();
        let results = probe_all(&addrs.map(Request::to), "/", QUICK);
        let took = started.elapsed();
        let got: Vec<(SocketAddr, Outcome)> =
            results.into_iter().map(|r| (r.addr, r.outcome)).collect();
        assert_eq!(
            got,
            vec![
                (quiet1, Outcome::Timeout),
                (ok, Outcome::Status(200)),
                (refused, Outcome::Refused),
                (quiet2, Outcome::Timeout),
                (bad_host, Outcome::Status(400)),
            ]
        );
        // Two silent servers one after the other would take 2 × QUICK.
        assert!(took < QUICK + SLACK, "{took:?}");
        drop((hold1, hold2));
    }

    #[test]
    fn probe_all_of_nothing_is_nothing() {
        assert!(probe_all(&[], "/", QUICK).is_empty());
    }

    /// Serves every connection on `bind` with a 400, as Django does for an unknown Host.
    fn serve_all(bind: &str) -> SocketAddr {
        let listener = TcpListener::bind(bind).unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                thread::spawn(move || {
                    read_head(&mut stream);
                    let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
                });
            }
        });
        addr
    }

    #[test]
    fn every_ipv4_target_of_this_host_answers_a_wildcard_listener() {
        let port = serve_all("0.0.0.0:0").port();
        let v4 = Families {
            ipv4: true,
            ipv6: false,
        };
        let addrs = targets(port, v4).unwrap().probe;
        for result in probe_all(&requests(&addrs), "/", GENEROUS) {
            assert_eq!(result.outcome, Outcome::Status(400), "{result}");
        }
    }

    #[test]
    fn every_ipv6_target_of_this_host_answers_a_wildcard_listener() {
        crate::testnet::private_network_with_ipv6();
        let port = serve_all("[::]:0").port();
        let v6 = Families {
            ipv4: false,
            ipv6: true,
        };
        let found = targets(port, v6).unwrap();
        let addrs = found.probe;
        // ::1 and the link-local addresses of gl0 and gl1.
        assert_eq!(
            addrs.len(),
            3,
            "{addrs:?}; not probed: {:?}; {}",
            found.skipped,
            std::fs::read_to_string("/proc/thread-self/net/if_inet6").unwrap()
        );
        assert!(
            addrs[1..]
                .iter()
                .all(|a| matches!(a.ip(), std::net::IpAddr::V6(ip) if ip.is_unicast_link_local())),
            "{addrs:?}"
        );
        // Link-local addresses prove their scope ids work: without one, connect fails.
        for result in probe_all(&requests(&addrs), "/", GENEROUS) {
            assert_eq!(result.outcome, Outcome::Status(400), "{result}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Whatever a server sends, over a real socket, the probe returns
        /// within its deadline and agrees with the parser.
        #[test]
        fn any_answer_is_survived(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
            let answer = bytes.clone();
            let addr = serve_one("127.0.0.1:0", move |mut stream| {
                read_head(&mut stream);
                let _ = stream.write_all(&answer);
            });
            let started = Instant::now();
            let outcome = probe(addr, "/", GENEROUS).outcome;
            prop_assert!(started.elapsed() < GENEROUS + SLACK);
            let seen = &bytes[..bytes.len().min(MAX_STATUS_LINE)];
            match parse_status_line(seen) {
                StatusLine::Status(code) => prop_assert_eq!(outcome, Outcome::Status(code)),
                _ => prop_assert!(matches!(outcome, Outcome::Error(_)), "{:?}", outcome),
            }
        }
    }

    // --------------------------------------------------------------- targets

    const BOTH: Families = Families {
        ipv4: true,
        ipv6: true,
    };

    #[test]
    fn targets_start_with_loopback() {
        crate::testnet::private_network_with_ipv6();
        let addrs = targets(8001, BOTH).unwrap().probe;
        assert_eq!(addrs[0], SocketAddr::from((Ipv4Addr::LOCALHOST, 8001)));
        assert_eq!(addrs[1], SocketAddr::from((Ipv6Addr::LOCALHOST, 8001)));
        assert_eq!(
            addrs[2],
            SocketAddr::from((crate::testnet::SECOND_IPV4, 8001))
        );
        assert_eq!(
            addrs.len(),
            5,
            "two loopbacks, 10.200.0.1, two link-locals: {addrs:?}"
        );
        assert!(addrs.iter().all(|a| a.port() == 8001));
        for (i, a) in addrs.iter().enumerate() {
            assert!(!addrs[i + 1..].contains(a), "{a} twice in {addrs:?}");
        }
    }

    #[test]
    fn ipv4_targets_hold_only_ipv4() {
        let v4 = Families {
            ipv4: true,
            ipv6: false,
        };
        let addrs = targets(80, v4).unwrap().probe;
        assert_eq!(addrs[0], SocketAddr::from((Ipv4Addr::LOCALHOST, 80)));
        assert!(addrs.iter().all(SocketAddr::is_ipv4), "{addrs:?}");
    }

    #[test]
    fn ipv6_targets_hold_no_ipv4() {
        let v6 = Families {
            ipv4: false,
            ipv6: true,
        };
        crate::testnet::private_network_with_ipv6();
        let addrs = targets(80, v6).unwrap().probe;
        assert!(addrs.iter().all(SocketAddr::is_ipv6), "{addrs:?}");
        assert_eq!(addrs[0], SocketAddr::from((Ipv6Addr::LOCALHOST, 80)));
    }

    #[test]
    fn no_families_no_targets() {
        let none = Families {
            ipv4: false,
            ipv6: false,
        };
        assert!(targets(80, none).unwrap().probe.is_empty());
    }

    #[test]
    fn link_local_targets_carry_a_scope() {
        crate::testnet::private_network_with_ipv6();
        let mut link_local = 0;
        for addr in targets(8001, BOTH).unwrap().probe {
            if let SocketAddr::V6(v6) = addr {
                if v6.ip().is_unicast_link_local() {
                    assert_ne!(v6.scope_id(), 0, "{addr}");
                    link_local += 1;
                } else {
                    assert_eq!(v6.scope_id(), 0, "{addr}");
                }
            }
        }
        assert_eq!(link_local, 2, "gl0 and gl1 each have one");
    }

    fn requests(addrs: &[SocketAddr]) -> Vec<Request> {
        addrs.iter().map(|&a| Request::to(a)).collect()
    }

    #[test]
    fn inet6_flags_are_read_and_unused_addresses_named() {
        let text = b"fe8000000000000000fc00fffe000001 04 40 20 80     eth0\n\
                     00000000000000000000000000000001 01 80 10 80       lo\n\
                     fd000000000000000000000000000002 05 40 00 c8     veth0\n\
                     garbage\n";
        let flags = ipv6_flags(text);
        assert_eq!(flags.len(), 3);
        assert_eq!(
            flags[0],
            ("fe80::fc:ff:fe00:1".parse().unwrap(), "eth0".into(), 0x80)
        );
        assert_eq!(flags[2].2, 0xc8);
        assert_eq!(unused_because(0x80), None);
        assert!(
            unused_because(0xc8)
                .unwrap()
                .contains("duplicate address detection failed")
        );
        assert!(unused_because(0x40).unwrap().contains("tentative"));
        assert!(unused_because(0x20).unwrap().contains("deprecated"));
    }

    #[test]
    fn ordering_puts_loopback_first_and_drops_repeats() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let found = vec![
            a("192.0.2.2:8001"),
            a("127.0.0.1:8001"),
            a("[fd00::2]:8001"),
            a("[::1]:8001"),
            a("192.0.2.2:8001"),
            a("[fe80::1%2]:8001"),
            a("[fe80::1%3]:8001"),
        ];
        assert_eq!(
            order_targets(8001, BOTH, found.clone()),
            vec![
                a("127.0.0.1:8001"),
                a("[::1]:8001"),
                a("192.0.2.2:8001"),
                a("[fd00::2]:8001"),
                a("[fe80::1%2]:8001"),
                a("[fe80::1%3]:8001"),
            ]
        );
        let v6 = Families {
            ipv4: false,
            ipv6: true,
        };
        assert_eq!(
            order_targets(8001, v6, found),
            vec![
                a("[::1]:8001"),
                a("[fd00::2]:8001"),
                a("[fe80::1%2]:8001"),
                a("[fe80::1%3]:8001"),
            ]
        );
        // No ::1 on the host: none invented.
        assert_eq!(
            order_targets(8001, v6, vec![a("[fd00::2]:8001")]),
            vec![a("[fd00::2]:8001")]
        );
    }

    #[test]
    fn link_scope_prefers_the_index_by_name() {
        let lo = if_nametoindex("lo").unwrap();
        assert_eq!(link_scope("lo", 0), Some(lo));
        assert_eq!(link_scope("no-such-if0", 7), Some(7));
        assert_eq!(link_scope("no-such-if0", 0), None);
    }
}
