//! One command line of `ExecStart=` and its kin, split into prefixes and words the way
//! systemd's `config_parse_exec()` does, and written back so that systemd reads the same
//! words. The installer keeps the command systemd runs verbatim, so both directions are exact
//! or refuse (a lone `;` separating several commands, escapes that are not UTF-8 text).

use super::syntax::{is_ws, string_is_safe};
use std::borrow::Cow;

/// One command line of `ExecStart=` (or `ExecReload=`, …), split as systemd.service(5)
/// "Command lines" describes.
///
/// `prefixes` holds the special characters in front of the executable exactly as written
/// (`-`, `@`, `:`, `+`, `!`, `!!`); `argv` the unquoted, unescaped words starting with the
/// executable (so with `@` the process's own argv\[0\] is `argv[1]`), specifiers and `$VAR`s
/// untouched; `raw` the value as written.
///
/// Equality compares `prefixes` and `argv` only: two commands are equal when systemd runs the
/// same thing, however the text was spelled.
#[derive(Debug, Clone, Eq)]
pub struct ExecCommand {
    pub prefixes: String,
    pub argv: Vec<String>,
    pub raw: String,
}

impl PartialEq for ExecCommand {
    fn eq(&self, other: &ExecCommand) -> bool {
        self.prefixes == other.prefixes && self.argv == other.argv
    }
}

impl ExecCommand {
    /// Is `c` among the prefixes? (`'!'` is true for both `!` and `!!`.)
    pub fn has_prefix(&self, c: char) -> bool {
        self.prefixes.contains(c)
    }

    /// The argv the process sees, with the executable's path first: for `@/bin/x name a b`
    /// that is `/bin/x a b` (the process sees `name a b`, but what runs is `/bin/x`).
    pub fn program_and_args(&self) -> Vec<&str> {
        let skip = if self.has_prefix('@') { 2 } else { 1 };
        self.argv
            .first()
            .map(String::as_str)
            .into_iter()
            .chain(self.argv.iter().skip(skip).map(String::as_str))
            .collect()
    }
}

/// Split one `ExecStart=` value into prefixes and words (see [`ExecCommand`]). Errors, as
/// systemd's would, on: an empty command, unbalanced quotes, escapes that do not decode to
/// UTF-8 text, an empty, unsafe (quotes, backslash, control characters) or directory-like
/// executable path, `@` without a following argv\[0\] word; and, as systemd would not, on a lone
/// `;` that separates several commands (write `\;` for a literal `;` argument).
pub fn parse_exec(value: &str) -> Result<ExecCommand, String> {
    if value.contains('\0') {
        return Err("command line contains a NUL character".into());
    }
    let bytes = value.as_bytes();
    let mut pos = 0;
    let first = match extract_word(bytes, &mut pos)? {
        Some(word) => word,
        None => return Err("empty command line".into()),
    };
    if first == ";" {
        return Err(separator_error());
    }
    let (prefixes, path) = split_prefixes(&first);
    check_executable(path)?;
    let mut argv = vec![path.to_string()];

    loop {
        let rest = &bytes[pos.min(bytes.len())..];
        if rest.is_empty() {
            break;
        }
        let ends_word = |i: usize| rest.get(i).is_none_or(|&b| is_ws(char::from(b)));
        if rest[0] == b';' && ends_word(1) {
            return Err(separator_error());
        }
        if rest.starts_with(b"\\;") && ends_word(2) {
            argv.push(";".to_string());
            pos += 2;
            while pos < bytes.len() && is_ws(char::from(bytes[pos])) {
                pos += 1;
            }
            continue;
        }
        match extract_word(bytes, &mut pos)? {
            Some(word) => argv.push(word),
            None => break,
        }
    }
    if prefixes.contains('@') && argv.len() < 2 {
        return Err("the '@' prefix needs a second word to use as argv[0]".into());
    }
    Ok(ExecCommand {
        prefixes: prefixes.to_string(),
        argv,
        raw: value.to_string(),
    })
}

fn separator_error() -> String {
    "a lone ';' separates several commands on one line; only a single command is supported \
     (write \\; for a literal ';' argument)"
        .into()
}

/// The prefix state machine of `config_parse_exec()`: each of `-`, `@`, `:` at most once and
/// one of `+`, `!`, `!!`; the first character that does not fit starts the path.
fn split_prefixes(word: &str) -> (&str, &str) {
    let (mut ignore, mut argv0, mut noenv) = (false, false, false);
    let (mut plus, mut bang, mut bangbang) = (false, false, false);
    let mut end = 0;
    for c in word.chars() {
        match c {
            '-' if !ignore => ignore = true,
            '@' if !argv0 => argv0 = true,
            ':' if !noenv => noenv = true,
            '+' if !(plus || bang || bangbang) => plus = true,
            '!' if !(plus || bang || bangbang) => bang = true,
            '!' if !(plus || bangbang) => {
                bang = false;
                bangbang = true;
            }
            _ => break,
        }
        end += 1; // all prefix characters are ASCII
    }
    word.split_at(end)
}

