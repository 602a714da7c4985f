//! `uninstall`: our drop-ins found (only files whose first line says we wrote them), removed
//! with the directories the install created, then daemon-reload and a restart of the units
//! that ran, each on its own command again.

use super::dropin::{DROPIN, MARK, created_dirs, dropin_dir, is_ours, read_existing};
use super::gunicorn_unit::base_command;
use super::interrupt::Interrupts;
use super::report::Report;
use super::socket_unit;
use super::systemctl::failure;
use super::{files, require_systemd, root_of, systemctl};
use crate::error::Failure;
use crate::unit::{ADMIN_UNIT_DIR, UnitIndex, UnitName};
use crate::{exit, unit};
use serde_json::json;
use std::path::{Path, PathBuf};

/// A drop-in of ours, for uninstall.
#[derive(Debug, Clone)]
pub struct Installed {
    pub unit: UnitName,
    pub dir: PathBuf,
    pub created: Vec<PathBuf>,
    /// The command systemd runs once it is gone.
    pub restores: Option<String>,
    /// Our socket unit for it (`install --socket-unit`), removed with the drop-in.
    pub socket: Option<UnitName>,
}

/// Our drop-ins: of the named units (a template's also of its instances), or all of them.
pub fn installed(root: &Path, named: &[UnitName]) -> Result<Vec<Installed>, Failure> {
    let index = UnitIndex::new(root);
    let units: Vec<UnitName> = if named.is_empty() {
        units_with_our_dropin(root)
    } else {
        let mut all = Vec::new();
        for unit in named {
            // An alias: the drop-in is under the unit's own name (see wrap_unit).
            let unit = &index
                .load(unit)
                .ok()
                .and_then(|l| l.names.first().cloned())
                .unwrap_or_else(|| unit.clone());
            all.push(unit.clone());
            if unit.is_template() {
                all.extend(index.instances_with_dropins(unit));
            }
        }
        all
    };
    let mut found = Vec::new();
    for unit in units {
        let dir = dropin_dir(&unit);
        let path = root.join(&dir).join(DROPIN);
        let Some(bytes) = read_existing(&path)? else {
            continue;
        };
        if !is_ours(&bytes) {
            return Err(Failure::config(format!(
                "{} was not written by gunicorn-launcher (its first line is not {MARK:?}): \
                 leaving it alone; remove it by hand if it is yours",
                path.display()
            )));
        }
        found.push(Installed {
            socket: socket_unit::existing(root, &unit)?.map(|(name, _)| name),
            restores: original_command(&index, &unit),
            created: created_dirs(&bytes),
            unit,
            dir,
        });
    }
    Ok(found)
}

/// Every `<unit>.d/` in the administrator's directory that holds our drop-in.
pub(super) fn units_with_our_dropin(root: &Path) -> Vec<UnitName> {
    let Ok(listing) = std::fs::read_dir(root.join(ADMIN_UNIT_DIR)) else {
        return Vec::new();
    };
    let mut units: Vec<UnitName> = listing
        .filter_map(Result::ok)
        .filter(|e| std::fs::symlink_metadata(e.path().join(DROPIN)).is_ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            UnitName::parse(name.strip_suffix(".d")?).ok()
        })
        .collect();
    units.sort();
    units
}

/// The command the unit runs without our drop-in, as a line.
pub(super) fn original_command(index: &UnitIndex, unit: &UnitName) -> Option<String> {
    let loaded = index.load(unit).ok()?;
    let base = base_command(&loaded).ok()?.ok()?;
    Some(unit::format_exec(&base.exec))
}

/// What `uninstall` is asked.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// The units to unwrap; none: every unit with our drop-in.
    pub units: Vec<UnitName>,
    pub dry_run: bool,
    pub root: Option<PathBuf>,
    pub no_restart: bool,
    pub json: bool,
}

pub fn uninstall(args: &Request) -> i32 {
    Report::run("uninstall", args.json, |report| {
        uninstall_steps(args, report)
    })
}

