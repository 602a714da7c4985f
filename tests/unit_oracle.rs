//! An independent oracle for the unit reader (`src/unit/`): every fixture tree in
//! tests/fixtures/units/ is copied into a real systemd 252 (booted in private namespaces by
//! tests/common/systemd.rs, one boot for the whole test), and for every unit the tree
//! defines, what the reader reads is compared with what systemd itself reports over D-Bus
//! (`busctl --json`, so argv words keep their boundaries).
//!
//! Why: the installer rewrites the command systemd *actually* runs; the reader claims to
//! read units exactly as systemd 252 does. Its own unit tests check it against expectations
//! written by the same hand; this test asks systemd.
//!
//! What is compared, per unit (the reader reads the namespace's root, `/proc/PID/root`, so
//! both sides see the very same files, Debian's own units and the `/lib -> usr/lib` link
//! included):
//!
//! * `Id` (the reader's first name), `Names` (aliases, as a set), `FragmentPath`,
//!   `DropInPaths` (paths and order), `LoadState` (`loaded`/`masked`), `Description`;
//! * for services: every `Exec*Ex` property (`ExecStart` first of all: path, argv, flags;
//!   plus `program_and_args()`), `WorkingDirectory` and `Environment`.
//!
//! Which units: every name in a search directory of the tree (files, aliases, linked units,
//! masks), every unit with a drop-in directory; for a template `NAME@.service` every
//! instance with drop-ins in the tree plus `NAME@x.service` and an escaped instance (so that
//! `%i` and `%I` differ); and every unit file that lies *outside* the search path, which
//! neither side may find by its own name. On top of the fixtures, a generated tree of
//! `ExecStart=` prefix combinations checks the prefix-to-flags table below against systemd,
//! and a generated tree of commands written by `unit::format_exec` (the installer's
//! writer: words with quotes, backslashes, spaces, tabs, newlines, control characters, `;`,
//! `$`, `#`, non-ASCII) checks that systemd reads back exactly the words that were written.
//!
//! Refusals: a unit the reader refuses (a load error or an unparsable `Exec*=` line) must
//! be one systemd does not load either (`bad-setting`, `error`, `not-found`), and where the
//! reader names a file and line, systemd's journal must hold a complaint about that very
//! file and line. A unit systemd does not load must be one the reader refuses. The
//! `malformed` tree must be refused unit by unit. The one exception is listed, with its
//! reason, in [`STRICTER`]: systemd skips such a line with a warning and loads the rest,
//! the reader refuses on purpose (see docs/unit-files.md).
//!
//! Installing a tree: its files are written inside the namespace by a shell running there,
//! so paths resolve as systemd sees them: on Debian 12 `/lib` is a link to `usr/lib`, so a
//! tree's `lib/systemd/system/x` lands in /usr/lib/systemd/system and systemd reports it as
//! /lib/systemd/system/x (`/lib` comes first in its search path). Nothing the namespace
//! already has is overwritten; after the comparison the tree's files and the directories it
//! created are removed, `daemon-reload` runs, and each of its units must be `not-found`.
//!
//! Specifiers: systemd expands them at load time, the reader keeps them verbatim, so this
//! test expands them on the reader's side (see [`Specifiers`]) for exactly the specifiers the
//! fixtures use, and fails loudly on any other. `$VAR`s are not expanded by systemd at load
//! time (they stay verbatim until exec); the comparison checks that, and the test asserts
//! that such words were indeed compared.
//!
//! Every mismatch names tree, unit and property with both values; all are collected, and
//! the test fails at the end listing them all.

#[path = "common/systemd.rs"]
mod harness;

use gunicorn_launcher::unit::{
    ExecCommand, LoadedUnit, UnitError, UnitIndex, UnitName, effective, effective_exec,
    format_exec, search_path,
};
use harness::Systemd;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

/// Trees left out, with the reason. Every other directory of tests/fixtures/units is
/// compared. (None: even `malformed` is compared, as refusals.)
const EXCLUDED: &[(&str, &str)] = &[];

/// Trees whose every unit the reader must refuse, with the reason.
const REFUSED_TREES: &[(&str, &str)] = &[(
    "malformed",
    "unit files with lines systemd itself complains about (bad section header, \
     unbalanced quotes, a missing '=', assignments outside any section)",
)];

/// Units the reader refuses while systemd loads them after skipping the offending line
/// with a warning in its journal (tree, unit, why this is right). Any other such case fails.
const STRICTER: &[(&str, &str, &str)] = &[(
    "malformed",
    "outside-section.service",
    "systemd logs `Assignment outside of section. Ignoring.` and runs the unit without \
     `User=solvit`, as root: refusing to rewrite it is the safe side",
)];

/// The command-line settings of a service, each compared through its `…Ex` property.
const EXEC_KEYS: [&str; 7] = [
    "ExecCondition",
    "ExecStartPre",
    "ExecStart",
    "ExecStartPost",
    "ExecReload",
    "ExecStop",
    "ExecStopPost",
];

