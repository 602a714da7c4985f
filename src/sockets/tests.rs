use super::*;
use crate::test_support::sockets::{inode_of, listen_on, port_of};
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
    // Another test may bind the freed port meanwhile; this socket must be gone.
    let found = listeners_on_port(port).unwrap();
    assert!(
        found.iter().all(|listener| listener.inode != inode),
        "{found:?}"
    );
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
    fn proc_net_parsers_never_panic(line in ".{0,200}") {
        let _ = proc_net::parse_table(&format!("header\n{line}"), 8001);
        let _ = proc_net::parse_addr(&line);
    }
}
