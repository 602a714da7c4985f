//! `run`'s arguments as clap definitions: the launcher's own command line, and a unit's
//! `ExecStart=gunicorn-launcher run ...` read the same way (by `status`).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The launcher's TOML config (every key optional; without it the embedded defaults serve).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The port to bind on all interfaces (default: the config's, else 8001).
    #[arg(long, short = 'p', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// Bind the port in the launcher and hand the socket to gunicorn (fd 3), so that
    /// restarts and crashes refuse no connection; a crashed master is restarted on it. Under
    /// systemd the socket also goes to its file descriptor store (FileDescriptorStoreMax=),
    /// which gives it back at the next start of the unit.
    #[arg(long)]
    pub hold_socket: bool,
    /// The whole gunicorn command, replacing the config's `[gunicorn]` section.
    #[arg(last = true, value_name = "GUNICORN COMMAND")]
    pub command: Vec<String>,
}

/// A whole `gunicorn-launcher [--log-format F] run ARGS...` command line, read as `run`
/// reads it; `None` when it is not one.
pub fn parse_run_line(argv: &[&str]) -> Option<RunArgs> {
    #[derive(Parser)]
    #[command(name = "gunicorn-launcher", disable_help_subcommand = true)]
    struct Line {
        #[arg(long, global = true, value_enum)]
        log_format: Option<crate::log::Format>,
        #[command(subcommand)]
        command: Only,
    }
    #[derive(Subcommand)]
    enum Only {
        Run(RunArgs),
    }
    let Only::Run(args) = Line::try_parse_from(argv).ok()?.command;
    Some(args)
}

#[cfg(test)]
mod tests;
