//! The supervisor: one loop over its event sources, which never waits on
//! anything else.
//!
//! Sources: a signalfd (every signal it handles, SIGCHLD included, is
//! blocked and read from it, so there are no async handlers anywhere),
//! gunicorn's notify socket, the sockets of the HTTP probes under way, and
//! the nearest deadline. Nothing runs between events: a verified, idle
//! service sleeps in `poll` without a timeout.
//!
//! Verification waits only in this loop's `poll`. Its one slow part is the
//! HTTP probe, which waits for an app that may take seconds to import; the
//! probes are non-blocking sockets in the poll set ([`crate::probe::Probes`]),
//! so a signal that comes meanwhile is read and passed on at once. The rest
//! of a verification (one sock_diag query, the tree's `/proc` files) is a
//! few hundred microseconds of system calls that never wait on anything
//! outside the kernel, done in place. A verifier thread would do the same
//! with a second stack, a second malloc arena and a wake-up per answer, which
//! is most of what the launcher spends between its start and gunicorn's
//! first answer.
//!
//! Where the launcher stands is one [`State`]; what a signal does, and what a
//! verdict means, depends on it. After a HUP (or once a master started by
//! USR2 is adopted) READY=1 comes only when every worker of the previous
//! generation is gone and the new generation answers, so a reload is never
//! vouched for by old workers still draining.

use crate::config::{OnFailure, OnHostRejected};
use crate::log;
use crate::notify::{ChildSocket, Systemd};
use crate::probe::Probes;
use crate::tree::{self, Proc};
use crate::verify::{self, Look, Scope, Target, Verdict};
use crate::workers::Census;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, killpg, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::collections::VecDeque;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// How to supervise.
pub struct Settings {
    pub target: Target,
    pub stop_timeout: Duration,
    pub startup_timeout: Duration,
    pub recheck_interval: Duration,
    pub on_failure: OnFailure,
    pub on_host_rejected: OnHostRejected,
}

/// How gunicorn ended, for the launcher's exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ending {
    /// The master's last status.
    pub status: WaitStatus,
    /// The launcher's own code instead (verification failed).
    pub code: Option<i32>,
    /// gunicorn died of the very signal the launcher was asked to stop with
    /// (it had no handler yet): the launcher should end the same way.
    pub died_of_our_stop: bool,
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

/// Held signals go out one at a time: gunicorn (Python) runs one handler
/// for any number of the same signal that arrive before it looks, so the
/// next waits until the last one is no longer pending in the master, and
/// then this long, for Python to have run its handler.
const HELD_GAP: Duration = Duration::from_millis(10);
/// How often to look whether the last held signal was taken; and how long
/// to wait for that at most (a master that never takes it is stuck anyway).
const HELD_POLL: Duration = Duration::from_millis(5);
const HELD_PATIENCE: Duration = Duration::from_secs(1);

/// si_code of a signal the kernel raised itself (a terminal's WINCH or ^C).
const SI_KERNEL: i32 = 0x80;

/// How often a failing verification looks for new workers to watch (a
/// Python worker lives longer than this even when it dies at boot).
const CENSUS: Duration = Duration::from_millis(20);

/// The first verification retry, and the longest pause between retries.
const FIRST_RETRY: Duration = Duration::from_millis(20);
const MAX_RETRY: Duration = Duration::from_millis(500);
/// Every gunicorn since 20 sends READY=1 once it has bound, and that starts
/// the first verification; this first look is for one that sends nothing.
const UNANNOUNCED: Duration = Duration::from_millis(250);

/// Blocks every signal the supervisor handles and opens the signalfd that
/// receives them. Done before gunicorn exists, so none is lost or taken by
/// its default action meanwhile; before any thread exists, so every thread
/// inherits the mask.
pub fn take_signals() -> Result<SignalFd, String> {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    set.add(Signal::SIGCHLD);
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
        .map_err(|e| format!("cannot block signals: {e}"))?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| format!("cannot create a signalfd: {e}"))
}

/// One verification under way: asked (or to be asked) at `next`, given up at
/// `deadline`.
struct Check {
    /// Names this check's questions; an answer to an older check is dropped.
    id: u64,
    next: Instant,
    deadline: Instant,
    delay: Duration,
    /// Workers of the generation before a reload; gone before anything counts.
    previous: Vec<Proc>,
    /// Said with the verdict: why it does not vouch for a new generation.
    note: Option<String>,
}

