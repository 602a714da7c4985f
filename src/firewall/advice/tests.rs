use super::*;

fn rule(
    origin: Origin,
    family: Family,
    table: &str,
    chain: &str,
    handle: Option<u64>,
    number: Option<usize>,
    text: &str,
) -> Shown {
    Shown {
        origin,
        family,
        table: table.into(),
        chain: chain.into(),
        handle,
        number,
        policy: handle.is_none() && number.is_none(),
        text: text.into(),
    }
}

#[test]
fn each_manager_gets_its_own_words() {
    let fw = rule(
        Origin::Nft,
        Family::Inet,
        "firewalld",
        "filter_IN_public",
        Some(9),
        Some(4),
        "reject with icmpx admin-prohibited",
    );
    assert_eq!(
        fix(&fw, 8001, Some(Manager::Firewalld)),
        "firewall-cmd --zone=public --add-port=8001/tcp --permanent && firewall-cmd --reload"
    );
    let ufw = rule(
        Origin::IptablesNft,
        Family::Ip,
        "filter",
        "INPUT",
        None,
        None,
        ":INPUT DROP",
    );
    assert_eq!(fix(&ufw, 8001, Some(Manager::Ufw)), "ufw allow 8001/tcp");
    let nft = rule(
        Origin::Nft,
        Family::Inet,
        "filter",
        "input",
        Some(3),
        Some(1),
        "iifname \"eth0\" tcp dport 8001 reject with tcp reset",
    );
    assert_eq!(
        fix(&nft, 8001, Some(Manager::Nftables)),
        "nft insert rule inet filter input position 3 tcp dport 8001 accept"
    );
    let policy = rule(
        Origin::Nft,
        Family::Ip,
        "filter",
        "input",
        None,
        None,
        "policy drop;",
    );
    assert_eq!(
        fix(&policy, 8001, None),
        "nft add rule ip filter input tcp dport 8001 accept"
    );
    let redirect = rule(
        Origin::Nft,
        Family::Ip,
        "nat",
        "prerouting",
        Some(5),
        Some(1),
        "tcp dport 8001 redirect to :8002",
    );
    assert_eq!(
        fix(&redirect, 8001, None),
        "nft delete rule ip nat prerouting handle 5"
    );
    let legacy = rule(
        Origin::IptablesLegacy,
        Family::Ip,
        "filter",
        "INPUT",
        None,
        Some(2),
        "-A INPUT -p tcp -m tcp --dport 8001 -j REJECT",
    );
    assert_eq!(
        fix(&legacy, 8001, Some(Manager::Iptables)),
        "iptables-legacy -I INPUT 2 -p tcp --dport 8001 -j ACCEPT"
    );
}

#[test]
fn nft_lines_are_found_by_handle() {
    let listing = "table inet filter { # handle 1\n\tchain input { # handle 2\n\t\ttype filter hook input priority filter; policy drop;\n\t\ttcp dport 22 accept # handle 12\n\t\tiifname \"eth0\" tcp dport 8001 reject # handle 2\n\t}\n}\n";
    assert_eq!(
        nft_line(listing, 2).as_deref(),
        Some("iifname \"eth0\" tcp dport 8001 reject")
    );
    assert_eq!(
        nft_line(listing, 12).as_deref(),
        Some("tcp dport 22 accept")
    );
    assert_eq!(nft_line(listing, 7), None);
}

#[test]
fn an_iptables_redirect_is_deleted_by_its_number() {
    let redirect = rule(
        Origin::IptablesNft,
        Family::Ip,
        "nat",
        "PREROUTING",
        None,
        Some(3),
        "-A PREROUTING -p tcp -m tcp --dport 8001 -j REDIRECT --to-ports 8002",
    );
    assert_eq!(
        fix(&redirect, 8001, Some(Manager::Iptables)),
        "iptables -t nat -D PREROUTING 3"
    );
}
