//! Socket inspection: which TCP sockets listen on a port, and which processes hold them.
//!
//! Everything here asks the kernel instead of trusting a command line: a `gunicorn.conf.py`
//! hook or `reuse_port` can defeat the `--bind` we pass, so the only proof of "listening on
//! all interfaces" is the kernel's own socket table.
//!
//! # Listeners: `NETLINK_SOCK_DIAG`
//!
//! [`listeners_on_port`] sends the same `inet_diag` dump request that `ss` sends, once for
//! `AF_INET` and once for `AF_INET6`, with two filters that the kernel applies itself:
//!
//! - the state mask is LISTEN only, so the kernel walks only its listening hash and never
//!   the established table (on a host with 20,000 connections those never reach us);
//! - the request's source port is the port asked for; the kernel skips every listener whose
//!   port differs (`inet_diag_dump_icsk` compares `idiag_sport` when it is non-zero).
//!
//! Userspace checks state and port again: it costs nothing and keeps the answer right on a
//! kernel that ignores a filter.
//! For IPv6 sockets in LISTEN state the kernel attaches `INET_DIAG_SKV6ONLY` to every reply
//! on its own: the request's extension mask is eight bits wide and cannot name attribute 11,
//! so there is nothing to ask for. That attribute is the only place `IPV6_V6ONLY` of another process's
//! socket can be read, and it decides whether `::` also accepts IPv4.
//!
//! When netlink is unavailable (a seccomp filter, a kernel without `inet_diag`), the text
//! tables `/proc/net/tcp` and `/proc/net/tcp6` are read instead (state `0A`). They carry no
//! `IPV6_V6ONLY`, so there an IPv6 listener's `v6_only` is the host default for new sockets,
//! `net.ipv6.bindv6only`: right for any program that does not set the option itself, wrong
//! for one that does. [`query_listeners`] says which source answered.
//!
//! # Owners: a bounded search
//!
//! The kernel does not record which process holds a socket; the only link is the fd tables
//! under `/proc/<pid>/fd`. `ss -p` and `lsof` read every one of them, which is what makes them
//! slow on a busy host. [`owners_on_host`] uses two facts instead:
//!
//! - the socket's uid, reported by the kernel, is the fsuid of the process that created it,
//!   and that process (or a relative it handed the socket to) usually still runs as that
//!   uid; so the processes with that effective uid come first, smallest fd table first
//!   (the table size costs one `stat`), and the search for an inode ends at its first
//!   holder. Only if an inode is still unfound are the other processes read, in the same
//!   order: a process that changed uid after creating its socket (gunicorn's `--reuse-port`
//!   workers bind as root, then switch to `--user`) is found there;
//! - a listening socket is shared by a process family (gunicorn's master and its forked
//!   workers), so from each holder the search walks to parent and children, and on through
//!   every relative that also holds the socket.
//!
//! Holders that are neither a first holder nor related to one are not reported (a socket
//! passed over a unix socket to a stranger). A socket whose holder we cannot see (another
//! pid namespace, a table we may not read, a socket closed meanwhile) leaves its inode out
//! of the answer after the costly path: every readable fd table, largest last. If PID 1
//! holds a socket (systemd socket activation), the walk goes through its children, one fd
//! table per service. Processes that vanish or cannot be read are skipped; nothing here
//! fails.
//!
//! [`owners_among`] is the cheap form for a caller that already knows the process tree.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A TCP socket in LISTEN state, as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Listener {
    /// Exact local address (0.0.0.0, ::, 127.0.0.1, ::ffff:..., etc.).
    pub addr: IpAddr,
    pub port: u16,
    /// For IPv6 sockets: `IPV6_V6ONLY` is set (always false for IPv4).
    pub v6_only: bool,
    /// Socket inode, the key that links the socket to the fd tables of its holders.
    pub inode: u64,
    /// Owning uid from the kernel: the fsuid of the process that created the socket.
    pub uid: u32,
}

impl Listener {
    /// Accepts connections to every local address of at least one family.
    pub fn is_wildcard(&self) -> bool {
        self.covers_ipv4() || self.covers_ipv6()
    }

