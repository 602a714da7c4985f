//! The one verdict: "listening on all interfaces and answering HTTP".
//!
//! Computed here and only here, and used by `run` (before READY=1, after a
//! reload, after a USR2 upgrade), by `check`, and by the installer. It trusts
//! the kernel, not the command line: a `gunicorn.conf.py` hook can rebind
//! after our `--bind` was read, so we look at the listening sockets
//! themselves (sock_diag), at who owns them (/proc/PID/fd), and at whether
//! every address of the host answers HTTP in the families the listener
//! covers.

use crate::probe::{self, Families, ProbeResult};
use crate::sockets::{self, Listener, Owner};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::time::Duration;

/// What to verify.
#[derive(Clone, Debug)]
pub struct Target {
    pub port: u16,
    pub path: String,
    pub probe_timeout: Duration,
}

/// Whose listeners count.
pub enum Scope {
    /// `run`: only sockets owned by the process tree under this pid (the
    /// launcher: gunicorn's processes are its descendants) are ours; any
    /// other listener on the port is a foreign holder. The tree is read
    /// only once the kernel shows a listener, so retries while gunicorn
    /// boots cost one netlink query, not a walk of every process.
    TreeOf(Pid),
    /// `check`: every listener on the port, owners searched on the host.
    Host,
}

/// The verdict, ordered as `check`'s exit codes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Listening on all interfaces and every probe answered HTTP.
    Ok,
    /// Only single addresses (the ERR_CONNECTION_REFUSED case), or only a
    /// v6-only `::` that IPv4 clients cannot reach.
    SingleAddress,
    /// Nothing listens on the port.
    Nothing,
    /// Another program holds the port and gunicorn's tree does not.
    Foreign,
    /// Listening correctly, but an address did not answer HTTP.
    ProbeFailed,
}

impl Kind {
    /// `check`'s exit code for this verdict.
    pub fn exit_code(self) -> i32 {
        match self {
            Kind::Ok => 0,
            Kind::SingleAddress => 1,
            Kind::Nothing => 3,
            Kind::Foreign => 1,
            Kind::ProbeFailed => 4,
        }
    }
}

/// A listener with its owners, for reports.
#[derive(Clone, Debug)]
pub struct Seen {
    pub listener: Listener,
    pub owners: Vec<Owner>,
}

#[derive(Clone, Debug)]
pub struct Verdict {
    pub kind: Kind,
    pub listeners: Vec<Seen>,
    pub probes: Vec<ProbeResult>,
    /// One sentence for the log and for systemd's STATUS.
    pub summary: String,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.kind == Kind::Ok
    }
}

fn family_name(l: &Listener) -> &'static str {
    match (l.addr.is_ipv4(), l.covers_ipv4()) {
        (true, _) => "IPv4",
        (false, true) => "IPv6+IPv4",
        (false, false) => "IPv6",
    }
}

pub fn endpoint(l: &Listener) -> String {
    std::net::SocketAddr::new(l.addr, l.port).to_string()
}

