//! The `gunicorn-launcher` binary: parses the command line and hands each
//! subcommand to the library module that tells its story (see `lib.rs`).

use clap::Parser;
use gunicorn_launcher::cli::{self, Cli, Cmd};
use gunicorn_launcher::error::Failure;
use gunicorn_launcher::{check, installer, log, output, run};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    log::set_format(cli.log_format);
    // install and uninstall are transactions: their status is what they did, whether or
    // not anyone still reads their output.
    let transaction = matches!(cli.command, Cmd::Install(_) | Cmd::Uninstall(_));
    let ended = match cli.command {
        Cmd::Run(args) => run::run(&args.into()),
        Cmd::PrintCommand(args) => run::print_command(&args.into()),
        Cmd::Check(args) => check::run(&args.into()),
        Cmd::Install(args) => Ok(installer::install(&args.into())),
        Cmd::Uninstall(args) => Ok(installer::uninstall(&args.into())),
        Cmd::Status(args) => Ok(installer::status(&args.into())),
        Cmd::Generate { what, out_dir } => generate(what, out_dir.as_deref()),
    };
    let code = ended.unwrap_or_else(|failure| {
        log::error(&failure.message);
        failure.code
    });
    // A reader that went away ends a command that only shows something as SIGPIPE would.
    let code = if output::closed() && !transaction {
        output::SIGPIPE_STATUS
    } else {
        code
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// The man page or a completion script, on stdout (or man pages into a directory).
fn generate(what: cli::Generated, out_dir: Option<&std::path::Path>) -> Result<i32, Failure> {
    let mut text = Vec::new();
    cli::generate(what, out_dir, &mut text)
        .map_err(|e| Failure::software(format!("cannot write: {e}")))?;
    output::print(&String::from_utf8_lossy(&text));
    Ok(0)
}
