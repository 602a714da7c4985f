//! The Debian package on a fresh server: a real systemd 252 booted as PID 1 of private
//! namespaces over a throwaway overlay of `/` (tests/common/systemd.rs), where `dpkg`
//! writes into the overlay's tmpfs, never into the host's root filesystem.
//!
//! The package is built by packaging/build-deb (what `make deb` runs) from the binary cargo
//! built for these tests, so the test does not wait for a release build; every other step
//! of the build (man page and completions generated, static-link check, sample drop-in, dpkg-deb)
//! is the same. `GUNICORN_LAUNCHER_DEB=target/debian/...deb` tests that package instead.
//!
//! The story, as the issue tells it: `dpkg -i`; a SolvIT unit binding gunicorn to
//! 127.0.0.1:8001 runs; `gunicorn-launcher install solvit.service` (the packaged one) swaps
//! the launcher in; `curl -I` from another network namespace answers; the journal's
//! warnings are exactly the launcher's bind replacement; `systemctl status` shows the
//! launcher's STATUS line; the shipped unit template runs an instance; a reinstall keeps
//! the drop-ins; `dpkg -r` takes away every file it installed, the drop-in that runs the
//! packaged launcher (SolvIT runs its own command again) and the template's running
//! instance, and leaves a drop-in that runs another launcher alone; `dpkg --purge` also
//! takes the instance's enablement link. A second test removes the package under a
//! policy-rc.d that forbids restarts (as in image builds).

mod common;
#[path = "common/systemd.rs"]
mod harness;

use harness::Systemd;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(60);
const SERVER_IP: &str = "198.18.0.1";
const DEB_INSIDE: &str = "/var/cache/gunicorn-launcher-test/gunicorn-launcher.deb";
const DROPIN: &str = "/etc/systemd/system/solvit.service.d/zz-gunicorn-launcher.conf";
const REPLACED: &str = "gunicorn-launcher: replaced --bind 127.0.0.1:8001 with 0.0.0.0:8001";

/// Every file the package must hold (directories aside), and nothing else.
const FILES: [&str; 19] = [
    "/usr/bin/gunicorn-launcher",
    "/usr/lib/systemd/system/gunicorn-launcher@.service",
    "/usr/share/man/man1/gunicorn-launcher.1.gz",
    "/usr/share/man/man1/gunicorn-launcher-run.1.gz",
    "/usr/share/man/man1/gunicorn-launcher-print-command.1.gz",
    "/usr/share/man/man1/gunicorn-launcher-check.1.gz",
    "/usr/share/man/man1/gunicorn-launcher-install.1.gz",
    "/usr/share/man/man1/gunicorn-launcher-uninstall.1.gz",
    "/usr/share/man/man1/gunicorn-launcher-status.1.gz",
    "/usr/share/bash-completion/completions/gunicorn-launcher",
    "/usr/share/zsh/vendor-completions/_gunicorn-launcher",
    "/usr/share/fish/vendor_completions.d/gunicorn-launcher.fish",
    "/usr/share/doc/gunicorn-launcher/changelog.Debian.gz",
    "/usr/share/doc/gunicorn-launcher/copyright",
    "/usr/share/doc/gunicorn-launcher/examples/gunicorn-launcher.toml",
    "/usr/share/doc/gunicorn-launcher/examples/solvit.toml",
    "/usr/share/doc/gunicorn-launcher/examples/solvit.service",
    "/usr/share/doc/gunicorn-launcher/examples/zz-gunicorn-launcher.conf",
    "/usr/share/lintian/overrides/gunicorn-launcher",
];

