use super::*;
use crate::sockets::listeners_on_port;
use crate::test_support::sockets::{inode_of, listen_on, port_of};
use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};

#[test]
fn parses_socket_links() {
    assert_eq!(socket_inode(b"socket:[12345]"), Some(12345));
    for other in [
        &b"pipe:[12345]"[..],
        b"socket:[]",
        b"socket:[12x]",
        b"/dev/null",
        b"socket:[1",
    ] {
        assert_eq!(socket_inode(other), None);
    }
}

fn own_pid() -> i32 {
    std::process::id() as i32
}

fn pids(owners: &HashMap<u64, Vec<Owner>>, inode: u64) -> Vec<i32> {
    owners
        .get(&inode)
        .map(|found| found.iter().map(|owner| owner.pid).collect())
        .unwrap_or_default()
}

#[test]
fn owners_among_finds_this_process() {
    let listener = listen_on("127.0.0.1:0", None).unwrap();
    let inode = inode_of(&listener);
    let owners = owners_among(&[inode, 1], &[own_pid(), own_pid(), i32::MAX]);
    assert_eq!(owners.keys().collect::<Vec<_>>(), vec![&inode]);
    let owner = &owners[&inode][0];
    assert_eq!(owner.pid, own_pid());
    let exe = std::env::current_exe().unwrap();
    let exe_name = exe.file_name().unwrap().to_str().unwrap();
    assert!(owner.command.contains(exe_name), "{owner:?}");
    let me = nix::unistd::User::from_uid(nix::unistd::geteuid()).unwrap();
    assert_eq!(
        owner.user(),
        me.map_or_else(|| nix::unistd::geteuid().to_string(), |u| u.name)
    );
}

#[test]
fn owners_among_other_pids_is_empty() {
    let listener = listen_on("127.0.0.1:0", None).unwrap();
    assert!(owners_among(&[inode_of(&listener)], &[1, i32::MAX, -1]).is_empty());
    assert!(owners_among(&[], &[own_pid()]).is_empty());
}

#[test]
fn owners_on_host_finds_this_process() {
    let listener = listen_on("127.0.0.1:0", None).unwrap();
    let found = listeners_on_port(port_of(&listener)).unwrap();
    let owners = owners_on_host(&found);
    assert!(
        pids(&owners, found[0].inode).contains(&own_pid()),
        "{owners:?}"
    );
}

#[test]
fn owners_on_host_tolerates_sockets_without_owner() {
    let ghost = Listener {
        addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 1,
        v6_only: false,
        inode: u64::MAX,
        uid: u32::MAX - 1,
    };
    assert!(owners_on_host(&[ghost]).is_empty());
    assert!(owners_on_host(&[]).is_empty());
}

/// Stops and reaps a child this test started, whatever the assertions did.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs a python script that prints one line of numbers once it is ready, and keeps
/// running (with every process it forked) until its stdin closes.
fn python(script: &str) -> (Reaped, Vec<i32>) {
    let child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 is needed for this test");
    let mut child = Reaped(child);
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let numbers = line
        .split_whitespace()
        .map(|word| word.parse().unwrap())
        .collect();
    (child, numbers)
}

fn owner_pids(owners: &[Owner]) -> Vec<i32> {
    owners.iter().map(|owner| owner.pid).collect()
}

fn user_name(uid: u32) -> String {
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)).unwrap();
    user.map_or_else(|| uid.to_string(), |user| user.name)
}

const NOBODY: u32 = 65534;

/// Listens, forks a child sharing the socket as gunicorn forks its workers (the child
/// drops to nobody when DROP is 1, as `gunicorn --user` workers do), prints port and child.
const PYTHON_FORKING_SERVER: &str = "
import os, socket, sys
s = socket.socket()
s.bind(('127.0.0.1', 0))
s.listen()
r, w = os.pipe()
child = os.fork()
if child == 0:
    if DROP:
        os.setresgid(65534, 65534, 65534)
        os.setresuid(65534, 65534, 65534)
    os.write(w, b'.')
    sys.stdin.read()
    os._exit(0)
os.read(r, 1)
print(s.getsockname()[1], child, flush=True)
sys.stdin.read()
os.waitpid(child, 0)
";

fn forking_server(drop_privileges: bool) -> (Reaped, u16, i32) {
    let drop = if drop_privileges {
        "DROP = 1"
    } else {
        "DROP = 0"
    };
    let (server, numbers) = python(&format!("{drop}{PYTHON_FORKING_SERVER}"));
    (server, numbers[0] as u16, numbers[1])
}

