//! The `gunicorn-launcher` binary: parses the command line and tells each
//! subcommand's story as a short sequence of named steps; the work lives in
//! the library's modules (see `lib.rs`).

use clap::Parser;
use cli::{Cli, Cmd, RunArgs};
use command::{Assembled, EnvChange, Note};
use gunicorn_launcher::{check, cli, command, config, install, launch, log, supervise, verify};
use std::process::ExitCode;

use gunicorn_launcher::exit;

fn main() -> ExitCode {
    let cli = Cli::parse();
    log::set_format(cli.log_format);
    let code = match cli.command {
        Cmd::Run(args) => run(&args),
        Cmd::PrintCommand(args) => print_command(&args),
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

/// Everything `run` decided before starting anything.
struct Plan {
    config: config::Config,
    assembled: Assembled,
    program: std::path::PathBuf,
    env: Vec<EnvChange>,
    notes: Vec<Note>,
}

fn run(args: &RunArgs) -> i32 {
    let plan = match plan(args) {
        Ok(plan) => plan,
        Err((code, msg)) => {
            log::error(&msg);
            return code;
        }
    };
    for note in &plan.notes {
        if note.warning {
            log::warn(&note.text);
        } else {
            log::info(&note.text);
        }
    }
    let c = &plan.config;
    let settings = supervise::Settings {
        target: verify::Target {
            port: c.port,
            path: c.probe_path.clone(),
            probe_timeout: c.probe_timeout,
        },
        stop_timeout: c.stop_timeout,
        startup_timeout: c.startup_timeout,
        recheck_interval: c.recheck_interval,
        on_failure: c.on_failure,
    };
    let child = supervise::Child {
        program: plan.program,
        argv: plan.assembled.argv,
        env: plan.env,
    };
    supervise::run(child, settings)
}

fn print_command(args: &RunArgs) -> i32 {
    let plan = match plan(args) {
        Ok(plan) => plan,
        Err((code, msg)) => {
            log::error(&msg);
            return code;
        }
    };
    let mut out = String::new();
    out.push_str(&format!("program: {}\n", plan.program.display()));
    for token in &plan.assembled.argv {
        out.push_str(&format!("argv: {token}\n"));
    }
    for change in &plan.env {
        match change {
            EnvChange::Unset(k) => out.push_str(&format!("env-unset: {k}\n")),
            EnvChange::Set(k, v) => out.push_str(&format!("env-set: {k}={v}\n")),
        }
    }
    out.push_str("env-set: NOTIFY_SOCKET=<the launcher's own socket>\n");
    for note in &plan.notes {
        out.push_str(&format!("note: {}\n", note.text));
    }
    print!("{out}");
    0
}

/// Config, command, program and environment, each checked before anything
/// starts; the error carries the exit code.
fn plan(args: &RunArgs) -> Result<Plan, (i32, String)> {
    let mut config = match &args.config {
        Some(path) => config::load(path).map_err(|e| (exit::CONFIG, e.0))?,
        None => config::Config::default(),
    };
    if let Some(port) = args.port {
        config.port = port;
    }
    let (command, origin_code) = chosen_command(&config, args);
    let assembled =
        command::assemble(&command, config.host, config.port).map_err(|e| (origin_code, e))?;
    let program = launch::resolve(&assembled.argv, &assembled.launch).map_err(|e| match e {
        launch::Unrunnable::NotFound(m) => (exit::NOT_FOUND, format!("gunicorn not found: {m}")),
        launch::Unrunnable::NotExecutable(m) => (
            exit::NOT_EXECUTABLE,
            format!("gunicorn not executable: {m}"),
        ),
    })?;
    let env: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let ours = command::bind_value(config.host, config.port);
    let (env, env_notes) = command::env_changes(&env, &ours).map_err(|e| (exit::CONFIG, e))?;
    let mut notes = assembled.notes.clone();
    notes.extend(env_notes);
    let gunicorn_args = &assembled.argv[assembled.launch.program_len..];
    let (stop_timeout, note) = command::stop_timeout_for(gunicorn_args, config.stop_timeout);
    config.stop_timeout = stop_timeout;
    notes.extend(note);
    Ok(Plan {
        config,
        assembled,
        program,
        env,
        notes,
    })
}

/// The command after `--` wins whole; otherwise the config's program, args
/// and app. Returns the exit code for refusing it: a bad command line is a
/// usage error, a bad config a config error.
fn chosen_command(config: &config::Config, args: &RunArgs) -> (Vec<String>, i32) {
    if !args.command.is_empty() {
        return (args.command.clone(), exit::USAGE);
    }
    let mut command = config.command.clone();
    command.extend(config.args.iter().cloned());
    command.extend(config.app.iter().cloned());
    (command, exit::CONFIG)
}
