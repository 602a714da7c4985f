//! `iptables-save` output read into the ruleset model: the tables that iptables-nft writes
//! (ufw, docker, fail2ban), whose matches nft's JSON leaves opaque, and the legacy x_tables
//! that nft cannot see at all. A match or target this reader does not know is kept as such
//! (undecided, or deciding outside the model) with the option that names it.

use super::ruleset::{
    Base, Chain, Expr, Family, Hook, Key, Origin, Policy, Rule, Ruleset, Test, Value, Verdict,
    protocol_number,
};
use super::sources::V;
use std::net::IpAddr;

/// Reads `iptables-save` (IPv4, `v = Four`) or `ip6tables-save` output; only the tables
/// named in `only` if it is given.
pub fn parse(text: &str, v: V, origin: Origin, only: Option<&[String]>) -> Ruleset {
    let family = match v {
        V::Four => Family::Ip,
        V::Six => Family::Ip6,
    };
    let mut ruleset = Ruleset::default();
    let mut table: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('*') {
            let wanted = only.is_none_or(|o| o.iter().any(|t| t == name));
            table = wanted.then(|| name.to_string());
            continue;
        }
        let Some(t) = &table else { continue };
        if line == "COMMIT" {
            table = None;
        } else if let Some(decl) = line.strip_prefix(':') {
            let mut words = decl.split_whitespace();
            let (Some(name), Some(policy)) = (words.next(), words.next()) else {
                continue;
            };
            ruleset.chains.push(Chain {
                family,
                table: t.clone(),
                name: name.to_string(),
                base: base(t, name, policy),
                rules: Vec::new(),
                origin,
            });
        } else {
            append(&mut ruleset, t, strip_counters(line), v, origin);
        }
    }
    ruleset
}

/// An `-A CHAIN RULE...` line: the rule, at the end of its chain (made if undeclared).
fn append(ruleset: &mut Ruleset, table: &str, line: &str, v: V, origin: Origin) {
    let family = if v == V::Four {
        Family::Ip
    } else {
        Family::Ip6
    };
    let words = split(line);
    if words.first().map(String::as_str) != Some("-A") || words.len() < 2 {
        return;
    }
    let declared: Vec<String> = ruleset
        .chains
        .iter()
        .filter(|c| c.family == family && c.table == table)
        .map(|c| c.name.clone())
        .collect();
    let exprs = rule_exprs(&words[2..], v, &declared, ruleset);
    let chain = match ruleset.chain(family, table, &words[1]) {
        Some(c) => c,
        None => {
            ruleset.chains.push(Chain {
                family,
                table: table.to_string(),
                name: words[1].clone(),
                base: None,
                rules: Vec::new(),
                origin,
            });
            ruleset.chains.len() - 1
        }
    };
    ruleset.chains[chain].rules.push(Rule {
        handle: None,
        text: Some(line.to_string()),
        exprs,
    });
}

/// A built-in chain's hook and priority (the kernel's NF_IP_PRI_* for its table).
fn base(table: &str, chain: &str, policy: &str) -> Option<Base> {
    let priority = match (table, chain) {
        ("raw", "PREROUTING" | "OUTPUT") => -300,
        ("mangle", "PREROUTING" | "INPUT" | "OUTPUT") => -150,
        ("nat", "PREROUTING" | "OUTPUT") => -100,
        ("nat", "INPUT") => 100,
        ("filter", "INPUT" | "OUTPUT") => 0,
        ("security", "INPUT" | "OUTPUT") => 50,
        (_, "PREROUTING" | "INPUT" | "OUTPUT" | "FORWARD" | "POSTROUTING") => 0,
        _ => return None,
    };
    Some(Base {
        hook: Hook::parse(chain),
        priority,
        policy: if policy == "DROP" {
            Policy::Drop
        } else {
            Policy::Accept
        },
        nat: table == "nat",
        devices: Vec::new(),
        // Legacy tables are registered when their module loads, usually at boot: before
        // any nftables chain (iptables-nft chains get their order from nft's listing).
        order: 0,
    })
}

/// `[12:3456] -A ...` (iptables-save -c) without its counters.
fn strip_counters(line: &str) -> &str {
    match line.strip_prefix('[').and_then(|r| r.split_once(']')) {
        Some((_, rest)) => rest.trim_start(),
        None => line,
    }
}

