use super::*;

fn v(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| s.to_string()).collect()
}

fn kept(args: &[&str]) -> Vec<String> {
    remove_binds(&v(args)).args
}

fn addresses(args: &[&str]) -> Vec<Option<String>> {
    remove_binds(&v(args))
        .removed
        .into_iter()
        .filter_map(|r| match r {
            Removed::Bind { address, .. } => Some(address),
            Removed::Daemon { .. } => None,
        })
        .collect()
}

#[test]
fn every_bind_spelling_is_removed_with_its_value() {
    let cases: &[&[&str]] = &[
        &["-b", "127.0.0.1:8001"],
        &["-b127.0.0.1:8001"],
        &["-b=127.0.0.1:8001"],
        &["--bind", "127.0.0.1:8001"],
        &["--bind=127.0.0.1:8001"],
        &["--bi", "127.0.0.1:8001"],
        &["--bi=127.0.0.1:8001"],
        &["--bin", "127.0.0.1:8001"],
        &["--bin=127.0.0.1:8001"],
    ];
    for case in cases {
        let f = remove_binds(&v(case));
        assert!(f.args.is_empty(), "{case:?} left {:?}", f.args);
        assert_eq!(
            addresses(case),
            vec![Some("127.0.0.1:8001".to_string())],
            "{case:?}"
        );
    }
}

#[test]
fn clustered_short_flags_lose_only_bind_and_daemon() {
    assert_eq!(kept(&["-DbX"]), Vec::<String>::new());
    assert_eq!(kept(&["-RbX"]), v(&["-R"]));
    assert_eq!(kept(&["-Rb", "X", "app"]), v(&["-R", "app"]));
    assert_eq!(kept(&["-RDw3"]), v(&["-Rw3"]));
    assert_eq!(kept(&["-Dw3"]), v(&["-w3"]));
    assert_eq!(kept(&["-D", "-R"]), v(&["-R"]));
    assert_eq!(addresses(&["-Db=X"]), vec![Some("=X".to_string())]);
    assert_eq!(addresses(&["-bind"]), vec![Some("ind".to_string())]);
}

#[test]
fn a_value_that_would_change_meaning_stays_a_separate_token() {
    // `-Dw=3` gives workers "=3"; `-w=3` would give "3". Keep "=3".
    assert_eq!(kept(&["-Dw=3"]), v(&["-w", "=3"]));
}

#[test]
fn daemon_in_every_spelling_is_removed() {
    for d in ["-D", "--daemon", "--da", "--dae", "--daem", "--daemo"] {
        let f = remove_binds(&v(&[d, "app:app"]));
        assert_eq!(f.args, v(&["app:app"]), "{d}");
        assert!(matches!(f.removed[..], [Removed::Daemon { .. }]), "{d}");
    }
}

#[test]
fn ambiguous_and_unknown_options_pass_through() {
    assert_eq!(kept(&["--b", "x"]), v(&["--b", "x"]));
    assert_eq!(kept(&["--d"]), v(&["--d"]));
    assert_eq!(kept(&["--nonsense", "-z"]), v(&["--nonsense", "-z"]));
}

#[test]
fn values_of_other_options_are_never_read_as_binds() {
    assert_eq!(kept(&["--name", "-1"]), v(&["--name", "-1"]));
    assert_eq!(kept(&["-n", "bind"]), v(&["-n", "bind"]));
    assert_eq!(
        kept(&["--access-logformat", "%(h)s -b"]),
        v(&["--access-logformat", "%(h)s -b"])
    );
    assert_eq!(
        kept(&["-c", "gunicorn.conf.py", "-w", "3"]),
        v(&["-c", "gunicorn.conf.py", "-w", "3"])
    );
    assert_eq!(
        kept(&["--proxy-protocol", "app:x"]),
        v(&["--proxy-protocol", "app:x"])
    );
}

#[test]
fn a_bind_token_with_a_space_is_still_a_bind() {
    // argparse matches the `-b` prefix before it looks for spaces.
    assert_eq!(
        kept(&["--access-logformat", "-b %(h)s"]),
        v(&["--access-logformat"])
    );
}

#[test]
fn after_double_dash_everything_is_positional() {
    assert_eq!(
        kept(&["-w", "2", "--", "-b", "x"]),
        v(&["-w", "2", "--", "-b", "x"])
    );
}

