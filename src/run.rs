//! `run` and `print-command`, told as tini tells its `main`: configuration,
//! command, spawn, supervise, exit status. Each step is a function below;
//! the work is in the modules they call.

use crate::command::{self, Assembled, ChildEnv, EnvChange, Note};
use crate::error::Failure;
use crate::held_socket;
use crate::notify::{ChildSocket, Systemd};
use crate::supervise::{self, Ending};
use crate::{config, exit, gunicorn_args, launch, log, spawn, stop_budget, verify};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::unistd::Pid;
use std::os::fd::{AsFd, AsRawFd};

/// What `run` and `print-command` are asked (the command line's words, parsed).
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// The launcher's TOML config; without it the embedded defaults serve.
    pub config: Option<std::path::PathBuf>,
    /// The port, over the config's.
    pub port: Option<u16>,
    /// The whole gunicorn command (after `--`), over the config's.
    pub command: Vec<String>,
    /// Hold the socket (`--hold-socket`), over the config's `bind.hold_socket`.
    pub hold_socket: bool,
}

/// Who binds the port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listening {
    /// gunicorn itself, on the launcher's `--bind`.
    Gunicorn,
    /// The launcher, which holds the socket and hands it to each gunicorn.
    Held,
    /// systemd (a `.socket` unit), which passed it to the launcher.
    Activated,
}

/// Everything `run` decided before starting anything.
pub struct Plan {
    pub config: config::Config,
    pub assembled: Assembled,
    pub program: std::path::PathBuf,
    pub env: ChildEnv,
    pub notes: Vec<Note>,
    pub listening: Listening,
    /// What systemd passed: a `.socket` unit's socket, or the launcher's own from the store.
    pub passed: held_socket::Passed,
}

/// `run`: gunicorn's exit status (or the launcher's verdict) once it has ended.
pub fn run(args: &Request) -> Result<i32, Failure> {
    let plan = configure(args)?;
    announce(&plan.notes);
    // First: a socket systemd passed is fd 3 only until this process opens anything else.
    let held = hold(&plan)?;
    let signals = supervise::take_signals().map_err(Failure::software)?;
    let notify = ChildSocket::bind()
        .map_err(|e| Failure::software(format!("cannot create gunicorn's notify socket: {e}")))?;
    let (master, command) = start(&plan, &notify.address, held.as_ref())?;
    // With the socket held, a crashed master is started again on it.
    let respawn = held.as_ref().map(|_| supervise::restart::Respawn {
        command,
        burst: plan.config.restart_burst,
        interval: plan.config.restart_interval,
    });
    let target = verify::Target::of(&plan.config);
    let ending = supervise::supervise(
        master,
        &signals,
        &notify,
        target,
        settings(&plan.config),
        respawn,
    )
    .map_err(Failure::software)?;
    drop(held);
    Ok(exit_status(ending))
}

/// The socket the launcher holds, if it holds one: passed by a `.socket` unit, given back
/// from systemd's file descriptor store, or bound now (and then handed to that store).
fn hold(plan: &Plan) -> Result<Option<held_socket::Held>, Failure> {
    let c = &plan.config;
    let systemd = Systemd::from_env();
    let taken = held_socket::take(&plan.passed, c.port, plan.listening == Listening::Held)?;
    for dropped in &taken.dropped {
        systemd.remove_stored(&dropped.name);
        log::info(&format!(
            "dropped the socket systemd kept for the launcher as {}: {}",
            dropped.name, dropped.why
        ));
    }
    let held = match (plan.listening, taken.held) {
        (Listening::Gunicorn, _) => return Ok(None),
        (_, Some(held)) => held,
        (Listening::Activated, None) => {
            return Err(Failure::software("the socket systemd passed is gone"));
        }
        (Listening::Held, None) => {
            let held = held_socket::bind_and_hold(c.host, c.port, c.backlog)?;
            keep_in_store(&systemd, &held);
            held
        }
    };
    log::info(&format!(
        "listening on {}; gunicorn takes it as fd 3 and binds nothing itself",
        held.describe()
    ));
    Ok(Some(held))
}

