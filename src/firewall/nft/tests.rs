use super::*;

const RULESET: &str = r#"{"nftables": [
  {"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
  {"table": {"family": "inet", "name": "filter", "handle": 1}},
  {"chain": {"family": "inet", "table": "filter", "name": "input", "handle": 1,
             "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}},
  {"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 4,
            "expr": [{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "new"}},
                     {"drop": null}]}},
  {"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 5,
            "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}},
                                "right": 8001}},
                     {"accept": null}]}}
]}"#;

fn input(ruleset: &Ruleset) -> &Chain {
    &ruleset.chains[ruleset.chain(Family::Inet, "filter", "input").unwrap()]
}

#[test]
fn ct_state_words_are_their_bits() {
    let parsed = parse(RULESET.as_bytes()).unwrap();
    let rule = &input(&parsed.ruleset).rules[0];
    assert!(
        matches!(
            rule.exprs[0],
            Expr::Match {
                key: Key::CtState,
                test: Test::AnyBit(8),
                negate: false
            }
        ),
        "{:?}",
        rule.exprs
    );
    assert_eq!(rule.exprs[1], Expr::Verdict(Verdict::Drop));
}

/// nft's listing leaves out a family test its bytecode keeps: the rule gets it back, first,
/// and a rule that has one already is left alone.
#[test]
fn a_family_test_the_listing_left_out_is_put_back_once() {
    let mut ruleset = parse(RULESET.as_bytes()).unwrap().ruleset;
    let bytecode = "inet filter input 5\n  [ meta load nfproto => reg 1 ]\n  \
                    [ cmp eq reg 1 0x00000002 ]\n  [ payload load 2b @ transport header + 2 => reg 1 ]\n\n";
    patch_families(&mut ruleset, Family::Inet, "filter", bytecode);
    let want = Expr::Match {
        key: Key::NfProto,
        test: Test::Eq(Value::Int(2)),
        negate: false,
    };
    assert_eq!(input(&ruleset).rules[1].exprs[0], want);
    assert_eq!(input(&ruleset).rules[1].exprs.len(), 3);
    patch_families(&mut ruleset, Family::Inet, "filter", bytecode);
    assert_eq!(input(&ruleset).rules[1].exprs.len(), 3, "put back twice");
    // The rule the bytecode does not name is untouched.
    assert_eq!(input(&ruleset).rules[0].exprs.len(), 2);
}

/// A `tcp reset` in a table of several families, with no test of the family: nft's JSON
/// cannot say which family it was for, so the table's bytecode is asked for (a detail).
#[test]
fn a_tcp_reset_without_its_family_asks_for_the_bytecode() {
    let json = r#"{"nftables": [
      {"table": {"family": "inet", "name": "filter", "handle": 1}},
      {"chain": {"family": "inet", "table": "filter", "name": "input", "handle": 1,
                 "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}},
      {"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 4,
                "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}},
                                    "right": 8001}},
                         {"reject": {"type": "tcp reset"}}]}}
    ]}"#;
    let parsed = parse(json.as_bytes()).unwrap();
    assert_eq!(
        parsed.details,
        [Detail::Families {
            family: Family::Inet,
            table: "filter".into()
        }]
    );
    // The same rule in an ip table says its family by where it is.
    let ip = json.replace("\"inet\"", "\"ip\"");
    assert_eq!(parse(ip.as_bytes()).unwrap().details, []);
}

/// Words of `nft -j list ruleset` (nftables 1.0.6, for `tcp dport <= 8001 drop`,
/// `meta mark 7 drop`, `meta mark set 7`, `meta protocol vlan drop`,
/// `tcp flags & (syn | ack) == syn | ack drop` and a meter with a rate limit), each read
/// as the test or statement it is.
const READ_AS_WRITTEN: &str = r#"{"nftables":[{"metainfo":{"version":"1.0.6","release_name":"Lester Gooch #5","json_schema_version":1}},{"table":{"family":"inet","name":"t","handle":1}},
{"set":{"family":"inet","name":"meter4","table":"t","type":"ipv4_addr","handle":2,"size":65535}},
{"chain":{"family":"inet","table":"t","name":"input","handle":1,"type":"filter","hook":"input","prio":0,"policy":"accept"}},
{"rule":{"family":"inet","table":"t","chain":"input","handle":3,"expr":[{"match":{"op":"<=","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":8001}},{"drop":null}]}},
{"rule":{"family":"inet","table":"t","chain":"input","handle":4,"expr":[{"match":{"op":"==","left":{"meta":{"key":"mark"}},"right":7}},{"drop":null}]}},
{"rule":{"family":"inet","table":"t","chain":"input","handle":5,"expr":[{"mangle":{"key":{"meta":{"key":"mark"}},"value":7}}]}},
{"rule":{"family":"inet","table":"t","chain":"input","handle":6,"expr":[{"match":{"op":"==","left":{"meta":{"key":"protocol"}},"right":"8021q"}},{"drop":null}]}},
{"rule":{"family":"inet","table":"t","chain":"input","handle":7,"expr":[{"match":{"op":"==","left":{"&":[{"payload":{"protocol":"tcp","field":"flags"}},["syn","ack"]]},"right":["syn","ack"]}},{"drop":null}]}},
{"rule":{"family":"inet","table":"t","chain":"input","handle":8,"expr":[{"set":{"op":"update","elem":{"payload":{"protocol":"ip","field":"saddr"}},"set":"@meter4","stmt":[{"limit":{"rate":10,"burst":5,"per":"second"}}]}},{"accept":null}]}}]}"#;

#[test]
fn comparisons_marks_ethertypes_flags_and_meters_read_as_written() {
    let parsed = parse(READ_AS_WRITTEN.as_bytes()).unwrap().ruleset;
    let chain = &parsed.chains[parsed.chain(Family::Inet, "t", "input").unwrap()];
    let first = |k: usize| chain.rules[k].exprs[0].clone();
    let tcp = Some(6);
    assert_eq!(
        first(0),
        Expr::Match {
            key: Key::Dport(tcp),
            test: Test::Le(8001),
            negate: false
        }
    );
    assert_eq!(
        first(1),
        Expr::Match {
            key: Key::Mark,
            test: Test::Eq(Value::Int(7)),
            negate: false
        }
    );
    assert_eq!(
        first(2),
        Expr::SetMark {
            ct: false,
            value: Some(7)
        }
    );
    // nft prints ETH_P_8021Q by its first name, 8021q, whichever name the rule used.
    assert_eq!(
        first(3),
        Expr::Match {
            key: Key::EtherType,
            test: Test::Eq(Value::Int(0x8100)),
            negate: false
        }
    );
    assert_eq!(
        first(4),
        Expr::Match {
            key: Key::TcpFlags(0x12),
            test: Test::Eq(Value::Int(0x12)),
            negate: false
        }
    );
    assert_eq!(first(5), Expr::Undecided("set with a limit".into()));
}

/// The ethertypes nft names (its table's first name for each, and the alias a rule may use).
#[test]
fn ethertype_names_are_their_numbers() {
    for (name, number) in [
        ("ip", 0x0800),
        ("ip6", 0x86dd),
        ("arp", 0x0806),
        ("8021q", 0x8100),
        ("vlan", 0x8100),
        ("8021ad", 0x88a8),
    ] {
        assert_eq!(
            normal_value(Key::EtherType, Value::Str(name.into())),
            Value::Int(number),
            "{name}"
        );
    }
}
