//! Writing and removing drop-ins safely: every directory is opened component by component
//! from the root with `O_NOFOLLOW`, so a symlink that someone placed under
//! `/etc/systemd/system` can never redirect a write (root writing through an attacker's link
//! would overwrite any file on the host); files are written to a temporary file in the same
//! directory, made root-owned 0644, fsynced and renamed over the old one, so systemd never
//! reads half a file, whatever happens to this process.
//!
//! Every change returns an [`Undo`] that restores exactly what was there before.

use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

/// What a change replaced, to put it back: the file's previous bytes (or its absence) and
/// the directories the change created.
#[derive(Clone, Debug)]
pub struct Undo {
    pub dir: PathBuf,
    pub name: String,
    pub before: Option<Vec<u8>>,
    pub created: Vec<PathBuf>,
}

/// An error naming the path it concerns.
fn err(path: &Path, what: &str, e: impl std::fmt::Display) -> String {
    format!("{}: {what}: {e}", path.display())
}

fn dir_flags() -> OFlags {
    OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::RDONLY
}

/// `rel` (relative to `root`) as a sequence of plain names; anything else is refused.
fn components(rel: &Path) -> Result<Vec<&std::ffi::OsStr>, String> {
    rel.components()
        .map(|c| match c {
            Component::Normal(name) => Ok(name),
            _ => Err(format!("{}: not a plain relative path", rel.display())),
        })
        .collect()
}

/// Opens `root/rel` one component at a time without following symlinks, creating missing
/// directories (0755, root-owned) when `create` is set and recording them in `created`.
fn open_dir(
    root: &Path,
    rel: &Path,
    create: bool,
    created: &mut Vec<PathBuf>,
) -> Result<OwnedFd, String> {
    let mut fd = rustix::fs::open(root, OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| err(root, "cannot open", e))?;
    let mut at = PathBuf::new();
    for name in components(rel)? {
        at.push(name);
        let shown = root.join(&at);
        let next = match rustix::fs::openat(&fd, name, dir_flags(), Mode::empty()) {
            Err(Errno::NOENT) if create => {
                rustix::fs::mkdirat(&fd, name, Mode::from_raw_mode(0o755))
                    .map_err(|e| err(&shown, "cannot create directory", e))?;
                created.push(at.clone());
                let new = rustix::fs::openat(&fd, name, dir_flags(), Mode::empty())
                    .map_err(|e| err(&shown, "cannot open", e))?;
                own(&new, 0o755).map_err(|e| err(&shown, "cannot set owner and mode", e))?;
                new
            }
            Err(Errno::LOOP) | Err(Errno::NOTDIR) => {
                return Err(format!(
                    "{} is a symlink or not a directory: refusing to write through it \
                     (a drop-in directory must be a real directory; remove the link and try again)",
                    shown.display()
                ));
            }
            Err(e) => return Err(err(&shown, "cannot open", e)),
            Ok(fd) => fd,
        };
        fd = next;
    }
    Ok(fd)
}

/// Root-owned (when we are root) with `mode`, whatever the umask made of it.
fn own(fd: &OwnedFd, mode: u32) -> rustix::io::Result<()> {
    rustix::fs::fchmod(fd, Mode::from_raw_mode(mode))?;
    if nix::unistd::Uid::effective().is_root() {
        rustix::fs::fchown(fd, Some(rustix::fs::Uid::ROOT), Some(rustix::fs::Gid::ROOT))?;
    }
    Ok(())
}

/// The current bytes of `name` in `dir`, `None` if absent; a symlink or anything but a
/// regular file is refused.
fn read_at(dir: &OwnedFd, name: &str, shown: &Path) -> Result<Option<Vec<u8>>, String> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let fd = match rustix::fs::openat(dir, name, flags, Mode::empty()) {
        Err(Errno::NOENT) => return Ok(None),
        Err(Errno::LOOP) => {
            return Err(format!(
                "{} is a symlink: refusing to replace it (remove it and try again)",
                shown.display()
            ));
        }
        Err(e) => return Err(err(shown, "cannot open", e)),
        Ok(fd) => fd,
    };
    let stat = rustix::fs::fstat(&fd).map_err(|e| err(shown, "cannot stat", e))?;
    if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::RegularFile {
        return Err(format!("{} is not a regular file", shown.display()));
    }
    let mut bytes = Vec::new();
    std::fs::File::from(fd)
        .read_to_end(&mut bytes)
        .map_err(|e| err(shown, "cannot read", e))?;
    Ok(Some(bytes))
}

