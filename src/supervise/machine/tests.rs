//! Every rule the README states about signals and states, as steps of the transition with a
//! fake world: no process, no clock, milliseconds in all.

use super::*;
use crate::supervise::{Exit, exit_of};
use crate::verify::Kind;

const MASTER: i32 = 100;
const NEW: i32 = 200;

fn pid(n: i32) -> Pid {
    Pid::from_raw(n)
}

/// The world as a test sets it.
#[derive(Default)]
struct Fake {
    gunicorns: Vec<Pid>,
    workers: Vec<Proc>,
    successor: Option<Pid>,
    pending: bool,
    sleeps: Option<u64>,
    holder: Option<String>,
    report: Option<String>,
}

impl World for Fake {
    fn gunicorns(&self) -> Vec<Pid> {
        self.gunicorns.clone()
    }
    fn tree(&self, root: Pid) -> Vec<Pid> {
        vec![root]
    }
    fn named(&self, pids: Vec<Pid>) -> Vec<Proc> {
        pids.into_iter()
            .map(|p| Proc::named_for_test(p.as_raw(), 1))
            .collect()
    }
    fn children(&self, _master: Pid) -> Vec<Pid> {
        self.workers.iter().map(|w| w.pid).collect()
    }
    fn workers(&self, children: Vec<Pid>) -> Vec<Proc> {
        self.workers
            .iter()
            .filter(|w| children.contains(&w.pid))
            .cloned()
            .collect()
    }
    fn successor(&self, _old: Pid) -> Option<Pid> {
        self.successor
    }
    fn pending(&self, _pid: Pid, _signal: Signal) -> bool {
        self.pending
    }
    fn sleeps(&self, _pid: Pid) -> Option<u64> {
        self.sleeps
    }
    fn foreign_holder(&self) -> Option<String> {
        self.holder.clone()
    }
    fn workers_report(&self) -> Option<String> {
        self.report.clone()
    }
    fn describe(&self, pid: Pid) -> String {
        format!("{pid} (gunicorn)")
    }
}

fn settings(restart: Option<(u32, Duration)>) -> Settings {
    Settings {
        stop_timeout: Duration::from_secs(35),
        startup_timeout: Duration::from_secs(60),
        recheck_interval: Duration::ZERO,
        probe_timeout: Duration::from_secs(2),
        on_failure: OnFailure::Fail,
        on_host_rejected: OnHostRejected::Warn,
        on_firewall_blocked: OnFirewallBlocked::Warn,
        restart,
        watchdog: None,
    }
}

/// A machine and a clock to drive it, with a world to read.
struct Run {
    m: Machine,
    t0: Instant,
    world: Fake,
}

impl Run {
    fn new(settings: Settings) -> Run {
        let t0 = Instant::now();
        let (m, first) = Machine::new(settings, pid(MASTER), t0);
        assert_eq!(first, [Action::Status("starting gunicorn".into())]);
        Run {
            m,
            t0,
            world: Fake::default(),
        }
    }

    /// One step, and the step that [`Action::Replacing`] answers at once, as the loop does.
    fn at(&mut self, ms: u64, event: Event) -> Vec<Action> {
        let now = self.t0 + Duration::from_millis(ms);
        let mut out = self.m.step(event, now, &self.world);
        if let Some(Action::Replacing(children)) =
            out.iter().find(|a| matches!(a, Action::Replacing(_)))
        {
            let more = self
                .m
                .step(Event::Replacing(children.clone()), now, &self.world);
            out.extend(more);
        }
        out
    }

    fn signal(&mut self, ms: u64, signal: Signal) -> Vec<Action> {
        self.at(
            ms,
            Event::Signal {
                signal,
                from_kernel: false,
            },
        )
    }

    /// The look the machine asked for, answered with `kind`.
    fn answer(&mut self, ms: u64, asked: &[Action], kind: Kind) -> Vec<Action> {
        let id = look_id(asked).expect("a look was asked for");
        self.at(
            ms,
            Event::Finding {
                id,
                finding: Finding::Verdict(verdict(kind)),
            },
        )
    }

    /// Started, READY=1, and verified at `ms`: serving.
    fn serving(&mut self, ms: u64) {
        self.at(ms, Event::Ready);
        let asked = self.at(ms, Event::Time);
        let done = self.answer(ms, &asked, Kind::Ok);
        assert!(ready(&done).is_some(), "{done:?}");
        assert!(matches!(
            self.m.state(),
            State::Serving { verified: true, .. }
        ));
    }
}

fn verdict(kind: Kind) -> Verdict {
    Verdict {
        kind,
        listeners: Vec::new(),
        probes: Vec::new(),
        counted: Vec::new(),
        skipped: Vec::new(),
        firewall: None,
        summary: format!("{kind:?}"),
    }
}

fn look_id(actions: &[Action]) -> Option<u64> {
    actions.iter().find_map(|a| match a {
        Action::Look { id, .. } => Some(*id),
        _ => None,
    })
}