    /// Accepts IPv4 connections to every local IPv4 address.
    ///
    /// Besides `0.0.0.0` and a dual-stack `::`, an IPv6 socket bound to `::ffff:0.0.0.0`
    /// counts: the kernel stores it as IPv4 "any", and it accepts IPv4 on every interface.
    pub fn covers_ipv4(&self) -> bool {
        match self.addr {
            IpAddr::V4(addr) => addr.is_unspecified(),
            IpAddr::V6(addr) => {
                (addr.is_unspecified() && !self.v6_only)
                    || addr.to_ipv4_mapped() == Some(Ipv4Addr::UNSPECIFIED)
            }
        }
    }

    /// Accepts IPv6 connections to every local IPv6 address (`::`, v6-only or not).
    pub fn covers_ipv6(&self) -> bool {
        matches!(self.addr, IpAddr::V6(addr) if addr.is_unspecified())
    }
}

/// Where a listener table came from, which says how far `v6_only` can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The kernel's `NETLINK_SOCK_DIAG`: every field is exact.
    SockDiag,
    /// `/proc/net/tcp{,6}`, because netlink failed: `v6_only` of IPv6 listeners is the
    /// `net.ipv6.bindv6only` default, a guess.
    ProcNet,
}

/// Every TCP socket in LISTEN state on `port`, IPv4 and IPv6, in the caller's network namespace.
pub fn listeners_on_port(port: u16) -> io::Result<Vec<Listener>> {
    query_listeners(port).map(|(listeners, _)| listeners)
}

/// [`listeners_on_port`], also saying which source answered.
pub fn query_listeners(port: u16) -> io::Result<(Vec<Listener>, Source)> {
    match sock_diag::listeners(port) {
        Ok(listeners) => Ok((listeners, Source::SockDiag)),
        Err(netlink_error) => match proc_net::listeners(port) {
            Ok(listeners) => Ok((listeners, Source::ProcNet)),
            Err(proc_error) => Err(io::Error::new(
                netlink_error.kind(),
                format!("sock_diag: {netlink_error}; /proc/net/tcp: {proc_error}"),
            )),
        },
    }
}

/// The host default for `IPV6_V6ONLY`, the best guess for a socket whose flag we cannot read.
fn guessed_v6_only(addr: Ipv6Addr) -> bool {
    // A socket bound to a v4-mapped address cannot be v6-only: the kernel refuses that bind.
    if addr.to_ipv4_mapped().is_some() {
        return false;
    }
    fs::read_to_string("/proc/sys/net/ipv6/bindv6only").is_ok_and(|value| value.trim() == "1")
}

fn invalid_data(error: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error.to_string())
}

