//! The launcher's own TOML configuration.
//!
//! Every key is optional: the embedded defaults (gunicorn from PATH, bound to
//! `0.0.0.0:8001`) are a complete configuration. A bad file is refused
//! whole, before anything starts, with the file, line, column and key, and a
//! suggestion for a misspelt key, because a launcher that half-reads its
//! config and starts anyway is the kind of silent drift it exists to end.

use crate::error::Failure;
use serde::Deserialize;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// Whether a Host rejected by the app (HTTP 400 to what a remote browser
/// sends) fails the verification.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnHostRejected {
    /// Say it (log warning, STATUS) and send READY=1 all the same: the bind is
    /// right, and the app's settings are the app's.
    #[default]
    Warn,
    /// A failed verification, handled as `on_failure` says.
    Fail,
}

/// Whether a host firewall that blocks the port from every other machine fails the
/// verification.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnFirewallBlocked {
    /// Say it (log warning, STATUS) and send READY=1 all the same: the bind is right, and
    /// the firewall is the administrator's.
    #[default]
    Warn,
    /// A failed verification, handled as `on_failure` says.
    Fail,
}

/// What to do when the post-start verification fails.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Stop gunicorn and exit 69 (the default: a service that is not
    /// reachable should fail loudly, not look healthy).
    #[default]
    Fail,
    /// Keep gunicorn running, say so in the log and in systemd's STATUS.
    Warn,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    gunicorn: GunicornSection,
    #[serde(default)]
    bind: BindSection,
    #[serde(default)]
    supervise: SuperviseSection,
    #[serde(default)]
    verify: VerifySection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GunicornSection {
    command: Option<Spanned<Command>>,
    app: Option<Spanned<String>>,
    #[serde(default)]
    args: Vec<String>,
}