#[test]
fn owners_on_host_finds_a_forked_family() {
    let (server, port, forked) = forking_server(false);
    let found = listeners_on_port(port).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    let owners = owners_on_host(&found);
    let holders = &owners[&found[0].inode];
    let parent = server.0.id() as i32;
    assert_eq!(owner_pids(holders), vec![parent, forked]);
    assert!(
        holders.iter().all(|o| o.command.contains("python3")),
        "{holders:?}"
    );

    let among = owners_among(&[found[0].inode], &[parent]);
    assert_eq!(pids(&among, found[0].inode), vec![parent]);
}

#[test]
fn owners_on_host_finds_workers_that_dropped_privileges() {
    crate::test_support::network::require_root("dropping privileges");
    let (server, port, worker) = forking_server(true);
    let found = listeners_on_port(port).unwrap();
    let owners = owners_on_host(&found);
    let holders = &owners[&found[0].inode];
    assert_eq!(owner_pids(holders), vec![server.0.id() as i32, worker]);
    assert_eq!(holders[0].user(), user_name(0));
    assert_eq!(holders[1].user(), user_name(NOBODY));
}

/// gunicorn `--reuse-port --user nobody` run as root: each worker binds its own socket
/// as root, then drops to nobody; the master holds none of them.
#[test]
fn owners_on_host_finds_a_worker_that_bound_before_changing_uid() {
    crate::test_support::network::require_root("dropping privileges");
    let (master, numbers) = python(
        "
import os, socket, sys
r, w = os.pipe()
worker = os.fork()
if worker == 0:
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    s.listen()
    os.setresgid(65534, 65534, 65534)
    os.setresuid(65534, 65534, 65534)
    os.write(w, str(s.getsockname()[1]).encode())
    sys.stdin.read()
    os._exit(0)
print(os.read(r, 10).decode(), worker, flush=True)
sys.stdin.read()
os.waitpid(worker, 0)
",
    );
    let (port, worker) = (numbers[0] as u16, numbers[1]);
    let found = listeners_on_port(port).unwrap();
    assert_eq!(found[0].uid, 0);
    assert_eq!(crate::process::procfs::effective_uid(worker), Some(NOBODY));
    let owners = owners_on_host(&found);
    assert_eq!(pids(&owners, found[0].inode), vec![worker]);
    assert_eq!(owners[&found[0].inode][0].user(), user_name(NOBODY));
    drop(master);
}

/// The walk to relatives reads the children files or, on a kernel without them, every
/// process's parent ([`crate::process::procfs::children_by_parent`]): both find the same relatives.
#[test]
fn relatives_are_found_with_or_without_children_files() {
    let sleeper = Command::new("sleep")
        .arg("60")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let sleeper = Reaped(sleeper);
    let child = sleeper.0.id() as i32;
    let parent = nix::unistd::getppid().as_raw();
    let by_parent = Family {
        children_files: false,
        by_parent: None,
    };
    for mut family in [Family::new(), by_parent] {
        let relatives = family.relatives(own_pid());
        assert_eq!(relatives.first(), Some(&parent), "{relatives:?}");
        // Other tests may spawn children meanwhile.
        assert!(relatives.contains(&child), "{relatives:?}");
    }
}

/// A listener handed to a child by inheritance, like a socket-activated service.
fn inheritable(listener: &TcpListener) -> OwnedFd {
    let copy = OwnedFd::from(listener.try_clone().unwrap());
    fcntl(copy.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::empty())).unwrap();
    copy
}

#[test]
fn owners_on_host_finds_a_child_holding_an_inherited_listener() {
    let listener = listen_on("127.0.0.1:0", None).unwrap();
    let copy = inheritable(&listener);
    let sleeper = Command::new("sleep")
        .arg("60")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let sleeper = Reaped(sleeper);
    drop(copy);

    let found = listeners_on_port(port_of(&listener)).unwrap();
    let owners = owners_on_host(&found);
    let holders = pids(&owners, found[0].inode);
    // Other tests may spawn children meanwhile, which inherit the copy too.
    assert!(holders.contains(&own_pid()), "{owners:?}");
    assert!(holders.contains(&(sleeper.0.id() as i32)), "{owners:?}");
    let sleep = owners[&found[0].inode]
        .iter()
        .find(|o| o.pid == sleeper.0.id() as i32);
    assert_eq!(sleep.unwrap().command, "sleep 60");
}

