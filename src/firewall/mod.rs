//! The host firewall as another machine meets it: for each address of the host, whether a new
//! TCP connection to the port from elsewhere is let through, dropped, rejected or redirected,
//! and by which rule. A probe the host sends to its own address never crosses that wall (the
//! kernel routes it over loopback), so the ruleset is read and judged instead: nftables
//! through `nft -j list ruleset`, the tables iptables-nft writes through `iptables-nft-save`,
//! the legacy ones through `iptables-legacy-save`. What the judge cannot decide is said to be
//! unknown, naming the rule; a firewall that cannot be read is "not read", never "open".
//!
//! Rooms: [`tables`](crate::firewall::tables) which tables exist (asked over netlink first, so that a host without
//! a firewall costs nothing more); [`commands`](crate::firewall::commands) the tools run as children polled without
//! waiting; [`nft`](crate::firewall::nft) and [`iptables`](crate::firewall::iptables) their output read into one model ([`ruleset`](crate::firewall::ruleset));
//! [`judge`](crate::firewall::judge) the fate of a connection; [`sources`](crate::firewall::sources) client address sets; [`advice`](crate::firewall::advice) the fix
//! in the words of whatever manages the rules.

pub mod advice;
pub mod commands;
pub mod iptables;
pub mod judge;
pub mod nft;
pub mod nft_text;
pub mod ruleset;
pub mod sources;
pub mod tables;

use commands::{Commands, Output, find};
use judge::{Decider, Fate, Packet, Path};
use ruleset::{Family, Key, Origin, Ruleset};
use sources::{Prefix, V};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Whatever writes the rules, named so that a fix can be given in its words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Manager {
    Nftables,
    Ufw,
    Firewalld,
    Iptables,
}

impl Manager {
    pub fn word(self) -> &'static str {
        match self {
            Manager::Nftables => "nftables",
            Manager::Ufw => "ufw",
            Manager::Firewalld => "firewalld",
            Manager::Iptables => "iptables",
        }
    }
}

/// What to judge: the port, the host's addresses as another machine reaches them (each
/// with the interface it arrives on), the addresses the launcher probes from the host
/// itself, and optionally one client's address.
#[derive(Clone, Debug, Default)]
pub struct Question {
    pub port: u16,
    pub remote: Vec<(IpAddr, String)>,
    pub local: Vec<IpAddr>,
    pub from: Option<IpAddr>,
}

/// A rule as the firewall shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shown {
    pub origin: Origin,
    pub family: Family,
    pub table: String,
    pub chain: String,
    /// nft's handle; iptables rules have their number in the chain instead.
    pub handle: Option<u64>,
    pub number: Option<usize>,
    /// The chain's policy decided, not a rule.
    pub policy: bool,
    /// The rule's text as nft or iptables-save prints it (the chain's policy line for a policy).
    pub text: String,
}

impl Shown {
    /// One line: `inet filter input handle 3: iifname "eth0" tcp dport 8001 reject`.
    pub fn line(&self) -> String {
        let tool = match self.origin {
            Origin::Nft => "",
            Origin::IptablesNft => " (iptables-nft)",
            Origin::IptablesLegacy => " (iptables-legacy)",
        };
        let at = match (self.policy, self.handle, self.number) {
            (true, ..) => String::new(),
            (false, Some(h), _) => format!(" handle {h}"),
            (false, None, Some(n)) => format!(" rule {n}"),
            _ => String::new(),
        };
        format!(
            "{} {} {}{at}{tool}: {}",
            self.family.word(),
            self.table,
            self.chain,
            self.text
        )
    }
}

/// The judgement for one address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judgement {
    pub address: IpAddr,
    pub interface: String,
    pub fate: Fate,
    pub rule: Option<Shown>,
    /// When the fate depends on the client: the client prefixes that get through.
    pub open_to: Option<Vec<Prefix>>,
    /// When most clients get through but some do not: those (a ban list).
    pub blocked_from: Option<Vec<Prefix>>,
}

