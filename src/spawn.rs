//! Starting gunicorn: `clone(CLONE_VM | CLONE_VFORK)` and `execve`, as `posix_spawn`
//! does: no page table is copied, and the launcher pays no copy-on-write fault afterwards.
//! The child shares the launcher's memory until it execs, so it may only make system
//! calls: no allocation, no lock. The program, its arguments and environment are C strings
//! made here beforehand, and a failure travels back as a step and an errno.

use crate::command::EnvChange;
use crate::error::Failure;
use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use std::ffi::{CString, OsString, c_char};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// The command, ready for `execve`.
pub struct Command {
    program: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    /// A listening socket gunicorn takes as fd 3 (`LISTEN_FDS=1`, and
    /// `LISTEN_PID` set to its own pid in the child).
    listen_fd: Option<RawFd>,
}

/// `LISTEN_PID=` and room for any pid's digits and the final NUL.
const LISTEN_PID: &[u8] = b"LISTEN_PID=";
const PID_DIGITS: usize = 10;

/// Where the child stopped before gunicorn ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
enum Step {
    Prepare = 1,
    LauncherGone = 2,
    Exec = 3,
}

impl Command {
    /// The command line `argv` (its first word is what `ps` shows, `program`
    /// is what runs) with the launcher's environment changed by `env`, then
    /// `set` on top.
    pub fn new(
        program: &Path,
        argv: &[String],
        env: &[EnvChange],
        set: &[(&str, &str)],
    ) -> Result<Command, String> {
        let nul =
            |what: &str| format!("{what} contains a NUL byte, which no command line can carry");
        let mut vars: Vec<(OsString, OsString)> = std::env::vars_os().collect();
        let mut put = |k: &str, v: Option<&str>| {
            vars.retain(|(name, _)| name != k);
            if let Some(v) = v {
                vars.push((k.into(), v.into()));
            }
        };
        for change in env {
            match change {
                EnvChange::Unset(k) => put(k, None),
                EnvChange::Set(k, v) => put(k, Some(v)),
            }
        }
        for (k, v) in set {
            put(k, Some(v));
        }
        let envp = vars
            .into_iter()
            .map(|(mut k, v)| {
                k.push("=");
                k.push(v);
                CString::new(k.into_vec()).map_err(|_| nul("an environment variable"))
            })
            .collect::<Result<_, _>>()?;
        let argv = argv
            .iter()
            .map(|a| CString::new(a.as_bytes()).map_err(|_| nul(&format!("argument {a:?}"))))
            .collect::<Result<_, _>>()?;
        let program = CString::new(program.as_os_str().as_encoded_bytes())
            .map_err(|_| nul("the program's path"))?;
        Ok(Command {
            program,
            argv,
            envp,
            listen_fd: None,
        })
    }

    /// Hands `fd`, a listening socket, to the program as fd 3 with
    /// `LISTEN_FDS=1` and `LISTEN_PID=<its pid>`: gunicorn then serves on it
    /// and binds nothing itself. The launcher keeps `fd` open.
    pub fn with_listen_fd(mut self, fd: RawFd) -> Command {
        self.envp.retain(|v| {
            !v.as_bytes().starts_with(b"LISTEN_FDS=") && !v.as_bytes().starts_with(LISTEN_PID)
        });
        self.envp.push(c"LISTEN_FDS=1".to_owned());
        self.listen_fd = Some(fd);
        self
    }
}

