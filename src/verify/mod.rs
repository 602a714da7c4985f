//! The one verdict: "listening on all interfaces and answering what a remote browser
//! sends", computed here only and used by `run` (before READY=1, after a reload or an
//! upgrade), `check` and the installer. It trusts the kernel, not the command line (a
//! config hook can rebind after our `--bind` was read): the listening sockets, who owns
//! them, and an HTTP answer from every address of the host in the families the listener
//! covers, with the `Host` a browser sends, and the host firewall judged for a connection
//! from another machine (a probe from the host itself never crosses it). The walls in the
//! order a remote browser meets them: the bind, the firewall, the app's `Host` check (a 400
//! to the Host a browser sends, Django's `ALLOWED_HOSTS`). [`render`](crate::verify::render) shows it.

pub mod render;

use crate::firewall::{self, Judgement};
use crate::probe::{self, Families, ProbeResult, Probes, Request};
use crate::process::owners::{self, Owner};
use crate::sockets::{self, Listener};
use nix::poll::{PollFd, PollFlags};
use nix::unistd::Pid;
use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// What to verify.
#[derive(Clone, Debug)]
pub struct Target {
    pub port: u16,
    pub path: String,
    pub probe_timeout: Duration,
    /// Names the clients use (`solvit.example.com`); when set, only the
    /// answers to these count for the Host verdict.
    pub host_names: Vec<String>,
    /// One client to judge the firewall for (`check --from`); otherwise any.
    pub from: Option<IpAddr>,
}

impl Target {
    /// What a launcher with this configuration verifies.
    pub fn of(c: &crate::config::Config) -> Target {
        Target {
            port: c.port,
            path: c.probe_path.clone(),
            probe_timeout: c.probe_timeout,
            host_names: c.host_names.clone(),
            from: None,
        }
    }
}

/// Whose listeners count.
#[derive(Clone, Copy, Debug)]
pub enum Scope {
    /// `run`: only sockets owned by the process tree under this pid (the
    /// launcher: gunicorn's processes are its descendants) are ours; any
    /// other listener on the port is a foreign holder. The tree is read
    /// only once the kernel shows a listener, so retries while gunicorn
    /// boots cost one netlink query, not a walk of every process; and then
    /// the children of the pid's main thread first (the launcher has no
    /// other thread), the rest of the tree only if they do not hold every
    /// listener.
    TreeOf(Pid),
    /// `check`: every listener on the port, owners searched on the host.
    Host,
}

/// The verdict, ordered as `check`'s exit codes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Listening on all interfaces and every probe answered, none with a
    /// rejected Host.
    Ok,
    /// Only single addresses (the ERR_CONNECTION_REFUSED case), or only a
    /// v6-only `::` that IPv4 clients cannot reach.
    SingleAddress,
    /// Nothing listens on the port.
    Nothing,
    /// Another program holds the port (alone, or beside gunicorn's tree).
    Foreign,
    /// Listening correctly, but an address did not answer HTTP.
    ProbeFailed,
    /// Reachable, but the app answers 400 to the Host a remote browser sends.
    HostRejected,
    /// More than one independent process tree listens on the port
    /// (SO_REUSEPORT): requests are split between them.
    Split,
    /// Listening correctly, but the host firewall blocks the port from every other
    /// machine (or explains why the host's own probe failed).
    FirewallBlocked,
}

impl Kind {
    /// `check`'s exit code for this verdict.
    pub fn exit_code(self) -> i32 {
        match self {
            Kind::Ok => 0,
            Kind::SingleAddress | Kind::Foreign => 1,
            Kind::Nothing => 3,
            Kind::ProbeFailed => 4,
            Kind::HostRejected => 5,
            Kind::Split => 6,
            Kind::FirewallBlocked => 7,
        }
    }

