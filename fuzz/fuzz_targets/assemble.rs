//! Command assembly: `command::assemble` and `command::env_changes`.
//!
//! Input: see `input.rs` (the launcher's bind, `NAME=VALUE` environment
//! lines, then the command, one token per line).
//!
//! Which words are binds is not judged here (that would ask the function
//! under test): `tests/argparse_differential.rs` runs this target's corpus
//! and seeds through gunicorn's own parser.

#![no_main]

use gunicorn_launcher::command::{self, EnvChange, SCRUBBED};
use gunicorn_launcher::pyshlex;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;
#[path = "input.rs"]
mod input;

fuzz_target!(|data: &[u8]| {
    let input = input::decode(data);
    common::check_assemble(&input.command, input.host, input.port);
    check_env(&input.env, &command::bind_value(input.host, input.port));
});

/// `env_changes`: the scrubbed variables are unset, nothing else is touched
/// but GUNICORN_CMD_ARGS; only a value that Python's `shlex.split` refuses
/// (`pyshlex::split`), or one with a NUL, is refused; a rewritten value is
/// one that `shlex.split` reads, whose words are the original's in order
/// (a cluster may have lost a letter), and rewriting it again changes
/// nothing. Whether the right words went is gunicorn's parser's call, in
/// `tests/argparse_differential.rs`.
fn check_env(env: &[(String, String)], ours: &str) {
    let Ok((changes, _notes)) = command::env_changes(env, ours) else {
        let (_, v) = env
            .iter()
            .find(|(n, _)| n == "GUNICORN_CMD_ARGS")
            .expect("refused an environment without GUNICORN_CMD_ARGS");
        assert!(
            pyshlex::split(v).is_err() || v.contains('\0'),
            "refused {v:?}"
        );
        return;
    };
    for (name, value) in env {
        let change: Vec<&EnvChange> = changes
            .iter()
            .filter(|c| match c {
                EnvChange::Unset(n) | EnvChange::Set(n, _) => n == name,
            })
            .collect();
        if SCRUBBED.contains(&name.as_str()) {
            assert_eq!(change, [&EnvChange::Unset(name.clone())]);
        } else if name == "GUNICORN_CMD_ARGS" {
            let words = pyshlex::split(value).expect("accepted an unsplittable value");
            let written = match change.as_slice() {
                [] => continue,
                [EnvChange::Unset(_)] => Vec::new(),
                [EnvChange::Set(_, v)] => pyshlex::split(v).expect("wrote an unsplittable value"),
                other => panic!("several changes: {other:?}"),
            };
            // Our own bind, put back only to keep a bare `--proxy-protocol` bare.
            let mut after = written.clone();
            if let Some(at) = after
                .windows(3)
                .position(|w| common::is_proxy_protocol(&w[0]) && w[1] == "--bind" && w[2] == ours)
            {
                after.drain(at + 1..at + 3);
            }
            assert!(
                after.len() < words.len() || after.iter().zip(&words).any(|(a, w)| a != w),
                "rewrote {value:?} to the same words"
            );
            // In order; a cluster may have shrunk, or split in two
            // (`-Dn=x` to `-n` `=x`).
            let mut at = 0;
            for kept in &after {
                let found = words[at..].iter().position(|w| shrunk(w, kept));
                let Some(found) = found else {
                    panic!("{kept:?} is not from {value:?} in order: {after:?}");
                };
                at += found;
            }
            let again = [(name.clone(), pyshlex::join(&written))];
            let (more, notes) = command::env_changes(&again, ours).expect("refused its own output");
            assert!(
                more.is_empty() && notes.is_empty(),
                "rewriting {value:?} again changed {more:?}"
            );
        } else {
            assert!(change.is_empty(), "changed {name}");
        }
    }
}

/// `kept` is `word`, or `word` with some characters left out (a short-option
/// cluster that lost a letter: `-RDw3` to `-Rw3`).
fn shrunk(word: &str, kept: &str) -> bool {
    let mut rest = word.chars();
    kept.chars().all(|k| rest.any(|c| c == k))
}
