//! What the child does between fork and exec.
//!
//! Only async-signal-safe calls happen here: no allocation, no locks, no
//! logging. Everything the child needs (the cgroup.procs fd, the fds to
//! keep) is prepared by the parent before the fork.

use crate::sys;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;

/// Fork-to-exec setup shared by every spawn into a tree.
#[derive(Debug, Clone, Default)]
pub struct ChildSetup {
    /// `cgroup.procs` of the tree's cgroup: the child writes "0" into it,
    /// which moves the writer, before it can fork anything.
    pub cgroup_procs: Option<RawFd>,
    /// Put the child in a new process group of its own.
    pub new_group: bool,
    /// Descriptors above 2 that survive exec; every other one is marked
    /// close-on-exec.
    pub pass_fds: Vec<RawFd>,
    /// Empty the signal mask (sexton blocks signals for its signalfd).
    pub reset_mask: bool,
    /// Reset every ignored signal to its default action (daemons).
    pub reset_dispositions: bool,
    /// Signal the child gets when the process that spawned it dies
    /// (`PR_SET_PDEATHSIG`). A spawner that died before the `prctl` is
    /// caught by comparing `getppid` with it, and the child exits.
    pub parent_death_signal: Option<nix::sys::signal::Signal>,
    /// Make the child's process group the foreground group of the
    /// terminal on fd 0, when fd 0 is this session's terminal (`init`:
    /// the program in its own group can then read the terminal).
    pub foreground: bool,
}

impl ChildSetup {
    /// Installs the setup as a `pre_exec` hook on `cmd`.
    pub fn apply(&self, cmd: &mut std::process::Command) {
        if self.new_group {
            cmd.process_group(0);
        }
        let setup = self.clone();
        let spawner = std::process::id() as i32;
        // SAFETY: the closure runs in the forked child before exec and
        // only makes async-signal-safe system calls (prctl, getppid, write,
        // sigprocmask, rt_sigaction, close_range/fcntl) on data prepared before the fork.
        unsafe {
            cmd.pre_exec(move || setup.in_child(spawner));
        }
    }

    fn in_child(&self, spawner: i32) -> io::Result<()> {
        if let Some(sig) = self.parent_death_signal {
            nix::sys::prctl::set_pdeathsig(sig).map_err(io::Error::from)?;
            if nix::unistd::getppid().as_raw() != spawner {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
        }
        if let Some(fd) = self.cgroup_procs {
            // SAFETY: the fd is cgroup.procs, opened by the parent before
            // the fork and open until exec. rustix's write is the bare
            // syscall: no allocation, async-signal-safe.
            let procs = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            loop {
                match rustix::io::write(procs, b"0") {
                    Ok(1) => break,
                    Err(rustix::io::Errno::INTR) => continue,
                    Ok(_) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
                    Err(e) => return Err(io::Error::from_raw_os_error(e.raw_os_error())),
                }
            }
        }
        if self.foreground {
            take_terminal();
        }
        if self.reset_mask {
            let empty = nix::sys::signal::SigSet::empty();
            nix::sys::signal::sigprocmask(
                nix::sys::signal::SigmaskHow::SIG_SETMASK,
                Some(&empty),
                None,
            )
            .map_err(io::Error::from)?;
        }
        if self.reset_dispositions {
            // Every signal, real-time ones included (an ignored one stays
            // ignored across exec), except the two that cannot be caught.
            for signo in 1..=sys::SIGNAL_MAX {
                if signo == libc::SIGKILL || signo == libc::SIGSTOP {
                    continue;
                }
                let _ = sys::default_disposition(signo);
            }
        }
        if sys::cloexec_from(3).is_err() {
            sys::cloexec_each(3, 65536);
        }
        for &fd in &self.pass_fds {
            sys::keep_across_exec(fd).map_err(io::Error::from_raw_os_error)?;
        }
        Ok(())
    }
}

/// `tcsetpgrp(0, getpgrp())` with SIGTTOU blocked around it (a process
/// outside the foreground group gets SIGTTOU for trying otherwise).
/// Errors are ignored: fd 0 is often not a terminal, or not ours.
/// Async-signal-safe (sigprocmask, ioctl).
fn take_terminal() {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
    let mut ttou = SigSet::empty();
    ttou.add(Signal::SIGTTOU);
    let mut old = SigSet::empty();
    if sigprocmask(SigmaskHow::SIG_BLOCK, Some(&ttou), Some(&mut old)).is_err() {
        return;
    }
    let _ = nix::unistd::tcsetpgrp(rustix::stdio::stdin(), nix::unistd::getpgrp());
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
}