    /// The word `check` prints and `--json` carries.
    pub fn word(self) -> &'static str {
        match self {
            Kind::Ok => "ok",
            Kind::SingleAddress => "single-address",
            Kind::Nothing => "nothing-listening",
            Kind::Foreign => "held-by-another-program",
            Kind::ProbeFailed => "http-probe-failed",
            Kind::HostRejected => "host-rejected",
            Kind::Split => "split-between-programs",
            Kind::FirewallBlocked => "firewall-blocked",
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
    /// Which probes the Host verdict counts (parallel to `probes`): the
    /// configured names when there are any, else every address but loopback.
    pub counted: Vec<bool>,
    /// Addresses of the host left unprobed, with the reason.
    pub skipped: Vec<(SocketAddr, &'static str)>,
    /// The host firewall as another machine meets it (not read when the verdict was
    /// decided before any probe).
    pub firewall: Option<Box<firewall::Report>>,
    /// One sentence for the log and for systemd's STATUS.
    pub summary: String,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.kind == Kind::Ok
    }

    fn decided(kind: Kind, listeners: Vec<Seen>, summary: String) -> Verdict {
        Verdict {
            kind,
            listeners,
            probes: Vec::new(),
            counted: Vec::new(),
            skipped: Vec::new(),
            firewall: None,
            summary,
        }
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
    SocketAddr::new(l.addr, l.port).to_string()
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
    // The firewall's tools first: nft takes longer than the look at the socket table, and
    // the two overlap. A verdict decided without probes drops them (killed).
    let firewall = firewall::Reading::begin();
    match look(target, scope) {
        Look::Decided(v) => v,
        Look::Probing(probing) => {
            let mut pending = Pending {
                probes: Probes::start(&probing.requests, &target.path, target.probe_timeout),
                firewall: firewall.ask(probing.question.clone()),
            };
            crate::pollset::run_to_end(&mut pending);
            let (results, firewall) = pending.results();
            judge(probing, results, firewall)
        }
    }
}

/// The probes and the firewall's reading under way together, on descriptors that a
/// caller with an event loop polls beside its own (the supervisor), or [`verdict`] alone.
pub struct Pending {
    probes: Probes,
    firewall: firewall::Reading,
}

impl Pending {
    pub fn start(probing: &Probing, target: &Target) -> Pending {
        Pending {
            probes: Probes::start(&probing.requests, &target.path, target.probe_timeout),
            firewall: firewall::Reading::start(probing.question.clone()),
        }
    }

    /// The processes the firewall's reading started (tools, not gunicorn's).
    pub fn tool_pids(&self) -> &[i32] {
        self.firewall.pids()
    }

    pub fn results(self) -> (Vec<ProbeResult>, firewall::Report) {
        (self.probes.results(), self.firewall.report())
    }
}

impl crate::pollset::Pollable for Pending {
    fn done(&self) -> bool {
        self.probes.done() && self.firewall.done()
    }

    /// The nearest deadline of what is still under way.
    fn deadline(&self) -> Instant {
        match (self.probes.done(), self.firewall.done()) {
            (false, false) => self.probes.deadline().min(self.firewall.deadline()),
            (false, true) => self.probes.deadline(),
            (true, false) => self.firewall.deadline(),
            (true, true) => Instant::now(),
        }
    }

    /// The probes' descriptors, then the firewall tools', in the order
    /// [`Pending::advance`](crate::pollset::Pollable::advance) takes them.
    fn poll_fds(&self) -> Vec<PollFd<'_>> {
        let mut fds = self.probes.poll_fds();
        fds.extend(self.firewall.poll_fds());
        fds
    }

    fn advance(&mut self, ready: &[PollFlags], now: Instant) {
        let split = self.probes.poll_fds().len().min(ready.len());
        let (probes, firewall) = ready.split_at(split);
        self.probes.advance(probes, now);
        self.firewall.advance(firewall, now);
    }
}

/// What the kernel and the process tree say, before any probe.
pub enum Look {
    /// Decided without HTTP: nothing listens, a single address, a foreign
    /// holder, a port split between programs.
    Decided(Verdict),
    /// Listening right: the probes to make, then [`judge`].
    Probing(Probing),
}

/// A verdict waiting for its probes.
pub struct Probing {
    pub requests: Vec<Request>,
    /// The firewall's question: the addresses probed, as another machine and as the host
    /// itself reaches them.
    pub question: firewall::Question,
    skipped: Vec<(SocketAddr, &'static str)>,
    /// The clause that ends the summary when the host's addresses could not be listed.
    unlisted: Option<String>,
    path: String,
    names: bool,
    ours: Vec<Seen>,
}

/// The verdict from the kernel's socket table and the process tree; when
/// the listener is right, the probes to make (a caller with an event loop
/// makes them without blocking, see [`probe::Probes`]).
pub fn look(target: &Target, scope: Scope) -> Look {
    let port = target.port;
    let seen = listeners_seen(port, scope);
    let decided =
        |(kind, listeners, summary)| Look::Decided(Verdict::decided(kind, listeners, summary));
    let ours = match whose(port, scope, seen) {
        Ok(ours) => ours,
        Err(verdict) => return decided(verdict),
    };
    if let Some(verdict) = not_everywhere(port, scope, &ours) {
        return decided((verdict.0, ours, verdict.1));
    }
    let families = Families {
        ipv4: ours.iter().any(|s| s.listener.covers_ipv4()),
        ipv6: ours.iter().any(|s| s.listener.covers_ipv6()),
    };
    // Unlisted, the addresses are not guessed: loopback is probed, and the verdict says why
    // no other address was (waiting would not list them, and silence would hide it).
    let (addresses, unlisted) = match probe::targets(port, families) {
        Ok(addresses) => (addresses, None),
        Err(e) => (probe::loopback_only(port, families), Some(e)),
    };
    Look::Probing(Probing {
        question: firewall_question(port, &addresses, target.from),
        requests: requests(&addresses.probe, &target.host_names),
        skipped: addresses.skipped,
        unlisted: unlisted.map(|e| {
            format!("; only loopback was probed, as this host's addresses could not be listed: {e}")
        }),
        path: target.path.clone(),
        names: !target.host_names.is_empty(),
        ours,
    })
}

/// The listeners on `port` with their owners: searched among the launcher's tree
/// (`Scope::TreeOf`), or on the whole host.
fn listeners_seen(port: u16, scope: Scope) -> Vec<Seen> {
    let all = sockets::listeners_on_port(port).unwrap_or_default();
    let inodes: Vec<u64> = all.iter().map(|l| l.inode).collect();
    let mut owners: HashMap<u64, Vec<Owner>> = match scope {
        _ if all.is_empty() => HashMap::new(),
        Scope::TreeOf(root) => {
            let children = crate::process::procfs::main_thread_children(root.as_raw());
            owners::owners_near_first(&inodes, &children, || {
                let mut tree: Vec<i32> = crate::process::tree::descendants(root)
                    .iter()
                    .map(|p| p.as_raw())
                    .collect();
                tree.push(root.as_raw());
                tree
            })
        }
        Scope::Host => owners::owners_on_host(&all),
    };
    all.into_iter()
        .map(|l| Seen {
            owners: owners.remove(&l.inode).unwrap_or_default(),
            listener: l,
        })
        .collect()
}

/// A decided verdict: its kind, the listeners it is about, its sentence.
type Decided = (Kind, Vec<Seen>, String);

/// The listeners that are ours to judge, or the verdict when they are not one program's:
/// another program on the port (`run`), programs splitting it (`check`), or nothing at all.
fn whose(port: u16, scope: Scope, seen: Vec<Seen>) -> Result<Vec<Seen>, Decided> {
    let ours = match scope {
        Scope::TreeOf(_) => {
            let (ours, foreign): (Vec<Seen>, Vec<Seen>) =
                seen.into_iter().partition(|s| !s.owners.is_empty());
            if !foreign.is_empty() {
                let summary = foreign_holders(port, &ours, &foreign);
                return Err((Kind::Foreign, foreign, summary));
            }
            ours
        }
        Scope::Host => {
            let trees = independent_trees(&seen);
            if trees.len() > 1 {
                let summary = format!(
                    "port {port} is served by {} independent programs (SO_REUSEPORT), so requests are split \
                     between them: {}; stop all but one",
                    trees.len(),
                    trees.join("; ")
                );
                return Err((Kind::Split, seen, summary));
            }
            seen
        }
    };
    if ours.is_empty() {
        return Err((
            Kind::Nothing,
            ours,
            format!("nothing listens on port {port}"),
        ));
    }
    Ok(ours)
}

/// The single-address verdicts: a listener bound to one address (the
/// ERR_CONNECTION_REFUSED case), or only a v6-only `::` that IPv4 clients cannot reach.
fn not_everywhere(port: u16, scope: Scope, ours: &[Seen]) -> Option<(Kind, String)> {
    let singles: Vec<&Seen> = ours.iter().filter(|s| !s.listener.is_wildcard()).collect();
    if !singles.is_empty() {
        let what: Vec<String> = singles
            .iter()
            .map(|s| format!("{} ({})", endpoint(&s.listener), holders(&s.owners)))
            .collect();
        // The hook is gunicorn's way to rebind behind the command line; another program's
        // single-address bind is that program's own.
        let gunicorn = matches!(scope, Scope::TreeOf(_))
            || singles
                .iter()
                .any(|s| s.owners.iter().any(|o| runs_gunicorn(&o.command)));
        let why = if gunicorn {
            " (a bind in gunicorn.conf.py hooks, e.g. on_starting, overrides the command line)"
        } else {
            ""
        };
        return Some((
            Kind::SingleAddress,
            format!(
                "bound to a single address, not all interfaces: {}; other machines get ERR_CONNECTION_REFUSED{why}",
                what.join(", ")
            ),
        ));
    }
    if !ours.iter().any(|s| s.listener.covers_ipv4()) {
        return Some((
            Kind::SingleAddress,
            format!(
                "listening on [::]:{port} with IPV6_V6ONLY: IPv4 clients are refused; bind 0.0.0.0 or a dual-stack ::"
            ),
        ));
    }
    None
}

/// What to ask of the host firewall: the port, each address another machine can reach
/// (with its interface), every address probed, and the one client asked about, if any.
fn firewall_question(
    port: u16,
    addresses: &probe::Addresses,
    from: Option<IpAddr>,
) -> firewall::Question {
    let mut remote: Vec<(IpAddr, String)> = Vec::new();
    for a in addresses
        .probe
        .iter()
        .map(SocketAddr::ip)
        .filter(|a| !a.is_loopback())
    {
        if !remote.iter().any(|(r, _)| *r == a) {
            remote.push((a, addresses.interface_of(a).unwrap_or("?").to_string()));
        }
    }
    firewall::Question {
        port,
        remote,
        local: addresses.probe.iter().map(SocketAddr::ip).collect(),
        from,
    }
}

/// Each address with its own Host, then each configured name at each address.
pub fn requests(addrs: &[SocketAddr], names: &[String]) -> Vec<Request> {
    let mut out: Vec<Request> = addrs.iter().map(|&a| Request::to(a)).collect();
    for name in names {
        out.extend(addrs.iter().map(|&a| Request::named(a, name)));
    }
    out
}

/// The probes whose answers the Host verdict counts: the configured names
/// when there are any (an address the clients never type may be rejected
/// on purpose), else every address a remote browser can put in its Host:
/// not loopback (`Host: 127.0.0.1` comes from this host only), not link-local
/// (`fe80::…` needs a zone id that browsers do not accept in a URL, and
/// `169.254.…` is never a site's address).
pub fn counts(probe: &ProbeResult, names: bool) -> bool {
    let address = probe.host == Request::to(probe.addr).host;
    if names {
        !address
    } else {
        address && browsable(probe.addr.ip())
    }
}

/// An address a browser elsewhere can be pointed at by its users.
fn browsable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_link_local(),
        IpAddr::V6(v6) => !v6.is_loopback() && !v6.is_unicast_link_local(),
    }
}