fn ready(actions: &[Action]) -> Option<&str> {
    actions.iter().find_map(|a| match a {
        Action::Ready(s) => Some(s.as_str()),
        _ => None,
    })
}

fn logged(actions: &[Action]) -> String {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Log(_, text) => Some(text.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn forwarded(actions: &[Action]) -> Vec<Signal> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Forward(_, s) => Some(*s),
            _ => None,
        })
        .collect()
}

#[test]
fn reload_and_scaling_signals_are_held_while_gunicorn_starts_at_most_64() {
    let mut r = Run::new(settings(None));
    for (i, s) in [Signal::SIGHUP, Signal::SIGTTIN, Signal::SIGUSR1]
        .into_iter()
        .enumerate()
    {
        let out = r.signal(i as u64, s);
        assert!(
            forwarded(&out).is_empty(),
            "nothing reaches a gunicorn without handlers: {out:?}"
        );
        assert!(logged(&out).contains(&format!("holding {s}")));
    }
    for i in 3..64 {
        r.signal(10 + i, Signal::SIGTTOU);
    }
    let past = r.signal(100, Signal::SIGTTOU);
    assert!(logged(&past).contains("more than 64 signals"), "{past:?}");
    let silent = r.signal(101, Signal::SIGTTOU);
    assert!(silent.is_empty(), "said once: {silent:?}");
    let State::Starting { held, .. } = r.m.state() else {
        panic!()
    };
    assert_eq!(held.len(), 65);
    // A stop drops them, and says how many (never more than 64).
    let out = r.signal(200, Signal::SIGTERM);
    assert!(logged(&out).contains("dropping 64 signal(s)"), "{out:?}");
    assert_eq!(forwarded(&out), [Signal::SIGTERM]);
}

#[test]
fn held_signals_go_out_one_at_a_time_once_the_last_was_taken() {
    let mut r = Run::new(settings(None));
    r.signal(0, Signal::SIGTTIN);
    r.signal(1, Signal::SIGTTIN);
    r.at(10, Event::Ready);
    // The first at once, with the look.
    let out = r.at(10, Event::Time);
    assert_eq!(forwarded(&out), [Signal::SIGTTIN]);
    // Not before the gap; then, while the master still has it pending, not at all.
    assert!(forwarded(&r.at(15, Event::Time)).is_empty());
    r.world.pending = true;
    assert!(forwarded(&r.at(25, Event::Time)).is_empty());
    // Taken: the next one goes.
    r.world.pending = false;
    assert_eq!(forwarded(&r.at(31, Event::Time)), [Signal::SIGTTIN]);
    // A signal that comes meanwhile waits behind the held ones.
    let mut r = Run::new(settings(None));
    r.signal(0, Signal::SIGTTIN);
    r.signal(1, Signal::SIGHUP);
    r.at(10, Event::Ready);
    r.at(10, Event::Time);
    let out = r.signal(11, Signal::SIGTTOU);
    assert!(forwarded(&out).is_empty(), "behind the held one: {out:?}");
    // A master that never takes the last one is given a second at most.
    r.world.pending = true;
    assert!(forwarded(&r.at(500, Event::Time)).is_empty());
    assert_eq!(forwarded(&r.at(1_011, Event::Time)), [Signal::SIGHUP]);
    assert_eq!(forwarded(&r.at(2_012, Event::Time)), [Signal::SIGTTOU]);
}

#[test]
fn a_held_signal_waits_until_the_master_has_slept_since_the_last_one() {
    let mut r = Run::new(settings(None));
    r.world.sleeps = Some(7);
    for i in 0..4 {
        r.signal(i, Signal::SIGTTIN);
    }
    r.at(10, Event::Ready);
    assert_eq!(forwarded(&r.at(10, Event::Time)), [Signal::SIGTTIN]);
    // Handed over (not pending) but not yet slept on: Python may not have looked. The loop
    // looks again a poll later, not at once (that would spin).
    assert!(forwarded(&r.at(30, Event::Time)).is_empty());
    assert_eq!(r.m.next_deadline(), Some(r.t0 + Duration::from_millis(35)));
    assert!(forwarded(&r.at(500, Event::Time)).is_empty());
    r.world.sleeps = Some(8);
    let out = r.at(505, Event::Time);
    assert_eq!(forwarded(&out), [Signal::SIGTTIN]);
    assert!(logged(&out).is_empty(), "taken in time: {out:?}");
    // Slept, but still pending: not yet.
    r.world.sleeps = Some(9);
    r.world.pending = true;
    assert!(forwarded(&r.at(600, Event::Time)).is_empty());
    r.world.pending = false;
    assert_eq!(forwarded(&r.at(605, Event::Time)), [Signal::SIGTTIN]);
    // A master that never sleeps again is given a second at most, and that is said.
    assert!(forwarded(&r.at(1_600, Event::Time)).is_empty());
    let out = r.at(1_605, Event::Time);
    assert_eq!(forwarded(&out), [Signal::SIGTTIN]);
    assert!(
        logged(&out).contains("has not taken SIGTTIN within a second"),
        "{out:?}"
    );
    // Where the count cannot be read, a signal no longer pending was taken.
    let mut r = Run::new(settings(None));
    r.signal(0, Signal::SIGTTIN);
    r.signal(1, Signal::SIGTTIN);
    r.at(10, Event::Ready);
    r.at(10, Event::Time);
    r.world.sleeps = Some(3);
    assert_eq!(forwarded(&r.at(20, Event::Time)), [Signal::SIGTTIN]);
}

