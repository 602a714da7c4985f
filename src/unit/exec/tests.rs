use super::*;
use crate::test_support::units::{argv, exec, parse, tricky_text};
use proptest::prelude::*;

fn words(s: &str) -> Vec<String> {
    exec(s).argv
}

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9_./:=%${}-]{1,12}",
        Just(";".to_string()),
        Just(String::new()),
        Just("$VAR".to_string()),
        Just("${VAR}".to_string()),
        prop::collection::vec(any::<char>().prop_filter("no NUL", |c| *c != '\0'), 0..8)
            .prop_map(|cs| cs.into_iter().collect()),
    ]
}

fn command() -> impl Strategy<Value = ExecCommand> {
    let prefixes = prop::sample::select(vec![
        "", "-", "@", ":", "+", "!", "!!", "-@", "@-:+", ":!!", "-!",
    ]);
    let program = "(/[a-zA-Z0-9 %._-]{1,10}){1,3}|[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,10}"
        .prop_filter("valid executable", |p| {
            check_executable(p).is_ok() && !p.ends_with('/')
        });
    (prefixes, program, prop::collection::vec(word(), 1..6)).prop_map(
        |(prefixes, program, args)| {
            let mut argv = vec![program];
            argv.extend(args);
            ExecCommand {
                prefixes: prefixes.to_string(),
                argv,
                raw: String::new(),
            }
        },
    )
}

#[test]
fn plain_words() {
    let c = exec(
        "/opt/solvit/venv/bin/gunicorn --workers 3 --bind 127.0.0.1:8001 solvit.wsgi:application",
    );
    assert_eq!(c.prefixes, "");
    assert_eq!(
        argv(&c),
        [
            "/opt/solvit/venv/bin/gunicorn",
            "--workers",
            "3",
            "--bind",
            "127.0.0.1:8001",
            "solvit.wsgi:application"
        ]
    );
    assert_eq!(
        c.raw,
        "/opt/solvit/venv/bin/gunicorn --workers 3 --bind 127.0.0.1:8001 solvit.wsgi:application"
    );
    assert_eq!(words("  gunicorn \t  app  "), ["gunicorn", "app"]);
}