/// The status Django, Flask (`TRUSTED_HOSTS`) and Starlette
/// (`TrustedHostMiddleware`) answer to a Host they do not accept.
const REJECTED_HOST: u16 = 400;

/// The verdict once the probes of [`look`] have their results and the firewall is read.
pub fn judge(probing: Probing, probes: Vec<ProbeResult>, firewall: firewall::Report) -> Verdict {
    let Probing {
        path,
        names,
        ours,
        skipped,
        unlisted,
        question,
        ..
    } = probing;
    let counted: Vec<bool> = probes.iter().map(|p| counts(p, names)).collect();
    let bound: Vec<String> = ours
        .iter()
        .map(|s| format!("{} ({})", endpoint(&s.listener), family_name(&s.listener)))
        .collect();
    let met = Met {
        bound: bound.join(", "),
        path: &path,
        port: question.port,
        probes: &probes,
        counted: &counted,
        firewall: &firewall,
    };
    let (kind, mut summary) = met.first_wall();
    summary.push_str(unlisted.as_deref().unwrap_or_default());
    Verdict {
        kind,
        listeners: ours,
        probes,
        counted,
        skipped,
        firewall: Some(Box::new(firewall)),
        summary,
    }
}

/// What the probes and the firewall found, to say which wall a remote browser meets first.
struct Met<'a> {
    /// The listeners, as the summary names them.
    bound: String,
    path: &'a str,
    port: u16,
    probes: &'a [ProbeResult],
    counted: &'a [bool],
    firewall: &'a firewall::Report,
}

