//! `install`, `uninstall` and `status`: swapping the launcher into existing units without
//! editing them, and proving the result.
//!
//! `install` writes one drop-in per unit ([`plan`] decides its text from the unit files
//! alone), then daemon-reload, restart, and the one verdict of [`crate::verify`]; on any
//! failure it puts back exactly the files that were there, reloads, restarts, and says what
//! failed. `--root DIR` works on a tree (an image, a chroot) with no systemd to ask.
//!
//! - [`plan`]: discovery and the drop-in (pure).
//! - [`files`]: symlink-safe atomic writes, each with its undo.
//! - [`systemctl`]: the questions asked of the running systemd.
//! - [`report`]: human lines or one JSON object.

pub mod files;
pub mod gunicorn_unit;
pub mod plan;
pub mod report;
pub mod systemctl;

use crate::cli::{InstallArgs, StatusArgs, UninstallArgs};
use crate::exit;
use crate::verify::{self, Scope, Target};
use plan::{DROPIN, Plan, Refusal, Wrap};
use report::Report;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a restarted unit may take to be active and verified after `systemctl restart`
/// returned (for Type=notify it returns after READY=1, so this is a margin, not a wait).
const SETTLE: Duration = Duration::from_secs(15);

fn probe_target(port: u16) -> Target {
    Target {
        port,
        path: "/".into(),
        probe_timeout: Duration::from_secs(2),
        host_names: Vec::new(),
    }
}

/// Live mode needs a running systemd (sd_booted(): `/run/systemd/system` exists); without
/// one, writing into this host's /etc would change units that no one reloads or verifies.
fn require_systemd(root: &Option<PathBuf>) -> Result<(), Refusal> {
    if root.is_some() || Path::new("/run/systemd/system").is_dir() {
        return Ok(());
    }
    Err(Refusal {
        code: exit::USAGE,
        message: "systemd is not running on this host (no /run/systemd/system): nothing can be \
                  reloaded or verified here; to prepare a tree of unit files, use --root DIR"
            .into(),
    })
}

fn root_of(root: &Option<PathBuf>) -> PathBuf {
    root.clone().unwrap_or_else(|| PathBuf::from("/"))
}

// ---------------------------------------------------------------------------------------------
// install
// ---------------------------------------------------------------------------------------------

pub fn install(args: &InstallArgs) -> i32 {
    let mut report = Report::new("install", args.json);
    let code = install_steps(args, &mut report).unwrap_or_else(|refusal| {
        report.error(&refusal.message);
        refusal.code
    });
    report.finish(code)
}

fn install_steps(args: &InstallArgs, report: &mut Report) -> Result<i32, Refusal> {
    require_systemd(&args.root)?;
    let root = root_of(&args.root);
    let live = args.root.is_none();
    let launcher = launcher_path(args.launcher.as_deref(), live)?;
    let plan = plan::plan_install(&root, &args.units, &launcher)?;
    refuse_socket_holders(&root, &plan, live)?;
    show_plan(&root, &plan, args.dry_run, report);

    let changes: Vec<&Wrap> = plan.wraps.iter().filter(|w| !w.unchanged()).collect();
    if plan.wraps.is_empty() {
        report.say("no unit runs gunicorn: nothing to do");
        return Ok(0);
    }
    if changes.is_empty() {
        report.say("already installed: nothing changed");
        return Ok(0);
    }
    if args.dry_run {
        report.say("dry run: nothing written");
        return Ok(0);
    }
    let running = if live {
        running_units(&plan, &changes)
    } else {
        Vec::new()
    };
    let undos = write_dropins(&root, &changes, report)?;
    if !live {
        report.say(format!(
            "written under {}; no systemd asked (--root): reload and restart on that system",
            root.display()
        ));
        return Ok(0);
    }
    if let Err(e) = systemctl::daemon_reload() {
        rollback(&root, &undos, &running, report);
        return Err(Refusal {
            code: exit::UNVERIFIED,
            message: format!("{e}; the previous files are back"),
        });
    }
    if args.no_restart {
        report.say("daemon reloaded; not restarted (--no-restart): restart the units, then run `gunicorn-launcher status`");
        return Ok(0);
    }
    tell_not_running(&plan, &running, report);
    match restart_and_verify(&running, &launcher, report) {
        Ok(()) => Ok(0),
        Err(failure) => {
            report.error(&failure);
            rollback(&root, &undos, &running, report);
            Ok(exit::UNVERIFIED)
        }
    }
}

