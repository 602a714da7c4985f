//! Starting gunicorn: `clone(CLONE_VM | CLONE_VFORK)` and `execve`, as `posix_spawn`
//! does: no page table is copied, and the launcher pays no copy-on-write fault afterwards.
//! The child shares the launcher's memory until it execs, so it may only make system
//! calls: no allocation, no lock. The program, its arguments and environment are C strings
//! made here beforehand, and a failure travels back as a step and an errno.

use crate::command::ChildEnv;
use crate::error::Failure;
use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use std::ffi::{CString, c_char};
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
    /// is what runs) with the environment `env`, and `set` on top.
    pub fn new(
        program: &Path,
        argv: &[String],
        env: &ChildEnv,
        set: &[(&str, &str)],
    ) -> Result<Command, String> {
        let nul =
            |what: &str| format!("{what} contains a NUL byte, which no command line can carry");
        let mut env = env.clone();
        for (k, v) in set {
            env.put(k, Some(v));
        }
        let envp = env
            .vars
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

    /// Hands `fd`, a listening socket, to the program as fd 3 with `LISTEN_PID=<its pid>`
    /// (the environment has `LISTEN_FDS=1`): gunicorn then serves on it and binds nothing
    /// itself. The launcher keeps `fd` open.
    pub fn with_listen_fd(mut self, fd: RawFd) -> Command {
        self.envp.retain(|v| !v.as_bytes().starts_with(LISTEN_PID));
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
    let stdin: OwnedFd = std::fs::File::open("/dev/null")
        .map_err(|e| {
            cannot_start(
                "cannot open /dev/null",
                Errno::from_raw(e.raw_os_error().unwrap_or(0)),
            )
        })?
        .into();
    let argv = c_array(&cmd.argv);
    let mut envp = c_array(&cmd.envp);
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
            Ok(()) => exec(&cmd.program, &argv, &envp),
            Err(failed) => failed,
        };
        report.store(
            (step as u64) << 32 | u64::from(errno as i32 as u32),
            Ordering::SeqCst,
        );
        127
    });
    // SAFETY: with CLONE_VM | CLONE_VFORK the child runs the closure above on `stack` (16 KiB
    // of this frame) in this process's memory while this thread waits. The closure makes only
    // system calls (nix's thin wrappers, `execve` on arrays built above, alive and unchanged
    // until `clone` returns after the child exec'd or exited); it allocates nothing and takes
    // no lock, so no paused state or held lock can hang it. Of ours it writes only `report`
    // (an atomic), `listen_pid`'s digits (untouched here until `clone` returns) and errno
    // (no CLONE_SETTLS; read by nothing before it is set again). Returning from the closure
    // ends the child with the exit system call, not libc's `exit`.
    let cloned = unsafe {
        nix::sched::clone(
            child,
            &mut stack,
            CloneFlags::CLONE_VM | CloneFlags::CLONE_VFORK,
            Some(Signal::SIGCHLD as i32),
        )
    };
    let child = cloned.map_err(|e| cannot_start("clone", e))?;
    match report.load(Ordering::SeqCst) {
        0 => Ok(child),
        failed => {
            let _ = waitpid(child, None);
            let errno = Errno::from_raw(failed as u32 as i32);
            Err(explain(&cmd.program, (failed >> 32) as u32, errno))
        }
    }
}

/// `execve`, in the child: returns only if it failed.
fn exec(program: &CString, argv: &[*const c_char], envp: &[*const c_char]) -> (Step, Errno) {
    // SAFETY: both arrays are null-terminated (`c_array`) and point at C strings that live
    // in the parent's frame until `clone` returns, after this exec or the child's exit.
    unsafe { nix::libc::execve(program.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    (Step::Exec, Errno::last())
}

fn cannot_start(what: &str, e: Errno) -> Failure {
    Failure {
        code: crate::exit::SOFTWARE,
        message: format!("cannot start gunicorn: {what}: {e}"),
    }
}

/// The pointers `execve` takes: each string's, then a null.
fn c_array(v: &[CString]) -> Vec<*const c_char> {
    v.iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
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
        if fd == crate::held_socket::FIRST_PASSED_FD {
            fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty())).map_err(at)?;
        } else {
            nix::unistd::dup2(fd, crate::held_socket::FIRST_PASSED_FD).map_err(at)?;
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
mod tests;
