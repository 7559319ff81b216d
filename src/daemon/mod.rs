//! Daemonization with a locked pidfile and a monitor (defect D9).
//!
//! [`Daemon::start`] does every classic step ([`detach`]), then leaves a
//! small monitor ([`monitor`]) as the daemon's parent. The monitor holds
//! a lock on the pidfile ([`pidfile`]) for the daemon's whole life, so
//! [`status`] and [`stop`] ask the lock, never "does a process with that
//! pid exist": a pidfile left behind by a crash, naming a pid that has
//! since been reused, can never get an unrelated process killed.
//!
//! ```no_run
//! use sexton::daemon::{self, Daemon, Status};
//! use std::time::Duration;
//!
//! let d = Daemon::new(["sleep", "600"]).pidfile("/tmp/sleep.pid");
//! // SAFETY: called from a single-threaded program.
//! let started = unsafe { d.start() }.expect("started");
//! assert!(matches!(daemon::status("/tmp/sleep.pid".as_ref()), Ok(Status::Running { .. })));
//! daemon::stop("/tmp/sleep.pid".as_ref(), Duration::from_secs(10)).expect("stopped");
//! # let _ = started;
//! ```

pub mod detach;
pub mod monitor;
mod output;
pub mod pidfile;
pub mod respawn;

pub use pidfile::LockState;
pub use respawn::Respawn;

use crate::supervise::config::Ready;
use crate::tree::Tracking;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::stat::Mode;
use std::ffi::OsString;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Errors of the daemon layer.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("no program given")]
    Empty,
    #[error("cannot use pidfile {path}: {source}")]
    Pidfile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("pidfile {path} is locked: the daemon is already running (monitor pid {monitor})")]
    Locked { path: PathBuf, monitor: i32 },
    #[error("cannot open {what} {path}: {source}")]
    Open {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot detach: {0}")]
    Detach(#[source] io::Error),
    /// The program did not start; `code` is the exit status to report
    /// (127 not found, 126 not executable, 1 otherwise).
    #[error("{reason}")]
    Start { code: i32, reason: String },
    #[error("the monitor ended before it could start the program")]
    MonitorLost,
    #[error("the lock on {path} is held by a process outside this pid namespace")]
    ForeignHolder { path: PathBuf },
    #[error("cannot signal the monitor (pid {monitor}): {source}")]
    Signal {
        monitor: i32,
        #[source]
        source: io::Error,
    },
    #[error("the daemon (monitor pid {monitor}) did not stop within {waited:?}")]
    StopTimeout { monitor: i32, waited: Duration },
}

/// A daemon to start: the program and how to detach it.
#[derive(Debug, Clone)]
pub struct Daemon {
    argv: Vec<OsString>,
    pidfile: Option<PathBuf>,
    stdout: Option<PathBuf>,
    stderr: Option<PathBuf>,
    chdir: PathBuf,
    umask: Mode,
    respawn: Option<Respawn>,
    tracking: Tracking,
    ready: Option<Ready>,
    ready_timeout: Duration,
}

/// A daemon that has started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Started {
    /// The program's pid (what the pidfile holds).
    pub pid: i32,
    /// The monitor's pid (the pidfile lock's holder).
    pub monitor: i32,
}

