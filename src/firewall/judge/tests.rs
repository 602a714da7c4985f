use super::*;
use crate::firewall::ruleset::{Chain, Origin};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A ruleset built chain by chain.
struct Build(Ruleset);

impl Build {
    fn new() -> Build {
        Build(Ruleset::default())
    }

    #[allow(clippy::too_many_arguments)]
    fn base(
        mut self,
        family: Family,
        table: &str,
        name: &str,
        hook: Hook,
        priority: i32,
        policy: Policy,
        rules: Vec<Vec<Expr>>,
    ) -> Build {
        self.0.chains.push(Chain {
            family,
            table: table.into(),
            name: name.into(),
            base: Some(Base {
                hook,
                priority,
                policy,
                nat: false,
                devices: if hook == Hook::Ingress {
                    vec!["eth0".into()]
                } else {
                    Vec::new()
                },
                order: self.0.chains.len(),
            }),
            rules: rules
                .into_iter()
                .enumerate()
                .map(|(h, exprs)| Rule {
                    handle: Some(h as u64 + 10),
                    text: None,
                    exprs,
                })
                .collect(),
            origin: Origin::Nft,
        });
        self
    }

    fn nat(mut self, rules: Vec<Vec<Expr>>) -> Build {
        self = self.base(
            Family::Ip,
            "nat",
            "prerouting",
            Hook::Prerouting,
            -100,
            Policy::Accept,
            rules,
        );
        self.0.chains.last_mut().unwrap().base.as_mut().unwrap().nat = true;
        self
    }

    fn regular(mut self, family: Family, table: &str, name: &str, rules: Vec<Vec<Expr>>) -> Build {
        self.0.chains.push(Chain {
            family,
            table: table.into(),
            name: name.into(),
            base: None,
            rules: rules
                .into_iter()
                .map(|exprs| Rule {
                    handle: None,
                    text: None,
                    exprs,
                })
                .collect(),
            origin: Origin::Nft,
        });
        self
    }

    fn set(mut self, elements: Vec<Value>) -> Build {
        self.0.add_set(elements);
        self
    }
}

fn m(key: Key, test: Test) -> Expr {
    Expr::Match {
        key,
        test,
        negate: false,
    }
}

fn not(key: Key, test: Test) -> Expr {
    Expr::Match {
        key,
        test,
        negate: true,
    }
}

fn eq(v: Value) -> Test {
    Test::Eq(v)
}

fn port(p: u64) -> Expr {
    m(Key::Dport(Some(TCP)), eq(Value::Int(p)))
}

fn iif(name: &str) -> Expr {
    m(Key::IifName, eq(Value::Str(name.into())))
}

fn v(verdict: Verdict) -> Expr {
    Expr::Verdict(verdict)
}

const INET: Family = Family::Inet;

fn remote(daddr: &str) -> Packet {
    Packet {
        daddr: ip(daddr),
        dport: 8001,
        path: Path::Remote { iif: "eth0".into() },
        source: None,
        local: vec![ip(daddr)],
    }
}

fn from(daddr: &str, client: &str) -> Packet {
    Packet {
        source: Some(ip(client)),
        ..remote(daddr)
    }
}

fn local(daddr: &str) -> Packet {
    Packet {
        path: Path::Local,
        source: Some(ip(daddr)),
        ..remote(daddr)
    }
}

fn fate(r: &Build, p: &Packet) -> Fate {
    judge(&r.0, p).outcome.fate
}

fn rejected(how: &str) -> Fate {
    Fate::Rejected(how.into())
}

#[test]
fn no_ruleset_is_open() {
    assert_eq!(
        judge(&Ruleset::default(), &remote("198.18.0.1")),
        Judged {
            outcome: Outcome {
                fate: Fate::Open,
                by: None
            },
            open_to: None,
            blocked_from: None
        }
    );
}

