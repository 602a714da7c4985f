//! `install`: the plan shown, the drop-ins written (each with its undo), daemon-reload, the
//! running units restarted and verified; on any failure the previous files are put back, the
//! units restarted on them, and the failure said.

use super::conflicts::{refuse_shared_ports, refuse_socket_holders};
use super::dropin::{DROPIN, check_launcher_path};
use super::interrupt::Interrupts;
use super::plan::{How, Plan, PortHolder, Wrap, plan_install};
use super::report::Report;
use super::systemctl::{self, failure};
use super::{SETTLE, files, probe_target, require_systemd, root_of};
use crate::error::Failure;
use crate::exit;
use crate::unit::UnitName;
use crate::verify::{self, Scope};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What `install` is asked.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// The units to wrap; none: every unit that runs gunicorn.
    pub units: Vec<UnitName>,
    /// Show the drop-ins and commands; write nothing.
    pub dry_run: bool,
    /// A tree of unit files to work on, with no systemd to ask.
    pub root: Option<PathBuf>,
    /// Write and daemon-reload, but neither restart nor verify.
    pub no_restart: bool,
    pub json: bool,
    /// The launcher's path as the units will run it (default: this program's).
    pub launcher: Option<PathBuf>,
    /// Also write a `.socket` unit per service, so that restarts refuse no connection.
    pub socket_unit: bool,
    /// Let gunicorn bind the port, as before the launcher held it.
    pub no_hold_socket: bool,
}

pub fn install(args: &Request) -> i32 {
    Report::run("install", args.json, |report| install_steps(args, report))
}

fn install_steps(args: &Request, report: &mut Report) -> Result<i32, Failure> {
    let interrupts = Interrupts::catch();
    require_systemd(&args.root)?;
    let root = root_of(&args.root);
    let live = args.root.is_none();
    let launcher = launcher_path(args.launcher.as_deref(), live)?;
    let how = How {
        launcher: &launcher,
        socket_unit: args.socket_unit,
        hold: !args.no_hold_socket,
    };
    let plan = plan_install(&root, &args.units, how)?;
    refuse_shared_ports(&root, &plan)?;
    refuse_socket_holders(&root, &plan, live)?;
    show_plan(&root, &plan, args.dry_run, report);
    let changes: Vec<&Wrap> = plan.wraps.iter().filter(|w| !w.unchanged()).collect();
    if let Some(why) = nothing_to_do(&plan, &changes, args.dry_run) {
        report.say(why);
        return Ok(0);
    }
    let running = if live {
        running_units(&plan, &changes)
    } else {
        Vec::new()
    };
    if let Some(signal) = interrupts.caught() {
        return Err(Failure::new(
            Interrupts::status(signal),
            format!(
                "interrupted ({}) before anything was written: nothing changed",
                Interrupts::name(signal)
            ),
        ));
    }
    let undos = write_dropins(&root, &changes, report)?;
    if !live {
        report.say(format!(
            "written under {}; no systemd asked (--root): reload and restart on that system",
            root.display()
        ));
        return Ok(0);
    }
    let change = Change {
        root: &root,
        undos: &undos,
        running: &running,
        interrupts: &interrupts,
    };
    if let Some(code) = change.reload(report)? {
        return Ok(code);
    }
    if args.no_restart {
        report.say("daemon reloaded; not restarted (--no-restart): restart the units, then run `gunicorn-launcher status`");
        return Ok(0);
    }
    Ok(change.restart(&plan, &changes, &launcher, report))
}

/// Why nothing is written, if nothing is.
fn nothing_to_do(plan: &Plan, changes: &[&Wrap], dry_run: bool) -> Option<&'static str> {
    if plan.wraps.is_empty() {
        Some("no unit runs gunicorn: nothing to do")
    } else if changes.is_empty() {
        Some("already installed: nothing changed")
    } else if dry_run {
        Some("dry run: nothing written")
    } else {
        None
    }
}

