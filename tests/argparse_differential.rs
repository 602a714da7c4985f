//! Differential tests against the pinned gunicorn's own parser and Python's
//! own `shlex`, in the venv's python (`common::python()`).
//!
//! - Bind removal: thousands of generated argument lists (binds in every
//!   spelling, clustered short flags, abbreviations, values that look like
//!   options, `--`) are filtered by `remove_binds`; gunicorn's argparse
//!   parser reads the original and the filtered list. Wherever gunicorn
//!   accepts the original, it must accept the filtered one, see no bind and
//!   no daemon, and see every other setting exactly as before.
//! - Assembled commands: `command::assemble` on generated gunicorn command
//!   lines and on every input of the `assemble` fuzz target's corpus and
//!   seeds (decoded as the target decodes them). gunicorn's parser reads the
//!   arguments after the program: wherever it accepts the original ones, it
//!   must accept the assembled ones and read exactly one bind, ours
//!   (`0.0.0.0:PORT`, `[::]:PORT`), no daemon, and every other setting as in
//!   the original. This is the judgement the fuzz targets leave out: asking
//!   `remove_binds` whether `remove_binds` was right proves nothing.
//! - `GUNICORN_CMD_ARGS`: thousands of generated values (quotes, escapes,
//!   `#`, odd whitespace, unbalanced quotes) are split by `pyshlex::split`
//!   and by Python's `shlex.split`: the same words, the same refusals (and
//!   `pyshlex::join` is `shlex.join`). The value `command::env_changes`
//!   writes back, split by Python, must mean to gunicorn's parser what the
//!   original meant, minus binds and daemon (the launcher's own bind may
//!   stand there: the command line's, always the launcher's, replaces it).
//!
//! Every case is generated from a fixed seed: the same cases on every run.
//! A failure names each offending case.

mod common;
#[path = "../fuzz/fuzz_targets/input.rs"]
mod fuzz_input;

use gunicorn_launcher::command::{self, EnvChange};
use gunicorn_launcher::gunicorn_args::remove_binds;
use gunicorn_launcher::pyshlex;
use serde_json::{Value, json};
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::process::{Command, Stdio};

/// A small deterministic generator: the same cases on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

const TOKENS: &[&str] = &[
    "-b",
    "--bind",
    "--bi",
    "--bin",
    "-b127.0.0.1:8001",
    "-b=127.0.0.1:8001",
    "--bind=127.0.0.1:8001",
    "--bi=1.2.3.4:5",
    "127.0.0.1:8001",
    "unix:/tmp/x.sock",
    "fd://3",
    "-D",
    "--daemon",
    "--da",
    "--daem",
    "-R",
    "-RD",
    "-DR",
    "-Rb",
    "-DbX:1",
    "-RbX:2",
    "-RDb",
    "-Dw3",
    "-Rw",
    "-w",
    "--workers",
    "--wo",
    "3",
    "-1",
    "-c",
    "gunicorn.conf.py",
    "--name",
    "--access-logformat",
    "%(h)s -b",
    "-b %(h)s",
    "--reuse-port",
    "--reuse",
    "--proxy-protocol",
    "app:app",
    "hello:app",
    "--",
    "-",
    "-k",
    "sync",
    "--log-level",
    "debug",
    "-t",
    "30",
    "--preload",
    "-e",
    "A=1",
    "-eB=2",
    "--chdir",
    "/tmp",
    "-n",
    "name",
    "-p",
    "/tmp/pid",
];

/// More spellings for the assembled commands: our own bind in several
/// forms, IPv6, optional-value options, clusters that split, `#`.
const MORE_TOKENS: &[&str] = &[
    "0.0.0.0:8001",
    "--bind=0.0.0.0:8001",
    "-b0.0.0.0:9000",
    "[::]:8001",
    "-b[::1]:8001",
    "--bind=[::]:80",
    "--proxy-p",
    "--proxy-protocol=v1",
    "-Dn=x",
    "-n=",
    "-Rn",
    "-RDn",
    "-Rbunix:/s",
    "-Db",
    "--b",
    "--d",
    "--ba",
    "--backlog",
    "64",
    "--dae",
    "-#",
    "#x",
    "--graceful-timeout",
    "-m",
    "007",
    "-h",
    "-v",
];

