//! Properties shared by the fuzz targets.
//!
//! Which tokens are binds is not judged here: asking
//! `gunicorn_args::remove_binds` would ask the function under test, which
//! would be blind to its own mistakes. The independent judgement is
//! gunicorn's own parser, in `tests/argparse_differential.rs`: it reads the
//! original and the assembled arguments of generated command lines and of
//! every input in `corpus/assemble` and `seeds/assemble` (decoded with
//! `input.rs`), and requires exactly one bind, ours, no daemon, and every
//! other setting unchanged. The fuzz targets check what needs no parser.

use gunicorn_launcher::command;
use gunicorn_launcher::launch;
use std::net::IpAddr;

/// What `assemble` promises about its output that can be checked without a
/// model of gunicorn's parser, for `command` run with the launcher's bind
/// `host:port`:
///
/// - it assembles exactly when `launch::recognise` accepts the command, with
///   the same launch form;
/// - the program tokens are kept, and `--bind HOST:PORT` follows them, or
///   follows a bare `--proxy-protocol` (any prefix) that it keeps bare;
/// - arguments that cannot hold a bind or daemon option (no token before a
///   `--` starts with `--b`, `--d`, or is a single-dash token with a `b` or
///   `D` in it) come out verbatim, our bind aside;
/// - a user's `--` and everything after it come out verbatim, at the end;
/// - assembling the output again gives the same argv and a single
///   "already binds" note that is not a warning (the launcher wrapping its
///   own output is stable, and finds nothing more to remove).
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
    assert_eq!(again.argv, a.argv, "assembling the output again changed it");
    assert_eq!(again.notes.len(), 1, "{:?}", again.notes);
    assert!(!again.notes[0].warning, "{:?}", again.notes);
}

fn check_output(command: &[String], a: &command::Assembled, ours: &str) {
    let plen = a.launch.program_len;
    assert!(plen >= 1 && plen <= command.len(), "program_len {plen}");
    assert_eq!(a.argv[..plen], command[..plen], "program tokens changed");
    let bind = ["--bind".to_string(), ours.to_string()];
    let at = plen
        + a.argv[plen..]
            .windows(2)
            .position(|w| w == bind)
            .unwrap_or_else(|| panic!("no bind of ours: {:?}", a.argv));
    assert!(
        at == plen || is_proxy_protocol(&a.argv[at - 1]),
        "our bind is neither right after the program nor after a bare --proxy-protocol: {:?}",
        a.argv
    );
    let mut rest = a.argv[plen..].to_vec();
    rest.drain(at - plen..at - plen + 2);
    let rest = &rest[..];
    let args = &command[plen..];

    // A command line that cannot hold a bind or daemon comes out verbatim.
    let end = args.iter().position(|t| t == "--").unwrap_or(args.len());
    if args[..end].iter().all(|t| cannot_be_bind_or_daemon(t)) {
        assert_eq!(rest, args, "nothing to remove, yet the arguments changed");
    }

    // A user's `--` and what follows it are untouched.
    if end < args.len() {
        let tail = &args[end..];
        assert!(
            a.argv.ends_with(tail),
            "the user's `--` tail changed: {:?}",
            a.argv
        );
        let q = rest.iter().position(|t| t == "--").expect("`--` lost");
        assert_eq!(&rest[q..], tail, "`--` moved: {:?}", a.argv);
    }
}

/// A token that argparse cannot read as (or as holding) `-b`, `--bind`,
/// `-D`, `--daemon` or a prefix of them: not an option at all, a long option
/// that starts with neither `--b` nor `--d`, or a single-dash token without a
/// `b` or `D` (a short-option cluster holds the letter). Conservative: many
/// tokens it rejects hold no bind.
fn cannot_be_bind_or_daemon(t: &str) -> bool {
    match t.strip_prefix("--") {
        Some(long) => !long.starts_with(['b', 'd']),
        None => !t.starts_with('-') || !t.contains(['b', 'D']),
    }
}

/// `--proxy-protocol` or an unambiguous prefix of it (`--proxy-p`...).
pub fn is_proxy_protocol(t: &str) -> bool {
    t.len() >= "--proxy-p".len() && "--proxy-protocol".starts_with(t)
}
