//! A model of how gunicorn's command line parser (Python's `argparse`) reads tokens, just
//! deep enough to find every bind and daemon option however it is spelled (`-b X`, `-bX`,
//! `-b=X`, `--bind=X`, prefixes such as `--bi`, clusters such as `-DbX`), and to keep every
//! other token, in order. A model and not a pattern, because argparse decides per token,
//! without context, what is an option (`-b %(h)s` is a bind even after
//! `--access-logformat`). The rules are CPython 3.11's; the option table is gunicorn
//! 27.0.1's (the options acted on and their shortest prefixes are the same from 20.1 on).
//! tests/argparse_differential.rs holds the model to gunicorn's own parser.

/// How many values an option takes, as argparse's `nargs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Arity {
    Flag,
    Value,
    OptionalValue,
}

use Arity::{Flag, OptionalValue, Value};

/// gunicorn 27.0.1's long options (`gunicorn.config.Config().parser()`).
const LONG: &[(&str, Arity)] = &[
    ("help", Flag),
    ("version", Flag),
    ("config", Value),
    ("bind", Value),
    ("backlog", Value),
    ("workers", Value),
    ("worker-class", Value),
    ("threads", Value),
    ("worker-connections", Value),
    ("max-requests", Value),
    ("max-requests-jitter", Value),
    ("timeout", Value),
    ("graceful-timeout", Value),
    ("keep-alive", Value),
    ("limit-request-line", Value),
    ("limit-request-fields", Value),
    ("limit-request-field_size", Value),
    ("reload", Flag),
    ("reload-engine", Value),
    ("reload-extra-file", Value),
    ("spew", Flag),
    ("check-config", Flag),
    ("print-config", Flag),
    ("preload", Flag),
    ("no-sendfile", Flag),
    ("reuse-port", Flag),
    ("chdir", Value),
    ("daemon", Flag),
    ("env", Value),
    ("pid", Value),
    ("worker-tmp-dir", Value),
    ("user", Value),
    ("group", Value),
    ("umask", Value),
    ("initgroups", Flag),
    ("forwarded-allow-ips", Value),
    ("access-logfile", Value),
    ("disable-redirect-access-to-syslog", Flag),
    ("access-logformat", Value),
    ("error-logfile", Value),
    ("log-file", Value),
    ("log-level", Value),
    ("capture-output", Flag),
    ("logger-class", Value),
    ("log-config", Value),
    ("log-config-json", Value),
    ("log-syslog-to", Value),
    ("log-syslog", Flag),
    ("log-syslog-prefix", Value),
    ("log-syslog-facility", Value),
    ("enable-stdio-inheritance", Flag),
    ("statsd-host", Value),
    ("dogstatsd-tags", Value),
    ("statsd-prefix", Value),
    ("enable-backlog-metric", Flag),
    ("name", Value),
    ("pythonpath", Value),
    ("paste", Value),
    ("paster", Value),
    ("proxy-protocol", OptionalValue),
    ("proxy-allow-from", Value),
    ("protocol", Value),
    ("uwsgi-allow-from", Value),
    ("keyfile", Value),
    ("certfile", Value),
    ("ssl-version", Value),
    ("cert-reqs", Value),
    ("ca-certs", Value),
    ("suppress-ragged-eofs", Flag),
    ("do-handshake-on-connect", Flag),
    ("ciphers", Value),
    ("http-protocols", Value),
    ("http2-cleartext", Value),
    ("http2-max-concurrent-streams", Value),
    ("http2-initial-window-size", Value),
    ("http2-max-frame-size", Value),
    ("http2-max-header-list-size", Value),
    ("paste-global", Value),
    ("permit-obsolete-folding", Flag),
    ("strip-header-spaces", Flag),
    ("permit-unconventional-http-method", Flag),
    ("permit-unconventional-http-version", Flag),
    ("casefold-http-method", Flag),
    ("forwarder-headers", Value),
    ("header-map", Value),
    ("asgi-loop", Value),
    ("asgi-lifespan", Value),
    ("asgi-disconnect-grace-period", Value),
    ("websocket-max-message-size", Value),
    ("http-parser", Value),
    ("root-path", Value),
    ("dirty-app", Value),
    ("dirty-workers", Value),
    ("dirty-timeout", Value),
    ("dirty-threads", Value),
    ("dirty-graceful-timeout", Value),
    ("control-socket", Value),
    ("control-socket-mode", Value),
    ("no-control-socket", Flag),
];

/// gunicorn's one-letter options, each an alias of the long option named.
const SHORT: &[(char, &str)] = &[
    ('h', "help"),
    ('v', "version"),
    ('c', "config"),
    ('b', "bind"),
    ('w', "workers"),
    ('k', "worker-class"),
    ('t', "timeout"),
    ('D', "daemon"),
    ('e', "env"),
    ('p', "pid"),
    ('u', "user"),
    ('g', "group"),
    ('m', "umask"),
    ('R', "enable-stdio-inheritance"),
    ('n', "name"),
];

