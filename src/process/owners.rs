//! Which processes hold a socket: the search for a listener's owners across the host.
//!
//! The kernel does not record who holds a socket; the only link is the fd tables under
//! `/proc/<pid>/fd`, and reading every one of them (as `ss -p` and `lsof` do) is slow on a
//! busy host. [`owners_on_host`] reads as few as it can: the processes running as the
//! socket's uid first, smallest table first, until each socket has a holder, then the
//! holders' relatives (gunicorn's master and workers share one listener). It can miss a
//! holder; it never fails. [`owners_among`] is the cheap form for a caller that already
//! knows the process tree. The process facts come from [`crate::process::procfs`];
//! `docs/sockets-and-probes.md` explains the search and what it can miss.

use crate::sockets::Listener;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A process holding a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub pid: i32,
    /// `/proc/<pid>/cmdline` joined by spaces; the kernel's `comm` when that is empty.
    pub command: String,
    /// The effective uid; [`Owner::user`] names it.
    pub uid: u32,
}

impl Owner {
    /// The name of the owner's uid ([`crate::process::procfs::user_name`]). Looked up
    /// only when shown: `run` needs names only to explain a failure.
    pub fn user(&self) -> String {
        crate::process::procfs::user_name(self.uid)
    }
}

/// Which processes hold each socket inode; pids ascending.
type Holders = HashMap<u64, BTreeSet<i32>>;

/// Owners (pid, command, user) of the given socket inodes, searching only the given pids' fd tables.
/// Used by `run`, which knows gunicorn's process tree. Inodes held by none of them are absent.
pub fn owners_among(inodes: &[u64], pids: &[i32]) -> HashMap<u64, Vec<Owner>> {
    owners_near_first(inodes, pids, Vec::new)
}

/// [`owners_among`] in two rounds: `near` first and, only while some inode is still without
/// a holder, `far()`. `run` passes the launcher's children (gunicorn's master holds every
/// socket it listens on) as `near` and the whole tree as `far`, so the tree is walked only
/// when something else is on the port: a worker's own socket, or a foreign program's.
/// Holders are what both rounds found: the far round adds to the near one's.
pub fn owners_near_first(
    inodes: &[u64],
    near: &[i32],
    far: impl FnOnce() -> Vec<i32>,
) -> HashMap<u64, Vec<Owner>> {
    let mut scanner = FdScanner::new(inodes.iter().copied().collect());
    let mut holders = Holders::new();
    for pid in near.iter().copied().collect::<BTreeSet<_>>() {
        record(&mut holders, pid, scanner.held(pid));
    }
    if inodes.iter().any(|inode| !holders.contains_key(inode)) {
        for pid in far().into_iter().collect::<BTreeSet<_>>() {
            record(&mut holders, pid, scanner.held(pid));
        }
    }
    describe(&holders)
}

/// Owners of the given sockets on the whole host, without reading every process's fd table
/// (the module documentation outlines the search; `docs/sockets-and-probes.md` says what it
/// can miss). Inodes whose owner was not found are absent.
pub fn owners_on_host(listeners: &[Listener]) -> HashMap<u64, Vec<Owner>> {
    let mut scanner = FdScanner::new(listeners.iter().map(|listener| listener.inode).collect());
    let uids: HashSet<u32> = listeners.iter().map(|listener| listener.uid).collect();
    let mut holders = first_holders(&uids, &mut scanner);
    add_family_holders(&mut holders, &mut scanner);
    describe(&holders)
}

fn record(holders: &mut Holders, pid: i32, inodes: &[u64]) {
    for &inode in inodes {
        holders.entry(inode).or_default().insert(pid);
    }
}