#[test]
fn quoting() {
    assert_eq!(
        words(r#"/bin/echo "a b" 'c d' "it's" 'say "hi"'"#),
        ["/bin/echo", "a b", "c d", "it's", "say \"hi\""]
    );
    // Quotes anywhere in a word, shell-like.
    assert_eq!(
        words(r#"/bin/x --name="my app" a"b c"d ''"#),
        ["/bin/x", "--name=my app", "ab cd", ""]
    );
    assert_eq!(words(r#"/bin/x "" """#), ["/bin/x", "", ""]);
    // The executable may be quoted too, and prefixes sit inside the first word.
    let c = exec(r#"-"/opt/my app/bin/gunicorn" x"#);
    assert_eq!(
        (c.prefixes.as_str(), argv(&c)),
        ("-", vec!["/opt/my app/bin/gunicorn", "x"])
    );
    let c = exec(r#""-/bin/x""#);
    assert_eq!(c.prefixes, "-");
}

#[test]
fn escapes() {
    assert_eq!(
        words(r#"/bin/x a\tb "c\nd" 'e\'f' \" \\ \s \x41\102 \u00e9 \U0001F600 \a\b\f\v\r"#),
        [
            "/bin/x",
            "a\tb",
            "c\nd",
            "e'f",
            "\"",
            "\\",
            " ",
            "AB",
            "é",
            "😀",
            "\x07\x08\x0c\x0b\r"
        ]
    );
    // UTF-8 built from byte escapes.
    assert_eq!(words(r"/bin/x \xc3\xa9"), ["/bin/x", "é"]);
    // Unknown or invalid escapes stay verbatim (systemd's relaxed retry).
    assert_eq!(
        words(r"/bin/x \q \x4 \x00 \000 a\ b \777"),
        ["/bin/x", "\\q", "\\x4", "\\x00", "\\000", "a\\ b", "\\777"]
    );
    assert_eq!(words(r"/bin/x \"), ["/bin/x", "\\"]);
    // Bytes that are not UTF-8, surrogates, invalid code points.
    assert!(parse_exec(r"/bin/x \xff").is_err());
    assert!(parse_exec(r"/bin/x \ud800").is_err());
    assert_eq!(words(r"/bin/x \UFFFFFFFF"), ["/bin/x", "\\UFFFFFFFF"]);
}

#[test]
fn unbalanced_quotes_are_errors() {
    for bad in [r#"/bin/x "a b"#, "/bin/x 'a", r#""/bin/x"#, r#"/bin/x "a\"#] {
        let e = parse_exec(bad).unwrap_err();
        assert!(e.contains("unbalanced"), "{bad}: {e}");
    }
}

#[test]
fn prefixes() {
    let cases: [(&str, &str, &str); 12] = [
        ("-/bin/x", "-", "/bin/x"),
        ("@/bin/x y", "@", "/bin/x"),
        (":/bin/x", ":", "/bin/x"),
        ("+/bin/x", "+", "/bin/x"),
        ("!/bin/x", "!", "/bin/x"),
        ("!!/bin/x", "!!", "/bin/x"),
        ("-@:+/bin/x y", "-@:+", "/bin/x"),
        ("@-/bin/x y", "@-", "/bin/x"),
        ("--x", "-", "-x"),
        ("+!x", "+", "!x"),
        ("!!!x", "!!", "!x"),
        (":-!!x", ":-!!", "x"),
    ];
    for (text, prefixes, path) in cases {
        let c = exec(text);
        assert_eq!(
            (c.prefixes.as_str(), c.argv[0].as_str()),
            (prefixes, path),
            "{text}"
        );
    }
    let c = exec("-@/opt/venv/bin/gunicorn solvit-web -b 127.0.0.1:8001 app");
    assert!(c.has_prefix('-') && c.has_prefix('@') && !c.has_prefix('+'));
    assert_eq!(
        c.program_and_args(),
        ["/opt/venv/bin/gunicorn", "-b", "127.0.0.1:8001", "app"]
    );
}

#[test]
fn bad_executables() {
    for (bad, why) in [
        ("", "empty command"),
        ("   ", "empty command"),
        ("-", "empty executable"),
        ("@", "empty executable"),
        ("-@ x", "empty executable"),
        ("@/bin/x", "second word"),
        (r#""/bin/a\"b""#, "special characters"),
        (r"/bin/a\tb", "special characters"),
        ("/usr/bin/", "directory"),
        ("bin/gunicorn", "neither"),
        ("..", "neither"),
    ] {
        let e = parse_exec(bad).unwrap_err();
        assert!(e.contains(why), "{bad:?}: {e}");
    }
    // Specifiers are not expanded: only the checks expansion cannot change apply.
    assert_eq!(
        words("%h/venv/bin/gunicorn app"),
        ["%h/venv/bin/gunicorn", "app"]
    );
}

#[test]
fn nul_characters_are_refused() {
    assert!(parse_exec("/bin/x a\0b").unwrap_err().contains("NUL"));
    // In a file, NUL ends a line (as read_line() does), so it never reaches a value.
    let f = parse("[S]\nA=1\0B=2\n");
    assert_eq!(f.sections[0].entries.len(), 2);
}

#[test]
fn semicolons() {
    assert!(
        parse_exec("/bin/a ; /bin/b")
            .unwrap_err()
            .contains("separates")
    );
    assert!(parse_exec("/bin/a ;").unwrap_err().contains("separates"));
    assert!(parse_exec("; /bin/a").unwrap_err().contains("separates"));
    assert!(
        parse_exec("\";\" /bin/a")
            .unwrap_err()
            .contains("separates")
    );
    assert_eq!(words(r"/bin/a \; b"), ["/bin/a", ";", "b"]);
    assert_eq!(words(r"/bin/a \;"), ["/bin/a", ";"]);
    assert_eq!(
        words(r#"/bin/a ";" a;b ;x \\;"#),
        ["/bin/a", ";", "a;b", ";x", "\\;"]
    );
}

#[test]
fn specifiers_and_variables_are_kept_verbatim() {
    assert_eq!(
        words(r#"/bin/x %i %h/data "%I dir" $PORT ${HOST}:${PORT} "$A" $$ 100%%"#),
        [
            "/bin/x",
            "%i",
            "%h/data",
            "%I dir",
            "$PORT",
            "${HOST}:${PORT}",
            "$A",
            "$$",
            "100%%"
        ]
    );
}

#[test]
fn format_quotes_only_what_needs_it() {
    let c = exec(r#"-/bin/x $OPTS ${A}:${B} %i "a b" "" 'q"q' "x\ny" \; "%h/my dir""#);
    assert_eq!(
        format_exec(&c),
        r#"-/bin/x $OPTS ${A}:${B} %i "a b" "" "q\"q" "x\ny" ";" "%h/my dir""#
    );
    assert_eq!(exec(&format_exec(&c)), c);
    let c = ExecCommand {
        prefixes: String::new(),
        argv: vec!["/bin/x".into(), "\x01\x7f\\".into()],
        raw: String::new(),
    };
    assert_eq!(format_exec(&c), r#"/bin/x "\x01\x7f\\""#);
    assert_eq!(exec(&format_exec(&c)), c);
    let c = exec(r#"@"/opt/my app/gunicorn" "name x" -b 0:1"#);
    assert_eq!(
        format_exec(&c),
        r#"@"/opt/my app/gunicorn" "name x" -b 0:1"#
    );
}

#[test]
fn equality_ignores_spelling() {
    assert_eq!(exec("/bin/x 'a'"), exec("/bin/x    \"a\""));
    assert_ne!(exec("/bin/x a"), exec("-/bin/x a"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_exec_never_panics(text in tricky_text()) {
        let _ = parse_exec(&text);
    }

    #[test]
    fn parse_exec_never_panics_on_any_string(text in any::<String>()) {
        let _ = parse_exec(&text);
    }

    #[test]
    fn format_then_parse_round_trips(cmd in command()) {
        let text = format_exec(&cmd);
        let back = parse_exec(&text).map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
        prop_assert_eq!(&back, &cmd, "{:?}", text);
        prop_assert_eq!(back.raw, text);
    }

    #[test]
    fn parse_format_parse_is_stable(text in tricky_text()) {
        if let Ok(cmd) = parse_exec(&text) {
            let again = parse_exec(&format_exec(&cmd));
            prop_assert_eq!(again, Ok(cmd));
        }
    }
}

proptest! {
    /// systemd's bit packing is UTF-8 for every scalar value: Rust's own encoder agrees on
    /// each, from one byte to four.
    #[test]
    fn unichar_encoding_is_utf8_for_every_scalar_value(
        c in prop_oneof![0u32..0x80, 0x80u32..0x800, 0x800u32..0xD800, 0xE000u32..0x10000, 0x10000u32..0x110000]
    ) {
        let ch = char::from_u32(c).unwrap();
        let mut buf = [0u8; 4];
        prop_assert_eq!(encode_unichar(c), ch.encode_utf8(&mut buf).as_bytes().to_vec());
    }
}

#[test]
fn unichar_encoding_at_each_lengths_bounds() {
    for c in [
        0u32, 0x41, 0x7F, 0x80, 0x7FF, 0x800, 0xFFFD, 0x10000, 0x10FFFF,
    ] {
        let mut buf = [0u8; 4];
        let want = char::from_u32(c)
            .unwrap()
            .encode_utf8(&mut buf)
            .as_bytes()
            .to_vec();
        assert_eq!(encode_unichar(c), want, "{c:#x}");
    }
}
