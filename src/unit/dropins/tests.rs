use crate::test_support::units::{GUNI, argv, exec_start, fixture, last, link, load, name, write};
use crate::unit::{effective, list_service_units, load_unit};
use std::fs;

#[test]
fn dropin_precedence_and_order() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    write(r, "lib/systemd/system/foo-bar-baz.service", GUNI);
    write(
        r,
        "lib/systemd/system/foo-bar-baz.service.d/10-same.conf",
        "[Service]\nUser=lib\n",
    );
    write(
        r,
        "etc/systemd/system/foo-bar-baz.service.d/10-same.conf",
        "[Service]\nUser=etc\n",
    );
    write(
        r,
        "etc/systemd/system/foo-bar-baz.service.d/.hidden.conf",
        "broken",
    );
    write(
        r,
        "etc/systemd/system/foo-bar-baz.service.d/notes.txt",
        "broken",
    );
    write(
        r,
        "etc/systemd/system/foo-.service.d/05-prefix.conf",
        "[Service]\nNice=1\n",
    );
    write(
        r,
        "etc/systemd/system/foo-bar-.service.d/05-prefix.conf",
        "[Service]\nNice=2\n",
    );
    write(
        r,
        "run/systemd/system/service.d/00-all.conf",
        "[Service]\nNice=0\n",
    );
    write(
        r,
        "etc/systemd/system/service.d/99-all.conf",
        "[Service]\nUMask=0077\n",
    );
    write(
        r,
        "usr/lib/systemd/system/service.d/10-same.conf",
        "[Service]\nUser=type\n",
    );
    let u = load_unit(r, &name("foo-bar-baz.service")).unwrap();
    assert_eq!(
        u.dropins,
        [
            r.join("run/systemd/system/service.d/00-all.conf"),
            r.join("etc/systemd/system/foo-bar-.service.d/05-prefix.conf"),
            r.join("etc/systemd/system/foo-bar-baz.service.d/10-same.conf"),
            r.join("etc/systemd/system/service.d/99-all.conf"),
        ]
    );
    assert_eq!(last(&u, "User").as_deref(), Some("etc"));
    assert_eq!(last(&u, "Nice").as_deref(), Some("2"));
    // A template's drop-in in a higher-priority directory beats the instance's of the same
    // name in a lower one: the search path orders first, as in systemd.
    write(r, "lib/systemd/system/w@.service", GUNI);
    write(
        r,
        "run/systemd/system/w@a.service.d/x.conf",
        "[Service]\nUser=instance\n",
    );
    write(
        r,
        "etc/systemd/system/w@.service.d/x.conf",
        "[Service]\nUser=template\n",
    );
    let u = load_unit(r, &name("w@a.service")).unwrap();
    assert_eq!(last(&u, "User").as_deref(), Some("template"));
    // Dash prefixes keep the instance: w-x@a.service also reads w-@a.service.d.
    write(r, "lib/systemd/system/w-x@.service", GUNI);
    write(
        r,
        "etc/systemd/system/w-@a.service.d/p.conf",
        "[Service]\nUser=p\n",
    );
    write(
        r,
        "etc/systemd/system/w-@.service.d/q.conf",
        "[Service]\nGroup=q\n",
    );
    let u = load_unit(r, &name("w-x@a.service")).unwrap();
    assert_eq!(last(&u, "User").as_deref(), Some("p"));
    assert_eq!(last(&u, "Group").as_deref(), Some("q"));
}

