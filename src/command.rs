//! Command assembly: the user's gunicorn command in, the command we run out.
//!
//! Pure functions only (argv and environment in, argv, environment changes
//! and log lines out), so that every bind rule (README "What `run` does to
//! gunicorn's environment", docs/gunicorn-facts.md "Binds") is unit- and
//! property-tested without starting a process.

use crate::gunicorn_args::{self, Removed};
use crate::launch::{self, Launch};
use crate::pyshlex;
use std::net::{IpAddr, SocketAddr};

/// The command to run, and what was changed to get there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assembled {
    pub launch: Launch,
    pub argv: Vec<String>,
    /// One line per change, in the user's spelling, for the log.
    pub notes: Vec<Note>,
}

/// A change worth one log line; `warning` when it overrode the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub warning: bool,
    pub text: String,
}

/// gunicorn's notation for a bind address (`[::]:8001` for IPv6).
pub fn bind_value(host: IpAddr, port: u16) -> String {
    SocketAddr::new(host, port).to_string()
}

/// Puts `--bind HOST:PORT` right after the program (never at the end: after
/// a user's `--` it would be an app name) and removes every other bind and
/// every daemon flag. The one exception: after a `--proxy-protocol` that the
/// removed bind kept bare, where the removed bind stood (see
/// [`gunicorn_args::Filtered::bind_at`]).
pub fn assemble(command: &[String], host: IpAddr, port: u16) -> Result<Assembled, String> {
    let launch = launch::recognise(command)?;
    let (program, args) = command.split_at(launch.program_len);
    let ours = bind_value(host, port);
    let filtered = gunicorn_args::remove_binds(args);
    let (before, after) = filtered.args.split_at(filtered.bind_at);
    let mut argv = program.to_vec();
    argv.extend_from_slice(before);
    argv.extend(["--bind".to_owned(), ours.clone()]);
    argv.extend_from_slice(after);
    let notes = filtered
        .removed
        .iter()
        .map(|r| describe(r, &ours, "the command line"))
        .collect();
    Ok(Assembled {
        launch,
        argv,
        notes,
    })
}

fn describe(removed: &Removed, ours: &str, place: &str) -> Note {
    match removed {
        Removed::Bind {
            address: Some(a), ..
        } if a == ours => Note {
            warning: false,
            text: format!("{place} already binds {ours}; kept it once"),
        },
        Removed::Bind {
            address: Some(a),
            spelling,
        } if a.starts_with("fd://") => Note {
            warning: true,
            text: format!(
                "removed {spelling} from {place}: an fd:// bind makes gunicorn ignore every other bind; binding {ours}"
            ),
        },
        Removed::Bind {
            spelling,
            address: Some(_),
        } => Note {
            warning: true,
            text: if place == "the command line" {
                format!("replaced {spelling} with {ours}")
            } else {
                format!("replaced {spelling} in {place} with {ours}")
            },
        },
        Removed::Bind {
            spelling,
            address: None,
        } => Note {
            warning: true,
            text: format!("removed {spelling} (no address) from {place}"),
        },
        Removed::Daemon { spelling } => Note {
            warning: true,
            text: format!(
                "removed {spelling} from {place}: a daemonising gunicorn would look dead to its supervisor"
            ),
        },
    }
}

/// A change to the child's environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvChange {
    Unset(String),
    Set(String, String),
}

/// Variables that would hand gunicorn a socket or a notify target that is
/// not ours: inherited listeners make it skip its own bind, and systemd's
/// NOTIFY_SOCKET would let it declare readiness before we verified anything.
pub const SCRUBBED: &[&str] = &[
    "GUNICORN_FD",
    "GUNICORN_PID",
    "LISTEN_PID",
    "LISTEN_FDS",
    "LISTEN_FDNAMES",
    "NOTIFY_SOCKET",
];

/// The changes to make to the launcher's environment for gunicorn: drop the
/// variables above, and the bind and daemon options inside
/// `GUNICORN_CMD_ARGS` (gunicorn reads it with Python's `shlex.split` and the
/// same parser as its command line; [`pyshlex`] splits it the same way, `#`
/// included, and writes it back with `shlex.join`). Returns the notes to log
/// as well.
pub fn env_changes(
    env: &[(String, String)],
    ours: &str,
) -> Result<(Vec<EnvChange>, Vec<Note>), String> {
    let mut changes = Vec::new();
    let mut notes = Vec::new();
    for (name, value) in env {
        if SCRUBBED.contains(&name.as_str()) {
            changes.push(EnvChange::Unset(name.clone()));
        } else if name == "GUNICORN_CMD_ARGS" {
            let words = pyshlex::split(value).map_err(|e| {
                format!("GUNICORN_CMD_ARGS={value:?} cannot be split as gunicorn splits it (Python shlex.split: {e}); fix or unset it")
            })?;
            let filtered = gunicorn_args::remove_binds(&words);
            if filtered.removed.is_empty() {
                continue;
            }
            let mut kept = filtered.args;
            if filtered.bind_at != 0 {
                // A `--proxy-protocol` that the removed bind kept bare: the
                // launcher's own bind takes its place, as on the command
                // line. It changes nothing: gunicorn lets the command line's
                // bind, always ours, replace the one in GUNICORN_CMD_ARGS.
                kept.splice(
                    filtered.bind_at..filtered.bind_at,
                    ["--bind".to_owned(), ours.to_owned()],
                );
            }
            let change = if kept.is_empty() {
                EnvChange::Unset(name.clone())
            } else {
                let joined = pyshlex::join(&kept);
                if joined == *value {
                    // Only our own bind, where it keeps `--proxy-protocol` bare.
                    continue;
                }
                if joined.contains('\0') {
                    return Err(
                        "GUNICORN_CMD_ARGS cannot be rewritten: it contains a NUL byte; fix or unset it"
                            .into(),
                    );
                }
                EnvChange::Set(name.clone(), joined)
            };
            changes.push(change);
            notes.extend(
                filtered
                    .removed
                    .iter()
                    .map(|r| describe(r, ours, "GUNICORN_CMD_ARGS")),
            );
        }
    }
    Ok((changes, notes))
}

#[cfg(test)]
mod tests {
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
}
