//! `nft -j list ruleset` read into the ruleset model (the schema is libnftables-json(5)):
//! tables, chains with their hooks, priorities and policies, rules, and named sets and
//! maps. Tables that hold `xt` expressions (written by iptables-nft) are listed, so that
//! they can be read from `iptables-nft-save` instead.

use super::iptables::service_port;
use super::ruleset::{
    Base, Chain, Expr, Family, Hook, Key, Origin, Policy, Rule, Ruleset, Test, Value, Verdict,
    protocol_number,
};
use super::sources::V;
use serde_json::Value as Json;
use std::collections::HashMap;

/// What `nft -j list ruleset` said, read.
pub struct Parsed {
    pub ruleset: Ruleset,
    /// Tables (family, name) that hold opaque `xt` expressions.
    pub opaque: Vec<(Family, String)>,
    /// What nft's JSON leaves out, to be asked for in another listing ([`Detail`]).
    pub details: Vec<Detail>,
}

/// Something nft 1.0.6's JSON does not say, and the listing that does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Detail {
    /// A table whose rules may have lost a family test: nft prints `meta nfproto ipv6 ...
    /// reject with tcp reset` without its `meta nfproto ipv6` (it takes it for the reject's
    /// own dependency); the kernel's bytecode has it (`nft --debug=netlink list table`,
    /// [`patch_families`]).
    Families { family: Family, table: String },
    /// An ingress chain's devices, missing from the JSON (`nft list chain`, [`patch_devices`]).
    Devices {
        family: Family,
        table: String,
        chain: String,
    },
}

impl Detail {
    /// The nft arguments that list it.
    pub fn arguments(&self) -> Vec<String> {
        match self {
            Detail::Families { family, table } => {
                ["--debug=netlink", "list", "table", family.word(), table]
                    .map(String::from)
                    .to_vec()
            }
            Detail::Devices {
                family,
                table,
                chain,
            } => ["list", "chain", family.word(), table, chain]
                .map(String::from)
                .to_vec(),
        }
    }

    /// Puts what `listing` says into the ruleset.
    pub fn patch(&self, ruleset: &mut Ruleset, listing: &str) {
        match self {
            Detail::Families { family, table } => patch_families(ruleset, *family, table, listing),
            Detail::Devices {
                family,
                table,
                chain,
            } => patch_devices(ruleset, *family, table, chain, listing),
        }
    }
}

/// Reads the ruleset, one object of the `nftables` array at a time: each is turned into
/// the model and dropped before the next is read (a big ruleset is megabytes of JSON, and
/// one tree of it all would cost more to build and free than the rest of the reading).
/// nft lists a table's sets and chains before its rules.
pub fn parse(json: &[u8]) -> Result<Parsed, String> {
    let mut reader = Reader::default();
    let mut de = serde_json::Deserializer::from_slice(json);
    serde::de::DeserializeSeed::deserialize(Document(&mut reader), &mut de)
        .map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    if !reader.seen {
        return Err("no \"nftables\" array".into());
    }
    let sorted = |mut tables: Vec<(Family, String)>| {
        tables.sort_by(|a, b| (a.0.word(), &a.1).cmp(&(b.0.word(), &b.1)));
        tables.dedup();
        tables
    };
    let mut details: Vec<Detail> = sorted(reader.hidden)
        .into_iter()
        .map(|(family, table)| Detail::Families { family, table })
        .collect();
    for c in &reader.ruleset.chains {
        if c.base
            .as_ref()
            .is_some_and(|b| b.hook == Hook::Ingress && b.devices.is_empty())
        {
            details.push(Detail::Devices {
                family: c.family,
                table: c.table.clone(),
                chain: c.name.clone(),
            });
        }
    }
    Ok(Parsed {
        ruleset: reader.ruleset,
        opaque: sorted(reader.opaque),
        details,
    })
}

