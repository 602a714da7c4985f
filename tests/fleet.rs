//! The Ansible rollout (ansible/site.yml, ansible/uninstall.yml, the role
//! ansible/roles/gunicorn_launcher) on a real fleet on one machine (tests/common/fleet.rs):
//! three hosts, each a real systemd 252 in namespaces of its own with sshd inside and a
//! SolvIT unit bound to 127.0.0.1:8001, reached over SSH from a controller namespace where
//! the pinned ansible-playbook runs, as an operator runs it.
//!
//! The story: the controller's requests are refused; site.yml wraps every host and each
//! answers the controller; a second run changes nothing; a newer package on one host
//! (`--limit`) restarts its wrapped units through the role's handler; uninstall.yml puts
//! everything back; with one host's firewall dropping the port, site.yml stops at that
//! host (the host before it serves, the one after it is untouched) and prints the host's
//! own check; uninstall.yml then leaves every unit file and every port as they were before
//! the first run.
//!
//! The package is packaging/build-deb's, of the launcher this test run built (`make test`
//! builds the release one too; `GUNICORN_LAUNCHER_DEB=path/to.deb` tests a given package,
//! e.g. `make deb`'s).

mod common;
#[path = "common/fleet.rs"]
mod fleet;
#[path = "common/systemd.rs"]
mod harness;

use fleet::{DROPIN, Fleet, Host, PACKAGED, Run, UNIT, ok_in, wait_for};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const HOST_NAME: &str = "solvit.test";
const INSTALL: &str = "Run gunicorn-launcher install";
const UNINSTALL: &str = "Run gunicorn-launcher uninstall";
const RESTART: &str = "Restart the units the launcher already wrapped";

