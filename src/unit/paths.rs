//! Where units live and how their paths resolve: systemd 252's unit search path, and symlinks
//! followed one by one with the root acting as `/` (systemd's `chase()` with a root), so that
//! a tree given with `--root` reads as systemd inside it would read it and no link climbs out
//! of it. Also what a path turns out to be: a file to read, a mask, missing or broken.

use super::UnitError;
use super::syntax::{UnitFile, parse_unit};
use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs;
use std::path::{Component, Path, PathBuf};

/// The system unit search path of systemd 252 as built for Debian 12 (`systemd-analyze
/// unit-paths`), highest priority first, relative to the root.
pub(super) const SEARCH_DIRS: [&str; 13] = [
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
pub(super) fn real_path(root: &Path, logical: &Path) -> PathBuf {
    root.join(logical.strip_prefix("/").unwrap_or(logical))
}

/// Resolve symlinks in `logical` with `root` acting as `/`, like systemd's `chase()` with
/// `CHASE_NONEXISTENT` (missing components are kept lexically) and, unless `follow_last`,
/// `CHASE_NOFOLLOW`. `..` never climbs above `root`. Returns the resolved logical path, or
/// `None` after too many symlinks (a loop).
pub(super) fn chase(root: &Path, logical: &Path, follow_last: bool) -> Option<PathBuf> {
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
pub(super) enum FileState {
    /// Symlinked to `/dev/null`, a character device, or empty: a mask.
    Masked,
    /// Something to read, at this machine path.
    Readable(PathBuf),
    /// Not there (a dangling symlink, a vanished file).
    Missing,
    /// A directory, something else that is not a file, or a symlink loop.
    Broken(String),
}

pub(super) fn inspect(root: &Path, logical: &Path) -> FileState {
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
pub(super) fn read_unit_file(
    root: &Path,
    logical: &Path,
    shown: &Path,
) -> Result<UnitFile, UnitError> {
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
pub(super) fn path_tail<'a>(path: &'a Path, dir: &Path) -> Option<&'a Path> {
    path.strip_prefix(dir).ok()
}

#[cfg(test)]
mod tests;
