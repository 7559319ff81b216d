//! What the child does between fork and exec.
//!
//! Only async-signal-safe calls happen here: no allocation, no locks, no
//! logging. Everything the child needs (the cgroup.procs fd, the fds to
//! keep) is prepared by the parent before the fork.

use crate::sys;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;

/// The signal state a program starts with: what `execve` hands on of
/// the spawner's (the mask, and which signals are ignored).
///
/// `run` and `init` are transparent: the program starts with the state
/// sexton's own caller gave sexton, whatever sexton blocked for its
/// signalfd meanwhile. sexton changes the disposition of two signals
/// only (Rust's runtime ignores SIGPIPE, and sexton needs SIGCHLD at its
/// default to wait for its children), so those two are recorded;
/// every other ignored signal is still ignored when the child execs.
#[derive(Debug, Clone, Copy)]
pub struct SignalState {
    /// The signal mask.
    pub mask: nix::sys::signal::SigSet,
    /// SIGPIPE starts ignored (else at its default action).
    pub sigpipe_ignored: bool,
    /// SIGCHLD starts ignored (else at its default action).
    pub sigchld_ignored: bool,
}

impl Default for SignalState {
    /// An empty mask, SIGPIPE and SIGCHLD at their defaults: what a
    /// daemon gets, and what `std::process::Command` gives.
    fn default() -> Self {
        SignalState {
            mask: nix::sys::signal::SigSet::empty(),
            sigpipe_ignored: false,
            sigchld_ignored: false,
        }
    }
}

impl SignalState {
    /// The calling thread's mask (`pthread_sigmask(2)`) and SIGCHLD's
    /// disposition; SIGPIPE at its default (Rust's runtime ignores it for
    /// its own sake, and `std::process::Command` resets it likewise).
    pub fn of_this_thread() -> SignalState {
        let mut st = SignalState::default();
        if let Ok(mask) = nix::sys::signal::SigSet::thread_get_mask() {
            st.mask = mask;
        }
        st.sigchld_ignored = sys::is_ignored(libc::SIGCHLD);
        st
    }
}

/// Which process group the child joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Group {
    /// A new group led by the child (`setpgid(0, 0)`).
    #[default]
    New,
    /// An existing group of the spawner's session (`setpgid(0, pgid)`):
    /// the terminal's foreground group, for an interactive program.
    Join(i32),
}

/// The user a program runs as: set between fork and exec, groups first,
/// then the group, then the user (`setgroups(2)`, `setgid(2)`,
/// `setuid(2)`), so nothing of the spawner's privileges stays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (the primary one may be among them).
    pub groups: Vec<u32>,
}

/// Fork-to-exec setup shared by every spawn into a tree.
#[derive(Debug, Clone, Default)]
pub struct ChildSetup {
    /// `cgroup.procs` of the tree's cgroup: the child writes "0" into it,
    /// which moves the writer, before it can fork anything.
    pub cgroup_procs: Option<RawFd>,
    /// The process group the child joins.
    pub group: Group,
    /// Descriptors above 2 that survive exec; every other one is marked
    /// close-on-exec.
    pub pass_fds: Vec<RawFd>,
    /// The signal mask and ignored signals the program starts with.
    pub signals: SignalState,
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
    /// Run the program as this user.
    pub credentials: Option<Credentials>,
}

impl ChildSetup {
    /// Installs the setup as a `pre_exec` hook on `cmd`. The hook ends
    /// with the exec ([`Program::exec`]: sexton's own PATH search and sh
    /// retry, the same on every C library); std's execvp is left the
    /// cases `Program` cannot express (a NUL byte), where std reports the
    /// error. `clear_env`: the caller called `cmd.env_clear()`.
    pub fn apply(&self, cmd: &mut std::process::Command, clear_env: bool) {
        cmd.process_group(match self.group {
            Group::New => 0,
            Group::Join(pgid) => pgid,
        });
        let setup = self.clone();
        // Built before the fork: the child must not allocate.
        let groups: Vec<nix::unistd::Gid> = self
            .credentials
            .iter()
            .flat_map(|c| c.groups.iter().map(|&g| nix::unistd::Gid::from_raw(g)))
            .collect();
        let spawner = std::process::id() as i32;
        // SAFETY: the closure runs in the forked child before exec and
        // only makes async-signal-safe system calls (prctl, getppid, write,
        // sigprocmask, rt_sigaction, close_range/fcntl) on data prepared before the fork.
        let mut program = Program::build(cmd, clear_env);
        unsafe {
            cmd.pre_exec(move || {
                setup.in_child(spawner, &groups)?;
                match program.as_mut() {
                    // SAFETY: we are the forked child, about to exec.
                    Some(p) => Err(io::Error::from_raw_os_error(p.exec())),
                    None => Ok(()),
                }
            });
        }
    }

