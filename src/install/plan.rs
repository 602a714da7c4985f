//! What `install` would change, decided from the unit files alone (pure: reads files under
//! the root, writes nothing, asks no one). For each unit whose effective `ExecStart=` runs
//! gunicorn: the command as systemd runs it today (the unit's files without our drop-in), the
//! drop-in that wraps it, and whether that drop-in is already in place byte for byte.

use crate::config::DEFAULT_PORT;
use crate::exit;
use crate::gunicorn_args;
use crate::install::gunicorn_unit::command_runs_gunicorn;
use crate::launch;
use crate::unit::{self, ADMIN_UNIT_DIR, ExecCommand, LoadedUnit, UnitError, UnitIndex, UnitName};
use std::path::{Path, PathBuf};

/// Our drop-in's file name: `zz` so it sorts after the administrator's drop-ins and wins.
pub const DROPIN: &str = "zz-gunicorn-launcher.conf";
/// The first line of every drop-in we write; a file of our name without it is not ours.
pub const MARK: &str = "# Written by gunicorn-launcher install.";
/// Records a directory the install created, so uninstall removes it and leaves the tree
/// exactly as it was.
const CREATED: &str = "# gunicorn-launcher created this directory: ";
/// The settings our drop-in sets; another drop-in sorting after ours must not set them.
const OUR_KEYS: [&str; 10] = [
    "Type",
    "NotifyAccess",
    "KillMode",
    "PIDFile",
    "ExecStart",
    "ExecReload",
    "RestartPreventExitStatus",
    "SuccessExitStatus",
    "TimeoutStopSec",
    "TimeoutSec",
];

/// Why nothing can be done, with the exit code to end with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: i32,
    pub message: String,
}

fn usage(message: impl Into<String>) -> Refusal {
    Refusal {
        code: exit::USAGE,
        message: message.into(),
    }
}

fn config(message: impl Into<String>) -> Refusal {
    Refusal {
        code: exit::CONFIG,
        message: message.into(),
    }
}

fn unit_error(e: UnitError) -> Refusal {
    if e.path.is_none() && e.message.contains("not found") {
        return usage(e.to_string());
    }
    config(format!("{e}; fix the unit file (nothing was written)"))
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
}

