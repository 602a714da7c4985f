//! The supervisor: one loop over its event sources (a signalfd, gunicorn's
//! notify socket, the HTTP probes' sockets, the workers' pidfds, the nearest
//! deadline) that never waits on anything else. Where the launcher stands is
//! one `State`; what a signal or a verdict does depends on it.
//!
//! Rooms: this file holds the loop and the state; `signals` what comes in
//! and what is passed on (held while gunicorn starts, one at a time);
//! `verification` when to look and what a finding means (READY=1, a
//! reload's new generation, a failure); `ending` stops, exits and the
//! launcher's own status; [`restart`] a new gunicorn on a held socket
//! after a crash; `upgrade` a USR2 upgrade, the old generation stopped only
//! once a new worker answers. The reasoning behind the design (why no thread,
//! why held signals are paced) is in docs/supervision.md.

use crate::config::{OnFailure, OnFirewallBlocked, OnHostRejected};
use crate::log;
use crate::notify::{ChildSocket, Systemd};
use crate::pollset::Pollable;
use crate::tree::{self, Proc};
use crate::verify::{self, Target, Verdict};
use crate::workers::Census;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, killpg};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;
use std::collections::VecDeque;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

mod ending;
pub mod restart;
mod signals;
mod upgrade;
mod verification;

pub use ending::describe_status;
pub use signals::take_signals;
use verification::{CENSUS, FIRST_RETRY, UNANNOUNCED};

/// How to supervise.
pub struct Settings {
    pub target: Target,
    pub stop_timeout: Duration,
    pub startup_timeout: Duration,
    pub recheck_interval: Duration,
    pub on_failure: OnFailure,
    pub on_host_rejected: OnHostRejected,
    pub on_firewall_blocked: OnFirewallBlocked,
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
    /// The master died while serving, with a held socket: its orphaned
    /// workers are cleared, and a new gunicorn starts on the same socket at
    /// `at` (see `restart`). Nothing is running to take a signal meanwhile.
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
    pending: verify::Pending,
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
    /// How to start gunicorn again after a crash (a held socket only).
    respawn: Option<restart::Respawn>,
    /// When each recent crash happened, for the restart limit; and how many
    /// restarts in all.
    crashes: VecDeque<Instant>,
    restarts: u32,
    /// A USR2 upgrade under way: the new generation on trial.
    upgrade: Option<upgrade::Upgrade>,
    /// The firewall tools (nft, iptables-save) the verification started and the loop has
    /// not reaped yet: children of the launcher, but never gunicorn's.
    tools: Vec<Pid>,
}

/// Supervises the gunicorn master `master` until nothing of its tree is
/// left. With `respawn`, a master that dies while serving is started again.
pub fn supervise(
    master: Pid,
    signals: &SignalFd,
    notify: &ChildSocket,
    settings: Settings,
    respawn: Option<restart::Respawn>,
) -> Result<Ending, String> {
    let now = Instant::now();
    let mut sup = Supervisor {
        state: State::Starting {
            check: first_check(1, now, settings.startup_timeout),
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
        respawn,
        crashes: VecDeque::new(),
        restarts: 0,
        upgrade: None,
        tools: Vec::new(),
    };
    sup.systemd.status("starting gunicorn");
    sup.run_loop(signals, notify)
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

impl Supervisor {
    fn run_loop(&mut self, signals: &SignalFd, notify: &ChildSocket) -> Result<Ending, String> {
        loop {
            let timeout = self.poll_timeout();
            let mut fds = vec![
                PollFd::new(signals.as_fd(), PollFlags::POLLIN),
                PollFd::new(notify.fd(), PollFlags::POLLIN),
            ];
            let probing = self.in_flight.as_ref().map_or(0, |f| {
                fds.extend(f.pending.poll_fds());
                fds.len() - 2
            });
            let census = self.census.as_ref().map_or(0, |c| {
                fds.extend(c.fds().map(|fd| PollFd::new(fd, PollFlags::POLLIN)));
                fds.len() - 2 - probing
            });
            if let Some(u) = &self.upgrade {
                fds.extend(u.poll_fds());
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
                match &mut self.upgrade {
                    Some(u) => u.on_ready(),
                    None => self.gunicorn_is_up(),
                }
            }
            if signalled {
                while let Ok(Some(info)) = signals.read_signal() {
                    self.on_signal(info.ssi_signo as i32, info.ssi_code);
                }
                if let Some(ending) = self.reap() {
                    return Ok(ending);
                }
            }
            let (probes, rest) = revents[2..].split_at(probing);
            let (died, upgrade) = rest.split_at(census);
            if let Some(c) = &mut self.census {
                c.on_ready(&died.iter().map(|r| !r.is_empty()).collect::<Vec<_>>());
            }
            self.on_probes(probes);
            self.on_upgrade(upgrade, Instant::now());
            self.on_time(Instant::now());
            self.note_tools();
            // A restart that could not start anything: nothing is left to wait for.
            if self.master_status.is_some()
                && let Some(ending) = self.reap()
            {
                return Ok(ending);
            }
        }
    }

    /// gunicorn's processes: every descendant of the launcher but its own tools.
    fn gunicorns(&self) -> Vec<Pid> {
        let mut all = tree::descendants(Pid::this());
        all.retain(|p| !self.tools.contains(p));
        all
    }

    /// Remembers the tools the verification under way has started.
    fn note_tools(&mut self) {
        if let Some(f) = &self.in_flight {
            for &pid in f.pending.tool_pids() {
                let pid = Pid::from_raw(pid);
                if !self.tools.contains(&pid) {
                    self.tools.push(pid);
                }
            }
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
            State::Restarting {
                at,
                orphans_deadline,
                killed,
                orphans_gone,
                ..
            } => {
                // While orphans remain, each one's exit (SIGCHLD) wakes the loop.
                if *orphans_gone {
                    consider(*at);
                } else if !killed {
                    consider(*orphans_deadline);
                }
            }
        }
        if !self.outbox.queue.is_empty() {
            consider(self.outbox.next);
        }
        if let Some(f) = &self.in_flight {
            consider(f.pending.deadline());
        }
        if self.census.is_some() {
            consider(self.census_next);
        }
        if let Some(u) = &self.upgrade {
            consider(u.wake_at());
        }
        next.map_or(PollTimeout::NONE, crate::pollset::timeout)
    }

    fn on_time(&mut self, now: Instant) {
        if let State::Stopping(stop) = &mut self.state
            && !stop.killed
            && now >= stop.deadline
        {
            stop.killed = true;
            let rest = self.gunicorns();
            log::warn(&format!(
                "gunicorn did not stop within {:?}; killing {} remaining process(es)",
                self.settings.stop_timeout,
                rest.len()
            ));
            let _ = killpg(self.group, Signal::SIGKILL);
            tree::signal_all(&rest, Signal::SIGKILL);
        }
        self.restart_if_due(now);
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
}
