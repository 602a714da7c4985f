use super::*;
use crate::test_support::units::{argv, exec, exec_start, fixture, last, load, name};
use crate::unit::format_exec;

#[test]
fn solvit_unit() {
    let root = fixture("solvit");
    let u = load("solvit", "solvit.service");
    assert_eq!(u.fragment, root.join("etc/systemd/system/solvit.service"));
    assert!(u.dropins.is_empty() && !u.masked);
    assert_eq!(u.names, [name("solvit.service")]);
    assert_eq!(last(&u, "User").as_deref(), Some("solvit"));
    assert_eq!(last(&u, "WorkingDirectory").as_deref(), Some("/opt/solvit"));
    let starts = effective(&u, "Service", "ExecStart");
    assert_eq!(starts.len(), 1);
    let (value, path, line) = &starts[0];
    assert_eq!(
        value,
        "/opt/solvit/venv/bin/gunicorn --workers 3 --bind 127.0.0.1:8001 solvit.wsgi:application"
    );
    assert_eq!(path, &u.fragment);
    assert_eq!(*line, 10);
    let cmds = exec_start("solvit", "solvit.service");
    assert_eq!(format_exec(&cmds[0]), *value);
    assert_eq!(
        list_service_units(&root),
        [name("nginx.service"), name("solvit.service")]
    );
}

#[test]
fn continuation_fixture() {
    let cmds = exec_start("continuation", "solvit.service");
    assert_eq!(cmds.len(), 1);
    assert_eq!(
        argv(&cmds[0]),
        [
            "/opt/solvit/venv/bin/gunicorn",
            "--workers",
            "3",
            "--timeout",
            "60",
            "--bind",
            "127.0.0.1:8001",
            "solvit.wsgi:application"
        ]
    );
    let u = load("continuation", "solvit.service");
    let (_, _, line) = &effective(&u, "Service", "ExecStart")[0];
    assert_eq!(*line, 7);
    assert_eq!(last(&u, "User").as_deref(), Some("solvit"));
}

#[test]
fn quoting_fixture() {
    let cmds = exec_start("quoting", "solvit.service");
    assert_eq!(
        argv(&cmds[0]),
        [
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
        ]
    );
    assert_eq!(exec(&format_exec(&cmds[0])), cmds[0]);
}

#[test]
fn env_vars_fixture() {
    let u = load("env-vars", "solvit.service");
    let cmds = exec_start("env-vars", "solvit.service");
    assert_eq!(
        argv(&cmds[0]),
        [
            "/opt/solvit/venv/bin/gunicorn",
            "$GUNICORN_OPTS",
            "--bind",
            "${BIND_HOST}:${BIND_PORT}",
            "${APP_MODULE}"
        ]
    );
    assert_eq!(
        format_exec(&cmds[0]),
        "/opt/solvit/venv/bin/gunicorn $GUNICORN_OPTS --bind ${BIND_HOST}:${BIND_PORT} ${APP_MODULE}"
    );
    let env: Vec<String> = effective(&u, "Service", "Environment")
        .into_iter()
        .map(|(v, _, _)| v)
        .collect();
    assert_eq!(
        env,
        [
            "BIND_HOST=127.0.0.1 BIND_PORT=8001 APP_MODULE=solvit.wsgi:application",
            "\"GUNICORN_OPTS=--workers 3 --timeout 60\"",
        ]
    );
    assert_eq!(
        last(&u, "EnvironmentFile").as_deref(),
        Some("-/etc/default/solvit")
    );
}

#[test]
fn specifiers_fixture() {
    let cmds = exec_start("specifiers", "solvit@a.service");
    assert_eq!(
        argv(&cmds[0]),
        [
            "%h/venv/bin/gunicorn",
            "--name",
            "solvit-%i",
            "--pid",
            "/run/solvit/%i.pid",
            "--bind",
            "127.0.0.1:80%i",
            "--chdir",
            "%h/%I dir",
            "solvit.wsgi"
        ]
    );
    assert_eq!(exec(&format_exec(&cmds[0])), cmds[0]);
    assert!(format_exec(&cmds[0]).contains(r#" "%h/%I dir" "#));
}

#[test]
fn prefixes_fixture() {
    let cmds = exec_start("prefixes", "ignore-failure.service");
    assert_eq!(cmds[0].prefixes, "-");
    assert_eq!(cmds[0].argv[0], "/opt/solvit/venv/bin/gunicorn");

    let cmds = exec_start("prefixes", "argv0.service");
    assert_eq!(cmds[0].prefixes, "@");
    assert_eq!(
        &cmds[0].argv[..2],
        ["/opt/solvit/venv/bin/gunicorn", "solvit-gunicorn"]
    );

    let cmds = exec_start("prefixes", "all.service");
    assert_eq!(cmds[0].prefixes, "-@:+");
    assert_eq!(
        cmds[0].program_and_args(),
        ["/usr/bin/python3", "-m", "gunicorn", "app:wsgi"]
    );
    assert_eq!(
        format_exec(&cmds[0]),
        "-@:+/usr/bin/python3 solvit -m gunicorn app:wsgi"
    );
}

#[test]
fn forking_daemon_fixture() {
    let u = load("forking-daemon", "solvit.service");
    assert_eq!(last(&u, "Type").as_deref(), Some("forking"));
    assert_eq!(
        last(&u, "PIDFile").as_deref(),
        Some("/run/solvit/gunicorn.pid")
    );
    let cmds = exec_start("forking-daemon", "solvit.service");
    assert!(cmds[0].argv.contains(&"--daemon".to_string()));
}

#[test]
fn python_fixture() {
    let cmd = &exec_start("python-m", "solvit.service")[0];
    assert_eq!(
        &cmd.argv[..3],
        ["/opt/solvit/venv/bin/python3", "-m", "gunicorn"]
    );
}

#[test]
fn malformed_fixtures_name_file_and_line() {
    let root = fixture("malformed");
    let e = load_unit(&root, &name("outside-section.service")).unwrap_err();
    assert_eq!(
        e.path,
        Some(root.join("etc/systemd/system/outside-section.service"))
    );
    assert_eq!(e.line, Some(2));
    assert!(e.message.contains("outside of any section"));

    let e = load_unit(&root, &name("missing-equals.service")).unwrap_err();
    assert_eq!(e.line, Some(5));

    let e = load_unit(&root, &name("bad-header.service")).unwrap_err();
    assert_eq!(e.line, Some(4));

    // Bad quoting parses as a file but not as a command line.
    let u = load_unit(&root, &name("bad-quoting.service")).unwrap();
    let e = effective_exec(&u, "ExecStart").unwrap_err();
    assert_eq!(
        e.path,
        Some(root.join("etc/systemd/system/bad-quoting.service"))
    );
    assert_eq!(e.line, Some(6));
    assert!(e.to_string().contains("unbalanced quoting"), "{e}");

    // A broken drop-in is reported as itself.
    let e = load_unit(&root, &name("bad-dropin.service")).unwrap_err();
    assert_eq!(
        e.path,
        Some(root.join("etc/systemd/system/bad-dropin.service.d/override.conf"))
    );
    assert_eq!(e.line, Some(1));
}

#[test]
fn one_index_loads_many_units() {
    let root = fixture("python-m");
    let index = UnitIndex::new(&root);
    assert_eq!(index.root(), root.as_path());
    let units = index.service_units();
    assert_eq!(
        units,
        ["manage.service", "solvit-script.service", "solvit.service"].map(name)
    );
    for unit in &units {
        assert_eq!(index.load(unit).unwrap(), load_unit(&root, unit).unwrap());
    }
}
