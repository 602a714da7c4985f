//! Which addresses of the host are probed, and in what order: loopback first,
//! then every address of every interface that is up, in the families the
//! listener covers. IPv6 addresses the kernel does not use or is retiring
//! (their flags read from `/proc/thread-self/net/if_inet6`) are listed with
//! the reason instead of probed, and link-local ones carry their interface's
//! scope id, without which `connect` cannot tell which link is meant.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use nix::ifaddrs::getifaddrs;
use nix::net::if_::{InterfaceFlags, if_nametoindex};

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
    /// The interface each probed address belongs to (as another machine reaches it).
    pub interfaces: Vec<(IpAddr, String)>,
}

impl Addresses {
    pub fn interface_of(&self, ip: IpAddr) -> Option<&str> {
        self.interfaces
            .iter()
            .find(|(a, _)| *a == ip)
            .map(|(_, i)| i.as_str())
    }
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
    // Read only for a listener that IPv6 clients reach: `0.0.0.0` needs none of it.
    let v6_flags = if families.ipv6 {
        crate::process::procfs::read("/proc/thread-self/net/if_inet6", 4096)
            .map(|text| ipv6_flags(&text))
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut found = Vec::new();
    let mut skipped = Vec::new();
    let mut interfaces: Vec<(IpAddr, String)> = Vec::new();
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
                interfaces.push((IpAddr::V4(sin.ip()), ifa.interface_name.clone()));
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
                None => {
                    found.push(addr);
                    interfaces.push((IpAddr::V6(ip), ifa.interface_name.clone()));
                }
            }
        }
    }
    Ok(Addresses {
        probe: order_targets(port, families, found),
        skipped,
        interfaces,
    })
}

/// What is left to probe when the host's addresses cannot be listed (`getifaddrs` asks over
/// netlink, which a seccomp filter or a container may refuse): loopback, for a listener that
/// IPv4 clients reach.
pub fn loopback_only(port: u16, families: Families) -> Addresses {
    Addresses {
        probe: order_targets(port, families, Vec::new()),
        ..Addresses::default()
    }
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

#[cfg(test)]
mod tests;
