//! The fate of a new TCP connection to a local port, worked out from the ruleset alone: the
//! base chains its first packet meets, hook by hook (netdev ingress, prerouting, input; a
//! connection the host makes to itself meets output first), in priority order across every
//! table, with nftables' rule that an accept ends only its own base chain while a drop or a
//! reject ends everything. A test the model cannot decide (a rate limit, an unknown match)
//! is followed both ways; if the two ways end differently, the fate is unknown and names
//! the rule. A test of the client's address splits the clients instead: the fate is then
//! worked out for each part of the address space.

use super::ruleset::{
    Base, Expr, Family, Hook, Key, Policy, Rule, Ruleset, TCP, Test, Value, Verdict,
};
use super::sources::{Sources, V};
use std::net::IpAddr;

/// The connection to judge.
#[derive(Clone, Debug)]
pub struct Packet {
    pub daddr: IpAddr,
    pub dport: u16,
    pub path: Path,
    /// The client's address; `None`: any client (the fate may then depend on it).
    pub source: Option<IpAddr>,
    /// The host's own addresses: a dnat to one of them on the same port still reaches a
    /// wildcard listener.
    pub local: Vec<IpAddr>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Path {
    /// From another machine, arriving on this interface.
    Remote { iif: String },
    /// From the host itself (the launcher's own probe), through loopback.
    Local,
}

/// Where a fate was decided: a rule of a chain, or the chain's policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decider {
    pub chain: usize,
    /// The rule's index in its chain; `None`: the policy.
    pub rule: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    Open,
    /// Silently: the client waits until it gives up.
    Dropped,
    /// The client is told, in these words ("tcp reset", "icmp admin-prohibited").
    Rejected(String),
    /// dnat/redirect to another port or host: gunicorn never sees it.
    Redirected,
    Unknown(String),
}

impl Fate {
    pub fn blocks(&self) -> bool {
        matches!(self, Fate::Dropped | Fate::Rejected(_) | Fate::Redirected)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub fate: Fate,
    pub by: Option<Decider>,
}

/// The fate of the connection for most clients, and, when it depends on the client, which
/// clients get through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judged {
    pub outcome: Outcome,
    pub open_to: Option<Sources>,
    /// When most clients get through but some do not: those.
    pub blocked_from: Option<Sources>,
}

/// Undecided tests followed both ways, at most: past this the answer is unknown.
const MAX_BRANCHES: usize = 4096;
/// Rules looked at, at most, over all branches.
const MAX_STEPS: usize = 4_000_000;
/// conntrack's own priority on prerouting and output (NF_IP_PRI_CONNTRACK).
const CONNTRACK: i32 = -200;
/// Nested jumps, at most (nft refuses loops; this guards against a reading that has one).
const MAX_DEPTH: usize = 64;

pub fn judge(ruleset: &Ruleset, packet: &Packet) -> Judged {
    let v = V::of(packet.daddr);
    let walk = Walk {
        ruleset,
        packet,
        v,
        steps: steps(ruleset, packet, v),
        undecided: std::cell::Cell::new(0),
    };
    let sources = match packet.source {
        Some(_) => None,
        None => Some(Sources::all(v)),
    };
    let leaves = walk.run(sources);
    summarise(leaves, v)
}

/// One hook on the packet's way, the interfaces it has there, and its base chains in the
/// order they run.
struct Step {
    iif: Option<String>,
    oif: Option<String>,
    chains: Vec<usize>,
}

fn steps(ruleset: &Ruleset, packet: &Packet, v: V) -> Vec<Step> {
    let lo = || Some("lo".to_string());
    let hooks: Vec<(Hook, Option<String>, Option<String>, bool)> = match &packet.path {
        Path::Remote { iif } => vec![
            (Hook::Ingress, Some(iif.clone()), None, true),
            (Hook::Prerouting, Some(iif.clone()), None, true),
            (Hook::Input, Some(iif.clone()), None, true),
        ],
        // The host's own connection: its nat was set up on the way out, so the nat chains
        // on the way back in do not see it again.
        Path::Local => vec![
            (Hook::Output, None, lo(), true),
            (Hook::Ingress, lo(), None, true),
            (Hook::Prerouting, lo(), None, false),
            (Hook::Input, lo(), None, true),
        ],
    };
    hooks
        .into_iter()
        .map(|(hook, iif, oif, with_nat)| {
            let mut chains: Vec<usize> = ruleset
                .chains
                .iter()
                .enumerate()
                .filter(|(_, c)| {
                    c.base.as_ref().is_some_and(|b| {
                        b.hook == hook
                            && (with_nat || !b.nat)
                            && sees(c.family, b, hook, v, iif.as_deref())
                    })
                })
                .map(|(i, _)| i)
                .collect();
            // By priority; of one priority, the chain registered later runs first.
            chains.sort_by_key(|&i| {
                ruleset.chains[i]
                    .base
                    .as_ref()
                    .map(|b| (b.priority, std::cmp::Reverse(b.order)))
            });
            Step { iif, oif, chains }
        })
        .collect()
}

