//! gunicorn-launcher runs gunicorn bound to all interfaces (`0.0.0.0:8001` by default),
//! supervises it, and proves from the kernel's socket table and over HTTP that the port is
//! open on every interface before it tells systemd it is ready. One room per question; the
//! reasoning behind them is in `docs/`.

/// `check`: the verdict on a port, shown.
pub mod check;
/// The command line, as clap definitions (man page and completions come from them).
pub mod cli;
/// gunicorn's command and environment, assembled with the launcher's bind.
pub mod command;
/// The launcher's TOML config.
pub mod config;
/// The one failure type, and the exit codes.
pub mod error;
/// What the host firewall does to a connection from another machine.
pub mod firewall;
/// Every bind and daemon spelling gunicorn's parser accepts.
pub mod gunicorn_args;
/// The listening socket the launcher holds for gunicorn (bound, activated, or stored).
pub mod held_socket;
/// `install`, `uninstall` and `status`: the launcher wrapped into existing units.
pub mod installer;
/// Which launch form and which program run gunicorn.
pub mod launch;
/// The launcher's own log lines.
pub mod log;
/// Start-up's pages given back once idle.
pub mod memory;
/// Netlink sockets to the kernel.
pub mod netlink;
/// gunicorn's notify socket, and systemd's.
pub mod notify;
/// Every command's output, through one writer that a closed reader ends quietly.
pub mod output;
/// Waiting on descriptors with a deadline.
pub mod pollset;
/// The HTTP probe of each address.
pub mod probe;
/// gunicorn's processes as the kernel shows them.
pub mod process;
/// `GUNICORN_CMD_ARGS` split and joined as Python does.
pub mod pyshlex;
/// `run` and `print-command`, as named steps.
pub mod run;
/// `run`'s arguments, also read from a unit's command line.
pub mod run_args;
/// Listening sockets, from the kernel's table.
pub mod sockets;
/// gunicorn started: clone and exec.
pub mod spawn;
/// How long a stop may take, for the launcher and for systemd.
pub mod stop_budget;
/// The supervisor: one loop, one transition.
pub mod supervise;
#[cfg(test)]
mod test_support;
/// Unit files read as systemd reads them.
pub mod unit;
/// The one verdict: listening everywhere, and answering what a remote browser sends.
pub mod verify;

pub use error::exit;