/// Reads an ingress chain's devices from `nft list chain`: `device "eth0"` or `devices = {
/// eth0, eth1 }`.
pub fn patch_devices(
    ruleset: &mut Ruleset,
    family: Family,
    table: &str,
    chain: &str,
    listing: &str,
) {
    let Some(c) = ruleset.chain(family, table, chain) else {
        return;
    };
    let Some(base) = ruleset.chains[c].base.as_mut() else {
        return;
    };
    let devices: Vec<String> = if let Some(rest) = listing.split("devices = {").nth(1) {
        rest.split('}')
            .next()
            .unwrap_or("")
            .split(',')
            .map(|d| d.trim().trim_matches('"').to_string())
            .filter(|d| !d.is_empty())
            .collect()
    } else if let Some(rest) = listing.split("device ").nth(1) {
        rest.split_whitespace()
            .next()
            .map(|d| d.trim_matches(|c| c == '"' || c == ';').to_string())
            .into_iter()
            .collect()
    } else {
        Vec::new()
    };
    base.devices = devices;
}

/// Puts back the family tests nft's listing left out, read from `nft --debug=netlink list
/// table FAMILY TABLE` (`bytecode`): a rule whose bytecode compares `meta nfproto` gets that
/// test first.
pub fn patch_families(ruleset: &mut Ruleset, family: Family, table: &str, bytecode: &str) {
    for (chain, handle, nfproto) in bytecode_families(bytecode) {
        let Some(c) = ruleset.chain(family, table, &chain) else {
            continue;
        };
        let Some(rule) = ruleset.chains[c]
            .rules
            .iter_mut()
            .find(|r| r.handle == Some(handle))
        else {
            continue;
        };
        if !rule.exprs.iter().any(|e| {
            matches!(
                e,
                Expr::Match {
                    key: Key::NfProto,
                    ..
                }
            )
        }) {
            let (value, negate) = nfproto;
            rule.exprs.insert(
                0,
                Expr::Match {
                    key: Key::NfProto,
                    test: Test::Eq(Value::Int(value)),
                    negate,
                },
            );
        }
    }
}

/// Each rule's `meta nfproto` comparison in a `--debug=netlink` listing: (chain, handle,
/// (value, negated)). A rule is a header line `FAMILY TABLE CHAIN HANDLE [..]` and its
/// expressions, `[ meta load nfproto => reg 1 ]` then `[ cmp eq reg 1 0x0000000a ]`.
fn bytecode_families(bytecode: &str) -> Vec<(String, u64, (u64, bool))> {
    let mut out = Vec::new();
    let mut rule: Option<(String, u64)> = None;
    let mut register: Option<String> = None;
    for line in bytecode.lines() {
        let line = line.trim();
        if line.is_empty() {
            rule = None;
            continue;
        }
        if !line.starts_with('[') {
            let words: Vec<&str> = line.split_whitespace().collect();
            rule = match words.as_slice() {
                [_, _, chain, handle, ..] => handle.parse().ok().map(|h| (chain.to_string(), h)),
                _ => None,
            };
            register = None;
            continue;
        }
        let words: Vec<&str> = line
            .trim_matches(|c| c == '[' || c == ']')
            .split_whitespace()
            .collect();
        match words.as_slice() {
            ["meta", "load", "nfproto", "=>", "reg", r] => register = Some(r.to_string()),
            ["cmp", op @ ("eq" | "neq"), "reg", r, value] if register.as_deref() == Some(*r) => {
                if let (Some((chain, handle)), Ok(v)) = (
                    &rule,
                    u32::from_str_radix(value.trim_start_matches("0x"), 16),
                ) {
                    out.push((chain.clone(), *handle, (u64::from(v & 0xff), *op == "neq")));
                }
                register = None;
            }
            _ => {}
        }
    }
    out
}

/// What takes the `nftables` array's objects one by one.
trait Sink {
    fn object(&mut self, o: &Json, order: usize);
    fn seen(&mut self);
}

impl Sink for Reader {
    fn object(&mut self, o: &Json, order: usize) {
        Reader::object(self, o, order);
    }
    fn seen(&mut self) {
        self.seen = true;
    }
}

