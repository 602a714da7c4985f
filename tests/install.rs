//! `install` / `uninstall` / `status` on fixture trees (`--root`, no systemd): discovery with
//! systemd's semantics, the drop-in, the command kept verbatim, refusals, and the round trip
//! install → uninstall that leaves every file byte-identical. Each test works on its own
//! copy of a fixture tree (tests/fixtures/units/CASE), never on the fixtures themselves.
//!
//! What systemd would run after install is read back with the project's own unit reader
//! (`unit`), which was checked against a real systemd 252; tests/systemd.rs proves the
//! live path against the real thing.

mod common;
use common::root as repo;
use gunicorn_launcher::unit::{self, UnitName};
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

const LAUNCHER: &str = "/usr/local/bin/gunicorn-launcher";
const DROPIN: &str = "zz-gunicorn-launcher.conf";

/// A private copy of a fixture tree.
struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn copy(case: &str) -> Tree {
        let dir = tempfile::tempdir().expect("tempdir");
        let from = repo().join("tests/fixtures/units").join(case);
        assert!(from.is_dir(), "no fixture {}", from.display());
        // cp -a keeps the fixture's symlinks as symlinks (masks, aliases, linked units).
        let st = Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", from.display()))
            .arg(dir.path())
            .status()
            .expect("cp");
        assert!(st.success());
        Tree { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn file(&self, rel: &str) -> PathBuf {
        self.path().join(rel)
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.file(rel))
            .unwrap_or_else(|e| panic!("{}: {e}", self.file(rel).display()))
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.file(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// Every entry under the root: kind, mode, owner and content (bytes or link target).
    fn snapshot(&self) -> BTreeMap<PathBuf, String> {
        let mut out = BTreeMap::new();
        walk(self.path(), self.path(), &mut out);
        out
    }

    /// `gunicorn-launcher ARGS --root TREE` (and `--launcher` for install).
    fn run(&self, args: &[&str]) -> Outcome {
        let mut cmd = Command::new(common::launcher());
        cmd.args(args).arg("--root").arg(self.path());
        if args.first() == Some(&"install") {
            cmd.args(["--launcher", LAUNCHER]);
        }
        let out = cmd.output().expect("run the launcher");
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The effective ExecStart of `unit` as systemd would read it now: prefixes, words.
    fn exec_start(&self, unit: &str) -> (String, Vec<String>) {
        let loaded = unit::load_unit(self.path(), &UnitName::parse(unit).unwrap())
            .unwrap_or_else(|e| panic!("{unit}: {e}"));
        let mut execs = unit::effective_exec(&loaded, "ExecStart").unwrap();
        assert_eq!(execs.len(), 1, "{unit}: {execs:?}");
        let (cmd, _, _) = execs.remove(0);
        (cmd.prefixes, cmd.argv)
    }

    /// The last effective value of a [Service] key.
    fn setting(&self, unit: &str, key: &str) -> Option<String> {
        let loaded = unit::load_unit(self.path(), &UnitName::parse(unit).unwrap()).unwrap();
        unit::effective(&loaded, "Service", key)
            .pop()
            .map(|(v, _, _)| v)
    }

    fn dropin(&self, unit: &str) -> PathBuf {
        self.file(&format!("etc/systemd/system/{unit}.d/{DROPIN}"))
    }
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let meta = std::fs::symlink_metadata(&p).unwrap();
        let rel = p.strip_prefix(root).unwrap().to_path_buf();
        let head = format!(
            "mode {:o} uid {} gid {}",
            meta.mode(),
            meta.uid(),
            meta.gid()
        );
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&p).unwrap();
            out.insert(rel, format!("{head} link {}", target.display()));
        } else if meta.is_dir() {
            out.insert(rel, format!("{head} dir"));
            walk(root, &p, out);
        } else {
            let bytes = std::fs::read(&p).unwrap();
            out.insert(rel, format!("{head} file {bytes:?}"));
        }
    }
}

#[derive(Debug)]
struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn ok(&self) -> &Outcome {
        assert_eq!(self.code, 0, "{self:#?}");
        self
    }
}

fn words(s: &[&str]) -> Vec<String> {
    s.iter().map(|w| w.to_string()).collect()
}

/// `LAUNCHER run --hold-socket -- ORIGINAL...`: a plain install holds the port's socket.
fn wrapped(original: &[&str]) -> Vec<String> {
    let mut w = words(&[LAUNCHER, "run", "--hold-socket", "--"]);
    w.extend(words(original));
    w
}

/// Installs, checks that a second install changes nothing, uninstalls, and checks that the
/// tree is exactly what it was.
fn round_trip(tree: &Tree, units: &[&str]) {
    let before = tree.snapshot();
    let mut install = vec!["install"];
    install.extend(units);
    tree.run(&install).ok();
    let installed = tree.snapshot();
    assert_ne!(before, installed, "install changed nothing");
    let again = tree.run(&install);
    again.ok();
    assert!(
        again.stdout.contains("already installed: nothing changed"),
        "{again:#?}"
    );
    assert_eq!(installed, tree.snapshot(), "a second install changed files");
    let mut uninstall = vec!["uninstall"];
    uninstall.extend(units);
    tree.run(&uninstall).ok();
    assert_eq!(
        before,
        tree.snapshot(),
        "uninstall did not restore the tree"
    );
}