impl Judgement {
    pub fn blocks(&self) -> bool {
        self.fate.blocks() && self.open_to.is_none()
    }
}

/// The firewall's verdicts, or why it could not be read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub read: bool,
    pub why: Option<String>,
    pub managed_by: Option<Manager>,
    /// What the tools read: "nftables", "iptables-nft", "iptables-legacy".
    pub sources: Vec<&'static str>,
    /// Another machine's connection to each address.
    pub remote: Vec<Judgement>,
    /// The host's own connection to each probed address (it explains a failed probe).
    pub local: Vec<Judgement>,
    /// How to open the port, in the words of what decided (for blocked addresses).
    pub fix: Option<String>,
}

impl Report {
    fn not_read(why: String) -> Report {
        Report {
            read: false,
            why: Some(why),
            ..Report::default()
        }
    }

    /// Blocked from other machines on every address judged (and at least one).
    pub fn blocks_everywhere(&self) -> bool {
        !self.remote.is_empty() && self.remote.iter().all(Judgement::blocks)
    }

    /// The host's own probe of this address meets a wall.
    pub fn blocks_locally(&self, address: IpAddr) -> Option<&Judgement> {
        self.local
            .iter()
            .find(|j| j.address == address && j.fate.blocks())
    }
}

/// How long the tools may take together (10,000 rules take nft well under a second).
const TOOLS_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads and judges, waiting for nothing else (`check`).
pub fn report(question: &Question) -> Report {
    let mut reading = Reading::start(question.clone());
    crate::pollset::run_to_end(&mut reading);
    reading.report()
}

/// Reading and judging under way, in stages: the tools that list the rules; then, only
/// where nft's listing may hide a family test, the kernel's bytecode of those tables; then,
/// only when an nftables rule blocks, `nft -a list chain` for the text of what decided.
pub struct Reading {
    question: Question,
    stage: Stage,
    /// Every tool process started so far.
    pids: Vec<i32>,
}

enum Stage {
    Listing {
        commands: Commands,
        plan: Plan,
        tables: tables::Tables,
    },
    Details {
        commands: Commands,
        read: Read,
        details: Vec<nft::Detail>,
    },
    Naming {
        commands: Commands,
        judged: Judged,
        chains: Vec<usize>,
    },
    /// No table at all: judged as soon as the question is asked.
    Empty,
    Done(Report),
}

/// Which outputs of the listing stage are which.
struct Plan {
    nft: Option<usize>,
    ipt_nft: [Option<usize>; 2],
    legacy: [Option<usize>; 2],
}

/// The rules read, and from what.
pub struct Read {
    pub ruleset: Ruleset,
    pub sources: Vec<&'static str>,
    /// nft's JSON, kept to write the text of the rules that decide.
    pub nft_json: Vec<u8>,
}

/// Judgements made, before the rules that decided are named.
pub struct Judged {
    ruleset: Ruleset,
    sources: Vec<&'static str>,
    nft_json: Vec<u8>,
    remote: Vec<(IpAddr, String, judge::Judged)>,
    local: Vec<(IpAddr, judge::Judged)>,
}

impl Reading {
    pub fn start(question: Question) -> Reading {
        Reading::begin().ask(question)
    }

    /// Starts the tools before the addresses to judge are known, so that their time overlaps
    /// the caller's own look at the socket table; [`Reading::ask`] must follow before the
    /// reading is polled.
    pub fn begin() -> Reading {
        let question = Question::default();
        let tables = match tables::tables() {
            Ok(t) => t,
            Err(e) => {
                let why = if e.raw_os_error() == Some(nix::errno::Errno::EPERM as i32) {
                    "listing the firewall needs CAP_NET_ADMIN (run check as root)".to_string()
                } else {
                    format!("cannot list the firewall's tables: {e}")
                };
                return Reading::done_with(question, Report::not_read(why));
            }
        };
        if tables.is_empty() {
            return Reading {
                question,
                stage: Stage::Empty,
                pids: Vec::new(),
            };
        }
        // Tables that iptables-nft writes, and none else: their own listing says all
        // (nft's JSON would only hold them opaque), unless it finds a table nft made.
        let with_nft = !tables.nft.iter().all(tables::Table::iptables_like);
        Reading::listing(question, tables, with_nft)
    }

