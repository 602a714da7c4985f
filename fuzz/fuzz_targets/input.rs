//! How the `assemble` target reads its input bytes; shared with
//! `tests/argparse_differential.rs`, which feeds the checked-in corpus and
//! seeds of this target to gunicorn's own parser.
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

use std::net::{IpAddr, SocketAddr};

/// One decoded input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input {
    /// The launcher's bind.
    pub host: IpAddr,
    pub port: u16,
    /// The environment, each name once (the first line that sets it).
    pub env: Vec<(String, String)>,
    /// The command: program and arguments.
    pub command: Vec<String>,
}

fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Decodes the bytes of one `assemble` input (see the module doc).
pub fn decode(data: &[u8]) -> Input {
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
    Input {
        host,
        port,
        env,
        command,
    }
}