/// How systemd 252 shows the prefixes of a command line in the flags array of an `Exec*Ex`
/// property, as observed (the generated prefix tree re-checks every row on each run):
///
/// | prefix | flag             | meaning                                          |
/// |--------|------------------|--------------------------------------------------|
/// | `-`    | `ignore-failure` | a failing exit status is ignored                 |
/// | `@`    | (none)           | the second word is argv\[0\]: `path` is the first |
/// |        |                  | word, `argv` starts at the second                |
/// | `:`    | `no-env-expand`  | no `$VAR` expansion at exec time                 |
/// | `+`    | `privileged`     | runs with full privileges                        |
/// | `!`    | `no-setuid`      | no user/group switch by systemd                  |
/// | `!!`   | `ambient`        | `!` only where ambient capabilities are missing  |
///
/// The flags come in systemd's fixed order (`ignore-failure`, `privileged`, `no-setuid`,
/// `ambient`, `no-env-expand`), whatever order the prefixes were written in. `@` leaves no
/// flag: it shows only as argv\[0\] differing from the path. Repeated or conflicting
/// prefixes (`--`, `@@`, `+!`, `!!!`) make the rest of the word the path, which is then
/// invalid: the unit is `bad-setting`.
fn flags_for(prefixes: &str) -> Vec<String> {
    let mut flags = Vec::new();
    if prefixes.contains('-') {
        flags.push("ignore-failure");
    }
    if prefixes.contains('+') {
        flags.push("privileged");
    }
    if prefixes.contains("!!") {
        flags.push("ambient");
    } else if prefixes.contains('!') {
        flags.push("no-setuid");
    }
    if prefixes.contains(':') {
        flags.push("no-env-expand");
    }
    flags.into_iter().map(String::from).collect()
}

/// The prefix combinations of the generated tree: valid ones in every position, and
/// repeated/conflicting ones systemd refuses.
const PREFIX_PROBES: [&str; 16] = [
    "", "-", "@", ":", "+", "!", "!!", "-@:+", ":!!", "@!-", "!!-@", "--", "@@", "+!", "!!!", "!+",
];

#[test]
fn unit_reader_agrees_with_systemd() {
    let started = Instant::now();
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "THE UNIT ORACLE NEEDS ROOT (it boots systemd in private namespaces); run it as root, as CI does"
    );
    let fixtures = fixtures_dir();
    let trees = fixture_trees(&fixtures);

    let sd = Systemd::boot(&[]);
    sd.start_bus();
    let home = manager_home(&sd);
    let root = sd.path("/");
    let unit_path = manager_unit_path(&sd);

    let mut report = Report::default();
    // The search path itself: the reader's list is systemd's `UnitPath`.
    let reader_path: Vec<String> = search_path(Path::new("/"))
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    report.check("-", "-", "search path (UnitPath)", &reader_path, &unit_path);

    let generated = [prefix_probe_tree(), format_exec_tree()];
    for tree in trees.iter().chain(&generated) {
        let refused_tree = REFUSED_TREES.iter().any(|(t, _)| *t == tree.name);
        let tree_report = compare_tree(&sd, &root, &home, &unit_path, tree, refused_tree);
        report.absorb(tree_report);
    }

    eprintln!(
        "unit oracle: {} trees, {} units, {} comparisons, {} refusals agreed, {:.1?}",
        trees.len() + generated.len(),
        report.units,
        report.comparisons,
        report.refusals,
        started.elapsed()
    );
    for note in &report.notes {
        eprintln!("note: {note}");
    }
    for (tree, unit, _) in STRICTER {
        assert!(
            report.stricter_seen.contains(&format!("{tree}/{unit}")),
            "STRICTER lists {tree}/{unit}, but that case did not occur: remove or fix the entry"
        );
    }
    // The comparisons were not vacuous: specifiers were expanded, `$VAR` words compared.
    assert!(
        report.dollar_words > 0,
        "no ExecStart word with `$` was compared: the `$VAR` check is vacuous"
    );
    assert!(
        report.specifier_words > 0,
        "no word with a specifier was compared: the specifier expansion is vacuous"
    );
    assert!(
        report.mismatches.is_empty(),
        "{} mismatch(es) between the unit reader and systemd 252:\n{}",
        report.mismatches.len(),
        report.mismatches.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Trees
// ---------------------------------------------------------------------------------------------

/// One node of a tree, at its absolute path inside the namespace.
#[derive(Debug, Clone)]
enum Node {
    Dir,
    File(Vec<u8>),
    Link(PathBuf),
}

#[derive(Debug, Clone)]
struct Tree {
    name: String,
    /// Absolute path inside → node; parents sort before their children.
    nodes: BTreeMap<String, Node>,
    /// Units whose `ExecStart=` was written by `format_exec`, with the words it was given:
    /// systemd's argv must be exactly these.
    written: BTreeMap<String, Vec<String>>,
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/units")
}

/// Every tree of tests/fixtures/units, read at run time; each is either compared or listed
/// in [`EXCLUDED`].
fn fixture_trees(dir: &Path) -> Vec<Tree> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().into_string().expect("UTF-8 tree name"))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no fixture trees in {}", dir.display());
    for (excluded, why) in EXCLUDED.iter().chain(REFUSED_TREES) {
        assert!(
            names.iter().any(|n| n == excluded),
            "tree {excluded:?} is listed ({why}) but is not in {}",
            dir.display()
        );
    }
    names
        .into_iter()
        .filter(|n| !EXCLUDED.iter().any(|(e, _)| e == n))
        .map(|name| {
            let mut nodes = BTreeMap::new();
            read_tree(&dir.join(&name), Path::new("/"), &mut nodes);
            Tree {
                name,
                nodes,
                written: BTreeMap::new(),
            }
        })
        .collect()
}

