use super::*;
use crate::test_support::units::name;

#[test]
fn unit_names_follow_systemd_rules() {
    for ok in [
        "solvit.service",
        "solvit@.service",
        "solvit@a.service",
        "a:b_c-d.e\\x2d.service",
        "getty@tty1.service",
        "foo@bar@baz.service",
        "x.socket",
        "-.mount",
    ] {
        assert!(UnitName::parse(ok).is_ok(), "{ok}");
    }
    let long = format!("{}.service", "a".repeat(247));
    assert_eq!(long.len(), 255);
    assert!(UnitName::parse(&long).is_ok());
    let too_long = format!("{}.service", "a".repeat(248));
    for bad in [
        "",
        "solvit",
        "solvit.conf",
        ".service",
        ".hidden.service",
        "@.service",
        "@foo.service",
        "../x.service",
        "a/b.service",
        "..",
        "sol vit.service",
        "solvit.service\n",
        "ü.service",
        "a;b.service",
        too_long.as_str(),
    ] {
        assert!(UnitName::parse(bad).is_err(), "{bad:?}");
    }
    let err = UnitName::parse("../etc/passwd.service").unwrap_err();
    assert!(err.to_string().contains("'/'"), "{err}");
}

#[test]
fn templates_and_instances() {
    let inst = name("solvit@a.service");
    assert_eq!(inst.template(), Some(name("solvit@.service")));
    assert_eq!(inst.instance(), Some("a"));
    assert!(inst.is_instance() && !inst.is_template());
    assert_eq!(inst.prefix(), "solvit");
    assert_eq!(inst.unit_type(), "service");

    let tmpl = name("solvit@.service");
    assert!(tmpl.is_template() && !tmpl.is_instance());
    assert_eq!(tmpl.template(), None);
    assert_eq!(tmpl.instance(), None);
    assert_eq!(tmpl.with_instance("b").unwrap(), name("solvit@b.service"));
    assert!(tmpl.with_instance("../x").is_err());

    let plain = name("solvit.service");
    assert_eq!((plain.template(), plain.instance()), (None, None));
    assert!(plain.with_instance("a").is_err());
    assert!(plain.is_service() && !name("x.socket").is_service());

    let nested = name("foo@bar@baz.service");
    assert_eq!(nested.instance(), Some("bar@baz"));
    assert_eq!(nested.template(), Some(name("foo@.service")));
    let dotted = name("app@v1.2.service");
    assert_eq!(dotted.instance(), Some("v1.2"));
    assert_eq!(
        "x.service".parse::<UnitName>().unwrap().to_string(),
        "x.service"
    );
}

#[test]
fn alias_rules() {
    assert!(alias_is_valid(&name("a.service"), "b.service"));
    assert!(!alias_is_valid(&name("a.service"), "a.service"));
    assert!(!alias_is_valid(&name("a.service"), "b.socket"));
    assert!(!alias_is_valid(&name("a.service"), "b@.service"));
    assert!(alias_is_valid(&name("a@.service"), "b@.service"));
    assert!(alias_is_valid(&name("a@x.service"), "b@x.service"));
    assert!(!alias_is_valid(&name("a@x.service"), "b@y.service"));
    assert!(alias_is_valid(&name("a@x.service"), "b@.service"));
    assert!(!alias_is_valid(&name("a@.service"), "b@x.service"));
    assert!(!alias_is_valid(&name("a.mount"), "b.mount"));
    assert!(!alias_is_valid(&name("a.service"), "not a unit"));
}
