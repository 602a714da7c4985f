//! A fleet on one machine for tests/fleet.rs: several hosts, each a real systemd 252 booted
//! as PID 1 of private namespaces over a throwaway overlay of `/` (tests/common/systemd.rs:
//! never the host's root filesystem), with a network namespace of its own and openssh's
//! sshd running inside as a unit of that systemd; a controller network namespace with a
//! Linux bridge that every host is joined to by a veth pair; and the pinned Ansible
//! (target/venv-ansible, installed by scripts/setup-test-env) run in the controller namespace.
//!
//! Nothing of this touches the machine's own configuration: each host's sshd config,
//! host key and root's `authorized_keys` are written inside that host's overlay (its tmpfs
//! upper layer); the throwaway client key, the inventory, ansible.cfg and Ansible's own
//! directories live in a temporary directory. The addresses (10.210.0.0/24) exist only on
//! the bridge and the veths inside these namespaces, which have no route anywhere else.
//! Drop ends the SSH connections Ansible left open (by pid, in the controller namespace),
//! powers every host off and removes the namespaces.
#![allow(dead_code)]

use crate::common;
use crate::harness::Systemd;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub const LONG: Duration = Duration::from_secs(60);
/// The controller's end of the bridge; host N (from 1) is `.1N`.
pub const CONTROLLER_IP: &str = "10.210.0.1";
pub const PREFIX: &str = "10.210.0";
/// Where the Debian package puts the launcher.
pub const PACKAGED: &str = "/usr/bin/gunicorn-launcher";
pub const UNIT: &str = "solvit.service";
pub const DROPIN: &str = "/etc/systemd/system/solvit.service.d/zz-gunicorn-launcher.conf";

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed:\n{}", text(&out));
    text(&out)
}

/// Runs argv inside a host and insists on success; returns its output.
pub fn ok_in(sd: &Systemd, argv: &[&str]) -> String {
    let out = sd.run(argv);
    assert!(out.status.success(), "{argv:?} failed:\n{}", text(&out));
    text(&out)
}

pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + LONG;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {LONG:?} waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The pinned Ansible (scripts/setup-test-env). Missing: fail loudly, never skip.
pub fn ansible_bin() -> PathBuf {
    let dir = common::root().join("target/venv-ansible/bin");
    assert!(
        dir.join("ansible-playbook").is_file(),
        "NO ANSIBLE at {}/ansible-playbook: run the README's test command (`make test`), whose \
         setup (scripts/setup-test-env) installs the pinned ansible-core into target/venv-ansible",
        dir.display()
    );
    dir
}

fn require(tool: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "THE FLEET TEST NEEDS `{tool}` ({package}): run `make test`, whose setup installs it"
    );
}

/// A SolvIT-style unit as deployed: gunicorn from the project's venv on 127.0.0.1:8001.
pub fn solvit_unit() -> String {
    format!(
        "[Unit]\n\
         Description=SolvIT\n\
         After=network.target\n\
         \n\
         [Service]\n\
         WorkingDirectory=/opt/solvit\n\
         RuntimeDirectory=solvit\n\
         Environment=XDG_RUNTIME_DIR=/run/solvit\n\
         ExecStart={}/bin/gunicorn --workers 2 --graceful-timeout 2 --bind 127.0.0.1:8001 hello:app\n\
         Restart=on-failure\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        common::venv().display()
    )
}

/// The sshd of a test host: its own host key, root by key only, nothing of the machine's
/// configuration.
const SSHD_CONFIG: &str = "\
HostKey /etc/ssh/fleet_test_host_ed25519_key
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
Subsystem sftp /usr/lib/openssh/sftp-server
";

pub struct Host {
    /// The inventory name (web1, web2, ...).
    pub name: String,
    pub address: String,
    pub sd: Systemd,
}

