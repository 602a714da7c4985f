use super::*;
use crate::test_support::units::{parse, tricky_text};
use proptest::prelude::*;

fn parse_err(text: &str) -> UnitError {
    parse_unit(Path::new("/t/x.service"), text).unwrap_err()
}

#[test]
fn sections_entries_and_line_numbers() {
    let f = parse(
        "# comment\n; another\n\n[Unit]\nDescription = SolvIT  \n\n  [Service]  \n\tUser=solvit\nExecStart=/bin/x a=b\nExecStart=\n",
    );
    assert_eq!(f.path, Path::new("/t/x.service"));
    assert_eq!(f.sections.len(), 2);
    assert_eq!(
        (f.sections[0].name.as_str(), f.sections[0].line),
        ("Unit", 4)
    );
    assert_eq!(
        f.sections[0].entries,
        vec![Entry {
            key: "Description".into(),
            value: "SolvIT".into(),
            line: 5
        }]
    );
    let s = &f.sections[1];
    assert_eq!((s.name.as_str(), s.line), ("Service", 7));
    let got: Vec<(&str, &str, usize)> = s
        .entries
        .iter()
        .map(|e| (e.key.as_str(), e.value.as_str(), e.line))
        .collect();
    assert_eq!(
        got,
        vec![
            ("User", "solvit", 8),
            ("ExecStart", "/bin/x a=b", 9),
            ("ExecStart", "", 10)
        ]
    );
    assert_eq!(f.entries("Service", "ExecStart").count(), 2);
}

#[test]
fn continuation_lines_join_with_a_space() {
    let f = parse("[Service]\nExecStart=/bin/gunicorn \\\n    --workers 3 \\\n\t-b 0:1\nUser=x\n");
    let e = &f.sections[0].entries;
    assert_eq!(e[0].value, "/bin/gunicorn      --workers 3  \t-b 0:1");
    assert_eq!(e[0].line, 2);
    assert_eq!((e[1].key.as_str(), e[1].line), ("User", 5));
    // Backslash glued to the text: replaced by a space, so words still split.
    let f = parse("[S]\nK=a\\\nb\n");
    assert_eq!(f.sections[0].entries[0].value, "a b");
}

#[test]
fn comments_inside_continuations_are_skipped() {
    let f =
        parse("[Service]\nExecStart=/bin/x one\\\n# skipped \\\n  ; also skipped\n two\nUser=u\n");
    let e = &f.sections[0].entries;
    assert_eq!(e[0].value, "/bin/x one  two");
    assert_eq!(e[1].line, 6);
}

#[test]
fn empty_line_ends_a_continuation_and_eof_too() {
    let f = parse("[S]\nA=1 \\\n\nB=2\n");
    let e = &f.sections[0].entries;
    assert_eq!((e[0].value.as_str(), e[1].key.as_str()), ("1", "B"));
    let f = parse("[S]\nA=1 \\");
    assert_eq!(f.sections[0].entries[0].value, "1");
    // A continued header is still a header.
    let f = parse("[Ser\\\nvice]\nA=1\n");
    assert_eq!(f.sections[0].name, "Ser vice");
}

#[test]
fn escaped_backslash_at_end_is_not_a_continuation() {
    let f = parse("[S]\nA=x\\\\\nB=y\n");
    let e = &f.sections[0].entries;
    assert_eq!((e[0].value.as_str(), e[1].value.as_str()), ("x\\\\", "y"));
    let f = parse("[S]\nA=x\\\\\\\nB=y\n");
    assert_eq!(f.sections[0].entries[0].value, "x\\\\ B=y");
}

#[test]
fn line_endings_and_bom() {
    let f = parse("\u{feff}[S]\r\nA=1\r\nB=2\rC=3\n\rD=4");
    let got: Vec<(&str, usize)> = f.sections[0]
        .entries
        .iter()
        .map(|e| (e.key.as_str(), e.line))
        .collect();
    assert_eq!(got, vec![("A", 2), ("B", 3), ("C", 4), ("D", 5)]);
    assert_eq!(physical_lines("a\n\nb\n"), vec!["a", "", "b"]);
    assert_eq!(physical_lines("a\r\n\r\nb"), vec!["a", "", "b"]);
    assert_eq!(physical_lines("a\0\nb"), vec!["a", "", "b"]);
    assert_eq!(physical_lines(""), Vec::<&str>::new());
    assert_eq!(physical_lines("\n"), vec![""]);
    let f = parse("\u{feff}# comment\n[S]\n");
    assert_eq!(f.sections.len(), 1);
}

#[test]
fn keys_and_values_keep_inner_text() {
    let f = parse("[S]\nEnvironment=\"A=1 2\" B=3\nX-Custom = a = b\n");
    let e = &f.sections[0].entries;
    assert_eq!(e[0].value, "\"A=1 2\" B=3");
    assert_eq!(
        (e[1].key.as_str(), e[1].value.as_str()),
        ("X-Custom", "a = b")
    );
}

#[test]
fn malformed_lines_are_errors_with_file_and_line() {
    let e = parse_err("# c\nUser=x\n[Service]\n");
    assert_eq!(
        (e.path.as_deref(), e.line),
        (Some(Path::new("/t/x.service")), Some(2))
    );
    assert!(e.message.contains("outside of any section"), "{e}");
    assert_eq!(
        e.to_string(),
        "/t/x.service:2: assignment outside of any section: \"User=x\""
    );

    let e = parse_err("[Service]\nExecStart=/bin/x\nFooBar\n");
    assert_eq!(e.line, Some(3));
    assert!(e.message.contains("missing '='"), "{e}");

    let e = parse_err("[Service]\n=value\n");
    assert!(e.message.contains("missing key"), "{e}");

    let e = parse_err("\n[Service\nA=1\n");
    assert_eq!(e.line, Some(2));
    assert!(e.message.contains("no closing ']'"), "{e}");

    let e = parse_err("[Ser\"vice]\n");
    assert!(e.message.contains("bad characters"), "{e}");

    let e = parse_err("[S]\nno equals \\\nhere either\n");
    assert_eq!(
        e.line,
        Some(2),
        "a continued line is reported at its first line"
    );
}

#[test]
fn overlong_lines_are_refused() {
    let long = format!("[S]\nA={}\n", "x".repeat(LONG_LINE_MAX));
    assert!(parse_err(&long).message.contains("too long"));
    let half = "x".repeat(LONG_LINE_MAX / 2 + 10);
    let joined = format!("[S]\nA={half}\\\n{half}\n");
    let e = parse_err(&joined);
    assert_eq!(e.line, Some(3));
    assert!(e.message.contains("too long"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_unit_never_panics(text in tricky_text()) {
        let _ = parse_unit(Path::new("/p"), &text);
    }

    #[test]
    fn parse_unit_never_panics_on_any_string(text in any::<String>()) {
        let _ = parse_unit(Path::new("/p"), &text);
    }

    #[test]
    fn entries_survive_reparsing(lines in prop::collection::vec(("[A-Za-z][A-Za-z0-9-]{0,8}", "[^\n\r\0\\\\]{0,20}"), 0..8)) {
        let mut text = String::from("[Service]\n");
        for (k, v) in &lines {
            text.push_str(&format!("{k}={v}\n"));
        }
        let file = parse_unit(Path::new("/p"), &text).unwrap();
        let got: Vec<(String, String)> = file.sections[0].entries.iter().map(|e| (e.key.clone(), e.value.clone())).collect();
        let want: Vec<(String, String)> = lines.iter().map(|(k, v)| (k.clone(), strip_ws(v).to_string())).collect();
        prop_assert_eq!(got, want);
    }
}
