use super::*;
use crate::test_support::sockets::{inode_of, listen_on, port_of};
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrStorage, bind, socket};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;

/// An IPv6 listener, in a private network namespace that has IPv6 (see
/// [`crate::test_support::network`]): never skipped, whatever the host's own network.
fn ipv6_listener(addr: &str, v6_only: Option<bool>) -> TcpListener {
    crate::test_support::network::private_network_with_ipv6();
    listen_on(addr, v6_only).unwrap_or_else(|e| panic!("{addr}: {e}"))
}

fn expected(listener: &TcpListener, v6_only: bool) -> Listener {
    let local = listener.local_addr().unwrap();
    Listener {
        addr: local.ip(),
        port: local.port(),
        v6_only,
        inode: inode_of(listener),
        uid: nix::unistd::geteuid().as_raw(),
    }
}

fn sorted(mut listeners: Vec<Listener>) -> Vec<Listener> {
    listeners.sort_by_key(|listener| listener.inode);
    listeners
}

fn host_default_v6_only() -> bool {
    guessed_v6_only(Ipv6Addr::UNSPECIFIED)
}

#[test]
fn finds_ipv4_loopback_listener() {
    let listener = listen_on("127.0.0.1:0", None).unwrap();
    let (found, source) = query_listeners(port_of(&listener)).unwrap();
    assert_eq!(source, Source::SockDiag);
    assert_eq!(found, vec![expected(&listener, false)]);
    assert!(!found[0].is_wildcard() && !found[0].covers_ipv4() && !found[0].covers_ipv6());
}

#[test]
fn finds_ipv4_wildcard_listener() {
    let listener = listen_on("0.0.0.0:0", None).unwrap();
    let found = listeners_on_port(port_of(&listener)).unwrap();
    assert_eq!(found, vec![expected(&listener, false)]);
    assert!(found[0].is_wildcard() && found[0].covers_ipv4() && !found[0].covers_ipv6());
}

#[test]
fn reports_v6_only_wildcard() {
    let listener = ipv6_listener("[::]:0", Some(true));
    let found = listeners_on_port(port_of(&listener)).unwrap();
    assert_eq!(found, vec![expected(&listener, true)]);
    assert!(found[0].is_wildcard() && !found[0].covers_ipv4() && found[0].covers_ipv6());
}

#[test]
fn reports_dual_stack_wildcard() {
    let listener = ipv6_listener("[::]:0", Some(false));
    let found = listeners_on_port(port_of(&listener)).unwrap();
    assert_eq!(found, vec![expected(&listener, false)]);
    assert!(found[0].is_wildcard() && found[0].covers_ipv4() && found[0].covers_ipv6());
}

#[test]
fn default_ipv6_socket_follows_host_default() {
    let listener = ipv6_listener("[::]:0", None);
    let found = listeners_on_port(port_of(&listener)).unwrap();
    assert_eq!(found, vec![expected(&listener, host_default_v6_only())]);
}

#[test]
fn finds_ipv6_loopback_listener() {
    let listener = ipv6_listener("[::1]:0", Some(true));
    let found = listeners_on_port(port_of(&listener)).unwrap();
    assert_eq!(found, vec![expected(&listener, true)]);
    assert!(!found[0].is_wildcard());
}

#[test]
fn mapped_ipv4_any_covers_ipv4_only() {
    let listener = ipv6_listener("[::ffff:0.0.0.0]:0", Some(false));
    let found = listeners_on_port(port_of(&listener)).unwrap();
    assert_eq!(found, vec![expected(&listener, false)]);
    assert_eq!(found[0].addr, "::ffff:0.0.0.0".parse::<IpAddr>().unwrap());
    assert!(found[0].is_wildcard() && found[0].covers_ipv4() && !found[0].covers_ipv6());
    // The claim behind covers_ipv4: the kernel hands it IPv4 connections.
    TcpStream::connect(("127.0.0.1", port_of(&listener))).unwrap();
}

#[test]
fn mapped_ipv4_loopback_is_not_wildcard() {
    let listener = ipv6_listener("[::ffff:127.0.0.1]:0", Some(false));
    let found = listeners_on_port(port_of(&listener)).unwrap();
    assert_eq!(found, vec![expected(&listener, false)]);
    assert!(!found[0].is_wildcard() && !found[0].covers_ipv4());
}

