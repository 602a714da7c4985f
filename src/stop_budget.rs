//! How long a stop may take, decided once for the launcher and for the units it writes.
//!
//! gunicorn finishes its requests for up to its graceful timeout (30 s by default,
//! `--graceful-timeout`), the launcher must wait longer before it SIGKILLs what is left, and
//! systemd (`TimeoutStopSec=`) longer still before it kills the launcher: each budget is the
//! one inside it plus a margin.

use crate::command::Note;
use crate::gunicorn_args;
use std::time::Duration;

/// The launcher's default stop timeout: gunicorn's default graceful timeout (30 s) + margin.
pub const LAUNCHER_DEFAULT: Duration = Duration::from_secs(35);

/// What each budget keeps above the one inside it.
const MARGIN: Duration = Duration::from_secs(5);

/// gunicorn's `--graceful-timeout` on its command line, when it is a number of seconds
/// here (a `$VAR` expanded at run time is not).
enum Graceful {
    Absent,
    Seconds(Duration),
    NotANumber(String),
}

fn graceful(gunicorn_args: &[String]) -> Graceful {
    let Some(value) = gunicorn_args::option_value(gunicorn_args, "graceful-timeout") else {
        return Graceful::Absent;
    };
    match value.trim().parse::<f64>() {
        Ok(g) if g.is_finite() && g >= 0.0 => {
            Graceful::Seconds(Duration::from_secs_f64(g.min(1e9)))
        }
        _ => Graceful::NotANumber(value),
    }
}

/// The launcher's stop timeout: `configured`, raised to gunicorn's graceful timeout +
/// margin when that is not below it (or the launcher would SIGKILL workers still finishing
/// requests), with a note saying so.
pub fn launcher(gunicorn_args: &[String], configured: Duration) -> (Duration, Option<Note>) {
    match graceful(gunicorn_args) {
        Graceful::Seconds(g) if configured <= g => {
            let raised = g + MARGIN;
            let note = Note {
                warning: false,
                text: format!(
                    "stop timeout raised from {configured:?} to {raised:?}: above gunicorn's --graceful-timeout {g:?}"
                ),
            };
            (raised, Some(note))
        }
        _ => (configured, None),
    }
}

/// `TimeoutStopSec=` (whole seconds) for a unit whose launcher runs `gunicorn_args` with
/// the default stop timeout: the launcher's budget + margin, and a note when the graceful
/// timeout moved it or could not be read.
pub fn systemd(gunicorn_args: &[String]) -> (u64, Option<String>) {
    let (launcher, _) = launcher(gunicorn_args, LAUNCHER_DEFAULT);
    let secs = (launcher + MARGIN).as_secs_f64().ceil() as u64;
    let note = match graceful(gunicorn_args) {
        Graceful::NotANumber(value) => Some(format!(
            "--graceful-timeout {value} is not a number here (expanded at run time?): \
             TimeoutStopSec={secs}s"
        )),
        Graceful::Seconds(g) if launcher > LAUNCHER_DEFAULT => Some(format!(
            "--graceful-timeout {value}: the launcher waits up to {launcher:?} for gunicorn to \
             stop, systemd up to TimeoutStopSec={secs}s",
            value = g.as_secs_f64()
        )),
        _ => None,
    };
    (secs, note)
}

#[cfg(test)]
mod tests;
