//! Command assembly: the user's gunicorn command in, the command we run out.
//!
//! Pure functions only (argv and environment in, argv, environment changes
//! and log lines out), so that every bind rule (README "What `run` does to
//! gunicorn's environment", docs/gunicorn-facts.md "Binds") is unit- and
//! property-tested without starting a process.

use crate::gunicorn_args::{self, Removed};
use crate::launch::{self, Launch};
use crate::pyshlex;
use std::net::{IpAddr, SocketAddr};

/// The command to run, and what was changed to get there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assembled {
    pub launch: Launch,
    pub argv: Vec<String>,
    /// One line per change, in the user's spelling, for the log.
    pub notes: Vec<Note>,
}

/// A change worth one log line; `warning` when it overrode the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub warning: bool,
    pub text: String,
}

/// gunicorn's notation for a bind address (`[::]:8001` for IPv6).
pub fn bind_value(host: IpAddr, port: u16) -> String {
    SocketAddr::new(host, port).to_string()
}

/// Puts `--bind HOST:PORT` right after the program (never at the end: after
/// a user's `--` it would be an app name) and removes every other bind and
/// every daemon flag. The one exception: after a `--proxy-protocol` that the
/// removed bind kept bare, where the removed bind stood (see
/// [`gunicorn_args::Filtered::bind_at`]).
pub fn assemble(command: &[String], host: IpAddr, port: u16) -> Result<Assembled, String> {
    let launch = launch::recognise(command)?;
    let (program, args) = command.split_at(launch.program_len);
    let ours = bind_value(host, port);
    let filtered = gunicorn_args::remove_binds(args);
    let (before, after) = filtered.args.split_at(filtered.bind_at);
    let mut argv = program.to_vec();
    argv.extend_from_slice(before);
    argv.extend(["--bind".to_owned(), ours.clone()]);
    argv.extend_from_slice(after);
    let notes = filtered
        .removed
        .iter()
        .map(|r| describe(r, &ours, "the command line"))
        .collect();
    Ok(Assembled {
        launch,
        argv,
        notes,
    })
}

fn describe(removed: &Removed, ours: &str, place: &str) -> Note {
    match removed {
        Removed::Bind {
            address: Some(a), ..
        } if a == ours => Note {
            warning: false,
            text: format!("{place} already binds {ours}; kept it once"),
        },
        Removed::Bind {
            address: Some(a),
            spelling,
        } if a.starts_with("fd://") => Note {
            warning: true,
            text: format!(
                "removed {spelling} from {place}: an fd:// bind makes gunicorn ignore every other bind; binding {ours}"
            ),
        },
        Removed::Bind {
            spelling,
            address: Some(_),
        } => Note {
            warning: true,
            text: if place == "the command line" {
                format!("replaced {spelling} with {ours}")
            } else {
                format!("replaced {spelling} in {place} with {ours}")
            },
        },
        Removed::Bind {
            spelling,
            address: None,
        } => Note {
            warning: true,
            text: format!("removed {spelling} (no address) from {place}"),
        },
        Removed::Daemon { spelling } => Note {
            warning: true,
            text: format!(
                "removed {spelling} from {place}: a daemonising gunicorn would look dead to its supervisor"
            ),
        },
    }
}

/// A change to the child's environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvChange {
    Unset(String),
    Set(String, String),
}

/// gunicorn's environment, made once: the launcher's own with the changes applied, used to
/// start gunicorn, to check its size against the kernel's limits, and by `print-command`.
/// Only what its start alone can know is added then: its pid in `LISTEN_PID` and the
/// launcher's notify socket.
#[derive(Clone, Debug, Default)]
pub struct ChildEnv {
    pub vars: Vec<(std::ffi::OsString, std::ffi::OsString)>,
    /// What was changed, in order.
    pub changes: Vec<EnvChange>,
}

impl ChildEnv {
    /// `inherited` with `changes` applied.
    pub fn of(
        inherited: Vec<(std::ffi::OsString, std::ffi::OsString)>,
        changes: Vec<EnvChange>,
    ) -> ChildEnv {
        let mut env = ChildEnv {
            vars: inherited,
            changes: Vec::new(),
        };
        for change in changes {
            match &change {
                EnvChange::Unset(k) => env.put(k, None),
                EnvChange::Set(k, v) => env.put(k, Some(v)),
            }
            env.changes.push(change);
        }
        env
    }

    /// `key` set to `value` (or removed), replacing what was there.
    pub fn put(&mut self, key: &str, value: Option<&str>) {
        self.vars.retain(|(name, _)| name != key);
        if let Some(value) = value {
            self.vars.push((key.into(), value.into()));
        }
    }
}

/// Variables that would hand gunicorn a socket or a notify target that is
/// not ours: inherited listeners make it skip its own bind, and systemd's
/// NOTIFY_SOCKET would let it declare readiness before we verified anything.
pub const SCRUBBED: &[&str] = &[
    "GUNICORN_FD",
    "GUNICORN_PID",
    "LISTEN_PID",
    "LISTEN_FDS",
    "LISTEN_FDNAMES",
    "NOTIFY_SOCKET",
];

/// The changes to make to the launcher's environment for gunicorn: drop the
/// variables above, and the bind and daemon options inside
/// `GUNICORN_CMD_ARGS` (gunicorn reads it with Python's `shlex.split` and the
/// same parser as its command line; [`pyshlex`] splits it the same way, `#`
/// included, and writes it back with `shlex.join`). Returns the notes to log
/// as well.
pub fn env_changes(
    env: &[(String, String)],
    ours: &str,
) -> Result<(Vec<EnvChange>, Vec<Note>), String> {
    let mut changes = Vec::new();
    let mut notes = Vec::new();
    for (name, value) in env {
        if SCRUBBED.contains(&name.as_str()) {
            changes.push(EnvChange::Unset(name.clone()));
        } else if name == "GUNICORN_CMD_ARGS" {
            let words = pyshlex::split(value).map_err(|e| {
                format!("GUNICORN_CMD_ARGS={value:?} cannot be split as gunicorn splits it (Python shlex.split: {e}); fix or unset it")
            })?;
            let filtered = gunicorn_args::remove_binds(&words);
            if filtered.removed.is_empty() {
                continue;
            }
            let mut kept = filtered.args;
            if filtered.bind_at != 0 {
                // A `--proxy-protocol` that the removed bind kept bare: the
                // launcher's own bind takes its place, as on the command
                // line. It changes nothing: gunicorn lets the command line's
                // bind, always ours, replace the one in GUNICORN_CMD_ARGS.
                kept.splice(
                    filtered.bind_at..filtered.bind_at,
                    ["--bind".to_owned(), ours.to_owned()],
                );
            }
            let change = if kept.is_empty() {
                EnvChange::Unset(name.clone())
            } else {
                let joined = pyshlex::join(&kept);
                if joined == *value {
                    // Only our own bind, where it keeps `--proxy-protocol` bare.
                    continue;
                }
                if joined.contains('\0') {
                    return Err(
                        "GUNICORN_CMD_ARGS cannot be rewritten: it contains a NUL byte; fix or unset it"
                            .into(),
                    );
                }
                EnvChange::Set(name.clone(), joined)
            };
            changes.push(change);
            notes.extend(
                filtered
                    .removed
                    .iter()
                    .map(|r| describe(r, ours, "GUNICORN_CMD_ARGS")),
            );
        }
    }
    Ok((changes, notes))
}

#[cfg(test)]
mod tests;