impl Wrap {
    pub fn unchanged(&self) -> bool {
        self.existing.as_deref() == Some(self.text.as_bytes())
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

/// Our drop-in directory for `unit`, relative to the root.
pub fn dropin_dir(unit: &UnitName) -> PathBuf {
    Path::new(ADMIN_UNIT_DIR).join(format!("{unit}.d"))
}

/// Is this a drop-in we wrote? (our name and our first line)
pub fn is_ours(text: &[u8]) -> bool {
    text.starts_with(MARK.as_bytes())
}

/// The directories recorded as created by us in a drop-in we wrote.
pub fn created_dirs(text: &[u8]) -> Vec<PathBuf> {
    String::from_utf8_lossy(text)
        .lines()
        .filter_map(|l| l.strip_prefix(CREATED))
        .map(|d| PathBuf::from(d.trim_start_matches('/')))
        .collect()
}

/// The launcher's path as units will run it: absolute, and made only of characters systemd
/// passes through untouched (no specifier `%`, no `$`, no quotes, spaces or backslashes).
pub fn check_launcher_path(path: &Path) -> Result<String, Refusal> {
    let text = path.to_str().unwrap_or("");
    let plain = |c: char| c.is_ascii_graphic() && !"%$\"'\\;".contains(c);
    if !path.is_absolute() || text.is_empty() || !text.chars().all(plain) {
        return Err(usage(format!(
            "the launcher's path {path:?} cannot be written into a unit: it must be absolute and \
             free of spaces, quotes, backslashes, '%' and '$'; install it under a plain path such \
             as /usr/local/bin/gunicorn-launcher (or name one with --launcher)"
        )));
    }
    Ok(text.to_string())
}

/// Which units to look at: the named ones (a template also brings its instances that have
/// drop-ins of their own), or every service unit.
pub fn plan_install(root: &Path, named: &[UnitName], launcher: &str) -> Result<Plan, Refusal> {
    let index = UnitIndex::new(root);
    let mut plan = Plan::default();
    if named.is_empty() {
        for unit in index.service_units() {
            discover(&index, &unit, launcher, &mut plan)?;
        }
    } else {
        for unit in named {
            if !unit.is_service() {
                return Err(usage(format!(
                    "{unit} is not a service unit: only .service units run gunicorn"
                )));
            }
            if let Some(why) = add(&index, unit, launcher, true, &mut plan)? {
                return Err(usage(format!("{unit}: {why}; left untouched")));
            }
        }
    }
    refuse_shared_ports(root, &plan)?;
    Ok(plan)
}

/// Two units that would end up on one port would fight for it (the second
/// gunicorn's bind fails): refused before anything is written. A template
/// and its instances are one unit here; units already wrapped count too.
fn refuse_shared_ports(root: &Path, plan: &Plan) -> Result<(), Refusal> {
    let family = |u: &UnitName| u.template().unwrap_or_else(|| u.clone());
    let mut taken: Vec<(u16, UnitName)> = plan
        .wraps
        .iter()
        .map(|w| (w.port, family(&w.unit)))
        .collect();
    // Wrapped units: their port is on their command line. (A launcher unit of its own, such
    // as gunicorn-launcher@.service, takes its port from a config file not read here.)
    let (surveyed, _) = survey(root);
    for s in surveyed {
        if let (Kind::Wrapped, Some(port)) = (s.kind, s.port)
            && !plan
                .wraps
                .iter()
                .any(|w| family(&w.unit) == family(&s.unit))
        {
            taken.push((port, family(&s.unit)));
        }
    }
    taken.sort();
    taken.dedup();
    for pair in taken.windows(2) {
        if pair[0].0 == pair[1].0 {
            return Err(config(format!(
                "{} and {} would both serve port {}: the second gunicorn could not bind it; \
                 give one of them another port (its --bind), then install again (nothing was written)",
                pair[0].1, pair[1].1, pair[0].0
            )));
        }
    }
    Ok(())
}

/// Adds `unit` to the plan (a template with its instances that need a drop-in of their own);
/// `Some(why)` when it does not run gunicorn, or runs one that is left alone. `named`: the
/// operator asked for this unit (a unit without a bind is then wrapped on port 8000).
fn add(
    index: &UnitIndex,
    unit: &UnitName,
    launcher: &str,
    named: bool,
    plan: &mut Plan,
) -> Result<Option<String>, Refusal> {
    match wrap_unit(index, unit, launcher, named)? {
        Found::Other(why) => Ok(Some(why)),
        Found::LeftAlone(why) => {
            plan.skipped.push(format!("{unit}: {why}"));
            Ok(Some(why))
        }
        Found::Gunicorn(w) => {
            let template_command = w.original.clone();
            push(plan, *w);
            if unit.is_template() {
                instances(index, unit, &template_command, launcher, plan)?;
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
    launcher: &str,
    plan: &mut Plan,
) -> Result<(), Refusal> {
    match add(index, unit, launcher, false, plan) {
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
    launcher: &str,
    plan: &mut Plan,
) -> Result<(), Refusal> {
    for instance in index.instances_with_dropins(template) {
        match wrap_unit(index, &instance, launcher, true)? {
            Found::Gunicorn(w) if w.original != *template_command || w.existing.is_some() => {
                push(plan, *w)
            }
            Found::Gunicorn(_) => {}
            Found::Other(why) | Found::LeftAlone(why) => {
                return Err(config(format!(
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

/// The unit without our drop-ins (its own, and a template's for an instance): what systemd
/// would run if we had never been here.
fn without_ours(unit: &LoadedUnit) -> Result<LoadedUnit, Refusal> {
    let mut base = unit.clone();
    let mut keep = Vec::new();
    for file in std::mem::take(&mut base.files) {
        let is_dropin = file.path != unit.fragment;
        let named_ours = file.path.file_name().is_some_and(|n| n == DROPIN);
        if is_dropin && named_ours {
            let bytes = std::fs::read(&file.path).unwrap_or_default();
            if !is_ours(&bytes) {
                return Err(config(format!(
                    "{} has the name of gunicorn-launcher's drop-in but was not written by it; \
                     rename it, then install again",
                    file.path.display()
                )));
            }
            continue;
        }
        keep.push(file);
    }
    base.files = keep;
    base.dropins
        .retain(|d| d.file_name().is_none_or(|n| n != DROPIN));
    Ok(base)
}

fn wrap_unit(
    index: &UnitIndex,
    unit: &UnitName,
    launcher: &str,
    named: bool,
) -> Result<Found, Refusal> {
    let loaded = index.load(unit).map_err(unit_error)?;
    if loaded.masked {
        return Ok(Found::Other(format!(
            "masked ({})",
            loaded.fragment.display()
        )));
    }
    // An alias installs under the unit's own name, where `status` and `uninstall` look.
    let unit = loaded.names.first().unwrap_or(unit);
    let base = without_ours(&loaded)?;
    let mut execs = unit::effective_exec(&base, "ExecStart").map_err(unit_error)?;
    let (original, file, line) = match execs.len() {
        1 => execs.remove(0),
        0 => return Ok(Found::Other("it has no ExecStart=".into())),
        n => {
            return Ok(Found::Other(format!(
                "it has {n} ExecStart= commands (Type=oneshot?), not one gunicorn"
            )));
        }
    };
    let argv: Vec<String> = original
        .program_and_args()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let recognised = match launch::recognise(&argv) {
        Ok(l) => l,
        Err(why) => return Ok(Found::Other(why)),
    };
    refuse_later_dropins(&loaded)?;
    let gunicorn_args = &argv[recognised.program_len.min(argv.len())..];
    let mut notes = Vec::new();
    let port = match binding(gunicorn_args, &mut notes) {
        Binding::Tcp(port) => port,
        Binding::Socket(addr) => {
            return Ok(Found::LeftAlone(format!(
                "gunicorn is bound to {addr}, a socket that is not TCP (a proxy such as nginx talks to it): \
                 nothing for the launcher to fix, and its TCP bind would cut the proxy off"
            )));
        }
        Binding::Unset if !named => {
            return Ok(Found::LeftAlone(format!(
                "no bind on its command line: gunicorn's config file or its default \
                 (127.0.0.1:{GUNICORN_DEFAULT_PORT}) decides; name it to wrap it on 0.0.0.0:{GUNICORN_DEFAULT_PORT}"
            )));
        }
        Binding::Unset => {
            notes.push(format!(
                "no bind on its command line: gunicorn's default port {GUNICORN_DEFAULT_PORT} \
                 (127.0.0.1:{GUNICORN_DEFAULT_PORT}), now on all interfaces: run --port {GUNICORN_DEFAULT_PORT}"
            ));
            GUNICORN_DEFAULT_PORT
        }
        Binding::Expanded(addr) if !named => {
            return Ok(Found::LeftAlone(format!(
                "its bind {addr} is expanded by systemd, so its port is not known here; \
                 name it to wrap it on port {DEFAULT_PORT}"
            )));
        }
        Binding::Expanded(addr) => {
            notes.push(format!(
                "its bind {addr} is expanded by systemd, so its port is not known here: port {DEFAULT_PORT}"
            ));
            DEFAULT_PORT
        }
    };
    let stop = stop_timeout(gunicorn_args, &mut notes);
    explain_type_change(&base, gunicorn_args, &mut notes);

    let dir = dropin_dir(unit);
    let dropin = index.root().join(&dir).join(DROPIN);
    let missing = missing_dirs(index.root(), &dir)?;
    let existing = read_existing(&dropin)?;
    let creates = match &existing {
        Some(bytes) => created_dirs(bytes),
        None => missing,
    };
    let exec_start = new_exec_start(&original, launcher, port)?;
    let origin = format!("{}:{line}", logical(index.root(), &file).display());
    let text = render(
        unit,
        &original,
        &origin,
        &exec_start,
        stop,
        &creates,
        &notes,
    );
    Ok(Found::Gunicorn(Box::new(Wrap {
        unit: unit.clone(),
        fragment: loaded.fragment.clone(),
        dir,
        original,
        origin,
        exec_start,
        port,
        text,
        existing,
        creates,
        notes,
    })))
}

/// A drop-in that sorts after ours and sets one of our settings would silently win.
fn refuse_later_dropins(unit: &LoadedUnit) -> Result<(), Refusal> {
    for file in unit.files.iter().skip(1) {
        let Some(name) = file.path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name <= DROPIN {
            continue;
        }
        for key in OUR_KEYS {
            if let Some(entry) = file.entries("Service", key).next() {
                return Err(config(format!(
                    "{}:{}: {key}= in a drop-in that sorts after {DROPIN} would override the \
                     launcher's settings; rename that drop-in to sort before it (e.g. 50-{name}) \
                     or move {key}= out of it, then install again",
                    file.path.display(),
                    entry.line
                )));
            }
        }
    }
    Ok(())
}

fn read_existing(path: &Path) -> Result<Option<Vec<u8>>, Refusal> {
    match std::fs::symlink_metadata(path) {
        Err(_) => Ok(None),
        Ok(meta) if meta.file_type().is_symlink() || !meta.is_file() => Err(config(format!(
            "{} is a symlink or not a regular file: refusing to replace it; remove it, then \
             install again",
            path.display()
        ))),
        Ok(_) => std::fs::read(path)
            .map(Some)
            .map_err(|e| config(format!("{}: cannot read: {e}", path.display()))),
    }
}

/// `path` as the system under `root` sees it: `/etc/systemd/system/x.service`.
fn logical(root: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(root)
        .map_or_else(|_| path.to_path_buf(), |rel| Path::new("/").join(rel))
}

/// The components of `dir` (relative to `root`) that do not exist yet, shallowest first.
/// One that exists must be a real directory: the writer never follows a symlink there
/// (see `files`), so one found now is refused before anything is written.
fn missing_dirs(root: &Path, dir: &Path) -> Result<Vec<PathBuf>, Refusal> {
    let mut at = PathBuf::new();
    let mut missing = Vec::new();
    for c in dir.components() {
        at.push(c);
        let path = root.join(&at);
        match std::fs::symlink_metadata(&path) {
            Err(_) => missing.push(at.clone()),
            Ok(meta) if meta.file_type().is_symlink() || !meta.is_dir() => {
                return Err(config(format!(
                    "{} is a symlink or not a directory: refusing to write through it (a \
                     drop-in directory must be a real directory; remove the link and try again)",
                    path.display()
                )));
            }
            Ok(_) => {}
        }
    }
    Ok(missing)
}

/// gunicorn's own default bind, `127.0.0.1:8000`, when nothing names one.
pub const GUNICORN_DEFAULT_PORT: u16 = 8000;

/// What a unit's gunicorn command line binds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Binding {
    /// TCP: the port the launcher keeps (so a service on 8002 stays on 8002).
    Tcp(u16),
    /// A unix socket or `fd://` (systemd's): the first such address.
    Socket(String),
    /// No bind: gunicorn's config file or default decides.
    Unset,
    /// A bind whose port systemd expands (`${PORT}`, `%i`): the address.
    Expanded(String),
}

/// The command line's binds, classified; a socket that is not TCP wins (the
/// launcher would remove it), then TCP ports, then expanded ones.
fn binding(args: &[String], notes: &mut Vec<String>) -> Binding {
    let mut ports: Vec<u16> = Vec::new();
    let mut socket = None;
    let mut expanded = None;
    for removed in gunicorn_args::remove_binds(args).removed {
        let gunicorn_args::Removed::Bind {
            address: Some(a), ..
        } = removed
        else {
            continue;
        };
        if a.starts_with("unix:") || a.starts_with("fd://") || a.starts_with('/') {
            socket.get_or_insert(a);
        } else if let Some(p) = tcp_port(&a) {
            if !ports.contains(&p) {
                ports.push(p);
            }
        } else {
            expanded.get_or_insert(a);
        }
    }
    if let Some(a) = socket {
        return Binding::Socket(a);
    }
    match (ports.as_slice(), expanded) {
        ([], None) => Binding::Unset,
        ([], Some(a)) => Binding::Expanded(a),
        ([one], _) => Binding::Tcp(*one),
        (several, _) => {
            let chosen = if several.contains(&DEFAULT_PORT) {
                DEFAULT_PORT
            } else {
                several[0]
            };
            notes.push(format!(
                "it binds several ports ({}); the launcher serves one: {chosen}",
                several
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            Binding::Tcp(chosen)
        }
    }
}

/// The port a unit's gunicorn command line leaves the launcher on, if any.
fn port_of(args: &[String]) -> Option<u16> {
    match binding(args, &mut Vec::new()) {
        Binding::Tcp(p) => Some(p),
        Binding::Unset => Some(GUNICORN_DEFAULT_PORT),
        Binding::Expanded(_) => Some(DEFAULT_PORT),
        Binding::Socket(_) => None,
    }
}

/// `HOST:PORT` or `[V6]:PORT` → PORT; unix sockets, `fd://`, `$VARS` → none.
fn tcp_port(address: &str) -> Option<u16> {
    if address.starts_with("unix:") || address.starts_with("fd://") {
        return None;
    }
    let address = address.strip_prefix("tcp://").unwrap_or(address);
    let (_, port) = address.rsplit_once(':')?;
    port.parse().ok().filter(|&p| p != 0)
}

/// TimeoutStopSec, with its note (see [`crate::stop_budget`]).
fn stop_timeout(args: &[String], notes: &mut Vec<String>) -> u64 {
    let (secs, note) = crate::stop_budget::systemd(args);
    notes.extend(note);
    secs
}

fn explain_type_change(base: &LoadedUnit, args: &[String], notes: &mut Vec<String>) {
    let last = |key: &str| {
        unit::effective(base, "Service", key)
            .pop()
            .map(|(v, _, _)| v)
    };
    let was = last("Type").unwrap_or_else(|| "simple".into());
    if was != "notify" {
        notes.push(format!(
            "Type={was} becomes Type=notify: the launcher says READY=1 only after it verified the port"
        ));
    }
    if let Some(pidfile) = last("PIDFile") {
        notes.push(format!(
            "PIDFile={pidfile} is cleared: the launcher is the main process"
        ));
    }
    let daemon = gunicorn_args::remove_binds(args)
        .removed
        .into_iter()
        .any(|r| matches!(r, gunicorn_args::Removed::Daemon { .. }));
    if daemon {
        notes.push(
            "--daemon stays in the unit's command; the launcher removes it when it runs gunicorn"
                .into(),
        );
    }
}

/// `<prefixes><launcher> [argv0] run [--port N] -- <program> <args…>`: the original prefixes
/// in front (with `@`, the original argv[0] names the launcher's process), the original words
/// verbatim after `--`, specifiers and `$VARS` untouched for systemd to expand as before.
fn new_exec_start(original: &ExecCommand, launcher: &str, port: u16) -> Result<String, Refusal> {
    let mut argv = vec![launcher.to_string()];
    if original.has_prefix('@') {
        argv.push(original.argv[1].clone());
    }
    argv.push("run".into());
    if port != DEFAULT_PORT {
        argv.extend(["--port".to_string(), port.to_string()]);
    }
    argv.push("--".into());
    argv.extend(original.program_and_args().iter().map(|s| s.to_string()));
    let new = ExecCommand {
        prefixes: original.prefixes.clone(),
        argv,
        raw: String::new(),
    };
    let line = unit::format_exec(&new);
    // systemd must read back exactly these words; if it could not, write nothing.
    match unit::parse_exec(&line) {
        Ok(back) if back == new => Ok(line),
        _ => Err(config(format!(
            "cannot write the command {line:?} so that systemd reads it back unchanged"
        ))),
    }
}

/// The drop-in. Comments first: what wrote it, how to remove it, what it replaced.
fn render(
    unit: &UnitName,
    original: &ExecCommand,
    origin: &str,
    exec_start: &str,
    stop_secs: u64,
    creates: &[PathBuf],
    notes: &[String],
) -> String {
    let mut t = String::new();
    t.push_str(MARK);
    t.push('\n');
    t.push_str(&format!(
        "# It runs this unit's gunicorn under gunicorn-launcher, which binds it to all interfaces,\n\
         # supervises it and verifies the port before READY=1. The unit file itself is unchanged.\n\
         # To remove: gunicorn-launcher uninstall {unit}\n\
         # (or delete this file, then: systemctl daemon-reload && systemctl restart {unit})\n\
         # Replaced ExecStart (from {origin}):\n\
         #   {}\n",
        unit::format_exec(original)
    ));
    for note in notes.iter().filter(|n| n.starts_with("no bind")) {
        t.push_str(&format!("# {}.\n", note[..1].to_uppercase() + &note[1..]));
    }
    for dir in creates {
        t.push_str(&format!("{CREATED}/{}\n", dir.display()));
    }
    t.push_str(&format!(
        "[Service]\n\
         Type=notify\n\
         NotifyAccess=main\n\
         KillMode=mixed\n\
         PIDFile=\n\
         ExecStart=\n\
         ExecStart={exec_start}\n\
         ExecReload=\n\
         ExecReload=/bin/kill -HUP $MAINPID\n\
         RestartPreventExitStatus=78\n\
         SuccessExitStatus=143\n\
         TimeoutStopSec={stop_secs}s\n"
    ));
    t
}

/// A drop-in of ours, for uninstall.
#[derive(Debug, Clone)]
pub struct Installed {
    pub unit: UnitName,
    pub dir: PathBuf,
    pub created: Vec<PathBuf>,
    /// The command systemd runs once it is gone.
    pub restores: Option<String>,
}

/// Our drop-ins: of the named units (a template's also of its instances), or all of them.
pub fn installed(root: &Path, named: &[UnitName]) -> Result<Vec<Installed>, Refusal> {
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
            return Err(config(format!(
                "{} was not written by gunicorn-launcher (its first line is not {MARK:?}): \
                 leaving it alone; remove it by hand if it is yours",
                path.display()
            )));
        }
        found.push(Installed {
            restores: original_command(&index, &unit),
            created: created_dirs(&bytes),
            unit,
            dir,
        });
    }
    Ok(found)
}

/// Every `<unit>.d/` in the administrator's directory that holds our drop-in.
fn units_with_our_dropin(root: &Path) -> Vec<UnitName> {
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
fn original_command(index: &UnitIndex, unit: &UnitName) -> Option<String> {
    let loaded = index.load(unit).ok()?;
    let base = without_ours(&loaded).ok()?;
    let execs = unit::effective_exec(&base, "ExecStart").ok()?;
    match execs.as_slice() {
        [(cmd, _, _)] => Some(unit::format_exec(cmd)),
        _ => None,
    }
}

/// How a unit runs gunicorn, for `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Through our drop-in.
    Wrapped,
    /// gunicorn directly: not installed.
    Bare,
    /// gunicorn on a socket that is not TCP: left alone by install.
    Socket,
    /// The launcher itself is the unit's command (e.g. gunicorn-launcher@.service).
    Launcher,
}

#[derive(Debug, Clone)]
pub struct Surveyed {
    pub unit: UnitName,
    pub kind: Kind,
    /// None for a gunicorn bound to a unix socket (left alone).
    pub port: Option<u16>,
    /// The command that runs today.
    pub command: String,
}

/// Every unit that runs gunicorn, wrapped or not, and the units that could not be read.
pub fn survey(root: &Path) -> (Vec<Surveyed>, Vec<String>) {
    let index = UnitIndex::new(root);
    let mut names = Vec::new();
    for unit in index.service_units() {
        if unit.is_template() {
            names.extend(index.instances_with_dropins(&unit));
        }
        names.push(unit);
    }
    names.sort();
    names.dedup();
    let mut found = Vec::new();
    let mut skipped = Vec::new();
    for unit in names {
        match survey_unit(&index, &unit) {
            Ok(Some(s)) => found.push(s),
            Ok(None) => {}
            Err(why) => skipped.push(format!("{unit}: unreadable: {why}")),
        }
    }
    (found, skipped)
}

fn survey_unit(index: &UnitIndex, unit: &UnitName) -> Result<Option<Surveyed>, String> {
    let loaded = index.load(unit).map_err(|e| e.to_string())?;
    if loaded.masked {
        return Ok(None);
    }
    let base = without_ours(&loaded).map_err(|r| r.message)?;
    let ours = loaded.files.len() != base.files.len();
    let now = unit::effective_exec(&loaded, "ExecStart").map_err(|e| e.to_string())?;
    let before = unit::effective_exec(&base, "ExecStart").map_err(|e| e.to_string())?;
    let [(now, _, _)] = now.as_slice() else {
        return Ok(None);
    };
    let command = unit::format_exec(now);
    if let [(before, _, _)] = before.as_slice()
        && command_runs_gunicorn(before)
    {
        let argv: Vec<String> = before
            .program_and_args()
            .iter()
            .map(|s| s.to_string())
            .collect();
        let start = launch::recognise(&argv).map_or(argv.len(), |l| l.program_len);
        let port = port_of(&argv[start..]);
        let kind = match (ours, port) {
            (true, _) => Kind::Wrapped,
            (false, None) => Kind::Socket,
            (false, Some(_)) => Kind::Bare,
        };
        return Ok(Some(Surveyed {
            unit: unit.clone(),
            kind,
            port,
            command,
        }));
    }
    let argv = now.program_and_args();
    if argv
        .first()
        .is_some_and(|p| p.rsplit('/').next() == Some("gunicorn-launcher"))
    {
        let port = argv
            .iter()
            .take_while(|a| **a != "--")
            .skip_while(|a| **a != "--port" && **a != "-p")
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(DEFAULT_PORT);
        return Ok(Some(Surveyed {
            unit: unit.clone(),
            kind: Kind::Launcher,
            port: Some(port),
            command,
        }));
    }
    Ok(None)
}

/// A `.socket` unit listening on `port`: systemd would hold the port, gunicorn's own bind
/// would fail (and the launcher does not take inherited sockets).
#[derive(Debug, Clone)]
pub struct SocketHolder {
    pub socket: UnitName,
    pub at: String,
    pub listen: String,
    /// Named like the service or listed in its `Sockets=`: starting the service starts it.
    pub associated: bool,
}

pub fn sockets_on_port(root: &Path, wrap: &Wrap) -> Vec<SocketHolder> {
    let index = UnitIndex::new(root);
    let own_sockets: Vec<String> = index
        .load(&wrap.unit)
        .map(|u| {
            unit::effective(&u, "Unit", "Sockets")
                .into_iter()
                .chain(unit::effective(&u, "Service", "Sockets"))
                .flat_map(|(v, _, _)| v.split_whitespace().map(String::from).collect::<Vec<_>>())
                .collect()
        })
        .unwrap_or_default();
    let same_name = format!("{}.socket", wrap.unit.as_str().trim_end_matches(".service"));
    let mut found = Vec::new();
    for socket in index.units_of_type("socket") {
        let Ok(loaded) = index.load(&socket) else {
            continue;
        };
        for (value, file, line) in unit::effective(&loaded, "Socket", "ListenStream") {
            if listen_port(&value) == Some(wrap.port) {
                found.push(SocketHolder {
                    associated: socket.as_str() == same_name
                        || own_sockets.iter().any(|s| s == socket.as_str()),
                    socket: socket.clone(),
                    at: format!("{}:{line}", file.display()),
                    listen: value,
                });
            }
        }
    }
    found
}

/// `ListenStream=` → its TCP port: `8001`, `0.0.0.0:8001`, `[::]:8001`.
fn listen_port(value: &str) -> Option<u16> {
    if value.starts_with('/') || value.starts_with('@') || value.starts_with("vsock:") {
        return None;
    }
    let port = value.rsplit_once(':').map_or(value, |(_, p)| p);
    port.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_come_from_tcp_binds_only() {
        assert_eq!(tcp_port("127.0.0.1:8001"), Some(8001));
        assert_eq!(tcp_port("[::1]:8002"), Some(8002));
        assert_eq!(tcp_port("unix:/run/x.sock"), None);
        assert_eq!(tcp_port("fd://3"), None);
        assert_eq!(tcp_port("${BIND_HOST}:${BIND_PORT}"), None);
        assert_eq!(tcp_port("localhost"), None);
        assert_eq!(listen_port("8001"), Some(8001));
        assert_eq!(listen_port("0.0.0.0:8001"), Some(8001));
        assert_eq!(listen_port("[::]:8001"), Some(8001));
        assert_eq!(listen_port("/run/solvit.sock"), None);
    }

    #[test]
    fn stop_timeout_goes_above_the_graceful_timeout() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut notes = Vec::new();
        assert_eq!(stop_timeout(&v(&["app"]), &mut notes), 40);
        assert_eq!(
            stop_timeout(&v(&["--graceful-timeout", "10"]), &mut notes),
            40
        );
        assert_eq!(stop_timeout(&v(&["--graceful-timeout=45"]), &mut notes), 55);
        assert!(
            notes.iter().any(|n| n.contains("TimeoutStopSec=55s")),
            "{notes:?}"
        );
    }

    #[test]
    fn launcher_paths_must_be_plain_and_absolute() {
        assert!(check_launcher_path(Path::new("/usr/bin/gunicorn-launcher")).is_ok());
        for bad in [
            "gunicorn-launcher",
            "/opt/my dir/l",
            "/opt/%i/l",
            "/opt/$X/l",
            "/a\\b",
        ] {
            assert!(check_launcher_path(Path::new(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_new_command_keeps_prefixes_argv0_and_words() {
        let orig = unit::parse_exec(
            "-@/opt/v/bin/gunicorn solvit-gunicorn --name \"a b\" -b 127.0.0.1:8002 ${APP} $OPTS %i",
        )
        .unwrap();
        let line = new_exec_start(&orig, "/usr/bin/gunicorn-launcher", 8002).unwrap();
        assert_eq!(
            line,
            "-@/usr/bin/gunicorn-launcher solvit-gunicorn run --port 8002 -- /opt/v/bin/gunicorn \
             --name \"a b\" -b 127.0.0.1:8002 ${APP} $OPTS %i"
        );
    }
}