/// Under systemd, the socket just bound goes to its file descriptor store too: the next
/// start of the unit (`systemctl restart`, or `Restart=` after the launcher died) takes it
/// back, and the port stays open in between. Only `systemctl stop` flushes the store.
fn keep_in_store(systemd: &Systemd, held: &held_socket::Held) {
    if !systemd.present() {
        return;
    }
    let name = held_socket::store_name(held.addr.port());
    match systemd.store(&name, held.fd.as_fd()) {
        Ok(()) => log::info(&format!(
            "handed the socket to systemd's file descriptor store as {name} (kept when the unit \
             sets FileDescriptorStoreMax=, as install does): a restart takes it back, so the \
             port stays open across it"
        )),
        Err(e) => log::warn(&format!(
            "could not hand the socket to systemd's file descriptor store ({e}): a restart of \
             the unit closes the port until the launcher binds it again"
        )),
    }
}

/// Configuration and command: the config, the command, the program and the
/// environment, each checked before anything starts; the error carries the
/// exit code.
pub fn configure(args: &Request) -> Result<Plan, Failure> {
    let mut config = match &args.config {
        Some(path) => config::load(path)?,
        None => config::Config::default(),
    };
    if let Some(port) = args.port {
        config.port = port;
    }
    let (command, origin_code) = chosen_command(&config, args);
    let assembled = command::assemble(&command, config.host, config.port)
        .map_err(|e| Failure::new(origin_code, e))?;
    let program = resolve(&assembled)?;
    let passed = held_socket::Passed::read(
        std::env::var("LISTEN_PID").ok().as_deref(),
        std::env::var("LISTEN_FDS").ok().as_deref(),
        std::env::var("LISTEN_FDNAMES").ok().as_deref(),
    )?;
    let listening = if passed.activated() {
        Listening::Activated
    } else if config.hold_socket || args.hold_socket {
        Listening::Held
    } else {
        Listening::Gunicorn
    };
    if listening != Listening::Gunicorn {
        refuse_reuse_port(
            &assembled,
            &std::env::var("GUNICORN_CMD_ARGS").unwrap_or_default(),
        )?;
    }
    let (env, env_notes) = child_env(&config, listening)?;
    fits_exec(&assembled.argv, origin_code, &env)?;
    let mut notes = assembled.notes.clone();
    notes.extend(env_notes);
    let gunicorn_args = &assembled.argv[assembled.launch.program_len..];
    let (stop_timeout, note) = stop_budget::launcher(gunicorn_args, config.stop_timeout);
    config.stop_timeout = stop_timeout;
    notes.extend(note);
    notes.extend(listening_note(listening));
    Ok(Plan {
        config,
        assembled,
        program,
        env,
        notes,
        listening,
        passed,
    })
}

/// The program that will run, or why none can.
fn resolve(assembled: &Assembled) -> Result<std::path::PathBuf, Failure> {
    launch::resolve(&assembled.argv, &assembled.launch).map_err(|e| match e {
        launch::Unrunnable::NotFound(m) => {
            Failure::new(exit::NOT_FOUND, format!("gunicorn not found: {m}"))
        }
        launch::Unrunnable::NotExecutable(m) => Failure::new(
            exit::NOT_EXECUTABLE,
            format!("gunicorn not executable: {m}"),
        ),
    })
}

/// gunicorn's environment, made once from the launcher's: what would pass it another bind
/// or socket removed, and `LISTEN_FDS=1` when it gets the held socket.
fn child_env(
    config: &config::Config,
    listening: Listening,
) -> Result<(ChildEnv, Vec<Note>), Failure> {
    let inherited: Vec<(std::ffi::OsString, std::ffi::OsString)> = std::env::vars_os().collect();
    let text: Vec<(String, String)> = inherited
        .iter()
        .filter_map(|(k, v)| Some((k.to_str()?.to_string(), v.to_str()?.to_string())))
        .collect();
    let ours = command::bind_value(config.host, config.port);
    let (changes, notes) = command::env_changes(&text, &ours).map_err(Failure::config)?;
    let mut env = ChildEnv::of(inherited, changes);
    if listening != Listening::Gunicorn {
        env.put("LISTEN_FDS", Some("1"));
    }
    Ok((env, notes))
}

/// What the log says of who binds the port, when it is not gunicorn.
fn listening_note(listening: Listening) -> Option<Note> {
    let how = match listening {
        Listening::Gunicorn => return None,
        Listening::Activated => "systemd passed the port's socket",
        Listening::Held => "the launcher holds the port's socket",
    };
    Some(Note {
        warning: false,
        text: format!(
            "{how}: gunicorn takes it as fd 3 (LISTEN_FDS=1) and binds nothing, so \
             restarts refuse no connection"
        ),
    })
}

