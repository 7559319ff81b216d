//! The guard: how killing a front end, even with SIGKILL and together
//! with its whole process group, kills the tree it runs.
//!
//! `PR_SET_PDEATHSIG` on the leader cannot do it: it reaches one process,
//! and the members that escaped the leader's group are reparented away
//! the moment their subreaper dies. A watchdog that only *watches* the
//! front end cannot either, in subreaper mode: once the front end (the
//! subreaper) is dead, its adopted orphans belong to PID 1 and nothing
//! says they were the tree's. The one process that keeps the whole tree
//! below it is an ancestor that is itself a subreaper. So a front end
//! splits in two while it is still single-threaded ([`split`]):
//!
//! - the **guard** stays the process its caller started (same pid, same
//!   process group, so job control and `wait` see what they expect). It
//!   blocks the forwarded signals, passes each one on to the worker (a
//!   `sigqueue` value included), and exits with the worker's status. It
//!   holds the write end of a lifeline pipe, and nothing else does.
//! - the **worker** moves to a process group of its own (same session,
//!   so it can still share the terminal) and runs the tree as the front
//!   end always did: it is the subreaper, it polls the lifeline's read
//!   end, and EOF there means the guard is gone, however it died: the
//!   worker kills the tree (escapees included: they are its adopted
//!   children or in its cgroup), removes the cgroup, and exits.
//!
//! A SIGKILL to the caller's process group (a CI runner cancelling a job,
//! `kill -9 -PGID`, a terminal hang-up) ends the guard but not the worker,
//! which is in another group. The other way round, a worker that dies
//! abruptly leaves its orphans to the guard (a subreaper too), which kills
//! them and the worker's cgroups before it exits.
//!
//! Signals the terminal sends (`si_code` `SI_KERNEL`: Ctrl-C, Ctrl-\,
//! hang-up) reach the terminal's foreground group by themselves; when the
//! program runs in the guard's group (an interactive program, see
//! [`Group::Join`](super::Group)) the guard does not pass them on again,
//! so each process gets each signal once.

use super::Tree;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::io;
use std::os::fd::{AsFd, OwnedFd};

/// What the guard passes on.
#[derive(Debug, Clone)]
pub struct Guard {
    /// Signals passed on to the worker.
    pub forward: SigSet,
    /// Also pass on signals the terminal generated. Off when the program
    /// shares the guard's (foreground) process group and so got them
    /// already.
    pub forward_terminal: bool,
    /// Descriptors that belong to the worker alone: the guard closes its
    /// copies right after the fork (a pipe whose reader waits for EOF
    /// from the worker, for instance).
    pub worker_only: Vec<std::os::fd::RawFd>,
    /// The front end lives as long as its program (a daemon monitor, a
    /// supervisor): the guard gives back its start-up pages
    /// ([`crate::idle`]) before it settles into waiting.
    pub long_lived: bool,
}

/// The guard's exit status when the worker cannot be waited for (GNU
/// `timeout`'s "the tool itself failed").
const FAILED: i32 = 125;
/// `si_code` of a signal the kernel generated (a terminal's Ctrl-C).
const SI_KERNEL: i32 = 0x80;
/// `si_code` of a signal sent with `sigqueue`/`pidfd_send_signal` and a
/// value.
const SI_QUEUE: i32 = -1;

