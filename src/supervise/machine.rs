//! The supervisor's decisions, all of them: [`Machine::step`] takes what just happened (an
//! [`Event`]) and where the launcher stands, moves it, and returns what to do ([`Action`]s,
//! which the loop in `mod.rs` performs). The state is assigned here and nowhere else. The
//! world is read only through [`World`] (which processes run, what a pid is), so the tests
//! drive every rule with a fake one, without a process.
//!
//! Where the launcher stands is one [`State`]: `Starting` (gunicorn has no signal handlers
//! yet: reload and scaling signals are held, at most 64), `Verifying`, `Serving`,
//! `Reloading` (READY=1 again only once the previous generation is gone and the new one
//! answers), `Restarting` (a master that died while serving, on a held socket: its orphans
//! cleared, then a new one), `Stopping` (TERM, then CONT, then SIGKILL at the stop timeout).

use super::restart::admit;
use super::{Ending, describe_status};
use crate::config::{OnFailure, OnFirewallBlocked, OnHostRejected};
use crate::log::Level;
use crate::process::tree::{Proc, signallable};
use crate::verify::{Kind, Verdict};
use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Exit code for "startup verification failed" (EX_UNAVAILABLE).
pub use crate::exit::UNVERIFIED as EXIT_UNVERIFIED;

/// Reload and scaling signals kept while gunicorn starts; beyond that an operator is
/// hammering, and gunicorn itself (up to 23) keeps only five.
pub const MAX_HELD: usize = 64;
/// Held signals go out one at a time: Python runs one handler for any number of the same
/// signal that arrive before it looks. The kernel hands a signal over before Python looks,
/// and a master preempted in between would merge the next one into it; a master that has
/// blocked since has almost always looked (left: a hand-over between Python's periodic check
/// and a blocking call), so the next waits until the last one is no longer pending in the
/// master, the master has gone to sleep since it was sent, and this long has passed.
const HELD_GAP: Duration = Duration::from_millis(10);
/// How often to look whether the last held signal was taken, and for how long at most (a
/// master that never takes it is stuck anyway).
const HELD_POLL: Duration = Duration::from_millis(5);
const HELD_PATIENCE: Duration = Duration::from_secs(1);
/// The first verification retry, and the longest pause between retries.
pub const FIRST_RETRY: Duration = Duration::from_millis(20);
const MAX_RETRY: Duration = Duration::from_millis(500);
/// Every gunicorn since 20 sends READY=1 once it has bound, which starts the first look;
/// this first look is for one that sends nothing.
pub const UNANNOUNCED: Duration = Duration::from_millis(250);
/// How long the orphaned workers of a dead master get for TERM before SIGKILL.
const ORPHANS: Duration = Duration::from_secs(5);
/// How long what a master left behind gets once it exited, at most.
const LEFT_BEHIND: Duration = Duration::from_secs(5);

/// How to supervise.
#[derive(Clone, Debug)]
pub struct Settings {
    pub stop_timeout: Duration,
    pub startup_timeout: Duration,
    pub recheck_interval: Duration,
    /// How long one probe may take (the grace after a reload that gunicorn ignored).
    pub probe_timeout: Duration,
    pub on_failure: OnFailure,
    pub on_host_rejected: OnHostRejected,
    pub on_firewall_blocked: OnFirewallBlocked,
    /// With a held socket: how often a crashed master may be restarted (`burst` within
    /// `interval`). `None`: nothing to restart on, and USR2 is gunicorn's own.
    pub restart: Option<(u32, Duration)>,
    /// How often to send WATCHDOG=1 (half what systemd asked for).
    pub watchdog: Option<Duration>,
}

/// What happened.
#[derive(Debug)]
pub enum Event {
    /// A signal the launcher takes; `from_kernel`: raised by the kernel itself (a
    /// terminal's WINCH or ^C), not sent by a process.
    Signal { signal: Signal, from_kernel: bool },
    /// READY=1 on gunicorn's notify socket.
    Ready,
    /// The answer to look `id`.
    Finding { id: u64, finding: Finding },
    /// The master exited (reaped).
    MasterExited(WaitStatus),
    /// No child of the launcher is left (`waitpid`: ECHILD).
    AllReaped,
    /// [`Action::Respawn`] started this master, or could not.
    Respawned(Result<Pid, (i32, String)>),
    /// [`Action::SpawnUpgrade`] started this gunicorn, or could not.
    UpgradeSpawned(Result<Pid, String>),
    /// The trial found the new master of a forwarded USR2.
    UpgradeFound(Pid),
    /// A worker of the upgrade's new master answered.
    UpgradeAnswered(Pid),
    /// The upgrade's new generation failed: why, said after "the new gunicorn (pid N)".
    UpgradeFailed { new: Option<Pid>, why: String },
    /// The HUP that replaces these children of the master went out ([`Action::Replacing`]).
    Replacing(Vec<Pid>),
    /// Time passed: whatever is due at `now` is done.
    Time,
}

/// What one look at the port found.
#[derive(Debug)]
pub enum Finding {
    /// This many workers of the previous generation still run: any of them might answer a
    /// probe, so there is no verdict yet.
    PreviousStillRunning(usize),
    Verdict(Verdict),
}

/// What to do.
#[derive(Debug, PartialEq)]
pub enum Action {
    /// Pass a signal on to gunicorn's master (a failure is logged).
    Forward(Pid, Signal),
    /// Answered at once by [`Event::Replacing`]: what a HUP sets in motion is worked out
    /// after the signal went, so that nothing but one read stands before it.
    Replacing(Vec<Pid>),
    /// Send a signal, silently (the process may be gone).
    Signal(Pid, Signal),
    SignalGroup(Pid, Signal),
    /// Send a signal to every gunicorn process (the launcher's descendants but its tools).
    SignalGunicorns(Signal),
    Log(Level, String),
    /// STATUS= to systemd.
    Status(String),
    /// READY=1 with this STATUS= (start-up's pages are given back after it, before the
    /// loop sleeps).
    Ready(String),
    Reloading,
    Stopping,
    Watchdog,
    /// Look at the port for question `id`: once `previous` is gone, the kernel's table,
    /// then probes. Answered by [`Event::Finding`].
    Look {
        id: u64,
        previous: Vec<Proc>,
    },
    /// The look under way no longer matters.
    DropLook,
    /// Watch gunicorn's workers (what they die of), or stop.
    WatchWorkers,
    ForgetWorkers,
    /// Start gunicorn again on the held socket ([`Event::Respawned`]).
    Respawn,
    /// Start a new gunicorn for an upgrade on the held socket ([`Event::UpgradeSpawned`]).
    SpawnUpgrade,
    /// Try the new generation of an upgrade of `old` (`new`: the launcher's own, known).
    StartTrial {
        old: Pid,
        new: Option<Pid>,
        ours: bool,
    },
    /// READY=1 came from the upgrade's new master.
    TrialReady,
    EndTrial,
    /// The supervision is over.
    Exit(Ending),
}

