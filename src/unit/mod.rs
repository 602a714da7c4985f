//! Reading systemd unit files the way systemd 252 reads them: pure discovery, no side effects.
//!
//! The installer must find the units whose *effective* `ExecStart=` runs gunicorn and wrap that
//! command verbatim. Getting this wrong means wrapping a command that systemd does not actually
//! run, or mangling one that it does, so this module copies systemd's own rules rather than
//! approximating them. Nothing here writes, spawns or talks to systemd; every function is a pure
//! function of its arguments and of the files under `root`.
//!
//! The layers, bottom up:
//!
//! * [`UnitName`]: a name validated like `unit_name_is_valid()` (so no `/`, no `..` can ever
//!   reach a path built from it), with template/instance handling.
//! * [`parse_unit`]: one file to ordered sections and `Key=Value` entries, following
//!   systemd.syntax(7) and `config_parse()`: line ends `\n`, `\r`, `\r\n` (and NUL) as
//!   `read_line()` sees them, comments (`#`/`;` after optional whitespace, also between
//!   continuation lines), a trailing unescaped backslash joining the next line with a space
//!   (an empty line ends the continuation), whitespace around `=` trimmed, a UTF-8 BOM dropped,
//!   the 1 MiB line limit. Where systemd only warns and skips a line (assignment before any
//!   section, a line without `=`, an empty key), this parser returns an error naming file and
//!   line instead: the installer must not rewrite what it cannot read unambiguously.
//! * [`parse_exec`] / [`format_exec`]: one command line of `ExecStart=` and friends split the
//!   way `config_parse_exec()` + `extract_first_word(EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE)` do it,
//!   including the prefix rules, quotes anywhere in a word, C escapes, the relaxed retry that
//!   keeps unknown escapes (`\q`) verbatim, `\;` and the lone `;` separator (refused here).
//! * [`search_path`], [`load_unit`], [`effective`], [`list_service_units`]: the unit as the
//!   manager sees it: the name map of `unit_file_build_name_map()` (aliases, linked units,
//!   masks), fragment lookup with template fallback, and the drop-in directories of
//!   `unit_file_find_dropin_paths()` (per name, template, dash-prefix and type-level, in search
//!   path priority) merged like `conf_files_list_strv()`.
//! * [`runs_gunicorn`]: the four launch forms, decided by `launch::recognise` (one rule for
//!   `run` and `install`).
//!
//! Paths under `root` are resolved by this module itself, symlink by symlink, with `root` acting
//! as `/` (like systemd's `chase(…, root)`): an absolute link target such as `/opt/app/x.service`
//! or `/dev/null` means the file inside `root`, and `..` can never climb out of `root`. Reported
//! paths are the paths in the search directory (`<root>/etc/systemd/system/x.service`), never the
//! resolved link targets, except for aliases, whose unit *is* the target unit (as `FragmentPath=`
//! shows it).
//!
//! Deliberately different from systemd, always by refusing rather than guessing: the syntax
//! errors above; several commands on one line separated by a lone `;` (legal for
//! `Type=oneshot`, never a gunicorn service); escapes that produce bytes that are not UTF-8
//! (systemd passes such bytes through; words here are `String`s); unit names starting with `.`.
//!
//! Deliberately left out: specifier and environment expansion (words keep `%i`, `$VAR`, `${VAR}`
//! verbatim), `$SYSTEMD_UNIT_PATH`, user units, `.include`, `.wants`/`.requires` directories,
//! transient units that exist only in the manager's memory, checking that specifiers are known
//! ones, and the rule that a `-`-prefixed command line systemd cannot parse is silently dropped
//! (here it is an error like any other).
//!
//! Checked against the real thing on every test run (tests/unit_oracle.rs): a systemd 252
//! booted in private namespaces loads every fixture tree of tests/fixtures/units (quoting,
//! escapes, continuations, CR/CRLF/BOM, resets, prefixes, templates and instances, type-level
//! and masked drop-ins, aliases, linked and masked units, malformed files) and must report
//! what this module reads: fragment, drop-ins and their order, names, every `Exec*=` argv and
//! its flags, `WorkingDirectory`, `Environment`; a unit refused here must be one systemd does
//! not load, except for an assignment outside any section, refused here on purpose (systemd
//! ignores the line, and would run such a unit without its `User=`). It also reads back 120
//! random commands written by [`format_exec`] as exactly the words they were made of.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// What went wrong, and where: `path:line: message` when both are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitError {
    pub path: Option<PathBuf>,
    pub line: Option<usize>,
    pub message: String,
}

impl UnitError {
    fn new(message: impl Into<String>) -> UnitError {
        UnitError {
            path: None,
            line: None,
            message: message.into(),
        }
    }

    fn in_file(path: &Path, message: impl Into<String>) -> UnitError {
        UnitError {
            path: Some(path.to_path_buf()),
            line: None,
            message: message.into(),
        }
    }

    fn at(path: &Path, line: usize, message: impl Into<String>) -> UnitError {
        UnitError {
            path: Some(path.to_path_buf()),
            line: Some(line),
            message: message.into(),
        }
    }
}

