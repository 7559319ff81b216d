//! The guard: how `sexton run` keeps its promise that killing sexton,
//! even with SIGKILL, kills the whole tree.
//!
//! PR_SET_PDEATHSIG on the program alone cannot do it: it reaches one
//! process, and the escapees of the tree are reparented away the moment
//! their subreaper dies. So sexton splits in two right after parsing its
//! arguments, while it is still single-threaded:
//!
//! - the **guard** (the pid the caller knows) blocks the forwarded
//!   signals, forwards each one to the worker, and exits with the
//!   worker's status; it holds the write end of a lifeline pipe;
//! - the **worker** is the subreaper that runs the tree. Its event loop
//!   polls the lifeline's read end: EOF means the guard is gone, however
//!   it died, and the worker kills the tree (escapees included, they are
//!   its adopted children or in its cgroup) and exits.

use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};
use std::os::fd::OwnedFd;

/// Signals the guard passes on to the worker.
const FORWARDED: [Signal; 7] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// Forks the worker. Returns in the worker with the lifeline's read end;
/// in the guard it never returns.
pub fn split() -> std::io::Result<OwnedFd> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    set.add(Signal::SIGCHLD);
    let mut old = SigSet::empty();
    // Blocked before the fork: a signal that arrives in between stays
    // pending for the guard's sigwait instead of killing it.
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old))?;
    // SAFETY: sexton is single-threaded here (clap parsing spawns no
    // thread), so the child may run any code after fork.
    match unsafe { fork() }? {
        ForkResult::Child => {
            drop(w);
            sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None)?;
            Ok(r)
        }
        ForkResult::Parent { child } => {
            drop(r);
            guard(child, &set, w)
        }
    }
}

fn guard(worker: Pid, set: &SigSet, _lifeline: OwnedFd) -> ! {
    loop {
        // sigwait does not fail with EINTR; an error here is impossible
        // with a valid set, but the loop simply asks again.
        let Ok(sig) = set.wait() else { continue };
        if sig != Signal::SIGCHLD {
            let _ = kill(worker, sig);
            continue;
        }
        loop {
            match waitpid(worker, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(_, code)) => std::process::exit(code),
                Ok(WaitStatus::Signaled(_, s, _)) => std::process::exit(128 + s as i32),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => std::process::exit(crate::exit::FAILED),
                Ok(_) => break,
            }
        }
    }
}
