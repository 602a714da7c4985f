//! The supervisor: one loop over its event sources (a signalfd, gunicorn's notify socket,
//! the HTTP probes' sockets, the workers' pidfds, an upgrade's trial, the nearest
//! deadline) that never waits on anything else. This file is the loop, the I/O shell: it
//! turns what happens into [`machine::Event`](crate::supervise::machine::Event)s, and performs the [`machine::Action`](crate::supervise::machine::Action)s the
//! one transition (`machine`) decides. Rooms: `machine` the decisions; `direct` a signal
//! sent on the moment it is read, where the decisions said it goes; `upgrade` the trial of a
//! USR2's new generation; `restart` the restart limit; `signals` which signals are taken;
//! `ending` how gunicorn ended. The reasoning (why no thread, why held signals are
//! paced) is in docs/supervision.md.

use crate::log;
use crate::notify::{ChildSocket, Systemd};
use crate::pollset::Pollable;
use crate::process::tree::{self, Proc};
use crate::process::workers::Census;
use crate::spawn;
use crate::verify::{self, Look, Scope, Target};
use machine::{Action, Event, Finding, Machine, World};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::collections::VecDeque;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

mod direct;
mod ending;
pub mod machine;
pub mod restart;
mod signals;
mod upgrade;

pub use ending::{Ending, Exit, describe_status, exit_of};
pub use machine::{EXIT_UNVERIFIED, Settings};
pub use signals::take_signals;

/// How often a failing verification looks for new workers to watch (a Python worker lives
/// longer than this even when it dies at boot).
const CENSUS: Duration = Duration::from_millis(20);

/// A verification waiting for its HTTP probes.
struct InFlight {
    id: u64,
    probing: verify::Probing,
    pending: verify::Pending,
}

/// The loop's own state: what the decisions do not hold (descriptors, probes, pidfds).
struct Shell<'a> {
    machine: Machine,
    signals: &'a SignalFd,
    notify: &'a ChildSocket,
    systemd: Systemd,
    target: Target,
    startup_timeout: Duration,
    respawn: Option<restart::Respawn>,
    in_flight: Option<InFlight>,
    /// Watches gunicorn's workers once a verification has failed a look.
    census: Option<Census>,
    census_next: Instant,
    trial: Option<upgrade::Trial>,
    /// The firewall tools (nft, iptables-save) the verification started and the loop has not
    /// reaped yet: children of the launcher, but never gunicorn's.
    tools: Vec<Pid>,
    ended: Option<Ending>,
    /// READY=1 went out: give back, just before the sleep, what start-up and it touched.
    release_before_sleep: bool,
    /// Where a signal goes the moment it is read, as the decisions last said.
    plan: Option<direct::Plan>,
}

/// Supervises the gunicorn master `master` until nothing of its tree is left. With
/// `respawn` (a held socket), a master that dies while serving is started again.
pub fn supervise(
    master: Pid,
    signals: &SignalFd,
    notify: &ChildSocket,
    target: Target,
    mut settings: Settings,
    respawn: Option<restart::Respawn>,
) -> Result<Ending, String> {
    let now = Instant::now();
    let systemd = Systemd::from_env();
    settings.watchdog = systemd.watchdog_period();
    settings.restart = respawn.as_ref().map(|r| (r.burst, r.interval));
    let startup_timeout = settings.startup_timeout;
    let (machine, first) = Machine::new(settings, master, now);
    let mut shell = Shell {
        machine,
        signals,
        notify,
        systemd,
        target,
        startup_timeout,
        respawn,
        in_flight: None,
        census: None,
        census_next: now,
        trial: None,
        release_before_sleep: false,
        plan: None,
        tools: Vec::new(),
        ended: None,
    };
    for action in first {
        shell.perform(action);
    }
    shell.run()
}

fn said_if_not_forwarded(pid: Pid, sig: Signal, sent: nix::Result<()>) {
    if let Err(e) = sent {
        log::warn(&format!(
            "could not forward {sig} to gunicorn pid {pid}: {e}"
        ));
    }
}

