//! What the unit reader's tests share: the fixture trees of tests/fixtures/units, temporary
//! trees written file by file, and short names for the calls most tests make.

use crate::unit::{
    ExecCommand, LoadedUnit, UnitFile, UnitName, effective, effective_exec, load_unit, parse_exec,
    parse_unit,
};
use proptest::prelude::*;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

pub fn fixture(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/units")
        .join(case)
}

pub fn name(s: &str) -> UnitName {
    UnitName::parse(s).unwrap()
}

pub fn argv(cmd: &ExecCommand) -> Vec<&str> {
    cmd.argv.iter().map(String::as_str).collect()
}

pub fn exec(s: &str) -> ExecCommand {
    parse_exec(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

pub fn parse(text: &str) -> UnitFile {
    parse_unit(Path::new("/t/x.service"), text).unwrap()
}

pub fn load(case: &str, unit: &str) -> LoadedUnit {
    load_unit(&fixture(case), &name(unit)).unwrap_or_else(|e| panic!("{case}/{unit}: {e}"))
}

/// The effective ExecStart commands of a fixture unit.
pub fn exec_start(case: &str, unit: &str) -> Vec<ExecCommand> {
    effective_exec(&load(case, unit), "ExecStart")
        .unwrap()
        .into_iter()
        .map(|(cmd, _, _)| cmd)
        .collect()
}

pub fn last(unit: &LoadedUnit, key: &str) -> Option<String> {
    effective(unit, "Service", key).pop().map(|(v, _, _)| v)
}

pub fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

pub fn link(root: &Path, rel: &str, target: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    symlink(target, path).unwrap();
}

pub const GUNI: &str = "[Service]\nExecStart=/usr/bin/gunicorn app:wsgi\n";

/// Text built from the characters that matter to the parsers.
pub fn tricky_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("\\".to_string()),
            Just("\"".to_string()),
            Just("'".to_string()),
            Just(" ".to_string()),
            Just("\t".to_string()),
            Just("\n".to_string()),
            Just("\r".to_string()),
            Just("\0".to_string()),
            Just(";".to_string()),
            Just("=".to_string()),
            Just("[".to_string()),
            Just("]".to_string()),
            Just("#".to_string()),
            Just("-@:+!".to_string()),
            Just("\u{feff}".to_string()),
            Just("[Service]\n".to_string()),
            Just("ExecStart=".to_string()),
            Just("\\x".to_string()),
            Just("\\u".to_string()),
            Just("\\U".to_string()),
            "[0-9a-fA-F]{1,4}",
            "[a-z/%${}]{1,6}",
            any::<char>().prop_map(String::from),
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}
