use super::*;
use crate::test_support::network::private_network_with_ipv6;
use std::net::{Ipv4Addr, Ipv6Addr, TcpListener, UdpSocket};
use std::os::fd::IntoRawFd;

/// The port the tests hold: free in the private network namespace each test makes first
/// (nothing else listens there), so no test races another for it. (A port found free in the
/// host's namespace could be taken again between its probe and the test's bind.)
const PORT: u16 = 8001;

#[test]
fn a_held_socket_listens_on_every_interface() {
    private_network_with_ipv6();
    let port = PORT;
    let held = bind_and_hold(Ipv4Addr::UNSPECIFIED.into(), port, 16).unwrap();
    assert_eq!(held.origin, Origin::Launcher);
    let found = crate::sockets::listeners_on_port(port).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].is_wildcard() && found[0].covers_ipv4());
    // A client is queued in the backlog though nobody accepts yet.
    std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert_eq!(check_passed(held.fd.as_fd(), port), Ok(held.addr));
}

#[test]
fn a_held_ipv6_wildcard_also_takes_ipv4() {
    private_network_with_ipv6();
    let port = PORT;
    let held = bind_and_hold(Ipv6Addr::UNSPECIFIED.into(), port, 16).unwrap();
    let found = crate::sockets::listeners_on_port(port).unwrap();
    assert!(
        found[0].covers_ipv4() && found[0].covers_ipv6(),
        "{found:?}"
    );
    std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    drop(held);
}

#[test]
fn a_port_in_use_is_refused_naming_its_holder() {
    private_network_with_ipv6();
    let other = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = other.local_addr().unwrap().port();
    let e = bind_and_hold(Ipv4Addr::UNSPECIFIED.into(), port, 16).unwrap_err();
    assert_eq!(e.code, crate::exit::UNVERIFIED, "{e}");
    assert!(e.message.contains("the port is in use"), "{e}");
    assert!(
        e.message
            .contains(&format!("held by pid {}", std::process::id())),
        "{e}"
    );
}

#[test]
fn a_passed_socket_must_listen_on_a_wildcard_that_takes_ipv4_on_the_port() {
    private_network_with_ipv6();
    let port = PORT;
    let check = |fd: BorrowedFd<'_>| check_passed(fd, port);
    let udp = UdpSocket::bind(("0.0.0.0", port)).unwrap();
    assert!(check(udp.as_fd()).unwrap_err().contains("not a TCP stream"));
    drop(udp);
    let loopback = TcpListener::bind(("127.0.0.1", port)).unwrap();
    assert!(
        check(loopback.as_fd())
            .unwrap_err()
            .contains("a single address")
    );
    drop(loopback);
    let other_port = TcpListener::bind("0.0.0.0:0").unwrap();
    assert!(
        check(other_port.as_fd())
            .unwrap_err()
            .contains("another port")
    );
    let v6only = nix::sys::socket::socket(
        AddressFamily::Inet6,
        SockType::Stream,
        SockFlag::empty(),
        None,
    )
    .unwrap();
    setsockopt(&v6only, sockopt::Ipv6V6Only, &true).unwrap();
    bind(
        v6only.as_raw_fd(),
        &SockaddrIn6::from(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0)),
    )
    .unwrap();
    listen(&v6only, Backlog::new(1).unwrap()).unwrap();
    assert!(check(v6only.as_fd()).unwrap_err().contains("IPv6 only"));
    drop(v6only);
    let unbound = nix::sys::socket::socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::empty(),
        None,
    )
    .unwrap();
    assert!(
        check(unbound.as_fd())
            .unwrap_err()
            .contains("does not listen")
    );
    let good = bind_and_hold(Ipv4Addr::UNSPECIFIED.into(), port, 1).unwrap();
    assert_eq!(
        check(good.fd.as_fd()),
        Ok(SocketAddr::from(([0, 0, 0, 0], port)))
    );
}

#[test]
fn only_sockets_passed_to_this_process_are_taken() {
    let other_pid = (std::process::id() + 1).to_string();
    let none = Passed::default();
    assert_eq!(
        Passed::read(Some(&other_pid), Some("1"), None).unwrap(),
        none
    );
    assert_eq!(Passed::read(None, Some("1"), None).unwrap(), none);
    let ours = std::process::id().to_string();
    assert_eq!(Passed::read(Some(&ours), None, None).unwrap(), none);
    assert_eq!(Passed::read(Some(&ours), Some("0"), None).unwrap(), none);
    let e = Passed::read(Some(&ours), Some("two"), None).unwrap_err();
    assert_eq!(e.code, crate::exit::CONFIG);
    for (count, said) in [("2", "LISTEN_FDS=2: "), (" 3\n", "LISTEN_FDS=3: ")] {
        let passed = Passed::read(Some(&ours), Some(count), None).unwrap();
        assert!(passed.activated() && passed.stored.is_empty());
        let e = take(&passed, 8001, true).unwrap_err();
        assert_eq!(e.code, crate::exit::CONFIG);
        assert!(e.message.contains("exactly one socket"), "{e}");
        // The count as systemd wrote it, no quotes, no padding.
        assert!(e.message.contains(&format!("systemd passed {said}")), "{e}");
    }
}