    /// Starts the tools that list what `tables` holds (nft's JSON only `with_nft`).
    fn listing(question: Question, tables: tables::Tables, with_nft: bool) -> Reading {
        let mut commands: Vec<(PathBuf, Vec<String>)> = Vec::new();
        let mut missing = Vec::new();
        let mut add = |program: &str, args: &[&str], wanted: bool| -> Option<usize> {
            if !wanted {
                return None;
            }
            match find(program) {
                Some(path) => {
                    commands.push((path, args.iter().map(|a| a.to_string()).collect()));
                    Some(commands.len() - 1)
                }
                None => {
                    missing.push(program.to_string());
                    None
                }
            }
        };
        let plan = Plan {
            nft: add(
                "nft",
                &["-j", "list", "ruleset"],
                with_nft && !tables.nft.is_empty(),
            ),
            // Started at once, beside nft: whether their tables hold what only they can
            // show is known from nft's output, and waiting for it would add their time.
            ipt_nft: [
                add("iptables-nft-save", &[], tables.iptables_nft("ip")),
                add("ip6tables-nft-save", &[], tables.iptables_nft("ip6")),
            ],
            legacy: [
                add("iptables-legacy-save", &[], !tables.legacy4.is_empty()),
                add("ip6tables-legacy-save", &[], !tables.legacy6.is_empty()),
            ],
        };
        let unread =
            |k: usize, family: &str| plan.ipt_nft[k].is_none() && tables.iptables_nft(family);
        if (with_nft && plan.nft.is_none() && !tables.nft.is_empty())
            || (!with_nft && (unread(0, "ip") || unread(1, "ip6")))
            || missing.iter().any(|m| m.contains("legacy"))
        {
            let why = format!(
                "the host has firewall tables but {} is not installed",
                missing.join(" and ")
            );
            return Reading::done_with(question, Report::not_read(why));
        }
        let commands = Commands::start(&commands, Instant::now() + TOOLS_TIMEOUT);
        Reading {
            question,
            pids: commands.pids(),
            stage: Stage::Listing {
                commands,
                plan,
                tables,
            },
        }
    }

    /// The addresses to judge (the tools started by [`Reading::begin`] need not know them).
    pub fn ask(mut self, question: Question) -> Reading {
        if let Stage::Empty = self.stage {
            let read = Read {
                ruleset: Ruleset::default(),
                sources: Vec::new(),
                nft_json: Vec::new(),
            };
            self.stage = Stage::Done(judge_all(&question, read).finish(&question, &[]));
        }
        self.question = question;
        self
    }

    fn done_with(question: Question, report: Report) -> Reading {
        Reading {
            question,
            stage: Stage::Done(report),
            pids: Vec::new(),
        }
    }

    /// The tool processes started so far (see [`Commands::pids`]).
    pub fn pids(&self) -> &[i32] {
        &self.pids
    }

    fn commands(&self) -> Option<&Commands> {
        match &self.stage {
            Stage::Listing { commands, .. }
            | Stage::Details { commands, .. }
            | Stage::Naming { commands, .. } => Some(commands),
            Stage::Empty | Stage::Done(_) => None,
        }
    }

    /// The listings that say what nft's JSON left out (see [`nft::Detail`]).
    fn details(&self, read: Read, details: Vec<nft::Detail>) -> Stage {
        let Some(nft) = find("nft") else {
            return self.judging(read);
        };
        let commands: Vec<(PathBuf, Vec<String>)> = details
            .iter()
            .map(|d| (nft.clone(), d.arguments()))
            .collect();
        Stage::Details {
            commands: Commands::start(&commands, Instant::now() + TOOLS_TIMEOUT),
            read,
            details,
        }
    }