/// `command = "/opt/app/venv/bin/gunicorn"` (one program, never split) or
/// `command = ["python3", "-m", "gunicorn"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Command {
    Program(String),
    Argv(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BindSection {
    host: Option<Spanned<String>>,
    port: Option<Spanned<i64>>,
    hold_socket: Option<bool>,
    backlog: Option<Spanned<i64>>,
}

/// A duration as written (`"35s"`, `"2m 30s"`), read with humantime where
/// its position is still known, so that an error names line and column.
type Written = Option<Spanned<String>>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SuperviseSection {
    stop_timeout: Written,
    restart_burst: Option<Spanned<i64>>,
    restart_interval: Written,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifySection {
    startup_timeout: Written,
    probe_timeout: Written,
    recheck_interval: Written,
    path: Option<Spanned<String>>,
    on_failure: Option<OnFailure>,
    host_names: Option<Spanned<Vec<String>>>,
    on_host_rejected: Option<OnHostRejected>,
    on_firewall_blocked: Option<OnFirewallBlocked>,
}

/// The configuration after defaults and validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The program and its leading tokens (`["gunicorn"]` by default).
    pub command: Vec<String>,
    /// Extra gunicorn arguments, before the app.
    pub args: Vec<String>,
    /// The WSGI app, appended last (`solvit.wsgi:application`).
    pub app: Option<String>,
    pub host: IpAddr,
    pub port: u16,
    /// The launcher binds the port itself and hands the socket to gunicorn
    /// (and to each gunicorn it restarts after a crash).
    pub hold_socket: bool,
    /// `listen()`'s backlog for a socket the launcher holds: connections
    /// that wait there while gunicorn (re)starts.
    pub backlog: u32,
    pub stop_timeout: Duration,
    /// With a held socket, a master that dies is restarted, at most this
    /// many times within `restart_interval`; one more ends the launcher.
    pub restart_burst: u32,
    pub restart_interval: Duration,
    pub startup_timeout: Duration,
    pub probe_timeout: Duration,
    /// Zero: verify once at start (and after reloads), then stay idle.
    pub recheck_interval: Duration,
    pub probe_path: String,
    pub on_failure: OnFailure,
    /// Names the clients use; their answers decide the Host verdict.
    pub host_names: Vec<String>,
    pub on_host_rejected: OnHostRejected,
    pub on_firewall_blocked: OnFirewallBlocked,
    /// The file it came from, for messages.
    pub source: Option<PathBuf>,
}

pub const DEFAULT_PORT: u16 = 8001;
/// What the HTTP probe asks for, and how long it waits, unless configured.
pub const DEFAULT_PROBE_PATH: &str = "/";
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

impl Default for Config {
    fn default() -> Self {
        Config {
            command: vec!["gunicorn".into()],
            args: Vec::new(),
            app: None,
            host: IpAddr::from([0, 0, 0, 0]),
            port: DEFAULT_PORT,
            hold_socket: false,
            // gunicorn's own default.
            backlog: 2048,
            stop_timeout: crate::stop_budget::LAUNCHER_DEFAULT,
            // systemd's default start limit (StartLimitBurst=5 within 10 s).
            restart_burst: 5,
            restart_interval: Duration::from_secs(10),
            startup_timeout: Duration::from_secs(60),
            probe_timeout: DEFAULT_PROBE_TIMEOUT,
            recheck_interval: Duration::ZERO,
            probe_path: DEFAULT_PROBE_PATH.into(),
            on_failure: OnFailure::Fail,
            host_names: Vec::new(),
            on_host_rejected: OnHostRejected::Warn,
            on_firewall_blocked: OnFirewallBlocked::Warn,
            source: None,
        }
    }
}

/// Far above any real config; a bound so a wrong path cannot eat memory.
const MAX_CONFIG: u64 = 1 << 20;

/// Reads and validates a config file.
pub fn load(path: &Path) -> Result<Config, Failure> {
    let cannot = |why: String| {
        Failure::config(format!(
            "{}: cannot read the config file: {why}; check the path given to --config and its permissions",
            path.display()
        ))
    };
    // A FIFO would block the start forever and /dev/zero never ends: only a
    // regular file of a sane size is a config.
    let meta = std::fs::metadata(path).map_err(|e| cannot(e.to_string()))?;
    if !meta.is_file() {
        return Err(cannot("not a regular file".into()));
    }
    let mut text = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(
            std::fs::File::open(path).map_err(|e| cannot(e.to_string()))?,
            MAX_CONFIG + 1,
        ),
        &mut text,
    )
    .map_err(|e| cannot(e.to_string()))?;
    if text.len() as u64 > MAX_CONFIG {
        return Err(cannot(format!("larger than {MAX_CONFIG} bytes")));
    }
    let text = String::from_utf8(text).map_err(|e| {
        Failure::config(format!(
            "{}: not UTF-8 text (byte {})",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })?;
    parse(&text, &path.display().to_string()).map(|c| Config {
        source: Some(path.to_owned()),
        ..c
    })
}

/// Parses config text; `origin` names it in messages.
pub fn parse(text: &str, origin: &str) -> Result<Config, Failure> {
    let file: File =
        toml::from_str(text).map_err(|e| Failure::config(describe_toml_error(&e, text, origin)))?;
    let at = At { text, origin };
    let mut config = Config::default();
    gunicorn_section(&mut config, file.gunicorn, &at)?;
    bind_section(&mut config, file.bind, &at)?;
    supervise_section(&mut config, file.supervise, &at)?;
    verify_section(&mut config, file.verify, &at)?;
    Ok(config)
}

/// Where a value was written, for messages: `file:line:column: key `k`: …`.
struct At<'a> {
    text: &'a str,
    origin: &'a str,
}

impl At<'_> {
    fn error(&self, span: std::ops::Range<usize>, key: &str, msg: String) -> Failure {
        let (line, col) = line_col(self.text, span.start);
        Failure::config(format!("{}:{line}:{col}: key `{key}`: {msg}", self.origin))
    }

    /// A whole number within `range`, or the error `why` (given the number) at its place.
    fn number<T: TryFrom<i64>>(
        &self,
        value: &Spanned<i64>,
        key: &str,
        range: std::ops::RangeInclusive<i64>,
        why: impl Fn(i64) -> String,
    ) -> Result<T, Failure> {
        let n = *value.get_ref();
        range
            .contains(&n)
            .then(|| T::try_from(n).ok())
            .flatten()
            .ok_or_else(|| self.error(value.span(), key, why(n)))
    }

    /// A duration as written, or `default` when it is not; `zero` says why zero cannot be.
    fn duration(
        &self,
        written: Written,
        key: &str,
        zero: Option<&str>,
        default: Duration,
    ) -> Result<Duration, Failure> {
        match written {
            None => Ok(default),
            Some(w) => parse_duration(w.get_ref(), zero).map_err(|m| self.error(w.span(), key, m)),
        }
    }
}

