use super::*;

#[test]
fn a_units_launcher_line_is_read_as_run_reads_it() {
    let args = parse_run_line(&[
        "/usr/bin/gunicorn-launcher",
        "run",
        "--port=8002",
        "--",
        "gunicorn",
        "a:b",
    ])
    .unwrap();
    assert_eq!(args.port, Some(8002));
    assert_eq!(args.command, ["gunicorn", "a:b"]);
    let args = parse_run_line(&[
        "gunicorn-launcher",
        "--log-format",
        "json",
        "run",
        "-c",
        "/etc/x.toml",
        "--hold-socket",
    ])
    .unwrap();
    assert_eq!(
        args.config.as_deref(),
        Some(std::path::Path::new("/etc/x.toml"))
    );
    assert!(args.hold_socket);
    assert!(parse_run_line(&["gunicorn-launcher", "check"]).is_none());
    assert!(parse_run_line(&["gunicorn-launcher", "run", "--port", "0"]).is_none());
}