/// Where the launcher stands.
enum State {
    /// gunicorn runs but has no signal handlers yet: until it does, a HUP
    /// would kill it and TTIN/TTOU stop it, so those wait in `held`.
    Starting {
        check: Check,
        held: Vec<Signal>,
    },
    /// gunicorn is up; the port is not verified yet.
    Verifying {
        check: Check,
    },
    /// READY=1 sent (`verified` false: failed with on_failure = warn);
    /// idle but for the recheck and the watchdog, if asked for.
    Serving {
        verified: bool,
        next_tick: Option<Instant>,
        /// A recheck's question, while it is out.
        recheck: Option<u64>,
    },
    /// After a HUP, or a USR2 master's adoption: READY=1 again only once the
    /// previous generation is gone and the new one answers.
    Reloading {
        check: Check,
    },
    Stopping(Stop),
}

struct Stop {
    /// The signal we were asked to stop with; `None` when we are only
    /// clearing what a dead master left behind.
    signal: Option<Signal>,
    deadline: Instant,
    killed: bool,
}

/// Signals delivered one at a time (those held while gunicorn started, and
/// any that came behind them).
struct Outbox {
    queue: VecDeque<Signal>,
    next: Instant,
    last: Option<(Signal, Instant)>,
}

/// What one look at the port found.
enum Finding {
    /// This many workers of the previous generation still run: any of them
    /// might answer a probe, so there is no verdict yet.
    PreviousStillRunning(usize),
    Verdict(Verdict),
}

/// A verification waiting for its HTTP probes.
struct InFlight {
    /// The question's id: its check's, or a recheck's.
    id: u64,
    probing: verify::Probing,
    probes: Probes,
}

struct Supervisor {
    settings: Settings,
    systemd: Systemd,
    master: Pid,
    group: Pid,
    state: State,
    outbox: Outbox,
    /// Probes under way.
    in_flight: Option<InFlight>,
    /// Watches gunicorn's workers once a verification has failed a look:
    /// what they die of, if they die.
    census: Option<Census>,
    census_next: Instant,
    last_id: u64,
    /// Exit with this instead of gunicorn's status (verification failed).
    code: Option<i32>,
    /// The master's status once it is gone for good.
    master_status: Option<WaitStatus>,
}

/// Supervises the gunicorn master `master` until nothing of its tree is
/// left.
pub fn supervise(
    master: Pid,
    signals: &SignalFd,
    notify: &ChildSocket,
    settings: Settings,
) -> Result<Ending, String> {
    let now = Instant::now();
    let mut sup = Supervisor {
        state: State::Starting {
            check: Check {
                id: 1,
                next: now + UNANNOUNCED,
                deadline: now + settings.startup_timeout,
                delay: FIRST_RETRY,
                previous: Vec::new(),
                note: None,
            },
            held: Vec::new(),
        },
        settings,
        systemd: Systemd::from_env(),
        master,
        group: master,
        outbox: Outbox {
            queue: VecDeque::new(),
            next: now,
            last: None,
        },
        in_flight: None,
        census: None,
        census_next: now,
        last_id: 1,
        code: None,
        master_status: None,
    };
    sup.systemd.status("starting gunicorn");
    sup.run_loop(signals, notify)
}

