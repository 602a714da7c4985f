use super::*;
use crate::test_support::units::{GUNI, argv, exec_start, fixture, last, link, load, name, write};
use crate::unit::{effective, list_service_units, load_unit};
use std::fs;

#[test]
fn higher_priority_fragment_wins() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    write(
        r,
        "lib/systemd/system/a.service",
        "[Service]\nExecStart=/bin/lib\n",
    );
    write(
        r,
        "usr/lib/systemd/system/a.service",
        "[Service]\nExecStart=/bin/usrlib\n",
    );
    write(
        r,
        "run/systemd/system/a.service",
        "[Service]\nExecStart=/bin/run\n",
    );
    assert_eq!(
        load_unit(r, &name("a.service")).unwrap().fragment,
        r.join("run/systemd/system/a.service")
    );
    write(
        r,
        "etc/systemd/system/a.service",
        "[Service]\nExecStart=/bin/etc\n",
    );
    assert_eq!(
        load_unit(r, &name("a.service")).unwrap().fragment,
        r.join("etc/systemd/system/a.service")
    );
    fs::remove_file(r.join("etc/systemd/system/a.service")).unwrap();
    fs::remove_file(r.join("run/systemd/system/a.service")).unwrap();
    assert_eq!(
        load_unit(r, &name("a.service")).unwrap().fragment,
        r.join("lib/systemd/system/a.service")
    );
    assert_eq!(list_service_units(r), [name("a.service")]);
}

#[test]
fn instance_file_beats_template() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    write(r, "lib/systemd/system/w@.service", GUNI);
    write(
        r,
        "etc/systemd/system/w@x.service",
        "[Service]\nExecStart=/bin/other\n",
    );
    assert_eq!(
        load_unit(r, &name("w@x.service")).unwrap().fragment,
        r.join("etc/systemd/system/w@x.service")
    );
    assert_eq!(
        load_unit(r, &name("w@y.service")).unwrap().fragment,
        r.join("lib/systemd/system/w@.service")
    );
    assert_eq!(
        list_service_units(r),
        [name("w@.service"), name("w@x.service")]
    );
}

#[test]
fn aliases_and_their_rules() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    write(r, "lib/systemd/system/real.service", GUNI);
    link(
        r,
        "etc/systemd/system/alias1.service",
        "/lib/systemd/system/real.service",
    );
    link(r, "etc/systemd/system/alias2.service", "alias1.service");
    // Aliases of aliases resolve; all names share the drop-ins.
    write(
        r,
        "etc/systemd/system/alias2.service.d/x.conf",
        "[Service]\nUser=a2\n",
    );
    let u = load_unit(r, &name("alias2.service")).unwrap();
    assert_eq!(u.fragment, r.join("lib/systemd/system/real.service"));
    assert_eq!(
        u.names,
        ["real.service", "alias1.service", "alias2.service"].map(name)
    );
    assert_eq!(
        last(&load_unit(r, &name("real.service")).unwrap(), "User").as_deref(),
        Some("a2")
    );
    // A link to another type is not a valid alias and is ignored entirely.
    write(
        r,
        "lib/systemd/system/s.socket",
        "[Socket]\nListenStream=8001\n",
    );
    link(
        r,
        "etc/systemd/system/wrongtype.service",
        "/lib/systemd/system/s.socket",
    );
    assert!(load_unit(r, &name("wrongtype.service")).is_err());
    // A self-named link into another search directory is ignored; the real file is found.
    link(
        r,
        "etc/systemd/system/real.service",
        "/lib/systemd/system/real.service",
    );
    assert_eq!(
        load_unit(r, &name("real.service")).unwrap().fragment,
        r.join("lib/systemd/system/real.service")
    );
    // Alias loops end.
    link(r, "etc/systemd/system/l1.service", "l2.service");
    link(r, "etc/systemd/system/l2.service", "l1.service");
    assert!(
        load_unit(r, &name("l1.service"))
            .unwrap_err()
            .message
            .contains("aliases")
    );
    // An instance linked to a template is an alias of that template's instance.
    write(r, "lib/systemd/system/tpl@.service", GUNI);
    link(
        r,
        "etc/systemd/system/web@one.service",
        "/lib/systemd/system/tpl@.service",
    );
    let u = load_unit(r, &name("web@one.service")).unwrap();
    assert_eq!(u.fragment, r.join("lib/systemd/system/tpl@.service"));
    assert_eq!(u.names, ["tpl@one.service", "web@one.service"].map(name));
    assert_eq!(
        list_service_units(r),
        ["real.service", "tpl@.service"].map(name)
    );
}

#[test]
fn merged_usr_directories_count_once() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    write(r, "usr/lib/systemd/system/a.service", GUNI);
    write(
        r,
        "usr/lib/systemd/system/a.service.d/x.conf",
        "[Service]\nUser=x\n",
    );
    link(r, "lib", "usr/lib");
    assert_eq!(list_service_units(r), [name("a.service")]);
    let u = load_unit(r, &name("a.service")).unwrap();
    assert_eq!(u.fragment, r.join("lib/systemd/system/a.service"));
    assert_eq!(u.dropins.len(), 1);
    // A link from /etc into the /usr/lib spelling of the same directory is an alias.
    link(
        r,
        "etc/systemd/system/b.service",
        "/usr/lib/systemd/system/a.service",
    );
    assert_eq!(
        load_unit(r, &name("b.service")).unwrap().names,
        ["a.service", "b.service"].map(name)
    );
}

#[test]
fn symlink_fixture_alias_linked_masked() {
    let root = fixture("symlinks");
    // An alias loads the unit it points to, under both names.
    let u = load("symlinks", "gunicorn.service");
    assert_eq!(u.fragment, root.join("lib/systemd/system/solvit.service"));
    assert_eq!(u.names, [name("solvit.service"), name("gunicorn.service")]);
    // Drop-ins of the alias name apply too.
    assert_eq!(
        u.dropins,
        [root.join("etc/systemd/system/gunicorn.service.d/alias.conf")]
    );
    assert_eq!(load("symlinks", "solvit.service").dropins, u.dropins);
    // A linked unit (absolute symlink out of the search path) reads the target inside root
    // but is reported at its path in the search directory.
    let l = load("symlinks", "linked.service");
    assert_eq!(l.fragment, root.join("etc/systemd/system/linked.service"));
    assert_eq!(
        argv(&exec_start("symlinks", "linked.service")[0]),
        [
            "/opt/solvit/venv/bin/gunicorn",
            "--bind",
            "127.0.0.1:8002",
            "solvit.wsgi:application"
        ]
    );
    // Masks: a link to /dev/null, and an empty file hiding a real one in /lib.
    for masked in ["masked.service", "empty.service"] {
        let m = load("symlinks", masked);
        assert!(m.masked, "{masked}");
        assert!(m.files.is_empty() && m.dropins.is_empty());
        assert!(effective(&m, "Service", "ExecStart").is_empty());
    }
    assert_eq!(
        list_service_units(&root),
        [
            "empty.service",
            "linked.service",
            "masked.service",
            "solvit.service"
        ]
        .map(name)
    );
}

#[test]
fn missing_units() {
    let e = load_unit(&fixture("solvit"), &name("nope.service")).unwrap_err();
    assert!(e.message.contains("not found"), "{e}");
    let e = load_unit(&fixture("solvit"), &name("nope@x.service")).unwrap_err();
    assert!(e.message.contains("not found"), "{e}");
    let empty = tempfile::tempdir().unwrap();
    assert!(list_service_units(empty.path()).is_empty());
    assert!(load_unit(Path::new("/nonexistent/root"), &name("x.service")).is_err());
}