// --- the command, verbatim ------------------------------------------------------------------

#[test]
fn continuation_lines_are_read_joined_and_the_words_kept() {
    let t = Tree::copy("continuation");
    t.run(&["install", "solvit.service"]).ok();
    assert_eq!(
        t.exec_start("solvit.service"),
        (
            String::new(),
            wrapped(&[
                "/opt/solvit/venv/bin/gunicorn",
                "--workers",
                "3",
                "--timeout",
                "60",
                "--bind",
                "127.0.0.1:8001",
                "solvit.wsgi:application",
            ])
        )
    );
    // The unit file itself is never edited.
    assert_eq!(
        t.read("etc/systemd/system/solvit.service"),
        std::fs::read_to_string(
            repo().join("tests/fixtures/units/continuation/etc/systemd/system/solvit.service")
        )
        .unwrap()
    );
}

#[test]
fn quoted_arguments_with_spaces_stay_single_words() {
    let t = Tree::copy("quoting");
    t.run(&["install"]).ok();
    assert_eq!(
        t.exec_start("solvit.service").1,
        wrapped(&[
            "/opt/solvit/venv/bin/gunicorn",
            "--name",
            "SolvIT ticketing",
            "--access-logformat",
            "%%(h)s \"%%(r)s\" %%(s)s",
            "--env",
            "GREETING=hello world",
            "--bind",
            "127.0.0.1:8001",
            "solvit.wsgi:application",
        ])
    );
}

#[test]
fn environment_variables_are_kept_for_systemd_to_expand() {
    let t = Tree::copy("env-vars");
    // A bind systemd expands has no port known here: not wrapped unless named.
    let out = t.run(&["install"]);
    out.ok();
    assert!(!t.dropin("solvit.service").exists());
    assert!(
        out.stdout
            .contains("solvit.service: its bind ${BIND_HOST}:${BIND_PORT} is expanded by systemd")
            && out.stdout.contains("name it to wrap it on port 8001"),
        "{out:#?}"
    );
    let out = t.run(&["install", "solvit.service"]);
    out.ok();
    assert_eq!(
        t.exec_start("solvit.service").1,
        wrapped(&[
            "/opt/solvit/venv/bin/gunicorn",
            "$GUNICORN_OPTS",
            "--bind",
            "${BIND_HOST}:${BIND_PORT}",
            "${APP_MODULE}",
        ])
    );
    // A whole-word $VAR stays bare in the file, so systemd still splits it into words.
    let text = std::fs::read_to_string(t.dropin("solvit.service")).unwrap();
    assert!(
        text.contains("-- /opt/solvit/venv/bin/gunicorn $GUNICORN_OPTS --bind ${BIND_HOST}:${BIND_PORT} ${APP_MODULE}\n"),
        "{text}"
    );
    // The executable hidden in $GUNICORN cannot be recognised: left alone, and said so.
    assert!(!t.dropin("varbin.service").exists());
    let named = t.run(&["install", "varbin.service"]);
    assert_eq!(named.code, 2, "{named:#?}");
    assert!(named.stderr.contains("left untouched"), "{named:#?}");
}

#[test]
fn specifiers_in_a_template_are_kept_verbatim() {
    let t = Tree::copy("specifiers");
    let out = t.run(&["install", "solvit@.service"]);
    out.ok();
    assert_eq!(
        t.exec_start("solvit@x.service").1,
        wrapped(&[
            "%h/venv/bin/gunicorn",
            "--name",
            "solvit-%i",
            "--pid",
            "/run/solvit/%i.pid",
            "--bind",
            "127.0.0.1:80%i",
            "--chdir",
            "%h/%I dir",
            "solvit.wsgi",
        ])
    );
    // A port systemd expands is not known here: the launcher's default serves.
    assert!(!out.stdout.contains("--port"), "{out:#?}");
    // /lib had no /etc/systemd/system at all: created, recorded, and removed again.
    let t = Tree::copy("specifiers");
    round_trip(&t, &["solvit@.service"]);
}

#[test]
fn ignore_failure_and_argv0_prefixes_stay_in_front() {
    let t = Tree::copy("prefixes");
    // all.service has no bind: wrapped on gunicorn's default port only when named.
    t.run(&[
        "install",
        "ignore-failure.service",
        "argv0.service",
        "all.service",
    ])
    .ok();
    assert_eq!(
        t.exec_start("ignore-failure.service"),
        (
            "-".to_string(),
            wrapped(&[
                "/opt/solvit/venv/bin/gunicorn",
                "--bind",
                "127.0.0.1:8001",
                "solvit.wsgi"
            ])
        )
    );
    // With '@' the second word is argv[0]: it names the launcher's process, and the
    // command after `--` is the program and its arguments.
    let mut argv0 = words(&[
        LAUNCHER,
        "solvit-gunicorn",
        "run",
        "--hold-socket",
        "--port",
        "8002",
        "--",
    ]);
    argv0.extend(words(&[
        "/opt/solvit/venv/bin/gunicorn",
        "--bind",
        "127.0.0.1:8002",
        "solvit.wsgi",
    ]));
    assert_eq!(t.exec_start("argv0.service"), ("@".to_string(), argv0));
    let mut all = words(&[
        LAUNCHER,
        "solvit",
        "run",
        "--hold-socket",
        "--port",
        "8000",
        "--",
    ]);
    all.extend(words(&["/usr/bin/python3", "-m", "gunicorn", "app:wsgi"]));
    assert_eq!(t.exec_start("all.service"), ("-@:+".to_string(), all));
}

