//! The few facts about processes that the launcher reads from `/proc`, each
//! read and parsed here only: the process tree ([`crate::process::tree`]) and the
//! search for a socket's owners ([`crate::process::owners`]) share them.
//!
//! Hand-written on purpose: each is one small file read and a split, and a
//! general `/proc` crate parses every field of every file (and pulls in its
//! dependencies) for the few values needed here. A process may exit between
//! two reads: every function answers `None` or nothing for it, never an error.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;

/// A whole `/proc` file. Its size says 0, so std's `read_to_end` would ask
/// for the size and position first and then grow its buffer from 32 bytes;
/// this reads into `capacity` bytes at once (more only if the file is longer).
pub fn read(path: &str, capacity: usize) -> Option<Vec<u8>> {
    let mut file = fs::File::open(path).ok()?;
    let mut text = vec![0; capacity.max(64)];
    let mut len = 0;
    loop {
        if len == text.len() {
            text.resize(len * 2, 0);
        }
        match file.read(&mut text[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    text.truncate(len);
    Some(text)
}

/// [`read`] as text (`/proc` text files are ASCII but for names).
pub fn read_text(path: &str) -> Option<String> {
    read(path, 4096).map(|t| String::from_utf8_lossy(&t).into_owned())
}

/// Every pid in this PID namespace's `/proc`.
pub fn all_pids() -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .collect()
}

/// What `/proc/<pid>/stat` says of a process (cheaper for the kernel than `status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    /// `R`, `S`, `T`, `Z`, ...
    pub state: char,
    pub ppid: i32,
    /// Start time in clock ticks after boot: with the pid, it names one
    /// process even if the pid is reused later.
    pub start: u64,
    /// A zombie's wait status (field 52, Linux 3.5).
    pub exit_code: Option<i32>,
}

pub fn stat(pid: i32) -> Option<Stat> {
    parse_stat(&read_text(&format!("/proc/{pid}/stat"))?)
}

/// The parent pid.
pub fn ppid(pid: i32) -> Option<i32> {
    stat(pid).map(|s| s.ppid)
}

/// `pid (comm) state ppid ... starttime ... exit_code`: comm may hold spaces
/// and parentheses, so fields are counted from its last closing parenthesis
/// (state is field 3 of the line, starttime 22, exit_code 52).
pub fn parse_stat(stat: &str) -> Option<Stat> {
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).copied();
    Some(Stat {
        state: field(3)?.chars().next()?,
        ppid: field(4)?.parse().ok()?,
        start: field(22)?.parse().ok()?,
        exit_code: field(52).and_then(|c| c.parse().ok()),
    })
}

/// The children of `pid`, from `/proc/<pid>/task/<tid>/children` (a forked
/// child is listed under the thread that forked it, so every thread is
/// read); `None` on a kernel built without those files.
pub fn children(pid: i32) -> Option<Vec<i32>> {
    let mut found = Vec::new();
    let mut any = false;
    for task in fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        if let Some(list) = read(
            &format!(
                "/proc/{pid}/task/{}/children",
                task.file_name().to_string_lossy()
            ),
            4096,
        ) {
            any = true;
            found.extend(parse_pids(&list));
        }
    }
    any.then_some(found)
}

/// The children that `pid`'s main thread forked: one file, where [`children`]
/// reads a directory and a file per thread. gunicorn's master forks its workers
/// from its main thread (its other threads only wake it). Empty on a kernel
/// without the file, or once `pid` is gone.
pub fn main_thread_children(pid: i32) -> Vec<i32> {
    read(&format!("/proc/{pid}/task/{pid}/children"), 4096)
        .map(|list| parse_pids(&list))
        .unwrap_or_default()
}

/// The pids in the text of a `children` file: decimal pids, each followed by a space.
pub fn parse_pids(text: &[u8]) -> Vec<i32> {
    text.split(u8::is_ascii_whitespace)
        .filter_map(|pid| std::str::from_utf8(pid).ok()?.parse().ok())
        .collect()
}

/// Every process's children, from every process's parent: what is left on a
/// kernel without the files [`children`] reads, as `ps` does it (one `stat`
/// per process on the host). Children in `/proc`'s order.
pub fn children_by_parent() -> HashMap<i32, Vec<i32>> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for pid in all_pids() {
        if let Some(ppid) = ppid(pid) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    children
}

/// The owner of `/proc/<pid>`: the effective uid. Unlike the files in it,
/// the directory keeps that owner when the process is not dumpable. One
/// `stat`, no file read.
pub fn effective_uid(pid: i32) -> Option<u32> {
    fs::metadata(format!("/proc/{pid}"))
        .ok()
        .map(|metadata| metadata.uid())
}