fn read_tree(host: &Path, inside: &Path, out: &mut BTreeMap<String, Node>) {
    let mut entries: Vec<_> = std::fs::read_dir(host).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = inside.join(e.file_name());
        let key = path.display().to_string();
        let meta = std::fs::symlink_metadata(e.path()).unwrap();
        if meta.file_type().is_symlink() {
            out.insert(key, Node::Link(std::fs::read_link(e.path()).unwrap()));
        } else if meta.is_dir() {
            out.insert(key, Node::Dir);
            read_tree(&e.path(), &path, out);
        } else {
            out.insert(key, Node::File(std::fs::read(e.path()).unwrap()));
        }
    }
}

/// Generated, not a fixture: one service per entry of [`PREFIX_PROBES`], in
/// /run/systemd/system, to check the prefix table against systemd on every run, and one
/// for the `Environment=` merging rule.
fn prefix_probe_tree() -> Tree {
    let mut nodes = BTreeMap::new();
    for dir in ["/run", "/run/systemd", "/run/systemd/system"] {
        nodes.insert(dir.to_string(), Node::Dir);
    }
    for (i, prefixes) in PREFIX_PROBES.iter().enumerate() {
        let text =
            format!("[Service]\nExecStart={prefixes}/usr/bin/true first \"second word\" third\n");
        nodes.insert(
            format!("/run/systemd/system/oracle-prefix-{i:02}.service"),
            Node::File(text.into_bytes()),
        );
    }
    // Environment= merging, which no fixture exercises: a reset, a quoted assignment with a
    // space, and a variable assigned twice (the later value takes the earlier one's place).
    nodes.insert(
        "/run/systemd/system/oracle-environment.service".to_string(),
        Node::File(
            b"[Service]\nEnvironment=A=1 B=2\nEnvironment=\n\
              Environment=C=3 \"D=4 5\" 'E=six \\\\ seven'\nEnvironment=C=8\n\
              ExecStart=/usr/bin/true\n"
                .to_vec(),
        ),
    );
    Tree {
        name: "<generated: ExecStart= prefixes, Environment= merging>".into(),
        nodes,
        written: BTreeMap::new(),
    }
}

/// How many commands [`format_exec_tree`] writes.
const WRITTEN_COMMANDS: usize = 120;

/// Units whose `ExecStart=` is `format_exec` of random words (a fixed seed: the same words
/// on every run), from an alphabet of everything systemd's unquoting treats specially. No
/// `%`: specifiers are the installer's to keep verbatim (they are, `format_exec` leaves
/// them alone), and this test expands only the few the fixtures use.
fn format_exec_tree() -> Tree {
    const PIECES: &[&str] = &[
        "a", "Z", "0", "-", "--bind", "=", ":", "/", ".", " ", "  ", "\t", "\n", "\"", "'", "\\",
        ";", "$", "$HOME", "${X}", "$$", "#", "{", "}", "é", "\u{1}", "\u{7f}", "\r", "*", "?",
        "[", "]", "~", "!", "@", "+", "&", "|", "<", ">",
    ];
    let mut state: u64 = 0x853c49e6748fea9b;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let mut nodes = BTreeMap::new();
    for dir in ["/run", "/run/systemd", "/run/systemd/system"] {
        nodes.insert(dir.to_string(), Node::Dir);
    }
    let mut written = BTreeMap::new();
    for i in 0..WRITTEN_COMMANDS {
        let mut argv = vec!["/usr/bin/true".to_string()];
        for _ in 0..1 + next(6) {
            let word: String = (0..next(5)).map(|_| PIECES[next(PIECES.len())]).collect();
            argv.push(word);
        }
        let cmd = ExecCommand {
            prefixes: String::new(),
            argv: argv.clone(),
            raw: String::new(),
        };
        let name = format!("oracle-written-{i:03}.service");
        let text = format!("[Service]\nExecStart={}\n", format_exec(&cmd));
        nodes.insert(
            format!("/run/systemd/system/{name}"),
            Node::File(text.into_bytes()),
        );
        written.insert(name, argv);
    }
    Tree {
        name: "<generated: ExecStart= written by format_exec>".into(),
        nodes,
        written,
    }
}