#[test]
fn a_forking_daemon_becomes_a_notify_service() {
    let t = Tree::copy("forking-daemon");
    let out = t.run(&["install", "solvit.service"]);
    out.ok();
    for (key, want) in [
        ("Type", Some("notify")),
        ("NotifyAccess", Some("main")),
        ("KillMode", Some("mixed")),
        ("PIDFile", None),
        ("RestartPreventExitStatus", Some("78")),
        ("SuccessExitStatus", Some("143")),
        ("TimeoutStopSec", Some("40s")),
        ("ExecReload", Some("/bin/kill -HUP $MAINPID")),
    ] {
        assert_eq!(
            t.setting("solvit.service", key).as_deref(),
            want,
            "{key}: {}",
            out.stdout
        );
    }
    // --daemon stays in the words (verbatim); `run` removes it when it starts gunicorn.
    assert!(
        t.exec_start("solvit.service")
            .1
            .contains(&"--daemon".to_string())
    );
    assert!(
        out.stdout.contains("Type=forking becomes Type=notify"),
        "{out:#?}"
    );
    assert!(
        out.stdout
            .contains("PIDFile=/run/solvit/gunicorn.pid is cleared")
    );
    assert!(out.stdout.contains("--daemon"));
}

#[test]
fn python_m_gunicorn_and_python_script_forms_are_found_manage_py_is_not() {
    let t = Tree::copy("python-m");
    let out = t.run(&["install"]);
    out.ok();
    assert_eq!(
        t.exec_start("solvit.service").1,
        wrapped(&[
            "/opt/solvit/venv/bin/python3",
            "-m",
            "gunicorn",
            "--workers",
            "3",
            "--bind",
            "127.0.0.1:8001",
            "solvit.wsgi:application",
        ])
    );
    assert!(t.dropin("solvit-script.service").exists());
    assert!(!t.dropin("manage.service").exists(), "{out:#?}");
}

#[test]
fn a_lib_unit_with_an_etc_override_wraps_the_overriding_command() {
    let t = Tree::copy("override");
    let out = t.run(&["install"]);
    out.ok();
    assert_eq!(
        t.exec_start("solvit.service").1,
        wrapped(&[
            "/opt/solvit/venv/bin/gunicorn",
            "--workers",
            "4",
            "--bind",
            "127.0.0.1:8001",
            "solvit.wsgi:application",
        ])
    );
    assert!(
        out.stdout
            .contains("(from /etc/systemd/system/solvit.service.d/override.conf:4)"),
        "{out:#?}"
    );
    // The other drop-ins still apply.
    assert_eq!(
        t.setting("solvit.service", "Environment").as_deref(),
        Some("DJANGO_SETTINGS_MODULE=solvit.settings.prod")
    );
    let t = Tree::copy("override");
    round_trip(&t, &[]);
}

#[test]
fn a_template_and_an_instance_with_its_own_command_each_get_a_drop_in() {
    let t = Tree::copy("template");
    t.run(&["install"]).ok();
    // Instances that are the template run the template's (drop-in) command…
    assert_eq!(
        t.exec_start("solvit@b.service").1,
        wrapped(&[
            "/opt/solvit/venv/bin/gunicorn",
            "--workers",
            "2",
            "--bind",
            "127.0.0.1:8001",
            "solvit.wsgi:application",
        ])
    );
    // …and instance a keeps its own, instead of being overridden by the template's drop-in.
    assert_eq!(
        t.exec_start("solvit@a.service").1,
        wrapped(&[
            "/opt/solvit/venv/bin/gunicorn",
            "--workers",
            "2",
            "--bind",
            "127.0.0.1:8001",
            "--name",
            "solvit-%i",
            "solvit.wsgi:application",
        ])
    );
    assert!(t.dropin("solvit@.service").exists());
    assert!(t.dropin("solvit@a.service").exists());
    let t = Tree::copy("template");
    round_trip(&t, &[]);
    let t = Tree::copy("template");
    round_trip(&t, &["solvit@.service"]);
    let t = Tree::copy("template");
    round_trip(&t, &["solvit@a.service"]);
}

#[test]
fn units_that_are_not_gunicorn_are_left_untouched() {
    let t = Tree::copy("not-gunicorn");
    let before = t.snapshot();
    let out = t.run(&["install"]);
    out.ok();
    assert!(out.stdout.contains("no unit runs gunicorn"), "{out:#?}");
    let named = t.run(&["install", "uwsgi.service"]);
    assert_eq!(named.code, 2, "{named:#?}");
    assert!(named.stderr.contains("is not gunicorn"), "{named:#?}");
    assert_eq!(before, t.snapshot());
    // Next to a gunicorn unit: only that one is wrapped.
    let t = Tree::copy("solvit");
    t.run(&["install"]).ok();
    assert!(t.dropin("solvit.service").exists());
    assert!(!t.file("etc/systemd/system/nginx.service.d").exists());
}

