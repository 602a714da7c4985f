//! `check`: `lsof -i :PORT` and `curl -I http://SERVER_IP:PORT` in one
//! command.
//!
//! Every listener on the port with its family, address and owners (a
//! master with its workers on one row; `--verbose` gives a row per
//! process), the HTTP answer to each probe (each address with the Host a
//! browser pointed at it sends, and each `--host-name` at each address),
//! what the host firewall does to a connection from another machine, and the
//! verdict, computed by [`crate::verify`] exactly as `run` computes it before
//! READY. Exit codes: 0 all interfaces and reachable, 1 bound to a single
//! address, 3 nothing listening, 4 listening but an HTTP probe failed, 5 the
//! app rejects the Host remote browsers send, 6 the port is split between
//! independent programs, 7 the host firewall blocks the port from every other
//! machine.

use crate::config::{self, Config};
use crate::error::Failure;
use crate::verify::render::{table, to_json, use_colour};
use crate::verify::{self, Scope, Target};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// What `check` is asked: the port and probes to judge (from a launcher config, and the
/// flags given, which win), and how to show the verdict.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub config: Option<PathBuf>,
    pub port: Option<u16>,
    pub path: Option<String>,
    pub timeout: Option<Duration>,
    pub host_names: Vec<String>,
    pub from: Option<IpAddr>,
    pub json: bool,
    /// A row per process instead of a master with its workers.
    pub verbose: bool,
}

impl Request {
    /// What to verify: the config's settings (the defaults without one), then the flags.
    pub fn target(&self) -> Result<Target, Failure> {
        let c = match &self.config {
            Some(path) => config::load(path)?,
            None => Config::default(),
        };
        let mut target = Target::of(&c);
        target.port = self.port.unwrap_or(target.port);
        target.path = self.path.clone().unwrap_or(target.path);
        target.probe_timeout = self.timeout.unwrap_or(target.probe_timeout);
        for name in &self.host_names {
            if !target.host_names.contains(name) {
                target.host_names.push(name.clone());
            }
        }
        target.from = self.from;
        Ok(target)
    }
}

/// Prints the verdict; returns its exit code.
pub fn run(request: &Request) -> Result<i32, Failure> {
    let target = &request.target()?;
    let v = verify::verdict(target, Scope::Host);
    if request.json {
        crate::output::line(&to_json(&v, target).to_string());
    } else {
        crate::output::print(&table(&v, target, use_colour(), request.verbose));
    }
    Ok(v.kind.exit_code())
}
