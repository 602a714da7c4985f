//! The supervisor: start gunicorn, then one loop over its event sources.
//!
//! Sources: a signalfd (every signal we handle, SIGCHLD included, is blocked
//! and read from it, so there are no async signal handlers anywhere), the
//! child's notify socket, and one deadline (verification retry, stop
//! timeout, recheck, watchdog). Each turn of the loop: wait, then handle
//! what arrived. Nothing runs between events, so an idle, verified service
//! costs no wakeups unless a recheck interval or systemd's watchdog asks.
//!
//! gunicorn runs as our child in its own session and process group (so a
//! terminal's Ctrl-C reaches it once, through us, and a stray TTIN/TTOU
//! cannot stop it), with SIGTERM as parent-death signal
//! (SIGKILL would leave sync workers alive for `timeout / 2`), while we are a
//! child subreaper that reaps everything left behind.

use crate::command::EnvChange;
use crate::config::OnFailure;
use crate::log;
use crate::notify::{ChildSocket, Systemd};
use crate::tree;
use crate::verify::{self, Scope, Target};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, killpg, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What to start.
pub struct Child {
    pub program: PathBuf,
    pub argv: Vec<String>,
    pub env: Vec<EnvChange>,
}

/// How to supervise it.
pub struct Settings {
    pub target: Target,
    pub stop_timeout: Duration,
    pub startup_timeout: Duration,
    pub recheck_interval: Duration,
    pub on_failure: OnFailure,
}

/// Exit code for "startup verification failed" (EX_UNAVAILABLE).
pub use crate::exit::UNVERIFIED as EXIT_UNVERIFIED;

const FORWARDED: [Signal; 9] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGWINCH,
];

/// Reload and scaling signals kept while gunicorn starts; beyond that an
/// operator is hammering, and gunicorn itself (up to 23) keeps only five.
const MAX_HELD: usize = 64;

/// si_code of a signal the kernel raised itself (a terminal's WINCH or ^C).
const SI_KERNEL: i32 = 0x80;

/// Where verification stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the port to be right; retry at `next`, give up at `deadline`.
    Verifying {
        next: Instant,
        deadline: Instant,
        delay: Duration,
    },
    /// Verified (or failed with on_failure = warn); idle.
    Settled { verified: bool },
}

struct Stop {
    /// The signal we were asked to stop with; `None` when we are only
    /// clearing what a dead master left behind.
    signal: Option<Signal>,
    deadline: Instant,
    killed: bool,
}

struct Supervisor {
    settings: Settings,
    systemd: Systemd,
    master: Pid,
    group: Pid,
    phase: Phase,
    stop: Option<Stop>,
    /// Exit with this instead of gunicorn's status (verification failed).
    exit_override: Option<i32>,
    /// The master's status once it is gone for good.
    master_status: Option<WaitStatus>,
    next_tick: Option<Instant>,
    /// gunicorn has its signal handlers; until then reload and scaling
    /// signals wait in `held`.
    handlers_up: bool,
    held: Vec<Signal>,
}

/// Starts gunicorn and supervises it until it is gone; returns the exit code.
pub fn run(child: Child, settings: Settings) -> i32 {
    let mask = handled_signals();
    // Blocked before any thread exists, so every thread inherits the mask and
    // every signal lands in the signalfd.
    if let Err(e) = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None) {
        log::error(&format!("cannot block signals: {e}"));
        return crate::exit::SOFTWARE;
    }
    let signals = match SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
    {
        Ok(fd) => fd,
        Err(e) => {
            log::error(&format!("cannot create a signalfd: {e}"));
            return crate::exit::SOFTWARE;
        }
    };
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        log::warn(&format!(
            "cannot become a child subreaper ({e}): orphans of gunicorn will not be reaped here"
        ));
    }
    close_inherited_descriptors();
    let notify = match ChildSocket::bind() {
        Ok(s) => s,
        Err(e) => {
            log::error(&format!("cannot create gunicorn's notify socket: {e}"));
            return crate::exit::SOFTWARE;
        }
    };
    let master = match spawn(&child, &notify.address) {
        Ok(pid) => pid,
        Err((code, msg)) => {
            log::error(&msg);
            return code;
        }
    };
    log::info(&format!(
        "started gunicorn, pid {master}: {}",
        child.argv.join(" ")
    ));
    let now = Instant::now();
    let mut sup = Supervisor {
        phase: Phase::Verifying {
            next: now + Duration::from_millis(20),
            deadline: now + settings.startup_timeout,
            delay: Duration::from_millis(20),
        },
        settings,
        systemd: Systemd::from_env(),
        master,
        group: master,
        stop: None,
        exit_override: None,
        master_status: None,
        next_tick: None,
        handlers_up: false,
        held: Vec::new(),
    };
    sup.systemd.status("starting gunicorn");
    sup.schedule_tick(now);
    sup.run_loop(&signals, &notify)
}

