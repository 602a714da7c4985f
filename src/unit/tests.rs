use super::*;

#[test]
fn error_display_forms() {
    let e = UnitError::new("plain");
    assert_eq!(e.to_string(), "plain");
    let e = UnitError::in_file(Path::new("/a"), "m");
    assert_eq!(e.to_string(), "/a: m");
    let e = UnitError {
        path: None,
        line: Some(3),
        message: "m".into(),
    };
    assert_eq!(e.to_string(), "line 3: m");
}