mod sock_diag {
    use super::{Listener, guessed_v6_only, invalid_data};
    use netlink_packet_core::{
        NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
    };
    use netlink_packet_sock_diag::SockDiagMessage;
    use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP, TCP_LISTEN};
    use netlink_packet_sock_diag::inet::nlas::Nla;
    use netlink_packet_sock_diag::inet::{
        ExtensionFlags, InetRequest, InetResponse, SocketId, StateFlags,
    };
    use nix::sys::socket::{
        AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, send,
        setsockopt, socket, sockopt,
    };
    use nix::sys::time::{TimeVal, TimeValLike};
    use std::io;
    use std::net::IpAddr;
    use std::os::fd::OwnedFd;

    /// A dump datagram is at most as large as the largest buffer this socket
    /// has offered to `recvmsg`, and never below the kernel's own page-sized
    /// minimum (`NLMSG_GOODSIZE`, under 8 KiB): a fixed buffer of this size
    /// is never cut short, and `MSG_TRUNC` would show it if it were.
    const RECEIVE_BUFFER: usize = 16 * 1024;
    /// A dump is answered at once; a silent kernel must not hang `check` or startup.
    const REPLY_TIMEOUT_SECONDS: i64 = 5;
    const NETLINK_HEADER_LEN: usize = 16;

    pub(super) fn listeners(port: u16) -> io::Result<Vec<Listener>> {
        let socket = connect()?;
        let mut buffer = [0; RECEIVE_BUFFER];
        let mut found = Vec::new();
        for (sequence, family) in [(1, AF_INET), (2, AF_INET6)] {
            send_all(&socket, &dump_request(family, port, sequence))?;
            receive_dump(&socket, sequence, &mut buffer, |response| {
                found.extend(listener_from(response, port));
            })?;
        }
        Ok(found)
    }

    fn connect() -> io::Result<OwnedFd> {
        let socket = socket(
            AddressFamily::Netlink,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkSockDiag,
        )?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&socket);
        // Port 0: the kernel picks this socket's address; connected to the
        // kernel (port 0 too), it takes datagrams from nobody else.
        bind(fd, &NetlinkAddr::new(0, 0))?;
        nix::sys::socket::connect(fd, &NetlinkAddr::new(0, 0))?;
        let timeout = TimeVal::seconds(REPLY_TIMEOUT_SECONDS);
        setsockopt(&socket, sockopt::ReceiveTimeout, &timeout)?;
        Ok(socket)
    }

    fn dump_request(family: u8, port: u16, sequence: u32) -> Vec<u8> {
        let mut socket_id = match family {
            AF_INET => SocketId::new_v4(),
            _ => SocketId::new_v6(),
        };
        // Non-zero, it makes the kernel skip listeners on other ports.
        socket_id.source_port = port;
        let request = InetRequest {
            family,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::LISTEN,
            socket_id,
        };
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        header.sequence_number = sequence;
        let mut message = NetlinkMessage::new(header, SockDiagMessage::InetRequest(request).into());
        message.finalize();
        let mut bytes = vec![0; message.buffer_len()];
        message.serialize(&mut bytes);
        bytes
    }

    fn send_all(socket: &OwnedFd, request: &[u8]) -> io::Result<()> {
        let sent = send(
            std::os::fd::AsRawFd::as_raw_fd(socket),
            request,
            MsgFlags::empty(),
        )?;
        if sent != request.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "sock_diag request sent in part",
            ));
        }
        Ok(())
    }

    /// Reads the multipart reply to request `sequence` until `NLMSG_DONE`, handing each
    /// socket to `on_response`. An `NLMSG_ERROR`, an error in `NLMSG_DONE` (the kernel's
    /// way to report a dump that failed halfway) or an overrun makes the whole table untrustworthy.
    fn receive_dump(
        socket: &OwnedFd,
        sequence: u32,
        buffer: &mut [u8],
        mut on_response: impl FnMut(&InetResponse),
    ) -> io::Result<()> {
        loop {
            // MSG_TRUNC makes recv return the datagram's real size, so a cut-off is visible.
            let fd = std::os::fd::AsRawFd::as_raw_fd(socket);
            let received = loop {
                match recv(fd, buffer, MsgFlags::MSG_TRUNC) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    other => break other?,
                }
            };
            let datagram = buffer
                .get(..received)
                .ok_or_else(|| invalid_data("sock_diag reply larger than the receive buffer"))?;
            if datagram.is_empty() {
                return Err(invalid_data("empty sock_diag reply"));
            }
            for message in messages(datagram)? {
                if message.header.sequence_number != sequence {
                    continue;
                }
                match message.payload {
                    NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(response)) => {
                        on_response(&response)
                    }
                    NetlinkPayload::Done(done) if done.code < 0 => {
                        return Err(io::Error::from_raw_os_error(done.code.saturating_neg()));
                    }
                    NetlinkPayload::Done(_) => return Ok(()),
                    NetlinkPayload::Error(error) if error.code.is_none() => return Ok(()),
                    NetlinkPayload::Error(error) => return Err(error.to_io()),
                    NetlinkPayload::Overrun(_) => {
                        return Err(invalid_data("sock_diag reply overrun"));
                    }
                    _ => {}
                }
            }
        }
    }

    /// Splits one datagram into its netlink messages, each starting at a 4-byte boundary.
    pub(super) fn messages(
        mut datagram: &[u8],
    ) -> io::Result<Vec<NetlinkMessage<SockDiagMessage>>> {
        let mut parsed = Vec::new();
        while !datagram.is_empty() {
            let message = NetlinkMessage::<SockDiagMessage>::deserialize(datagram)
                .map_err(|error| invalid_data(format!("sock_diag reply: {error}")))?;
            let length = message.header.length as usize;
            // A length below the header's own would never advance.
            if length < NETLINK_HEADER_LEN {
                return Err(invalid_data("sock_diag message shorter than its header"));
            }
            let aligned = length.saturating_add(3) & !3;
            datagram = datagram.get(aligned..).unwrap_or_default();
            parsed.push(message);
        }
        Ok(parsed)
    }

    fn listener_from(response: &InetResponse, port: u16) -> Option<Listener> {
        let header = &response.header;
        if header.state != TCP_LISTEN || header.socket_id.source_port != port {
            return None;
        }
        Some(Listener {
            addr: header.socket_id.source_address,
            port,
            v6_only: v6_only(response),
            inode: u64::from(header.inode),
            uid: header.uid,
        })
    }

    fn v6_only(response: &InetResponse) -> bool {
        let IpAddr::V6(addr) = response.header.socket_id.source_address else {
            return false;
        };
        let reported = response.nlas.iter().find_map(|nla| match nla {
            Nla::SkV6Only(v6_only) => Some(*v6_only),
            _ => None,
        });
        // Kernels older than the attribute leave it out.
        reported.unwrap_or_else(|| guessed_v6_only(addr))
    }
}

