use super::*;
use crate::test_support::units::{GUNI, link, name, write};
use crate::unit::{effective_exec, load_unit};
use std::fs;

#[test]
fn search_path_order() {
    let dirs = search_path(Path::new("/r"));
    let pos = |d: &str| dirs.iter().position(|p| p == Path::new(d)).unwrap();
    assert!(pos("/r/etc/systemd/system") < pos("/r/run/systemd/system"));
    assert!(pos("/r/run/systemd/system") < pos("/r/usr/local/lib/systemd/system"));
    assert!(pos("/r/usr/local/lib/systemd/system") < pos("/r/lib/systemd/system"));
    assert!(pos("/r/lib/systemd/system") < pos("/r/usr/lib/systemd/system"));
    assert_eq!(dirs[0], Path::new("/r/etc/systemd/system.control"));
    assert_eq!(
        search_path(Path::new("/"))[4],
        Path::new("/").join(ADMIN_UNIT_DIR)
    );
}

#[test]
fn symlinks_stay_inside_the_root() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    // Relative links climbing above the root stop at the root.
    write(r, "etc/passwd.service", GUNI);
    link(
        r,
        "etc/systemd/system/up.service",
        "../../../../../../../../etc/passwd.service",
    );
    let u = load_unit(r, &name("up.service")).unwrap();
    assert_eq!(u.fragment, r.join("etc/systemd/system/up.service"));
    assert_eq!(
        effective_exec(&u, "ExecStart").unwrap()[0].0.argv,
        ["/usr/bin/gunicorn", "app:wsgi"]
    );
    // Absolute links mean the file inside the root, never the host's.
    link(r, "etc/systemd/system/host.service", "/etc/hostname");
    let e = load_unit(r, &name("host.service")).unwrap_err();
    assert!(e.message.contains("cannot read"), "{e}");
    // Loops and dangling links are errors, not hangs.
    link(r, "etc/systemd/system/loop.service", "/opt/loop1");
    link(r, "opt/loop1", "/opt/loop2");
    link(r, "opt/loop2", "/opt/loop1");
    assert!(
        load_unit(r, &name("loop.service"))
            .unwrap_err()
            .message
            .contains("symbolic links")
    );
    link(
        r,
        "etc/systemd/system/dangling.service",
        "/opt/missing.service",
    );
    assert!(load_unit(r, &name("dangling.service")).is_err());
}

#[test]
fn non_utf8_files_are_errors() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    let path = r.join("etc/systemd/system/a.service");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, b"[Service]\nExecStart=/bin/\xff\n").unwrap();
    let e = load_unit(r, &name("a.service")).unwrap_err();
    assert_eq!(e.path.as_deref(), Some(path.as_path()));
    assert!(e.message.contains("UTF-8"));
}

#[test]
fn masks() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    write(r, "lib/systemd/system/a.service", GUNI);
    link(r, "etc/systemd/system/a.service", "/dev/null");
    write(
        r,
        "etc/systemd/system/a.service.d/x.conf",
        "[Service]\nUser=x\n",
    );
    let u = load_unit(r, &name("a.service")).unwrap();
    assert!(u.masked);
    assert_eq!(u.fragment, r.join("etc/systemd/system/a.service"));
    // The host's /dev/null, a character device, masks when the root is the host's.
    assert!(matches!(
        inspect(Path::new("/"), Path::new("/dev/null")),
        FileState::Masked
    ));
    // A masked template masks its instances.
    write(r, "lib/systemd/system/t@.service", GUNI);
    link(r, "run/systemd/system/t@.service", "../../../dev/null");
    assert!(load_unit(r, &name("t@x.service")).unwrap().masked);
}
