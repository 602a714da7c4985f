use super::*;

#[test]
fn a_host_header_loses_its_port_and_nothing_else() {
    assert_eq!(bare_host("solvit.example:8001"), "solvit.example");
    assert_eq!(bare_host("192.0.2.1:8001"), "192.0.2.1");
    assert_eq!(bare_host("[2001:db8::1]:8001"), "[2001:db8::1]");
    assert_eq!(bare_host("[2001:db8::1]"), "[2001:db8::1]");
    assert_eq!(bare_host("solvit.example"), "solvit.example");
    // Not a port after the colon, or nothing before it: kept whole.
    assert_eq!(bare_host("solvit.example:http"), "solvit.example:http");
    assert_eq!(bare_host(":8001"), ":8001");
}

/// A parent running the same program as two children that each own a listener leads them
/// (a master whose workers bound with `--reuse-port`); one such child alone leads itself.
#[test]
fn a_master_leads_its_reuse_port_children() {
    // Two children that stay sh (`; :` keeps sh from exec'ing sleep in their place).
    let mut parent = std::process::Command::new("/bin/sh")
        .args(["-c", "sh -c 'sleep 30; :' & sh -c 'sleep 30; :' & wait"])
        .spawn()
        .unwrap();
    let p = parent.id() as i32;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let children = loop {
        let c = crate::process::procfs::children(p).unwrap_or_default();
        if c.len() == 2 {
            break c;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no two children: {c:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let both: BTreeSet<i32> = children.iter().copied().collect();
    let lead = tree_leads(&both);
    assert_eq!((lead(children[0]), lead(children[1])), (p, p));
    let one: BTreeSet<i32> = [children[0]].into();
    assert_eq!(tree_leads(&one)(children[0]), children[0]);
    let _ = parent.kill();
    for c in children {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(c),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = parent.wait();
}

#[test]
fn gunicorn_is_told_by_its_script_not_by_a_path_that_names_it() {
    assert!(runs_gunicorn(
        "/opt/solvit/venv/bin/python3 /opt/solvit/venv/bin/gunicorn -w 2 app:app"
    ));
    assert!(runs_gunicorn("gunicorn hello:app"));
    assert!(runs_gunicorn("python3 -m gunicorn hello:app"));
    assert!(runs_gunicorn("gunicorn: master [hello:app]"));
    assert!(!runs_gunicorn(
        "/srv/gunicorn-20.1.0/bin/python3 -c import http.server"
    ));
    assert!(!runs_gunicorn(
        "/usr/bin/python3 /srv/gunicorn-app/serve.py"
    ));
    assert!(!runs_gunicorn(""));
}

/// The clients that fare otherwise than most, after the fate: a list of whom an address is
/// open to, or of whom it blocks; nothing when neither list has anyone in it.
#[test]
fn a_judgement_names_the_clients_it_singles_out() {
    use crate::firewall::{Judgement, judge::Fate, sources::Prefix};
    let prefix = |s: &str, len| Prefix {
        addr: s.parse().unwrap(),
        len,
    };
    let judged = |open_to, blocked_from| Judgement {
        address: "192.0.2.10".parse().unwrap(),
        interface: "eth0".to_string(),
        fate: Fate::Open,
        rule: None,
        open_to,
        blocked_from,
    };
    let ban = vec![prefix("203.0.113.7", 32), prefix("198.51.100.0", 24)];
    assert_eq!(
        clients(&judged(None, Some(ban.clone()))),
        ", blocked from 203.0.113.7/32, 198.51.100.0/24"
    );
    assert_eq!(
        clients(&judged(Some(vec![prefix("10.0.0.0", 8)]), None)),
        ", open only to 10.0.0.0/8"
    );
    assert_eq!(
        clients(&judged(Some(Vec::new()), Some(ban))),
        ", blocked from 203.0.113.7/32, 198.51.100.0/24"
    );
    assert_eq!(clients(&judged(Some(Vec::new()), Some(Vec::new()))), "");
    assert_eq!(clients(&judged(None, None)), "");
}

/// Two masters, each holding the port with one child of its own: two rows, each counting
/// only what is below it.
#[test]
fn each_owner_row_counts_only_its_own_tree() {
    let start = || {
        let parent = std::process::Command::new("/bin/sh")
            .args(["-c", "sh -c 'sleep 30; :' & wait"])
            .spawn()
            .unwrap();
        let p = parent.id() as i32;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let child = loop {
            if let Some(&c) = crate::process::procfs::children(p)
                .unwrap_or_default()
                .first()
            {
                break c;
            }
            assert!(std::time::Instant::now() < deadline, "no child of {p}");
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        (parent, p, child)
    };
    let (mut a, pa, ca) = start();
    let (mut b, pb, cb) = start();
    let owner = |pid: i32, command: &str| crate::process::owners::Owner {
        pid,
        command: command.to_string(),
        uid: 0,
    };
    let rows = render::owner_groups(&[
        owner(pa, "master-a"),
        owner(ca, "child-a"),
        owner(pb, "master-b"),
        owner(cb, "child-b"),
    ]);
    let commands: Vec<&str> = rows.iter().map(|(_, _, c)| c.as_str()).collect();
    assert_eq!(
        commands,
        [
            "master-a + 1 process under it",
            "master-b + 1 process under it"
        ],
        "{rows:?}"
    );
    for (parent, child) in [(&mut a, ca), (&mut b, cb)] {
        let _ = parent.kill();
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = parent.wait();
    }
}
