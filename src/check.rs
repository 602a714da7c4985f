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

use crate::verify::render::{table, to_json, use_colour};
use crate::verify::{self, Scope, Target};

/// What `check` is asked: the port and probes to judge, and how to show the verdict.
#[derive(Clone, Debug)]
pub struct Request {
    pub target: Target,
    pub json: bool,
    /// A row per process instead of a master with its workers.
    pub verbose: bool,
}

/// Prints the verdict; returns its exit code.
pub fn run(request: &Request) -> i32 {
    let target = &request.target;
    let v = verify::verdict(target, Scope::Host);
    if request.json {
        println!("{}", to_json(&v, target));
    } else {
        print!("{}", table(&v, target, use_colour(), request.verbose));
    }
    v.kind.exit_code()
}
