//! Test harness: the real launcher binary, the real pinned gunicorn from the
//! project's venv, real network namespaces. Every wait has a deadline and
//! waits for an event (a line, a socket, a pid), never a fixed sleep.
//!
//! Each test that starts gunicorn does so in a network namespace of its own,
//! so every test can use port 8001 like production, tests run in parallel
//! without port clashes, and nothing ever listens on the host's interfaces.
#![allow(dead_code)]

pub mod cgroup;
pub mod load;
pub mod wall;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

pub const LONG: Duration = Duration::from_secs(30);

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn launcher() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gunicorn-launcher"))
}

/// The pinned gunicorn's venv, installed by `make test` (scripts/setup-test-env).
/// Missing: fail loudly, never skip.
pub fn venv() -> PathBuf {
    let v = std::env::var_os("GUNICORN_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv"));
    assert!(
        v.join("bin/gunicorn").is_file(),
        "NO GUNICORN at {}/bin/gunicorn: run the README's test command (`make test`), which installs the pinned gunicorn into .venv",
        v.display()
    );
    v
}

pub fn gunicorn() -> String {
    venv().join("bin/gunicorn").to_string_lossy().into_owned()
}

pub fn python() -> String {
    venv().join("bin/python3").to_string_lossy().into_owned()
}

/// Fails the test, with the reason, unless it runs as root.
pub fn require_root(why: &str) {
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "THIS TEST NEEDS ROOT ({why}): run the test suite as root, as CI does"
    );
}

fn run_ok(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A network namespace with loopback up, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new() -> Netns {
        require_root("network namespaces");
        let name = format!(
            "glt{}n{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        run_ok(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        run_ok(ns.cmd("ip").args(["link", "set", "lo", "up"]));
        ns
    }

    /// `program` run inside the namespace (ip netns exec execs it: the pid
    /// we get is the program's own).
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// An empty nftables table `inet NAME` in the namespace: a host firewall for the launcher
    /// to read (its tools' output goes through a deep buffer on the stack).
    pub fn add_nft_table(&self, name: &str) {
        let added = self
            .cmd("nft")
            .args(["add", "table", "inet", name])
            .status()
            .expect("THIS TEST NEEDS nft (nftables): run scripts/setup-test-env");
        assert!(added.success(), "nft add table inet {name} failed");
    }

    /// `n` more IPv4 addresses (10.77.x.y/32) on an interface of their own in `ns`, in one
    /// `ip -batch`.
    pub fn add_addresses(&self, n: usize) -> Vec<String> {
        let ip = |args: &[&str]| {
            let out = self.cmd("ip").args(args).output().unwrap();
            assert!(
                out.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        // A veth pair (a dummy interface needs a kernel module not every host has).
        ip(&[
            "link", "add", "many0", "type", "veth", "peer", "name", "many1",
        ]);
        ip(&["link", "set", "many0", "up"]);
        ip(&["link", "set", "many1", "up"]);
        let addrs: Vec<String> = (0..n)
            .map(|i| format!("10.77.{}.{}", i / 250, i % 250 + 1))
            .collect();
        let batch: String = addrs
            .iter()
            .map(|a| format!("addr add {a}/32 dev many0\n"))
            .collect();
        let path = std::env::temp_dir().join(format!("{}-addresses", self.name));
        std::fs::write(&path, batch).unwrap();
        ip(&["-batch", path.to_str().unwrap()]);
        let _ = std::fs::remove_file(path);
        addrs
    }

    /// `curl` from this namespace: the HTTP status, or curl's exit code as Err.
    pub fn http_status(&self, url: &str) -> Result<u16, i32> {
        self.http_status_with(url, &[])
    }

    /// `curl` with extra arguments (`-H "Host: ..."`, `-I`).
    pub fn http_status_with(&self, url: &str, extra: &[&str]) -> Result<u16, i32> {
        let out = self
            .cmd("curl")
            .args(extra)
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "5",
                url,
            ])
            .output()
            .expect("curl");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .unwrap_or(0))
        } else {
            Err(out.status.code().unwrap_or(-1))
        }
    }

    /// `ss -ltnH` in the namespace: each listener's local address:port.
    pub fn listeners(&self, port: u16) -> Vec<String> {
        let out = self
            .cmd("ss")
            .args(["-ltnH", &format!("sport = :{port}")])
            .output()
            .expect("ss");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().nth(3).map(str::to_owned))
            .collect()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Runs `f` on a thread of its own inside network namespace `ns` (`setns` moves only the
/// calling thread), and returns what it returns: sockets it opens live in that namespace.
pub fn run_in<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
        nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET)
            .unwrap_or_else(|e| panic!("cannot enter {path}: {e}"));
        f()
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// Two namespaces joined by a veth pair: a server (198.18.0.1) and a client
/// (198.18.0.2), "another machine on the network".
pub struct Lan {
    pub server: Netns,
    pub client: Netns,
}

