//! The listening socket the launcher holds for gunicorn: bound by the launcher itself
//! (`run --hold-socket`), or handed over by systemd (socket activation, `LISTEN_FDS`).
//! Either way the launcher keeps it open for its whole life, so that while one gunicorn
//! exits and the next starts, connections wait in its backlog instead of being refused;
//! each gunicorn takes it as fd 3 with `LISTEN_FDS=1` and its own pid in `LISTEN_PID`
//! ([`crate::spawn`]), and then binds nothing itself.

use crate::error::Failure;
use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, SockaddrIn, SockaddrIn6, SockaddrLike,
    SockaddrStorage, bind, getsockname, getsockopt, listen, setsockopt, socket, sockopt,
};
use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
pub const FIRST_PASSED_FD: RawFd = 3;

/// Who made the socket the launcher holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The launcher bound it (`--hold-socket`).
    Launcher,
    /// systemd passed it (a `.socket` unit).
    Systemd,
}

/// A listening TCP socket on a wildcard address, held open by the launcher.
#[derive(Debug)]
pub struct Held {
    pub fd: OwnedFd,
    pub addr: SocketAddr,
    pub origin: Origin,
}

impl Held {
    /// How the log and `print-command` say it.
    pub fn describe(&self) -> String {
        match self.origin {
            Origin::Launcher => format!("{}, bound and held by the launcher", self.addr),
            Origin::Systemd => format!("{}, passed by systemd (socket activation)", self.addr),
        }
    }
}

/// Binds `host:port` (a wildcard address) and listens with `backlog`: the socket the
/// launcher holds with `--hold-socket`. `[::]` is made dual-stack, so that it also takes
/// IPv4, as the launcher's verdict requires.
pub fn bind_and_hold(host: IpAddr, port: u16, backlog: u32) -> Result<Held, Failure> {
    let addr = SocketAddr::new(host, port);
    let cannot = |what: &str, e: Errno| {
        Failure::software(format!("cannot hold {addr} for gunicorn: {what}: {e}"))
    };
    let family = if host.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)
        .map_err(|e| cannot("socket", e))?;
    // As gunicorn does: a restart must not wait for the last connections' TIME_WAIT.
    setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(|e| cannot("SO_REUSEADDR", e))?;
    let bound = match addr {
        SocketAddr::V4(v4) => bind(fd.as_raw_fd(), &SockaddrIn::from(v4)),
        SocketAddr::V6(v6) => {
            setsockopt(&fd, sockopt::Ipv6V6Only, &false).map_err(|e| cannot("IPV6_V6ONLY", e))?;
            bind(fd.as_raw_fd(), &SockaddrIn6::from(v6))
        }
    };
    match bound {
        Ok(()) => {}
        Err(Errno::EADDRINUSE) => {
            return Err(Failure::new(
                crate::exit::UNVERIFIED,
                format!(
                    "cannot hold {addr} for gunicorn: the port is in use{}; stop that program or \
                     choose another port (--port, bind.port)",
                    holders(port)
                ),
            ));
        }
        Err(e) => return Err(cannot("bind", e)),
    }
    let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
    // nix refuses a backlog above SOMAXCONN; the kernel caps it there anyway.
    let backlog = Backlog::new(backlog).unwrap_or(Backlog::MAXCONN);
    listen(&fd, backlog).map_err(|e| cannot("listen", e))?;
    Ok(Held {
        fd,
        addr,
        origin: Origin::Launcher,
    })
}

/// ` (held by pid N: COMMAND)` for the programs that listen on `port`, as far as they can
/// be seen; empty when none can.
fn holders(port: u16) -> String {
    let Ok(listeners) = crate::sockets::listeners_on_port(port) else {
        return String::new();
    };
    let mut owners: Vec<String> = crate::owners::owners_on_host(&listeners)
        .into_values()
        .flatten()
        .map(|o| format!("pid {}: {}", o.pid, crate::log::one_line(&o.command)))
        .collect();
    owners.sort();
    owners.dedup();
    owners.truncate(3);
    if owners.is_empty() {
        String::new()
    } else {
        format!(" (held by {})", owners.join("; "))
    }
}

