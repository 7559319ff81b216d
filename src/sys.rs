//! The few system calls that neither nix nor rustix expose, wrapped once.
//!
//! Everything else in sexton goes through nix or rustix with typed pids
//! and fds. What is here is raw `libc` because no well-kept crate covers
//! it (checked against nix 0.30 and rustix 1.1):
//! - `close_range(2)` with `CLOSE_RANGE_CLOEXEC`, used after fork and
//!   before exec, so it must be a single async-signal-safe syscall;
//! - `wait4(2)`, the only call that returns a child's `rusage` together
//!   with its status (nix and rustix drop the rusage);
//! - glibc's `malloc_trim(3)`, an allocator call rather than a system
//!   call, which neither crate wraps (compiled only against glibc);
//! - signal 34 in a signal set ([`every_signal`]): musl's `sigfillset`
//!   and `sigaddset` refuse it, and nix builds its sets with them.

use std::io;
use std::os::fd::RawFd;

/// Marks every fd from `first` upwards close-on-exec, with one
/// `close_range(first, ~0, CLOSE_RANGE_CLOEXEC)` call (Linux 5.11+).
///
/// Async-signal-safe: meant for the window between fork and exec. Returns
/// the raw errno on failure so that the caller can fall back without
/// allocating.
///
/// See <https://man7.org/linux/man-pages/man2/close_range.2.html>.
pub fn cloexec_from(first: RawFd) -> Result<(), i32> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range takes plain integers and touches only this
    // process's fd table; marking fds CLOEXEC cannot invalidate any fd the
    // (single-threaded, about to exec) child still uses.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

/// Fallback for kernels without `close_range`: sets FD_CLOEXEC on each fd
/// from `first` to `limit` with `fcntl`, which is async-signal-safe.
pub fn cloexec_each(first: RawFd, limit: RawFd) {
    for fd in first..limit {
        // SAFETY: fcntl on an fd that may not be open just returns EBADF.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
}

/// Clears FD_CLOEXEC on one fd so that it survives exec (`--pass-fd`).
/// Async-signal-safe.
pub fn keep_across_exec(fd: RawFd) -> Result<(), i32> {
    // SAFETY: plain fcntl on an integer fd.
    let rc = unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

/// Resource usage of one reaped child, from `wait4(2)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rusage {
    pub user_us: u64,
    pub sys_us: u64,
    pub max_rss_kb: u64,
}

/// `wait4(pid, &status, flags, &rusage)`, retried on EINTR.
///
/// Returns `Ok(None)` when `WNOHANG` is given and the child has not
/// changed state, else the raw wait status and the child's rusage (which
/// covers the child and every descendant it reaped).
///
/// See <https://man7.org/linux/man-pages/man2/wait4.2.html>.
pub fn wait4(pid: i32, nohang: bool) -> io::Result<Option<(i32, Rusage)>> {
    let flags = if nohang { libc::WNOHANG } else { 0 };
    Ok(wait4_raw(pid, flags)?.map(|(_, status, ru)| (status, ru)))
}

/// The one `wait4` call: `(pid, raw status, rusage)` of the reaped child,
/// `None` when `WNOHANG` found nothing, EINTR retried. `__WALL` so clone
/// children of any kind are reaped too. Allocation-free.
fn wait4_raw(pid: i32, flags: libc::c_int) -> io::Result<Option<(i32, i32, Rusage)>> {
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: rusage is plain old data, zeroed is a valid value.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: both out-pointers are valid for the duration of the call.
        let rc = unsafe { libc::wait4(pid, &mut status, flags | libc::__WALL, &mut ru) };
        if rc < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if rc == 0 {
            return Ok(None);
        }
        let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
        return Ok(Some((
            rc,
            status,
            Rusage {
                user_us: tv(ru.ru_utime),
                sys_us: tv(ru.ru_stime),
                max_rss_kb: ru.ru_maxrss as u64,
            },
        )));
    }
}