/// The files written, and what a rollback needs: from here on a signal caught between two
/// steps puts the previous files back.
struct Change<'a> {
    root: &'a Path,
    undos: &'a [files::Undo],
    running: &'a [(String, u16)],
    interrupts: &'a Interrupts,
}

impl Change<'_> {
    /// A signal was caught: the previous files back, and the status it asks for.
    fn interrupted(&self, report: &mut Report) -> Option<i32> {
        let signal = self.interrupts.caught()?;
        report.error(&format!(
            "interrupted ({}): putting the previous files back",
            Interrupts::name(signal)
        ));
        rollback(self.root, self.undos, &[], report);
        Some(Interrupts::status(signal))
    }

    /// systemd reads the new files; `Some(code)` when a signal undid them.
    fn reload(&self, report: &mut Report) -> Result<Option<i32>, Failure> {
        if let Some(code) = self.interrupted(report) {
            return Ok(Some(code));
        }
        if let Err(e) = systemctl::daemon_reload() {
            rollback(self.root, self.undos, self.running, report);
            return Err(Failure {
                code: exit::UNVERIFIED,
                message: format!("{e}; the previous files are back"),
            });
        }
        Ok(self.interrupted(report))
    }

    /// Socket units started, the running units restarted and verified; on a failure (or a
    /// signal before the end) everything undone. A signal caught during the last step leaves
    /// the whole change standing.
    fn restart(&self, plan: &Plan, changes: &[&Wrap], launcher: &str, report: &mut Report) -> i32 {
        let mut started = Vec::new();
        let outcome = start_sockets(changes, self.running, &mut started, report).and_then(|()| {
            tell_not_running(plan, self.running, report);
            restart_and_verify(self.running, launcher, self.interrupts, report)
        });
        match (outcome, self.interrupts.caught()) {
            (Ok(()), None) => 0,
            (Ok(()), Some(signal)) => {
                report.say(format!(
                    "interrupted ({}) once the change was made: it stands",
                    Interrupts::name(signal)
                ));
                Interrupts::status(signal)
            }
            (Err(failure), signal) => {
                report.error(&failure);
                self.undo(&started, report);
                signal.map_or(exit::UNVERIFIED, Interrupts::status)
            }
        }
    }

    /// New socket units go before their files do; one that was there already is restarted
    /// on its restored file, enabled as it was.
    fn undo(&self, started: &[Started], report: &mut Report) {
        for s in started.iter().filter(|s| !s.existed) {
            if let Err(e) = systemctl::disable_now(&s.name) {
                report.error(&e);
            }
        }
        rollback(self.root, self.undos, self.running, report);
        for s in started.iter().filter(|s| s.existed) {
            if let Err(e) = systemctl::restart(&s.name) {
                report.error(&e);
            }
            if !s.was_enabled
                && let Err(e) = systemctl::disable(&s.name)
            {
                report.error(&e);
            }
        }
    }
}

/// A socket unit this install started (or restarted), for the rollback.
struct Started {
    name: String,
    /// Ours from an earlier install: restarted on its restored file, not removed.
    existed: bool,
    was_enabled: bool,
}

/// Starts (and enables) each new or changed socket unit. A unit that runs is stopped first:
/// its gunicorn holds the port until then, and the socket could not bind it; the restart
/// that follows starts it on the socket. A socket unit that was there already is restarted,
/// so that systemd binds what its file now says.
fn start_sockets(
    changes: &[&Wrap],
    running: &[(String, u16)],
    started: &mut Vec<Started>,
    report: &mut Report,
) -> Result<(), String> {
    for w in changes {
        let Some(socket) = w.socket.as_ref().filter(|s| !s.unchanged()) else {
            continue;
        };
        let unit = w.unit.as_str();
        if running.iter().any(|(n, _)| n == unit) {
            report.say(format!(
                "{unit}: stopping, so that {} can take its port",
                socket.name
            ));
            systemctl::stop(unit).map_err(|e| failure(unit, &e))?;
        }
        let name = socket.name.as_str();
        // Recorded before anything is asked: `enable --now` may enable and then fail to start.
        started.push(Started {
            name: name.to_string(),
            existed: socket.existing.is_some(),
            was_enabled: systemctl::is_enabled(name),
        });
        if socket.existing.is_some() {
            systemctl::restart(name).map_err(|e| failure(name, &e))?;
        }
        systemctl::enable_now(name).map_err(|e| failure(name, &e))?;
        report.say(format!("{name}: enabled and listening"));
    }
    Ok(())
}

