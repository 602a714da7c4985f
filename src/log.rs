//! The launcher's own log lines: stderr, one line per event, plain.
//!
//! When stderr is the journal, each line starts with its sd-daemon priority
//! (`<3>` error, `<4>` warning, `<6>` info) so `journalctl -p warning` works.
//! journald reads a prefix at the start of every line, so every message is
//! made one line: text from outside the launcher (another process's command
//! line, an app's answer) cannot start a line of its own, let alone one with
//! a priority of its choosing. "Stderr is the journal" is decided as
//! sd-daemon does: `JOURNAL_STREAM`'s `dev:ino` must equal `fstat(2)`; the
//! variable alone is inherited by children and proves nothing.
//! gunicorn's output never passes through here: it writes to the same
//! stderr directly. `--log-format json` writes one JSON object per line
//! instead, for log shippers (still prefixed when stderr is the journal).

use std::io::Write;
use std::os::fd::AsRawFd;
use std::sync::OnceLock;

/// How lines are written: plain text, or one JSON object per line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
}

static FORMAT: OnceLock<Format> = OnceLock::new();

/// Chooses the format once, at startup (later calls are ignored).
pub fn set_format(format: Format) {
    let _ = FORMAT.set(format);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Error = 3,
    Warning = 4,
    Info = 6,
}

fn stderr_is_journal() -> bool {
    static JOURNAL: OnceLock<bool> = OnceLock::new();
    *JOURNAL.get_or_init(|| {
        let Ok(var) = std::env::var("JOURNAL_STREAM") else {
            return false;
        };
        let Ok(st) = nix::sys::stat::fstat(std::io::stderr().as_raw_fd()) else {
            return false;
        };
        matches_stream(&var, st.st_dev, st.st_ino)
    })
}

/// `JOURNAL_STREAM=dev:ino`, both decimal, as systemd writes it.
fn matches_stream(var: &str, dev: u64, ino: u64) -> bool {
    var.split_once(':')
        .and_then(|(d, i)| Some((d.parse::<u64>().ok()?, i.parse::<u64>().ok()?)))
        == Some((dev, ino))
}

/// `1 crash`, `2 crashes`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `text` on one line: control characters (newlines included) written as
/// escapes (`\n`, `\u{1b}`), so what was there stays visible and nothing
/// reads it as a line, a field or a terminal command.
pub fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// Formats one message on one line: prefixed for the journal, or with the
/// program's name on a terminal or file; in JSON, one object.
pub fn format(level: Level, msg: &str, journal: bool, format: Format) -> String {
    let msg = one_line(msg);
    let msg = msg.as_ref();
    if format == Format::Json {
        let name = match level {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Info => "info",
        };
        let line =
            serde_json::json!({"program": "gunicorn-launcher", "level": name, "message": msg});
        let prefix = if journal {
            format!("<{}>", level as u8)
        } else {
            String::new()
        };
        return format!("{prefix}{line}\n");
    }
    if journal {
        format!("<{}>gunicorn-launcher: {msg}\n", level as u8)
    } else {
        let tag = match level {
            Level::Error => "error: ",
            Level::Warning => "warning: ",
            Level::Info => "",
        };
        format!("gunicorn-launcher: {tag}{msg}\n")
    }
}

pub fn log(level: Level, msg: &str) {
    // One write per message, so lines from gunicorn cannot land inside it.
    let text = format(
        level,
        msg,
        stderr_is_journal(),
        FORMAT.get().copied().unwrap_or_default(),
    );
    let _ = std::io::stderr().write_all(text.as_bytes());
}

pub fn info(msg: &str) {
    log(Level::Info, msg);
}

pub fn warn(msg: &str) {
    log(Level::Warning, msg);
}

pub fn error(msg: &str) {
    log(Level::Error, msg);
}

#[cfg(test)]
mod tests;
