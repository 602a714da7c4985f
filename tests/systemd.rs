//! `install` against a real systemd 252, booted as PID 1 of private namespaces over a
//! throwaway overlay root (tests/common/systemd.rs). A unit that binds gunicorn to
//! 127.0.0.1:8001 is installed over; then the unit, its main process, its STATUS line, the
//! kernel's socket table and HTTP are looked at from inside, and reload, stop, a config
//! error and a broken install are each driven through systemctl.

mod common;
#[path = "common/systemd.rs"]
mod harness;

use harness::Systemd;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(60);

fn boot() -> Systemd {
    let sd = Systemd::boot(&common::systemd_binds());
    sd.add_second_interface();
    sd
}

/// A unit as operators have them: gunicorn bound to loopback only.
fn unit(description: &str, app: &str, workers: u32) -> String {
    format!(
        "[Unit]\n\
         Description={description}\n\
         DefaultDependencies=no\n\
         \n\
         [Service]\n\
         WorkingDirectory=/opt/solvit\n\
         RuntimeDirectory=solvit\n\
         Environment=XDG_RUNTIME_DIR=/run/solvit\n\
         ExecStart={}/bin/gunicorn --workers {workers} --bind 127.0.0.1:8001 {app}\n\
         Restart=on-failure\n\
         RestartSec=100ms\n",
        common::venv().display()
    )
}

