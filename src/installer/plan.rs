//! Which units `install` wraps and what wrapping each means, decided from the unit files
//! alone (pure: reads files under the root, writes nothing, asks no one). For each unit whose
//! effective `ExecStart=` runs gunicorn: the command as systemd runs it today (the unit's
//! files without our drop-in), the drop-in that wraps it, and whether that drop-in is
//! already in place byte for byte.

use super::binding::{Binding, GUNICORN_DEFAULT_PORT, binding};
use super::dropin::{
    DROPIN, DropIn, created_dirs, dropin_dir, explain_type_change, logical, missing_dirs,
    new_exec_start, read_existing, refuse_later_dropins, render, stop_timeout, without_ours,
};
use super::gunicorn_unit::{BaseCommand, base_command, unit_failure};
use super::socket_unit::{self, SocketUnit};
use crate::config::DEFAULT_PORT;
use crate::error::Failure;
use crate::unit;
use crate::unit::{ExecCommand, UnitIndex, UnitName};
use std::path::{Path, PathBuf};

/// How `install` wraps the units it finds.
#[derive(Clone, Copy, Debug)]
pub struct How<'a> {
    /// The launcher's path as the units will run it.
    pub launcher: &'a str,
    /// Write a `.socket` unit per service (`--socket-unit`).
    pub socket_unit: bool,
    /// Hold the port's socket in the launcher and systemd's file descriptor store (the
    /// default; `--no-hold-socket` turns it off).
    pub hold: bool,
}

/// Who holds a wrapped unit's port while it restarts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortHolder {
    /// The launcher (`run --hold-socket`), and systemd's file descriptor store across
    /// restarts of the unit (`FileDescriptorStoreMax=1`).
    Launcher,
    /// A `.socket` unit, which passes the socket to the launcher.
    SocketUnit,
    /// Nobody: gunicorn binds the port itself, for this reason.
    Gunicorn(String),
}

impl PortHolder {
    /// How the dry run, `status` and the JSON say it.
    pub fn describe(&self) -> String {
        match self {
            PortHolder::Launcher => "held by the launcher, kept in systemd's fd store".into(),
            PortHolder::SocketUnit => "held by a .socket unit".into(),
            PortHolder::Gunicorn(_) => "bound by gunicorn (no held socket)".into(),
        }
    }
}

/// One unit to wrap.
#[derive(Debug, Clone)]
pub struct Wrap {
    pub unit: UnitName,
    /// The unit file (machine path).
    pub fragment: PathBuf,
    /// Our drop-in's directory and file, relative to the root.
    pub dir: PathBuf,
    /// What systemd runs today, and where that line is (`file:line`).
    pub original: ExecCommand,
    pub origin: String,
    /// The `ExecStart=` line of the drop-in, and the port the launcher will verify.
    pub exec_start: String,
    pub port: u16,
    /// The whole drop-in, and our drop-in's current bytes, if any.
    pub text: String,
    pub existing: Option<Vec<u8>>,
    /// Directories (relative to the root) that do not exist yet and will be created.
    pub creates: Vec<PathBuf>,
    /// What changes besides the command, one sentence each.
    pub notes: Vec<String>,
    /// The socket unit that holds the port across restarts (`--socket-unit`).
    pub socket: Option<SocketUnit>,
    /// Who holds the port across restarts.
    pub holder: PortHolder,
}

impl Wrap {
    pub fn unchanged(&self) -> bool {
        self.existing.as_deref() == Some(self.text.as_bytes())
            && self.socket.as_ref().is_none_or(SocketUnit::unchanged)
    }

    pub fn dropin_path(&self, root: &Path) -> PathBuf {
        root.join(&self.dir).join(DROPIN)
    }

    pub fn old_command(&self) -> String {
        unit::format_exec(&self.original)
    }
}

/// The plan: units to wrap, and units skipped with the reason (only when discovering).
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub wraps: Vec<Wrap>,
    pub skipped: Vec<String>,
}