/// Whether systemd passed sockets to this very process (`LISTEN_PID` is ours and
/// `LISTEN_FDS` is set): it was started by a `.socket` unit.
pub fn passed_to_us(listen_pid: Option<&str>, listen_fds: Option<&str>) -> bool {
    let ours = listen_pid
        .and_then(|p| p.trim().parse::<u32>().ok())
        .is_some_and(|p| p == std::process::id());
    ours && listen_fds.is_some_and(|n| n.trim() != "0")
}

/// The socket systemd passed, if it passed one to this process: `LISTEN_PID` is ours and
/// `LISTEN_FDS` counts the descriptors from fd 3. Exactly one is taken; it must be a
/// listening TCP socket on a wildcard address that takes IPv4 (`0.0.0.0`, or a dual-stack
/// `[::]`), on `port`. Anything else is a configuration error that names what was passed.
pub fn from_systemd(
    listen_pid: Option<&str>,
    listen_fds: Option<&str>,
    port: u16,
) -> Result<Option<Held>, Failure> {
    if !passed_to_us(listen_pid, listen_fds) {
        return Ok(None);
    }
    let count = listen_fds.unwrap_or_default();
    let unit_hint = "use one ListenStream=0.0.0.0:PORT (or [::]:PORT with BindIPv6Only=both) in \
                     the .socket unit";
    match count.trim().parse::<u32>() {
        Ok(1) => {}
        Ok(0) => return Ok(None),
        _ => {
            return Err(Failure::config(format!(
                "systemd passed LISTEN_FDS={}: the launcher takes exactly one socket; \
                 {unit_hint}",
                count.trim()
            )));
        }
    }
    if nix::fcntl::fcntl(FIRST_PASSED_FD, nix::fcntl::FcntlArg::F_GETFD).is_err() {
        return Err(Failure::config(format!(
            "systemd said it passed a socket (LISTEN_FDS=1), but fd {FIRST_PASSED_FD} is not open; \
             {unit_hint}"
        )));
    }
    // SAFETY: fd 3 is open (checked above), systemd passed it to this process (LISTEN_PID
    // is ours), and nothing else in the launcher has taken it: it is owned from here on.
    let fd = unsafe { OwnedFd::from_raw_fd(FIRST_PASSED_FD) };
    let addr = check_passed(fd.as_fd(), port).map_err(|what| {
        Failure::config(format!(
            "systemd passed fd {FIRST_PASSED_FD} as the socket to serve, but it is {what}; \
             {unit_hint}, with the launcher's port {port}"
        ))
    })?;
    Ok(Some(Held {
        fd,
        addr,
        origin: Origin::Systemd,
    }))
}

/// The passed socket's address, or what is wrong with it, in words.
pub(crate) fn check_passed(fd: BorrowedFd<'_>, port: u16) -> Result<SocketAddr, String> {
    match getsockopt(&fd, sockopt::SockType) {
        Ok(SockType::Stream) => {}
        Ok(other) => return Err(format!("a {other:?} socket, not a TCP stream")),
        Err(e) => return Err(format!("not a socket ({e})")),
    }
    if !getsockopt(&fd, sockopt::AcceptConn).unwrap_or(false) {
        return Err("a socket that does not listen".into());
    }
    let name: SockaddrStorage =
        getsockname(fd.as_raw_fd()).map_err(|e| format!("a socket without an address ({e})"))?;
    let addr = match (name.as_sockaddr_in(), name.as_sockaddr_in6()) {
        (Some(v4), _) => SocketAddr::V4(SocketAddrV4::new(v4.ip(), v4.port())),
        (_, Some(v6)) => SocketAddr::V6(SocketAddrV6::new(v6.ip(), v6.port(), 0, 0)),
        _ => {
            return Err(format!(
                "a socket of family {:?}, not TCP over IP",
                name.family()
            ));
        }
    };
    if !addr.ip().is_unspecified() {
        return Err(format!(
            "bound to {addr}, a single address: the launcher serves every interface"
        ));
    }
    if addr.is_ipv6() && getsockopt(&fd, sockopt::Ipv6V6Only).unwrap_or(true) {
        return Err(format!(
            "bound to {addr} for IPv6 only (BindIPv6Only=ipv6-only): IPv4 clients would be refused"
        ));
    }
    if addr.port() != port {
        return Err(format!("bound to {addr}, another port"));
    }
    Ok(addr)
}

#[cfg(test)]
mod tests;
