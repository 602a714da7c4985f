//! A real systemd 252 for tests: PID 1 of a private PID + mount + network + UTS namespace,
//! booted over a throwaway overlay of `/` whose upper layer is a tmpfs, with its own /run
//! and /tmp. Never on the host's root
//! filesystem: a unit with default dependencies pulls in systemd-tmpfiles-setup, which
//! empties /tmp. Whatever the tests write inside lands in the tmpfs and vanishes with the
//! namespace; the host's files (the built launcher, the venv) are seen through the overlay,
//! and bind-mounted read-only at their own paths in case they live on another filesystem
//! than `/` (an overlay of `/` does not show other mounts).
//!
//! `systemctl` and every other command run inside through `nsenter -t PID -m -p -n`. Drop
//! powers the namespace off (and kills its PID 1 if it does not go), so a panicking test
//! leaves nothing behind.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs as PID 1 of the new namespaces; ends by exec'ing systemd (the script says how).
const BOOT: &str = include_str!("boot-systemd.sh");

pub struct Systemd {
    unshare: Child,
    /// The boot script's and systemd's own stderr (a file: a pipe nobody reads could fill
    /// up and stall PID 1).
    log: tempfile::NamedTempFile,
    /// systemd's pid as the host sees it.
    pub pid: i32,
    /// The name of its own cgroup (see BOOT), in each hierarchy.
    cgroup: String,
}

static BOOTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn require(tool: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "THE SYSTEMD TESTS NEED `{tool}` (util-linux, iproute2, systemd, procps): run `make test`, whose setup installs them"
    );
}

