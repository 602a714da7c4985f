//! The host's packet filter as one model, whoever wrote it (nft, iptables-nft, legacy
//! iptables): base chains on hooks with priorities and policies, rules as lists of tests
//! and statements, and the sets they look up. Only what can decide the fate of a new TCP
//! connection to a local port is modelled; everything else is kept as `Unknown`, with the
//! words that name it, so that a rule the model does not understand is never guessed at.

use std::net::IpAddr;

/// A table's family: which packets its chains see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    Ip,
    Ip6,
    Inet,
    Netdev,
    /// bridge, arp: never on a local TCP connection's path.
    Other,
}

impl Family {
    pub fn parse(word: &str) -> Family {
        match word {
            "ip" => Family::Ip,
            "ip6" => Family::Ip6,
            "inet" => Family::Inet,
            "netdev" => Family::Netdev,
            _ => Family::Other,
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Family::Ip => "ip",
            Family::Ip6 => "ip6",
            Family::Inet => "inet",
            Family::Netdev => "netdev",
            Family::Other => "other",
        }
    }
}

/// Where a base chain is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    Ingress,
    Prerouting,
    Input,
    Output,
    /// forward, postrouting, egress: not on the path to a local socket.
    Other,
}

impl Hook {
    pub fn parse(word: &str) -> Hook {
        match word.to_ascii_lowercase().as_str() {
            "ingress" => Hook::Ingress,
            "prerouting" => Hook::Prerouting,
            "input" => Hook::Input,
            "output" => Hook::Output,
            _ => Hook::Other,
        }
    }
}

/// Which program wrote a table, for the fix in its own words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Nft,
    /// iptables-nft (ufw, docker, fail2ban): nftables tables read through `iptables-nft-save`.
    IptablesNft,
    /// The legacy x_tables, invisible to nft.
    IptablesLegacy,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    Accept,
    Drop,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Base {
    pub hook: Hook,
    pub priority: i32,
    pub policy: Policy,
    /// A nat chain: its first matching nat statement ends it.
    pub nat: bool,
    /// netdev (and inet) ingress chains: the devices they are attached to.
    pub devices: Vec<String>,
    /// When it was registered, as nft lists chains: of two base chains of one priority on
    /// one hook, the kernel runs the one registered later first.
    pub order: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Chain {
    pub family: Family,
    pub table: String,
    pub name: String,
    pub base: Option<Base>,
    pub rules: Vec<Rule>,
    pub origin: Origin,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// nft's handle; iptables rules have none (their number in the chain counts instead).
    pub handle: Option<u64>,
    /// The rule as its tool prints it, when known (iptables-save's line; nft's text is
    /// read afterwards for the rules a verdict names).
    pub text: Option<String>,
    pub exprs: Vec<Expr>,
}

/// What a packet field is compared with.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Int(u64),
    Str(String),
    Addr(IpAddr),
    Prefix(IpAddr, u8),
    Range(Box<Value>, Box<Value>),
    /// An element of a concatenated set (`10.0.0.1 . 8001`).
    Concat(Vec<Value>),
}

/// The fields of a new TCP connection's first packet that rules look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// The transport protocol: `meta l4proto` and `-p` (any family), `ip protocol`
    /// (IPv4 only), `ip6 nexthdr` (IPv6 only).
    L4Proto(Option<crate::firewall::sources::V>),
    /// `meta nfproto`: 2 IPv4, 10 IPv6.
    NfProto,
    /// `meta protocol`, `ether type`: the ethertype.
    EtherType,
    IifName,
    OifName,
    /// `ip saddr` (IPv4 only) and `ip6 saddr` (IPv6 only).
    Saddr(crate::firewall::sources::V),
    Daddr(crate::firewall::sources::V),
    /// A field of a transport header: `proto` is the protocol it belongs to (a `udp dport`
    /// test is false for TCP); `th` fields belong to any.
    Dport(Option<u8>),
    Sport(Option<u8>),
    /// `tcp flags`, with the mask applied before the comparison.
    TcpFlags(u8),
    /// Any other field of a protocol: a TCP packet fails it when the protocol is not TCP
    /// (icmp type, udp length), and it is unknown otherwise.
    ProtocolField(u8),
    /// Any other field of the network header of one family (`ip ttl`, `ip6 hoplimit`):
    /// false on the other family.
    NetworkField(crate::firewall::sources::V),
    CtState,
    CtStatus,
    CtDirection,
    Mark,
    CtMark,
    /// `fib daddr type` (and `--dst-type`): local, unicast, broadcast...
    FibDaddrType,
    /// `fib saddr . iif oif`: whether the source routes back out of the interface it
    /// came in on (rpfilter).
    FibSaddrOif,
    PktType,
    /// A field of a header a TCP/IP packet does not have (arp, vlan): every test fails.
    Never,
    /// Whether an IPv6 extension header is there (`exthdr rt exists`): it is not.
    ExtHeader,
    /// A field the model does not follow: every test of it is undecided.
    Unknown,
}

