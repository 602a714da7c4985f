//! `install`, `uninstall` and `status`: swapping the launcher into existing units without
//! editing them, and proving the result. `install` writes one drop-in per unit (decided from
//! the unit files alone), then daemon-reload, restart, and the one verdict of
//! [`crate::verify`]; on any failure it puts back exactly the files that were there.
//! `--root DIR` works on a tree (an image, a chroot) with no systemd to ask.
//!
//! Rooms: [`plan`](crate::installer::plan) which units run gunicorn and what wrapping each means;
//! [`gunicorn_unit`](crate::installer::gunicorn_unit) whether a unit's command runs gunicorn; [`binding`](crate::installer::binding) what its command
//! binds; [`dropin`](crate::installer::dropin) how the drop-in is written; [`socket_unit`](crate::installer::socket_unit) the `.socket` unit that
//! holds the port across restarts; [`conflicts`](crate::installer::conflicts) what else claims the port;
//! [`files`](crate::installer::files) symlink-safe atomic writes, each with its undo; [`install`](mod@crate::installer::install) the `install` command;
//! [`uninstall`](mod@crate::installer::uninstall) and [`status`](mod@crate::installer::status) the other two; [`systemctl`](crate::installer::systemctl) the questions asked of the
//! running systemd; [`report`](crate::installer::report) human lines or one JSON object.

pub mod binding;
pub mod conflicts;
pub mod dropin;
pub mod files;
pub mod gunicorn_unit;
pub mod install;
pub mod interrupt;
pub mod plan;
pub mod report;
pub mod socket_unit;
pub mod status;
pub mod systemctl;
pub mod uninstall;

pub use install::install;
pub use status::status;
pub use uninstall::uninstall;

use crate::error::Failure;
use crate::verify::Target;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a restarted unit may take to be active and verified after `systemctl restart`
/// returned (for Type=notify it returns after READY=1, so this is a margin, not a wait).
const SETTLE: Duration = Duration::from_secs(15);

/// The launcher's default verification, on `port`.
pub(crate) fn probe_target(port: u16) -> Target {
    Target::of(&crate::config::Config {
        port,
        ..crate::config::Config::default()
    })
}

/// Live mode needs a running systemd (sd_booted(): `/run/systemd/system` exists); without
/// one, writing into this host's /etc would change units that no one reloads or verifies.
pub(crate) fn require_systemd(root: &Option<PathBuf>) -> Result<(), Failure> {
    if root.is_some() || Path::new("/run/systemd/system").is_dir() {
        return Ok(());
    }
    Err(Failure::usage(
        "systemd is not running on this host (no /run/systemd/system): nothing can be \
         reloaded or verified here; to prepare a tree of unit files, use --root DIR",
    ))
}

pub(crate) fn root_of(root: &Option<PathBuf>) -> PathBuf {
    root.clone().unwrap_or_else(|| PathBuf::from("/"))
}

#[cfg(test)]
mod tests;
