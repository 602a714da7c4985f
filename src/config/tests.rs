use super::*;

fn err(text: &str) -> String {
    parse(text, "/etc/gl.toml").unwrap_err().message
}

#[test]
fn empty_file_is_the_defaults() {
    assert_eq!(parse("", "x").unwrap(), Config::default());
}

#[test]
fn every_key_is_read() {
    let c = parse(
        r#"
[gunicorn]
command = ["python3", "-m", "gunicorn"]
app = "solvit.wsgi:application"
args = ["--workers", "3"]
[bind]
host = "::"
port = 9000
[supervise]
stop_timeout = "40s"
[verify]
startup_timeout = "2m"
probe_timeout = "500ms"
recheck_interval = "30s"
path = "/healthz"
on_failure = "warn"
host_names = ["solvit.example.com", "solvit"]
on_host_rejected = "fail"
on_firewall_blocked = "fail"
"#,
        "x",
    )
    .unwrap();
    assert_eq!(c.command, vec!["python3", "-m", "gunicorn"]);
    assert_eq!(c.app.as_deref(), Some("solvit.wsgi:application"));
    assert_eq!(c.args, vec!["--workers", "3"]);
    assert_eq!(c.host, "::".parse::<IpAddr>().unwrap());
    assert_eq!(c.port, 9000);
    assert_eq!(c.stop_timeout, Duration::from_secs(40));
    assert_eq!(c.startup_timeout, Duration::from_secs(120));
    assert_eq!(c.probe_timeout, Duration::from_millis(500));
    assert_eq!(c.recheck_interval, Duration::from_secs(30));
    assert_eq!(c.probe_path, "/healthz");
    assert_eq!(c.on_failure, OnFailure::Warn);
    assert_eq!(c.host_names, ["solvit.example.com", "solvit"]);
    assert_eq!(c.on_host_rejected, OnHostRejected::Fail);
    assert_eq!(c.on_firewall_blocked, OnFirewallBlocked::Fail);
}

#[test]
fn host_names_must_be_names() {
    for bad in [
        "\"\"",
        "\"http://solvit.example.com\"",
        "\"solvit.example.com:8001\"",
        "\"a b\"",
        "\".example.com\"",
        "\"solvit/x\"",
    ] {
        let e = err(&format!("[verify]\nhost_names = [{bad}]\n"));
        assert!(
            e.starts_with("/etc/gl.toml:2:14: key `verify.host_names`")
                && e.contains("not a host name"),
            "{bad}: {e}"
        );
    }
    let e = err("[verify]\non_host_rejected = \"ignore\"\n");
    assert!(e.contains("key `verify.on_host_rejected`"), "{e}");
    assert_eq!(Config::default().on_host_rejected, OnHostRejected::Warn);
    let e = err("[verify]\non_firewall_blocked = \"ignore\"\n");
    assert!(
        e.contains("key `verify.on_firewall_blocked`") && e.contains("warn"),
        "{e}"
    );
    assert_eq!(
        Config::default().on_firewall_blocked,
        OnFirewallBlocked::Warn
    );
}

#[test]
fn a_string_command_is_one_program_never_split() {
    let c = parse("[gunicorn]\ncommand = \"/opt/my app/bin/gunicorn\"\n", "x").unwrap();
    assert_eq!(c.command, vec!["/opt/my app/bin/gunicorn"]);
}

#[test]
fn a_typo_names_file_line_column_key_and_suggests() {
    let e = err("[gunicorn]\napp = \"a:b\"\nwrokers = 3\n");
    assert!(
        e.starts_with("/etc/gl.toml:3:1: key `gunicorn.wrokers`"),
        "{e}"
    );
    assert!(e.contains("unknown field `wrokers`"), "{e}");
    let e = err("[bind]\nprot = 1\n");
    assert!(e.contains("did you mean `port`?"), "{e}");
    let e = err("[verfiy]\n");
    assert!(e.contains("did you mean `verify`?"), "{e}");
}

#[test]
fn wrong_types_name_the_key() {
    let e = err("[bind]\nport = \"8001\"\n");
    assert!(e.starts_with("/etc/gl.toml:2:8: key `bind.port`"), "{e}");
    let e = err("[supervise]\nstop_timeout = \"soon\"\n");
    assert!(e.contains("key `supervise.stop_timeout`"), "{e}");
    let e = err("[verify]\non_failure = \"ignore\"\n");
    assert!(e.contains("key `verify.on_failure`"), "{e}");
}