#[test]
fn dropin_edge_cases() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    write(r, "lib/systemd/system/a.service", GUNI);
    write(
        r,
        "lib/systemd/system/a.service.d/mask-me.conf",
        "[Service]\nUser=lib\n",
    );
    link(
        r,
        "etc/systemd/system/a.service.d/mask-me.conf",
        "/dev/null",
    );
    write(
        r,
        "lib/systemd/system/a.service.d/gone.conf",
        "[Service]\nUser=gone\n",
    );
    link(
        r,
        "etc/systemd/system/a.service.d/gone.conf",
        "/nowhere/gone.conf",
    );
    let u = load_unit(r, &name("a.service")).unwrap();
    assert_eq!(
        u.dropins,
        [r.join("etc/systemd/system/a.service.d/mask-me.conf")]
    );
    assert_eq!(last(&u, "User"), None);
    // A drop-in directory that is a symlink is followed (inside the root).
    write(r, "opt/shared/z.conf", "[Service]\nUser=shared\n");
    link(r, "run/systemd/system/a.service.d", "/opt/shared");
    let u = load_unit(r, &name("a.service")).unwrap();
    assert_eq!(
        u.dropins.last(),
        Some(&r.join("run/systemd/system/a.service.d/z.conf"))
    );
    // A directory named like a drop-in is an error, as for systemd.
    fs::create_dir_all(r.join("etc/systemd/system/a.service.d/dir.conf")).unwrap();
    let e = load_unit(r, &name("a.service")).unwrap_err();
    assert!(e.message.contains("directory"), "{e}");
}

#[test]
fn override_fixture_resets_and_replaces() {
    let root = fixture("override");
    let u = load("override", "solvit.service");
    assert_eq!(u.fragment, root.join("lib/systemd/system/solvit.service"));
    // /etc's override.conf hides /lib's override.conf; /run's 50-env.conf sorts between.
    assert_eq!(
        u.dropins,
        [
            root.join("run/systemd/system/solvit.service.d/50-env.conf"),
            root.join("etc/systemd/system/solvit.service.d/override.conf"),
        ]
    );
    assert_eq!(u.files.len(), 3);
    let starts = effective(&u, "Service", "ExecStart");
    assert_eq!(starts.len(), 1);
    let (value, path, line) = &starts[0];
    assert_eq!(
        value,
        "/opt/solvit/venv/bin/gunicorn --workers 4 --bind 127.0.0.1:8001 solvit.wsgi:application"
    );
    assert_eq!(
        path,
        &root.join("etc/systemd/system/solvit.service.d/override.conf")
    );
    assert_eq!(*line, 4);
    // Only /run's Environment=: /lib's override.conf never applies.
    let env: Vec<String> = effective(&u, "Service", "Environment")
        .into_iter()
        .map(|(v, _, _)| v)
        .collect();
    assert_eq!(env, ["DJANGO_SETTINGS_MODULE=solvit.settings.prod"]);
    assert_eq!(last(&u, "User").as_deref(), Some("solvit"));
}

#[test]
fn template_fixture() {
    let root = fixture("template");
    let u = load("template", "solvit@a.service");
    assert_eq!(u.name, name("solvit@a.service"));
    assert_eq!(u.fragment, root.join("lib/systemd/system/solvit@.service"));
    assert_eq!(u.names, [name("solvit@a.service")]);
    assert_eq!(
        u.dropins,
        [
            root.join("etc/systemd/system/solvit@.service.d/10-workers.conf"),
            root.join("etc/systemd/system/solvit@a.service.d/20-bind.conf"),
        ]
    );
    let cmds = exec_start("template", "solvit@a.service");
    assert_eq!(cmds.len(), 1);
    assert_eq!(
        argv(&cmds[0]),
        [
            "/opt/solvit/venv/bin/gunicorn",
            "--workers",
            "2",
            "--bind",
            "127.0.0.1:8001",
            "--name",
            "solvit-%i",
            "solvit.wsgi:application"
        ]
    );
    // Another instance gets the template's drop-in but not a's.
    let b = load("template", "solvit@b.service");
    assert_eq!(b.dropins.len(), 1);
    // The template itself loads, with its own drop-ins only.
    let t = load("template", "solvit@.service");
    assert_eq!(t.dropins.len(), 1);
    assert_eq!(list_service_units(&root), [name("solvit@.service")]);
}