/// The kernel's limit on one argument or environment string, NUL included
/// (`MAX_ARG_STRLEN`, 32 pages).
const MAX_ARG_STRLEN: usize = 32 * 4096;

/// What `execve` would refuse with E2BIG, refused now with the limit named
/// (and the exit code of where the words came from), rather than found at
/// exec time: one argument or variable over `MAX_ARG_STRLEN`, or arguments
/// and environment together over `ARG_MAX` (a quarter of the stack limit).
fn fits_exec(argv: &[String], origin_code: i32, env: &ChildEnv) -> Result<(), Failure> {
    let too_long = |what: String, len: usize| {
        format!(
            "{what} is {len} bytes long; the kernel refuses any single argument or environment variable \
             of more than {} bytes (MAX_ARG_STRLEN): move the long value into a file gunicorn reads \
             (-c gunicorn.conf.py) or shorten it",
            MAX_ARG_STRLEN - 1
        )
    };
    for (i, word) in argv.iter().enumerate() {
        if word.len() + 1 > MAX_ARG_STRLEN {
            return Err(Failure::new(
                origin_code,
                too_long(format!("argument {i} of the gunicorn command"), word.len()),
            ));
        }
    }
    // `KEY=VALUE` as execve receives it, measured in bytes (not formatted: the
    // environment can be large, and this runs at every start).
    let var_len = |(k, v): &(std::ffi::OsString, std::ffi::OsString)| k.len() + 1 + v.len();
    for var in &env.vars {
        if var_len(var) + 1 > MAX_ARG_STRLEN {
            return Err(Failure::config(too_long(
                format!("the environment variable {}", var.0.to_string_lossy()),
                var_len(var),
            )));
        }
    }
    // Our own NOTIFY_SOCKET (about 50 bytes) and the pointer arrays come on top.
    let pointer = std::mem::size_of::<usize>();
    let total: usize = argv
        .iter()
        .map(String::len)
        .chain(env.vars.iter().map(var_len))
        .map(|len| len + 1 + pointer)
        .sum::<usize>()
        + 128;
    let limit = nix::unistd::sysconf(nix::unistd::SysconfVar::ARG_MAX)
        .ok()
        .flatten()
        .map_or(usize::MAX, |l| l as usize);
    if total > limit {
        return Err(Failure::new(
            origin_code,
            format!(
                "the gunicorn command and its environment take {total} bytes; the kernel refuses more than \
                 {limit} (ARG_MAX, a quarter of the stack limit): shorten them, or raise the stack limit \
                 (LimitSTACK= in the unit)"
            ),
        ));
    }
    Ok(())
}

/// The command after `--` wins whole; otherwise the config's program, args
/// and app. Returns the exit code for refusing it: a bad command line is a
/// usage error, a bad config a config error.
fn chosen_command(config: &config::Config, args: &Request) -> (Vec<String>, i32) {
    if !args.command.is_empty() {
        return (args.command.clone(), exit::USAGE);
    }
    let mut command = config.command.clone();
    command.extend(config.args.iter().cloned());
    command.extend(config.app.iter().cloned());
    (command, exit::CONFIG)
}

/// Each change to the user's command, once.
fn announce(notes: &[Note]) {
    for note in notes {
        if note.warning {
            log::warn(&note.text);
        } else {
            log::info(&note.text);
        }
    }
}

/// Spawn: gunicorn as our child, with our notify socket, and nothing of
/// ours that it should not have.
fn start(
    plan: &Plan,
    notify_address: &str,
    held: Option<&held_socket::Held>,
) -> Result<(Pid, spawn::Command), Failure> {
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        log::warn(&format!(
            "cannot become a child subreaper ({e}): orphans of gunicorn will not be reaped here"
        ));
    }
    close_inherited_descriptors();
    let cmd = spawn::Command::new(
        &plan.program,
        &plan.assembled.argv,
        &plan.env,
        &[("NOTIFY_SOCKET", notify_address)],
    )
    .map_err(Failure::config)?;
    let cmd = match held {
        Some(held) => cmd.with_listen_fd(held.fd.as_raw_fd()),
        None => cmd,
    };
    let master = spawn::spawn(&cmd)?;
    log::info(&format!(
        "started gunicorn, pid {master}: {}",
        plan.assembled.argv.join(" ")
    ));
    Ok((master, cmd))
}