/// This program's own absolute path (or `--launcher`), as the units will run it.
fn launcher_path(given: Option<&Path>, live: bool) -> Result<String, Refusal> {
    let path = match given {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe().map_err(|e| Refusal {
            code: exit::SOFTWARE,
            message: format!("cannot find this program's own path: {e}; name it with --launcher"),
        })?,
    };
    let text = plan::check_launcher_path(&path)?;
    if live && !path.is_file() {
        return Err(Refusal {
            code: exit::USAGE,
            message: format!(
                "{} does not exist: the units could not run it",
                path.display()
            ),
        });
    }
    Ok(text)
}

/// A `.socket` unit on the port makes gunicorn's own bind fail; refuse before writing.
fn refuse_socket_holders(root: &Path, plan: &Plan, live: bool) -> Result<(), Refusal> {
    for wrap in &plan.wraps {
        for holder in plan::sockets_on_port(root, wrap) {
            let name = holder.socket.as_str();
            // Root mode cannot tell whether it runs: refuse, to be safe.
            let in_use = holder.associated
                || !live
                || systemctl::is_running(name)
                || systemctl::is_enabled(name);
            if in_use {
                return Err(Refusal {
                    code: exit::CONFIG,
                    message: format!(
                        "{}: {name} listens on port {} ({}, ListenStream={}): systemd would hold \
                         the port and gunicorn's own bind would fail with \"Address already in \
                         use\" (the launcher does not take sockets from systemd); stop and disable \
                         it (systemctl disable --now {name}) or move it to another port, then \
                         install again",
                        wrap.unit, wrap.port, holder.at, holder.listen
                    ),
                });
            }
        }
    }
    Ok(())
}

fn show_plan(root: &Path, plan: &Plan, dry_run: bool, report: &mut Report) {
    for skipped in &plan.skipped {
        report.say(skipped.clone());
    }
    for w in &plan.wraps {
        let path = w.dropin_path(root);
        let action = match (&w.existing, w.unchanged()) {
            (_, true) => "already installed, unchanged",
            (Some(_), false) => "update",
            (None, false) => "install",
        };
        report.say(format!("{}: {action}: {}", w.unit, path.display()));
        report.say(format!("  old ExecStart={}", w.old_command()));
        report.say(format!("      (from {})", w.origin));
        report.say(format!("  new ExecStart={}", w.exec_start));
        for note in &w.notes {
            report.say(format!("  note: {note}"));
        }
        if dry_run && !w.unchanged() {
            report.say(format!("  --- {} ---", path.display()));
            report.block("  ", &w.text);
        }
        report.unit(json!({
            "unit": w.unit.as_str(),
            "action": action,
            "dropin": path,
            "fragment": w.fragment,
            "old_exec_start": w.old_command(),
            "old_exec_start_from": w.origin,
            "new_exec_start": w.exec_start,
            "port": w.port,
            "notes": w.notes,
            "dropin_text": w.text,
        }));
    }
}

/// The units whose command changes and that run now (a template's running instances).
fn running_units(plan: &Plan, changes: &[&Wrap]) -> Vec<(String, u16)> {
    let mut running: Vec<(String, u16)> = Vec::new();
    for w in changes {
        let names = if w.unit.is_template() {
            systemctl::running_instances(w.unit.as_str())
        } else if systemctl::is_running(w.unit.as_str()) {
            vec![w.unit.to_string()]
        } else {
            Vec::new()
        };
        for name in names {
            // An instance with a wrap of its own verifies its own port.
            let port = plan
                .wraps
                .iter()
                .find(|x| x.unit.as_str() == name)
                .map_or(w.port, |x| x.port);
            if !running.iter().any(|(n, _)| *n == name) {
                running.push((name, port));
            }
        }
    }
    running
}

fn tell_not_running(plan: &Plan, running: &[(String, u16)], report: &mut Report) {
    for w in &plan.wraps {
        if !w.unit.is_template() && !running.iter().any(|(n, _)| n == w.unit.as_str()) {
            report.say(format!(
                "{}: not running; the launcher takes over when it starts \
                 (systemctl start {}, then gunicorn-launcher status)",
                w.unit, w.unit
            ));
        }
    }
}

/// Writes every changed drop-in; if one fails, the ones already written are put back.
fn write_dropins(
    root: &Path,
    changes: &[&Wrap],
    report: &mut Report,
) -> Result<Vec<files::Undo>, Refusal> {
    let mut undos = Vec::new();
    for w in changes {
        match files::write(root, &w.dir, DROPIN, w.text.as_bytes()) {
            Ok(undo) => {
                report.say(format!(
                    "{}: wrote {}",
                    w.unit,
                    w.dropin_path(root).display()
                ));
                undos.push(undo);
            }
            Err(e) => {
                restore_files(root, &undos, report);
                return Err(Refusal {
                    code: exit::SOFTWARE,
                    message: format!("{e}; nothing changed"),
                });
            }
        }
    }
    Ok(undos)
}