/// The units a tree defines (see the module documentation), and the unit file names that
/// lie outside the search path.
fn units_of(tree: &Tree, unit_path: &[String]) -> (Vec<String>, Vec<String>) {
    let mut units = BTreeSet::new();
    let mut templates = BTreeSet::new();
    let mut outside = BTreeSet::new();
    for (path, node) in &tree.nodes {
        let path = Path::new(path);
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            continue;
        };
        let name = name.to_str().unwrap();
        let in_search_path = unit_path.iter().any(|d| Path::new(d) == parent);
        let (name, is_dropin_dir) = match (node, name.strip_suffix(".d")) {
            (Node::Dir, Some(unit)) => (unit, true),
            _ => (name, false),
        };
        let Ok(unit) = UnitName::parse(name) else {
            assert!(
                !in_search_path,
                "tree {}: {} in the search path is neither a unit nor a drop-in directory; \
                 the oracle does not know how to compare it",
                tree.name,
                path.display()
            );
            continue;
        };
        if !in_search_path {
            if !is_dropin_dir && matches!(node, Node::File(_)) {
                outside.insert(name.to_string());
            }
            continue;
        }
        if unit.is_template() {
            templates.insert(unit);
        } else {
            units.insert(name.to_string());
        }
    }
    for template in templates {
        // A plain instance, and an escaped one: %i is `a-b\x2dc`, %I is `a/b-c`.
        for instance in ["x", "a-b\\x2dc"] {
            units.insert(template.with_instance(instance).unwrap().to_string());
        }
    }
    outside.retain(|n| !units.contains(n));
    (units.into_iter().collect(), outside.into_iter().collect())
}

// ---------------------------------------------------------------------------------------------
// Installing a tree inside the namespace
// ---------------------------------------------------------------------------------------------

/// What installing a tree added inside: its files and links, and the directories that did
/// not exist before (removed again afterwards, deepest first).
struct Installed {
    files: Vec<String>,
    created_dirs: Vec<String>,
}