/// With a held socket, gunicorn's `reuse_port` would make each worker bind the port on its
/// own (and fail: the held socket does not share its port), so it is refused where it can
/// be seen: on the command line, in `GUNICORN_CMD_ARGS`, and as a `reuse_port = True` (or
/// `= 1`) line in gunicorn's config file (`-c FILE`, else `./gunicorn.conf.py`). Set in code
/// the launcher cannot read, its workers fail to bind ("Connection in use" in gunicorn's
/// log) and are started again and again: the verification fails (exit 69).
fn refuse_reuse_port(assembled: &Assembled, cmd_args: &str) -> Result<(), Failure> {
    let args = &assembled.argv[assembled.launch.program_len..];
    let read = |file: &str| std::fs::read_to_string(file).ok();
    match gunicorn_args::reuse_port(args, cmd_args, read) {
        None => Ok(()),
        Some(where_) => Err(Failure::config(format!(
            "{where_} turns on gunicorn's reuse_port, which a held socket cannot serve: each \
             worker would bind the port on its own; remove it, or run without --hold-socket \
             (and without a .socket unit)"
        ))),
    }
}

/// Descriptors inherited from our parent (systemd's socket-activation fds,
/// a shell's stray fds) must not leak into gunicorn: a listening socket
/// passed down would let gunicorn serve on an address we never checked.
/// One `close_range` marks them all close-on-exec (Linux 5.11); older
/// kernels get one `fcntl` per descriptor listed in `/proc/self/fd`.
fn close_inherited_descriptors() {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    const CLOSE_RANGE_CLOEXEC: nix::libc::c_uint = 1 << 2;
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets a flag on
    // descriptors 3 and up; it touches no memory and closes nothing.
    let marked = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_close_range,
            3u32,
            u32::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    if marked == 0 {
        return;
    }
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        let _ = fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
    }
}

/// Supervise: what the loop needs from the configuration.
fn settings(c: &config::Config) -> supervise::Settings {
    supervise::Settings {
        stop_timeout: c.stop_timeout,
        startup_timeout: c.startup_timeout,
        recheck_interval: c.recheck_interval,
        probe_timeout: c.probe_timeout,
        on_failure: c.on_failure,
        on_host_rejected: c.on_host_rejected,
        on_firewall_blocked: c.on_firewall_blocked,
        // The held socket and systemd's watchdog are the supervisor's to read.
        restart: None,
        watchdog: None,
    }
}

/// Exit status: gunicorn's own, `128+N` when a signal N ended it, or the launcher's verdict.
/// When gunicorn died of the very TERM or INT we were asked to stop with (it had no handler
/// yet), the launcher ends by that signal too ([`supervise::exit_of`] says which).
pub fn exit_status(ending: Ending) -> i32 {
    match supervise::exit_of(ending, std::process::id() == 1) {
        supervise::Exit::Code(code) => code,
        supervise::Exit::Signal(sig) => die_by(sig),
    }
}

/// Ends the launcher by `sig`'s default action, as if unsupervised. Where
/// that cannot end it, it exits `128 + N` instead: as PID 1 of a PID
/// namespace (a container) the kernel discards a signal the process has no
/// handler for, so a container runtime sees exit 143 for TERM, as with
/// tini or dumb-init.
fn die_by(sig: Signal) -> ! {
    let mut set = SigSet::empty();
    set.add(sig);
    // Never handled, only blocked (signals are read from the signalfd):
    // unblocked, the default action applies.
    let _ = sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
    let _ = signal_hook::low_level::raise(sig as i32);
    std::process::exit(128 + sig as i32)
}

/// `print-command`: the same decisions, printed and not run.
pub fn print_command(args: &Request) -> Result<i32, Failure> {
    let plan = configure(args)?;
    let mut out = String::new();
    out.push_str(&format!("program: {}\n", plan.program.display()));
    for token in &plan.assembled.argv {
        out.push_str(&format!("argv: {token}\n"));
    }
    for change in &plan.env.changes {
        match change {
            EnvChange::Unset(k) => out.push_str(&format!("env-unset: {k}\n")),
            EnvChange::Set(k, v) => out.push_str(&format!("env-set: {k}={v}\n")),
        }
    }
    if plan.listening != Listening::Gunicorn {
        out.push_str("env-set: LISTEN_FDS=1\n");
        out.push_str("env-set: LISTEN_PID=<gunicorn's own pid>\n");
    }
    out.push_str("env-set: NOTIFY_SOCKET=<the launcher's own socket>\n");
    for note in &plan.notes {
        out.push_str(&format!("note: {}\n", note.text));
    }
    crate::output::print(&out);
    Ok(0)
}

#[cfg(test)]
mod tests;
