use super::*;
use crate::testnet::private_network_with_ipv6;
use std::net::{Ipv4Addr, Ipv6Addr, TcpListener, UdpSocket};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_held_socket_listens_on_every_interface() {
    private_network_with_ipv6();
    let port = free_port();
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
    let port = free_port();
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
    let port = free_port();
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
    assert!(
        from_systemd(Some(&other_pid), Some("1"), 8001)
            .unwrap()
            .is_none()
    );
    assert!(from_systemd(None, Some("1"), 8001).unwrap().is_none());
    let ours = std::process::id().to_string();
    assert!(from_systemd(Some(&ours), None, 8001).unwrap().is_none());
    assert!(
        from_systemd(Some(&ours), Some("0"), 8001)
            .unwrap()
            .is_none()
    );
    let e = from_systemd(Some(&ours), Some("2"), 8001).unwrap_err();
    assert_eq!(e.code, crate::exit::CONFIG);
    assert!(e.message.contains("exactly one socket"), "{e}");
    // The count as systemd wrote it, as the one-socket case says it: no quotes, no padding.
    assert!(e.message.contains("systemd passed LISTEN_FDS=2: "), "{e}");
    let e = from_systemd(Some(&ours), Some(" 3\n"), 8001).unwrap_err();
    assert!(e.message.contains("systemd passed LISTEN_FDS=3: "), "{e}");
}
