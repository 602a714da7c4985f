//! Listeners from `NETLINK_SOCK_DIAG`: one `inet_diag` dump of both families, which the
//! kernel filters itself to LISTEN sockets on the port asked for (userspace checks both
//! again, at no cost). The reply of an IPv6 listener carries its `IPV6_V6ONLY` unasked;
//! `docs/sockets-and-probes.md` says why.
//!
//! The dump walks every bucket of the kernel's listening hash table (one per 2 MiB of memory,
//! up to 65,536; cold in the cache after a sleep) whatever the filter, so it is asked once
//! for both families: with the original `TCPDIAG_GETSOCK` request, which the kernel answers
//! for `AF_UNSPEC`, rather than `SOCK_DIAG_BY_FAMILY`'s one family per walk. A kernel that
//! refused it before answering anything is asked per family.

use super::{Listener, guessed_v6_only, invalid_data};
use crate::netlink::{self, HEADER_LEN, RECEIVE_BUFFER};
use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_sock_diag::SOCK_DIAG_BY_FAMILY;
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP, TCP_LISTEN};
use netlink_packet_sock_diag::inet::nlas::Nla;
use netlink_packet_sock_diag::inet::{
    ExtensionFlags, InetRequest, InetResponse, SocketId, StateFlags,
};
use nix::sys::socket::SockProtocol;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;

/// The original `inet_diag` request type for TCP (`<linux/inet_diag.h>`): its dump covers
/// both families in one walk, and its replies are `SOCK_DIAG_BY_FAMILY`'s under this type.
const TCPDIAG_GETSOCK: u16 = 18;

pub(super) fn listeners(port: u16) -> io::Result<Vec<Listener>> {
    let mut found = Vec::new();
    dump(port, 0, StateFlags::LISTEN, |response| {
        found.extend(listener_from(response, port));
    })?;
    Ok(found)
}

/// The inode of this host's end of the TCP connection from `client` to `server` (`0` while
/// it waits in the listener's queue: accepted, it gets one), if the connection exists.
/// Asked in both families: an IPv6 listener's connections from IPv4 clients are IPv6
/// sockets with mapped addresses.
pub(super) fn accepted_inode(server: SocketAddr, client: SocketAddr) -> io::Result<Option<u64>> {
    let mut found = None;
    // Non-zero, the ports make the kernel skip every other connection.
    dump(
        server.port(),
        client.port(),
        StateFlags::ESTABLISHED,
        |response| {
            let id = &response.header.socket_id;
            if id.source_port == server.port()
                && id.destination_port == client.port()
                && id.destination_address.to_canonical() == client.ip().to_canonical()
            {
                found = Some(u64::from(response.header.inode));
            }
        },
    )?;
    Ok(found)
}

/// How the kernel is asked for both families.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Walk {
    /// One `TCPDIAG_GETSOCK` dump.
    Once,
    /// One `SOCK_DIAG_BY_FAMILY` dump per family, for a kernel that refuses the first.
    PerFamily,
}

/// Every TCP socket of both families in `states` with local port `sport` and remote port
/// `dport` (0: any), handed to `on_response`: in one walk of the table, or per family
/// where the kernel refuses that.
fn dump(
    sport: u16,
    dport: u16,
    states: StateFlags,
    on_response: impl FnMut(&InetResponse),
) -> io::Result<()> {
    once_or_per_family(
        |walk, on| dump_walking(walk, sport, dport, states.clone(), on),
        on_response,
    )
}

/// `walk` once for both families; again per family only if the kernel refused the first
/// before any socket came, so that no socket is handed over twice.
pub(super) fn once_or_per_family<R>(
    mut walk: impl FnMut(Walk, &mut dyn FnMut(&R)) -> io::Result<()>,
    mut on_response: impl FnMut(&R),
) -> io::Result<()> {
    let mut delivered = false;
    let once = walk(Walk::Once, &mut |r| {
        delivered = true;
        on_response(r)
    });
    match once {
        Err(e) if refused_request(&e) && !delivered => walk(Walk::PerFamily, &mut on_response),
        other => other,
    }
}

pub(super) fn dump_walking(
    walk: Walk,
    sport: u16,
    dport: u16,
    states: StateFlags,
    mut on_response: impl FnMut(&InetResponse),
) -> io::Result<()> {
    let socket = netlink::connect(SockProtocol::NetlinkSockDiag)?;
    let mut buffer = [0; RECEIVE_BUFFER];
    for (sequence, request) in (1..).zip(requests(walk, sport, dport, states)) {
        netlink::send_all(&socket, &request)?;
        receive_dump(&socket, sequence, &mut buffer, &mut on_response)?;
    }
    Ok(())
}

/// A kernel without the original request type answers it with EINVAL (an unknown type) or
/// EOPNOTSUPP (its handler not registered); other errors would fail the other way too.
pub(super) fn refused_request(e: &io::Error) -> bool {
    use nix::libc::{EINVAL, EOPNOTSUPP};
    matches!(e.raw_os_error(), Some(EINVAL | EOPNOTSUPP))
}

/// The dump requests of `walk`, numbered from 1, as bytes.
pub(super) fn requests(walk: Walk, sport: u16, dport: u16, states: StateFlags) -> Vec<Vec<u8>> {
    match walk {
        Walk::Once => vec![both_families_request(sport, dport, states, 1)],
        Walk::PerFamily => [AF_INET, AF_INET6]
            .into_iter()
            .zip(1..)
            .map(|(family, sequence)| {
                let mut socket_id = match family {
                    AF_INET => SocketId::new_v4(),
                    _ => SocketId::new_v6(),
                };
                socket_id.source_port = sport;
                socket_id.destination_port = dport;
                let request = InetRequest {
                    family,
                    protocol: IPPROTO_TCP,
                    extensions: ExtensionFlags::empty(),
                    states: states.clone(),
                    socket_id,
                };
                message(request, sequence)
            })
            .collect(),
    }
}