/// A signal that comes while the last held one is not yet seen taken waits behind it, then
/// goes as soon as it was; after that, signals go straight through again.
#[test]
fn a_signal_right_after_the_last_held_one_waits_until_that_one_was_taken() {
    let mut r = Run::new(settings(None));
    r.world.sleeps = Some(7);
    r.signal(0, Signal::SIGTTIN);
    r.at(10, Event::Ready);
    assert_eq!(forwarded(&r.at(10, Event::Time)), [Signal::SIGTTIN]);
    assert_eq!(r.m.direct(), None, "the last held one is not taken yet");
    assert!(forwarded(&r.signal(12, Signal::SIGTTIN)).is_empty());
    assert!(forwarded(&r.at(20, Event::Time)).is_empty());
    r.world.sleeps = Some(8);
    let out = r.at(25, Event::Time);
    assert_eq!(forwarded(&out), [Signal::SIGTTIN]);
    assert!(logged(&out).is_empty(), "{out:?}");
    r.world.sleeps = Some(9);
    assert!(r.at(35, Event::Time).is_empty());
    assert_eq!(r.m.direct(), Some(pid(MASTER)), "straight through again");
    assert_eq!(r.m.next_deadline(), None);
    // A last one never seen taken is given a second, then said.
    let mut r = Run::new(settings(None));
    r.world.sleeps = Some(7);
    r.signal(0, Signal::SIGTTIN);
    r.at(10, Event::Ready);
    r.at(10, Event::Time);
    assert_eq!(r.m.direct(), None);
    let out = r.at(1_010, Event::Time);
    assert!(
        logged(&out).contains("has not taken SIGTTIN within a second; signals go straight"),
        "{out:?}"
    );
    assert_eq!(r.m.direct(), Some(pid(MASTER)));
}

/// A crash and restart, or an adopted successor, make a new master: what the last one was
/// sent is not waited for in the new one.
#[test]
fn a_new_master_does_not_wait_for_what_the_old_one_was_sent() {
    // Restarted on the held socket after a crash.
    let mut r = Run::new(settings(Some((3, Duration::from_secs(60)))));
    r.world.sleeps = Some(7);
    r.signal(0, Signal::SIGTTIN);
    r.at(10, Event::Ready);
    let asked = r.at(10, Event::Time);
    assert_eq!(forwarded(&asked), [Signal::SIGTTIN]);
    r.world.sleeps = Some(8);
    r.answer(20, &asked, Kind::Ok);
    r.at(
        30,
        Event::MasterExited(WaitStatus::Signaled(pid(MASTER), Signal::SIGKILL, false)),
    );
    assert!(r.at(31, Event::Time).contains(&Action::Respawn));
    r.at(31, Event::Respawned(Ok(pid(NEW))));
    r.world.sleeps = Some(1);
    r.signal(32, Signal::SIGTTIN);
    r.at(40, Event::Ready);
    let out = r.at(40, Event::Time);
    assert_eq!(forwarded(&out), [Signal::SIGTTIN], "{out:?}");
    assert!(logged(&out).is_empty(), "{out:?}");
    // gunicorn's own USR2, held: its successor is adopted before the old master was seen
    // to block; the next signal goes to the new master at once.
    let mut r = Run::new(settings(None));
    r.world.sleeps = Some(7);
    r.signal(0, Signal::SIGUSR2);
    r.at(10, Event::Ready);
    assert_eq!(forwarded(&r.at(10, Event::Time)), [Signal::SIGUSR2]);
    r.at(20, Event::UpgradeFound(pid(NEW)));
    r.at(30, Event::UpgradeAnswered(pid(NEW)));
    r.world.successor = Some(pid(NEW));
    r.at(40, Event::MasterExited(WaitStatus::Exited(pid(MASTER), 0)));
    assert_eq!(r.m.master(), pid(NEW));
    r.signal(41, Signal::SIGTTIN);
    let out = r.at(41, Event::Time);
    assert!(
        out.contains(&Action::Forward(pid(NEW), Signal::SIGTTIN)),
        "{out:?}"
    );
    assert!(!logged(&out).contains("has not taken"), "{out:?}");
}

