//! The few facts about processes that the launcher reads from `/proc`.
//!
//! Hand-written on purpose: each is one small file read and a split, and a
//! general `/proc` crate parses every field of every file (and pulls in its
//! dependencies) for the four values needed here. A process may exit between
//! two reads: every function answers `None` or nothing for it, never an error.

use std::fs;

/// Every pid in this PID namespace's `/proc`.
pub fn all_pids() -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .collect()
}

/// The parent pid, from `/proc/<pid>/stat` (cheaper for the kernel than `status`).
pub fn ppid(pid: i32) -> Option<i32> {
    parse_ppid(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// `pid (comm) state ppid ...`: comm may hold spaces and parentheses, so
/// fields are counted from its last closing parenthesis.
pub fn parse_ppid(stat: &str) -> Option<i32> {
    let (_, fields) = stat.rsplit_once(')')?;
    fields.split_whitespace().nth(1)?.parse().ok()
}

/// The command line, words joined by spaces; `None` for a kernel thread or
/// a process that is gone.
pub fn command_line(pid: i32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let words: Vec<String> = raw
        .split(|&byte| byte == 0)
        .filter(|word| !word.is_empty())
        .map(|word| String::from_utf8_lossy(word).into_owned())
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// One variable of the environment the process was exec'd with.
pub fn environ_var(pid: i32, name: &str) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/environ")).ok()?;
    raw.split(|&byte| byte == 0).find_map(|entry| {
        let value = entry.strip_prefix(name.as_bytes())?.strip_prefix(b"=")?;
        Some(String::from_utf8_lossy(value).into_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ppid_survives_odd_command_names() {
        assert_eq!(parse_ppid("42 (gunicorn: a) b)) S 41 42 42 0 -1"), Some(41));
        assert_eq!(parse_ppid("42 (x) S"), None);
        assert_eq!(parse_ppid("42 x S 41"), None);
        let me = std::process::id() as i32;
        assert_eq!(ppid(me), Some(nix::unistd::getppid().as_raw()));
        assert!(all_pids().contains(&me));
    }

    #[test]
    fn command_line_and_environment_of_a_real_process() {
        let me = std::process::id() as i32;
        assert!(command_line(me).is_some_and(|c| !c.is_empty()));
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .env("GL_PROC_TEST", "a=b")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        // Until exec, /proc shows the environment copied from us.
        while command_line(pid).as_deref() != Some("sleep 30") {
            assert!(std::time::Instant::now() < deadline, "child never exec'd");
            std::thread::yield_now();
        }
        assert_eq!(environ_var(pid, "GL_PROC_TEST").as_deref(), Some("a=b"));
        assert_eq!(environ_var(pid, "GL_PROC"), None);
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