/// What the decisions read of the world.
pub trait World {
    /// Every gunicorn process now (the launcher's descendants but its own tools).
    fn gunicorns(&self) -> Vec<Pid>;
    /// `root` and its descendants.
    fn tree(&self, root: Pid) -> Vec<Pid>;
    /// Those of `pids` that exist, named so a reused pid is never taken for them.
    fn named(&self, pids: Vec<Pid>) -> Vec<Proc>;
    /// The master's children now: one read, made just before the HUP that replaces them.
    fn children(&self, master: Pid) -> Vec<Pid>;
    /// Those of `children` that are workers (the generation a HUP replaces), named.
    fn workers(&self, children: Vec<Pid>) -> Vec<Proc>;
    /// A live child of ours that gunicorn started as `old`'s successor (USR2).
    fn successor(&self, old: Pid) -> Option<Pid>;
    /// `signal` is still pending in `pid`.
    fn pending(&self, pid: Pid, signal: Signal) -> bool;
    /// How many times `pid` has gone to sleep of its own accord; `None` if unreadable.
    fn sleeps(&self, pid: Pid) -> Option<u64>;
    /// What holds the port outside the launcher's tree, if anything: a summary.
    fn foreign_holder(&self) -> Option<String>;
    /// What the watched workers died of, if any died.
    fn workers_report(&self) -> Option<String>;
    /// `1234 (gunicorn: master [app])`, for the log.
    fn describe(&self, pid: Pid) -> String;
}

/// One verification under way: asked (or to be asked) at `next`, given up at `deadline`.
#[derive(Clone, Debug)]
pub struct Check {
    /// Names this check's questions; an answer to an older check is dropped.
    pub id: u64,
    pub next: Instant,
    pub deadline: Instant,
    delay: Duration,
    /// Workers of the generation before a reload; gone before anything counts.
    previous: Vec<Proc>,
    /// Said with the verdict: why it does not vouch for a new generation.
    note: Option<String>,
}

/// Where the launcher stands.
#[derive(Clone, Debug)]
pub enum State {
    Starting {
        check: Check,
        held: Vec<Signal>,
    },
    Verifying {
        check: Check,
    },
    /// READY=1 sent (`verified` false: failed with on_failure = warn).
    Serving {
        verified: bool,
        next_tick: Option<Instant>,
        /// A recheck's question, while it is out.
        recheck: Option<u64>,
    },
    Reloading {
        check: Check,
    },
    Restarting {
        at: Instant,
        /// The dead master's status, the launcher's if it is stopped now.
        crashed: WaitStatus,
        orphans_deadline: Instant,
        killed: bool,
        /// The dead master's processes are all gone.
        orphans_gone: bool,
    },
    Stopping(Stop),
}

#[derive(Clone, Debug)]
pub struct Stop {
    /// The signal we were asked to stop with; `None` when only clearing what a dead master
    /// left behind.
    signal: Option<Signal>,
    deadline: Instant,
    killed: bool,
}

/// An upgrade under way, as far as decisions go (the trial itself is the loop's).
#[derive(Clone, Copy, Debug)]
struct Upgrade {
    old: Pid,
    new: Option<Pid>,
    /// Started by the launcher on its held socket (a child of ours).
    ours: bool,
}

/// Signals delivered one at a time (those held while gunicorn started, and any that come
/// before the last of them was taken).
#[derive(Debug, Default)]
struct Outbox {
    queue: VecDeque<Signal>,
    next: Option<Instant>,
    last: Option<Sent>,
}

impl Outbox {
    /// Signals wait to go, or the last one has not been seen taken yet.
    fn busy(&self) -> bool {
        !self.queue.is_empty() || self.last.is_some()
    }
}

/// The last signal the outbox sent: to which master, when, and how often that master had
/// slept before it (`None`: not sent to the master, or unreadable).
#[derive(Debug, Clone, Copy)]
struct Sent {
    signal: Signal,
    master: Pid,
    at: Instant,
    sleeps: Option<u64>,
}

/// The supervisor's whole state.
pub struct Machine {
    settings: Settings,
    state: State,
    master: Pid,
    group: Pid,
    outbox: Outbox,
    /// The look under way, if any.
    asking: Option<u64>,
    watching_workers: bool,
    last_id: u64,
    /// Exit with this instead of gunicorn's status (verification failed).
    code: Option<i32>,
    /// The master's status once it is gone for good.
    master_status: Option<WaitStatus>,
    /// When each recent crash happened, for the restart limit; and how many restarts in all.
    crashes: VecDeque<Instant>,
    restarts: u32,
    upgrade: Option<Upgrade>,
}

/// A signal that [`Machine::deliver`] only forwards (HUP: and then the reload, from
/// [`Event::Replacing`]), so the loop may send it before it steps ([`Machine::direct`]).
/// Not USR2 (an upgrade is tracked), not a stop, not the kernel's WINCH (dropped).
pub fn goes_direct(signal: Signal, from_kernel: bool) -> bool {
    matches!(
        signal,
        Signal::SIGHUP | Signal::SIGUSR1 | Signal::SIGTTIN | Signal::SIGTTOU
    ) || (signal == Signal::SIGWINCH && !from_kernel)
}

/// Each decision appends what to do to this.
type Out = Vec<Action>;

fn log(out: &mut Out, level: Level, text: impl Into<String>) {
    out.push(Action::Log(level, text.into()));
}