#[test]
fn finds_every_listener_sharing_a_port() {
    crate::test_support::network::private_network_with_ipv6();
    let ipv4 = listen_on("0.0.0.0:0", None).unwrap();
    let port = port_of(&ipv4);
    let ipv6 = listen_on(&format!("[::1]:{port}"), Some(true)).unwrap();
    let found = sorted(listeners_on_port(port).unwrap());
    assert_eq!(
        found,
        sorted(vec![expected(&ipv4, false), expected(&ipv6, true)])
    );
}

/// The one walk for both families finds what a walk per family finds: the fallback for a
/// kernel that refuses the original request is the same table.
#[test]
fn one_walk_finds_what_a_walk_per_family_finds() {
    use netlink_packet_sock_diag::inet::StateFlags;
    use sock_diag::Walk;
    crate::test_support::network::private_network_with_ipv6();
    let ipv4 = listen_on("127.0.0.1:0", None).unwrap();
    let port = port_of(&ipv4);
    let dual = listen_on(&format!("[::]:{port}"), Some(true)).unwrap();
    let mapped = listen_on(&format!("[::ffff:127.0.0.2]:{port}"), Some(false)).unwrap();
    let walked = |walk| {
        let mut inodes = Vec::new();
        sock_diag::dump_walking(walk, port, 0, StateFlags::LISTEN, |r| {
            inodes.push((r.header.family, u64::from(r.header.inode)));
        })
        .unwrap();
        inodes.sort();
        inodes
    };
    let mut expected = vec![
        (AF_INET, inode_of(&ipv4)),
        (AF_INET6, inode_of(&dual)),
        (AF_INET6, inode_of(&mapped)),
    ];
    expected.sort();
    assert_eq!(walked(Walk::Once), expected);
    assert_eq!(walked(Walk::PerFamily), expected);
}

#[test]
fn only_a_refused_request_is_asked_again_per_family() {
    use nix::libc::{EACCES, EAGAIN, EINVAL, ENOBUFS, ENOENT, EOPNOTSUPP};
    let refused = |errno| sock_diag::refused_request(&std::io::Error::from_raw_os_error(errno));
    assert!(refused(EINVAL) && refused(EOPNOTSUPP));
    assert!(!refused(EACCES) && !refused(ENOBUFS) && !refused(ENOENT) && !refused(EAGAIN));
    assert!(!sock_diag::refused_request(&std::io::Error::other(
        "no errno"
    )));
}

/// The per-family walk follows only a first walk the kernel refused, and only if no socket
/// came before the refusal: a socket is never handed over twice, and any other error stands.
#[test]
fn only_a_walk_refused_before_any_socket_is_walked_again_per_family() {
    use nix::libc::{EACCES, EINVAL, EOPNOTSUPP};
    use sock_diag::Walk;
    // The first walk hands over `first` and ends with `end`; a walk per family hands over 2, 3.
    let run = |first: &[u32], end: Result<(), i32>| {
        let mut walks = Vec::new();
        let mut got = Vec::new();
        let result = sock_diag::once_or_per_family(
            |walk, on: &mut dyn FnMut(&u32)| {
                walks.push(walk);
                match walk {
                    Walk::Once => {
                        first.iter().for_each(&mut *on);
                        end.map_err(std::io::Error::from_raw_os_error)
                    }
                    Walk::PerFamily => {
                        [2, 3].iter().for_each(&mut *on);
                        Ok(())
                    }
                }
            },
            |&n| got.push(n),
        );
        (walks, got, result.map_err(|e| e.raw_os_error()))
    };
    let again = vec![Walk::Once, Walk::PerFamily];
    for refused in [EINVAL, EOPNOTSUPP] {
        assert_eq!(run(&[], Err(refused)), (again.clone(), vec![2, 3], Ok(())));
        assert_eq!(
            run(&[1], Err(refused)),
            (vec![Walk::Once], vec![1], Err(Some(refused))),
            "a socket came before the refusal"
        );
    }
    assert_eq!(
        run(&[], Err(EACCES)),
        (vec![Walk::Once], vec![], Err(Some(EACCES)))
    );
    assert_eq!(run(&[1], Ok(())), (vec![Walk::Once], vec![1], Ok(())));
}

