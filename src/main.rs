//! The `gunicorn-launcher` binary: parses the command line and hands each
//! subcommand to the library module that tells its story (see `lib.rs`).

use clap::Parser;
use gunicorn_launcher::cli::{self, Cli, Cmd};
use gunicorn_launcher::error::Failure;
use gunicorn_launcher::{check, install, log, run};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    log::set_format(cli.log_format);
    let ended = match cli.command {
        Cmd::Run(args) => run::run(&args.into()),
        Cmd::PrintCommand(args) => run::print_command(&args.into()),
        Cmd::Check(args) => Ok(check::run(&args.into())),
        Cmd::Install(args) => Ok(install::install(&args.into())),
        Cmd::Uninstall(args) => Ok(install::uninstall(&args.into())),
        Cmd::Status(args) => Ok(install::status(&args.into())),
        Cmd::Generate { what, out_dir } => {
            cli::generate(what, out_dir.as_deref(), &mut std::io::stdout())
                .map(|()| 0)
                .map_err(|e| Failure::software(format!("cannot write: {e}")))
        }
    };
    let code = ended.unwrap_or_else(|failure| {
        log::error(&failure.message);
        failure.code
    });
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