fn holders(owners: &[Owner]) -> String {
    if owners.is_empty() {
        return "an unknown process (not visible from here)".into();
    }
    owners
        .iter()
        .take(3)
        .map(|o| format!("pid {} ({}) of user {}", o.pid, o.command, o.user()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Looks at the port and decides, probing as it must: the one verdict.
pub fn verdict(target: &Target, scope: Scope) -> Verdict {
    match look(target, scope) {
        Look::Decided(v) => v,
        Look::Probing(probing) => {
            let results = probe::probe_all(&probing.addrs, &target.path, target.probe_timeout);
            judge(probing, results)
        }
    }
}

/// What the kernel and the process tree say, before any probe.
pub enum Look {
    /// Decided without HTTP: nothing listens, a single address, a foreign holder.
    Decided(Verdict),
    /// Listening right: the addresses to probe, then [`judge`].
    Probing(Probing),
}

/// A verdict waiting for its probes.
pub struct Probing {
    pub addrs: Vec<std::net::SocketAddr>,
    path: String,
    ours: Vec<Seen>,
}

/// The verdict from the kernel's socket table and the process tree; when
/// the listener is right, the addresses to probe (a caller with an event
/// loop probes them without blocking, see [`probe::Probes`]).
pub fn look(target: &Target, scope: Scope) -> Look {
    let all = sockets::listeners_on_port(target.port).unwrap_or_default();
    let inodes: Vec<u64> = all.iter().map(|l| l.inode).collect();
    let owners: HashMap<u64, Vec<Owner>> = match scope {
        _ if all.is_empty() => HashMap::new(),
        Scope::TreeOf(root) => sockets::owners_among(
            &inodes,
            &crate::tree::descendants(root)
                .iter()
                .map(|p| p.as_raw())
                .collect::<Vec<_>>(),
        ),
        Scope::Host => sockets::owners_on_host(&all),
    };
    let in_tree = matches!(scope, Scope::TreeOf(_));
    let (ours, foreign): (Vec<Seen>, Vec<Seen>) = all
        .into_iter()
        .map(|l| Seen {
            owners: owners.get(&l.inode).cloned().unwrap_or_default(),
            listener: l,
        })
        .partition(|s| !in_tree || !s.owners.is_empty());
    let port = target.port;
    let done = |kind, listeners, probes, summary| {
        Look::Decided(Verdict {
            kind,
            listeners,
            probes,
            summary,
        })
    };

    if ours.is_empty() {
        if foreign.is_empty() {
            return done(
                Kind::Nothing,
                ours,
                Vec::new(),
                format!("nothing listens on port {port}"),
            );
        }
        let host_owners = sockets::owners_on_host(
            &foreign
                .iter()
                .map(|s| s.listener.clone())
                .collect::<Vec<_>>(),
        );
        let who: Vec<String> = foreign
            .iter()
            .map(|s| {
                format!(
                    "{} is held by {}",
                    endpoint(&s.listener),
                    holders(
                        host_owners
                            .get(&s.listener.inode)
                            .map(Vec::as_slice)
                            .unwrap_or_default()
                    )
                )
            })
            .collect();
        return done(
            Kind::Foreign,
            foreign,
            Vec::new(),
            format!(
                "port {port} is taken by another program: {}; stop it or choose another port",
                who.join("; ")
            ),
        );
    }

    let singles: Vec<&Seen> = ours.iter().filter(|s| !s.listener.is_wildcard()).collect();
    if !singles.is_empty() {
        let what: Vec<String> = singles
            .iter()
            .map(|s| format!("{} ({})", endpoint(&s.listener), holders(&s.owners)))
            .collect();
        let summary = format!(
            "bound to a single address, not all interfaces: {}; other machines get ERR_CONNECTION_REFUSED \
             (a bind in gunicorn.conf.py hooks, e.g. on_starting, overrides the command line)",
            what.join(", ")
        );
        return done(Kind::SingleAddress, ours, Vec::new(), summary);
    }

    let families = Families {
        ipv4: ours.iter().any(|s| s.listener.covers_ipv4()),
        ipv6: ours.iter().any(|s| s.listener.covers_ipv6()),
    };
    if !families.ipv4 {
        return done(
            Kind::SingleAddress,
            ours,
            Vec::new(),
            format!(
                "listening on [::]:{port} with IPV6_V6ONLY: IPv4 clients are refused; bind 0.0.0.0 or a dual-stack ::"
            ),
        );
    }

    Look::Probing(Probing {
        addrs: probe::targets(port, families).unwrap_or_default(),
        path: target.path.clone(),
        ours,
    })
}

/// The verdict once the probes of [`look`] have their results.
pub fn judge(probing: Probing, probes: Vec<ProbeResult>) -> Verdict {
    let Probing { path, ours, .. } = probing;
    let done = |kind, listeners, probes, summary| Verdict {
        kind,
        listeners,
        probes,
        summary,
    };
    let failed: Vec<String> = probes
        .iter()
        .filter(|p| !p.reachable())
        .map(|p| format!("{} {}", p.addr, p.outcome))
        .collect();
    let bound: Vec<String> = ours
        .iter()
        .map(|s| format!("{} ({})", endpoint(&s.listener), family_name(&s.listener)))
        .collect();
    if !failed.is_empty() || probes.is_empty() {
        let summary = format!(
            "listening on {} but HTTP GET {} failed: {}",
            bound.join(", "),
            path,
            if failed.is_empty() {
                "no address to probe".to_string()
            } else {
                failed.join(", ")
            }
        );
        return done(Kind::ProbeFailed, ours, probes, summary);
    }
    let answered: Vec<String> = probes.iter().map(|p| p.addr.ip().to_string()).collect();
    let status = match &probes[0].outcome {
        probe::Outcome::Status(code) => format!("HTTP {code}"),
        other => other.to_string(),
    };
    let summary = format!(
        "listening on {}, all interfaces; {status} from {}",
        bound.join(", "),
        answered.join(", ")
    );
    done(Kind::Ok, ours, probes, summary)
}
