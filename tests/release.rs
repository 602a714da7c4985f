//! The release build, what ships: the optimiser decides what is inlined where, and the
//! launcher's release of its stack depends on where its frame lies, so a property of the test
//! build is not one of the release build. `make test` builds it first (`cargo build
//! --release`); cargo-mutants does not, so this file is not in its selection.

mod common;
use common::*;
use nix::sys::signal::Signal;
use std::path::{Path, PathBuf};

/// The release build, what ships and what the memory and signal-path figures are about (the
/// optimiser decides what is inlined where, and the stack release depends on it): `make test`
/// builds it first. Missing, or older than a source it was built from: the test fails rather
/// than judge a stale binary.
fn release_build() -> PathBuf {
    let config = std::fs::read_to_string(root().join(".cargo/config.toml")).unwrap();
    let triple = config
        .lines()
        .find_map(|l| l.trim().strip_prefix("target = \""))
        .and_then(|t| t.strip_suffix('"'))
        .expect("a target in .cargo/config.toml");
    let bin = root()
        .join("target")
        .join(triple)
        .join("release/gunicorn-launcher");
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("THIS TEST NEEDS the release build ({}: {e}): run `cargo build --release` (make test does)", bin.display()));
    // A source that is gone since counts as changed now: the binary was built from it.
    let newest = built_from(&bin)
        .iter()
        .map(|f| std::fs::metadata(f).and_then(|m| m.modified()))
        .map(|t| t.unwrap_or_else(|_| std::time::SystemTime::now()))
        .max()
        .unwrap_or_else(|| newest_in(&root().join("src")));
    assert!(
        built >= newest,
        "{} is older than its sources: run `cargo build --release` (make test does)",
        bin.display()
    );
    bin
}

/// The sources cargo's dep-info file says `bin` was built from (a test-only file changed since
/// leaves the binary as it is); none when there is no such file. Paths with spaces are not
/// expected under the repository.
fn built_from(bin: &Path) -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string(bin.with_extension("d")) else {
        return Vec::new();
    };
    let deps = info.split_once(": ").map_or("", |(_, deps)| deps);
    deps.split_whitespace()
        .map(PathBuf::from)
        .filter(|p| p.starts_with(root().join("src")))
        .collect()
}

fn newest_in(dir: &Path) -> std::time::SystemTime {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            let m = e.metadata().unwrap();
            if m.is_dir() {
                newest_in(&e.path())
            } else {
                m.modified().unwrap()
            }
        })
        .max()
        .unwrap_or(std::time::UNIX_EPOCH)
}

/// The release build inside `ns` with `args`, as `AppDir::launcher_notifying` starts the
/// test build.
fn release_notifying(app: &AppDir, ns: &Netns, args: &[&str], notify: &NotifySocket) -> Proc {
    let mut c = app.launcher_env_for(ns.cmd(release_build()));
    c.args(args).env("NOTIFY_SOCKET", &notify.path);
    Proc::spawn(c)
}

/// On a host with a firewall, once ready it gives its start-up pages back and sleeps, alive; a HUP then reloads it,
/// and it serves on. (A release build that inlined the stack's release into the loop zeroed
/// live stack there and died of SIGSEGV right after READY=1.)
#[test]
fn the_release_build_sleeps_after_ready_and_reloads_on_a_hup() {
    let ns = Netns::new();
    ns.add_nft_table("release");
    let app = AppDir::new();
    let notify = NotifySocket::new();
    let mut l = release_notifying(&app, &ns, &["run", "--", "gunicorn", "hello:app"], &notify);
    let _cleanup = KillTreeOnDrop(l.pid());
    notify.wait_for("READY=1", LONG);
    wait_until("the launcher to sleep in poll", LONG, || {
        asleep_in_poll(l.pid())
    });
    assert_eq!(ns.http_status("http://127.0.0.1:8001/"), Ok(200));
    signal_pid(l.pid(), Signal::SIGHUP);
    notify.wait_for("RELOADING=1", LONG);
    notify.wait_for("READY=1", LONG);
    wait_until("the launcher to sleep in poll again", LONG, || {
        asleep_in_poll(l.pid())
    });
    assert_eq!(ns.http_status("http://127.0.0.1:8001/"), Ok(200));
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait_exit(LONG).code(), Some(0), "{}", l.output());
}