fn handled_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    set.add(Signal::SIGCHLD);
    set
}

/// Descriptors inherited from our parent (systemd's socket-activation fds,
/// a shell's stray fds) must not leak into gunicorn: a listening socket
/// passed down would let gunicorn serve on an address we never checked.
fn close_inherited_descriptors() {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
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

fn spawn(child: &Child, notify_address: &str) -> Result<Pid, (i32, String)> {
    let mut cmd = Command::new(&child.program);
    cmd.args(&child.argv[1..])
        .stdin(Stdio::null())
        .env("NOTIFY_SOCKET", notify_address);
    for change in &child.env {
        match change {
            EnvChange::Unset(k) => {
                cmd.env_remove(k);
            }
            EnvChange::Set(k, v) => {
                cmd.env(k, v);
            }
        }
    }
    // NOTIFY_SOCKET is in the scrub list; set ours again after it.
    cmd.env("NOTIFY_SOCKET", notify_address);
    let parent = Pid::this();
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe system calls (sigprocmask, setsid, prctl, getppid); it
    // allocates nothing and touches no lock.
    unsafe {
        cmd.pre_exec(move || {
            // Our mask blocks every handled signal (they go to the
            // signalfd); exec keeps the mask, and a gunicorn with SIGCHLD
            // and SIGTERM blocked never reaps a worker nor stops.
            sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
            // A session of its own, hence a process group of its own that
            // is orphaned: the kernel then discards TTIN/TTOU/TSTP whose
            // action is the default (before gunicorn installs its handlers,
            // or after Python removes them at exit) instead of stopping
            // gunicorn; and no terminal can stop it (TOSTOP).
            nix::unistd::setsid()?;
            nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)?;
            // We may have died between fork and prctl: then nobody would
            // ever send the parent-death signal.
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::other("the launcher exited during start"));
            }
            Ok(())
        });
    }
    match cmd.spawn() {
        Ok(c) => Ok(Pid::from_raw(c.id() as i32)),
        Err(e) => {
            let code = match e.raw_os_error() {
                Some(libc_enoent) if libc_enoent == Errno::ENOENT as i32 => 127,
                _ => 126,
            };
            Err((
                code,
                format!("cannot start {}: {e}", child.program.display()),
            ))
        }
    }
}

impl Supervisor {
    fn run_loop(&mut self, signals: &SignalFd, notify: &ChildSocket) -> i32 {
        loop {
            let timeout = self.poll_timeout();
            let mut fds = [
                PollFd::new(signals.as_fd(), PollFlags::POLLIN),
                PollFd::new(notify.fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, timeout) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => {
                    log::error(&format!("poll failed: {e}"));
                    return crate::exit::SOFTWARE;
                }
            }
            let signalled = fds[0].any().unwrap_or(false);
            let notified = fds[1].any().unwrap_or(false);
            if signalled {
                while let Ok(Some(info)) = signals.read_signal() {
                    self.on_signal(info.ssi_signo as i32, info.ssi_code);
                }
                if let Some(code) = self.reap() {
                    return code;
                }
            }
            let ready = notified && notify.drain_ready();
            if ready {
                self.handlers_are_up();
            }
            if ready
                && let Phase::Verifying {
                    deadline, delay, ..
                } = self.phase
            {
                // gunicorn says it bound: look now rather than at the next retry.
                self.phase = Phase::Verifying {
                    next: Instant::now(),
                    deadline,
                    delay,
                };
            }
            self.on_time(Instant::now());
        }
    }

    /// The nearest deadline, or none: an idle verified service sleeps.
    fn poll_timeout(&self) -> PollTimeout {
        let mut next: Option<Instant> = self.next_tick;
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        // Verification is suspended while stopping (`on_time`): its
        // deadline, already past, must not turn poll into a busy loop.
        if let Phase::Verifying { next, deadline, .. } = self.phase
            && self.stop.is_none()
        {
            consider(next.min(deadline));
        }
        if let Some(stop) = &self.stop
            && !stop.killed
        {
            consider(stop.deadline);
        }
        match next {
            None => PollTimeout::NONE,
            Some(t) => {
                // Rounded up: rounding down wakes early and spins on a
                // zero timeout until the deadline's last millisecond.
                let ms = t
                    .saturating_duration_since(Instant::now())
                    .as_micros()
                    .div_ceil(1000)
                    .min(i32::MAX as u128);
                PollTimeout::try_from(ms as i32).unwrap_or(PollTimeout::MAX)
            }
        }
    }