impl Met<'_> {
    /// The walls in the order a remote browser meets them: the firewall, HTTP, the Host.
    fn first_wall(&self) -> (Kind, String) {
        let bound = &self.bound;
        let failed: Vec<&ProbeResult> = self.probes.iter().filter(|p| !p.reachable()).collect();
        let failures = bounded(
            failed
                .iter()
                .map(|p| format!("{} {}", label(p), p.outcome))
                .collect(),
            "more failed",
        );
        // A failed probe that the firewall explains (a rule that also matches the host's
        // own connection) is the firewall's verdict, not HTTP's.
        let explained: Vec<&Judgement> = failed
            .iter()
            .filter_map(|p| self.firewall.blocks_locally(p.addr.ip()))
            .collect();
        if self.firewall.blocks_everywhere() {
            let walls = firewall_walls(self.firewall);
            return (
                Kind::FirewallBlocked,
                format!(
                    "listening on {bound}, all interfaces, but the host firewall blocks port {} from every other machine: {walls}",
                    self.port
                ),
            );
        }
        if !failed.is_empty() && explained.len() == failed.len() {
            return (
                Kind::FirewallBlocked,
                format!(
                    "listening on {bound} but HTTP GET {} failed: {failures}; the host firewall blocks it: {}",
                    self.path,
                    firewall_walls_of(&explained, self.firewall.fix.as_deref())
                ),
            );
        }
        if !failed.is_empty() || self.probes.is_empty() {
            let why = if failed.is_empty() {
                "no address to probe".to_string()
            } else {
                failures
            };
            return (
                Kind::ProbeFailed,
                format!(
                    "listening on {bound} but HTTP GET {} failed: {why}{}",
                    self.path,
                    firewall_note(self.firewall)
                ),
            );
        }
        self.host_wall()
    }

    /// Every probe answered: the app's Host check, or ok.
    fn host_wall(&self) -> (Kind, String) {
        let bound = &self.bound;
        let answers = answers(self.probes);
        let rejected: BTreeSet<&str> = self
            .probes
            .iter()
            .zip(self.counted)
            .filter(|(p, counted)| **counted && p.outcome == probe::Outcome::Status(REJECTED_HOST))
            .map(|(p, _)| bare_host(&p.host))
            .collect();
        if rejected.is_empty() {
            return (
                Kind::Ok,
                format!(
                    "listening on {bound}, all interfaces; {answers}{}",
                    firewall_note(self.firewall)
                ),
            );
        }
        (
            Kind::HostRejected,
            format!(
                "listening on {bound}, all interfaces, but the app rejects the Host that remote browsers send: {answers}; \
                 Django: add {} to ALLOWED_HOSTS (Flask: TRUSTED_HOSTS; Starlette: TrustedHostMiddleware's allowed_hosts){}",
                bounded(rejected.iter().map(|h| h.to_string()).collect(), "more"),
                firewall_note(self.firewall)
            ),
        )
    }
}