/// `pidfd_send_signal(pidfd, sig, &info, 0)` with an `SI_QUEUE` siginfo
/// carrying `value`, as `sigqueue(3)` does by pid.
///
/// Sending through a pidfd names one process for good: unlike a pid, it
/// cannot come to mean another process after the first one exits. rustix
/// only sends a bare signal through a pidfd and nix has no pidfd call, so
/// the siginfo form (which lets `sexton daemon --stop` hand its timeout to
/// the monitor in the signal itself) is raw here. The receiver reads the
/// value as `ssi_int` from its signalfd.
///
/// See <https://man7.org/linux/man-pages/man2/pidfd_send_signal.2.html>.
pub fn pidfd_send_signal_value(
    pidfd: std::os::fd::BorrowedFd<'_>,
    sig: nix::sys::signal::Signal,
    value: i32,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    /// The generic Linux `siginfo_t` layout of an `SI_QUEUE` signal
    /// (`_sifields._rt`), padded to the kernel's 128 bytes.
    #[repr(C)]
    struct QueueInfo {
        signo: i32,
        errno: i32,
        code: i32,
        #[cfg(target_pointer_width = "64")]
        _align: i32,
        pid: i32,
        uid: u32,
        value: usize,
        _rest: [u8; REST],
    }
    /// What follows `value`: 96 bytes on 64-bit targets, 104 on 32-bit.
    const REST: usize = 128 - 4 * 5 - 2 * std::mem::size_of::<usize>() + 4;
    const _: () = assert!(std::mem::size_of::<QueueInfo>() == 128);
    const SI_QUEUE: i32 = -1;
    let info = QueueInfo {
        signo: sig as i32,
        errno: 0,
        code: SI_QUEUE,
        #[cfg(target_pointer_width = "64")]
        _align: 0,
        pid: std::process::id() as i32,
        uid: nix::unistd::getuid().as_raw(),
        value: value as u32 as usize,
        _rest: [0; REST],
    };
    loop {
        // SAFETY: the syscall reads 128 bytes from `info`, which is a
        // fully initialised 128-byte struct alive for the call; the pidfd
        // is borrowed, so it stays open.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                pidfd.as_raw_fd(),
                sig as libc::c_int,
                &info as *const QueueInfo,
                0 as libc::c_uint,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Closes every fd from `first` upwards with one
/// `close_range(first, ~0, 0)` call (Linux 5.9+); nix and rustix have no
/// `close_range`. Returns the raw errno so that the caller can fall back
/// to closing what `/proc/self/fd` lists.
///
/// See <https://man7.org/linux/man-pages/man2/close_range.2.html>.
pub fn close_from(first: RawFd) -> Result<(), i32> {
    // SAFETY: close_range takes plain integers. The caller (a freshly
    // detached, single-threaded daemon) owns every fd it closes and keeps
    // no Rust object referring to them.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            0 as libc::c_uint,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

/// The highest signal number on Linux (`_NSIG - 1`).
pub const SIGNAL_MAX: i32 = 64;

/// Sets signal `signo` to its default action with a raw
/// `rt_sigaction(2)`; async-signal-safe, for the window between fork and
/// exec and for a freshly detached daemon.
///
/// Raw because glibc's `sigaction` (and so nix's `signal`) refuses the
/// two real-time signals it keeps for itself (32 and 33), yet a disposition
/// of `SIG_IGN` on them is inherited across exec like any other, so a
/// caller that ignored them would hand that on to a daemon.
///
/// See <https://man7.org/linux/man-pages/man2/rt_sigaction.2.html>.
pub fn default_disposition(signo: i32) -> Result<(), i32> {
    set_disposition(signo, libc::SIG_DFL)
}

/// Sets signal `signo` to be ignored (`SIG_IGN`) with a raw
/// `rt_sigaction(2)`; async-signal-safe, for the window between fork and
/// exec, where the program must get back what sexton's caller ignored.
/// Raw for the same reason as [`default_disposition`].
pub fn ignore(signo: i32) -> Result<(), i32> {
    set_disposition(signo, libc::SIG_IGN)
}

/// `rt_sigaction(signo, {handler, no flags, empty mask}, NULL)`:
/// `SIG_DFL` or `SIG_IGN` only, never a function.
fn set_disposition(signo: i32, handler: libc::sighandler_t) -> Result<(), i32> {
    // The kernel's struct sigaction: handler, flags, restorer (on the
    // architectures that have one), mask. With no flags and an empty mask
    // the handler word is all that matters, whatever the exact layout.
    let act = [handler, 0, 0, 0];
    // SAFETY: the kernel reads at most sizeof(struct sigaction) (at most
    // 32 bytes on 64-bit Linux) from `act`; no old action is written.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            signo as libc::c_long,
            act.as_ptr(),
            std::ptr::null_mut::<libc::c_void>(),
            8 as libc::size_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

/// Whether signal `signo` is ignored (`SIG_IGN`) in this process, asked
/// with a raw `rt_sigaction(2)` that changes nothing. Raw because the
/// crates' `sigaction` always installs a new action.
pub fn is_ignored(signo: i32) -> bool {
    let mut old = [0usize; 4];
    // SAFETY: no new action; the kernel writes at most
    // sizeof(struct sigaction) (32 bytes on 64-bit Linux) into `old`.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            signo as libc::c_long,
            std::ptr::null::<libc::c_void>(),
            old.as_mut_ptr(),
            8 as libc::size_t,
        )
    };
    rc == 0 && old[0] == libc::SIG_IGN
}

/// `wait4(-1, &status, WNOHANG | __WALL, &rusage)`, retried on EINTR:
/// reaps any one exited child of this process.
///
/// Returns `Ok(Some((pid, raw status, rusage)))` for a reaped child,
/// `Ok(None)` when children exist but none has exited, and the error
/// `ECHILD` when there is no child at all. Allocation-free, for the
/// reaping loop of `init`. Raw because nix's `waitpid` turns an unknown
/// (realtime) terminating signal into an error after the child is
/// already reaped, losing its pid, and neither crate returns the rusage.
///
/// See <https://man7.org/linux/man-pages/man2/wait4.2.html>.
pub fn wait4_any() -> io::Result<Option<(i32, i32, Rusage)>> {
    wait4_raw(-1, libc::WNOHANG)
}

/// `kill(pid, signo)` with a raw signal number, so that realtime signals
/// (`SIGRTMIN+n`), which nix's `Signal` enum and rustix's safe
/// constructors do not represent, can be forwarded as they came.
/// A negative `pid` names a process group, `-1` every process this one
/// may signal. Allocation-free.
///
/// See <https://man7.org/linux/man-pages/man2/kill.2.html>.
pub fn kill_raw(pid: i32, signo: i32) -> io::Result<()> {
    // SAFETY: kill takes plain integers; an invalid pid or signal number
    // is reported as an error, never undefined behaviour.
    let rc = unsafe { libc::kill(pid, signo) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// What [`fork_into_cgroup`] returns in each process.
pub enum Forked {
    /// In the new child.
    Child,
    /// In the parent: the child's pid and a pidfd for it.
    Parent {
        pid: i32,
        pidfd: std::os::fd::OwnedFd,
    },
}

/// `clone3(CLONE_INTO_CGROUP | CLONE_PIDFD)` with fork semantics: the
/// child starts life inside the cgroup whose directory `cgroup_dir` is
/// open, and the parent gets a pidfd for it (Linux 5.7+). Neither nix nor
/// rustix wraps `clone3`.
///
/// Creating the child straight in its cgroup costs no migration: writing
/// a pid into `cgroup.procs` takes the cgroup threadgroup lock for
/// writing, which waits for an RCU grace period, the largest single cost
/// of a short spawn.
///
/// Returns the raw errno when the kernel cannot do it (`ENOSYS`, `E2BIG`,
/// `EINVAL` on old kernels); no child exists then and the caller falls
/// back to fork plus a `cgroup.procs` write.
///
/// # Safety
/// Like `fork`, but glibc's fork bookkeeping (atfork handlers, the cached
/// thread id) does not run: in [`Forked::Child`] only raw async-signal-safe
/// system calls may follow, ending in `execve` or `_exit`.
///
/// See <https://man7.org/linux/man-pages/man2/clone3.2.html>.
pub unsafe fn fork_into_cgroup(cgroup_dir: RawFd) -> Result<Forked, i32> {
    // The kernel's struct clone_args, version 2 (with `cgroup`).
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let mut pidfd: libc::c_int = -1;
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup_dir as u64,
        ..CloneArgs::default()
    };
    // SAFETY: `args` is a valid clone_args of the size passed; no stack is
    // given, so the child continues on a copy of this stack exactly as
    // after fork; the caller upholds the child-side contract above.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match rc {
        0 => Ok(Forked::Child),
        pid if pid > 0 => Ok(Forked::Parent {
            pid: pid as i32,
            // SAFETY: the kernel wrote a fresh pidfd that nothing else owns.
            pidfd: unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(pidfd) },
        }),
        _ => Err(io::Error::last_os_error().raw_os_error().unwrap_or(0)),
    }
}

/// Everything a child made by [`fork_into_cgroup`] needs to exec, built by
/// the parent beforehand so that the child only makes system calls.
pub struct ExecPlan {
    /// Null-terminated pointers into strings the plan's owner keeps alive.
    pub argv: *const *const libc::c_char,
    pub envp: *const *const libc::c_char,
    /// Null-terminated list of paths to try in order (PATH search done).
    pub paths: *const *const libc::c_char,
    /// `sh`, a free slot, then argv[1..]: see [`exec_search`].
    pub sh_argv: *mut *const libc::c_char,
    /// Directory to change to, or null.
    pub cwd: *const libc::c_char,
    /// Source fd for each of 0, 1, 2, or -1 to inherit.
    pub stdio: [RawFd; 3],
    /// Fds above 2 that survive exec.
    pub pass_fds: *const RawFd,
    pub pass_fds_len: usize,
    /// Write end of the close-on-exec pipe the errno of a failed exec goes to.
    pub err_pipe: RawFd,
    /// The process group to join (`setpgid(0, pgid)`); 0 for a new one.
    pub pgid: RawFd,
    /// The signal mask the program starts with.
    pub sigmask: nix::sys::signal::SigSet,
    /// Whether SIGPIPE and SIGCHLD start ignored (else at their default).
    pub sigpipe_ignored: bool,
    pub sigchld_ignored: bool,
}

/// Sends `errno` down the error pipe and exits 127; child side only.
fn fail_exec(err_pipe: RawFd, errno: i32) -> ! {
    let bytes = errno.to_ne_bytes();
    // SAFETY: write and _exit on integers and a stack buffer.
    unsafe {
        while libc::write(err_pipe, bytes.as_ptr().cast(), 4) < 0
            && *libc::__errno_location() == libc::EINTR
        {}
        libc::_exit(127)
    }
}

/// Runs in the child of [`fork_into_cgroup`]: sets up stdio, cwd, a new
/// process group, an empty signal mask with SIGPIPE at its default,
/// close-on-exec on every fd above 2 but the passed ones, then tries each
/// path like `execvp`. Never returns: on failure the errno goes to
/// `err_pipe` and the child exits 127.
///
/// # Safety
/// Every pointer in `plan` is valid, and this is the child side of
/// [`fork_into_cgroup`]. Only raw system calls follow: no allocation.
pub unsafe fn exec_plan(plan: &ExecPlan) -> ! {
    // SAFETY: plain system calls on integers and on pointers the caller
    // guarantees valid; nothing here allocates or takes a lock.
    unsafe {
        let fail = |errno: i32| fail_exec(plan.err_pipe, errno);
        let errno = || *libc::__errno_location();
        for (target, &src) in plan.stdio.iter().enumerate() {
            let target = target as RawFd;
            if src < 0 {
                continue;
            }
            if src == target {
                if libc::fcntl(src, libc::F_SETFD, 0) < 0 {
                    fail(errno());
                }
            } else {
                while libc::dup2(src, target) < 0 {
                    if errno() != libc::EINTR {
                        fail(errno());
                    }
                }
            }
        }
        if !plan.cwd.is_null() && libc::chdir(plan.cwd) < 0 {
            fail(errno());
        }
        if libc::setpgid(0, plan.pgid) < 0 {
            fail(errno());
        }
        let mask: &libc::sigset_t = plan.sigmask.as_ref();
        if libc::sigprocmask(libc::SIG_SETMASK, mask, std::ptr::null_mut()) < 0 {
            fail(errno());
        }
        // std ignores SIGPIPE in sexton, and sexton keeps SIGCHLD at its
        // default: the program gets what sexton's caller had.
        for (signo, ignored) in [
            (libc::SIGPIPE, plan.sigpipe_ignored),
            (libc::SIGCHLD, plan.sigchld_ignored),
        ] {
            let r = if ignored {
                ignore(signo)
            } else {
                default_disposition(signo)
            };
            if let Err(e) = r {
                fail(e);
            }
        }
        if cloexec_from(3).is_err() {
            cloexec_each(3, 65536);
        }
        for i in 0..plan.pass_fds_len {
            if let Err(e) = keep_across_exec(*plan.pass_fds.add(i)) {
                fail(e);
            }
        }
        fail(exec_search(plan.argv, plan.envp, plan.paths, plan.sh_argv))
    }
}

/// Execs the first of `paths` that can be, with `argv` and `envp`, by
/// execvp's rules: a path that is not there (or not a directory on the
/// way) moves on to the next; EACCES is remembered; a file the kernel
/// does not recognise (ENOEXEC: a script without `#!`) is run by
/// `/bin/sh` as `sh PATH ARG...` (POSIX; glibc's execvp does it, musl's
/// does not, so sexton does it itself); any other error ends the search.
/// Returns only on failure, with the errno.
///
/// # Safety
/// Child side of a fork. The arrays are null-terminated and valid;
/// `sh_argv` is `sh`, a slot this fills in, then argv[1..] and a null.
/// Only raw system calls: no allocation.
pub unsafe fn exec_search(
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    paths: *const *const libc::c_char,
    sh_argv: *mut *const libc::c_char,
) -> i32 {
    // SAFETY: as the caller guarantees.
    unsafe {
        let errno = || *libc::__errno_location();
        let mut last = libc::ENOENT;
        let mut denied = false;
        let mut p = paths;
        while !(*p).is_null() {
            libc::execve(*p, argv, envp);
            match errno() {
                libc::EACCES => denied = true,
                libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {}
                libc::ENOEXEC => {
                    *sh_argv.add(1) = *p;
                    libc::execve(c"/bin/sh".as_ptr(), sh_argv.cast_const(), envp);
                    return errno();
                }
                e => {
                    last = e;
                    break;
                }
            }
            p = p.add(1);
        }
        if last == libc::ENOENT && denied {
            last = libc::EACCES;
        }
        last
    }
}

/// Whether fds `a` and `b` of this process are one open file description
/// (`kcmp(2)` with `KCMP_FILE`): the caller wrote `2>&1`, so both are one
/// `open`, sharing one offset and one set of flags. `None` when the
/// kernel cannot say (built without `CONFIG_KCMP`, or not permitted).
/// Raw because neither nix nor rustix wraps `kcmp`.
///
/// See <https://man7.org/linux/man-pages/man2/kcmp.2.html>.
pub fn same_open_file(a: RawFd, b: RawFd) -> Option<bool> {
    const KCMP_FILE: libc::c_int = 0;
    let me = std::process::id() as libc::pid_t;
    // SAFETY: kcmp takes plain integers and only compares kernel objects
    // of this process.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_kcmp,
            me,
            me,
            KCMP_FILE,
            a as libc::c_ulong,
            b as libc::c_ulong,
        )
    };
    match rc {
        0 => Some(true),
        1..=3 => Some(false),
        _ => None,
    }
}