impl Supervisor {
    fn run_loop(&mut self, signals: &SignalFd, notify: &ChildSocket) -> Result<Ending, String> {
        loop {
            let timeout = self.poll_timeout();
            let mut fds = vec![
                PollFd::new(signals.as_fd(), PollFlags::POLLIN),
                PollFd::new(notify.fd(), PollFlags::POLLIN),
            ];
            let probing = self.in_flight.as_ref().map_or(0, |f| {
                fds.extend(f.probes.poll_fds());
                fds.len() - 2
            });
            if let Some(c) = &self.census {
                fds.extend(c.fds().map(|fd| PollFd::new(fd, PollFlags::POLLIN)));
            }
            match poll(&mut fds, timeout) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(format!("poll failed: {e}")),
            }
            let revents: Vec<PollFlags> = fds
                .iter()
                .map(|f| f.revents().unwrap_or(PollFlags::empty()))
                .collect();
            drop(fds);
            let (signalled, notified) = (!revents[0].is_empty(), !revents[1].is_empty());
            // gunicorn's READY first: it says whether held signals may go.
            if notified && notify.drain_ready() {
                self.gunicorn_is_up();
            }
            if signalled {
                while let Ok(Some(info)) = signals.read_signal() {
                    self.on_signal(info.ssi_signo as i32, info.ssi_code);
                }
                if let Some(ending) = self.reap() {
                    return Ok(ending);
                }
            }
            let (probes, died) = revents[2..].split_at(probing);
            if let Some(c) = &mut self.census {
                c.on_ready(&died.iter().map(|r| !r.is_empty()).collect::<Vec<_>>());
            }
            self.on_probes(probes);
            self.on_time(Instant::now());
        }
    }

    /// Moves the probes on; once all have answered, the verdict.
    fn on_probes(&mut self, ready: &[PollFlags]) {
        let Some(f) = &mut self.in_flight else {
            return;
        };
        f.probes.advance(ready, Instant::now());
        if !f.probes.done() {
            return;
        }
        if let Some(f) = self.in_flight.take() {
            let verdict = verify::judge(f.probing, f.probes.results());
            self.on_finding(f.id, Finding::Verdict(verdict));
        }
    }

    /// The nearest deadline, or none: an idle verified service sleeps.
    fn poll_timeout(&self) -> PollTimeout {
        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        match &self.state {
            State::Starting { check, .. }
            | State::Verifying { check }
            | State::Reloading { check } => {
                if self.in_flight.is_none() {
                    consider(check.next.min(check.deadline));
                }
            }
            State::Serving { next_tick, .. } => next_tick.iter().for_each(|&t| consider(t)),
            State::Stopping(stop) => {
                if !stop.killed {
                    consider(stop.deadline);
                }
            }
        }
        if !self.outbox.queue.is_empty() {
            consider(self.outbox.next);
        }
        if let Some(f) = &self.in_flight {
            consider(f.probes.deadline());
        }
        if self.census.is_some() {
            consider(self.census_next);
        }
        next.map_or(PollTimeout::NONE, crate::probe::poll_timeout)
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
            Signal::SIGTERM | Signal::SIGINT | Signal::SIGQUIT => self.begin_stop(Some(sig)),
            _ => match &mut self.state {
                // Stopping: gunicorn would not act on a reload or scaling
                // signal, and once Python has begun to exit its handlers are
                // gone: HUP, USR1 or USR2 would kill it (a clean stop turned
                // into exit 129), TTIN or TTOU stop it.
                State::Stopping(_) => {}
                State::Starting { held, .. } => {
                    if held.len() < MAX_HELD {
                        log::info(&format!(
                            "holding {sig} until gunicorn has its signal handlers"
                        ));
                        held.push(sig);
                    } else if held.len() == MAX_HELD {
                        log::warn(&format!(
                            "more than {MAX_HELD} signals before gunicorn was up; dropping the rest"
                        ));
                        held.push(sig);
                    }
                }
                // Behind the held ones, to keep their order.
                _ if !self.outbox.queue.is_empty() => self.outbox.queue.push_back(sig),
                _ => self.deliver(sig),
            },
        }
    }

    /// gunicorn has installed its signal handlers (it sent READY=1, which
    /// every version does after setting them up, or it answered HTTP): what
    /// was held goes out now, one at a time.
    fn gunicorn_is_up(&mut self) {
        let State::Starting { check, held } = std::mem::replace(
            &mut self.state,
            State::Serving {
                verified: false,
                next_tick: None,
                recheck: None,
            },
        ) else {
            return;
        };
        let mut check = check;
        // gunicorn says it bound: look now rather than at the next retry.
        check.next = Instant::now();
        self.state = State::Verifying { check };
        self.outbox.queue.extend(held.into_iter().take(MAX_HELD));
        self.outbox.next = Instant::now();
    }

    /// A reload, upgrade or scaling signal, to a gunicorn that can take it.
    fn deliver(&mut self, sig: Signal) {
        match sig {
            Signal::SIGHUP => {
                // Named before the signal goes: after it, new workers appear.
                let previous = tree::named(gunicorns_workers(self.master));
                self.forward(sig);
                log::info("reloading gunicorn (HUP); READY=1 again once the new workers answer");
                self.reload(previous);
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

    /// A new generation is on its way: verify it once `previous` is gone.
    /// Probes still out were asking about the old one: dropped.
    fn reload(&mut self, previous: Vec<Proc>) {
        self.in_flight = None;
        let check = self.new_check(previous);
        self.state = match std::mem::replace(
            &mut self.state,
            State::Stopping(Stop {
                signal: None,
                deadline: Instant::now(),
                killed: false,
            }),
        ) {
            State::Serving { .. } | State::Reloading { .. } => {
                self.systemd.reloading();
                State::Reloading { check }
            }
            // Not READY yet: nothing to take back from systemd.
            State::Starting { .. } | State::Verifying { .. } => State::Verifying { check },
            stopping @ State::Stopping(_) => stopping,
        };
    }

    fn new_check(&mut self, previous: Vec<Proc>) -> Check {
        self.last_id += 1;
        let now = Instant::now();
        Check {
            id: self.last_id,
            next: now + FIRST_RETRY,
            deadline: now + self.settings.startup_timeout,
            delay: FIRST_RETRY,
            previous,
            note: None,
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

    /// TERM, INT or QUIT to the master, then CONT to it and its workers, as
    /// systemd does: a stopped process would never act on the first.
    fn begin_stop(&mut self, sig: Option<Signal>) {
        if let Some(sig) = sig {
            self.forward(sig);
            let _ = killpg(self.group, Signal::SIGCONT);
            tree::signal_all(&tree::descendants(Pid::this()), Signal::SIGCONT);
        }
        if matches!(self.state, State::Stopping(_)) {
            return;
        }
        let dropped = match &self.state {
            State::Starting { held, .. } => held.len().min(MAX_HELD),
            _ => 0,
        } + self.outbox.queue.len();
        if dropped > 0 {
            log::warn(&format!(
                "dropping {dropped} signal(s) held for gunicorn: it is stopping before it could take them"
            ));
        }
        self.outbox.queue.clear();
        self.census = None;
        self.in_flight = None;
        if let Some(sig) = sig {
            self.systemd.stopping();
            log::info(&format!(
                "stopping gunicorn ({sig}); waiting up to {:?}",
                self.settings.stop_timeout
            ));
        }
        self.state = State::Stopping(Stop {
            signal: sig,
            deadline: Instant::now() + self.settings.stop_timeout,
            killed: false,
        });
    }

    /// Reaps every exited child. Returns the ending once the master is gone
    /// for good and nothing of its tree is left.
    fn reap(&mut self) -> Option<Ending> {
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
                Err(_) => return self.master_status.map(|s| self.ending(s)),
            }
        }
    }

    fn on_master_exit(&mut self, status: WaitStatus) {
        let old = self.master;
        if let Some(new) = self.successor(old) {
            self.adopt(old, new);
            return;
        }
        self.master_status = Some(status);
        // The master is gone: whatever of its tree is left (workers of a
        // SIGKILLed master notice only after timeout/2) is stopped now.
        let rest = tree::descendants(Pid::this());
        if !matches!(self.state, State::Stopping(_)) {
            self.explain_exit(status, !rest.is_empty());
        }
        if rest.is_empty() {
            return;
        }
        tree::signal_all(&rest, Signal::SIGTERM);
        tree::signal_all(&rest, Signal::SIGCONT);
        let soon = Instant::now() + self.settings.stop_timeout.min(Duration::from_secs(5));
        match &mut self.state {
            State::Stopping(stop) => stop.deadline = stop.deadline.min(soon),
            _ => {
                self.begin_stop(None);
                if let State::Stopping(stop) = &mut self.state {
                    stop.deadline = soon;
                }
            }
        }
    }

    /// The master started by USR2 takes the old one's place; the old one's
    /// workers are the previous generation.
    fn adopt(&mut self, old: Pid, new: Pid) {
        self.master = new;
        log::info(&format!(
            "gunicorn master {old} exited; adopted the new master {}",
            tree::describe(new)
        ));
        if let State::Stopping(Stop {
            signal: Some(sig), ..
        }) = self.state
        {
            self.forward(sig);
            return;
        }
        let mut new_tree = tree::descendants(new);
        new_tree.push(new);
        let previous = tree::descendants(Pid::this())
            .into_iter()
            .filter(|p| !new_tree.contains(p));
        self.reload(tree::named(previous));
    }

    /// A live child of ours that gunicorn started as the old master's
    /// successor (USR2).
    fn successor(&self, old: Pid) -> Option<Pid> {
        tree::descendants(Pid::this())
            .into_iter()
            .find(|&p| tree::is_successor_of(p, old))
    }

    fn explain_exit(&mut self, status: WaitStatus, left_behind: bool) {
        let during = matches!(self.state, State::Starting { .. } | State::Verifying { .. });
        let what = describe_status(status);
        if during && left_behind && status == WaitStatus::Exited(self.master, 0) {
            // gunicorn's daemonize(): the master forks, the parent exits 0,
            // the grandchild serves on. Only a config file can ask for it
            // (we remove -D/--daemon from the command line).
            let why = "gunicorn daemonized itself and left its supervisor: remove `daemon = True` from its config file \
                       (gunicorn.conf.py or -c FILE); stopping what it left behind";
            log::error(why);
            self.systemd.status(why);
            self.code = Some(EXIT_UNVERIFIED);
            return;
        }
        if during && self.code.is_none() {
            // Gone: whatever listens now is someone else's. Asked here, in
            // the loop: the service is ending, and the answer (one kernel
            // query, and an owner search only if something listens) is
            // what the message is for.
            let port = verify::verdict(&self.settings.target, Scope::TreeOf(self.master));
            let mut seen = String::new();
            if port.kind == verify::Kind::Foreign {
                seen.push_str(&format!(
                    "; {} (a port in use ends gunicorn this way)",
                    port.summary
                ));
            }
            if let Some(workers) = self.census.as_ref().and_then(Census::report) {
                seen.push_str(&format!("; {workers}"));
            }
            log::error(&format!("gunicorn exited during startup: {what}{seen}"));
            self.systemd
                .status(&format!("gunicorn exited during startup: {what}{seen}"));
        } else {
            log::warn(&format!("gunicorn exited: {what}"));
        }
    }

    fn ending(&self, status: WaitStatus) -> Ending {
        let died_of_our_stop = match (status, &self.state) {
            (
                WaitStatus::Signaled(_, sig, _),
                State::Stopping(Stop {
                    signal: Some(asked),
                    killed: false,
                    ..
                }),
            ) => sig == *asked,
            _ => false,
        };
        Ending {
            status,
            code: self.code,
            died_of_our_stop,
        }
    }

    fn on_time(&mut self, now: Instant) {
        if let State::Stopping(stop) = &mut self.state
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
        self.ask_if_due(now);
        if let State::Serving {
            verified,
            next_tick: Some(t),
            recheck,
        } = &mut self.state
            && now >= *t
        {
            let verified = *verified;
            if verified {
                self.systemd.watchdog();
            }
            if !self.settings.recheck_interval.is_zero()
                && recheck.is_none()
                && self.in_flight.is_none()
            {
                self.last_id += 1;
                *recheck = Some(self.last_id);
                let id = self.last_id;
                self.look(id, Vec::new());
            }
            self.schedule_tick(now);
        }
        if !self.outbox.queue.is_empty() && now >= self.outbox.next {
            self.deliver_next_held(now);
        }
        if let Some(c) = &mut self.census
            && now >= self.census_next
        {
            c.refresh(self.master);
            self.census_next = now + CENSUS;
        }
    }

    fn ask_if_due(&mut self, now: Instant) {
        if self.in_flight.is_some() {
            return;
        }
        let (State::Starting { check, .. }
        | State::Verifying { check }
        | State::Reloading { check }) = &self.state
        else {
            return;
        };
        if now >= check.next.min(check.deadline) {
            let (id, previous) = (check.id, check.previous.clone());
            self.look(id, previous);
        }
    }

    /// One look at the port for question `id`: decided at once from the
    /// kernel and the process tree, or probes started.
    fn look(&mut self, id: u64, previous: Vec<Proc>) {
        let running = previous.iter().filter(|p| p.running()).count();
        if running > 0 {
            return self.on_finding(id, Finding::PreviousStillRunning(running));
        }
        match verify::look(&self.settings.target, Scope::TreeOf(Pid::this())) {
            Look::Decided(v) => self.on_finding(id, Finding::Verdict(v)),
            Look::Probing(probing) => {
                let target = &self.settings.target;
                let probes = Probes::start(&probing.requests, &target.path, target.probe_timeout);
                self.in_flight = Some(InFlight {
                    id,
                    probing,
                    probes,
                });
                // Nothing to probe: decided already.
                self.on_probes(&[]);
            }
        }
    }

    fn on_finding(&mut self, id: u64, finding: Finding) {
        match (&mut self.state, finding) {
            (State::Serving { recheck, .. }, Finding::Verdict(v)) if *recheck == Some(id) => {
                *recheck = None;
                self.rechecked(v);
            }
            (
                State::Starting { check, .. }
                | State::Verifying { check }
                | State::Reloading { check },
                finding,
            ) if check.id == id => {
                let give_up = Instant::now() >= check.deadline;
                match finding {
                    Finding::Verdict(v) if acceptable(&v, self.settings.on_host_rejected) => {
                        self.verified(v)
                    }
                    // A wrong bind, a foreign holder or the app's own Host
                    // settings will not fix themselves; anything else (not
                    // listening yet, app still loading, old workers still
                    // draining) may, until the deadline.
                    Finding::Verdict(v)
                        if give_up
                            || matches!(
                                v.kind,
                                verify::Kind::SingleAddress
                                    | verify::Kind::Foreign
                                    | verify::Kind::Split
                                    | verify::Kind::HostRejected
                            ) =>
                    {
                        self.verification_failed(&v.summary)
                    }
                    // Still there after the whole startup timeout (above
                    // gunicorn's graceful timeout): gunicorn never acted on
                    // the signal, or they are stuck in a request. Either
                    // way, what serves is what to verify; the note says why
                    // it is not all new.
                    Finding::PreviousStillRunning(n) if give_up => {
                        let note = format!(
                            "{n} worker(s) that served before the reload still running after {:?}: \
                             gunicorn did not act on the signal (gunicorn <= 23 drops signals while five wait) \
                             or they are still finishing requests",
                            self.settings.startup_timeout
                        );
                        log::warn(&note);
                        check.previous.clear();
                        check.note = Some(note);
                        check.next = Instant::now();
                        check.deadline = check.next + self.settings.target.probe_timeout;
                    }
                    finding => {
                        if let Finding::PreviousStillRunning(n) = finding {
                            self.systemd.status(&format!(
                                "reloading gunicorn: {n} worker(s) of the previous generation still running"
                            ));
                        }
                        check.delay = (check.delay * 2).min(MAX_RETRY);
                        check.next = Instant::now() + check.delay;
                        if self.census.is_none() {
                            self.census = Some(Census::new());
                            self.census_next = Instant::now();
                        }
                    }
                }
            }
            // A finding that no longer matters (a HUP or a stop came meanwhile).
            _ => {}
        }
    }

    fn verified(&mut self, v: Verdict) {
        let (reload, note) = match &self.state {
            State::Reloading { check } => (true, check.note.clone()),
            State::Verifying { check } | State::Starting { check, .. } => {
                (false, check.note.clone())
            }
            _ => (false, None),
        };
        if matches!(self.state, State::Starting { .. }) {
            // It answered HTTP: its handlers are up.
            self.gunicorn_is_up();
        }
        let summary = match note {
            Some(note) => format!("{}; {note}", v.summary),
            None => v.summary,
        };
        let done = if reload {
            "reloaded and verified"
        } else {
            "verified"
        };
        // A rejected Host (on_host_rejected = "warn"): READY all the same,
        // the warning in the log and in STATUS.
        let status = if v.kind == verify::Kind::HostRejected {
            log::warn(&format!("{done}: {summary}"));
            format!("WARNING: {summary}")
        } else {
            log::info(&format!("{done}: {summary}"));
            format!("verified: {summary}")
        };
        let ready = Systemd::ready_message(&status);
        self.serve(true);
        self.systemd.post(&ready);
    }

    /// Idle from here: start-up's pages are not needed now, and are
    /// given back before READY=1, so that what systemd sees is what stays.
    fn serve(&mut self, verified: bool) {
        self.census = None;
        self.state = State::Serving {
            verified,
            next_tick: None,
            recheck: None,
        };
        self.schedule_tick(Instant::now());
        crate::memory::release_clean_pages();
    }

    fn rechecked(&mut self, v: Verdict) {
        let State::Serving { verified, .. } = self.state else {
            return;
        };
        match (verified, acceptable(&v, self.settings.on_host_rejected)) {
            (true, false) => self.verification_failed(&v.summary),
            (false, true) => {
                log::info(&format!("verified again: {}", v.summary));
                self.systemd.status(&format!("verified: {}", v.summary));
                if let State::Serving { verified, .. } = &mut self.state {
                    *verified = true;
                }
            }
            _ => {}
        }
    }

    fn verification_failed(&mut self, why: &str) {
        let what = if matches!(self.state, State::Reloading { .. }) {
            "reload not verified"
        } else {
            "verification failed"
        };
        let workers = self.census.take().and_then(|c| c.report());
        let why = &match workers {
            Some(workers) => format!("{why}; {workers}"),
            None => why.to_string(),
        };
        match self.settings.on_failure {
            OnFailure::Fail => {
                log::error(&format!(
                    "{what}: {why}; stopping gunicorn (exit {EXIT_UNVERIFIED})"
                ));
                self.systemd.status(&format!("{what}: {why}"));
                self.code = Some(EXIT_UNVERIFIED);
                self.begin_stop(Some(Signal::SIGTERM));
            }
            OnFailure::Warn => {
                // Running anyway: gunicorn has been up long enough to take
                // what was held for it.
                self.gunicorn_is_up();
                log::warn(&format!(
                    "{what}: {why}; on_failure = \"warn\": gunicorn keeps running"
                ));
                let ready = Systemd::ready_message(&format!(
                    "WARNING: not verified, running anyway (on_failure = warn): {why}"
                ));
                self.serve(false);
                self.systemd.post(&ready);
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
        if let State::Serving { next_tick, .. } = &mut self.state {
            *next_tick = periods.into_iter().flatten().min().map(|p| now + p);
        }
    }

    /// Delivers the next held signal once the last one has been taken.
    fn deliver_next_held(&mut self, now: Instant) {
        if let Some((last, sent)) = self.outbox.last
            && now < sent + HELD_PATIENCE
            && crate::proc::pending_signals(self.master.as_raw())
                .is_some_and(|mask| mask & (1 << (last as i32 - 1)) != 0)
        {
            self.outbox.next = now + HELD_POLL;
            return;
        }
        let Some(sig) = self.outbox.queue.pop_front() else {
            return;
        };
        self.deliver(sig);
        self.outbox.last = Some((sig, now));
        self.outbox.next = now + HELD_GAP;
    }
}

/// A verdict to send READY=1 on: ok, or a Host the app rejects when that
/// only warrants a warning.
fn acceptable(v: &Verdict, on_host_rejected: OnHostRejected) -> bool {
    v.ok() || (v.kind == verify::Kind::HostRejected && on_host_rejected == OnHostRejected::Warn)
}

/// The master's workers, the generation a reload replaces. gunicorn (≥ 25)
/// can also run a "dirty arbiter", a child that keeps its own pool of
/// workers and outlives reloads: a child with children of its own is not
/// counted (a sync worker has none).
fn gunicorns_workers(master: Pid) -> Vec<Pid> {
    crate::proc::children(master.as_raw())
        .unwrap_or_default()
        .into_iter()
        .filter(|&c| crate::proc::children(c).is_none_or(|grand| grand.is_empty()))
        .map(Pid::from_raw)
        .collect()
}

/// gunicorn's exit status in words (its own codes: 3 worker boot error,
/// 4 app load error).
pub fn describe_status(status: WaitStatus) -> String {
    match status {
        WaitStatus::Exited(_, 0) => "exit status 0".into(),
        WaitStatus::Exited(_, 1) => {
            "exit status 1 (gunicorn's generic error: see its output above)".into()
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