impl Host {
    /// A fresh server: systemd booted, SolvIT serving on 127.0.0.1:8001, sshd running with
    /// `public_key` authorised for root.
    fn boot(name: String, address: String, public_key: &str) -> Host {
        let venv = std::fs::canonicalize(common::venv()).expect("venv");
        let sd = Systemd::boot(std::slice::from_ref(&venv));
        // This machine's image is a container image, and so are the hosts' roots: undo,
        // inside each overlay only, what an ordinary server does not have. policy-rc.d
        // forbids every service action (exit 101); docker-clean keeps apt from saving its
        // package cache, so that every ansible.builtin.apt task parses all the package
        // lists again (seconds each). And man-db's trigger rebuilds the man index at each
        // dpkg run (5 s here), which no test reads.
        for path in [
            "/usr/sbin/policy-rc.d",
            "/etc/apt/apt.conf.d/docker-clean",
            "/var/lib/man-db/auto-update",
        ] {
            if sd.exists(path) {
                std::fs::remove_file(sd.path(path)).unwrap();
            }
        }
        // Who answers an ssh: the test asks it for this file.
        sd.write("/etc/fleet-test-name", &name);

        let hello = std::fs::read_to_string(common::root().join("examples/hello.py")).unwrap();
        sd.write("/opt/solvit/hello.py", &hello);
        sd.write(&format!("/etc/systemd/system/{UNIT}"), &solvit_unit());

        sd.write("/etc/ssh/sshd_config", SSHD_CONFIG);
        ok_in(
            &sd,
            &[
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                &format!("{name} host key"),
                "-f",
                "/etc/ssh/fleet_test_host_ed25519_key",
            ],
        );
        sd.write("/root/.ssh/authorized_keys", public_key);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(sd.path("/root/.ssh"), PermissionsExt::from_mode(0o700)).unwrap();
        std::fs::set_permissions(
            sd.path("/root/.ssh/authorized_keys"),
            PermissionsExt::from_mode(0o600),
        )
        .unwrap();

        ok_in(&sd, &["systemctl", "daemon-reload"]);
        // ssh.service is Type=notify: started means listening.
        ok_in(&sd, &["systemctl", "start", "ssh.service", UNIT]);
        wait_for(&format!("{name}: gunicorn on 127.0.0.1:8001"), || {
            sd.listeners(8001) == ["127.0.0.1:8001"]
        });
        Host { name, address, sd }
    }

    pub fn main_pid(&self) -> String {
        self.sd.prop(UNIT, "MainPID")
    }

    /// Every TCP listener inside (address:port), sorted.
    pub fn all_listeners(&self) -> Vec<String> {
        let out = self.sd.run(&["ss", "-ltnH"]);
        let mut all: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().nth(3).map(str::to_owned))
            .collect();
        all.sort();
        all
    }

    /// `dpkg-query`'s version of the installed package, or None.
    pub fn package_version(&self) -> Option<String> {
        let out = self.sd.run(&[
            "dpkg-query",
            "-W",
            "-f=${db:Status-Abbrev} ${Version}",
            "gunicorn-launcher",
        ]);
        let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
        said.strip_prefix("ii ").map(|v| v.trim().to_owned())
    }

    /// Drops tcp port 8001 arriving from other machines (on lan0); loopback still answers.
    pub fn firewall_port_8001(&self) {
        let table = "gunicorn_launcher_test";
        ok_in(&self.sd, &["nft", "add", "table", "inet", table]);
        ok_in(
            &self.sd,
            &[
                "nft",
                "add",
                "chain",
                "inet",
                table,
                "input",
                "{ type filter hook input priority 0; policy accept; }",
            ],
        );
        ok_in(
            &self.sd,
            &[
                "nft", "add", "rule", "inet", table, "input", "iifname", "lan0", "tcp", "dport",
                "8001", "drop",
            ],
        );
    }
}

/// One `ansible-playbook` run: its exit code, its whole output, and the PLAY RECAP's counts
/// per host (`ok`, `changed`, `failed`, ...).
pub struct Run {
    pub code: i32,
    pub output: String,
    pub recap: BTreeMap<String, BTreeMap<String, u32>>,
    pub took: Duration,
}

