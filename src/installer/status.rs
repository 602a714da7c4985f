//! `status`: every unit that runs gunicorn, whether the launcher wraps it, and the verdict
//! on each port that an active unit serves.

use super::binding::port_of;
use super::dropin::without_ours;
use super::gunicorn_unit::base_command;
use super::report::Report;
use super::socket_unit;
use super::{probe_target, require_systemd, root_of, systemctl};
use crate::config::DEFAULT_PORT;
use crate::error::Failure;
use crate::unit::{UnitIndex, UnitName};
use crate::verify::Scope;
use crate::{unit, verify};
use serde_json::json;
use std::path::Path;

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
    /// What the launcher of a wrapped or launcher unit verifies (its port, probe path,
    /// timeout and host names, from its command line and its `--config` file).
    pub target: Option<verify::Target>,
    /// That launcher holds the port's socket (`--hold-socket`, or `bind.hold_socket`).
    pub held: bool,
}

/// What a unit's `gunicorn-launcher run ...` command says, as `run` reads it.
struct LauncherRun {
    target: verify::Target,
    held: bool,
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

pub(super) fn survey_unit(index: &UnitIndex, unit: &UnitName) -> Result<Option<Surveyed>, String> {
    let loaded = index.load(unit).map_err(|e| e.to_string())?;
    if loaded.masked {
        return Ok(None);
    }
    let ours = loaded.files.len() != without_ours(&loaded).map_err(|r| r.message)?.files.len();
    let now = unit::effective_exec(&loaded, "ExecStart").map_err(|e| e.to_string())?;
    let [(now, _, _)] = now.as_slice() else {
        return Ok(None);
    };
    let command = unit::format_exec(now);
    let launcher = launcher_target(index.root(), unit, &now.program_and_args());
    let base = base_command(&loaded).map_err(|r| r.message)?;
    if let Ok(before) = base.as_ref()
        && before.launch.is_ok()
    {
        let port = port_of(before.gunicorn_args());
        let kind = match (ours, port) {
            (true, _) => Kind::Wrapped,
            (false, None) => Kind::Socket,
            (false, Some(_)) => Kind::Bare,
        };
        let launcher = launcher.filter(|_| kind == Kind::Wrapped);
        return Ok(Some(Surveyed {
            unit: unit.clone(),
            kind,
            port: launcher.as_ref().map_or(port, |l| Some(l.target.port)),
            command,
            held: launcher.as_ref().is_some_and(|l| l.held),
            target: launcher.map(|l| l.target),
        }));
    }
    Ok(launcher.map(|l| Surveyed {
        unit: unit.clone(),
        kind: Kind::Launcher,
        port: Some(l.target.port),
        command,
        held: l.held,
        target: Some(l.target),
    }))
}

/// What a unit whose command is `gunicorn-launcher run ...` verifies, read as `run` reads
/// it: its flags with `run`'s own definitions, and its `--config` file (under `root`; a
/// template's `%i` is the instance's name). `None` when the command is not the launcher's
/// `run`, or cannot be read (then the launcher's defaults).
fn launcher_target(root: &Path, unit: &UnitName, argv: &[&str]) -> Option<LauncherRun> {
    let program = argv.first()?;
    if program.rsplit('/').next() != Some("gunicorn-launcher") {
        return None;
    }
    let Some(run) = crate::run_args::parse_run_line(argv) else {
        return Some(LauncherRun {
            target: probe_target(DEFAULT_PORT),
            held: false,
        });
    };
    let mut config = crate::config::Config::default();
    if let Some(path) = &run.config {
        let path = path
            .to_string_lossy()
            .replace("%i", unit.instance().unwrap_or("%i"));
        let inside = root.join(
            Path::new(&path)
                .strip_prefix("/")
                .unwrap_or(Path::new(&path)),
        );
        if let Ok(c) = crate::config::load(&inside) {
            config = c;
        }
    }
    if let Some(port) = run.port {
        config.port = port;
    }
    Some(LauncherRun {
        target: verify::Target::of(&config),
        held: run.hold_socket || config.hold_socket,
    })
}

/// What `status` is asked.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub root: Option<std::path::PathBuf>,
    pub json: bool,
}