/// Whether a base chain of this family sees the packet on this hook.
fn sees(family: Family, base: &Base, hook: Hook, v: V, iif: Option<&str>) -> bool {
    if hook == Hook::Ingress {
        let on_device = iif.is_some_and(|i| base.devices.iter().any(|d| d == i));
        return matches!(family, Family::Netdev | Family::Inet) && on_device;
    }
    match family {
        Family::Inet => true,
        Family::Ip => v == V::Four,
        Family::Ip6 => v == V::Six,
        Family::Netdev | Family::Other => false,
    }
}

/// A packet on its way, at one place in the ruleset.
#[derive(Clone, Debug)]
struct Thread {
    step: usize,
    base: usize,
    chain: usize,
    rule: usize,
    /// Where a jump returns to.
    stack: Vec<(usize, usize)>,
    /// The clients still on this way (`None`: one known client).
    sources: Option<Sources>,
    /// The first undecided test this way took one side of.
    assumed: Option<Decider>,
    /// This way took an undecided test as passed: of ways that agree, the one that took
    /// none that way names what decides in the usual case (the policy, not a rare match).
    guessed: bool,
    untracked: bool,
    dnat: bool,
    mark: Option<u64>,
    ct_mark: Option<u64>,
    /// The destination port, changed by a redirect to another port of the host.
    dport: u16,
    /// The nat rule that sent the connection to another port: once past every wall, it
    /// reaches that port, not gunicorn.
    redirected: Option<Decider>,
}

/// Ways out of one rule that differ only in their clients go on as one: a rule that tests
/// the client's address and then fails another test sends both parts of the clients to its
/// next rule, and walking them apart would double the work at every such rule.
fn merged(done: Vec<(Thread, Effect)>) -> Vec<(Thread, Effect)> {
    let mut out: Vec<(Thread, Effect)> = Vec::with_capacity(done.len());
    for (t, effect) in done {
        let twin = out
            .iter_mut()
            .find(|(u, e)| *e == effect && same_way(u, &t));
        match twin {
            Some((u, _)) => {
                if let (Some(a), Some(b)) = (&u.sources, &t.sources) {
                    u.sources = Some(a.union(b));
                }
            }
            None => out.push((t, effect)),
        }
    }
    out
}

/// Two threads at one place in one state, their clients aside.
fn same_way(a: &Thread, b: &Thread) -> bool {
    a.sources.is_some()
        && b.sources.is_some()
        && (
            a.step,
            a.base,
            a.chain,
            a.rule,
            a.assumed,
            a.guessed,
            a.untracked,
            a.dnat,
        ) == (
            b.step,
            b.base,
            b.chain,
            b.rule,
            b.assumed,
            b.guessed,
            b.untracked,
            b.dnat,
        )
        && (a.mark, a.ct_mark, a.dport, a.redirected) == (b.mark, b.ct_mark, b.dport, b.redirected)
        && a.stack == b.stack
}

/// How a way ended.
#[derive(Clone, Debug)]
struct Leaf {
    sources: Option<Sources>,
    outcome: Outcome,
    assumed: Option<Decider>,
    guessed: bool,
}

/// What a rule did to a thread.
#[derive(Clone, Debug, PartialEq)]
enum Effect {
    Next,
    Verdict(Verdict),
    Redirect,
    /// A nat statement that keeps the destination: it ends the nat chain as an accept.
    NatAccept,
    Unknown(String),
}

enum Answer {
    Yes,
    No,
    /// True exactly for these clients.
    For(Sources),
    Unknown,
}

struct Walk<'a> {
    ruleset: &'a Ruleset,
    packet: &'a Packet,
    v: V,
    steps: Vec<Step>,
    /// Undecided tests followed both ways so far (a split of the clients is no guess and
    /// does not count).
    undecided: std::cell::Cell<usize>,
}

