//! Differential test of bind removal against gunicorn's real parser.
//!
//! Thousands of generated command lines (binds in every spelling, clustered
//! short flags, abbreviations, values that look like options, `--`) are
//! filtered by `remove_binds`; then the pinned gunicorn's own argparse
//! parser reads both the original and the filtered line. Wherever gunicorn
//! accepts the original, it must accept the filtered one, see no bind and no
//! daemon, and see every other setting exactly as before.

mod common;
use gunicorn_launcher::gunicorn_args::remove_binds;
use std::io::Write;
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
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
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

const CHECKER: &str = r#"
import sys
from gunicorn.config import Config
def parse(argv):
    p = Config().parser()
    p.exit = lambda status=0, message=None: (_ for _ in ()).throw(ValueError(message))
    p.error = lambda message: (_ for _ in ()).throw(ValueError(message))
    try:
        return vars(p.parse_args(argv))
    except (ValueError, SystemExit):
        return None
bad = 0; compared = 0
for line in sys.stdin.buffer.read().split(b"\x1e"):
    if not line:
        continue
    orig, filt = [[t.decode() for t in part.split(b"\x1f")] if part else [] for part in line.split(b"\x1d")]
    a = parse(orig)
    if a is None:
        continue
    compared += 1
    b = parse(filt)
    if b is None:
        bad += 1; print("REJECTED", orig, "->", filt); continue
    if b.get("bind") not in (None, []) or b.get("daemon"):
        bad += 1; print("BIND LEFT", orig, "->", filt, b.get("bind"), b.get("daemon")); continue
    for k in set(a) | set(b):
        if k in ("bind", "daemon"):
            continue
        if a.get(k) != b.get(k):
            bad += 1; print("CHANGED", k, orig, "->", filt, a.get(k), b.get(k)); break
print(f"compared {compared} failures {bad}")
"#;

#[test]
fn filtered_command_lines_mean_the_same_to_gunicorn_minus_binds() {
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let mut input = Vec::new();
    for _ in 0..4000 {
        let n = (rng.next() % 8) as usize;
        let argv: Vec<String> = (0..n).map(|_| rng.pick(TOKENS).to_string()).collect();
        let filtered = remove_binds(&argv);
        input.extend(argv.join("\x1f").as_bytes());
        input.push(0x1d);
        input.extend(filtered.args.join("\x1f").as_bytes());
        input.push(0x1e);
    }
    let mut py = Command::new(common::python())
        .args(["-c", CHECKER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the venv's python");
    py.stdin.take().unwrap().write_all(&input).unwrap();
    let out = py.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default();
    let compared: usize = last
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    assert!(
        compared > 1000,
        "too few cases gunicorn accepted to mean anything: {last}"
    );
    assert!(last.ends_with("failures 0"), "{text}");
}
