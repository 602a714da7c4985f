use super::*;
use proptest::prelude::*;

fn v(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

const ANY: [u8; 4] = [0, 0, 0, 0];

#[test]
fn bind_goes_right_after_the_program() {
    let a = assemble(
        &v("gunicorn -w 3 -b 127.0.0.1:8001 app:app"),
        ANY.into(),
        8001,
    )
    .unwrap();
    assert_eq!(a.argv, v("gunicorn --bind 0.0.0.0:8001 -w 3 app:app"));
    assert_eq!(
        a.notes,
        vec![Note {
            warning: true,
            text: "replaced -b 127.0.0.1:8001 with 0.0.0.0:8001".into()
        }]
    );
    let a = assemble(&v("python3 -u -m gunicorn -- app"), ANY.into(), 9000).unwrap();
    assert_eq!(
        a.argv,
        v("python3 -u -m gunicorn --bind 0.0.0.0:9000 -- app")
    );
    let a = assemble(
        &v("python3 /v/bin/gunicorn app"),
        "::".parse().unwrap(),
        8001,
    )
    .unwrap();
    assert_eq!(a.argv, v("python3 /v/bin/gunicorn --bind [::]:8001 app"));
}

#[test]
fn the_design_log_line_is_exact() {
    let a = assemble(
        &v("gunicorn --bind 127.0.0.1:8001 solvit.wsgi"),
        ANY.into(),
        8001,
    )
    .unwrap();
    assert_eq!(
        a.notes[0].text,
        "replaced --bind 127.0.0.1:8001 with 0.0.0.0:8001"
    );
}

#[test]
fn an_identical_bind_is_kept_once_without_a_warning() {
    let a = assemble(&v("gunicorn -b 0.0.0.0:8001 app"), ANY.into(), 8001).unwrap();
    assert_eq!(a.argv, v("gunicorn --bind 0.0.0.0:8001 app"));
    assert!(!a.notes[0].warning);
}

#[test]
fn fd_binds_and_daemon_are_neutralised() {
    let a = assemble(&v("gunicorn --bind fd://3 -D app"), ANY.into(), 8001).unwrap();
    assert_eq!(a.argv, v("gunicorn --bind 0.0.0.0:8001 app"));
    assert!(a.notes[0].text.contains("fd://"));
    assert!(a.notes[1].text.contains("daemon"));
}

#[test]
fn not_gunicorn_is_refused() {
    assert!(assemble(&v("uwsgi --http :8001"), ANY.into(), 8001).is_err());
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn the_environment_is_scrubbed() {
    let (changes, notes) = env_changes(
        &env(&[
            ("PATH", "/bin"),
            ("LISTEN_FDS", "1"),
            ("NOTIFY_SOCKET", "/run/systemd/notify"),
            (
                "GUNICORN_CMD_ARGS",
                "--workers 2 --bind=127.0.0.1:8001 --access-logfile '-'",
            ),
        ]),
        "0.0.0.0:8001",
    )
    .unwrap();
    assert_eq!(
        changes,
        vec![
            EnvChange::Unset("LISTEN_FDS".into()),
            EnvChange::Unset("NOTIFY_SOCKET".into()),
            EnvChange::Set(
                "GUNICORN_CMD_ARGS".into(),
                "--workers 2 --access-logfile -".into()
            ),
        ]
    );
    assert_eq!(
        notes[0].text,
        "replaced --bind=127.0.0.1:8001 in GUNICORN_CMD_ARGS with 0.0.0.0:8001"
    );
}

#[test]
fn cmd_args_that_were_only_a_bind_are_unset_and_unparseable_ones_refused() {
    let (changes, _) =
        env_changes(&env(&[("GUNICORN_CMD_ARGS", "-b 127.0.0.1:8001")]), "x").unwrap();
    assert_eq!(changes, vec![EnvChange::Unset("GUNICORN_CMD_ARGS".into())]);
    let (changes, notes) = env_changes(&env(&[("GUNICORN_CMD_ARGS", "-w 3")]), "x").unwrap();
    assert!(changes.is_empty() && notes.is_empty());
    assert!(
        env_changes(&env(&[("GUNICORN_CMD_ARGS", "-w '3")]), "x")
            .unwrap_err()
            .contains("GUNICORN_CMD_ARGS")
    );
}

#[test]
fn a_bare_proxy_protocol_keeps_its_meaning() {
    // gunicorn reads `--proxy-protocol -b X app -- x` as proxy_protocol
    // 'auto' and the app list ['app', 'x']; `--proxy-protocol app -- x`
    // would be proxy_protocol 'app' and the app list ['x'].
    let a = assemble(
        &v("gunicorn --proxy-protocol -b 127.0.0.1:8001 app:app -- x"),
        ANY.into(),
        8001,
    )
    .unwrap();
    assert_eq!(
        a.argv,
        v("gunicorn --proxy-protocol --bind 0.0.0.0:8001 app:app -- x")
    );
    // Already bare before `--` or another option: the usual place.
    for cmd in [
        "gunicorn --proxy-protocol=v1 --proxy-protocol -- app",
        "gunicorn --proxy-protocol -b 127.0.0.1:8001 -w 2 app",
    ] {
        let a = assemble(&v(cmd), ANY.into(), 8001).unwrap();
        assert_eq!(&a.argv[1..3], &v("--bind 0.0.0.0:8001")[..], "{cmd}");
    }
    // The same in GUNICORN_CMD_ARGS, where the command line's bind wins.
    let (changes, notes) = env_changes(
        &env(&[("GUNICORN_CMD_ARGS", "--proxy-p -b[::1]:8001 A=1 --")]),
        "0.0.0.0:8001",
    )
    .unwrap();
    assert_eq!(
        changes,
        vec![EnvChange::Set(
            "GUNICORN_CMD_ARGS".into(),
            "--proxy-p --bind 0.0.0.0:8001 A=1 --".into()
        )]
    );
    assert_eq!(
        notes[0].text,
        "replaced -b[::1]:8001 in GUNICORN_CMD_ARGS with 0.0.0.0:8001"
    );
}

#[test]
fn cmd_args_are_split_as_python_shlex_splits_them() {
    // `#` is an ordinary character to gunicorn's shlex.split: the bind
    // after it is a bind.
    let (changes, notes) = env_changes(
        &env(&[("GUNICORN_CMD_ARGS", "--workers 2 #x -b 127.0.0.1:8001")]),
        "0.0.0.0:8001",
    )
    .unwrap();
    assert_eq!(
        changes,
        vec![EnvChange::Set(
            "GUNICORN_CMD_ARGS".into(),
            "--workers 2 '#x'".into()
        )]
    );
    assert_eq!(
        notes[0].text,
        "replaced -b 127.0.0.1:8001 in GUNICORN_CMD_ARGS with 0.0.0.0:8001"
    );
    // In double quotes a backslash escapes only `"` and `\`; the value
    // is written back with shlex.join and reads back the same.
    let (changes, _) = env_changes(
        &env(&[(
            "GUNICORN_CMD_ARGS",
            r#"-n "a\$b\"c" -D --access-logformat '%(h)s #' x\ y"#,
        )]),
        "0.0.0.0:8001",
    )
    .unwrap();
    let [EnvChange::Set(_, value)] = changes.as_slice() else {
        panic!("{changes:?}");
    };
    assert_eq!(
        pyshlex::split(value).unwrap(),
        ["-n", r#"a\$b"c"#, "--access-logformat", "%(h)s #", "x y"]
    );
    // Python's refusals are refusals.
    for bad in ["-b '127.0.0.1:8001", "-w 3 \\"] {
        let e = env_changes(&env(&[("GUNICORN_CMD_ARGS", bad)]), "x").unwrap_err();
        assert!(e.contains("GUNICORN_CMD_ARGS"), "{e}");
    }
}

fn is_bind_or_daemon(t: &str) -> bool {
    t.starts_with("-b") || t.starts_with("--bi") || t == "-D" || t.starts_with("--da")
}

/// Tokens drawn from the spellings that matter: binds, daemon flags,
/// clusters, values, options with values, `--`, and plain words.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("-b".to_string()),
        Just("--bind".to_string()),
        Just("--bi".to_string()),
        Just("-D".to_string()),
        Just("--daemon".to_string()),
        Just("-R".to_string()),
        Just("-w".to_string()),
        Just("--workers".to_string()),
        Just("-c".to_string()),
        Just("--".to_string()),
        Just("--reuse-port".to_string()),
        Just("--proxy-protocol".to_string()),
        "[a-z0-9.:/_]{1,12}",
        "-b[0-9.:]{1,10}",
        "--bind=[0-9.:]{0,10}",
        "-[DR]{1,2}b[0-9.:]{1,8}",
        "-[DR]{1,2}w[0-9]{1,2}",
        "-?[0-9]{1,3}",
    ]
}

proptest! {
    #[test]
    fn exactly_one_bind_right_after_the_program(args in proptest::collection::vec(token(), 0..12)) {
        let mut cmd = vec!["gunicorn".to_string()];
        cmd.extend(args.clone());
        let a = assemble(&cmd, ANY.into(), 8001).unwrap();
        let at = 1 + gunicorn_args::remove_binds(&args).bind_at;
        prop_assert_eq!(&a.argv[at..at + 2], &["--bind".to_string(), "0.0.0.0:8001".into()][..]);
        if at > 1 {
            // Only ever right after a bare `--proxy-protocol`.
            prop_assert_eq!(a.argv[at - 1].as_str(), "--proxy-protocol");
        }
        // No further bind option before a user's `--`.
        let mut rest = a.argv[1..].to_vec();
        rest.drain(at - 1..at + 1);
        let end = rest.iter().position(|t| t == "--").unwrap_or(rest.len());
        let again = gunicorn_args::remove_binds(&rest[..end]);
        prop_assert!(again.removed.is_empty(), "left a bind or daemon: {:?}", a.argv);
    }

    #[test]
    fn every_other_token_survives_in_order(args in proptest::collection::vec(token(), 0..12)) {
        let filtered = gunicorn_args::remove_binds(&args);
        // The kept tokens are a subsequence of the input, except for
        // clusters that lost a letter (they shrink, never vanish unless
        // they held only bind/daemon letters).
        let mut it = args.iter();
        for kept in &filtered.args {
            let found = it.any(|a| a == kept || (a.starts_with('-') && !a.starts_with("--") && kept.starts_with('-') && a.len() > kept.len()) || (a.contains('=') && kept.starts_with('=')));
            prop_assert!(found, "{:?} not from {:?}", kept, args);
        }
        // Everything after `--` is untouched.
        if let Some(p) = args.iter().position(|t| t == "--") {
            let q = filtered.args.iter().position(|t| t == "--").unwrap();
            prop_assert_eq!(&filtered.args[q..], &args[p..]);
        }
        // Non-bind, non-daemon options outside clusters survive exactly.
        let end = args.iter().position(|t| t == "--").unwrap_or(args.len());
        let keep = |t: &&String| t.starts_with("--") && !is_bind_or_daemon(t) && *t != "--";
        prop_assert_eq!(
            args[..end].iter().filter(keep).count(),
            filtered.args.iter().take_while(|t| *t != "--").filter(keep).count()
        );
    }
}
