//! The command line, as clap definitions (the man page and completions can
//! be generated from these, so they never drift from `--help`).

use crate::unit::UnitName;
use clap::{Args, Parser, Subcommand};

pub use crate::run_args::RunArgs;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "gunicorn-launcher",
    version,
    about = "Runs gunicorn bound to 0.0.0.0:8001, supervises it, and proves the port is open on every interface",
    long_about = None,
    disable_help_subcommand = true,
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

// Each subcommand's arguments are built only when that subcommand is the one run (or when
// help, the man page or completions need them all): `run` does not pay for the others'.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
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
        after_help = "Exit codes: 0 all interfaces and reachable, 1 bound to a single address (or held by another program), 3 nothing listening, 4 an HTTP probe failed, 5 the app rejects the Host remote browsers send (Django: ALLOWED_HOSTS), 6 the port is split between independent programs (SO_REUSEPORT), 7 the host firewall blocks the port from every other machine.\n\nExamples:\n  gunicorn-launcher check\n  gunicorn-launcher check --port 8001 --json\n  gunicorn-launcher check --host-name solvit.example.com\n  gunicorn-launcher check --from 192.0.2.10"
    )]
    Check(CheckArgs),
    /// Wrap the launcher around units that run gunicorn (a drop-in; the unit file is not edited), then restart and verify.
    #[command(
        after_help = "Exit codes: 0 installed (or nothing to change), 2 usage (unknown or invalid unit name, not gunicorn), 69 verification after install failed (the previous files are back), 70 a file could not be written, 78 a unit file cannot be read or conflicts, 128+N interrupted by signal N (130 SIGINT, 143 SIGTERM): the whole change made, or the previous files back.\n\nExamples:\n  gunicorn-launcher install --dry-run\n  gunicorn-launcher install solvit.service\n  gunicorn-launcher install 'solvit@.service' --no-restart\n  gunicorn-launcher install --root /srv/image --launcher /usr/bin/gunicorn-launcher"
    )]
    Install(InstallArgs),
    /// Remove the launcher's drop-ins, so the units run their own command again, and restart them.
    #[command(
        after_help = "Examples:\n  gunicorn-launcher uninstall solvit.service\n  gunicorn-launcher uninstall --dry-run\n  gunicorn-launcher uninstall --root /srv/image"
    )]
    Uninstall(UninstallArgs),
    /// List the units that run gunicorn, whether the launcher wraps them, and the check verdict of each port.
    #[command(
        after_help = "Exit code: 0 when every running unit's port verifies, else the check exit code of the first that does not (1 single address, 3 nothing listening, 4 HTTP probe failed).\n\nExamples:\n  gunicorn-launcher status\n  gunicorn-launcher status --json\n  gunicorn-launcher status --root /srv/image"
    )]
    Status(StatusArgs),
    /// Write the man page or a shell completion script to stdout (for packaging).
    #[command(hide = true)]
    Generate {
        #[arg(value_enum)]
        what: Generated,
        /// With `man`: write every page (gunicorn-launcher.1 and one per subcommand) into DIR.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
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
pub fn generate(
    what: Generated,
    out_dir: Option<&std::path::Path>,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    use clap::CommandFactory;
    use clap_complete::Shell;
    let mut cmd = Cli::command();
    let shell = match what {
        // The main page names a page per subcommand (gunicorn-launcher-run(1)...).
        Generated::Man => match out_dir {
            Some(dir) => return clap_mangen::generate_to(cmd, dir),
            None => return clap_mangen::Man::new(cmd).render(out),
        },
        Generated::Bash => Shell::Bash,
        Generated::Zsh => Shell::Zsh,
        Generated::Fish => Shell::Fish,
    };
    clap_complete::generate(shell, &mut cmd, "gunicorn-launcher", out);
    Ok(())
}

fn unit_name(s: &str) -> Result<UnitName, String> {
    UnitName::parse(s).map_err(|e| e.to_string())
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Units to wrap (default: every unit whose effective ExecStart runs gunicorn).
    #[arg(value_name = "UNIT", value_parser = unit_name)]
    pub units: Vec<UnitName>,
    /// Print the drop-ins and the old and new command lines; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Work on the unit files of the tree under DIR (an image, a chroot), without systemctl.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Write the drop-ins and daemon-reload, but neither restart nor verify.
    #[arg(long)]
    pub no_restart: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// The launcher's path as the units will run it (default: this program's own path).
    #[arg(long, value_name = "PATH")]
    pub launcher: Option<PathBuf>,
    /// Also write UNIT.socket (same base name) and enable it: systemd holds the port open
    /// while the service restarts and passes the socket to the launcher.
    #[arg(long)]
    pub socket_unit: bool,
    /// Do not hold the port's socket in the launcher (and systemd's file descriptor store):
    /// gunicorn binds it itself, and connections are refused while the unit restarts.
    #[arg(long, conflicts_with = "socket_unit")]
    pub no_hold_socket: bool,
}

#[derive(Debug, Args)]
pub struct UninstallArgs {
    /// Units to unwrap (default: every unit with the launcher's drop-in).
    #[arg(value_name = "UNIT", value_parser = unit_name)]
    pub units: Vec<UnitName>,
    /// Print what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Work on the unit files of the tree under DIR, without systemctl.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Remove and daemon-reload, but do not restart.
    #[arg(long)]
    pub no_restart: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Look at the unit files of the tree under DIR (no states, no verdicts).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A launcher config to judge by: its port, probe path, timeout and host names (flags given here win).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The port to inspect (default: the config's, else 8001).
    #[arg(long, short = 'p', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// The HTTP path to GET on every address (absolute, no spaces: the same rule as the config's verify.path; default: the config's, else /).
    #[arg(long, value_name = "PATH", value_parser = probe_path)]
    pub path: Option<String>,
    /// Per-address HTTP timeout, more than zero (default: the config's, else 2s).
    #[arg(long, value_name = "DURATION", value_parser = probe_timeout)]
    pub timeout: Option<std::time::Duration>,
    /// A name clients use (repeatable, beside the config's): probed at every address, and then only these answers decide whether the app rejects the Host.
    #[arg(long = "host-name", value_name = "NAME", value_parser = host_name)]
    pub host_names: Vec<String>,
    /// One row per process holding a listener (default: a master and its workers on one row).
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Judge the host firewall for a client at this address (default: any client; rules that depend on the client's address then say whom the port is open to).
    #[arg(long, value_name = "ADDRESS")]
    pub from: Option<std::net::IpAddr>,
}

fn probe_path(s: &str) -> Result<String, String> {
    crate::config::validate_path(s).map(|()| s.to_string())
}

fn probe_timeout(s: &str) -> Result<std::time::Duration, String> {
    crate::config::parse_duration(s, Some("no probe could be answered"))
}

fn host_name(s: &str) -> Result<String, String> {
    crate::config::validate_host_name(s).map(|()| s.to_string())
}

// The commands take requests of their own; the command line is one way to make them.

impl From<RunArgs> for crate::run::Request {
    fn from(a: RunArgs) -> Self {
        crate::run::Request {
            config: a.config,
            port: a.port,
            command: a.command,
            hold_socket: a.hold_socket,
        }
    }
}

impl From<InstallArgs> for crate::installer::install::Request {
    fn from(a: InstallArgs) -> Self {
        crate::installer::install::Request {
            units: a.units,
            dry_run: a.dry_run,
            root: a.root,
            no_restart: a.no_restart,
            json: a.json,
            launcher: a.launcher,
            socket_unit: a.socket_unit,
            no_hold_socket: a.no_hold_socket,
        }
    }
}

impl From<UninstallArgs> for crate::installer::uninstall::Request {
    fn from(a: UninstallArgs) -> Self {
        crate::installer::uninstall::Request {
            units: a.units,
            dry_run: a.dry_run,
            root: a.root,
            no_restart: a.no_restart,
            json: a.json,
        }
    }
}

impl From<StatusArgs> for crate::installer::status::Request {
    fn from(a: StatusArgs) -> Self {
        crate::installer::status::Request {
            root: a.root,
            json: a.json,
        }
    }
}

impl From<CheckArgs> for crate::check::Request {
    fn from(a: CheckArgs) -> Self {
        crate::check::Request {
            config: a.config,
            port: a.port,
            path: a.path,
            timeout: a.timeout,
            host_names: a.host_names,
            from: a.from,
            json: a.json,
            verbose: a.verbose,
        }
    }
}

#[cfg(test)]
mod tests;
