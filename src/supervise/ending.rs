//! How gunicorn ended: its status in words, and what the launcher ends with.

use nix::sys::wait::WaitStatus;

/// How gunicorn ended, for the launcher's exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ending {
    /// The master's last status.
    pub status: WaitStatus,
    /// The launcher's own code instead (verification failed).
    pub code: Option<i32>,
    /// gunicorn died of the very signal the launcher was asked to stop with (it had no
    /// handler yet): the launcher should end the same way.
    pub died_of_our_stop: bool,
}

/// How the launcher itself ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// With this status.
    Code(i32),
    /// By this signal's default action, as gunicorn did (systemd counts it a clean stop;
    /// exit 143 would be `Result=exit-code`). As PID 1 of a PID namespace the kernel
    /// discards a signal without a handler: then `Code(128 + N)`, as tini does.
    Signal(nix::sys::signal::Signal),
}

/// The launcher's end for `ending`: its own code (a failed verification), gunicorn's status,
/// or 128+N for a signal N (the signal itself when it was the one asked for, unless PID 1).
pub fn exit_of(ending: Ending, pid_1: bool) -> Exit {
    if let Some(code) = ending.code {
        return Exit::Code(code);
    }
    match ending.status {
        WaitStatus::Exited(_, code) => Exit::Code(code),
        WaitStatus::Signaled(_, sig, _) if ending.died_of_our_stop && !pid_1 => Exit::Signal(sig),
        WaitStatus::Signaled(_, sig, _) => Exit::Code(128 + sig as i32),
        _ => Exit::Code(crate::exit::SOFTWARE),
    }
}

/// gunicorn's exit status in words (its own codes: 3 worker boot error,
/// 4 app load error).
pub fn describe_status(status: WaitStatus) -> String {
    match status {
        WaitStatus::Exited(_, 0) => "exit status 0".into(),
        WaitStatus::Exited(_, 1) => {
            "exit status 1 (gunicorn's generic error: see its output above)".into()
        }
        WaitStatus::Exited(_, 2) => "exit status 2 (gunicorn rejected its command line: see its usage message above)".into(),
        WaitStatus::Exited(_, 3) => {
            "exit status 3 (WORKER_BOOT_ERROR: a worker failed to boot; see the traceback above)".into()
        }
        WaitStatus::Exited(_, 4) => {
            "exit status 4 (APP_LOAD_ERROR: the application could not be imported; check the app path, the working directory and the virtualenv)".into()
        }
        WaitStatus::Exited(_, c) => format!("exit status {c}"),
        WaitStatus::Signaled(_, sig, core) => {
            format!("killed by {sig}{}", if core { " (core dumped)" } else { "" })
        }
        other => format!("{other:?}"),
    }
}