    /// Judges; then asks nft for the text of the nftables rules that decided, if any did.
    fn judging(&self, read: Read) -> Stage {
        let mut judged = judge_all(&self.question, read);
        judged.write_texts();
        let chains = judged.nft_deciders();
        let Some(nft) = find("nft").filter(|_| !chains.is_empty()) else {
            return Stage::Done(judged.finish(&self.question, &[]));
        };
        let commands: Vec<(PathBuf, Vec<String>)> = chains
            .iter()
            .map(|&c| {
                let chain = &judged.ruleset.chains[c];
                let args = [
                    "-a",
                    "list",
                    "chain",
                    chain.family.word(),
                    &chain.table,
                    &chain.name,
                ];
                (nft.clone(), args.iter().map(|a| a.to_string()).collect())
            })
            .collect();
        Stage::Naming {
            commands: Commands::start(&commands, Instant::now() + TOOLS_TIMEOUT),
            judged,
            chains,
        }
    }

    pub fn report(self) -> Report {
        match self.stage {
            Stage::Done(report) => report,
            _ => Report::not_read("the firewall was not read to the end".into()),
        }
    }
}

impl crate::pollset::Pollable for Reading {
    fn done(&self) -> bool {
        matches!(self.stage, Stage::Empty | Stage::Done(_))
    }

    fn deadline(&self) -> Instant {
        self.commands()
            .map_or_else(Instant::now, Commands::deadline)
    }

    fn poll_fds(&self) -> Vec<nix::poll::PollFd<'_>> {
        self.commands().map(Commands::poll_fds).unwrap_or_default()
    }

    fn advance(&mut self, ready: &[nix::poll::PollFlags], now: Instant) {
        match &mut self.stage {
            Stage::Listing { commands, .. }
            | Stage::Details { commands, .. }
            | Stage::Naming { commands, .. } => commands.advance(ready, now),
            Stage::Empty | Stage::Done(_) => return,
        }
        if !self.commands().is_some_and(Commands::done) {
            return;
        }
        let stage = std::mem::replace(&mut self.stage, Stage::Done(Report::default()));
        self.stage = match stage {
            Stage::Listing {
                commands,
                plan,
                tables,
            } => match listed(commands.outputs(), &plan) {
                Ok(Listed::Read(read, details)) if details.is_empty() => self.judging(read),
                Ok(Listed::Read(read, details)) => self.details(read, details),
                // iptables-nft's own listing found a table nft made: nft's JSON after all.
                Ok(Listed::NeedNft) => {
                    let question = self.question.clone();
                    let again = Reading::listing(question, tables, true);
                    self.pids.extend(again.pids.iter().copied());
                    again.stage
                }
                Err(why) => Stage::Done(Report::not_read(why)),
            },
            Stage::Details {
                commands,
                mut read,
                details,
            } => {
                for (detail, out) in details.iter().zip(commands.outputs()) {
                    detail.patch(&mut read.ruleset, &String::from_utf8_lossy(&out.stdout));
                }
                self.judging(read)
            }
            Stage::Naming {
                commands,
                judged,
                chains,
            } => {
                let texts: Vec<(usize, String)> = chains
                    .into_iter()
                    .zip(commands.outputs())
                    .map(|(c, o)| (c, String::from_utf8_lossy(&o.stdout).into_owned()))
                    .collect();
                Stage::Done(judged.finish(&self.question, &texts))
            }
            done @ (Stage::Empty | Stage::Done(_)) => done,
        };
        if let Some(c) = self.commands() {
            let pids = c.pids();
            self.pids.extend(pids);
        }
    }
}

/// The listing stage's outputs as one ruleset; what nft's JSON left out.
/// What the listing stage found.
enum Listed {
    Read(Read, Vec<nft::Detail>),
    /// iptables-nft-save was asked alone and met a table nft made (it says the table is
    /// "incompatible" and lists it empty): nft's JSON is needed.
    NeedNft,
}