#[test]
fn a_reject_on_the_outside_interface_spares_loopback() {
    let r = Build::new().base(
        INET,
        "filter",
        "input",
        Hook::Input,
        0,
        Policy::Accept,
        vec![vec![
            iif("eth0"),
            port(8001),
            v(Verdict::Reject("tcp reset".into())),
        ]],
    );
    let j = judge(&r.0, &remote("198.18.0.1"));
    assert_eq!(j.outcome.fate, rejected("tcp reset"));
    assert_eq!(
        j.outcome.by,
        Some(Decider {
            chain: 0,
            rule: Some(0)
        })
    );
    assert_eq!(fate(&r, &local("198.18.0.1")), Fate::Open);
    assert_eq!(fate(&r, &local("127.0.0.1")), Fate::Open);
    // Another port: not this rule's business.
    assert_eq!(
        fate(
            &r,
            &Packet {
                dport: 8002,
                ..remote("198.18.0.1")
            }
        ),
        Fate::Open
    );
}

#[test]
fn a_drop_policy_names_the_chain_and_loopback_accept_lets_the_host_in() {
    let r = Build::new().base(
        INET,
        "filter",
        "input",
        Hook::Input,
        0,
        Policy::Drop,
        vec![
            vec![iif("lo"), v(Verdict::Accept)],
            vec![m(Key::CtState, Test::AnyBit(2 | 4)), v(Verdict::Accept)],
            vec![port(22), v(Verdict::Accept)],
        ],
    );
    let j = judge(&r.0, &remote("198.18.0.1"));
    assert_eq!(
        (j.outcome.fate, j.outcome.by),
        (
            Fate::Dropped,
            Some(Decider {
                chain: 0,
                rule: None
            })
        )
    );
    assert_eq!(fate(&r, &local("198.18.0.1")), Fate::Open);
}

#[test]
fn an_accept_ends_only_its_own_base_chain_and_priorities_order_tables() {
    let accept_early = Build::new()
        .base(
            INET,
            "late",
            "input",
            Hook::Input,
            10,
            Policy::Accept,
            vec![vec![port(8001), v(Verdict::Reject("tcp reset".into()))]],
        )
        .base(
            INET,
            "early",
            "input",
            Hook::Input,
            -10,
            Policy::Accept,
            vec![vec![port(8001), v(Verdict::Accept)]],
        );
    assert_eq!(
        fate(&accept_early, &remote("198.18.0.1")),
        rejected("tcp reset")
    );
    // A drop in the earlier chain ends everything: the later accept never runs.
    let drop_early = Build::new()
        .base(
            INET,
            "late",
            "input",
            Hook::Input,
            10,
            Policy::Accept,
            vec![vec![port(8001), v(Verdict::Accept)]],
        )
        .base(
            INET,
            "early",
            "input",
            Hook::Input,
            -10,
            Policy::Accept,
            vec![vec![port(8001), v(Verdict::Drop)]],
        );
    let j = judge(&drop_early.0, &remote("198.18.0.1"));
    assert_eq!(
        (j.outcome.fate, j.outcome.by.map(|d| d.chain)),
        (Fate::Dropped, Some(1))
    );
}

#[test]
fn hooks_come_in_their_order_and_families_see_their_own_packets() {
    let r = Build::new()
        .base(
            Family::Ip6,
            "f6",
            "input",
            Hook::Input,
            0,
            Policy::Drop,
            vec![],
        )
        .base(
            Family::Ip,
            "f4",
            "pre",
            Hook::Prerouting,
            -150,
            Policy::Accept,
            vec![vec![iif("eth0"), port(8001), v(Verdict::Drop)]],
        );
    assert_eq!(fate(&r, &remote("198.18.0.1")), Fate::Dropped);
    assert_eq!(fate(&r, &remote("fd00::1")), Fate::Dropped);
    assert_eq!(
        judge(&r.0, &remote("fd00::1")).outcome.by,
        Some(Decider {
            chain: 0,
            rule: None
        })
    );
    let ingress = Build::new().base(
        Family::Netdev,
        "edge",
        "in",
        Hook::Ingress,
        0,
        Policy::Accept,
        vec![vec![port(8001), v(Verdict::Drop)]],
    );
    assert_eq!(fate(&ingress, &remote("198.18.0.1")), Fate::Dropped);
    // Attached to eth0: loopback never passes it.
    assert_eq!(fate(&ingress, &local("198.18.0.1")), Fate::Open);
    assert_eq!(
        fate(
            &ingress,
            &Packet {
                path: Path::Remote { iif: "eth1".into() },
                ..remote("198.18.0.1")
            }
        ),
        Fate::Open
    );
}