#[test]
fn a_usr2_held_for_an_upgrade_on_a_held_socket_does_not_wait_for_the_master_to_sleep() {
    let mut r = Run::new(settings(Some((3, Duration::from_secs(60)))));
    r.world.sleeps = Some(7);
    r.signal(0, Signal::SIGUSR2);
    r.signal(1, Signal::SIGTTIN);
    r.at(10, Event::Ready);
    let out = r.at(10, Event::Time);
    assert!(out.contains(&Action::SpawnUpgrade), "{out:?}");
    assert_eq!(forwarded(&r.at(20, Event::Time)), [Signal::SIGTTIN]);
}

#[test]
fn a_terminals_winch_is_not_an_order_but_a_sent_one_is_passed_on() {
    let mut r = Run::new(settings(None));
    r.serving(10);
    let out = r.at(
        20,
        Event::Signal {
            signal: Signal::SIGWINCH,
            from_kernel: true,
        },
    );
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(
        forwarded(&r.signal(21, Signal::SIGWINCH)),
        [Signal::SIGWINCH]
    );
}

#[test]
fn term_goes_to_the_master_then_cont_to_all_and_sigkill_after_the_stop_timeout() {
    let mut r = Run::new(settings(None));
    r.serving(10);
    let out = r.signal(100, Signal::SIGTERM);
    assert_eq!(
        out[..3],
        [
            Action::Forward(pid(MASTER), Signal::SIGTERM),
            Action::SignalGroup(pid(MASTER), Signal::SIGCONT),
            Action::SignalGunicorns(Signal::SIGCONT),
        ]
    );
    assert!(out.contains(&Action::Stopping));
    // Signals while stopping would kill a Python that is exiting: not passed on.
    assert!(r.signal(200, Signal::SIGHUP).is_empty());
    r.world.gunicorns = vec![pid(MASTER), pid(101)];
    assert!(r.at(35_099, Event::Time).is_empty());
    let out = r.at(35_100, Event::Time);
    assert!(
        out.contains(&Action::SignalGunicorns(Signal::SIGKILL)),
        "{out:?}"
    );
    assert!(logged(&out).contains("did not stop within 35s; killing 2 remaining process(es)"));
    // Once killed, nothing is left to wait for but the exits, which SIGCHLD reports.
    assert_eq!(r.m.next_deadline(), None);
    // The master died of the TERM it was asked to stop with: the launcher ends so too...
    r.world.gunicorns.clear();
    r.at(
        35_200,
        Event::MasterExited(WaitStatus::Signaled(pid(MASTER), Signal::SIGKILL, false)),
    );
    let out = r.at(35_201, Event::AllReaped);
    let [Action::Exit(ending)] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert!(!ending.died_of_our_stop, "killed, not stopped: {ending:?}");
}

#[test]
fn the_launcher_ends_as_gunicorn_did_except_as_pid_1() {
    let mut r = Run::new(settings(None));
    r.signal(5, Signal::SIGTERM);
    r.at(
        6,
        Event::MasterExited(WaitStatus::Signaled(pid(MASTER), Signal::SIGTERM, false)),
    );
    let out = r.at(7, Event::AllReaped);
    let [Action::Exit(ending)] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert!(ending.died_of_our_stop);
    assert_eq!(exit_of(*ending, false), Exit::Signal(Signal::SIGTERM));
    assert_eq!(exit_of(*ending, true), Exit::Code(143));
    let exited = Ending {
        status: WaitStatus::Exited(pid(MASTER), 3),
        code: None,
        died_of_our_stop: false,
    };
    assert_eq!(exit_of(exited, false), Exit::Code(3));
    let unverified = Ending {
        code: Some(EXIT_UNVERIFIED),
        ..exited
    };
    assert_eq!(exit_of(unverified, true), Exit::Code(69));
}

#[test]
fn a_reload_is_ready_again_only_once_the_old_workers_are_gone_and_a_new_one_answers() {
    let mut r = Run::new(settings(None));
    r.serving(10);
    r.world.workers = vec![Proc::named_for_test(101, 7)];
    let out = r.signal(100, Signal::SIGHUP);
    assert_eq!(forwarded(&out), [Signal::SIGHUP]);
    assert!(out.contains(&Action::Reloading));
    let asked = r.at(120, Event::Time);
    let Some(Action::Look { id, previous }) =
        asked.iter().find(|a| matches!(a, Action::Look { .. }))
    else {
        panic!("{asked:?}")
    };
    assert_eq!(
        previous,
        &vec![Proc::named_for_test(101, 7)],
        "the old generation, named before HUP"
    );
    let out = r.at(
        121,
        Event::Finding {
            id: *id,
            finding: Finding::PreviousStillRunning(1),
        },
    );
    assert!(ready(&out).is_none());
    assert!(out.iter().any(
        |a| matches!(a, Action::Status(s) if s.contains("1 worker(s) of the previous generation"))
    ));
    let asked = r.at(200, Event::Time);
    let out = r.answer(201, &asked, Kind::Ok);
    assert!(
        logged(&out).starts_with("reloaded and verified: "),
        "{out:?}"
    );
    assert!(ready(&out).is_some());
}