impl Machine {
    /// Supervision of the master `master`, just started at `now`.
    pub fn new(settings: Settings, master: Pid, now: Instant) -> (Machine, Out) {
        let check = first_check(1, now, settings.startup_timeout);
        let machine = Machine {
            settings,
            state: State::Starting {
                check,
                held: Vec::new(),
            },
            master,
            group: master,
            outbox: Outbox::default(),
            asking: None,
            watching_workers: false,
            last_id: 1,
            code: None,
            master_status: None,
            crashes: VecDeque::new(),
            restarts: 0,
            upgrade: None,
        };
        (machine, vec![Action::Status("starting gunicorn".into())])
    }

    /// The master now.
    pub fn master(&self) -> Pid {
        self.master
    }

    /// Where it stands (for the tests and the loop's reading).
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The master is gone for good: the loop only waits for the rest of the tree.
    pub fn finished(&self) -> bool {
        self.master_status.is_some()
    }

    /// The one switch: every event, with why.
    pub fn step(&mut self, event: Event, now: Instant, world: &dyn World) -> Out {
        let mut out = Out::new();
        match event {
            // A signal ordered by an operator or systemd, or the terminal's.
            Event::Signal {
                signal,
                from_kernel,
            } => self.on_signal(signal, from_kernel, now, world, &mut out),
            // The upgrade's new master is up (it bound); otherwise gunicorn has its handlers.
            Event::Ready if self.upgrade.is_some() => out.push(Action::TrialReady),
            Event::Ready => self.gunicorn_is_up(now),
            // A look answered; an answer to an older question is dropped inside.
            Event::Finding { id, finding } => {
                if self.asking == Some(id) {
                    self.asking = None;
                }
                self.on_finding(id, finding, now, world, &mut out)
            }
            // Adopt a USR2 successor, restart on the held socket, or end.
            Event::MasterExited(status) => self.on_master_exit(status, now, world, &mut out),
            // Nothing of gunicorn is left: done once the master is gone for good.
            Event::AllReaped => {
                if let Some(status) = self.master_status {
                    out.push(Action::Exit(self.ending(status)));
                }
            }
            Event::Respawned(result) => self.respawned(result, now, &mut out),
            Event::UpgradeSpawned(result) => self.upgrade_spawned(result, &mut out),
            // Known now: a stop must reach it too.
            Event::UpgradeFound(pid) => {
                if let Some(u) = &mut self.upgrade {
                    u.new = Some(pid);
                }
            }
            // A new worker answered: the old generation goes.
            Event::UpgradeAnswered(new) => self.adopt_upgrade(new, now, world, &mut out),
            // The new generation failed: it goes, the old one serves on.
            Event::UpgradeFailed { new, why } => self.upgrade_failed(new, &why, &mut out),
            // The HUP is on its way; the children read before it are the old generation.
            Event::Replacing(children) => {
                let previous = world.workers(children);
                log(
                    &mut out,
                    Level::Info,
                    "reloading gunicorn (HUP); READY=1 again once the new workers answer",
                );
                self.reload(previous, now, &mut out);
            }
            Event::Time => self.on_time(now, world, &mut out),
        }
        out
    }