impl fmt::Display for UnitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.path, self.line) {
            (Some(path), Some(line)) => write!(f, "{}:{}: {}", path.display(), line, self.message),
            (Some(path), None) => write!(f, "{}: {}", path.display(), self.message),
            (None, Some(line)) => write!(f, "line {}: {}", line, self.message),
            (None, None) => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for UnitError {}

// ---------------------------------------------------------------------------------------------
// Unit names
// ---------------------------------------------------------------------------------------------

/// The unit types systemd 252 knows; a unit name must end in one of them.
const UNIT_TYPES: [&str; 11] = [
    "service",
    "socket",
    "device",
    "mount",
    "automount",
    "swap",
    "target",
    "path",
    "timer",
    "slice",
    "scope",
];

/// `UNIT_NAME_MAX` is 256 including the terminating NUL.
const UNIT_NAME_MAX: usize = 255;

/// A unit name validated by systemd's `unit_name_is_valid()` rules: only `[A-Za-z0-9:_.\-@]`
/// and `\`, a known type suffix, at most 255 bytes, not starting with `@`. The first `@` before
/// the suffix separates prefix and instance (`foo@.service` is a template, `foo@bar.service` an
/// instance of it; like systemd, the instance may itself contain `@`). Stricter than systemd in
/// one point: a name may not start with `.` (a hidden file, never a unit anyone means).
/// A valid name never contains `/`, so joining it to a directory cannot leave that directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnitName(String);

impl UnitName {
    pub fn parse(s: &str) -> Result<UnitName, UnitError> {
        validate_unit_name(s)
            .map(|()| UnitName(s.to_string()))
            .map_err(|why| UnitError::new(format!("invalid unit name {s:?}: {why}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `(prefix, instance, type)`; instance is `Some("")` for a template.
    fn parts(&self) -> (&str, Option<&str>, &str) {
        let dot = self.0.rfind('.').unwrap_or(self.0.len());
        let stem = &self.0[..dot];
        let ty = self.0.get(dot + 1..).unwrap_or("");
        match stem.find('@') {
            Some(at) => (&stem[..at], Some(&stem[at + 1..]), ty),
            None => (stem, None, ty),
        }
    }

    /// The type suffix without its dot: `service`, `socket`, …
    pub fn unit_type(&self) -> &str {
        self.parts().2
    }

    pub fn is_service(&self) -> bool {
        self.unit_type() == "service"
    }

    /// The part before `@` (or before the suffix for a plain name).
    pub fn prefix(&self) -> &str {
        self.parts().0
    }

    /// `foo@.service`.
    pub fn is_template(&self) -> bool {
        self.parts().1 == Some("")
    }

    /// `foo@bar.service`.
    pub fn is_instance(&self) -> bool {
        self.instance().is_some()
    }

    /// For an instance `foo@bar.service`, its template `foo@.service`; `None` for plain names
    /// and for templates themselves.
    pub fn template(&self) -> Option<UnitName> {
        let (prefix, instance, ty) = self.parts();
        match instance {
            Some(i) if !i.is_empty() => Some(UnitName(format!("{prefix}@.{ty}"))),
            _ => None,
        }
    }

    /// For `foo@bar.service`, `"bar"`; `None` for plain names and templates.
    pub fn instance(&self) -> Option<&str> {
        match self.parts().1 {
            Some(i) if !i.is_empty() => Some(i),
            _ => None,
        }
    }

    /// `foo@.service` or `foo@x.service` with `instance` → `foo@instance.service`.
    pub fn with_instance(&self, instance: &str) -> Result<UnitName, UnitError> {
        let (prefix, current, ty) = self.parts();
        if current.is_none() {
            return Err(UnitError::new(format!(
                "{} is neither a template nor an instance",
                self.0
            )));
        }
        UnitName::parse(&format!("{prefix}@{instance}.{ty}"))
    }
}

impl fmt::Display for UnitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for UnitName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for UnitName {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<UnitName, UnitError> {
        UnitName::parse(s)
    }
}

fn validate_unit_name(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("it is empty".into());
    }
    if s.len() > UNIT_NAME_MAX {
        return Err(format!("it is longer than {UNIT_NAME_MAX} bytes"));
    }
    if s.contains('/') {
        return Err("it contains '/'".into());
    }
    if s.starts_with('.') {
        return Err("it starts with '.'".into());
    }
    let Some(dot) = s.rfind('.') else {
        return Err("it has no type suffix such as .service".into());
    };
    let ty = &s[dot + 1..];
    if !UNIT_TYPES.contains(&ty) {
        return Err(format!("unknown unit type suffix .{ty}"));
    }
    let stem = &s[..dot];
    if let Some(c) = stem
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || ":-_.\\@".contains(c)))
    {
        return Err(format!("it contains the character {c:?}"));
    }
    if stem.starts_with('@') {
        return Err("it starts with '@'".into());
    }
    Ok(())
}

/// systemd's `unit_validate_alias_symlink_or_warn()`: may `src` be a symlink to `dst`?
fn alias_is_valid(src: &UnitName, dst: &str) -> bool {
    let Ok(dst) = UnitName::parse(dst) else {
        return false;
    };
    if src == &dst {
        return false; // self-alias: ignored by systemd
    }
    if matches!(
        src.unit_type(),
        "device" | "mount" | "swap" | "scope" | "slice"
    ) {
        return false; // these types may not be aliased (unit_type_may_alias)
    }
    let kind = |n: &UnitName| match n.parts().1 {
        None => 0,
        Some("") => 1,
        Some(_) => 2,
    };
    let (ks, kd) = (kind(src), kind(&dst));
    if !(ks == kd || (ks == 2 && kd == 1)) {
        return false;
    }
    if kd == 2 && src.instance() != dst.instance() {
        return false;
    }
    src.unit_type() == dst.unit_type()
}

// ---------------------------------------------------------------------------------------------
// Unit file syntax
// ---------------------------------------------------------------------------------------------

/// One parsed file: ordered sections and entries, each with its 1-based line number, following
/// systemd.syntax(7) (see the module documentation for the exact rules).
///
/// An entry continued over several lines carries the number of its first line (systemd's own
/// messages name the last one), and its value is what systemd sees: each joining backslash
/// replaced by a space, the following line appended as it is, comment lines in between dropped.
/// An empty value (`Key=`) is kept: it means "reset" for list settings (see [`effective`]).
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
fn is_ws(c: char) -> bool {
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
fn string_is_safe(s: &str) -> bool {
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

// ---------------------------------------------------------------------------------------------
// Command lines
// ---------------------------------------------------------------------------------------------

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

    /// Does this command run gunicorn in one of the four launch forms (see [`runs_gunicorn`])?
    pub fn runs_gunicorn(&self) -> bool {
        runs_gunicorn(&self.program_and_args())
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

// ---------------------------------------------------------------------------------------------
// Recognising gunicorn
// ---------------------------------------------------------------------------------------------

/// Does this argv (executable first) run gunicorn in one of the four launch forms that
/// `gunicorn-launcher run` accepts: `gunicorn …`, `/path/to/gunicorn …`, `python [OPTS] -m
/// gunicorn …`, `python [OPTS] /path/bin/gunicorn …`? This is [`crate::launch::recognise`] itself,
/// so the installer wraps exactly the commands that `run` will accept. The words are compared
/// as written, unexpanded: an executable given as `$VAR`, `${VAR}` or a specifier (`%I`) is not
/// recognised; a path whose directory holds a specifier (`%h/venv/bin/gunicorn`) is.
pub fn runs_gunicorn<S: AsRef<str>>(argv: &[S]) -> bool {
    let argv: Vec<String> = argv.iter().map(|s| s.as_ref().to_string()).collect();
    crate::launch::recognise(&argv).is_ok()
}

// ---------------------------------------------------------------------------------------------
// Paths inside a root
// ---------------------------------------------------------------------------------------------

/// The system unit search path of systemd 252 as built for Debian 12 (`systemd-analyze
/// unit-paths`), highest priority first, relative to the root.
const SEARCH_DIRS: [&str; 13] = [
    "etc/systemd/system.control",
    "run/systemd/system.control",
    "run/systemd/transient",
    "run/systemd/generator.early",
    "etc/systemd/system",
    "etc/systemd/system.attached",
    "run/systemd/system",
    "run/systemd/system.attached",
    "run/systemd/generator",
    "usr/local/lib/systemd/system",
    "lib/systemd/system",
    "usr/lib/systemd/system",
    "run/systemd/generator.late",
];

/// Where the administrator's units and drop-ins live: `<root>/etc/systemd/system`.
pub const ADMIN_UNIT_DIR: &str = "etc/systemd/system";

/// Where systemd looks for system units, highest priority first, each under `root` (`/` on a
/// live system). This is systemd 252's complete list, which contains the five well-known
/// directories (`/etc/systemd/system`, `/run/systemd/system`, `/usr/local/lib/systemd/system`,
/// `/lib/systemd/system`, `/usr/lib/systemd/system`) in their relative order plus the control,
/// transient, attached and generator directories that can also hold units and drop-ins. As on
/// Debian, `/lib` comes before `/usr/lib` (on a merged-/usr system they are one directory).
/// The administrator's directory, where an installer writes, is [`ADMIN_UNIT_DIR`].
pub fn search_path(root: &Path) -> Vec<PathBuf> {
    SEARCH_DIRS.iter().map(|dir| root.join(dir)).collect()
}

/// Symlinks followed before giving up (systemd's `CHASE_MAX`).
const CHASE_MAX: usize = 32;

/// `logical` (an absolute path as seen inside `root`) as a path on this machine.
fn real_path(root: &Path, logical: &Path) -> PathBuf {
    root.join(logical.strip_prefix("/").unwrap_or(logical))
}

/// Resolve symlinks in `logical` with `root` acting as `/`, like systemd's `chase()` with
/// `CHASE_NONEXISTENT` (missing components are kept lexically) and, unless `follow_last`,
/// `CHASE_NOFOLLOW`. `..` never climbs above `root`. Returns the resolved logical path, or
/// `None` after too many symlinks (a loop).
fn chase(root: &Path, logical: &Path, follow_last: bool) -> Option<PathBuf> {
    fn push_components(todo: &mut VecDeque<OsString>, path: &Path) {
        let mut front: Vec<OsString> = Vec::new();
        for component in path.components() {
            match component {
                Component::Normal(c) => front.push(c.to_os_string()),
                Component::ParentDir => front.push("..".into()),
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            }
        }
        for c in front.into_iter().rev() {
            todo.push_front(c);
        }
    }

    let mut todo = VecDeque::new();
    push_components(&mut todo, logical);
    let mut done = PathBuf::from("/");
    let mut hops = 0;
    while let Some(component) = todo.pop_front() {
        if component == ".." {
            done.pop();
            continue;
        }
        let candidate = done.join(&component);
        let follow = follow_last || !todo.is_empty();
        let real = real_path(root, &candidate);
        match fs::symlink_metadata(&real) {
            Ok(meta) if meta.file_type().is_symlink() && follow => {
                hops += 1;
                if hops > CHASE_MAX {
                    return None;
                }
                let Ok(target) = fs::read_link(&real) else {
                    done = candidate;
                    continue;
                };
                if target.is_absolute() {
                    done = PathBuf::from("/");
                }
                push_components(&mut todo, &target);
            }
            _ => done = candidate,
        }
    }
    Some(done)
}

/// What a unit file path turns out to be once its symlinks are followed.
enum FileState {
    /// Symlinked to `/dev/null`, a character device, or empty: a mask.
    Masked,
    /// Something to read, at this machine path.
    Readable(PathBuf),
    /// Not there (a dangling symlink, a vanished file).
    Missing,
    /// A directory, something else that is not a file, or a symlink loop.
    Broken(String),
}

fn inspect(root: &Path, logical: &Path) -> FileState {
    let Some(resolved) = chase(root, logical, true) else {
        return FileState::Broken("too many levels of symbolic links".into());
    };
    if resolved == Path::new("/dev/null") {
        return FileState::Masked;
    }
    let real = real_path(root, &resolved);
    match fs::metadata(&real) {
        Ok(meta) if meta.file_type().is_file() => {
            if meta.len() == 0 {
                FileState::Masked
            } else {
                FileState::Readable(real)
            }
        }
        Ok(meta) if is_char_device(&meta) => FileState::Masked,
        Ok(meta) if meta.is_dir() => FileState::Broken("is a directory".into()),
        Ok(_) => FileState::Broken("is not a regular file".into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => FileState::Missing,
        Err(e) if e.raw_os_error() == Some(20) => FileState::Missing, // ENOTDIR
        Err(e) => FileState::Broken(e.to_string()),
    }
}

fn is_char_device(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    meta.file_type().is_char_device()
}

/// Read and parse the file at `logical` (inside `root`), naming it `shown` in the result.
/// A mask reads as an empty file.
fn read_unit_file(root: &Path, logical: &Path, shown: &Path) -> Result<UnitFile, UnitError> {
    let text = match inspect(root, logical) {
        FileState::Masked => String::new(),
        FileState::Missing => {
            return Err(UnitError::in_file(
                shown,
                "cannot read: no such file (a dangling symlink?)",
            ));
        }
        FileState::Broken(why) => {
            return Err(UnitError::in_file(shown, format!("cannot read: {why}")));
        }
        FileState::Readable(real) => {
            let bytes = fs::read(&real)
                .map_err(|e| UnitError::in_file(shown, format!("cannot read: {e}")))?;
            String::from_utf8(bytes)
                .map_err(|_| UnitError::in_file(shown, "not valid UTF-8 text"))?
        }
    };
    parse_unit(shown, &text)
}

/// Component-wise `path_startswith()`.
fn path_tail<'a>(path: &'a Path, dir: &Path) -> Option<&'a Path> {
    path.strip_prefix(dir).ok()
}

// ---------------------------------------------------------------------------------------------
// The name map
// ---------------------------------------------------------------------------------------------

/// What a name in the search path stands for.
#[derive(Debug, Clone)]
enum Target {
    /// A fragment: a regular file, a linked unit (symlink out of the search path) or a mask,
    /// given by its logical path in the search directory.
    File(PathBuf),
    /// An alias: a symlink to another unit file in the search path, by that file's name.
    Alias(String),
}

enum MapError {
    NotFound,
    Loop,
}

/// systemd's `unit_file_build_name_map()`: every name in the search path and what it stands
/// for (first directory wins), plus the reverse map of aliases.
#[derive(Debug, Clone)]
struct NameMap {
    root: PathBuf,
    dirs: Vec<PathBuf>,
    ids: HashMap<String, Target>,
    aliases: HashMap<String, Vec<String>>,
}

impl NameMap {
    fn build(root: &Path) -> NameMap {
        let dirs: Vec<PathBuf> = SEARCH_DIRS.iter().map(|d| Path::new("/").join(d)).collect();
        // Directories themselves may be symlinks (/lib -> usr/lib): a link into a resolved
        // directory still points into the search path.
        let mut expanded = dirs.clone();
        for dir in &dirs {
            if let Some(resolved) = chase(root, dir, true)
                && !expanded.contains(&resolved)
            {
                expanded.push(resolved);
            }
        }

        let mut ids: HashMap<String, Target> = HashMap::new();
        for dir in &dirs {
            let Some(resolved) = chase(root, dir, true) else {
                continue;
            };
            let Ok(listing) = fs::read_dir(real_path(root, &resolved)) else {
                continue;
            };
            let mut entries: Vec<(String, bool)> = listing
                .filter_map(Result::ok)
                .filter_map(|entry| {
                    let kind = entry.file_type().ok()?;
                    let name = entry.file_name().into_string().ok()?;
                    (kind.is_file() || kind.is_symlink()).then_some((name, kind.is_symlink()))
                })
                .collect();
            entries.sort();
            for (name, is_link) in entries {
                let Ok(unit) = UnitName::parse(&name) else {
                    continue;
                };
                if ids.contains_key(&name) {
                    continue;
                }
                let path = dir.join(&name);
                let target = if is_link {
                    match Self::resolve_link(root, dir, &path, &unit, &expanded) {
                        Some(target) => target,
                        None => continue,
                    }
                } else {
                    Target::File(path)
                };
                ids.insert(name, target);
            }
        }

        let mut map = NameMap {
            root: root.to_path_buf(),
            dirs,
            ids,
            aliases: HashMap::new(),
        };
        map.aliases = map.reverse();
        map
    }

    /// systemd's `unit_file_resolve_symlink()`: a link whose target stays in the search path is
    /// an alias (if valid), anything else is a linked unit file or a mask, known by the link's
    /// own path. `None`: an invalid alias, ignored.
    fn resolve_link(
        root: &Path,
        dir: &Path,
        path: &Path,
        unit: &UnitName,
        expanded: &[PathBuf],
    ) -> Option<Target> {
        let target = fs::read_link(real_path(root, path)).ok()?;
        let absolute = if target.is_absolute() {
            target
        } else {
            dir.join(target)
        };
        let simplified = chase(root, &absolute, false)?;
        if expanded.iter().any(|d| path_tail(&simplified, d).is_some()) {
            let name = simplified.file_name()?.to_str()?.to_string();
            alias_is_valid(unit, &name).then_some(Target::Alias(name))
        } else {
            Some(Target::File(path.to_path_buf()))
        }
    }

    /// systemd's `unit_ids_map_get()`: follow aliases (at most 8) to a file; an alias to an
    /// instance without a file of its own continues at its template.
    fn fragment(&self, name: &str) -> Result<&PathBuf, MapError> {
        let mut id: Option<&str> = None;
        for _ in 0..8 {
            let key = id.unwrap_or(name);
            let target = match self.ids.get(key) {
                Some(t) => t,
                None => {
                    if id.is_none() {
                        return Err(MapError::NotFound);
                    }
                    let template = UnitName::parse(key)
                        .ok()
                        .and_then(|n| n.template())
                        .ok_or(MapError::NotFound)?;
                    self.ids.get(template.as_str()).ok_or(MapError::NotFound)?
                }
            };
            match target {
                Target::File(path) => return Ok(path),
                Target::Alias(next) => id = Some(next),
            }
        }
        Err(MapError::Loop)
    }

    /// The reverse map: unit file name → every name that resolves to it.
    fn reverse(&self) -> HashMap<String, Vec<String>> {
        let mut names: HashMap<String, Vec<String>> = HashMap::new();
        let mut sources: Vec<&String> = self.ids.keys().collect();
        sources.sort();
        for src in sources {
            let Ok(path) = self.fragment(src) else {
                continue;
            };
            if matches!(inspect(&self.root, path), FileState::Masked) {
                continue;
            }
            let Some(mut dst) = path.file_name().and_then(|n| n.to_str()).map(String::from) else {
                continue;
            };
            if let (Ok(d), Ok(s)) = (UnitName::parse(&dst), UnitName::parse(src))
                && let (true, Some(instance)) = (d.is_template(), s.instance())
            {
                match d.with_instance(instance) {
                    Ok(n) => dst = n.0,
                    Err(_) => continue,
                }
            }
            names.entry(dst).or_default().push(src.clone());
        }
        names
    }

    /// systemd's `add_names()`.
    fn add_names(
        &self,
        unit: &UnitName,
        fragment_basename: Option<&str>,
        name: &str,
        names: &mut Vec<String>,
    ) {
        let mut add = |n: String| {
            if !names.contains(&n) {
                names.push(n);
            }
        };
        if !unit.is_template() {
            add(name.to_string());
        }
        for alias in self.aliases.get(name).into_iter().flatten() {
            let alias_name = UnitName::parse(alias).ok();
            match (unit.instance(), alias_name.filter(UnitName::is_template)) {
                (Some(instance), Some(template)) => {
                    let Ok(inst) = template.with_instance(instance) else {
                        continue;
                    };
                    if let (Ok(found), Some(fb)) = (self.fragment(inst.as_str()), fragment_basename)
                        && found.file_name().and_then(|n| n.to_str()) != Some(fb)
                    {
                        continue; // that instance is its own unit, not an alias of ours
                    }
                    add(inst.0);
                }
                _ => add(alias.clone()),
            }
        }
    }

    /// systemd's `unit_file_find_fragment()` plus the choice of the unit's id: the fragment's
    /// logical path (if any) and the unit's names, the id first.
    fn find(&self, unit: &UnitName) -> Result<(Option<PathBuf>, Vec<UnitName>), UnitError> {
        let mut names = Vec::new();
        self.add_names(unit, None, unit.as_str(), &mut names);

        let loop_error = |n: &str| UnitError::new(format!("{n}: too many levels of aliases"));
        let mut fragment = match self.fragment(unit.as_str()) {
            Ok(path) => Some(path.clone()),
            Err(MapError::NotFound) => None,
            Err(MapError::Loop) => return Err(loop_error(unit.as_str())),
        };
        if fragment.is_none()
            && let Some(template) = unit.template()
        {
            fragment = match self.fragment(template.as_str()) {
                Ok(path) => Some(path.clone()),
                Err(MapError::NotFound) => None,
                Err(MapError::Loop) => return Err(loop_error(template.as_str())),
            };
        }

        let mut id = unit.clone();
        if let Some(base) = fragment
            .as_ref()
            .and_then(|f| f.file_name())
            .and_then(|n| n.to_str())
        {
            if base != unit.as_str() {
                self.add_names(unit, Some(base), base, &mut names);
            }
            if let Ok(base) = UnitName::parse(base) {
                id = match (base.is_template(), unit.instance()) {
                    (true, Some(instance)) => base.with_instance(instance).unwrap_or(base),
                    _ => base,
                };
            }
        }

        // Templates among the names stand for the instance (`unit_merge_by_name()`).
        let mut out = vec![id];
        for name in names {
            let Ok(mut n) = UnitName::parse(&name) else {
                continue;
            };
            if n.is_template() {
                match unit.instance().map(|i| n.with_instance(i)) {
                    Some(Ok(inst)) => n = inst,
                    _ => continue,
                }
            }
            if !out.contains(&n) {
                out.push(n);
            }
        }
        out[1..].sort();
        Ok((fragment, out))
    }

    /// systemd's `unit_file_find_dirs()` for one search directory and one name: `<name>.d`,
    /// for an instance also the template's, then the same for each dash-truncated prefix
    /// (`foo-bar-baz.service` → `foo-bar-.service`, `foo-.service`).
    fn dropin_dirs_for(&self, dir: &Path, name: &str, out: &mut Vec<PathBuf>) {
        let candidate = dir.join(format!("{name}.d"));
        if let Some(resolved) = chase(&self.root, &candidate, true)
            && real_path(&self.root, &resolved).is_dir()
        {
            out.push(candidate);
        }
        if UNIT_TYPES.contains(&name) {
            return; // the type-level directory has no template or prefixes
        }
        let Ok(unit) = UnitName::parse(name) else {
            return;
        };
        if let Some(template) = unit.template() {
            self.dropin_dirs_for(dir, template.as_str(), out);
        }
        let mut prefix = unit.prefix().to_string();
        let mut chopped = false;
        loop {
            let Some(dash) = prefix.rfind('-') else {
                return;
            };
            if dash == 0 {
                return;
            }
            if dash + 1 < prefix.len() || chopped {
                prefix.truncate(dash + 1);
                break;
            }
            prefix.truncate(dash);
            chopped = true;
        }
        let built = match unit.instance() {
            Some(instance) => format!("{prefix}@{instance}.{}", unit.unit_type()),
            None => format!("{prefix}.{}", unit.unit_type()),
        };
        if UnitName::parse(&built).is_ok() {
            self.dropin_dirs_for(dir, &built, out);
        }
    }

    /// systemd's `unit_file_find_dropin_paths()` + `conf_files_list_strv()`: the `*.conf`
    /// files of all drop-in directories; a file name seen in an earlier directory hides the
    /// same name later; the result sorted by file name.
    fn dropins(&self, names: &[UnitName]) -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        for name in names {
            for dir in &self.dirs {
                self.dropin_dirs_for(dir, name.as_str(), &mut dirs);
            }
        }
        if let Some(first) = names.first() {
            for dir in &self.dirs {
                self.dropin_dirs_for(dir, first.unit_type(), &mut dirs);
            }
        }
        let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
        for dir in dirs {
            let Some(resolved) = chase(&self.root, &dir, true) else {
                continue;
            };
            let Ok(listing) = fs::read_dir(real_path(&self.root, &resolved)) else {
                continue;
            };
            for entry in listing.filter_map(Result::ok) {
                let Ok(file) = entry.file_name().into_string() else {
                    continue;
                };
                if file.starts_with('.') || !file.ends_with(".conf") {
                    continue;
                }
                files.entry(file.clone()).or_insert_with(|| dir.join(&file));
            }
        }
        files.into_values().collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Loading units
// ---------------------------------------------------------------------------------------------

/// A unit as systemd sees it. Paths are machine paths under the root; `fragment` is the unit
/// file's path in its search directory (for an alias: the aliased unit's file; for an instance
/// without a file of its own: the template's), `dropins` the drop-ins in the order they apply,
/// `files` the parsed fragment followed by the parsed drop-ins. A masked unit (its file a
/// symlink to `/dev/null` or empty) has `masked` set and no files. `names` lists every name
/// the unit is known by, systemd's id (from the fragment's name) first, then aliases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedUnit {
    pub name: UnitName,
    pub fragment: PathBuf,
    pub dropins: Vec<PathBuf>,
    pub files: Vec<UnitFile>,
    pub masked: bool,
    pub names: Vec<UnitName>,
}

/// The unit search path under one root, indexed once: which names exist, where their files are,
/// which names are aliases of which (systemd's name map, rebuilt by `daemon-reload`). Loading
/// many units through one index reads each search directory once instead of once per unit.
/// The index is a snapshot of the names; drop-ins and file contents are read at [`load`] time,
/// so after adding or removing a *unit file or alias* build a new index.
///
/// [`load`]: UnitIndex::load
#[derive(Debug, Clone)]
pub struct UnitIndex {
    map: NameMap,
}

impl UnitIndex {
    pub fn new(root: &Path) -> UnitIndex {
        UnitIndex {
            map: NameMap::build(root),
        }
    }

    pub fn root(&self) -> &Path {
        &self.map.root
    }

    /// Load `name` (see [`load_unit`]).
    pub fn load(&self, name: &UnitName) -> Result<LoadedUnit, UnitError> {
        let root = self.root();
        let (fragment, names) = self.map.find(name)?;
        let Some(fragment) = fragment else {
            return Err(UnitError::new(format!(
                "unit {name} not found in the unit search path under {}",
                root.display()
            )));
        };
        let shown = real_path(root, &fragment);
        if let FileState::Masked = inspect(root, &fragment) {
            return Ok(LoadedUnit {
                name: name.clone(),
                fragment: shown,
                dropins: Vec::new(),
                files: Vec::new(),
                masked: true,
                names,
            });
        }
        let mut files = vec![read_unit_file(root, &fragment, &shown)?];
        let mut dropins = Vec::new();
        for dropin in self.map.dropins(&names) {
            // A dangling drop-in symlink only hides lower drop-ins of its name; systemd skips
            // such a file (ENOENT) too.
            if let FileState::Missing = inspect(root, &dropin) {
                continue;
            }
            let shown = real_path(root, &dropin);
            files.push(read_unit_file(root, &dropin, &shown)?);
            dropins.push(shown);
        }
        Ok(LoadedUnit {
            name: name.clone(),
            fragment: shown,
            dropins,
            files,
            masked: false,
            names,
        })
    }

    /// The service units of this root (see [`list_service_units`]).
    pub fn service_units(&self) -> Vec<UnitName> {
        self.units_of_type("service")
    }

    /// The units of type `ty` (`"service"`, `"socket"`, …) that have a unit file of their own,
    /// as [`list_service_units`] does for services. Sorted.
    pub fn units_of_type(&self, ty: &str) -> Vec<UnitName> {
        let mut units: Vec<UnitName> = self
            .map
            .ids
            .iter()
            .filter(|(_, target)| matches!(target, Target::File(_)))
            .filter_map(|(name, _)| UnitName::parse(name).ok())
            .filter(|n| n.unit_type() == ty)
            .collect();
        units.sort();
        units
    }

    /// The instances of `template` that have a drop-in directory of their own somewhere in the
    /// search path (`solvit@a.service.d/`): the only instances whose settings can differ from
    /// the template's, since an instance without a file of its own is the template. Sorted.
    pub fn instances_with_dropins(&self, template: &UnitName) -> Vec<UnitName> {
        let mut found = Vec::new();
        for dir in &self.map.dirs {
            let Some(resolved) = chase(&self.map.root, dir, true) else {
                continue;
            };
            let Ok(listing) = fs::read_dir(real_path(&self.map.root, &resolved)) else {
                continue;
            };
            for entry in listing.filter_map(Result::ok) {
                let Some(name) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".d"))
                    .and_then(|n| UnitName::parse(n).ok())
                else {
                    continue;
                };
                if name.template().as_ref() == Some(template) && !found.contains(&name) {
                    found.push(name);
                }
            }
        }
        found.sort();
        found
    }
}

/// Load `name` from the search path under `root` (see [`LoadedUnit`]). Errors: no unit file
/// for the name (or its template), an alias loop, a file that cannot be read or is not UTF-8,
/// and any parse error of the fragment or a drop-in (with file and line). To load several
/// units, build one [`UnitIndex`] and call [`UnitIndex::load`].
pub fn load_unit(root: &Path, name: &UnitName) -> Result<LoadedUnit, UnitError> {
    UnitIndex::new(root).load(name)
}

/// The effective assignments of `key` in `section`: the fragment's, then each drop-in's, in
/// order, where an empty assignment (`Key=`) discards everything before it. For list settings
/// such as `ExecStart=` that is the whole list; for single-valued settings the last element wins.
pub fn effective(unit: &LoadedUnit, section: &str, key: &str) -> Vec<(String, PathBuf, usize)> {
    let mut values = Vec::new();
    for file in &unit.files {
        for entry in file.entries(section, key) {
            if entry.value.is_empty() {
                values.clear();
            } else {
                values.push((entry.value.clone(), file.path.clone(), entry.line));
            }
        }
    }
    values
}

/// The effective `[Service]` command lines of `key` (`ExecStart`, `ExecReload`, …), each parsed,
/// with the file and line it comes from. A command line systemd would reject is an error naming
/// that file and line.
pub fn effective_exec(
    unit: &LoadedUnit,
    key: &str,
) -> Result<Vec<(ExecCommand, PathBuf, usize)>, UnitError> {
    effective(unit, "Service", key)
        .into_iter()
        .map(|(value, path, line)| {
            parse_exec(&value)
                .map(|cmd| (cmd, path.clone(), line))
                .map_err(|why| UnitError::at(&path, line, format!("{key}=: {why}")))
        })
        .collect()
}

/// Every `*.service` name that has a unit file of its own in the search path under `root`:
/// regular files, linked units and masks, including templates (`foo@.service`); not aliases
/// (a symlink to another unit file in the search path, which would name the same unit twice)
/// and not drop-in directories. Sorted, each name once.
pub fn list_service_units(root: &Path) -> Vec<UnitName> {
    UnitIndex::new(root).service_units()
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::os::unix::fs::symlink;

    fn fixture(case: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/units")
            .join(case)
    }

    fn name(s: &str) -> UnitName {
        UnitName::parse(s).unwrap()
    }

    fn argv(cmd: &ExecCommand) -> Vec<&str> {
        cmd.argv.iter().map(String::as_str).collect()
    }

    fn exec(s: &str) -> ExecCommand {
        parse_exec(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn words(s: &str) -> Vec<String> {
        exec(s).argv
    }

    fn parse(text: &str) -> UnitFile {
        parse_unit(Path::new("/t/x.service"), text).unwrap()
    }

    fn parse_err(text: &str) -> UnitError {
        parse_unit(Path::new("/t/x.service"), text).unwrap_err()
    }

    fn load(case: &str, unit: &str) -> LoadedUnit {
        load_unit(&fixture(case), &name(unit)).unwrap_or_else(|e| panic!("{case}/{unit}: {e}"))
    }

    /// The effective ExecStart commands of a fixture unit.
    fn exec_start(case: &str, unit: &str) -> Vec<ExecCommand> {
        effective_exec(&load(case, unit), "ExecStart")
            .unwrap()
            .into_iter()
            .map(|(cmd, _, _)| cmd)
            .collect()
    }

    fn last(unit: &LoadedUnit, key: &str) -> Option<String> {
        effective(unit, "Service", key).pop().map(|(v, _, _)| v)
    }

    fn write(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn link(root: &Path, rel: &str, target: &str) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        symlink(target, path).unwrap();
    }

    const GUNI: &str = "[Service]\nExecStart=/usr/bin/gunicorn app:wsgi\n";

    // --- unit names ---------------------------------------------------------------------

    #[test]
    fn unit_names_follow_systemd_rules() {
        for ok in [
            "solvit.service",
            "solvit@.service",
            "solvit@a.service",
            "a:b_c-d.e\\x2d.service",
            "getty@tty1.service",
            "foo@bar@baz.service",
            "x.socket",
            "-.mount",
        ] {
            assert!(UnitName::parse(ok).is_ok(), "{ok}");
        }
        let long = format!("{}.service", "a".repeat(247));
        assert_eq!(long.len(), 255);
        assert!(UnitName::parse(&long).is_ok());
        let too_long = format!("{}.service", "a".repeat(248));
        for bad in [
            "",
            "solvit",
            "solvit.conf",
            ".service",
            ".hidden.service",
            "@.service",
            "@foo.service",
            "../x.service",
            "a/b.service",
            "..",
            "sol vit.service",
            "solvit.service\n",
            "ü.service",
            "a;b.service",
            too_long.as_str(),
        ] {
            assert!(UnitName::parse(bad).is_err(), "{bad:?}");
        }
        let err = UnitName::parse("../etc/passwd.service").unwrap_err();
        assert!(err.to_string().contains("'/'"), "{err}");
    }

    #[test]
    fn templates_and_instances() {
        let inst = name("solvit@a.service");
        assert_eq!(inst.template(), Some(name("solvit@.service")));
        assert_eq!(inst.instance(), Some("a"));
        assert!(inst.is_instance() && !inst.is_template());
        assert_eq!(inst.prefix(), "solvit");
        assert_eq!(inst.unit_type(), "service");

        let tmpl = name("solvit@.service");
        assert!(tmpl.is_template() && !tmpl.is_instance());
        assert_eq!(tmpl.template(), None);
        assert_eq!(tmpl.instance(), None);
        assert_eq!(tmpl.with_instance("b").unwrap(), name("solvit@b.service"));
        assert!(tmpl.with_instance("../x").is_err());

        let plain = name("solvit.service");
        assert_eq!((plain.template(), plain.instance()), (None, None));
        assert!(plain.with_instance("a").is_err());
        assert!(plain.is_service() && !name("x.socket").is_service());

        let nested = name("foo@bar@baz.service");
        assert_eq!(nested.instance(), Some("bar@baz"));
        assert_eq!(nested.template(), Some(name("foo@.service")));
        let dotted = name("app@v1.2.service");
        assert_eq!(dotted.instance(), Some("v1.2"));
        assert_eq!(
            "x.service".parse::<UnitName>().unwrap().to_string(),
            "x.service"
        );
    }

    #[test]
    fn alias_rules() {
        assert!(alias_is_valid(&name("a.service"), "b.service"));
        assert!(!alias_is_valid(&name("a.service"), "a.service"));
        assert!(!alias_is_valid(&name("a.service"), "b.socket"));
        assert!(!alias_is_valid(&name("a.service"), "b@.service"));
        assert!(alias_is_valid(&name("a@.service"), "b@.service"));
        assert!(alias_is_valid(&name("a@x.service"), "b@x.service"));
        assert!(!alias_is_valid(&name("a@x.service"), "b@y.service"));
        assert!(alias_is_valid(&name("a@x.service"), "b@.service"));
        assert!(!alias_is_valid(&name("a@.service"), "b@x.service"));
        assert!(!alias_is_valid(&name("a.mount"), "b.mount"));
        assert!(!alias_is_valid(&name("a.service"), "not a unit"));
    }

    // --- unit file syntax -----------------------------------------------------------------

    #[test]
    fn sections_entries_and_line_numbers() {
        let f = parse(
            "# comment\n; another\n\n[Unit]\nDescription = SolvIT  \n\n  [Service]  \n\tUser=solvit\nExecStart=/bin/x a=b\nExecStart=\n",
        );
        assert_eq!(f.path, Path::new("/t/x.service"));
        assert_eq!(f.sections.len(), 2);
        assert_eq!(
            (f.sections[0].name.as_str(), f.sections[0].line),
            ("Unit", 4)
        );
        assert_eq!(
            f.sections[0].entries,
            vec![Entry {
                key: "Description".into(),
                value: "SolvIT".into(),
                line: 5
            }]
        );
        let s = &f.sections[1];
        assert_eq!((s.name.as_str(), s.line), ("Service", 7));
        let got: Vec<(&str, &str, usize)> = s
            .entries
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str(), e.line))
            .collect();
        assert_eq!(
            got,
            vec![
                ("User", "solvit", 8),
                ("ExecStart", "/bin/x a=b", 9),
                ("ExecStart", "", 10)
            ]
        );
        assert_eq!(f.entries("Service", "ExecStart").count(), 2);
    }

    #[test]
    fn continuation_lines_join_with_a_space() {
        let f =
            parse("[Service]\nExecStart=/bin/gunicorn \\\n    --workers 3 \\\n\t-b 0:1\nUser=x\n");
        let e = &f.sections[0].entries;
        assert_eq!(e[0].value, "/bin/gunicorn      --workers 3  \t-b 0:1");
        assert_eq!(e[0].line, 2);
        assert_eq!((e[1].key.as_str(), e[1].line), ("User", 5));
        // Backslash glued to the text: replaced by a space, so words still split.
        let f = parse("[S]\nK=a\\\nb\n");
        assert_eq!(f.sections[0].entries[0].value, "a b");
    }

    #[test]
    fn comments_inside_continuations_are_skipped() {
        let f = parse(
            "[Service]\nExecStart=/bin/x one\\\n# skipped \\\n  ; also skipped\n two\nUser=u\n",
        );
        let e = &f.sections[0].entries;
        assert_eq!(e[0].value, "/bin/x one  two");
        assert_eq!(e[1].line, 6);
    }

    #[test]
    fn empty_line_ends_a_continuation_and_eof_too() {
        let f = parse("[S]\nA=1 \\\n\nB=2\n");
        let e = &f.sections[0].entries;
        assert_eq!((e[0].value.as_str(), e[1].key.as_str()), ("1", "B"));
        let f = parse("[S]\nA=1 \\");
        assert_eq!(f.sections[0].entries[0].value, "1");
        // A continued header is still a header.
        let f = parse("[Ser\\\nvice]\nA=1\n");
        assert_eq!(f.sections[0].name, "Ser vice");
    }

    #[test]
    fn escaped_backslash_at_end_is_not_a_continuation() {
        let f = parse("[S]\nA=x\\\\\nB=y\n");
        let e = &f.sections[0].entries;
        assert_eq!((e[0].value.as_str(), e[1].value.as_str()), ("x\\\\", "y"));
        let f = parse("[S]\nA=x\\\\\\\nB=y\n");
        assert_eq!(f.sections[0].entries[0].value, "x\\\\ B=y");
    }

    #[test]
    fn line_endings_and_bom() {
        let f = parse("\u{feff}[S]\r\nA=1\r\nB=2\rC=3\n\rD=4");
        let got: Vec<(&str, usize)> = f.sections[0]
            .entries
            .iter()
            .map(|e| (e.key.as_str(), e.line))
            .collect();
        assert_eq!(got, vec![("A", 2), ("B", 3), ("C", 4), ("D", 5)]);
        assert_eq!(physical_lines("a\n\nb\n"), vec!["a", "", "b"]);
        assert_eq!(physical_lines("a\r\n\r\nb"), vec!["a", "", "b"]);
        assert_eq!(physical_lines("a\0\nb"), vec!["a", "", "b"]);
        assert_eq!(physical_lines(""), Vec::<&str>::new());
        assert_eq!(physical_lines("\n"), vec![""]);
        let f = parse("\u{feff}# comment\n[S]\n");
        assert_eq!(f.sections.len(), 1);
    }

    #[test]
    fn keys_and_values_keep_inner_text() {
        let f = parse("[S]\nEnvironment=\"A=1 2\" B=3\nX-Custom = a = b\n");
        let e = &f.sections[0].entries;
        assert_eq!(e[0].value, "\"A=1 2\" B=3");
        assert_eq!(
            (e[1].key.as_str(), e[1].value.as_str()),
            ("X-Custom", "a = b")
        );
    }

    #[test]
    fn malformed_lines_are_errors_with_file_and_line() {
        let e = parse_err("# c\nUser=x\n[Service]\n");
        assert_eq!(
            (e.path.as_deref(), e.line),
            (Some(Path::new("/t/x.service")), Some(2))
        );
        assert!(e.message.contains("outside of any section"), "{e}");
        assert_eq!(
            e.to_string(),
            "/t/x.service:2: assignment outside of any section: \"User=x\""
        );

        let e = parse_err("[Service]\nExecStart=/bin/x\nFooBar\n");
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("missing '='"), "{e}");

        let e = parse_err("[Service]\n=value\n");
        assert!(e.message.contains("missing key"), "{e}");

        let e = parse_err("\n[Service\nA=1\n");
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("no closing ']'"), "{e}");

