use super::*;

#[test]
fn every_message_is_one_line_with_its_priority() {
    let text = Format::Text;
    assert_eq!(
        format(Level::Warning, "a\nb", true, text),
        "<4>gunicorn-launcher: a\\nb\n"
    );
    // Text from another process cannot start a line with a priority.
    assert_eq!(
        format(Level::Info, "pid 7 (evil\n<0>READY=1\r\x1b[2J)", true, text),
        "<6>gunicorn-launcher: pid 7 (evil\\n<0>READY=1\\r\\u{1b}[2J)\n"
    );
    assert_eq!(
        format(Level::Error, "x", false, text),
        "gunicorn-launcher: error: x\n"
    );
    assert_eq!(
        format(Level::Info, "x", false, text),
        "gunicorn-launcher: x\n"
    );
}

#[test]
fn json_is_one_object_per_message() {
    let line = format(Level::Warning, "a \"b\"\nc", false, Format::Json);
    assert_eq!(line.matches('\n').count(), 1);
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["level"], "warning");
    assert_eq!(v["message"], "a \"b\"\\nc");
    assert!(format(Level::Error, "x", true, Format::Json).starts_with("<3>{"));
}

#[test]
fn journal_stream_must_match_exactly() {
    assert!(matches_stream("8:1234", 8, 1234));
    assert!(!matches_stream("8:1234", 8, 1235));
    assert!(!matches_stream("8", 8, 1234));
    assert!(!matches_stream("a:b", 8, 1234));
}
