//! A unit as the manager sees it: its fragment, its drop-ins in the order they apply and its
//! names, each file parsed; and the effective value of a setting once the drop-ins and their
//! resets (`Key=`) are applied. [`UnitIndex`] reads the search path once for many units.

use super::UnitError;
use super::exec::{ExecCommand, parse_exec};
use super::name::UnitName;
use super::name_map::{NameMap, Target};
use super::paths::{FileState, chase, inspect, read_unit_file, real_path};
use super::syntax::UnitFile;
use std::fs;
use std::path::{Path, PathBuf};

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

/// The service's environment as its `Environment=` lines set it (later assignments win; an
/// assignment systemd would not take, or a value it could not split, is skipped).
/// `EnvironmentFile=` is not read.
pub fn environment(unit: &LoadedUnit) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = Vec::new();
    for (value, _, _) in effective(unit, "Service", "Environment") {
        for word in super::exec::split_words(&value).unwrap_or_default() {
            if let Some((k, v)) = word.split_once('=').filter(|(k, _)| !k.is_empty()) {
                vars.retain(|(old, _)| old != k);
                vars.push((k.to_string(), v.to_string()));
            }
        }
    }
    vars
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

#[cfg(test)]
mod tests;
