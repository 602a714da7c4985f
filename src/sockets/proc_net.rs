//! Listeners from the text tables `/proc/net/tcp` and `/proc/net/tcp6` (state `0A`), read
//! when netlink is unavailable (a seccomp filter, a kernel without `inet_diag`). They carry
//! no `IPV6_V6ONLY`, so an IPv6 listener's `v6_only` is the host default for new sockets,
//! `net.ipv6.bindv6only`: right for a program that leaves the option alone, wrong for one
//! that sets it.

use super::{Listener, guessed_v6_only};
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const LISTEN_STATE: &str = "0A";

pub(super) fn listeners(port: u16) -> io::Result<Vec<Listener>> {
    // thread-self: the calling thread's network namespace (the same as the process's for
    // the launcher, which has one thread; not so for a test in a namespace of its own).
    let mut found = parse_table(&fs::read_to_string("/proc/thread-self/net/tcp")?, port);
    match fs::read_to_string("/proc/thread-self/net/tcp6") {
        Ok(table) => found.extend(parse_table(&table, port)),
        // A kernel booted with ipv6.disable=1 has no IPv6 table and no IPv6 listeners.
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    Ok(found)
}

pub(super) fn parse_table(table: &str, port: u16) -> Vec<Listener> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| parse_line(line, port))
        .collect()
}

/// One row: `sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...`.
/// Rows in other states are dropped before their addresses are decoded.
fn parse_line(line: &str, port: u16) -> Option<Listener> {
    let mut fields = line.split_whitespace();
    let local = fields.nth(1)?;
    if fields.nth(1)? != LISTEN_STATE {
        return None;
    }
    let (addr, local_port) = local.split_once(':')?;
    if u16::from_str_radix(local_port, 16).ok()? != port {
        return None;
    }
    let uid = fields.nth(3)?.parse().ok()?;
    let inode = fields.nth(1)?.parse().ok()?;
    let addr = parse_addr(addr)?;
    let v6_only = match addr {
        IpAddr::V4(_) => false,
        IpAddr::V6(addr) => guessed_v6_only(addr),
    };
    Some(Listener {
        addr,
        port,
        v6_only,
        inode,
        uid,
    })
}

/// The kernel prints each 32-bit word of the address as a host-order integer, so the
/// word's native-endian bytes are the address bytes in network order.
pub(super) fn parse_addr(hex: &str) -> Option<IpAddr> {
    match hex.len() {
        8 => Some(IpAddr::V4(Ipv4Addr::from(word(hex, 0)?))),
        32 => {
            let mut octets = [0; 16];
            for (index, chunk) in octets.chunks_exact_mut(4).enumerate() {
                chunk.copy_from_slice(&word(hex, index)?);
            }
            Some(IpAddr::V6(Ipv6Addr::from(octets)))
        }
        _ => None,
    }
}

fn word(hex: &str, index: usize) -> Option<[u8; 4]> {
    let digits = hex.get(index * 8..index * 8 + 8)?;
    if !digits.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return None;
    }
    Some(u32::from_str_radix(digits, 16).ok()?.to_ne_bytes())
}