fn gunicorn_section(config: &mut Config, g: GunicornSection, at: &At<'_>) -> Result<(), Failure> {
    if let Some(command) = g.command {
        let span = command.span();
        config.command = match command.into_inner() {
            Command::Program(p) => vec![p],
            Command::Argv(v) => v,
        };
        if config.command.is_empty() || config.command.iter().any(String::is_empty) {
            return Err(at.error(
                span,
                "gunicorn.command",
                "empty, or with an empty word; give the gunicorn program, e.g. \"/opt/solvit/venv/bin/gunicorn\" \
                 or [\"python3\", \"-m\", \"gunicorn\"]"
                    .into(),
            ));
        }
    }
    config.args = g.args;
    if let Some(app) = g.app {
        if app.get_ref().trim().is_empty() {
            return Err(at.error(
                app.span(),
                "gunicorn.app",
                "empty; give the WSGI app, e.g. \"solvit.wsgi:application\", or leave the key out"
                    .into(),
            ));
        }
        config.app = Some(app.into_inner());
    }
    Ok(())
}

fn bind_section(config: &mut Config, b: BindSection, at: &At<'_>) -> Result<(), Failure> {
    if let Some(host) = b.host {
        config.host =
            validate_host(host.get_ref()).map_err(|m| at.error(host.span(), "bind.host", m))?;
    }
    if let Some(port) = b.port {
        config.port = at.number(&port, "bind.port", 1..=65535, |n| {
            format!("{n} is not a TCP port; use 1 to 65535 (default {DEFAULT_PORT})")
        })?;
    }
    config.hold_socket = b.hold_socket.unwrap_or(config.hold_socket);
    if let Some(backlog) = b.backlog {
        config.backlog = at.number(&backlog, "bind.backlog", 1..=65535, |n| {
            format!(
                "{n} cannot be a listen backlog; use 1 to 65535 (the kernel caps it at \
                 net.core.somaxconn; default 2048)"
            )
        })?;
    }
    Ok(())
}

fn supervise_section(config: &mut Config, s: SuperviseSection, at: &At<'_>) -> Result<(), Failure> {
    config.stop_timeout = at.duration(
        s.stop_timeout,
        "supervise.stop_timeout",
        Some("every stop would be a SIGKILL, with no time for gunicorn's graceful shutdown"),
        config.stop_timeout,
    )?;
    if let Some(burst) = s.restart_burst {
        config.restart_burst = at.number(&burst, "supervise.restart_burst", 0..=1000, |n| {
            format!("{n} is not a number of restarts; use 0 (never restart) to 1000 (default 5)")
        })?;
    }
    config.restart_interval = at.duration(
        s.restart_interval,
        "supervise.restart_interval",
        Some("no restart could ever be counted against the limit"),
        config.restart_interval,
    )?;
    Ok(())
}

fn verify_section(config: &mut Config, v: VerifySection, at: &At<'_>) -> Result<(), Failure> {
    config.startup_timeout = at.duration(
        v.startup_timeout,
        "verify.startup_timeout",
        Some("gunicorn could never be verified, and every start would fail (exit 69)"),
        config.startup_timeout,
    )?;
    config.probe_timeout = at.duration(
        v.probe_timeout,
        "verify.probe_timeout",
        Some("no HTTP probe could ever be answered, and every start would fail (exit 69)"),
        config.probe_timeout,
    )?;
    config.recheck_interval = at.duration(
        v.recheck_interval,
        "verify.recheck_interval",
        None,
        config.recheck_interval,
    )?;
    config.on_failure = v.on_failure.unwrap_or_default();
    if let Some(path) = v.path {
        validate_path(path.get_ref()).map_err(|m| at.error(path.span(), "verify.path", m))?;
        config.probe_path = path.into_inner();
    }
    config.on_host_rejected = v.on_host_rejected.unwrap_or_default();
    config.on_firewall_blocked = v.on_firewall_blocked.unwrap_or_default();
    if let Some(names) = v.host_names {
        for name in names.get_ref() {
            validate_host_name(name).map_err(|m| at.error(names.span(), "verify.host_names", m))?;
        }
        config.host_names = names.into_inner();
    }
    Ok(())
}