#[test]
fn jump_goto_and_return_follow_nftables() {
    let r = Build::new()
        .regular(
            INET,
            "filter",
            "c2",
            vec![vec![port(9999), v(Verdict::Accept)]],
        )
        .regular(
            INET,
            "filter",
            "c1",
            vec![
                vec![
                    m(Key::NfProto, eq(Value::Int(10))),
                    v(Verdict::Goto("c2".into())),
                ],
                vec![
                    m(Key::Saddr(V::Four), eq(Value::Addr(ip("198.18.0.2")))),
                    v(Verdict::Return),
                ],
                vec![v(Verdict::Drop)],
            ],
        )
        .base(
            INET,
            "filter",
            "input",
            Hook::Input,
            0,
            Policy::Accept,
            vec![
                vec![iif("eth0"), v(Verdict::Jump("c1".into()))],
                vec![
                    m(Key::NfProto, eq(Value::Int(10))),
                    port(8001),
                    v(Verdict::Reject("icmpx admin-prohibited".into())),
                ],
                vec![port(8001), v(Verdict::Reject("tcp reset".into()))],
            ],
        );
    // IPv4 from .2: returns from c1, then the reset.
    assert_eq!(
        fate(&r, &from("198.18.0.1", "198.18.0.2")),
        rejected("tcp reset")
    );
    // IPv4 from elsewhere: dropped in c1.
    assert_eq!(fate(&r, &from("198.18.0.1", "198.18.0.3")), Fate::Dropped);
    // IPv6: goto c2, whose end returns to input after the jump.
    assert_eq!(
        fate(&r, &remote("fd00::1")),
        rejected("icmpx admin-prohibited")
    );
}

#[test]
fn a_rule_on_the_clients_address_says_whom_the_port_is_open_to() {
    let r = Build::new().base(
        INET,
        "filter",
        "input",
        Hook::Input,
        0,
        Policy::Drop,
        vec![vec![
            m(Key::Saddr(V::Four), eq(Value::Prefix(ip("10.0.0.0"), 8))),
            port(8001),
            v(Verdict::Accept),
        ]],
    );
    let j = judge(&r.0, &remote("198.18.0.1"));
    assert_eq!(j.outcome.fate, Fate::Dropped);
    let open: Vec<String> = j
        .open_to
        .unwrap()
        .prefixes()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(open, ["10.0.0.0/8"]);
    assert_eq!(fate(&r, &from("198.18.0.1", "10.9.9.9")), Fate::Open);
    assert_eq!(fate(&r, &from("198.18.0.1", "11.0.0.1")), Fate::Dropped);
    // A ban of one address leaves the port open to everyone else.
    let ban = Build::new().base(
        INET,
        "filter",
        "input",
        Hook::Input,
        0,
        Policy::Accept,
        vec![vec![
            m(Key::Saddr(V::Four), eq(Value::Addr(ip("203.0.113.7")))),
            v(Verdict::Drop),
        ]],
    );
    let j = judge(&ban.0, &remote("198.18.0.1"));
    assert_eq!(j.outcome.fate, Fate::Open);
    assert_eq!(j.open_to, None);
    let banned: Vec<String> = j
        .blocked_from
        .unwrap()
        .prefixes()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(banned, ["203.0.113.7/32"]);
    // Negated: everyone but 10/8 is rejected.
    let neg = Build::new().base(
        INET,
        "filter",
        "input",
        Hook::Input,
        0,
        Policy::Accept,
        vec![vec![
            not(Key::Saddr(V::Four), eq(Value::Prefix(ip("10.0.0.0"), 8))),
            v(Verdict::Reject("tcp reset".into())),
        ]],
    );
    assert_eq!(fate(&neg, &from("198.18.0.1", "10.1.2.3")), Fate::Open);
    assert_eq!(
        fate(&neg, &from("198.18.0.1", "8.8.8.8")),
        rejected("tcp reset")
    );
}

