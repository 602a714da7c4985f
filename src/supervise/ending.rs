//! The end of gunicorn: a stop (TERM, then CONT, then SIGKILL after the
//! stop timeout), a master that exits (adopting a USR2 successor, clearing
//! what a dead master left), and the status the launcher exits with.

use super::signals::MAX_HELD;
use super::{EXIT_UNVERIFIED, Ending, State, Stop, Supervisor};
use crate::log;
use crate::tree;
use crate::verify::{self, Scope};
use crate::workers::Census;
use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

impl Supervisor {
    /// TERM, INT or QUIT to the master, then CONT to it and its workers, as
    /// systemd does: a stopped process would never act on the first.
    pub(super) fn begin_stop(&mut self, sig: Option<Signal>) {
        if let State::Restarting { crashed, .. } = self.state {
            // No master to tell: what the dead one left is stopped, and the launcher
            // ends as a clean stop, which is what it was asked for.
            if let Some(sig) = sig {
                log::info(&format!(
                    "stopping ({sig}) while gunicorn restarts after a crash: not restarting it"
                ));
                self.systemd.stopping();
            }
            tree::signal_all(&self.gunicorns(), Signal::SIGTERM);
            self.master_status = Some(crashed);
            self.code = Some(0);
            self.state = State::Stopping(Stop {
                signal: None,
                deadline: Instant::now() + self.settings.stop_timeout,
                killed: false,
            });
            return;
        }
        if let Some(sig) = sig {
            // Once the master is gone (reaped), its pid may be someone else's.
            if self.master_status.is_none() {
                self.forward(sig);
            }
            // A gunicorn started for an upgrade and not yet adopted stops too.
            if let Some(new) = self.upgrade.take().and_then(|u| u.new_master()) {
                log::info(&format!(
                    "the upgrade's new gunicorn (pid {new}) stops too ({sig})"
                ));
                let _ = nix::sys::signal::kill(new, sig);
            }
            let _ = killpg(self.group, Signal::SIGCONT);
            tree::signal_all(&self.gunicorns(), Signal::SIGCONT);
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
    pub(super) fn reap(&mut self) -> Option<Ending> {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => return None,
                Ok(status) => {
                    if let Some(pid) = status.pid() {
                        self.tools.retain(|&t| t != pid);
                    }
                    if status.pid() == Some(self.master) {
                        self.on_master_exit(status);
                    } else if let Some(upgrade) = &mut self.upgrade
                        && upgrade.is_ours()
                        && status.pid() == upgrade.new_master()
                    {
                        upgrade.master_exited(format!("exited ({})", describe_status(status)));
                    }
                }
                Err(Errno::EINTR) => continue,
                // No child at all: the whole tree is gone.
                Err(_) => return self.master_status.map(|s| self.ending(s)),
            }
        }
    }

    pub(super) fn on_master_exit(&mut self, status: WaitStatus) {
        let old = self.master;
        if let Some(new) = self.successor(old) {
            self.upgrade = None;
            self.adopt(old, new);
            return;
        }
        // The old master died before the launcher's new one had answered: the new one takes
        // over, and is verified as after a reload.
        if let Some(new) = self
            .upgrade
            .take()
            .filter(|u| u.is_ours())
            .and_then(|u| u.new_master())
        {
            self.adopt(old, new);
            self.group = new;
            return;
        }
        if self.restart_after_crash(status) {
            return;
        }
        self.master_status = Some(status);
        // The master is gone: whatever of its tree is left (workers of a
        // SIGKILLed master notice only after timeout/2) is stopped now.
        let rest = self.gunicorns();
        if !matches!(self.state, State::Stopping(_)) {
            self.explain_exit(status, rest.len());
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
    pub(super) fn adopt(&mut self, old: Pid, new: Pid) {
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
        let previous = self
            .gunicorns()
            .into_iter()
            .filter(|p| !new_tree.contains(p));
        self.reload(tree::named(previous));
    }

    /// A live child of ours that gunicorn started as the old master's
    /// successor (USR2).
    pub(super) fn successor(&self, old: Pid) -> Option<Pid> {
        self.gunicorns()
            .into_iter()
            .find(|&p| tree::is_successor_of(p, old))
    }

    pub(super) fn explain_exit(&mut self, status: WaitStatus, left_behind: usize) {
        let during = matches!(self.state, State::Starting { .. } | State::Verifying { .. });
        let what = describe_status(status);
        if during && left_behind > 0 && status == WaitStatus::Exited(self.master, 0) {
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
            // What holds the port now, outside the launcher's own tree (its held socket,
            // the dead master's workers): only that is another program. Asked here, in
            // the loop: the service is ending, and the answer (one kernel query, and an
            // owner search only if something listens) is what the message is for.
            let mut seen = String::new();
            if left_behind > 0 {
                seen.push_str(&format!(
                    "; {left_behind} of its processes still ran (its workers, booting the app): stopped now"
                ));
            }
            if let verify::Look::Decided(port) =
                verify::look(&self.settings.target, Scope::TreeOf(Pid::this()))
                && port.kind == verify::Kind::Foreign
            {
                seen.push_str(&format!(
                    "; {} (a port in use ends gunicorn this way)",
                    port.summary
                ));
            }
            if let Some(workers) = self.census.as_ref().and_then(Census::report) {
                seen.push_str(&format!("; {workers}"));
            }
            let line = format!("gunicorn exited during its start (not yet verified): {what}{seen}");
            log::error(&line);
            self.systemd.status(&line);
        } else {
            log::warn(&format!("gunicorn exited: {what}"));
        }
    }

    pub(super) fn ending(&self, status: WaitStatus) -> Ending {
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
