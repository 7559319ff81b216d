//! The signal set-up every sexton process shares: which signals a front
//! end passes on to its tree, and how a set of signals is turned into a
//! file descriptor (`signalfd(2)`) that the event loop polls.
//!
//! Signals are blocked and read from a signalfd rather than handled, so
//! no handler ever interrupts a system call of sexton's (defect D3), and
//! each event loop sees signals as one more readable fd.

use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// The signals `run`, `check` and the daemon monitor pass on to the tree
/// they run: the terminating ones, the user ones, and the terminal's
/// window-size change.
pub const FORWARDED: [Signal; 7] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// The signals of `FORWARDED` that end a program by default: passing one
/// on also arms the kill-after deadline.
pub fn terminating(signo: i32) -> bool {
    [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ]
    .iter()
    .any(|&s| s as i32 == signo)
}

/// A signal set of `sigs`.
pub fn set_of(sigs: &[Signal]) -> SigSet {
    let mut set = SigSet::empty();
    for &s in sigs {
        set.add(s);
    }
    set
}

/// Blocks `set` in the calling thread (`pthread_sigmask(2)`, added to
/// what is blocked already) and returns a non-blocking, close-on-exec
/// signalfd that reads them.
pub fn block(set: &SigSet) -> nix::Result<SignalFd> {
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(set), None)?;
    SignalFd::with_flags(set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
}