mod proc_net {
    use super::{Listener, guessed_v6_only};
    use std::fs;
    use std::io;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    const LISTEN_STATE: &str = "0A";

    pub(super) fn listeners(port: u16) -> io::Result<Vec<Listener>> {
        // thread-self: the calling thread's network namespace (the same as the process's for
        // the launcher, which has one thread; not so for a test in a namespace of its own).
        let mut found = parse_table(&fs::read_to_string("/proc/thread-self/net/tcp")?, port);
        match fs::read_to_string("/proc/thread-self/net/tcp6") {
            Ok(table) => found.extend(parse_table(&table, port)),
            // A kernel booted with ipv6.disable=1 has no IPv6 table and no IPv6 listeners.
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        Ok(found)
    }

    pub(super) fn parse_table(table: &str, port: u16) -> Vec<Listener> {
        table
            .lines()
            .skip(1)
            .filter_map(|line| parse_line(line, port))
            .collect()
    }

    /// One row: `sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...`.
    /// Rows in other states are dropped before their addresses are decoded.
    fn parse_line(line: &str, port: u16) -> Option<Listener> {
        let mut fields = line.split_whitespace();
        let local = fields.nth(1)?;
        if fields.nth(1)? != LISTEN_STATE {
            return None;
        }
        let (addr, local_port) = local.split_once(':')?;
        if u16::from_str_radix(local_port, 16).ok()? != port {
            return None;
        }
        let uid = fields.nth(3)?.parse().ok()?;
        let inode = fields.nth(1)?.parse().ok()?;
        let addr = parse_addr(addr)?;
        let v6_only = match addr {
            IpAddr::V4(_) => false,
            IpAddr::V6(addr) => guessed_v6_only(addr),
        };
        Some(Listener {
            addr,
            port,
            v6_only,
            inode,
            uid,
        })
    }

    /// The kernel prints each 32-bit word of the address as a host-order integer, so the
    /// word's native-endian bytes are the address bytes in network order.
    pub(super) fn parse_addr(hex: &str) -> Option<IpAddr> {
        match hex.len() {
            8 => Some(IpAddr::V4(Ipv4Addr::from(word(hex, 0)?))),
            32 => {
                let mut octets = [0; 16];
                for (index, chunk) in octets.chunks_exact_mut(4).enumerate() {
                    chunk.copy_from_slice(&word(hex, index)?);
                }
                Some(IpAddr::V6(Ipv6Addr::from(octets)))
            }
            _ => None,
        }
    }

    fn word(hex: &str, index: usize) -> Option<[u8; 4]> {
        let digits = hex.get(index * 8..index * 8 + 8)?;
        if !digits.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return None;
        }
        Some(u32::from_str_radix(digits, 16).ok()?.to_ne_bytes())
    }
}

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
    /// The name of the owner's uid ([`crate::proc::user_name`]). Looked up
    /// only when shown: `run` needs names only to explain a failure.
    pub fn user(&self) -> String {
        crate::proc::user_name(self.uid)
    }
}