#[test]
fn sets_maps_and_concatenations() {
    let r = Build::new()
        .set(vec![
            Value::Range(Box::new(Value::Int(8000)), Box::new(Value::Int(8005))),
            Value::Int(9000),
        ])
        .set(vec![Value::Concat(vec![
            Value::Addr(ip("198.18.0.99")),
            Value::Int(8001),
        ])])
        .base(
            INET,
            "filter",
            "input",
            Hook::Input,
            0,
            Policy::Accept,
            vec![
                vec![
                    Expr::MatchConcat {
                        keys: vec![Key::Saddr(V::Four), Key::Dport(Some(TCP))],
                        set: 1,
                        negate: false,
                    },
                    v(Verdict::Accept),
                ],
                vec![m(Key::Dport(Some(TCP)), Test::In(0)), v(Verdict::Drop)],
            ],
        );
    assert_eq!(fate(&r, &from("198.18.0.1", "198.18.0.99")), Fate::Open);
    assert_eq!(fate(&r, &from("198.18.0.1", "198.18.0.98")), Fate::Dropped);
    assert_eq!(
        judge(&r.0, &remote("198.18.0.1"))
            .open_to
            .unwrap()
            .prefixes()[0]
            .to_string(),
        "198.18.0.99/32"
    );
    let vmap = Build::new().base(
        INET,
        "filter",
        "input",
        Hook::Input,
        0,
        Policy::Accept,
        vec![vec![Expr::Vmap {
            key: Key::Dport(Some(TCP)),
            entries: vec![
                (Value::Int(22), Verdict::Accept),
                (
                    Value::Range(Box::new(Value::Int(8000)), Box::new(Value::Int(8080))),
                    Verdict::Drop,
                ),
            ],
        }]],
    );
    assert_eq!(fate(&vmap, &remote("198.18.0.1")), Fate::Dropped);
    assert_eq!(
        fate(
            &vmap,
            &Packet {
                dport: 22,
                ..remote("198.18.0.1")
            }
        ),
        Fate::Open
    );
}

#[test]
fn tests_of_other_protocols_fail_for_a_tcp_syn() {
    let r = Build::new().base(
        INET,
        "filter",
        "input",
        Hook::Input,
        0,
        Policy::Accept,
        vec![
            vec![
                m(Key::Dport(Some(17)), eq(Value::Int(8001))),
                v(Verdict::Drop),
            ],
            vec![
                m(Key::ProtocolField(1), eq(Value::Int(8))),
                v(Verdict::Drop),
            ],
            vec![
                m(Key::L4Proto(Some(V::Six)), eq(Value::Int(6))),
                v(Verdict::Drop),
            ],
            vec![
                not(Key::Saddr(V::Six), eq(Value::Addr(ip("fd00::2")))),
                v(Verdict::Drop),
            ],
            vec![
                m(Key::TcpFlags(0x17), eq(Value::Int(0x10))),
                v(Verdict::Drop),
            ],
            vec![m(Key::CtStatus, Test::AnyBit(0x20)), v(Verdict::Drop)],
            vec![
                not(Key::FibDaddrType, eq(Value::Str("local".into()))),
                v(Verdict::Drop),
            ],
            vec![m(Key::Never, eq(Value::Int(1))), v(Verdict::Drop)],
        ],
    );
    assert_eq!(fate(&r, &remote("198.18.0.1")), Fate::Open);
}

