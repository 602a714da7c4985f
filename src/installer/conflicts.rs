//! What else claims a unit's port, refused before anything is written: another unit that
//! would serve the same port, and a `.socket` unit that holds it.

use super::plan::{Plan, Wrap};
use super::status::{Kind, survey};
use super::systemctl;
use crate::error::Failure;
use crate::unit::{UnitIndex, UnitName};
use crate::{exit, unit};
use std::path::Path;

/// Two units that would end up on one port would fight for it (the second
/// gunicorn's bind fails): refused before anything is written. A template
/// and its instances are one unit here; units already wrapped count too.
pub(super) fn refuse_shared_ports(root: &Path, plan: &Plan) -> Result<(), Failure> {
    let family = |u: &UnitName| u.template().unwrap_or_else(|| u.clone());
    let mut taken: Vec<(u16, UnitName)> = plan
        .wraps
        .iter()
        .map(|w| (w.port, family(&w.unit)))
        .collect();
    // Wrapped units: their port is on their command line. (A launcher unit of its own, such
    // as gunicorn-launcher@.service, takes its port from a config file not read here.)
    let (surveyed, _) = survey(root);
    for s in surveyed {
        if let (Kind::Wrapped, Some(port)) = (s.kind, s.port)
            && !plan
                .wraps
                .iter()
                .any(|w| family(&w.unit) == family(&s.unit))
        {
            taken.push((port, family(&s.unit)));
        }
    }
    taken.sort();
    taken.dedup();
    for pair in taken.windows(2) {
        if pair[0].0 == pair[1].0 {
            return Err(Failure::config(format!(
                "{} and {} would both serve port {}: the second gunicorn could not bind it; \
                 give one of them another port (its --bind), then install again (nothing was written)",
                pair[0].1, pair[1].1, pair[0].0
            )));
        }
    }
    Ok(())
}

/// A `.socket` unit listening on `port`: systemd would hold the port, gunicorn's own bind
/// would fail (and the launcher does not take inherited sockets).
#[derive(Debug, Clone)]
pub struct SocketHolder {
    pub socket: UnitName,
    pub at: String,
    pub listen: String,
    /// Named like the service or listed in its `Sockets=`: starting the service starts it.
    pub associated: bool,
    /// Written by `install --socket-unit` (for another unit).
    pub ours: bool,
}

pub fn sockets_on_port(root: &Path, wrap: &Wrap) -> Vec<SocketHolder> {
    let index = UnitIndex::new(root);
    let own_sockets: Vec<String> = index
        .load(&wrap.unit)
        .map(|u| {
            unit::effective(&u, "Unit", "Sockets")
                .into_iter()
                .chain(unit::effective(&u, "Service", "Sockets"))
                .flat_map(|(v, _, _)| v.split_whitespace().map(String::from).collect::<Vec<_>>())
                .collect()
        })
        .unwrap_or_default();
    let same_name = format!("{}.socket", wrap.unit.as_str().trim_end_matches(".service"));
    let mut found = Vec::new();
    for socket in index.units_of_type("socket") {
        let Ok(loaded) = index.load(&socket) else {
            continue;
        };
        for (value, file, line) in unit::effective(&loaded, "Socket", "ListenStream") {
            if listen_port(&value) == Some(wrap.port) {
                let ours = std::fs::read(&file)
                    .is_ok_and(|b| b.starts_with(super::dropin::MARK.as_bytes()));
                found.push(SocketHolder {
                    ours,
                    associated: socket.as_str() == same_name
                        || own_sockets.iter().any(|s| s == socket.as_str()),
                    socket: socket.clone(),
                    at: format!("{}:{line}", file.display()),
                    listen: value,
                });
            }
        }
    }
    found
}

/// `ListenStream=` → its TCP port: `8001`, `0.0.0.0:8001`, `[::]:8001`.
pub(super) fn listen_port(value: &str) -> Option<u16> {
    if value.starts_with('/') || value.starts_with('@') || value.starts_with("vsock:") {
        return None;
    }
    let port = value.rsplit_once(':').map_or(value, |(_, p)| p);
    port.parse().ok()
}

/// A `.socket` unit on the port makes gunicorn's own bind fail; refuse before writing.
pub(super) fn refuse_socket_holders(root: &Path, plan: &Plan, live: bool) -> Result<(), Failure> {
    for wrap in &plan.wraps {
        let ours = wrap.socket.as_ref().map(|s| s.name.clone());
        for holder in sockets_on_port(root, wrap) {
            if Some(&holder.socket) == ours.as_ref() {
                continue;
            }
            let name = holder.socket.as_str();
            // Root mode cannot tell whether it runs: refuse, to be safe.
            let in_use = holder.associated
                || !live
                || systemctl::is_running(name)
                || systemctl::is_enabled(name);
            if in_use && holder.ours {
                return Err(Failure::config(format!(
                    "{}: {name} listens on port {} ({}): gunicorn-launcher install --socket-unit wrote \
                     it for another unit, and two units cannot serve one port; give {} another port \
                     (its --bind), or uninstall the unit {name} belongs to first",
                    wrap.unit, wrap.port, holder.at, wrap.unit
                )));
            }
            if in_use {
                return Err(Failure {
                    code: exit::CONFIG,
                    message: format!(
                        "{}: {name} listens on port {} ({}, ListenStream={}): systemd would hold \
                         the port and gunicorn's own bind would fail with \"Address already in \
                         use\"; stop and disable it (systemctl disable --now {name}) or move it \
                         to another port, then install again (or remove it and use install \
                         --socket-unit, whose socket unit passes the port to the launcher)",
                        wrap.unit, wrap.port, holder.at, holder.listen
                    ),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