/// Walks the same JSON for the rules wanted and writes their text ([`nft_text`]): `None`
/// for a rule not found, or not written there (then nft is asked).
///
/// [`nft_text`]: super::nft_text
pub fn rule_texts(json: &[u8], wanted: &[(Family, String, String, u64)]) -> Vec<Option<String>> {
    let mut finder = Finder {
        wanted,
        found: vec![None; wanted.len()],
    };
    let mut de = serde_json::Deserializer::from_slice(json);
    let _ = serde::de::DeserializeSeed::deserialize(Document(&mut finder), &mut de);
    finder.found
}

struct Finder<'w> {
    wanted: &'w [(Family, String, String, u64)],
    found: Vec<Option<String>>,
}

impl Sink for Finder<'_> {
    fn object(&mut self, o: &Json, _order: usize) {
        let Some(r) = o.get("rule") else { return };
        let (family, table) = where_of(r);
        let (chain, handle) = (text(r, "chain"), r.get("handle").and_then(Json::as_u64));
        for (k, (f, t, c, h)) in self.wanted.iter().enumerate() {
            if *f == family && *t == table && c == chain && Some(*h) == handle {
                let exprs = r
                    .get("expr")
                    .and_then(Json::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                self.found[k] =
                    super::nft_text::rule(family, exprs, r.get("comment").and_then(Json::as_str));
            }
        }
    }
    fn seen(&mut self) {}
}

/// `{"nftables": [...]}`, its array handed to a sink object by object.
struct Document<'r, S>(&'r mut S);

impl<'de, S: Sink> serde::de::DeserializeSeed<'de> for Document<'_, S> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, S: Sink> serde::de::Visitor<'de> for Document<'_, S> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("nft's JSON document")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "nftables" {
                map.next_value_seed(Objects(&mut *self.0))?;
                self.0.seen();
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// The `nftables` array: each object handed on as it comes.
struct Objects<'r, S>(&'r mut S);

impl<'de, S: Sink> serde::de::DeserializeSeed<'de> for Objects<'_, S> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, S: Sink> serde::de::Visitor<'de> for Objects<'_, S> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("the nftables array")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut order = 0;
        while let Some(object) = seq.next_element::<Json>()? {
            self.0.object(&object, order);
            order += 1;
        }
        Ok(())
    }
}

#[derive(Default)]
struct Reader {
    /// The `nftables` array was there.
    seen: bool,
    ruleset: Ruleset,
    /// (family, table, name) of each named set or map → its index; the verdicts of a map.
    sets: HashMap<(Family, String, String), usize>,
    maps: HashMap<(Family, String, String), Vec<(Value, Verdict)>>,
    opaque: Vec<(Family, String)>,
    hidden: Vec<(Family, String)>,
}

fn text<'a>(o: &'a Json, key: &str) -> &'a str {
    o.get(key).and_then(Json::as_str).unwrap_or("")
}

fn where_of(o: &Json) -> (Family, String) {
    (
        Family::parse(text(o, "family")),
        text(o, "table").to_string(),
    )
}

impl Reader {
    fn object(&mut self, o: &Json, order: usize) {
        if let Some(rule) = o.get("rule") {
            self.rule(rule);
        } else if let Some(chain) = o.get("chain") {
            self.chain(chain, order);
        } else if let Some(set) = o.get("set").or_else(|| o.get("map")) {
            self.named_set(set);
        }
    }

    fn named_set(&mut self, set: &Json) {
        let (family, table) = where_of(set);
        let name = text(set, "name").to_string();
        let elements = set
            .get("elem")
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default();
        if set.get("map").is_some() {
            let entries = elements.iter().filter_map(map_entry).collect();
            self.maps.insert((family, table, name), entries);
        } else {
            let values = elements.iter().filter_map(element).collect();
            let index = self.ruleset.add_set(values);
            self.sets.insert((family, table, name), index);
        }
    }