#[test]
fn loopback_and_single_hosts_are_refused_with_the_reason() {
    let e = err("[bind]\nhost = \"127.0.0.1\"\n");
    assert!(
        e.starts_with("/etc/gl.toml:2:8: key `bind.host`: 127.0.0.1 is a loopback"),
        "{e}"
    );
    assert!(e.contains("ERR_CONNECTION_REFUSED"), "{e}");
    assert!(err("[bind]\nhost = \"::1\"\n").contains("loopback"));
    assert!(err("[bind]\nhost = \"192.0.2.7\"\n").contains("single address"));
    assert!(err("[bind]\nhost = \"localhost\"\n").contains("not an IP address"));
    assert!(parse("[bind]\nhost = \"[::]\"\n", "x").is_ok());
}

#[test]
fn ports_out_of_range_are_refused() {
    for p in ["0", "65536", "-1", "99999999999"] {
        let e = err(&format!("[bind]\nport = {p}\n"));
        assert!(
            e.contains("key `bind.port`") && e.contains("1 to 65535"),
            "{p}: {e}"
        );
    }
    assert_eq!(parse("[bind]\nport = 65535\n", "x").unwrap().port, 65535);
}

#[test]
fn syntax_errors_give_a_line() {
    let e = err("[bind]\nport = \n");
    assert!(e.starts_with("/etc/gl.toml:2:"), "{e}");
}

#[test]
fn bad_probe_paths_and_empty_commands_are_refused() {
    assert!(err("[verify]\npath = \"healthz\"\n").contains("key `verify.path`"));
    assert!(err("[gunicorn]\ncommand = []\n").contains("gunicorn.command"));
    assert!(err("[gunicorn]\ncommand = \"\"\n").contains("gunicorn.command"));
}

#[test]
fn durations_that_cannot_work_are_refused_with_where_and_why() {
    for (section, key) in [
        ("supervise", "stop_timeout"),
        ("verify", "startup_timeout"),
        ("verify", "probe_timeout"),
    ] {
        for zero in ["0s", "0ms", "0"] {
            let e = err(&format!("[{section}]\n{key} = \"{zero}\"\n"));
            let head = format!(
                "/etc/gl.toml:2:{}: key `{section}.{key}`: \"{zero}\" is zero: ",
                key.len() + 4
            );
            assert!(e.starts_with(&head), "{e}");
            assert!(e.ends_with("give a positive duration"), "{e}");
        }
    }
    // Zero is how a recheck is switched off.
    assert_eq!(
        parse("[verify]\nrecheck_interval = \"0s\"\n", "x")
            .unwrap()
            .recheck_interval,
        Duration::ZERO
    );
    let e = err("[verify]\nprobe_timeout = \"soon\"\n");
    assert!(
        e.starts_with("/etc/gl.toml:2:17: key `verify.probe_timeout`: \"soon\" is not a duration"),
        "{e}"
    );
    let e = err("[supervise]\nstop_timeout = 35\n");
    assert!(e.contains("key `supervise.stop_timeout`"), "{e}");
}

#[test]
fn an_empty_app_or_command_word_is_refused() {
    let e = err("[gunicorn]\napp = \"\"\n");
    assert!(
        e.starts_with("/etc/gl.toml:2:7: key `gunicorn.app`: empty; give the WSGI app"),
        "{e}"
    );
    assert!(err("[gunicorn]\napp = \"  \"\n").contains("key `gunicorn.app`"));
    let e = err("[gunicorn]\ncommand = [\"python3\", \"\", \"-m\", \"gunicorn\"]\n");
    assert!(
        e.starts_with("/etc/gl.toml:2:11: key `gunicorn.command`: empty"),
        "{e}"
    );
}

#[test]
fn probe_paths_follow_one_rule() {
    for bad in ["healthz", "/x y", "/a\tb", "", "/é"] {
        assert!(validate_path(bad).is_err(), "{bad:?}");
    }
    for good in ["/", "/healthz", "/search?q=a%20b"] {
        assert!(validate_path(good).is_ok(), "{good:?}");
    }
    assert!(err("[verify]\npath = \"/x y\"\n").contains("key `verify.path`"));
}