/// Words as iptables-save quotes them: `"..."` with `\"` and `\\` inside.
fn split(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            '\\' if quoted => {
                if let Some(next) = chars.next() {
                    word.push(next);
                }
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// One rule's options (after `-A CHAIN`) as tests and statements, in order.
fn rule_exprs(words: &[String], v: V, chains: &[String], ruleset: &mut Ruleset) -> Vec<Expr> {
    let mut out = Vec::new();
    let mut proto: Option<u8> = None;
    let mut module = String::new();
    let mut negate = false;
    let mut i = 0;
    let arg = |i: usize| words.get(i + 1).map(String::as_str).unwrap_or("");
    while i < words.len() {
        let w = words[i].as_str();
        let test = |key, test| Expr::Match { key, test, negate };
        let mut taken = 2;
        match w {
            "!" => {
                negate = true;
                i += 1;
                continue;
            }
            "-p" | "--protocol" => out.extend(protocol(arg(i), negate, &mut proto)),
            "-s" | "--source" | "-d" | "--destination" => {
                out.push(addresses(w, arg(i), v, negate, ruleset))
            }
            "-i" | "--in-interface" | "-o" | "--out-interface" => {
                let key = if w.starts_with("-i") || w == "--in-interface" {
                    Key::IifName
                } else {
                    Key::OifName
                };
                // iptables' `eth+` is nft's `eth*`.
                let name = arg(i)
                    .strip_suffix('+')
                    .map_or(arg(i).to_string(), |p| format!("{p}*"));
                out.push(test(key, Test::Eq(Value::Str(name))));
            }
            "-f" | "--fragment" => {
                // A connection's first packet is never a later fragment.
                out.push(if negate {
                    Expr::Nothing
                } else {
                    test(Key::Never, Test::Eq(Value::Int(1)))
                });
                taken = 1;
            }
            "-m" | "--match" => module = arg(i).to_string(),
            "-j" | "--jump" | "-g" | "--goto" => {
                let (target, used) = target(w, &words[i + 1..], v, chains);
                out.extend(target);
                taken = 1 + used;
            }
            "-c" | "--set-counters" => taken = 3,
            _ if w.starts_with("--") => {
                let (expr, used) =
                    module_option(&module, w, &words[i + 1..], proto, negate, ruleset);
                out.extend(expr);
                taken = 1 + used;
            }
            _ => {
                out.push(Expr::Undecided(format!("option {w}")));
                taken = 1;
            }
        }
        negate = false;
        i += taken;
    }
    out
}

/// `-p PROTOCOL`: its test (none for `all`), and the protocol the ports that follow are of.
fn protocol(p: &str, negate: bool, proto: &mut Option<u8>) -> Option<Expr> {
    if p == "all" || p == "0" {
        return None;
    }
    let Some(n) = protocol_number(p) else {
        return Some(Expr::Undecided(format!("-p {p}")));
    };
    if !negate {
        *proto = Some(n);
    }
    Some(Expr::Match {
        key: Key::L4Proto(None),
        test: Test::Eq(Value::Int(n.into())),
        negate,
    })
}

/// `-s ADDRESSES` or `-d ADDRESSES` (one, or a comma-separated list).
fn addresses(w: &str, text: &str, v: V, negate: bool, ruleset: &mut Ruleset) -> Expr {
    let key = if w.starts_with("-s") || w == "--source" {
        Key::Saddr(v)
    } else {
        Key::Daddr(v)
    };
    let values: Vec<Value> = text.split(',').filter_map(address).collect();
    let test = match values.len() {
        0 => return Expr::Undecided(format!("{w} {text}")),
        1 => Test::Eq(values[0].clone()),
        _ => Test::In(ruleset.add_set(values)),
    };
    Expr::Match { key, test, negate }
}

/// `10.0.0.0/8`, `10.0.0.1`, `fd00::/64`, `10.0.0.0/255.0.0.0`.
fn address(text: &str) -> Option<Value> {
    match text.split_once('/') {
        None => text.parse().ok().map(Value::Addr),
        Some((addr, len)) => {
            let addr: IpAddr = addr.parse().ok()?;
            let len = match len.parse::<u8>() {
                Ok(n) => n,
                Err(_) => {
                    let mask: std::net::Ipv4Addr = len.parse().ok()?;
                    let bits = u32::from(mask);
                    if bits.leading_ones() + bits.trailing_zeros() != 32 {
                        return None;
                    }
                    bits.leading_ones() as u8
                }
            };
            let full = if addr.is_ipv4() { 32 } else { 128 };
            Some(if len == full {
                Value::Addr(addr)
            } else {
                Value::Prefix(addr, len)
            })
        }
    }
}

/// `8001`, `8000:8002`, `:1024`, `http`.
fn port(text: &str) -> Option<Value> {
    let one = |t: &str| -> Option<u64> { t.parse().ok().or_else(|| service_port(t)) };
    match text.split_once(':') {
        None => one(text).map(Value::Int),
        Some((a, b)) => {
            let a = if a.is_empty() { 0 } else { one(a)? };
            let b = if b.is_empty() { 65535 } else { one(b)? };
            Some(Value::Range(
                Box::new(Value::Int(a)),
                Box::new(Value::Int(b)),
            ))
        }
    }
}

/// The service names firewalls commonly write instead of numbers.
pub fn service_port(name: &str) -> Option<u64> {
    Some(match name {
        "ssh" => 22,
        "http" | "www" => 80,
        "https" => 443,
        "domain" => 53,
        "bootps" => 67,
        "bootpc" => 68,
        "mdns" => 5353,
        "ntp" => 123,
        "smtp" => 25,
        "dhcpv6-client" => 546,
        "dhcpv6-server" => 547,
        _ => return None,
    })
}

/// The words an option of a match module takes, and what it means for a new TCP connection.
fn module_option(
    module: &str,
    option: &str,
    rest: &[String],
    proto: Option<u8>,
    negate: bool,
    ruleset: &mut Ruleset,
) -> (Vec<Expr>, usize) {
    let o = ModuleOption {
        module,
        option,
        value: rest.first().map(String::as_str).unwrap_or(""),
        rest,
        negate,
    };
    match module {
        "tcp" | "udp" | "sctp" | "dccp" => o.transport(proto),
        "multiport" => o.multiport(proto, ruleset),
        "conntrack" | "state" => o.conntrack(),
        _ => o.other(),
    }
}

/// One `-m MODULE --OPTION VALUE…` as written: what it tests, and how many words it takes.
struct ModuleOption<'a> {
    module: &'a str,
    option: &'a str,
    /// The first word after the option.
    value: &'a str,
    rest: &'a [String],
    negate: bool,
}

impl ModuleOption<'_> {
    fn test(&self, key: Key, test: Test, words: usize) -> (Vec<Expr>, usize) {
        (
            vec![Expr::Match {
                key,
                test,
                negate: self.negate,
            }],
            words,
        )
    }

    fn undecided(&self, words: usize) -> (Vec<Expr>, usize) {
        (
            vec![Expr::Undecided(format!(
                "-m {} {}",
                self.module, self.option
            ))],
            words,
        )
    }

    /// The words up to the next option.
    fn own_words(&self) -> usize {
        self.rest
            .iter()
            .take_while(|w| !w.starts_with('-') && *w != "!")
            .count()
    }

    /// tcp, udp, sctp, dccp: ports, and TCP's flags.
    fn transport(&self, proto: Option<u8>) -> (Vec<Expr>, usize) {
        match self.option {
            "--dport" | "--destination-port" | "--sport" | "--source-port" => {
                let p = protocol_number(self.module).or(proto);
                let key = if matches!(self.option, "--dport" | "--destination-port") {
                    Key::Dport(p)
                } else {
                    Key::Sport(p)
                };
                match port(self.value) {
                    Some(v) => self.test(key, Test::Eq(v), 1),
                    None => self.undecided(1),
                }
            }
            "--syn" if self.module == "tcp" => {
                self.test(Key::TcpFlags(0x17), Test::Eq(Value::Int(0x02)), 0)
            }
            "--tcp-flags" if self.module == "tcp" => {
                let mask = tcp_flags(self.value);
                let comp = tcp_flags(self.rest.get(1).map(String::as_str).unwrap_or(""));
                match (mask, comp) {
                    (Some(m), Some(c)) => {
                        self.test(Key::TcpFlags(m), Test::Eq(Value::Int(c.into())), 2)
                    }
                    _ => self.undecided(2),
                }
            }
            _ => self.unknown(),
        }
    }

    fn multiport(&self, proto: Option<u8>, ruleset: &mut Ruleset) -> (Vec<Expr>, usize) {
        if !matches!(
            self.option,
            "--dports" | "--destination-ports" | "--sports" | "--source-ports" | "--ports"
        ) {
            return self.unknown();
        }
        let ports: Option<Vec<Value>> = self.value.split(',').map(port).collect();
        let Some(ports) = ports else {
            return self.undecided(1);
        };
        let set = ruleset.add_set(ports);
        match self.option {
            "--dports" | "--destination-ports" => self.test(Key::Dport(proto), Test::In(set), 1),
            // Either port: true when the destination is listed, else a guess.
            "--ports" if !self.negate => (
                vec![Expr::Undecided(format!(
                    "-m multiport --ports {}",
                    self.value
                ))],
                1,
            ),
            _ => self.test(Key::Sport(proto), Test::In(set), 1),
        }
    }

    fn conntrack(&self) -> (Vec<Expr>, usize) {
        match (self.module, self.option) {
            ("conntrack", "--ctstate") | ("state", "--state") => {
                let mut bits = 0;
                for state in self.value.split(',') {
                    bits |= match state {
                        "INVALID" => 1,
                        "ESTABLISHED" => 2,
                        "RELATED" => 4,
                        "NEW" => 8,
                        "UNTRACKED" => 64,
                        _ => return self.undecided(1),
                    };
                }
                self.test(Key::CtState, Test::AnyBit(bits), 1)
            }
            ("conntrack", "--ctdir") => self.test(
                Key::CtDirection,
                Test::Eq(Value::Int(u64::from(self.value == "REPLY"))),
                1,
            ),
            _ => self.unknown(),
        }
    }

    /// addrtype, comment, pkttype, icmp, IPv6 extension headers, mark; the rest unknown.
    fn other(&self) -> (Vec<Expr>, usize) {
        let value = self.value;
        match (self.module, self.option) {
            ("addrtype", "--dst-type") => self.test(
                Key::FibDaddrType,
                Test::Eq(Value::Str(value.to_ascii_lowercase())),
                1,
            ),
            ("addrtype", "--limit-iface-in" | "--limit-iface-out") => (vec![Expr::Nothing], 0),
            ("comment", "--comment") => (vec![Expr::Nothing], 1),
            ("pkttype", "--pkt-type") => {
                let kind = if value == "unicast" { "host" } else { value };
                self.test(Key::PktType, Test::Eq(Value::Str(kind.to_string())), 1)
            }
            ("icmp", "--icmp-type") => {
                self.test(Key::ProtocolField(1), Test::Eq(Value::Str(value.into())), 1)
            }
            ("icmp6" | "ipv6-icmp" | "icmpv6", "--icmpv6-type") => self.test(
                Key::ProtocolField(58),
                Test::Eq(Value::Str(value.into())),
                1,
            ),
            // IPv6 extension headers (routing, fragment, hop-by-hop, destination, mobility): a
            // connection's first packet from an ordinary client carries none, so each of their
            // tests fails.
            ("rt" | "frag" | "hbh" | "dst" | "mh", _) => (
                vec![Expr::Match {
                    key: Key::Never,
                    test: Test::Eq(Value::Int(1)),
                    negate: false,
                }],
                self.own_words(),
            ),
            ("mark", "--mark") => match (value.split_once('/'), number(value)) {
                (None, Some(n)) => self.test(Key::Mark, Test::Eq(Value::Int(n)), 1),
                _ => self.undecided(1),
            },
            _ => self.unknown(),
        }
    }

    /// Anything else (limit, recent, hashlimit, set, owner, ...): its words run to the next
    /// option.
    fn unknown(&self) -> (Vec<Expr>, usize) {
        self.undecided(self.own_words())
    }
}

