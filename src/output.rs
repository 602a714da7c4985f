//! What a command prints on stdout, through one writer: a reader that went away (`check |
//! head -n 1`) ends the output quietly, as it does for `git` and `ripgrep`, instead of a
//! panic; and nothing a command is doing (an install half way through its restarts) stops
//! because its output can no longer be read.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once a write to stdout failed: nothing more is written.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `text` to stdout, unless the reader is gone.
pub fn print(text: &str) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if out
        .write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        CLOSED.store(true, Ordering::Relaxed);
    }
}

/// `text` and a newline.
pub fn line(text: &str) {
    print(&format!("{text}\n"));
}

/// Whether the reader went away: a command that only shows something then ends as a
/// SIGPIPE would have ended it ([`SIGPIPE_STATUS`]).
pub fn closed() -> bool {
    CLOSED.load(Ordering::Relaxed)
}

/// 128 + SIGPIPE: the status of a program a closed pipe ends.
pub const SIGPIPE_STATUS: i32 = 141;