/// An option as the canonical long name plus its arity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Opt {
    name: &'static str,
    arity: Arity,
}

fn long(name: &str) -> Option<Opt> {
    LONG.iter()
        .find(|(n, _)| *n == name)
        .map(|&(name, arity)| Opt { name, arity })
}

fn short(c: char) -> Option<Opt> {
    SHORT
        .iter()
        .find(|(s, _)| *s == c)
        .and_then(|(_, name)| long(name))
}

/// What argparse makes of one token on its own.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Token<'a> {
    /// An argument: a positional, or the value of the option before it.
    Arg,
    /// A long option, resolved (exactly or by unique prefix), with the value
    /// written after `=` if any.
    Long(Opt, Option<&'a str>),
    /// A single-dash option: the first letter's option and the rest of the
    /// token, which `consume_optional` reads as more flags or as the value.
    Short(Opt, Option<&'a str>),
    /// Looks like an option but is unknown or ambiguous: argparse will reject
    /// it; we pass it through untouched.
    Unknown,
}

fn is_negative_number(t: &str) -> bool {
    let Some(rest) = t.strip_prefix('-') else {
        return false;
    };
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    match rest.split_once('.') {
        None => !rest.is_empty() && digits(rest),
        Some((int, frac)) => digits(int) && !frac.is_empty() && digits(frac),
    }
}

/// `_parse_optional` + `_get_option_tuples`, in that order of checks.
fn classify(t: &str) -> Token<'_> {
    if !t.starts_with('-') {
        return Token::Arg;
    }
    if let Some(tok) = exact(t, None) {
        return tok;
    }
    if t.len() == 1 {
        return Token::Arg;
    }
    if let Some((name, value)) = t.split_once('=')
        && let Some(tok) = exact(name, Some(value))
    {
        return tok;
    }
    let matches = option_tuples(t);
    if matches.len() == 1 {
        return matches.into_iter().next().unwrap_or(Token::Unknown);
    }
    if matches.len() > 1 {
        return Token::Unknown;
    }
    if is_negative_number(t) || t.contains(' ') {
        return Token::Arg;
    }
    Token::Unknown
}

fn exact<'a>(t: &str, value: Option<&'a str>) -> Option<Token<'a>> {
    if let Some(name) = t.strip_prefix("--") {
        return long(name).map(|o| Token::Long(o, value));
    }
    let mut chars = t.strip_prefix('-')?.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => short(c).map(|o| Token::Short(o, value)),
        _ => None,
    }
}

fn option_tuples(t: &str) -> Vec<Token<'_>> {
    if let Some(body) = t.strip_prefix("--") {
        let (prefix, value) = match body.split_once('=') {
            Some((p, v)) => (p, Some(v)),
            None => (body, None),
        };
        return LONG
            .iter()
            .filter(|(n, _)| n.starts_with(prefix))
            .map(|&(name, arity)| Token::Long(Opt { name, arity }, value))
            .collect();
    }
    // A single dash: the first letter is the option, the rest its tail.
    let mut chars = t[1..].chars();
    match chars.next().and_then(short) {
        Some(o) => vec![Token::Short(o, Some(chars.as_str()))],
        None => Vec::new(),
    }
}

/// One option occurrence in a short cluster: its letter, and the value
/// written in the same token, if any (only the last letter can have one).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Part<'a> {
    letter: char,
    opt: Opt,
    inline: Option<&'a str>,
}

/// `consume_optional` on a single-dash token: flags may be followed by more
/// letters; the first letter that takes a value takes the rest of the token.
/// `None` when argparse would reject the cluster (we then keep it verbatim).
fn cluster(t: &str) -> Option<Vec<Part<'_>>> {
    let Token::Short(first, mut rest) = classify(t) else {
        return None;
    };
    let mut letter = t[1..].chars().next()?;
    let mut opt = first;
    let mut parts = Vec::new();
    loop {
        match (opt.arity, rest) {
            (Flag, Some(tail)) if !tail.is_empty() => {
                parts.push(Part {
                    letter,
                    opt,
                    inline: None,
                });
                let mut chars = tail.chars();
                letter = chars.next()?;
                opt = short(letter)?;
                rest = Some(chars.as_str()).filter(|s| !s.is_empty());
            }
            (Flag, Some(_)) => return None,
            _ => {
                parts.push(Part {
                    letter,
                    opt,
                    inline: rest,
                });
                return Some(parts);
            }
        }
    }
}

/// What the filter took out, in the user's own spelling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Removed {
    /// A bind and its address (`None` when the option had no value).
    Bind {
        spelling: String,
        address: Option<String>,
    },
    /// `-D`/`--daemon` in any spelling: a daemonising child would look dead.
    Daemon { spelling: String },
}