fn number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// `SYN,ACK,FIN,RST` as TCP flag bits.
fn tcp_flags(text: &str) -> Option<u8> {
    let mut bits = 0;
    for flag in text.split(',') {
        bits |= match flag {
            "FIN" => 0x01,
            "SYN" => 0x02,
            "RST" => 0x04,
            "PSH" => 0x08,
            "ACK" => 0x10,
            "URG" => 0x20,
            "ECE" => 0x40,
            "CWR" => 0x80,
            "ALL" => 0xff,
            "NONE" => 0,
            _ => return None,
        };
    }
    Some(bits)
}

/// `-j TARGET [options]` or `-g CHAIN`: the statement, and how many words it took after
/// the `-j`.
fn target(flag: &str, rest: &[String], v: V, chains: &[String]) -> (Vec<Expr>, usize) {
    let name = rest.first().map(String::as_str).unwrap_or("");
    let options: Vec<&str> = rest[1.min(rest.len())..]
        .iter()
        .take_while(|w| *w != "-m" && *w != "-j")
        .map(String::as_str)
        .collect();
    let used = 1 + options.len();
    let option = |o: &str| {
        options
            .iter()
            .position(|w| *w == o)
            .and_then(|k| options.get(k + 1))
            .copied()
    };
    if flag == "-g" || flag == "--goto" {
        return (vec![Expr::Verdict(Verdict::Goto(name.to_string()))], 1);
    }
    // A chain of the table (declared `:NAME` before the rules), whatever its case.
    if chains.iter().any(|c| c == name) {
        return (vec![Expr::Verdict(Verdict::Jump(name.to_string()))], 1);
    }
    let expr = match name {
        "ACCEPT" => Expr::Verdict(Verdict::Accept),
        "DROP" => Expr::Verdict(Verdict::Drop),
        "RETURN" => Expr::Verdict(Verdict::Return),
        "REJECT" => {
            let default = if v == V::Four {
                "icmp-port-unreachable"
            } else {
                "icmp6-port-unreachable"
            };
            Expr::Verdict(Verdict::Reject(
                option("--reject-with").unwrap_or(default).to_string(),
            ))
        }
        "LOG" | "NFLOG" | "ULOG" | "TRACE" | "TCPMSS" | "DSCP" | "TOS" | "CLASSIFY" | "TTL"
        | "HL" | "CHECKSUM" | "AUDIT" => Expr::Nothing,
        // A mark set to a known value (not under a mask), on the packet or its connection.
        "MARK" | "CONNMARK" => Expr::SetMark {
            ct: name == "CONNMARK",
            value: option("--set-mark")
                .or(option("--set-xmark"))
                .filter(|m| !m.contains('/'))
                .and_then(number),
        },
        "NOTRACK" => Expr::Notrack,
        "CT" if options.contains(&"--notrack") => Expr::Notrack,
        "CT" => Expr::Nothing,
        "DNAT" | "REDIRECT" => destination_nat(name, &option),
        "SNAT" | "MASQUERADE" => Expr::SourceNat,
        "QUEUE" | "NFQUEUE" => Expr::Decides(format!("-j {name}: a userspace program decides")),
        chain if !chain.is_empty() && !chain.chars().all(|c| c.is_ascii_uppercase()) => {
            Expr::Verdict(Verdict::Jump(chain.to_string()))
        }
        other => Expr::Decides(format!("-j {other}")),
    };
    (vec![expr], used)
}

