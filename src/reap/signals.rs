//! Signals of an init: every signal is blocked and read from a signalfd,
//! then forwarded to the program (or its process group) after an
//! optional rewrite.
//!
//! Blocking instead of handling means no handler ever interrupts a system
//! call of sexton's (defect D3 cannot happen), and PID 1 still receives
//! signals the kernel would drop for an init without handlers: a blocked
//! signal is always queued.
//!
//! The fault signals (SEGV, BUS, FPE, ILL, SYS, TRAP, ABRT) are blocked
//! too, so that another process's `kill -SEGV` reaches the program
//! instead of killing sexton and orphaning it (dumb-init forwards them
//! likewise). A real fault in sexton still ends it: the kernel delivers a
//! synchronous fault by force (`force_sig_fault` unblocks the signal and
//! resets its action to the default), and `abort(3)` unblocks SIGABRT
//! before raising it. What the signalfd yields is then sorted by
//! `si_code` ([`Origin`]): a signal some process sent (`kill`, `sigqueue`,
//! `tkill`: `si_code <= 0`) is forwarded, a fault signal the kernel raised
//! about sexton (`si_code > 0`, such as an asynchronous SIGBUS on a
//! memory error) kills sexton as it would without the mask ([`die_of`]).
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

/// The terminal-stop signals: forwarded as SIGSTOP to the program's
/// group (dumb-init's default), as themselves to the program alone.
const JOB_STOPS: [Signal; 3] = [Signal::SIGTSTP, Signal::SIGTTIN, Signal::SIGTTOU];

/// Blocks every signal (SIGKILL and SIGSTOP cannot be) and returns a
/// non-blocking, close-on-exec signalfd for them
/// (`sigprocmask(2)`, `signalfd(2)`). The fault signals are blocked too
/// (see the module documentation). The child sets the mask its program
/// starts with between fork and exec (`ChildSetup`).
pub fn block_all() -> io::Result<SignalFd> {
    let set = sys::every_signal();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
    Ok(SignalFd::with_flags(
        &set,
        SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
    )?)
}

/// Where a signal read from the signalfd comes from, by its `si_code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Sent by a process (`kill`, `sigqueue`, `tkill`: `si_code <= 0`),
    /// or a non-fault signal from the kernel (SIGHUP on a hangup,
    /// SIGCHLD): forwarded.
    Sent,
    /// A fault signal the kernel raised about sexton itself
    /// (`si_code > 0`): sexton dies of it ([`die_of`]).
    OwnFault,
}

/// Sorts signal `signo` with `si_code` `code` (the `ssi_code` of a
/// signalfd read). No allocation.
pub fn origin(signo: i32, code: i32) -> Origin {
    if code > 0 && FAULTS.iter().any(|&f| f as i32 == signo) {
        Origin::OwnFault
    } else {
        Origin::Sent
    }
}

/// Ends this process with `signo` the way the kernel would have without
/// the mask: the action back to the default, the signal unblocked, then
/// raised (`rt_sigaction(2)`, `sigprocmask(2)`, `tgkill(2)`). For a
/// signal whose default action is to terminate this does not return,
/// except in PID 1 of a namespace, where the kernel drops such a signal
/// as it would have dropped the original.
pub fn die_of(signo: i32) {
    let Ok(sig) = Signal::try_from(signo) else {
        return;
    };
    let _ = sys::default_disposition(signo);
    let mut set = SigSet::empty();
    set.add(sig);
    let _ = sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
    let _ = nix::sys::signal::raise(sig);
}

/// Where a forwarded signal goes and what it becomes.
#[derive(Debug, Clone)]
pub struct Forwarding {
    /// `map[n]` is what signal `n` is sent as; 0 drops it.
    map: [u8; NSIG],
    /// Signals the user rewrote explicitly.
    explicit: [bool; NSIG],
    /// Only the program, not its process group. The terminal-stop
    /// signals then go as they came: the program decides whether it
    /// stops (a shell or an editor catches TSTP).
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
    /// A terminal-stop signal that was not rewritten, sent as SIGSTOP to
    /// the group (as itself with `child_only`): an init that is not PID 1
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
        if self.child_only && is_job_stop(signo) && !self.explicit[signo as usize] {
            return signo;
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
        if is_job_stop(signo) && !self.explicit[signo as usize] {
            Forwarded::JobStop
        } else {
            Forwarded::Sent(to)
        }
    }
}

