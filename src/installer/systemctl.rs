//! The few things the installer asks the running systemd, through `systemctl` (its stable
//! interface; the D-Bus API would bring a dependency for the same answers).

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// `systemctl ARGS`: stdout on success, else a message with systemctl's own words.
fn systemctl(args: &[&str]) -> Result<String, String> {
    // A process group of its own: a terminal's Ctrl-C is the launcher's to act on (see
    // `interrupt`), and must not cut a restart short.
    let out = Command::new("systemctl")
        .args(args)
        .process_group(0)
        .output()
        .map_err(|e| {
            format!("cannot run systemctl: {e} (is this a systemd host? use --root DIR for a tree)")
        })?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let said = String::from_utf8_lossy(&out.stderr);
    Err(format!(
        "systemctl {} failed ({}): {}",
        args.join(" "),
        out.status,
        said.trim()
    ))
}

/// `enable --now`: started now and at every boot.
pub fn enable_now(unit: &str) -> Result<(), String> {
    systemctl(&["enable", "--now", unit]).map(drop)
}

/// `disable --now`: stopped, and no longer started at boot.
pub fn disable_now(unit: &str) -> Result<(), String> {
    systemctl(&["disable", "--now", unit]).map(drop)
}

/// `disable` alone: no longer started at boot, left running.
pub fn disable(unit: &str) -> Result<(), String> {
    systemctl(&["disable", unit]).map(drop)
}

pub fn stop(unit: &str) -> Result<(), String> {
    systemctl(&["stop", unit]).map(drop)
}

pub fn daemon_reload() -> Result<(), String> {
    systemctl(&["daemon-reload"]).map(drop)
}

/// Blocks until the start job finished: for Type=notify, until READY=1 or failure.
pub fn restart(unit: &str) -> Result<(), String> {
    systemctl(&["restart", unit]).map(drop)
}

/// `systemctl show -p A,B UNIT` as a map.
pub fn show(unit: &str, props: &[&str]) -> Result<HashMap<String, String>, String> {
    let text = systemctl(&["show", "-p", &props.join(","), unit])?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

pub fn active_state(unit: &str) -> String {
    show(unit, &["ActiveState"])
        .ok()
        .and_then(|m| m.get("ActiveState").cloned())
        .unwrap_or_else(|| "unknown".into())
}

/// Running (or starting, or reloading): a unit whose command change needs a restart.
pub fn is_running(unit: &str) -> bool {
    matches!(
        active_state(unit).as_str(),
        "active" | "activating" | "reloading"
    )
}

/// `is-enabled`: enabled in any way that starts it (enabled, static with a trigger, …).
pub fn is_enabled(unit: &str) -> bool {
    systemctl(&["is-enabled", unit])
        .map(|s| matches!(s.trim(), "enabled" | "enabled-runtime" | "linked" | "alias"))
        .unwrap_or(false)
}

/// The loaded, running instances of a template (`solvit@.service` → `solvit@a.service`, …).
pub fn running_instances(template: &str) -> Vec<String> {
    let Some((prefix, ty)) = template.split_once("@.") else {
        return Vec::new();
    };
    let pattern = format!("{prefix}@*.{ty}");
    systemctl(&[
        "list-units",
        "--plain",
        "--no-legend",
        "--state=active,activating,reloading",
        &pattern,
    ])
    .map(|s| {
        s.lines()
            .filter_map(|l| l.split_whitespace().next().map(String::from))
            .collect()
    })
    .unwrap_or_default()
}

/// The last lines the unit logged, for a failure report (empty if journalctl is missing).
pub fn journal_tail(unit: &str, lines: usize) -> Vec<String> {
    let out = Command::new("journalctl")
        .args([
            "-u",
            unit,
            "-n",
            &lines.to_string(),
            "-o",
            "cat",
            "--no-pager",
        ])
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(String::from)
            .collect(),
        _ => Vec::new(),
    }
}

/// What systemd knows about a failed unit, and its last log lines.
pub fn failure(unit: &str, what: &str) -> String {
    let props = show(
        unit,
        &["ActiveState", "Result", "ExecMainStatus", "StatusText"],
    )
    .unwrap_or_default();
    let get = |k: &str| props.get(k).cloned().unwrap_or_default();
    let mut msg = format!(
        "{unit}: {what}\n  state {}, result {}, exit status {}, status {:?}",
        get("ActiveState"),
        get("Result"),
        get("ExecMainStatus"),
        get("StatusText")
    );
    let log = journal_tail(unit, 12);
    if !log.is_empty() {
        msg.push_str("\n  last log lines:");
        for line in log {
            msg.push_str(&format!("\n    {line}"));
        }
    }
    msg
}