    fn in_child(&self, spawner: i32, groups: &[nix::unistd::Gid]) -> io::Result<()> {
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
        if let Some(c) = &self.credentials {
            nix::unistd::setgroups(groups).map_err(io::Error::from)?;
            nix::unistd::setgid(nix::unistd::Gid::from_raw(c.gid)).map_err(io::Error::from)?;
            nix::unistd::setuid(nix::unistd::Uid::from_raw(c.uid)).map_err(io::Error::from)?;
        }
        // std has emptied the mask and reset SIGPIPE already; hand on what
        // the program is meant to start with.
        nix::sys::signal::sigprocmask(
            nix::sys::signal::SigmaskHow::SIG_SETMASK,
            Some(&self.signals.mask),
            None,
        )
        .map_err(io::Error::from)?;
        if self.signals.sigpipe_ignored && !self.reset_dispositions {
            sys::ignore(libc::SIGPIPE).map_err(io::Error::from_raw_os_error)?;
        }
        if self.signals.sigchld_ignored && !self.reset_dispositions {
            sys::ignore(libc::SIGCHLD).map_err(io::Error::from_raw_os_error)?;
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

/// Where the leader's fds 0, 1, 2 come from when the tree spawns it
/// directly (`None`: inherited from sexton), and whether its environment
/// starts empty. `std::process::Command` keeps both to itself, so the
/// caller that built it says them again here.
#[derive(Debug, Clone, Copy, Default)]
pub struct DirectIo {
    pub stdio: [Option<RawFd>; 3],
    pub clear_env: bool,
}

/// The program a spawn execs, prepared before the fork so that the child
/// only makes system calls: argv, the environment as the program gets
/// it, and the paths to try (execvp's PATH search, done here). sexton
/// execs programs itself, with [`sys::exec_search`], on every spawn path:
/// the C libraries' execvp differ (musl's does not run a file without
/// `#!` with sh; glibc's does, as POSIX says).
pub(crate) struct Program {
    _strings: Vec<std::ffi::CString>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    paths: Vec<*const libc::c_char>,
    /// `sh PATH ARG...` for a file the kernel cannot exec (ENOEXEC);
    /// slot 1 is filled in by the child with the path that failed.
    sh_argv: Vec<*const libc::c_char>,
}

// SAFETY: the pointers point into `_strings`, owned by the same value
// and never changed after `build`; the child writes only into its own
// copy of `sh_argv`.
unsafe impl Send for Program {}
unsafe impl Sync for Program {}

impl Program {
    /// `None` when an argument, variable or path holds a NUL byte (the
    /// caller then leaves the exec to std, which reports it).
    pub(crate) fn build(cmd: &std::process::Command, clear_env: bool) -> Option<Program> {
        use std::ffi::{CString, OsStr, OsString};
        use std::os::unix::ffi::OsStrExt;
        let cstr = |s: &OsStr| CString::new(s.as_bytes()).ok();
        let program = cmd.get_program();
        let mut argv = Vec::new();
        for a in std::iter::once(program).chain(cmd.get_args()) {
            argv.push(cstr(a)?);
        }
        let mut env: Vec<(OsString, OsString)> = if clear_env {
            Vec::new()
        } else {
            std::env::vars_os().collect()
        };
        for (k, v) in cmd.get_envs() {
            env.retain(|(ek, _)| ek != k);
            if let Some(v) = v {
                env.push((k.to_owned(), v.to_owned()));
            }
        }
        let mut envp = Vec::with_capacity(env.len());
        for (k, v) in &env {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            envp.push(CString::new(kv).ok()?);
        }
        let mut paths = Vec::new();
        if program.as_bytes().contains(&b'/') {
            paths.push(argv[0].clone());
        } else {
            // execvp's search: the program's own PATH, else the default.
            let path = env
                .iter()
                .find(|(k, _)| k == "PATH")
                .map(|(_, v)| v.as_bytes().to_vec())
                .unwrap_or_else(|| b"/bin:/usr/bin".to_vec());
            for dir in path.split(|&b| b == b':') {
                let mut full = if dir.is_empty() {
                    Vec::new()
                } else {
                    let mut d = dir.to_vec();
                    d.push(b'/');
                    d
                };
                full.extend_from_slice(program.as_bytes());
                paths.push(CString::new(full).ok()?);
            }
        }
        let sh = CString::new("sh").expect("no NUL");
        let ptrs = |v: &[CString]| -> Vec<*const libc::c_char> {
            v.iter()
                .map(|c| c.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        };
        let (argv_p, envp_p, paths_p) = (ptrs(&argv), ptrs(&envp), ptrs(&paths));
        let mut sh_argv = vec![sh.as_ptr(), std::ptr::null()];
        sh_argv.extend_from_slice(&argv_p[1..]);
        let mut strings = argv;
        strings.extend(envp);
        strings.extend(paths);
        strings.push(sh);
        Some(Program {
            _strings: strings,
            argv: argv_p,
            envp: envp_p,
            paths: paths_p,
            sh_argv,
        })
    }

    /// Execs the program; returns only on failure, with the errno
    /// execvp would give.
    ///
    /// # Safety
    /// Child side of a fork only (it replaces the process).
    pub(crate) unsafe fn exec(&mut self) -> i32 {
        // SAFETY: every array is null-terminated and points into
        // `_strings`; sh_argv has room for slot 1.
        unsafe {
            sys::exec_search(
                self.argv.as_ptr(),
                self.envp.as_ptr(),
                self.paths.as_ptr(),
                self.sh_argv.as_mut_ptr(),
            )
        }
    }
}

/// Spawns `cmd` straight into the cgroup open at `cgroup_dir` with
/// `clone3(CLONE_INTO_CGROUP)`, doing what std's spawn plus
/// [`ChildSetup::apply`] would do. `Ok(None)`: this path cannot do it
/// (old kernel, a NUL byte in an argument, a setup it does not cover);
/// nothing is left running and the caller spawns the ordinary way.
pub(crate) fn spawn_into_cgroup(
    cmd: &std::process::Command,
    dio: &DirectIo,
    setup: &ChildSetup,
    cgroup_dir: RawFd,
) -> io::Result<Option<(i32, std::os::fd::OwnedFd)>> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    if setup.reset_dispositions
        || setup.parent_death_signal.is_some()
        || setup.foreground
        || setup.credentials.is_some()
    {
        return Ok(None);
    }
    let Some(mut program) = Program::build(cmd, dio.clear_env) else {
        return Ok(None);
    };
    let cwd = match cmd.get_current_dir() {
        Some(d) => match CString::new(d.as_os_str().as_bytes()).ok() {
            Some(c) => Some(c),
            None => return Ok(None),
        },
        None => None,
    };
    let (err_r, err_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let plan = sys::ExecPlan {
        argv: program.argv.as_ptr(),
        envp: program.envp.as_ptr(),
        paths: program.paths.as_ptr(),
        sh_argv: program.sh_argv.as_mut_ptr(),
        cwd: cwd.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
        stdio: dio.stdio.map(|f| f.unwrap_or(-1)),
        pass_fds: setup.pass_fds.as_ptr(),
        pass_fds_len: setup.pass_fds.len(),
        pgid: match setup.group {
            Group::New => 0,
            Group::Join(pgid) => pgid,
        },
        sigmask: setup.signals.mask,
        sigpipe_ignored: setup.signals.sigpipe_ignored,
        sigchld_ignored: setup.signals.sigchld_ignored,
        err_pipe: std::os::fd::AsRawFd::as_raw_fd(&err_w),
    };
    // SAFETY: the child runs only exec_plan, raw system calls on the plan
    // built above (valid in its copy of our memory), then execve or _exit.
    let (pid, pidfd) = match unsafe { sys::fork_into_cgroup(cgroup_dir) } {
        // SAFETY: child side of fork_into_cgroup; every plan pointer is valid.
        Ok(sys::Forked::Child) => unsafe { sys::exec_plan(&plan) },
        Ok(sys::Forked::Parent { pid, pidfd }) => (pid, pidfd),
        Err(_) => return Ok(None),
    };
    drop(err_w);
    let mut buf = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match rustix::io::read(&err_r, &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(io::Error::from_raw_os_error(e.raw_os_error())),
        }
    }
    if got == 0 {
        return Ok(Some((pid, pidfd)));
    }
    // The exec failed: the child exits 127 at once; reap it.
    let _ = sys::wait4(pid, false);
    let errno = i32::from_ne_bytes(buf);
    if got < 4 {
        return Ok(None);
    }
    Err(io::Error::from_raw_os_error(errno))
}