#[test]
fn old_workers_still_running_at_the_startup_timeout_are_said_and_what_serves_is_verified() {
    let mut r = Run::new(settings(None));
    r.serving(10);
    r.world.workers = vec![Proc::named_for_test(101, 7)];
    r.signal(100, Signal::SIGHUP);
    let asked = r.at(60_100, Event::Time);
    let id = look_id(&asked).unwrap();
    let out = r.at(
        60_101,
        Event::Finding {
            id,
            finding: Finding::PreviousStillRunning(1),
        },
    );
    assert!(logged(&out).contains("still running after 60s"), "{out:?}");
    let asked = r.at(60_102, Event::Time);
    let Some(Action::Look { previous, .. }) =
        asked.iter().find(|a| matches!(a, Action::Look { .. }))
    else {
        panic!("{asked:?}")
    };
    assert!(previous.is_empty());
    let out = r.answer(60_103, &asked, Kind::Ok);
    assert!(
        ready(&out).unwrap().contains("still running after 60s"),
        "{out:?}"
    );
}

#[test]
fn a_crash_while_serving_restarts_on_the_held_socket_within_the_limit_with_backoff() {
    let mut r = Run::new(settings(Some((2, Duration::from_secs(10)))));
    r.serving(10);
    r.world.gunicorns = vec![pid(101)];
    let out = r.at(
        1_000,
        Event::MasterExited(WaitStatus::Signaled(pid(MASTER), Signal::SIGKILL, false)),
    );
    assert!(
        out.contains(&Action::SignalGunicorns(Signal::SIGTERM)),
        "its orphans are stopped: {out:?}"
    );
    assert!(
        logged(&out).contains("restart 1 of at most 2 within 10s; 1 in all"),
        "{out:?}"
    );
    // Nothing starts while an orphan runs; one that outlives ORPHANS (5 s) is killed, once.
    assert!(!r.at(1_001, Event::Time).contains(&Action::Respawn));
    assert!(r.at(5_999, Event::Time).is_empty());
    let out = r.at(6_000, Event::Time);
    assert!(
        out.contains(&Action::SignalGunicorns(Signal::SIGKILL)),
        "{out:?}"
    );
    assert!(
        logged(&out)
            .contains("1 process(es) of the dead master did not stop within 5s; killing them"),
        "{out:?}"
    );
    assert!(
        !r.at(6_001, Event::Time)
            .contains(&Action::SignalGunicorns(Signal::SIGKILL))
    );
    // Then, the first restart is immediate.
    r.world.gunicorns.clear();
    assert!(r.at(6_002, Event::Time).contains(&Action::Respawn));
    let out = r.at(6_002, Event::Respawned(Ok(pid(NEW))));
    assert!(logged(&out).contains("restarted gunicorn, pid 200"));
    assert_eq!(r.m.master(), pid(NEW));
    assert!(matches!(r.m.state(), State::Starting { .. }));
    // Signals are not passed on while it restarts: said so.
    let crash = |r: &mut Run, at: u64| {
        r.at(at, Event::Ready);
        let asked = r.at(at, Event::Time);
        r.answer(at, &asked, Kind::Ok);
        r.at(
            at + 1,
            Event::MasterExited(WaitStatus::Exited(r.m.master(), 1)),
        )
    };
    crash(&mut r, 2_000);
    assert!(logged(&r.signal(2_002, Signal::SIGHUP)).contains("not passed on"));
    // The second restart within the window waits 100 ms.
    assert!(!r.at(2_050, Event::Time).contains(&Action::Respawn));
    assert!(r.at(2_101, Event::Time).contains(&Action::Respawn));
    r.at(2_101, Event::Respawned(Ok(pid(NEW + 1))));
    // A third crash within 10 s is one too many: the launcher ends with its status.
    let out = crash(&mut r, 3_000);
    assert!(
        logged(&out).contains("3 crashes within 10s, more than supervise.restart_burst = 2 allows"),
        "{out:?}"
    );
    assert!(r.m.finished());
    let out = r.at(3_002, Event::AllReaped);
    assert!(
        matches!(
            out.as_slice(),
            [Action::Exit(Ending {
                status: WaitStatus::Exited(_, 1),
                ..
            })]
        ),
        "{out:?}"
    );
}