/// At least one holder per inode, reading as few fd tables as it can: first the processes
/// that run as a socket's uid, then the rest, each group smallest fd table first, until
/// every inode has a holder.
///
/// The uid is the owner of the `/proc/<pid>` directory, the process's effective uid (the
/// kernel exempts that directory from the root ownership it gives to the files of a
/// process that is not dumpable): one `stat`, no file read. The second group exists for
/// processes that created a socket and then changed uid, as gunicorn's `--reuse-port`
/// workers do: they bind, then switch to `--user`. It is read only when the first group
/// leaves an inode unfound, and then costs what `ss -p` costs, minus the largest tables
/// whenever the holder comes earlier.
fn first_holders(uids: &HashSet<u32>, scanner: &mut FdScanner) -> Holders {
    let mut search = Search {
        pending: scanner.wanted.clone(),
        holders: Holders::new(),
    };
    let sizes = TableSizes::probe();
    let (same_uid, other_uid): (Vec<_>, Vec<_>) = crate::process::procfs::all_pids()
        .into_iter()
        .filter_map(|pid| Some((pid, crate::process::procfs::effective_uid(pid)?)))
        .partition(|(_, owner)| uids.contains(owner));
    let pids = |group: Vec<(i32, u32)>| group.into_iter().map(|(pid, _)| pid);
    search.scan(sizes.smallest_first(pids(same_uid)), scanner);
    if !search.pending.is_empty() {
        search.scan(sizes.smallest_first(pids(other_uid)), scanner);
    }
    search.holders
}

struct Search {
    pending: HashSet<u64>,
    holders: Holders,
}

impl Search {
    fn scan(&mut self, pids: Vec<i32>, scanner: &mut FdScanner) {
        for pid in pids {
            if self.pending.is_empty() {
                return;
            }
            let held = scanner.held(pid);
            for inode in held {
                self.pending.remove(inode);
            }
            record(&mut self.holders, pid, held);
        }
    }
}

/// Orders processes by the size of their fd table, so that a process holding tens of
/// thousands of connections is read last, if at all.
struct TableSizes {
    /// Linux 6.2 and later report the number of open fds as the size of `/proc/<pid>/fd`:
    /// one `stat`, and an exact zero that rules a process (a kernel thread) out.
    /// Older kernels report 0 for all, and `FDSize` from `status` is the bound left.
    exact: bool,
}

impl TableSizes {
    fn probe() -> Self {
        // Reading through an open descriptor guarantees our own table is not empty.
        let exact = fs::File::open("/proc/self/fd")
            .and_then(|dir| dir.metadata())
            .is_ok_and(|metadata| metadata.len() > 0);
        TableSizes { exact }
    }

    fn smallest_first(&self, pids: impl Iterator<Item = i32>) -> Vec<i32> {
        let mut sized: Vec<(u64, i32)> = pids
            .filter_map(|pid| Some((self.size(pid)?, pid)))
            .filter(|&(size, _)| size > 0 || !self.exact)
            .collect();
        sized.sort_unstable();
        sized.into_iter().map(|(_, pid)| pid).collect()
    }

    fn size(&self, pid: i32) -> Option<u64> {
        if self.exact {
            fs::metadata(format!("/proc/{pid}/fd"))
                .ok()
                .map(|metadata| metadata.len())
        } else {
            crate::process::procfs::status(pid).map(|status| status.fd_size)
        }
    }
}

/// Walks from every known holder to its parent and children, and on through every relative
/// that holds one of the sockets too: gunicorn's master and workers share one listener.
fn add_family_holders(holders: &mut Holders, scanner: &mut FdScanner) {
    let mut family = Family::new();
    let mut queue: VecDeque<i32> = holders.values().flatten().copied().collect();
    let mut visited: HashSet<i32> = queue.iter().copied().collect();
    while let Some(pid) = queue.pop_front() {
        for relative in family.relatives(pid) {
            if !visited.insert(relative) {
                continue;
            }
            let held = scanner.held(relative);
            if !held.is_empty() {
                record(holders, relative, held);
                queue.push_back(relative);
            }
        }
    }
}

/// Parents and children of processes. Children come from `/proc/<pid>/task/<tid>/children`;
/// kernels built without `CONFIG_PROC_CHILDREN` lack that file, and then the parent of
/// every process is read once, as `ps` does ([`crate::process::procfs::children_by_parent`]).
struct Family {
    children_files: bool,
    by_parent: Option<HashMap<i32, Vec<i32>>>,
}

impl Family {
    fn new() -> Self {
        let children_files = Path::new("/proc/thread-self/children").exists();
        Family {
            children_files,
            by_parent: None,
        }
    }

    fn relatives(&mut self, pid: i32) -> Vec<i32> {
        let parent = crate::process::procfs::ppid(pid).filter(|&ppid| ppid > 0);
        let children = if self.children_files {
            crate::process::procfs::children(pid).unwrap_or_default()
        } else {
            self.children_by_parent(pid)
        };
        parent.into_iter().chain(children).collect()
    }