/// The checks `config_parse_exec()` makes on the executable path. A path containing `%` has
/// not been through specifier expansion here, so only the checks that expansion cannot change
/// are made for it.
fn check_executable(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("empty executable path (only prefixes)".into());
    }
    if !string_is_safe(path) {
        return Err(format!(
            "executable name contains special characters: {path:?}"
        ));
    }
    if path.ends_with('/') {
        return Err(format!("executable path specifies a directory: {path:?}"));
    }
    if path.contains('%') {
        return Ok(());
    }
    let valid = if path.starts_with('/') {
        path.len() < 4096 && path.split('/').all(|c| c.len() <= 255)
    } else {
        path.len() <= 255 && path != "." && path != ".." && !path.contains('/')
    };
    if valid {
        Ok(())
    } else {
        Err(format!(
            "neither a valid executable name nor an absolute path: {path:?}"
        ))
    }
}

/// A setting's value split into words as systemd splits `Environment=` (quotes removed,
/// escapes decoded).
pub fn split_words(value: &str) -> Result<Vec<String>, String> {
    let mut pos = 0;
    let mut words = Vec::new();
    while let Some(word) = extract_word(value.as_bytes(), &mut pos)? {
        words.push(word);
    }
    Ok(words)
}

/// `extract_first_word(…, WHITESPACE, EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE)` with systemd's relaxed
/// retry: quotes may start and end anywhere in a word, backslash escapes work inside and outside
/// quotes, an unknown escape is kept verbatim (backslash and the next byte), a trailing unquoted
/// backslash is kept. Returns `None` when only separators are left. On return `pos` is at the
/// start of the next word (or the end).
fn extract_word(s: &[u8], pos: &mut usize) -> Result<Option<String>, String> {
    let sep = |b: u8| is_ws(char::from(b));
    while *pos < s.len() && sep(s[*pos]) {
        *pos += 1;
    }
    if *pos >= s.len() {
        return Ok(None);
    }
    let mut out: Vec<u8> = Vec::new();
    let mut quote = 0u8;
    while *pos < s.len() {
        let c = s[*pos];
        if c == b'\\' {
            *pos += 1;
            let Some(&next) = s.get(*pos) else {
                if quote != 0 {
                    break; // reported below as unbalanced quoting
                }
                out.push(b'\\');
                break;
            };
            match cunescape_one(&s[*pos..]) {
                Some((consumed, decoded)) => {
                    out.extend_from_slice(&decoded);
                    *pos += consumed;
                }
                None => {
                    out.push(b'\\');
                    out.push(next);
                    *pos += 1;
                }
            }
        } else if quote != 0 {
            if c == quote {
                quote = 0;
            } else {
                out.push(c);
            }
            *pos += 1;
        } else if c == b'\'' || c == b'"' {
            quote = c;
            *pos += 1;
        } else if sep(c) {
            while *pos < s.len() && sep(s[*pos]) {
                *pos += 1;
            }
            break;
        } else {
            out.push(c);
            *pos += 1;
        }
    }
    if quote != 0 {
        return Err(format!(
            "unbalanced quoting: {:?}",
            String::from_utf8_lossy(s)
        ));
    }
    String::from_utf8(out)
        .map(Some)
        .map_err(|e| format!("escape sequences produce bytes that are not UTF-8 text: {e}"))
}

