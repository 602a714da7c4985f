//! The two notify channels: gunicorn → launcher, and launcher → systemd.
//!
//! gunicorn (≥ 20) sends `READY=1` right after `bind()`, before any worker
//! has loaded the app, so it is a hint that the socket may exist, never proof
//! that the service answers. The child therefore gets its own notify socket
//! (an abstract datagram socket of ours; systemd's is scrubbed from its
//! environment) and its messages only trigger our own verification.
//! Everything systemd hears comes from the launcher, after verification,
//! sent without blocking: a full queue drops a status line, never stalls
//! the supervisor.

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

/// One notify datagram, ready to send.
pub struct Message(Vec<u8>);

impl Message {
    /// The fields, one per line. A `STATUS=` text is made one line without
    /// control characters first ([`crate::log::one_line`]): it may quote
    /// another process's command line or an app's answer, and a newline in
    /// it would let that text add a field of its own (`READY=1`).
    fn of(states: &[sd_notify::NotifyState]) -> Message {
        let text: String = states
            .iter()
            .map(|s| match s {
                sd_notify::NotifyState::Status(text) => {
                    format!("STATUS={}\n", status_text(&crate::log::one_line(text)))
                }
                other => format!("{other}\n"),
            })
            .collect();
        Message(text.into_bytes())
    }
}

/// The longest `STATUS=` text sent: systemd (252) ignores a whole notify datagram over
/// 4,096 bytes ("Received notify message exceeded maximum size"), `READY=1` in it too.
/// `systemctl status` shows a line; the log has the whole text.
pub const MAX_STATUS: usize = 1024;

/// `text` cut to [`MAX_STATUS`] bytes (at a character's edge), saying so.
fn status_text(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= MAX_STATUS {
        return std::borrow::Cow::Borrowed(text);
    }
    const CUT: &str = " … (the whole text is in the log)";
    let end = text.floor_char_boundary(MAX_STATUS - CUT.len());
    std::borrow::Cow::Owned(format!("{}{CUT}", &text[..end]))
}

impl Message {
    /// The datagram's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// What the launcher tells systemd. Silent when not run by systemd
/// (`NOTIFY_SOCKET` unset); errors are ignored on purpose: a lost status
/// update must never stop the service.
pub struct Systemd {
    /// systemd's socket, opened once: `None` when not run by systemd.
    socket: Option<(UnixDatagram, SocketAddr)>,
    watchdog: Option<Duration>,
}

/// `NOTIFY_SOCKET` as sd-daemon reads it: a path, or `@name` for an
/// abstract socket.
fn notify_address(value: &std::ffi::OsStr) -> Option<SocketAddr> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = value.as_bytes();
    match bytes.strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name).ok(),
        None if bytes.starts_with(b"/") => {
            SocketAddr::from_pathname(std::path::Path::new(value)).ok()
        }
        None => None,
    }
}

impl Systemd {
    pub fn from_env() -> Systemd {
        Systemd::new(
            std::env::var_os("NOTIFY_SOCKET").as_deref(),
            sd_notify::watchdog_enabled(),
        )
    }

    /// `notify_socket` is `$NOTIFY_SOCKET`; `None` (or a value systemd
    /// would not use either) sends nothing.
    pub fn new(notify_socket: Option<&std::ffi::OsStr>, watchdog: Option<Duration>) -> Systemd {
        let socket = notify_socket.and_then(notify_address).and_then(|addr| {
            // Non-blocking: if systemd is not reading and the queue is
            // full, a status line is dropped; the launcher must never
            // hang in a send while signals wait.
            let s = UnixDatagram::unbound().ok()?;
            s.set_nonblocking(true).ok()?;
            Some((s, addr))
        });
        Systemd { socket, watchdog }
    }

    /// How often to send `WATCHDOG=1`: half the interval systemd asked for.
    pub fn watchdog_period(&self) -> Option<Duration> {
        self.watchdog.map(|d| d / 2)
    }

    fn send(&self, states: &[sd_notify::NotifyState]) {
        self.post(&Message::of(states));
    }

    /// Sends a message made beforehand (see [`Systemd::ready_message`]).
    pub fn post(&self, message: &Message) {
        if let Some((socket, addr)) = &self.socket {
            let _ = socket.send_to_addr(&message.0, addr);
        }
    }

    pub fn ready(&self, status: &str) {
        self.post(&Systemd::ready_message(status));
    }

    /// `READY=1` with `status`, made now and sent later by [`Systemd::post`]:
    /// the supervisor gives its start-up pages back in between, and sending
    /// a finished message touches little code again.
    pub fn ready_message(status: &str) -> Message {
        use sd_notify::NotifyState::*;
        Message::of(&[Ready, Status(status)])
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

    /// Run by systemd: there is a notify socket to tell.
    pub fn present(&self) -> bool {
        self.socket.is_some()
    }

    /// Hands `fd` to systemd's file descriptor store under `name` (`FDSTORE=1`, the
    /// descriptor passed with `SCM_RIGHTS`); systemd gives it back in `LISTEN_FDS` when
    /// the service starts again, unless the unit is stopped. It keeps it only if the unit
    /// allows a store (`FileDescriptorStoreMax=`).
    pub fn store(&self, name: &str, fd: std::os::fd::BorrowedFd<'_>) -> io::Result<()> {
        use nix::sys::socket::{ControlMessage, MsgFlags, UnixAddr, sendmsg};
        use std::os::fd::AsRawFd;
        let Some((socket, addr)) = &self.socket else {
            return Ok(());
        };
        let to = match addr.as_abstract_name() {
            Some(name) => UnixAddr::new_abstract(name),
            None => UnixAddr::new(addr.as_pathname().unwrap_or(std::path::Path::new(""))),
        }
        .map_err(io::Error::from)?;
        let fields = ["FDSTORE=1".to_string(), format!("FDNAME={name}")];
        let message = Message::of(&fields.each_ref().map(|f| sd_notify::NotifyState::Custom(f)));
        let fds = [fd.as_raw_fd()];
        sendmsg(
            socket.as_raw_fd(),
            &[io::IoSlice::new(&message.0)],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            Some(&to),
        )
        .map(|_| ())
        .map_err(io::Error::from)
    }

    /// Takes the descriptor stored under `name` out of systemd's store (`FDSTOREREMOVE=1`).
    pub fn remove_stored(&self, name: &str) {
        let fields = ["FDSTOREREMOVE=1".to_string(), format!("FDNAME={name}")];
        self.send(&fields.each_ref().map(|f| sd_notify::NotifyState::Custom(f)));
    }
}

#[cfg(test)]
mod tests;