impl Systemd {
    /// Boots systemd and waits (with a deadline) until `is-system-running` says running or
    /// degraded. `binds`: host directories the tests need inside (the launcher, the venv).
    pub fn boot(binds: &[PathBuf]) -> Systemd {
        assert!(
            nix::unistd::Uid::effective().is_root(),
            "THE SYSTEMD TESTS NEED ROOT (namespaces, mounts); run the suite as root, as CI does"
        );
        for tool in ["unshare", "nsenter", "systemctl", "ip", "ss", "curl", "ps"] {
            require(tool);
        }
        assert!(
            Path::new("/usr/lib/systemd/systemd").is_file(),
            "NO /usr/lib/systemd/systemd: the systemd tests need the systemd package"
        );
        let cgroup = format!(
            "gunicorn-launcher-test-{}-{}",
            std::process::id(),
            BOOTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let mut cmd = Command::new("unshare");
        cmd.env("CGROUP", &cgroup)
            .args([
                "--pid",
                "--fork",
                "--mount",
                "--net",
                "--uts",
                "--mount-proc",
            ])
            .args(["--kill-child", "sh", "-c", BOOT, "boot"])
            .args(binds)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let log = tempfile::NamedTempFile::new().expect("log file");
        cmd.stderr(log.reopen().expect("log file"));
        let unshare = cmd.spawn().expect("start unshare");
        let mut sd = Systemd {
            unshare,
            log,
            pid: 0,
            cgroup,
        };
        sd.pid = sd.wait_for_pid1();
        sd.wait_running();
        sd
    }

    /// unshare's forked child becomes systemd once the boot script exec's it.
    fn wait_for_pid1(&mut self) -> i32 {
        let parent = self.unshare.id();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let kids = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
                .unwrap_or_default();
            if let Some(pid) = kids.split_whitespace().next().and_then(|p| p.parse().ok()) {
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                if comm.trim() == "systemd" {
                    return pid;
                }
            }
            if let Ok(Some(status)) = self.unshare.try_wait() {
                let err = std::fs::read_to_string(self.log.path()).unwrap_or_default();
                panic!("the namespace's boot script failed ({status}): {err}");
            }
            assert!(
                Instant::now() < deadline,
                "systemd did not start within 20s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_running(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = String::new();
        while Instant::now() < deadline {
            let out = self.systemctl(&["is-system-running"]);
            last = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if last == "running" || last == "degraded" {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "systemd in the namespace is not running after 60s (is-system-running: {last:?}); failed units:\n{}",
            self.text(&["systemctl", "--failed", "--no-pager"])
        );
    }

    /// A second interface inside (a veth pair, `v0` with 198.18.0.1/24), so that "all
    /// interfaces" means more than loopback.
    pub fn add_second_interface(&self) {
        for argv in [
            &[
                "ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1",
            ][..],
            &["ip", "addr", "add", "198.18.0.1/24", "dev", "v0"],
            &["ip", "link", "set", "v0", "up"],
            &["ip", "link", "set", "v1", "up"],
        ] {
            let out = self.run(argv);
            assert!(
                out.status.success(),
                "{argv:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// A command inside the namespace (mount, pid, net).
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.pid.to_string(), "-m", "-p", "-n"])
            .arg(program)
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, argv: &[&str]) -> Output {
        self.cmd(argv[0])
            .args(&argv[1..])
            .output()
            .unwrap_or_else(|e| panic!("cannot run {argv:?} in the namespace: {e}"))
    }

    /// stdout and stderr of `argv` inside, as text.
    pub fn text(&self, argv: &[&str]) -> String {
        let out = self.run(argv);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    pub fn systemctl(&self, args: &[&str]) -> Output {
        let mut argv = vec!["systemctl"];
        argv.extend(args);
        self.run(&argv)
    }

    pub fn show(&self, unit: &str, props: &[&str]) -> HashMap<String, String> {
        let out = self.systemctl(&["show", "-p", &props.join(","), unit]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    pub fn prop(&self, unit: &str, prop: &str) -> String {
        self.show(unit, &[prop]).remove(prop).unwrap_or_default()
    }

    /// Waits for a unit property to have a value.
    pub fn wait_prop(&self, unit: &str, prop: &str, want: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let now = self.prop(unit, prop);
            if now == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{unit}: {prop} is {now:?}, not {want:?}, after {within:?}; journal:\n{}",
                self.journal(unit)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn journal(&self, unit: &str) -> String {
        self.text(&[
            "journalctl",
            "-u",
            unit,
            "-n",
            "40",
            "--no-pager",
            "-o",
            "cat",
        ])
    }

    /// A path inside the namespace, as a host path (through its root).
    pub fn path(&self, inside: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root{inside}", self.pid))
    }

    pub fn write(&self, inside: &str, text: &str) {
        let p = self.path(inside);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("write {inside}: {e}"));
    }

    /// `ss -ltnH sport = :PORT` inside: local address:port of each listener.
    pub fn listeners(&self, port: u16) -> Vec<String> {
        let out = self.run(&["ss", "-ltnH", &format!("sport = :{port}")]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().nth(3).map(str::to_owned))
            .collect()
    }

    /// curl inside: the HTTP status, or curl's exit code.
    pub fn http_status(&self, url: &str) -> Result<u16, i32> {
        let out = self.run(&[
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
            url,
        ]);
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .unwrap_or(0))
        } else {
            Err(out.status.code().unwrap_or(-1))
        }
    }

    /// Children of a pid inside the namespace.
    pub fn children(&self, pid: &str) -> Vec<String> {
        let out = self.run(&["ps", "-o", "pid=", "--ppid", pid]);
        let mut kids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(String::from)
            .collect();
        kids.sort();
        kids
    }

    /// Every process inside whose command line mentions `needle`.
    pub fn processes(&self, needle: &str) -> Vec<String> {
        let out = self.run(&["ps", "-e", "-o", "pid=,args="]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains(needle) && !l.contains("ps -e -o"))
            .map(|l| l.trim().to_string())
            .collect()
    }

    /// The executable of a pid inside.
    pub fn exe(&self, pid: &str) -> String {
        self.text(&["readlink", &format!("/proc/{pid}/exe")])
            .trim()
            .to_string()
    }
}

impl Drop for Systemd {
    fn drop(&mut self) {
        self.power_off();
        self.remove_cgroups();
    }
}

impl Systemd {
    fn power_off(&mut self) {
        let _ = self.systemctl(&["poweroff", "--no-block"]);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.unshare.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // PID 1 of a pid namespace takes every process in it along when it dies.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.unshare.wait();
    }

    /// Its cgroup, in every hierarchy systemd made it in (they are empty once every
    /// process of the namespace is gone): children first.
    fn remove_cgroups(&self) {
        fn remove(dir: &Path) {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for e in entries.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        remove(&e.path());
                    }
                }
            }
            let _ = std::fs::remove_dir(dir);
        }
        let root = Path::new("/sys/fs/cgroup");
        let hierarchies = std::fs::read_dir(root)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path());
        for h in std::iter::once(root.to_path_buf()).chain(hierarchies) {
            let ours = h.join(&self.cgroup);
            if ours.is_dir() {
                remove(&ours);
            }
        }
    }
}

