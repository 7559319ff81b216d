//! What sexton's caller handed it: the signal mask and the signals it
//! ignored, recorded before anything in this process changes them.
//!
//! `run`, `init` and `check` are transparent: the program starts with
//! the mask and ignored signals sexton itself started with. Two things
//! change them before `main`'s work begins: Rust's runtime ignores
//! SIGPIPE before `main` runs, and sexton blocks signals for its
//! signalfds. So the state is read by a constructor in `.init_array`,
//! which the C library runs before `main` (and so before Rust's
//! runtime), and kept here.

use sexton::tree::SignalState;
use std::sync::OnceLock;

static STATE: OnceLock<SignalState> = OnceLock::new();

/// Runs before `main`: reads the mask (`sigprocmask(2)`) and whether
/// SIGPIPE and SIGCHLD are ignored (`rt_sigaction(2)` without a new
/// action). No allocation.
extern "C" fn record() {
    let mask = nix::sys::signal::SigSet::thread_get_mask()
        .unwrap_or_else(|_| nix::sys::signal::SigSet::empty());
    let _ = STATE.set(SignalState {
        mask,
        sigpipe_ignored: sexton::sys::is_ignored(libc::SIGPIPE),
        sigchld_ignored: sexton::sys::is_ignored(libc::SIGCHLD),
    });
}

#[used]
#[unsafe(link_section = ".init_array")]
static RECORD: extern "C" fn() = record;

/// The signal state sexton's caller gave it.
pub fn signals() -> SignalState {
    *STATE.get_or_init(SignalState::of_this_thread)
}

/// sexton needs SIGCHLD at its default action: a caller that ignored it
/// (`trap '' CHLD`) would otherwise make the kernel reap sexton's
/// children before sexton could learn their status. The program gets the
/// caller's disposition back (see [`signals`]).
pub fn restore_sigchld() {
    if signals().sigchld_ignored {
        let _ = sexton::sys::default_disposition(libc::SIGCHLD);
    }
}
