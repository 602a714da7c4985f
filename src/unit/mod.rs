//! systemd unit files read the way systemd 252 reads them, so that the installer wraps the
//! command systemd actually runs and not an approximation of it. Pure discovery: nothing here
//! writes, spawns or asks systemd, and nothing here knows gunicorn; every function is a
//! function of its arguments and of the files under a root.
//!
//! Bottom up: `name` (which strings are units), `syntax` (one file to sections and entries),
//! `exec` (one command line to words and back), `paths` (the search path; symlinks resolved
//! inside a root), `name_map` (which file a name loads: aliases, linked units, masks),
//! `dropins` (which drop-ins apply, in which order), `load` (a unit as the manager sees it,
//! and a setting's effective value). The rules copied, what is deliberately different or left
//! out, and how a real systemd checks all of it: docs/unit-files.md.

mod dropins;
mod exec;
mod load;
mod name;
mod name_map;
mod paths;
mod syntax;
#[cfg(test)]
mod tests;

pub use exec::{ExecCommand, format_exec, parse_exec, split_words};
pub use load::{
    LoadedUnit, UnitIndex, effective, effective_exec, environment, list_service_units, load_unit,
};
pub use name::UnitName;
pub use paths::{ADMIN_UNIT_DIR, search_path};
pub use syntax::{Entry, Section, UnitFile, parse_unit};

use std::fmt;
use std::path::{Path, PathBuf};

/// What went wrong, and where: `path:line: message` when both are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitError {
    pub path: Option<PathBuf>,
    pub line: Option<usize>,
    pub message: String,
}

impl UnitError {
    fn new(message: impl Into<String>) -> UnitError {
        UnitError {
            path: None,
            line: None,
            message: message.into(),
        }
    }

    fn in_file(path: &Path, message: impl Into<String>) -> UnitError {
        UnitError {
            path: Some(path.to_path_buf()),
            line: None,
            message: message.into(),
        }
    }

    fn at(path: &Path, line: usize, message: impl Into<String>) -> UnitError {
        UnitError {
            path: Some(path.to_path_buf()),
            line: Some(line),
            message: message.into(),
        }
    }
}

impl fmt::Display for UnitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.path, self.line) {
            (Some(path), Some(line)) => write!(f, "{}:{}: {}", path.display(), line, self.message),
            (Some(path), None) => write!(f, "{}: {}", path.display(), self.message),
            (None, Some(line)) => write!(f, "line {}: {}", line, self.message),
            (None, None) => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for UnitError {}