fn is_job_stop(signo: i32) -> bool {
    JOB_STOPS.iter().any(|&s| s as i32 == signo)
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
    fn child_only_keeps_terminal_stops() {
        let mut f = Forwarding {
            child_only: true,
            ..Forwarding::default()
        };
        for s in JOB_STOPS {
            assert_eq!(f.target(s as i32), s as i32);
        }
        assert_eq!(f.target(Signal::SIGTERM as i32), Signal::SIGTERM as i32);
        // An explicit rewrite still wins.
        f.rewrite(Signal::SIGTSTP as i32, Signal::SIGSTOP as i32);
        assert_eq!(f.target(Signal::SIGTSTP as i32), Signal::SIGSTOP as i32);
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

    /// Runs `fault_case` below in a process of its own (this test binary
    /// again, core dumps off) with `SEXTON_FAULT_CASE=case`; returns how
    /// it ended.
    fn run_case(case: &str) -> std::process::ExitStatus {
        let exe = std::env::current_exe().unwrap();
        std::process::Command::new("sh")
            .args(["-c", r#"ulimit -c 0 && exec "$0" "$@""#])
            .arg(exe)
            .args([
                "--exact",
                "reap::signals::tests::fault_case",
                "--test-threads=1",
            ])
            .env("SEXTON_FAULT_CASE", case)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
    }

    /// One case of the fault tests when run by [`run_case`]; nothing
    /// otherwise.
    #[test]
    fn fault_case() {
        let Ok(case) = std::env::var("SEXTON_FAULT_CASE") else {
            return;
        };
        let _sfd = block_all().expect("block_all");
        let mask = SigSet::thread_get_mask().expect("mask");
        if !FAULTS.iter().all(|&f| mask.contains(f)) {
            // Not the premise of the test: a status of its own.
            std::process::exit(3);
        }
        match case.as_str() {
            "segv" => {
                use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous};
                let len = std::num::NonZeroUsize::new(4096).unwrap();
                // SAFETY: a fresh private anonymous mapping nobody else
                // uses; reading it faults by design, in a process that
                // exists for it.
                unsafe {
                    let page =
                        mmap_anonymous(None, len, ProtFlags::PROT_NONE, MapFlags::MAP_PRIVATE)
                            .expect("mmap");
                    std::ptr::read_volatile(page.as_ptr() as *const u8);
                }
            }
            "abort" => std::process::abort(),
            other => panic!("unknown case {other}"),
        }
    }

    #[test]
    fn a_real_fault_still_kills_with_every_signal_blocked() {
        use std::os::unix::process::ExitStatusExt;
        // A read of a PROT_NONE page: a synchronous SIGSEGV, which the
        // kernel forces through the mask.
        let st = run_case("segv");
        assert_eq!(st.signal(), Some(libc::SIGSEGV), "{st:?}");
        // abort(3), what a panic does in the release profile, unblocks
        // SIGABRT before raising it.
        let st = run_case("abort");
        assert_eq!(st.signal(), Some(libc::SIGABRT), "{st:?}");
    }

    #[test]
    fn origins() {
        assert_eq!(origin(Signal::SIGSEGV as i32, 0), Origin::Sent); // SI_USER
        assert_eq!(origin(Signal::SIGSEGV as i32, -1), Origin::Sent); // SI_QUEUE
        assert_eq!(origin(Signal::SIGABRT as i32, -6), Origin::Sent); // SI_TKILL
        assert_eq!(origin(Signal::SIGBUS as i32, 5), Origin::OwnFault); // BUS_MCEERR_AO
        assert_eq!(origin(Signal::SIGHUP as i32, 0x80), Origin::Sent); // SI_KERNEL, a hangup
        assert_eq!(origin(Signal::SIGCHLD as i32, 1), Origin::Sent); // CLD_EXITED
    }
}