#[test]
fn an_undecidable_test_is_unknown_only_when_it_matters() {
    let log_limit = Build::new().base(
        INET,
        "filter",
        "input",
        Hook::Input,
        0,
        Policy::Accept,
        vec![vec![
            Expr::Undecided("limit rate 3/minute".into()),
            Expr::Nothing,
        ]],
    );
    assert_eq!(fate(&log_limit, &remote("198.18.0.1")), Fate::Open);
    let limited = Build::new().base(
        INET,
        "filter",
        "input",
        Hook::Input,
        0,
        Policy::Accept,
        vec![vec![
            port(8001),
            Expr::Undecided("limit rate over 10/second".into()),
            v(Verdict::Drop),
        ]],
    );
    let j = judge(&limited.0, &remote("198.18.0.1"));
    assert!(matches!(j.outcome.fate, Fate::Unknown(_)), "{j:?}");
    assert_eq!(
        j.outcome.by,
        Some(Decider {
            chain: 0,
            rule: Some(0)
        })
    );
    // Both ways end the same: no doubt.
    let same = Build::new().base(
        INET,
        "filter",
        "input",
        Hook::Input,
        0,
        Policy::Drop,
        vec![vec![Expr::Undecided("limit".into()), v(Verdict::Drop)]],
    );
    assert_eq!(fate(&same, &remote("198.18.0.1")), Fate::Dropped);
    let queue = Build::new().base(
        INET,
        "filter",
        "input",
        Hook::Input,
        0,
        Policy::Accept,
        vec![vec![port(8001), Expr::Decides("queue".into())]],
    );
    assert_eq!(
        fate(&queue, &remote("198.18.0.1")),
        Fate::Unknown("queue".into())
    );
}

#[test]
fn a_redirect_of_the_port_is_its_own_fate_and_a_nat_that_keeps_it_is_not() {
    let away = Build::new().nat(vec![vec![
        port(8001),
        Expr::Nat {
            addr: None,
            port: Some(8002),
        },
    ]]);
    assert_eq!(fate(&away, &remote("198.18.0.1")), Fate::Redirected);
    let elsewhere = Build::new().nat(vec![vec![
        port(8001),
        Expr::Nat {
            addr: Some(ip("10.9.9.9")),
            port: None,
        },
    ]]);
    assert_eq!(fate(&elsewhere, &remote("198.18.0.1")), Fate::Redirected);
    let same = Build::new().nat(vec![vec![
        port(8001),
        Expr::Nat {
            addr: None,
            port: Some(8001),
        },
    ]]);
    assert_eq!(fate(&same, &remote("198.18.0.1")), Fate::Open);
    // To another of the host's own addresses, same port: gunicorn's wildcard socket has it.
    let sibling = Build::new().nat(vec![vec![
        port(8001),
        Expr::Nat {
            addr: Some(ip("198.18.0.2")),
            port: None,
        },
    ]]);
    let two_addresses = Packet {
        local: vec![ip("198.18.0.1"), ip("198.18.0.2")],
        ..remote("198.18.0.1")
    };
    assert_eq!(fate(&sibling, &two_addresses), Fate::Open);
    assert_eq!(fate(&sibling, &remote("198.18.0.1")), Fate::Redirected);
    // The host's own connection had its nat on the way out: prerouting nat does not see it.
    assert_eq!(fate(&away, &local("198.18.0.1")), Fate::Open);
}

#[test]
fn marks_are_followed_and_notrack_changes_the_state() {
    let r = Build::new()
        .base(
            INET,
            "raw",
            "pre",
            Hook::Prerouting,
            -300,
            Policy::Accept,
            vec![vec![
                port(8001),
                Expr::SetMark {
                    ct: false,
                    value: Some(7),
                },
                Expr::Notrack,
            ]],
        )
        .base(
            INET,
            "filter",
            "input",
            Hook::Input,
            0,
            Policy::Accept,
            vec![
                vec![m(Key::CtState, Test::AnyBit(8)), v(Verdict::Drop)],
                vec![
                    m(Key::Mark, eq(Value::Int(7))),
                    v(Verdict::Reject("tcp reset".into())),
                ],
            ],
        );
    assert_eq!(fate(&r, &remote("198.18.0.1")), rejected("tcp reset"));
}