impl Run {
    /// What the role's task (or handler) named `task` said for `host`: ok, changed,
    /// skipping, failed or fatal (its first result line under the task's header), or None.
    pub fn task(&self, task: &str, host: &str) -> Option<&str> {
        let headers = [
            format!("TASK [gunicorn_launcher : {task}]"),
            format!("RUNNING HANDLER [gunicorn_launcher : {task}]"),
        ];
        let mut current = false;
        for line in self.output.lines() {
            if line.starts_with("TASK [") || line.starts_with("RUNNING HANDLER [") {
                current = headers.iter().any(|h| line.starts_with(h.as_str()));
                continue;
            }
            if !current {
                continue;
            }
            for word in ["ok", "changed", "skipping", "failed", "fatal"] {
                let rest = line.strip_prefix(word).and_then(|r| r.strip_prefix(": ["));
                if rest.is_some_and(|r| {
                    r.starts_with(&format!("{host}]")) || r.starts_with(&format!("{host} "))
                }) {
                    return Some(word);
                }
            }
        }
        None
    }

    pub fn count(&self, host: &str, what: &str) -> u32 {
        self.recap
            .get(host)
            .unwrap_or_else(|| panic!("{host} is not in the PLAY RECAP:\n{}", self.output))[what]
    }
}

/// The PLAY RECAP lines: `web1 : ok=9 changed=3 unreachable=0 failed=0 ...`.
pub fn recap(output: &str) -> BTreeMap<String, BTreeMap<String, u32>> {
    let Some(at) = output.rfind("PLAY RECAP") else {
        return BTreeMap::new();
    };
    output[at..]
        .lines()
        .skip(1)
        .filter_map(|l| {
            let (host, counts) = l.split_once(" : ")?;
            let counts: BTreeMap<String, u32> = counts
                .split_whitespace()
                .filter_map(|kv| {
                    let (k, v) = kv.split_once('=')?;
                    Some((k.to_string(), v.parse().ok()?))
                })
                .collect();
            Some((host.trim().to_string(), counts))
        })
        .collect()
}

pub struct Fleet {
    pub hosts: Vec<Host>,
    pub controller: common::Netns,
    /// The client key pair, inventory.yml, ansible.cfg, Ansible's home and temp files.
    pub dir: tempfile::TempDir,
}

