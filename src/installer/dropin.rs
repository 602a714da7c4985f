//! The drop-in `install` writes: its name, its text (the command wrapped, the settings the
//! launcher needs, comments that say what it replaced and how to remove it), and the
//! checks that make it safe to write (no later drop-in overriding it, no symlink in its way).

use crate::config::DEFAULT_PORT;
use crate::error::Failure;
use crate::unit::{ADMIN_UNIT_DIR, ExecCommand, LoadedUnit, UnitName};
use crate::{gunicorn_args, unit};
use std::path::{Path, PathBuf};

/// Our drop-in's file name: `zz` so it sorts after the administrator's drop-ins and wins.
pub const DROPIN: &str = "zz-gunicorn-launcher.conf";

/// The first line of every drop-in we write; a file of our name without it is not ours.
pub const MARK: &str = "# Written by gunicorn-launcher install.";

/// Records a directory the install created, so uninstall removes it and leaves the tree
/// exactly as it was.
pub(super) const CREATED: &str = "# gunicorn-launcher created this directory: ";

/// The settings our drop-in sets; another drop-in sorting after ours must not set them.
pub(super) const OUR_KEYS: [&str; 11] = [
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
    "FileDescriptorStoreMax",
];

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
pub fn check_launcher_path(path: &Path) -> Result<String, Failure> {
    let text = path.to_str().unwrap_or("");
    let plain = |c: char| c.is_ascii_graphic() && !"%$\"'\\;".contains(c);
    if !path.is_absolute() || text.is_empty() || !text.chars().all(plain) {
        return Err(Failure::usage(format!(
            "the launcher's path {path:?} cannot be written into a unit: it must be absolute and \
             free of spaces, quotes, backslashes, '%' and '$'; install it under a plain path such \
             as /usr/local/bin/gunicorn-launcher (or name one with --launcher)"
        )));
    }
    Ok(text.to_string())
}

/// TimeoutStopSec, with its note (see [`crate::stop_budget`]).
pub(super) fn stop_timeout(args: &[String], notes: &mut Vec<String>) -> u64 {
    let (secs, note) = crate::stop_budget::systemd(args);
    notes.extend(note);
    secs
}

pub(super) fn explain_type_change(base: &LoadedUnit, args: &[String], notes: &mut Vec<String>) {
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

/// `<prefixes><launcher> [argv0] run [--hold-socket] [--port N] -- <program> <args…>`: the original prefixes
/// in front (with `@`, the original argv[0] names the launcher's process), the original words
/// verbatim after `--`, specifiers and `$VARS` untouched for systemd to expand as before.
pub(super) fn new_exec_start(
    original: &ExecCommand,
    launcher: &str,
    port: u16,
    hold_socket: bool,
) -> Result<String, Failure> {
    let mut argv = vec![launcher.to_string()];
    if original.has_prefix('@') {
        argv.push(original.argv[1].clone());
    }
    argv.push("run".into());
    if hold_socket {
        argv.push("--hold-socket".into());
    }
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
        _ => Err(Failure::config(format!(
            "cannot write the command {line:?} so that systemd reads it back unchanged"
        ))),
    }
}

/// What goes into a drop-in.
pub(super) struct DropIn<'a> {
    pub unit: &'a UnitName,
    /// The command it replaces, and where that is (`file:line`).
    pub original: &'a ExecCommand,
    pub origin: &'a str,
    pub exec_start: &'a str,
    pub stop_secs: u64,
    /// Directories the install creates.
    pub creates: &'a [PathBuf],
    pub notes: &'a [String],
    /// systemd keeps the launcher's socket across restarts (`FileDescriptorStoreMax=1`).
    pub fd_store: bool,
}

/// The drop-in. Comments first: what wrote it, how to remove it, what it replaced.
pub(super) fn render(d: &DropIn<'_>) -> String {
    let DropIn {
        unit,
        original,
        origin,
        exec_start,
        stop_secs,
        creates,
        notes,
        fd_store,
    } = *d;
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
    if fd_store {
        // systemd keeps the launcher's socket across restarts and gives it back at the next
        // start: the port stays open while the unit restarts (flushed by `systemctl stop`).
        t.push_str("FileDescriptorStoreMax=1\n");
    }
    t
}

/// A drop-in that sorts after ours and sets one of our settings would silently win.
pub(super) fn refuse_later_dropins(unit: &LoadedUnit) -> Result<(), Failure> {
    for file in unit.files.iter().skip(1) {
        let Some(name) = file.path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name <= DROPIN {
            continue;
        }
        for key in OUR_KEYS {
            if let Some(entry) = file.entries("Service", key).next() {
                return Err(Failure::config(format!(
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

pub(super) fn read_existing(path: &Path) -> Result<Option<Vec<u8>>, Failure> {
    match std::fs::symlink_metadata(path) {
        Err(_) => Ok(None),
        Ok(meta) if meta.file_type().is_symlink() || !meta.is_file() => {
            Err(Failure::config(format!(
                "{} is a symlink or not a regular file: refusing to replace it; remove it, then \
             install again",
                path.display()
            )))
        }
        Ok(_) => std::fs::read(path)
            .map(Some)
            .map_err(|e| Failure::config(format!("{}: cannot read: {e}", path.display()))),
    }
}

/// `path` as the system under `root` sees it: `/etc/systemd/system/x.service`.
pub(super) fn logical(root: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(root)
        .map_or_else(|_| path.to_path_buf(), |rel| Path::new("/").join(rel))
}

/// The components of `dir` (relative to `root`) that do not exist yet, shallowest first.
/// One that exists must be a real directory: the writer never follows a symlink there
/// (see `files`), so one found now is refused before anything is written.
pub(super) fn missing_dirs(root: &Path, dir: &Path) -> Result<Vec<PathBuf>, Failure> {
    let mut at = PathBuf::new();
    let mut missing = Vec::new();
    for c in dir.components() {
        at.push(c);
        let path = root.join(&at);
        match std::fs::symlink_metadata(&path) {
            Err(_) => missing.push(at.clone()),
            Ok(meta) if meta.file_type().is_symlink() || !meta.is_dir() => {
                return Err(Failure::config(format!(
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

/// The unit without our drop-ins (its own, and a template's for an instance): what systemd
/// would run if we had never been here.
pub(super) fn without_ours(unit: &LoadedUnit) -> Result<LoadedUnit, Failure> {
    let mut base = unit.clone();
    let mut keep = Vec::new();
    for file in std::mem::take(&mut base.files) {
        let is_dropin = file.path != unit.fragment;
        let named_ours = file.path.file_name().is_some_and(|n| n == DROPIN);
        if is_dropin && named_ours {
            let bytes = std::fs::read(&file.path).unwrap_or_default();
            if !is_ours(&bytes) {
                return Err(Failure::config(format!(
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

#[cfg(test)]
mod tests;
