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
extern "C" fn record(argc: i32, argv: *const *const u8, _envp: *const *const u8) {
    // SAFETY: glibc hands every .init_array function main's argc and argv,
    // valid for the process's life.
    if argc > 1 && unsafe { is(*argv.add(1), b"init") } {
        lean_pages();
    }
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
static RECORD: extern "C" fn(i32, *const *const u8, *const *const u8) = record;

/// True when the C string `arg` is `word`.
///
/// # Safety
/// `arg` is null or a NUL-terminated string.
unsafe fn is(arg: *const u8, word: &[u8]) -> bool {
    if arg.is_null() {
        return false;
    }
    // SAFETY: `arg` is NUL-terminated (the caller's promise).
    unsafe { std::ffi::CStr::from_ptr(arg.cast()) }.to_bytes() == word
}

/// `sexton init` lives as long as its container, and what it keeps
/// resident counts there: `madvise(MADV_RANDOM)` over sexton's own code
/// turns off the kernel's fault-around (which maps the 15 neighbours of
/// every code page touched), so only the pages init runs become resident.
/// The code's bounds come from the linker (`__executable_start`,
/// `etext`). Done before Rust's runtime starts, so the start-up peak is
/// lowered too; best effort.
fn lean_pages() {
    unsafe extern "C" {
        static __executable_start: u8;
        static etext: u8;
    }
    // The linker defines both symbols; only their addresses are taken.
    let (start, end) = (
        &raw const __executable_start as usize,
        &raw const etext as usize,
    );
    let page = 4096;
    let start = start & !(page - 1);
    if end <= start {
        return;
    }
    if let Some(ptr) = std::ptr::NonNull::new(start as *mut std::ffi::c_void) {
        // SAFETY: the range is this executable's own mapped code;
        // MADV_RANDOM only changes how the kernel pages it in.
        let _ = unsafe {
            nix::sys::mman::madvise(ptr, end - start, nix::sys::mman::MmapAdvise::MADV_RANDOM)
        };
    }
}

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
