//! The `gunicorn-launcher` binary: parses the command line and hands each
//! subcommand to the library module that tells its story (see `lib.rs`).
//!
//! Its entry is C's `main`, not Rust's: std's own start reads `/proc/self/maps` to find the
//! main thread's stack and sets up an alternate signal stack for a stack-overflow message,
//! a dozen system calls at every start of a program whose start is measured against tini's.
//! What the launcher needs of that start is done in [`prepare`]; std's arguments are still
//! set (glibc hands them to std's initialiser before `main`), and a stack overflow ends the
//! launcher with a plain SIGSEGV instead of a message.
// A test build keeps Rust's entry for libtest's harness (the binary has no tests of its own).
#![cfg_attr(not(test), no_main)]
#![cfg_attr(test, allow(dead_code))]

use clap::Parser;
use gunicorn_launcher::cli::{self, Cli, Cmd};
use gunicorn_launcher::error::Failure;
use gunicorn_launcher::{check, installer, log, output, run};
use nix::fcntl::{FcntlArg, OFlag, fcntl, open};
use nix::sys::signal::{SigHandler, Signal, signal};
use nix::sys::stat::Mode;

// SAFETY: the program's only `main`; glibc's start calls it once, with the C signature
// given here, and nothing else in the program or its libraries defines the symbol.
#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    prepare();
    let code = launch();
    // Flushes std's stdout as a return from Rust's `main` would, then exits.
    std::process::exit(code)
}

/// What std's start does that the launcher relies on: SIGPIPE ignored, so that a reader
/// that went away shows as an error ([`output`]), and stdin, stdout and stderr open, so that
/// no socket the launcher opens lands on one of them (on /dev/null where one was closed).
fn prepare() {
    // SAFETY: SIG_IGN runs no code of ours in a signal's context.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) };
    for fd in 0..=2 {
        // The lowest free descriptor is this one. Without /dev/null the next socket would
        // take it: the launcher stops there, as std's start does.
        if fcntl(fd, FcntlArg::F_GETFD) == Err(nix::errno::Errno::EBADF)
            && open("/dev/null", OFlag::O_RDWR, Mode::empty()).is_err()
        {
            std::process::abort();
        }
    }
}

/// The subcommand's story; its exit status.
fn launch() -> i32 {
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
    i32::from(u8::try_from(code).unwrap_or(1))
}

/// The man page or a completion script, on stdout (or man pages into a directory).
fn generate(what: cli::Generated, out_dir: Option<&std::path::Path>) -> Result<i32, Failure> {
    let mut text = Vec::new();
    cli::generate(what, out_dir, &mut text)
        .map_err(|e| Failure::software(format!("cannot write: {e}")))?;
    output::print(&String::from_utf8_lossy(&text));
    Ok(0)
}