impl Shell<'_> {
    fn run(&mut self) -> Result<Ending, String> {
        loop {
            if let Some(ending) = self.ended {
                return Ok(ending);
            }
            let to = self.machine.direct();
            if self.plan.as_ref().map(|p| p.master) != to {
                self.plan = to.map(direct::Plan::new);
            }
            if std::mem::take(&mut self.release_before_sleep) {
                crate::memory::release_clean_pages(&direct::hot_pages());
            }
            let mut children: direct::Children = [0; 4096];
            let (taken, revents) = self.wait(&mut children)?;
            let (signalled, notified) = (!revents[0].is_empty(), !revents[1].is_empty());
            let read = match taken {
                Some(direct::Taken::Sent {
                    signal,
                    master,
                    sent,
                    children: len,
                }) => {
                    self.sent_direct(signal, master, sent, &children[..len]);
                    None
                }
                Some(direct::Taken::Read(info)) => Some(info),
                None => None,
            };
            // gunicorn's READY first: it says whether held signals may go.
            if notified && self.notify.drain_ready() {
                self.feed(Event::Ready);
            }
            if signalled {
                let signals = self.signals;
                let rest = std::iter::from_fn(|| signals.read_signal().ok().flatten());
                for info in read.into_iter().chain(rest) {
                    if let Ok(signal) = Signal::try_from(info.ssi_signo as i32) {
                        let from_kernel = info.ssi_code == signals::SI_KERNEL;
                        self.feed(Event::Signal {
                            signal,
                            from_kernel,
                        });
                    }
                }
                self.reap();
            }
            self.on_ready_descriptors(&revents[2..]);
            self.refresh_census();
            self.feed(Event::Time);
            self.note_tools();
            // A restart that could not start anything: nothing is left to wait for.
            if self.machine.finished() {
                self.reap();
            }
        }
    }

    /// Polls every source until one is ready or the nearest deadline passes; the revents
    /// in the order [signalfd, notify socket, probes…, workers' pidfds…, the trial's…].
    /// A signal that goes straight to gunicorn ([`direct`]) is read and sent first.
    fn wait(
        &self,
        children: &mut direct::Children,
    ) -> Result<(Option<direct::Taken>, Vec<PollFlags>), String> {
        let mut fds = vec![
            PollFd::new(self.signals.as_fd(), PollFlags::POLLIN),
            PollFd::new(self.notify.fd(), PollFlags::POLLIN),
        ];
        if let Some(f) = &self.in_flight {
            fds.extend(f.pending.poll_fds());
        }
        if let Some(c) = &self.census {
            fds.extend(c.fds().map(|fd| PollFd::new(fd, PollFlags::POLLIN)));
        }
        if let Some(t) = &self.trial {
            fds.extend(t.poll_fds());
        }
        match poll(&mut fds, self.timeout()) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(format!("poll failed: {e}")),
        }
        let taken = match fds[0].revents() {
            Some(r) if r.contains(PollFlags::POLLIN) => {
                direct::take(self.signals, self.plan.as_ref(), children)
            }
            _ => None,
        };
        let revents = fds
            .iter()
            .map(|f| f.revents().unwrap_or(PollFlags::empty()))
            .collect();
        Ok((taken, revents))
    }

    /// What follows a signal the loop sent straight to the master: a HUP's reload.
    fn sent_direct(&mut self, signal: Signal, master: Pid, sent: nix::Result<()>, children: &[u8]) {
        said_if_not_forwarded(master, signal, sent);
        if signal == Signal::SIGHUP {
            self.feed(Event::Replacing(direct::parse_children(children)));
        }
    }

    /// The nearest deadline of the decisions and of the I/O under way; none: sleep.
    fn timeout(&self) -> PollTimeout {
        let deadlines = [
            self.machine.next_deadline(),
            self.in_flight.as_ref().map(|f| f.pending.deadline()),
            self.census.as_ref().map(|_| self.census_next),
            self.trial.as_ref().map(upgrade::Trial::wake_at),
        ];
        deadlines
            .into_iter()
            .flatten()
            .min()
            .map_or(PollTimeout::NONE, crate::pollset::timeout)
    }

    /// Moves the probes, the census and the trial on with what their descriptors said.
    fn on_ready_descriptors(&mut self, revents: &[PollFlags]) {
        let probing = self
            .in_flight
            .as_ref()
            .map_or(0, |f| f.pending.poll_fds().len());
        let watched = self.census.as_ref().map_or(0, |c| c.fds().count());
        let (probes, rest) = revents.split_at(probing.min(revents.len()));
        let (died, trial) = rest.split_at(watched.min(rest.len()));
        if let Some(c) = &mut self.census {
            c.on_ready(&died.iter().map(|r| !r.is_empty()).collect::<Vec<_>>());
        }
        if let Some(event) = self.advance_probes(probes) {
            self.feed(event);
        }
        for event in self.advance_trial(trial) {
            self.feed(event);
        }
    }

    fn advance_probes(&mut self, ready: &[PollFlags]) -> Option<Event> {
        let f = self.in_flight.as_mut()?;
        f.pending.advance(ready, Instant::now());
        if !f.pending.done() {
            return None;
        }
        let f = self.in_flight.take()?;
        let (probes, firewall) = f.pending.results();
        let verdict = verify::judge(f.probing, probes, firewall);
        Some(Event::Finding {
            id: f.id,
            finding: Finding::Verdict(verdict),
        })
    }

    fn advance_trial(&mut self, ready: &[PollFlags]) -> Vec<Event> {
        let Some(trial) = &mut self.trial else {
            return Vec::new();
        };
        let known = trial.new_master();
        let step = trial.advance(ready, Instant::now(), &self.target);
        let new = trial.new_master();
        let mut events = Vec::new();
        if let (None, Some(found)) = (known, new) {
            events.push(Event::UpgradeFound(found));
        }
        match step {
            upgrade::Step::Wait => {}
            upgrade::Step::Verified => events.extend(new.map(Event::UpgradeAnswered)),
            upgrade::Step::Failed(why) => events.push(Event::UpgradeFailed { new, why }),
        }
        events
    }

    fn refresh_census(&mut self) {
        let now = Instant::now();
        if let Some(c) = &mut self.census
            && now >= self.census_next
        {
            c.refresh(self.machine.master());
            self.census_next = now + CENSUS;
        }
    }

    /// Reaps every exited child, and says what it was.
    fn reap(&mut self) {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => return,
                Ok(status) => {
                    let Some(pid) = status.pid() else { continue };
                    self.tools.retain(|&t| t != pid);
                    if pid == self.machine.master() {
                        self.feed(Event::MasterExited(status));
                    } else if let Some(trial) = &mut self.trial
                        && trial.is_ours()
                        && trial.new_master() == Some(pid)
                    {
                        trial.master_exited(format!("exited ({})", describe_status(status)));
                    }
                }
                Err(Errno::EINTR) => continue,
                // No child at all: the whole tree is gone.
                Err(_) => return self.feed(Event::AllReaped),
            }
        }
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

    /// One event and all that follows from it.
    fn feed(&mut self, event: Event) {
        let mut events = VecDeque::from([event]);
        while let Some(event) = events.pop_front() {
            let world = Here {
                tools: &self.tools,
                census: self.census.as_ref(),
                target: &self.target,
            };
            let actions = self.machine.step(event, Instant::now(), &world);
            for action in actions {
                events.extend(self.perform(action));
            }
        }
    }

    /// Does what the decisions asked; some answer with an event.
    fn perform(&mut self, action: Action) -> Option<Event> {
        match action {
            Action::Forward(pid, sig) => said_if_not_forwarded(pid, sig, tree::send(pid, sig)),
            Action::Replacing(children) => return Some(Event::Replacing(children)),
            Action::Signal(pid, sig) => drop(tree::send(pid, sig)),
            Action::SignalGroup(pid, sig) => drop(tree::send_to_group(pid, sig)),
            Action::SignalGunicorns(sig) => tree::signal_all(&gunicorns(&self.tools), sig),
            Action::Log(level, text) => log::log(level, &text),
            Action::Status(text) => self.systemd.status(&text),
            Action::Ready(status) => {
                self.systemd.post(&Systemd::ready_message(&status));
                // Start-up's pages go once nothing is left to do, just before the sleep:
                // nothing that can come after READY=1 comes before it.
                self.release_before_sleep = true;
            }
            Action::Reloading => self.systemd.reloading(),
            Action::Stopping => self.systemd.stopping(),
            Action::Watchdog => self.systemd.watchdog(),
            Action::Look { id, previous } => return self.look(id, &previous),
            Action::DropLook => self.in_flight = None,
            Action::WatchWorkers => {
                self.census = Some(Census::new());
                self.census_next = Instant::now();
            }
            Action::ForgetWorkers => self.census = None,
            Action::Respawn => return Some(Event::Respawned(self.spawn_again())),
            Action::SpawnUpgrade => {
                let started = self.spawn_again().map_err(|(_, message)| message);
                return Some(Event::UpgradeSpawned(started));
            }
            Action::StartTrial { old, new, ours } => {
                self.trial = Some(upgrade::Trial::new(old, new, ours, self.startup_timeout));
            }
            Action::TrialReady => self.trial.iter_mut().for_each(upgrade::Trial::on_ready),
            Action::EndTrial => self.trial = None,
            Action::Exit(ending) => self.ended = Some(ending),
        }
        None
    }

    /// One look at the port: decided at once from the kernel and the process tree, or
    /// probes started (their answer comes through the loop).
    fn look(&mut self, id: u64, previous: &[Proc]) -> Option<Event> {
        let running = previous.iter().filter(|p| p.running()).count();
        if running > 0 {
            let finding = Finding::PreviousStillRunning(running);
            return Some(Event::Finding { id, finding });
        }
        match verify::look(&self.target, Scope::TreeOf(Pid::this())) {
            Look::Decided(v) => Some(Event::Finding {
                id,
                finding: Finding::Verdict(v),
            }),
            Look::Probing(probing) => {
                let pending = verify::Pending::start(&probing, &self.target);
                self.in_flight = Some(InFlight {
                    id,
                    probing,
                    pending,
                });
                // Nothing to probe: decided already.
                self.advance_probes(&[])
            }
        }
    }

    /// The same command again on the held socket.
    fn spawn_again(&self) -> Result<Pid, (i32, String)> {
        let Some(respawn) = &self.respawn else {
            return Err((
                crate::exit::SOFTWARE,
                "no held socket to start gunicorn on".into(),
            ));
        };
        spawn::spawn(&respawn.command).map_err(|f| (f.code, f.message))
    }
}