pub fn status(args: &Request) -> i32 {
    Report::run("status", args.json, |report| status_steps(args, report))
}

fn status_steps(args: &Request, report: &mut Report) -> Result<i32, Failure> {
    require_systemd(&args.root)?;
    let root = root_of(&args.root);
    let live = args.root.is_none();
    let (units, skipped) = survey(&root);
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
        rows.push(unit_row(&root, u, state, live, report));
    }
    if units.is_empty() {
        report.say("no unit runs gunicorn");
    } else {
        report.block("", &crate::verify::render::aligned(&rows));
    }
    Ok(judge_ports(&units, &ports, args.json, report))
}

/// One unit's row, and its JSON: how it runs gunicorn, and who holds its port.
fn unit_row(
    root: &Path,
    u: &Surveyed,
    state: String,
    live: bool,
    report: &mut Report,
) -> Vec<String> {
    let socket = match u.kind {
        Kind::Wrapped => socket_unit::existing(root, &u.unit)
            .ok()
            .flatten()
            .map(|(name, _)| name),
        _ => None,
    };
    let how: String = match (u.kind, &socket) {
        (Kind::Wrapped, Some(socket)) => {
            format!("wrapped by gunicorn-launcher, port held by {socket}")
        }
        (Kind::Wrapped, None) if u.held => {
            "wrapped by gunicorn-launcher, port held by it and systemd's fd store".into()
        }
        (Kind::Wrapped, None) => "wrapped by gunicorn-launcher, gunicorn binds the port".into(),
        (Kind::Bare, _) => "gunicorn directly (not installed)".into(),
        (Kind::Socket, _) => "gunicorn on a unix socket (left alone: nothing to fix)".into(),
        (Kind::Launcher, _) => "gunicorn-launcher (its own unit)".into(),
    };
    let held_by = match (u.kind, &socket) {
        (Kind::Bare | Kind::Socket, _) => "gunicorn",
        (_, Some(_)) => "socket-unit",
        _ if u.held => "launcher",
        _ => "gunicorn",
    };
    let port = u.port.map_or_else(|| "-".to_string(), |p| p.to_string());
    let mut unit = json!({
        "unit": u.unit.as_str(), "state": state, "how": how,
        "wrapped": matches!(u.kind, Kind::Wrapped | Kind::Launcher), "port": u.port,
        "port_held_by": held_by, "exec_start": u.command,
    });
    if let (Some(socket), Some(map)) = (&socket, unit.as_object_mut()) {
        let active = if live {
            systemctl::active_state(socket.as_str())
        } else {
            "-".into()
        };
        map.insert("socket_unit".into(), json!(socket.as_str()));
        map.insert("socket_state".into(), json!(active));
    }
    report.unit(unit);
    vec![u.unit.to_string(), state, how, port]
}

/// The verdict of each running port, judged with the settings of the (first) unit that
/// serves it; the exit status is `check`'s for the first that fails.
fn judge_ports(units: &[Surveyed], ports: &[u16], json: bool, report: &mut Report) -> i32 {
    let mut code = 0;
    let mut verdicts = Vec::new();
    for &port in ports {
        let target = units
            .iter()
            .find_map(|u| u.target.clone().filter(|t| t.port == port))
            .unwrap_or_else(|| probe_target(port));
        let v = verify::verdict(&target, Scope::Host);
        let colour = !json && crate::verify::render::use_colour();
        let head = crate::verify::render::paint(&format!("port {port}:"), v.ok(), colour);
        report.say(format!("{head} {}", v.summary));
        if code == 0 {
            code = v.kind.exit_code();
        }
        verdicts.push(crate::verify::render::to_json(&v, &target));
    }
    report.set("verdicts", json!(verdicts));
    code
}
