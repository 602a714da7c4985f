//! Which drop-ins apply to a unit, and in which order: the `<name>.d/*.conf` files of each of
//! its names, its template, its dash-truncated prefixes and its type, in search path order, a
//! file name in a higher directory hiding the same name below, sorted by file name
//! (systemd's `unit_file_find_dropin_paths()`). The order matters: a setting's last
//! assignment wins.

use super::name::{UNIT_TYPES, UnitName};
use super::name_map::NameMap;
use super::paths::{chase, real_path};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

impl NameMap {
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
    pub(super) fn dropins(&self, names: &[UnitName]) -> Vec<PathBuf> {
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

#[cfg(test)]
mod tests;