fn uninstall_steps(args: &Request, report: &mut Report) -> Result<i32, Failure> {
    // Half an uninstall would leave units running the launcher without their drop-in:
    // a signal is acted on once it is whole.
    let interrupts = Interrupts::catch();
    require_systemd(&args.root)?;
    let root = root_of(&args.root);
    let live = args.root.is_none();
    let found = installed(&root, &args.units)?;
    if found.is_empty() {
        report.say("nothing installed: no gunicorn-launcher drop-in found");
        return Ok(0);
    }
    show(&root, &found, report);
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
    // Stopping a socket also stops its service (the drop-in requires it): such a service
    // is started again below whatever happens, `--no-restart` or a removal that fails.
    let mut stopped = Vec::new();
    let mut failed = found
        .iter()
        .find_map(|i| remove(&root, i, live, &mut stopped).err());
    if !live {
        if let Some(e) = failed {
            return Err(e);
        }
        report.say(format!(
            "removed under {}; no systemd asked (--root)",
            root.display()
        ));
        return Ok(0);
    }
    if let Err(e) = systemctl::daemon_reload() {
        failed.get_or_insert(Failure::software(e));
    }
    let mut code = restart(
        &running,
        &stopped,
        args.no_restart && failed.is_none(),
        report,
    );
    if let Some(signal) = interrupts.caught() {
        report.say(format!(
            "interrupted ({}): the removal was finished first",
            Interrupts::name(signal)
        ));
        code = Interrupts::status(signal);
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(code),
    }
}

/// What will be removed, unit by unit.
fn show(root: &Path, found: &[Installed], report: &mut Report) {
    for i in found {
        let path = root.join(&i.dir).join(DROPIN);
        report.say(format!("{}: remove {}", i.unit, path.display()));
        if let Some(cmd) = &i.restores {
            report.say(format!("  ExecStart={cmd} runs again"));
        }
        let mut unit = json!({"unit": i.unit.as_str(), "dropin": path, "restores": i.restores});
        if let Some(socket) = &i.socket {
            let path = root.join(ADMIN_UNIT_DIR).join(socket.as_str());
            report.say(format!(
                "{}: remove {} (disabled and stopped first)",
                i.unit,
                path.display()
            ));
            if let Some(map) = unit.as_object_mut() {
                map.insert("socket_unit".into(), json!(path));
            }
        }
        report.unit(unit);
    }
}

/// The units that ran are restarted on their own command; with `only_stopped`
/// (`--no-restart`), only those that removing their socket stopped. The exit status.
fn restart(running: &[String], stopped: &[String], only_stopped: bool, report: &mut Report) -> i32 {
    if only_stopped {
        report.say("daemon reloaded; not restarted (--no-restart)");
    }
    let mut code = 0;
    for unit in running
        .iter()
        .filter(|u| !only_stopped || stopped.contains(u))
    {
        match systemctl::restart(unit) {
            Ok(()) if only_stopped => report.say(format!(
                "{unit}: started again on its own command (removing its socket stopped it)"
            )),
            Ok(()) => report.say(format!("{unit}: restarted on its own command")),
            Err(e) => {
                report.error(&failure(unit, &e));
                code = exit::UNVERIFIED;
            }
        }
    }
    code
}

/// One unit's drop-in (and socket unit) removed; `stopped` gets the unit when disabling its
/// socket stopped it.
fn remove(
    root: &Path,
    i: &Installed,
    live: bool,
    stopped: &mut Vec<String>,
) -> Result<(), Failure> {
    if let (Some(socket), true) = (&i.socket, live) {
        if systemctl::is_running(i.unit.as_str()) {
            stopped.push(i.unit.to_string());
        }
        systemctl::disable_now(socket.as_str()).map_err(Failure::software)?;
    }
    files::remove(root, &i.dir, DROPIN, &i.created).map_err(Failure::software)?;
    if let Some(socket) = &i.socket {
        files::remove(root, Path::new(ADMIN_UNIT_DIR), socket.as_str(), &[])
            .map_err(Failure::software)?;
    }
    Ok(())
}