    fn children_by_parent(&mut self, pid: i32) -> Vec<i32> {
        let by_parent = self
            .by_parent
            .get_or_insert_with(crate::process::procfs::children_by_parent);
        by_parent.get(&pid).cloned().unwrap_or_default()
    }
}

fn describe(holders: &Holders) -> HashMap<u64, Vec<Owner>> {
    let mut described: HashMap<i32, Option<Owner>> = HashMap::new();
    let mut owners = HashMap::new();
    for (&inode, pids) in holders {
        let found: Vec<Owner> = pids
            .iter()
            .filter_map(|&pid| {
                described
                    .entry(pid)
                    .or_insert_with(|| describe_process(pid))
                    .clone()
            })
            .collect();
        if !found.is_empty() {
            owners.insert(inode, found);
        }
    }
    owners
}

/// `None` when the process has exited since its fd table was read. The uid is the owner of
/// `/proc/<pid>` (one `stat`, where `status` costs a read of a page the kernel composes);
/// the kernel's name is read only for a process without a command line.
fn describe_process(pid: i32) -> Option<Owner> {
    let uid = crate::process::procfs::effective_uid(pid)?;
    let command = match crate::process::procfs::command_line(pid) {
        Some(command) => command,
        None => crate::process::procfs::status(pid)?.name,
    };
    Some(Owner { pid, command, uid })
}

/// Reads fd tables, each at most once, looking for a fixed set of socket inodes.
struct FdScanner {
    wanted: HashSet<u64>,
    seen: HashMap<i32, Vec<u64>>,
}

impl FdScanner {
    fn new(wanted: HashSet<u64>) -> Self {
        FdScanner {
            wanted,
            seen: HashMap::new(),
        }
    }

    /// The wanted inodes that `pid` holds; empty when it holds none, is gone or unreadable.
    fn held(&mut self, pid: i32) -> &[u64] {
        let wanted = &self.wanted;
        self.seen.entry(pid).or_insert_with(|| {
            if wanted.is_empty() {
                Vec::new()
            } else {
                scan_fd_table(pid, wanted)
            }
        })
    }
}

/// The wanted inodes among `pid`'s descriptors. A program opens its listeners early, so the
/// descriptors right after stdin, stdout and stderr are read first, one link each; the
/// table is listed (which costs the kernel an entry per descriptor) only when they do not
/// hold every wanted inode.
fn scan_fd_table(pid: i32, wanted: &HashSet<u64>) -> Vec<u64> {
    let mut held = Vec::new();
    let first = (3..)
        .take(wanted.len())
        .map(|fd| format!("/proc/{pid}/fd/{fd}").into());
    if !look_through(first, wanted, &mut held) || held.len() == wanted.len() {
        return held;
    }
    let Ok(entries) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return held;
    };
    look_through(entries.flatten().map(|e| e.path()), wanted, &mut held);
    held
}

/// Adds to `held` the wanted inodes that the fd links at `paths` name, until every one is
/// found; false when reading links is refused.
fn look_through(
    paths: impl Iterator<Item = std::path::PathBuf>,
    wanted: &HashSet<u64>,
    held: &mut Vec<u64>,
) -> bool {
    for path in paths {
        let target = match fs::read_link(path) {
            Ok(target) => target,
            // Listing a table can be allowed where reading its links is not: one refusal
            // means all of them would be refused, each costing a syscall.
            Err(error) if error.kind() == io::ErrorKind::PermissionDenied => return false,
            // No such fd, or closed since the listing.
            Err(_) => continue,
        };
        if let Some(inode) = socket_inode(target.as_os_str().as_bytes())
            && wanted.contains(&inode)
            && !held.contains(&inode)
        {
            held.push(inode);
            // Every one found: the rest of the table cannot add to it.
            if held.len() == wanted.len() {
                break;
            }
        }
    }
    true
}

/// The inode in a `socket:[12345]` fd link (crate-visible for the tests of
/// [`crate::sockets`], which name a socket as its fd table does).
pub(crate) fn socket_inode(link: &[u8]) -> Option<u64> {
    let digits = link.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests;