/// Additions for tests/deb.rs: another network namespace on a veth pair, files copied
/// in, and journal lines waited for.
impl Systemd {
    /// Joins this namespace to the named network namespace `client` (made with `ip netns
    /// add`) by a veth pair: `server_cidr` on this side, `client_cidr` on the client's.
    /// Both ends are created directly in their namespaces (no name on the host).
    pub fn veth_to(&self, client: &str, server_cidr: &str, client_cidr: &str) {
        let (a, b) = ("lan0", "lan1");
        let pid = self.pid.to_string();
        let steps: [(&str, Vec<&str>); 5] = [
            (
                "host",
                vec![
                    "ip", "link", "add", a, "netns", &pid, "type", "veth", "peer", "name", b,
                    "netns", client,
                ],
            ),
            ("server", vec!["ip", "addr", "add", server_cidr, "dev", a]),
            ("server", vec!["ip", "link", "set", a, "up"]),
            (
                "client",
                vec![
                    "ip",
                    "netns",
                    "exec",
                    client,
                    "ip",
                    "addr",
                    "add",
                    client_cidr,
                    "dev",
                    b,
                ],
            ),
            (
                "client",
                vec!["ip", "netns", "exec", client, "ip", "link", "set", b, "up"],
            ),
        ];
        for (side, argv) in steps {
            let out = if side == "server" {
                self.run(&argv)
            } else {
                Command::new(argv[0]).args(&argv[1..]).output().unwrap()
            };
            assert!(
                out.status.success(),
                "{argv:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// Copies a host file to a path inside (into the overlay's tmpfs).
    pub fn copy_in(&self, host: &Path, inside: &str) {
        let p = self.path(inside);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::copy(host, &p).unwrap_or_else(|e| panic!("copy {host:?} to {inside}: {e}"));
    }

    /// Whether a path exists inside (a dangling symlink counts).
    pub fn exists(&self, inside: &str) -> bool {
        std::fs::symlink_metadata(self.path(inside)).is_ok()
    }

    /// `journalctl -o cat ARGS` inside, one entry per line ("-- No entries --" is not one).
    pub fn journal_lines(&self, args: &[&str]) -> Vec<String> {
        let mut argv = vec!["journalctl", "--no-pager", "-q", "-o", "cat"];
        argv.extend(args);
        let out = self.run(&argv);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(String::from)
            .collect()
    }

    /// Waits (journald stores lines asynchronously) until `journalctl -o cat ARGS` has a
    /// line containing `needle`; returns that line.
    pub fn wait_journal(&self, args: &[&str], needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let lines = self.journal_lines(args);
            if let Some(l) = lines.iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no line containing {needle:?} in `journalctl {args:?}` after {within:?}:\n{}",
                lines.join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Systemd {
    /// Every file, directory and symlink under a directory inside, with its bytes
    /// (a symlink's target; `<dir>` for a directory).
    pub fn tree(&self, inside: &str) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
        fn walk(base: &Path, dir: &Path, out: &mut std::collections::BTreeMap<PathBuf, Vec<u8>>) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let p = e.path();
                let rel = p.strip_prefix(base).unwrap().to_path_buf();
                let meta = std::fs::symlink_metadata(&p).unwrap();
                if meta.is_dir() {
                    out.insert(rel, b"<dir>".to_vec());
                    walk(base, &p, out);
                } else if meta.file_type().is_symlink() {
                    let target = std::fs::read_link(&p).unwrap();
                    out.insert(rel, target.into_os_string().into_encoded_bytes());
                } else {
                    out.insert(rel, std::fs::read(&p).unwrap());
                }
            }
        }
        let base = self.path(inside);
        let mut out = std::collections::BTreeMap::new();
        walk(&base, &base, &mut out);
        out
    }
}

/// Additions for tests/unit_oracle.rs: the manager's D-Bus API through `busctl --json`.
/// busctl needs a bus (systemd's private socket speaks peer-to-peer D-Bus, which busctl
/// cannot use), so `start_bus` starts the namespace's own dbus.socket first.
impl Systemd {
    /// Starts dbus.socket inside and waits (with a deadline) until the manager answers on
    /// the bus: it connects to the bus asynchronously once the broker is up.
    pub fn start_bus(&self) {
        require("busctl");
        let out = self.systemctl(&["start", "dbus.socket"]);
        assert!(
            out.status.success(),
            "cannot start dbus.socket in the namespace (busctl needs a bus; is the dbus package installed?): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let probe = self.busctl_json(&[
                "get-property",
                "org.freedesktop.systemd1",
                "/org/freedesktop/systemd1",
                "org.freedesktop.systemd1.Manager",
                "Version",
            ]);
            match probe {
                Ok(_) => return,
                Err(e) => assert!(
                    Instant::now() < deadline,
                    "systemd is not on the namespace's D-Bus after 30s: {e}"
                ),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `busctl --json=short ARGS` inside: each line of its output parsed as JSON, or
    /// busctl's error.
    pub fn busctl_json(&self, args: &[&str]) -> Result<Vec<serde_json::Value>, String> {
        let mut argv = vec!["busctl", "--json=short"];
        argv.extend(args);
        let out = self.run(&argv);
        if !out.status.success() {
            return Err(format!(
                "{argv:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).map_err(|e| format!("{argv:?}: {e} in {l:?}")))
            .collect()
    }

    /// `Manager.LoadUnit(name)`: loads the unit if it is not loaded (as `systemctl show`
    /// does) and returns its object path.
    pub fn load_unit_object(&self, unit: &str) -> String {
        let reply = self
            .busctl_json(&[
                "call",
                "org.freedesktop.systemd1",
                "/org/freedesktop/systemd1",
                "org.freedesktop.systemd1.Manager",
                "LoadUnit",
                "s",
                unit,
            ])
            .unwrap_or_else(|e| panic!("LoadUnit {unit}: {e}"));
        reply
            .first()
            .and_then(|v| v["data"][0].as_str())
            .unwrap_or_else(|| panic!("LoadUnit {unit}: unexpected reply {reply:?}"))
            .to_string()
    }

    /// The `data` of each of `props` of `object` on `interface`, in the order asked.
    pub fn bus_properties(
        &self,
        object: &str,
        interface: &str,
        props: &[&str],
    ) -> Vec<serde_json::Value> {
        let mut args = vec![
            "get-property",
            "org.freedesktop.systemd1",
            object,
            interface,
        ];
        args.extend(props);
        let values = self
            .busctl_json(&args)
            .unwrap_or_else(|e| panic!("get-property {interface} {props:?} of {object}: {e}"));
        assert_eq!(
            values.len(),
            props.len(),
            "get-property {props:?} of {object}: {values:?}"
        );
        values.into_iter().map(|v| v["data"].clone()).collect()
    }
}
