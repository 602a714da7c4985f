use super::*;

/// Protocol names mean what the system's own list says (/etc/protocols, from netbase:
/// scripts/setup-test-env installs it); nft's and iptables' own spellings of ICMPv6 too.
#[test]
fn protocol_names_are_the_numbers_etc_protocols_gives() {
    let protocols = std::fs::read_to_string("/etc/protocols")
        .expect("/etc/protocols (netbase) is needed: run scripts/setup-test-env");
    let number_of = |name: &str| {
        protocols.lines().find_map(|l| {
            let words: Vec<&str> = l.split('#').next()?.split_whitespace().collect();
            (words.first() == Some(&name)).then(|| words[1].parse::<u8>().unwrap())
        })
    };
    for name in [
        "icmp",
        "igmp",
        "tcp",
        "udp",
        "gre",
        "esp",
        "ah",
        "ipv6-icmp",
        "sctp",
        "udplite",
        "dccp",
    ] {
        let listed = number_of(name);
        assert!(listed.is_some(), "{name} is not in /etc/protocols");
        assert_eq!(protocol_number(name), listed, "{name}");
    }
    assert_eq!(protocol_number("icmpv6"), Some(58));
    assert_eq!(protocol_number("icmp6"), Some(58));
    assert_eq!(protocol_number("41"), Some(41));
    assert_eq!(protocol_number("no-such-protocol"), None);
}
