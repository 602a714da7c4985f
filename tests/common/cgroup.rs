//! A memory cgroup of the test's own, with a real limit, for programs started inside it.

use std::path::PathBuf;
use std::process::Command;

/// A fresh child of this process's memory cgroup, limited to `limit` bytes (swap included).
pub struct MemoryCgroup {
    dir: PathBuf,
    /// The file whose `oom_kill` line counts this cgroup's OOM kills.
    counter: &'static str,
}

impl MemoryCgroup {
    /// None when no memory cgroup can be made here.
    pub fn new(limit: u64) -> Option<MemoryCgroup> {
        let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let name = format!(
            "gunicorn-launcher-test-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?
                .as_nanos()
        );
        for line in own.lines() {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            let v1 = controllers.split(',').any(|c| c == "memory");
            let (base, limit_file, swap_file, counter) = if v1 {
                (
                    format!("/sys/fs/cgroup/memory{path}"),
                    "memory.limit_in_bytes",
                    "memory.memsw.limit_in_bytes",
                    "memory.oom_control",
                )
            } else if controllers.is_empty() {
                (
                    format!("/sys/fs/cgroup{path}"),
                    "memory.max",
                    "memory.swap.max",
                    "memory.events",
                )
            } else {
                continue;
            };
            let dir = PathBuf::from(base).join(&name);
            if std::fs::create_dir(&dir).is_err() {
                continue;
            }
            let limited = std::fs::write(dir.join(limit_file), limit.to_string()).is_ok();
            // Without swap in the limit the kernel would page out instead of killing; a host
            // without swap accounting has no such file, and needs none.
            let swap = if v1 { limit.to_string() } else { "0".into() };
            let _ = std::fs::write(dir.join(swap_file), swap);
            if limited && dir.join(counter).exists() {
                return Some(MemoryCgroup { dir, counter });
            }
            let _ = std::fs::remove_dir(&dir);
        }
        None
    }

    /// `c` started inside this cgroup, in a network namespace of its own with loopback up (a
    /// shell moves itself in, then execs it). Not `ip netns exec`: that mounts a fresh /sys,
    /// where no cgroup hierarchy is mounted, and the launcher would find no counter to read.
    pub fn enter(&self, c: Command) -> Command {
        let mut wrapped = Command::new("unshare");
        wrapped
            .args(["--net", "sh", "-c"])
            .arg(format!(
                "ip link set lo up && echo $$ > '{}/cgroup.procs' && exec \"$@\"",
                self.dir.display()
            ))
            .arg("sh")
            .arg(c.get_program())
            .args(c.get_args());
        for (key, value) in c.get_envs() {
            match value {
                Some(v) => wrapped.env(key, v),
                None => wrapped.env_remove(key),
            };
        }
        if let Some(dir) = c.get_current_dir() {
            wrapped.current_dir(dir);
        }
        wrapped
    }

    /// How many processes the kernel's OOM killer has killed in this cgroup.
    pub fn oom_kills(&self) -> u64 {
        std::fs::read_to_string(self.dir.join(self.counter))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        // Whatever still runs inside is killed by the test's own cleanup; the directory goes
        // once it is empty.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}
