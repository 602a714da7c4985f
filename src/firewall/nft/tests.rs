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
