//! What the launcher keeps resident once it sleeps, read from the kernel's page tables of the
//! real process: the stack that start-up grew is given back, and so is most of its code.

mod common;
use common::*;
use std::io::{Read, Seek, SeekFrom};

/// The user stack pointer of a process blocked in a system call (`/proc/PID/syscall`:
/// the call's number, its six arguments, then the stack and instruction pointers).
fn stack_pointer(pid: i32) -> usize {
    let text = std::fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap();
    let fields: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(fields.len(), 9, "not blocked in a system call: {text}");
    usize::from_str_radix(fields[7].trim_start_matches("0x"), 16).unwrap()
}

/// The address range of the first mapping in `/proc/PID/maps` whose line satisfies `which`.
fn mapping(pid: i32, which: impl Fn(&str) -> bool) -> std::ops::Range<usize> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let line = maps
        .lines()
        .find(|l| which(l))
        .unwrap_or_else(|| panic!("no such mapping:\n{maps}"));
    let (start, end) = line
        .split_whitespace()
        .next()
        .unwrap()
        .split_once('-')
        .unwrap();
    usize::from_str_radix(start, 16).unwrap()..usize::from_str_radix(end, 16).unwrap()
}

/// How many pages of `range` are in memory, from `/proc/PID/pagemap` (bit 63: present).
fn present_pages(pid: i32, range: std::ops::Range<usize>) -> usize {
    let mut pagemap = std::fs::File::open(format!("/proc/{pid}/pagemap")).unwrap();
    let pages = (range.end - range.start) / 4096;
    let mut entries = vec![0u8; pages * 8];
    pagemap
        .seek(SeekFrom::Start((range.start / 4096 * 8) as u64))
        .unwrap();
    pagemap.read_exact(&mut entries).unwrap();
    entries
        .chunks(8)
        .filter(|e| u64::from_le_bytes((*e).try_into().unwrap()) >> 63 == 1)
        .count()
}

/// Start-up goes deep: reading a host firewall drains each tool's output through a 64 KiB
/// buffer on the stack. Once READY=1 is sent and the launcher sleeps, no stack page more
/// than 32 KiB below its sleeping frame (the 16 KiB it keeps, and slack for the frames of
/// the loop between the release and the sleep) is in memory, and less than half of its code
/// is. Without the release the firewall's buffer alone keeps 16 pages of stack there.
#[test]
fn once_asleep_the_launcher_has_given_its_start_up_pages_back() {
    let ns = Netns::new();
    ns.add_nft_table("weight");
    let app = AppDir::new();
    let notify = NotifySocket::new();
    let l = app.launcher_notifying(&ns, &["run", "--", "gunicorn", "hello:app"], &notify);
    let _cleanup = KillTreeOnDrop(l.pid());
    let ready = notify.wait_for("READY=1", LONG);
    assert!(ready.contains("READY=1"), "{ready}");
    wait_until("the launcher to sleep in poll", LONG, || {
        asleep_in_poll(l.pid())
    });
    let sp = stack_pointer(l.pid());
    let stack = mapping(l.pid(), |line| line.ends_with("[stack]"));
    assert!(stack.contains(&sp), "{sp:#x} not in {stack:x?}");
    let below = stack.start..(sp - 32 * 1024) / 4096 * 4096;
    assert_eq!(
        present_pages(l.pid(), below.clone()),
        0,
        "stack pages in memory below {:#x} (the sleeping frame is at {sp:#x})",
        below.end
    );
    let code = mapping(l.pid(), |line| {
        line.split_whitespace().nth(1) == Some("r-xp") && line.contains("gunicorn-launcher")
    });
    let (resident, all) = (present_pages(l.pid(), code.clone()), code.len() / 4096);
    assert!(
        resident * 2 < all,
        "{resident} of the code's {all} pages in memory"
    );
}

/// Once serving and asleep, a HUP reaches gunicorn's master through a short path whose pages
/// stayed resident: between the wake and the `kill`, the launcher reads the signal and the
/// master's children (one `pread` of a file it holds open) and nothing else; the reload's
/// own work (naming the old workers from /proc, the log line, `RELOADING=1`) comes after,
/// once it has yielded the CPU. Watched with strace, which sees the calls and their order.
#[test]
fn an_idle_launchers_hup_goes_out_after_one_read_of_the_signal_and_one_of_the_children() {
    let ns = Netns::new();
    let app = AppDir::new();
    let notify = NotifySocket::new();
    let l = app.launcher_notifying(&ns, &["run", "--", "gunicorn", "hello:app"], &notify);
    let _cleanup = KillTreeOnDrop(l.pid());
    notify.wait_for("READY=1", LONG);
    wait_until("the launcher to sleep in poll", LONG, || {
        asleep_in_poll(l.pid())
    });
    let master = master_of(l.pid());
    let trace = app.path().join("trace");
    let mut strace = std::process::Command::new("strace")
        .args(["-o", trace.to_str().unwrap()])
        .args([
            "-e",
            "trace=poll,restart_syscall,read,pread64,openat,kill,sched_yield",
        ])
        .args(["-p", &l.pid().to_string()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("THIS TEST NEEDS strace: run scripts/setup-test-env");
    wait_until("strace to attach", LONG, || {
        status_field(l.pid(), "TracerPid").is_some_and(|t| t != "0")
    });
    signal_pid(l.pid(), nix::sys::signal::Signal::SIGHUP);
    notify.wait_for("RELOADING=1", LONG);
    notify.wait_for("READY=1", LONG);
    signal_pid(strace.id() as i32, nix::sys::signal::Signal::SIGINT);
    strace.wait().unwrap();
    let text = std::fs::read_to_string(&trace).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let sent = format!("kill({master}, SIGHUP)");
    let at = lines
        .iter()
        .position(|l| l.starts_with(&sent))
        .unwrap_or_else(|| panic!("no {sent} in:\n{text}"));
    // Attached while it slept in poll (and nothing but the HUP wakes a verified launcher), strace
    // shows that wake as restart_syscall, or not at all: then the trace starts after it.
    let from = lines[..at]
        .iter()
        .rposition(|l| l.starts_with("poll(") || l.starts_with("restart_syscall("))
        .map_or(0, |woke| woke + 1);
    let between: Vec<&str> = lines[from..at]
        .iter()
        .map(|l| l.split('(').next().unwrap())
        .collect();
    assert_eq!(between[0], "read", "the signalfd first:\n{text}");
    assert!(
        between[1..].iter().all(|&call| call == "pread64") && between.len() >= 2,
        "between the wake and the kill, only the signal's read and the children's pread:\n{}",
        lines[from..=at].join("\n")
    );
    assert!(
        lines
            .get(at + 1)
            .is_some_and(|l| l.starts_with("sched_yield")),
        "the CPU yielded to the master right after:\n{text}"
    );
}
