//! Command assembly: `command::assemble` and `command::env_changes`.
//!
//! Input: UTF-8 text (invalid bytes are replaced), one token per line:
//!
//! ```text
//! [::]:9000                   optional: the launcher's bind (default 0.0.0.0:8001)
//! GUNICORN_CMD_ARGS=-b x:1    optional NAME=VALUE lines: the environment
//! gunicorn                    the command, one argv token per line
//! -w
//! 3
//! ```
//!
//! The environment lines are how a shell reads `NAME=VALUE gunicorn ...`.

#![no_main]

use gunicorn_launcher::command::{self, EnvChange, SCRUBBED};
use gunicorn_launcher::gunicorn_args;
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, SocketAddr};

#[path = "common.rs"]
mod common;

fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines: Vec<&str> = text.split('\n').collect();
    if lines.last() == Some(&"") {
        lines.pop();
    }
    let mut lines = lines.into_iter().peekable();

    let (host, port) = match lines.peek().and_then(|l| l.parse::<SocketAddr>().ok()) {
        Some(addr) => {
            lines.next();
            (addr.ip(), addr.port())
        }
        None => (IpAddr::from([0, 0, 0, 0]), 8001),
    };
    let mut env: Vec<(String, String)> = Vec::new();
    while let Some((name, value)) = lines.peek().and_then(|l| l.split_once('=')) {
        if !is_env_name(name) {
            break;
        }
        lines.next();
        // An environment has each name once.
        if !env.iter().any(|(n, _)| n == name) {
            env.push((name.to_string(), value.to_string()));
        }
    }
    let command: Vec<String> = lines.map(str::to_string).collect();

    common::check_assemble(&command, host, port);
    check_env(&env, &command::bind_value(host, port));
});

/// `env_changes`: the scrubbed variables are unset, nothing else is touched
/// but GUNICORN_CMD_ARGS, and what is left of GUNICORN_CMD_ARGS, read as
/// gunicorn reads it (shlex.split), holds every other word in order and no
/// bind or daemon option.
fn check_env(env: &[(String, String)], ours: &str) {
    let Ok((changes, _notes)) = command::env_changes(env, ours) else {
        // Only an unsplittable or unjoinable GUNICORN_CMD_ARGS is refused.
        let (_, v) = env
            .iter()
            .find(|(n, _)| n == "GUNICORN_CMD_ARGS")
            .expect("refused an environment without GUNICORN_CMD_ARGS");
        assert!(
            shlex::split(v).is_none() || v.contains('\0'),
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
            let words = shlex::split(value).expect("accepted an unsplittable value");
            let expected = gunicorn_args::remove_binds(&words);
            let after = match change.as_slice() {
                [] => {
                    assert!(expected.removed.is_empty(), "bind kept in {value:?}");
                    words.clone()
                }
                [EnvChange::Unset(_)] => Vec::new(),
                [EnvChange::Set(_, v)] => shlex::split(v).expect("wrote an unsplittable value"),
                other => panic!("several changes: {other:?}"),
            };
            assert_eq!(after, expected.args, "GUNICORN_CMD_ARGS {value:?}");
            let left = gunicorn_args::remove_binds(&after);
            assert!(
                left.removed.is_empty(),
                "left {:?} in {after:?}",
                left.removed
            );
        } else {
            assert!(change.is_empty(), "changed {name}");
        }
    }
}
