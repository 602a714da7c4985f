//! What a unit's gunicorn command binds: a TCP port (carried over), a unix socket (left
//! alone), nothing (gunicorn's default, 127.0.0.1:8000), or an address systemd expands.

use crate::config::DEFAULT_PORT;
use crate::gunicorn_args;

/// gunicorn's own default bind, `127.0.0.1:8000`, when nothing names one.
pub const GUNICORN_DEFAULT_PORT: u16 = 8000;

/// What a unit's gunicorn command line binds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Binding {
    /// TCP: the port the launcher keeps (so a service on 8002 stays on 8002).
    Tcp(u16),
    /// A unix socket or `fd://` (systemd's): the first such address.
    Socket(String),
    /// No bind: gunicorn's config file or default decides.
    Unset,
    /// A bind whose port systemd expands (`${PORT}`, `%i`): the address.
    Expanded(String),
}

/// The command line's binds, classified; a socket that is not TCP wins (the
/// launcher would remove it), then TCP ports, then expanded ones.
pub(super) fn binding(args: &[String], notes: &mut Vec<String>) -> Binding {
    let mut ports: Vec<u16> = Vec::new();
    let mut socket = None;
    let mut expanded = None;
    for removed in gunicorn_args::remove_binds(args).removed {
        let gunicorn_args::Removed::Bind {
            address: Some(a), ..
        } = removed
        else {
            continue;
        };
        if a.starts_with("unix:") || a.starts_with("fd://") || a.starts_with('/') {
            socket.get_or_insert(a);
        } else if let Some(p) = tcp_port(&a) {
            if !ports.contains(&p) {
                ports.push(p);
            }
        } else {
            expanded.get_or_insert(a);
        }
    }
    if let Some(a) = socket {
        return Binding::Socket(a);
    }
    match (ports.as_slice(), expanded) {
        ([], None) => Binding::Unset,
        ([], Some(a)) => Binding::Expanded(a),
        ([one], _) => Binding::Tcp(*one),
        (several, _) => {
            let chosen = if several.contains(&DEFAULT_PORT) {
                DEFAULT_PORT
            } else {
                several[0]
            };
            notes.push(format!(
                "it binds several ports ({}); the launcher serves one: {chosen}",
                several
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            Binding::Tcp(chosen)
        }
    }
}

/// The port a unit's gunicorn command line leaves the launcher on, if any.
pub(super) fn port_of(args: &[String]) -> Option<u16> {
    match binding(args, &mut Vec::new()) {
        Binding::Tcp(p) => Some(p),
        Binding::Unset => Some(GUNICORN_DEFAULT_PORT),
        Binding::Expanded(_) => Some(DEFAULT_PORT),
        Binding::Socket(_) => None,
    }
}

/// `HOST:PORT` or `[V6]:PORT` → PORT; unix sockets, `fd://`, `$VARS` → none.
pub(super) fn tcp_port(address: &str) -> Option<u16> {
    if address.starts_with("unix:") || address.starts_with("fd://") {
        return None;
    }
    let address = address.strip_prefix("tcp://").unwrap_or(address);
    let (_, port) = address.rsplit_once(':')?;
    port.parse().ok().filter(|&p| p != 0)
}

#[cfg(test)]
mod tests;