#[test]
fn owners_near_first_leaves_the_far_processes_unread_when_the_near_ones_hold_every_socket() {
    let listener = listen_on("127.0.0.1:0", None).unwrap();
    let inode = inode_of(&listener);
    let owners = owners_near_first(&[inode], &[i32::MAX, own_pid()], || {
        panic!("the far processes were read though the near ones hold every socket")
    });
    assert_eq!(pids(&owners, inode), vec![own_pid()]);
}

#[test]
fn owners_near_first_reads_the_far_processes_for_a_socket_the_near_ones_lack() {
    let listener = listen_on("127.0.0.1:0", None).unwrap();
    let inode = inode_of(&listener);
    let owners = owners_near_first(&[inode], &[i32::MAX], || vec![1, own_pid()]);
    assert_eq!(pids(&owners, inode), vec![own_pid()]);
    // One socket held near, one held by nobody: the far round still runs.
    let mut far_read = false;
    let owners = owners_near_first(&[inode, 1], &[own_pid()], || {
        far_read = true;
        Vec::new()
    });
    assert!(far_read);
    assert_eq!(owners.keys().collect::<Vec<_>>(), vec![&inode]);
}

#[test]
fn a_process_without_a_command_line_is_named_by_the_kernel() {
    // A zombie keeps its pid and name but has no command line left.
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id() as i32;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while crate::process::procfs::stat(pid).is_none_or(|s| s.state != 'Z') {
        assert!(std::time::Instant::now() < deadline, "`true` never ended");
        std::thread::yield_now();
    }
    let owner = describe_process(pid);
    child.wait().unwrap();
    let owner = owner.expect("a zombie is described");
    assert_eq!(owner.command, "true");
    assert_eq!(owner.uid, nix::unistd::geteuid().as_raw());
    assert_eq!(owner.pid, pid);
}

#[test]
fn one_table_holding_several_wanted_sockets_is_read_until_it_has_given_them_all() {
    // As gunicorn's master holds both a 0.0.0.0 and a :: listener.
    let first = listen_on("127.0.0.1:0", None).unwrap();
    let second = listen_on("127.0.0.1:0", None).unwrap();
    let (a, b) = (inode_of(&first), inode_of(&second));
    let owners = owners_near_first(&[a, b, 1], &[own_pid()], Vec::new);
    assert_eq!(pids(&owners, a), vec![own_pid()]);
    assert_eq!(pids(&owners, b), vec![own_pid()]);
}

/// `sleep`, holding `listener` only as descriptor `fd`, once it runs.
fn sleeper_holding(listener: &TcpListener, fd: i32) -> Reaped {
    let socket = OwnedFd::from(listener.try_clone().unwrap());
    // Nothing else between 3 and 9: a missing descriptor is part of the search.
    let script =
        format!("exec 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-; exec {fd}<&0 0</dev/null; exec sleep 60");
    let child = Command::new("bash")
        .args(["-c", &script])
        .stdin(Stdio::from(socket))
        .spawn()
        .unwrap();
    let child = Reaped(child);
    let pid = child.0.id() as i32;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while crate::process::procfs::command_line(pid).as_deref() != Some("sleep 60") {
        assert!(
            std::time::Instant::now() < deadline,
            "bash never became sleep"
        );
        std::thread::yield_now();
    }
    child
}

#[test]
fn a_socket_is_found_right_after_stdio_and_anywhere_else_in_the_table() {
    let listener = listen_on("127.0.0.1:0", None).unwrap();
    let inode = inode_of(&listener);
    let wanted: HashSet<u64> = [inode].into();
    // Where gunicorn keeps its listener (read by its link alone), and further up (found by
    // listing the table once the first guesses miss).
    for fd in [3, 7] {
        let sleeper = sleeper_holding(&listener, fd);
        let pid = sleeper.0.id() as i32;
        assert_eq!(scan_fd_table(pid, &wanted), vec![inode], "held as fd {fd}");
    }
    // Two wanted, one held at 3 and the other nowhere: the table is listed, and has one.
    let sleeper = sleeper_holding(&listener, 3);
    let both: HashSet<u64> = [inode, 1].into();
    assert_eq!(scan_fd_table(sleeper.0.id() as i32, &both), vec![inode]);
    assert!(scan_fd_table(i32::MAX, &wanted).is_empty());
}