/// The judge: gunicorn's parser and Python's `shlex`, in one process. One
/// JSON record per line in; a `FAIL` line per offending case and a `SUMMARY`
/// line of counts out. One parser, built once (a
/// parse does not change it), and stdout muted while it parses (`-h`
/// prints its help before it exits).
const CHECKER: &str = r#"
import io, json, shlex, sys
from gunicorn.config import Config

class Refused(Exception):
    pass

def refuse(*args, **kwargs):
    raise Refused(repr(args))

PARSER = Config().parser()
PARSER.exit = refuse
PARSER.error = refuse

def parse(argv):
    out = sys.stdout
    sys.stdout = io.StringIO()
    try:
        return vars(PARSER.parse_args(argv))
    except Refused:
        return None
    except Exception as e:  # any other way gunicorn would not start
        return None
    finally:
        sys.stdout = out

def py_split(s):
    try:
        return {"ok": shlex.split(s)}
    except ValueError as e:
        return {"err": str(e)}

counts = {}
def count(kind, what):
    counts.setdefault(kind, {"compared": 0, "skipped": 0, "failures": 0})[what] += 1

def fail(kind, case, *what):
    count(kind, "failures")
    print("FAIL", kind, case, *what)

def same_but_binds(kind, case, orig, new, bind):
    """new, read by gunicorn, holds exactly `bind` (None: no bind at all),
    no daemon, and every other setting of orig."""
    a = parse(orig)
    if a is None:
        count(kind, "skipped")
        return
    count(kind, "compared")
    b = parse(new)
    if b is None:
        return fail(kind, case, "REJECTED", repr(orig), "->", repr(new))
    got = b.get("bind")
    if bind == "ours or none":
        # GUNICORN_CMD_ARGS: the command line's bind, always the launcher's,
        # replaces any bind there; only the launcher's own may be left.
        wrong = got not in (None, [], ["0.0.0.0:8001"])
    else:
        wrong = (got != [bind]) if bind is not None else (got not in (None, []))
    if wrong:
        return fail(kind, case, "BIND", repr(orig), "->", repr(new), "reads bind", repr(got), "want", repr(bind))
    if b.get("daemon"):
        return fail(kind, case, "DAEMON", repr(orig), "->", repr(new))
    for k in sorted(set(a) | set(b)):
        if k in ("bind", "daemon"):
            continue
        if a.get(k) != b.get(k):
            return fail(kind, case, "CHANGED", k, repr(orig), "->", repr(new), repr(a.get(k)), "->", repr(b.get(k)))

for line in sys.stdin:
    r = json.loads(line)
    kind, case = r["kind"], r["case"]
    if kind == "split":
        count(kind, "compared")
        py = py_split(r["s"])
        if py != r["rust"]:
            fail(kind, case, repr(r["s"]), "pyshlex", json.dumps(r["rust"]), "python", json.dumps(py))
    elif kind == "join":
        count(kind, "compared")
        py = shlex.join(r["words"])
        if py != r["rust"]:
            fail(kind, case, repr(r["words"]), "pyshlex", repr(r["rust"]), "python", repr(py))
    elif kind == "filtered":
        same_but_binds(kind, case, r["orig"], r["new"], "0.0.0.0:1")
    elif kind == "assembled":
        same_but_binds(kind, case, r["orig"], r["new"], r["bind"])
    elif kind == "env":
        words = py_split(r["s"]).get("ok")
        rust = r["rust"]
        if words is None:
            count(kind, "skipped")  # refused alike: the split records say so
        elif "err" in rust:
            if "\0" in r["s"]:
                count(kind, "skipped")
            else:
                count(kind, "compared")
                fail(kind, case, "REFUSED", repr(r["s"]), rust["err"])
        elif "set" in rust:
            new = py_split(rust["set"]).get("ok")
            if new is None:
                count(kind, "compared")
                fail(kind, case, "UNSPLITTABLE", repr(r["s"]), "->", repr(rust["set"]))
            else:
                same_but_binds(kind, case, words, new, "ours or none")
        else:
            same_but_binds(kind, case, words, [] if rust.get("unset") else words, None)
    else:
        raise SystemExit("unknown record " + kind)

print("SUMMARY", json.dumps(counts, sort_keys=True))
"#;

/// What the checker counted for one kind of record.
#[derive(Debug, Default)]
struct Counts {
    compared: u64,
    skipped: u64,
}