#[test]
fn a_master_that_dies_during_its_start_is_never_restarted_and_is_said_as_such() {
    let mut r = Run::new(settings(Some((5, Duration::from_secs(10)))));
    r.world.gunicorns = vec![pid(101)];
    let out = r.at(
        50,
        Event::MasterExited(WaitStatus::Signaled(pid(MASTER), Signal::SIGKILL, false)),
    );
    assert!(!out.contains(&Action::Respawn));
    let said = logged(&out);
    assert!(said.contains("gunicorn exited during its start (not yet verified): killed by SIGKILL; 1 of its processes still ran"), "{said}");
    assert!(!said.contains("another program"), "{said}");
    // Another program is named only when the world shows one.
    let mut r = Run::new(settings(None));
    r.world.holder = Some("port 8001 is taken by another program".into());
    let said = logged(&r.at(50, Event::MasterExited(WaitStatus::Exited(pid(MASTER), 1))));
    assert!(
        said.contains("taken by another program (a port in use ends gunicorn this way)"),
        "{said}"
    );
    // gunicorn that daemonized itself: exit 0 with processes left behind.
    let mut r = Run::new(settings(None));
    r.world.gunicorns = vec![pid(300)];
    let out = r.at(50, Event::MasterExited(WaitStatus::Exited(pid(MASTER), 0)));
    assert!(logged(&out).contains("daemonized itself"));
    r.world.gunicorns.clear();
    let out = r.at(60, Event::AllReaped);
    assert!(
        matches!(
            out.as_slice(),
            [Action::Exit(Ending { code: Some(69), .. })]
        ),
        "{out:?}"
    );
}

#[test]
fn a_stop_during_a_restarts_backoff_ends_cleanly_without_restarting() {
    let mut r = Run::new(settings(Some((5, Duration::from_secs(10)))));
    r.serving(10);
    r.at(
        1_000,
        Event::MasterExited(WaitStatus::Signaled(pid(MASTER), Signal::SIGKILL, false)),
    );
    let out = r.signal(1_001, Signal::SIGTERM);
    assert!(logged(&out).contains("while gunicorn restarts after a crash: not restarting it"));
    assert!(!r.at(2_000, Event::Time).contains(&Action::Respawn));
    let out = r.at(2_001, Event::AllReaped);
    assert!(
        matches!(out.as_slice(), [Action::Exit(Ending { code: Some(0), .. })]),
        "{out:?}"
    );
}

#[test]
fn a_usr2_on_a_held_socket_adopts_the_new_master_only_once_a_new_worker_answered() {
    let mut r = Run::new(settings(Some((5, Duration::from_secs(10)))));
    r.serving(10);
    assert_eq!(r.signal(100, Signal::SIGUSR2), [Action::SpawnUpgrade]);
    let out = r.at(101, Event::UpgradeSpawned(Ok(pid(NEW))));
    assert!(out.contains(&Action::StartTrial {
        old: pid(MASTER),
        new: Some(pid(NEW)),
        ours: true
    }));
    assert!(
        logged(&r.signal(102, Signal::SIGUSR2))
            .contains("USR2 ignored: an upgrade is already under way")
    );
    // The new master's READY=1 starts its trial; nothing changes for the old one.
    assert_eq!(r.at(150, Event::Ready), [Action::TrialReady]);
    assert_eq!(r.m.master(), pid(MASTER));
    let out = r.at(300, Event::UpgradeAnswered(pid(NEW)));
    assert!(
        out.contains(&Action::Signal(pid(MASTER), Signal::SIGTERM)),
        "{out:?}"
    );
    assert!(out.contains(&Action::EndTrial) && out.contains(&Action::Reloading));
    assert_eq!(r.m.master(), pid(NEW));
    assert!(matches!(r.m.state(), State::Reloading { .. }));
}

#[test]
fn a_failed_upgrade_stops_the_new_gunicorn_and_leaves_the_old_one_serving() {
    let mut r = Run::new(settings(Some((5, Duration::from_secs(10)))));
    r.serving(10);
    r.signal(100, Signal::SIGUSR2);
    r.at(101, Event::UpgradeSpawned(Ok(pid(NEW))));
    let out = r.at(
        900,
        Event::UpgradeFailed {
            new: Some(pid(NEW)),
            why: "exited (exit status 3)".into(),
        },
    );
    assert!(out.contains(&Action::Signal(pid(NEW), Signal::SIGTERM)));
    let line = "USR2 upgrade failed: the new gunicorn (pid 200) exited (exit status 3); stopped it, the old one (pid 100) goes on serving";
    assert!(out.contains(&Action::Status(line.into())), "{out:?}");
    assert_eq!(r.m.master(), pid(MASTER));
    assert!(matches!(r.m.state(), State::Serving { verified: true, .. }));
    // A stop during an upgrade reaches the new gunicorn too.
    r.signal(1_000, Signal::SIGUSR2);
    r.at(1_001, Event::UpgradeSpawned(Ok(pid(NEW + 1))));
    let out = r.signal(1_002, Signal::SIGTERM);
    assert!(
        out.contains(&Action::Signal(pid(NEW + 1), Signal::SIGTERM)),
        "{out:?}"
    );
}