impl Fleet {
    /// `n` hosts (web1..webN, booted in parallel), joined to the controller's bridge.
    /// `group_vars`: variables for the inventory group gunicorn_launcher.
    pub fn new(n: usize, group_vars: serde_json::Value) -> Fleet {
        common::require_root("namespaces, mounts, a booted systemd per host");
        for (tool, package) in [
            ("ssh", "openssh-client"),
            ("ssh-keygen", "openssh-client"),
            ("/usr/sbin/sshd", "openssh-server"),
            ("nft", "nftables"),
            ("sudo", "sudo"),
            ("dpkg-deb", "dpkg-dev"),
        ] {
            require(tool, package);
        }
        assert!(
            Command::new("/usr/bin/python3")
                .args(["-c", "import apt"])
                .output()
                .is_ok_and(|o| o.status.success()),
            "THE FLEET TEST NEEDS python3-apt for /usr/bin/python3 (ansible.builtin.apt on the \
             hosts): run `make test`, whose setup installs it"
        );
        ansible_bin();
        let dir = tempfile::tempdir().expect("temp dir");
        let key = dir.path().join("id_ed25519");
        ok(Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "fleet test controller",
                "-f",
            ])
            .arg(&key));
        let public_key = std::fs::read_to_string(key.with_extension("pub")).unwrap();

        let controller = common::Netns::new();
        for argv in [
            &["ip", "link", "add", "br0", "type", "bridge"][..],
            &[
                "ip",
                "addr",
                "add",
                &format!("{CONTROLLER_IP}/24"),
                "dev",
                "br0",
            ],
            &["ip", "link", "set", "br0", "up"],
        ] {
            ok(controller.cmd(argv[0]).args(&argv[1..]));
        }

        let hosts: Vec<Host> = std::thread::scope(|s| {
            let booting: Vec<_> = (1..=n)
                .map(|i| {
                    let public_key = public_key.clone();
                    s.spawn(move || {
                        Host::boot(
                            format!("web{i}"),
                            format!("{PREFIX}.{}", 10 + i),
                            &public_key,
                        )
                    })
                })
                .collect();
            booting
                .into_iter()
                .map(|b| b.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        let fleet = Fleet {
            hosts,
            controller,
            dir,
        };
        for host in &fleet.hosts {
            fleet.wire(host);
        }
        fleet.write_inventory(group_vars);
        for host in &fleet.hosts {
            fleet.ssh_works(host);
        }
        fleet
    }

    /// A veth pair: `lan0` with the host's address inside the host, its peer (named after
    /// the host) on the controller's bridge. Both ends are made in their namespaces.
    fn wire(&self, host: &Host) {
        let pid = host.sd.pid.to_string();
        let ns = &self.controller.name;
        ok(Command::new("ip").args([
            "link", "add", "lan0", "netns", &pid, "type", "veth", "peer", "name", &host.name,
            "netns", ns,
        ]));
        ok_in(
            &host.sd,
            &[
                "ip",
                "addr",
                "add",
                &format!("{}/24", host.address),
                "dev",
                "lan0",
            ],
        );
        ok_in(&host.sd, &["ip", "link", "set", "lan0", "up"]);
        ok(self
            .controller
            .cmd("ip")
            .args(["link", "set", &host.name, "master", "br0"]));
        ok(self
            .controller
            .cmd("ip")
            .args(["link", "set", &host.name, "up"]));
    }

    fn key(&self) -> PathBuf {
        self.dir.path().join("id_ed25519")
    }

    pub fn inventory(&self) -> PathBuf {
        self.dir.path().join("inventory.yml")
    }

    /// The options every ssh from the controller takes: the throwaway key, no known_hosts
    /// (each host's key is new at every boot), none of the machine's ssh configuration.
    fn ssh_options(&self) -> Vec<String> {
        [
            "-F",
            "/dev/null",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// inventory.yml (JSON, which YAML reads): group gunicorn_launcher, one host per line
    /// with its address, root over SSH with the throwaway key; and ansible.cfg.
    fn write_inventory(&self, group_vars: serde_json::Value) {
        let hosts: serde_json::Map<String, serde_json::Value> = self
            .hosts
            .iter()
            .map(|h| {
                (
                    h.name.clone(),
                    serde_json::json!({"ansible_host": h.address}),
                )
            })
            .collect();
        let mut vars = serde_json::json!({
            "ansible_user": "root",
            "ansible_ssh_private_key_file": self.key(),
            "ansible_ssh_common_args": self.ssh_options().join(" "),
            "ansible_python_interpreter": "/usr/bin/python3",
        });
        if let (Some(all), Some(extra)) = (vars.as_object_mut(), group_vars.as_object()) {
            all.extend(extra.clone());
        }
        let inventory = serde_json::json!({
            "gunicorn_launcher": {"hosts": hosts, "vars": vars},
        });
        std::fs::write(
            self.inventory(),
            serde_json::to_string_pretty(&inventory).unwrap(),
        )
        .unwrap();
        // Ansible's own state in the temp directory; no machine-wide ansible.cfg is read.
        // remote_tmp too: the requests delegated to the controller would make
        // ~root/.ansible/tmp there (on the hosts, the path is in their own /tmp).
        let d = self.dir.path().display();
        std::fs::write(
            self.dir.path().join("ansible.cfg"),
            format!(
                "[defaults]\n\
                 home = {d}/ansible-home\n\
                 local_tmp = {d}/ansible-local\n\
                 remote_tmp = {d}/ansible-remote\n\
                 nocolor = true\n\
                 forks = 5\n\
                 \n\
                 [ssh_connection]\n\
                 pipelining = true\n\
                 control_path_dir = {d}/cp\n"
            ),
        )
        .unwrap();
    }

    /// Fails loudly, with ssh's own words, unless the controller reaches the host's sshd.
    fn ssh_works(&self, host: &Host) {
        let out = self
            .controller
            .cmd("ssh")
            .args(self.ssh_options())
            .args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-i"])
            .arg(self.key())
            .arg(format!("root@{}", host.address))
            .args(["cat", "/etc/fleet-test-name"])
            .output()
            .expect("ssh");
        assert!(
            out.status.success() && text(&out).trim() == host.name,
            "the controller cannot ssh to {} ({}): {}\nsshd's journal:\n{}",
            host.name,
            host.address,
            text(&out),
            host.sd.journal("ssh.service")
        );
    }

    /// `ansible-playbook -i INVENTORY PLAYBOOK ARGS...` in the controller namespace, from
    /// the repository's root, as an operator runs it.
    pub fn playbook(&self, playbook: &str, args: &[&str]) -> Run {
        let bin = ansible_bin();
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let started = Instant::now();
        let mut cmd = self.controller.cmd(bin.join("ansible-playbook"));
        // Only this test's settings: none of the caller's ANSIBLE_* variables.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("ANSIBLE_") {
                cmd.env_remove(name);
            }
        }
        let out = cmd
            .arg("-i")
            .arg(self.inventory())
            .arg(playbook)
            .args(args)
            .current_dir(common::root())
            .env("PATH", path)
            .env("HOME", self.dir.path())
            .env("ANSIBLE_CONFIG", self.dir.path().join("ansible.cfg"))
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run ansible-playbook");
        let took = started.elapsed();
        let output = text(&out);
        eprintln!(
            "==== ansible-playbook {playbook} {args:?}: exit {:?} after {took:.1?}\n{output}",
            out.status.code()
        );
        Run {
            code: out.status.code().unwrap_or(-1),
            recap: recap(&output),
            output,
            took,
        }
    }

    /// `curl` from the controller: the HTTP status, or curl's exit code (7 refused, 28 timed
    /// out after a second with no answer).
    pub fn curl_from_controller(&self, host: &Host, host_header: Option<&str>) -> Result<u16, i32> {
        let url = format!("http://{}:8001/", host.address);
        let header = host_header.map(|h| format!("Host: {h}"));
        let mut extra = vec!["--connect-timeout", "1"];
        if let Some(h) = &header {
            extra.extend(["-H", h.as_str()]);
        }
        self.controller.http_status_with(&url, &extra)
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        // The SSH connections Ansible keeps open (ControlPersist) run in the controller
        // namespace: every process there was started by this test.
        let pids = Command::new("ip")
            .args(["netns", "pids", &self.controller.name])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        for pid in pids.split_whitespace().filter_map(|p| p.parse().ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        // Every host powers off at once; each Systemd's own Drop then waits for its end.
        for host in &self.hosts {
            let _ = host.sd.systemctl(&["poweroff", "--no-block"]);
        }
    }
}

/// A copy of the package with a higher version (`VERSION+fleettest1`), same files: what an
/// upgrade brings. Returns its path.
pub fn newer_package(deb: &Path, dir: &Path) -> PathBuf {
    let tree = dir.join("newer");
    let _ = std::fs::remove_dir_all(&tree);
    ok(Command::new("dpkg-deb").arg("-R").arg(deb).arg(&tree));
    let control = tree.join("DEBIAN/control");
    let old = std::fs::read_to_string(&control).unwrap();
    let new: String = old
        .lines()
        .map(|l| match l.strip_prefix("Version: ") {
            Some(v) => format!("Version: {v}+fleettest1\n"),
            None => format!("{l}\n"),
        })
        .collect();
    assert_ne!(old, new, "no Version: line in {}", control.display());
    std::fs::write(&control, new).unwrap();
    let out = dir.join("gunicorn-launcher_newer.deb");
    ok(Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(&tree)
        .arg(&out));
    out
}