/// A connection from `client` is found in both families: waiting in the queue (inode 0),
/// then with the inode of the socket `accept` made; another client port is not.
#[test]
fn an_accepted_connection_is_found_by_its_client() {
    crate::test_support::network::private_network_with_ipv6();
    for (addr, v6_only) in [("127.0.0.1:0", None), ("[::1]:0", Some(true))] {
        let listener = listen_on(addr, v6_only).unwrap();
        let server = listener.local_addr().unwrap();
        let client = TcpStream::connect(server).unwrap();
        let from = client.local_addr().unwrap();
        assert_eq!(
            accepted_inode(server, from).unwrap(),
            Some(0),
            "{addr} queued"
        );
        let (accepted, _) = listener.accept().unwrap();
        let inode = Some(inode_of(&accepted));
        assert_eq!(
            accepted_inode(server, from).unwrap(),
            inode,
            "{addr} accepted"
        );
        let other = SocketAddr::new(from.ip(), from.port() ^ 1);
        assert_eq!(
            accepted_inode(server, other).unwrap(),
            None,
            "{addr} other port"
        );
    }
}

/// `struct inet_diag_req` under `TCPDIAG_GETSOCK`, as `<linux/inet_diag.h>` lays it out.
#[test]
fn the_one_walk_request_is_the_original_inet_diag_request() {
    use netlink_packet_sock_diag::inet::StateFlags;
    let requests = sock_diag::requests(sock_diag::Walk::Once, 8001, 0, StateFlags::LISTEN);
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    let u16_at = |at: usize| u16::from_ne_bytes([r[at], r[at + 1]]);
    let u32_at = |at: usize| u32::from_ne_bytes([r[at], r[at + 1], r[at + 2], r[at + 3]]);
    assert_eq!((r.len(), u32_at(0)), (76, 76), "header + 60-byte request");
    assert_eq!(u16_at(4), 18, "TCPDIAG_GETSOCK");
    assert_eq!(u16_at(6), 0x301, "NLM_F_REQUEST | NLM_F_DUMP");
    assert_eq!(u32_at(8), 1, "sequence");
    assert_eq!(&r[20..24], &[0x1f, 0x41, 0, 0], "ports in network order");
    assert_eq!(u32_at(68), 1 << 10, "TCP_LISTEN only");
    assert_eq!(&r[60..68], &[0xff; 8], "no cookie");
    let per_family = sock_diag::requests(sock_diag::Walk::PerFamily, 8001, 0, StateFlags::LISTEN);
    let types: Vec<u16> = per_family
        .iter()
        .map(|r| u16::from_ne_bytes([r[4], r[5]]))
        .collect();
    assert_eq!(types, [20, 20], "SOCK_DIAG_BY_FAMILY");
    let families: Vec<u8> = per_family.iter().map(|r| r[16]).collect();
    assert_eq!(families, [AF_INET, AF_INET6]);
}

#[test]
fn ignores_connections_and_sockets_not_listening() {
    let listener = listen_on("127.0.0.1:0", None).unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    // The accepted connection shares the listener's port; only the listener counts.
    assert_eq!(
        listeners_on_port(port_of(&listener)).unwrap(),
        vec![expected(&listener, false)]
    );
    assert!(
        listeners_on_port(client.local_addr().unwrap().port())
            .unwrap()
            .is_empty()
    );

    let bound = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    let any_port: SocketAddr = "127.0.0.1:0".parse().unwrap();
    bind(bound.as_raw_fd(), &SockaddrStorage::from(any_port)).unwrap();
    let bound_port = nix::sys::socket::getsockname::<SockaddrStorage>(bound.as_raw_fd())
        .unwrap()
        .as_sockaddr_in()
        .unwrap()
        .port();
    assert!(listeners_on_port(bound_port).unwrap().is_empty());
    drop((accepted, bound));
}

#[test]
fn closed_listener_is_gone() {
    let listener = listen_on("127.0.0.1:0", None).unwrap();
    let (port, inode) = (port_of(&listener), inode_of(&listener));
    drop(listener);
    // Another test may bind the freed port meanwhile; this socket must be gone. A process
    // another test forks at this moment holds a copy of it until it execs (the copy is
    // close-on-exec), so it may take that long.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let found = listeners_on_port(port).unwrap();
        if found.iter().all(|listener| listener.inode != inode) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{found:?}");
        std::thread::yield_now();
    }
}