/// Which units to look at: the named ones (a template also brings its instances that have
/// drop-ins of their own), or every service unit.
pub fn plan_install(root: &Path, named: &[UnitName], how: How<'_>) -> Result<Plan, Failure> {
    let index = UnitIndex::new(root);
    let mut plan = Plan::default();
    if named.is_empty() {
        for unit in index.service_units() {
            discover(&index, &unit, how, &mut plan)?;
        }
    } else {
        for unit in named {
            if !unit.is_service() {
                return Err(Failure::usage(format!(
                    "{unit} is not a service unit: only .service units run gunicorn"
                )));
            }
            if let Some(why) = add(&index, unit, how, true, &mut plan)? {
                return Err(Failure::usage(format!("{unit}: {why}; left untouched")));
            }
        }
    }
    Ok(plan)
}

/// Adds `unit` to the plan (a template with its instances that need a drop-in of their own);
/// `Some(why)` when it does not run gunicorn, or runs one that is left alone. `named`: the
/// operator asked for this unit (a unit without a bind is then wrapped on port 8000).
fn add(
    index: &UnitIndex,
    unit: &UnitName,
    how: How<'_>,
    named: bool,
    plan: &mut Plan,
) -> Result<Option<String>, Failure> {
    match wrap_unit(index, unit, how, named)? {
        Found::Other(why) => Ok(Some(why)),
        Found::LeftAlone(why) => {
            plan.skipped.push(format!("{unit}: {why}"));
            Ok(Some(why))
        }
        Found::Gunicorn(w) => {
            let template_command = w.original.clone();
            push(plan, *w);
            if unit.is_template() {
                instances(index, unit, &template_command, how, plan)?;
            }
            Ok(None)
        }
    }
}

fn push(plan: &mut Plan, w: Wrap) {
    if !plan.wraps.iter().any(|x| x.unit == w.unit) {
        plan.wraps.push(w);
    }
}

/// Discovery of one unit: gunicorn units are wrapped; others are skipped silently; a unit
/// that cannot be read is an error if it mentions gunicorn at all (it may be one: we refuse
/// to guess) and a note otherwise (a broken unit elsewhere must not block the installer).
fn discover(
    index: &UnitIndex,
    unit: &UnitName,
    how: How<'_>,
    plan: &mut Plan,
) -> Result<(), Failure> {
    match add(index, unit, how, false, plan) {
        Ok(_) => Ok(()),
        Err(refusal) if mentions_gunicorn(index, unit) => Err(refusal),
        Err(refusal) => {
            plan.skipped
                .push(format!("{unit}: skipped, unreadable: {}", refusal.message));
            Ok(())
        }
    }
}

fn mentions_gunicorn(index: &UnitIndex, unit: &UnitName) -> bool {
    let Ok(loaded) = index.load(unit) else {
        // Unparsable: look at the raw fragment and drop-in directories' files ourselves.
        return unit::search_path(index.root()).iter().any(|dir| {
            let file = dir.join(unit.as_str());
            let dropins = dir.join(format!("{unit}.d"));
            let mut texts: Vec<PathBuf> = vec![file];
            if let Ok(listing) = std::fs::read_dir(dropins) {
                texts.extend(listing.filter_map(Result::ok).map(|e| e.path()));
            }
            texts.iter().any(|p| {
                std::fs::read(p)
                    .map(|b| String::from_utf8_lossy(&b).contains("gunicorn"))
                    .unwrap_or(false)
            })
        });
    };
    loaded.files.iter().any(|f| {
        f.sections
            .iter()
            .any(|s| s.entries.iter().any(|e| e.value.contains("gunicorn")))
    })
}