/// What `/proc/<pid>/status` says of a process, for the owner search
/// ([`pending_signals`] and [`voluntary_sleeps`] read the same file for the
/// supervisor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub name: String,
    /// Real, effective, saved and filesystem uid.
    pub uids: [u32; 4],
    /// Capacity of the fd table: an upper bound of the fds to read.
    pub fd_size: u64,
}

impl Status {
    pub fn effective_uid(&self) -> u32 {
        self.uids[1]
    }
}

/// `None` for a process that is gone, or a `status` without `Name` and `Uid`.
pub fn status(pid: i32) -> Option<Status> {
    parse_status(&read_text(&format!("/proc/{pid}/status"))?)
}

pub fn parse_status(status: &str) -> Option<Status> {
    let mut name = None;
    let mut uids = None;
    // Absent only if the format changed: then such a process is read last.
    let mut fd_size = u64::MAX;
    for (key, value) in status_fields(status) {
        match key {
            "Name" => name = Some(value.to_owned()),
            "Uid" => uids = parse_uids(value),
            "FDSize" => fd_size = value.parse().unwrap_or(u64::MAX),
            _ => {}
        }
    }
    Some(Status {
        name: name?,
        uids: uids?,
        fd_size,
    })
}

fn parse_uids(value: &str) -> Option<[u32; 4]> {
    let mut uids = value.split_whitespace().map(|uid| uid.parse().ok());
    Some([uids.next()??, uids.next()??, uids.next()??, uids.next()??])
}

/// The `Key:\tvalue` lines of a `status` file, values trimmed; lines without
/// a colon skipped.
fn status_fields(status: &str) -> impl Iterator<Item = (&str, &str)> {
    status.lines().filter_map(|line| {
        let (key, value) = line.split_once(':')?;
        Some((key, value.trim()))
    })
}

/// Signals pending for the process (its shared queue and its main
/// thread's), as a mask with bit `N - 1` for signal N.
pub fn pending_signals(pid: i32) -> Option<u64> {
    let status = read_text(&format!("/proc/{pid}/status"))?;
    let mut mask = None;
    for (key, hex) in status_fields(&status) {
        if key == "SigPnd" || key == "ShdPnd" {
            mask = Some(mask.unwrap_or(0) | u64::from_str_radix(hex, 16).ok()?);
        }
    }
    mask
}

/// How many times the process's main thread went to sleep of its own accord
/// (`voluntary_ctxt_switches`): blocking in a system call counts, being
/// preempted does not.
pub fn voluntary_sleeps(pid: i32) -> Option<u64> {
    let status = read_text(&format!("/proc/{pid}/status"))?;
    status_fields(&status)
        .find(|&(key, _)| key == "voluntary_ctxt_switches")
        .and_then(|(_, count)| count.parse().ok())
}

/// The command line, words joined by spaces, on one line (control
/// characters escaped: it is another process's text, shown in tables, logs
/// and systemd's STATUS); `None` for a kernel thread or a process that is
/// gone.
pub fn command_line(pid: i32) -> Option<String> {
    let raw = read(&format!("/proc/{pid}/cmdline"), 4096)?;
    let words: Vec<String> = raw
        .split(|&byte| byte == 0)
        .filter(|word| !word.is_empty())
        .map(|word| crate::log::one_line(&String::from_utf8_lossy(word)).into_owned())
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// One variable of the environment the process was exec'd with.
pub fn environ_var(pid: i32, name: &str) -> Option<String> {
    let raw = read(&format!("/proc/{pid}/environ"), 8192)?;
    raw.split(|&byte| byte == 0).find_map(|entry| {
        let value = entry.strip_prefix(name.as_bytes())?.strip_prefix(b"=")?;
        Some(String::from_utf8_lossy(value).into_owned())
    })
}

/// The name of `uid` in `/etc/passwd`, the number when it has none. Read
/// here rather than through glibc's NSS: the launcher is linked statically,
/// and a static glibc serves NSS by loading the modules of the glibc it was
/// built with. Users known only to a directory service (LDAP, SSSD) show as
/// numbers.
pub fn user_name(uid: u32) -> String {
    let passwd = read("/etc/passwd", 4096).unwrap_or_default();
    name_in_passwd(&passwd, uid).unwrap_or_else(|| uid.to_string())
}

/// `name:password:uid:...` lines: the first name whose uid is `uid`.
pub fn name_in_passwd(passwd: &[u8], uid: u32) -> Option<String> {
    let wanted = uid.to_string();
    passwd.split(|&b| b == b'\n').find_map(|line| {
        let mut fields = line.split(|&b| b == b':');
        let name = fields.next()?;
        let id = fields.nth(1)?;
        (id == wanted.as_bytes() && !name.is_empty() && !name.starts_with(b"#"))
            .then(|| String::from_utf8_lossy(name).into_owned())
    })
}

#[cfg(test)]
mod tests;