#[test]
fn proc_net_fallback_agrees_with_sock_diag() {
    crate::test_support::network::private_network_with_ipv6();
    let ipv4 = listen_on("127.0.0.1:0", None).unwrap();
    let port = port_of(&ipv4);
    // v6-only on purpose: the fallback cannot see that and must report the host default.
    let ipv6 = listen_on(&format!("[::]:{port}"), Some(true)).unwrap();
    let (diag, source) = query_listeners(port).unwrap();
    assert_eq!(source, Source::SockDiag);
    assert_eq!(
        sorted(diag.clone()),
        sorted(vec![expected(&ipv4, false), expected(&ipv6, true)])
    );
    // The fallback agrees with sock_diag on everything but IPV6_V6ONLY, which /proc/net
    // does not show: for that it reports the host's default, read here from the sysctl.
    let sysctl = std::fs::read_to_string("/proc/sys/net/ipv6/bindv6only").unwrap();
    let host_default = sysctl.trim() == "1";
    let mut wanted = diag;
    for l in &mut wanted {
        if l.addr.is_ipv6() {
            l.v6_only = host_default;
        }
    }
    assert_eq!(sorted(proc_net::listeners(port).unwrap()), sorted(wanted));
}

#[test]
fn parses_proc_net_addresses() {
    let v4 = if cfg!(target_endian = "little") {
        "0100007F"
    } else {
        "7F000001"
    };
    assert_eq!(proc_net::parse_addr(v4), Some("127.0.0.1".parse().unwrap()));
    let v6 = if cfg!(target_endian = "little") {
        "00000000000000000000000001000000"
    } else {
        "00000000000000000000000000000001"
    };
    assert_eq!(proc_net::parse_addr(v6), Some("::1".parse().unwrap()));
    for junk in [
        "",
        "0100007",
        "zz00007F",
        "+100007F",
        "0100007F00",
        "é1000007F",
    ] {
        assert_eq!(proc_net::parse_addr(junk), None, "{junk:?}");
    }
}

#[test]
fn parses_proc_net_rows_in_listen_state_only() {
    let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
            0: 00000000:1F41 00000000:0000 0A 00000000:00000000 00:00000000 00000000   33        0 4242 1 0 100 0 0 10 0\n\
            1: 0100007F:1F41 0100007F:A000 01 00000000:00000000 00:00000000 00000000   33        0 4343 1 0 100 0 0 10 0\n\
            2: 0100007F:1F42 00000000:0000 0A 00000000:00000000 00:00000000 00000000   33        0 4444 1 0 100 0 0 10 0\n\
            3: garbage\n";
    let found = proc_net::parse_table(table, 8001);
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].inode, found[0].uid, found[0].port),
        (4242, 33, 8001)
    );
    assert!(found[0].addr.is_unspecified());
}

/// A reply under the original request type whose length field is shorter than a header:
/// an error, whatever the length, never a relabelling of bytes that are not there.
#[test]
fn a_too_short_reply_of_the_original_type_is_an_error() {
    for length in 0u32..=16 {
        let mut datagram = length.to_ne_bytes().to_vec();
        datagram.extend(18u16.to_ne_bytes());
        datagram.extend([0; 10]);
        assert!(sock_diag::messages(&datagram).is_err(), "length {length}");
    }
}

#[test]
fn garbage_netlink_replies_are_errors_not_panics() {
    let header_only = [16, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(sock_diag::messages(&header_only).unwrap().len(), 1);
    for junk in [
        &[0u8; 16][..],
        &[1, 2, 3],
        &[255; 40],
        &[20, 0, 0, 0, 20, 0, 0, 0],
    ] {
        assert!(sock_diag::messages(junk).is_err(), "{junk:?}");
    }
}

proptest::proptest! {
    #[test]
    fn netlink_parser_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
        let _ = sock_diag::messages(&bytes);
    }

    #[test]
    fn netlink_parser_never_panics_on_the_original_request_type(
        mut bytes in proptest::collection::vec(proptest::num::u8::ANY, 6..512)
    ) {
        bytes[4..6].copy_from_slice(&18u16.to_ne_bytes());
        let _ = sock_diag::messages(&bytes);
    }

    #[test]
    fn proc_net_parsers_never_panic(line in ".{0,200}") {
        let _ = proc_net::parse_table(&format!("header\n{line}"), 8001);
        let _ = proc_net::parse_addr(&line);
    }
}
