//! One unit file's text to ordered sections and `Key=Value` entries, as systemd.syntax(7) and
//! systemd's `config_parse()` read it: line ends `\n`, `\r`, `\r\n` (and NUL), comments (`#`
//! or `;` after optional whitespace, also between continuation lines), a trailing unescaped
//! backslash joining the next line with a space (an empty line ends it), whitespace around `=`
//! trimmed, a BOM dropped, the 1 MiB line limit. Where systemd only warns and skips a line,
//! this is an error naming file and line: the installer must not rewrite what it cannot read
//! unambiguously.

use super::UnitError;
use std::path::{Path, PathBuf};

/// One parsed file: ordered sections and entries, each with its 1-based line number, following
/// systemd.syntax(7) (see the module documentation for the exact rules).
///
/// An entry continued over several lines carries the number of its first line (systemd's own
/// messages name the last one), and its value is what systemd sees: each joining backslash
/// replaced by a space, the following line appended as it is, comment lines in between dropped.
/// An empty value (`Key=`) is kept: it means "reset" for list settings (see
/// [`effective`](super::effective)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitFile {
    pub path: PathBuf,
    pub sections: Vec<Section>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub line: usize,
    pub entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

impl UnitFile {
    /// Every entry `key` in every section `section`, in file order.
    pub fn entries<'a>(
        &'a self,
        section: &'a str,
        key: &'a str,
    ) -> impl Iterator<Item = &'a Entry> {
        self.sections
            .iter()
            .filter(move |s| s.name == section)
            .flat_map(|s| s.entries.iter())
            .filter(move |e| e.key == key)
    }
}

/// `LONG_LINE_MAX`: systemd refuses lines (and joined continuation lines) of 1 MiB or more.
const LONG_LINE_MAX: usize = 1024 * 1024;

/// systemd's `WHITESPACE`; deliberately not Unicode whitespace.
pub(super) fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

fn strip_ws(s: &str) -> &str {
    s.trim_matches(is_ws)
}

/// Split like `read_line()`: a line ends at `\n`, `\r`, `\r\n`, `\n\r` or NUL; a final line
/// without terminator counts, a terminator at the very end does not start another line.
fn physical_lines(text: &str) -> Vec<&str> {
    fn eol_kind(b: u8) -> u8 {
        match b {
            b'\n' => 1,
            b'\r' => 2,
            0 => 4,
            _ => 0,
        }
    }
    let bytes = text.as_bytes();
    let mut lines = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && eol_kind(bytes[i]) == 0 {
            i += 1;
        }
        lines.push(&text[start..i]);
        let mut seen = 0u8;
        while i < bytes.len() {
            let kind = eol_kind(bytes[i]);
            if kind == 0 || seen & 4 != 0 || seen & kind != 0 {
                break;
            }
            seen |= kind;
            i += 1;
        }
    }
    lines
}

/// Does the line end in a backslash that is not itself escaped (an odd run of backslashes)?
fn ends_in_continuation(line: &str) -> bool {
    line.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

fn is_comment(line: &str) -> bool {
    matches!(
        line.trim_start_matches(is_ws).chars().next(),
        Some('#' | ';')
    )
}

/// systemd's `string_is_safe()`: no control characters, no quotes, no backslash.
pub(super) fn string_is_safe(s: &str) -> bool {
    !s.chars()
        .any(|c| c < ' ' || c == '\x7f' || matches!(c, '"' | '\'' | '\\'))
}

/// Parse one unit file (or drop-in). `path` is only used to name the file in the result and in
/// errors. Errors: an unterminated or unsafe section header, an assignment before the first
/// section, a line without `=` or without a key, a line of 1 MiB or more.
pub fn parse_unit(path: &Path, text: &str) -> Result<UnitFile, UnitError> {
    let mut file = UnitFile {
        path: path.to_path_buf(),
        sections: Vec::new(),
    };
    let mut bom_seen = false;
    // A pending continuation: the text so far and the number of its first line.
    let mut continuation: Option<(String, usize)> = None;

    for (index, raw) in physical_lines(text).into_iter().enumerate() {
        let number = index + 1;
        if raw.len() >= LONG_LINE_MAX {
            return Err(UnitError::at(path, number, "line too long (1 MiB or more)"));
        }
        if is_comment(raw) {
            continue;
        }
        let mut line = raw;
        if !bom_seen && let Some(rest) = line.strip_prefix('\u{feff}') {
            bom_seen = true;
            line = rest;
            if is_comment(line) {
                continue;
            }
        }
        let (mut logical, first) = match continuation.take() {
            Some((mut joined, first)) => {
                if joined.len() + line.len() > LONG_LINE_MAX {
                    return Err(UnitError::at(
                        path,
                        number,
                        "continued line too long (over 1 MiB)",
                    ));
                }
                joined.push_str(line);
                (joined, first)
            }
            None => (line.to_string(), number),
        };
        // The joined text so far ends in the space that replaced the previous backslash, so
        // looking at the newly appended line alone decides, as systemd's scan over it all does.
        if ends_in_continuation(line) {
            logical.pop();
            logical.push(' ');
            continuation = Some((logical, first));
            continue;
        }
        parse_logical_line(&mut file, &logical, first)?;
    }
    if let Some((logical, first)) = continuation {
        parse_logical_line(&mut file, &logical, first)?;
    }
    Ok(file)
}

fn parse_logical_line(file: &mut UnitFile, line: &str, number: usize) -> Result<(), UnitError> {
    let l = strip_ws(line);
    if l.is_empty() {
        return Ok(());
    }
    if let Some(header) = l.strip_prefix('[') {
        let Some(name) = header.strip_suffix(']') else {
            return Err(UnitError::at(
                &file.path,
                number,
                format!("invalid section header {l:?}: no closing ']'"),
            ));
        };
        if !string_is_safe(name) {
            return Err(UnitError::at(
                &file.path,
                number,
                format!("bad characters in section header {l:?}"),
            ));
        }
        file.sections.push(Section {
            name: name.to_string(),
            line: number,
            entries: Vec::new(),
        });
        return Ok(());
    }
    let path = file.path.clone();
    let Some(section) = file.sections.last_mut() else {
        return Err(UnitError::at(
            &path,
            number,
            format!("assignment outside of any section: {l:?}"),
        ));
    };
    let Some(eq) = l.find('=') else {
        return Err(UnitError::at(
            &path,
            number,
            format!("missing '=' in {l:?}"),
        ));
    };
    if eq == 0 {
        return Err(UnitError::at(
            &path,
            number,
            format!("missing key name before '=' in {l:?}"),
        ));
    }
    section.entries.push(Entry {
        key: strip_ws(&l[..eq]).to_string(),
        value: strip_ws(&l[eq + 1..]).to_string(),
        line: number,
    });
    Ok(())
}

#[cfg(test)]
mod tests;
