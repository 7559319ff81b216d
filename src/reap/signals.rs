//! Signals of an init: every catchable signal is blocked and read from a
//! signalfd, then forwarded to the program (or its process group) after
//! an optional rewrite.
//!
//! Blocking instead of handling means no handler ever interrupts a system
//! call of sexton's (defect D3 cannot happen), and PID 1 still receives
//! signals the kernel would drop for an init without handlers: a blocked
//! signal is always queued. The fault signals (SEGV, BUS, FPE, ILL, SYS,
//! TRAP, ABRT) stay unblocked, so a bug in sexton is a crash, not a hang.
//!
//! Forwarding is allocation-free: the rewrite table is a fixed array and
//! delivery is one `kill(2)`.

use crate::sys;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::io;

/// Highest signal number on Linux (`SIGRTMAX`), plus one.
pub const NSIG: usize = 65;

const FAULTS: [Signal; 7] = [
    Signal::SIGSEGV,
    Signal::SIGBUS,
    Signal::SIGFPE,
    Signal::SIGILL,
    Signal::SIGSYS,
    Signal::SIGTRAP,
    Signal::SIGABRT,
];

/// The terminal-stop signals: forwarded as SIGSTOP unless rewritten.
const JOB_STOPS: [Signal; 3] = [Signal::SIGTSTP, Signal::SIGTTIN, Signal::SIGTTOU];

/// Blocks every catchable signal except the fault signals and returns a
/// non-blocking, close-on-exec signalfd for them
/// (`sigprocmask(2)`, `signalfd(2)`). The child undoes the mask between
/// fork and exec (`ChildSetup::reset_mask`).
pub fn block_all() -> io::Result<SignalFd> {
    let mut set = SigSet::all();
    for s in FAULTS {
        set.remove(s);
    }
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
    Ok(SignalFd::with_flags(
        &set,
        SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
    )?)
}

/// Where a forwarded signal goes and what it becomes.
#[derive(Debug, Clone)]
pub struct Forwarding {
    /// `map[n]` is what signal `n` is sent as; 0 drops it.
    map: [u8; NSIG],
    /// Signals the user rewrote explicitly.
    explicit: [bool; NSIG],
    /// Only the program, not its process group.
    pub child_only: bool,
}

impl Default for Forwarding {
    fn default() -> Self {
        let mut map = [0u8; NSIG];
        for (n, m) in map.iter_mut().enumerate() {
            *m = n as u8;
        }
        for s in JOB_STOPS {
            map[s as usize] = Signal::SIGSTOP as u8;
        }
        Forwarding {
            map,
            explicit: [false; NSIG],
            child_only: false,
        }
    }
}

/// What [`Forwarding::forward`] did with one signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forwarded {
    /// Not forwarded (SIGCHLD, or rewritten to 0).
    Dropped,
    /// Sent as this signal number.
    Sent(i32),
    /// A terminal-stop signal, sent as SIGSTOP: an init that is not PID 1
    /// should now stop itself too, so that its shell sees the job stop.
    JobStop,
}

impl Forwarding {
    /// Maps `from` to `to` (0: drop `from`). Out-of-range numbers are
    /// ignored; callers parse them first.
    pub fn rewrite(&mut self, from: i32, to: i32) {
        if (1..NSIG as i32).contains(&from) && (0..NSIG as i32).contains(&to) {
            self.map[from as usize] = to as u8;
            self.explicit[from as usize] = true;
        }
    }

    /// What `signo` is sent as (0: not sent).
    pub fn target(&self, signo: i32) -> i32 {
        if signo == Signal::SIGCHLD as i32 || !(1..NSIG as i32).contains(&signo) {
            return 0;
        }
        self.map[signo as usize] as i32
    }

    /// Sends `signo`, rewritten, to `leader`'s process group (or `leader`
    /// alone with `child_only`). Errors such as ESRCH (the group is gone)
    /// are ignored: there is nobody left to tell. No allocation.
    pub fn forward(&self, signo: i32, leader: i32) -> Forwarded {
        let to = self.target(signo);
        if to == 0 {
            return Forwarded::Dropped;
        }
        let pid = if self.child_only { leader } else { -leader };
        let _ = sys::kill_raw(pid, to);
        let job_stop =
            JOB_STOPS.iter().any(|&s| s as i32 == signo) && !self.explicit[signo as usize];
        if job_stop {
            Forwarded::JobStop
        } else {
            Forwarded::Sent(to)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_table() {
        let f = Forwarding::default();
        assert_eq!(f.target(Signal::SIGTERM as i32), Signal::SIGTERM as i32);
        assert_eq!(f.target(Signal::SIGCHLD as i32), 0);
        assert_eq!(f.target(Signal::SIGTSTP as i32), Signal::SIGSTOP as i32);
        assert_eq!(f.target(40), 40);
        assert_eq!(f.target(0), 0);
        assert_eq!(f.target(99), 0);
    }

    #[test]
    fn rewrites() {
        let mut f = Forwarding::default();
        f.rewrite(Signal::SIGTERM as i32, Signal::SIGQUIT as i32);
        f.rewrite(Signal::SIGWINCH as i32, 0);
        f.rewrite(Signal::SIGTSTP as i32, Signal::SIGTSTP as i32);
        assert_eq!(f.target(Signal::SIGTERM as i32), Signal::SIGQUIT as i32);
        assert_eq!(f.target(Signal::SIGWINCH as i32), 0);
        assert_eq!(f.target(Signal::SIGTSTP as i32), Signal::SIGTSTP as i32);
    }
}