pub const SERVER_IP: &str = "198.18.0.1";

/// The server's port 8001 as a browser on the other machine addresses it.
pub fn url() -> String {
    format!("http://{SERVER_IP}:8001/")
}

/// `gunicorn-launcher check EXTRA...` run inside `ns`: its exit code and its stdout.
pub fn check(ns: &Netns, extra: &[&str]) -> (i32, String) {
    let out = ns
        .cmd(launcher())
        .arg("check")
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

impl Lan {
    pub fn new() -> Lan {
        let server = Netns::new();
        let client = Netns::new();
        let a = format!("{}a", server.name);
        let b = format!("{}b", server.name);
        run_ok(Command::new("ip").args([
            "link",
            "add",
            &a,
            "netns",
            &server.name,
            "type",
            "veth",
            "peer",
            "name",
            &b,
            "netns",
            &client.name,
        ]));
        run_ok(
            server
                .cmd("ip")
                .args(["addr", "add", "198.18.0.1/24", "dev", &a]),
        );
        run_ok(
            client
                .cmd("ip")
                .args(["addr", "add", "198.18.0.2/24", "dev", &b]),
        );
        run_ok(server.cmd("ip").args(["link", "set", &a, "up"]));
        run_ok(client.cmd("ip").args(["link", "set", &b, "up"]));
        Lan { server, client }
    }
}

/// A running process whose stderr (and stdout) lines we can wait for.
pub struct Proc {
    pub child: Child,
    lines: Receiver<String>,
    pub seen: Vec<String>,
    /// Lines before this index were passed by a `wait_line`.
    cursor: usize,
}

impl Proc {
    pub fn spawn(mut cmd: Command) -> Proc {
        cmd.stdin(Stdio::null());
        Proc::spawn_with_stdin(cmd)
    }

    /// Like `spawn`, with whatever stdin the command was given.
    pub fn spawn_with_stdin(mut cmd: Command) -> Proc {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let (tx, rx) = channel();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx2.send(l);
            }
        });
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        Proc {
            child,
            lines: rx,
            seen: Vec::new(),
            cursor: 0,
        }
    }

    pub fn stdin(&mut self) -> &mut std::process::ChildStdin {
        self.child
            .stdin
            .as_mut()
            .expect("spawned with a piped stdin")
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits for the next output line containing `needle` (lines matched by
    /// an earlier wait do not count again); panics with everything seen so
    /// far at the deadline.
    pub fn wait_line(&mut self, needle: &str, within: Duration) -> String {
        if let Some(i) = self.seen[self.cursor..]
            .iter()
            .position(|l| l.contains(needle))
        {
            self.cursor += i + 1;
            return self.seen[self.cursor - 1].clone();
        }
        self.cursor = self.seen.len();
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.contains(needle) {
                        self.cursor = self.seen.len();
                        return l;
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "no line containing {needle:?} within {within:?}; output so far:\n{}",
                        self.output()
                    );
                }
            }
        }
    }

    /// Everything the process printed so far (collects pending lines).
    pub fn output(&mut self) -> String {
        while let Ok(l) = self.lines.try_recv() {
            self.seen.push(l);
        }
        self.seen.join("\n")
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig).expect("kill");
    }

    /// Waits for exit with a deadline; `None` if it still runs then.
    pub fn exited_within(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.child.try_wait().expect("try_wait").is_some() {
                return Some(self.wait_exit(Duration::ZERO));
            }
            wait_a_moment();
        }
        None
    }

    /// Waits for exit with a deadline (then kills and panics).
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                // Let the reader threads finish so output() is complete.
                let end = Instant::now() + Duration::from_secs(2);
                while Instant::now() < end {
                    match self.lines.recv_timeout(Duration::from_millis(100)) {
                        Ok(l) => self.seen.push(l),
                        Err(RecvTimeoutError::Disconnected) => break,
                        Err(RecvTimeoutError::Timeout) => {}
                    }
                }
                return st;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!(
                    "process did not exit within {within:?}; output:\n{}",
                    self.output()
                );
            }
            wait_a_moment();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The pause between two looks at the state of the world while waiting for
