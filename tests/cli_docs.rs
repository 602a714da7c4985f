//! The man page and the completion scripts are generated from the clap
//! definitions; here they are rendered and loaded by the real tools.

mod common;
use std::process::Command;

fn generated(what: &str) -> String {
    let out = Command::new(common::launcher())
        .args(["generate", what])
        .output()
        .unwrap();
    assert!(out.status.success(), "generate {what}");
    String::from_utf8(out.stdout).unwrap()
}

fn write(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn tool(name: &str) -> Command {
    assert!(
        Command::new("sh")
            .args(["-c", &format!("command -v {name} >/dev/null")])
            .status()
            .unwrap()
            .success(),
        "{name} IS MISSING: run scripts/setup-test-env (make test does) to install it"
    );
    Command::new(name)
}

#[test]
fn the_man_page_renders_with_man() {
    let (_d, page) = write("gunicorn-launcher.1", &generated("man"));
    let out = tool("man")
        .arg("-l")
        .arg(&page)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .unwrap();
    // man justifies lines: compare with runs of whitespace collapsed.
    let text = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "NAME",
        "gunicorn-launcher",
        "SUBCOMMANDS",
        "run",
        "check",
        "Exit codes of run",
        "Examples",
    ] {
        assert!(text.contains(needle), "man page lacks {needle:?}:\n{text}");
    }
}

#[test]
fn the_bash_completion_loads_and_completes_subcommands() {
    let (_d, script) = write("c.bash", &generated("bash"));
    let out = tool("bash")
        .arg("-c")
        .arg(format!(
            "set -e; source {}; fn=$(complete -p gunicorn-launcher | sed -E 's/.*-F ([^ ]+).*/\\1/'); \
             COMP_WORDS=(gunicorn-launcher ch); COMP_CWORD=1; $fn gunicorn-launcher ch gunicorn-launcher; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display()
        ))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.lines().any(|l| l == "check"), "{text}");
}

#[test]
fn the_zsh_completion_loads() {
    let (_d, script) = write("_gunicorn-launcher", &generated("zsh"));
    let out = tool("zsh")
        .arg("-fc")
        .arg(format!("autoload -Uz compinit && compinit -u && source {} && (( $+functions[_gunicorn-launcher] ))", script.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_fish_completion_loads_and_completes_subcommands() {
    let (_d, script) = write("gunicorn-launcher.fish", &generated("fish"));
    let out = tool("fish")
        .arg("-c")
        .arg(format!(
            "source {}; complete -C 'gunicorn-launcher ch'",
            script.display()
        ))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.lines().any(|l| l.starts_with("check")), "{text}");
}

#[test]
fn every_subcommand_help_ends_with_examples() {
    for sub in [
        "run",
        "print-command",
        "check",
        "install",
        "uninstall",
        "status",
    ] {
        let out = Command::new(common::launcher())
            .args([sub, "--help"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let tail = text.trim_end().rsplit("\n\n").next().unwrap_or_default();
        assert!(
            tail.starts_with("Examples:") && tail.contains("gunicorn-launcher"),
            "{sub}: {text}"
        );
    }
}

/// Log lines carry the sd-daemon priority only when stderr really is the
/// journal stream named by JOURNAL_STREAM (dev:ino of fd 2, as sd-daemon
/// checks); `--log-format json` writes one object per line.
#[test]
fn log_lines_are_journal_prefixed_only_for_the_real_stream_and_json_on_request() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr");
    let run = |journal_stream: Option<String>, json: bool| {
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(common::launcher());
        if json {
            cmd.args(["--log-format", "json"]);
        }
        cmd.args(["run", "--config", "/nonexistent/launcher.toml"])
            .stderr(file);
        if let Some(v) = journal_stream {
            cmd.env("JOURNAL_STREAM", v);
        }
        assert_eq!(cmd.status().unwrap().code(), Some(78));
        std::fs::read_to_string(&log).unwrap()
    };
    let meta = || std::fs::metadata(&log).unwrap();
    let plain = run(None, false);
    assert!(
        plain.starts_with("gunicorn-launcher: error: /nonexistent/launcher.toml"),
        "{plain}"
    );
    // The stream is the file itself: its dev:ino as systemd would write them.
    std::fs::File::create(&log).unwrap();
    let stream = format!("{}:{}", meta().dev(), meta().ino());
    let journal = run(Some(stream.clone()), false);
    assert!(
        journal.starts_with("<3>gunicorn-launcher: /nonexistent/launcher.toml"),
        "{journal}"
    );
    let inherited = run(
        Some(format!("{}:{}", meta().dev(), meta().ino() + 1)),
        false,
    );
    assert!(
        inherited.starts_with("gunicorn-launcher: error:"),
        "a stale JOURNAL_STREAM must not count: {inherited}"
    );
    let json = run(None, true);
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["level"], "error");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/launcher.toml")
    );
}

/// `check` colours its verdict only for a terminal, and never under NO_COLOR.
#[test]
fn check_colours_only_a_terminal_and_respects_no_color() {
    let run = |no_color: bool| {
        let inner = format!("{} check --port 1", common::launcher().display());
        let mut cmd = tool("script");
        cmd.args(["-qec", &inner, "/dev/null"]);
        if no_color {
            cmd.env("NO_COLOR", "1");
        } else {
            cmd.env_remove("NO_COLOR");
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(3), "nothing listens on port 1");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(
        run(false).contains("\x1b[1;31mnothing-listening\x1b[0m"),
        "{:?}",
        run(false)
    );
    assert!(!run(true).contains('\x1b'), "{:?}", run(true));
    let piped = Command::new(common::launcher())
        .args(["check", "--port", "1"])
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&piped.stdout).contains('\x1b'));
}
