//! How a command ends when it cannot do its job: one [`Failure`](crate::error::Failure) type that carries the
//! exit code saying what kind of failure it is, so that every command maps failures to
//! codes the same way and `main` alone prints them.

use std::fmt;

/// The launcher's own exit codes (gunicorn's status passes through otherwise).
pub mod exit {
    /// Bad command line.
    pub const USAGE: i32 = 2;
    /// Startup verification failed (EX_UNAVAILABLE).
    pub const UNVERIFIED: i32 = 69;
    /// Internal error (EX_SOFTWARE): a system call the launcher needs failed.
    pub const SOFTWARE: i32 = 70;
    /// Configuration error (EX_CONFIG); units set RestartPreventExitStatus=78.
    pub const CONFIG: i32 = 78;
    pub const NOT_EXECUTABLE: i32 = 126;
    pub const NOT_FOUND: i32 = 127;
}

/// What went wrong, worded for the operator, and the exit code for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub fn new(code: i32, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }

    /// A bad command line (exit 2).
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::new(exit::USAGE, message)
    }

    /// Bad configuration, a unit file included (exit 78): retrying cannot help.
    pub fn config(message: impl Into<String>) -> Failure {
        Failure::new(exit::CONFIG, message)
    }

    /// A system call the launcher needs failed (exit 70).
    pub fn software(message: impl Into<String>) -> Failure {
        Failure::new(exit::SOFTWARE, message)
    }

    /// The same failure, its message prefixed with where it happened.
    pub fn context(self, prefix: impl fmt::Display) -> Failure {
        Failure::new(self.code, format!("{prefix}{}", self.message))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}
