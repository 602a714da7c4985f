use super::*;

fn text(family: Family, json: &str) -> Option<String> {
    let exprs: Vec<Json> = serde_json::from_str(json).unwrap();
    rule(family, &exprs, None)
}

#[test]
fn common_rules_are_written_as_nft_prints_them() {
    assert_eq!(
            text(Family::Inet, r#"[{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "eth0"}}, {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 8001}}, {"reject": {"type": "tcp reset"}}]"#).as_deref(),
            Some(r#"iifname "eth0" tcp dport 8001 reject with tcp reset"#)
        );
    assert_eq!(
        text(
            Family::Inet,
            r#"[{"reject": {"type": "icmpx", "expr": "admin-prohibited"}}]"#
        )
        .as_deref(),
        Some("reject with icmpx admin-prohibited")
    );
    assert_eq!(
            text(Family::Inet, r#"[{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}, {"accept": null}]"#).as_deref(),
            Some("ct state established,related accept")
        );
    assert_eq!(
            text(Family::Ip, r#"[{"match": {"op": "!=", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": {"prefix": {"addr": "10.0.0.0", "len": 8}}}}, {"counter": {"packets": 3, "bytes": 180}}, {"drop": null}]"#).as_deref(),
            Some("ip saddr != 10.0.0.0/8 counter packets 3 bytes 180 drop")
        );
    // Shapes not written here: nft is asked instead.
    assert_eq!(
        text(
            Family::Inet,
            r#"[{"limit": {"rate": 10, "per": "second"}}, {"drop": null}]"#
        ),
        None
    );
    assert_eq!(
        text(Family::Inet, r#"[{"redirect": {"port": 8002}}]"#),
        None
    );
}

/// A reject with its family's default type and code is printed as a plain `reject`, in
/// each family: icmp for ip, icmpv6 for ip6, icmpx elsewhere.
#[test]
fn a_reject_with_its_familys_defaults_is_plain() {
    for (family, kind) in [
        (Family::Ip, "icmp"),
        (Family::Ip6, "icmpv6"),
        (Family::Inet, "icmpx"),
    ] {
        let json = format!(r#"[{{"reject": {{"type": "{kind}", "expr": "port-unreachable"}}}}]"#);
        assert_eq!(text(family, &json).as_deref(), Some("reject"), "{kind}");
    }
    assert_eq!(
        text(
            Family::Ip,
            r#"[{"reject": {"type": "icmpx", "expr": "port-unreachable"}}]"#
        )
        .as_deref(),
        Some("reject with icmpx port-unreachable")
    );
}