/// an event that has no descriptor to wait on (a pid disappearing).
pub fn wait_a_moment() {
    std::thread::sleep(Duration::from_millis(10));
}

/// Waits until `cond` holds, or panics with `what` at the deadline.
pub fn wait_until(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for: {what}"
        );
        wait_a_moment();
    }
}

/// Live (not zombie) processes among `pids`.
pub fn alive(pids: &[i32]) -> Vec<i32> {
    pids.iter()
        .copied()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')
                        .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
                })
                .unwrap_or(false)
        })
        .collect()
}

/// Every descendant of `pid`, from /proc.
pub fn descendants(pid: i32) -> Vec<i32> {
    let mut parent_of = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat"))
            && let Some((_, rest)) = stat.rsplit_once(')')
            && let Some(ppid) = rest
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse::<i32>().ok())
        {
            parent_of.push((p, ppid));
        }
    }
    let mut out = Vec::new();
    let mut queue = vec![pid];
    while let Some(q) = queue.pop() {
        for &(c, pp) in &parent_of {
            if pp == q {
                out.push(c);
                queue.push(c);
            }
        }
    }
    out
}

/// Zombie children of `pid`.
pub fn zombies_of(pid: i32) -> Vec<i32> {
    descendants(pid)
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')
                        .map(|(_, rest)| rest.trim_start().starts_with('Z'))
                })
                .unwrap_or(false)
        })
        .collect()
}

/// A throwaway app directory with the hello app (and whatever else a test
/// writes there), plus a private XDG_RUNTIME_DIR so parallel gunicorns
/// (≥ 25.1) do not share one control socket.
pub struct AppDir {
    pub dir: tempfile::TempDir,
}