        let e = parse_err("[Ser\"vice]\n");
        assert!(e.message.contains("bad characters"), "{e}");

        let e = parse_err("[S]\nno equals \\\nhere either\n");
        assert_eq!(
            e.line,
            Some(2),
            "a continued line is reported at its first line"
        );
    }

    #[test]
    fn overlong_lines_are_refused() {
        let long = format!("[S]\nA={}\n", "x".repeat(LONG_LINE_MAX));
        assert!(parse_err(&long).message.contains("too long"));
        let half = "x".repeat(LONG_LINE_MAX / 2 + 10);
        let joined = format!("[S]\nA={half}\\\n{half}\n");
        let e = parse_err(&joined);
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("too long"));
    }

    #[test]
    fn error_display_forms() {
        let e = UnitError::new("plain");
        assert_eq!(e.to_string(), "plain");
        let e = UnitError::in_file(Path::new("/a"), "m");
        assert_eq!(e.to_string(), "/a: m");
        let e = UnitError {
            path: None,
            line: Some(3),
            message: "m".into(),
        };
        assert_eq!(e.to_string(), "line 3: m");
    }

    // --- command lines --------------------------------------------------------------------

    #[test]
    fn plain_words() {
        let c = exec(
            "/opt/solvit/venv/bin/gunicorn --workers 3 --bind 127.0.0.1:8001 solvit.wsgi:application",
        );
        assert_eq!(c.prefixes, "");
        assert_eq!(
            argv(&c),
            [
                "/opt/solvit/venv/bin/gunicorn",
                "--workers",
                "3",
                "--bind",
                "127.0.0.1:8001",
                "solvit.wsgi:application"
            ]
        );
        assert_eq!(
            c.raw,
            "/opt/solvit/venv/bin/gunicorn --workers 3 --bind 127.0.0.1:8001 solvit.wsgi:application"
        );
        assert_eq!(words("  gunicorn \t  app  "), ["gunicorn", "app"]);
    }

    #[test]
    fn quoting() {
        assert_eq!(
            words(r#"/bin/echo "a b" 'c d' "it's" 'say "hi"'"#),
            ["/bin/echo", "a b", "c d", "it's", "say \"hi\""]
        );
        // Quotes anywhere in a word, shell-like.
        assert_eq!(
            words(r#"/bin/x --name="my app" a"b c"d ''"#),
            ["/bin/x", "--name=my app", "ab cd", ""]
        );
        assert_eq!(words(r#"/bin/x "" """#), ["/bin/x", "", ""]);
        // The executable may be quoted too, and prefixes sit inside the first word.
        let c = exec(r#"-"/opt/my app/bin/gunicorn" x"#);
        assert_eq!(
            (c.prefixes.as_str(), argv(&c)),
            ("-", vec!["/opt/my app/bin/gunicorn", "x"])
        );
        let c = exec(r#""-/bin/x""#);
        assert_eq!(c.prefixes, "-");
    }

    #[test]
    fn escapes() {
        assert_eq!(
            words(r#"/bin/x a\tb "c\nd" 'e\'f' \" \\ \s \x41\102 \u00e9 \U0001F600 \a\b\f\v\r"#),
            [
                "/bin/x",
                "a\tb",
                "c\nd",
                "e'f",
                "\"",
                "\\",
                " ",
                "AB",
                "é",
                "😀",
                "\x07\x08\x0c\x0b\r"
            ]
        );
        // UTF-8 built from byte escapes.
        assert_eq!(words(r"/bin/x \xc3\xa9"), ["/bin/x", "é"]);
        // Unknown or invalid escapes stay verbatim (systemd's relaxed retry).
        assert_eq!(
            words(r"/bin/x \q \x4 \x00 \000 a\ b \777"),
            ["/bin/x", "\\q", "\\x4", "\\x00", "\\000", "a\\ b", "\\777"]
        );
        assert_eq!(words(r"/bin/x \"), ["/bin/x", "\\"]);
        // Bytes that are not UTF-8, surrogates, invalid code points.
        assert!(parse_exec(r"/bin/x \xff").is_err());
        assert!(parse_exec(r"/bin/x \ud800").is_err());
        assert_eq!(words(r"/bin/x \UFFFFFFFF"), ["/bin/x", "\\UFFFFFFFF"]);
    }

    #[test]
    fn unbalanced_quotes_are_errors() {
        for bad in [r#"/bin/x "a b"#, "/bin/x 'a", r#""/bin/x"#, r#"/bin/x "a\"#] {
            let e = parse_exec(bad).unwrap_err();
            assert!(e.contains("unbalanced"), "{bad}: {e}");
        }
    }

    #[test]
    fn prefixes() {
        let cases: [(&str, &str, &str); 12] = [
            ("-/bin/x", "-", "/bin/x"),
            ("@/bin/x y", "@", "/bin/x"),
            (":/bin/x", ":", "/bin/x"),
            ("+/bin/x", "+", "/bin/x"),
            ("!/bin/x", "!", "/bin/x"),
            ("!!/bin/x", "!!", "/bin/x"),
            ("-@:+/bin/x y", "-@:+", "/bin/x"),
            ("@-/bin/x y", "@-", "/bin/x"),
            ("--x", "-", "-x"),
            ("+!x", "+", "!x"),
            ("!!!x", "!!", "!x"),
            (":-!!x", ":-!!", "x"),
        ];
        for (text, prefixes, path) in cases {
            let c = exec(text);
            assert_eq!(
                (c.prefixes.as_str(), c.argv[0].as_str()),
                (prefixes, path),
                "{text}"
            );
        }
        let c = exec("-@/opt/venv/bin/gunicorn solvit-web -b 127.0.0.1:8001 app");
        assert!(c.has_prefix('-') && c.has_prefix('@') && !c.has_prefix('+'));
        assert_eq!(
            c.program_and_args(),
            ["/opt/venv/bin/gunicorn", "-b", "127.0.0.1:8001", "app"]
        );
        assert!(c.runs_gunicorn());
    }

    #[test]
    fn bad_executables() {
        for (bad, why) in [
            ("", "empty command"),
            ("   ", "empty command"),
            ("-", "empty executable"),
            ("@", "empty executable"),
            ("-@ x", "empty executable"),
            ("@/bin/x", "second word"),
            (r#""/bin/a\"b""#, "special characters"),
            (r"/bin/a\tb", "special characters"),
            ("/usr/bin/", "directory"),
            ("bin/gunicorn", "neither"),
            ("..", "neither"),
        ] {
            let e = parse_exec(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        // Specifiers are not expanded: only the checks expansion cannot change apply.
        assert_eq!(
            words("%h/venv/bin/gunicorn app"),
            ["%h/venv/bin/gunicorn", "app"]
        );
    }

    #[test]
    fn nul_characters_are_refused() {
        assert!(parse_exec("/bin/x a\0b").unwrap_err().contains("NUL"));
        // In a file, NUL ends a line (as read_line() does), so it never reaches a value.
        let f = parse("[S]\nA=1\0B=2\n");
        assert_eq!(f.sections[0].entries.len(), 2);
    }

    #[test]
    fn semicolons() {
        assert!(
            parse_exec("/bin/a ; /bin/b")
                .unwrap_err()
                .contains("separates")
        );
        assert!(parse_exec("/bin/a ;").unwrap_err().contains("separates"));
        assert!(parse_exec("; /bin/a").unwrap_err().contains("separates"));
        assert!(
            parse_exec("\";\" /bin/a")
                .unwrap_err()
                .contains("separates")
        );
        assert_eq!(words(r"/bin/a \; b"), ["/bin/a", ";", "b"]);
        assert_eq!(words(r"/bin/a \;"), ["/bin/a", ";"]);
        assert_eq!(
            words(r#"/bin/a ";" a;b ;x \\;"#),
            ["/bin/a", ";", "a;b", ";x", "\\;"]
        );
    }

    #[test]
    fn specifiers_and_variables_are_kept_verbatim() {
        assert_eq!(
            words(r#"/bin/x %i %h/data "%I dir" $PORT ${HOST}:${PORT} "$A" $$ 100%%"#),
            [
                "/bin/x",
                "%i",
                "%h/data",
                "%I dir",
                "$PORT",
                "${HOST}:${PORT}",
                "$A",
                "$$",
                "100%%"
            ]
        );
    }

    #[test]
    fn format_quotes_only_what_needs_it() {
        let c = exec(r#"-/bin/x $OPTS ${A}:${B} %i "a b" "" 'q"q' "x\ny" \; "%h/my dir""#);
        assert_eq!(
            format_exec(&c),
            r#"-/bin/x $OPTS ${A}:${B} %i "a b" "" "q\"q" "x\ny" ";" "%h/my dir""#
        );
        assert_eq!(exec(&format_exec(&c)), c);
        let c = ExecCommand {
            prefixes: String::new(),
            argv: vec!["/bin/x".into(), "\x01\x7f\\".into()],
            raw: String::new(),
        };
        assert_eq!(format_exec(&c), r#"/bin/x "\x01\x7f\\""#);
        assert_eq!(exec(&format_exec(&c)), c);
        let c = exec(r#"@"/opt/my app/gunicorn" "name x" -b 0:1"#);
        assert_eq!(
            format_exec(&c),
            r#"@"/opt/my app/gunicorn" "name x" -b 0:1"#
        );
    }

    #[test]
    fn equality_ignores_spelling() {
        assert_eq!(exec("/bin/x 'a'"), exec("/bin/x    \"a\""));
        assert_ne!(exec("/bin/x a"), exec("-/bin/x a"));
    }

    // --- recognising gunicorn -------------------------------------------------------------

    fn runs(s: &str) -> bool {
        exec(s).runs_gunicorn()
    }

    #[test]
    fn launch_forms_as_written_in_units() {
        // The forms themselves are launch::recognise's (tested there); here: what unit files
        // add on top — prefixes, unexpanded variables and specifiers.
        for yes in [
            "/opt/solvit/venv/bin/gunicorn --workers 3 solvit.wsgi",
            "gunicorn app:wsgi",
            "%h/venv/bin/gunicorn app",
            "/usr/bin/python3.11 -u -m gunicorn app",
            "python3 /opt/venv/bin/gunicorn app",
            "-/usr/bin/gunicorn app",
            "!!/usr/bin/gunicorn app",
            "@/usr/bin/python3 solvit -m gunicorn app",
            "@/opt/venv/bin/gunicorn my-name --bind 127.0.0.1:8001 app",
        ] {
            assert!(runs(yes), "{yes}");
        }
        for no in [
            "/usr/sbin/nginx -g 'daemon off;'",
            "/usr/bin/uwsgi --ini x",
            "/usr/bin/env gunicorn app",
            "/bin/sh -c 'exec gunicorn app'",
            "$GUNICORN app",
            "${GUNICORN} app",
            "%I app",
            "python3 $GUNICORN app",
            "python3 -m uvicorn app",
            "python3 /opt/solvit/manage.py runserver",
            // With `@` the second word is only argv[0]: it runs the wrapper, not gunicorn.
            "@/usr/bin/gunicorn-wrapper gunicorn app",
        ] {
            assert!(!runs(no), "{no}");
        }
        assert!(!runs_gunicorn::<String>(&[]));
        assert!(runs_gunicorn(&["python3.12", "-m", "gunicorn"]));
        assert!(runs_gunicorn(&["gunicorn".to_string()]));
    }

    // --- search path and loading (fixtures) -----------------------------------------------

    #[test]
    fn search_path_order() {
        let dirs = search_path(Path::new("/r"));
        let pos = |d: &str| dirs.iter().position(|p| p == Path::new(d)).unwrap();
        assert!(pos("/r/etc/systemd/system") < pos("/r/run/systemd/system"));
        assert!(pos("/r/run/systemd/system") < pos("/r/usr/local/lib/systemd/system"));
        assert!(pos("/r/usr/local/lib/systemd/system") < pos("/r/lib/systemd/system"));
        assert!(pos("/r/lib/systemd/system") < pos("/r/usr/lib/systemd/system"));
        assert_eq!(dirs[0], Path::new("/r/etc/systemd/system.control"));
        assert_eq!(
            search_path(Path::new("/"))[4],
            Path::new("/").join(ADMIN_UNIT_DIR)
        );
    }

    #[test]
    fn solvit_unit() {
        let root = fixture("solvit");
        let u = load("solvit", "solvit.service");
        assert_eq!(u.fragment, root.join("etc/systemd/system/solvit.service"));
        assert!(u.dropins.is_empty() && !u.masked);
        assert_eq!(u.names, [name("solvit.service")]);
        assert_eq!(last(&u, "User").as_deref(), Some("solvit"));
        assert_eq!(last(&u, "WorkingDirectory").as_deref(), Some("/opt/solvit"));
        let starts = effective(&u, "Service", "ExecStart");
        assert_eq!(starts.len(), 1);
        let (value, path, line) = &starts[0];
        assert_eq!(
            value,
            "/opt/solvit/venv/bin/gunicorn --workers 3 --bind 127.0.0.1:8001 solvit.wsgi:application"
        );
        assert_eq!(path, &u.fragment);
        assert_eq!(*line, 10);
        let cmds = exec_start("solvit", "solvit.service");
        assert!(cmds[0].runs_gunicorn());
        assert_eq!(format_exec(&cmds[0]), *value);
        assert_eq!(
            list_service_units(&root),
            [name("nginx.service"), name("solvit.service")]
        );
        assert!(!exec_start("solvit", "nginx.service")[0].runs_gunicorn());
    }

    #[test]
    fn continuation_fixture() {
        let cmds = exec_start("continuation", "solvit.service");
        assert_eq!(cmds.len(), 1);
        assert_eq!(
            argv(&cmds[0]),
            [
                "/opt/solvit/venv/bin/gunicorn",
                "--workers",
                "3",
                "--timeout",
                "60",
                "--bind",
                "127.0.0.1:8001",
                "solvit.wsgi:application"
            ]
        );
        let u = load("continuation", "solvit.service");
        let (_, _, line) = &effective(&u, "Service", "ExecStart")[0];
        assert_eq!(*line, 7);
        assert_eq!(last(&u, "User").as_deref(), Some("solvit"));
    }

    #[test]
    fn quoting_fixture() {
        let cmds = exec_start("quoting", "solvit.service");
        assert_eq!(
            argv(&cmds[0]),
            [
                "/opt/solvit/venv/bin/gunicorn",
                "--name",
                "SolvIT ticketing",
                "--access-logformat",
                "%%(h)s \"%%(r)s\" %%(s)s",
                "--env",
                "GREETING=hello world",
                "--bind",
                "127.0.0.1:8001",
                "solvit.wsgi:application",
            ]
        );
        assert!(cmds[0].runs_gunicorn());
        assert_eq!(exec(&format_exec(&cmds[0])), cmds[0]);
    }

    #[test]
    fn env_vars_fixture() {
        let u = load("env-vars", "solvit.service");
        let cmds = exec_start("env-vars", "solvit.service");
        assert_eq!(
            argv(&cmds[0]),
            [
                "/opt/solvit/venv/bin/gunicorn",
                "$GUNICORN_OPTS",
                "--bind",
                "${BIND_HOST}:${BIND_PORT}",
                "${APP_MODULE}"
            ]
        );
        assert_eq!(
            format_exec(&cmds[0]),
            "/opt/solvit/venv/bin/gunicorn $GUNICORN_OPTS --bind ${BIND_HOST}:${BIND_PORT} ${APP_MODULE}"
        );
        assert!(cmds[0].runs_gunicorn());
        let env: Vec<String> = effective(&u, "Service", "Environment")
            .into_iter()
            .map(|(v, _, _)| v)
            .collect();
        assert_eq!(
            env,
            [
                "BIND_HOST=127.0.0.1 BIND_PORT=8001 APP_MODULE=solvit.wsgi:application",
                "\"GUNICORN_OPTS=--workers 3 --timeout 60\"",
            ]
        );
        assert_eq!(
            last(&u, "EnvironmentFile").as_deref(),
            Some("-/etc/default/solvit")
        );
        // The executable itself as a variable: not recognised.
        assert!(!exec_start("env-vars", "varbin.service")[0].runs_gunicorn());
    }

    #[test]
    fn specifiers_fixture() {
        let cmds = exec_start("specifiers", "solvit@a.service");
        assert_eq!(
            argv(&cmds[0]),
            [
                "%h/venv/bin/gunicorn",
                "--name",
                "solvit-%i",
                "--pid",
                "/run/solvit/%i.pid",
                "--bind",
                "127.0.0.1:80%i",
                "--chdir",
                "%h/%I dir",
                "solvit.wsgi"
            ]
        );
        assert!(cmds[0].runs_gunicorn());
        assert_eq!(exec(&format_exec(&cmds[0])), cmds[0]);
        assert!(format_exec(&cmds[0]).contains(r#" "%h/%I dir" "#));
    }

    #[test]
    fn prefixes_fixture() {
        let cmds = exec_start("prefixes", "ignore-failure.service");
        assert_eq!(cmds[0].prefixes, "-");
        assert_eq!(cmds[0].argv[0], "/opt/solvit/venv/bin/gunicorn");
        assert!(cmds[0].runs_gunicorn());

        let cmds = exec_start("prefixes", "argv0.service");
        assert_eq!(cmds[0].prefixes, "@");
        assert_eq!(
            &cmds[0].argv[..2],
            ["/opt/solvit/venv/bin/gunicorn", "solvit-gunicorn"]
        );
        assert!(cmds[0].runs_gunicorn());

        let cmds = exec_start("prefixes", "all.service");
        assert_eq!(cmds[0].prefixes, "-@:+");
        assert_eq!(
            cmds[0].program_and_args(),
            ["/usr/bin/python3", "-m", "gunicorn", "app:wsgi"]
        );
        assert!(cmds[0].runs_gunicorn());
        assert_eq!(
            format_exec(&cmds[0]),
            "-@:+/usr/bin/python3 solvit -m gunicorn app:wsgi"
        );
    }

    #[test]
    fn forking_daemon_fixture() {
        let u = load("forking-daemon", "solvit.service");
        assert_eq!(last(&u, "Type").as_deref(), Some("forking"));
        assert_eq!(
            last(&u, "PIDFile").as_deref(),
            Some("/run/solvit/gunicorn.pid")
        );
        let cmds = exec_start("forking-daemon", "solvit.service");
        assert!(cmds[0].argv.contains(&"--daemon".to_string()));
        assert!(cmds[0].runs_gunicorn());
    }

    #[test]
    fn python_fixture() {
        let cmd = &exec_start("python-m", "solvit.service")[0];
        assert_eq!(
            &cmd.argv[..3],
            ["/opt/solvit/venv/bin/python3", "-m", "gunicorn"]
        );
        assert!(cmd.runs_gunicorn());
        assert!(exec_start("python-m", "solvit-script.service")[0].runs_gunicorn());
        assert!(!exec_start("python-m", "manage.service")[0].runs_gunicorn());
    }

    #[test]
    fn override_fixture_resets_and_replaces() {
        let root = fixture("override");
        let u = load("override", "solvit.service");
        assert_eq!(u.fragment, root.join("lib/systemd/system/solvit.service"));
        // /etc's override.conf hides /lib's override.conf; /run's 50-env.conf sorts between.
        assert_eq!(
            u.dropins,
            [
                root.join("run/systemd/system/solvit.service.d/50-env.conf"),
                root.join("etc/systemd/system/solvit.service.d/override.conf"),
            ]
        );
        assert_eq!(u.files.len(), 3);
        let starts = effective(&u, "Service", "ExecStart");
        assert_eq!(starts.len(), 1);
        let (value, path, line) = &starts[0];
        assert_eq!(
            value,
            "/opt/solvit/venv/bin/gunicorn --workers 4 --bind 127.0.0.1:8001 solvit.wsgi:application"
        );
        assert_eq!(
            path,
            &root.join("etc/systemd/system/solvit.service.d/override.conf")
        );
        assert_eq!(*line, 4);
        // Only /run's Environment=: /lib's override.conf never applies.
        let env: Vec<String> = effective(&u, "Service", "Environment")
            .into_iter()
            .map(|(v, _, _)| v)
            .collect();
        assert_eq!(env, ["DJANGO_SETTINGS_MODULE=solvit.settings.prod"]);
        assert_eq!(last(&u, "User").as_deref(), Some("solvit"));
    }

    #[test]
    fn template_fixture() {
        let root = fixture("template");
        let u = load("template", "solvit@a.service");
        assert_eq!(u.name, name("solvit@a.service"));
        assert_eq!(u.fragment, root.join("lib/systemd/system/solvit@.service"));
        assert_eq!(u.names, [name("solvit@a.service")]);
        assert_eq!(
            u.dropins,
            [
                root.join("etc/systemd/system/solvit@.service.d/10-workers.conf"),
                root.join("etc/systemd/system/solvit@a.service.d/20-bind.conf"),
            ]
        );
        let cmds = exec_start("template", "solvit@a.service");
        assert_eq!(cmds.len(), 1);
        assert_eq!(
            argv(&cmds[0]),
            [
                "/opt/solvit/venv/bin/gunicorn",
                "--workers",
                "2",
                "--bind",
                "127.0.0.1:8001",
                "--name",
                "solvit-%i",
                "solvit.wsgi:application"
            ]
        );
        // Another instance gets the template's drop-in but not a's.
        let b = load("template", "solvit@b.service");
        assert_eq!(b.dropins.len(), 1);
        // The template itself loads, with its own drop-ins only.
        let t = load("template", "solvit@.service");
        assert_eq!(t.dropins.len(), 1);
        assert_eq!(list_service_units(&root), [name("solvit@.service")]);
    }

    #[test]
    fn not_gunicorn_fixture() {
        let root = fixture("not-gunicorn");
        let units = list_service_units(&root);
        assert_eq!(units, [name("nginx.service"), name("uwsgi.service")]);
        for unit in units {
            let u = load_unit(&root, &unit).unwrap();
            let cmds = effective_exec(&u, "ExecStart").unwrap();
            assert!(cmds.iter().all(|(c, _, _)| !c.runs_gunicorn()), "{unit}");
        }
    }

    #[test]
    fn malformed_fixtures_name_file_and_line() {
        let root = fixture("malformed");
        let e = load_unit(&root, &name("outside-section.service")).unwrap_err();
        assert_eq!(
            e.path,
            Some(root.join("etc/systemd/system/outside-section.service"))
        );
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("outside of any section"));

        let e = load_unit(&root, &name("missing-equals.service")).unwrap_err();
        assert_eq!(e.line, Some(5));

        let e = load_unit(&root, &name("bad-header.service")).unwrap_err();
        assert_eq!(e.line, Some(4));

        // Bad quoting parses as a file but not as a command line.
        let u = load_unit(&root, &name("bad-quoting.service")).unwrap();
        let e = effective_exec(&u, "ExecStart").unwrap_err();
        assert_eq!(
            e.path,
            Some(root.join("etc/systemd/system/bad-quoting.service"))
        );
        assert_eq!(e.line, Some(6));
        assert!(e.to_string().contains("unbalanced quoting"), "{e}");

        // A broken drop-in is reported as itself.
        let e = load_unit(&root, &name("bad-dropin.service")).unwrap_err();
        assert_eq!(
            e.path,
            Some(root.join("etc/systemd/system/bad-dropin.service.d/override.conf"))
        );
        assert_eq!(e.line, Some(1));
    }

    #[test]
    fn symlink_fixture_alias_linked_masked() {
        let root = fixture("symlinks");
        // An alias loads the unit it points to, under both names.
        let u = load("symlinks", "gunicorn.service");
        assert_eq!(u.fragment, root.join("lib/systemd/system/solvit.service"));
        assert_eq!(u.names, [name("solvit.service"), name("gunicorn.service")]);
        // Drop-ins of the alias name apply too.
        assert_eq!(
            u.dropins,
            [root.join("etc/systemd/system/gunicorn.service.d/alias.conf")]
        );
        assert_eq!(load("symlinks", "solvit.service").dropins, u.dropins);
        // A linked unit (absolute symlink out of the search path) reads the target inside root
        // but is reported at its path in the search directory.
        let l = load("symlinks", "linked.service");
        assert_eq!(l.fragment, root.join("etc/systemd/system/linked.service"));
        assert!(exec_start("symlinks", "linked.service")[0].runs_gunicorn());
        // Masks: a link to /dev/null, and an empty file hiding a real one in /lib.
        for masked in ["masked.service", "empty.service"] {
            let m = load("symlinks", masked);
            assert!(m.masked, "{masked}");
            assert!(m.files.is_empty() && m.dropins.is_empty());
            assert!(effective(&m, "Service", "ExecStart").is_empty());
        }
        assert_eq!(
            list_service_units(&root),
            [
                "empty.service",
                "linked.service",
                "masked.service",
                "solvit.service"
            ]
            .map(name)
        );
    }

    #[test]
    fn one_index_loads_many_units() {
        let root = fixture("python-m");
        let index = UnitIndex::new(&root);
        assert_eq!(index.root(), root.as_path());
        let units = index.service_units();
        assert_eq!(
            units,
            ["manage.service", "solvit-script.service", "solvit.service"].map(name)
        );
        let gunicorn: Vec<&str> = units
            .iter()
            .filter(|u| {
                let unit = index.load(u).unwrap();
                effective_exec(&unit, "ExecStart")
                    .unwrap()
                    .iter()
                    .any(|(c, _, _)| c.runs_gunicorn())
            })
            .map(UnitName::as_str)
            .collect();
        assert_eq!(gunicorn, ["solvit-script.service", "solvit.service"]);
        assert_eq!(
            index.load(&name("solvit.service")).unwrap(),
            load("python-m", "solvit.service")
        );
    }

    #[test]
    fn missing_units() {
        let e = load_unit(&fixture("solvit"), &name("nope.service")).unwrap_err();
        assert!(e.message.contains("not found"), "{e}");
        let e = load_unit(&fixture("solvit"), &name("nope@x.service")).unwrap_err();
        assert!(e.message.contains("not found"), "{e}");
        let empty = tempfile::tempdir().unwrap();
        assert!(list_service_units(empty.path()).is_empty());
        assert!(load_unit(Path::new("/nonexistent/root"), &name("x.service")).is_err());
    }

    // --- search path and loading (temporary trees) ----------------------------------------

    #[test]
    fn higher_priority_fragment_wins() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        write(
            r,
            "lib/systemd/system/a.service",
            "[Service]\nExecStart=/bin/lib\n",
        );
        write(
            r,
            "usr/lib/systemd/system/a.service",
            "[Service]\nExecStart=/bin/usrlib\n",
        );
        write(
            r,
            "run/systemd/system/a.service",
            "[Service]\nExecStart=/bin/run\n",
        );
        assert_eq!(
            load_unit(r, &name("a.service")).unwrap().fragment,
            r.join("run/systemd/system/a.service")
        );
        write(
            r,
            "etc/systemd/system/a.service",
            "[Service]\nExecStart=/bin/etc\n",
        );
        assert_eq!(
            load_unit(r, &name("a.service")).unwrap().fragment,
            r.join("etc/systemd/system/a.service")
        );
        fs::remove_file(r.join("etc/systemd/system/a.service")).unwrap();
        fs::remove_file(r.join("run/systemd/system/a.service")).unwrap();
        assert_eq!(
            load_unit(r, &name("a.service")).unwrap().fragment,
            r.join("lib/systemd/system/a.service")
        );
        assert_eq!(list_service_units(r), [name("a.service")]);
    }

    #[test]
    fn instance_file_beats_template() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        write(r, "lib/systemd/system/w@.service", GUNI);
        write(
            r,
            "etc/systemd/system/w@x.service",
            "[Service]\nExecStart=/bin/other\n",
        );
        assert_eq!(
            load_unit(r, &name("w@x.service")).unwrap().fragment,
            r.join("etc/systemd/system/w@x.service")
        );
        assert_eq!(
            load_unit(r, &name("w@y.service")).unwrap().fragment,
            r.join("lib/systemd/system/w@.service")
        );
        assert_eq!(
            list_service_units(r),
            [name("w@.service"), name("w@x.service")]
        );
    }

    #[test]
    fn dropin_precedence_and_order() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        write(r, "lib/systemd/system/foo-bar-baz.service", GUNI);
        write(
            r,
            "lib/systemd/system/foo-bar-baz.service.d/10-same.conf",
            "[Service]\nUser=lib\n",
        );
        write(
            r,
            "etc/systemd/system/foo-bar-baz.service.d/10-same.conf",
            "[Service]\nUser=etc\n",
        );
        write(
            r,
            "etc/systemd/system/foo-bar-baz.service.d/.hidden.conf",
            "broken",
        );
        write(
            r,
            "etc/systemd/system/foo-bar-baz.service.d/notes.txt",
            "broken",
        );
        write(
            r,
            "etc/systemd/system/foo-.service.d/05-prefix.conf",
            "[Service]\nNice=1\n",
        );
        write(
            r,
            "etc/systemd/system/foo-bar-.service.d/05-prefix.conf",
            "[Service]\nNice=2\n",
        );
        write(
            r,
            "run/systemd/system/service.d/00-all.conf",
            "[Service]\nNice=0\n",
        );
        write(
            r,
            "etc/systemd/system/service.d/99-all.conf",
            "[Service]\nUMask=0077\n",
        );
        write(
            r,
            "usr/lib/systemd/system/service.d/10-same.conf",
            "[Service]\nUser=type\n",
        );
        let u = load_unit(r, &name("foo-bar-baz.service")).unwrap();
        assert_eq!(
            u.dropins,
            [
                r.join("run/systemd/system/service.d/00-all.conf"),
                r.join("etc/systemd/system/foo-bar-.service.d/05-prefix.conf"),
                r.join("etc/systemd/system/foo-bar-baz.service.d/10-same.conf"),
                r.join("etc/systemd/system/service.d/99-all.conf"),
            ]
        );
        assert_eq!(last(&u, "User").as_deref(), Some("etc"));
        assert_eq!(last(&u, "Nice").as_deref(), Some("2"));
        // A template's drop-in in a higher-priority directory beats the instance's of the same
        // name in a lower one: the search path orders first, as in systemd.
        write(r, "lib/systemd/system/w@.service", GUNI);
        write(
            r,
            "run/systemd/system/w@a.service.d/x.conf",
            "[Service]\nUser=instance\n",
        );
        write(
            r,
            "etc/systemd/system/w@.service.d/x.conf",
            "[Service]\nUser=template\n",
        );
        let u = load_unit(r, &name("w@a.service")).unwrap();
        assert_eq!(last(&u, "User").as_deref(), Some("template"));
        // Dash prefixes keep the instance: w-x@a.service also reads w-@a.service.d.
        write(r, "lib/systemd/system/w-x@.service", GUNI);
        write(
            r,
            "etc/systemd/system/w-@a.service.d/p.conf",
            "[Service]\nUser=p\n",
        );
        write(
            r,
            "etc/systemd/system/w-@.service.d/q.conf",
            "[Service]\nGroup=q\n",
        );
        let u = load_unit(r, &name("w-x@a.service")).unwrap();
        assert_eq!(last(&u, "User").as_deref(), Some("p"));
        assert_eq!(last(&u, "Group").as_deref(), Some("q"));
    }

    #[test]
    fn dropin_edge_cases() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        write(r, "lib/systemd/system/a.service", GUNI);
        write(
            r,
            "lib/systemd/system/a.service.d/mask-me.conf",
            "[Service]\nUser=lib\n",
        );
        link(
            r,
            "etc/systemd/system/a.service.d/mask-me.conf",
            "/dev/null",
        );
        write(
            r,
            "lib/systemd/system/a.service.d/gone.conf",
            "[Service]\nUser=gone\n",
        );
        link(
            r,
            "etc/systemd/system/a.service.d/gone.conf",
            "/nowhere/gone.conf",
        );
        let u = load_unit(r, &name("a.service")).unwrap();
        assert_eq!(
            u.dropins,
            [r.join("etc/systemd/system/a.service.d/mask-me.conf")]
        );
        assert_eq!(last(&u, "User"), None);
        // A drop-in directory that is a symlink is followed (inside the root).
        write(r, "opt/shared/z.conf", "[Service]\nUser=shared\n");
        link(r, "run/systemd/system/a.service.d", "/opt/shared");
        let u = load_unit(r, &name("a.service")).unwrap();
        assert_eq!(
            u.dropins.last(),
            Some(&r.join("run/systemd/system/a.service.d/z.conf"))
        );
        // A directory named like a drop-in is an error, as for systemd.
        fs::create_dir_all(r.join("etc/systemd/system/a.service.d/dir.conf")).unwrap();
        let e = load_unit(r, &name("a.service")).unwrap_err();
        assert!(e.message.contains("directory"), "{e}");
    }

    #[test]
    fn non_utf8_files_are_errors() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        let path = r.join("etc/systemd/system/a.service");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, b"[Service]\nExecStart=/bin/\xff\n").unwrap();
        let e = load_unit(r, &name("a.service")).unwrap_err();
        assert_eq!(e.path.as_deref(), Some(path.as_path()));
        assert!(e.message.contains("UTF-8"));
    }

    #[test]
    fn symlinks_stay_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        // Relative links climbing above the root stop at the root.
        write(r, "etc/passwd.service", GUNI);
        link(
            r,
            "etc/systemd/system/up.service",
            "../../../../../../../../etc/passwd.service",
        );
        let u = load_unit(r, &name("up.service")).unwrap();
        assert_eq!(u.fragment, r.join("etc/systemd/system/up.service"));
        assert!(
            effective_exec(&u, "ExecStart").unwrap()[0]
                .0
                .runs_gunicorn()
        );
        // Absolute links mean the file inside the root, never the host's.
        link(r, "etc/systemd/system/host.service", "/etc/hostname");
        let e = load_unit(r, &name("host.service")).unwrap_err();
        assert!(e.message.contains("cannot read"), "{e}");
        // Loops and dangling links are errors, not hangs.
        link(r, "etc/systemd/system/loop.service", "/opt/loop1");
        link(r, "opt/loop1", "/opt/loop2");
        link(r, "opt/loop2", "/opt/loop1");
        assert!(
            load_unit(r, &name("loop.service"))
                .unwrap_err()
                .message
                .contains("symbolic links")
        );
        link(
            r,
            "etc/systemd/system/dangling.service",
            "/opt/missing.service",
        );
        assert!(load_unit(r, &name("dangling.service")).is_err());
    }

    #[test]
    fn aliases_and_their_rules() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        write(r, "lib/systemd/system/real.service", GUNI);
        link(
            r,
            "etc/systemd/system/alias1.service",
            "/lib/systemd/system/real.service",
        );
        link(r, "etc/systemd/system/alias2.service", "alias1.service");
        // Aliases of aliases resolve; all names share the drop-ins.
        write(
            r,
            "etc/systemd/system/alias2.service.d/x.conf",
            "[Service]\nUser=a2\n",
        );
        let u = load_unit(r, &name("alias2.service")).unwrap();
        assert_eq!(u.fragment, r.join("lib/systemd/system/real.service"));
        assert_eq!(
            u.names,
            ["real.service", "alias1.service", "alias2.service"].map(name)
        );
        assert_eq!(
            last(&load_unit(r, &name("real.service")).unwrap(), "User").as_deref(),
            Some("a2")
        );
        // A link to another type is not a valid alias and is ignored entirely.
        write(
            r,
            "lib/systemd/system/s.socket",
            "[Socket]\nListenStream=8001\n",
        );
        link(
            r,
            "etc/systemd/system/wrongtype.service",
            "/lib/systemd/system/s.socket",
        );
        assert!(load_unit(r, &name("wrongtype.service")).is_err());
        // A self-named link into another search directory is ignored; the real file is found.
        link(
            r,
            "etc/systemd/system/real.service",
            "/lib/systemd/system/real.service",
        );
        assert_eq!(
            load_unit(r, &name("real.service")).unwrap().fragment,
            r.join("lib/systemd/system/real.service")
        );
        // Alias loops end.
        link(r, "etc/systemd/system/l1.service", "l2.service");
        link(r, "etc/systemd/system/l2.service", "l1.service");
        assert!(
            load_unit(r, &name("l1.service"))
                .unwrap_err()
                .message
                .contains("aliases")
        );
        // An instance linked to a template is an alias of that template's instance.
        write(r, "lib/systemd/system/tpl@.service", GUNI);
        link(
            r,
            "etc/systemd/system/web@one.service",
            "/lib/systemd/system/tpl@.service",
        );
        let u = load_unit(r, &name("web@one.service")).unwrap();
        assert_eq!(u.fragment, r.join("lib/systemd/system/tpl@.service"));
        assert_eq!(u.names, ["tpl@one.service", "web@one.service"].map(name));
        assert_eq!(
            list_service_units(r),
            ["real.service", "tpl@.service"].map(name)
        );
    }

    #[test]
    fn merged_usr_directories_count_once() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        write(r, "usr/lib/systemd/system/a.service", GUNI);
        write(
            r,
            "usr/lib/systemd/system/a.service.d/x.conf",
            "[Service]\nUser=x\n",
        );
        link(r, "lib", "usr/lib");
        assert_eq!(list_service_units(r), [name("a.service")]);
        let u = load_unit(r, &name("a.service")).unwrap();
        assert_eq!(u.fragment, r.join("lib/systemd/system/a.service"));
        assert_eq!(u.dropins.len(), 1);
        // A link from /etc into the /usr/lib spelling of the same directory is an alias.
        link(
            r,
            "etc/systemd/system/b.service",
            "/usr/lib/systemd/system/a.service",
        );
        assert_eq!(
            load_unit(r, &name("b.service")).unwrap().names,
            ["a.service", "b.service"].map(name)
        );
    }

    #[test]
    fn masks() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        write(r, "lib/systemd/system/a.service", GUNI);
        link(r, "etc/systemd/system/a.service", "/dev/null");
        write(
            r,
            "etc/systemd/system/a.service.d/x.conf",
            "[Service]\nUser=x\n",
        );
        let u = load_unit(r, &name("a.service")).unwrap();
        assert!(u.masked);
        assert_eq!(u.fragment, r.join("etc/systemd/system/a.service"));
        // The host's /dev/null, a character device, masks when the root is the host's.
        assert!(matches!(
            inspect(Path::new("/"), Path::new("/dev/null")),
            FileState::Masked
        ));
        // A masked template masks its instances.
        write(r, "lib/systemd/system/t@.service", GUNI);
        link(r, "run/systemd/system/t@.service", "../../../dev/null");
        assert!(load_unit(r, &name("t@x.service")).unwrap().masked);
    }

    // --- properties -------------------------------------------------------------------------

    /// Text built from the characters that matter to the parsers.
    fn tricky_text() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                Just("\\".to_string()),
                Just("\"".to_string()),
                Just("'".to_string()),
                Just(" ".to_string()),
                Just("\t".to_string()),
                Just("\n".to_string()),
                Just("\r".to_string()),
                Just("\0".to_string()),
                Just(";".to_string()),
                Just("=".to_string()),
                Just("[".to_string()),
                Just("]".to_string()),
                Just("#".to_string()),
                Just("-@:+!".to_string()),
                Just("\u{feff}".to_string()),
                Just("[Service]\n".to_string()),
                Just("ExecStart=".to_string()),
                Just("\\x".to_string()),
                Just("\\u".to_string()),
                Just("\\U".to_string()),
                "[0-9a-fA-F]{1,4}",
                "[a-z/%${}]{1,6}",
                any::<char>().prop_map(String::from),
            ],
            0..40,
        )
        .prop_map(|parts| parts.concat())
    }

    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9_./:=%${}-]{1,12}",
            Just(";".to_string()),
            Just(String::new()),
            Just("$VAR".to_string()),
            Just("${VAR}".to_string()),
            prop::collection::vec(any::<char>().prop_filter("no NUL", |c| *c != '\0'), 0..8)
                .prop_map(|cs| cs.into_iter().collect()),
        ]
    }

    fn command() -> impl Strategy<Value = ExecCommand> {
        let prefixes = prop::sample::select(vec![
            "", "-", "@", ":", "+", "!", "!!", "-@", "@-:+", ":!!", "-!",
        ]);
        let program = "(/[a-zA-Z0-9 %._-]{1,10}){1,3}|[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,10}"
            .prop_filter("valid executable", |p| {
                check_executable(p).is_ok() && !p.ends_with('/')
            });
        (prefixes, program, prop::collection::vec(word(), 1..6)).prop_map(
            |(prefixes, program, args)| {
                let mut argv = vec![program];
                argv.extend(args);
                ExecCommand {
                    prefixes: prefixes.to_string(),
                    argv,
                    raw: String::new(),
                }
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn parse_unit_never_panics(text in tricky_text()) {
            let _ = parse_unit(Path::new("/p"), &text);
        }

        #[test]
        fn parse_unit_never_panics_on_any_string(text in any::<String>()) {
            let _ = parse_unit(Path::new("/p"), &text);
        }

        #[test]
        fn parse_exec_never_panics(text in tricky_text()) {
            let _ = parse_exec(&text);
        }

        #[test]
        fn parse_exec_never_panics_on_any_string(text in any::<String>()) {
            let _ = parse_exec(&text);
        }

        #[test]
        fn format_then_parse_round_trips(cmd in command()) {
            let text = format_exec(&cmd);
            let back = parse_exec(&text).map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
            prop_assert_eq!(&back, &cmd, "{:?}", text);
            prop_assert_eq!(back.raw, text);
        }

        #[test]
        fn parse_format_parse_is_stable(text in tricky_text()) {
            if let Ok(cmd) = parse_exec(&text) {
                let again = parse_exec(&format_exec(&cmd));
                prop_assert_eq!(again, Ok(cmd));
            }
        }

        #[test]
        fn entries_survive_reparsing(lines in prop::collection::vec(("[A-Za-z][A-Za-z0-9-]{0,8}", "[^\n\r\0\\\\]{0,20}"), 0..8)) {
            let mut text = String::from("[Service]\n");
            for (k, v) in &lines {
                text.push_str(&format!("{k}={v}\n"));
            }
            let file = parse_unit(Path::new("/p"), &text).unwrap();
            let got: Vec<(String, String)> = file.sections[0].entries.iter().map(|e| (e.key.clone(), e.value.clone())).collect();
            let want: Vec<(String, String)> = lines.iter().map(|(k, v)| (k.clone(), strip_ws(v).to_string())).collect();
            prop_assert_eq!(got, want);
        }
    }
}