#[test]
fn a_missing_chain_or_a_runaway_is_unknown_never_a_guess() {
    let r = Build::new().base(
        INET,
        "filter",
        "input",
        Hook::Input,
        0,
        Policy::Accept,
        vec![vec![v(Verdict::Jump("nowhere".into()))]],
    );
    assert!(
        matches!(fate(&r, &remote("198.18.0.1")), Fate::Unknown(why) if why.contains("nowhere"))
    );
    let mut deep = Build::new();
    for k in 0..(MAX_DEPTH + 2) {
        deep = deep.regular(
            INET,
            "filter",
            &format!("c{k}"),
            vec![vec![v(Verdict::Jump(format!("c{}", k + 1)))]],
        );
    }
    let deep = deep.base(
        INET,
        "filter",
        "input",
        Hook::Input,
        0,
        Policy::Accept,
        vec![vec![v(Verdict::Jump("c0".into()))]],
    );
    assert!(
        matches!(fate(&deep, &remote("198.18.0.1")), Fate::Unknown(why) if why.contains("deeper"))
    );
}

/// A packet conntrack does not track has no connection: a test of its direction or status
/// finds nothing, though the chain runs after conntrack's priority.
#[test]
fn an_untracked_packet_has_no_connection_direction() {
    let r = Build::new()
        .base(
            INET,
            "raw",
            "pre",
            Hook::Prerouting,
            -300,
            Policy::Accept,
            vec![vec![port(8001), Expr::Notrack]],
        )
        .base(
            INET,
            "filter",
            "input",
            Hook::Input,
            0,
            Policy::Accept,
            vec![vec![
                m(Key::CtDirection, eq(Value::Int(0))),
                v(Verdict::Drop),
            ]],
        );
    assert_eq!(fate(&r, &remote("198.18.0.1")), Fate::Open);
}

/// A ban of an address range: the clients in it are named, those outside it are let in.
#[test]
fn a_source_range_says_whom_it_blocks() {
    let r = Build::new().base(
        INET,
        "filter",
        "input",
        Hook::Input,
        0,
        Policy::Accept,
        vec![vec![
            m(
                Key::Saddr(V::Four),
                eq(Value::Range(
                    Box::new(Value::Addr(ip("10.0.0.1"))),
                    Box::new(Value::Addr(ip("10.0.0.9"))),
                )),
            ),
            v(Verdict::Drop),
        ]],
    );
    let j = judge(&r.0, &remote("198.18.0.1"));
    assert_eq!(j.outcome.fate, Fate::Open);
    let banned: Vec<String> = j
        .blocked_from
        .unwrap()
        .prefixes()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        banned,
        ["10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/30", "10.0.0.8/31"]
    );
}

/// Once one nat chain has mapped the connection, the nat chains after it on that hook are
/// not asked (the kernel's nat core stops at the first mapping).
#[test]
fn after_a_mapping_later_nat_chains_are_not_asked() {
    let mut r = Build::new()
        .nat(vec![vec![
            port(8001),
            Expr::Nat {
                addr: None,
                port: Some(8001),
            },
        ]])
        .base(
            Family::Ip,
            "nat2",
            "prerouting",
            Hook::Prerouting,
            -90,
            Policy::Accept,
            vec![vec![
                port(8001),
                Expr::Nat {
                    addr: None,
                    port: Some(8002),
                },
            ]],
        );
    r.0.chains.last_mut().unwrap().base.as_mut().unwrap().nat = true;
    assert_eq!(fate(&r, &remote("198.18.0.1")), Fate::Open);
}