/// A duration (`"35s"`, `"2m 30s"`, humantime's syntax). `zero`, when
/// given, is why zero cannot work.
pub fn parse_duration(text: &str, zero: Option<&str>) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| {
        format!("{text:?} is not a duration ({e}); write it as \"35s\", \"500ms\" or \"2m\"")
    })?;
    match zero {
        Some(why) if d.is_zero() => {
            Err(format!("{text:?} is zero: {why}; give a positive duration"))
        }
        _ => Ok(d),
    }
}

/// The HTTP path the probe GETs: absolute, visible ASCII, no spaces (a
/// space or a control character would end the request line early or inject
/// a header; percent-encode the rest).
pub fn validate_path(path: &str) -> Result<(), String> {
    if path.starts_with('/') && path.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(format!(
            "{path:?} is not a request path; use an absolute path without spaces, such as \"/\" or \"/healthz\" \
             (percent-encode anything else)"
        ))
    }
}

/// A name clients type in their browser: letters, digits, `-`, `_` and `.`
/// (an IP address is probed anyway, as an address of the host).
pub fn validate_host_name(name: &str) -> Result<(), String> {
    let fine = !name.is_empty()
        && name.len() <= 253
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if fine {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a host name; give the name clients use, such as \"solvit.example.com\" (no scheme, port or path)"
        ))
    }
}

/// Only the all-interfaces addresses are allowed: binding anything else is
/// exactly the ERR_CONNECTION_REFUSED failure this launcher prevents.
pub fn validate_host(host: &str) -> Result<IpAddr, String> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ip: IpAddr = bare.parse().map_err(|_| {
        format!("{host:?} is not an IP address; use \"0.0.0.0\" (IPv4) or \"::\" (IPv4 and IPv6)")
    })?;
    if ip.is_unspecified() {
        return Ok(ip);
    }
    if ip.is_loopback() {
        return Err(format!(
            "{host} is a loopback address: gunicorn would accept connections from this machine only, \
             and every other machine would get ERR_CONNECTION_REFUSED; use \"0.0.0.0\" or \"::\""
        ));
    }
    Err(format!(
        "{host} is a single address: gunicorn would be unreachable on every other interface; \
         use \"0.0.0.0\" or \"::\" (restrict access with a firewall instead)"
    ))
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Turns toml's error into `file:line:col: key `section.key`: what, hint`.
fn describe_toml_error(e: &toml::de::Error, text: &str, origin: &str) -> String {
    let msg = e.message().trim().to_owned();
    let Some(span) = e.span() else {
        return format!("{origin}: {msg}");
    };
    let (line, col) = line_col(text, span.start);
    let key = key_at(text, span.start);
    let hint = unknown_field_hint(&msg);
    match key {
        Some(key) => format!("{origin}:{line}:{col}: key `{key}`: {msg}{hint}"),
        None => format!("{origin}:{line}:{col}: {msg}{hint}"),
    }
}

/// The dotted key whose line holds `offset`: the nearest `[section]` above
/// plus the name before `=` on that line (or the section header itself).
fn key_at(text: &str, offset: usize) -> Option<String> {
    let start = text[..offset.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line = text[start..].lines().next().unwrap_or("").trim();
    let section = text[..start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && l.ends_with(']'))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
    if line.starts_with('[') {
        return Some(
            line.trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_owned(),
        );
    }
    let name = line.split_once('=')?.0.trim().trim_matches('"');
    Some(match section {
        Some(s) => format!("{s}.{name}"),
        None => name.to_owned(),
    })
}

/// For serde's "unknown field `x`, expected one of `a`, `b`": the nearest.
fn unknown_field_hint(msg: &str) -> String {
    let Some(rest) = msg.strip_prefix("unknown field `") else {
        return String::new();
    };
    let Some((field, expected)) = rest.split_once('`') else {
        return String::new();
    };
    let best = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|cand| (strsim::jaro_winkler(field, cand), cand))
        .filter(|(score, _)| *score > 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((_, cand)) => format!("; did you mean `{cand}`?"),
        None => "; remove it (see examples/gunicorn-launcher.toml for every key)".into(),
    }
}

#[cfg(test)]
mod tests;
