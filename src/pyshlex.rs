//! Python's `shlex.split` and `shlex.join`, exactly (CPython 3.11). gunicorn reads
//! `GUNICORN_CMD_ARGS` with `shlex.split`, which a POSIX shell's rules get wrong: `#` is an
//! ordinary character (`--workers 2 #x -b 127.0.0.1:8001` is five words), inside double
//! quotes a backslash escapes only `"` and `\`, and only space, tab, CR and LF separate
//! words. The launcher must see the words gunicorn sees, and writes a rewritten value back
//! with [`join`](crate::pyshlex::join), which [`split`](crate::pyshlex::split) reads back as the same words. tests/argparse_differential.rs
//! compares both with the venv's Python.

/// The characters `shlex` (posix mode) separates words with.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// `shlex.split(s)`: posix mode, whitespace-split, no comments. The errors
/// are Python's `ValueError` messages, `No closing quotation` and
/// `No escaped character`.
///
/// This is `shlex.read_token` with the states that these settings reach:
/// between words, in a word, in quotes, after a backslash.
pub fn split(s: &str) -> Result<Vec<String>, String> {
    #[derive(Clone, Copy)]
    enum State {
        Between,
        Word,
        Quote(char),
        /// After a backslash; returns to the word, or to double quotes.
        Escape {
            in_quotes: bool,
        },
    }
    let mut words = Vec::new();
    let mut word = String::new();
    let mut state = State::Between;
    for c in s.chars() {
        state = match state {
            State::Between if is_space(c) => State::Between,
            // A word starts with any other character, read as in a word.
            State::Between | State::Word => match c {
                c if is_space(c) => {
                    words.push(std::mem::take(&mut word));
                    State::Between
                }
                '\'' | '"' => State::Quote(c),
                '\\' => State::Escape { in_quotes: false },
                c => {
                    word.push(c);
                    State::Word
                }
            },
            State::Quote(q) if c == q => State::Word,
            State::Quote('"') if c == '\\' => State::Escape { in_quotes: true },
            State::Quote(q) => {
                word.push(c);
                State::Quote(q)
            }
            State::Escape { in_quotes } => {
                // In double quotes only `"` and `\` are escaped; before any
                // other character the backslash stays.
                if in_quotes && c != '"' && c != '\\' {
                    word.push('\\');
                }
                word.push(c);
                if in_quotes {
                    State::Quote('"')
                } else {
                    State::Word
                }
            }
        };
    }
    match state {
        State::Between => {}
        // A word, possibly empty (`''`), is never empty-and-unquoted here:
        // every way into `Word` pushed a character or closed a quote.
        State::Word => words.push(word),
        State::Quote(_) => return Err("No closing quotation".into()),
        State::Escape { .. } => return Err("No escaped character".into()),
    }
    Ok(words)
}

/// Characters `shlex.quote` leaves unquoted: `[\w@%+=:,./-]` with ASCII
/// `\w` (letters, digits and `_`).
fn is_safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c)
}

/// `shlex.quote(s)`: `''` for the empty string, `s` itself when every
/// character is safe, else `s` in single quotes with each `'` written
/// `'"'"'`.
pub fn quote(s: &str) -> String {
    if s.is_empty() {
        "''".into()
    } else if s.chars().all(is_safe) {
        s.into()
    } else {
        format!("'{}'", s.replace('\'', r#"'"'"'"#))
    }
}

/// `shlex.join(words)`: each word quoted, joined with single spaces.
/// `split(&join(w)) == Ok(w)` for any words.
pub fn join(words: &[String]) -> String {
    words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests;