    fn on_signal(&mut self, signo: i32, code: i32) {
        let Ok(sig) = Signal::try_from(signo) else {
            return;
        };
        match sig {
            Signal::SIGCHLD => {}
            // A terminal's resize is not an order to gunicorn: on WINCH a
            // daemonised gunicorn stops all its workers.
            Signal::SIGWINCH if code == SI_KERNEL => {}
            Signal::SIGTERM | Signal::SIGINT | Signal::SIGQUIT => self.begin_stop(sig),
            // Stopping: gunicorn would not act on a reload or scaling
            // signal, and once Python has begun to exit its handlers are
            // gone: HUP, USR1 or USR2 would kill it (a clean stop turned
            // into exit 129), TTIN or TTOU stop it.
            _ if self.stop.is_some() => {}
            // Before gunicorn has its handlers, HUP/USR1/USR2 would kill it
            // and TTIN/TTOU stop it: hold them until it is up.
            _ if !self.handlers_up => {
                if self.held.len() < MAX_HELD {
                    log::info(&format!(
                        "holding {sig} until gunicorn has its signal handlers"
                    ));
                    self.held.push(sig);
                } else if self.held.len() == MAX_HELD {
                    log::warn(&format!(
                        "more than {MAX_HELD} signals before gunicorn was up; dropping the rest"
                    ));
                    self.held.push(sig);
                }
            }
            _ => self.deliver(sig),
        }
    }

    /// gunicorn has installed its signal handlers (it sent READY=1, which
    /// every version does after setting them up, or it answered HTTP):
    /// deliver what was held, in order.
    fn handlers_are_up(&mut self) {
        if !self.handlers_up {
            self.handlers_up = true;
            let held = std::mem::take(&mut self.held);
            for sig in held.into_iter().take(MAX_HELD) {
                self.deliver(sig);
            }
        }
    }

    /// A reload, upgrade or scaling signal, to a gunicorn that can take it.
    fn deliver(&mut self, sig: Signal) {
        match sig {
            Signal::SIGHUP => {
                self.forward(sig);
                self.systemd.reloading();
                log::info("reloading gunicorn (HUP); will verify the port again");
                self.verify_again();
            }
            Signal::SIGUSR2 => {
                self.forward(sig);
                log::info(
                    "forwarded USR2: gunicorn starts a new master; it is adopted when the old one exits",
                );
            }
            _ => self.forward(sig),
        }
    }

    fn forward(&self, sig: Signal) {
        if let Err(e) = kill(self.master, sig) {
            log::warn(&format!(
                "could not forward {sig} to gunicorn pid {}: {e}",
                self.master
            ));
        }
    }

    fn begin_stop(&mut self, sig: Signal) {
        self.forward(sig);
        if self.stop.is_none() {
            self.systemd.stopping();
            log::info(&format!(
                "stopping gunicorn ({sig}); waiting up to {:?}",
                self.settings.stop_timeout
            ));
            self.stop = Some(Stop {
                signal: Some(sig),
                deadline: Instant::now() + self.settings.stop_timeout,
                killed: false,
            });
        }
    }

    fn verify_again(&mut self) {
        let now = Instant::now();
        self.phase = Phase::Verifying {
            next: now + Duration::from_millis(20),
            deadline: now + self.settings.startup_timeout,
            delay: Duration::from_millis(20),
        };
    }

