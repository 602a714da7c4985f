//! A netlink socket to the kernel: connected, asked, and its datagrams received whole.

use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, send,
    setsockopt, socket, sockopt,
};
use nix::sys::time::{TimeVal, TimeValLike};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

/// The size of `struct nlmsghdr`, which starts every message.
pub const HEADER_LEN: usize = 16;
pub const NLM_F_REQUEST: u16 = 1;
pub const NLM_F_DUMP: u16 = 0x300;
/// A dump datagram is at most as large as the largest buffer the socket has offered to
/// `recvmsg`, and never below the kernel's own page-sized minimum (`NLMSG_GOODSIZE`, under
/// 8 KiB): a buffer of this size is never cut short, and `MSG_TRUNC` would show it if it were.
pub const RECEIVE_BUFFER: usize = 16 * 1024;
/// A dump is answered at once; a silent kernel must not hang `check` or startup.
const REPLY_TIMEOUT_SECONDS: i64 = 5;

/// A socket of `protocol` that talks to the kernel alone: bound to port 0 (the kernel picks
/// its address) and connected to the kernel (port 0 too), so it takes no one else's datagrams.
pub fn connect(protocol: SockProtocol) -> io::Result<OwnedFd> {
    let socket = socket(
        AddressFamily::Netlink,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        protocol,
    )?;
    bind(socket.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
    nix::sys::socket::connect(socket.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
    let timeout = TimeVal::seconds(REPLY_TIMEOUT_SECONDS);
    setsockopt(&socket, sockopt::ReceiveTimeout, &timeout)?;
    Ok(socket)
}

/// The header of a dump request of `kind`, `length` bytes long in all, numbered `sequence`;
/// room for the rest of the request is reserved.
pub fn dump_header(length: usize, kind: u16, sequence: u32) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(length);
    bytes.extend((length as u32).to_ne_bytes());
    bytes.extend(kind.to_ne_bytes());
    bytes.extend((NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    bytes.extend(sequence.to_ne_bytes());
    // The sender's port: 0, the kernel fills it in.
    bytes.extend(0u32.to_ne_bytes());
    bytes
}

/// Sends `request` in one datagram.
pub fn send_all(socket: &OwnedFd, request: &[u8]) -> io::Result<()> {
    let sent = send(socket.as_raw_fd(), request, MsgFlags::empty())?;
    if sent != request.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "netlink request sent in part",
        ));
    }
    Ok(())
}

/// The next datagram, whole, in `buffer`. `what` names the reply in the error of one cut
/// short or empty.
pub fn receive<'b>(socket: &OwnedFd, buffer: &'b mut [u8], what: &str) -> io::Result<&'b [u8]> {
    // MSG_TRUNC makes recv return the datagram's real size, so a cut-off is visible.
    let received = loop {
        match recv(socket.as_raw_fd(), buffer, MsgFlags::MSG_TRUNC) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other?,
        }
    };
    let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
    match buffer.get(..received) {
        None => Err(invalid(format!(
            "{what} cut short: larger than {} bytes",
            buffer.len()
        ))),
        Some([]) => Err(invalid(format!("empty {what}"))),
        Some(datagram) => Ok(datagram),
    }
}

#[cfg(test)]
mod tests;