/// `LISTEN_FDNAMES` tells the launcher's own socket from the store apart from a `.socket`
/// unit's; names that do not match the count are not trusted (all are then the unit's).
#[test]
fn passed_descriptors_are_told_apart_by_name() {
    let ours = std::process::id().to_string();
    let names = format!("solvit.socket:{}", store_name(8001));
    let passed = Passed::read(Some(&ours), Some("2"), Some(&names)).unwrap();
    assert_eq!(passed.activation, vec![3]);
    assert_eq!(
        passed.stored,
        vec![(4, "gunicorn-launcher-port-8001".to_string())]
    );
    let passed = Passed::read(Some(&ours), Some("1"), Some("gunicorn-launcher-port-8002")).unwrap();
    assert!(!passed.activated());
    assert_eq!(
        passed.stored,
        vec![(3, "gunicorn-launcher-port-8002".to_string())]
    );
    let passed = Passed::read(Some(&ours), Some("2"), Some("gunicorn-launcher-port-8001")).unwrap();
    assert_eq!(passed.activation, vec![3, 4]);
    assert!(
        store_name(8001)
            .chars()
            .all(|c| c.is_ascii_graphic() && c != ':')
    );
}

/// A socket given back from the store is taken when it is right (a listening wildcard on
/// the port, the launcher holding its socket), and dropped with the reason otherwise; a
/// `.socket` unit's socket wins over a stored one.
#[test]
fn a_stored_socket_is_taken_back_only_when_it_still_fits() {
    private_network_with_ipv6();
    let stored = |port: u16| {
        let held = bind_and_hold(Ipv4Addr::UNSPECIFIED.into(), port, 16).unwrap();
        (held.fd.into_raw_fd(), store_name(port))
    };
    let right = Passed {
        activation: vec![],
        stored: vec![stored(PORT)],
    };
    let taken = take(&right, PORT, true).unwrap();
    let held = taken.held.expect("taken back");
    assert_eq!(held.origin, Origin::Store);
    assert_eq!(held.addr, SocketAddr::from(([0, 0, 0, 0], PORT)));
    assert!(taken.dropped.is_empty());
    assert!(
        held.describe()
            .contains("taken back from systemd's file descriptor store")
    );
    drop(held);

    let moved = Passed {
        activation: vec![],
        stored: vec![stored(PORT)],
    };
    let taken = take(&moved, PORT + 1, true).unwrap();
    assert!(taken.held.is_none());
    assert_eq!(taken.dropped.len(), 1);
    assert_eq!(taken.dropped[0].name, store_name(PORT));
    assert!(
        taken.dropped[0].why.contains("another port"),
        "{:?}",
        taken.dropped
    );

    let not_held = Passed {
        activation: vec![],
        stored: vec![stored(PORT)],
    };
    let taken = take(&not_held, PORT, false).unwrap();
    assert!(taken.held.is_none());
    assert!(
        taken.dropped[0].why.contains("no --hold-socket"),
        "{:?}",
        taken.dropped
    );

    let quiet = nix::sys::socket::socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::empty(),
        None,
    )
    .unwrap();
    let closed = Passed {
        activation: vec![],
        stored: vec![(quiet.into_raw_fd(), store_name(PORT))],
    };
    let taken = take(&closed, PORT, true).unwrap();
    assert!(
        taken.dropped[0].why.contains("does not listen"),
        "{:?}",
        taken.dropped
    );

    let unit = bind_and_hold(Ipv4Addr::UNSPECIFIED.into(), PORT + 2, 16).unwrap();
    let both = Passed {
        activation: vec![unit.fd.into_raw_fd()],
        stored: vec![stored(PORT + 2 + 1)],
    };
    let taken = take(&both, PORT + 2, true).unwrap();
    assert_eq!(taken.held.expect("the unit's").origin, Origin::Systemd);
    assert!(
        taken.dropped[0].why.contains(".socket unit"),
        "{:?}",
        taken.dropped
    );
}