/// Each blocked address with what blocks it, then the fix.
fn firewall_walls(firewall: &firewall::Report) -> String {
    let blocked: Vec<&Judgement> = firewall.remote.iter().filter(|j| j.fate.blocks()).collect();
    firewall_walls_of(&blocked, firewall.fix.as_deref())
}

fn firewall_walls_of(blocked: &[&Judgement], fix: Option<&str>) -> String {
    let mut walls: Vec<String> = blocked.iter().map(|j| describe_judgement(j)).collect();
    walls.dedup();
    let mut out = bounded_with(walls, "; ", "more addresses");
    if let Some(fix) = fix {
        out.push_str(&format!("; to open it: {fix}"));
    }
    out
}

/// `198.18.0.1 (eth0): rejected (tcp reset) by inet filter input handle 3: ...`.
pub fn describe_judgement(j: &Judgement) -> String {
    let fate = match &j.fate {
        firewall::judge::Fate::Open => "open".to_string(),
        firewall::judge::Fate::Dropped => "dropped (the client times out)".to_string(),
        firewall::judge::Fate::Rejected(how) => format!("rejected ({how})"),
        firewall::judge::Fate::Redirected => {
            "redirected elsewhere (gunicorn never sees it)".to_string()
        }
        firewall::judge::Fate::Unknown(why) => format!("unknown ({why})"),
    };
    let by = j
        .rule
        .as_ref()
        .map(|r| format!(" by {}", r.line()))
        .unwrap_or_default();
    format!("{} ({}): {fate}{by}{}", j.address, j.interface, clients(j))
}