impl AppDir {
    pub fn new() -> AppDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::copy(
            root().join("examples/hello.py"),
            dir.path().join("hello.py"),
        )
        .expect("copy hello.py");
        std::fs::create_dir(dir.path().join("run")).unwrap();
        AppDir { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Copies `tests/fixtures/NAME/` (a whole app, such as the Django
    /// project `solvit`) into this directory.
    pub fn copy_fixture(&self, name: &str) {
        let status = Command::new("cp")
            .arg("-r")
            .arg(root().join("tests/fixtures").join(name).join("."))
            .arg(self.path())
            .status()
            .expect("cp");
        assert!(status.success(), "copying the fixture {name}");
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// The launcher inside `ns`, in this directory, with `args`.
    pub fn launcher_in(&self, ns: &Netns, args: &[&str]) -> Command {
        let mut c = ns.cmd(launcher());
        c.args(args);
        self.launcher_env(c)
    }

    /// The launcher inside `ns` with `args`, started, telling `notify` what it would tell
    /// systemd.
    pub fn launcher_notifying(&self, ns: &Netns, args: &[&str], notify: &NotifySocket) -> Proc {
        let mut c = self.launcher_in(ns, args);
        c.env("NOTIFY_SOCKET", &notify.path);
        Proc::spawn(c)
    }

    /// `c` with the environment `launcher_in` gives the launcher (for a launcher started
    /// by another program, such as `systemd-socket-activate`).
    pub fn launcher_env_for(&self, c: Command) -> Command {
        self.launcher_env(c)
    }

    /// This directory, a private control-socket directory, the venv first on
    /// PATH, and none of the variables the launcher rewrites.
    fn launcher_env(&self, mut c: Command) -> Command {
        c.current_dir(self.path())
            .env("XDG_RUNTIME_DIR", self.path().join("run"))
            .env(
                "PATH",
                format!(
                    "{}/bin:{}",
                    venv().display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .env_remove("NOTIFY_SOCKET")
            .env_remove("GUNICORN_CMD_ARGS");
        c
    }
}

/// Is `pid` asleep in poll() (its loop's one wait), by the kernel's own account?
pub fn asleep_in_poll(pid: i32) -> bool {
    status_field(pid, "State").is_some_and(|s| s.starts_with('S'))
        && std::fs::read_to_string(format!("/proc/{pid}/wchan")).is_ok_and(|w| w.contains("poll"))
}

/// The launcher's gunicorn master: its only direct child.
pub fn master_of(launcher: i32) -> i32 {
    let mut found = 0;
    wait_until("gunicorn master to appear", LONG, || {
        let kids: Vec<i32> = descendants(launcher)
            .into_iter()
            .filter(|p| parent(*p) == Some(launcher))
            .collect();
        found = kids.first().copied().unwrap_or(0);
        found != 0
    });
    found
}

pub fn parent(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

pub fn children(pid: i32) -> Vec<i32> {
    descendants(pid)
        .into_iter()
        .filter(|p| parent(*p) == Some(pid))
        .collect()
}

// ---- Helpers for the fault-injection suite (tests/faults.rs). ----

impl AppDir {
    /// The launcher inside `ns` under a wrapper (`unshare --pid --fork
    /// --mount-proc`, `setpriv ...`, `strace ...`): `ip netns exec NS
    /// WRAPPER... LAUNCHER ARGS...`, with `launcher_in`'s directory and
    /// environment.
    pub fn launcher_under(&self, ns: &Netns, wrapper: &[&str], args: &[&str]) -> Command {
        let (first, rest) = wrapper.split_first().expect("a wrapper program");
        let mut c = ns.cmd(first);
        c.args(rest).arg(launcher()).args(args);
        self.launcher_env(c)
    }
}

/// Sends `sig` to `pid`; a process that is already gone is fine.
pub fn signal_pid(pid: i32, sig: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
}

/// A field of /proc/PID/status (`ShdPnd`, `NSpid`, ...), as written there.
pub fn status_field(pid: i32, field: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        l.strip_prefix(field)
            .and_then(|r| r.strip_prefix(':'))
            .map(|v| v.trim().to_owned())
    })
}

/// True once `pid` has no signal pending (thread or process): everything
/// sent to it has been taken (for the launcher: read from its signalfd).
pub fn no_signal_pending(pid: i32) -> bool {
    ["SigPnd", "ShdPnd"].iter().all(|f| {
        status_field(pid, f)
            .and_then(|v| u64::from_str_radix(&v, 16).ok())
            .is_some_and(|mask| mask == 0)
    })
}

/// Gone for good: not even a zombie (someone reaped it).
pub fn reaped(pid: i32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

/// The process's argv, from /proc.
pub fn cmdline(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The new master a USR2 started under `old`: its child carrying
/// `GUNICORN_PID=<old>`.
pub fn successor_of(old: i32) -> Option<i32> {
    let want = format!("GUNICORN_PID={old}");
    children(old).into_iter().find(|p| {
        std::fs::read(format!("/proc/{p}/environ"))
            .map(|e| e.split(|b| *b == 0).any(|kv| kv == want.as_bytes()))
            .unwrap_or(false)
    })
}

/// A datagram socket standing in for systemd's `NOTIFY_SOCKET`, read
/// continuously by a thread, as systemd does (a receive queue left to fill
/// would block the sender). Like systemd (252 and later), a datagram over
/// [`NOTIFY_MAX`] bytes is ignored, READY=1 in it included; each one ignored
/// is counted.
pub struct NotifySocket {
    pub path: PathBuf,
    sock: std::os::unix::net::UnixDatagram,
    messages: Receiver<String>,
    ignored: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    _dir: tempfile::TempDir,
}

/// The largest notify datagram systemd accepts ("Received notify message exceeded maximum
/// size. Ignoring.").
pub const NOTIFY_MAX: usize = 4096;

impl NotifySocket {
    pub fn new() -> NotifySocket {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        let reader = sock.try_clone().unwrap();
        let (tx, messages) = channel();
        let ignored = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = ignored.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            // Ends when the socket is shut down (drop) or the test is over.
            while let Ok(n) = reader.recv(&mut buf) {
                if n > NOTIFY_MAX {
                    count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    continue;
                }
                if n == 0
                    || tx
                        .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                        .is_err()
                {
                    break;
                }
            }
        });
        NotifySocket {
            path,
            sock,
            messages,
            ignored,
            _dir: dir,
        }
    }

    /// How many datagrams were ignored for their size.
    pub fn ignored(&self) -> usize {
        self.ignored.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Every message received so far and not yet taken, oldest first.
    pub fn drain(&self) -> Vec<String> {
        self.messages.try_iter().collect()
    }

    /// Waits for a message containing `needle` (skipping others); returns it.
    pub fn wait_for(&self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.messages.recv_timeout(left) {
                Ok(m) if m.contains(needle) => return m,
                Ok(_) => {}
                Err(_) => panic!("no notify message with {needle:?} within {within:?}"),
            }
        }
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = self.sock.shutdown(std::net::Shutdown::Both);
    }
}

/// CPU time (user + system) the process has used, in clock ticks.
pub fn cpu_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?)
}

/// On drop, SIGKILLs whatever is left under `pid` (then `pid` is the
/// caller's business): a failed test must not leave a gunicorn behind,
/// and a master started by USR2 has no parent-death signal.
pub struct KillTreeOnDrop(pub i32);

impl Drop for KillTreeOnDrop {
    fn drop(&mut self) {
        for p in descendants(self.0) {
            signal_pid(p, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// On drop, SIGKILLs every process of the session `sid`. The launcher
/// starts gunicorn in a session of its own, so with the master's pid this
/// catches all of gunicorn, even a USR2 master already orphaned by a
/// launcher that a failed wait killed.
pub struct KillSessionOnDrop(pub i32);

impl Drop for KillSessionOnDrop {
    fn drop(&mut self) {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return;
        };
        for e in dir.flatten() {
            let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let session = std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')?
                        .1
                        .split_whitespace()
                        .nth(3)?
                        .parse::<i32>()
                        .ok()
                });
            if session == Some(self.0) {
                signal_pid(p, nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
}

/// The version of the gunicorn under test (`gunicorn --version`, once per
/// test binary), for the few checks where gunicorn's behaviour genuinely
/// differs between releases (README, "Compatibility").
pub fn gunicorn_version() -> (u32, u32, u32) {
    static VERSION: std::sync::OnceLock<(u32, u32, u32)> = std::sync::OnceLock::new();
    *VERSION.get_or_init(|| {
        let out = Command::new(gunicorn())
            .arg("--version")
            .output()
            .expect("gunicorn --version");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        let v: Vec<u32> = text
            .split(|c: char| !c.is_ascii_digit() && c != '.')
            .find(|w| w.contains('.'))
            .unwrap_or_else(|| panic!("no version in {text:?}"))
            .split('.')
            .filter_map(|n| n.parse().ok())
            .collect();
        (
            v[0],
            v.get(1).copied().unwrap_or(0),
            v.get(2).copied().unwrap_or(0),
        )
    })
}

/// What a systemd booted for a test (tests/common/systemd.rs) needs to see from the host:
/// the repository (the launcher binary, examples), the venv (through its symlink) and the
/// binary's directory, each once.
pub fn systemd_binds() -> Vec<PathBuf> {
    let mut wanted = vec![
        root(),
        std::fs::canonicalize(venv()).expect("venv"),
        launcher().parent().unwrap().to_path_buf(),
    ];
    wanted.sort();
    let mut out: Vec<PathBuf> = Vec::new();
    for p in wanted {
        if !out.iter().any(|o| p.starts_with(o)) {
            out.push(p);
        }
    }
    out
}

/// `cmd` started under a seccomp filter that fails `syscall` with `errno` when its
/// arguments have the values given (`(index, value)`; none: always): the kernel of an older
/// or smaller system, for the launcher and everything it starts.
pub fn with_syscall_refused(cmd: &mut Command, syscall: i64, args: &[(u8, u64)], errno: i32) {
    use seccompiler::{
        BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
        SeccompRule,
    };
    use std::os::unix::process::CommandExt;
    let conditions: Vec<SeccompCondition> = args
        .iter()
        .map(|&(i, v)| {
            SeccompCondition::new(i, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, v).unwrap()
        })
        .collect();
    let rules = if conditions.is_empty() {
        Vec::new()
    } else {
        vec![SeccompRule::new(conditions).unwrap()]
    };
    let filter: BpfProgram = SeccompFilter::new(
        [(syscall, rules)].into_iter().collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        std::env::consts::ARCH.try_into().unwrap(),
    )
    .unwrap()
    .try_into()
    .unwrap();
    // SAFETY: between fork and exec the child only calls prctl and seccomp: no allocation,
    // no lock.
    unsafe {
        cmd.pre_exec(move || {
            seccompiler::apply_filter(&filter)
                .map_err(|_| std::io::Error::from_raw_os_error(nix::libc::EPERM))
        });
    }
}

/// Whether `pid` runs under a seccomp filter (`Seccomp: 2` in its status).
pub fn under_seccomp_filter(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .is_ok_and(|s| s.lines().any(|l| l == "Seccomp:\t2"))
}