    fn chain(&mut self, c: &Json, order: usize) {
        let (family, table) = where_of(c);
        let base = c.get("hook").map(|hook| {
            let devices = match c.get("dev") {
                Some(Json::String(d)) => vec![d.clone()],
                Some(Json::Array(ds)) => ds
                    .iter()
                    .filter_map(Json::as_str)
                    .map(str::to_string)
                    .collect(),
                _ => Vec::new(),
            };
            Base {
                hook: Hook::parse(hook.as_str().unwrap_or("")),
                priority: c.get("prio").and_then(Json::as_i64).unwrap_or(0) as i32,
                policy: if text(c, "policy") == "drop" {
                    Policy::Drop
                } else {
                    Policy::Accept
                },
                nat: text(c, "type") == "nat",
                devices,
                order,
            }
        });
        let name = text(c, "name");
        match self.ruleset.chain(family, &table, name) {
            // Its rules came first (nft lists chains first; this is in case it did not).
            Some(i) => self.ruleset.chains[i].base = base,
            None => self.ruleset.chains.push(Chain {
                family,
                table,
                name: name.to_string(),
                base,
                rules: Vec::new(),
                origin: Origin::Nft,
            }),
        }
    }

    fn rule(&mut self, r: &Json) {
        let (family, table) = where_of(r);
        let name = text(r, "chain");
        let chain = match self.ruleset.chain(family, &table, name) {
            Some(c) => c,
            None => {
                self.ruleset.chains.push(Chain {
                    family,
                    table: table.clone(),
                    name: name.to_string(),
                    base: None,
                    rules: Vec::new(),
                    origin: Origin::Nft,
                });
                self.ruleset.chains.len() - 1
            }
        };
        let mut exprs = Vec::new();
        for statement in r
            .get("expr")
            .and_then(Json::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            if statement.get("xt").is_some() {
                self.opaque.push((family, table.clone()));
            }
            exprs.push(self.statement(statement, family, &table));
        }
        if matches!(family, Family::Inet | Family::Netdev | Family::Other)
            && reject_family_hidden(&mut exprs)
        {
            self.hidden.push((family, table.clone()));
        }
        self.ruleset.chains[chain].rules.push(Rule {
            handle: r.get("handle").and_then(Json::as_u64),
            text: None,
            exprs,
        });
    }

    fn statement(&mut self, s: &Json, family: Family, table: &str) -> Expr {
        let Some((kind, body)) = s.as_object().and_then(|o| o.iter().next()) else {
            return Expr::Decides("an expression this judge cannot read".into());
        };
        match kind.as_str() {
            "match" => self.matching(body, family, table),
            "accept" => Expr::Verdict(Verdict::Accept),
            "drop" => Expr::Verdict(Verdict::Drop),
            "return" => Expr::Verdict(Verdict::Return),
            "continue" => Expr::Verdict(Verdict::Continue),
            "jump" => Expr::Verdict(Verdict::Jump(text(body, "target").to_string())),
            "goto" => Expr::Verdict(Verdict::Goto(text(body, "target").to_string())),
            "reject" => Expr::Verdict(Verdict::Reject(reject_words(body))),
            "counter" | "log" | "comment" | "flow" | "dup" | "secmark" | "ct helper"
            | "ct timeout" | "ct expectation" => Expr::Nothing,
            "notrack" => Expr::Notrack,
            "mangle" => mark(body),
            "limit" | "quota" | "meter" | "ct count" | "last" => {
                Expr::Undecided(format!("{kind} {}", short(body)))
            }
            "set" | "map" => {
                if body.to_string().contains("\"limit\"") || body.to_string().contains("\"quota\"")
                {
                    Expr::Undecided(format!("{kind} with a limit"))
                } else {
                    Expr::Nothing
                }
            }
            "dnat" | "redirect" => nat(body),
            "snat" | "masquerade" => Expr::SourceNat,
            "vmap" => self.vmap(body, family, table),
            "queue" => Expr::Decides("queue: a userspace program decides".into()),
            "xt" => match text(body, "type") {
                "match" => Expr::Undecided(format!("iptables match {}", text(body, "name"))),
                _ => Expr::Decides(format!("iptables target {}", text(body, "name"))),
            },
            other => Expr::Decides(format!("statement {other}")),
        }
    }

