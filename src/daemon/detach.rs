//! The classic daemonization steps, done completely (defect D9).
//!
//! 1. `fork`: the caller goes back to its shell; the child is not a
//!    process group leader, so it may call `setsid`;
//! 2. `setsid`: a new session without a controlling terminal, so the
//!    daemon does not die with the terminal (SIGHUP) nor read from it;
//! 3. `fork` again and the session leader exits: the monitor is in the
//!    new session but not its leader, so opening a terminal can never
//!    make it the controlling one;
//! 4. `chdir` (default `/`), so no mount point is kept busy;
//! 5. `umask` (default 022), not whatever the caller had;
//! 6. stdio to `/dev/null` or the given files, and every other fd closed;
//! 7. every signal disposition back to default and the mask set
//!    explicitly, whatever the caller had ignored or blocked.
//!
//! The program itself is then started by the monitor through the tree
//! layer, which empties the mask and resets dispositions once more after
//! the fork and marks every fd above 2 close-on-exec.
//!
//! A pipe (close-on-exec) runs from the monitor back to the original
//! process, which waits on it: it returns only once the program has been
//! started or has failed to start.

use crate::sys;
use nix::sys::signal::{SigHandler, Signal, signal};
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, fork, setsid};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Where the two forks left the calling code.
#[derive(Debug)]
pub enum Forked {
    /// The original process, with the read end of the report pipe.
    Caller { report: File },
    /// The monitor (grandchild, in a new session), with the write end.
    Monitor { report: File },
}

/// Forks twice with a `setsid` in between and reaps the intermediate
/// child. See the module docs.
///
/// # Safety
/// The calling process must be single-threaded: the monitor goes on
/// running ordinary Rust code after `fork(2)`.
pub unsafe fn double_fork() -> io::Result<Forked> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // SAFETY: the caller guarantees that no other thread exists.
    match unsafe { fork() }? {
        ForkResult::Parent { child } => {
            drop(w);
            loop {
                match waitpid(child, None) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(e.into()),
                    Ok(_) => break,
                }
            }
            Ok(Forked::Caller {
                report: File::from(r),
            })
        }
        ForkResult::Child => {
            drop(r);
            if setsid().is_err() {
                std::process::exit(1);
            }
            // SAFETY: still single-threaded (we are the forked copy).
            match unsafe { fork() } {
                Ok(ForkResult::Child) => Ok(Forked::Monitor {
                    report: File::from(w),
                }),
                // The session leader leaves at once; its parent reaps it.
                Ok(ForkResult::Parent { .. }) => std::process::exit(0),
                Err(_) => std::process::exit(1),
            }
        }
    }
}

/// The files a daemon's stdio goes to, opened by the caller (so relative
/// paths mean what the user meant) before anything forks.
#[derive(Debug)]
pub struct Stdio {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// Opens `/dev/null` (read-write, close-on-exec).
pub fn dev_null() -> io::Result<OwnedFd> {
    Ok(OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open("/dev/null")?
        .into())
}

/// Opens a log file for appending (created 0644 less the umask).
///
/// Opened with `O_NONBLOCK | O_NOCTTY` so that a FIFO nobody reads fails
/// at once (ENXIO) instead of blocking the caller, and a terminal never
/// becomes a controlling one; the flag is then cleared, so writes block
/// like any log's.
pub fn append(path: &Path) -> io::Result<OwnedFd> {
    let f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENXIO) => io::Error::other("a FIFO that nobody reads"),
            _ => e,
        })?;
    let fl = nix::fcntl::fcntl(&f, nix::fcntl::FcntlArg::F_GETFL)?;
    let fl = nix::fcntl::OFlag::from_bits_retain(fl) & !nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(&f, nix::fcntl::FcntlArg::F_SETFL(fl))?;
    Ok(f.into())
}

/// Steps 4 to 7 in the monitor: cwd, umask, stdio, fds, signals. Every
/// fd but 0, 1, 2 and `keep` is closed; `keep` comes back as fd 3,
/// close-on-exec.
pub fn settle(dir: &Path, umask: Mode, stdio: Stdio, keep: File) -> io::Result<File> {
    nix::unistd::chdir(dir)?;
    nix::sys::stat::umask(umask);
    nix::unistd::dup2_stdin(&stdio.stdin)?;
    nix::unistd::dup2_stdout(&stdio.stdout)?;
    nix::unistd::dup2_stderr(&stdio.stderr)?;
    // dup2 onto the same number keeps close-on-exec: clear it on 0-2,
    // which must reach the program.
    for fd in 0..3 {
        nix::fcntl::fcntl(
            borrow(fd),
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
        )?;
    }
    // From here the fds are handled by number: the closing below must
    // not meet a Rust owner that would close a reused number later.
    let _ = stdio.stdin.into_raw_fd();
    let _ = stdio.stdout.into_raw_fd();
    let _ = stdio.stderr.into_raw_fd();
    let keep = keep.into_raw_fd();
    const KEEP_AT: RawFd = 3;
    if keep != KEEP_AT {
        // SAFETY: dup2 onto 3 closes whatever was there: every fd above 2
        // is about to be closed anyway and none has an owner any more.
        let moved = unsafe { nix::unistd::dup2_raw(borrow(keep), KEEP_AT) }?;
        let _ = moved.into_raw_fd();
    }
    close_above(KEEP_AT);
    // SAFETY: fd 3 is the report pipe, owned by nothing else now.
    let report = unsafe { File::from_raw_fd(KEEP_AT) };
    nix::fcntl::fcntl(
        &report,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )?;
    reset_dispositions();
    Ok(report)
}

fn borrow(fd: RawFd) -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: used only while `fd` is open, before it is closed below.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}

/// Closes every fd above `last`: one `close_range`, or each fd listed in
/// `/proc/self/fd` on kernels without it.
fn close_above(last: RawFd) {
    if sys::close_from(last + 1).is_ok() {
        return;
    }
    let me = std::process::id() as i32;
    for fd in crate::procfs::fds(me) {
        if fd.fd > last {
            let _ = nix::unistd::close(fd.fd);
        }
    }
}

/// Every catchable signal back to its default action, except SIGPIPE,
/// which the monitor keeps ignoring so that writing to a vanished reader
/// is an error, not its death. (The program gets SIGPIPE's default back
/// from the tree layer.)
fn reset_dispositions() {
    for signo in 1..=sys::SIGNAL_MAX {
        if signo == libc::SIGKILL || signo == libc::SIGSTOP {
            continue;
        }
        if signo == libc::SIGPIPE {
            // SAFETY: SIG_IGN installs no Rust handler.
            let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) };
        } else {
            let _ = sys::default_disposition(signo);
        }
    }
}
