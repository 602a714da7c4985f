//! Verification as the loop drives it: when to look at the port, what a
//! finding means in each state, READY=1 or a failure, and the reload that
//! is READY only once the previous generation of workers is gone.

use super::{Check, EXIT_UNVERIFIED, Finding, InFlight, State, Stop, Supervisor};
use crate::config::{OnFailure, OnFirewallBlocked, OnHostRejected};
use crate::log;
use crate::notify::Systemd;
use crate::pollset::Pollable;
use crate::tree::Proc;
use crate::verify::{self, Look, Scope, Verdict};
use crate::workers::Census;
use nix::poll::PollFlags;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use std::time::{Duration, Instant};

/// How often a failing verification looks for new workers to watch (a
/// Python worker lives longer than this even when it dies at boot).
pub(super) const CENSUS: Duration = Duration::from_millis(20);

/// The first verification retry, and the longest pause between retries.
pub(super) const FIRST_RETRY: Duration = Duration::from_millis(20);
const MAX_RETRY: Duration = Duration::from_millis(500);
/// Every gunicorn since 20 sends READY=1 once it has bound, and that starts
/// the first verification; this first look is for one that sends nothing.
pub(super) const UNANNOUNCED: Duration = Duration::from_millis(250);

impl Supervisor {
    /// A new generation is on its way: verify it once `previous` is gone.
    /// Probes still out were asking about the old one: dropped.
    pub(super) fn reload(&mut self, previous: Vec<Proc>) {
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
            // Nothing runs to reload; the next gunicorn starts from its files anyway.
            other @ (State::Stopping(_) | State::Restarting { .. }) => other,
        };
    }

    pub(super) fn new_check(&mut self, previous: Vec<Proc>) -> Check {
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

    pub(super) fn ask_if_due(&mut self, now: Instant) {
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
    pub(super) fn look(&mut self, id: u64, previous: Vec<Proc>) {
        let running = previous.iter().filter(|p| p.running()).count();
        if running > 0 {
            return self.on_finding(id, Finding::PreviousStillRunning(running));
        }
        match verify::look(&self.settings.target, Scope::TreeOf(Pid::this())) {
            Look::Decided(v) => self.on_finding(id, Finding::Verdict(v)),
            Look::Probing(probing) => {
                let pending = verify::Pending::start(&probing, &self.settings.target);
                self.in_flight = Some(InFlight {
                    id,
                    probing,
                    pending,
                });
                // Nothing to probe: decided already.
                self.on_probes(&[]);
            }
        }
    }

    pub(super) fn on_finding(&mut self, id: u64, finding: Finding) {
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
                    Finding::Verdict(v) if acceptable(&v, &self.settings) => self.verified(v),
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
                                    | verify::Kind::FirewallBlocked
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

    pub(super) fn verified(&mut self, v: Verdict) {
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
        // A rejected Host or a blocking firewall (on_*= "warn"): READY all the
        // same, the warning in the log and in STATUS.
        let status = if matches!(
            v.kind,
            verify::Kind::HostRejected | verify::Kind::FirewallBlocked
        ) {
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
    pub(super) fn serve(&mut self, verified: bool) {
        self.census = None;
        self.state = State::Serving {
            verified,
            next_tick: None,
            recheck: None,
        };
        self.schedule_tick(Instant::now());
        crate::memory::release_clean_pages();
    }

    pub(super) fn rechecked(&mut self, v: Verdict) {
        let State::Serving { verified, .. } = self.state else {
            return;
        };
        match (verified, acceptable(&v, &self.settings)) {
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

    pub(super) fn verification_failed(&mut self, why: &str) {
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
    pub(super) fn schedule_tick(&mut self, now: Instant) {
        let periods = [
            Some(self.settings.recheck_interval).filter(|d| !d.is_zero()),
            self.systemd.watchdog_period(),
        ];
        if let State::Serving { next_tick, .. } = &mut self.state {
            *next_tick = periods.into_iter().flatten().min().map(|p| now + p);
        }
    }

    /// Moves the probes on; once all have answered, the verdict.
    pub(super) fn on_probes(&mut self, ready: &[PollFlags]) {
        let Some(f) = &mut self.in_flight else {
            return;
        };
        f.pending.advance(ready, Instant::now());
        if !f.pending.done() {
            return;
        }
        if let Some(f) = self.in_flight.take() {
            let (probes, firewall) = f.pending.results();
            let verdict = verify::judge(f.probing, probes, firewall);
            self.on_finding(f.id, Finding::Verdict(verdict));
        }
    }
}

/// A verdict to send READY=1 on: ok, or a wall that is the app's or the
/// administrator's (a Host the app rejects, a blocking firewall) when that
/// only warrants a warning.
fn acceptable(v: &Verdict, settings: &super::Settings) -> bool {
    v.ok()
        || (v.kind == verify::Kind::HostRejected
            && settings.on_host_rejected == OnHostRejected::Warn)
        || (v.kind == verify::Kind::FirewallBlocked
            && settings.on_firewall_blocked == OnFirewallBlocked::Warn)
}

/// The master's workers, the generation a reload replaces. gunicorn (≥ 25)
/// can also run a "dirty arbiter", a child that keeps its own pool of
/// workers and outlives reloads: a child with children of its own is not
/// counted (a sync worker has none).
pub(super) fn gunicorns_workers(master: Pid) -> Vec<Pid> {
    crate::proc::children(master.as_raw())
        .unwrap_or_default()
        .into_iter()
        .filter(|&c| crate::proc::children(c).is_none_or(|grand| grand.is_empty()))
        .map(Pid::from_raw)
        .collect()
}
