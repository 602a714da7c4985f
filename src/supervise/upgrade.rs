//! The trial of a USR2 upgrade's new generation (what follows from it is decided in
//! `machine`). A new master says READY=1 as soon as it has bound, before any worker has
//! imported the app: a bad deploy (an app that raises at import) passes that, then its
//! workers exit 3 and the master exits. So the trial asks for an answer from a new worker.
//!
//! Both generations accept on the same listening socket, so a probe alone cannot say who
//! answered. The trial probe connects, holds its request until a process has accepted the
//! connection, asks the kernel (sock_diag) for the accepted socket's inode and looks for it
//! in the new generation's descriptor tables; only then does it send. An answer from the
//! old generation is not counted and the next attempt follows. A new generation that exits,
//! or has not answered within `startup_timeout`, has failed.
//!
//! Two ways in: with a held socket the launcher starts the new gunicorn itself (its child,
//! reaped by the loop); after a forwarded USR2 gunicorn re-executes itself, and the new
//! master (the old master's child, found by its `GUNICORN_PID`) is watched through a pidfd.

use crate::pollset::Pollable;
use crate::probe::{Outcome, Probes, Request};
use crate::process::owners;
use crate::process::tree;
use crate::process::workers::{self, Census};
use crate::sockets;
use crate::verify::Target;
use nix::poll::{PollFd, PollFlags};
use nix::unistd::Pid;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

/// While the trial connection waits to be accepted: how often the kernel is asked.
const ACCEPT_LOOK: Duration = Duration::from_millis(2);
/// Between two attempts (the last one answered by the old generation, or not at all).
const NEXT_ATTEMPT: Duration = Duration::from_millis(10);
/// How often the new master is searched for (forwarded USR2) and its workers counted (a
/// Python worker that dies at boot lives longer than this).
const LOOK: Duration = Duration::from_millis(20);

/// The trial of an upgrade's new generation: the old master serves until it answers.
pub struct Trial {
    /// The master that got USR2; it serves until the end of the upgrade.
    old: Pid,
    /// The new master, once known.
    new: Option<Pid>,
    /// Started by the launcher on its held socket (our child: its exit comes through
    /// `waitpid`); otherwise gunicorn's own, whose exit shows on `exited`.
    ours: bool,
    exited: Option<OwnedFd>,
    /// The new master said READY=1 (it has bound; its workers are on their way).
    ready: bool,
    deadline: Instant,
    /// The next search for the new master and count of its workers.
    next: Instant,
    /// The next trial request, once the one before has ended.
    next_attempt: Instant,
    attempt: Option<Attempt>,
    /// Trial connections the old generation took and answered.
    old_answers: u32,
    /// The new generation's workers: what they die of.
    census: Census,
    /// How the new master ended, once it has.
    ended: Option<String>,
}

/// One trial request.
struct Attempt {
    probes: Probes,
    whose: Whose,
}

/// Who accepted the trial connection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Whose {
    NotYet,
    New,
    Old,
    /// The kernel could not say (no sock_diag): any answer while the new generation has a
    /// live worker is taken as its.
    Unknown,
}

/// What the upgrade came to, this turn of the loop.
pub enum Step {
    Wait,
    /// A worker of the new generation answered.
    Verified,
    /// The new generation failed: why, said after "the new gunicorn (pid N)".
    Failed(String),
}

impl Trial {
    /// A trial of the new generation of an upgrade of `old`: the launcher's own new master
    /// `new` (`ours`), or gunicorn's own, found once it runs.
    pub fn new(old: Pid, new: Option<Pid>, ours: bool, startup_timeout: Duration) -> Trial {
        let now = Instant::now();
        Trial {
            old,
            new,
            ours,
            exited: None,
            ready: false,
            deadline: now + startup_timeout,
            next: now,
            next_attempt: now,
            attempt: None,
            old_answers: 0,
            census: Census::new(),
            ended: None,
        }
    }

    /// The new master, once known.
    pub fn new_master(&self) -> Option<Pid> {
        self.new
    }

    /// Started by the launcher (a child of ours).
    pub fn is_ours(&self) -> bool {
        self.ours
    }

    /// Our new master exited (`how`, from its wait status): the upgrade fails at the next
    /// turn, once what its workers died of is counted.
    pub fn master_exited(&mut self, how: String) {
        self.ended = Some(how);
    }

    /// A READY=1 came while the upgrade is under way: the new master's.
    pub fn on_ready(&mut self) {
        self.ready = true;
    }