    fn matching(&mut self, m: &Json, family: Family, table: &str) -> Expr {
        let (op, left, right) = (
            text(m, "op"),
            m.get("left").unwrap_or(&Json::Null),
            m.get("right").unwrap_or(&Json::Null),
        );
        let negate = op == "!=";
        if let Some(parts) = left.get("concat").and_then(Json::as_array) {
            let keys: Vec<Key> = parts.iter().map(key).collect();
            let set = match self.set_of(right, family, table, Key::Unknown) {
                Some(set) => set,
                None => {
                    let element = element(right).map(|e| vec![e]).unwrap_or_default();
                    self.ruleset.add_set(element)
                }
            };
            return Expr::MatchConcat { keys, set, negate };
        }
        let key = key(left);
        let flags = matches!(key, Key::CtState | Key::CtStatus | Key::TcpFlags(_));
        let test = match (op, right) {
            (_, Json::Object(o)) if o.contains_key("set") => {
                match self.set_of(right, family, table, key) {
                    Some(set) => Test::In(set),
                    None => return Expr::Undecided("an unreadable set".into()),
                }
            }
            (_, Json::String(s)) if s.starts_with('@') => {
                match self.set_of(right, family, table, key) {
                    Some(set) => Test::In(set),
                    None => {
                        return Expr::Undecided(format!(
                            "set {s}, which the ruleset read does not hold"
                        ));
                    }
                }
            }
            // `ct state established,related`: any of the bits; `flags & mask == syn|ack`: all.
            ("in", Json::Array(words)) if flags => Test::AnyBit(all_bits(key, words)),
            ("==" | "!=", Json::Array(words)) if flags => {
                Test::Eq(Value::Int(all_bits(key, words)))
            }
            ("in", value) if flags => match bits(key, value) {
                Some(b) => Test::AnyBit(b),
                None => return Expr::Undecided(format!("{} {}", short(left), short(right))),
            },
            ("<" | ">" | "<=" | ">=", value) => match normal(key, value) {
                Some(Value::Int(n)) => match op {
                    "<" => Test::Lt(n),
                    ">" => Test::Gt(n),
                    "<=" => Test::Le(n),
                    _ => Test::Ge(n),
                },
                _ => return Expr::Undecided(format!("{} {op} {}", short(left), short(right))),
            },
            ("==" | "!=" | "in", value) => match normal(key, value) {
                Some(v) => Test::Eq(v),
                None => return Expr::Undecided(format!("{} {}", short(left), short(right))),
            },
            _ => return Expr::Undecided(format!("{} {op} {}", short(left), short(right))),
        };
        // A mask compared with zero: `tcp flags & syn == 0` is a test of the bits.
        Expr::Match { key, test, negate }
    }

    /// An anonymous `{"set": [...]}` or a named `"@name"` as a set index, its elements
    /// compared as `key`'s values (`"new"` as ct state's bit).
    fn set_of(&mut self, right: &Json, family: Family, table: &str, key: Key) -> Option<usize> {
        if let Some(name) = right.as_str().and_then(|s| s.strip_prefix('@')) {
            let index = *self
                .sets
                .get(&(family, table.to_string(), name.to_string()))?;
            let elements = std::mem::take(&mut self.ruleset.sets[index].elements);
            self.ruleset.sets[index].elements =
                elements.into_iter().map(|v| normal_value(key, v)).collect();
            return Some(index);
        }
        let elements = right.get("set")?;
        let values = match elements {
            Json::Array(es) => es
                .iter()
                .filter_map(element)
                .map(|v| normal_value(key, v))
                .collect(),
            one => element(one)
                .into_iter()
                .map(|v| normal_value(key, v))
                .collect(),
        };
        Some(self.ruleset.add_set(values))
    }

