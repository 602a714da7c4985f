use super::*;

#[test]
fn stop_timeout_goes_above_the_graceful_timeout() {
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut notes = Vec::new();
    assert_eq!(stop_timeout(&v(&["app"]), &mut notes), 40);
    assert_eq!(
        stop_timeout(&v(&["--graceful-timeout", "10"]), &mut notes),
        40
    );
    assert_eq!(stop_timeout(&v(&["--graceful-timeout=45"]), &mut notes), 55);
    assert!(
        notes.iter().any(|n| n.contains("TimeoutStopSec=55s")),
        "{notes:?}"
    );
}

#[test]
fn launcher_paths_must_be_plain_and_absolute() {
    assert!(check_launcher_path(Path::new("/usr/bin/gunicorn-launcher")).is_ok());
    for bad in [
        "gunicorn-launcher",
        "/opt/my dir/l",
        "/opt/%i/l",
        "/opt/$X/l",
        "/a\\b",
    ] {
        assert!(check_launcher_path(Path::new(bad)).is_err(), "{bad}");
    }
}

#[test]
fn the_new_command_keeps_prefixes_argv0_and_words() {
    let orig = unit::parse_exec(
        "-@/opt/v/bin/gunicorn solvit-gunicorn --name \"a b\" -b 127.0.0.1:8002 ${APP} $OPTS %i",
    )
    .unwrap();
    let line = new_exec_start(&orig, "/usr/bin/gunicorn-launcher", 8002, false).unwrap();
    assert_eq!(
        line,
        "-@/usr/bin/gunicorn-launcher solvit-gunicorn run --port 8002 -- /opt/v/bin/gunicorn \
             --name \"a b\" -b 127.0.0.1:8002 ${APP} $OPTS %i"
    );
    let held = new_exec_start(&orig, "/usr/bin/gunicorn-launcher", 8002, true).unwrap();
    assert!(
        held.contains(" solvit-gunicorn run --hold-socket --port 8002 -- "),
        "{held}"
    );
}