/// systemd's `cunescape_one()` (NUL refused): the bytes an escape after a backslash stands for
/// and how many input bytes it used, or `None` for an unknown or invalid escape.
fn cunescape_one(s: &[u8]) -> Option<(usize, Vec<u8>)> {
    let hex = |i: usize| s.get(i).and_then(|&b| char::from(b).to_digit(16));
    let oct = |i: usize| s.get(i).and_then(|&b| char::from(b).to_digit(8));
    let simple = |b: u8| Some((1, vec![b]));
    match *s.first()? {
        b'a' => simple(0x07),
        b'b' => simple(0x08),
        b'f' => simple(0x0c),
        b'n' => simple(b'\n'),
        b'r' => simple(b'\r'),
        b't' => simple(b'\t'),
        b'v' => simple(0x0b),
        b'\\' => simple(b'\\'),
        b'"' => simple(b'"'),
        b'\'' => simple(b'\''),
        b's' => simple(b' '),
        b'x' => {
            let v = (hex(1)? << 4) | hex(2)?;
            (v != 0).then(|| (3, vec![v as u8]))
        }
        b'u' => {
            let v = (1..=4).try_fold(0u32, |acc, i| Some((acc << 4) | hex(i)?))?;
            (v != 0).then(|| (5, encode_unichar(v)))
        }
        b'U' => {
            let v = (1..=8).try_fold(0u32, |acc, i| Some((acc << 4) | hex(i)?))?;
            (v != 0 && unichar_is_valid(v)).then(|| (9, encode_unichar(v)))
        }
        b'0'..=b'7' => {
            let v = (oct(0)? << 6) | (oct(1)? << 3) | oct(2)?;
            (v != 0 && v <= 255).then(|| (3, vec![v as u8]))
        }
        _ => None,
    }
}

/// systemd's `unichar_is_valid()`.
fn unichar_is_valid(c: u32) -> bool {
    c < 0x110000
        && (c & 0xFFFF_F800) != 0xD800
        && !(0xFDD0..=0xFDEF).contains(&c)
        && (c & 0xFFFE) != 0xFFFE
}

/// systemd's `utf8_encode_unichar()`: plain UTF-8 bit packing, which for a surrogate from `\u`
/// yields bytes that are not UTF-8 (and are then refused by the caller).
fn encode_unichar(c: u32) -> Vec<u8> {
    if c < 0x80 {
        vec![c as u8]
    } else if c < 0x800 {
        vec![0xC0 | (c >> 6) as u8, 0x80 | (c & 0x3F) as u8]
    } else if c < 0x10000 {
        vec![
            0xE0 | (c >> 12) as u8,
            0x80 | ((c >> 6) & 0x3F) as u8,
            0x80 | (c & 0x3F) as u8,
        ]
    } else {
        vec![
            0xF0 | ((c >> 18) & 0x07) as u8,
            0x80 | ((c >> 12) & 0x3F) as u8,
            0x80 | ((c >> 6) & 0x3F) as u8,
            0x80 | (c & 0x3F) as u8,
        ]
    }
}

/// Write a command back so that systemd (and [`parse_exec`]) reads the same prefixes and words:
/// `parse_exec(&format_exec(&c)) == c` for every `c` that `parse_exec` returned.
///
/// The quoting rule: a word made only of characters that mean nothing to systemd's unquoting
/// (anything but whitespace, `"`, `'`, `\` and control characters), and that is not a lone `;`,
/// is written bare; every other word is written in double quotes, with `\"`, `\\` and C escapes
/// (`\n`, `\t`, `\xNN`, …) inside. Specifiers (`%i`, `%h`, `%%`) and environment references
/// (`$VAR`, `${VAR}`, `$$`) are ordinary characters to the unquoting — systemd expands them
/// afterwards, word by word (`%x` in every word at load time; `${VAR}` anywhere in a word and
/// `$VAR` only when it is the whole word, split at whitespace into several words, at exec time) —
/// so they survive either way. A whole-word `$VAR` contains no special character and therefore
/// always stays bare, exactly as written; `${VAR}` or `%i` inside a word that needs quotes for
/// other reasons (a space, say) keep working inside the quotes.
///
/// Not representable, because systemd cannot express them either: a NUL character in a word
/// (written as `\x00`, which systemd keeps literally), and an executable path that itself starts
/// with a prefix character not consumed by `prefixes`.
pub fn format_exec(cmd: &ExecCommand) -> String {
    let mut out = cmd.prefixes.clone();
    for (i, word) in cmd.argv.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&quote_word(word));
    }
    out
}

fn quote_word(word: &str) -> Cow<'_, str> {
    let bare = |c: char| !(is_ws(c) || c < ' ' || c == '\x7f' || matches!(c, '"' | '\'' | '\\'));
    if !word.is_empty() && word != ";" && word.chars().all(bare) {
        return Cow::Borrowed(word);
    }
    let mut quoted = String::with_capacity(word.len() + 2);
    quoted.push('"');
    for c in word.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\t' => quoted.push_str("\\t"),
            '\r' => quoted.push_str("\\r"),
            '\x07' => quoted.push_str("\\a"),
            '\x08' => quoted.push_str("\\b"),
            '\x0b' => quoted.push_str("\\v"),
            '\x0c' => quoted.push_str("\\f"),
            c if c < ' ' || c == '\x7f' => quoted.push_str(&format!("\\x{:02x}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    Cow::Owned(quoted)
}

#[cfg(test)]
mod tests;