    /// The nearest moment something is due, or none: an idle verified service sleeps.
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        match &self.state {
            State::Starting { check, .. }
            | State::Verifying { check }
            | State::Reloading { check } => {
                if self.asking.is_none() {
                    consider(check.next.min(check.deadline));
                }
            }
            State::Serving { next_tick, .. } => next_tick.iter().for_each(|&t| consider(t)),
            State::Stopping(stop) if !stop.killed => consider(stop.deadline),
            State::Stopping(_) => {}
            // While orphans remain, each one's exit (SIGCHLD) wakes the loop.
            State::Restarting {
                at,
                orphans_deadline,
                killed,
                orphans_gone,
                ..
            } => {
                if *orphans_gone {
                    consider(*at);
                } else if !killed {
                    consider(*orphans_deadline);
                }
            }
        }
        if self.outbox.busy()
            && let Some(t) = self.outbox.next
        {
            consider(t);
        }
        next
    }

    // ---------------------------------------------------------------- signals

    fn on_signal(
        &mut self,
        sig: Signal,
        from_kernel: bool,
        now: Instant,
        world: &dyn World,
        out: &mut Out,
    ) {
        match sig {
            // Only wakes the loop, which reaps.
            Signal::SIGCHLD => {}
            // A terminal's resize is not an order to gunicorn: on WINCH a daemonised gunicorn
            // stops all its workers.
            Signal::SIGWINCH if from_kernel => {}
            Signal::SIGTERM | Signal::SIGINT | Signal::SIGQUIT => {
                self.begin_stop(Some(sig), now, out)
            }
            _ => self.pass_on(sig, world, out),
        }
    }

    /// The master that a signal read now goes to at once, if one does: gunicorn is up and
    /// nothing held waits before it, and [`goes_direct`] says the signal is one that
    /// [`Machine::deliver`] only forwards (a HUP's reload is worked out after it, from
    /// [`Event::Replacing`]). The loop sends such a signal itself before it steps, so that
    /// no decision's code stands between the operator and gunicorn.
    pub fn direct(&self) -> Option<Pid> {
        // An adopted master's pid was read from /proc: one that is not signallable takes the
        // slow path, whose `kill` refuses it and says so.
        (self.straight_through() && self.master_status.is_none() && signallable(self.master))
            .then_some(self.master)
    }

    /// gunicorn has its handlers and no held signal is still waiting to go or to be taken
    /// (a signal sent straight after the last one could merge into it).
    fn straight_through(&self) -> bool {
        matches!(
            self.state,
            State::Verifying { .. } | State::Serving { .. } | State::Reloading { .. }
        ) && !self.outbox.busy()
    }

    /// A reload, upgrade or scaling signal: held, queued, delivered or refused by state.
    fn pass_on(&mut self, sig: Signal, world: &dyn World, out: &mut Out) {
        if self.straight_through() {
            self.deliver(sig, world, out);
            return;
        }
        match &mut self.state {
            // Stopping: gunicorn would not act on it, and once Python has begun to exit its
            // handlers are gone: HUP, USR1 or USR2 would kill it, TTIN or TTOU stop it.
            State::Stopping(_) => {}
            State::Restarting { .. } => log(
                out,
                Level::Warning,
                format!("{sig} not passed on: no gunicorn runs while it restarts after a crash"),
            ),
            // No handlers yet: held, at most MAX_HELD, said once past that.
            State::Starting { held, .. } => {
                if held.len() < MAX_HELD {
                    log(
                        out,
                        Level::Info,
                        format!("holding {sig} until gunicorn has its signal handlers"),
                    );
                    held.push(sig);
                } else if held.len() == MAX_HELD {
                    log(
                        out,
                        Level::Warning,
                        format!(
                            "more than {MAX_HELD} signals before gunicorn was up; dropping the rest"
                        ),
                    );
                    held.push(sig);
                }
            }
            // Behind the held ones, to keep their order.
            _ => self.outbox.queue.push_back(sig),
        }
    }

    /// gunicorn has its signal handlers (it sent READY=1, or answered HTTP): what was held
    /// goes out now, one at a time, and the first look comes at once.
    fn gunicorn_is_up(&mut self, now: Instant) {
        // A READY=1 in any other state (an app's) changes nothing here.
        let State::Starting { check, held } = &mut self.state else {
            return;
        };
        let mut check = check.clone();
        let held = std::mem::take(held);
        check.next = now;
        self.state = State::Verifying { check };
        self.outbox.queue.extend(held.into_iter().take(MAX_HELD));
        self.outbox.next = Some(now);
    }

    /// A signal to a gunicorn that can take it; true if it goes to the master itself.
    fn deliver(&mut self, sig: Signal, world: &dyn World, out: &mut Out) -> bool {
        match sig {
            Signal::SIGHUP => {
                // Read before the signal goes (after it, new workers appear); all the rest
                // of a reload waits until it has gone.
                let children = world.children(self.master);
                out.push(Action::Forward(self.master, sig));
                out.push(Action::Replacing(children));
                true
            }
            // gunicorn's own USR2 cannot pass on a socket it got with LISTEN_FDS: with a held
            // socket the launcher upgrades itself.
            Signal::SIGUSR2 if self.settings.restart.is_some() => {
                if self.upgrade.is_some() {
                    log(
                        out,
                        Level::Warning,
                        "USR2 ignored: an upgrade is already under way",
                    );
                } else {
                    out.push(Action::SpawnUpgrade);
                }
                false
            }
            Signal::SIGUSR2 => {
                out.push(Action::Forward(self.master, sig));
                log(
                    out,
                    Level::Info,
                    "forwarded USR2: gunicorn starts a new master; the old one is stopped once a new worker answers",
                );
                self.watch_forwarded_upgrade(out);
                true
            }
            _ => {
                out.push(Action::Forward(self.master, sig));
                true
            }
        }
    }

    /// The next held signal, once the last one has been taken.
    fn deliver_next_held(&mut self, now: Instant, world: &dyn World, out: &mut Out) {
        if let Some(last) = self.outbox.last
            && !self.taken(last, world)
        {
            if now < last.at + HELD_PATIENCE {
                self.outbox.next = Some(now + HELD_POLL);
                return;
            }
            let then = match self.outbox.queue.front() {
                Some(next) => format!("passing on {next} anyway"),
                None => "signals go straight to it again".into(),
            };
            log(
                out,
                Level::Warning,
                format!(
                    "gunicorn's master has not taken {} within a second; {then}",
                    last.signal
                ),
            );
        }
        let Some(sig) = self.outbox.queue.pop_front() else {
            // The last one was taken: what comes now goes straight through.
            self.outbox = Outbox::default();
            return;
        };
        let sleeps = world.sleeps(self.master);
        let forwarded = self.deliver(sig, world, out);
        self.outbox.last = Some(Sent {
            signal: sig,
            master: self.master,
            at: now,
            sleeps: sleeps.filter(|_| forwarded),
        });
        self.outbox.next = Some(now + HELD_GAP);
    }

    /// The master has handled `last`: the kernel handed it over, and the master has blocked
    /// again since (where it cannot be read, the first is all there is to go by). A master
    /// that is not the one it went to has nothing of it to take.
    fn taken(&self, last: Sent, world: &dyn World) -> bool {
        if last.master != self.master {
            return true;
        }
        let slept = match (last.sleeps, world.sleeps(self.master)) {
            (Some(before), Some(now)) => now > before,
            _ => true,
        };
        slept && !world.pending(self.master, last.signal)
    }

    // ---------------------------------------------------------------- stopping

    /// TERM, INT or QUIT to the master, then CONT to it and its workers, as systemd does: a
    /// stopped process would never act on the first. `None`: only clearing what is left.
    fn begin_stop(&mut self, sig: Option<Signal>, now: Instant, out: &mut Out) {
        if let State::Restarting { crashed, .. } = self.state {
            return self.stop_while_restarting(sig, crashed, now, out);
        }
        if let Some(sig) = sig {
            // Once the master is gone (reaped), its pid may be someone else's.
            if self.master_status.is_none() {
                out.push(Action::Forward(self.master, sig));
            }
            // A gunicorn started for an upgrade and not yet adopted stops too.
            if let Some(upgrade) = self.upgrade.take() {
                out.push(Action::EndTrial);
                if let Some(new) = upgrade.new {
                    log(
                        out,
                        Level::Info,
                        format!("the upgrade's new gunicorn (pid {new}) stops too ({sig})"),
                    );
                    out.push(Action::Signal(new, sig));
                }
            }
            out.push(Action::SignalGroup(self.group, Signal::SIGCONT));
            out.push(Action::SignalGunicorns(Signal::SIGCONT));
        }
        if matches!(self.state, State::Stopping(_)) {
            return;
        }
        self.drop_held(out);
        if let Some(sig) = sig {
            out.push(Action::Stopping);
            log(
                out,
                Level::Info,
                format!(
                    "stopping gunicorn ({sig}); waiting up to {:?}",
                    self.settings.stop_timeout
                ),
            );
        }
        self.state = State::Stopping(Stop {
            signal: sig,
            deadline: now + self.settings.stop_timeout,
            killed: false,
        });
    }

    /// A stop while a crashed master is being replaced: no master to tell; what the dead
    /// one left is stopped, and the launcher ends as a clean stop, as asked.
    fn stop_while_restarting(
        &mut self,
        sig: Option<Signal>,
        crashed: WaitStatus,
        now: Instant,
        out: &mut Out,
    ) {
        if let Some(sig) = sig {
            log(
                out,
                Level::Info,
                format!(
                    "stopping ({sig}) while gunicorn restarts after a crash: not restarting it"
                ),
            );
            out.push(Action::Stopping);
        }
        out.push(Action::SignalGunicorns(Signal::SIGTERM));
        self.master_status = Some(crashed);
        self.code = Some(0);
        self.state = State::Stopping(Stop {
            signal: None,
            deadline: now + self.settings.stop_timeout,
            killed: false,
        });
    }

    /// Signals held for gunicorn are dropped (said), the look and the watch too.
    fn drop_held(&mut self, out: &mut Out) {
        let dropped = match &self.state {
            State::Starting { held, .. } => held.len().min(MAX_HELD),
            _ => 0,
        } + self.outbox.queue.len();
        if dropped > 0 {
            log(
                out,
                Level::Warning,
                format!(
                    "dropping {dropped} signal(s) held for gunicorn: it is stopping before it could take them"
                ),
            );
        }
        self.outbox = Outbox::default();
        self.forget_workers(out);
        self.drop_look(out);
    }

    fn drop_look(&mut self, out: &mut Out) {
        if self.asking.take().is_some() {
            out.push(Action::DropLook);
        }
    }

    fn forget_workers(&mut self, out: &mut Out) {
        if std::mem::take(&mut self.watching_workers) {
            out.push(Action::ForgetWorkers);
        }
    }

    /// The stop timeout passed: SIGKILL to what is left.
    fn kill_if_overdue(&mut self, now: Instant, world: &dyn World, out: &mut Out) {
        let State::Stopping(stop) = &mut self.state else {
            return;
        };
        if stop.killed || now < stop.deadline {
            return;
        }
        stop.killed = true;
        let rest = world.gunicorns();
        log(
            out,
            Level::Warning,
            format!(
                "gunicorn did not stop within {:?}; killing {} remaining process(es)",
                self.settings.stop_timeout,
                rest.len()
            ),
        );
        out.push(Action::SignalGroup(self.group, Signal::SIGKILL));
        out.push(Action::SignalGunicorns(Signal::SIGKILL));
    }

    // ---------------------------------------------------------------- the master's exit

    fn on_master_exit(
        &mut self,
        status: WaitStatus,
        now: Instant,
        world: &dyn World,
        out: &mut Out,
    ) {
        let old = self.master;
        // gunicorn's own USR2 successor takes the old one's place.
        if let Some(new) = world.successor(old) {
            if self.upgrade.take().is_some() {
                out.push(Action::EndTrial);
            }
            return self.adopt(old, new, now, world, out);
        }
        // The old master died before the launcher's new one had answered: the new one
        // takes over, and is verified as after a reload.
        if let Some(up) = self.upgrade.take() {
            out.push(Action::EndTrial);
            if let (true, Some(new)) = (up.ours, up.new) {
                self.adopt(old, new, now, world, out);
                self.group = new;
                return;
            }
        }
        if self.restart_after_crash(status, now, out) {
            return;
        }
        self.master_status = Some(status);
        // Whatever of its tree is left (workers of a SIGKILLed master notice only after
        // timeout/2) is stopped now.
        let rest = world.gunicorns();
        if !matches!(self.state, State::Stopping(_)) {
            self.explain_exit(status, rest.len(), world, out);
        }
        if rest.is_empty() {
            return;
        }
        out.push(Action::SignalGunicorns(Signal::SIGTERM));
        out.push(Action::SignalGunicorns(Signal::SIGCONT));
        let soon = now + self.settings.stop_timeout.min(LEFT_BEHIND);
        if !matches!(self.state, State::Stopping(_)) {
            self.begin_stop(None, now, out);
        }
        if let State::Stopping(stop) = &mut self.state {
            stop.deadline = stop.deadline.min(soon);
        }
    }

    /// The master started by USR2 takes the old one's place; the old one's workers are the
    /// previous generation.
    fn adopt(&mut self, old: Pid, new: Pid, now: Instant, world: &dyn World, out: &mut Out) {
        self.master = new;
        log(
            out,
            Level::Info,
            format!(
                "gunicorn master {old} exited; adopted the new master {}",
                world.describe(new)
            ),
        );
        if let State::Stopping(Stop {
            signal: Some(sig), ..
        }) = self.state
        {
            out.push(Action::Forward(new, sig));
            return;
        }
        let new_tree = world.tree(new);
        let previous = world
            .gunicorns()
            .into_iter()
            .filter(|p| !new_tree.contains(p))
            .collect();
        let previous = world.named(previous);
        self.reload(previous, now, out);
    }

    /// A master that died during its start is said as such, with what was seen around it.
    fn explain_exit(
        &mut self,
        status: WaitStatus,
        left_behind: usize,
        world: &dyn World,
        out: &mut Out,
    ) {
        let during = matches!(self.state, State::Starting { .. } | State::Verifying { .. });
        let what = describe_status(status);
        if during && left_behind > 0 && status == WaitStatus::Exited(self.master, 0) {
            // gunicorn's daemonize(): the master forks, the parent exits 0, the grandchild
            // serves on. Only a config file can ask for it (-D is removed from the command).
            let why = "gunicorn daemonized itself and left its supervisor: remove `daemon = True` from its config file \
                       (gunicorn.conf.py or -c FILE); stopping what it left behind";
            log(out, Level::Error, why);
            out.push(Action::Status(why.into()));
            self.code = Some(EXIT_UNVERIFIED);
            return;
        }
        if !during || self.code.is_some() {
            return log(out, Level::Warning, format!("gunicorn exited: {what}"));
        }
        // Only a process outside the launcher's own tree (its held socket, the dead
        // master's workers) is another program.
        let mut seen = String::new();
        if left_behind > 0 {
            seen.push_str(&format!(
                "; {left_behind} of its processes still ran (its workers, booting the app): stopped now"
            ));
        }
        if let Some(holder) = world.foreign_holder() {
            seen.push_str(&format!(
                "; {holder} (a port in use ends gunicorn this way)"
            ));
        }
        if let Some(workers) = world.workers_report() {
            seen.push_str(&format!("; {workers}"));
        }
        let line = format!("gunicorn exited during its start (not yet verified): {what}{seen}");
        log(out, Level::Error, line.clone());
        out.push(Action::Status(line));
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

    // ---------------------------------------------------------------- restarts

    /// A master that died while serving, on a held socket and within the limit: its orphans
    /// are stopped and a new gunicorn starts after the backoff. Returns whether it will.
    fn restart_after_crash(&mut self, status: WaitStatus, now: Instant, out: &mut Out) -> bool {
        let Some((burst, window)) = self.settings.restart else {
            return false;
        };
        if !matches!(self.state, State::Serving { .. } | State::Reloading { .. }) {
            return false;
        }
        let what = describe_status(status);
        let Some(delay) = admit(&mut self.crashes, now, burst, window) else {
            log(
                out,
                Level::Error,
                format!(
                    "gunicorn's master died ({what}): {} within {window:?}, more than supervise.restart_burst = \
                     {burst} allows; not restarting it, exiting with its status",
                    crate::log::count(self.crashes.len() + 1, "crash", "crashes")
                ),
            );
            return false;
        };
        self.restarts += 1;
        let after = if delay.is_zero() {
            String::new()
        } else {
            format!(" in {delay:?}")
        };
        let line = format!(
            "gunicorn's master died ({what}) while serving; the socket stays open and a new gunicorn starts \
             on it{after} (restart {} of at most {burst} within {window:?}; {} in all)",
            self.crashes.len(),
            self.restarts
        );
        log(out, Level::Warning, line.clone());
        out.push(Action::Status(line));
        out.push(Action::SignalGunicorns(Signal::SIGTERM));
        out.push(Action::SignalGunicorns(Signal::SIGCONT));
        self.outbox = Outbox::default();
        self.forget_workers(out);
        self.drop_look(out);
        self.state = State::Restarting {
            at: now + delay,
            crashed: status,
            orphans_deadline: now + ORPHANS.min(self.settings.stop_timeout),
            killed: false,
            orphans_gone: false,
        };
        true
    }

    /// Starts the new gunicorn once the old one's processes are gone and the backoff has
    /// passed; SIGKILLs orphans that outlive their TERM.
    fn restart_if_due(&mut self, now: Instant, world: &dyn World, out: &mut Out) {
        if !matches!(self.state, State::Restarting { .. }) {
            return;
        }
        let orphans = world.gunicorns();
        let State::Restarting {
            at,
            orphans_deadline,
            killed,
            orphans_gone,
            ..
        } = &mut self.state
        else {
            return;
        };
        *orphans_gone = orphans.is_empty();
        if !orphans.is_empty() {
            if !*killed && now >= *orphans_deadline {
                *killed = true;
                log(
                    out,
                    Level::Warning,
                    format!(
                        "{} process(es) of the dead master did not stop within {ORPHANS:?}; killing them",
                        orphans.len()
                    ),
                );
                out.push(Action::SignalGroup(self.group, Signal::SIGKILL));
                out.push(Action::SignalGunicorns(Signal::SIGKILL));
            }
            return;
        }
        // The answer (Respawned) moves the state on.
        if now >= *at {
            out.push(Action::Respawn);
        }
    }

    fn respawned(&mut self, result: Result<Pid, (i32, String)>, now: Instant, out: &mut Out) {
        let State::Restarting { crashed, .. } = self.state else {
            return;
        };
        match result {
            Ok(master) => {
                log(
                    out,
                    Level::Info,
                    format!("restarted gunicorn, pid {master}"),
                );
                self.master = master;
                self.group = master;
                self.last_id += 1;
                self.state = State::Starting {
                    check: first_check(self.last_id, now, self.settings.startup_timeout),
                    held: Vec::new(),
                };
            }
            Err((code, message)) => {
                log(
                    out,
                    Level::Error,
                    format!("cannot restart gunicorn: {message}"),
                );
                out.push(Action::Status(format!(
                    "cannot restart gunicorn: {message}"
                )));
                self.code = Some(code);
                self.master_status = Some(crashed);
                // Nothing runs and nothing will: the loop ends once the reap sees no child.
                self.state = State::Stopping(Stop {
                    signal: None,
                    deadline: now,
                    killed: true,
                });
            }
        }
    }

    // ---------------------------------------------------------------- upgrades

    fn upgrade_spawned(&mut self, result: Result<Pid, String>, out: &mut Out) {
        match result {
            Ok(new) => {
                log(
                    out,
                    Level::Info,
                    format!(
                        "USR2: started a new gunicorn, pid {new}, on the held socket beside the running one; \
                         the old master is stopped once a new worker answers"
                    ),
                );
                self.upgrade = Some(Upgrade {
                    old: self.master,
                    new: Some(new),
                    ours: true,
                });
                out.push(Action::StartTrial {
                    old: self.master,
                    new: Some(new),
                    ours: true,
                });
            }
            Err(message) => log(
                out,
                Level::Error,
                format!("USR2: cannot start a new gunicorn ({message}); the running one goes on"),
            ),
        }
    }

    /// USR2 forwarded to gunicorn: its new master is found and tried like the launcher's.
    fn watch_forwarded_upgrade(&mut self, out: &mut Out) {
        if self.upgrade.is_some() {
            return log(
                out,
                Level::Warning,
                "USR2 forwarded while an upgrade is under way: gunicorn decides",
            );
        }
        self.upgrade = Some(Upgrade {
            old: self.master,
            new: None,
            ours: false,
        });
        out.push(Action::StartTrial {
            old: self.master,
            new: None,
            ours: false,
        });
    }

    /// A new worker answered: the old master stops gracefully (its workers finish their
    /// requests). The launcher's own new master becomes the master at once, verified once
    /// the old workers are gone; gunicorn's own is adopted when the old master exits.
    fn adopt_upgrade(&mut self, new: Pid, now: Instant, world: &dyn World, out: &mut Out) {
        let Some(upgrade) = self.upgrade.take() else {
            return;
        };
        let old = upgrade.old;
        let new_tree = world.tree(new);
        let previous = world
            .tree(old)
            .into_iter()
            .filter(|p| !new_tree.contains(p))
            .collect();
        let previous = world.named(previous);
        out.push(Action::EndTrial);
        out.push(Action::Signal(old, Signal::SIGTERM));
        out.push(Action::SignalGroup(old, Signal::SIGCONT));
        log(
            out,
            Level::Info,
            format!(
                "USR2: a worker of the new gunicorn (pid {new}) answered; stopping the old master {old} gracefully"
            ),
        );
        if upgrade.ours {
            self.master = new;
            self.group = new;
            self.reload(previous, now, out);
        }
    }

    /// The new generation failed: it is stopped, and the old one serves on.
    fn upgrade_failed(&mut self, new: Option<Pid>, why: &str, out: &mut Out) {
        let Some(upgrade) = self.upgrade.take() else {
            return;
        };
        out.push(Action::EndTrial);
        let who = match new.or(upgrade.new) {
            Some(new) => {
                out.push(Action::Signal(new, Signal::SIGTERM));
                out.push(Action::Signal(new, Signal::SIGCONT));
                format!("the new gunicorn (pid {new})")
            }
            None => "gunicorn's new master".to_string(),
        };
        let line = format!(
            "USR2 upgrade failed: {who} {why}; stopped it, the old one (pid {}) goes on serving",
            upgrade.old
        );
        log(out, Level::Error, line.clone());
        out.push(Action::Status(line));
    }

    // ---------------------------------------------------------------- verification

    /// A new generation is on its way: verify it once `previous` is gone. Probes still out
    /// were asking about the old one: dropped.
    fn reload(&mut self, previous: Vec<Proc>, now: Instant, out: &mut Out) {
        self.drop_look(out);
        let check = self.new_check(previous, now);
        self.state = match &self.state {
            State::Serving { .. } | State::Reloading { .. } => {
                out.push(Action::Reloading);
                State::Reloading { check }
            }
            // Not READY yet: nothing to take back from systemd.
            State::Starting { .. } | State::Verifying { .. } => State::Verifying { check },
            // Nothing runs to reload; the next gunicorn starts from its files anyway.
            other @ (State::Stopping(_) | State::Restarting { .. }) => other.clone(),
        };
    }

    fn new_check(&mut self, previous: Vec<Proc>, now: Instant) -> Check {
        self.last_id += 1;
        Check {
            id: self.last_id,
            next: now + FIRST_RETRY,
            deadline: now + self.settings.startup_timeout,
            delay: FIRST_RETRY,
            previous,
            note: None,
        }
    }

    fn ask_if_due(&mut self, now: Instant, out: &mut Out) {
        if self.asking.is_some() {
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
            self.look(id, previous, out);
        }
    }

    fn look(&mut self, id: u64, previous: Vec<Proc>, out: &mut Out) {
        self.asking = Some(id);
        out.push(Action::Look { id, previous });
    }

    fn on_finding(
        &mut self,
        id: u64,
        finding: Finding,
        now: Instant,
        world: &dyn World,
        out: &mut Out,
    ) {
        match (&self.state, finding) {
            (
                State::Serving {
                    recheck: Some(r), ..
                },
                Finding::Verdict(v),
            ) if *r == id => self.rechecked(v, now, world, out),
            (
                State::Starting { check, .. }
                | State::Verifying { check }
                | State::Reloading { check },
                finding,
            ) if check.id == id => {
                let give_up = now >= check.deadline;
                self.judge(finding, give_up, now, world, out)
            }
            // A finding that no longer matters (a HUP or a stop came meanwhile).
            _ => {}
        }
    }

    /// What the current check's finding means.
    fn judge(
        &mut self,
        finding: Finding,
        give_up: bool,
        now: Instant,
        world: &dyn World,
        out: &mut Out,
    ) {
        match finding {
            Finding::Verdict(v) if acceptable(&v, &self.settings) => self.verified(v, now, out),
            // A wrong bind, a foreign holder or the app's own settings will not fix
            // themselves; anything else (not listening yet, app still loading, old workers
            // draining) may, until the deadline.
            Finding::Verdict(v) if give_up || lasting(v.kind) => {
                self.verification_failed(&v.summary, now, world, out)
            }
            // Still there after the whole startup timeout (above gunicorn's graceful
            // timeout): gunicorn never acted on the signal, or they are stuck in a request.
            Finding::PreviousStillRunning(n) if give_up => {
                self.stop_waiting_for_previous(n, now, out)
            }
            finding => {
                if let Finding::PreviousStillRunning(n) = finding {
                    out.push(Action::Status(format!(
                        "reloading gunicorn: {n} worker(s) of the previous generation still running"
                    )));
                }
                if let Some(check) = self.check_mut() {
                    check.delay = (check.delay * 2).min(MAX_RETRY);
                    check.next = now + check.delay;
                }
                if !self.watching_workers {
                    self.watching_workers = true;
                    out.push(Action::WatchWorkers);
                }
            }
        }
    }

    /// What serves is what to verify; the note says why it is not all new.
    fn stop_waiting_for_previous(&mut self, n: usize, now: Instant, out: &mut Out) {
        let note = format!(
            "{n} worker(s) that served before the reload still running after {:?}: gunicorn did not act on \
             the signal (gunicorn <= 23 drops signals while five wait) or they are still finishing requests",
            self.settings.startup_timeout
        );
        log(out, Level::Warning, note.clone());
        let grace = self.settings.probe_timeout;
        if let Some(check) = self.check_mut() {
            check.previous.clear();
            check.note = Some(note);
            check.next = now;
            check.deadline = now + grace;
        }
    }

    fn check_mut(&mut self) -> Option<&mut Check> {
        match &mut self.state {
            State::Starting { check, .. }
            | State::Verifying { check }
            | State::Reloading { check } => Some(check),
            _ => None,
        }
    }

    fn verified(&mut self, v: Verdict, now: Instant, out: &mut Out) {
        let (reload, note) = match &self.state {
            State::Reloading { check } => (true, check.note.clone()),
            State::Verifying { check } | State::Starting { check, .. } => {
                (false, check.note.clone())
            }
            _ => (false, None),
        };
        // It answered HTTP: its handlers are up.
        self.gunicorn_is_up(now);
        let mut summary = match note {
            Some(note) => format!("{}; {note}", v.summary),
            None => v.summary,
        };
        if self.restarts > 0 {
            summary.push_str(&format!(
                "; gunicorn restarted {} time(s) after a crash",
                self.restarts
            ));
        }
        let done = if reload {
            "reloaded and verified"
        } else {
            "verified"
        };
        // A rejected Host or a blocking firewall (on_* = "warn"): READY all the same, the
        // warning in the log and in STATUS.
        let status = if matches!(v.kind, Kind::HostRejected | Kind::FirewallBlocked) {
            log(out, Level::Warning, format!("{done}: {summary}"));
            format!("WARNING: {summary}")
        } else {
            log(out, Level::Info, format!("{done}: {summary}"));
            format!("verified: {summary}")
        };
        self.serve(true, now, out);
        out.push(Action::Ready(status));
    }

    /// Idle from here, but for the recheck and the watchdog.
    fn serve(&mut self, verified: bool, now: Instant, out: &mut Out) {
        self.forget_workers(out);
        self.state = State::Serving {
            verified,
            next_tick: None,
            recheck: None,
        };
        self.schedule_tick(now);
    }

    fn rechecked(&mut self, v: Verdict, now: Instant, world: &dyn World, out: &mut Out) {
        let State::Serving {
            verified, recheck, ..
        } = &mut self.state
        else {
            return;
        };
        *recheck = None;
        match (*verified, acceptable(&v, &self.settings)) {
            (true, false) => self.verification_failed(&v.summary, now, world, out),
            (false, true) => {
                *verified = true;
                log(out, Level::Info, format!("verified again: {}", v.summary));
                out.push(Action::Status(format!("verified: {}", v.summary)));
            }
            _ => {}
        }
    }

    fn verification_failed(&mut self, why: &str, now: Instant, world: &dyn World, out: &mut Out) {
        let what = if matches!(self.state, State::Reloading { .. }) {
            "reload not verified"
        } else {
            "verification failed"
        };
        let workers = if self.watching_workers {
            world.workers_report()
        } else {
            None
        };
        self.forget_workers(out);
        let why = match workers {
            Some(workers) => format!("{why}; {workers}"),
            None => why.to_string(),
        };
        match self.settings.on_failure {
            OnFailure::Fail => {
                log(
                    out,
                    Level::Error,
                    format!("{what}: {why}; stopping gunicorn (exit {EXIT_UNVERIFIED})"),
                );
                out.push(Action::Status(format!("{what}: {why}")));
                self.code = Some(EXIT_UNVERIFIED);
                self.begin_stop(Some(Signal::SIGTERM), now, out);
            }
            OnFailure::Warn => {
                // Running anyway: gunicorn has been up long enough to take what was held.
                self.gunicorn_is_up(now);
                log(
                    out,
                    Level::Warning,
                    format!("{what}: {why}; on_failure = \"warn\": gunicorn keeps running"),
                );
                self.serve(false, now, out);
                out.push(Action::Ready(format!(
                    "WARNING: not verified, running anyway (on_failure = warn): {why}"
                )));
            }
        }
    }

    /// The periodic work that only exists when asked for: the recheck and the watchdog.
    fn schedule_tick(&mut self, now: Instant) {
        let periods = [
            Some(self.settings.recheck_interval).filter(|d| !d.is_zero()),
            self.settings.watchdog,
        ];
        if let State::Serving { next_tick, .. } = &mut self.state {
            *next_tick = periods.into_iter().flatten().min().map(|p| now + p);
        }
    }

    // ---------------------------------------------------------------- time

    fn on_time(&mut self, now: Instant, world: &dyn World, out: &mut Out) {
        self.kill_if_overdue(now, world, out);
        self.restart_if_due(now, world, out);
        self.ask_if_due(now, out);
        self.tick_if_due(now, out);
        if self.outbox.busy() && self.outbox.next.is_some_and(|t| now >= t) {
            self.deliver_next_held(now, world, out);
        }
    }

    /// While serving: the watchdog, and a recheck when one is asked for and none is out.
    fn tick_if_due(&mut self, now: Instant, out: &mut Out) {
        let State::Serving {
            verified,
            next_tick: Some(t),
            recheck,
        } = &self.state
        else {
            return;
        };
        if now < *t {
            return;
        }
        if *verified {
            out.push(Action::Watchdog);
        }
        if !self.settings.recheck_interval.is_zero() && recheck.is_none() && self.asking.is_none() {
            self.last_id += 1;
            let id = self.last_id;
            if let State::Serving { recheck, .. } = &mut self.state {
                *recheck = Some(id);
            }
            self.look(id, Vec::new(), out);
        }
        self.schedule_tick(now);
    }
}

/// A new gunicorn's first check: a look once it says it is up, or at `UNANNOUNCED`.
fn first_check(id: u64, now: Instant, startup_timeout: Duration) -> Check {
    Check {
        id,
        next: now + UNANNOUNCED,
        deadline: now + startup_timeout,
        delay: FIRST_RETRY,
        previous: Vec::new(),
        note: None,
    }
}

/// A verdict to send READY=1 on: ok, or a wall that is the app's or the administrator's (a
/// Host the app rejects, a blocking firewall) when that only warrants a warning.
fn acceptable(v: &Verdict, settings: &Settings) -> bool {
    v.ok()
        || (v.kind == Kind::HostRejected && settings.on_host_rejected == OnHostRejected::Warn)
        || (v.kind == Kind::FirewallBlocked
            && settings.on_firewall_blocked == OnFirewallBlocked::Warn)
}

/// A verdict that will not change by waiting.
fn lasting(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::SingleAddress
            | Kind::Foreign
            | Kind::Split
            | Kind::HostRejected
            | Kind::FirewallBlocked
    )
}

#[cfg(test)]
mod tests;
