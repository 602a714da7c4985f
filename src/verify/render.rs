//! The verdict shown: a table for people (listeners with their owners, each probe's
//! answer, the verdict, in colour at a terminal) and one JSON object for programs, the same
//! for `check`, `status` and `install`.

use super::{Kind, Target, Verdict};
use crate::process::owners::Owner;
use serde_json::json;

fn family(l: &crate::sockets::Listener) -> &'static str {
    match (l.addr.is_ipv4(), l.v6_only) {
        (true, _) => "IPv4",
        (false, true) => "IPv6 (v6only)",
        (false, false) => "IPv6 (dual-stack)",
    }
}

/// Columns padded to the widest cell, so the table reads like `lsof`'s.
pub fn aligned(rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..rows.first().map_or(0, Vec::len))
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| {
                format!(
                    "{cell}{}",
                    " ".repeat(w.saturating_sub(cell.chars().count()))
                )
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Colour only for a person at a terminal, and never under NO_COLOR
/// (<https://no-color.org>: set to anything non-empty).
pub fn use_colour() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Green for good news, bold red for bad, plain when not colouring.
pub fn paint(text: &str, good: bool, colour: bool) -> String {
    match (colour, good) {
        (false, _) => text.to_string(),
        (true, true) => format!("\x1b[32m{text}\x1b[0m"),
        (true, false) => format!("\x1b[1;31m{text}\x1b[0m"),
    }
}

/// A listener's owners as rows of (pid, user, command): each process that
/// holds it while its parent does not (a master), with the holders below it
/// counted (`+ 2 workers`).
pub fn owner_groups(owners: &[Owner]) -> Vec<(String, String, String)> {
    let pids: Vec<i32> = owners.iter().map(|o| o.pid).collect();
    let is_below = |p: i32, head: i32| {
        let mut up = p;
        while let Some(pp) = crate::process::procfs::ppid(up).filter(|&pp| pp > 1) {
            if pp == head {
                return true;
            }
            up = pp;
        }
        false
    };
    let heads: Vec<&Owner> = owners
        .iter()
        .filter(|o| !pids.iter().any(|&p| p != o.pid && is_below(o.pid, p)))
        .collect();
    heads
        .into_iter()
        .map(|head| {
            let below = pids
                .iter()
                .filter(|&&p| p != head.pid && is_below(p, head.pid))
                .count();
            let kind = if super::runs_gunicorn(&head.command) {
                ("worker", "workers")
            } else {
                ("process under it", "processes under it")
            };
            let command = match below {
                0 => head.command.clone(),
                1 => format!("{} + 1 {}", head.command, kind.0),
                n => format!("{} + {n} {}", head.command, kind.1),
            };
            (head.pid.to_string(), head.user(), command)
        })
        .collect()
}

pub fn table(v: &Verdict, target: &Target, colour: bool, verbose: bool) -> String {
    let mut out = String::new();
    if v.listeners.is_empty() {
        out.push_str(&format!("no TCP listener on port {}\n", target.port));
    } else {
        out.push_str(&listeners_table(v, verbose));
    }
    if !v.probes.is_empty() {
        out.push_str(&format!("\nHTTP GET {}\n", target.path));
        out.push_str(&probes_table(v, !target.host_names.is_empty()));
    }
    for (addr, why) in &v.skipped {
        out.push_str(&format!("not probed: {} — {why}\n", addr.ip()));
    }
    if let Some(fw) = &v.firewall {
        out.push_str(&firewall_table(fw, colour));
    }
    let word = paint(v.kind.word(), v.kind == Kind::Ok, colour);
    out.push_str(&format!("\nverdict: {word} — {}\n", v.summary));
    out
}

/// Each listener with its owners: a master and its workers on one row, or (`verbose`) a
/// row per process.
fn listeners_table(v: &Verdict, verbose: bool) -> String {
    let mut rows = vec![
        ["FAMILY", "ADDRESS", "PID", "USER", "COMMAND"]
            .map(String::from)
            .to_vec(),
    ];
    for seen in &v.listeners {
        let addr = super::endpoint(&seen.listener);
        let fam = family(&seen.listener).to_string();
        if seen.owners.is_empty() {
            rows.push(vec![
                fam.clone(),
                addr.clone(),
                "?".into(),
                "?".into(),
                "(owner not visible)".into(),
            ]);
        }
        let owners: Vec<(String, String, String)> = if verbose {
            seen.owners
                .iter()
                .map(|o| (o.pid.to_string(), o.user(), o.command.clone()))
                .collect()
        } else {
            owner_groups(&seen.owners)
        };
        for (pid, user, command) in owners {
            rows.push(vec![fam.clone(), addr.clone(), pid, user, command]);
        }
    }
    aligned(&rows)
}

/// Each probe with the Host it sent and its answer (a 400 said for what it means).
fn probes_table(v: &Verdict, names: bool) -> String {
    let mut rows = vec![["ADDRESS", "HOST", "ANSWER"].map(String::from).to_vec()];
    for (p, &counted) in v.probes.iter().zip(&v.counted) {
        let note = match p.outcome {
            crate::probe::Outcome::Status(400) if counted => "  (a rejected Host)",
            crate::probe::Outcome::Status(400) if names && !p.addr.ip().is_loopback() => {
                "  (not counted: only the --host-name answers count)"
            }
            _ => "",
        };
        rows.push(vec![
            p.addr.to_string(),
            p.host.clone(),
            format!("{}{note}", p.outcome),
        ]);
    }
    aligned(&rows)
}

/// The firewall's part of the table: each address as another machine meets it.
fn firewall_table(fw: &crate::firewall::Report, colour: bool) -> String {
    if !fw.read {
        return format!(
            "\nfirewall: not read — {}\n",
            fw.why.as_deref().unwrap_or("unknown reason")
        );
    }
    let mut out = match fw.managed_by {
        Some(m) => format!(
            "\nFIREWALL (managed by {}; read from {})\n",
            m.word(),
            fw.sources.join(", ")
        ),
        None if fw.sources.is_empty() => {
            "\nFIREWALL (no packet-filter table on this host)\n".to_string()
        }
        None => format!("\nFIREWALL (read from {})\n", fw.sources.join(", ")),
    };
    let mut rows = vec![
        ["ADDRESS", "INTERFACE", "FROM OTHER MACHINES", "RULE"]
            .map(String::from)
            .to_vec(),
    ];
    for j in &fw.remote {
        let fate = format!("{}{}", fate_words(&j.fate), super::clients(j));
        let good = !j.fate.blocks() && !matches!(j.fate, crate::firewall::judge::Fate::Unknown(_));
        rows.push(vec![
            j.address.to_string(),
            j.interface.clone(),
            paint(&fate, good, colour),
            j.rule.as_ref().map_or("-".into(), |r| r.line()),
        ]);
    }
    out.push_str(&aligned(&rows));
    for j in fw.local.iter().filter(|j| j.fate.blocks()) {
        out.push_str(&format!(
            "from this host: {}\n",
            super::describe_judgement(j)
        ));
    }
    if let Some(fix) = &fw.fix {
        out.push_str(&format!("to open it: {fix}\n"));
    }
    out
}

fn fate_words(fate: &crate::firewall::judge::Fate) -> String {
    use crate::firewall::judge::Fate;
    match fate {
        Fate::Open => "open".into(),
        Fate::Dropped => "dropped".into(),
        Fate::Rejected(how) => format!("rejected ({how})"),
        Fate::Redirected => "redirected".into(),
        Fate::Unknown(why) => format!("unknown ({why})"),
    }
}

/// The firewall's object in `--json`.
fn firewall_json(fw: &crate::firewall::Report) -> serde_json::Value {
    use crate::firewall::judge::Fate;
    let verdict = |j: &crate::firewall::Judgement| {
        let (word, detail) = match &j.fate {
            Fate::Open => ("open", None),
            Fate::Dropped => ("dropped", None),
            Fate::Rejected(how) => ("rejected", Some(how.clone())),
            Fate::Redirected => ("redirected", None),
            Fate::Unknown(why) => ("unknown", Some(why.clone())),
        };
        json!({
            "address": j.address.to_string(),
            "interface": j.interface,
            "family": if j.address.is_ipv4() { "ipv4" } else { "ipv6" },
            "verdict": word,
            "detail": detail,
            "rule": j.rule.as_ref().map(|r| r.line()),
            "open_to": j.open_to.as_ref().map(|p| p.iter().map(ToString::to_string).collect::<Vec<_>>()),
            "blocked_from": j.blocked_from.as_ref().map(|p| p.iter().map(ToString::to_string).collect::<Vec<_>>()),
        })
    };
    json!({
        "read": fw.read,
        "why": fw.why,
        "managed_by": fw.managed_by.map(|m| m.word()),
        "read_from": fw.sources,
        "verdicts": fw.remote.iter().map(verdict).collect::<Vec<_>>(),
        "from_this_host": fw.local.iter().map(verdict).collect::<Vec<_>>(),
        "fix": fw.fix,
    })
}

pub fn to_json(v: &Verdict, target: &Target) -> serde_json::Value {
    json!({
        "port": target.port,
        "verdict": v.kind.word(),
        "exit_code": v.kind.exit_code(),
        "summary": v.summary,
        "host_names": target.host_names,
        "listeners": v.listeners.iter().map(|s| json!({
            "family": if s.listener.addr.is_ipv4() { "ipv4" } else { "ipv6" },
            "address": s.listener.addr.to_string(),
            "port": s.listener.port,
            "v6_only": s.listener.v6_only,
            "all_interfaces": s.listener.is_wildcard() && (s.listener.covers_ipv4()),
            "owners": s.owners.iter().map(|o| json!({"pid": o.pid, "command": o.command, "user": o.user()})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "probes": v.probes.iter().zip(&v.counted).map(|(p, counted)| json!({
            "address": p.addr.to_string(),
            "host": p.host,
            "reachable": p.reachable(),
            "status": match p.outcome { crate::probe::Outcome::Status(s) => Some(s), _ => None },
            "result": p.outcome.to_string(),
            "counted": counted,
        })).collect::<Vec<_>>(),
        "not_probed": v.skipped.iter().map(|(a, why)| json!({
            "address": a.ip().to_string(),
            "reason": why,
        })).collect::<Vec<_>>(),
        "firewall": v.firewall.as_deref().map(firewall_json),
    })
}