/// A ban on some clients beside an undecided test that leads where the policy does: the
/// clients are cut where the ban begins and ends, so the banned ones are named and the rest
/// get through.
#[test]
fn a_ban_beside_an_undecided_test_still_names_whom_it_blocks() {
    let r = Build::new().base(
        INET,
        "filter",
        "input",
        Hook::Input,
        0,
        Policy::Accept,
        vec![
            vec![
                m(Key::Saddr(V::Four), eq(Value::Prefix(ip("10.0.0.0"), 8))),
                v(Verdict::Drop),
            ],
            // The client's port is its own choice: undecided, and either way accepted.
            vec![
                m(Key::Sport(Some(TCP)), eq(Value::Int(1234))),
                v(Verdict::Accept),
            ],
        ],
    );
    let j = judge(&r.0, &remote("198.18.0.1"));
    assert_eq!(j.outcome.fate, Fate::Open, "{j:?}");
    let banned: Vec<String> = j
        .blocked_from
        .expect("the banned clients")
        .prefixes()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(banned, ["10.0.0.0/8"]);
}

/// A concatenation with a field the model cannot read decides nothing, even when its
/// other fields match: the connection may or may not be in the set.
#[test]
fn a_concatenation_with_an_unreadable_field_is_undecided() {
    let r = Build::new()
        .set(vec![Value::Concat(vec![Value::Int(1), Value::Int(8001)])])
        .base(
            INET,
            "filter",
            "input",
            Hook::Input,
            0,
            Policy::Accept,
            vec![vec![
                Expr::MatchConcat {
                    keys: vec![Key::Unknown, Key::Dport(Some(TCP))],
                    set: 0,
                    negate: false,
                },
                v(Verdict::Drop),
            ]],
        );
    assert!(
        matches!(fate(&r, &remote("198.18.0.1")), Fate::Unknown(_)),
        "{:?}",
        fate(&r, &remote("198.18.0.1"))
    );
}

/// The host's own connection meets conntrack at output's priority -200: a chain before
/// that finds no connection to test, one after it finds the new connection's direction.
#[test]
fn the_hosts_own_connection_is_tracked_only_after_outputs_conntrack() {
    let at = |priority| {
        Build::new().base(
            INET,
            "raw",
            "out",
            Hook::Output,
            priority,
            Policy::Accept,
            vec![vec![
                m(Key::CtDirection, eq(Value::Int(0))),
                v(Verdict::Drop),
            ]],
        )
    };
    assert_eq!(fate(&at(-300), &local("198.18.0.1")), Fate::Open);
    assert_eq!(fate(&at(0), &local("198.18.0.1")), Fate::Dropped);
}

/// Port comparisons and address ranges, as nft writes them (`tcp dport > 8000`,
/// `ip daddr 198.18.0.0-198.18.0.255`), each on both sides of its bound.
#[test]
fn comparisons_and_address_ranges_match_on_their_side_only() {
    let dropping = |test: Expr| {
        Build::new().base(
            INET,
            "filter",
            "input",
            Hook::Input,
            0,
            Policy::Accept,
            vec![vec![test, v(Verdict::Drop)]],
        )
    };
    let dport = |t: Test| m(Key::Dport(Some(TCP)), t);
    for (test, fate_at_8001) in [
        (Test::Gt(8000), Fate::Dropped),
        (Test::Gt(8001), Fate::Open),
        (Test::Lt(8002), Fate::Dropped),
        (Test::Lt(8001), Fate::Open),
        (Test::Ge(8001), Fate::Dropped),
        (Test::Ge(8002), Fate::Open),
        (Test::Le(8001), Fate::Dropped),
        (Test::Le(8000), Fate::Open),
    ] {
        assert_eq!(
            fate(&dropping(dport(test.clone())), &remote("198.18.0.1")),
            fate_at_8001,
            "{test:?}"
        );
    }
    let range = |a: &str, b: &str| {
        eq(Value::Range(
            Box::new(Value::Addr(ip(a))),
            Box::new(Value::Addr(ip(b))),
        ))
    };
    let daddr = |t: Test| m(Key::Daddr(V::Four), t);
    assert_eq!(
        fate(
            &dropping(daddr(range("198.18.0.0", "198.18.0.255"))),
            &remote("198.18.0.1")
        ),
        Fate::Dropped
    );
    assert_eq!(
        fate(
            &dropping(daddr(range("198.18.1.0", "198.18.1.255"))),
            &remote("198.18.0.1")
        ),
        Fate::Open
    );
}