/// A template's wrap covers every instance that is the template; an instance whose own
/// drop-ins give it another command needs a wrap of its own, or ours (sorting last) would
/// replace its command with the template's.
fn instances(
    index: &UnitIndex,
    template: &UnitName,
    template_command: &ExecCommand,
    how: How<'_>,
    plan: &mut Plan,
) -> Result<(), Failure> {
    for instance in index.instances_with_dropins(template) {
        match wrap_unit(index, &instance, how, true)? {
            Found::Gunicorn(w) if w.original != *template_command || w.existing.is_some() => {
                push(plan, *w)
            }
            Found::Gunicorn(_) => {}
            Found::Other(why) | Found::LeftAlone(why) => {
                return Err(Failure::config(format!(
                    "{instance}: {why}, but its template {template} runs gunicorn: the template's \
                     drop-in would apply to it too; give it its own ExecStart= or remove that \
                     override, then install again"
                )));
            }
        }
    }
    Ok(())
}

enum Found {
    Gunicorn(Box<Wrap>),
    /// Runs gunicorn, which the launcher leaves alone (a unix socket; no
    /// bind unless named): why.
    LeftAlone(String),
    Other(String),
}

fn wrap_unit(
    index: &UnitIndex,
    unit: &UnitName,
    how: How<'_>,
    named: bool,
) -> Result<Found, Failure> {
    let loaded = index.load(unit).map_err(unit_failure)?;
    if loaded.masked {
        return Ok(Found::Other(format!(
            "masked ({})",
            loaded.fragment.display()
        )));
    }
    // An alias installs under the unit's own name, where `status` and `uninstall` look.
    let unit = loaded.names.first().unwrap_or(unit);
    let command = match base_command(&loaded)? {
        Ok(c) => c,
        Err(why) => return Ok(Found::Other(why)),
    };
    if let Err(why) = &command.launch {
        return Ok(Found::Other(why.clone()));
    }
    refuse_later_dropins(&loaded)?;
    let mut notes = Vec::new();
    let port = match choose_port(command.gunicorn_args(), named, &mut notes) {
        Ok(port) => port,
        Err(why) => return Ok(Found::LeftAlone(why)),
    };
    let base = without_ours(&loaded)?;
    let wrap = wrap_for(index, unit, &base, command, port, notes, how)?;
    Ok(Found::Gunicorn(Box::new(wrap)))
}

/// The port the launcher will serve for a unit whose gunicorn has these arguments, with
/// what to say about it; `Err(why)` for a unit left alone (a unix socket; no known port and
/// not named).
fn choose_port(args: &[String], named: bool, notes: &mut Vec<String>) -> Result<u16, String> {
    match binding(args, notes) {
        Binding::Tcp(port) => Ok(port),
        Binding::Socket(addr) => Err(format!(
            "gunicorn is bound to {addr}, a socket that is not TCP (a proxy such as nginx talks to it): \
             nothing for the launcher to fix, and its TCP bind would cut the proxy off"
        )),
        Binding::Unset if !named => Err(format!(
            "no bind on its command line: gunicorn's config file or its default \
             (127.0.0.1:{GUNICORN_DEFAULT_PORT}) decides; name it to wrap it on 0.0.0.0:{GUNICORN_DEFAULT_PORT}"
        )),
        Binding::Unset => {
            notes.push(format!(
                "no bind on its command line: gunicorn's default port {GUNICORN_DEFAULT_PORT} \
                 (127.0.0.1:{GUNICORN_DEFAULT_PORT}), now on all interfaces: run --port {GUNICORN_DEFAULT_PORT}"
            ));
            Ok(GUNICORN_DEFAULT_PORT)
        }
        Binding::Expanded(addr) if !named => Err(format!(
            "its bind {addr} is expanded by systemd, so its port is not known here; \
             name it to wrap it on port {DEFAULT_PORT}"
        )),
        Binding::Expanded(addr) => {
            notes.push(format!(
                "its bind {addr} is expanded by systemd, so its port is not known here: port {DEFAULT_PORT}"
            ));
            Ok(DEFAULT_PORT)
        }
    }
}

