//! The firewall's own tools (`nft`, `iptables-save`) run as child processes whose output is
//! read from non-blocking pipes: the supervisor polls them beside everything else, so a
//! slow `nft` never holds up a signal. Each has a deadline, after which it is killed.

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags};
use std::io::Read;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
use std::time::Instant;

/// What a finished (or failed) command left.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Why it could not run or did not finish, if so.
    pub failed: Option<String>,
}

impl Output {
    /// The command's complaint, one line: its failure, or the first line of its stderr.
    pub fn complaint(&self) -> String {
        if let Some(f) = &self.failed {
            return f.clone();
        }
        let text = String::from_utf8_lossy(&self.stderr);
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("no output");
        line.to_string()
    }
}

struct Running {
    child: Child,
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
}

struct Job {
    name: String,
    pid: Option<i32>,
    running: Option<Running>,
    output: Output,
}

/// Commands under way, all before one deadline.
pub struct Commands {
    jobs: Vec<Job>,
    deadline: Instant,
}

/// A tool found in `PATH`, or where Debian installs it (`sbin` is not in every user's `PATH`).
pub fn find(program: &str) -> Option<PathBuf> {
    which::which(program).ok().or_else(|| {
        ["/usr/sbin", "/sbin", "/usr/bin"]
            .iter()
            .map(|d| Path::new(d).join(program))
            .find(|p| p.is_file())
    })
}

impl Commands {
    pub fn start(commands: &[(PathBuf, Vec<String>)], deadline: Instant) -> Commands {
        let jobs = commands
            .iter()
            .map(|(program, args)| start(program, args))
            .collect();
        Commands { jobs, deadline }
    }

    pub fn outputs(mut self) -> Vec<Output> {
        self.jobs.drain(..).map(|j| j.output).collect()
    }

    /// The processes started, running or ended (a supervisor that reaps every child
    /// tells them from gunicorn's by these).
    pub fn pids(&self) -> Vec<i32> {
        self.jobs.iter().filter_map(|j| j.pid).collect()
    }

    /// Runs them to the end, waiting on nothing else (`check`).
    pub fn wait(mut self) -> Vec<Output> {
        crate::pollset::run_to_end(&mut self);
        self.outputs()
    }
}

impl crate::pollset::Pollable for Commands {
    fn deadline(&self) -> Instant {
        self.deadline
    }

    fn done(&self) -> bool {
        self.jobs.iter().all(|j| j.running.is_none())
    }

    /// The pipes still open, in a fixed order that [`Commands::advance`](crate::pollset::Pollable::advance) follows.
    fn poll_fds(&self) -> Vec<PollFd<'_>> {
        let mut fds = Vec::new();
        for r in self.jobs.iter().filter_map(|j| j.running.as_ref()) {
            if let Some(o) = &r.stdout {
                fds.push(PollFd::new(o.as_fd(), PollFlags::POLLIN));
            }
            if let Some(e) = &r.stderr {
                fds.push(PollFd::new(e.as_fd(), PollFlags::POLLIN));
            }
        }
        fds
    }

    /// Reads what the pipes of [`Commands::poll_fds`](crate::pollset::Pollable::poll_fds) have (`ready`, in its order); past the
    /// deadline, kills what still runs.
    fn advance(&mut self, ready: &[PollFlags], now: Instant) {
        let mut k = 0;
        let mut next = || {
            let r = ready.get(k).copied().unwrap_or(PollFlags::empty());
            k += 1;
            !r.is_empty()
        };
        for job in &mut self.jobs {
            let Some(r) = &mut job.running else { continue };
            if r.stdout.is_some() && next() {
                drain(&mut r.stdout, &mut job.output.stdout);
            }
            if r.stderr.is_some() && next() {
                drain(&mut r.stderr, &mut job.output.stderr);
            }
            if r.stdout.is_none() && r.stderr.is_none() {
                // Both pipes closed: it is ending. Its status is not needed (the output
                // says what it found), and a supervisor that reaps every child may have
                // taken it already.
                let _ = r.child.try_wait();
                job.running = None;
            } else if now >= self.deadline {
                let _ = r.child.kill();
                let _ = r.child.try_wait();
                job.output.failed = Some(format!("{} did not answer in time", job.name));
                job.running = None;
            }
        }
    }
}

fn start(program: &Path, args: &[String]) -> Job {
    let name = program.file_name().map_or_else(
        || program.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let spawned = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // The tools' messages in English, whatever the host's locale: they are quoted.
        .env("LC_ALL", "C")
        .spawn();
    let mut output = Output::default();
    let running = match spawned {
        Ok(mut child) => {
            let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
            for fd in [
                stdout.as_ref().map(AsFd::as_fd),
                stderr.as_ref().map(AsFd::as_fd),
            ]
            .into_iter()
            .flatten()
            {
                let _ = fcntl(
                    std::os::fd::AsRawFd::as_raw_fd(&fd),
                    FcntlArg::F_SETFL(OFlag::O_NONBLOCK),
                );
            }
            Some(Running {
                child,
                stdout,
                stderr,
            })
        }
        Err(e) => {
            output.failed = Some(format!("cannot run {}: {e}", program.display()));
            None
        }
    };
    let pid = running.as_ref().map(|r| r.child.id() as i32);
    Job {
        name,
        pid,
        running,
        output,
    }
}

impl Drop for Commands {
    /// A reading given up (a stop, a newer question, a verdict decided without it) leaves
    /// no tool running and no zombie: a killed tool ends at once, so waiting is short.
    fn drop(&mut self) {
        for r in self.jobs.iter_mut().filter_map(|j| j.running.as_mut()) {
            let _ = r.child.kill();
            let _ = r.child.wait();
        }
    }
}

/// Reads a non-blocking pipe until it would block; closes it at its end. Straight into
/// `into` (what was read before the pipe would block stays there): a buffer on the stack
/// would be paged in below every caller's frame, firewall or not.
fn drain<R: Read>(pipe: &mut Option<R>, into: &mut Vec<u8>) {
    let Some(p) = pipe else { return };
    match p.read_to_end(into) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        // The end of the tool's output, or a pipe that cannot be read any further.
        Ok(_) | Err(_) => *pipe = None,
    }
}

#[cfg(test)]
mod tests;