/// `-j DNAT --to-destination ADDRESS[:PORT]` or `-j REDIRECT --to-ports PORT`.
fn destination_nat<'a>(name: &str, option: &impl Fn(&str) -> Option<&'a str>) -> Expr {
    if name == "REDIRECT" {
        let port = option("--to-ports")
            .and_then(|p| p.split(['-', ':']).next())
            .and_then(|p| p.parse().ok());
        return Expr::Nat { addr: None, port };
    }
    match option("--to-destination").and_then(destination) {
        Some((addr, port)) => Expr::Nat { addr, port },
        None => Expr::Decides("-j DNAT to a destination this judge does not read".into()),
    }
}

/// `10.0.0.5`, `10.0.0.5:8080`, `[fd00::5]:8080`, `:8080`.
fn destination(text: &str) -> Option<(Option<IpAddr>, Option<u16>)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (addr, port) = rest.split_once(']')?;
        let port = port
            .strip_prefix(':')
            .map(|p| p.split('-').next().unwrap_or(p).parse().ok())
            .unwrap_or(Some(0))?;
        return Some((Some(addr.parse().ok()?), (port != 0).then_some(port)));
    }
    match text.rsplit_once(':') {
        Some((addr, port)) if !addr.contains(':') => {
            let port: u16 = port.split('-').next()?.parse().ok()?;
            let addr = if addr.is_empty() {
                None
            } else {
                Some(addr.split('-').next()?.parse().ok()?)
            };
            Some((addr, Some(port)))
        }
        _ => Some((Some(text.split('-').next()?.parse().ok()?), None)),
    }
}

#[cfg(test)]
mod tests;
