//! The verdict against what a remote browser sees: a real Django project
//! (`tests/fixtures/solvit`, Django from the test venv) whose ALLOWED_HOSTS
//! lacks the server's address, has it, or names only the host name; two
//! programs sharing the port with SO_REUSEPORT; an IPv6 address that failed
//! duplicate address detection; a port holder whose command line tries to
//! inject a notify field. Two network namespaces stand for the server and
//! another machine.

mod common;
use common::*;
use nix::sys::signal::Signal;

/// `ip ARGS` in `ns`, which must succeed: its output.
fn ip(ns: &Netns, args: &[&str]) -> String {
    let out = ns.cmd("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The SolvIT project, started by the launcher from the usual loopback
/// command line (`-b 127.0.0.1:8001`), with ALLOWED_HOSTS as given.
fn solvit(app: &AppDir, lan: &Lan, allowed: &str, args: &[&str], notify: &NotifySocket) -> Proc {
    app.copy_fixture("solvit");
    let mut argv = vec!["run"];
    argv.extend(args);
    argv.extend(["--", "gunicorn", "-b", "127.0.0.1:8001", "solvit.wsgi"]);
    let mut cmd = app.launcher_in(&lan.server, &argv);
    cmd.env("SOLVIT_ALLOWED_HOSTS", allowed)
        .env("NOTIFY_SOCKET", &notify.path);
    Proc::spawn(cmd)
}

/// The next wall after the bind: the bind is fixed, but ALLOWED_HOSTS names only
/// this machine, so every browser elsewhere gets "Bad Request (400)". The
/// launcher still sends READY=1 (the bind is right), with a warning in the
/// log and in STATUS; `check` exits 5 naming the Host and the fix.
#[test]
fn allowed_hosts_without_the_address_is_a_warning_and_check_5() {
    let lan = Lan::new();
    let app = AppDir::new();
    let notify = NotifySocket::new();
    let mut l = solvit(&app, &lan, "localhost,127.0.0.1", &[], &notify);
    let _cleanup = KillTreeOnDrop(l.pid());
    let ready = notify.wait_for("READY=1", LONG);
    assert!(ready.contains("STATUS=WARNING: "), "{ready}");
    assert!(
        ready.contains("HTTP 200 from 127.0.0.1")
            && ready.contains(&format!("HTTP 400 from {SERVER_IP}")),
        "each address with its own answer: {ready}"
    );
    assert!(ready.contains("ALLOWED_HOSTS"), "{ready}");
    let warning = l.wait_line("rejects the Host", LONG);
    assert!(
        warning.starts_with("gunicorn-launcher: warning: "),
        "{warning}"
    );
    assert!(
        warning.contains(&format!("add {SERVER_IP} to ALLOWED_HOSTS")),
        "{warning}"
    );

    // What the other machine sees, `curl -I`, as an operator checks it.
    assert_eq!(lan.client.http_status_with(&url(), &["-I"]), Ok(400));
    let (code, out) = check(&lan.server, &[]);
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("verdict: host-rejected"), "{out}");
    assert!(
        out.contains(&format!("{SERVER_IP}:8001  HTTP 400  (a rejected Host)")),
        "{out}"
    );
    let (code, json) = check(&lan.server, &["--json"]);
    assert_eq!(code, 5);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let probes = v["probes"].as_array().unwrap();
    let remote = probes
        .iter()
        .find(|p| p["address"] == format!("{SERVER_IP}:8001"))
        .unwrap();
    assert_eq!(remote["status"], 400, "{json}");
    assert_eq!(remote["host"], format!("{SERVER_IP}:8001"));
    assert_eq!(remote["counted"], true);
    let local = probes
        .iter()
        .find(|p| p["address"] == "127.0.0.1:8001")
        .unwrap();
    assert_eq!(local["status"], 200, "{json}");
    assert_eq!(local["counted"], false);

    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait_exit(LONG).code(), Some(0), "{}", l.output());
}

