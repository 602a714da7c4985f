//! Which packet-filter tables the kernel holds, asked directly and cheaply before any
//! program is run: nftables' tables over netlink (the `NFT_MSG_GETTABLE` dump that `nft list
//! tables` sends), legacy iptables' from `/proc/net/ip{,6}_tables_names`. A host with no
//! table has nothing to judge, and most hosts answer that in microseconds.

use crate::netlink::{self, HEADER_LEN as HEADER, RECEIVE_BUFFER};
use nix::sys::socket::SockProtocol;
use std::io;

/// An nftables table: its family (`ip`, `inet`, ...) and name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    pub family: &'static str,
    pub name: String,
}

impl Table {
    /// A table iptables-nft may have written: one of its names, in one of its families.
    pub fn iptables_like(&self) -> bool {
        matches!(self.family, "ip" | "ip6")
            && matches!(
                self.name.as_str(),
                "filter" | "nat" | "mangle" | "raw" | "security"
            )
    }
}

/// The tables of the host's packet filter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tables {
    pub nft: Vec<Table>,
    /// Legacy iptables tables (IPv4, IPv6): x_tables that nft cannot see.
    pub legacy4: Vec<String>,
    pub legacy6: Vec<String>,
}

impl Tables {
    pub fn is_empty(&self) -> bool {
        self.nft.is_empty() && self.legacy4.is_empty() && self.legacy6.is_empty()
    }

    /// Tables that iptables-nft may have written (its table names, in its families).
    pub fn iptables_nft(&self, family: &str) -> bool {
        self.nft
            .iter()
            .any(|t| t.family == family && t.iptables_like())
    }
}

/// Reads them; an error means the filter cannot be listed (most often: no CAP_NET_ADMIN).
pub fn tables() -> io::Result<Tables> {
    Ok(Tables {
        nft: nft_tables()?,
        legacy4: legacy("/proc/thread-self/net/ip_tables_names"),
        legacy6: legacy("/proc/thread-self/net/ip6_tables_names"),
    })
}

/// A legacy table list; absent when the x_tables modules are not loaded.
fn legacy(path: &str) -> Vec<String> {
    crate::process::procfs::read(path, 4096)
        .map(|bytes| {
            String::from_utf8_lossy(&bytes)
                .split_whitespace()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_GETTABLE: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NFTA_TABLE_NAME: u16 = 1;
/// nlmsghdr, then nfgenmsg (family, version, resource id).
const GENMSG: usize = 4;

fn nft_tables() -> io::Result<Vec<Table>> {
    let socket = netlink::connect(SockProtocol::NetlinkNetFilter)?;
    let kind = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE;
    let mut request = netlink::dump_header(HEADER + GENMSG, kind, 1);
    // nfgenmsg: any family, version 0, resource 0.
    request.extend([0, 0, 0, 0]);
    netlink::send_all(&socket, &request)?;
    // On the stack: on `run`'s path the socket table's dump has just paged that depth in.
    let mut buffer = [0u8; RECEIVE_BUFFER];
    let mut found = Vec::new();
    loop {
        let datagram = netlink::receive(&socket, &mut buffer, "nftables table list")?;
        if parse_reply(datagram, &mut found)? {
            return Ok(found);
        }
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// One datagram of the dump: its tables added to `found`; true once the dump is done.
fn parse_reply(datagram: &[u8], found: &mut Vec<Table>) -> io::Result<bool> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed nftables table list");
    let mut at = 0;
    while at + HEADER <= datagram.len() {
        let len = u32_at(datagram, at).ok_or_else(bad)? as usize;
        let kind = u16_at(datagram, at + 4).ok_or_else(bad)?;
        if len < HEADER || at + len > datagram.len() {
            return Err(bad());
        }
        let message = &datagram[at..at + len];
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let errno = u32_at(message, HEADER).ok_or_else(bad)? as i32;
                if errno == 0 {
                    return Ok(true);
                }
                return Err(io::Error::from_raw_os_error(-errno));
            }
            k if k == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWTABLE => {
                let family = match message.get(HEADER) {
                    Some(2) => "ip",
                    Some(10) => "ip6",
                    Some(1) => "inet",
                    Some(3) => "arp",
                    Some(5) => "netdev",
                    Some(7) => "bridge",
                    _ => "unknown",
                };
                found.push(Table {
                    family,
                    name: attribute_string(&message[HEADER + GENMSG..], NFTA_TABLE_NAME)
                        .unwrap_or_default(),
                });
            }
            _ => {}
        }
        at += (len + 3) & !3;
    }
    Ok(false)
}

/// A string attribute (`nlattr`: length, type, value padded to 4 bytes).
fn attribute_string(mut attrs: &[u8], wanted: u16) -> Option<String> {
    while attrs.len() >= 4 {
        let len = u16_at(attrs, 0)? as usize;
        let kind = u16_at(attrs, 2)? & 0x3fff;
        if len < 4 || len > attrs.len() {
            return None;
        }
        if kind == wanted {
            let value = &attrs[4..len];
            let value = value.split(|&b| b == 0).next().unwrap_or(value);
            return Some(String::from_utf8_lossy(value).into_owned());
        }
        attrs = &attrs[((len + 3) & !3).min(attrs.len())..];
    }
    None
}

#[cfg(test)]
mod tests;