    /// What to poll: the new master's pidfd, the trial probe, the new workers' pidfds, in
    /// the order [`Upgrade::advance`] takes them.
    pub fn poll_fds(&self) -> Vec<PollFd<'_>> {
        let mut fds: Vec<PollFd<'_>> = self
            .exited
            .iter()
            .map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLIN))
            .collect();
        if let Some(t) = &self.attempt {
            fds.extend(t.probes.poll_fds());
        }
        fds.extend(
            self.census
                .fds()
                .map(|fd| PollFd::new(fd, PollFlags::POLLIN)),
        );
        fds
    }

    /// The nearest moment the upgrade needs the loop.
    pub fn wake_at(&self) -> Instant {
        let mut at = self.deadline.min(self.next);
        if self.new.is_some() && self.ready && self.attempt.is_none() {
            at = at.min(self.next_attempt);
        }
        if let Some(t) = &self.attempt {
            at = at.min(t.probes.deadline());
            if t.whose == Whose::NotYet && t.probes.held().is_some() {
                at = at.min(Instant::now() + ACCEPT_LOOK);
            }
        }
        at
    }

    /// One turn: `ready` holds the revents of [`Upgrade::poll_fds`].
    pub fn advance(&mut self, ready: &[PollFlags], now: Instant, target: &Target) -> Step {
        let mut ready = ready.iter().map(|r| !r.is_empty());
        if self.exited.is_some() && ready.next() == Some(true) {
            self.ended.get_or_insert_with(|| "exited".to_string());
        }
        if let Some(t) = &mut self.attempt {
            let n = t.probes.poll_fds().len();
            let mine: Vec<PollFlags> = (0..n)
                .map(|_| match ready.next() {
                    Some(true) => PollFlags::all(),
                    _ => PollFlags::empty(),
                })
                .collect();
            t.probes.advance(&mine, now);
        }
        self.census.on_ready(&ready.collect::<Vec<_>>());
        if let Some(how) = &self.ended {
            return Step::Failed(format!("{how}{}", self.deaths()));
        }
        if now >= self.next {
            self.look_around();
            self.next = now + LOOK;
        }
        if let Some(step) = self.attempt(now, target) {
            return step;
        }
        if now >= self.deadline {
            return Step::Failed(self.why_late());
        }
        Step::Wait
    }

    /// Finds the new master after a forwarded USR2, and the new workers to watch.
    fn look_around(&mut self) {
        if self.new.is_none()
            && let Some(new) = tree::descendants(self.old)
                .into_iter()
                .find(|&p| tree::is_successor_of(p, self.old))
        {
            self.new = Some(new);
            self.exited = workers::pidfd(new);
        }
        if let Some(new) = self.new {
            self.census.refresh(new);
        }
    }

    /// Starts, moves on or judges the trial request.
    fn attempt(&mut self, now: Instant, target: &Target) -> Option<Step> {
        let new = self.new?;
        if !self.ready {
            return None;
        }
        let Some(t) = &mut self.attempt else {
            if now >= self.next_attempt {
                let request = Request::to(loopback(target.port));
                self.attempt = Some(Attempt {
                    probes: Probes::start_held(request, &target.path, target.probe_timeout),
                    whose: Whose::NotYet,
                });
            }
            return None;
        };
        if t.whose == Whose::NotYet
            && let Some((local, server)) = t.probes.held()
        {
            t.whose = match sockets::accepted_inode(server, local) {
                Ok(Some(0) | None) => return None,
                Ok(Some(inode)) if generation_holds(new, inode) => Whose::New,
                Ok(Some(_)) => Whose::Old,
                Err(_) => Whose::Unknown,
            };
            t.probes.release();
        }
        if !t.probes.done() {
            return None;
        }
        let answered = matches!(t.probes.first_outcome(), Some(Outcome::Status(_)));
        let whose = t.whose;
        self.attempt = None;
        self.next_attempt = now + NEXT_ATTEMPT;
        match whose {
            Whose::New if answered => Some(Step::Verified),
            Whose::Unknown if answered && !workers_of(new).is_empty() => Some(Step::Verified),
            Whose::Old if answered => {
                self.old_answers += 1;
                None
            }
            _ => None,
        }
    }

    /// Why the new generation is given up at the deadline.
    fn why_late(&self) -> String {
        let mut why = match (self.new, self.ready) {
            (None, _) => "never started (no new master appeared)".to_string(),
            (Some(_), false) => "sent no READY=1 within the startup timeout".to_string(),
            (Some(_), true) => {
                "started, but none of its workers answered HTTP within the startup timeout"
                    .to_string()
            }
        };
        if self.old_answers > 0 {
            why.push_str(&format!(
                " (the old generation answered {})",
                crate::log::count(self.old_answers as usize, "trial request", "trial requests")
            ));
        }
        why.push_str(&self.deaths());
        why
    }

    /// What the new workers died of, as a clause, if any died.
    fn deaths(&self) -> String {
        self.census
            .report()
            .map(|r| {
                format!(
                    "; {}",
                    r.replacen("gunicorn's workers kept dying", "its workers died", 1)
                )
            })
            .unwrap_or_default()
    }
}

/// A loopback address the held socket answers on.
fn loopback(port: u16) -> SocketAddr {
    let v4 = sockets::query_listeners(port).map_or(true, |(listeners, _)| {
        listeners.is_empty() || listeners.iter().any(|l| l.covers_ipv4())
    });
    if v4 {
        SocketAddr::from((Ipv4Addr::LOCALHOST, port))
    } else {
        SocketAddr::from((Ipv6Addr::LOCALHOST, port))
    }
}

/// `new` or one of its descendants holds the socket `inode`.
fn generation_holds(new: Pid, inode: u64) -> bool {
    let mut pids: Vec<i32> = tree::descendants(new).iter().map(|p| p.as_raw()).collect();
    pids.push(new.as_raw());
    owners::owners_among(&[inode], &pids).contains_key(&inode)
}

/// The live children of `master`.
fn workers_of(master: Pid) -> Vec<i32> {
    crate::process::procfs::children(master.as_raw()).unwrap_or_default()
}
