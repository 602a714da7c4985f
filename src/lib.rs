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
//! - [`unit`](mod@unit): systemd unit files read as systemd reads them, one
//!   file per part: `unit/name.rs` unit names, templates and instances;
//!   `unit/syntax.rs` one file to sections and entries (continuations,
//!   comments, line ends); `unit/exec.rs` `ExecStart=` lines split into
//!   words and written back; `unit/paths.rs` the search path and symlinks
//!   resolved inside a root; `unit/name_map.rs` which file a name loads
//!   (aliases, linked units, masks); `unit/dropins.rs` how a unit's drop-ins
//!   are found and ordered; `unit/load.rs` a loaded unit and a setting's
//!   effective value.
//! - [`install`]: `install`, `uninstall` and `status`, which swap the launcher
//!   into existing units with a drop-in, verify, and roll back on failure;
//!   [`install::gunicorn_unit`] decides which unit commands run gunicorn.

pub mod check;
pub mod cli;
pub mod command;
pub mod config;
pub mod error;
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
pub mod stop_budget;
pub mod supervise;
#[cfg(test)]
mod testnet;
pub mod tree;
pub mod unit;
pub mod verify;
pub mod workers;

pub use error::exit;