/// Writes the app and the unit, starts it, and waits until it answers on loopback.
fn start_unit(sd: &Systemd, name: &str, text: &str) {
    let hello = std::fs::read_to_string(common::root().join("examples/hello.py")).unwrap();
    sd.write("/opt/solvit/hello.py", &hello);
    sd.write(&format!("/etc/systemd/system/{name}"), text);
    let out = sd.systemctl(&["daemon-reload"]);
    assert!(out.status.success());
    let out = sd.systemctl(&["start", name]);
    assert!(
        out.status.success(),
        "start {name}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        sd.journal(name)
    );
    // One listener; or one per worker as well, with gunicorn's reuse_port.
    wait_for("gunicorn on 127.0.0.1:8001", || {
        let found = sd.listeners(8001);
        !found.is_empty() && found.iter().all(|l| l == "127.0.0.1:8001")
    });
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

/// `gunicorn-launcher ARGS` inside the namespace: (exit code, stdout + stderr).
fn launcher(sd: &Systemd, args: &[&str]) -> (i32, String) {
    let out = sd
        .cmd(common::launcher())
        .args(args)
        .output()
        .expect("run the launcher");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Every file under a directory inside the namespace, with its bytes.
fn tree(sd: &Systemd, inside: &str) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap().to_path_buf();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                out.insert(rel, b"<dir>".to_vec());
                walk(base, &p, out);
            } else if meta.file_type().is_symlink() {
                out.insert(
                    rel,
                    std::fs::read_link(&p)
                        .unwrap()
                        .into_os_string()
                        .into_encoded_bytes(),
                );
            } else {
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let base = sd.path(inside);
    let mut out = BTreeMap::new();
    walk(&base, &base, &mut out);
    out
}

fn main_pid(sd: &Systemd, unit: &str) -> String {
    sd.prop(unit, "MainPID")
}

/// The gunicorn master is the launcher's only child; its children are the workers.
fn workers(sd: &Systemd, unit: &str) -> Vec<String> {
    let master = sd.children(&main_pid(sd, unit));
    assert_eq!(master.len(), 1, "the launcher's children: {master:?}");
    sd.children(&master[0])
}

#[test]
fn install_wraps_a_loopback_unit_verifies_it_and_systemd_drives_it() {
    let sd = boot();
    start_unit(&sd, "solvit.service", &unit("SolvIT", "hello:app", 2));
    // The problem the launcher exists for: the other address is refused.
    assert_eq!(sd.http_status("http://198.18.0.1:8001/"), Err(7));
    let before = tree(&sd, "/etc/systemd/system");

    let (code, out) = launcher(&sd, &["install", "solvit.service"]);
    assert_eq!(code, 0, "{out}\n{}", sd.journal("solvit.service"));
    assert!(
        out.contains("solvit.service: verified: listening on 0.0.0.0:8001"),
        "{out}"
    );

    // The unit runs the launcher, which told systemd what it verified.
    let props = sd.show(
        "solvit.service",
        &["ActiveState", "MainPID", "StatusText", "Type", "NRestarts"],
    );
    assert_eq!(props["ActiveState"], "active", "{props:?}");
    assert_eq!(props["Type"], "notify");
    let launcher_exe = std::fs::canonicalize(common::launcher()).unwrap();
    assert_eq!(
        sd.exe(&props["MainPID"]),
        launcher_exe.display().to_string()
    );
    assert!(
        props["StatusText"]
            .starts_with("verified: listening on 0.0.0.0:8001 (IPv4), all interfaces; HTTP 200"),
        "{props:?}"
    );
    // The kernel: one listener, on all interfaces; HTTP from both addresses.
    assert_eq!(sd.listeners(8001), ["0.0.0.0:8001"]);
    assert_eq!(sd.http_status("http://127.0.0.1:8001/"), Ok(200));
    assert_eq!(sd.http_status("http://198.18.0.1:8001/"), Ok(200));

    // Reload: gunicorn replaces its workers; the launcher stays the main process, verified.
    // READY=1 needs one worker answering; the second may still be booting.
    wait_for("two workers", || workers(&sd, "solvit.service").len() == 2);
    let old = workers(&sd, "solvit.service");
    assert_eq!(old.len(), 2, "{old:?}");
    let out = sd.systemctl(&["reload", "solvit.service"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for("two new workers after reload", || {
        let now = workers(&sd, "solvit.service");
        now.len() == 2 && now.iter().all(|w| !old.contains(w))
    });
    sd.wait_prop("solvit.service", "ActiveState", "active", LONG);
    assert_eq!(main_pid(&sd, "solvit.service"), props["MainPID"]);
    assert_eq!(sd.prop("solvit.service", "NRestarts"), "0");
    assert_eq!(sd.http_status("http://198.18.0.1:8001/"), Ok(200));

    // A second install changes nothing and says so.
    let (code, out) = launcher(&sd, &["install", "solvit.service"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("already installed: nothing changed"), "{out}");
    assert_eq!(
        main_pid(&sd, "solvit.service"),
        props["MainPID"],
        "a no-op install restarted"
    );

    // status: wrapped, active, verified.
    let (code, out) = launcher(&sd, &["status"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("wrapped by gunicorn-launcher"), "{out}");
    assert!(
        out.contains("port 8001: listening on 0.0.0.0:8001"),
        "{out}"
    );

    // Uninstall: the files as they were, the original command running again.
    let (code, out) = launcher(&sd, &["uninstall", "solvit.service"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(before, tree(&sd, "/etc/systemd/system"));
    sd.wait_prop("solvit.service", "ActiveState", "active", LONG);
    wait_for("the original gunicorn on 127.0.0.1", || {
        sd.listeners(8001) == ["127.0.0.1:8001"]
    });

    // Install again, then stop: a clean stop for systemd, and nothing left running.
    let (code, out) = launcher(&sd, &["install"]);
    assert_eq!(code, 0, "{out}");
    let out = sd.systemctl(&["stop", "solvit.service"]);
    assert!(out.status.success());
    let props = sd.show(
        "solvit.service",
        &["ActiveState", "Result", "ExecMainStatus"],
    );
    assert_eq!(props["ActiveState"], "inactive", "{props:?}");
    assert_eq!(
        props["Result"],
        "success",
        "{props:?}\n{}",
        sd.journal("solvit.service")
    );
    assert_eq!(sd.processes("gunicorn"), Vec::<String>::new());
    assert_eq!(sd.listeners(8001), Vec::<String>::new());
}

#[test]
fn a_launcher_config_error_fails_the_unit_once_without_a_restart_loop() {
    let sd = boot();
    start_unit(&sd, "solvit.service", &unit("SolvIT", "hello:app", 1));
    let (code, out) = launcher(&sd, &["install", "solvit.service"]);
    assert_eq!(code, 0, "{out}");
    // An operator's drop-in with a GUNICORN_CMD_ARGS the launcher cannot read: exit 78.
    sd.write(
        "/etc/systemd/system/solvit.service.d/50-env.conf",
        "[Service]\nEnvironment=\"GUNICORN_CMD_ARGS=--bind '127.0.0.1:8001\"\n",
    );
    assert!(sd.systemctl(&["daemon-reload"]).status.success());
    let out = sd.systemctl(&["restart", "solvit.service"]);
    assert!(!out.status.success(), "the restart should fail");
    // `failed`, not `auto-restart`: systemd decided at the exit not to restart it.
    sd.wait_prop("solvit.service", "SubState", "failed", LONG);
    let props = sd.show(
        "solvit.service",
        &["Result", "ExecMainStatus", "NRestarts", "Restart"],
    );
    assert_eq!(props["Restart"], "on-failure");
    assert_eq!(props["ExecMainStatus"], "78", "{props:?}");
    assert_eq!(props["Result"], "exit-code", "{props:?}");
    assert_eq!(props["NRestarts"], "0", "{props:?}");
    // The launcher said why (journald takes the line asynchronously).
    wait_for("the launcher's error in the journal", || {
        sd.journal("solvit.service")
            .contains("GUNICORN_CMD_ARGS=\"--bind '127.0.0.1:8001\" cannot be split")
    });
}

#[test]
fn a_broken_install_is_rolled_back_and_the_old_unit_runs_again() {
    let sd = boot();
    // Stands for an app that cannot import in the new setup: it refuses to load when
    // gunicorn was started by the launcher (whose bind is 0.0.0.0:8001).
    sd.write(
        "/opt/solvit/broken.py",
        "import sys\n\
         if '0.0.0.0:8001' in sys.argv:\n    \
             raise ImportError('deliberately broken: cannot import under the launcher')\n\
         from hello import app\n",
    );
    start_unit(
        &sd,
        "broken.service",
        &unit("SolvIT, broken under the launcher", "broken:app", 1),
    );
    let old_pid = main_pid(&sd, "broken.service");
    let before = tree(&sd, "/etc/systemd/system");

    let (code, out) = launcher(&sd, &["install", "broken.service"]);
    assert_eq!(code, 69, "{out}");
    assert!(out.contains("rolling back"), "{out}");
    // It says what failed: systemd's verdict and the app's own last words.
    assert!(out.contains("WORKER_BOOT_ERROR"), "{out}");
    assert!(out.contains("ImportError: deliberately broken"), "{out}");
    assert!(
        out.contains("broken.service: restored and restarted on its previous command (active)"),
        "{out}"
    );

    // Exactly the previous files, and the old command running again.
    assert_eq!(before, tree(&sd, "/etc/systemd/system"));
    sd.wait_prop("broken.service", "ActiveState", "active", LONG);
    let pid = main_pid(&sd, "broken.service");
    assert_ne!(pid, old_pid, "restarted");
    let exe = sd.exe(&pid);
    assert!(
        exe.contains("python"),
        "the main process is {exe}, not gunicorn"
    );
    wait_for("the old gunicorn on 127.0.0.1:8001", || {
        sd.listeners(8001) == ["127.0.0.1:8001"]
    });
    assert_eq!(sd.http_status("http://127.0.0.1:8001/"), Ok(200));
}

/// The same broken install with `--socket-unit`: the socket unit it created is stopped,
/// disabled and removed before the old unit starts again (that unit binds 127.0.0.1:8001,
/// which a socket still held on 0.0.0.0:8001 would refuse it).
#[test]
fn a_broken_install_with_a_socket_unit_is_rolled_back_socket_and_all() {
    let sd = boot();
    sd.write(
        "/opt/solvit/broken.py",
        "import os, sys\n\
         if '0.0.0.0:8001' in sys.argv or 'LISTEN_FDS' in os.environ:\n    \
             raise ImportError('deliberately broken: cannot import under the launcher')\n\
         from hello import app\n",
    );
    start_unit(
        &sd,
        "broken.service",
        &unit("SolvIT, broken under the launcher", "broken:app", 1),
    );
    let old_pid = main_pid(&sd, "broken.service");
    let before = tree(&sd, "/etc/systemd/system");

    let (code, out) = launcher(&sd, &["install", "--socket-unit", "broken.service"]);
    assert_eq!(code, 69, "{out}");
    assert!(out.contains("broken.socket holds port 8001"), "{out}");
    assert!(out.contains("rolling back"), "{out}");
    assert!(
        out.contains("broken.service: restored and restarted on its previous command (active)"),
        "{out}"
    );
    // Exactly the previous files: no socket unit, no enablement link.
    assert_eq!(before, tree(&sd, "/etc/systemd/system"));
    assert_eq!(sd.prop("broken.socket", "LoadState"), "not-found", "{out}");
    sd.wait_prop("broken.service", "ActiveState", "active", LONG);
    assert_ne!(main_pid(&sd, "broken.service"), old_pid, "restarted");
    wait_for("the old gunicorn alone on 127.0.0.1:8001", || {
        sd.listeners(8001) == ["127.0.0.1:8001"]
    });
    assert_eq!(sd.http_status("http://127.0.0.1:8001/"), Ok(200));
}

#[test]
fn a_running_socket_unit_on_the_port_is_refused_before_anything_is_written() {
    let sd = boot();
    // Not the service's own socket, but running: systemd holds 0.0.0.0:8001.
    sd.write(
        "/etc/systemd/system/other.socket",
        "[Unit]\nDefaultDependencies=no\n[Socket]\nListenStream=8001\n",
    );
    sd.write(
        "/etc/systemd/system/other.service",
        "[Unit]\nDefaultDependencies=no\n[Service]\nExecStart=/bin/true\n",
    );
    sd.write(
        "/opt/solvit/hello.py",
        &std::fs::read_to_string(common::root().join("examples/hello.py")).unwrap(),
    );
    sd.write(
        "/etc/systemd/system/solvit.service",
        &unit("SolvIT", "hello:app", 1),
    );
    assert!(sd.systemctl(&["daemon-reload"]).status.success());
    assert!(sd.systemctl(&["start", "other.socket"]).status.success());
    wait_for("systemd listening on 8001", || {
        !sd.listeners(8001).is_empty()
    });
    let before = tree(&sd, "/etc/systemd/system");
    let (code, out) = launcher(&sd, &["install", "solvit.service"]);
    assert_eq!(code, 78, "{out}");
    assert!(out.contains("other.socket listens on port 8001"), "{out}");
    assert!(
        out.contains("systemctl disable --now other.socket"),
        "{out}"
    );
    assert_eq!(before, tree(&sd, "/etc/systemd/system"));
    // Once it is stopped (and not enabled), the same install goes through the check.
    assert!(sd.systemctl(&["stop", "other.socket"]).status.success());
    let (code, out) = launcher(&sd, &["install", "solvit.service", "--dry-run"]);
    assert_eq!(code, 0, "{out}");
}

/// A unit as `unit` writes it, with these bind arguments (none for gunicorn's default) and
/// a runtime directory of its own (systemd removes a unit's RuntimeDirectory when it stops).
fn unit_binding(description: &str, runtime: &str, bind: &str) -> String {
    unit(description, "hello:app", 1)
        .replace("--bind 127.0.0.1:8001 ", bind)
        .replace(
            "RuntimeDirectory=solvit\n",
            &format!("RuntimeDirectory={runtime}\n"),
        )
        .replace(
            "XDG_RUNTIME_DIR=/run/solvit\n",
            &format!("XDG_RUNTIME_DIR=/run/{runtime}\n"),
        )
}

/// Of three running units, only the one whose gunicorn binds TCP (127.0.0.1:8001) is wrapped
/// by a plain `install`: the one behind nginx on a unix socket keeps serving there, untouched
/// (and is refused when named), the one with no bind keeps gunicorn's 127.0.0.1:8000 until it
/// is named, and then serves port 8000 on every interface.
#[test]
fn install_wraps_only_the_tcp_unit_and_a_named_unit_without_a_bind_keeps_8000() {
    let sd = boot();
    start_unit(&sd, "solvit.service", &unit("SolvIT", "hello:app", 1));
    let nginx = unit_binding(
        "SolvIT behind nginx",
        "solvit-nginx",
        "--bind unix:/run/solvit-nginx/gunicorn.sock ",
    );
    sd.write("/etc/systemd/system/solvit-nginx.service", &nginx);
    let default = unit_binding("SolvIT with gunicorn's default bind", "solvit-default", "");
    sd.write("/etc/systemd/system/solvit-default.service", &default);
    assert!(sd.systemctl(&["daemon-reload"]).status.success());
    for name in ["solvit-nginx.service", "solvit-default.service"] {
        let out = sd.systemctl(&["start", name]);
        assert!(out.status.success(), "{name}: {}", sd.journal(name));
    }
    wait_for("gunicorn on 127.0.0.1:8000", || {
        sd.listeners(8000) == ["127.0.0.1:8000"]
    });
    let on_socket = || {
        let out = sd.run(&[
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
            "--unix-socket",
            "/run/solvit-nginx/gunicorn.sock",
            "http://localhost/",
        ]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    wait_for("gunicorn on its unix socket", || on_socket() == "200");
    let before = tree(&sd, "/etc/systemd/system");

    let (code, out) = launcher(&sd, &["install", "--dry-run"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("solvit.service: install:"), "{out}");
    assert!(
        out.contains(
            "solvit-nginx.service: gunicorn is bound to unix:/run/solvit-nginx/gunicorn.sock"
        ),
        "{out}"
    );
    assert!(
        out.contains("solvit-default.service: no bind on its command line"),
        "{out}"
    );
    assert_eq!(
        before,
        tree(&sd, "/etc/systemd/system"),
        "a dry run wrote something"
    );

    let (code, out) = launcher(&sd, &["install"]);
    assert_eq!(code, 0, "{out}\n{}", sd.journal("solvit.service"));
    let after = tree(&sd, "/etc/systemd/system");
    let changed: Vec<&PathBuf> = after
        .keys()
        .filter(|k| before.get(*k) != after.get(*k))
        .collect();
    assert_eq!(
        changed,
        [
            Path::new("solvit.service.d"),
            Path::new("solvit.service.d/zz-gunicorn-launcher.conf")
        ],
        "{out}"
    );
    assert_eq!(sd.listeners(8001), ["0.0.0.0:8001"]);
    assert_eq!(on_socket(), "200", "the unix-socket unit still serves");
    assert_eq!(sd.listeners(8000), ["127.0.0.1:8000"]);

    let (code, out) = launcher(&sd, &["install", "solvit-nginx.service"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("a socket that is not TCP") && out.contains("left untouched"),
        "{out}"
    );

    let (code, out) = launcher(&sd, &["install", "solvit-default.service"]);
    assert_eq!(code, 0, "{out}\n{}", sd.journal("solvit-default.service"));
    assert!(
        out.contains("solvit-default.service: verified: listening on 0.0.0.0:8000"),
        "{out}"
    );
    assert_eq!(sd.listeners(8000), ["0.0.0.0:8000"]);
    assert_eq!(sd.http_status("http://198.18.0.1:8000/"), Ok(200));
    assert_eq!(on_socket(), "200");
}

/// `install --socket-unit`: systemd holds the port in `solvit.socket` and passes it to the
/// launcher, so ten `systemctl restart`s under a load from another machine refuse no
/// connection. The unit allows ten starts in a row (`StartLimitBurst=20`; systemd's default
/// is 5 within 10 s, which an operator's restart loop must respect too). Uninstall takes
/// the socket unit away and the unit runs its own command again.
#[test]
fn a_socket_unit_makes_ten_restarts_refuse_nothing() {
    use common::load::Load;
    let sd = Systemd::boot(&common::systemd_binds());
    let client = common::Netns::new();
    sd.veth_to(&client.name, "198.18.0.1/24", "198.18.0.2/24");
    let text = unit("SolvIT", "hello:app", 2).replace(
        "DefaultDependencies=no\n",
        "DefaultDependencies=no\nStartLimitBurst=20\n",
    );
    start_unit(&sd, "solvit.service", &text);
    let (code, out) = launcher(&sd, &["install", "--socket-unit", "solvit.service"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("solvit.socket: enabled and listening"),
        "{out}"
    );
    assert_eq!(sd.prop("solvit.socket", "ActiveState"), "active");
    assert_eq!(sd.prop("solvit.socket", "UnitFileState"), "enabled");
    assert_eq!(sd.listeners(8001), ["0.0.0.0:8001"]);
    wait_for("the launcher's STATUS", || {
        sd.prop("solvit.service", "StatusText")
            .starts_with("verified: listening on 0.0.0.0:8001")
    });
    assert!(
        sd.journal("solvit.service")
            .contains("0.0.0.0:8001, passed by systemd (socket activation)"),
        "{}",
        sd.journal("solvit.service")
    );

    let addr: std::net::SocketAddr = "198.18.0.1:8001".parse().unwrap();
    let load = Load::start(&client.name, addr, 4);
    load.wait_answered(20, LONG);
    for _ in 0..10 {
        let out = sd.systemctl(&["restart", "solvit.service"]);
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            sd.journal("solvit.service")
        );
        load.wait_answered(10, LONG);
    }
    let counts = load.stop();
    eprintln!("socket unit, 10 systemctl restarts: {counts:?}");
    assert_eq!(counts.refused, 0, "{counts:?}");
    assert_eq!(counts.timed_out, 0, "{counts:?}");

    let (code, out) = launcher(&sd, &["status", "--json"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\"socket_unit\": \"solvit.socket\""), "{out}");

    // The administrator moves the unit to port 8002: install again, and the socket unit,
    // rewritten, is restarted on the new port.
    let fragment = "/etc/systemd/system/solvit.service";
    let edited = std::fs::read_to_string(sd.path(fragment))
        .unwrap()
        .replace("127.0.0.1:8001", "127.0.0.1:8002");
    sd.write(fragment, &edited);
    let (code, out) = launcher(&sd, &["install", "solvit.service"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(sd.listeners(8002), ["0.0.0.0:8002"]);
    assert!(sd.listeners(8001).is_empty(), "{:?}", sd.listeners(8001));
    assert!(
        out.contains("solvit.service: verified: listening on 0.0.0.0:8002"),
        "{out}"
    );

    // Removing the socket stops the unit (it requires the socket): even with --no-restart
    // it is started again, on its own command.
    let (code, out) = launcher(&sd, &["uninstall", "--no-restart", "solvit.service"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("solvit.service: started again on its own command"),
        "{out}"
    );
    assert!(!sd.exists("/etc/systemd/system/solvit.socket"));
    assert_eq!(sd.prop("solvit.socket", "ActiveState"), "inactive");
    assert_eq!(sd.prop("solvit.service", "ActiveState"), "active");
    wait_for("gunicorn on 127.0.0.1:8002, its own bind, again", || {
        sd.listeners(8002) == ["127.0.0.1:8002"]
    });
}

/// `status` judges each unit with that unit's own settings, read from its command line: a
/// unit running `gunicorn-launcher run --port=8002` on port 8002, and one whose config file
/// sets port 8003 and `verify.path = "/healthz"` (its `/` hangs: probed there, it would time
/// out and tie up its worker).
#[test]
fn status_judges_each_unit_with_its_own_port_and_probe_path() {
    let sd = boot();
    let hello = std::fs::read_to_string(common::root().join("examples/hello.py")).unwrap();
    sd.write("/opt/site/hello.py", &hello);
    sd.write(
        "/opt/site/health.py",
        "import time\ndef app(environ, start_response):\n    if environ['PATH_INFO'] != '/healthz':\n        time.sleep(5)\n    start_response('200 OK', [])\n    return [b'ok']\n",
    );
    let launcher_path = common::launcher();
    let gunicorn = format!("{}/bin/gunicorn", common::venv().display());
    let service = |name: &str, run: &str| {
        format!(
            "[Unit]\nDefaultDependencies=no\n[Service]\nType=notify\nWorkingDirectory=/opt/site\n\
             RuntimeDirectory={name}\nEnvironment=XDG_RUNTIME_DIR=/run/{name}\nExecStart={} {run}\n",
            launcher_path.display()
        )
    };
    sd.write(
        "/etc/systemd/system/site2.service",
        &service("site2", &format!("run --port=8002 -- {gunicorn} hello:app")),
    );
    sd.write(
        "/etc/gunicorn-launcher/site3.toml",
        &format!(
            "[gunicorn]\ncommand = \"{gunicorn}\"\napp = \"health:app\"\n[bind]\nport = 8003\n\
             [verify]\npath = \"/healthz\"\nprobe_timeout = \"1s\"\n"
        ),
    );
    sd.write(
        "/etc/systemd/system/site3.service",
        &service("site3", "run --config /etc/gunicorn-launcher/site3.toml"),
    );
    assert!(sd.systemctl(&["daemon-reload"]).status.success());
    for unit in ["site2.service", "site3.service"] {
        let out = sd.systemctl(&["start", unit]);
        assert!(
            out.status.success(),
            "start {unit}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            sd.journal(unit)
        );
    }
    let (code, out) = launcher(&sd, &["status", "--json"]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let ports: Vec<u64> = v["units"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["port"].as_u64())
        .collect();
    assert!(ports.contains(&8002) && ports.contains(&8003), "{out}");
    let verdicts = v["verdicts"].as_array().unwrap();
    assert_eq!(verdicts.len(), 2, "{out}");
    for verdict in verdicts {
        assert_eq!(verdict["verdict"], "ok", "{verdict}");
    }
    // `check` of the same port with its defaults probes `/`, which hangs: 4. With the
    // unit's config it is 0.
    let (code, out) = launcher(
        &sd,
        &["check", "--config", "/etc/gunicorn-launcher/site3.toml"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("HTTP GET /healthz"), "{out}");
    let (code, out) = launcher(&sd, &["check", "--port", "8003", "--timeout", "1s"]);
    assert_eq!(code, 4, "{out}");
}

/// Starts a load of 4 clients from `client` on 198.18.0.1:`port`.
fn load_from(client: &common::Netns, port: u16) -> common::load::Load {
    let addr: std::net::SocketAddr = format!("198.18.0.1:{port}").parse().unwrap();
    common::load::Load::start(&client.name, addr, 4)
}

/// `systemctl ARGS`, which must succeed.
fn systemctl_ok(sd: &Systemd, args: &[&str]) {
    let out = sd.systemctl(args);
    assert!(
        out.status.success(),
        "systemctl {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        sd.journal("solvit.service")
    );
}

/// The launcher of `solvit.service` said it verified the port (its STATUS).
fn wait_verified(sd: &Systemd) {
    wait_for("the launcher's verified STATUS", || {
        sd.prop("solvit.service", "ActiveState") == "active"
            && sd
                .prop("solvit.service", "StatusText")
                .starts_with("verified: ")
    });
}

/// A plain `install` holds the port in the launcher and in systemd's file descriptor store:
/// under a load from another machine, 10 `systemctl restart`s, 3 SIGKILLs of the launcher
/// (each followed by the unit's own `Restart=`) and a `daemon-reexec` refuse nothing. The
/// same unit installed with `--no-hold-socket` refuses connections across restarts (so the
/// count can fail). `systemctl stop` flushes the store: the port closes, and `start` binds a
/// fresh socket.
#[test]
fn a_plain_install_refuses_nothing_across_restarts_and_launcher_crashes() {
    let sd = Systemd::boot(&common::systemd_binds());
    let client = common::Netns::new();
    sd.veth_to(&client.name, "198.18.0.1/24", "198.18.0.2/24");
    let text = unit("SolvIT", "hello:app", 2).replace(
        "DefaultDependencies=no\n",
        "DefaultDependencies=no\nStartLimitBurst=50\n",
    );
    start_unit(&sd, "solvit.service", &text);

    // Without a held socket, a restart closes the port until gunicorn binds it again.
    let (code, out) = launcher(&sd, &["install", "--no-hold-socket", "solvit.service"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no held socket (--no-hold-socket)"), "{out}");
    let load = load_from(&client, 8001);
    load.wait_answered(20, LONG);
    for _ in 0..3 {
        systemctl_ok(&sd, &["restart", "solvit.service"]);
        wait_verified(&sd);
        load.wait_answered(10, LONG);
    }
    let bare = load.stop();
    eprintln!("--no-hold-socket, 3 systemctl restarts: {bare:?}");
    assert!(bare.refused > 0, "{bare:?}");

    let (code, out) = launcher(&sd, &["install", "solvit.service"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("keeps it in systemd's file descriptor store"),
        "{out}"
    );
    assert_eq!(sd.prop("solvit.service", "FileDescriptorStoreMax"), "1");
    wait_verified(&sd);
    assert_eq!(sd.prop("solvit.service", "NFileDescriptorStore"), "1");
    let load = load_from(&client, 8001);
    load.wait_answered(20, LONG);
    for _ in 0..10 {
        systemctl_ok(&sd, &["restart", "solvit.service"]);
        wait_verified(&sd);
        load.wait_answered(10, LONG);
    }
    assert!(
        sd.journal("solvit.service")
            .contains("taken back from systemd's file descriptor store"),
        "{}",
        sd.journal("solvit.service")
    );
    let restarts = load.counts();
    eprintln!("held socket and fd store, 10 systemctl restarts: {restarts:?}");
    assert_eq!(restarts.refused, 0, "{restarts:?}");
    assert_eq!(restarts.reset, 0, "{restarts:?}");
    assert_eq!(restarts.timed_out, 0, "{restarts:?}");
    for i in 1..=3 {
        let before = sd.prop("solvit.service", "NRestarts");
        let main = sd.prop("solvit.service", "MainPID");
        systemctl_ok(
            &sd,
            &["kill", "-s", "KILL", "--kill-who=main", "solvit.service"],
        );
        wait_for("the unit's own restart", || {
            sd.prop("solvit.service", "NRestarts") != before
                && sd.prop("solvit.service", "MainPID") != main
        });
        wait_verified(&sd);
        load.wait_answered(10, LONG);
        if i == 2 {
            systemctl_ok(&sd, &["daemon-reexec"]);
            wait_for("systemd back after daemon-reexec", || {
                sd.systemctl(&["is-system-running"]).status.code().is_some()
                    && sd.prop("solvit.service", "ActiveState") == "active"
            });
            assert_eq!(sd.listeners(8001), ["0.0.0.0:8001"], "the port stays open");
            load.wait_answered(10, LONG);
            systemctl_ok(&sd, &["restart", "solvit.service"]);
            wait_verified(&sd);
            load.wait_answered(10, LONG);
        }
    }
    let counts = load.stop();
    eprintln!(
        "held socket and fd store, 11 restarts, 3 launcher SIGKILLs, a daemon-reexec: {counts:?}"
    );
    // A request in flight in a worker of the killed launcher's gunicorn may be reset; none
    // is refused, and none waits in vain.
    assert_eq!(counts.refused, 0, "{counts:?}");
    assert_eq!(counts.timed_out, 0, "{counts:?}");

    // stop flushes the store: the port is closed; start binds a fresh socket.
    systemctl_ok(&sd, &["stop", "solvit.service"]);
    assert!(sd.listeners(8001).is_empty(), "{:?}", sd.listeners(8001));
    assert_eq!(sd.http_status("http://198.18.0.1:8001/"), Err(7));
    systemctl_ok(&sd, &["start", "solvit.service"]);
    wait_verified(&sd);
    assert_eq!(sd.http_status("http://198.18.0.1:8001/"), Ok(200));
    let lines = sd.journal_lines(&[
        "-u",
        "solvit.service",
        "-o",
        "cat",
        "--no-pager",
        "-n",
        "30",
    ]);
    let last_listen = lines
        .iter()
        .rev()
        .find(|l| l.contains("gunicorn-launcher: listening on"))
        .unwrap();
    assert!(
        last_listen.contains("bound and held by the launcher"),
        "{last_listen}"
    );
}

/// The port changed across a restart (the unit edited, installed again): the socket the
/// store kept for the old port is dropped from the store, said so, and the new port served.
#[test]
fn a_port_change_drops_the_stored_socket_and_serves_the_new_port() {
    let sd = boot();
    start_unit(&sd, "solvit.service", &unit("SolvIT", "hello:app", 1));
    let (code, out) = launcher(&sd, &["install", "solvit.service"]);
    assert_eq!(code, 0, "{out}");
    wait_verified(&sd);
    let fragment = "/etc/systemd/system/solvit.service";
    let edited = std::fs::read_to_string(sd.path(fragment))
        .unwrap()
        .replace("127.0.0.1:8001", "127.0.0.1:8002");
    sd.write(fragment, &edited);
    let (code, out) = launcher(&sd, &["install", "solvit.service"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        sd.journal("solvit.service").contains(
            "dropped the socket systemd kept for the launcher as gunicorn-launcher-port-8001: \
             it is bound to 0.0.0.0:8001, another port"
        ),
        "{}",
        sd.journal("solvit.service")
    );
    assert_eq!(sd.listeners(8002), ["0.0.0.0:8002"]);
    assert!(sd.listeners(8001).is_empty(), "{:?}", sd.listeners(8001));
    assert_eq!(sd.prop("solvit.service", "NFileDescriptorStore"), "1");
    assert_eq!(sd.http_status("http://198.18.0.1:8002/"), Ok(200));
}

/// A unit whose gunicorn turns on `reuse_port` is installed without a held socket (each
/// worker binds the port itself), says so, and serves every interface.
#[test]
fn a_reuse_port_unit_runs_without_a_held_socket() {
    let sd = boot();
    let text = unit("SolvIT", "hello:app", 2).replace(
        "--bind 127.0.0.1:8001",
        "--bind 127.0.0.1:8001 --reuse-port",
    );
    start_unit(&sd, "solvit.service", &text);
    let (code, out) = launcher(&sd, &["install", "solvit.service"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(
            "no held socket (--reuse-port on gunicorn's command line turns on gunicorn's reuse_port"
        ),
        "{out}"
    );
    wait_verified(&sd);
    assert_eq!(sd.http_status("http://198.18.0.1:8001/"), Ok(200));
    let (code, out) = launcher(&sd, &["status"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("gunicorn binds the port"), "{out}");
}

/// Every setting of the drop-in as systemd itself reads it (`systemctl show`), over a unit
/// whose own settings would each break the launcher if they survived: one ExecStart and one
/// ExecReload (the resets took), Type=notify with the launcher as the only notifier, KillMode
/// mixed, no PIDFile, exit 78 never restarted and 143 a success, and the store for the held
/// socket.
#[test]
fn the_dropin_settings_are_what_systemd_runs() {
    let sd = boot();
    let text = unit("SolvIT", "hello:app", 1).replace(
        "Restart=on-failure\n",
        "Restart=on-failure\n\
         Type=exec\n\
         NotifyAccess=all\n\
         KillMode=process\n\
         PIDFile=/run/solvit/gunicorn.pid\n\
         ExecReload=/bin/true reload\n\
         TimeoutStopSec=7\n",
    );
    start_unit(&sd, "solvit.service", &text);
    let (code, out) = launcher(&sd, &["install", "solvit.service"]);
    assert_eq!(code, 0, "{out}");
    let props = sd.show(
        "solvit.service",
        &[
            "Type",
            "NotifyAccess",
            "KillMode",
            "PIDFile",
            "ExecStart",
            "ExecReload",
            "RestartPreventExitStatus",
            "SuccessExitStatus",
            "TimeoutStopUSec",
            "FileDescriptorStoreMax",
        ],
    );
    assert_eq!(props["Type"], "notify", "{props:?}");
    assert_eq!(props["NotifyAccess"], "main", "{props:?}");
    assert_eq!(props["KillMode"], "mixed", "{props:?}");
    assert_eq!(props["PIDFile"], "", "{props:?}");
    let launcher_exe = std::fs::canonicalize(common::launcher()).unwrap();
    // systemctl show prints one `KEY={ path=… ; argv[]=… }` line per command: count lines.
    let raw = sd.systemctl(&["show", "-p", "ExecStart,ExecReload", "solvit.service"]);
    let raw = String::from_utf8_lossy(&raw.stdout).into_owned();
    let count = |key: &str| {
        raw.lines()
            .filter(|l| l.starts_with(&format!("{key}=")))
            .count()
    };
    assert_eq!(count("ExecStart"), 1, "{raw}");
    assert_eq!(count("ExecReload"), 1, "{raw}");
    assert_eq!(props["ExecStart"].matches("path=").count(), 1, "{props:?}");
    assert!(
        props["ExecStart"].contains(&format!("path={} ;", launcher_exe.display()))
            || props["ExecStart"].contains(&format!("path={} ;", common::launcher().display())),
        "{props:?}"
    );
    assert_eq!(props["ExecReload"].matches("path=").count(), 1, "{props:?}");
    assert!(
        props["ExecReload"].contains("argv[]=/bin/kill -HUP $MAINPID"),
        "{props:?}"
    );
    assert!(
        props["RestartPreventExitStatus"]
            .split_whitespace()
            .any(|s| s == "78"),
        "{props:?}"
    );
    assert!(
        props["SuccessExitStatus"]
            .split_whitespace()
            .any(|s| s == "143"),
        "{props:?}"
    );
    assert_eq!(props["FileDescriptorStoreMax"], "1", "{props:?}");
    // The unit's 7 s is replaced by the launcher's stop budget plus a margin (over 30 s, the
    // graceful timeout gunicorn is given by default).
    let stop = &props["TimeoutStopUSec"];
    assert!(
        stop != "7s" && !stop.is_empty() && stop != "infinity",
        "{props:?}"
    );
    let out = sd.systemctl(&["reload", "solvit.service"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    sd.wait_prop("solvit.service", "ActiveState", "active", LONG);
    assert_eq!(sd.prop("solvit.service", "NRestarts"), "0");
}