impl Daemon {
    /// A daemon running `argv` with the defaults: no pidfile, stdio on
    /// /dev/null, cwd `/`, umask 022, no respawn.
    pub fn new<I, S>(argv: I) -> Daemon
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Daemon {
            argv: argv.into_iter().map(Into::into).collect(),
            pidfile: None,
            stdout: None,
            stderr: None,
            chdir: PathBuf::from("/"),
            umask: Mode::from_bits_truncate(0o022),
            respawn: None,
            tracking: Tracking::Auto,
            ready: None,
            ready_timeout: monitor::DEFAULT_READY_TIMEOUT,
        }
    }

    /// Lock `path` and keep the program's pid in it.
    pub fn pidfile(mut self, path: impl Into<PathBuf>) -> Daemon {
        self.pidfile = Some(path.into());
        self
    }

    /// Append the program's stdout to `path`.
    pub fn stdout(mut self, path: impl Into<PathBuf>) -> Daemon {
        self.stdout = Some(path.into());
        self
    }

    /// Append the program's stderr (and the monitor's notes) to `path`.
    pub fn stderr(mut self, path: impl Into<PathBuf>) -> Daemon {
        self.stderr = Some(path.into());
        self
    }

    /// The working directory of the monitor and the program.
    pub fn chdir(mut self, dir: impl Into<PathBuf>) -> Daemon {
        self.chdir = dir.into();
        self
    }

    /// The file mode creation mask of the monitor and the program.
    pub fn umask(mut self, mask: u32) -> Daemon {
        self.umask = Mode::from_bits_truncate(mask);
        self
    }

    /// Restart the program when it dies.
    pub fn respawn(mut self, policy: Respawn) -> Daemon {
        self.respawn = Some(policy);
        self
    }

    /// How the monitor follows the daemon's tree.
    pub fn tracking(mut self, t: Tracking) -> Daemon {
        self.tracking = t;
        self
    }

    /// Return from [`Daemon::start`] only once this check says the
    /// program is ready (see [`crate::supervise::ready`]). Without one,
    /// the program must live [`monitor::MIN_LIFE`]. A `Log` check makes
    /// the monitor read the program's output through pipes and copy it on
    /// to its files.
    pub fn ready(mut self, check: Ready) -> Daemon {
        self.ready = Some(check);
        self
    }

    /// How long [`Daemon::ready`]'s check may take (default
    /// [`monitor::DEFAULT_READY_TIMEOUT`]); then the start fails and the
    /// program's tree is stopped.
    pub fn ready_timeout(mut self, limit: Duration) -> Daemon {
        self.ready_timeout = limit;
        self
    }

    /// Detaches and starts the program; returns in the calling process
    /// once the program has started (it is ready, or without a check it
    /// lived [`monitor::MIN_LIFE`]) or has failed to: it could not be
    /// run, it died first, its check failed or timed out. A failed start
    /// leaves nothing running and no pidfile. The monitor never returns
    /// from this call: it runs the daemon and exits.
    ///
    /// Paths (pidfile, stdio files, a program given with a `/`) are taken
    /// relative to the caller's cwd, before the daemon moves to `chdir`.
    ///
    /// # Safety
    /// Forks: the calling process must be single-threaded.
    pub unsafe fn start(&self) -> Result<Started, DaemonError> {
        if self.argv.is_empty() || self.argv[0].is_empty() {
            return Err(DaemonError::Empty);
        }
        let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let mut argv = self.argv.clone();
        if Path::new(&argv[0]).components().count() > 1 {
            argv[0] = abs(Path::new(&argv[0])).into_os_string();
        }
        let chdir = abs(&self.chdir);
        if !chdir.is_dir() {
            return Err(DaemonError::Open {
                what: "directory",
                path: chdir,
                source: io::Error::from(io::ErrorKind::NotADirectory),
            });
        }
        let pidfile = self.pidfile.as_deref().map(abs);
        // Early answer to the common mistakes (a daemon already running,
        // a path that is not a pidfile), before anything forks; the
        // monitor's own lock attempt below is what counts.
        if let Some(p) = &pidfile {
            match pidfile::preflight(p) {
                Ok(pidfile::Found {
                    state: LockState::Locked { holder },
                    ..
                }) => {
                    return Err(DaemonError::Locked {
                        path: p.clone(),
                        monitor: holder,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                    return Err(DaemonError::Pidfile {
                        path: p.clone(),
                        source: e,
                    });
                }
                // Other errors (e.g. a missing directory) are the lock
                // attempt's to report.
                _ => {}
            }
        }
        let stdio = self.open_stdio()?;
        // SAFETY: the caller guarantees a single-threaded process.
        match unsafe { detach::double_fork() }.map_err(DaemonError::Detach)? {
            detach::Forked::Caller { report } => read_report(report),
            detach::Forked::Monitor { report } => {
                let cfg = monitor::Config {
                    argv,
                    respawn: self.respawn,
                    tracking: self.tracking,
                    ready: self.ready.clone(),
                    ready_timeout: self.ready_timeout,
                };
                become_monitor(cfg, &chdir, self.umask, stdio, report, pidfile)
            }
        }
    }

    fn open_stdio(&self) -> Result<detach::Stdio, DaemonError> {
        let null = || {
            detach::dev_null().map_err(|e| DaemonError::Open {
                what: "file",
                path: "/dev/null".into(),
                source: e,
            })
        };
        let file = |p: &Option<PathBuf>, what| -> Result<OwnedFd, DaemonError> {
            match p {
                None => null(),
                Some(p) => detach::append(p).map_err(|e| DaemonError::Open {
                    what,
                    path: p.clone(),
                    source: e,
                }),
            }
        };
        let stdout = file(&self.stdout, "stdout file")?;
        let stderr = if self.stderr.is_some() && self.stderr == self.stdout {
            stdout.try_clone().map_err(DaemonError::Detach)?
        } else {
            file(&self.stderr, "stderr file")?
        };
        Ok(detach::Stdio {
            stdin: null()?,
            stdout,
            stderr,
        })
    }
}

/// In the monitor: settle, lock the pidfile, run. Never returns.
fn become_monitor(
    cfg: monitor::Config,
    chdir: &Path,
    umask: Mode,
    stdio: detach::Stdio,
    report: std::fs::File,
    pidfile: Option<PathBuf>,
) -> ! {
    use std::io::Write;
    let mut report = match detach::settle(chdir, umask, stdio, report) {
        Ok(r) => r,
        // The report fd may be gone: the caller then sees EOF.
        Err(_) => std::process::exit(1),
    };
    let report_fd = std::os::fd::AsRawFd::as_raw_fd(&report);
    let mut fail = |msg: String| -> ! {
        let _ = report.write_all(monitor::report_failed(1, &msg).as_bytes());
        std::process::exit(1)
    };
    let locked = match &pidfile {
        None => None,
        Some(p) => match pidfile::Pidfile::lock(p) {
            Ok(Ok(pf)) => Some(pf),
            Ok(Err(holder)) => fail(
                DaemonError::Locked {
                    path: p.clone(),
                    monitor: holder,
                }
                .to_string(),
            ),
            Err(e) => fail(
                DaemonError::Pidfile {
                    path: p.clone(),
                    source: e,
                }
                .to_string(),
            ),
        },
    };
    // The lock holder stays a small guard; the worker below it, in a
    // process group of its own, runs the daemon's tree and takes the tree
    // with it when the guard is killed, even with SIGKILL.
    let guard = crate::tree::guard::Guard {
        forward: crate::tree::signals::set_of(&monitor::CONTROL),
        forward_terminal: true,
        // The caller reads the report until EOF: only the worker writes it.
        worker_only: vec![report_fd],
        long_lived: true,
    };
    // SAFETY: the monitor is single-threaded (a fresh double fork).
    let lifeline = match unsafe { guard.split() } {
        Ok(fd) => fd,
        Err(e) => fail(format!("cannot start the monitor: {e}")),
    };
    monitor::run(cfg, report, locked, Some(lifeline))
}

/// In the caller: what the monitor said about the start.
fn read_report(mut report: std::fs::File) -> Result<Started, DaemonError> {
    let mut text = String::new();
    // read_to_string retries on EINTR; EOF comes when the monitor has
    // written its line and closed the pipe (or died).
    report
        .read_to_string(&mut text)
        .map_err(DaemonError::Detach)?;
    let line = text.lines().next().unwrap_or("");
    let mut words = line.splitn(3, ' ');
    match (words.next(), words.next(), words.next()) {
        (Some("started"), Some(pid), Some(mon)) => match (pid.parse(), mon.parse()) {
            (Ok(pid), Ok(monitor)) => Ok(Started { pid, monitor }),
            _ => Err(DaemonError::MonitorLost),
        },
        (Some("failed"), Some(code), Some(reason)) => Err(DaemonError::Start {
            code: code.parse().unwrap_or(1),
            reason: reason.to_string(),
        }),
        _ => Err(DaemonError::MonitorLost),
    }
}

/// What `--status` reports (LSB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The pidfile is locked by a live monitor.
    Running {
        monitor: i32,
        /// The program's pid as the file says (none while a restart is
        /// pending).
        pid: Option<i32>,
    },
    /// The file exists but nobody holds its lock: the pid it names (if
    /// any) is not our daemon.
    Stale { pid: Option<i32> },
    /// No pidfile.
    NotRunning,
}