/// Gives the heap's free memory back to the kernel with glibc's
/// `malloc_trim(0)` (free chunks anywhere in the heap, not only at its
/// top, are released with `MADV_DONTNEED`). Used once a long-lived
/// process has settled ([`crate::idle`]): what start-up allocated and
/// freed stops counting in its resident set. With musl (the release
/// build) this does nothing: its allocator unmaps freed memory itself.
pub fn malloc_trim() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only walks and trims glibc's own arenas under
    // their locks; it takes no pointer and invalidates no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Every signal `sigfillset(3)` gives under glibc: 1 to 64 but 32 and 33,
/// which both C libraries keep for their threads. musl keeps 34 as well
/// and leaves it out of the set (and refuses it in `sigaddset`), yet 34
/// is what glibc programs and `kill -l` call SIGRTMIN: an init that
/// blocks "every signal" with musl's set would die of `kill -s RTMIN`.
/// The bit is set here by hand; `sigprocmask` and `signalfd` pass the set
/// to the kernel as it is.
pub fn every_signal() -> nix::sys::signal::SigSet {
    let mut raw: libc::sigset_t = *nix::sys::signal::SigSet::all().as_ref();
    // SAFETY: on Linux a sigset_t (glibc's and musl's alike) starts with
    // the kernel's 64-bit mask, signal n at bit n - 1; the struct is at
    // least 8 bytes and suitably aligned for a u64.
    unsafe {
        let first = &mut raw as *mut libc::sigset_t as *mut u64;
        *first |= 1 << (crate::parse::RTMIN - 1);
    }
    // SAFETY: `raw` is an initialised set.
    unsafe { nix::sys::signal::SigSet::from_sigset_t_unchecked(raw) }
}
