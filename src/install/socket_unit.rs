//! The `.socket` unit `install --socket-unit` writes beside the drop-in: systemd holds the
//! service's port open while the service restarts, and passes the socket to the launcher
//! (socket activation), so `systemctl restart` refuses no connection. It has the service's
//! base name (`solvit.socket` for `solvit.service`), which is what makes systemd pass its
//! socket to that service; the drop-in adds `Requires=` and `After=` on it.

use super::discover::Wrap;
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

/// Gives `wrap` a socket unit when `wanted`, or when one of ours is there already (an
/// install without `--socket-unit` keeps what an earlier one set up); the drop-in then
/// requires it. A template is refused: its instances would share one port.
pub fn attach(root: &Path, wrap: &mut Wrap, wanted: bool) -> Result<(), Failure> {
    let ours = existing(root, &wrap.unit)?;
    if !wanted && ours.is_none() {
        return Ok(());
    }
    if wrap.unit.is_template() {
        return Err(Failure::usage(format!(
            "{}: --socket-unit cannot serve a template: its instances would share one socket and \
             one port; install its instances by name (e.g. {}), each with a port of its own",
            wrap.unit,
            wrap.unit.as_str().replace("@.", "@a.")
        )));
    }
    let name = name_for(&wrap.unit)?;
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
    wrap.text.push_str(&format!(
        "# The port is held by {name} while this unit restarts; the launcher takes its socket.\n\
         [Unit]\n\
         Requires={name}\n\
         After={name}\n"
    ));
    wrap.notes.push(format!(
        "{name} holds port {} open across restarts (ListenStream=0.0.0.0:{}); the launcher \
         takes its socket from systemd",
        wrap.port, wrap.port
    ));
    wrap.socket = Some(SocketUnit {
        text: render(&wrap.unit, &name, wrap.port),
        name,
        dir: PathBuf::from(ADMIN_UNIT_DIR),
        existing,
    });
    Ok(())
}

/// The socket unit's text.
fn render(service: &UnitName, name: &UnitName, port: u16) -> String {
    let _ = name;
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
mod tests {
    use super::*;

    #[test]
    fn the_socket_unit_has_the_services_base_name_and_listens_on_every_interface() {
        let service = UnitName::parse("solvit.service").unwrap();
        let name = name_for(&service).unwrap();
        assert_eq!(name.as_str(), "solvit.socket");
        let text = render(&service, &name, 8002);
        assert!(text.starts_with(MARK), "{text}");
        let file = crate::unit::parse_unit(Path::new("/x"), &text).unwrap();
        let value = |section: &str, key: &str| {
            file.entries(section, key)
                .map(|e| e.value.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(value("Socket", "ListenStream"), ["0.0.0.0:8002"]);
        assert_eq!(value("Socket", "BindIPv6Only"), ["both"]);
        assert_eq!(value("Socket", "Backlog"), ["2048"]);
        assert_eq!(value("Install", "WantedBy"), ["sockets.target"]);
        let instance = UnitName::parse("solvit@a.service").unwrap();
        assert_eq!(name_for(&instance).unwrap().as_str(), "solvit@a.socket");
    }
}
