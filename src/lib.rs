//! gunicorn-launcher runs gunicorn bound to all interfaces (`0.0.0.0:8001` by default),
//! supervises it, and proves from the kernel's socket table and over HTTP that the port is
//! open on every interface before it tells systemd it is ready.
//!
//! The map, one room per question (the design notes behind them are in `docs/`):
//!
//! **Commands.** [`cli`] the command line (it makes each command's request); [`run`] `run`
//! and `print-command` as named steps; [`check`] `check`; [`install`] `install`,
//! `uninstall` and `status`; [`error`] the one failure type and the exit codes.
//!
//! **What gunicorn is started with.** [`config`] the TOML config; [`launch`] which launch
//! form and which program; [`gunicorn_args`] every bind and daemon spelling gunicorn's
//! parser accepts; [`command`] the command and environment assembled;
//! [`pyshlex`] `GUNICORN_CMD_ARGS` split and joined as Python does; [`stop_budget`] how
//! long a stop may take (launcher and systemd).
//!
//! **Running it.** [`listen_socket`] the socket the launcher holds (bound by it, or
//! passed by systemd); [`spawn`] clone and exec; [`supervise`] the one loop (its rooms:
//! signals in and out, verification, the ending, a restart on the held socket); [`tree`] gunicorn's processes by the
//! process tree; [`proc`] the few `/proc` facts; [`workers`] what the workers die of;
//! [`notify`] gunicorn's notify socket and systemd's; [`memory`] start-up's pages given
//! back; [`log`] the launcher's own lines.
//!
//! **The verdict.** [`sockets`] listening sockets from the kernel; [`owners`] which
//! processes hold them; [`probe`] the HTTP probe (`probe::targets`: which addresses are
//! probed; `probe::http`: the request and the status line; `probe::nonblocking`: probes in
//! the loop's poll set); [`firewall`] what the host firewall does to a connection from
//! another machine; [`verify`] the one verdict, `verify::render` how it is shown.
//!
//! **Units.** [`unit`](mod@unit) unit files read as systemd reads them (`unit::name`,
//! `unit::syntax`, `unit::exec`, `unit::paths`, `unit::name_map`, `unit::dropins`: how a
//! unit's drop-ins are found and ordered, `unit::load`). The installer's rooms:
//! `install::discover` which units run gunicorn, `install::binding` what a command binds,
//! `install::dropin` how a drop-in is written, `install::socket_unit` the `.socket` unit
//! that holds the port across restarts, `install::conflicts` what else claims the port, `install::files` symlink-safe writes with their undo, `install::apply`,
//! `install::uninstall`, `install::status`.

pub mod check;
pub mod cli;
pub mod command;
pub mod config;
pub mod error;
pub mod firewall;
pub mod gunicorn_args;
pub mod install;
pub mod launch;
pub mod listen_socket;
pub mod log;
pub mod memory;
pub mod notify;
pub mod output;
pub mod owners;
pub mod pollset;
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
