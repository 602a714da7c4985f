use super::*;

/// Does this command run gunicorn in one of the four launch forms (see `runs_gunicorn`)?
/// What counts is [`ExecCommand::program_and_args`]: the executable and the arguments it is
/// given, without the argv\[0\] that an `@` prefix sets.
fn command_runs_gunicorn(cmd: &ExecCommand) -> bool {
    runs_gunicorn(&cmd.program_and_args())
}

/// Does this argv (executable first) run gunicorn in one of the four launch forms that
/// `gunicorn-launcher run` accepts: `gunicorn …`, `/path/to/gunicorn …`, `python [OPTS] -m
/// gunicorn …`, `python [OPTS] /path/bin/gunicorn …`? This is [`crate::launch::recognise`] itself,
/// so the installer wraps exactly the commands that `run` will accept. The words are compared
/// as written, unexpanded: an executable given as `$VAR`, `${VAR}` or a specifier (`%I`) is not
/// recognised; a path whose directory holds a specifier (`%h/venv/bin/gunicorn`) is.
fn runs_gunicorn<S: AsRef<str>>(argv: &[S]) -> bool {
    let argv: Vec<String> = argv.iter().map(|s| s.as_ref().to_string()).collect();
    crate::launch::recognise(&argv).is_ok()
}

use crate::unit::{UnitIndex, UnitName, effective_exec, list_service_units, load_unit, parse_exec};
use std::path::{Path, PathBuf};

fn fixture(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/units")
        .join(case)
}

fn name(s: &str) -> UnitName {
    UnitName::parse(s).unwrap()
}

fn exec(s: &str) -> ExecCommand {
    parse_exec(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

/// The effective ExecStart commands of a fixture unit.
fn exec_start(case: &str, unit: &str) -> Vec<ExecCommand> {
    let loaded =
        load_unit(&fixture(case), &name(unit)).unwrap_or_else(|e| panic!("{case}/{unit}: {e}"));
    effective_exec(&loaded, "ExecStart")
        .unwrap()
        .into_iter()
        .map(|(cmd, _, _)| cmd)
        .collect()
}

fn runs(s: &str) -> bool {
    command_runs_gunicorn(&exec(s))
}

#[test]
fn launch_forms_as_written_in_units() {
    // The forms themselves are launch::recognise's (tested there); here: what unit files
    // add on top — prefixes, unexpanded variables and specifiers.
    for yes in [
        "/opt/solvit/venv/bin/gunicorn --workers 3 solvit.wsgi",
        "gunicorn app:wsgi",
        "%h/venv/bin/gunicorn app",
        "/usr/bin/python3.11 -u -m gunicorn app",
        "python3 /opt/venv/bin/gunicorn app",
        "-/usr/bin/gunicorn app",
        "!!/usr/bin/gunicorn app",
        "@/usr/bin/python3 solvit -m gunicorn app",
        "@/opt/venv/bin/gunicorn my-name --bind 127.0.0.1:8001 app",
        "-@/opt/venv/bin/gunicorn solvit-web -b 127.0.0.1:8001 app",
    ] {
        assert!(runs(yes), "{yes}");
    }
    for no in [
        "/usr/sbin/nginx -g 'daemon off;'",
        "/usr/bin/uwsgi --ini x",
        "/usr/bin/env gunicorn app",
        "/bin/sh -c 'exec gunicorn app'",
        "$GUNICORN app",
        "${GUNICORN} app",
        "%I app",
        "python3 $GUNICORN app",
        "python3 -m uvicorn app",
        "python3 /opt/solvit/manage.py runserver",
        // With `@` the second word is only argv[0]: it runs the wrapper, not gunicorn.
        "@/usr/bin/gunicorn-wrapper gunicorn app",
    ] {
        assert!(!runs(no), "{no}");
    }
    assert!(!runs_gunicorn::<String>(&[]));
    assert!(runs_gunicorn(&["python3.12", "-m", "gunicorn"]));
    assert!(runs_gunicorn(&["gunicorn".to_string()]));
}

/// The commands the unit reader reads from the fixture trees (word by word in its own
/// tests), recognised or not.
#[test]
fn fixture_commands() {
    for (case, unit, runs) in [
        ("solvit", "solvit.service", true),
        ("solvit", "nginx.service", false),
        ("quoting", "solvit.service", true),
        ("env-vars", "solvit.service", true),
        // The executable itself as a variable: not recognised.
        ("env-vars", "varbin.service", false),
        ("specifiers", "solvit@a.service", true),
        ("prefixes", "ignore-failure.service", true),
        ("prefixes", "argv0.service", true),
        ("prefixes", "all.service", true),
        ("forking-daemon", "solvit.service", true),
        ("python-m", "solvit.service", true),
        ("python-m", "solvit-script.service", true),
        ("python-m", "manage.service", false),
        ("symlinks", "linked.service", true),
    ] {
        let cmd = &exec_start(case, unit)[0];
        assert_eq!(command_runs_gunicorn(cmd), runs, "{case}/{unit}");
    }
}

#[test]
fn not_gunicorn_fixture() {
    let root = fixture("not-gunicorn");
    let units = list_service_units(&root);
    assert_eq!(units, [name("nginx.service"), name("uwsgi.service")]);
    for unit in units {
        let u = load_unit(&root, &unit).unwrap();
        let cmds = effective_exec(&u, "ExecStart").unwrap();
        assert!(
            cmds.iter().all(|(c, _, _)| !command_runs_gunicorn(c)),
            "{unit}"
        );
    }
}

#[test]
fn one_index_finds_the_units_that_run_gunicorn() {
    let index = UnitIndex::new(&fixture("python-m"));
    let units = index.service_units();
    let gunicorn: Vec<&str> = units
        .iter()
        .filter(|u| {
            let unit = index.load(u).unwrap();
            effective_exec(&unit, "ExecStart")
                .unwrap()
                .iter()
                .any(|(c, _, _)| command_runs_gunicorn(c))
        })
        .map(UnitName::as_str)
        .collect();
    assert_eq!(gunicorn, ["solvit-script.service", "solvit.service"]);
}
