//! The name map: every unit name in the search path and what it stands for (a file, a linked
//! unit, a mask, or an alias of another name), built once per root as systemd's
//! `unit_file_build_name_map()` builds it. It answers which file a name loads and by which
//! names that unit is known; the drop-ins those names select are `dropins`' business.

use super::UnitError;
use super::name::{UnitName, alias_is_valid};
use super::paths::{FileState, SEARCH_DIRS, chase, inspect, path_tail, real_path};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

/// What a name in the search path stands for.
#[derive(Debug, Clone)]
pub(super) enum Target {
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
pub(super) struct NameMap {
    pub(super) root: PathBuf,
    pub(super) dirs: Vec<PathBuf>,
    pub(super) ids: HashMap<String, Target>,
    aliases: HashMap<String, Vec<String>>,
}

impl NameMap {
    pub(super) fn build(root: &Path) -> NameMap {
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
    pub(super) fn find(
        &self,
        unit: &UnitName,
    ) -> Result<(Option<PathBuf>, Vec<UnitName>), UnitError> {
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
}

#[cfg(test)]
mod tests;
