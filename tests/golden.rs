//! What the commands print, held byte for byte: `print-command` for a set of command lines,
//! `install --dry-run` (text and JSON) and `status --json` on every fixture tree, and
//! `check --json` with nothing listening. A change of the code's layout must not change a
//! byte of these; a change of behaviour changes them on purpose, and the diff shows what.
//! `GOLDEN_UPDATE=1 cargo test --test golden` writes the files again
//! (tests/fixtures/golden/), to be reviewed like any other change.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

/// One command's exit code, stdout and stderr, with the machine's paths replaced by names.
fn outcome(mut c: Command, replace: &[(&str, &str)]) -> String {
    let out = c.output().unwrap();
    let mut text = format!(
        "exit {}\n--- stdout\n{}--- stderr\n{}",
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for (from, to) in replace {
        text = text.replace(from, to);
    }
    text
}

/// Every run of two or more spaces made two spaces.
fn collapse_runs_of_spaces(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut spaces = 0;
    for c in text.chars() {
        if c == ' ' {
            spaces += 1;
            continue;
        }
        out.push_str(match spaces {
            0 => "",
            1 => " ",
            _ => "  ",
        });
        spaces = 0;
        out.push(c);
    }
    out
}

/// Compares `text` with the golden file `name`, or writes it with GOLDEN_UPDATE=1.
fn golden(name: &str, text: &str) {
    let path = root().join("tests/fixtures/golden").join(name);
    if std::env::var_os("GOLDEN_UPDATE").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (GOLDEN_UPDATE=1 writes it)", path.display()));
    assert!(
        want == text,
        "{} differs:\n--- want\n{want}\n--- got\n{text}",
        path.display()
    );
}

/// A private copy of the fixture tree `case`.
fn tree(case: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let from = root().join("tests/fixtures/units").join(case);
    let ok = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(dir.path())
        .status()
        .unwrap()
        .success();
    assert!(ok);
    dir
}

#[test]
fn print_command_prints_the_same() {
    let lines: [&[&str]; 6] = [
        &["gunicorn", "-b", "127.0.0.1:8001", "app:app"],
        &[
            "gunicorn",
            "--bind=localhost:8001",
            "-w",
            "3",
            "--daemon",
            "solvit.wsgi",
        ],
        &[
            "python3",
            "-m",
            "gunicorn",
            "-b",
            "unix:/run/x.sock",
            "-b",
            "[::1]:8001",
            "app:app",
        ],
        &[
            "gunicorn",
            "-c",
            "gunicorn.conf.py",
            "--graceful-timeout",
            "50",
            "app:app",
        ],
        &["gunicorn", "--reuse-port", "app:app"],
        &["gunicorn", "--bind", "0.0.0.0:8002", "app:app"],
    ];
    let venv_bin = format!("{}/bin", venv().display());
    let mut text = String::new();
    for (i, line) in lines.iter().enumerate() {
        for hold in [false, true] {
            let mut c = Command::new(launcher());
            c.arg("print-command");
            if hold {
                c.arg("--hold-socket");
            }
            c.arg("--").args(*line);
            c.env("PATH", format!("{venv_bin}:/usr/bin:/bin"))
                .env_remove("GUNICORN_CMD_ARGS")
                .env_remove("NOTIFY_SOCKET")
                .env_remove("LISTEN_PID")
                .env_remove("LISTEN_FDS");
            text.push_str(&format!("=== {i} hold={hold}: {}\n", line.join(" ")));
            text.push_str(&outcome(c, &[(&venv_bin, "VENV/bin")]));
        }
    }
    golden("print-command.txt", &text);
}

#[test]
fn install_dry_run_and_status_print_the_same_on_every_fixture_tree() {
    let cases = std::fs::read_dir(root().join("tests/fixtures/units")).unwrap();
    let mut names: Vec<String> = cases
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for case in names {
        let t = tree(&case);
        let dir = t.path().to_str().unwrap().to_string();
        let run = |args: &[&str]| {
            let mut c = Command::new(launcher());
            c.args(args).args(["--root", &dir]);
            if args[0] == "install" {
                c.args(["--launcher", "/usr/bin/gunicorn-launcher"]);
            }
            outcome(c, &[(&dir, "ROOT")])
        };
        let mut text = String::new();
        for args in [
            &["install", "--dry-run"][..],
            &["install", "--dry-run", "--json"],
            &["install", "--dry-run", "--socket-unit"],
            &["status", "--json"],
        ] {
            text.push_str(&format!("=== {}\n", args.join(" ")));
            text.push_str(&run(args));
        }
        golden(&format!("units-{case}.txt"), &text);
    }
}

#[test]
fn check_with_nothing_listening_prints_the_same() {
    let ns = Netns::new();
    let mut text = String::new();
    for args in [
        &["check"][..],
        &["check", "--json"],
        &["check", "--port", "8002", "--path", "/healthz"],
    ] {
        let mut c = ns.cmd(launcher());
        c.args(args).env("NO_COLOR", "1");
        text.push_str(&format!("=== {}\n", args.join(" ")));
        text.push_str(&outcome(c, &[]));
    }
    golden("check-nothing-listening.txt", &text);
}

/// A listener that answers (Python's http.server on every interface of a namespace with a
/// second address): the table and the JSON, the server's pid written as PID.
#[test]
fn check_of_a_server_prints_the_same() {
    let lan = Lan::new();
    let dir = tempfile::tempdir().unwrap();
    let mut server = Proc::spawn({
        let mut c = lan.server.cmd(python());
        c.args([
            "-c",
            "import http.server\n\
             s = http.server.HTTPServer(('0.0.0.0', 8001), http.server.SimpleHTTPRequestHandler)\n\
             print('serving', flush=True)\n\
             s.serve_forever()\n",
        ])
        .current_dir(dir.path());
        c
    });
    server.wait_line("serving", LONG);
    let pid = server.pid().to_string();
    let py = python();
    let mut text = String::new();
    for args in [
        &["check"][..],
        &["check", "--json"],
        &["check", "--verbose", "--host-name", "solvit.example"],
    ] {
        let mut c = lan.server.cmd(launcher());
        c.args(args).env("NO_COLOR", "1");
        text.push_str(&format!("=== {}\n", args.join(" ")));
        let said = outcome(
            c,
            &[(&pid, "PID"), (&py, "PYTHON"), (&lan.server.name, "NS")],
        );
        // Columns are as wide as the pid and the namespace's name, which vary: one width.
        text.push_str(&collapse_runs_of_spaces(&said));
    }
    server.signal(nix::sys::signal::Signal::SIGKILL);
    server.wait_exit(LONG);
    golden("check-a-server.txt", &text);
    assert!(Path::new(&root()).is_dir());
}