    /// Reaps every exited child. Returns the exit code once the master is
    /// gone for good and nothing of its tree is left.
    fn reap(&mut self) -> Option<i32> {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => return None,
                Ok(status) => {
                    if status.pid() == Some(self.master) {
                        self.on_master_exit(status);
                    }
                }
                Err(Errno::EINTR) => continue,
                // No child at all: the whole tree is gone.
                Err(_) => return self.master_status.map(|s| self.exit_code(s)),
            }
        }
    }

    fn on_master_exit(&mut self, status: WaitStatus) {
        let old = self.master;
        if let Some(new) = self.successor(old) {
            self.master = new;
            log::info(&format!(
                "gunicorn master {old} exited; adopted the new master {}",
                tree::describe(new)
            ));
            match &self.stop {
                Some(Stop {
                    signal: Some(sig), ..
                }) => {
                    let sig = *sig;
                    self.forward(sig);
                }
                _ => self.verify_again(),
            }
            return;
        }
        self.master_status = Some(status);
        // The master is gone: whatever of its tree is left (workers of a
        // SIGKILLed master notice only after timeout/2) is stopped now.
        let rest = tree::descendants(Pid::this());
        if self.stop.is_none() {
            self.explain_exit(status, !rest.is_empty());
        }
        if !rest.is_empty() {
            tree::signal_all(&rest, Signal::SIGTERM);
            let deadline = Instant::now() + self.settings.stop_timeout.min(Duration::from_secs(5));
            match &mut self.stop {
                Some(stop) => stop.deadline = stop.deadline.min(deadline),
                None => {
                    self.stop = Some(Stop {
                        signal: None,
                        deadline,
                        killed: false,
                    })
                }
            }
        }
    }

    /// A live child of ours that gunicorn started as the old master's
    /// successor (USR2).
    fn successor(&self, old: Pid) -> Option<Pid> {
        tree::descendants(Pid::this())
            .into_iter()
            .find(|&p| tree::is_successor_of(p, old))
    }

    fn explain_exit(&mut self, status: WaitStatus, left_behind: bool) {
        let during = matches!(self.phase, Phase::Verifying { .. });
        let what = describe_status(status);
        if during && left_behind && status == WaitStatus::Exited(self.master, 0) {
            // gunicorn's daemonize(): the master forks, the parent exits 0,
            // the grandchild serves on. Only a config file can ask for it
            // (we remove -D/--daemon from the command line).
            let why = "gunicorn daemonized itself and left its supervisor: remove `daemon = True` from its config file \
                       (gunicorn.conf.py or -c FILE); stopping what it left behind";
            log::error(why);
            self.systemd.status(why);
            self.exit_override = Some(EXIT_UNVERIFIED);
            return;
        }
        if during && self.exit_override.is_none() {
            // Gone: whatever listens now is someone else's.
            let port = verify::verdict(&self.settings.target, Scope::TreeOf(self.master));
            let held = if port.kind == verify::Kind::Foreign {
                format!("; {}", port.summary)
            } else {
                String::new()
            };
            log::error(&format!("gunicorn exited during startup: {what}{held}"));
            self.systemd
                .status(&format!("gunicorn exited during startup: {what}"));
        } else {
            log::warn(&format!("gunicorn exited: {what}"));
        }
    }

    fn exit_code(&self, status: WaitStatus) -> i32 {
        if let Some(code) = self.exit_override {
            return code;
        }
        match status {
            WaitStatus::Exited(_, code) => code,
            WaitStatus::Signaled(_, sig, _) => {
                // gunicorn died of the very signal we were asked to stop
                // with (it had no handler yet): end the same way, which
                // systemd counts as a clean stop, unlike exit 143.
                if let Some(stop) = &self.stop
                    && stop.signal == Some(sig)
                    && !stop.killed
                {
                    die_by(sig);
                }
                128 + sig as i32
            }
            _ => crate::exit::SOFTWARE,
        }
    }

    fn on_time(&mut self, now: Instant) {
        if let Some(stop) = &mut self.stop
            && !stop.killed
            && now >= stop.deadline
        {
            stop.killed = true;
            let rest = tree::descendants(Pid::this());
            log::warn(&format!(
                "gunicorn did not stop within {:?}; killing {} remaining process(es)",
                self.settings.stop_timeout,
                rest.len()
            ));
            let _ = killpg(self.group, Signal::SIGKILL);
            tree::signal_all(&rest, Signal::SIGKILL);
        }
        if let Phase::Verifying {
            next,
            deadline,
            delay,
        } = self.phase
            && now >= next.min(deadline)
            && self.stop.is_none()
        {
            self.verify_step(now, deadline, delay);
        }
        if self.next_tick.is_some_and(|t| now >= t) {
            self.tick(now);
        }
    }

    fn verify_step(&mut self, now: Instant, deadline: Instant, delay: Duration) {
        let v = verify::verdict(&self.settings.target, Scope::TreeOf(Pid::this()));
        if v.ok() {
            log::info(&format!("verified: {}", v.summary));
            self.systemd.ready(&format!("verified: {}", v.summary));
            self.phase = Phase::Settled { verified: true };
            self.schedule_tick(Instant::now());
            // Last: a held HUP delivered now starts a verification of its own.
            self.handlers_are_up();
            return;
        }
        // A wrong bind or a foreign holder will not fix itself; anything
        // else (not listening yet, app still loading) may, until the deadline.
        let definitive = matches!(v.kind, verify::Kind::SingleAddress | verify::Kind::Foreign);
        if definitive || Instant::now() >= deadline {
            self.verification_failed(&v.summary);
            return;
        }
        let delay = (delay * 2).min(Duration::from_millis(500));
        self.phase = Phase::Verifying {
            next: now.max(Instant::now()) + delay,
            deadline,
            delay,
        };
    }

    fn verification_failed(&mut self, why: &str) {
        match self.settings.on_failure {
            OnFailure::Fail => {
                log::error(&format!(
                    "verification failed: {why}; stopping gunicorn (exit {EXIT_UNVERIFIED})"
                ));
                self.systemd.status(&format!("verification failed: {why}"));
                self.exit_override = Some(EXIT_UNVERIFIED);
                self.phase = Phase::Settled { verified: false };
                self.begin_stop(Signal::SIGTERM);
            }
            OnFailure::Warn => {
                // Running anyway: gunicorn has been up long enough to take
                // what was held for it.
                self.handlers_are_up();
                log::warn(&format!(
                    "verification failed: {why}; on_failure = \"warn\": gunicorn keeps running"
                ));
                self.systemd.ready(&format!(
                    "WARNING: not verified, running anyway (on_failure = warn): {why}"
                ));
                self.phase = Phase::Settled { verified: false };
                self.schedule_tick(Instant::now());
            }
        }
    }

    /// The periodic work that only exists when asked for: the recheck and
    /// systemd's watchdog.
    fn schedule_tick(&mut self, now: Instant) {
        let periods = [
            Some(self.settings.recheck_interval).filter(|d| !d.is_zero()),
            self.systemd.watchdog_period(),
        ];
        self.next_tick = periods.into_iter().flatten().min().map(|p| now + p);
    }

    fn tick(&mut self, now: Instant) {
        let Phase::Settled { verified } = self.phase else {
            self.schedule_tick(now);
            return;
        };
        if self.stop.is_some() {
            return;
        }
        if !self.settings.recheck_interval.is_zero() {
            let v = verify::verdict(&self.settings.target, Scope::TreeOf(Pid::this()));
            match (verified, v.ok()) {
                (true, false) => {
                    self.verification_failed(&v.summary);
                    return;
                }
                (false, true) => {
                    log::info(&format!("verified again: {}", v.summary));
                    self.systemd.status(&format!("verified: {}", v.summary));
                    self.phase = Phase::Settled { verified: true };
                }
                _ => {}
            }
        }
        if self.phase == (Phase::Settled { verified: true }) {
            self.systemd.watchdog();
        }
        self.schedule_tick(now);
    }
}

