//! Which TCP sockets listen on a port, from the kernel's own socket table.
//!
//! The kernel is asked instead of trusting a command line: a `gunicorn.conf.py` hook or
//! `reuse_port` can defeat the `--bind` we pass, so the only proof of "listening on all
//! interfaces" is the kernel's table. It is read through `NETLINK_SOCK_DIAG` (`sock_diag`,
//! what `ss` uses), the only place another process's `IPV6_V6ONLY` shows; where netlink is
//! unavailable, `/proc/net/tcp{,6}` answer (`proc_net`), with a guessed `v6_only` ([`Source`](crate::sockets::Source)).
//! Which processes hold a socket is another search, in [`crate::process::owners`].
//! `docs/sockets-and-probes.md` gives the reasons at length.

use std::fs;
use std::io;
use std::net::SocketAddr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

mod proc_net;
mod sock_diag;
#[cfg(test)]
mod tests;

/// A TCP socket in LISTEN state, as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Listener {
    /// Exact local address (0.0.0.0, ::, 127.0.0.1, ::ffff:..., etc.).
    pub addr: IpAddr,
    pub port: u16,
    /// For IPv6 sockets: `IPV6_V6ONLY` is set (always false for IPv4).
    pub v6_only: bool,
    /// Socket inode, the key that links the socket to the fd tables of its holders.
    pub inode: u64,
    /// Owning uid from the kernel: the fsuid of the process that created the socket.
    pub uid: u32,
}

impl Listener {
    /// Accepts connections to every local address of at least one family.
    pub fn is_wildcard(&self) -> bool {
        self.covers_ipv4() || self.covers_ipv6()
    }

    /// Accepts IPv4 connections to every local IPv4 address.
    ///
    /// Besides `0.0.0.0` and a dual-stack `::`, an IPv6 socket bound to `::ffff:0.0.0.0`
    /// counts: the kernel stores it as IPv4 "any", and it accepts IPv4 on every interface.
    pub fn covers_ipv4(&self) -> bool {
        match self.addr {
            IpAddr::V4(addr) => addr.is_unspecified(),
            IpAddr::V6(addr) => {
                (addr.is_unspecified() && !self.v6_only)
                    || addr.to_ipv4_mapped() == Some(Ipv4Addr::UNSPECIFIED)
            }
        }
    }

    /// Accepts IPv6 connections to every local IPv6 address (`::`, v6-only or not).
    pub fn covers_ipv6(&self) -> bool {
        matches!(self.addr, IpAddr::V6(addr) if addr.is_unspecified())
    }
}

/// Where a listener table came from, which says how far `v6_only` can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The kernel's `NETLINK_SOCK_DIAG`: every field is exact.
    SockDiag,
    /// `/proc/net/tcp{,6}`, because netlink failed: `v6_only` of IPv6 listeners is the
    /// `net.ipv6.bindv6only` default, a guess.
    ProcNet,
}

/// Every TCP socket in LISTEN state on `port`, IPv4 and IPv6, in the caller's network namespace.
pub fn listeners_on_port(port: u16) -> io::Result<Vec<Listener>> {
    query_listeners(port).map(|(listeners, _)| listeners)
}

/// [`listeners_on_port`], also saying which source answered.
pub fn query_listeners(port: u16) -> io::Result<(Vec<Listener>, Source)> {
    match sock_diag::listeners(port) {
        Ok(listeners) => Ok((listeners, Source::SockDiag)),
        Err(netlink_error) => match proc_net::listeners(port) {
            Ok(listeners) => Ok((listeners, Source::ProcNet)),
            Err(proc_error) => Err(io::Error::new(
                netlink_error.kind(),
                format!("sock_diag: {netlink_error}; /proc/net/tcp: {proc_error}"),
            )),
        },
    }
}

/// The inode of this host's end of the connection from `client` to `server`: `Some(0)`
/// while it waits in the listener's queue, the socket's inode once a process accepted it.
pub fn accepted_inode(server: SocketAddr, client: SocketAddr) -> io::Result<Option<u64>> {
    sock_diag::accepted_inode(server, client)
}

/// The host default for `IPV6_V6ONLY`, the best guess for a socket whose flag we cannot read.
fn guessed_v6_only(addr: Ipv6Addr) -> bool {
    // A socket bound to a v4-mapped address cannot be v6-only: the kernel refuses that bind.
    if addr.to_ipv4_mapped().is_some() {
        return false;
    }
    fs::read_to_string("/proc/sys/net/ipv6/bindv6only").is_ok_and(|value| value.trim() == "1")
}

fn invalid_data(error: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error.to_string())
}