/// Temporary file, fsync, rename, fsync of the directory.
fn replace_at(dir: &OwnedFd, name: &str, bytes: &[u8], shown: &Path) -> Result<(), String> {
    // A dot name not ending in .conf: systemd ignores it even if we die before the rename.
    let tmp = format!(".{name}.{}.tmp", std::process::id());
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let open = || rustix::fs::openat(dir, tmp.as_str(), flags, Mode::from_raw_mode(0o644));
    let fd = match open() {
        Err(Errno::EXIST) => {
            // A leftover of an earlier run of ours with the same pid: ours to remove.
            let _ = rustix::fs::unlinkat(dir, tmp.as_str(), AtFlags::empty());
            open()
        }
        other => other,
    }
    .map_err(|e| err(shown, "cannot create a temporary file next to it", e))?;
    let written = (|| -> Result<(), String> {
        own(&fd, 0o644).map_err(|e| err(shown, "cannot set owner and mode", e))?;
        let mut file = std::fs::File::from(fd);
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| err(shown, "cannot write", e))?;
        rustix::fs::renameat(dir, tmp.as_str(), dir, name)
            .map_err(|e| err(shown, "cannot rename the temporary file into place", e))?;
        rustix::fs::fsync(dir).map_err(|e| err(shown, "cannot sync the directory", e))
    })();
    if written.is_err() {
        let _ = rustix::fs::unlinkat(dir, tmp.as_str(), AtFlags::empty());
    }
    written
}

/// Writes `bytes` as `root/dir/name`, creating missing directories.
pub fn write(root: &Path, dir: &Path, name: &str, bytes: &[u8]) -> Result<Undo, String> {
    let shown = root.join(dir).join(name);
    let mut created = Vec::new();
    let result = (|| {
        let fd = open_dir(root, dir, true, &mut created)?;
        let before = read_at(&fd, name, &shown)?;
        replace_at(&fd, name, bytes, &shown)?;
        Ok(before)
    })();
    match result {
        Ok(before) => Ok(Undo {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            before,
            created,
        }),
        Err(e) => {
            prune(root, &created);
            Err(e)
        }
    }
}

/// Removes `root/dir/name` (absent is fine), then each directory of `prune_dirs` (relative
/// to `root`, deepest first) that is left empty.
pub fn remove(root: &Path, dir: &Path, name: &str, prune_dirs: &[PathBuf]) -> Result<Undo, String> {
    let shown = root.join(dir).join(name);
    if std::fs::symlink_metadata(&shown).is_err() {
        return Ok(Undo {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            before: None,
            created: Vec::new(),
        });
    }
    let fd = open_dir(root, dir, false, &mut Vec::new())?;
    let before = read_at(&fd, name, &shown)?;
    if before.is_some() {
        rustix::fs::unlinkat(&fd, name, AtFlags::empty())
            .map_err(|e| err(&shown, "cannot remove", e))?;
        rustix::fs::fsync(&fd).map_err(|e| err(&shown, "cannot sync the directory", e))?;
    }
    drop(fd);
    let removed = prune(root, prune_dirs);
    Ok(Undo {
        dir: dir.to_path_buf(),
        name: name.to_string(),
        before,
        // What we removed, re-created by undo (shallowest first).
        created: removed.into_iter().rev().collect(),
    })
}

/// Removes each of `dirs` (relative to `root`) that is empty, deepest first; returns those
/// removed. A directory that is not empty is someone else's business now, and stays.
fn prune(root: &Path, dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut sorted: Vec<&PathBuf> = dirs.iter().collect();
    sorted.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    let mut removed = Vec::new();
    for dir in sorted {
        let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
            continue;
        };
        let Ok(fd) = open_dir(root, parent, false, &mut Vec::new()) else {
            continue;
        };
        if rustix::fs::unlinkat(&fd, name, AtFlags::REMOVEDIR).is_ok() {
            let _ = rustix::fs::fsync(&fd);
            removed.push(dir.clone());
        }
    }
    removed
}

/// Puts back exactly what `undo` recorded: the previous bytes (or no file), and the
/// directories as they were.
pub fn restore(root: &Path, undo: &Undo) -> Result<(), String> {
    let shown = root.join(&undo.dir).join(&undo.name);
    match &undo.before {
        Some(bytes) => {
            let mut created = Vec::new();
            let fd = open_dir(root, &undo.dir, true, &mut created)?;
            replace_at(&fd, &undo.name, bytes, &shown)?;
        }
        None => {
            if let Ok(fd) = open_dir(root, &undo.dir, false, &mut Vec::new()) {
                match rustix::fs::unlinkat(&fd, undo.name.as_str(), AtFlags::empty()) {
                    Ok(()) | Err(Errno::NOENT) => {}
                    Err(e) => return Err(err(&shown, "cannot remove", e)),
                }
            }
            prune(root, &undo.created);
        }
    }
    Ok(())
}
