//! systemd unit files: `unit::parse_unit`, and `parse_exec` /
//! `format_exec` on every `Exec*=` value and on the whole input as one
//! command line.
//!
//! Input: the text of a unit file (only UTF-8 reaches the parser).

#![no_main]

use gunicorn_launcher::launch;
use gunicorn_launcher::unit::{self, ExecCommand};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    round_trip(text);
    let path = Path::new("/etc/systemd/system/fuzz.service");
    let Ok(unit) = unit::parse_unit(path, text) else {
        return;
    };
    for section in &unit.sections {
        for entry in &section.entries {
            assert!(!entry.key.is_empty(), "{entry:?}");
            assert!(entry.line >= section.line, "{entry:?} before {section:?}");
            if entry.key.starts_with("Exec") {
                round_trip(&entry.value);
            }
        }
    }
});

/// `parse_exec(format_exec(c)) == c` for every `c` that `parse_exec`
/// returned, the written form is stable, and a command recognised as
/// gunicorn assembles with the launcher's properties.
/// Would `run` accept this command, and so the installer wrap it?
fn command_runs_gunicorn(cmd: &ExecCommand) -> bool {
    let argv: Vec<String> = cmd.program_and_args().iter().map(|s| s.to_string()).collect();
    launch::recognise(&argv).is_ok()
}

fn round_trip(value: &str) {
    let Ok(c) = unit::parse_exec(value) else {
        return;
    };
    let written = unit::format_exec(&c);
    let back: ExecCommand = match unit::parse_exec(&written) {
        Ok(back) => back,
        Err(e) => panic!("{value:?} -> {c:?} -> {written:?} is refused: {e}"),
    };
    assert_eq!(back.prefixes, c.prefixes, "{value:?} -> {written:?}");
    assert_eq!(back.argv, c.argv, "{value:?} -> {written:?}");
    assert_eq!(unit::format_exec(&back), written, "{value:?}");
    assert_eq!(command_runs_gunicorn(&back), command_runs_gunicorn(&c));
    if command_runs_gunicorn(&c) {
        let argv: Vec<String> = c.program_and_args().iter().map(|s| s.to_string()).collect();
        common::check_assemble(&argv, [0, 0, 0, 0].into(), 8001);
    }
}