/// Which processes hold each socket inode; pids ascending.
type Holders = HashMap<u64, BTreeSet<i32>>;

/// Owners (pid, command, user) of the given socket inodes, searching only the given pids' fd tables.
/// Used by `run`, which knows gunicorn's process tree. Inodes held by none of them are absent.
pub fn owners_among(inodes: &[u64], pids: &[i32]) -> HashMap<u64, Vec<Owner>> {
    let mut scanner = FdScanner::new(inodes.iter().copied().collect());
    let mut holders = Holders::new();
    for pid in pids.iter().copied().collect::<BTreeSet<_>>() {
        record(&mut holders, pid, scanner.held(pid));
    }
    describe(&holders)
}

/// Owners of the given sockets on the whole host, without reading every process's fd table
/// (see the module documentation for the search and what it can miss). Inodes whose owner
/// was not found are absent.
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
    let (same_uid, other_uid): (Vec<_>, Vec<_>) = crate::proc::all_pids()
        .into_iter()
        .filter_map(|pid| Some((pid, proc_owner(pid)?)))
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
            read_process(pid).map(|info| info.fd_size)
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
/// every process is read once, as `ps` does.
struct Family {
    children_files: bool,
    parents: Option<HashMap<i32, i32>>,
}

impl Family {
    fn new() -> Self {
        let children_files = Path::new("/proc/thread-self/children").exists();
        Family {
            children_files,
            parents: None,
        }
    }

    fn relatives(&mut self, pid: i32) -> Vec<i32> {
        let parent = crate::proc::ppid(pid).filter(|&ppid| ppid > 0);
        let children = if self.children_files {
            crate::proc::children(pid).unwrap_or_default()
        } else {
            self.children_by_parent(pid)
        };
        parent.into_iter().chain(children).collect()
    }

    fn children_by_parent(&mut self, pid: i32) -> Vec<i32> {
        let parents = self.parents.get_or_insert_with(|| {
            let pids = crate::proc::all_pids().into_iter();
            pids.filter_map(|child| Some((child, crate::proc::ppid(child)?)))
                .collect()
        });
        let children = parents.iter().filter(|&(_, &ppid)| ppid == pid);
        children.map(|(&child, _)| child).collect()
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

/// `None` when the process has exited since its fd table was read.
fn describe_process(pid: i32) -> Option<Owner> {
    let info = read_process(pid)?;
    let uid = info.effective_uid();
    let command = crate::proc::command_line(pid).unwrap_or(info.name);
    Some(Owner { pid, command, uid })
}

/// The owner of `/proc/<pid>`: the effective uid. Unlike the files in it, the directory
/// keeps that owner when the process is not dumpable.
fn proc_owner(pid: i32) -> Option<u32> {
    fs::metadata(format!("/proc/{pid}"))
        .ok()
        .map(|metadata| metadata.uid())
}

/// What the search needs to know about one process beyond `/proc`'s owner, from its `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ProcessInfo {
    name: String,
    /// Real, effective, saved and filesystem uid.
    uids: [u32; 4],
    /// Capacity of the fd table: an upper bound of the fds to read.
    fd_size: u64,
}

impl ProcessInfo {
    fn effective_uid(&self) -> u32 {
        self.uids[1]
    }
}

fn read_process(pid: i32) -> Option<ProcessInfo> {
    parse_status(&crate::proc::read_text(&format!("/proc/{pid}/status"))?)
}

fn parse_status(status: &str) -> Option<ProcessInfo> {
    let mut name = None;
    let mut uids = None;
    // Absent only if the format changed: then such a process is read last.
    let mut fd_size = u64::MAX;
    for line in status.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "Name" => name = Some(value.to_owned()),
            "Uid" => uids = parse_uids(value),
            "FDSize" => fd_size = value.parse().unwrap_or(u64::MAX),
            _ => {}
        }
    }
    Some(ProcessInfo {
        name: name?,
        uids: uids?,
        fd_size,
    })
}

