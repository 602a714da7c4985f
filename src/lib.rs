//! gunicorn-launcher runs gunicorn bound to all interfaces (`0.0.0.0:8001`
//! by default), supervises it, and proves from the kernel's socket table and
//! over HTTP that the port is open on every interface before it tells
//! systemd it is ready.
//!
//! One module per concern, each owning its data:
//!
//! - [`cli`]: the command line (clap definitions).
//! - [`config`]: the TOML config, defaults and validation.
//! - [`launch`], [`gunicorn_args`], [`command`]: pure command assembly; which
//!   launch form, where gunicorn's arguments start, every bind spelling
//!   removed, the launcher's bind placed right after the program, the child's
//!   environment cleaned; [`pyshlex`] splits and joins `GUNICORN_CMD_ARGS`
//!   exactly as gunicorn's Python `shlex` does.
//! - [`run`]: `run` and `print-command` as a handful of named steps;
//!   [`spawn`] forks and execs gunicorn; [`supervise`] is the loop over the
//!   signalfd, gunicorn's notify socket, the HTTP probes' sockets and a
//!   deadline; [`tree`] finds gunicorn's processes by the process tree, from
//!   the few `/proc` facts in [`proc`]; [`memory`] gives back start-up's
//!   pages once the launcher is idle.
//! - [`sockets`]: listening sockets from the kernel (sock_diag, or
//!   `/proc/net/tcp{,6}`); [`owners`]: which processes hold them, found
//!   without reading every fd table; [`probe`]: the HTTP probe (which
//!   addresses, the request, the non-blocking probes); [`verify`]: the single
//!   verdict that `run`, `check` and the installer share
//!   (`docs/sockets-and-probes.md` gives the reasons).
//! - [`notify`]: gunicorn's notify socket and systemd's; [`log`]: the
//!   launcher's own log lines, journald-aware.
//! - [`unit_file`]: systemd unit files read as systemd reads them; [`install`]:
//!   `install`, `uninstall` and `status`, which swap the launcher into existing
//!   units with a drop-in, verify, and roll back on failure.

pub mod check;
pub mod cli;
pub mod command;
pub mod config;
pub mod gunicorn_args;
pub mod install;
pub mod launch;
pub mod log;
pub mod memory;
pub mod notify;
pub mod owners;
pub mod probe;
pub mod proc;
pub mod pyshlex;
pub mod run;
pub mod sockets;
pub mod spawn;
pub mod supervise;
#[cfg(test)]
mod testnet;
pub mod tree;
pub mod unit_file;
pub mod verify;
pub mod workers;

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