/// The arguments with every bind and daemon option taken out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filtered {
    pub args: Vec<String>,
    pub removed: Vec<Removed>,
    /// Where, in `args`, a bind put back keeps every other token's meaning
    /// (see `bind_at`): 0, before all of them, but for a rare exception.
    pub bind_at: usize,
}

fn is_drop(opt: Opt) -> bool {
    matches!(opt.name, "bind" | "daemon")
}

/// Removes every bind and daemon option from gunicorn's arguments (the
/// tokens after the program), keeping every other token in order.
pub fn remove_binds(args: &[String]) -> Filtered {
    let mut out = Filtered::default();
    let mut bare_optional = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let t = args[i].as_str();
        i += 1;
        if t == "--" {
            out.args.extend(args[i - 1..].iter().cloned());
            break;
        }
        let next_is_value = |i: usize| args.get(i).is_some_and(|n| classify(n) == Token::Arg);
        match classify(t) {
            Token::Arg | Token::Unknown => out.args.push(t.to_owned()),
            Token::Long(opt, inline) => {
                let takes_next = opt.arity != Flag && inline.is_none() && next_is_value(i);
                let value = inline
                    .map(str::to_owned)
                    .or_else(|| takes_next.then(|| args[i].clone()));
                if is_drop(opt) {
                    out.removed.push(removal(opt, t, takes_next, value));
                } else {
                    if opt.arity == OptionalValue && inline.is_none() && !takes_next {
                        bare_optional.push(out.args.len());
                    }
                    out.args.push(t.to_owned());
                    if takes_next {
                        out.args.push(args[i].clone());
                    }
                }
                i += usize::from(takes_next);
            }
            Token::Short(..) => {
                let Some(parts) = cluster(t) else {
                    out.args.push(t.to_owned());
                    continue;
                };
                let last = &parts[parts.len() - 1];
                let takes_next =
                    last.opt.arity != Flag && last.inline.is_none() && next_is_value(i);
                let next = takes_next.then(|| args[i].clone());
                i += usize::from(takes_next);
                if !parts.iter().any(|p| is_drop(p.opt)) {
                    // Nothing to remove: keep the user's spelling. Rebuilding
                    // could change it (`-n=` is an empty name; `-n` would take
                    // the next argument as the name).
                    out.args.push(t.to_owned());
                    out.args.extend(next);
                    continue;
                }
                out.args
                    .extend(rebuild_cluster(&parts, next, &mut out.removed));
            }
        }
    }
    out.bind_at = bind_at(&out.args, &bare_optional);
    out
}

/// Where the launcher's `--bind` keeps the meaning of every token: right
/// after the program (0), unless an option with an optional value
/// (`--proxy-protocol`) took none because a bind or daemon option followed
/// it, and with that option gone would take the next argument as its value
/// (`--proxy-protocol -b X app` would become `--proxy-protocol app`). Then
/// the launcher's bind goes where the removed option stood, right after it,
/// and nothing else moves. (`--` after it is harmless: argparse never takes
/// `--` as an option's value.) A command line gunicorn accepts has at most
/// one such option: each is followed by positional arguments, and gunicorn's
/// parser refuses positional arguments split by an option. For one it
/// refuses anyway, the last.
fn bind_at(args: &[String], bare_optional: &[usize]) -> usize {
    bare_optional
        .iter()
        .rev()
        .find(|&&at| args.get(at + 1).is_some_and(|n| classify(n) == Token::Arg))
        .map_or(0, |&at| at + 1)
}

/// The value gunicorn's parser gives the long option `name` (e.g.
/// `"graceful-timeout"`), in any spelling (`--graceful-timeout 60`,
/// `--graceful-timeout=60`, a unique prefix such as `--gra 60`), or through
/// its one-letter alias; the last occurrence wins, as with argparse. `None`
/// when absent or written without a value.
pub fn option_value(args: &[String], name: &str) -> Option<String> {
    let mut found = None;
    let mut i = 0;
    while i < args.len() {
        let t = args[i].as_str();
        i += 1;
        if t == "--" {
            break;
        }
        let next_is_value = args.get(i).is_some_and(|n| classify(n) == Token::Arg);
        let (opt, inline) = match classify(t) {
            Token::Long(opt, inline) => (opt, inline),
            Token::Short(..) => match cluster(t).and_then(|parts| parts.last().cloned()) {
                Some(last) => (last.opt, last.inline),
                None => continue,
            },
            Token::Arg | Token::Unknown => continue,
        };
        if opt.arity == Flag {
            continue;
        }
        let value = match inline {
            Some(v) => Some(v.to_owned()),
            None if next_is_value => {
                i += 1;
                Some(args[i - 1].clone())
            }
            None => None,
        };
        if opt.name == name {
            found = value;
        }
    }
    found
}

