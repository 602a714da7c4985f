//! The `.socket` unit `install --socket-unit` writes beside the drop-in: systemd holds the
//! service's port open while the service restarts, and passes the socket to the launcher
//! (socket activation), so `systemctl restart` refuses no connection. It has the service's
//! base name (`solvit.socket` for `solvit.service`), which is what makes systemd pass its
//! socket to that service; the drop-in adds `Requires=` and `After=` on it.

use super::dropin::{MARK, read_existing};
use crate::error::Failure;
use crate::unit::{ADMIN_UNIT_DIR, UnitName};
use std::path::{Path, PathBuf};

/// The queue of connections that wait while the service restarts (gunicorn's own default).
const BACKLOG: u32 = 2048;

/// A socket unit to write for a wrapped service.
#[derive(Debug, Clone)]
pub struct SocketUnit {
    pub name: UnitName,
    /// The port it listens on (the service's).
    pub port: u16,
    /// Its file's directory, relative to the root (the administrator's unit directory).
    pub dir: PathBuf,
    pub text: String,
    /// Its current bytes, if a socket unit of ours is there already.
    pub existing: Option<Vec<u8>>,
}

impl SocketUnit {
    pub fn unchanged(&self) -> bool {
        self.existing.as_deref() == Some(self.text.as_bytes())
    }

    pub fn path(&self, root: &Path) -> PathBuf {
        root.join(&self.dir).join(self.name.as_str())
    }

    /// What the service's drop-in adds for it: the service requires the socket and starts
    /// after it.
    pub fn dropin_lines(&self) -> String {
        let name = &self.name;
        format!(
            "# The port is held by {name} while this unit restarts; the launcher takes its socket.\n\
             [Unit]\n\
             Requires={name}\n\
             After={name}\n"
        )
    }

    /// What the install says of it, one sentence.
    pub fn note(&self) -> String {
        format!(
            "{} holds port {} open across restarts (ListenStream=0.0.0.0:{}); the launcher \
             takes its socket from systemd",
            self.name, self.port, self.port
        )
    }
}

/// The socket unit's name for `service`: the same base name, `.socket`.
pub fn name_for(service: &UnitName) -> Result<UnitName, Failure> {
    let base = service.as_str().trim_end_matches(".service");
    UnitName::parse(&format!("{base}.socket")).map_err(|e| Failure::usage(e.to_string()))
}

/// Our socket unit for `service` under `root`, if one is there (its first line is ours).
pub fn existing(root: &Path, service: &UnitName) -> Result<Option<(UnitName, Vec<u8>)>, Failure> {
    let name = name_for(service)?;
    let path = root.join(ADMIN_UNIT_DIR).join(name.as_str());
    Ok(read_existing(&path)?
        .filter(|bytes| bytes.starts_with(MARK.as_bytes()))
        .map(|bytes| (name, bytes)))
}

/// The socket unit for `service` (serving `port`) when `wanted`, or when one of ours is there
/// already (an install without `--socket-unit` keeps what an earlier one set up). A template
/// is refused: its instances would share one port. A file of that name that is not ours is
/// left alone, and the install refused.
pub fn plan(
    root: &Path,
    service: &UnitName,
    port: u16,
    wanted: bool,
) -> Result<Option<SocketUnit>, Failure> {
    let ours = existing(root, service)?;
    if !wanted && ours.is_none() {
        return Ok(None);
    }
    if service.is_template() {
        return Err(Failure::usage(format!(
            "{service}: --socket-unit cannot serve a template: its instances would share one \
             socket and one port; install its instances by name (e.g. {}), each with a port of \
             its own",
            service.as_str().replace("@.", "@a.")
        )));
    }
    let name = name_for(service)?;
    let path = root.join(ADMIN_UNIT_DIR).join(name.as_str());
    let existing = read_existing(&path)?;
    if let Some(bytes) = &existing
        && !bytes.starts_with(MARK.as_bytes())
    {
        return Err(Failure::config(format!(
            "{} exists and was not written by gunicorn-launcher: leaving it alone; remove or \
             rename it, then install --socket-unit again",
            path.display()
        )));
    }
    Ok(Some(SocketUnit {
        text: render(service, port),
        name,
        port,
        dir: PathBuf::from(ADMIN_UNIT_DIR),
        existing,
    }))
}

/// The socket unit's text.
fn render(service: &UnitName, port: u16) -> String {
    format!(
        "{MARK}\n\
         # It holds {service}'s port open while the service restarts: connections wait in its\n\
         # backlog instead of being refused, and systemd passes the socket to gunicorn-launcher.\n\
         # To remove: gunicorn-launcher uninstall {service}\n\
         [Unit]\n\
         Description=Port {port} of {service}, held open across restarts (gunicorn-launcher)\n\
         \n\
         [Socket]\n\
         ListenStream=0.0.0.0:{port}\n\
         # For an IPv6 address this makes it take IPv4 as well, as the launcher requires.\n\
         BindIPv6Only=both\n\
         Backlog={BACKLOG}\n\
         \n\
         [Install]\n\
         WantedBy=sockets.target\n"
    )
}

#[cfg(test)]
mod tests;