#[test]
fn fifos_devices_and_huge_files_are_refused_without_blocking() {
    let e = load(Path::new("/dev/zero")).unwrap_err().message;
    assert!(
        e.contains("/dev/zero") && e.contains("not a regular file"),
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    assert!(
        load(&fifo)
            .unwrap_err()
            .message
            .contains("not a regular file")
    );
    let big = dir.path().join("big.toml");
    std::fs::write(&big, vec![b'#'; (MAX_CONFIG + 1) as usize]).unwrap();
    assert!(load(&big).unwrap_err().message.contains("larger than"));
}

#[test]
fn unreadable_file_names_the_path() {
    let e = load(Path::new("/nonexistent/gl.toml")).unwrap_err().message;
    assert!(e.starts_with("/nonexistent/gl.toml: cannot read"), "{e}");
}

proptest::proptest! {
    #[test]
    fn any_text_gives_a_config_or_an_error_never_a_panic(s in "\\PC{0,200}") {
        let _ = parse(&s, "x");
    }

    /// Whatever is accepted can work: positive timeouts, an app and a
    /// command without empty words, an absolute visible-ASCII probe path,
    /// host names that are names (checked here by their own rule).
    #[test]
    fn an_accepted_config_can_work(
        stop in proptest::sample::select(vec!["0s", "1ms", "35s", "x", "0", "2m"]),
        startup in proptest::sample::select(vec!["0s", "60s", "1s", "-1s", "1h"]),
        probe in proptest::sample::select(vec!["0ms", "2s", "500ms", "", "1y"]),
        app in proptest::sample::select(vec!["", " ", "solvit.wsgi", "a:b"]),
        path in proptest::sample::select(vec!["/", "/x y", "nopath", "/healthz", "/\u{7f}"]),
        name in "[a-z.:/ -]{0,12}",
    ) {
        let text = format!(
            "[gunicorn]\napp = {app:?}\n[supervise]\nstop_timeout = {stop:?}\n\
             [verify]\nstartup_timeout = {startup:?}\nprobe_timeout = {probe:?}\npath = {path:?}\n\
             host_names = [{name:?}]\n"
        );
        if let Ok(c) = parse(&text, "x") {
            proptest::prop_assert!(!c.stop_timeout.is_zero());
            proptest::prop_assert!(!c.startup_timeout.is_zero());
            proptest::prop_assert!(!c.probe_timeout.is_zero());
            proptest::prop_assert!(c.app.as_deref().is_some_and(|a| !a.trim().is_empty()));
            proptest::prop_assert!(c.probe_path.starts_with('/'));
            proptest::prop_assert!(c.probe_path.bytes().all(|b| (0x21..0x7f).contains(&b)));
            for n in &c.host_names {
                proptest::prop_assert!(!n.is_empty() && !n.contains([':', '/', ' ']));
            }
        }
    }

    #[test]
    fn structured_garbage_never_panics(
        section in proptest::sample::select(vec!["gunicorn", "bind", "verify", "supervise", "x"]),
        key in "[a-z_]{1,12}",
        value in proptest::sample::select(vec!["1", "\"a\"", "[1]", "-5", "\"127.0.0.1\"", "{a=1}", "true", "\"5s\""]),
    ) {
        let _ = parse(&format!("[{section}]\n{key} = {value}\n"), "x");
    }
}

#[test]
fn the_example_config_holds_every_default() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/gunicorn-launcher.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut example = parse(&text, "example").unwrap();
    // The example names no app; everything else is the default, key by key.
    example.source = None;
    assert_eq!(example, Config::default());
}

#[test]
fn held_socket_and_restart_keys_are_read_and_checked() {
    let c = parse(
        "[bind]\nhold_socket = true\nbacklog = 64\n[supervise]\nrestart_burst = 0\nrestart_interval = \"1m\"\n",
        "/etc/gl.toml",
    )
    .unwrap();
    assert!(c.hold_socket);
    assert_eq!(c.backlog, 64);
    assert_eq!(c.restart_burst, 0);
    assert_eq!(c.restart_interval, Duration::from_secs(60));
    assert!(
        err("[bind]\nbacklog = 0\n")
            .starts_with("/etc/gl.toml:2:11: key `bind.backlog`: 0 cannot be a listen backlog")
    );
    assert!(err("[supervise]\nrestart_burst = -1\n").contains("key `supervise.restart_burst`"));
    assert!(err("[supervise]\nrestart_interval = \"0s\"\n").contains("is zero"));
    assert!(err("[bind]\nhold_socket = \"yes\"\n").contains("bind"));
}

#[test]
fn an_error_on_a_section_header_names_the_section() {
    let e = err("[gunicron]\napp = \"x\"\n");
    assert!(
        e.starts_with("/etc/gl.toml:1:2: key `gunicron`: unknown field `gunicron`"),
        "{e}"
    );
    assert!(e.ends_with("did you mean `gunicorn`?"), "{e}");
}
