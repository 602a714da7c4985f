//! Unit names: which strings name units (systemd's `unit_name_is_valid()`), and how a
//! template, its instances and their prefix relate (`foo@.service`, `foo@bar.service`,
//! `foo`). Every name is validated before a path is built from it, so that no name can
//! leave the directory it is joined to.

use super::UnitError;
use std::fmt;
use std::str::FromStr;

/// The unit types systemd 252 knows; a unit name must end in one of them.
pub(super) const UNIT_TYPES: [&str; 11] = [
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
pub struct UnitName(pub(super) String);

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
pub(super) fn alias_is_valid(src: &UnitName, dst: &str) -> bool {
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

#[cfg(test)]
mod tests;