#[test]
fn a_forwarded_usr2_is_tried_and_its_successor_adopted_when_the_old_master_exits() {
    let mut r = Run::new(settings(None));
    r.serving(10);
    let out = r.signal(100, Signal::SIGUSR2);
    assert_eq!(forwarded(&out), [Signal::SIGUSR2]);
    assert!(out.contains(&Action::StartTrial {
        old: pid(MASTER),
        new: None,
        ours: false
    }));
    r.at(200, Event::UpgradeFound(pid(NEW)));
    let out = r.at(300, Event::UpgradeAnswered(pid(NEW)));
    assert!(out.contains(&Action::Signal(pid(MASTER), Signal::SIGTERM)));
    assert_eq!(
        r.m.master(),
        pid(MASTER),
        "gunicorn's own is adopted when the old one exits"
    );
    r.world.successor = Some(pid(NEW));
    let out = r.at(400, Event::MasterExited(WaitStatus::Exited(pid(MASTER), 0)));
    assert!(
        logged(&out).contains("adopted the new master 200 (gunicorn)"),
        "{out:?}"
    );
    assert_eq!(r.m.master(), pid(NEW));
    assert!(matches!(r.m.state(), State::Reloading { .. }));
}

#[test]
fn a_failed_verification_stops_with_69_or_warns_and_runs_as_asked() {
    let mut r = Run::new(settings(None));
    r.at(10, Event::Ready);
    let asked = r.at(10, Event::Time);
    let out = r.answer(11, &asked, Kind::SingleAddress);
    assert!(
        logged(&out).contains("verification failed: SingleAddress; stopping gunicorn (exit 69)")
    );
    assert_eq!(forwarded(&out), [Signal::SIGTERM]);
    let mut s = settings(None);
    s.on_failure = OnFailure::Warn;
    let mut r = Run::new(s);
    r.at(10, Event::Ready);
    let asked = r.at(10, Event::Time);
    let out = r.answer(11, &asked, Kind::Foreign);
    assert!(
        ready(&out)
            .unwrap()
            .starts_with("WARNING: not verified, running anyway"),
        "{out:?}"
    );
    // A rejected Host warns (the default) and is READY all the same; with "fail" it fails.
    let mut r = Run::new(settings(None));
    r.at(10, Event::Ready);
    let asked = r.at(10, Event::Time);
    assert!(
        ready(&r.answer(11, &asked, Kind::HostRejected))
            .unwrap()
            .starts_with("WARNING: ")
    );
    let mut s = settings(None);
    s.on_host_rejected = OnHostRejected::Fail;
    let mut r = Run::new(s);
    r.at(10, Event::Ready);
    let asked = r.at(10, Event::Time);
    assert!(ready(&r.answer(11, &asked, Kind::HostRejected)).is_none());
}

#[test]
fn a_look_that_does_not_answer_yet_is_retried_with_doubling_pauses_and_watches_workers() {
    let mut r = Run::new(settings(None));
    r.at(10, Event::Ready);
    let asked = r.at(10, Event::Time);
    let out = r.answer(11, &asked, Kind::Nothing);
    assert!(out.contains(&Action::WatchWorkers));
    assert!(
        look_id(&r.at(50, Event::Time)).is_none(),
        "not before 40 ms"
    );
    assert!(look_id(&r.at(51, Event::Time)).is_some(), "after 40 ms");
    let asked = r.at(52, Event::Time);
    assert!(look_id(&asked).is_none(), "one look at a time");
    // Given up at the startup timeout, with what the workers died of.
    r.world.report = Some("gunicorn's workers kept dying: 3 exited".into());
    let asked = vec![Action::Look {
        id: r.m.asking.unwrap(),
        previous: Vec::new(),
    }];
    let out = r.answer(60_012, &asked, Kind::Nothing);
    assert!(
        logged(&out).contains("; gunicorn's workers kept dying: 3 exited"),
        "{out:?}"
    );
}

#[test]
fn a_verified_service_sleeps_but_for_the_watchdog_and_the_recheck_it_was_asked_for() {
    let mut r = Run::new(settings(None));
    r.serving(10);
    assert_eq!(r.m.next_deadline(), None, "idle costs nothing");
    let mut s = settings(None);
    s.watchdog = Some(Duration::from_secs(5));
    s.recheck_interval = Duration::from_secs(30);
    let mut r = Run::new(s);
    r.serving(10);
    assert_eq!(
        r.m.next_deadline(),
        Some(r.t0 + Duration::from_millis(5_010))
    );
    let out = r.at(5_010, Event::Time);
    assert!(out.contains(&Action::Watchdog));
    let asked = look_id(&out).expect("a recheck");
    let out = r.at(
        5_011,
        Event::Finding {
            id: asked,
            finding: Finding::Verdict(verdict(Kind::SingleAddress)),
        },
    );
    assert!(
        logged(&out).contains("verification failed"),
        "a recheck that fails: {out:?}"
    );
    // Each recheck is a look of its own: an answer to the last one cannot pass for the next.
    let mut s = settings(None);
    s.recheck_interval = Duration::from_secs(30);
    let mut r = Run::new(s);
    r.serving(10);
    let mut asked = Vec::new();
    for ms in (1_000..=70_000).step_by(1_000) {
        let out = r.at(ms, Event::Time);
        if let Some(id) = look_id(&out) {
            asked.push(id);
            r.answer(ms, &out, Kind::Ok);
        }
    }
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert_ne!(asked[0], asked[1]);
}

