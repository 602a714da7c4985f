use super::*;
use proptest::prelude::*;

fn ok(s: &str) -> Vec<String> {
    split(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

/// Expected values are CPython 3.11's `shlex.split` output.
#[test]
fn splits_as_python_does() {
    let cases: &[(&str, &[&str])] = &[
        ("", &[]),
        ("   \t\r\n ", &[]),
        ("a", &["a"]),
        ("  a  b\tc\nd\re  ", &["a", "b", "c", "d", "e"]),
        // `#` is an ordinary character, anywhere.
        (
            "--workers 2 #x -b 127.0.0.1:8001",
            &["--workers", "2", "#x", "-b", "127.0.0.1:8001"],
        ),
        ("a#b # #", &["a#b", "#", "#"]),
        // Quotes.
        ("''", &[""]),
        ("\"\"", &[""]),
        ("a '' b", &["a", "", "b"]),
        ("'a b'", &["a b"]),
        ("x'a b'y", &["xa by"]),
        ("'a'\"b\"c", &["abc"]),
        ("'a\"b'", &["a\"b"]),
        ("\"a'b\"", &["a'b"]),
        ("'a\\b'", &["a\\b"]),
        ("'\\'", &["\\"]),
        ("'a\nb'", &["a\nb"]),
        ("'#'", &["#"]),
        // Backslash outside quotes escapes anything.
        ("a\\ b", &["a b"]),
        ("\\a", &["a"]),
        ("\\\\", &["\\"]),
        ("\\'", &["'"]),
        ("\\\"", &["\""]),
        ("\\#x", &["#x"]),
        ("a\\\nb", &["a\nb"]),
        ("\\ ", &[" "]),
        ("\\  x", &[" ", "x"]),
        // Backslash inside double quotes escapes only `"` and `\`.
        ("\"a\\\"b\"", &["a\"b"]),
        ("\"a\\\\b\"", &["a\\b"]),
        ("\"a\\$b\"", &["a\\$b"]),
        ("\"a\\'b\"", &["a\\'b"]),
        ("\"a\\\nb\"", &["a\\\nb"]),
        ("\"\\n\"", &["\\n"]),
        // Other whitespace is part of a word.
        ("a\x0bb\x0cc", &["a\x0bb\x0cc"]),
        ("a\u{a0}b", &["a\u{a0}b"]),
        ("\0", &["\0"]),
        ("é ß", &["é", "ß"]),
        (
            "--access-logformat '%(h)s %(l)s'",
            &["--access-logformat", "%(h)s %(l)s"],
        ),
        ("-b=127.0.0.1:8001", &["-b=127.0.0.1:8001"]),
    ];
    for (input, expected) in cases {
        assert_eq!(ok(input), *expected, "split({input:?})");
    }
}

#[test]
fn refuses_as_python_does() {
    for s in ["'", "\"", "a 'b", "\"a\\\"", "'a\"", "a\"b'c"] {
        assert_eq!(split(s), Err("No closing quotation".into()), "{s:?}");
    }
    for s in ["\\", "a \\", "a\\"] {
        assert_eq!(split(s), Err("No escaped character".into()), "{s:?}");
    }
    // A backslash at the end inside double quotes: the quote is open.
    assert_eq!(split("\"\\"), Err("No escaped character".into()));
}

#[test]
fn quotes_as_python_does() {
    let cases = [
        ("", "''"),
        ("abc", "abc"),
        ("a_b-c.d/e:f,g=h+i%j@k", "a_b-c.d/e:f,g=h+i%j@k"),
        ("-", "-"),
        ("a b", "'a b'"),
        ("#", "'#'"),
        ("it's", r#"'it'"'"'s'"#),
        ("'", r#"''"'"''"#),
        ("$HOME", "'$HOME'"),
        ("é", "'é'"),
        ("a\\b", "'a\\b'"),
        ("a\nb", "'a\nb'"),
        ("%(h)s", "'%(h)s'"),
    ];
    for (word, quoted) in cases {
        assert_eq!(quote(word), quoted, "quote({word:?})");
    }
    let words: Vec<String> = ["--workers", "2", "", "a b"].map(String::from).to_vec();
    assert_eq!(join(&words), "--workers 2 '' 'a b'");
    assert_eq!(join(&[]), "");
}

#[test]
fn hash_does_not_start_a_comment() {
    // The reason this module exists: a comment-aware splitter (the
    // `shlex` crate) sees two words here, gunicorn five.
    assert_eq!(
        ok("--workers 2 #x -b 127.0.0.1:8001"),
        ["--workers", "2", "#x", "-b", "127.0.0.1:8001"]
    );
}

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9_@%+=:,./-]{0,6}",
        "[ '\"\\\\#$`\t\n\r a-z]{0,8}",
        any::<String>(),
    ]
}

proptest! {
    #[test]
    fn join_then_split_is_the_identity(words in proptest::collection::vec(word(), 0..8)) {
        prop_assert_eq!(split(&join(&words)), Ok(words));
    }

    #[test]
    fn quote_is_one_word(w in any::<String>()) {
        prop_assert_eq!(split(&quote(&w)), Ok(vec![w]));
    }

    #[test]
    fn hash_is_an_ordinary_character(
        before in "[a-z ]{0,8}",
        after in "[a-z#]{0,8}",
    ) {
        let with_hash = split(&format!("{before} #{after} x")).unwrap();
        prop_assert_eq!(with_hash.last().map(String::as_str), Some("x"));
        let hashed = format!("#{after}");
        prop_assert!(with_hash.contains(&hashed), "{:?}", with_hash);
    }

    #[test]
    fn split_never_panics_and_words_have_no_separators_unless_quoted(s in "[ a'\"\\\\#\n]{0,16}") {
        if let Ok(words) = split(&s) {
            for w in &words {
                // A separator inside a word came from quotes or a backslash.
                if w.chars().any(is_space) {
                    prop_assert!(s.contains('\'') || s.contains('"') || s.contains('\\'));
                }
            }
        }
    }
}