#[test]
fn malformed_units_are_refused_with_file_and_line_and_nothing_is_written() {
    let t = Tree::copy("malformed");
    let before = t.snapshot();
    for (unit, at) in [
        ("bad-header.service", "bad-header.service:4"),
        ("missing-equals.service", "missing-equals.service:5"),
        ("outside-section.service", "outside-section.service:2"),
        ("bad-quoting.service", "bad-quoting.service:6"),
        ("bad-dropin.service", "bad-dropin.service.d/override.conf:1"),
    ] {
        let out = t.run(&["install", unit]);
        assert_eq!(out.code, 78, "{unit}: {out:#?}");
        assert!(out.stderr.contains(at), "{unit}: want {at} in {out:#?}");
        assert!(out.stderr.contains("nothing was written"), "{out:#?}");
    }
    // Discovery cannot tell whether they run gunicorn: refused as a whole.
    let out = t.run(&["install"]);
    assert_eq!(out.code, 78, "{out:#?}");
    assert_eq!(before, t.snapshot());
}

#[test]
fn discovery_skips_an_unreadable_unit_that_has_nothing_to_do_with_gunicorn() {
    let t = Tree::copy("solvit");
    t.write(
        "etc/systemd/system/broken-nginx.service",
        "[Service\nExecStart=/usr/sbin/nginx\n",
    );
    let out = t.run(&["install"]);
    out.ok();
    assert!(
        out.stdout
            .contains("broken-nginx.service: skipped, unreadable:"),
        "{out:#?}"
    );
    assert!(out.stdout.contains("broken-nginx.service:1"), "{out:#?}");
    assert!(t.dropin("solvit.service").exists());
}

// --- the round trip and idempotence ---------------------------------------------------------

#[test]
fn every_fixture_tree_round_trips_byte_identical() {
    for (case, units) in [
        ("continuation", &[][..]),
        ("env-vars", &["solvit.service"][..]),
        ("forking-daemon", &[]),
        ("other-port", &[]),
        ("prefixes", &[]),
        ("python-m", &[]),
        ("quoting", &[]),
        ("solvit", &[]),
        ("symlinks", &[]),
        ("binds", &[]),
    ] {
        let t = Tree::copy(case);
        round_trip(&t, units);
    }
}

#[test]
fn an_install_over_a_changed_unit_updates_the_drop_in_and_uninstall_still_restores() {
    let t = Tree::copy("solvit");
    let before = t.snapshot();
    t.run(&["install"]).ok();
    // The administrator edits the unit; the next install follows the new command.
    let unit = "etc/systemd/system/solvit.service";
    let edited = t.read(unit).replace("--workers 3", "--workers 5");
    t.write(unit, &edited);
    let out = t.run(&["install"]);
    out.ok();
    assert!(out.stdout.contains("solvit.service: update:"), "{out:#?}");
    assert_eq!(
        t.exec_start("solvit.service").1,
        [
            "/usr/local/bin/gunicorn-launcher",
            "run",
            "--hold-socket",
            "--",
            "/opt/solvit/venv/bin/gunicorn",
            "--workers",
            "5",
            "--bind",
            "127.0.0.1:8001",
            "solvit.wsgi:application",
        ]
    );
    t.run(&["uninstall"]).ok();
    let original = std::fs::read_to_string(
        repo().join("tests/fixtures/units/solvit/etc/systemd/system/solvit.service"),
    )
    .unwrap();
    t.write(unit, &original);
    assert_eq!(before, t.snapshot());
}

#[test]
fn dry_run_prints_the_drop_in_and_both_command_lines_and_writes_nothing() {
    let t = Tree::copy("solvit");
    let before = t.snapshot();
    let out = t.run(&["install", "--dry-run"]);
    out.ok();
    assert_eq!(before, t.snapshot());
    for want in [
        "old ExecStart=/opt/solvit/venv/bin/gunicorn --workers 3 --bind 127.0.0.1:8001 solvit.wsgi:application",
        "new ExecStart=/usr/local/bin/gunicorn-launcher run --hold-socket -- /opt/solvit/venv/bin/gunicorn --workers 3 --bind 127.0.0.1:8001 solvit.wsgi:application",
        "# Written by gunicorn-launcher install.",
        "# To remove: gunicorn-launcher uninstall solvit.service",
        "Type=notify",
        "dry run: nothing written",
    ] {
        assert!(
            out.stdout.contains(want),
            "want {want:?} in:\n{}",
            out.stdout
        );
    }
    t.run(&["install"]).ok();
    let installed = t.snapshot();
    let out = t.run(&["uninstall", "--dry-run"]);
    out.ok();
    assert!(out.stdout.contains("dry run: nothing removed"), "{out:#?}");
    // And which command runs again once the drop-in is gone: the unit's own.
    assert!(
        out.stdout.contains(
            "  ExecStart=/opt/solvit/venv/bin/gunicorn --workers 3 --bind 127.0.0.1:8001 solvit.wsgi:application runs again"
        ),
        "{out:#?}"
    );
    assert_eq!(installed, t.snapshot());
}