/// Starts `cmd`: gunicorn in a session of its own (so a terminal's Ctrl-C
/// reaches it once, through the launcher, and TTIN/TTOU sent before it has
/// handlers cannot stop it: its process group is orphaned), stdin on
/// /dev/null, every signal unblocked, and SIGTERM as its parent-death signal
/// (SIGKILL would leave sync workers alive for `timeout / 2`). Returns once
/// gunicorn's program runs. A failure's exit code is 127 (not found), 126
/// (not executable), 78 (arguments too long) or 70 (a system call of the
/// launcher's own failed).
pub fn spawn(cmd: &Command) -> Result<Pid, Failure> {
    let software = |what: &str, e: Errno| Failure {
        code: crate::exit::SOFTWARE,
        message: format!("cannot start gunicorn: {what}: {e}"),
    };
    let stdin: OwnedFd = std::fs::File::open("/dev/null")
        .map_err(|e| {
            software(
                "cannot open /dev/null",
                Errno::from_raw(e.raw_os_error().unwrap_or(0)),
            )
        })?
        .into();
    let ptrs = |v: &[CString]| -> Vec<*const c_char> {
        v.iter()
            .map(|s| s.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect()
    };
    let argv = ptrs(&cmd.argv);
    let mut envp = ptrs(&cmd.envp);
    // `LISTEN_PID=` with room for the child's pid, which only the child
    // knows: it writes its digits here, in this frame, before it execs.
    let mut listen_pid = [0u8; LISTEN_PID.len() + PID_DIGITS + 1];
    listen_pid[..LISTEN_PID.len()].copy_from_slice(LISTEN_PID);
    let pid_slot = listen_pid.as_mut_ptr();
    if cmd.listen_fd.is_some() {
        envp.insert(envp.len() - 1, pid_slot as *const c_char);
    }
    let listen = cmd.listen_fd.map(|fd| (fd, pid_slot));
    let parent = Pid::this();
    let stdin = stdin.as_raw_fd();
    // Step and errno of a failure, written by the child before it exits.
    let report = AtomicU64::new(0);
    let mut stack = [0u8; CHILD_STACK];
    let child = Box::new(|| {
        let (step, errno) = match prepare_child(parent, stdin, listen) {
            // SAFETY: see the `clone` below; the arrays are null-terminated
            // and point at live C strings.
            Ok(()) => unsafe {
                nix::libc::execve(cmd.program.as_ptr(), argv.as_ptr(), envp.as_ptr());
                (Step::Exec, Errno::last())
            },
            Err(failed) => failed,
        };
        report.store(
            (step as u64) << 32 | u64::from(errno as i32 as u32),
            Ordering::SeqCst,
        );
        127
    });
    // SAFETY: with CLONE_VM | CLONE_VFORK the child runs the closure above
    // on `stack` (16 KiB of this frame, for a few system calls), in this process's memory,
    // while this thread waits; the closure makes only system calls through
    // nix's thin wrappers and `libc::execve` on the C strings and pointer
    // arrays built above, which stay alive and unchanged until `clone`
    // returns here, after the child has exec'd or exited. It allocates
    // nothing and takes no lock, so neither this thread's paused state nor
    // another thread's held locks can hang it, and of ours it writes only
    // `report`, an atomic, the digits of `listen_pid`, which this thread does
    // not touch until `clone` returns, and this thread's `errno` (the libc
    // wrappers', no CLONE_SETTLS), which nothing reads before it is set again. Returning from the closure ends the
    // child with the exit system call, not libc's `exit`.
    let cloned = unsafe {
        nix::sched::clone(
            child,
            &mut stack,
            CloneFlags::CLONE_VM | CloneFlags::CLONE_VFORK,
            Some(Signal::SIGCHLD as i32),
        )
    };
    let child = cloned.map_err(|e| software("clone", e))?;
    match report.load(Ordering::SeqCst) {
        0 => Ok(child),
        failed => {
            let _ = waitpid(child, None);
            let errno = Errno::from_raw(failed as u32 as i32);
            Err(explain(&cmd.program, (failed >> 32) as u32, errno))
        }
    }
}

/// The child's stack until it execs: a few system calls' worth.
const CHILD_STACK: usize = 16 * 1024;

/// The child's own settings, before exec; the step and errno on failure.
/// `listen`: the socket to pass as fd 3, and where `LISTEN_PID=`'s digits go.
fn prepare_child(
    parent: Pid,
    stdin: i32,
    listen: Option<(RawFd, *mut u8)>,
) -> Result<(), (Step, Errno)> {
    let at = |e| (Step::Prepare, e);
    // The launcher blocks every signal it handles (they go to its
    // signalfd); exec keeps the mask, and a gunicorn with SIGCHLD and
    // SIGTERM blocked never reaps a worker nor stops.
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None).map_err(at)?;
    nix::unistd::setsid().map_err(at)?;
    nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(at)?;
    // The launcher may have died between fork and prctl: then nobody would
    // ever send the parent-death signal.
    if nix::unistd::getppid() != parent {
        return Err((Step::LauncherGone, Errno::ESRCH));
    }
    nix::unistd::dup2(stdin, 0).map_err(at)?;
    if let Some((fd, slot)) = listen {
        use nix::fcntl::{FcntlArg, FdFlag, fcntl};
        // dup2 clears close-on-exec on the copy; a socket already at 3 keeps
        // its flag, cleared here.
        if fd == crate::listen_socket::FIRST_PASSED_FD {
            fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty())).map_err(at)?;
        } else {
            nix::unistd::dup2(fd, crate::listen_socket::FIRST_PASSED_FD).map_err(at)?;
        }
        write_pid(nix::unistd::getpid().as_raw() as u32, slot);
    }
    // Rust's runtime ignores SIGPIPE and exec keeps an ignored signal
    // ignored: gunicorn gets the default. (Dispositions are the child's own:
    // no CLONE_SIGHAND.)
    // SAFETY: SIG_DFL installs no handler.
    unsafe { nix::sys::signal::signal(Signal::SIGPIPE, SigHandler::SigDfl) }.map_err(at)?;
    Ok(())
}

/// Writes `pid` in decimal, then a NUL, at `slot + LISTEN_PID.len()`: no allocation, as
/// the child of `clone(CLONE_VM)` needs.
fn write_pid(pid: u32, slot: *mut u8) {
    let mut digits = [0u8; PID_DIGITS];
    let mut n = pid;
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for (i, d) in digits[..len].iter().rev().enumerate() {
        // SAFETY: `slot` points at spawn's `listen_pid` buffer, LISTEN_PID.len() +
        // PID_DIGITS + 1 bytes long, which nothing else touches until the child has
        // exec'd (the parent is suspended by CLONE_VFORK); a u32 has at most 10 digits.
        unsafe { *slot.add(LISTEN_PID.len() + i) = *d };
    }
    // SAFETY: as above; the NUL ends the C string at its digits.
    unsafe { *slot.add(LISTEN_PID.len() + len) = 0 };
}