/// A `TCPDIAG_GETSOCK` dump request (`struct inet_diag_req`): TCP sockets of both families.
fn both_families_request(sport: u16, dport: u16, states: StateFlags, sequence: u32) -> Vec<u8> {
    const REQUEST_LEN: usize = 60;
    let mut bytes = netlink::dump_header(HEADER_LEN + REQUEST_LEN, TCPDIAG_GETSOCK, sequence);
    // idiag_family (the kernel dumps both, whatever it says), the two prefix lengths and
    // idiag_ext: no extension asked for.
    bytes.extend([AF_INET, 0, 0, 0]);
    // The socket id: ports in network order, then the addresses and interface a dump
    // does not use, and the "no cookie" cookie.
    bytes.extend(sport.to_be_bytes());
    bytes.extend(dport.to_be_bytes());
    bytes.extend([0; 32 + 4]);
    bytes.extend([0xff; 8]);
    bytes.extend(states.bits().to_ne_bytes());
    // idiag_dbs: no bytecode filter follows.
    bytes.extend(0u32.to_ne_bytes());
    bytes
}

/// A dump request for `request`, as bytes.
fn message(request: InetRequest, sequence: u32) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = sequence;
    let mut message = NetlinkMessage::new(header, SockDiagMessage::InetRequest(request).into());
    message.finalize();
    let mut bytes = vec![0; message.buffer_len()];
    message.serialize(&mut bytes);
    bytes
}

/// Reads the multipart reply to request `sequence` until `NLMSG_DONE`, handing each
/// socket to `on_response`. An `NLMSG_ERROR`, an error in `NLMSG_DONE` (the kernel's
/// way to report a dump that failed halfway) or an overrun makes the whole table untrustworthy.
fn receive_dump(
    socket: &OwnedFd,
    sequence: u32,
    buffer: &mut [u8],
    mut on_response: impl FnMut(&InetResponse),
) -> io::Result<()> {
    loop {
        let datagram = netlink::receive(socket, buffer, "sock_diag reply")?;
        for message in messages(datagram)? {
            if message.header.sequence_number != sequence {
                continue;
            }
            match message.payload {
                NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(response)) => {
                    on_response(&response)
                }
                NetlinkPayload::Done(done) if done.code < 0 => {
                    return Err(io::Error::from_raw_os_error(done.code.saturating_neg()));
                }
                NetlinkPayload::Done(_) => return Ok(()),
                NetlinkPayload::Error(error) if error.code.is_none() => return Ok(()),
                NetlinkPayload::Error(error) => return Err(error.to_io()),
                NetlinkPayload::Overrun(_) => {
                    return Err(invalid_data("sock_diag reply overrun"));
                }
                _ => {}
            }
        }
    }
}

/// Splits one datagram into its netlink messages, each starting at a 4-byte boundary.
pub(super) fn messages(mut datagram: &[u8]) -> io::Result<Vec<NetlinkMessage<SockDiagMessage>>> {
    let mut parsed = Vec::new();
    while !datagram.is_empty() {
        let message = NetlinkMessage::<SockDiagMessage>::deserialize(&as_by_family(datagram))
            .map_err(|error| invalid_data(format!("sock_diag reply: {error}")))?;
        let length = message.header.length as usize;
        // A length below the header's own would never advance.
        if length < HEADER_LEN {
            return Err(invalid_data("sock_diag message shorter than its header"));
        }
        let aligned = length.saturating_add(3) & !3;
        datagram = datagram.get(aligned..).unwrap_or_default();
        parsed.push(message);
    }
    Ok(parsed)
}

/// A reply to `TCPDIAG_GETSOCK` is the same `inet_diag_msg` as one to
/// `SOCK_DIAG_BY_FAMILY`, which is the only type the parser knows: the datagram's first
/// message, relabelled (anything else as it is, for the parser to judge).
fn as_by_family(datagram: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let word = |at: usize| datagram.get(at..at + 4).map(|b| [b[0], b[1], b[2], b[3]]);
    let (Some(length), Some(kind)) = (word(0), word(4)) else {
        return std::borrow::Cow::Borrowed(datagram);
    };
    let length = (u32::from_ne_bytes(length) as usize).min(datagram.len());
    if u16::from_ne_bytes([kind[0], kind[1]]) != TCPDIAG_GETSOCK || length < HEADER_LEN {
        return std::borrow::Cow::Borrowed(datagram);
    }
    let mut message = datagram[..length].to_vec();
    message[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    std::borrow::Cow::Owned(message)
}

fn listener_from(response: &InetResponse, port: u16) -> Option<Listener> {
    let header = &response.header;
    if header.state != TCP_LISTEN || header.socket_id.source_port != port {
        return None;
    }
    Some(Listener {
        addr: header.socket_id.source_address,
        port,
        v6_only: v6_only(response),
        inode: u64::from(header.inode),
        uid: header.uid,
    })
}

fn v6_only(response: &InetResponse) -> bool {
    let IpAddr::V6(addr) = response.header.socket_id.source_address else {
        return false;
    };
    let reported = response.nlas.iter().find_map(|nla| match nla {
        Nla::SkV6Only(v6_only) => Some(*v6_only),
        _ => None,
    });
    // Kernels older than the attribute leave it out.
    reported.unwrap_or_else(|| guessed_v6_only(addr))
}