/// Which clients fare otherwise than most: `, open only to 10.0.0.0/8`, `, blocked from
/// 203.0.113.7/32`.
pub fn clients(j: &Judgement) -> String {
    let list = |p: &[firewall::sources::Prefix]| {
        bounded(p.iter().map(ToString::to_string).collect(), "more")
    };
    match (&j.open_to, &j.blocked_from) {
        (Some(p), _) if !p.is_empty() => format!(", open only to {}", list(p)),
        (_, Some(p)) if !p.is_empty() => format!(", blocked from {}", list(p)),
        _ => String::new(),
    }
}

/// What the firewall adds to a verdict it does not decide: addresses it blocks, fates it
/// cannot know, or that it could not be read.
fn firewall_note(firewall: &firewall::Report) -> String {
    if !firewall.read {
        return format!(
            "; firewall not read: {}",
            firewall.why.as_deref().unwrap_or("unknown reason")
        );
    }
    let notable: Vec<String> = firewall
        .remote
        .iter()
        .filter(|j| {
            j.fate != firewall::judge::Fate::Open || j.open_to.is_some() || j.blocked_from.is_some()
        })
        .map(describe_judgement)
        .collect();
    if notable.is_empty() {
        return String::new();
    }
    format!(
        "; the host firewall, for other machines: {}",
        bounded_with(notable, "; ", "more addresses")
    )
}