impl Guard {
    /// Splits this process into guard and worker; see the module docs.
    /// Returns in the worker only, with the read end of the lifeline
    /// (give it to [`crate::Command::lifeline`] or poll it); the guard
    /// never returns.
    ///
    /// # Safety
    /// The process must be single-threaded: the worker goes on running
    /// ordinary code after `fork(2)`.
    pub unsafe fn split(&self) -> io::Result<OwnedFd> {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let mut set = self.forward;
        set.add(Signal::SIGCHLD);
        let mut old = SigSet::empty();
        // Blocked before the fork: a signal that arrives in between stays
        // pending for the guard instead of killing it.
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old))?;
        // A subreaper, so that a worker that dies abruptly leaves its
        // orphans here, where they can be killed.
        nix::sys::prctl::set_child_subreaper(true)?;
        // SAFETY: the caller guarantees a single-threaded process.
        match unsafe { nix::unistd::fork() }? {
            nix::unistd::ForkResult::Child => {
                drop(w);
                // Out of the caller's process group: a kill of that group
                // does not reach the worker.
                nix::unistd::setpgid(nix::unistd::Pid::from_raw(0), nix::unistd::Pid::from_raw(0))?;
                // Writing to a terminal from a background group must never
                // stop the worker (TOSTOP); the program gets the caller's
                // mask back when it starts.
                let mut ttou = old;
                ttou.add(Signal::SIGTTOU);
                sigprocmask(SigmaskHow::SIG_SETMASK, Some(&ttou), None)?;
                Ok(r)
            }
            nix::unistd::ForkResult::Parent { child } => {
                drop(r);
                for &fd in &self.worker_only {
                    let _ = nix::unistd::close(fd);
                }
                self.guard(child, &set, w)
            }
        }
    }

    fn guard(&self, worker: nix::unistd::Pid, set: &SigSet, _lifeline: OwnedFd) -> ! {
        // The worker is our unreaped child: the pidfd surely names it.
        let pidfd = rustix::process::Pid::from_raw(worker.as_raw()).and_then(|p| {
            rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok()
        });
        let sfd = match SignalFd::with_flags(set, SfdFlags::SFD_CLOEXEC) {
            Ok(s) => s,
            // Without a signalfd the guard can still wait: the worker's
            // status is what matters.
            Err(_) => finish(worker, wait_worker(worker, false)),
        };
        if self.long_lived {
            crate::idle::shed_startup_pages();
        }
        loop {
            // Blocking read; retried on EINTR (none is expected: every
            // signal of interest is blocked).
            let info = match sfd.read_signal() {
                Ok(Some(info)) => info,
                Ok(None) | Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => finish(worker, wait_worker(worker, false)),
            };
            let signo = info.ssi_signo as i32;
            if signo == Signal::SIGCHLD as i32 {
                if let Some(status) = wait_worker(worker, true) {
                    finish(worker, Some(status));
                }
                continue;
            }
            if info.ssi_code == SI_KERNEL && !self.forward_terminal {
                continue;
            }
            let sent = match (&pidfd, info.ssi_code) {
                (Some(fd), SI_QUEUE) => Signal::try_from(signo).is_ok_and(|sig| {
                    crate::sys::pidfd_send_signal_value(fd.as_fd(), sig, info.ssi_int).is_ok()
                }),
                _ => false,
            };
            if !sent {
                let _ = crate::sys::kill_raw(worker.as_raw(), signo);
            }
        }
    }
}

/// Reaps the worker (`wait4` on its pid, EINTR retried); `None` while it
/// runs (with `nohang`) or if it cannot be waited for.
fn wait_worker(worker: nix::unistd::Pid, nohang: bool) -> Option<i32> {
    crate::sys::wait4(worker.as_raw(), nohang)
        .ok()
        .flatten()
        .map(|(status, _)| status)
}

/// The worker is gone: if it died abruptly (a signal), kill what it left
/// (its orphans are ours now, and its cgroups), then exit with its status
/// (128+N for a signal, as a shell reports it).
fn finish(worker: nix::unistd::Pid, status: Option<i32>) -> ! {
    use std::os::unix::process::ExitStatusExt;
    let status = std::process::ExitStatus::from_raw(status.unwrap_or(FAILED << 8));
    if status.signal().is_some() {
        // A start time would tell the worker's orphans from older
        // processes; the guard needs no such test (it has no child but the
        // worker, so whatever is reparented to it, the subreaper, is the
        // worker's), and 0 lets every adopted process count.
        let mut orphans = Tree::adopt(worker, 0);
        orphans.kill(std::time::Duration::from_secs(5));
        orphans.release();
        if let Some(parent) = super::cgroup::own_cgroup() {
            super::cgroup::remove_stale(&parent, Some(worker.as_raw()));
        }
    }
    std::process::exit(super::status::exit_code(status))
}