/// This program's own absolute path (or `--launcher`), as the units will run it.
fn launcher_path(given: Option<&Path>, live: bool) -> Result<String, Failure> {
    let path = match given {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe().map_err(|e| Failure {
            code: exit::SOFTWARE,
            message: format!("cannot find this program's own path: {e}; name it with --launcher"),
        })?,
    };
    let text = check_launcher_path(&path)?;
    if live && !path.is_file() {
        return Err(Failure {
            code: exit::USAGE,
            message: format!(
                "{} does not exist: the units could not run it",
                path.display()
            ),
        });
    }
    Ok(text)
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
        report.say(format!("  port: {}", w.holder.describe()));
        for note in &w.notes {
            report.say(format!("  note: {note}"));
        }
        if dry_run && !w.unchanged() {
            report.say(format!("  --- {} ---", path.display()));
            report.block("  ", &w.text);
            if let Some(socket) = w.socket.as_ref().filter(|s| !s.unchanged()) {
                report.say(format!("  --- {} ---", socket.path(root).display()));
                report.block("  ", &socket.text);
            }
        }
        let mut unit = json!({
            "unit": w.unit.as_str(),
            "action": action,
            "dropin": path,
            "fragment": w.fragment,
            "old_exec_start": w.old_command(),
            "old_exec_start_from": w.origin,
            "new_exec_start": w.exec_start,
            "port": w.port,
            "port_held_by": holder_word(&w.holder),
            "notes": w.notes,
            "dropin_text": w.text,
        });
        if let (Some(socket), Some(map)) = (&w.socket, unit.as_object_mut()) {
            map.insert("socket_unit".into(), json!(socket.path(root)));
            map.insert("socket_unit_text".into(), json!(socket.text));
        }
        report.unit(unit);
    }
}

/// The port's holder in the JSON: `launcher`, `socket-unit` or `gunicorn`.
pub(super) fn holder_word(holder: &PortHolder) -> &'static str {
    match holder {
        PortHolder::Launcher => "launcher",
        PortHolder::SocketUnit => "socket-unit",
        PortHolder::Gunicorn(_) => "gunicorn",
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
) -> Result<Vec<files::Undo>, Failure> {
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
                return Err(Failure {
                    code: exit::SOFTWARE,
                    message: format!("{e}; nothing changed"),
                });
            }
        }
        let Some(socket) = w.socket.as_ref().filter(|s| !s.unchanged()) else {
            continue;
        };
        match files::write(
            root,
            &socket.dir,
            socket.name.as_str(),
            socket.text.as_bytes(),
        ) {
            Ok(undo) => {
                report.say(format!("{}: wrote {}", w.unit, socket.path(root).display()));
                undos.push(undo);
            }
            Err(e) => {
                restore_files(root, &undos, report);
                return Err(Failure {
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
    interrupts: &Interrupts,
    report: &mut Report,
) -> Result<(), String> {
    for (unit, port) in running {
        if let Some(signal) = interrupts.caught() {
            return Err(format!(
                "interrupted ({}) before {unit} was restarted",
                Interrupts::name(signal)
            ));
        }
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
        if v.ok()
            || matches!(
                v.kind,
                verify::Kind::HostRejected | verify::Kind::FirewallBlocked
            )
        {
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