fn restore_files(root: &Path, undos: &[files::Undo], report: &mut Report) {
    for undo in undos.iter().rev() {
        if let Err(e) = files::restore(root, undo) {
            report.error(&format!(
                "could not restore {}: {e}",
                root.join(&undo.dir).display()
            ));
        }
    }
}

/// Restart each running unit, then wait for it to be active, run by the launcher, and
/// verified: listening on all interfaces and answering HTTP.
fn restart_and_verify(
    running: &[(String, u16)],
    launcher: &str,
    report: &mut Report,
) -> Result<(), String> {
    for (unit, port) in running {
        report.say(format!("{unit}: restarting"));
        systemctl::restart(unit).map_err(|e| failure(unit, &e))?;
        wait_active(unit)?;
        main_pid_is_launcher(unit, launcher)?;
        let summary = wait_verified(unit, *port)?;
        report.say(format!("{unit}: verified: {summary}"));
        report.set("verified", json!(true));
    }
    Ok(())
}

/// What systemd knows about a failed unit, and its last log lines.
fn failure(unit: &str, what: &str) -> String {
    let props = systemctl::show(
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
    let log = systemctl::journal_tail(unit, 12);
    if !log.is_empty() {
        msg.push_str("\n  last log lines:");
        for line in log {
            msg.push_str(&format!("\n    {line}"));
        }
    }
    msg
}

fn wait_active(unit: &str) -> Result<(), String> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let state = systemctl::active_state(unit);
        match state.as_str() {
            "active" => return Ok(()),
            "failed" | "inactive" => return Err(failure(unit, &format!("{state} after restart"))),
            _ if Instant::now() >= deadline => {
                return Err(failure(unit, &format!("still {state} after {SETTLE:?}")));
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The unit's main process must be the launcher (else the drop-in did not take effect).
fn main_pid_is_launcher(unit: &str, launcher: &str) -> Result<(), String> {
    let pid = systemctl::show(unit, &["MainPID"])
        .ok()
        .and_then(|m| m.get("MainPID").cloned())
        .unwrap_or_default();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
    let want = std::fs::canonicalize(launcher).unwrap_or_else(|_| PathBuf::from(launcher));
    if exe == want {
        Ok(())
    } else {
        Err(failure(
            unit,
            &format!(
                "its main process {pid} is {}, not the launcher {launcher}: a later drop-in or \
                 a unit that systemd did not reload?",
                exe.display()
            ),
        ))
    }
}

/// The verdict, asked until it is ok or the deadline passes (one answer is enough when the
/// launcher already said READY=1; the margin covers a slow probe). An app that rejects the
/// Host remote browsers send keeps the change: the bind is what install fixes, and the
/// summary says what is left to do.
fn wait_verified(unit: &str, port: u16) -> Result<String, String> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let v = verify::verdict(&probe_target(port), Scope::Host);
        if v.ok() || v.kind == verify::Kind::HostRejected {
            return Ok(v.summary);
        }
        if Instant::now() >= deadline {
            return Err(failure(unit, &format!("not verified: {}", v.summary)));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Exactly the previous files back, reload, and the units that ran, restarted on them.
fn rollback(root: &Path, undos: &[files::Undo], running: &[(String, u16)], report: &mut Report) {
    report.say("rolling back: restoring the previous files");
    restore_files(root, undos, report);
    if let Err(e) = systemctl::daemon_reload() {
        report.error(&e);
    }
    for (unit, _) in running {
        match systemctl::restart(unit) {
            Ok(()) => report.say(format!(
                "{unit}: restored and restarted on its previous command ({})",
                systemctl::active_state(unit)
            )),
            Err(e) => report.error(&format!("{unit}: restored, but restarting failed: {e}")),
        }
    }
    report.set("rolled_back", json!(true));
}

// ---------------------------------------------------------------------------------------------
// uninstall
// ---------------------------------------------------------------------------------------------

pub fn uninstall(args: &UninstallArgs) -> i32 {
    let mut report = Report::new("uninstall", args.json);
    let code = uninstall_steps(args, &mut report).unwrap_or_else(|refusal| {
        report.error(&refusal.message);
        refusal.code
    });
    report.finish(code)
}

fn uninstall_steps(args: &UninstallArgs, report: &mut Report) -> Result<i32, Refusal> {
    require_systemd(&args.root)?;
    let root = root_of(&args.root);
    let live = args.root.is_none();
    let found = plan::installed(&root, &args.units)?;
    if found.is_empty() {
        report.say("nothing installed: no gunicorn-launcher drop-in found");
        return Ok(0);
    }
    for i in &found {
        let path = root.join(&i.dir).join(DROPIN);
        report.say(format!("{}: remove {}", i.unit, path.display()));
        if let Some(cmd) = &i.restores {
            report.say(format!("  ExecStart={cmd} runs again"));
        }
        report.unit(json!({"unit": i.unit.as_str(), "dropin": path, "restores": i.restores}));
    }
    if args.dry_run {
        report.say("dry run: nothing removed");
        return Ok(0);
    }
    let running: Vec<String> = if live {
        found
            .iter()
            .filter(|i| systemctl::is_running(i.unit.as_str()))
            .map(|i| i.unit.to_string())
            .collect()
    } else {
        Vec::new()
    };
    for i in &found {
        files::remove(&root, &i.dir, DROPIN, &i.created).map_err(|e| Refusal {
            code: exit::SOFTWARE,
            message: e,
        })?;
    }
    if !live {
        report.say(format!(
            "removed under {}; no systemd asked (--root)",
            root.display()
        ));
        return Ok(0);
    }
    systemctl::daemon_reload().map_err(|e| Refusal {
        code: exit::SOFTWARE,
        message: e,
    })?;
    if args.no_restart {
        report.say("daemon reloaded; not restarted (--no-restart)");
        return Ok(0);
    }
    let mut code = 0;
    for unit in &running {
        match systemctl::restart(unit) {
            Ok(()) => report.say(format!("{unit}: restarted on its own command")),
            Err(e) => {
                report.error(&failure(unit, &e));
                code = exit::UNVERIFIED;
            }
        }
    }
    Ok(code)
}

// ---------------------------------------------------------------------------------------------
// status
// ---------------------------------------------------------------------------------------------

pub fn status(args: &StatusArgs) -> i32 {
    let root = root_of(&args.root);
    let mut report = Report::new("status", args.json);
    if let Err(refusal) = require_systemd(&args.root) {
        report.error(&refusal.message);
        return report.finish(refusal.code);
    }
    let live = args.root.is_none();
    let (units, skipped) = plan::survey(&root);
    for s in skipped {
        report.say(s);
    }
    let mut rows = vec![["UNIT", "STATE", "HOW", "PORT"].map(String::from).to_vec()];
    let mut ports = Vec::new();
    for u in &units {
        let state = if !live {
            "-".to_string()
        } else if u.unit.is_template() {
            "template".to_string()
        } else {
            systemctl::active_state(u.unit.as_str())
        };
        if let Some(port) = u.port
            && state == "active"
            && !ports.contains(&port)
        {
            ports.push(port);
        }
        let how = match u.kind {
            plan::Kind::Wrapped => "wrapped by gunicorn-launcher",
            plan::Kind::Bare => "gunicorn directly (not installed)",
            plan::Kind::Socket => "gunicorn on a unix socket (left alone: nothing to fix)",
            plan::Kind::Launcher => "gunicorn-launcher (its own unit)",
        };
        rows.push(vec![
            u.unit.to_string(),
            state.clone(),
            how.into(),
            u.port.map_or_else(|| "-".to_string(), |p| p.to_string()),
        ]);
        report.unit(json!({
            "unit": u.unit.as_str(), "state": state, "how": how,
            "wrapped": matches!(u.kind, plan::Kind::Wrapped | plan::Kind::Launcher), "port": u.port, "exec_start": u.command,
        }));
    }
    if units.is_empty() {
        report.say("no unit runs gunicorn");
    } else {
        report.block("", &crate::check::aligned(&rows));
    }
    let mut code = 0;
    let mut verdicts = Vec::new();
    for port in ports {
        let target = probe_target(port);
        let v = verify::verdict(&target, Scope::Host);
        let colour = !args.json && crate::check::use_colour();
        let head = crate::check::paint(&format!("port {port}:"), v.ok(), colour);
        report.say(format!("{head} {}", v.summary));
        if code == 0 {
            code = v.kind.exit_code();
        }
        verdicts.push(crate::check::to_json(&v, &target));
    }
    report.set("verdicts", json!(verdicts));
    report.finish(code)
}