impl Walk<'_> {
    fn run(&self, sources: Option<Sources>) -> Vec<Leaf> {
        let start = Thread {
            step: 0,
            base: 0,
            chain: 0,
            rule: 0,
            stack: Vec::new(),
            sources,
            assumed: None,
            guessed: false,
            untracked: false,
            dnat: false,
            mark: Some(0),
            ct_mark: Some(0),
            dport: self.packet.dport,
            redirected: None,
        };
        let mut leaves = Vec::new();
        let mut work = Vec::new();
        self.enter_base(start, &mut work, &mut leaves);
        let mut steps = 0usize;

        while let Some(t) = work.pop() {
            steps += 1;
            if steps > MAX_STEPS || self.undecided.get() > MAX_BRANCHES {
                leaves.push(Leaf {
                    sources: t.sources.clone(),
                    outcome: Outcome {
                        fate: Fate::Unknown(format!(
                            "the ruleset has more branches than this judge follows ({MAX_BRANCHES} undecidable tests, {MAX_STEPS} rules)"
                        )),
                        by: None,
                    },
                    assumed: t.assumed,
                    guessed: t.guessed,
                });
                continue;
            }
            let chain = &self.ruleset.chains[t.chain];
            let Some(rule) = chain.rules.get(t.rule) else {
                self.chain_end(t, &mut work, &mut leaves);
                continue;
            };
            let here = Decider {
                chain: t.chain,
                rule: Some(t.rule),
            };
            let mut done = Vec::new();
            self.exprs(t, rule, 0, here, &mut done);
            for (t, effect) in merged(done) {
                self.after(t, effect, here, &mut work, &mut leaves);
            }
        }
        leaves
    }

    /// The thread is at `step`/`base`: starts that base chain, or moves on to the next
    /// hook, or, past the last, the connection reaches the socket.
    fn enter_base(&self, mut t: Thread, work: &mut Vec<Thread>, leaves: &mut Vec<Leaf>) {
        while let Some(step) = self.steps.get(t.step) {
            if let Some(&chain) = step.chains.get(t.base) {
                // Once a nat chain has mapped the connection, the nat chains after it on
                // that hook are not asked (the kernel's nat core stops at the first mapping).
                if t.dnat
                    && self.ruleset.chains[chain]
                        .base
                        .as_ref()
                        .is_some_and(|b| b.nat)
                {
                    t.base += 1;
                    continue;
                }
                t.chain = chain;
                t.rule = 0;
                t.stack.clear();
                work.push(t);
                return;
            }
            t.step += 1;
            t.base = 0;
        }
        let outcome = match t.redirected {
            Some(by) => Outcome {
                fate: Fate::Redirected,
                by: Some(by),
            },
            None => Outcome {
                fate: Fate::Open,
                by: None,
            },
        };
        leaves.push(Leaf {
            sources: t.sources,
            outcome,
            assumed: t.assumed,
            guessed: t.guessed,
        });
    }

    fn accept(&self, mut t: Thread, work: &mut Vec<Thread>, leaves: &mut Vec<Leaf>) {
        t.base += 1;
        self.enter_base(t, work, leaves);
    }

    fn end(t: Thread, fate: Fate, by: Decider, leaves: &mut Vec<Leaf>) {
        leaves.push(Leaf {
            sources: t.sources,
            outcome: Outcome { fate, by: Some(by) },
            assumed: t.assumed,
            guessed: t.guessed,
        });
    }

    /// Past a chain's last rule: back to the rule after the jump, or the base chain's policy.
    fn chain_end(&self, mut t: Thread, work: &mut Vec<Thread>, leaves: &mut Vec<Leaf>) {
        if let Some((chain, rule)) = t.stack.pop() {
            t.chain = chain;
            t.rule = rule;
            work.push(t);
            return;
        }
        let base_chain = self.steps[t.step].chains[t.base];
        let policy = Decider {
            chain: base_chain,
            rule: None,
        };
        match self.ruleset.chains[base_chain]
            .base
            .as_ref()
            .map(|b| b.policy)
        {
            Some(Policy::Drop) => Self::end(t, Fate::Dropped, policy, leaves),
            _ => self.accept(t, work, leaves),
        }
    }

    fn after(
        &self,
        mut t: Thread,
        effect: Effect,
        here: Decider,
        work: &mut Vec<Thread>,
        leaves: &mut Vec<Leaf>,
    ) {
        match effect {
            Effect::Next | Effect::Verdict(Verdict::Continue) => {
                t.rule += 1;
                work.push(t);
            }
            Effect::Verdict(Verdict::Accept) | Effect::NatAccept => self.accept(t, work, leaves),
            Effect::Verdict(Verdict::Drop) => Self::end(t, Fate::Dropped, here, leaves),
            Effect::Verdict(Verdict::Reject(how)) => {
                Self::end(t, Fate::Rejected(how), here, leaves)
            }
            Effect::Redirect => Self::end(t, Fate::Redirected, here, leaves),
            Effect::Unknown(why) => Self::end(t, Fate::Unknown(why), here, leaves),
            Effect::Verdict(Verdict::Return) => {
                t.rule = usize::MAX;
                self.chain_end(t, work, leaves);
            }
            Effect::Verdict(Verdict::Jump(target)) => {
                t.stack.push((t.chain, t.rule + 1));
                self.go_to(t, &target, here, work, leaves);
            }
            Effect::Verdict(Verdict::Goto(target)) => self.go_to(t, &target, here, work, leaves),
        }
    }

    /// On to the first rule of chain `target`, in the table of the chain the thread is in.
    fn go_to(
        &self,
        mut t: Thread,
        target: &str,
        here: Decider,
        work: &mut Vec<Thread>,
        leaves: &mut Vec<Leaf>,
    ) {
        let from = &self.ruleset.chains[t.chain];
        // iptables-nft and legacy tables of one name are different tables.
        let to = self
            .ruleset
            .chain(from.family, &from.table, target)
            .filter(|&c| self.ruleset.chains[c].origin == from.origin);
        let why = match to {
            None => format!("jumps to chain {target}, which the ruleset read does not hold"),
            Some(_) if t.stack.len() > MAX_DEPTH => {
                format!("jumps nest deeper than {MAX_DEPTH} chains")
            }
            Some(to) => {
                t.chain = to;
                t.rule = 0;
                return work.push(t);
            }
        };
        Self::end(t, Fate::Unknown(why), here, leaves);
    }

    /// The rule's expressions from `i` on; every way out is pushed to `out`.
    fn exprs(
        &self,
        mut t: Thread,
        rule: &Rule,
        i: usize,
        here: Decider,
        out: &mut Vec<(Thread, Effect)>,
    ) {
        // A rule with a test that fails for this packet whoever the client is goes no
        // further: checked first, so that its tests of the client's address split nothing
        // (most rules of a big ruleset are about other ports).
        if i == 0 && self.cannot_match(&t, rule) {
            out.push((t, Effect::Next));
            return;
        }
        let Some(expr) = rule.exprs.get(i) else {
            out.push((t, Effect::Next));
            return;
        };
        match expr {
            Expr::Match { key, test, negate } => {
                let answer = self.answer(&t, *key, test, *negate);
                self.branch(t, answer, rule, i, here, out, |t, out| {
                    out.push((t, Effect::Next))
                });
            }
            Expr::MatchConcat { keys, set, negate } => {
                let answer = self.concat(&t, keys, *set, *negate);
                self.branch(t, answer, rule, i, here, out, |t, out| {
                    out.push((t, Effect::Next))
                });
            }
            Expr::Undecided(_) => self.branch(t, Answer::Unknown, rule, i, here, out, |t, out| {
                out.push((t, Effect::Next))
            }),
            Expr::Verdict(v) => out.push((t, Effect::Verdict(v.clone()))),
            Expr::Vmap { key, entries } => self.vmap(t, *key, entries, rule, i, here, out),
            Expr::Nat { addr, port } => out.push(self.nat(t, *addr, *port, here)),
            Expr::SourceNat => out.push((t, Effect::NatAccept)),
            Expr::Notrack => {
                t.untracked = true;
                self.exprs(t, rule, i + 1, here, out);
            }
            Expr::SetMark { ct, value } => {
                if *ct {
                    t.ct_mark = *value;
                } else {
                    t.mark = *value;
                }
                self.exprs(t, rule, i + 1, here, out);
            }
            Expr::Decides(why) => out.push((t, Effect::Unknown(why.clone()))),
            Expr::Nothing => self.exprs(t, rule, i + 1, here, out),
        }
    }

    /// A destination NAT: to another host gunicorn never sees the connection, whatever
    /// happens next; to another port of this host it meets the rest of the walls as such.
    fn nat(
        &self,
        mut t: Thread,
        addr: Option<IpAddr>,
        port: Option<u16>,
        here: Decider,
    ) -> (Thread, Effect) {
        let addr_kept =
            addr.is_none_or(|a| a == self.packet.daddr || self.packet.local.contains(&a));
        if !addr_kept {
            return (t, Effect::Redirect);
        }
        t.dnat = true;
        if let Some(p) = port.filter(|&p| p != t.dport) {
            t.dport = p;
            t.redirected = Some(here);
        }
        (t, Effect::NatAccept)
    }

    /// Goes on with expression `i + 1` where the test holds and hands the thread to
    /// `otherwise` where it does not; an undecided test goes both ways, unless nothing
    /// after it in the rule can decide anything (a rate limit on a log rule).
    #[allow(clippy::too_many_arguments)]
    fn branch(
        &self,
        mut t: Thread,
        answer: Answer,
        rule: &Rule,
        i: usize,
        here: Decider,
        out: &mut Vec<(Thread, Effect)>,
        otherwise: impl Fn(Thread, &mut Vec<(Thread, Effect)>),
    ) {
        match answer {
            Answer::Yes => self.exprs(t, rule, i + 1, here, out),
            Answer::No => otherwise(t, out),
            Answer::For(set) => {
                let all = t.sources.take().unwrap_or_else(|| Sources::all(self.v));
                let (inside, outside) = all.split(&set);
                if !outside.is_empty() {
                    let mut o = t.clone();
                    o.sources = Some(outside);
                    otherwise(o, out);
                }
                if !inside.is_empty() {
                    t.sources = Some(inside);
                    self.exprs(t, rule, i + 1, here, out);
                }
            }
            Answer::Unknown => {
                let rest = &rule.exprs[i + 1..];
                if rest
                    .iter()
                    .all(|e| matches!(e, Expr::Nothing | Expr::Undecided(_)))
                {
                    return self.exprs(t, rule, i + 1, here, out);
                }
                t.assumed = t.assumed.or(Some(here));
                self.undecided.set(self.undecided.get() + 1);
                otherwise(t.clone(), out);
                t.guessed = true;
                self.exprs(t, rule, i + 1, here, out);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn vmap(
        &self,
        t: Thread,
        key: Key,
        entries: &[(Value, Verdict)],
        rule: &Rule,
        i: usize,
        here: Decider,
        out: &mut Vec<(Thread, Effect)>,
    ) {
        let Some(((value, verdict), rest)) = entries.split_first() else {
            // No element matched: the rule goes on.
            return self.exprs(t, rule, i + 1, here, out);
        };
        let answer = self.answer(&t, key, &Test::Eq(value.clone()), false);
        let verdict = verdict.clone();
        match answer {
            Answer::Yes => out.push((t, Effect::Verdict(verdict))),
            Answer::No => self.vmap(t, key, rest, rule, i, here, out),
            Answer::For(set) => {
                let mut t = t;
                let all = t.sources.take().unwrap_or_else(|| Sources::all(self.v));
                let (inside, outside) = all.split(&set);
                if !inside.is_empty() {
                    let mut a = t.clone();
                    a.sources = Some(inside);
                    out.push((a, Effect::Verdict(verdict)));
                }
                if !outside.is_empty() {
                    let mut b = t;
                    b.sources = Some(outside);
                    self.vmap(b, key, rest, rule, i, here, out);
                }
            }
            Answer::Unknown => {
                self.undecided.set(self.undecided.get() + 1);
                let mut a = t.clone();
                a.assumed = a.assumed.or(Some(here));
                a.guessed = true;
                out.push((a, Effect::Verdict(verdict)));
                let mut b = t;
                b.assumed = b.assumed.or(Some(here));
                self.vmap(b, key, rest, rule, i, here, out);
            }
        }
    }

    /// Whether a test of the rule, before anything in it changes the packet (a mark, a
    /// nat, a verdict), fails whoever the client is.
    fn cannot_match(&self, t: &Thread, rule: &Rule) -> bool {
        for expr in &rule.exprs {
            let answer = match expr {
                Expr::Match { key, test, negate } => self.answer(t, *key, test, *negate),
                Expr::MatchConcat { keys, set, negate } => self.concat(t, keys, *set, *negate),
                Expr::Nothing | Expr::Undecided(_) => continue,
                _ => return false,
            };
            if matches!(answer, Answer::No) {
                return true;
            }
        }
        false
    }

    /// Whether the packet's fields `keys`, together, are an element of `set`: element by
    /// element, each field compared with its part; a client address among them makes the
    /// answer the union of the clients of the elements whose other parts match.
    fn concat(&self, t: &Thread, keys: &[Key], set: usize, negate: bool) -> Answer {
        let fields: Vec<Field> = keys.iter().map(|&k| self.field(t, k)).collect();
        if fields.iter().any(|f| matches!(f, Field::Absent)) {
            return Answer::No;
        }
        let Some(elements) = self.ruleset.sets.get(set).map(|s| &s.elements) else {
            return Answer::Unknown;
        };
        let mut clients = Sources::none(self.v);
        let mut by_client = false;
        for element in elements {
            let Value::Concat(parts) = element else {
                return Answer::Unknown;
            };
            if parts.len() != fields.len() {
                return Answer::Unknown;
            }
            let mut holds = Some(true);
            let mut these = Sources::all(self.v);
            for (field, part) in fields.iter().zip(parts) {
                match field {
                    Field::Known(f) => match matches(f, part) {
                        Some(true) => {}
                        Some(false) => holds = Some(false),
                        None if holds != Some(false) => holds = None,
                        None => {}
                    },
                    Field::Source => {
                        by_client = true;
                        these = these.intersect(&self.matching_sources(&Test::Eq(part.clone())));
                    }
                    Field::Unknown if holds != Some(false) => holds = None,
                    Field::Unknown => {}
                    Field::Absent => holds = Some(false),
                }
            }
            match holds {
                Some(false) => {}
                None => return Answer::Unknown,
                Some(true) if by_client => clients = clients.union(&these),
                Some(true) => return if negate { Answer::No } else { Answer::Yes },
            }
        }
        if by_client {
            Answer::For(if negate {
                clients.complement()
            } else {
                clients
            })
        } else if negate {
            Answer::Yes
        } else {
            Answer::No
        }
    }

    /// Whether the packet passes `key test` (negated if asked).
    fn answer(&self, t: &Thread, key: Key, test: &Test, negate: bool) -> Answer {
        let field = match self.field(t, key) {
            Field::Absent => return Answer::No,
            Field::Unknown => return Answer::Unknown,
            Field::Source => {
                let set = self.matching_sources(test);
                return Answer::For(if negate { set.complement() } else { set });
            }
            Field::Known(f) => f,
        };
        let yes = match self.compare(&field, test) {
            Some(yes) => yes,
            None => return Answer::Unknown,
        };
        if yes != negate {
            Answer::Yes
        } else {
            Answer::No
        }
    }

    fn field(&self, t: &Thread, key: Key) -> Field {
        let p = self.packet;
        let step = &self.steps[t.step];
        let known = Field::Known;
        match key {
            Key::L4Proto(Some(v)) if v != self.v => Field::Absent,
            Key::L4Proto(_) => known(Value::Int(TCP.into())),
            Key::Never => Field::Absent,
            Key::ExtHeader => known(Value::Int(0)),
            Key::Unknown => Field::Unknown,
            Key::NfProto => known(Value::Int(if self.v == V::Four { 2 } else { 10 })),
            Key::EtherType => known(Value::Int(if self.v == V::Four { 0x0800 } else { 0x86dd })),
            Key::IifName => known(Value::Str(step.iif.clone().unwrap_or_default())),
            Key::OifName => known(Value::Str(step.oif.clone().unwrap_or_default())),
            Key::Saddr(v) | Key::Daddr(v) | Key::NetworkField(v) if v != self.v => Field::Absent,
            Key::Saddr(_) => match p.source {
                Some(ip) => known(Value::Addr(ip)),
                None => Field::Source,
            },
            Key::Daddr(_) => known(Value::Addr(p.daddr)),
            Key::NetworkField(_) => Field::Unknown,
            Key::Dport(Some(proto)) | Key::Sport(Some(proto)) | Key::ProtocolField(proto)
                if proto != TCP =>
            {
                Field::Absent
            }
            Key::Dport(_) => known(Value::Int(t.dport.into())),
            // The client's port is its own choice.
            Key::Sport(_) | Key::ProtocolField(_) => Field::Unknown,
            // A connection's first packet: SYN alone.
            Key::TcpFlags(mask) => known(Value::Int(u64::from(0x02 & mask))),
            // Before conntrack has seen the packet (a prerouting or output chain below its
            // priority, -200), it has no connection: its state reads as invalid, and the
            // connection's other fields stop the rule.
            Key::CtState if t.untracked => known(Value::Int(64)),
            Key::CtState if !self.tracked(t) => known(Value::Int(1)),
            Key::CtState => known(Value::Int(8)),
            Key::CtStatus | Key::CtDirection | Key::CtMark if !self.tracked(t) || t.untracked => {
                Field::Absent
            }
            Key::CtStatus => known(Value::Int(if t.dnat { 0x20 } else { 0 })),
            Key::CtDirection => known(Value::Int(0)),
            Key::Mark => t.mark.map_or(Field::Unknown, |m| known(Value::Int(m))),
            Key::CtMark => t.ct_mark.map_or(Field::Unknown, |m| known(Value::Int(m))),
            Key::FibDaddrType => known(Value::Str("local".into())),
            // A client on the link routes back out of the interface it came in on: the
            // reverse path exists (`oif missing` is false).
            Key::FibSaddrOif => known(Value::Int(1)),
            Key::PktType => known(Value::Str("host".into())),
        }
    }

    /// Whether conntrack has seen the packet where the thread is: past priority -200 on
    /// the hook where it first meets it (prerouting from elsewhere, output from the host).
    fn tracked(&self, t: &Thread) -> bool {
        let base = self.steps[t.step]
            .chains
            .get(t.base)
            .and_then(|&c| self.ruleset.chains[c].base.as_ref());
        match (&self.packet.path, base) {
            (Path::Remote { .. }, Some(b)) if b.hook == Hook::Prerouting => b.priority > CONNTRACK,
            (Path::Local, Some(b)) if b.hook == Hook::Output => b.priority > CONNTRACK,
            (_, Some(b)) => b.hook != Hook::Ingress,
            (_, None) => true,
        }
    }

    /// `field test`, or `None` when the comparison means nothing the model knows.
    fn compare(&self, field: &Value, test: &Test) -> Option<bool> {
        match test {
            Test::Eq(value) => matches(field, value),
            Test::In(set) => {
                let elements = &self.ruleset.sets.get(*set)?.elements;
                let mut unknown = false;
                for e in elements {
                    match matches(field, e) {
                        Some(true) => return Some(true),
                        Some(false) => {}
                        None => unknown = true,
                    }
                }
                if unknown { None } else { Some(false) }
            }
            Test::AnyBit(bits) => match field {
                Value::Int(n) => Some(n & bits != 0),
                _ => None,
            },
            Test::Lt(n) | Test::Gt(n) | Test::Le(n) | Test::Ge(n) => {
                let Value::Int(f) = field else { return None };
                Some(match test {
                    Test::Lt(_) => f < n,
                    Test::Gt(_) => f > n,
                    Test::Le(_) => f <= n,
                    _ => f >= n,
                })
            }
        }
    }

    /// The clients whose address passes `test`.
    fn matching_sources(&self, test: &Test) -> Sources {
        let none = Sources::none(self.v);
        let of = |value: &Value| match value {
            Value::Addr(a) => Sources::range(self.v, *a, *a),
            Value::Prefix(a, len) => Sources::prefix(self.v, *a, *len),
            Value::Range(a, b) => match (a.as_ref(), b.as_ref()) {
                (Value::Addr(a), Value::Addr(b)) => Sources::range(self.v, *a, *b),
                _ => Sources::none(self.v),
            },
            _ => Sources::none(self.v),
        };
        match test {
            Test::Eq(value) => of(value),
            Test::In(set) => self.ruleset.sets.get(*set).map_or(none.clone(), |s| {
                s.elements
                    .iter()
                    .fold(none.clone(), |acc, e| acc.union(&of(e)))
            }),
            _ => none,
        }
    }
}

enum Field {
    Known(Value),
    /// The client's address, not fixed: a test of it splits the clients.
    Source,
    /// A field of another protocol or family: every test of it fails.
    Absent,
    Unknown,
}

/// Whether the field's value is `value` (or lies in its prefix or range).
fn matches(field: &Value, value: &Value) -> Option<bool> {
    match (field, value) {
        (Value::Int(a), Value::Int(b)) => Some(a == b),
        (Value::Int(n), Value::Range(a, b)) => match (a.as_ref(), b.as_ref()) {
            (Value::Int(a), Value::Int(b)) => Some(a <= n && n <= b),
            _ => None,
        },
        (Value::Str(s), Value::Str(pattern)) => Some(match pattern.strip_suffix('*') {
            Some(prefix) => s.starts_with(prefix),
            None => s == pattern,
        }),
        (Value::Addr(a), Value::Addr(b)) => Some(a == b),
        (Value::Addr(a), Value::Prefix(p, len)) => {
            Some(Sources::prefix(V::of(*a), *p, *len).contains(*a))
        }
        (Value::Addr(a), Value::Range(x, y)) => match (x.as_ref(), y.as_ref()) {
            (Value::Addr(x), Value::Addr(y)) => {
                Some(Sources::range(V::of(*a), *x, *y).contains(*a))
            }
            _ => None,
        },
        _ => None,
    }
}

/// The ways' ends as one judgement: for each part of the client address space, the fate
/// all its ways agree on (or unknown, naming the undecided test they split at); then the
/// fate of most clients, and which clients get through when that is not all of them.
fn summarise(leaves: Vec<Leaf>, v: V) -> Judged {
    // No undecided test was taken: every client went one way only, so the ways' clients do
    // not overlap and each way's end is its clients' fate.
    if leaves
        .iter()
        .all(|l| l.assumed.is_none() && l.sources.is_some())
    {
        let mut parts: Vec<(Sources, Outcome)> = Vec::new();
        for leaf in leaves {
            let clients = leaf.sources.unwrap_or_else(|| Sources::none(v));
            match parts.iter_mut().find(|(_, o)| *o == leaf.outcome) {
                Some((s, _)) => *s = s.union(&clients),
                None => parts.push((clients, leaf.outcome)),
            }
        }
        return of_parts(parts, v);
    }
    // Where any way's clients begin or end: within two cuts, every client takes the same ways.
    let mut cuts: Vec<u128> = vec![0];
    for s in leaves.iter().filter_map(|l| l.sources.as_ref()) {
        for &(a, b) in s.ranges() {
            cuts.push(a);
            cuts.extend(b.checked_add(1).filter(|&n| n <= v.max()));
        }
    }
    cuts.sort_unstable();
    cuts.dedup();
    let mut parts: Vec<(Sources, Outcome)> = Vec::new();
    for (k, &start) in cuts.iter().enumerate() {
        let end = cuts.get(k + 1).map_or(v.max(), |next| next - 1);
        let here: Vec<&Leaf> = leaves
            .iter()
            .filter(|l| l.sources.as_ref().is_none_or(|s| s.contains_number(start)))
            .collect();
        let Some(outcome) = agreed(&here) else {
            continue;
        };
        let part = Sources::numbers(v, start, end);
        match parts.iter_mut().find(|(_, o)| *o == outcome) {
            Some((s, _)) => *s = s.union(&part),
            None => parts.push((part, outcome)),
        }
    }
    of_parts(parts, v)
}

/// The fate of most clients, and which get through when that is not all of them.
fn of_parts(parts: Vec<(Sources, Outcome)>, v: V) -> Judged {
    let open = parts
        .iter()
        .filter(|(_, o)| o.fate == Fate::Open)
        .fold(Sources::none(v), |all, (s, _)| all.union(s));
    let outcome = parts.iter().max_by_key(|(s, _)| s.size()).map_or(
        Outcome {
            fate: Fate::Open,
            by: None,
        },
        |(_, o)| o.clone(),
    );
    let depends = parts.len() > 1 && !open.is_empty();
    // Most clients get through: the few that do not are the news (a ban list).
    if outcome.fate == Fate::Open {
        return Judged {
            outcome,
            open_to: None,
            blocked_from: depends.then(|| open.complement()),
        };
    }
    Judged {
        outcome,
        open_to: depends.then_some(open),
        blocked_from: None,
    }
}

/// The outcome the ways agree on, or unknown, naming the undecided test they split at.
fn agreed(ways: &[&Leaf]) -> Option<Outcome> {
    let first = ways.first()?;
    if ways.iter().all(|l| l.outcome.fate == first.outcome.fate) {
        let sure = ways
            .iter()
            .find(|l| l.assumed.is_none())
            .or_else(|| ways.iter().find(|l| !l.guessed))
            .unwrap_or(first);
        return Some(sure.outcome.clone());
    }
    Some(Outcome {
        fate: Fate::Unknown(
            "its fate turns on a test that cannot be known before the connection is made".into(),
        ),
        by: ways.iter().find_map(|l| l.assumed),
    })
}

#[cfg(test)]
mod tests;
