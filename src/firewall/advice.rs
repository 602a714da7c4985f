//! What decided, shown as the firewall shows it, and how to open the port in the words of
//! whatever manages the rules: `ufw allow`, `firewall-cmd --add-port`, an `nft` or
//! `iptables` rule for the chain that decided.

use super::judge::Decider;
use super::ruleset::{Family, Origin, Policy, Ruleset};
use super::{Manager, Shown};

/// The rule (or policy) `d`, with its text: iptables-save's line, or the line of `nft -a
/// list chain` (`texts`: the listing of each chain that was asked for) that carries its
/// handle.
pub fn shown(ruleset: &Ruleset, d: Decider, texts: &[(usize, String)]) -> Shown {
    let chain = &ruleset.chains[d.chain];
    let listing = texts
        .iter()
        .find(|(c, _)| *c == d.chain)
        .map(|(_, t)| t.as_str())
        .unwrap_or("");
    let (handle, text) = match d.rule {
        Some(r) => {
            let rule = &chain.rules[r];
            let text = rule
                .text
                .clone()
                .or_else(|| rule.handle.and_then(|h| nft_line(listing, h)));
            (
                rule.handle,
                text.unwrap_or_else(|| "(the rule's text could not be read)".into()),
            )
        }
        None => (None, policy_words(ruleset, d.chain)),
    };
    Shown {
        origin: chain.origin,
        family: chain.family,
        table: chain.table.clone(),
        chain: chain.name.clone(),
        handle,
        number: d.rule.map(|r| r + 1),
        policy: d.rule.is_none(),
        text,
    }
}

/// The line of an `nft -a` listing with `# handle N`, without that comment.
fn nft_line(listing: &str, handle: u64) -> Option<String> {
    let mark = format!("# handle {handle}");
    listing
        .lines()
        .find(|l| {
            l.trim_end().ends_with(&mark)
                && !l.trim_start().starts_with("chain ")
                && !l.trim_start().starts_with("table ")
        })
        .map(|l| l.trim().trim_end_matches(&mark).trim_end().to_string())
}

fn policy_words(ruleset: &Ruleset, chain: usize) -> String {
    let c = &ruleset.chains[chain];
    let policy = match c.base.as_ref().map(|b| b.policy) {
        Some(Policy::Drop) => "drop",
        _ => "accept",
    };
    match c.origin {
        Origin::Nft => format!("policy {policy}"),
        _ => format!(":{} {}", c.name, policy.to_ascii_uppercase()),
    }
}

/// What manages the rules, judged from the ruleset as a whole.
pub fn manager(ruleset: &Ruleset) -> Option<Manager> {
    let chains = &ruleset.chains;
    if chains.iter().any(|c| c.table == "firewalld") {
        Some(Manager::Firewalld)
    } else if chains.iter().any(|c| is_ufw(&c.name)) {
        Some(Manager::Ufw)
    } else if chains.iter().any(|c| {
        c.origin != Origin::Nft
            && (!c.rules.is_empty() || c.base.as_ref().is_some_and(|b| b.policy == Policy::Drop))
    }) {
        Some(Manager::Iptables)
    } else if chains
        .iter()
        .any(|c| c.origin == Origin::Nft && c.base.is_some())
    {
        Some(Manager::Nftables)
    } else {
        None
    }
}

fn is_ufw(chain: &str) -> bool {
    chain.starts_with("ufw-") || chain.starts_with("ufw6-")
}

/// The command that opens `port` where `rule` closes it.
pub fn fix(rule: &Shown, port: u16, managed_by: Option<Manager>) -> String {
    let redirect = rule.text.contains("redirect")
        || rule.text.contains("dnat")
        || rule.text.contains("REDIRECT")
        || rule.text.contains("DNAT");
    if rule.table == "firewalld" {
        let zone = firewalld_zone(&rule.chain)
            .map(|z| format!(" --zone={z}"))
            .unwrap_or_default();
        return format!(
            "firewall-cmd{zone} --add-port={port}/tcp --permanent && firewall-cmd --reload"
        );
    }
    if is_ufw(&rule.chain)
        || (managed_by == Some(Manager::Ufw) && rule.origin != Origin::Nft && !redirect)
    {
        return format!("ufw allow {port}/tcp");
    }
    let (family, table, chain) = (rule.family.word(), &rule.table, &rule.chain);
    match rule.origin {
        Origin::Nft => match (redirect, rule.handle) {
            (true, Some(h)) => format!("nft delete rule {family} {table} {chain} handle {h}"),
            (false, Some(h)) => format!(
                "nft insert rule {family} {table} {chain} position {h} tcp dport {port} accept"
            ),
            _ => format!("nft add rule {family} {table} {chain} tcp dport {port} accept"),
        },
        Origin::IptablesNft | Origin::IptablesLegacy => {
            let tool = match (
                rule.family == Family::Ip6,
                rule.origin == Origin::IptablesLegacy,
            ) {
                (false, false) => "iptables",
                (true, false) => "ip6tables",
                (false, true) => "iptables-legacy",
                (true, true) => "ip6tables-legacy",
            };
            let t = if table == "filter" {
                String::new()
            } else {
                format!(" -t {table}")
            };
            match (redirect, rule.number, rule.policy) {
                (true, Some(n), false) => format!("{tool}{t} -D {chain} {n}"),
                (false, Some(n), false) => {
                    format!("{tool}{t} -I {chain} {n} -p tcp --dport {port} -j ACCEPT")
                }
                _ => format!("{tool}{t} -A {chain} -p tcp --dport {port} -j ACCEPT"),
            }
        }
    }
}

/// `filter_IN_public_allow` → `public`.
fn firewalld_zone(chain: &str) -> Option<&str> {
    let zone = chain.strip_prefix("filter_IN_")?;
    let zone = ["_allow", "_deny", "_log", "_pre", "_post"]
        .iter()
        .fold(zone, |z, s| z.strip_suffix(s).unwrap_or(z));
    (!zone.is_empty()).then_some(zone)
}

#[cfg(test)]
mod tests;