impl Status {
    /// The LSB exit status: 0 running, 1 dead with a stale pidfile, 3 not
    /// running.
    pub fn lsb_code(&self) -> i32 {
        match self {
            Status::Running { .. } => 0,
            Status::Stale { .. } => 1,
            Status::NotRunning => 3,
        }
    }
}

/// Asks the pidfile's lock whether the daemon runs (`F_GETLK`; the lock
/// is never taken, so this cannot disturb a daemon that is starting).
/// Changes nothing at `path`; a path that is not a pidfile (another
/// file, a directory, a device, a FIFO, a symbolic link) is an error.
pub fn status(path: &Path) -> Result<Status, DaemonError> {
    let err = |e| DaemonError::Pidfile {
        path: path.to_path_buf(),
        source: e,
    };
    let found = pidfile::inspect(path).map_err(err)?;
    Ok(match found.state {
        LockState::Missing => Status::NotRunning,
        LockState::Unlocked => Status::Stale { pid: found.pid },
        LockState::Locked { holder } => Status::Running {
            monitor: holder,
            pid: found.pid,
        },
    })
}

/// What [`stop`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// The monitor with this pid stopped the tree and exited.
    Stopped { monitor: i32 },
    /// Nothing was running (the status says whether a stale file is
    /// left; a stale file's pid is never signalled).
    NotRunning(Status),
}