#[test]
fn the_drop_in_is_root_owned_0644_and_documents_itself() {
    let t = Tree::copy("solvit");
    t.run(&["install"]).ok();
    let meta = std::fs::metadata(t.dropin("solvit.service")).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o644);
    common::require_root("files owned by root");
    assert_eq!((meta.uid(), meta.gid()), (0, 0));
    let text = std::fs::read_to_string(t.dropin("solvit.service")).unwrap();
    assert!(
        text.starts_with("# Written by gunicorn-launcher install.\n"),
        "{text}"
    );
    assert!(text.contains("Replaced ExecStart (from /etc/systemd/system/solvit.service:10)"));
    // No temporary file is left behind.
    let dir = t.file("etc/systemd/system/solvit.service.d");
    let names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from(DROPIN)]);
}

#[test]
fn an_alias_installs_and_uninstalls_under_the_units_own_name() {
    // gunicorn.service is a symlink to solvit.service in the search path: one unit.
    let t = Tree::copy("symlinks");
    let before = t.snapshot();
    t.run(&["install", "gunicorn.service"]).ok();
    assert!(t.dropin("solvit.service").exists());
    assert!(!t.dropin("gunicorn.service").exists());
    t.run(&["uninstall", "gunicorn.service"]).ok();
    assert_eq!(before, t.snapshot());
}

// --- refusals -------------------------------------------------------------------------------

#[test]
fn unit_names_that_could_reach_a_path_are_rejected() {
    let t = Tree::copy("solvit");
    let before = t.snapshot();
    for bad in [
        "../x.service",
        "../../etc/passwd.service",
        "a/b.service",
        "solvit",
        ".x.service",
    ] {
        for cmd in ["install", "uninstall"] {
            let out = t.run(&[cmd, bad]);
            assert_eq!(out.code, 2, "{cmd} {bad}: {out:#?}");
            assert!(out.stderr.contains("invalid unit name"), "{out:#?}");
        }
    }
    let out = t.run(&["install", "nope.service"]);
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(out.stderr.contains("not found"), "{out:#?}");
    assert_eq!(before, t.snapshot());
}

