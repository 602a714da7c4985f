//! `check`: `lsof -i :PORT` and `curl -I` in one command.
//!
//! Every listener on the port with its family, address, owners (pid,
//! command, user), the HTTP probe result per address, and the verdict,
//! computed by [`crate::verify`] exactly as `run` computes it before READY.
//! Exit codes: 0 all interfaces and reachable, 1 bound to a single address,
//! 3 nothing listening, 4 listening but an HTTP probe failed.

use crate::cli::CheckArgs;
use crate::verify::{self, Kind, Scope, Target, Verdict};
use serde_json::json;

pub fn run(args: &CheckArgs) -> i32 {
    let target = Target {
        port: args.port,
        path: args.path.clone(),
        probe_timeout: args.timeout,
    };
    let v = verify::verdict(&target, Scope::Host);
    if args.json {
        println!("{}", to_json(&v, &target));
    } else {
        print!("{}", table(&v, &target, use_colour()));
    }
    v.kind.exit_code()
}

fn family(l: &crate::sockets::Listener) -> &'static str {
    match (l.addr.is_ipv4(), l.v6_only) {
        (true, _) => "IPv4",
        (false, true) => "IPv6 (v6only)",
        (false, false) => "IPv6 (dual-stack)",
    }
}

fn verdict_word(kind: Kind) -> &'static str {
    match kind {
        Kind::Ok => "ok",
        Kind::SingleAddress => "single-address",
        Kind::Nothing => "nothing-listening",
        Kind::Foreign => "held-by-another-program",
        Kind::ProbeFailed => "http-probe-failed",
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
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Colour only for a person at a terminal, and never under NO_COLOR
/// (https://no-color.org: set to anything non-empty).
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

pub fn table(v: &Verdict, target: &Target, colour: bool) -> String {
    let mut rows = vec![
        vec!["FAMILY", "ADDRESS", "PID", "USER", "COMMAND"]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>(),
    ];
    for seen in &v.listeners {
        let addr = verify::endpoint(&seen.listener);
        if seen.owners.is_empty() {
            rows.push(vec![
                family(&seen.listener).into(),
                addr.clone(),
                "?".into(),
                "?".into(),
                "(owner not visible)".into(),
            ]);
        }
        for o in &seen.owners {
            rows.push(vec![
                family(&seen.listener).into(),
                addr.clone(),
                o.pid.to_string(),
                o.user(),
                o.command.clone(),
            ]);
        }
    }
    let mut out = String::new();
    if v.listeners.is_empty() {
        out.push_str(&format!("no TCP listener on port {}\n", target.port));
    } else {
        out.push_str(&aligned(&rows));
    }
    if !v.probes.is_empty() {
        out.push_str(&format!("\nHTTP GET {}\n", target.path));
        let rows: Vec<Vec<String>> = v
            .probes
            .iter()
            .map(|p| vec![p.addr.to_string(), p.outcome.to_string()])
            .collect();
        out.push_str(&aligned(&rows));
    }
    let word = paint(verdict_word(v.kind), v.kind == Kind::Ok, colour);
    out.push_str(&format!("\nverdict: {word} — {}\n", v.summary));
    out
}

pub fn to_json(v: &Verdict, target: &Target) -> serde_json::Value {
    json!({
        "port": target.port,
        "verdict": verdict_word(v.kind),
        "exit_code": v.kind.exit_code(),
        "summary": v.summary,
        "listeners": v.listeners.iter().map(|s| json!({
            "family": if s.listener.addr.is_ipv4() { "ipv4" } else { "ipv6" },
            "address": s.listener.addr.to_string(),
            "port": s.listener.port,
            "v6_only": s.listener.v6_only,
            "all_interfaces": s.listener.is_wildcard() && (s.listener.covers_ipv4()),
            "owners": s.owners.iter().map(|o| json!({"pid": o.pid, "command": o.command, "user": o.user()})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "probes": v.probes.iter().map(|p| json!({
            "address": p.addr.to_string(),
            "reachable": p.reachable(),
            "status": match p.outcome { crate::probe::Outcome::Status(s) => Some(s), _ => None },
            "result": p.outcome.to_string(),
        })).collect::<Vec<_>>(),
    })
}
