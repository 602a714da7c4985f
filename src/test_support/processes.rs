//! A shell that forks two sleeps, in a process group of its own so that it is always ended
//! through that group and never through a pid a test read (a bug that read pid 0, -1 or 1
//! would otherwise signal the tests themselves, every process, or init).

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

/// `sh -c 'sleep 30 & sleep 30 & wait'`; its group is killed and the shell reaped once, by
/// `end` or on drop (a second `killpg` could reach a group whose number was given again).
pub struct ForkingShell(Option<Child>);

impl ForkingShell {
    pub fn spawn() -> ForkingShell {
        let child = Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30 & wait"])
            .process_group(0)
            .spawn()
            .expect("sh runs");
        ForkingShell(Some(child))
    }

    pub fn pid(&self) -> i32 {
        // Never a default: 0 is the pid this helper exists to keep away from signals.
        let child = self
            .0
            .as_ref()
            .expect("the shell is held until `end` or drop");
        child.id() as i32
    }

    /// Kills the group and reaps the shell; the sleeps go to whoever reaps orphans.
    pub fn end(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
        }
    }
}

impl Drop for ForkingShell {
    fn drop(&mut self) {
        self.stop();
    }
}