/// gunicorn's processes: every descendant of the launcher but its own tools.
fn gunicorns(tools: &[Pid]) -> Vec<Pid> {
    let mut all = tree::descendants(Pid::this());
    all.retain(|p| !tools.contains(p));
    all
}

/// The world as the decisions read it, from /proc and the kernel.
struct Here<'a> {
    tools: &'a [Pid],
    census: Option<&'a Census>,
    target: &'a Target,
}

impl World for Here<'_> {
    fn gunicorns(&self) -> Vec<Pid> {
        gunicorns(self.tools)
    }

    fn tree(&self, root: Pid) -> Vec<Pid> {
        let mut all = tree::descendants(root);
        all.push(root);
        all
    }

    fn named(&self, pids: Vec<Pid>) -> Vec<Proc> {
        tree::named(pids)
    }

    fn children(&self, master: Pid) -> Vec<Pid> {
        crate::process::procfs::main_thread_children(master.as_raw())
            .into_iter()
            .map(Pid::from_raw)
            .collect()
    }

    /// gunicorn (≥ 25) can also run a "dirty arbiter", a child with a pool of its own that
    /// outlives reloads: a child with children of its own is not a worker.
    fn workers(&self, children: Vec<Pid>) -> Vec<Proc> {
        let workers = children.into_iter().filter(|&c| {
            crate::process::procfs::children(c.as_raw()).is_none_or(|grand| grand.is_empty())
        });
        tree::named(workers)
    }

    fn successor(&self, old: Pid) -> Option<Pid> {
        self.gunicorns()
            .into_iter()
            .find(|&p| tree::is_successor_of(p, old))
    }

    fn pending(&self, pid: Pid, signal: Signal) -> bool {
        crate::process::procfs::pending_signals(pid.as_raw())
            .is_some_and(|mask| mask & (1 << (signal as i32 - 1)) != 0)
    }

    fn sleeps(&self, pid: Pid) -> Option<u64> {
        crate::process::procfs::voluntary_sleeps(pid.as_raw())
    }

    /// Asked only when a master died during its start: one kernel query, and an owner
    /// search only if something listens.
    fn foreign_holder(&self) -> Option<String> {
        match verify::look(self.target, Scope::TreeOf(Pid::this())) {
            Look::Decided(port) if port.kind == verify::Kind::Foreign => Some(port.summary),
            _ => None,
        }
    }

    fn workers_report(&self) -> Option<String> {
        self.census.and_then(Census::report)
    }

    fn describe(&self, pid: Pid) -> String {
        tree::describe(pid)
    }
}