/// With the address allowed, the verdict is plainly ok and the other
/// machine gets 200.
#[test]
fn allowed_hosts_with_the_address_is_ok() {
    let lan = Lan::new();
    let app = AppDir::new();
    let notify = NotifySocket::new();
    let allowed = format!("localhost,127.0.0.1,{SERVER_IP}");
    let mut l = solvit(&app, &lan, &allowed, &[], &notify);
    let _cleanup = KillTreeOnDrop(l.pid());
    let ready = notify.wait_for("READY=1", LONG);
    assert!(ready.contains("STATUS=verified: "), "{ready}");
    assert!(
        ready.contains(&format!("HTTP 200 from {SERVER_IP}")),
        "{ready}"
    );
    assert_eq!(lan.client.http_status_with(&url(), &["-I"]), Ok(200));
    let (code, out) = check(&lan.server, &[]);
    assert_eq!(code, 0, "{out}");
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait_exit(LONG).code(), Some(0), "{}", l.output());
}

/// Only the name clients use is allowed: with `verify.host_names` the
/// name's answers decide, and the 400s to bare addresses are expected;
/// `check` agrees with `--host-name`, and says 5 without it.
#[test]
fn only_a_name_allowed_is_ok_when_the_name_is_configured() {
    let lan = Lan::new();
    let app = AppDir::new();
    let notify = NotifySocket::new();
    app.write(
        "launcher.toml",
        "[verify]\nhost_names = [\"solvit.example.com\"]\n",
    );
    let mut l = solvit(
        &app,
        &lan,
        "solvit.example.com",
        &["--config", "launcher.toml"],
        &notify,
    );
    let _cleanup = KillTreeOnDrop(l.pid());
    let ready = notify.wait_for("READY=1", LONG);
    assert!(ready.contains("STATUS=verified: "), "{ready}");
    assert!(
        ready.contains(&format!(
            "HTTP 200 from solvit.example.com:8001 at {SERVER_IP}"
        )),
        "{ready}"
    );
    assert_eq!(
        lan.client
            .http_status_with(&url(), &["-H", "Host: solvit.example.com:8001"]),
        Ok(200)
    );
    assert_eq!(lan.client.http_status(&url()), Ok(400));
    let (code, out) = check(&lan.server, &["--host-name", "solvit.example.com"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("(not counted: only the --host-name answers count)"),
        "{out}"
    );
    assert_eq!(check(&lan.server, &[]).0, 5);
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait_exit(LONG).code(), Some(0), "{}", l.output());
}

/// `verify.on_host_rejected = "fail"`: a rejected Host stops gunicorn with
/// 69, like any failed verification.
#[test]
fn on_host_rejected_fail_stops_with_69() {
    let lan = Lan::new();
    let app = AppDir::new();
    let notify = NotifySocket::new();
    app.write("launcher.toml", "[verify]\non_host_rejected = \"fail\"\n");
    let mut l = solvit(
        &app,
        &lan,
        "localhost,127.0.0.1",
        &["--config", "launcher.toml"],
        &notify,
    );
    let _cleanup = KillTreeOnDrop(l.pid());
    let tree = {
        l.wait_line("started gunicorn", LONG);
        l.wait_line("verification failed", LONG);
        descendants(l.pid())
    };
    assert_eq!(l.wait_exit(LONG).code(), Some(69), "{}", l.output());
    assert!(l.output().contains("ALLOWED_HOSTS"), "{}", l.output());
    assert!(
        notify
            .drain()
            .iter()
            .all(|m| !m.lines().any(|f| f == "READY=1")),
        "READY=1 sent"
    );
    assert!(alive(&tree).is_empty(), "left behind: {:?}", alive(&tree));
}