/// Stops the daemon that holds `path`'s lock: its monitor sends SIGTERM
/// to the whole tree, SIGKILLs what is left after `timeout`, removes the
/// pidfile and exits; this returns once the lock is released.
///
/// The monitor is found as the lock's holder (`F_GETLK`) and signalled
/// through a pidfd opened while it still holds the lock, so the signal
/// cannot reach a process that merely inherited a reused pid. Like
/// [`status`], this changes nothing at `path` itself and refuses a path
/// that is not a pidfile.
pub fn stop(path: &Path, timeout: Duration) -> Result<Stopped, DaemonError> {
    let (monitor, fd) = loop {
        let monitor = match status(path)? {
            Status::Running { monitor, .. } => monitor,
            other => return Ok(Stopped::NotRunning(other)),
        };
        if monitor <= 0 {
            return Err(DaemonError::ForeignHolder {
                path: path.to_path_buf(),
            });
        }
        let Some(raw) = rustix::process::Pid::from_raw(monitor) else {
            continue;
        };
        let fd = match rustix::process::pidfd_open(raw, rustix::process::PidfdFlags::empty()) {
            Ok(fd) => fd,
            // Exited between the two looks: ask the lock again.
            Err(rustix::io::Errno::SRCH) => continue,
            Err(e) => {
                return Err(DaemonError::Signal {
                    monitor,
                    source: e.into(),
                });
            }
        };
        // The pidfd names whatever process had that pid when it was
        // opened; it is the monitor if the monitor still holds the lock.
        match status(path)? {
            Status::Running { monitor: m, .. } if m == monitor => break (monitor, fd),
            _ => continue,
        }
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    crate::sys::pidfd_send_signal_value(fd.as_fd(), nix::sys::signal::Signal::SIGTERM, ms)
        .map_err(|e| DaemonError::Signal { monitor, source: e })?;
    // The monitor needs `timeout`, then at most the kill wait; give it a
    // generous margin on a loaded machine before calling it stuck.
    let waited = timeout + Duration::from_secs(30);
    if !wait_exit(&fd, waited) {
        return Err(DaemonError::StopTimeout { monitor, waited });
    }
    Ok(Stopped::Stopped { monitor })
}

/// Waits until the process behind `pidfd` has exited (the pidfd turns
/// readable), at most `limit`. EINTR goes round again.
fn wait_exit(pidfd: &OwnedFd, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(n) if n > 0 => return true,
            Ok(_) if left.is_zero() => return false,
            _ => {}
        }
        if Instant::now() >= deadline {
            return false;
        }
    }
}