/// Runs the checker over `records`; fails with every offending case, or
/// returns the counts per kind.
fn check(records: &[Value]) -> std::collections::BTreeMap<String, Counts> {
    let mut input = Vec::new();
    for r in records {
        serde_json::to_writer(&mut input, r).unwrap();
        input.push(b'\n');
    }
    let mut py = Command::new(common::python())
        .args(["-c", CHECKER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the venv's python");
    let mut stdin = py.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = py.wait_with_output().unwrap();
    writer.join().unwrap().expect("writing to the checker");
    let text = String::from_utf8_lossy(&out.stdout);
    let summary = text.lines().find_map(|l| l.strip_prefix("SUMMARY "));
    eprintln!("checker: {}", summary.unwrap_or("(no summary)"));
    let failures: Vec<&str> = text.lines().filter(|l| l.starts_with("FAIL ")).collect();
    assert!(
        failures.is_empty(),
        "{} case(s) where gunicorn or Python disagree with the launcher:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let summary = summary.unwrap_or_else(|| {
        panic!(
            "the checker did not finish ({}):\n{text}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let summary: Value = serde_json::from_str(summary).unwrap();
    summary
        .as_object()
        .unwrap()
        .iter()
        .map(|(kind, c)| {
            assert_eq!(c["failures"], 0, "{kind}: {c}");
            let n = |k: &str| c[k].as_u64().unwrap();
            (
                kind.clone(),
                Counts {
                    compared: n("compared"),
                    skipped: n("skipped"),
                },
            )
        })
        .collect()
}

fn gen_args(rng: &mut Rng, from: &[&[&str]], max: usize) -> Vec<String> {
    let n = rng.below(max + 1);
    (0..n)
        .map(|_| {
            let list = from[rng.below(from.len())];
            rng.pick(list).to_string()
        })
        .collect()
}

#[test]
fn filtered_command_lines_mean_the_same_to_gunicorn_minus_binds() {
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let mut records = Vec::new();
    for case in 0..20_000 {
        let argv = gen_args(&mut rng, &[TOKENS], 7);
        // A bind put back where `bind_at` says must keep every other meaning.
        let filtered = remove_binds(&argv);
        let mut new = filtered.args;
        new.splice(
            filtered.bind_at..filtered.bind_at,
            ["--bind".to_string(), "0.0.0.0:1".to_string()],
        );
        records.push(json!({
            "kind": "filtered", "case": format!("filtered#{case}"),
            "orig": argv, "new": new,
        }));
    }
    let counts = check(&records);
    let c = &counts["filtered"];
    assert!(
        c.compared > 5000,
        "too few cases gunicorn accepted to mean anything: {} of {}",
        c.compared,
        c.compared + c.skipped
    );
}

/// The fuzz target's inputs: `(file name, decoded input)`, corpus and seeds.
fn fuzz_inputs() -> Vec<(String, fuzz_input::Input)> {
    let mut inputs = Vec::new();
    for dir in ["fuzz/corpus/assemble", "fuzz/seeds/assemble"] {
        let dir = common::root().join(dir);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files {
            let data = std::fs::read(&f).unwrap();
            let name = f
                .strip_prefix(common::root())
                .unwrap_or(&f)
                .display()
                .to_string();
            inputs.push((name, fuzz_input::decode(&data)));
        }
    }
    assert!(inputs.len() > 100, "the fuzz corpus is missing");
    inputs
}

/// A record judging `assemble(command)`, or None when it refuses the
/// command (a command `launch::recognise` refuses is never run). Checks
/// what needs no parser: the program tokens kept, our bind right after them
/// (or after a bare `--proxy-protocol`); gunicorn's parser judges the rest.
fn assembled_record(case: &str, command: &[String], host: IpAddr, port: u16) -> Option<Value> {
    let a = command::assemble(command, host, port).ok()?;
    let plen = a.launch.program_len;
    let ours = command::bind_value(host, port);
    assert_eq!(
        a.argv[..plen],
        command[..plen],
        "{case}: program tokens changed: {command:?} -> {:?}",
        a.argv
    );
    // Right after the program, or right after a bare `--proxy-protocol`
    // (any prefix) that the removed bind kept from taking a value.
    let at = a
        .argv
        .windows(2)
        .position(|w| w == ["--bind".to_string(), ours.clone()])
        .unwrap_or_else(|| panic!("{case}: no bind of ours: {command:?} -> {:?}", a.argv));
    let after = &a.argv[at - 1];
    assert!(
        at == plen || (after.len() >= 8 && "--proxy-protocol".starts_with(after.as_str())),
        "{case}: our bind is neither right after the program nor after a bare \
         --proxy-protocol: {command:?} -> {:?}",
        a.argv
    );
    Some(json!({
        "kind": "assembled", "case": case,
        "orig": command[plen..], "new": a.argv[plen..], "bind": ours,
    }))
}

/// Command lines written by hand (tokens separated by single spaces): the
/// README's forms, and what earlier runs of this test found.
const HAND_WRITTEN_COMMANDS: &[&str] = &[
    "gunicorn -w 3 -b 127.0.0.1:8001 solvit.wsgi",
    "/opt/solvit/venv/bin/gunicorn -w 3 -b 127.0.0.1:8001 solvit.wsgi",
    "python3 -u -m gunicorn --bind=127.0.0.1:8001 -D -- app",
    "gunicorn -RbX:2 -DbX:1 --bi 1:2 --bin=3:4 -b=5:6 -b7:8 --bind fd://3 app",
    "gunicorn -Dn=x -n= app:app",
    // A bare `--proxy-protocol` whose bind goes, with only positionals
    // and a `--` after it: it must not take `app:app` as its value.
    "gunicorn --proxy-protocol -b 127.0.0.1:8001 app:app -- x",
    // Two `--proxy-protocol` spellings: the last one wins, so their order
    // must stay.
    "gunicorn --proxy-protocol=v1 --proxy-protocol -- app",
    "gunicorn --proxy-protocol app:app --proxy-protocol -b 127.0.0.1:8001 --",
];

#[test]
fn assembled_commands_hold_exactly_our_bind_for_gunicorn() {
    let mut rng = Rng(0x2545f4914f6cdd1d);
    let programs: &[&[&str]] = &[
        &["gunicorn"],
        &["gunicorn"],
        &["gunicorn"],
        &["/opt/venv/bin/gunicorn"],
        &["python3", "-m", "gunicorn"],
        &["python3", "-u", "/v/bin/gunicorn"],
    ];
    let hosts: [IpAddr; 2] = [[0, 0, 0, 0].into(), "::".parse().unwrap()];
    let mut records = Vec::new();
    for case in 0..20_000 {
        let mut command: Vec<String> = programs[rng.below(programs.len())]
            .iter()
            .map(|s| s.to_string())
            .collect();
        command.extend(gen_args(&mut rng, &[TOKENS, TOKENS, MORE_TOKENS], 8));
        let host = hosts[rng.below(2)];
        let port = [8001, 9000, 80][rng.below(3)];
        let name = format!("assembled#{case} ({host} port {port})");
        records.extend(assembled_record(&name, &command, host, port));
    }
    for (i, line) in HAND_WRITTEN_COMMANDS.iter().enumerate() {
        let command: Vec<String> = line.split(' ').map(String::from).collect();
        for host in hosts {
            let name = format!("hand-written-command#{i} ({host})");
            records.extend(assembled_record(&name, &command, host, 8001));
        }
    }
    let generated = records.len();
    let mut refused = 0;
    for (name, input) in fuzz_inputs() {
        match assembled_record(&name, &input.command, input.host, input.port) {
            Some(r) => records.push(r),
            None => refused += 1,
        }
    }
    let from_corpus = records.len() - generated;
    let counts = check(&records);
    let c = &counts["assembled"];
    eprintln!(
        "assembled: {generated} generated or hand-written and {from_corpus} fuzz inputs ({refused} not gunicorn commands); gunicorn accepted {} originals, refused {}",
        c.compared, c.skipped
    );
    assert!(c.compared > 5000, "too few cases gunicorn accepted: {c:?}");
    assert!(from_corpus > 100, "too few fuzz inputs assembled");
}

/// Words for `GUNICORN_CMD_ARGS` values: gunicorn's options, and words
/// that need quoting.
const WORDS: &[&str] = &[
    "#x",
    "#",
    "-b#",
    "--name=#x",
    "a b",
    "it's",
    "say \"hi\"",
    "back\\slash",
    "$HOME",
    "é",
    "tab\there",
    "new\nline",
    "",
    "'",
    "\"",
    "\\",
];

/// One word as a shell line might spell it; some spellings change the word
/// or leave a quote open, which is the point.
fn spell(rng: &mut Rng, w: &str) -> String {
    match rng.below(9) {
        0 | 1 => w.to_string(),
        2 => format!("'{}'", w.replace('\'', r"'\''")),
        3 => format!("\"{}\"", w.replace('\\', r"\\").replace('"', "\\\"")),
        4 => format!("\"{w}\""),
        5 => w.chars().map(|c| format!("\\{c}")).collect(),
        6 => pyshlex::quote(w),
        7 => {
            let mid = w
                .char_indices()
                .nth(w.chars().count() / 2)
                .map_or(0, |(i, _)| i);
            format!("{}\"{}\"", &w[..mid], &w[mid..])
        }
        _ => format!("{w}\\"),
    }
}

/// A `GUNICORN_CMD_ARGS` value: gunicorn words spelled in every quoting
/// style, separated by any whitespace, sometimes with a stray quote,
/// backslash or `#` inserted.
fn cmd_args_value(rng: &mut Rng) -> String {
    const SEPARATORS: &[&str] = &[" ", " ", "  ", "\t", "\n", " \r\n ", "\x0b", "\x0c", ""];
    let words = gen_args(rng, &[TOKENS, TOKENS, MORE_TOKENS, WORDS], 7);
    let mut s = String::new();
    if rng.chance(4) {
        s.push_str(rng.pick(SEPARATORS));
    }
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            s.push_str(if rng.chance(8) {
                rng.pick(SEPARATORS)
            } else {
                " "
            });
        }
        let spelled = if rng.chance(3) {
            spell(rng, w)
        } else {
            w.clone()
        };
        s.push_str(&spelled);
    }
    if rng.chance(5) {
        let stray = rng.pick(&["'", "\"", "\\", "#", " #", "\\\n"]);
        let at = s
            .char_indices()
            .map(|(i, _)| i)
            .chain([s.len()])
            .collect::<Vec<_>>();
        let at = at[rng.below(at.len())];
        s.insert_str(at, stray);
    }
    s
}

/// Characters whose handling differs between shells and splitters.
const SOUP: &[&str] = &[
    " ", "\t", "\n", "\r", "\x0b", "\x0c", "\u{a0}", "'", "\"", "\\", "#", "$", "`", "a", "b", "-",
    "=", ":", "é", "ß", "\0", ";", "|", "*", "~", "!", "(", "\u{2028}",
];

fn split_record(case: &str, s: &str) -> Value {
    let rust = match pyshlex::split(s) {
        Ok(words) => json!({ "ok": words }),
        Err(e) => json!({ "err": e }),
    };
    json!({ "kind": "split", "case": case, "s": s, "rust": rust })
}

fn env_record(case: &str, s: &str) -> Value {
    let env = [("GUNICORN_CMD_ARGS".to_string(), s.to_string())];
    let rust = match command::env_changes(&env, "0.0.0.0:8001") {
        Err(e) => json!({ "err": e }),
        Ok((changes, _)) => match changes.as_slice() {
            [] => json!({ "unchanged": true }),
            [EnvChange::Unset(_)] => json!({ "unset": true }),
            [EnvChange::Set(_, v)] => json!({ "set": v }),
            other => panic!("{case}: several changes for {s:?}: {other:?}"),
        },
    };
    json!({ "kind": "env", "case": case, "s": s, "rust": rust })
}

/// Values written by hand: the `#` case that motivated `pyshlex`, and each
/// rule of posix `shlex`.
const HAND_WRITTEN: &[&str] = &[
    "--workers 2 #x -b 127.0.0.1:8001",
    "--workers 2 # -b 127.0.0.1:8001",
    "-w 2 #-D",
    "#-b 1.2.3.4:5",
    "--name '#' -b 1:2",
    "--bind=127.0.0.1:8001 --access-logfile '-'",
    "-n \"a\\$b\\\"c\" -D --access-logformat '%(h)s #' x\\ y",
    "\"a\\\nb\" -b x:1",
    "a\\\nb",
    "''",
    "\"\"",
    "a '' b",
    "'a\\b'",
    "\\'",
    "\"\\'\"",
    "\"\\\\\"",
    "\\",
    "'",
    "\"",
    "a\"b'c",
    "\"\\",
    "\x0b-b\x0c1:2",
    "-b\u{a0}1:2",
    "",
    " \t\r\n",
];

/// The `GUNICORN_CMD_ARGS` values both tests below use: hand-written,
/// generated gunicorn lines, character soup, and the fuzz inputs' values.
fn cmd_args_values() -> Vec<(String, String)> {
    let mut rng = Rng(0xda942042e4dd58b5);
    let mut values: Vec<(String, String)> = Vec::new();
    for (i, s) in HAND_WRITTEN.iter().enumerate() {
        values.push((format!("hand-written#{i}"), s.to_string()));
    }
    for case in 0..20_000 {
        values.push((format!("cmd-args#{case}"), cmd_args_value(&mut rng)));
    }
    for case in 0..20_000 {
        let n = rng.below(17);
        let s: String = (0..n).map(|_| rng.pick(SOUP)).collect();
        values.push((format!("soup#{case}"), s));
    }
    for (name, input) in fuzz_inputs() {
        for (var, value) in input.env {
            if var == "GUNICORN_CMD_ARGS" {
                values.push((name.clone(), value));
            }
        }
    }
    values
}

#[test]
fn cmd_args_split_and_join_exactly_as_python_shlex() {
    let values = cmd_args_values();
    let mut records: Vec<Value> = values
        .iter()
        .map(|(case, s)| split_record(case, s))
        .collect();
    // shlex.join: generated words, and every fuzz command's argv.
    let mut rng = Rng(0x6a09e667f3bcc909);
    for case in 0..5_000 {
        let words = gen_args(&mut rng, &[TOKENS, WORDS, SOUP], 6);
        assert_eq!(
            pyshlex::split(&pyshlex::join(&words)).as_ref(),
            Ok(&words),
            "join#{case}"
        );
        records.push(json!({
            "kind": "join", "case": format!("join#{case}"),
            "words": words, "rust": pyshlex::join(&words),
        }));
    }
    for (name, input) in fuzz_inputs() {
        records.push(json!({
            "kind": "join", "case": name,
            "rust": pyshlex::join(&input.command), "words": input.command,
        }));
    }
    let counts = check(&records);
    let (split, join) = (&counts["split"], &counts["join"]);
    assert_eq!(split.compared as usize, values.len());
    assert!(join.compared >= 5_000, "{join:?}");
    // The generators reach both outcomes of a split, and `#` words.
    let refused = values
        .iter()
        .filter(|(_, s)| pyshlex::split(s).is_err())
        .count();
    assert!(
        refused > 1_000 && refused < values.len() / 2,
        "{refused} of {} refused",
        values.len()
    );
    let hashed = values
        .iter()
        .filter(|(_, s)| pyshlex::split(s).is_ok_and(|w| w.iter().any(|w| w.starts_with('#'))))
        .count();
    assert!(
        hashed > 1_000,
        "only {hashed} values with a word starting with #"
    );
    eprintln!(
        "split: {} values, same words or the same refusal as Python ({refused} refused, {hashed} with a #word); join: {} word lists",
        values.len(),
        join.compared
    );
}

#[test]
fn rewritten_cmd_args_mean_the_same_to_gunicorn_minus_binds() {
    let values = cmd_args_values();
    let records: Vec<Value> = values.iter().map(|(case, s)| env_record(case, s)).collect();
    let counts = check(&records);
    let env = &counts["env"];
    assert!(
        env.compared > 5_000,
        "too few values gunicorn accepted: {env:?}"
    );
    eprintln!(
        "env: {} values gunicorn accepts judged, {} it refuses (or Python cannot split) skipped",
        env.compared, env.skipped
    );
}

#[test]
fn the_fuzz_decoder_reads_a_seed_as_documented() {
    // `input.rs` is the file the fuzz target includes: a spot check that it
    // reads a seed as the target's README describes.
    let seed = Path::new("fuzz/seeds/assemble/bind-v6-header");
    let input = fuzz_input::decode(&std::fs::read(common::root().join(seed)).unwrap());
    assert_eq!(input.host, "::".parse::<IpAddr>().unwrap());
    assert_eq!(input.port, 9000);
    assert!(input.env.is_empty());
    assert_eq!(input.command, ["gunicorn", "-b", "[::]:9000", "app"]);
}