fn explain(program: &CString, step: u32, errno: Errno) -> Failure {
    let shown = program.to_string_lossy();
    match (step, errno) {
        (s, Errno::ENOENT) if s == Step::Exec as u32 => Failure {
            code: crate::exit::NOT_FOUND,
            message: format!("cannot start {shown}: {}", errno.desc()),
        },
        (s, Errno::E2BIG) if s == Step::Exec as u32 => Failure {
            code: crate::exit::CONFIG,
            message: format!(
                "cannot start {shown}: the kernel refused its arguments and environment as too long (E2BIG)"
            ),
        },
        (s, _) if s == Step::Exec as u32 => Failure {
            code: crate::exit::NOT_EXECUTABLE,
            message: format!("cannot start {shown}: {}", errno.desc()),
        },
        (s, _) if s == Step::LauncherGone as u32 => Failure {
            code: crate::exit::SOFTWARE,
            message: "gunicorn's parent (the launcher) was gone before gunicorn could start".into(),
        },
        _ => Failure {
            code: crate::exit::SOFTWARE,
            message: format!("cannot prepare gunicorn's process: {}", errno.desc()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::wait::WaitStatus;

    fn run(program: &str, argv: &[&str], set: &[(&str, &str)]) -> Result<WaitStatus, Failure> {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        let cmd = Command::new(Path::new(program), &argv, &[], set).unwrap();
        let pid = spawn(&cmd)?;
        Ok(waitpid(pid, None).unwrap())
    }

    #[test]
    fn the_child_gets_its_own_session_stdin_and_environment() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let script = format!(
            "read -r x; echo \"stdin=${{x:-empty}} sid=$(ps -o sid= -p $$) pid=$$ v=$GL_SPAWN_TEST\" > {}",
            out.display()
        );
        let status = run(
            "/bin/sh",
            &["sh", "-c", &script],
            &[("GL_SPAWN_TEST", "a b")],
        )
        .unwrap();
        assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
        let text = std::fs::read_to_string(&out).unwrap();
        let pid = status.pid().unwrap().as_raw();
        assert!(text.starts_with("stdin=empty sid="), "{text}");
        let sid: i32 = text
            .split("sid=")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(sid, pid, "{text}");
        assert!(text.trim_end().ends_with("v=a b"), "{text}");
    }

    /// The socket arrives as fd 3, with LISTEN_FDS=1 and LISTEN_PID the child's own pid,
    /// wherever the launcher holds it (at fd 3 itself, or elsewhere); twice from one
    /// command, as a restart does.
    #[test]
    fn a_held_socket_is_passed_as_fd_3_with_the_childs_own_pid() {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let inode = std::fs::metadata(format!("/proc/self/fd/{}", listener.as_raw_fd()))
            .unwrap()
            .ino();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let script = format!(
            "echo \"$LISTEN_FDS $LISTEN_PID $$ $(stat -L -c %i /proc/$$/fd/3)\" >> {}",
            out.display()
        );
        let argv: Vec<String> = ["sh", "-c", script.as_str()].map(String::from).to_vec();
        let env = [EnvChange::Set("LISTEN_PID".into(), "1".into())];
        let cmd = Command::new(Path::new("/bin/sh"), &argv, &env, &[])
            .unwrap()
            .with_listen_fd(listener.as_raw_fd());
        let mut pids = Vec::new();
        for _ in 0..2 {
            let pid = spawn(&cmd).unwrap();
            assert_eq!(waitpid(pid, None).unwrap(), WaitStatus::Exited(pid, 0));
            pids.push(pid);
        }
        let text = std::fs::read_to_string(&out).unwrap();
        let want: String = pids
            .iter()
            .map(|p| format!("1 {p} {p} {inode}\n"))
            .collect();
        assert_eq!(text, want);
    }

    #[test]
    fn missing_and_unrunnable_programs_have_their_exit_codes() {
        let e = run("/nonexistent/gunicorn", &["gunicorn"], &[]).unwrap_err();
        assert_eq!(e.code, crate::exit::NOT_FOUND, "{}", e.message);
        assert!(e.message.contains("/nonexistent/gunicorn"), "{}", e.message);
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("gunicorn");
        std::fs::write(&plain, "not a program").unwrap();
        let e = run(plain.to_str().unwrap(), &["gunicorn"], &[]).unwrap_err();
        assert_eq!(e.code, crate::exit::NOT_EXECUTABLE, "{}", e.message);
    }

    #[test]
    fn an_argument_with_a_nul_byte_is_refused_before_any_fork() {
        let e = Command::new(Path::new("/bin/true"), &["a\0b".into()], &[], &[])
            .err()
            .unwrap();
        assert!(e.contains("NUL byte"), "{e}");
    }
}
