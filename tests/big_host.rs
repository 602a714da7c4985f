//! A host with many addresses (hosting servers with an address per site, nodes with many
//! aliases): what systemd is told stays under the 4,096 bytes it accepts, the log gives one
//! bounded line per verdict, and probes never open more descriptors than the process may
//! (systemd's default soft limit is 1,024). Addresses sit on an interface in a network
//! namespace of the test's own.

mod common;
use common::*;
use nix::sys::signal::Signal;

/// The answer `check`'s table gives for `addr` (its probe row: address, Host, answer).
fn answers<'a>(table: &'a str, addr: &str) -> Option<&'a str> {
    let row = table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&format!("{addr}:8001")))?;
    Some(row[row.rfind("HTTP")?..].trim_end())
}

/// The launcher's output lines that carry a verdict.
fn verdict_lines(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| l.starts_with("gunicorn-launcher: verified:"))
        .collect()
}

/// 300 addresses: every probe answers, READY=1 reaches a notify socket that, like systemd,
/// ignores a datagram over 4,096 bytes; STATUS is a summary and the log line is bounded.
#[test]
fn three_hundred_addresses_reach_ready_through_a_systemd_sized_notify_socket() {
    let ns = Netns::new();
    let addrs = ns.add_addresses(300);
    let app = AppDir::new();
    let notify = NotifySocket::new();
    let mut l = app.launcher_notifying(
        &ns,
        &["run", "--", "gunicorn", "-w", "2", "hello:app"],
        &notify,
    );
    let _cleanup = KillTreeOnDrop(l.pid());
    let ready = notify.wait_for("READY=1", LONG);
    assert_eq!(notify.ignored(), 0, "a datagram over 4,096 bytes was sent");
    assert!(ready.len() <= NOTIFY_MAX, "{}", ready.len());
    assert!(ready.contains("STATUS=verified: "), "{ready}");
    // 300 addresses, loopback and the dummy's: the summary counts them and names a few.
    assert!(ready.contains("HTTP 200 from 301 probes"), "{ready}");
    assert!(
        ready.contains("and 293 more"),
        "names the first few, counts the rest: {ready}"
    );
    let line = l.wait_line("verified:", LONG);
    assert!(
        line.len() < 2_000,
        "one bounded log line: {} bytes",
        line.len()
    );
    assert!(line.contains(&addrs[0]), "{line}");
    // `check` lists every address.
    let (code, out) = check(&ns, &[]);
    assert_eq!(code, 0, "{out}");
    for a in &addrs {
        assert_eq!(answers(&out, a), Some("HTTP 200"), "{a} in:\n{out}");
    }
    assert_eq!(verdict_lines(&l.output()).len(), 1);
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait_exit(LONG).code(), Some(0), "{}", l.output());
}

/// 2,000 addresses under systemd's default soft limit of 1,024 descriptors: the probes take
/// turns in the descriptors the launcher may open, none fails with EMFILE, `run` verifies
/// and `check` exits 0. gunicorn keeps the limit it was given.
#[test]
fn two_thousand_addresses_verify_under_a_soft_limit_of_1024_descriptors() {
    let ns = Netns::new();
    ns.add_addresses(2_000);
    let app = AppDir::new();
    let limited = ["sh", "-c", "ulimit -Sn 1024 && exec \"$@\"", "sh"];
    let mut l = Proc::spawn(app.launcher_under(
        &ns,
        &limited,
        &["run", "--", "gunicorn", "-w", "2", "hello:app"],
    ));
    let _cleanup = KillTreeOnDrop(l.pid());
    let line = l.wait_line("verified:", LONG);
    assert!(line.contains("HTTP 200 from 2001 probes"), "{line}");
    assert!(line.len() < 2_000, "{} bytes", line.len());
    let master = master_of(l.pid());
    let limits = std::fs::read_to_string(format!("/proc/{master}/limits")).unwrap();
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    assert_eq!(
        open_files.split_whitespace().nth(3),
        Some("1024"),
        "gunicorn keeps its soft limit: {open_files}"
    );
    let out = ns
        .cmd("sh")
        .args(["-c", "ulimit -Sn 1024 && exec \"$@\"", "sh"])
        .arg(launcher())
        .arg("check")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("Too many open files"), "{text}");
    let answered = text
        .lines()
        .filter(|l| l.contains(":8001 ") && l.ends_with("HTTP 200"))
        .count();
    assert_eq!(answered, 2_001, "every address answered:\n{text}");
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait_exit(LONG).code(), Some(0), "{}", l.output());
    assert!(
        !l.output().contains("Too many open files"),
        "{}",
        l.output()
    );
}
