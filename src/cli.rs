//! The command line, as clap definitions (the man page and completions can
//! be generated from these, so they never drift from `--help`).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "gunicorn-launcher",
    version,
    about = "Runs gunicorn bound to 0.0.0.0:8001, supervises it, and proves the port is open on every interface",
    long_about = None,
    after_help = "Exit codes of run: 0 clean stop; gunicorn's own status passed through; 128+N killed by signal N; \
2 usage; 69 startup verification failed; 78 configuration error; 126 gunicorn not executable; 127 gunicorn not found.\n\n\
Examples:\n  gunicorn-launcher run -- /opt/solvit/venv/bin/gunicorn -w 3 -b 127.0.0.1:8001 solvit.wsgi\n  \
gunicorn-launcher check --port 8001\n  gunicorn-launcher print-command --config /etc/gunicorn-launcher/solvit.toml"
)]
pub struct Cli {
    /// How the launcher writes its own log lines (gunicorn's output is untouched).
    #[arg(long, global = true, value_enum, default_value_t = crate::log::Format::Text)]
    pub log_format: crate::log::Format,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Start gunicorn on all interfaces, supervise it, verify the port, notify systemd.
    #[command(
        after_help = "Examples:\n  gunicorn-launcher run\n  gunicorn-launcher run --config /etc/solvit/launcher.toml\n  gunicorn-launcher run -- /opt/solvit/venv/bin/gunicorn -w 3 -b 127.0.0.1:8001 solvit.wsgi"
    )]
    Run(RunArgs),
    /// Print the command `run` would start, one token per line, and every environment change; start nothing.
    #[command(
        after_help = "Examples:\n  gunicorn-launcher print-command -- gunicorn -b 127.0.0.1:8001 app:app\n  gunicorn-launcher print-command --config examples/solvit.toml"
    )]
    PrintCommand(RunArgs),
    /// Show every listener on the port, its owner, and whether it answers HTTP on every address.
    #[command(
        after_help = "Exit codes: 0 all interfaces and reachable, 1 bound to a single address, 3 nothing listening, 4 an HTTP probe failed.\n\nExamples:\n  gunicorn-launcher check\n  gunicorn-launcher check --port 8001 --json"
    )]
    Check(CheckArgs),
    /// Write the man page or a shell completion script to stdout (for packaging).
    #[command(hide = true)]
    Generate {
        #[arg(value_enum)]
        what: Generated,
    },
}

/// What `generate` writes.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Generated {
    Man,
    Bash,
    Zsh,
    Fish,
}

/// The man page or a completion script, from these very definitions, so
/// neither can drift from `--help`.
pub fn generate(what: Generated, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    use clap::CommandFactory;
    use clap_complete::Shell;
    let mut cmd = Cli::command();
    let shell = match what {
        Generated::Man => return clap_mangen::Man::new(cmd).render(out),
        Generated::Bash => Shell::Bash,
        Generated::Zsh => Shell::Zsh,
        Generated::Fish => Shell::Fish,
    };
    clap_complete::generate(shell, &mut cmd, "gunicorn-launcher", out);
    Ok(())
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The launcher's TOML config (every key optional; without it the embedded defaults serve).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The port to bind on all interfaces (default: the config's, else 8001).
    #[arg(long, short = 'p', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// The whole gunicorn command, replacing the config's [gunicorn] section.
    #[arg(last = true, value_name = "GUNICORN COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The port to inspect.
    #[arg(long, short = 'p', value_name = "N", default_value_t = 8001, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// The HTTP path to GET on every address.
    #[arg(long, value_name = "PATH", default_value = "/")]
    pub path: String,
    /// Per-address HTTP timeout.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
}