/// The package: GUNICORN_LAUNCHER_DEB, else built by packaging/build-deb from the launcher
/// cargo built for this run, into cargo's scratch directory for integration tests.
fn package() -> PathBuf {
    if let Some(deb) = std::env::var_os("GUNICORN_LAUNCHER_DEB") {
        return PathBuf::from(deb);
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fleet-deb");
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(common::root().join("packaging/build-deb"))
        .arg("--binary")
        .arg(common::launcher())
        .arg("--out")
        .arg(&dir)
        .output()
        .expect("run packaging/build-deb");
    assert!(
        out.status.success(),
        "packaging/build-deb failed:\n{}",
        fleet::text(&out)
    );
    let debs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    assert_eq!(debs.len(), 1, "build-deb wrote {debs:?}");
    debs[0].clone()
}

fn deb_version(deb: &Path) -> String {
    let out = Command::new("dpkg-deb")
        .arg("-f")
        .arg(deb)
        .arg("Version")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A wrapped, serving host: the drop-in, the packaged launcher as the unit's main process,
/// one listener on all interfaces, HTTP 200 to the controller (with and without the Host
/// clients use).
fn assert_serving(fleet: &Fleet, host: &Host, version: &str) {
    let name = &host.name;
    assert!(host.sd.exists(DROPIN), "{name}: no drop-in");
    assert_eq!(host.package_version().as_deref(), Some(version), "{name}");
    assert_eq!(host.sd.exe(&host.main_pid()), PACKAGED, "{name}");
    assert_eq!(host.sd.listeners(8001), ["0.0.0.0:8001"], "{name}");
    assert_eq!(fleet.curl_from_controller(host, None), Ok(200), "{name}");
    assert_eq!(
        fleet.curl_from_controller(host, Some(HOST_NAME)),
        Ok(200),
        "{name}"
    );
}

/// A host as before the first run: no drop-in, no package, no copy of it, the unit's own
/// gunicorn on 127.0.0.1:8001, every unit file and every listener as they were.
fn assert_as_before(
    host: &Host,
    units: &BTreeMap<PathBuf, Vec<u8>>,
    listeners: &[String],
    run: &Run,
) {
    let name = &host.name;
    assert!(
        !host.sd.exists(DROPIN),
        "{name}: drop-in left\n{}",
        run.output
    );
    assert_eq!(host.package_version(), None, "{name}: package left");
    assert!(
        !host.sd.exists("/var/cache/gunicorn-launcher"),
        "{name}: the copy of the package left"
    );
    assert_eq!(
        &host.sd.tree("/etc/systemd/system"),
        units,
        "{name}: unit files"
    );
    wait_for(&format!("{name}: the unit's own gunicorn"), || {
        host.all_listeners() == listeners
    });
    assert!(
        host.sd.exe(&host.main_pid()).contains("python"),
        "{name}: {}",
        host.sd.exe(&host.main_pid())
    );
}

fn assert_ok(run: &Run, what: &str) {
    assert_eq!(run.code, 0, "{what}: exit code\n{}", run.output);
    for (host, counts) in &run.recap {
        assert_eq!(
            (counts["failed"], counts["unreachable"]),
            (0, 0),
            "{what}: {host}\n{}",
            run.output
        );
    }
}

#[test]
fn site_yml_rolls_out_host_by_host_verified_from_the_controller_and_uninstall_yml_undoes_it() {
    let started = Instant::now();
    let deb = package();
    let version = deb_version(&deb);
    let deb_arg = format!("gunicorn_launcher_deb={}", deb.display());
    // A LAN: two seconds without an answer is a firewall (the default, 5 s, is for any
    // network).
    let fleet = Fleet::new(
        3,
        serde_json::json!({
            "gunicorn_launcher_host_names": [HOST_NAME],
            "gunicorn_launcher_verify_timeout": 2,
        }),
    );
    let booted = started.elapsed();
    let names: Vec<&str> = fleet.hosts.iter().map(|h| h.name.as_str()).collect();

    // Before: each host serves its own loopback only; the controller is refused.
    let units_before: Vec<_> = fleet
        .hosts
        .iter()
        .map(|h| h.sd.tree("/etc/systemd/system"))
        .collect();
    let listeners_before: Vec<_> = fleet.hosts.iter().map(Host::all_listeners).collect();
    for host in &fleet.hosts {
        assert_eq!(
            host.sd.http_status("http://127.0.0.1:8001/"),
            Ok(200),
            "{}",
            host.name
        );
        assert_eq!(
            fleet.curl_from_controller(host, None),
            Err(7),
            "{}: connection refused",
            host.name
        );
    }

    // The rollout: every host changed, wrapped, answering the controller; the summary
    // has a line per host with its unit, port, verdict and check's exit code.
    let first = fleet.playbook("ansible/site.yml", &["-e", &deb_arg]);
    assert_ok(&first, "first site.yml");
    assert_eq!(
        first.recap.keys().collect::<Vec<_>>(),
        names,
        "{}",
        first.output
    );
    for host in &fleet.hosts {
        assert!(
            first.count(&host.name, "changed") > 0,
            "{}\n{}",
            host.name,
            first.output
        );
        assert_eq!(
            first.task(INSTALL, &host.name),
            Some("changed"),
            "{}\n{}",
            host.name,
            first.output
        );
        // install has just restarted them on the new package: no second restart.
        assert_eq!(first.task(RESTART, &host.name), Some("skipping"));
        assert_serving(&fleet, host, &version);
        let line = format!(
            "{}: {UNIT}; port 8001: ok (check exit 0): listening on 0.0.0.0:8001",
            host.name
        );
        assert!(
            first.output.contains(&line),
            "no summary line {line:?}\n{}",
            first.output
        );
    }
    let pids: Vec<String> = fleet.hosts.iter().map(Host::main_pid).collect();

    // Again: nothing changes, nothing restarts.
    let second = fleet.playbook("ansible/site.yml", &["-e", &deb_arg]);
    assert_ok(&second, "second site.yml");
    for (host, pid) in fleet.hosts.iter().zip(&pids) {
        assert_eq!(
            second.task(INSTALL, &host.name),
            Some("ok"),
            "{}",
            host.name
        );
        assert_eq!(
            second.count(&host.name, "changed"),
            0,
            "{}\n{}",
            host.name,
            second.output
        );
        assert_eq!(&host.main_pid(), pid, "{}: restarted", host.name);
        assert_serving(&fleet, host, &version);
    }

    // A newer package on one host first (a canary, `--limit`): installed, and the handler
    // restarts the units wrapped before (the package itself restarts nothing), verified
    // again from the controller; the other hosts are not touched.
    let newer = fleet::newer_package(&deb, fleet.dir.path());
    let newer_version = deb_version(&newer);
    let canary = fleet.playbook(
        "ansible/site.yml",
        &[
            "-e",
            &format!("gunicorn_launcher_deb={}", newer.display()),
            "--limit",
            "web1",
        ],
    );
    assert_ok(&canary, "site.yml with a newer package on web1");
    assert_eq!(canary.recap.keys().collect::<Vec<_>>(), ["web1"]);
    assert_eq!(canary.task("Install the package", "web1"), Some("changed"));
    assert_eq!(canary.task(INSTALL, "web1"), Some("ok"));
    assert_eq!(canary.task(RESTART, "web1"), Some("changed"));
    assert_ne!(fleet.hosts[0].main_pid(), pids[0], "web1: not restarted");
    assert_serving(&fleet, &fleet.hosts[0], &newer_version);
    // One copy of the package, the newer one, under one name.
    let copies = fleet.hosts[0].sd.tree("/var/cache/gunicorn-launcher");
    assert_eq!(
        copies.keys().collect::<Vec<_>>(),
        [Path::new("gunicorn-launcher.deb")]
    );
    assert!(copies.values().next().unwrap() == &std::fs::read(&newer).unwrap());
    for (host, pid) in fleet.hosts.iter().zip(&pids).skip(1) {
        assert_eq!(&host.main_pid(), pid, "{}: restarted", host.name);
        assert_serving(&fleet, host, &version);
    }

    // uninstall.yml: every unit file and every port as before.
    let undone = fleet.playbook("ansible/uninstall.yml", &[]);
    assert_ok(&undone, "uninstall.yml");
    for (i, host) in fleet.hosts.iter().enumerate() {
        assert_eq!(undone.task(UNINSTALL, &host.name), Some("changed"));
        assert_as_before(host, &units_before[i], &listeners_before[i], &undone);
        assert_eq!(
            fleet.curl_from_controller(host, None),
            Err(7),
            "{}",
            host.name
        );
    }

    // web2's firewall drops port 8001 from other machines; its own loopback still answers.
    let (web1, web2, web3) = (&fleet.hosts[0], &fleet.hosts[1], &fleet.hosts[2]);
    web2.firewall_port_8001();
    assert_eq!(web2.sd.http_status("http://127.0.0.1:8001/"), Ok(200));
    assert_eq!(
        fleet.curl_from_controller(web2, None),
        Err(28),
        "dropped: no answer"
    );
    let web3_pid = web3.main_pid();

    // site.yml stops at web2: web1 wrapped and serving, web2 failed with its own check
    // printed (it is fine from inside), web3 untouched.
    let stopped = fleet.playbook("ansible/site.yml", &["-e", &deb_arg]);
    assert_ne!(stopped.code, 0, "{}", stopped.output);
    assert_eq!(stopped.count("web1", "failed"), 0, "{}", stopped.output);
    assert_eq!(stopped.task(INSTALL, "web1"), Some("changed"));
    assert_eq!(stopped.count("web2", "failed"), 1, "{}", stopped.output);
    assert!(
        !stopped.recap.contains_key("web3"),
        "web3 was touched:\n{}",
        stopped.output
    );
    assert_serving(&fleet, web1, &version);
    for needle in [
        format!(
            "web2: the controller got no HTTP 200: http://{}:8001/",
            web2.address
        ),
        // Its own check, as it printed it: the table, then its verdict in the message.
        "FAMILY  ADDRESS".to_string(),
        "0.0.0.0:8001".to_string(),
        "The host's own check (exit ".to_string(),
        "the rollout stops here".to_string(),
        "NO MORE HOSTS LEFT".to_string(),
    ] {
        assert!(
            stopped.output.contains(&needle),
            "no {needle:?} in:\n{}",
            stopped.output
        );
    }
    // Where its own check finds nothing wrong (exit 0: all answer from inside), the message
    // says that what lies between keeps the controller out; where it names a cause, it
    // says nothing more.
    let exit = stopped
        .output
        .split("The host's own check (exit ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|code| code.parse::<i32>().ok())
        .expect("check's exit code in the message");
    assert_eq!(
        stopped
            .output
            .contains("From inside, the host answers on every address"),
        exit == 0,
        "{}",
        stopped.output
    );
    // web2 stays wrapped (the bind is right; its firewall is what is wrong).
    assert!(web2.sd.exists(DROPIN));
    assert_eq!(web2.sd.listeners(8001), ["0.0.0.0:8001"]);
    assert_eq!(web2.sd.http_status("http://127.0.0.1:8001/"), Ok(200));
    // web3: not a file, not a restart.
    assert!(!web3.sd.exists(DROPIN), "web3 has a drop-in");
    assert!(!web3.sd.exists(PACKAGED), "web3 has the package");
    assert!(!web3.sd.exists("/var/cache/gunicorn-launcher"));
    assert_eq!(web3.main_pid(), web3_pid, "web3 was restarted");
    assert_eq!(web3.sd.listeners(8001), ["127.0.0.1:8001"]);
    assert_eq!(fleet.curl_from_controller(web3, None), Err(7));

    // uninstall.yml: every host as before the first run (web3 has nothing to undo).
    let last = fleet.playbook("ansible/uninstall.yml", &[]);
    assert_ok(&last, "last uninstall.yml");
    assert_eq!(last.count("web3", "changed"), 0, "{}", last.output);
    assert_eq!(last.task(UNINSTALL, "web3"), Some("ok"), "{}", last.output);
    for host in ["web1", "web2"] {
        assert_eq!(last.task(UNINSTALL, host), Some("changed"), "{host}");
    }
    for (i, host) in fleet.hosts.iter().enumerate() {
        assert_as_before(host, &units_before[i], &listeners_before[i], &last);
    }
    ok_in(
        &web2.sd,
        &["nft", "delete", "table", "inet", "gunicorn_launcher_test"],
    );

    let runs = [&first, &second, &canary, &undone, &stopped, &last];
    eprintln!(
        "fleet test: {:.1?} in all; 3 hosts booted in {booted:.1?}; ansible-playbook runs: {}",
        started.elapsed(),
        runs.iter()
            .map(|r| format!("{:.1?}", r.took))
            .collect::<Vec<_>>()
            .join(", ")
    );
}