fn listed(outputs: Vec<Output>, plan: &Plan) -> Result<Listed, String> {
    let output = |i: Option<usize>| i.and_then(|i| outputs.get(i));
    let incompatible = plan
        .ipt_nft
        .iter()
        .filter_map(|&i| output(i))
        .any(|o| String::from_utf8_lossy(&o.stdout).contains("incompatible"));
    if plan.nft.is_none() && incompatible {
        return Ok(Listed::NeedNft);
    }
    if let Some(out) = output(plan.nft).filter(|o| o.stdout.is_empty()) {
        return Err(format!("nft -j list ruleset: {}", out.complaint()));
    }
    for out in plan.legacy.iter().filter_map(|&i| output(i)) {
        if out.stdout.is_empty() && out.failed.is_some() {
            return Err(format!(
                "legacy iptables tables could not be read: {}",
                out.complaint()
            ));
        }
    }
    let text = |i: Option<usize>| output(i).map(|o| o.stdout.as_slice());
    assemble(Listings {
        nft: text(plan.nft),
        iptables_nft: plan.ipt_nft.map(text),
        legacy: plan.legacy.map(text),
    })
    .map(|(read, details)| Listed::Read(read, details))
    .map_err(|e| format!("nft -j list ruleset: nft's output could not be read: {e}"))
}

