//! The `gunicorn-launcher` binary: parses the command line and hands each
//! subcommand to the library module that tells its story (see `lib.rs`).

use clap::Parser;
use gunicorn_launcher::cli::{self, Cli, Cmd};
use gunicorn_launcher::{check, exit, install, log, run};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    log::set_format(cli.log_format);
    let code = match cli.command {
        Cmd::Run(args) => run::run(&args),
        Cmd::PrintCommand(args) => run::print_command(&args),
        Cmd::Check(args) => check::run(&args),
        Cmd::Install(args) => install::install(&args),
        Cmd::Uninstall(args) => install::uninstall(&args),
        Cmd::Status(args) => install::status(&args),
        Cmd::Generate { what, out_dir } => {
            match cli::generate(what, out_dir.as_deref(), &mut std::io::stdout()) {
                Ok(()) => 0,
                Err(e) => {
                    log::error(&format!("cannot write: {e}"));
                    exit::SOFTWARE
                }
            }
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