/// How a field is tested.
#[derive(Clone, Debug, PartialEq)]
pub enum Test {
    Eq(Value),
    Lt(u64),
    Gt(u64),
    Le(u64),
    Ge(u64),
    /// Member of a set (index into `Ruleset::sets`).
    In(usize),
    /// Any of these bits set (`ct state established,related`).
    AnyBit(u64),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Accept,
    Drop,
    /// How the client is told: "tcp reset", "icmp port-unreachable", "icmpx admin-prohibited".
    Reject(String),
    Jump(String),
    Goto(String),
    Return,
    Continue,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A test; a rule whose test fails goes no further.
    Match {
        key: Key,
        test: Test,
        negate: bool,
    },
    /// `k1 . k2 @set`: the fields together, element by element.
    MatchConcat {
        keys: Vec<Key>,
        set: usize,
        negate: bool,
    },
    Verdict(Verdict),
    /// `KEY vmap { v1 : verdict, ... }`: the verdict of the element the field matches.
    Vmap {
        key: Key,
        entries: Vec<(Value, Verdict)>,
    },
    /// dnat/redirect: the connection goes to `port` (and `addr`) instead; `None` keeps it.
    Nat {
        addr: Option<IpAddr>,
        port: Option<u16>,
    },
    /// snat/masquerade: the source changes, the destination stays.
    SourceNat,
    Notrack,
    /// `meta mark set N` / `ct mark set N` (`None`: a value the model does not follow).
    SetMark {
        ct: bool,
        value: Option<u64>,
    },
    /// A test whose outcome cannot be known for a connection not yet made (a rate limit,
    /// a quota, a match the model does not know): both outcomes are followed.
    Undecided(String),
    /// A statement that decides outside the model (queue to userspace, an opaque target).
    Decides(String),
    /// counter, log, comment and the like.
    Nothing,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Set {
    pub elements: Vec<Value>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ruleset {
    pub chains: Vec<Chain>,
    pub sets: Vec<Set>,
}

impl Ruleset {
    pub fn chain(&self, family: Family, table: &str, name: &str) -> Option<usize> {
        self.chains
            .iter()
            .position(|c| c.family == family && c.table == table && c.name == name)
    }

    pub fn add_set(&mut self, elements: Vec<Value>) -> usize {
        self.sets.push(Set { elements });
        self.sets.len() - 1
    }

    /// Adds another reading's chains and sets (their indices moved past ours).
    pub fn extend(&mut self, other: Ruleset) {
        let shift = self.sets.len();
        self.sets.extend(other.sets);
        for mut chain in other.chains {
            for rule in &mut chain.rules {
                for expr in &mut rule.exprs {
                    match expr {
                        Expr::Match {
                            test: Test::In(i), ..
                        }
                        | Expr::MatchConcat { set: i, .. } => *i += shift,
                        _ => {}
                    }
                }
            }
            self.chains.push(chain);
        }
    }
}

/// Protocol numbers and names as nft and iptables write them.
pub fn protocol_number(word: &str) -> Option<u8> {
    Some(match word {
        "icmp" => 1,
        "igmp" => 2,
        "tcp" => 6,
        "udp" => 17,
        "gre" => 47,
        "esp" => 50,
        "ah" => 51,
        "icmpv6" | "ipv6-icmp" | "icmp6" => 58,
        "sctp" => 132,
        "udplite" => 136,
        "dccp" => 33,
        _ => return word.parse().ok(),
    })
}

pub const TCP: u8 = 6;

#[cfg(test)]
mod tests;