/// Where gunicorn's `reuse_port` is turned on, as far as it can be seen without running
/// Python: on its command line (`args`), in `GUNICORN_CMD_ARGS` (`cmd_args`), or as a
/// `reuse_port = True` (or `= 1`) line in the config file gunicorn reads (`-c FILE`, else
/// `gunicorn.conf.py`; `read` gives a file's text, relative paths from gunicorn's working
/// directory). `None` when none of them turns it on.
pub fn reuse_port(
    args: &[String],
    cmd_args: &str,
    read: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    if has_option(args, "reuse-port") {
        return Some("--reuse-port on gunicorn's command line".into());
    }
    let env_words = crate::pyshlex::split(cmd_args).unwrap_or_default();
    if has_option(&env_words, "reuse-port") {
        return Some("--reuse-port in GUNICORN_CMD_ARGS".into());
    }
    let file = option_value(args, "config")
        .or_else(|| option_value(&env_words, "config"))
        .unwrap_or_else(|| "gunicorn.conf.py".into());
    if file.starts_with("python:") {
        return None;
    }
    let text = read(&file)?;
    text.lines().enumerate().find_map(|(n, line)| {
        let sets = line
            .trim_start()
            .strip_prefix("reuse_port")
            .map(str::trim_start)
            .and_then(|rest| rest.strip_prefix('='))
            .is_some_and(|value| {
                let value = value.trim_start();
                value.starts_with("True") || value.starts_with('1')
            });
        sets.then(|| format!("{file}:{}: `{}`", n + 1, line.trim()))
    })
}

/// Whether gunicorn's parser reads the option `name` (e.g. `"reuse-port"`) in `args`, in
/// any spelling (a unique prefix, or inside a cluster of short flags), before a `--`.
pub fn has_option(args: &[String], name: &str) -> bool {
    let mut i = 0;
    while i < args.len() {
        let t = args[i].as_str();
        i += 1;
        if t == "--" {
            return false;
        }
        let next_is_value = args.get(i).is_some_and(|n| classify(n) == Token::Arg);
        let parts: Vec<(Opt, Option<&str>)> = match classify(t) {
            Token::Long(opt, inline) => vec![(opt, inline)],
            Token::Short(..) => match cluster(t) {
                Some(parts) => parts.iter().map(|p| (p.opt, p.inline)).collect(),
                None => continue,
            },
            Token::Arg | Token::Unknown => continue,
        };
        if parts.iter().any(|(opt, _)| opt.name == name) {
            return true;
        }
        if let Some((last, inline)) = parts.last()
            && last.arity == Value
            && inline.is_none()
            && next_is_value
        {
            i += 1;
        }
    }
    false
}

fn removal(opt: Opt, spelled: &str, took_next: bool, value: Option<String>) -> Removed {
    let spelling = match (&value, took_next) {
        (Some(v), true) => format!("{spelled} {v}"),
        _ => spelled.to_owned(),
    };
    if opt.name == "bind" {
        Removed::Bind {
            spelling,
            address: value,
        }
    } else {
        Removed::Daemon { spelling }
    }
}

/// Writes a cluster back without its bind and daemon letters. A value that
/// starts with `=` and would now open the token is kept as its own token,
/// because `-w=3` means `3` to argparse but `-Dw=3` meant `=3`.
fn rebuild_cluster(
    parts: &[Part<'_>],
    next: Option<String>,
    removed: &mut Vec<Removed>,
) -> Vec<String> {
    let mut letters = String::new();
    let mut tail: Vec<String> = Vec::new();
    for part in parts {
        let value = part
            .inline
            .map(str::to_owned)
            .or_else(|| (part.opt.arity != Flag).then(|| next.clone()).flatten());
        if is_drop(part.opt) {
            let spelled = match (part.inline, &next) {
                (Some(v), _) => format!("-{}{v}", part.letter),
                (None, Some(n)) if part.opt.arity != Flag => format!("-{} {n}", part.letter),
                _ => format!("-{}", part.letter),
            };
            removed.push(if part.opt.name == "bind" {
                Removed::Bind {
                    spelling: spelled,
                    address: value,
                }
            } else {
                Removed::Daemon { spelling: spelled }
            });
            continue;
        }
        letters.push(part.letter);
        match part.inline {
            Some(v) if letters.len() == 1 && v.starts_with('=') => tail.push(v.to_owned()),
            Some(v) => letters.push_str(v),
            None if part.opt.arity != Flag => tail.extend(next.clone()),
            None => {}
        }
    }
    if letters.is_empty() {
        return Vec::new();
    }
    let mut out = vec![format!("-{letters}")];
    out.extend(tail);
    out
}

#[cfg(test)]
mod tests;