/// The wrap of `unit` (its base `base`, running `command`) on `port`: who holds the port,
/// the new command, the drop-in's text, and what is there already.
fn wrap_for(
    index: &UnitIndex,
    unit: &UnitName,
    base: &unit::LoadedUnit,
    command: BaseCommand,
    port: u16,
    mut notes: Vec<String>,
    how: How<'_>,
) -> Result<Wrap, Failure> {
    let args = command.gunicorn_args();
    let stop = stop_timeout(args, &mut notes);
    explain_type_change(base, args, &mut notes);
    let dir = dropin_dir(unit);
    let dropin = index.root().join(&dir).join(DROPIN);
    let missing = missing_dirs(index.root(), &dir)?;
    let existing = read_existing(&dropin)?;
    let creates = match &existing {
        Some(bytes) => created_dirs(bytes),
        None => missing,
    };
    let socket = socket_unit::plan(index.root(), unit, port, how.socket_unit)?;
    let holder = port_holder(index.root(), base, args, socket.is_some(), how.hold);
    notes.push(holder_note(&holder, socket.as_ref()));
    let held = holder == PortHolder::Launcher;
    let exec_start = new_exec_start(&command.exec, how.launcher, port, held)?;
    let origin = format!(
        "{}:{}",
        logical(index.root(), &command.file).display(),
        command.line
    );
    let mut text = render(&DropIn {
        unit,
        original: &command.exec,
        origin: &origin,
        exec_start: &exec_start,
        stop_secs: stop,
        creates: &creates,
        notes: &notes,
        fd_store: held,
    });
    if let Some(socket) = &socket {
        text.push_str(&socket.dropin_lines());
    }
    Ok(Wrap {
        unit: unit.clone(),
        fragment: base.fragment.clone(),
        dir,
        original: command.exec,
        origin,
        exec_start,
        port,
        text,
        existing,
        creates,
        notes,
        socket,
        holder,
    })
}

/// What the plan says of who holds the port.
fn holder_note(holder: &PortHolder, socket: Option<&SocketUnit>) -> String {
    match (holder, socket) {
        (PortHolder::SocketUnit, Some(socket)) => socket.note(),
        (PortHolder::Gunicorn(why), _) => format!(
            "no held socket ({why}): gunicorn binds the port itself, and connections are \
             refused while the unit restarts"
        ),
        _ => "the launcher holds the port's socket (run --hold-socket) and keeps it in \
              systemd's file descriptor store (FileDescriptorStoreMax=1): gunicorn's crashes, \
              the launcher's and systemctl restart refuse no connection"
            .into(),
    }
}

/// Who will hold the port: a `.socket` unit when there is one; else the launcher, unless
/// that was turned off or gunicorn turns on `reuse_port` (each worker would bind the port on
/// its own), on its command line, in `GUNICORN_CMD_ARGS` from the unit's `Environment=`, or
/// in its config file (read from the unit's `WorkingDirectory=` under `root`).
fn port_holder(
    root: &Path,
    unit: &unit::LoadedUnit,
    gunicorn_args: &[String],
    socket_unit: bool,
    hold: bool,
) -> PortHolder {
    if socket_unit {
        return PortHolder::SocketUnit;
    }
    if !hold {
        return PortHolder::Gunicorn("--no-hold-socket".into());
    }
    let env = unit::environment(unit);
    let cmd_args = env
        .iter()
        .find(|(k, _)| k == "GUNICORN_CMD_ARGS")
        .map_or("", |(_, v)| v.as_str());
    let workdir = unit::effective(unit, "Service", "WorkingDirectory")
        .pop()
        .map(|(v, _, _)| v.trim_start_matches('-').to_string())
        .filter(|d| d.starts_with('/'));
    let read = |file: &str| {
        let path = match &workdir {
            _ if file.starts_with('/') => PathBuf::from(file),
            Some(dir) => Path::new(dir).join(file),
            None => return None,
        };
        std::fs::read_to_string(root.join(path.strip_prefix("/").unwrap_or(&path))).ok()
    };
    match crate::gunicorn_args::reuse_port(gunicorn_args, cmd_args, read) {
        Some(where_) => PortHolder::Gunicorn(format!(
            "{where_} turns on gunicorn's reuse_port, which a held socket cannot serve"
        )),
        None => PortHolder::Launcher,
    }
}