/// What the tools printed: nft's JSON, `iptables-nft-save` and `ip6tables-nft-save`,
/// `iptables-legacy-save` and `ip6tables-legacy-save` (IPv4 first).
#[derive(Clone, Copy, Default)]
pub struct Listings<'a> {
    pub nft: Option<&'a [u8]>,
    pub iptables_nft: [Option<&'a [u8]>; 2],
    pub legacy: [Option<&'a [u8]>; 2],
}

/// The listings as one ruleset: nft's tables, those written by iptables-nft read from its
/// own listing instead (nft's JSON leaves their matches opaque), and the legacy tables;
/// with what nft's JSON left out, to be asked for next.
pub fn assemble(listings: Listings<'_>) -> Result<(Read, Vec<nft::Detail>), String> {
    let mut ruleset = Ruleset::default();
    let mut sources = Vec::new();
    let mut details = Vec::new();
    if let Some(json) = listings.nft {
        let mut parsed = nft::parse(json)?;
        sources.push("nftables");
        details = std::mem::take(&mut parsed.details);
        let mut replaced = Vec::new();
        for (k, v) in [V::Four, V::Six].into_iter().enumerate() {
            let Some((saved, family, names)) = opaque_tables(&listings, &parsed, k, v) else {
                continue;
            };
            ruleset.extend(saved);
            replaced.extend(names.into_iter().map(|n| (family, n)));
            add_source(&mut sources, "iptables-nft");
        }
        let mut kept = parsed.ruleset;
        kept.chains.retain(|c| {
            !replaced
                .iter()
                .any(|(f, n)| *f == c.family && *n == c.table)
        });
        ruleset.extend(kept);
    } else {
        // iptables-nft's tables alone: its own listing says everything.
        for (k, v) in [V::Four, V::Six].into_iter().enumerate() {
            if let Some(save) = listings.iptables_nft[k].filter(|o| !o.is_empty()) {
                let text = String::from_utf8_lossy(save);
                ruleset.extend(iptables::parse(&text, v, Origin::IptablesNft, None));
                add_source(&mut sources, "iptables-nft");
            }
        }
    }
    for (k, v) in [V::Four, V::Six].into_iter().enumerate() {
        if let Some(save) = listings.legacy[k] {
            let text = String::from_utf8_lossy(save);
            ruleset.extend(iptables::parse(&text, v, Origin::IptablesLegacy, None));
            add_source(&mut sources, "iptables-legacy");
        }
    }
    let nft_json = listings.nft.map(<[u8]>::to_vec).unwrap_or_default();
    Ok((
        Read {
            ruleset,
            sources,
            nft_json,
        },
        details,
    ))
}

fn add_source(sources: &mut Vec<&'static str>, source: &'static str) {
    if !sources.contains(&source) {
        sources.push(source);
    }
}

/// The tables of family `v` that nft's JSON cannot show (iptables-nft's compat
/// expressions), read from `iptables-nft-save` instead, their chains in nft's order: the
/// ruleset, the family and the tables' names.
fn opaque_tables(
    listings: &Listings<'_>,
    parsed: &nft::Parsed,
    k: usize,
    v: V,
) -> Option<(Ruleset, Family, Vec<String>)> {
    let family = if v == V::Four {
        Family::Ip
    } else {
        Family::Ip6
    };
    let names: Vec<String> = parsed
        .opaque
        .iter()
        .filter(|(f, _)| *f == family)
        .map(|(_, n)| n.clone())
        .collect();
    let save = listings.iptables_nft[k].filter(|o| !o.is_empty() && !names.is_empty())?;
    let mut saved = iptables::parse(
        &String::from_utf8_lossy(save),
        v,
        Origin::IptablesNft,
        Some(&names),
    );
    // They run in the order nft lists their chains (registration order).
    for chain in &mut saved.chains {
        if let (Some(base), Some(i)) = (
            chain.base.as_mut(),
            parsed.ruleset.chain(family, &chain.table, &chain.name),
        ) {
            base.order = parsed.ruleset.chains[i]
                .base
                .as_ref()
                .map_or(0, |b| b.order);
        }
    }
    Some((saved, family, names))
}

/// Every address judged, from elsewhere and from the host itself.
pub fn judge_all(question: &Question, read: Read) -> Judged {
    let Read {
        ruleset,
        sources,
        nft_json,
    } = read;
    let local_addresses: Vec<IpAddr> = question
        .remote
        .iter()
        .map(|(a, _)| *a)
        .chain(question.local.iter().copied())
        .collect();
    let remote = judge_remote(question, &ruleset, &local_addresses);
    let local = question
        .local
        .iter()
        .map(|&address| {
            let packet = Packet {
                daddr: address,
                dport: question.port,
                path: Path::Local,
                source: Some(address),
                local: local_addresses.clone(),
            };
            (address, judge::judge(&ruleset, &packet))
        })
        .collect();
    Judged {
        ruleset,
        sources,
        nft_json,
        remote,
        local,
    }
}

/// Each address as another machine (`question.from`, or any) reaches it through its
/// interface. When no rule looks at the destination address, one judgement serves every
/// address of an interface and family.
fn judge_remote(
    question: &Question,
    ruleset: &Ruleset,
    local_addresses: &[IpAddr],
) -> Vec<(IpAddr, String, judge::Judged)> {
    let by_address = uses_daddr(ruleset);
    let mut seen: Vec<((String, V), judge::Judged)> = Vec::new();
    let mut remote = Vec::new();
    for (address, interface) in &question.remote {
        let v = V::of(*address);
        let from = question.from.filter(|f| V::of(*f) == v);
        if question.from.is_some() && from.is_none() {
            // A client of the other family cannot reach this address.
            continue;
        }
        let key = (interface.clone(), v);
        let cached = (!by_address)
            .then(|| seen.iter().find(|(k, _)| *k == key).map(|(_, j)| j.clone()))
            .flatten();
        let judged = cached.unwrap_or_else(|| {
            let packet = Packet {
                daddr: *address,
                dport: question.port,
                path: Path::Remote {
                    iif: interface.clone(),
                },
                source: from,
                local: local_addresses.to_vec(),
            };
            let j = judge::judge(ruleset, &packet);
            seen.push((key, j.clone()));
            j
        });
        remote.push((*address, interface.clone(), judged));
    }
    remote
}

fn uses_daddr(ruleset: &Ruleset) -> bool {
    ruleset
        .chains
        .iter()
        .flat_map(|c| &c.rules)
        .flat_map(|r| &r.exprs)
        .any(|e| {
            matches!(
                e,
                ruleset::Expr::Match {
                    key: Key::Daddr(_),
                    ..
                } | ruleset::Expr::Vmap {
                    key: Key::Daddr(_),
                    ..
                } | ruleset::Expr::Nat { addr: Some(_), .. }
            )
        })
}

impl Judged {
    /// The nftables chains whose rules or policies decided a wall (their text is read next).
    /// The nftables rules that decided a wall, as (chain, rule).
    fn nft_rules_deciding(&self) -> Vec<(usize, usize)> {
        let mut rules: Vec<(usize, usize)> = self
            .all()
            .filter(|j| j.outcome.fate != Fate::Open)
            .filter_map(|j| j.outcome.by)
            .filter_map(|d| Some((d.chain, d.rule?)))
            .filter(|&(c, _)| self.ruleset.chains[c].origin == Origin::Nft)
            .collect();
        rules.sort_unstable();
        rules.dedup();
        rules
    }

    /// Writes the text of each nftables rule that decided, from nft's JSON (see
    /// [`nft_text`]), into the model.
    fn write_texts(&mut self) {
        let deciding = self.nft_rules_deciding();
        let wanted: Vec<(Family, String, String, u64)> = deciding
            .iter()
            .filter_map(|&(c, r)| {
                let chain = &self.ruleset.chains[c];
                Some((
                    chain.family,
                    chain.table.clone(),
                    chain.name.clone(),
                    chain.rules[r].handle?,
                ))
            })
            .collect();
        if wanted.is_empty() {
            return;
        }
        let texts = nft::rule_texts(&self.nft_json, &wanted);
        for (&(c, r), text) in deciding.iter().zip(texts) {
            if let Some(text) = text {
                self.ruleset.chains[c].rules[r].text = Some(text);
            }
        }
    }

    /// The chains whose deciding rules still have no text: `nft -a list chain` is asked.
    fn nft_deciders(&self) -> Vec<usize> {
        let mut chains: Vec<usize> = self
            .nft_rules_deciding()
            .into_iter()
            .filter(|&(c, r)| self.ruleset.chains[c].rules[r].text.is_none())
            .map(|(c, _)| c)
            .collect();
        chains.dedup();
        chains
    }

    fn all(&self) -> impl Iterator<Item = &judge::Judged> {
        self.remote
            .iter()
            .map(|(_, _, j)| j)
            .chain(self.local.iter().map(|(_, j)| j))
    }

    pub fn finish(self, question: &Question, texts: &[(usize, String)]) -> Report {
        let shown = |by: Option<Decider>| by.map(|d| advice::shown(&self.ruleset, d, texts));
        let judgement = |address: IpAddr, interface: String, j: &judge::Judged| Judgement {
            address,
            interface,
            fate: j.outcome.fate.clone(),
            rule: if j.outcome.fate == Fate::Open {
                None
            } else {
                shown(j.outcome.by)
            },
            open_to: j.open_to.as_ref().map(|s| s.prefixes()),
            blocked_from: j.blocked_from.as_ref().map(|s| s.prefixes()),
        };
        let remote: Vec<Judgement> = self
            .remote
            .iter()
            .map(|(a, i, j)| judgement(*a, i.clone(), j))
            .collect();
        let local: Vec<Judgement> = self
            .local
            .iter()
            .map(|(a, j)| judgement(*a, "lo".into(), j))
            .collect();
        let managed_by = advice::manager(&self.ruleset);
        let fix = remote
            .iter()
            .chain(&local)
            .filter(|j| j.fate.blocks())
            .find_map(|j| j.rule.as_ref())
            .map(|rule| advice::fix(rule, question.port, managed_by));
        Report {
            read: true,
            why: None,
            managed_by,
            sources: self.sources,
            remote,
            local,
            fix,
        }
    }
}
