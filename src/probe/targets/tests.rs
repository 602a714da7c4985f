use super::*;

const BOTH: Families = Families {
    ipv4: true,
    ipv6: true,
};

#[test]
fn targets_start_with_loopback() {
    crate::test_support::network::private_network_with_ipv6();
    let addrs = targets(8001, BOTH).unwrap().probe;
    assert_eq!(addrs[0], SocketAddr::from((Ipv4Addr::LOCALHOST, 8001)));
    assert_eq!(addrs[1], SocketAddr::from((Ipv6Addr::LOCALHOST, 8001)));
    assert_eq!(
        addrs[2],
        SocketAddr::from((crate::test_support::network::SECOND_IPV4, 8001))
    );
    assert_eq!(
        addrs.len(),
        5,
        "two loopbacks, 10.200.0.1, two link-locals: {addrs:?}"
    );
    assert!(addrs.iter().all(|a| a.port() == 8001));
    for (i, a) in addrs.iter().enumerate() {
        assert!(!addrs[i + 1..].contains(a), "{a} twice in {addrs:?}");
    }
}

#[test]
fn ipv4_targets_hold_only_ipv4() {
    let v4 = Families {
        ipv4: true,
        ipv6: false,
    };
    let addrs = targets(80, v4).unwrap().probe;
    assert_eq!(addrs[0], SocketAddr::from((Ipv4Addr::LOCALHOST, 80)));
    assert!(addrs.iter().all(SocketAddr::is_ipv4), "{addrs:?}");
}

#[test]
fn ipv6_targets_hold_no_ipv4() {
    let v6 = Families {
        ipv4: false,
        ipv6: true,
    };
    crate::test_support::network::private_network_with_ipv6();
    let addrs = targets(80, v6).unwrap().probe;
    assert!(addrs.iter().all(SocketAddr::is_ipv6), "{addrs:?}");
    assert_eq!(addrs[0], SocketAddr::from((Ipv6Addr::LOCALHOST, 80)));
}

#[test]
fn no_families_no_targets() {
    let none = Families {
        ipv4: false,
        ipv6: false,
    };
    assert!(targets(80, none).unwrap().probe.is_empty());
}

#[test]
fn link_local_targets_carry_a_scope() {
    crate::test_support::network::private_network_with_ipv6();
    let mut link_local = 0;
    for addr in targets(8001, BOTH).unwrap().probe {
        if let SocketAddr::V6(v6) = addr {
            if v6.ip().is_unicast_link_local() {
                assert_ne!(v6.scope_id(), 0, "{addr}");
                link_local += 1;
            } else {
                assert_eq!(v6.scope_id(), 0, "{addr}");
            }
        }
    }
    assert_eq!(link_local, 2, "gl0 and gl1 each have one");
}

#[test]
fn inet6_flags_are_read_and_unused_addresses_named() {
    let text = b"fe8000000000000000fc00fffe000001 04 40 20 80     eth0\n\
                     00000000000000000000000000000001 01 80 10 80       lo\n\
                     fd000000000000000000000000000002 05 40 00 c8     veth0\n\
                     garbage\n";
    let flags = ipv6_flags(text);
    assert_eq!(flags.len(), 3);
    assert_eq!(
        flags[0],
        ("fe80::fc:ff:fe00:1".parse().unwrap(), "eth0".into(), 0x80)
    );
    assert_eq!(flags[2].2, 0xc8);
    assert_eq!(unused_because(0x80), None);
    assert!(
        unused_because(0xc8)
            .unwrap()
            .contains("duplicate address detection failed")
    );
    assert!(unused_because(0x40).unwrap().contains("tentative"));
    assert!(unused_because(0x20).unwrap().contains("deprecated"));
}

#[test]
fn ordering_puts_loopback_first_and_drops_repeats() {
    let a = |s: &str| s.parse::<SocketAddr>().unwrap();
    let found = vec![
        a("192.0.2.2:8001"),
        a("127.0.0.1:8001"),
        a("[fd00::2]:8001"),
        a("[::1]:8001"),
        a("192.0.2.2:8001"),
        a("[fe80::1%2]:8001"),
        a("[fe80::1%3]:8001"),
    ];
    assert_eq!(
        order_targets(8001, BOTH, found.clone()),
        vec![
            a("127.0.0.1:8001"),
            a("[::1]:8001"),
            a("192.0.2.2:8001"),
            a("[fd00::2]:8001"),
            a("[fe80::1%2]:8001"),
            a("[fe80::1%3]:8001"),
        ]
    );
    let v6 = Families {
        ipv4: false,
        ipv6: true,
    };
    assert_eq!(
        order_targets(8001, v6, found),
        vec![
            a("[::1]:8001"),
            a("[fd00::2]:8001"),
            a("[fe80::1%2]:8001"),
            a("[fe80::1%3]:8001"),
        ]
    );
    // No ::1 on the host: none invented.
    assert_eq!(
        order_targets(8001, v6, vec![a("[fd00::2]:8001")]),
        vec![a("[fd00::2]:8001")]
    );
}

#[test]
fn unlisted_addresses_leave_loopback_and_invent_nothing() {
    let only = loopback_only(8001, BOTH);
    assert_eq!(
        only.probe,
        ["127.0.0.1:8001".parse::<SocketAddr>().unwrap()]
    );
    assert!(only.skipped.is_empty() && only.interfaces.is_empty());
    let v6 = Families {
        ipv4: false,
        ipv6: true,
    };
    assert!(loopback_only(8001, v6).probe.is_empty());
}

#[test]
fn link_scope_prefers_the_index_by_name() {
    let lo = if_nametoindex("lo").unwrap();
    assert_eq!(link_scope("lo", 0), Some(lo));
    assert_eq!(link_scope("no-such-if0", 7), Some(7));
    assert_eq!(link_scope("no-such-if0", 0), None);
}