/// The package under test: built once for this test binary, into cargo's scratch
/// directory for integration tests (replaced on every run).
fn package() -> &'static Path {
    static DEB: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DEB.get_or_init(|| {
        if let Some(deb) = std::env::var_os("GUNICORN_LAUNCHER_DEB") {
            return PathBuf::from(deb);
        }
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("deb-test");
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
            text(&out)
        );
        let debs: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "deb"))
            .collect();
        assert_eq!(debs.len(), 1, "build-deb wrote {debs:?}");
        debs[0].clone()
    })
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The paths in the package (`dpkg-deb -c`), as absolute paths, `/` itself left out.
fn package_paths(deb: &Path) -> BTreeSet<String> {
    let out = Command::new("dpkg-deb")
        .arg("-c")
        .arg(deb)
        .output()
        .unwrap();
    assert!(out.status.success(), "dpkg-deb -c: {}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(|p| p.trim_start_matches('.').trim_end_matches('/').to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

fn control_field(deb: &Path, field: &str) -> String {
    let out = Command::new("dpkg-deb")
        .arg("-f")
        .arg(deb)
        .arg(field)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The paths whose presence or bytes differ between two trees, with what happened.
fn changed(before: &BTreeMap<PathBuf, Vec<u8>>, after: &BTreeMap<PathBuf, Vec<u8>>) -> Vec<String> {
    let mut out = Vec::new();
    for (path, bytes) in before {
        match after.get(path) {
            None => out.push(format!("removed: {}", path.display())),
            Some(now) if now != bytes => out.push(format!("changed: {}", path.display())),
            Some(_) => {}
        }
    }
    for path in after.keys().filter(|p| !before.contains_key(*p)) {
        out.push(format!("added: {}", path.display()));
    }
    out
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + LONG;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {LONG:?} waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs argv inside and insists on success; returns its output as text.
fn ok(sd: &Systemd, argv: &[&str]) -> String {
    let out = sd.run(argv);
    assert!(out.status.success(), "{argv:?} failed:\n{}", text(&out));
    text(&out)
}

/// A unit as SolvIT deployments have it: default dependencies, gunicorn on loopback.
fn solvit_unit(description: &str, port: u16) -> String {
    format!(
        "[Unit]\n\
         Description={description}\n\
         After=network.target\n\
         \n\
         [Service]\n\
         WorkingDirectory=/opt/solvit\n\
         RuntimeDirectory={port}\n\
         Environment=XDG_RUNTIME_DIR=/run/{port}\n\
         ExecStart={}/bin/gunicorn --workers 2 --bind 127.0.0.1:{port} hello:app\n\
         Restart=on-failure\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        common::venv().display()
    )
}

/// `curl -I` from the client namespace: the status line, or curl's exit code.
fn curl_head(client: &common::Netns, url: &str) -> Result<String, i32> {
    let out = client
        .cmd("curl")
        .args(["-sS", "-I", "--max-time", "5", url])
        .output()
        .expect("curl");
    if !out.status.success() {
        return Err(out.status.code().unwrap_or(-1));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .trim_end()
        .to_string())
}

/// A fresh server: systemd booted, no policy-rc.d (this machine's image has one that
/// forbids every service action, exit 101: removed inside the overlay only), joined to a
/// client namespace by a veth pair.
fn fresh_server() -> (Systemd, common::Netns) {
    let venv = std::fs::canonicalize(common::venv()).expect("venv");
    let sd = Systemd::boot(std::slice::from_ref(&venv));
    if sd.exists("/usr/sbin/policy-rc.d") {
        std::fs::remove_file(sd.path("/usr/sbin/policy-rc.d")).unwrap();
    }
    let client = common::Netns::new();
    sd.veth_to(&client.name, &format!("{SERVER_IP}/24"), "198.18.0.2/24");
    (sd, client)
}

/// SolvIT as deployed, running: gunicorn on 127.0.0.1:8001.
fn start_solvit(sd: &Systemd) {
    let hello = std::fs::read_to_string(common::root().join("examples/hello.py")).unwrap();
    sd.write("/opt/solvit/hello.py", &hello);
    sd.write(
        "/etc/systemd/system/solvit.service",
        &solvit_unit("SolvIT", 8001),
    );
    ok(sd, &["systemctl", "daemon-reload"]);
    ok(sd, &["systemctl", "start", "solvit.service"]);
    wait_for("gunicorn on 127.0.0.1:8001", || {
        sd.listeners(8001) == ["127.0.0.1:8001"]
    });
}

/// `/usr/bin/gunicorn-launcher install solvit.service` (the packaged one, by its path:
/// a copy in /usr/local/bin would come first in PATH); returns the launcher's main PID.
fn install_solvit(sd: &Systemd) -> String {
    let out = sd.run(&["/usr/bin/gunicorn-launcher", "install", "solvit.service"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("solvit.service: verified: listening on 0.0.0.0:8001"),
        "{}",
        text(&out)
    );
    let main_pid = sd.prop("solvit.service", "MainPID");
    assert_eq!(sd.exe(&main_pid), "/usr/bin/gunicorn-launcher");
    main_pid
}

#[test]
fn the_deb_on_a_fresh_server_installs_wraps_solvit_and_removes_cleanly() {
    let started = Instant::now();
    let deb = package();

    // What the package holds: exactly these files, and a static binary that
    // depends on no library.
    let paths = package_paths(deb);
    let files: BTreeSet<String> = paths
        .iter()
        .filter(|p| !paths.iter().any(|q| q.starts_with(&format!("{p}/"))))
        .cloned()
        .collect();
    let want: BTreeSet<String> = FILES.iter().map(|f| f.to_string()).collect();
    assert_eq!(files, want, "the package's files");
    assert_eq!(
        control_field(deb, "Depends"),
        "",
        "a static binary needs no library"
    );
    assert_eq!(control_field(deb, "Recommends"), "systemd, procps");

    let (sd, client) = fresh_server();

    // Install the package.
    let existed_before: BTreeMap<String, bool> =
        paths.iter().map(|p| (p.clone(), sd.exists(p))).collect();
    sd.copy_in(deb, DEB_INSIDE);
    ok(&sd, &["dpkg", "-i", DEB_INSIDE]);
    let listed: BTreeSet<String> = ok(&sd, &["dpkg", "-L", "gunicorn-launcher"])
        .lines()
        .filter(|l| *l != "/.")
        .map(String::from)
        .collect();
    assert_eq!(listed, paths, "dpkg -L against the package's contents");
    let version = ok(&sd, &["/usr/bin/gunicorn-launcher", "--version"]);
    assert!(
        version.starts_with(&format!("gunicorn-launcher {}", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    assert_eq!(
        ok(&sd, &["man", "-w", "gunicorn-launcher"]).trim(),
        "/usr/share/man/man1/gunicorn-launcher.1.gz"
    );

    // SolvIT as deployed: gunicorn on 127.0.0.1:8001; the other machine is refused.
    start_solvit(&sd);
    let url = format!("http://{SERVER_IP}:8001");
    assert_eq!(curl_head(&client, &url), Err(7), "the seed's problem");

    // Another app, wrapped by a launcher that is not the package's.
    sd.write(
        "/etc/systemd/system/other.service",
        &solvit_unit("Another app", 8003),
    );
    std::fs::copy(
        sd.path("/usr/bin/gunicorn-launcher"),
        sd.path("/usr/local/bin/gunicorn-launcher"),
    )
    .unwrap();
    ok(
        &sd,
        &[
            "/usr/local/bin/gunicorn-launcher",
            "install",
            "other.service",
            "--launcher",
            "/usr/local/bin/gunicorn-launcher",
        ],
    );

    // The shipped unit template runs an app from its config.
    let hello = std::fs::read_to_string(common::root().join("examples/hello.py")).unwrap();
    sd.write("/opt/hello/hello.py", &hello);
    sd.write(
        "/etc/gunicorn-launcher/hello.toml",
        &format!(
            "[gunicorn]\ncommand = \"{}/bin/gunicorn\"\napp = \"hello:app\"\n\n[bind]\nport = 8002\n",
            common::venv().display()
        ),
    );
    ok(
        &sd,
        &[
            "systemctl",
            "enable",
            "--now",
            "gunicorn-launcher@hello.service",
        ],
    );
    let status = sd.prop("gunicorn-launcher@hello.service", "StatusText");
    assert!(
        status.starts_with("verified: listening on 0.0.0.0:8002"),
        "{status:?}\n{}",
        sd.journal("gunicorn-launcher@hello.service")
    );
    assert_eq!(
        curl_head(&client, &format!("http://{SERVER_IP}:8002")).as_deref(),
        Ok("HTTP/1.1 200 OK")
    );
    let enabled = "multi-user.target.wants/gunicorn-launcher@hello.service";
    let before_install = sd.tree("/etc/systemd/system");
    assert!(before_install.contains_key(Path::new(enabled)));

    // The packaged launcher swaps itself into solvit.service.
    let main_pid = install_solvit(&sd);

    // From the other machine: curl -I answers.
    assert_eq!(curl_head(&client, &url).as_deref(), Ok("HTTP/1.1 200 OK"));

    // The journal's warnings: the launcher's bind replacement, and nothing else. gunicorn
    // 27 logs a warning for the HEAD that curl -I sent (hello.py writes a body), but its
    // lines carry no priority prefix, so journald files them at info: the line is there,
    // and it is not a warning.
    let warning = ["-u", "solvit.service", "-p", "warning"];
    sd.wait_journal(&warning, REPLACED, LONG);
    let head = sd.wait_journal(
        &["-u", "solvit.service"],
        "no-body response (method=HEAD",
        LONG,
    );
    let head_priority = sd.journal_lines(&[
        "-u",
        "solvit.service",
        "-o",
        "json",
        "--output-fields=PRIORITY,MESSAGE",
    ]);
    let entries: Vec<serde_json::Value> = head_priority
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &serde_json::Value| e["MESSAGE"].as_str() == Some(head.as_str()))
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["PRIORITY"], "6", "{head}");
    assert_eq!(sd.journal_lines(&warning), [REPLACED]);

    // systemctl status shows what the launcher verified.
    let status = ok(
        &sd,
        &["systemctl", "status", "--no-pager", "solvit.service"],
    );
    assert!(
        status.contains("Status: \"verified: listening on 0.0.0.0:8001 (IPv4), all interfaces"),
        "{status}"
    );

    // A reinstall (an upgrade, for dpkg) keeps the drop-ins and restarts nothing.
    ok(&sd, &["dpkg", "-i", DEB_INSIDE]);
    assert!(sd.exists(DROPIN));
    assert_eq!(sd.prop("solvit.service", "MainPID"), main_pid);
    assert_eq!(sd.prop("solvit.service", "ActiveState"), "active");

    // dpkg -r: the package's files, the drop-in that runs /usr/bin/gunicorn-launcher and the
    // template's running instance go; the instance's enablement link and the drop-in that
    // runs another launcher stay.
    let removed = ok(&sd, &["dpkg", "-r", "gunicorn-launcher"]);
    assert!(
        removed
            .contains("removing the drop-ins of gunicorn-launcher install from: solvit.service\n"),
        "{removed}"
    );
    // The package has a postrm, so dpkg keeps it as "config-files" until purged.
    assert_eq!(
        ok(
            &sd,
            &[
                "dpkg-query",
                "-W",
                "-f=${db:Status-Abbrev}",
                "gunicorn-launcher"
            ]
        )
        .trim(),
        "rc"
    );
    let left: Vec<String> = paths
        .iter()
        .filter(|p| sd.exists(p) != existed_before[*p])
        .cloned()
        .collect();
    assert_eq!(left, Vec::<String>::new(), "paths not as before dpkg -i");
    // Enablement is kept until purge, as deb-systemd-helper does it.
    assert_eq!(
        changed(&before_install, &sd.tree("/etc/systemd/system")),
        Vec::<String>::new()
    );
    assert!(sd.exists("/etc/systemd/system/other.service.d/zz-gunicorn-launcher.conf"));

    // SolvIT runs its own command again (loopback: the unit says so); the instance is gone.
    sd.wait_prop("solvit.service", "ActiveState", "active", LONG);
    let pid = sd.prop("solvit.service", "MainPID");
    assert_ne!(pid, main_pid);
    assert!(sd.exe(&pid).contains("python"), "{}", sd.exe(&pid));
    wait_for("the unit's own gunicorn on 127.0.0.1:8001", || {
        sd.listeners(8001) == ["127.0.0.1:8001"]
    });
    assert_eq!(curl_head(&client, &url), Err(7));
    let instance = sd.show(
        "gunicorn-launcher@hello.service",
        &["ActiveState", "LoadState"],
    );
    assert_eq!(instance["ActiveState"], "inactive", "{instance:?}");
    assert_eq!(instance["LoadState"], "not-found", "{instance:?}");
    assert_eq!(sd.listeners(8002), Vec::<String>::new());

    // dpkg --purge: the instance's enablement link goes too, and dpkg forgets the package.
    ok(&sd, &["dpkg", "--purge", "gunicorn-launcher"]);
    let query = sd.run(&["dpkg-query", "-W", "gunicorn-launcher"]);
    assert!(!query.status.success(), "{}", text(&query));
    let mut want_tree = before_install.clone();
    want_tree.remove(Path::new(enabled));
    assert_eq!(
        changed(&want_tree, &sd.tree("/etc/systemd/system")),
        Vec::<String>::new()
    );
    let left: Vec<&String> = paths
        .iter()
        .filter(|p| sd.exists(p) != existed_before[*p])
        .collect();
    assert_eq!(left, Vec::<&String>::new(), "paths not as before dpkg -i");
    assert!(!sd.exists("/var/lib/dpkg/info/gunicorn-launcher.list"));

    eprintln!("deb test took {:?}", started.elapsed());
}

#[test]
fn under_a_policy_rc_d_that_forbids_restarts_removal_only_reloads() {
    let deb = package();
    let (sd, _client) = fresh_server();
    sd.copy_in(deb, DEB_INSIDE);
    ok(&sd, &["dpkg", "-i", DEB_INSIDE]);
    start_solvit(&sd);
    let main_pid = install_solvit(&sd);
    // As in image builds: no service may be started, stopped or restarted.
    sd.write("/usr/sbin/policy-rc.d", "#!/bin/sh\nexit 101\n");
    std::fs::set_permissions(
        sd.path("/usr/sbin/policy-rc.d"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();

    let removed = ok(&sd, &["dpkg", "-r", "gunicorn-launcher"]);
    assert!(
        removed.contains("policy-rc.d forbids restarts: restart them yourself: solvit.service"),
        "{removed}"
    );
    // The drop-in is gone and systemd knows it; the running launcher was left alone.
    assert!(!sd.exists(DROPIN));
    assert_eq!(sd.prop("solvit.service", "MainPID"), main_pid);
    assert_eq!(sd.prop("solvit.service", "NeedDaemonReload"), "no");
    // The administrator's restart brings back the unit's own command.
    ok(&sd, &["systemctl", "restart", "solvit.service"]);
    let pid = sd.prop("solvit.service", "MainPID");
    assert!(sd.exe(&pid).contains("python"), "{}", sd.exe(&pid));
}