/// Every probe's answer, each on its own (`HTTP 200 from 127.0.0.1, HTTP 400 from
/// 198.18.0.1`); on a host with many addresses, the probes with one answer together,
/// the first few named and the rest counted, so that a verdict stays one readable line
/// (the whole list is in `check`).
fn answers(probes: &[ProbeResult]) -> String {
    if probes.len() <= SHOWN {
        return probes
            .iter()
            .map(|p| format!("{} from {}", p.outcome, label(p)))
            .collect::<Vec<_>>()
            .join(", ");
    }
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for p in probes {
        let answer = p.outcome.to_string();
        match groups.iter_mut().find(|(a, _)| *a == answer) {
            Some((_, who)) => who.push(label(p)),
            None => groups.push((answer, vec![label(p)])),
        }
    }
    groups
        .into_iter()
        .map(|(answer, who)| {
            format!(
                "{answer} from {} ({})",
                crate::log::count(who.len(), "probe", "probes"),
                bounded(who, "more")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Items a sentence names before it counts the rest.
const SHOWN: usize = 8;

/// The first [`SHOWN`] items, then how many more (`and 294 more failed`).
fn bounded(items: Vec<String>, more: &str) -> String {
    bounded_with(items, ", ", more)
}

fn bounded_with(items: Vec<String>, separator: &str, more: &str) -> String {
    if items.len() <= SHOWN {
        return items.join(separator);
    }
    format!(
        "{} and {} {more}",
        items[..SHOWN].join(separator),
        items.len() - SHOWN
    )
}

/// How a probe is named in a sentence: its address, and the Host when that
/// is a configured name.
fn label(p: &ProbeResult) -> String {
    if p.host == Request::to(p.addr).host {
        p.addr.ip().to_string()
    } else {
        format!("{} at {}", p.host, p.addr.ip())
    }
}

/// Does this command line run gunicorn: a word that is the gunicorn script (by any path, or
/// after `-m`), or gunicorn's own process title (`gunicorn: master [...]`)? A path that only
/// mentions gunicorn (a venv named after it) does not count.
pub(crate) fn runs_gunicorn(command: &str) -> bool {
    command.split_whitespace().any(|w| {
        let base = w.rsplit('/').next().unwrap_or(w);
        base == "gunicorn" || base == "gunicorn:"
    })
}
/// A Host header without its port: what ALLOWED_HOSTS lists.
fn bare_host(host: &str) -> &str {
    match host.rsplit_once(':') {
        // `[::1]:8001` and `name:8001`; `[::1]` alone has its colons inside.
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.is_empty() => {
            if h.starts_with('[') && !h.ends_with(']') {
                host
            } else {
                h
            }
        }
        _ => host,
    }
}

/// The message for listeners on the port that gunicorn's tree does not own.
fn foreign_holders(port: u16, ours: &[Seen], foreign: &[Seen]) -> String {
    let host_owners = owners::owners_on_host(
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
    if ours.is_empty() {
        format!(
            "port {port} is taken by another program: {}; stop it or choose another port",
            who.join("; ")
        )
    } else {
        format!(
            "port {port} is also served by another program (SO_REUSEPORT), so requests are split between it and \
             gunicorn: {}; stop it or choose another port",
            who.join("; ")
        )
    }
}

/// The independent process trees among the listeners' owners, one sentence
/// each. An owner belongs to the tree of its topmost owning ancestor; owners
/// whose topmost owners are children of one process that owns nothing and
/// runs the same program are one tree (gunicorn's `--reuse-port` workers
/// each hold a socket of their own, their master none). Two programs that a
/// shell or a supervisor started are two trees. A listener whose owner is
/// not visible counts as a tree of its own.
pub fn independent_trees(seen: &[Seen]) -> Vec<String> {
    let owners: BTreeSet<i32> = seen
        .iter()
        .flat_map(|s| s.owners.iter().map(|o| o.pid))
        .collect();
    let lead = tree_leads(&owners);
    let mut trees: Vec<(i32, Vec<String>, BTreeSet<i32>)> = Vec::new();
    let mut unseen = Vec::new();
    for s in seen {
        let Some(first) = s.owners.first() else {
            unseen.push(format!(
                "{} (owner not visible from here)",
                endpoint(&s.listener)
            ));
            continue;
        };
        let lead = lead(first.pid);
        let members = s.owners.iter().map(|o| o.pid);
        match trees.iter_mut().find(|(k, ..)| *k == lead) {
            Some((_, endpoints, all)) => {
                endpoints.push(endpoint(&s.listener));
                all.extend(members);
            }
            None => trees.push((lead, vec![endpoint(&s.listener)], members.collect())),
        }
    }
    let mut out: Vec<String> = trees
        .into_iter()
        .map(|(lead, endpoints, members)| describe_tree(lead, endpoints, &members))
        .collect();
    out.extend(unseen);
    out
}

/// Which process leads the tree that `pid` belongs to, among `owners`: its topmost ancestor
/// that owns a listener too; or that one's parent when it runs the same program and has more
/// than one such child (a master whose workers each bound with `--reuse-port`).
fn tree_leads(owners: &BTreeSet<i32>) -> impl Fn(i32) -> i32 + '_ {
    let parent = |p: i32| crate::process::procfs::ppid(p).filter(|&pp| pp > 1);
    let top = move |p: i32| {
        let (mut top, mut up) = (p, p);
        while let Some(pp) = parent(up) {
            if owners.contains(&pp) {
                top = pp;
            }
            up = pp;
        }
        top
    };
    let tops: BTreeSet<i32> = owners.iter().map(|&p| top(p)).collect();
    let exe = |p: i32| std::fs::read_link(format!("/proc/{p}/exe")).ok();
    move |p: i32| {
        let t = top(p);
        match parent(t) {
            Some(q)
                if tops.iter().filter(|&&u| parent(u) == Some(q)).count() > 1
                    && exe(q).is_some_and(|e| Some(e) == exe(t)) =>
            {
                q
            }
            _ => t,
        }
    }
}

/// `pid 12 (COMMAND) and 2 processes under it, under pid 1 on 0.0.0.0:8001`.
fn describe_tree(lead: i32, mut endpoints: Vec<String>, members: &BTreeSet<i32>) -> String {
    let command = crate::process::procfs::command_line(lead).unwrap_or_else(|| "?".into());
    let with = match members.iter().filter(|&&p| p != lead).count() {
        0 => String::new(),
        1 => " and 1 process under it".into(),
        n => format!(" and {n} processes under it"),
    };
    endpoints.sort();
    endpoints.dedup();
    // Its parent too: a --reuse-port worker is found by its master.
    let under = match crate::process::procfs::ppid(lead) {
        Some(pp) if pp > 1 => format!(", under pid {pp}"),
        _ => String::new(),
    };
    format!(
        "pid {lead} ({command}){with}{under} on {}",
        endpoints.join(", ")
    )
}

#[cfg(test)]
mod tests;
