//! A unit's command as the installer reads it, once for `install`, `status` and `uninstall`:
//! the one `ExecStart=` systemd runs without our drop-in, and whether it runs gunicorn. The
//! answer is `run`'s own rule ([`crate::launch::recognise`]), so the installer wraps exactly
//! the commands that `run` accepts; the words are compared as written, unexpanded (an
//! executable given as `$VAR` or a specifier is not recognised; `%h/venv/bin/gunicorn` is).

use super::dropin::without_ours;
use crate::error::Failure;
use crate::launch::{self, Launch};
use crate::unit::{self, ExecCommand, LoadedUnit, UnitError};
use std::path::PathBuf;

/// What a unit runs as systemd runs it without our drop-in: its one `ExecStart=`, where that
/// line is, and, when it runs gunicorn, the launch form. The installer's one reading of a
/// unit's command, for `install`, `status` and `uninstall` alike.
#[derive(Clone, Debug)]
pub struct BaseCommand {
    pub exec: ExecCommand,
    /// The file and line of that `ExecStart=`.
    pub file: PathBuf,
    pub line: usize,
    /// The executable and its arguments (without an `@` prefix's argv[0]).
    pub argv: Vec<String>,
    /// How it runs gunicorn, or why it does not.
    pub launch: Result<Launch, String>,
}

impl BaseCommand {
    /// gunicorn's own arguments (after the program: `gunicorn`, `python -m gunicorn`, …).
    pub fn gunicorn_args(&self) -> &[String] {
        let start = self
            .launch
            .as_ref()
            .map_or(self.argv.len(), |l| l.program_len);
        &self.argv[start.min(self.argv.len())..]
    }
}

/// `loaded`'s command without our drop-in. `Ok(Err(why))` when it has no single
/// `ExecStart=` (none, or a oneshot's several); an unreadable command is an error.
pub fn base_command(loaded: &LoadedUnit) -> Result<Result<BaseCommand, String>, Failure> {
    let base = without_ours(loaded)?;
    let mut execs = unit::effective_exec(&base, "ExecStart").map_err(unit_failure)?;
    let (exec, file, line) = match execs.len() {
        1 => execs.remove(0),
        0 => return Ok(Err("it has no ExecStart=".into())),
        n => {
            return Ok(Err(format!(
                "it has {n} ExecStart= commands (Type=oneshot?), not one gunicorn"
            )));
        }
    };
    let argv: Vec<String> = exec
        .program_and_args()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let launch = launch::recognise(&argv);
    Ok(Ok(BaseCommand {
        exec,
        file,
        line,
        argv,
        launch,
    }))
}

/// A unit that cannot be read, as the installer says it.
pub fn unit_failure(e: UnitError) -> Failure {
    if e.path.is_none() && e.message.contains("not found") {
        return Failure::usage(e.to_string());
    }
    Failure::config(format!("{e}; fix the unit file (nothing was written)"))
}

#[cfg(test)]
mod tests;
