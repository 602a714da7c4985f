//! Listeners from `NETLINK_SOCK_DIAG`: the `inet_diag` dump request that `ss` sends, once
//! for `AF_INET` and once for `AF_INET6`, which the kernel filters itself to LISTEN sockets
//! on the port asked for (userspace checks both again, at no cost). The reply of an IPv6
//! listener carries its `IPV6_V6ONLY` unasked; `docs/sockets-and-probes.md` says why.

use super::{Listener, guessed_v6_only, invalid_data};
use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP, TCP_LISTEN};
use netlink_packet_sock_diag::inet::nlas::Nla;
use netlink_packet_sock_diag::inet::{
    ExtensionFlags, InetRequest, InetResponse, SocketId, StateFlags,
};
use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, send,
    setsockopt, socket, sockopt,
};
use nix::sys::time::{TimeVal, TimeValLike};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;

/// A dump datagram is at most as large as the largest buffer this socket
/// has offered to `recvmsg`, and never below the kernel's own page-sized
/// minimum (`NLMSG_GOODSIZE`, under 8 KiB): a fixed buffer of this size
/// is never cut short, and `MSG_TRUNC` would show it if it were.
const RECEIVE_BUFFER: usize = 16 * 1024;
/// A dump is answered at once; a silent kernel must not hang `check` or startup.
const REPLY_TIMEOUT_SECONDS: i64 = 5;
const NETLINK_HEADER_LEN: usize = 16;

pub(super) fn listeners(port: u16) -> io::Result<Vec<Listener>> {
    let socket = connect()?;
    let mut buffer = [0; RECEIVE_BUFFER];
    let mut found = Vec::new();
    for (sequence, family) in [(1, AF_INET), (2, AF_INET6)] {
        send_all(&socket, &dump_request(family, port, sequence))?;
        receive_dump(&socket, sequence, &mut buffer, |response| {
            found.extend(listener_from(response, port));
        })?;
    }
    Ok(found)
}

/// The inode of this host's end of the TCP connection from `client` to `server` (`0` while
/// it waits in the listener's queue: accepted, it gets one), if the connection exists.
/// Asked in both families: an IPv6 listener's connections from IPv4 clients are IPv6
/// sockets with mapped addresses.
pub(super) fn accepted_inode(server: SocketAddr, client: SocketAddr) -> io::Result<Option<u64>> {
    let socket = connect()?;
    let mut buffer = [0; RECEIVE_BUFFER];
    let mut found = None;
    for (sequence, family) in [(1, AF_INET), (2, AF_INET6)] {
        let mut socket_id = match family {
            AF_INET => SocketId::new_v4(),
            _ => SocketId::new_v6(),
        };
        // Non-zero, they make the kernel skip every other connection.
        socket_id.source_port = server.port();
        socket_id.destination_port = client.port();
        let request = InetRequest {
            family,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::ESTABLISHED,
            socket_id,
        };
        send_all(&socket, &message(request, sequence))?;
        receive_dump(&socket, sequence, &mut buffer, |response| {
            let id = &response.header.socket_id;
            if id.source_port == server.port()
                && id.destination_port == client.port()
                && id.destination_address.to_canonical() == client.ip().to_canonical()
            {
                found = Some(u64::from(response.header.inode));
            }
        })?;
    }
    Ok(found)
}

fn connect() -> io::Result<OwnedFd> {
    let socket = socket(
        AddressFamily::Netlink,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkSockDiag,
    )?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&socket);
    // Port 0: the kernel picks this socket's address; connected to the
    // kernel (port 0 too), it takes datagrams from nobody else.
    bind(fd, &NetlinkAddr::new(0, 0))?;
    nix::sys::socket::connect(fd, &NetlinkAddr::new(0, 0))?;
    let timeout = TimeVal::seconds(REPLY_TIMEOUT_SECONDS);
    setsockopt(&socket, sockopt::ReceiveTimeout, &timeout)?;
    Ok(socket)
}

fn dump_request(family: u8, port: u16, sequence: u32) -> Vec<u8> {
    let mut socket_id = match family {
        AF_INET => SocketId::new_v4(),
        _ => SocketId::new_v6(),
    };
    // Non-zero, it makes the kernel skip listeners on other ports.
    socket_id.source_port = port;
    let request = InetRequest {
        family,
        protocol: IPPROTO_TCP,
        extensions: ExtensionFlags::empty(),
        states: StateFlags::LISTEN,
        socket_id,
    };
    message(request, sequence)
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

fn send_all(socket: &OwnedFd, request: &[u8]) -> io::Result<()> {
    let sent = send(
        std::os::fd::AsRawFd::as_raw_fd(socket),
        request,
        MsgFlags::empty(),
    )?;
    if sent != request.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "sock_diag request sent in part",
        ));
    }
    Ok(())
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
        // MSG_TRUNC makes recv return the datagram's real size, so a cut-off is visible.
        let fd = std::os::fd::AsRawFd::as_raw_fd(socket);
        let received = loop {
            match recv(fd, buffer, MsgFlags::MSG_TRUNC) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other?,
            }
        };
        let datagram = buffer
            .get(..received)
            .ok_or_else(|| invalid_data("sock_diag reply larger than the receive buffer"))?;
        if datagram.is_empty() {
            return Err(invalid_data("empty sock_diag reply"));
        }
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
        let message = NetlinkMessage::<SockDiagMessage>::deserialize(datagram)
            .map_err(|error| invalid_data(format!("sock_diag reply: {error}")))?;
        let length = message.header.length as usize;
        // A length below the header's own would never advance.
        if length < NETLINK_HEADER_LEN {
            return Err(invalid_data("sock_diag message shorter than its header"));
        }
        let aligned = length.saturating_add(3) & !3;
        datagram = datagram.get(aligned..).unwrap_or_default();
        parsed.push(message);
    }
    Ok(parsed)
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