    fn vmap(&mut self, v: &Json, family: Family, table: &str) -> Expr {
        let key = key(v.get("key").unwrap_or(&Json::Null));
        let data = v.get("data").unwrap_or(&Json::Null);
        let entries = if let Some(name) = data.as_str().and_then(|s| s.strip_prefix('@')) {
            match self
                .maps
                .get(&(family, table.to_string(), name.to_string()))
            {
                Some(entries) => entries.clone(),
                None => {
                    return Expr::Decides(format!(
                        "verdict map @{name}, which the ruleset read does not hold"
                    ));
                }
            }
        } else {
            data.get("set")
                .and_then(Json::as_array)
                .map(|es| es.iter().filter_map(map_entry).collect())
                .unwrap_or_default()
        };
        let entries = entries
            .into_iter()
            .map(|(value, verdict)| (normal_value(key, value), verdict))
            .collect();
        Expr::Vmap { key, entries }
    }
}

/// A match's left side as the field it reads.
fn key(left: &Json) -> Key {
    let Some((kind, body)) = left.as_object().and_then(|o| o.iter().next()) else {
        return Key::Unknown;
    };
    match kind.as_str() {
        "payload" => payload(text(body, "protocol"), text(body, "field")),
        "meta" => match text(body, "key") {
            "l4proto" => Key::L4Proto(None),
            "nfproto" => Key::NfProto,
            "protocol" => Key::EtherType,
            "iifname" | "iif" => Key::IifName,
            "oifname" | "oif" => Key::OifName,
            "mark" => Key::Mark,
            "pkttype" => Key::PktType,
            _ => Key::Unknown,
        },
        "ct" => match text(body, "key") {
            "state" => Key::CtState,
            "status" => Key::CtStatus,
            "direction" => Key::CtDirection,
            "mark" => Key::CtMark,
            _ => Key::Unknown,
        },
        "fib" => {
            let flags: Vec<&str> = body
                .get("flags")
                .and_then(Json::as_array)
                .map(|f| f.iter().filter_map(Json::as_str).collect())
                .unwrap_or_default();
            match text(body, "result") {
                "type" if flags.contains(&"daddr") => Key::FibDaddrType,
                "oif" | "oifname" if flags.contains(&"saddr") => Key::FibSaddrOif,
                _ => Key::Unknown,
            }
        }
        // An IPv6 extension header: an ordinary client's first packet has none, so a field
        // of one is never there; `exthdr X exists` reads false.
        "exthdr" if body.get("field").is_some() => Key::Never,
        "exthdr" => Key::ExtHeader,
        "&" => match body.as_array().map(Vec::as_slice) {
            Some([inner, mask]) => match (key(inner), mask_bits(mask)) {
                (Key::TcpFlags(m), Some(bits)) => Key::TcpFlags(m & bits as u8),
                _ => Key::Unknown,
            },
            _ => Key::Unknown,
        },
        _ => Key::Unknown,
    }
}

fn payload(protocol: &str, field: &str) -> Key {
    match (protocol, field) {
        ("ip", "saddr") => Key::Saddr(V::Four),
        ("ip", "daddr") => Key::Daddr(V::Four),
        ("ip", "protocol") => Key::L4Proto(Some(V::Four)),
        ("ip", _) => Key::NetworkField(V::Four),
        ("ip6", "saddr") => Key::Saddr(V::Six),
        ("ip6", "daddr") => Key::Daddr(V::Six),
        ("ip6", "nexthdr") => Key::L4Proto(Some(V::Six)),
        ("ip6", _) => Key::NetworkField(V::Six),
        ("th", "dport") => Key::Dport(None),
        ("th", "sport") => Key::Sport(None),
        ("tcp", "flags") => Key::TcpFlags(0xff),
        ("ether", "type") | ("vlan", "type") => Key::EtherType,
        ("arp", _) | ("vlan", _) => Key::Never,
        (p, f) => match protocol_number(p) {
            Some(n) if f == "dport" => Key::Dport(Some(n)),
            Some(n) if f == "sport" => Key::Sport(Some(n)),
            Some(n) => Key::ProtocolField(n),
            None => Key::Unknown,
        },
    }
}

