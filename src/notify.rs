//! The two notify channels: gunicorn → launcher, and launcher → systemd.
//!
//! gunicorn (≥ 20) sends `READY=1` right after `bind()`, before any worker
//! has loaded the app, so it is a hint that the socket may exist, never proof
//! that the service answers. The child therefore gets its own notify socket
//! (an abstract datagram socket of ours; systemd's is scrubbed from its
//! environment) and its messages only trigger our own verification.
//! Everything systemd hears comes from the launcher, after verification.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// The socket gunicorn writes its sd_notify messages to.
pub struct ChildSocket {
    socket: UnixDatagram,
    /// The `NOTIFY_SOCKET` value for the child (`@name`: abstract, so there
    /// is no file to clean up after a SIGKILL).
    pub address: String,
}

impl ChildSocket {
    pub fn bind() -> io::Result<ChildSocket> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("gunicorn-launcher/{}/{nanos}", std::process::id());
        let socket = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes())?)?;
        socket.set_nonblocking(true)?;
        Ok(ChildSocket {
            socket,
            address: format!("@{name}"),
        })
    }

    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.socket.as_fd()
    }

    /// Drains pending messages; true if any said `READY=1`.
    pub fn drain_ready(&self) -> bool {
        let mut buf = [0u8; 4096];
        let mut ready = false;
        while let Ok(n) = self.socket.recv(&mut buf) {
            ready |= says_ready(&buf[..n]);
        }
        ready
    }
}

fn says_ready(msg: &[u8]) -> bool {
    msg.split(|&b| b == b'\n').any(|l| l == b"READY=1")
}

/// What the launcher tells systemd. Silent when not run by systemd
/// (`NOTIFY_SOCKET` unset); errors are ignored on purpose: a lost status
/// update must never stop the service.
pub struct Systemd {
    enabled: bool,
    watchdog: Option<Duration>,
}

impl Systemd {
    pub fn from_env() -> Systemd {
        Systemd {
            enabled: std::env::var_os("NOTIFY_SOCKET").is_some(),
            watchdog: sd_notify::watchdog_enabled(),
        }
    }

    /// How often to send `WATCHDOG=1`: half the interval systemd asked for.
    pub fn watchdog_period(&self) -> Option<Duration> {
        self.watchdog.map(|d| d / 2)
    }

    fn send(&self, states: &[sd_notify::NotifyState]) {
        if self.enabled {
            let _ = sd_notify::notify(states);
        }
    }

    pub fn ready(&self, status: &str) {
        use sd_notify::NotifyState::*;
        self.send(&[Ready, Status(status)]);
    }

    pub fn status(&self, status: &str) {
        self.send(&[sd_notify::NotifyState::Status(status)]);
    }

    pub fn reloading(&self) {
        use sd_notify::NotifyState::*;
        match sd_notify::NotifyState::monotonic_usec_now() {
            Ok(now) => self.send(&[Reloading, now, Status("reloading gunicorn")]),
            Err(_) => self.send(&[Reloading, Status("reloading gunicorn")]),
        }
    }

    pub fn stopping(&self) {
        use sd_notify::NotifyState::*;
        self.send(&[Stopping, Status("stopping gunicorn")]);
    }

    pub fn watchdog(&self) {
        self.send(&[sd_notify::NotifyState::Watchdog]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_is_found_among_other_lines() {
        assert!(says_ready(b"STATUS=x\nREADY=1\n"));
        assert!(says_ready(b"READY=1"));
        assert!(!says_ready(b"READY=0\nSTATUS=READY=1"));
    }

    #[test]
    fn the_child_socket_receives_what_is_sent_to_its_address() {
        let s = ChildSocket::bind().unwrap();
        let name = s.address.strip_prefix('@').unwrap();
        let tx = UnixDatagram::unbound().unwrap();
        tx.send_to_addr(
            b"STATUS=booting\n",
            &SocketAddr::from_abstract_name(name.as_bytes()).unwrap(),
        )
        .unwrap();
        assert!(!s.drain_ready());
        tx.send_to_addr(
            b"READY=1\n",
            &SocketAddr::from_abstract_name(name.as_bytes()).unwrap(),
        )
        .unwrap();
        assert!(s.drain_ready());
        assert!(!s.drain_ready());
    }
}