fn parse_uids(value: &str) -> Option<[u32; 4]> {
    let mut uids = value.split_whitespace().map(|uid| uid.parse().ok());
    Some([uids.next()??, uids.next()??, uids.next()??, uids.next()??])
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

fn scan_fd_table(pid: i32, wanted: &HashSet<u64>) -> Vec<u64> {
    let Ok(entries) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let mut held = Vec::new();
    for entry in entries.flatten() {
        let target = match fs::read_link(entry.path()) {
            Ok(target) => target,
            // Listing a table can be allowed where reading its links is not: one refusal
            // means all of them would be refused, each costing a syscall.
            Err(error) if error.kind() == io::ErrorKind::PermissionDenied => break,
            // The fd was closed since the listing.
            Err(_) => continue,
        };
        if let Some(inode) = socket_inode(target.as_os_str().as_bytes())
            && wanted.contains(&inode)
            && !held.contains(&inode)
        {
            held.push(inode);
        }
    }
    held
}

/// The inode in a `socket:[12345]` fd link.
fn socket_inode(link: &[u8]) -> Option<u64> {
    let digits = link.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    use nix::sys::socket::{
        AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage, bind, listen, setsockopt,
        socket, sockopt,
    };
    use std::io::{BufRead, BufReader};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::os::fd::{AsFd, AsRawFd, OwnedFd};
    use std::process::{Child, Command, Stdio};

    /// A listening socket made the way a server makes it, `IPV6_V6ONLY` set explicitly when asked.
    fn listen_on(addr: &str, v6_only: Option<bool>) -> io::Result<TcpListener> {
        let addr: SocketAddr = addr.parse().map_err(invalid_data)?;
        let family = if addr.is_ipv4() {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        let fd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
        if let Some(v6_only) = v6_only {
            setsockopt(&fd, sockopt::Ipv6V6Only, &v6_only)?;
        }
        bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
        listen(&fd, Backlog::new(16)?)?;
        Ok(TcpListener::from(fd))
    }

    /// An IPv6 listener, in a private network namespace that has IPv6 (see
    /// [`crate::testnet`]): never skipped, whatever the host's own network.
    fn ipv6_listener(addr: &str, v6_only: Option<bool>) -> TcpListener {
        crate::testnet::private_network_with_ipv6();
        listen_on(addr, v6_only).unwrap_or_else(|e| panic!("{addr}: {e}"))
    }

    fn port_of(listener: &TcpListener) -> u16 {
        listener.local_addr().unwrap().port()
    }

    /// The inode as the fd table shows it, independent of sock_diag.
    fn inode_of(fd: impl AsFd) -> u64 {
        let link = fs::read_link(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd())).unwrap();
        socket_inode(link.as_os_str().as_bytes()).unwrap()
    }

    fn expected(listener: &TcpListener, v6_only: bool) -> Listener {
        let local = listener.local_addr().unwrap();
        Listener {
            addr: local.ip(),
            port: local.port(),
            v6_only,
            inode: inode_of(listener),
            uid: nix::unistd::geteuid().as_raw(),
        }
    }

    fn sorted(mut listeners: Vec<Listener>) -> Vec<Listener> {
        listeners.sort_by_key(|listener| listener.inode);
        listeners
    }

    fn host_default_v6_only() -> bool {
        guessed_v6_only(Ipv6Addr::UNSPECIFIED)
    }

    #[test]
    fn finds_ipv4_loopback_listener() {
        let listener = listen_on("127.0.0.1:0", None).unwrap();
        let (found, source) = query_listeners(port_of(&listener)).unwrap();
        assert_eq!(source, Source::SockDiag);
        assert_eq!(found, vec![expected(&listener, false)]);
        assert!(!found[0].is_wildcard() && !found[0].covers_ipv4() && !found[0].covers_ipv6());
    }

    #[test]
    fn finds_ipv4_wildcard_listener() {
        let listener = listen_on("0.0.0.0:0", None).unwrap();
        let found = listeners_on_port(port_of(&listener)).unwrap();
        assert_eq!(found, vec![expected(&listener, false)]);
        assert!(found[0].is_wildcard() && found[0].covers_ipv4() && !found[0].covers_ipv6());
    }

    #[test]
    fn reports_v6_only_wildcard() {
        let listener = ipv6_listener("[::]:0", Some(true));
        let found = listeners_on_port(port_of(&listener)).unwrap();
        assert_eq!(found, vec![expected(&listener, true)]);
        assert!(found[0].is_wildcard() && !found[0].covers_ipv4() && found[0].covers_ipv6());
    }

    #[test]
    fn reports_dual_stack_wildcard() {
        let listener = ipv6_listener("[::]:0", Some(false));
        let found = listeners_on_port(port_of(&listener)).unwrap();
        assert_eq!(found, vec![expected(&listener, false)]);
        assert!(found[0].is_wildcard() && found[0].covers_ipv4() && found[0].covers_ipv6());
    }

    #[test]
    fn default_ipv6_socket_follows_host_default() {
        let listener = ipv6_listener("[::]:0", None);
        let found = listeners_on_port(port_of(&listener)).unwrap();
        assert_eq!(found, vec![expected(&listener, host_default_v6_only())]);
    }

    #[test]
    fn finds_ipv6_loopback_listener() {
        let listener = ipv6_listener("[::1]:0", Some(true));
        let found = listeners_on_port(port_of(&listener)).unwrap();
        assert_eq!(found, vec![expected(&listener, true)]);
        assert!(!found[0].is_wildcard());
    }

    #[test]
    fn mapped_ipv4_any_covers_ipv4_only() {
        let listener = ipv6_listener("[::ffff:0.0.0.0]:0", Some(false));
        let found = listeners_on_port(port_of(&listener)).unwrap();
        assert_eq!(found, vec![expected(&listener, false)]);
        assert_eq!(found[0].addr, "::ffff:0.0.0.0".parse::<IpAddr>().unwrap());
        assert!(found[0].is_wildcard() && found[0].covers_ipv4() && !found[0].covers_ipv6());
        // The claim behind covers_ipv4: the kernel hands it IPv4 connections.
        TcpStream::connect(("127.0.0.1", port_of(&listener))).unwrap();
    }

    #[test]
    fn mapped_ipv4_loopback_is_not_wildcard() {
        let listener = ipv6_listener("[::ffff:127.0.0.1]:0", Some(false));
        let found = listeners_on_port(port_of(&listener)).unwrap();
        assert_eq!(found, vec![expected(&listener, false)]);
        assert!(!found[0].is_wildcard() && !found[0].covers_ipv4());
    }

    #[test]
    fn finds_every_listener_sharing_a_port() {
        crate::testnet::private_network_with_ipv6();
        let ipv4 = listen_on("0.0.0.0:0", None).unwrap();
        let port = port_of(&ipv4);
        let ipv6 = listen_on(&format!("[::1]:{port}"), Some(true)).unwrap();
        let found = sorted(listeners_on_port(port).unwrap());
        assert_eq!(
            found,
            sorted(vec![expected(&ipv4, false), expected(&ipv6, true)])
        );
    }

    #[test]
    fn ignores_connections_and_sockets_not_listening() {
        let listener = listen_on("127.0.0.1:0", None).unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        // The accepted connection shares the listener's port; only the listener counts.
        assert_eq!(
            listeners_on_port(port_of(&listener)).unwrap(),
            vec![expected(&listener, false)]
        );
        assert!(
            listeners_on_port(client.local_addr().unwrap().port())
                .unwrap()
                .is_empty()
        );

        let bound = socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        let any_port: SocketAddr = "127.0.0.1:0".parse().unwrap();
        bind(bound.as_raw_fd(), &SockaddrStorage::from(any_port)).unwrap();
        let bound_port = nix::sys::socket::getsockname::<SockaddrStorage>(bound.as_raw_fd())
            .unwrap()
            .as_sockaddr_in()
            .unwrap()
            .port();
        assert!(listeners_on_port(bound_port).unwrap().is_empty());
        drop((accepted, bound));
    }

    #[test]
    fn closed_listener_is_gone() {
        let listener = listen_on("127.0.0.1:0", None).unwrap();
        let (port, inode) = (port_of(&listener), inode_of(&listener));
        drop(listener);
        // Another test may bind the freed port meanwhile; this socket must be gone.
        let found = listeners_on_port(port).unwrap();
        assert!(
            found.iter().all(|listener| listener.inode != inode),
            "{found:?}"
        );
    }

    #[test]
    fn proc_net_fallback_agrees_with_sock_diag() {
        crate::testnet::private_network_with_ipv6();
        let ipv4 = listen_on("127.0.0.1:0", None).unwrap();
        let port = port_of(&ipv4);
        // v6-only on purpose: the fallback cannot see that and must report the host default.
        let ipv6 = listen_on(&format!("[::]:{port}"), Some(true)).unwrap();
        let wanted = vec![
            expected(&ipv4, false),
            expected(&ipv6, host_default_v6_only()),
        ];
        assert_eq!(sorted(proc_net::listeners(port).unwrap()), sorted(wanted));
    }

    #[test]
    fn parses_proc_net_addresses() {
        let v4 = if cfg!(target_endian = "little") {
            "0100007F"
        } else {
            "7F000001"
        };
        assert_eq!(proc_net::parse_addr(v4), Some("127.0.0.1".parse().unwrap()));
        let v6 = if cfg!(target_endian = "little") {
            "00000000000000000000000001000000"
        } else {
            "00000000000000000000000000000001"
        };
        assert_eq!(proc_net::parse_addr(v6), Some("::1".parse().unwrap()));
        for junk in [
            "",
            "0100007",
            "zz00007F",
            "+100007F",
            "0100007F00",
            "é1000007F",
        ] {
            assert_eq!(proc_net::parse_addr(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn parses_proc_net_rows_in_listen_state_only() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
            0: 00000000:1F41 00000000:0000 0A 00000000:00000000 00:00000000 00000000   33        0 4242 1 0 100 0 0 10 0\n\
            1: 0100007F:1F41 0100007F:A000 01 00000000:00000000 00:00000000 00000000   33        0 4343 1 0 100 0 0 10 0\n\
            2: 0100007F:1F42 00000000:0000 0A 00000000:00000000 00:00000000 00000000   33        0 4444 1 0 100 0 0 10 0\n\
            3: garbage\n";
        let found = proc_net::parse_table(table, 8001);
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].inode, found[0].uid, found[0].port),
            (4242, 33, 8001)
        );
        assert!(found[0].addr.is_unspecified());
    }

    #[test]
    fn parses_status() {
        let status = "Name:\tgunicorn: worker\nUmask:\t0022\nState:\tS (sleeping)\nPid:\t42\nPPid:\t41\n\
            Uid:\t0\t33\t33\t33\nGid:\t0\t0\t0\t0\nFDSize:\t64\n";
        let info = parse_status(status).unwrap();
        assert_eq!(
            info,
            ProcessInfo {
                name: "gunicorn: worker".into(),
                uids: [0, 33, 33, 33],
                fd_size: 64
            }
        );
        assert_eq!(info.effective_uid(), 33);
        assert_eq!(parse_status("Name:\tx\nUid:\t1\t2\n"), None);
        assert_eq!(parse_status(""), None);
    }

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

    #[test]
    fn garbage_netlink_replies_are_errors_not_panics() {
        let header_only = [16, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(sock_diag::messages(&header_only).unwrap().len(), 1);
        for junk in [
            &[0u8; 16][..],
            &[1, 2, 3],
            &[255; 40],
            &[20, 0, 0, 0, 20, 0, 0, 0],
        ] {
            assert!(sock_diag::messages(junk).is_err(), "{junk:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn netlink_parser_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = sock_diag::messages(&bytes);
        }

        #[test]
        fn proc_parsers_never_panic(line in ".{0,200}") {
            let _ = proc_net::parse_table(&format!("header\n{line}"), 8001);
            let _ = proc_net::parse_addr(&line);
            let _ = parse_status(&line);
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
        crate::testnet::require_root("dropping privileges");
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
        crate::testnet::require_root("dropping privileges");
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
        assert_eq!(proc_owner(worker), Some(NOBODY));
        let owners = owners_on_host(&found);
        assert_eq!(pids(&owners, found[0].inode), vec![worker]);
        assert_eq!(owners[&found[0].inode][0].user(), user_name(NOBODY));
        drop(master);
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
}