/// A set element: a value, a prefix, a range or a concatenation (an `{"elem": {"val": ..}}`
/// wrapper carries timeouts and comments around it).
fn element(e: &Json) -> Option<Value> {
    if let Some(val) = e.get("elem").and_then(|x| x.get("val")) {
        return element(val);
    }
    match e {
        Json::Number(n) => n.as_u64().map(Value::Int),
        // `fib ... oif missing` is `== false`.
        Json::Bool(b) => Some(Value::Int(u64::from(*b))),
        Json::String(s) => Some(match s.parse() {
            Ok(ip) => Value::Addr(ip),
            Err(_) => Value::Str(s.clone()),
        }),
        Json::Object(o) => {
            if let Some(p) = o.get("prefix") {
                let addr = text(p, "addr").parse().ok()?;
                return Some(Value::Prefix(addr, p.get("len")?.as_u64()? as u8));
            }
            if let Some(Json::Array(r)) = o.get("range") {
                return Some(Value::Range(
                    Box::new(element(r.first()?)?),
                    Box::new(element(r.get(1)?)?),
                ));
            }
            if let Some(Json::Array(parts)) = o.get("concat") {
                return parts
                    .iter()
                    .map(element)
                    .collect::<Option<Vec<_>>>()
                    .map(Value::Concat);
            }
            None
        }
        _ => None,
    }
}

/// A verdict map's element: `[key, {"accept": null}]`.
fn map_entry(e: &Json) -> Option<(Value, Verdict)> {
    let pair = e.as_array()?;
    let key = element(pair.first()?)?;
    let (kind, body) = pair.get(1)?.as_object()?.iter().next()?;
    let verdict = match kind.as_str() {
        "accept" => Verdict::Accept,
        "drop" => Verdict::Drop,
        "continue" => Verdict::Continue,
        "return" => Verdict::Return,
        "jump" => Verdict::Jump(text(body, "target").to_string()),
        "goto" => Verdict::Goto(text(body, "target").to_string()),
        _ => return None,
    };
    Some((key, verdict))
}

/// `reject with tcp reset`, `... icmpx admin-prohibited`, plain `reject`.
fn reject_words(body: &Json) -> String {
    let kind = text(body, "type");
    let code = text(body, "expr");
    match (kind, code) {
        ("", "") => "icmpx port-unreachable".into(),
        ("tcp reset", _) => "tcp reset".into(),
        (k, "") => format!("{k} port-unreachable"),
        (k, c) => format!("{k} {c}"),
    }
}

fn mark(body: &Json) -> Expr {
    let target = body.get("key").map(key);
    let value = body.get("value").and_then(Json::as_u64);
    match target {
        Some(Key::Mark) => Expr::SetMark { ct: false, value },
        Some(Key::CtMark) => Expr::SetMark { ct: true, value },
        _ => Expr::Nothing,
    }
}

fn nat(body: &Json) -> Expr {
    let port = body.get("port").and_then(Json::as_u64).map(|p| p as u16);
    let addr = body
        .get("addr")
        .and_then(Json::as_str)
        .and_then(|a| a.parse().ok());
    if body.get("addr").is_some_and(|a| !a.is_string())
        || body.get("port").is_some_and(|p| !p.is_u64())
    {
        return Expr::Decides(format!("nat to {}", short(body)));
    }
    Expr::Nat { addr, port }
}

/// A value as the model compares it: names of protocols, states and flags as numbers.
fn normal(key: Key, value: &Json) -> Option<Value> {
    element(value).map(|v| normal_value(key, v))
}

fn normal_value(key: Key, value: Value) -> Value {
    let Value::Str(word) = &value else {
        return match value {
            Value::Range(a, b) => Value::Range(
                Box::new(normal_value(key, *a)),
                Box::new(normal_value(key, *b)),
            ),
            other => other,
        };
    };
    let number = match key {
        Key::L4Proto(_) => protocol_number(word).map(u64::from),
        Key::NfProto => match word.as_str() {
            "ipv4" => Some(2),
            "ipv6" => Some(10),
            _ => None,
        },
        Key::EtherType => match word.as_str() {
            "ip" => Some(0x0800),
            "ip6" => Some(0x86dd),
            "arp" => Some(0x0806),
            // nft prints a type by its first name in its table: 8021q, not vlan.
            "8021q" | "vlan" => Some(0x8100),
            "8021ad" => Some(0x88a8),
            _ => None,
        },
        Key::Dport(_) | Key::Sport(_) => service_port(word),
        Key::CtState | Key::CtStatus | Key::TcpFlags(_) | Key::CtDirection => {
            bits(key, &Json::String(word.clone()))
        }
        _ => None,
    };
    number.map_or(value, Value::Int)
}

