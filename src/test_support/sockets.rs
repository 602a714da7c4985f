//! Listening sockets for the tests, made as a server makes them, and their inodes as the
//! fd table shows them (independent of sock_diag).

use crate::process::owners::socket_inode;
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage, bind, listen, setsockopt, socket,
    sockopt,
};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;

/// A listening socket made the way a server makes it, `IPV6_V6ONLY` set explicitly when asked.
pub fn listen_on(addr: &str, v6_only: Option<bool>) -> io::Result<TcpListener> {
    let addr: SocketAddr = addr
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    if let Some(v6_only) = v6_only {
        setsockopt(&fd, sockopt::Ipv6V6Only, &v6_only)?;
    }
    bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    listen(&fd, Backlog::new(16)?)?;
    Ok(TcpListener::from(fd))
}

pub fn port_of(listener: &TcpListener) -> u16 {
    listener.local_addr().unwrap().port()
}

/// The inode as the fd table shows it, independent of sock_diag.
pub fn inode_of(fd: impl AsFd) -> u64 {
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd())).unwrap();
    socket_inode(link.as_os_str().as_bytes()).unwrap()
}