#[test]
fn a_symlink_placed_where_the_drop_in_goes_is_never_written_through() {
    let elsewhere = tempfile::tempdir().unwrap();
    // The drop-in directory is a symlink to somewhere else.
    let t = Tree::copy("solvit");
    symlink(
        elsewhere.path(),
        t.file("etc/systemd/system/solvit.service.d"),
    )
    .unwrap();
    let out = t.run(&["install"]);
    assert_eq!(out.code, 78, "{out:#?}");
    assert!(out.stderr.contains("symlink"), "{out:#?}");
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
    // The drop-in file itself is a symlink to a file someone wants overwritten.
    let victim = elsewhere.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let t = Tree::copy("solvit");
    std::fs::create_dir(t.file("etc/systemd/system/solvit.service.d")).unwrap();
    symlink(&victim, t.dropin("solvit.service")).unwrap();
    let out = t.run(&["install"]);
    assert_eq!(out.code, 78, "{out:#?}");
    assert!(out.stderr.contains("symlink"), "{out:#?}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
}

#[test]
fn a_socket_unit_holding_the_port_is_refused_with_an_explanation() {
    let t = Tree::copy("socket");
    let before = t.snapshot();
    let out = t.run(&["install"]);
    assert_eq!(out.code, 78, "{out:#?}");
    for want in [
        "solvit.socket",
        "ListenStream=0.0.0.0:8001",
        "Address already in use",
        "systemctl disable --now solvit.socket",
    ] {
        assert!(out.stderr.contains(want), "want {want:?}: {out:#?}");
    }
    assert_eq!(before, t.snapshot());
}

#[test]
fn a_later_drop_in_that_would_override_the_launcher_is_refused() {
    let t = Tree::copy("later-dropin");
    let before = t.snapshot();
    let out = t.run(&["install"]);
    assert_eq!(out.code, 78, "{out:#?}");
    assert!(out.stderr.contains("zzz-local.conf:3: Type="), "{out:#?}");
    assert_eq!(before, t.snapshot());
}

#[test]
fn a_file_with_our_name_that_we_did_not_write_is_left_alone() {
    let t = Tree::copy("solvit");
    t.write(
        &format!("etc/systemd/system/solvit.service.d/{DROPIN}"),
        "[Service]\nNice=5\n",
    );
    let before = t.snapshot();
    let out = t.run(&["install"]);
    assert_eq!(out.code, 78, "{out:#?}");
    let out = t.run(&["uninstall"]);
    assert_eq!(out.code, 78, "{out:#?}");
    assert_eq!(before, t.snapshot());
}

// --- ports, timeouts, status, json ----------------------------------------------------------

#[test]
fn the_units_own_port_and_graceful_timeout_are_carried_over() {
    let t = Tree::copy("other-port");
    let out = t.run(&["install"]);
    out.ok();
    let (_, argv) = t.exec_start("solvit-api.service");
    assert_eq!(
        argv[..6],
        words(&[LAUNCHER, "run", "--hold-socket", "--port", "8002", "--"])
    );
    assert_eq!(
        t.setting("solvit-api.service", "TimeoutStopSec").as_deref(),
        Some("60s")
    );
    // The launcher raises its own stop timeout above gunicorn's graceful timeout (50 s + 5 s),
    // and systemd's stays above the launcher's.
    assert!(
        out.stdout.contains(
            "--graceful-timeout 50: the launcher waits up to 55s for gunicorn to stop, systemd \
             up to TimeoutStopSec=60s"
        ),
        "{out:#?}"
    );
}

#[test]
fn status_tells_wrapped_from_bare_units() {
    let t = Tree::copy("python-m");
    let out = t.run(&["status"]);
    out.ok();
    assert!(out.stdout.contains("solvit.service"), "{out:#?}");
    assert!(
        out.stdout.contains("gunicorn directly (not installed)"),
        "{out:#?}"
    );
    assert!(!out.stdout.contains("manage.service"), "{out:#?}");
    t.run(&["install", "solvit.service"]).ok();
    let out = t.run(&["status", "--json"]);
    out.ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let units = v["units"].as_array().unwrap();
    let find = |name: &str| units.iter().find(|u| u["unit"] == name).unwrap().clone();
    assert_eq!(find("solvit.service")["wrapped"], true);
    assert_eq!(find("solvit-script.service")["wrapped"], false);
}

#[test]
fn json_output_carries_the_plan() {
    let t = Tree::copy("solvit");
    let out = t.run(&["install", "--dry-run", "--json"]);
    out.ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(v["exit_code"], 0);
    let u = &v["units"][0];
    assert_eq!(u["unit"], "solvit.service");
    assert_eq!(u["action"], "install");
    assert_eq!(u["port"], 8001);
    assert_eq!(
        u["old_exec_start"],
        "/opt/solvit/venv/bin/gunicorn --workers 3 --bind 127.0.0.1:8001 solvit.wsgi:application"
    );
    assert!(
        u["dropin_text"]
            .as_str()
            .unwrap()
            .contains("ExecStart=/usr/local/bin/gunicorn-launcher run --hold-socket -- ")
    );
    let refused = Tree::copy("socket").run(&["install", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&refused.stdout).expect("json");
    assert_eq!(v["exit_code"], 78);
    assert!(v["error"].as_str().unwrap().contains("solvit.socket"));
}

// --- what gets wrapped ------------------------------------------------------------------------

/// Only a unit whose gunicorn binds TCP has the problem the launcher fixes. A unit bound to
/// a unix socket (behind nginx) is left alone, and refused when named; a unit with no bind
/// (gunicorn's default 127.0.0.1:8000, or its config file's) is left alone unless named, and
/// then keeps port 8000, on all interfaces.
#[test]
fn only_units_bound_to_tcp_are_wrapped_and_the_others_are_told_why() {
    let t = Tree::copy("binds");
    let before = t.snapshot();
    let dry = t.run(&["install", "--dry-run"]);
    dry.ok();
    assert_eq!(before, t.snapshot(), "a dry run wrote something");
    assert!(dry.stdout.contains("solvit.service: install:"), "{dry:#?}");
    assert!(
        dry.stdout.contains(
            "solvit-nginx.service: gunicorn is bound to unix:/run/solvit-nginx/gunicorn.sock, a socket that is not TCP"
        ),
        "{dry:#?}"
    );
    assert!(
        dry.stdout
            .contains("solvit-default.service: no bind on its command line")
            && dry.stdout.contains("name it to wrap it on 0.0.0.0:8000"),
        "{dry:#?}"
    );
    t.run(&["install"]).ok();
    assert!(t.dropin("solvit.service").exists());
    assert!(!t.dropin("solvit-nginx.service").exists());
    assert!(!t.dropin("solvit-default.service").exists());

    let status = t.run(&["status", "--json"]);
    status.ok();
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let find = |name: &str| {
        v["units"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["unit"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(find("solvit-nginx.service")["wrapped"], false);
    assert_eq!(
        find("solvit-nginx.service")["port"],
        serde_json::Value::Null
    );
    assert!(
        find("solvit-nginx.service")["how"]
            .as_str()
            .unwrap()
            .contains("unix socket (left alone"),
        "{v}"
    );
    assert_eq!(find("solvit-default.service")["port"], 8000);

    let named = t.run(&["install", "solvit-nginx.service"]);
    assert_eq!(named.code, 2, "{named:#?}");
    assert!(
        named.stderr.contains("a socket that is not TCP")
            && named.stderr.contains("left untouched"),
        "{named:#?}"
    );
    assert!(!t.dropin("solvit-nginx.service").exists());

    let named = t.run(&["install", "solvit-default.service"]);
    named.ok();
    let mut want = words(&[LAUNCHER, "run", "--hold-socket", "--port", "8000", "--"]);
    want.extend(words(&[
        "/opt/solvit/venv/bin/gunicorn",
        "--workers",
        "2",
        "solvit.wsgi:application",
    ]));
    assert_eq!(t.exec_start("solvit-default.service").1, want);
    let text = t.read("etc/systemd/system/solvit-default.service.d/zz-gunicorn-launcher.conf");
    assert!(
        text.contains("# No bind on its command line: gunicorn's default port 8000 (127.0.0.1:8000), now on all interfaces"),
        "{text}"
    );
}

/// Two units that would end up on one port would fight for it: refused before anything is
/// written, whether they come in one install or one after the other.
#[test]
fn two_units_on_one_port_are_refused_before_anything_is_written() {
    let t = Tree::copy("binds");
    t.write(
        "etc/systemd/system/solvit-copy.service",
        "[Service]\nExecStart=/opt/solvit/venv/bin/gunicorn --bind 127.0.0.1:8001 copy.wsgi\n",
    );
    let before = t.snapshot();
    let out = t.run(&["install"]);
    assert_eq!(out.code, 78, "{out:#?}");
    assert!(
        out.stderr
            .contains("solvit-copy.service and solvit.service would both serve port 8001"),
        "{out:#?}"
    );
    assert_eq!(before, t.snapshot(), "written despite the refusal");
    t.run(&["install", "solvit.service"]).ok();
    let out = t.run(&["install", "solvit-copy.service"]);
    assert_eq!(out.code, 78, "{out:#?}");
    assert!(
        out.stderr.contains("would both serve port 8001"),
        "{out:#?}"
    );
    assert!(!t.dropin("solvit-copy.service").exists());
}

// --- socket units ---------------------------------------------------------------------------

/// `--socket-unit` writes `solvit.socket` beside the drop-in, and the drop-in requires it;
/// a second install changes nothing (with or without the flag: the socket is kept);
/// uninstall takes both away and leaves the tree exactly as it was.
#[test]
fn a_socket_unit_is_written_kept_and_removed_with_the_drop_in() {
    let t = Tree::copy("solvit");
    let before = t.snapshot();
    let out = t.run(&["install", "--socket-unit", "solvit.service"]);
    out.ok();
    let socket = t.read("etc/systemd/system/solvit.socket");
    let file = unit::parse_unit(Path::new("solvit.socket"), &socket).unwrap();
    let value = |s: &str, k: &str| {
        file.entries(s, k)
            .map(|e| e.value.clone())
            .collect::<Vec<_>>()
    };
    assert!(
        socket.starts_with("# Written by gunicorn-launcher install.\n"),
        "{socket}"
    );
    assert_eq!(value("Socket", "ListenStream"), ["0.0.0.0:8001"]);
    assert_eq!(value("Socket", "BindIPv6Only"), ["both"]);
    assert_eq!(value("Install", "WantedBy"), ["sockets.target"]);
    let loaded = unit::load_unit(t.path(), &UnitName::parse("solvit.service").unwrap()).unwrap();
    let last = |k: &str| unit::effective(&loaded, "Unit", k).pop().map(|(v, _, _)| v);
    assert_eq!(last("Requires").as_deref(), Some("solvit.socket"));
    assert_eq!(last("After").as_deref(), Some("solvit.socket"));
    assert!(
        out.stdout.contains("solvit.socket holds port 8001 open"),
        "{out:#?}"
    );
    let installed = t.snapshot();
    for again in [
        &["install", "--socket-unit", "solvit.service"][..],
        &["install", "solvit.service"],
    ] {
        let out = t.run(again);
        out.ok();
        assert!(
            out.stdout.contains("already installed: nothing changed"),
            "{out:#?}"
        );
        assert_eq!(installed, t.snapshot());
    }
    let status = t.run(&["status", "--json"]);
    status.ok();
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(v["units"][0]["socket_unit"], "solvit.socket", "{v}");
    let out = t.run(&["uninstall", "solvit.service"]);
    out.ok();
    assert!(
        out.stdout
            .contains("solvit.socket (disabled and stopped first)"),
        "{out:#?}"
    );
    assert_eq!(before, t.snapshot(), "uninstall did not restore the tree");
}

#[test]
fn a_socket_unit_for_a_template_or_over_someone_elses_is_refused() {
    let t = Tree::copy("template");
    let before = t.snapshot();
    let out = t.run(&["install", "--socket-unit", "solvit@.service"]);
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(
        out.stderr.contains("--socket-unit cannot serve a template"),
        "{out:#?}"
    );
    assert_eq!(before, t.snapshot());
    let t = Tree::copy("solvit");
    t.write(
        "etc/systemd/system/solvit.socket",
        "[Socket]\nListenStream=9999\n",
    );
    let before = t.snapshot();
    let out = t.run(&["install", "--socket-unit", "solvit.service"]);
    assert_eq!(out.code, 78, "{out:#?}");
    assert!(
        out.stderr.contains("was not written by gunicorn-launcher"),
        "{out:#?}"
    );
    assert_eq!(before, t.snapshot());
}

/// A socket unit `install --socket-unit` wrote for one instance of a template holds the
/// port: a second instance on the same port is refused, told what that socket is (ours, for
/// another unit) and what to do (another port, or uninstall the first), never "remove it and
/// use install --socket-unit", which would take the first instance's socket away.
#[test]
fn a_second_instance_beside_an_installed_socket_unit_is_told_whose_socket_it_is() {
    let t = Tree::copy("template");
    t.run(&["install", "--socket-unit", "solvit@a.service"])
        .ok();
    assert!(t.file("etc/systemd/system/solvit@a.socket").exists());
    let before = t.snapshot();
    let out = t.run(&["install", "solvit@b.service"]);
    assert_eq!(out.code, 78, "{out:#?}");
    for want in [
        "solvit@a.socket listens on port 8001",
        "gunicorn-launcher install --socket-unit wrote it for another unit",
        "give solvit@b.service another port",
        "or uninstall the unit solvit@a.socket belongs to first",
    ] {
        assert!(out.stderr.contains(want), "want {want:?}: {out:#?}");
    }
    assert!(
        !out.stderr.contains("use install --socket-unit"),
        "{out:#?}"
    );
    assert_eq!(before, t.snapshot());
}

// --- who holds the port ---------------------------------------------------------------------

/// A plain install holds the port's socket in the launcher and keeps it in systemd's file
/// descriptor store: the drop-in runs `run --hold-socket` and sets `FileDescriptorStoreMax=1`;
/// the dry run, the JSON and `status` say so.
#[test]
fn a_plain_install_holds_the_socket_and_keeps_it_in_the_fd_store() {
    let t = Tree::copy("solvit");
    let dry = t.run(&["install", "--dry-run"]);
    dry.ok();
    assert!(
        dry.stdout
            .contains("port: held by the launcher, kept in systemd's fd store"),
        "{dry:#?}"
    );
    t.run(&["install"]).ok();
    assert_eq!(
        t.exec_start("solvit.service").1[1..3],
        words(&["run", "--hold-socket"])
    );
    assert_eq!(
        t.setting("solvit.service", "FileDescriptorStoreMax")
            .as_deref(),
        Some("1")
    );
    let json = t.run(&["install", "--dry-run", "--json", "--no-hold-socket"]);
    json.ok();
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["units"][0]["port_held_by"], "gunicorn", "{v}");
    let status = t.run(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(v["units"][0]["port_held_by"], "launcher", "{v}");
    assert!(
        v["units"][0]["how"]
            .as_str()
            .unwrap()
            .contains("port held by it and systemd's fd store"),
        "{v}"
    );
}

/// `--no-hold-socket` keeps the behaviour from before the launcher held sockets: gunicorn
/// binds, no fd store; said in the plan and by `status`.
#[test]
fn no_hold_socket_lets_gunicorn_bind_and_says_so() {
    let t = Tree::copy("solvit");
    let out = t.run(&["install", "--no-hold-socket"]);
    out.ok();
    assert!(
        out.stdout
            .contains("no held socket (--no-hold-socket): gunicorn binds the port itself"),
        "{out:#?}"
    );
    assert_eq!(
        t.exec_start("solvit.service").1[1..3],
        words(&["run", "--"])
    );
    assert_eq!(t.setting("solvit.service", "FileDescriptorStoreMax"), None);
    let status = t.run(&["status"]);
    assert!(
        status
            .stdout
            .contains("wrapped by gunicorn-launcher, gunicorn binds the port"),
        "{status:#?}"
    );
    let out = t.run(&[
        "install",
        "--no-hold-socket",
        "--socket-unit",
        "solvit.service",
    ]);
    assert_eq!(out.code, 2, "the two contradict each other: {out:#?}");
}

/// A unit whose gunicorn turns on `reuse_port` (each worker binds the port itself) cannot be
/// served from a held socket: wherever the launcher can see it (the command line,
/// `GUNICORN_CMD_ARGS` in `Environment=`, the config file in `WorkingDirectory=`), the unit
/// is installed without one, with the reason and where it was found.
#[test]
fn a_reuse_port_unit_is_installed_without_a_held_socket_and_told_why() {
    let unit = "etc/systemd/system/solvit.service";
    let cases = [
        (
            "--bind 127.0.0.1:8001 --reuse-port",
            "",
            None,
            "--reuse-port on gunicorn's command line",
        ),
        (
            "--bind 127.0.0.1:8001",
            "Environment=\"GUNICORN_CMD_ARGS=--reuse-port --workers 2\"\n",
            None,
            "--reuse-port in GUNICORN_CMD_ARGS",
        ),
        (
            "--bind 127.0.0.1:8001 -c conf/gunicorn.py",
            "",
            Some((
                "opt/solvit/conf/gunicorn.py",
                "workers = 2\nreuse_port = True\n",
            )),
            "conf/gunicorn.py:2: `reuse_port = True`",
        ),
    ];
    for (bind, env, config, said) in cases {
        let t = Tree::copy("solvit");
        let text = t.read(unit).replace("--bind 127.0.0.1:8001", bind).replace(
            "Restart=on-failure\n",
            &format!("Restart=on-failure\n{env}"),
        );
        t.write(unit, &text);
        if let Some((file, body)) = config {
            t.write(file, body);
        }
        let out = t.run(&["install"]);
        out.ok();
        assert!(
            out.stdout.contains(&format!(
                "no held socket ({said} turns on gunicorn's reuse_port, which a held socket cannot serve)"
            )),
            "{said}: {out:#?}"
        );
        assert!(
            !t.exec_start("solvit.service")
                .1
                .contains(&"--hold-socket".to_string())
        );
        assert_eq!(t.setting("solvit.service", "FileDescriptorStoreMax"), None);
    }
}

/// Without --root, install, uninstall and status need a running systemd: on a host without
/// one (here: a private mount namespace with an empty /run, whatever the machine runs), each
/// refuses with exit 2 (a usage error), says why and what to do instead.
#[test]
fn without_a_running_systemd_live_commands_refuse_and_name_root() {
    common::require_root("a private mount namespace");
    for args in [
        &["install", "solvit.service"][..],
        &["uninstall", "solvit.service"],
        &["status"],
    ] {
        let out = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg("mount -t tmpfs none /run && exec \"$@\"")
            .arg("sh")
            .arg(common::launcher())
            .args(args)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {said}");
        assert!(
            said.contains("systemd is not running on this host (no /run/systemd/system)")
                && said.contains("use --root DIR"),
            "{args:?}: {said}"
        );
    }
}