/// A flag's bit: ct state, ct status, tcp flags, ct direction.
fn bits(key: Key, word: &Json) -> Option<u64> {
    if let Some(n) = word.as_u64() {
        return Some(n);
    }
    let w = word.as_str()?;
    Some(match (key, w) {
        (Key::CtState, "invalid") => 1,
        (Key::CtState, "established") => 2,
        (Key::CtState, "related") => 4,
        (Key::CtState, "new") => 8,
        (Key::CtState, "untracked") => 64,
        (Key::CtStatus, "expected") => 1,
        (Key::CtStatus, "seen-reply") => 2,
        (Key::CtStatus, "assured") => 4,
        (Key::CtStatus, "confirmed") => 8,
        (Key::CtStatus, "snat") => 16,
        (Key::CtStatus, "dnat") => 32,
        (Key::CtStatus, "dying") => 512,
        (Key::CtDirection, "original") => 0,
        (Key::CtDirection, "reply") => 1,
        (Key::TcpFlags(_), f) => tcp_flag(f)?,
        _ => return None,
    })
}

fn tcp_flag(f: &str) -> Option<u64> {
    Some(match f {
        "fin" => 0x01,
        "syn" => 0x02,
        "rst" => 0x04,
        "psh" => 0x08,
        "ack" => 0x10,
        "urg" => 0x20,
        "ecn" => 0x40,
        "cwr" => 0x80,
        _ => return None,
    })
}

/// A mask of tcp flags: `["fin", "syn"]`, `"syn"` or a number.
fn mask_bits(mask: &Json) -> Option<u64> {
    match mask {
        Json::Array(words) => words
            .iter()
            .map(|w| w.as_str().and_then(tcp_flag).or(w.as_u64()))
            .sum(),
        Json::String(w) => tcp_flag(w),
        other => other.as_u64(),
    }
}

/// A JSON value, shortened for a message.
fn short(v: &Json) -> String {
    let s = v.to_string();
    if s.len() > 80 {
        format!("{}...", &s[..s.floor_char_boundary(80)])
    } else {
        s
    }
}

/// The bits the words name, together.
fn all_bits(key: Key, words: &[Json]) -> u64 {
    words
        .iter()
        .filter_map(|w| bits(key, w))
        .fold(0, |a, b| a | b)
}

/// In a table of several families, nft prints a reject's family in its type and drops the
/// family test it came from: `icmp` is IPv4's, `icmpv6` IPv6's (the test is put back first
/// in `exprs`). Returns whether the family cannot be told at all (`tcp reset` with no test
/// of the family: `--debug=netlink` has to say).
fn reject_family_hidden(exprs: &mut Vec<Expr>) -> bool {
    let reject = exprs.iter().find_map(|e| match e {
        Expr::Verdict(Verdict::Reject(how)) => Some(how.clone()),
        _ => None,
    });
    let family_tested = exprs.iter().any(|e| {
        matches!(
            e,
            Expr::Match {
                key: Key::NfProto
                    | Key::EtherType
                    | Key::Saddr(_)
                    | Key::Daddr(_)
                    | Key::NetworkField(_)
                    | Key::L4Proto(Some(_)),
                ..
            }
        )
    });
    let nfproto = |n| Expr::Match {
        key: Key::NfProto,
        test: Test::Eq(Value::Int(n)),
        negate: false,
    };
    match reject.as_deref() {
        Some(how) if how.starts_with("icmp ") => exprs.insert(0, nfproto(2)),
        Some(how) if how.starts_with("icmpv6 ") => exprs.insert(0, nfproto(10)),
        Some("tcp reset") => return !family_tested,
        _ => {}
    }
    false
}

#[cfg(test)]
mod tests;