/// `sh -c SCRIPT sh ARGS...` inside the namespace (paths resolve there: `/lib` is the
/// namespace's link to usr/lib, absolute links stay inside), with `stdin` as its input.
fn sh(sd: &Systemd, script: &str, args: &[&str], stdin: &[u8]) -> String {
    let mut child = sd
        .cmd("sh")
        .args(["-c", script, "sh"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nsenter sh");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "in the namespace: sh -c {script:?} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Refuses to overwrite anything the namespace already has: removing the tree afterwards
/// must leave the namespace as it was.
fn install(sd: &Systemd, tree: &Tree) -> Installed {
    const FRESH: &str =
        r#"if [ -e "$1" ] || [ -L "$1" ]; then echo "$1 already exists inside" >&2; exit 1; fi;"#;
    let dirs: Vec<&str> = tree
        .nodes
        .iter()
        .filter(|(_, n)| matches!(n, Node::Dir))
        .map(|(p, _)| p.as_str())
        .collect();
    let created = sh(
        sd,
        r#"for d; do if [ ! -e "$d" ]; then mkdir "$d" || exit 1; echo "$d"; fi; done"#,
        &dirs,
        b"",
    );
    let mut files = Vec::new();
    for (path, node) in &tree.nodes {
        match node {
            Node::Dir => continue,
            Node::File(bytes) => sh(sd, &format!(r#"{FRESH} cat > "$1""#), &[path], bytes),
            Node::Link(target) => sh(
                sd,
                &format!(r#"{FRESH} ln -s "$2" "$1""#),
                &[path, target.to_str().unwrap()],
                b"",
            ),
        };
        files.push(path.clone());
    }
    Installed {
        files,
        created_dirs: created.lines().map(String::from).collect(),
    }
}

fn uninstall(sd: &Systemd, tree: &Tree, installed: Installed) {
    let files: Vec<&str> = installed.files.iter().map(String::as_str).collect();
    sh(sd, r#"for p; do rm -f "$p" || exit 1; done"#, &files, b"");
    let dirs: Vec<&str> = installed
        .created_dirs
        .iter()
        .rev()
        .map(String::as_str)
        .collect();
    sh(sd, r#"for d; do rmdir "$d" || exit 1; done"#, &dirs, b"");
    let left = sh(
        sd,
        r#"for p; do if [ -e "$p" ] || [ -L "$p" ]; then echo "$p"; fi; done"#,
        &files,
        b"",
    );
    assert!(
        left.is_empty(),
        "tree {}: still inside after removal:\n{left}",
        tree.name
    );
}

fn daemon_reload(sd: &Systemd) {
    let out = sd.systemctl(&["daemon-reload"]);
    assert!(
        out.status.success(),
        "systemctl daemon-reload: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// The manager's side
// ---------------------------------------------------------------------------------------------

/// The manager's `UnitPath`: its search path, highest priority first.
fn manager_unit_path(sd: &Systemd) -> Vec<String> {
    let v = sd.bus_properties(
        "/org/freedesktop/systemd1",
        "org.freedesktop.systemd1.Manager",
        &["UnitPath"],
    );
    strings(&v[0])
}

/// What `%h` means to this manager: systemd's `get_home_dir()` takes `$HOME` from its own
/// environment when that is an absolute path, and otherwise hardcodes `/root` for uid 0.
/// PID 1 here inherits the test's environment, so read it from there.
fn manager_home(sd: &Systemd) -> String {
    let environ = std::fs::read(format!("/proc/{}/environ", sd.pid)).expect("PID 1's environ");
    environ
        .split(|&b| b == 0)
        .filter_map(|kv| std::str::from_utf8(kv).ok())
        .find_map(|kv| kv.strip_prefix("HOME="))
        .filter(|h| h.starts_with('/'))
        .map(|h| {
            let trimmed = h.trim_end_matches('/');
            if trimmed.is_empty() { "/" } else { trimmed }.to_string()
        })
        .unwrap_or_else(|| "/root".to_string())
}

/// One command line as an `Exec*Ex` property shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SdExec {
    path: String,
    argv: Vec<String>,
    flags: Vec<String>,
}

/// A unit as systemd reports it.
#[derive(Debug)]
struct SdUnit {
    id: String,
    names: BTreeSet<String>,
    load_state: String,
    fragment: String,
    dropins: Vec<String>,
    description: String,
    /// For services: each `Exec*` key's commands, `WorkingDirectory`, `Environment`.
    exec: BTreeMap<&'static str, Vec<SdExec>>,
    working_directory: String,
    environment: Vec<String>,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array of strings: {v}"))
        .iter()
        .map(|s| s.as_str().expect("a string").to_string())
        .collect()
}

fn string(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_string()
}

fn manager_view(sd: &Systemd, unit: &str) -> SdUnit {
    let object = sd.load_unit_object(unit);
    let u = sd.bus_properties(
        &object,
        "org.freedesktop.systemd1.Unit",
        &[
            "Id",
            "Names",
            "LoadState",
            "FragmentPath",
            "DropInPaths",
            "Description",
        ],
    );
    let mut view = SdUnit {
        id: string(&u[0]),
        names: strings(&u[1]).into_iter().collect(),
        load_state: string(&u[2]),
        fragment: string(&u[3]),
        dropins: strings(&u[4]),
        description: string(&u[5]),
        exec: BTreeMap::new(),
        working_directory: String::new(),
        environment: Vec::new(),
    };
    if !unit.ends_with(".service") {
        return view;
    }
    let mut props: Vec<String> = EXEC_KEYS.iter().map(|k| format!("{k}Ex")).collect();
    props.extend(["WorkingDirectory".into(), "Environment".into()]);
    let props: Vec<&str> = props.iter().map(String::as_str).collect();
    let s = sd.bus_properties(&object, "org.freedesktop.systemd1.Service", &props);
    for (key, value) in EXEC_KEYS.iter().zip(&s) {
        // a(sasasttttuii): path, argv, flags, then run-time fields.
        let commands = value
            .as_array()
            .unwrap_or_else(|| panic!("{unit} {key}Ex: {value}"))
            .iter()
            .map(|c| SdExec {
                path: string(&c[0]),
                argv: strings(&c[1]),
                flags: strings(&c[2]),
            })
            .collect();
        view.exec.insert(*key, commands);
    }
    view.working_directory = string(&s[EXEC_KEYS.len()]);
    view.environment = strings(&s[EXEC_KEYS.len() + 1]);
    view
}

/// The journal's position now (after `journalctl --sync`, which returns once everything
/// logged before it is stored), to read only what a tree's loading logs.
fn journal_cursor(sd: &Systemd) -> Option<String> {
    sd.run(&["journalctl", "--sync"]);
    sd.text(&["journalctl", "-q", "-n", "0", "--show-cursor"])
        .lines()
        .find_map(|l| l.strip_prefix("-- cursor: "))
        .map(String::from)
}

/// The manager's own messages since `cursor`.
fn manager_messages(sd: &Systemd, cursor: &Option<String>) -> Vec<String> {
    sd.run(&["journalctl", "--sync"]);
    let mut args = vec!["_PID=1".to_string()];
    if let Some(c) = cursor {
        args.push(format!("--after-cursor={c}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sd.journal_lines(&args)
}

// ---------------------------------------------------------------------------------------------
// The reader's side
// ---------------------------------------------------------------------------------------------

/// Specifier expansion, for the reader's words, exactly as far as the fixtures need it
/// (systemd.unit(5), "Specifiers"); any other specifier fails the test until added here.
///
/// * `%%`: a literal `%` (quoting: `--access-logformat '%%(h)s …'`);
/// * `%i`: the instance name as it is in the unit name (`a-b\x2dc`), empty for a unit that
///   is not an instance (specifiers, template: `solvit-%i`, `80%i`);
/// * `%I`: the instance unescaped like `unit_name_unescape()`: `-` is `/`, `\xNN` is that
///   byte (`a/b-c`) (specifiers: `"%h/%I dir"`);
/// * `%h`: the home directory of the user running the manager: for the system manager
///   root's, `/root` (see [`manager_home`]) (specifiers: `WorkingDirectory=%h`).
struct Specifiers<'a> {
    unit: &'a UnitName,
    home: &'a str,
}

impl Specifiers<'_> {
    fn expand(&self, word: &str) -> String {
        let mut out = String::new();
        let mut chars = word.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('%') => out.push('%'),
                Some('i') => out.push_str(self.unit.instance().unwrap_or("")),
                Some('I') => out.push_str(&unescape(self.unit.instance().unwrap_or(""))),
                Some('h') => out.push_str(self.home),
                other => panic!(
                    "the oracle's expander does not know the specifier %{} (in {word:?} of {}): \
                     add it to `Specifiers` with its meaning",
                    other.map(String::from).unwrap_or_default(),
                    self.unit
                ),
            }
        }
        out
    }
}

/// `unit_name_unescape()`: `-` stands for `/`, `\xNN` for the byte NN.
fn unescape(s: &str) -> String {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'-' => out.push(b'/'),
            b'\\' => {
                let hex = s
                    .get(i + 1..i + 4)
                    .and_then(|h| h.strip_prefix('x'))
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .unwrap_or_else(|| panic!("bad escape in instance {s:?}"));
                out.push(hex);
                i += 3;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).expect("UTF-8 instance")
}

/// Splits an `Environment=` value into assignments the way `config_parse_environ()` does
/// (`extract_first_word(EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE)`), for what the fixtures use:
/// whitespace-separated words, single and double quotes, `\\`, `\"`, `\'`. The reader
/// exposes `Environment=` only as raw values (through `effective`), so the split is the
/// test's own; other escapes fail the test until added.
fn split_environment(value: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match (c, quote) {
            ('\\', _) => match chars.next() {
                Some(e @ ('\\' | '"' | '\'')) => word.get_or_insert_default().push(e),
                other => panic!("Environment={value:?}: escape \\{other:?} not supported here"),
            },
            (q, Some(open)) if q == open => quote = None,
            (c, Some(_)) => word.get_or_insert_default().push(c),
            ('"' | '\'', None) => {
                quote = Some(c);
                word.get_or_insert_default();
            }
            (' ' | '\t' | '\n' | '\r', None) => words.extend(word.take()),
            (c, None) => word.get_or_insert_default().push(c),
        }
    }
    assert!(quote.is_none(), "Environment={value:?}: unbalanced quotes");
    words.extend(word);
    words
}

/// What the reader makes of one unit.
enum ReaderView {
    /// Loaded, with the effective commands of each `Exec*` key.
    /// Each command comes with the file it is written in.
    Loaded(
        Box<LoadedUnit>,
        BTreeMap<&'static str, Vec<(ExecCommand, PathBuf)>>,
    ),
    /// Refused: the error, and the unit if loading itself worked (an `Exec*=` line did not).
    Refused(UnitError, Option<Box<LoadedUnit>>),
}

fn reader_view(index: &UnitIndex, unit: &str) -> ReaderView {
    let name = UnitName::parse(unit).unwrap_or_else(|e| panic!("{unit}: {e}"));
    let loaded = match index.load(&name) {
        Ok(l) => l,
        Err(e) => return ReaderView::Refused(e, None),
    };
    let mut exec = BTreeMap::new();
    for key in EXEC_KEYS {
        match effective_exec(&loaded, key) {
            Ok(cmds) => {
                exec.insert(
                    key,
                    cmds.into_iter().map(|(c, file, _)| (c, file)).collect(),
                );
            }
            Err(e) => return ReaderView::Refused(e, Some(Box::new(loaded))),
        }
    }
    ReaderView::Loaded(Box::new(loaded), exec)
}

/// The last effective value of a single-valued setting.
fn last_value(unit: &LoadedUnit, section: &str, key: &str) -> Option<String> {
    effective(unit, section, key).pop().map(|(v, _, _)| v)
}

// ---------------------------------------------------------------------------------------------
// The comparison
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Report {
    mismatches: Vec<String>,
    notes: Vec<String>,
    units: usize,
    comparisons: usize,
    refusals: usize,
    /// The [`STRICTER`] entries that occurred, as `tree/unit`.
    stricter_seen: Vec<String>,
    dollar_words: usize,
    specifier_words: usize,
}

impl Report {
    /// One property: both sides printed on mismatch, with tree and unit.
    fn check<T: PartialEq + std::fmt::Debug>(
        &mut self,
        tree: &str,
        unit: &str,
        property: &str,
        reader: &T,
        systemd: &T,
    ) {
        self.comparisons += 1;
        if reader != systemd {
            self.mismatches.push(format!(
                "[tree {tree}] {unit}: {property}:\n    reader:    {reader:?}\n    systemd:   {systemd:?}"
            ));
        }
    }

    fn fail(&mut self, tree: &str, unit: &str, property: &str, why: String) {
        self.mismatches
            .push(format!("[tree {tree}] {unit}: {property}: {why}"));
    }

    fn absorb(&mut self, other: Report) {
        self.mismatches.extend(other.mismatches);
        self.notes.extend(other.notes);
        self.units += other.units;
        self.comparisons += other.comparisons;
        self.refusals += other.refusals;
        self.stricter_seen.extend(other.stricter_seen);
        self.dollar_words += other.dollar_words;
        self.specifier_words += other.specifier_words;
    }
}

/// Installs a tree, compares each of its units, removes it again, and checks that systemd
/// no longer knows the units (so no tree sees another's files).
fn compare_tree(
    sd: &Systemd,
    root: &Path,
    home: &str,
    unit_path: &[String],
    tree: &Tree,
    refused_tree: bool,
) -> Report {
    let mut report = Report::default();
    let (units, outside) = units_of(tree, unit_path);
    assert!(!units.is_empty(), "tree {}: no units found", tree.name);

    let cursor = journal_cursor(sd);
    let installed = install(sd, tree);
    daemon_reload(sd);
    let index = UnitIndex::new(root);
    let inside = |p: &Path| -> String {
        let rel = p
            .strip_prefix(root)
            .unwrap_or_else(|_| panic!("the reader reported {} outside its root", p.display()));
        Path::new("/").join(rel).display().to_string()
    };

    let mut views = Vec::new();
    for unit in units.iter().chain(&outside) {
        views.push((unit, reader_view(&index, unit), manager_view(sd, unit)));
    }
    let messages = manager_messages(sd, &cursor);
    for (unit, words) in &tree.written {
        let (_, _, systemd) = views
            .iter()
            .find(|(u, _, _)| *u == unit)
            .unwrap_or_else(|| panic!("tree {}: {unit} was not looked at", tree.name));
        let argv: Vec<Vec<String>> = systemd.exec["ExecStart"]
            .iter()
            .map(|e| e.argv.clone())
            .collect();
        report.check(
            &tree.name,
            unit,
            "ExecStart argv as written by format_exec",
            &vec![words.clone()],
            &argv,
        );
    }

    for (unit, reader, systemd) in views {
        report.units += 1;
        let t = tree.name.as_str();
        eprintln!("{}", describe(t, unit, &reader, &systemd));
        let must_refuse = refused_tree || outside.contains(unit);
        match reader {
            ReaderView::Refused(error, loaded) => {
                report.refusals += 1;
                check_refusal(&mut report, t, unit, &error, &systemd, &messages, &inside);
                if let Some(loaded) = loaded {
                    compare_unit(&mut report, t, &loaded, &systemd, home, &inside);
                }
            }
            ReaderView::Loaded(loaded, exec) => {
                if must_refuse {
                    report.fail(
                        t,
                        unit,
                        "refusal",
                        format!(
                            "the reader loaded it (systemd: LoadState={}), but this tree/name must be refused",
                            systemd.load_state
                        ),
                    );
                }
                let want_state = if loaded.masked { "masked" } else { "loaded" };
                report.check(
                    t,
                    unit,
                    "LoadState",
                    &want_state.to_string(),
                    &systemd.load_state,
                );
                compare_unit(&mut report, t, &loaded, &systemd, home, &inside);
                if !loaded.masked && unit.ends_with(".service") {
                    compare_service(&mut report, t, &loaded, &exec, &systemd, home, &inside);
                }
            }
        }
    }

    uninstall(sd, tree, installed);
    daemon_reload(sd);
    for unit in &units {
        let gone = manager_view(sd, unit);
        assert_eq!(
            gone.load_state, "not-found",
            "tree {}: {unit} is still known to systemd after its files were removed",
            tree.name
        );
    }
    report
}

/// One line per unit for `--nocapture`: what each side made of it.
fn describe(tree: &str, unit: &str, reader: &ReaderView, systemd: &SdUnit) -> String {
    let reader = match reader {
        ReaderView::Loaded(l, _) if l.masked => "masked".to_string(),
        ReaderView::Loaded(..) => "loaded".to_string(),
        ReaderView::Refused(e, _) => format!("refuses ({})", e.message),
    };
    let argv: Option<Vec<&Vec<String>>> = systemd
        .exec
        .get("ExecStart")
        .map(|c| c.iter().map(|e| &e.argv).collect());
    format!(
        "[tree {tree}] {unit}: the reader {reader}; systemd LoadState={} ExecStart argv={argv:?}",
        systemd.load_state
    )
}

/// A refusal is right when systemd does not load the unit either (and, where the reader
/// names a line, complained about that line), or when the unit is listed in [`STRICTER`] and
/// systemd warned about the very same line and skipped it.
fn check_refusal(
    report: &mut Report,
    tree: &str,
    unit: &str,
    error: &UnitError,
    systemd: &SdUnit,
    messages: &[String],
    inside: &dyn Fn(&Path) -> String,
) {
    let shown = match (&error.path, error.line) {
        (Some(p), Some(l)) => format!("{}:{l}: {}", inside(p), error.message),
        _ => error.message.clone(),
    };
    let complaint = match (&error.path, error.line) {
        (Some(p), Some(l)) => {
            let at = format!("{}:{l}: ", inside(p));
            messages.iter().find(|m| m.starts_with(&at)).cloned()
        }
        _ => None,
    };
    let loads = systemd.load_state == "loaded";
    let stricter = STRICTER.iter().find(|(t, u, _)| *t == tree && *u == unit);
    match (&complaint, loads, stricter) {
        // Both refuse the unit; where the reader names a line, systemd names it too.
        (Some(c), false, None) => report.notes.push(format!(
            "[tree {tree}] {unit}: both refuse (LoadState={}); reader: {shown}; systemd at that line: {c:?}",
            systemd.load_state
        )),
        (None, false, None) if error.line.is_none() => report.notes.push(format!(
            "[tree {tree}] {unit}: both refuse (LoadState={}); reader: {shown}",
            systemd.load_state
        )),
        // Deliberately stricter: systemd warned about the very same line and skipped it.
        (Some(c), true, Some((_, _, why))) => {
            report.stricter_seen.push(format!("{tree}/{unit}"));
            report.notes.push(format!(
                "[tree {tree}] {unit}: the reader refuses ({shown}); systemd loads it, warning {c:?}: {why}"
            ));
        }
        _ => report.fail(
            tree,
            unit,
            "refusal",
            format!(
                "the reader refuses, systemd disagrees:\n    reader:    {shown}\n    systemd:   LoadState={}, complaint at that line: {complaint:?} (listed in STRICTER: {})\n    systemd's messages: {messages:?}",
                systemd.load_state,
                stricter.is_some()
            ),
        ),
    }
}

/// Id, Names, FragmentPath, DropInPaths, Description.
fn compare_unit(
    report: &mut Report,
    tree: &str,
    loaded: &LoadedUnit,
    systemd: &SdUnit,
    home: &str,
    inside: &dyn Fn(&Path) -> String,
) {
    let unit = loaded.name.as_str();
    let id = loaded.names.first().map(ToString::to_string);
    report.check(tree, unit, "Id", &id, &Some(systemd.id.clone()));
    let names: BTreeSet<String> = loaded.names.iter().map(ToString::to_string).collect();
    report.check(tree, unit, "Names", &names, &systemd.names);
    report.check(
        tree,
        unit,
        "FragmentPath",
        &inside(&loaded.fragment),
        &systemd.fragment,
    );
    let dropins: Vec<String> = loaded.dropins.iter().map(|p| inside(p)).collect();
    report.check(tree, unit, "DropInPaths", &dropins, &systemd.dropins);
    if loaded.masked {
        return;
    }
    let id_name = UnitName::parse(&systemd.id).unwrap();
    let spec = Specifiers {
        unit: &id_name,
        home,
    };
    let description = last_value(loaded, "Unit", "Description")
        .map(|d| spec.expand(&d))
        .unwrap_or_else(|| systemd.id.clone());
    report.check(
        tree,
        unit,
        "Description",
        &description,
        &systemd.description,
    );
}

/// Every `Exec*` key (and the file each command comes from), `WorkingDirectory`,
/// `Environment`.
fn compare_service(
    report: &mut Report,
    tree: &str,
    loaded: &LoadedUnit,
    exec: &BTreeMap<&'static str, Vec<(ExecCommand, PathBuf)>>,
    systemd: &SdUnit,
    home: &str,
    inside: &dyn Fn(&Path) -> String,
) {
    let unit = loaded.name.as_str();
    let id_name = UnitName::parse(&systemd.id).unwrap();
    let spec = Specifiers {
        unit: &id_name,
        home,
    };
    for key in EXEC_KEYS {
        let mut want = Vec::new();
        for (cmd, file) in &exec[key] {
            // Where the reader found the command must be a file systemd read for this unit.
            let file = inside(file);
            if file != systemd.fragment && !systemd.dropins.contains(&file) {
                report.fail(
                    tree,
                    unit,
                    &format!("{key} origin"),
                    format!(
                        "the reader takes it from {file}, which is neither systemd's FragmentPath {:?} nor one of its DropInPaths {:?}",
                        systemd.fragment, systemd.dropins
                    ),
                );
            }
            for word in &cmd.argv {
                report.dollar_words += usize::from(word.contains('$'));
                report.specifier_words += usize::from(word.contains('%'));
            }
            let words: Vec<String> = cmd.argv.iter().map(|w| spec.expand(w)).collect();
            let argv = if cmd.has_prefix('@') {
                words[1..].to_vec()
            } else {
                words.clone()
            };
            want.push(SdExec {
                path: words[0].clone(),
                argv,
                flags: flags_for(&cmd.prefixes),
            });
            // What runs: the reader's program_and_args() is systemd's path + argv[1..].
            if let Some(got) = systemd.exec[key].get(want.len() - 1) {
                let runs: Vec<String> = cmd
                    .program_and_args()
                    .iter()
                    .map(|w| spec.expand(w))
                    .collect();
                let sd_runs: Vec<String> = std::iter::once(got.path.clone())
                    .chain(got.argv.iter().skip(1).cloned())
                    .collect();
                report.check(
                    tree,
                    unit,
                    &format!("{key} program_and_args()"),
                    &runs,
                    &sd_runs,
                );
            }
        }
        report.check(tree, unit, &format!("{key}Ex"), &want, &systemd.exec[key]);
    }

    let workdir = last_value(loaded, "Service", "WorkingDirectory")
        .map(|w| {
            assert!(
                !w.starts_with(['-', '~']),
                "[tree {tree}] {unit}: WorkingDirectory={w}: `-`/`~` forms are not modelled by the oracle yet"
            );
            spec.expand(&w)
        })
        .unwrap_or_default();
    report.check(
        tree,
        unit,
        "WorkingDirectory",
        &workdir,
        &systemd.working_directory,
    );

    // Later assignments of a variable replace earlier ones in place (`strv_env_replace`).
    let mut environment: Vec<String> = Vec::new();
    for (value, _, _) in effective(loaded, "Service", "Environment") {
        for assignment in split_environment(&value) {
            let assignment = spec.expand(&assignment);
            let key = assignment
                .split_once('=')
                .map(|(k, _)| k.to_string())
                .unwrap_or_else(|| {
                    panic!("[tree {tree}] {unit}: Environment word {assignment:?} has no '='")
                });
            match environment
                .iter_mut()
                .find(|e| e.split_once('=').map(|(k, _)| k) == Some(&key))
            {
                Some(existing) => *existing = assignment,
                None => environment.push(assignment),
            }
        }
    }
    report.check(
        tree,
        unit,
        "Environment",
        &environment,
        &systemd.environment,
    );
}