/// A program holding the port whose command line carries a newline and
/// `READY=1`: the launcher quotes it in its failure, on one line; no notify
/// datagram gets a `READY=1` field.
#[test]
fn a_port_holders_command_line_cannot_inject_a_notify_field() {
    let ns = Netns::new();
    let app = AppDir::new();
    let notify = NotifySocket::new();
    let mut holder = Proc::spawn({
        let mut c = ns.cmd(python());
        c.args([
            "-c",
            "import socket, sys, time\n\
             s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             s.bind(('0.0.0.0', 8001)); s.listen(8)\n\
             print('holding', flush=True)\n\
             time.sleep(600)\n",
            "x\nREADY=1\nSTATUS=all good",
        ]);
        c
    });
    holder.wait_line("holding", LONG);
    let mut cmd = app.launcher_in(&ns, &["run", "--", "gunicorn", "hello:app"]);
    cmd.env("NOTIFY_SOCKET", &notify.path);
    let mut l = Proc::spawn(cmd);
    assert_eq!(l.wait_exit(LONG).code(), Some(69), "{}", l.output());
    let out = l.output();
    assert!(out.contains("x\\nREADY=1\\nSTATUS=all good"), "{out}");
    let messages = notify.drain();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("STATUS=verification failed")),
        "{messages:?}"
    );
    for m in &messages {
        assert!(!m.lines().any(|f| f == "READY=1"), "{m:?}");
        assert!(
            m.lines().filter(|f| f.starts_with("STATUS=")).count() <= 1,
            "{m:?}"
        );
    }
}

/// Two unrelated gunicorns on one port with SO_REUSEPORT serve different
/// apps in turn: `check` exits 6 naming both; the launcher, finding a
/// listener outside its own gunicorn's tree, fails like any foreign holder.
#[test]
fn two_reuse_port_gunicorns_are_check_6_and_a_failure_for_run() {
    let ns = Netns::new();
    let app = AppDir::new();
    app.write(
        "other.py",
        "def app(environ, start_response):\n\
         \x20   start_response('200 OK', [('Content-Type', 'text/plain')])\n\
         \x20   return [b'the other app\\n']\n",
    );
    let start = |module: &str| {
        let mut c = ns.cmd(gunicorn());
        c.args(["--reuse-port", "-b", "0.0.0.0:8001", module])
            .current_dir(app.path())
            .env("XDG_RUNTIME_DIR", app.path().join("run"));
        Proc::spawn(c)
    };
    let mut first = start("hello:app");
    first.wait_line("Booting worker", LONG);
    let mut second = start("other:app");
    second.wait_line("Booting worker", LONG);
    let _cleanup = (KillTreeOnDrop(first.pid()), KillTreeOnDrop(second.pid()));
    let (code, out) = check(&ns, &[]);
    assert_eq!(code, 6, "{out}");
    assert!(out.contains("verdict: split-between-programs"), "{out}");
    assert!(
        out.contains(&format!("pid {}", first.pid()))
            && out.contains(&format!("pid {}", second.pid())),
        "both trees named (gunicorn 27's reuse-port workers under their masters; 20.1's masters): {out}"
    );
    assert!(out.contains("requests are split"), "{out}");

    let mut l = Proc::spawn(app.launcher_in(
        &ns,
        &[
            "run",
            "--",
            "gunicorn",
            "--reuse-port",
            "--graceful-timeout",
            "2",
            "hello:app",
        ],
    ));
    assert_eq!(l.wait_exit(LONG).code(), Some(69), "{}", l.output());
    // Seen before or after its own worker's socket exists: "taken by" or
    // "also served by" another program, either way the same failure.
    let out = l.output();
    assert!(
        out.contains("verification failed: port 8001 is") && out.contains("by another program"),
        "{out}"
    );
}

