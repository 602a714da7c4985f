//! Properties shared by the fuzz targets.

use gunicorn_launcher::command::{self, Assembled};
use gunicorn_launcher::gunicorn_args::{self, Removed};
use gunicorn_launcher::launch;
use std::net::IpAddr;

/// Everything `assemble` promises about its output, for `command` run with
/// the launcher's bind `host:port`:
///
/// - it assembles exactly when `launch::recognise` accepts the command;
/// - the program tokens are kept, and `--bind HOST:PORT` follows them;
/// - read as gunicorn reads it (`remove_binds` from the program on), the
///   output holds exactly one bind, ours, and no daemon flag;
/// - the arguments after our bind hold no bind or daemon before a user's
///   `--`, and filtering them again changes nothing*;
/// - arguments with no bind or daemon in them come out verbatim*;
/// - a user's `--` and everything after it come out verbatim, at the end;
/// - assembling the output again gives the same argv* and a single
///   "already binds" note (the launcher wrapping its own output is stable).
///
/// *: up to where a bare `--proxy-protocol` stands (see
/// [`assert_same_but_moves`]).
pub fn check_assemble(command: &[String], host: IpAddr, port: u16) {
    let ours = command::bind_value(host, port);
    let result = command::assemble(command, host, port);
    let recognised = launch::recognise(command);
    let a = match result {
        Err(e) => {
            assert!(recognised.is_err(), "refused a recognised command: {e}");
            assert!(!e.is_empty());
            return;
        }
        Ok(a) => a,
    };
    assert_eq!(Ok(&a.launch), recognised.as_ref());
    check_output(command, &a, &ours);

    let again = command::assemble(&a.argv, host, port).expect("its own output is refused");
    assert_same_but_moves(
        &again.argv,
        &a.argv,
        "assembling the output again changed it",
    );
    assert_eq!(again.notes.len(), 1, "{:?}", again.notes);
    assert!(!again.notes[0].warning, "{:?}", again.notes);
}

fn check_output(command: &[String], a: &Assembled, ours: &str) {
    let plen = a.launch.program_len;
    assert!(plen >= 1 && plen <= command.len(), "program_len {plen}");
    assert_eq!(a.argv[..plen], command[..plen], "program tokens changed");
    assert_eq!(
        a.argv[plen..plen + 2],
        ["--bind".to_string(), ours.to_string()],
        "our bind is not right after the program: {:?}",
        a.argv
    );

    // Exactly one bind, ours, as gunicorn's parser would read the arguments.
    let seen = gunicorn_args::remove_binds(&a.argv[plen..]);
    assert_eq!(
        seen.removed,
        vec![Removed::Bind {
            spelling: format!("--bind {ours}"),
            address: Some(ours.to_string()),
        }],
        "not exactly one bind in {:?}",
        a.argv
    );

    // Nothing left to remove after our bind (remove_binds stops at `--`).
    let rest = &a.argv[plen + 2..];
    let left = gunicorn_args::remove_binds(rest);
    assert!(
        left.removed.is_empty(),
        "bind or daemon left: {:?} in {:?}",
        left.removed,
        a.argv
    );
    assert_same_but_moves(&left.args, rest, "filtering the output again changed it");

    // A command line without a bind or daemon comes out verbatim.
    let args = &command[plen..];
    if gunicorn_args::remove_binds(args).removed.is_empty() {
        assert_same_but_moves(rest, args, "nothing to remove, yet the arguments changed");
    }

    // A user's `--` and what follows it are untouched.
    if let Some(p) = args.iter().position(|t| t == "--") {
        let tail = &args[p..];
        assert!(
            a.argv.ends_with(tail),
            "the user's `--` tail changed: {:?}",
            a.argv
        );
        let q = rest.iter().position(|t| t == "--").expect("`--` lost");
        assert_eq!(&rest[q..], tail, "`--` moved: {:?}", a.argv);
    }
}

/// `a` and `b` hold the same tokens in the same order, except that bare
/// `--proxy-protocol` spellings may stand elsewhere. `remove_binds` moves a
/// bare one that stands right before `--` in front of an earlier option,
/// where it stays bare, even when nothing was removed; with two of them
/// before `--`, each pass moves the other, so the order is not a fixed
/// point (the meaning to gunicorn is the same).
fn assert_same_but_moves(a: &[String], b: &[String], what: &str) {
    let fixed = |v: &[String]| -> Vec<String> {
        v.iter()
            .filter(|t| !is_proxy_protocol(t))
            .cloned()
            .collect()
    };
    assert!(
        a.len() == b.len() && fixed(a) == fixed(b),
        "{what}: {a:?} vs {b:?}"
    );
}

/// `--proxy-protocol` or an unambiguous prefix of it (`--proxy-p`...).
fn is_proxy_protocol(t: &str) -> bool {
    t.len() >= "--proxy-p".len() && "--proxy-protocol".starts_with(t)
}
