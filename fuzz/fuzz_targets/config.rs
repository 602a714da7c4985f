//! TOML config loading: `config::parse`, then the command the config makes.
//!
//! Input: the bytes of a config file. `config::load` refuses text that is
//! not UTF-8 before parsing, so only UTF-8 input reaches `parse` here.

#![no_main]

use gunicorn_launcher::config;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

const ORIGIN: &str = "/etc/gunicorn-launcher/fuzz.toml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match config::parse(text, ORIGIN) {
        Err(e) => {
            // Refused whole, naming the file first.
            assert!(e.message.starts_with(ORIGIN), "{:?}", e.message);
            assert!(e.message.len() > ORIGIN.len(), "{:?}", e.message);
        }
        Ok(c) => {
            // The launcher's bind is a real port on all interfaces.
            assert!((1..=65535).contains(&c.port), "port {}", c.port);
            assert!(c.host.is_unspecified(), "host {}", c.host);
            assert!(
                c.probe_path.starts_with('/') && c.probe_path.bytes().all(|b| b.is_ascii_graphic()),
                "probe path {:?}",
                c.probe_path
            );
            assert!(
                !c.command.is_empty() && c.command.iter().all(|w| !w.is_empty()),
                "{:?}",
                c.command
            );
            // Nothing that cannot work: no zero timeout, no empty app, host
            // names that are names.
            assert!(!c.stop_timeout.is_zero(), "stop_timeout 0");
            assert!(!c.startup_timeout.is_zero(), "startup_timeout 0");
            assert!(!c.probe_timeout.is_zero(), "probe_timeout 0");
            assert!(
                c.app.as_deref().is_none_or(|a| !a.trim().is_empty()),
                "app {:?}",
                c.app
            );
            for name in &c.host_names {
                assert!(
                    !name.is_empty()
                        && name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
                    "host name {name:?}"
                );
            }
            assert_eq!(c.source, None);
            // What the config would run: program, args, app (main.rs's
            // `chosen_command`), assembled with the configured bind.
            let mut command = c.command.clone();
            command.extend(c.args.iter().cloned());
            command.extend(c.app.iter().cloned());
            common::check_assemble(&command, c.host, c.port);
        }
    }
});
