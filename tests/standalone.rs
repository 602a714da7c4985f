//! The repository stands alone and says what it is: no file points at documents a clone
//! does not have or at an issue tracker it has no access to, the license is stated where
//! Cargo, Debian and a reader look for it, no test skips itself quietly, and `make test`
//! keeps running everything CI relies on.

mod common;

use std::path::{Path, PathBuf};

/// Every text file of the project, skipping build output, the venv, version control and
/// the fuzz inputs (arbitrary bytes by design).
fn project_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                let skip = [
                    "target",
                    ".venv",
                    ".git",
                    "corpus",
                    "artifacts",
                    "seeds",
                    "__pycache__",
                ];
                if !skip.contains(&name.as_ref()) {
                    walk(&path, out);
                }
            } else if std::fs::read_to_string(&path).is_ok() {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&common::root(), &mut out);
    assert!(out.len() > 50, "found only {} files", out.len());
    out
}

fn relative(path: &Path) -> String {
    path.strip_prefix(common::root())
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn no_file_points_outside_the_repository() {
    // Spelled in pieces, so that this file does not match itself.
    let forbidden = [
        ["../", "shared"].concat(),
        ["shared/", "reference"].concat(),
        ["DESIGN", ".md"].concat(),
        ["the ", "seed's"].concat(),
        ["see ", "issue"].concat(),
    ];
    let mut found = Vec::new();
    for path in project_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            let lower = line.to_lowercase();
            for word in &forbidden {
                if lower.contains(&word.to_lowercase()) {
                    found.push(format!("{}:{}: {word:?}: {line}", relative(&path), n + 1));
                }
            }
            // The word, then a number (with or without `#`): a tracker a clone does not have.
            let bytes = lower.as_bytes();
            for (i, _) in lower.match_indices("issue") {
                let rest = &bytes[i + 5..];
                let rest = rest.strip_prefix(b" ").unwrap_or(rest);
                let rest = rest.strip_prefix(b"#").unwrap_or(rest);
                if rest.first().is_some_and(u8::is_ascii_digit) {
                    found.push(format!(
                        "{}:{}: issue number: {line}",
                        relative(&path),
                        n + 1
                    ));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "say it in the project's own words instead:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_license_is_stated_everywhere_it_is_looked_for() {
    let root = common::root();
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap_or_default();
    let cargo: toml::Table = toml::from_str(&read("Cargo.toml")).unwrap();
    let package = cargo["package"].as_table().unwrap();
    assert_eq!(package["license"].as_str(), Some("MIT OR Apache-2.0"));
    for key in ["description", "repository", "readme", "keywords"] {
        assert!(package.contains_key(key), "Cargo.toml has no package.{key}");
    }
    assert!(read("LICENSE-MIT").contains("Permission is hereby granted, free of charge"));
    assert!(read("LICENSE-APACHE").contains("Apache License\n                        Version 2.0"));
    let copyright = read("packaging/copyright");
    assert!(
        copyright.starts_with(
            "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
        ),
        "packaging/copyright is not DEP-5"
    );
    for want in [
        "License: MIT or Apache-2.0",
        "\nLicense: MIT\n",
        "\nLicense: Apache-2.0\n",
    ] {
        assert!(
            copyright.contains(want),
            "packaging/copyright lacks {want:?}"
        );
    }
}

/// A test that cannot run fails and says why; none returns early with a message.
#[test]
fn no_test_skips_itself_quietly() {
    let mut found = Vec::new();
    for path in project_files() {
        let rel = relative(&path);
        if !(rel.ends_with(".rs") && (rel.starts_with("src/") || rel.starts_with("tests/"))) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (n, line) in lines.iter().enumerate() {
            let says_skip = ["SKIP", "skipped:", "skipping"]
                .iter()
                .any(|w| line.contains(w) && line.contains("eprintln!"));
            let returns_soon = lines[n..lines.len().min(n + 6)]
                .iter()
                .any(|l| l.trim() == "return;");
            if says_skip && returns_soon {
                found.push(format!("{rel}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "tests that skip:\n{}", found.join("\n"));
}

/// CI runs `.ci/run`; it must run the README's test command, and that command must keep the
/// fuzz crate, the release build (the package test uses it), the Ansible role's lint and the
/// tests in it.
#[test]
fn ci_runs_the_readmes_test_command_and_it_runs_everything() {
    let root = common::root();
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    assert!(ci.lines().any(|l| l.trim() == "make test"), "{ci}");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.contains("make test"),
        "the README names no test command"
    );
    let makefile = std::fs::read_to_string(root.join("Makefile")).unwrap();
    let test_rule = makefile
        .lines()
        .find(|l| l.starts_with("test:"))
        .expect("no test rule in the Makefile");
    for prerequisite in ["setup", "lint", "lint-ansible", "fuzz-check", "build"] {
        assert!(
            test_rule.split_whitespace().any(|w| w == prerequisite),
            "`make test` no longer depends on {prerequisite}: {test_rule}"
        );
    }
    assert!(makefile.contains("$(CARGO) test --all-targets"));
}