#[test]
fn a_hup_goes_before_the_reloads_work_and_the_children_read_before_it_are_the_old_generation() {
    let mut r = Run::new(settings(None));
    r.serving(10);
    r.world.workers = vec![Proc::named_for_test(101, 7)];
    let now = r.t0 + Duration::from_millis(100);
    let hup = Event::Signal {
        signal: Signal::SIGHUP,
        from_kernel: false,
    };
    // Nothing but the read and the signal: the rest comes back as its own event.
    assert_eq!(
        r.m.step(hup, now, &r.world),
        [
            Action::Forward(pid(MASTER), Signal::SIGHUP),
            Action::Replacing(vec![pid(101)])
        ]
    );
    // By then gunicorn may have forked a new worker: it is not of the old generation.
    r.world.workers.push(Proc::named_for_test(102, 9));
    let out = r.m.step(Event::Replacing(vec![pid(101)]), now, &r.world);
    assert!(out.contains(&Action::Reloading), "{out:?}");
    assert!(logged(&out).contains("reloading gunicorn (HUP)"), "{out:?}");
    let asked = r.at(200, Event::Time);
    let Some(Action::Look { previous, .. }) =
        asked.iter().find(|a| matches!(a, Action::Look { .. }))
    else {
        panic!("{asked:?}")
    };
    assert_eq!(previous, &vec![Proc::named_for_test(101, 7)]);
}

/// What [`Machine::direct`] promises the loop, against what a step decides, in each state.
#[test]
fn a_signal_goes_direct_exactly_when_the_step_would_only_forward_it() {
    let signals = [
        (Signal::SIGHUP, false),
        (Signal::SIGUSR1, false),
        (Signal::SIGTTIN, false),
        (Signal::SIGTTOU, false),
        (Signal::SIGWINCH, false),
        (Signal::SIGWINCH, true),
        (Signal::SIGUSR2, false),
        (Signal::SIGTERM, false),
        (Signal::SIGINT, false),
        (Signal::SIGQUIT, false),
    ];
    // Each way to a state: starting, verifying, serving, reloading, a held signal still
    // queued, stopping.
    type Way = (&'static str, fn(&mut Run));
    let ways: [Way; 6] = [
        ("starting", |_| {}),
        ("verifying", |r| drop(r.at(5, Event::Ready))),
        ("serving", |r| r.serving(5)),
        ("reloading", |r| {
            r.serving(5);
            r.signal(6, Signal::SIGHUP);
        }),
        ("queued", |r| {
            r.signal(5, Signal::SIGUSR1);
            r.signal(5, Signal::SIGUSR1);
            r.at(6, Event::Ready);
            r.at(6, Event::Time);
        }),
        ("stopping", |r| {
            r.serving(5);
            r.signal(6, Signal::SIGTERM);
        }),
    ];
    let mut direct_somewhere = 0;
    for (name, way) in ways {
        for (signal, from_kernel) in signals {
            let mut r = Run::new(settings(None));
            way(&mut r);
            r.world.workers = vec![Proc::named_for_test(101, 7)];
            let direct = r.m.direct().filter(|_| goes_direct(signal, from_kernel));
            let now = r.t0 + Duration::from_millis(50);
            let out = r.m.step(
                Event::Signal {
                    signal,
                    from_kernel,
                },
                now,
                &r.world,
            );
            let only_forwarded = match signal {
                Signal::SIGHUP => vec![
                    Action::Forward(pid(MASTER), signal),
                    Action::Replacing(vec![pid(101)]),
                ],
                _ => vec![Action::Forward(pid(MASTER), signal)],
            };
            match direct {
                Some(master) => {
                    direct_somewhere += 1;
                    assert_eq!(master, pid(MASTER));
                    assert_eq!(out, only_forwarded, "{name}: {signal} {from_kernel}");
                }
                None => assert!(
                    out != only_forwarded || !goes_direct(signal, from_kernel),
                    "{name}: {signal} only forwarded but not direct"
                ),
            }
        }
    }
    // HUP, USR1, TTIN, TTOU and a user's WINCH, while verifying, serving and reloading.
    assert_eq!(direct_somewhere, 15);
}

#[test]
fn no_master_of_pid_one_or_below_gets_a_signal_straight_through() {
    for master in [1, 0, -1] {
        let t0 = Instant::now();
        let (mut m, _) = Machine::new(settings(None), pid(master), t0);
        m.step(Event::Ready, t0, &Fake::default());
        assert_eq!(m.direct(), None, "master {master}");
    }
    let mut r = Run::new(settings(None));
    r.at(5, Event::Ready);
    assert_eq!(r.m.direct(), Some(pid(MASTER)));
}