#[test]
fn a_bind_without_a_value_is_removed_alone() {
    let f = remove_binds(&v(&["-b", "--workers", "3"]));
    assert_eq!(f.args, v(&["--workers", "3"]));
    assert_eq!(addresses(&["-b", "--workers", "3"]), vec![None]);
}

#[test]
fn several_binds_all_go_and_are_reported_in_order() {
    let f = remove_binds(&v(&["-b", "a:1", "app", "--bind=b:2", "-bc:3", "-w", "3"]));
    assert_eq!(f.args, v(&["app", "-w", "3"]));
    assert_eq!(
        f.removed,
        vec![
            Removed::Bind {
                spelling: "-b a:1".into(),
                address: Some("a:1".into())
            },
            Removed::Bind {
                spelling: "--bind=b:2".into(),
                address: Some("b:2".into())
            },
            Removed::Bind {
                spelling: "-bc:3".into(),
                address: Some("c:3".into())
            },
        ]
    );
}

#[test]
fn an_optional_value_option_stays_bare_when_a_bind_after_it_goes() {
    // `--proxy-protocol -b x app`: gunicorn reads proxy_protocol as
    // bare; with the bind gone it would swallow `app`, so the launcher's
    // bind takes the removed one's place and nothing moves.
    let at = |args: &[&str]| {
        let f = remove_binds(&v(args));
        (f.args, f.bind_at)
    };
    assert_eq!(
        at(&["--proxy-protocol", "-b", "x", "app", "-w", "3"]),
        (v(&["--proxy-protocol", "app", "-w", "3"]), 1)
    );
    assert_eq!(
        at(&["-w", "3", "--proxy-p", "-D", "app", "--", "x"]),
        (v(&["-w", "3", "--proxy-p", "app", "--", "x"]), 3)
    );
    // Followed by `--`, by another option or by nothing: bare already.
    for args in [
        &["-R", "--proxy-protocol", "-D", "--", "app"][..],
        &["--proxy-protocol=v1", "--proxy-protocol", "--", "app"],
        &["--proxy-protocol", "-b", "x", "-w", "3"],
        &["app", "--proxy-protocol", "-b", "x"],
    ] {
        let f = remove_binds(&v(args));
        assert_eq!(f.bind_at, 0, "{args:?}");
        let kept: Vec<&str> = args
            .iter()
            .copied()
            .filter(|t| !["-b", "x", "-D"].contains(t))
            .collect();
        assert_eq!(f.args, v(&kept), "{args:?}");
    }
    // One that took a value is not bare.
    assert_eq!(at(&["--proxy-protocol", "app", "-b", "x"]).1, 0);
}

#[test]
fn a_short_option_with_an_empty_value_keeps_its_equals_sign() {
    // Found by fuzzing (fuzz/ assemble target): `-n=` gives gunicorn an
    // empty name and leaves `app:app` the app; rebuilt as `-n` it took
    // `app:app` as the name, and gunicorn had no app to run.
    assert_eq!(kept(&["-n=", "app:app"]), v(&["-n=", "app:app"]));
    assert_eq!(kept(&["-k=", "-w", "3"]), v(&["-k=", "-w", "3"]));
    assert_eq!(kept(&["-Dn=", "app:app"]), v(&["-n", "=", "app:app"]));
}

#[test]
fn negative_numbers_are_arguments() {
    for t in ["-1", "-12", "-.5", "-1.5"] {
        assert!(is_negative_number(t), "{t}");
    }
    for t in ["-", "-a", "-1.", "--1", "-1.2.3"] {
        assert!(!is_negative_number(t), "{t}");
    }
}

#[test]
fn option_values_are_read_in_every_spelling() {
    let val = |a: &[&str]| option_value(&v(a), "graceful-timeout");
    assert_eq!(val(&["--graceful-timeout", "60", "app"]), Some("60".into()));
    assert_eq!(val(&["--graceful-timeout=45"]), Some("45".into()));
    assert_eq!(
        val(&["--gra", "50", "--graceful-timeout", "70"]),
        Some("70".into())
    );
    assert_eq!(val(&["-w", "3", "--graceful-timeout"]), None);
    assert_eq!(val(&["--access-logformat", "--graceful-timeout 9"]), None);
    assert_eq!(val(&["--", "--graceful-timeout", "9"]), None);
    assert_eq!(
        option_value(&v(&["-Rw3", "-t", "40"]), "workers"),
        Some("3".into())
    );
    assert_eq!(
        option_value(&v(&["-t", "40"]), "timeout"),
        Some("40".into())
    );
}