/// An IPv6 address whose duplicate address detection failed (the peer has
/// it too) is one the kernel will not use: not probed, listed, verdict ok.
#[test]
fn a_dadfailed_ipv6_address_is_not_probed() {
    let lan = Lan::new();
    let (a, b) = (
        format!("{}a", lan.server.name),
        format!("{}b", lan.server.name),
    );
    // The client has fd00:db8::7 first; the server's copy then fails DAD.
    ip(
        &lan.client,
        &["-6", "addr", "add", "fd00:db8::7/64", "dev", &b],
    );
    wait_until("the client's address to be usable", LONG, || {
        !ip(&lan.client, &["-6", "addr", "show", "dev", &b]).contains("tentative")
    });
    ip(
        &lan.server,
        &["-6", "addr", "add", "fd00:db8::7/64", "dev", &a],
    );
    wait_until("the server's copy to fail DAD", LONG, || {
        ip(&lan.server, &["-6", "addr", "show", "dev", &a]).contains("dadfailed")
    });
    wait_until("the link-local addresses to be usable", LONG, || {
        let text = ip(&lan.server, &["-6", "addr", "show", "dev", &a]);
        text.lines()
            .filter(|l| l.contains("fe80"))
            .all(|l| !l.contains("tentative"))
    });
    let app = AppDir::new();
    app.write("launcher.toml", "[bind]\nhost = \"::\"\n");
    let mut l = Proc::spawn(app.launcher_in(
        &lan.server,
        &[
            "run",
            "--config",
            "launcher.toml",
            "--",
            "gunicorn",
            "hello:app",
        ],
    ));
    let _cleanup = KillTreeOnDrop(l.pid());
    let verified = l.wait_line("verified:", LONG);
    assert!(!verified.contains("fd00:db8::7"), "{verified}");
    let (code, json) = check(&lan.server, &["--json"]);
    assert_eq!(code, 0, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let skipped = v["not_probed"].as_array().unwrap();
    assert!(
        skipped.iter().any(|s| s["address"] == "fd00:db8::7"
            && s["reason"]
                .as_str()
                .unwrap()
                .contains("duplicate address detection failed")),
        "{json}"
    );
    assert!(
        v["probes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| !p["address"].as_str().unwrap().contains("fd00:db8::7")),
        "{json}"
    );
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait_exit(LONG).code(), Some(0), "{}", l.output());
}

/// On an IPv6 host (`bind.host = "::"`) every interface has a link-local `fe80::` address.
/// The launcher probes it (reachability) but never counts it for the Host verdict: no
/// browser sends such a Host (it would need a zone id, which browsers do not accept). A
/// Django ALLOWED_HOSTS naming every routable address is then plainly ok: READY=1 without a
/// warning, `check` 0.
#[test]
fn link_local_addresses_never_decide_the_host_verdict() {
    let lan = Lan::new();
    let a = format!("{}a", lan.server.name);
    ip(
        &lan.server,
        &["-6", "addr", "add", "fd00:198::1/64", "dev", &a, "nodad"],
    );
    wait_until("a usable link-local address", LONG, || {
        let text = ip(&lan.server, &["-6", "addr", "show", "dev", &a]);
        text.lines().any(|l| l.contains("fe80")) && !text.contains("tentative")
    });
    let app = AppDir::new();
    app.write("launcher.toml", "[bind]\nhost = \"::\"\n");
    let notify = NotifySocket::new();
    let allowed = format!("localhost,127.0.0.1,[::1],{SERVER_IP},[fd00:198::1]");
    let mut l = solvit(
        &app,
        &lan,
        &allowed,
        &["--config", "launcher.toml"],
        &notify,
    );
    let _cleanup = KillTreeOnDrop(l.pid());
    let ready = notify.wait_for("READY=1", LONG);
    assert!(ready.contains("STATUS=verified: "), "{ready}");
    assert!(!ready.contains("WARNING"), "{ready}");
    let (code, json) = check(&lan.server, &["--json"]);
    assert_eq!(code, 0, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let link_local: Vec<&serde_json::Value> = v["probes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["address"].as_str().unwrap().starts_with("[fe80:"))
        .collect();
    assert!(
        !link_local.is_empty(),
        "the link-local address is probed: {json}"
    );
    for p in link_local {
        assert_eq!(p["counted"], false, "{p}");
        // Django rejects that Host; it does not matter, and says nothing.
        assert_eq!(p["status"], 400, "{p}");
    }
    let (code, out) = check(&lan.server, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        !out.contains("ALLOWED_HOSTS"),
        "no advice for a Host no browser sends: {out}"
    );
    l.signal(Signal::SIGTERM);
    assert_eq!(l.wait_exit(LONG).code(), Some(0), "{}", l.output());
    assert!(!l.output().contains("rejects the Host"), "{}", l.output());
}