/// Ends the launcher by `sig`, the default action, as if unsupervised.
fn die_by(sig: Signal) -> ! {
    let mut set = SigSet::empty();
    set.add(sig);
    let _ = sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
    let _ = signal_hook::low_level::emulate_default_handler(sig as i32);
    std::process::exit(128 + sig as i32)
}

/// gunicorn's exit status in words (its own codes: 3 worker boot error,
/// 4 app load error).
pub fn describe_status(status: WaitStatus) -> String {
    match status {
        WaitStatus::Exited(_, 0) => "exit status 0".into(),
        WaitStatus::Exited(_, 1) => {
            "exit status 1 (gunicorn's generic error: see its output above; a port already in use ends this way)".into()
        }
        WaitStatus::Exited(_, 2) => "exit status 2 (gunicorn rejected its command line: see its usage message above)".into(),
        WaitStatus::Exited(_, 3) => {
            "exit status 3 (WORKER_BOOT_ERROR: a worker failed to boot; see the traceback above)".into()
        }
        WaitStatus::Exited(_, 4) => {
            "exit status 4 (APP_LOAD_ERROR: the application could not be imported; check the app path, the working directory and the virtualenv)".into()
        }
        WaitStatus::Exited(_, c) => format!("exit status {c}"),
        WaitStatus::Signaled(_, sig, core) => {
            format!("killed by {sig}{}", if core { " (core dumped)" } else { "" })
        }
        other => format!("{other:?}"),
    }
}
