//! The monitor: the small sexton process that stays as the daemon's
//! parent.
//!
//! It holds the pidfile's lock for as long as the daemon lives, reaps it
//! (and every orphan of its tree: the monitor is a child subreaper),
//! restarts it under `--respawn`, stops its whole tree on request, and
//! removes the pidfile when it ends.
//!
//! One event loop over one fd, a signalfd for SIGCHLD and the control
//! signals, and at most one deadline (a restart's backoff, or a stop's
//! kill-after). While the daemon simply runs there is no deadline at
//! all, so an idle monitor never wakes up.
//!
//! Control is by signal, so `kill MONITOR` works as expected:
//! - SIGTERM, SIGINT, SIGQUIT: stop. The stop signal (SIGTERM) goes to
//!   the whole tree; whatever is left after the timeout is frozen and
//!   killed. The timeout is the signal's `sigqueue` value in
//!   milliseconds when there is one (`sexton daemon --stop` sends it
//!   through a pidfd), else 10s.
//! - SIGHUP, SIGUSR1, SIGUSR2: passed on to the program (reload, log
//!   rotation).

use super::pidfile::Pidfile;
use super::respawn::{Backoff, Respawn, Verdict};
use crate::sys;
use crate::tree::{ChildSetup, Tracking, Tree, TreeError};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

/// Stop timeout when the stop signal carries none.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the final SIGKILL may take to empty the tree.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// While stopping, how often to look whether the tree is empty (only
/// members that are our children announce their death with SIGCHLD).
const STOPPING_TICK: Duration = Duration::from_millis(10);
/// `si_code` of a signal sent with `sigqueue`/`pidfd_send_signal`.
const SI_QUEUE: i32 = -1;

/// What the monitor runs.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) argv: Vec<OsString>,
    pub(crate) respawn: Option<Respawn>,
    pub(crate) tracking: Tracking,
}

/// The first line the monitor writes on the report pipe.
pub(crate) fn report_started(pid: i32, monitor: i32) -> String {
    format!("started {pid} {monitor}\n")
}

/// The report line of a start that failed: exit status, then the reason.
pub(crate) fn report_failed(code: i32, reason: &str) -> String {
    format!("failed {code} {}\n", reason.replace('\n', " "))
}

enum State {
    Running(Tree),
    /// Waiting to start again.
    Backoff {
        until: Instant,
    },
    Stopping {
        tree: Tree,
        kill_at: Instant,
    },
}

/// The control signals: stop (TERM, INT, QUIT) and pass on (HUP, USR1,
/// USR2). The monitor's guard forwards these to the worker that runs
/// this loop.
pub(crate) const CONTROL: [Signal; 6] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGHUP,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// Runs the monitor to its end and exits. `report` is the pipe to the
/// caller, `pidfile` the already locked pidfile, if any; `lifeline` the
/// read end whose hang-up says the guard that holds the pidfile's lock
/// (the pid users know as the monitor) is gone.
pub(crate) fn run(
    cfg: Config,
    mut report: File,
    pidfile: Option<Pidfile>,
    lifeline: Option<OwnedFd>,
) -> ! {
    let signals = match control_signals() {
        Ok(s) => s,
        Err(e) => {
            let _ = report.write_all(report_failed(1, &format!("signal setup: {e}")).as_bytes());
            std::process::exit(1);
        }
    };
    // The monitor users see is the lock holder: the guard when there is
    // one (our parent), else this process.
    let me = if lifeline.is_some() {
        nix::unistd::getppid().as_raw()
    } else {
        std::process::id() as i32
    };
    MONITOR.store(me, std::sync::atomic::Ordering::Relaxed);
    let mut backoff = cfg.respawn.map(Backoff::new);
    let tree = match spawn(&cfg) {
        Ok(t) => t,
        Err(e) => fail_start(report, pidfile, start_failure_code(&e), &e.to_string()),
    };
    let pid = tree.leader().as_raw();
    if let Some(pf) = &pidfile
        && let Err(e) = pf.write_pid(pid)
    {
        let msg = format!("cannot write pidfile {}: {e}", pf.path().display());
        drop(tree);
        fail_start(report, pidfile, 1, &msg);
    }
    if let Some(b) = &mut backoff {
        b.started(Instant::now());
    }
    let _ = report.write_all(report_started(pid, me).as_bytes());
    drop(report);

    let mut state = State::Running(tree);
    let mut status = 0;
    let mut reaped = 0u64;
    loop {
        let now = Instant::now();
        let deadline = match &state {
            State::Running(_) => None,
            State::Backoff { until } => Some(*until),
            State::Stopping { kill_at, .. } => Some((*kill_at).min(now + STOPPING_TICK)),
        };
        if wait(
            &signals,
            lifeline.as_ref(),
            deadline.map(|d| d.saturating_duration_since(now)),
        ) {
            note(&format!(
                "the monitor (pid {me}) is gone: killing the daemon's tree"
            ));
            if let State::Running(mut tree) | State::Stopping { mut tree, .. } = state {
                tree.kill(KILL_WAIT);
            }
            if let Some(pf) = pidfile {
                let _ = pf.reclaim();
            }
            std::process::exit(1);
        }

        let mut stop: Option<Duration> = None;
        let mut forward: Vec<Signal> = Vec::new();
        while let Ok(Some(si)) = signals.read_signal() {
            match Signal::try_from(si.ssi_signo as i32) {
                Ok(Signal::SIGTERM | Signal::SIGINT | Signal::SIGQUIT) => {
                    let t = if si.ssi_code == SI_QUEUE && si.ssi_int >= 0 {
                        Duration::from_millis(si.ssi_int as u64)
                    } else {
                        DEFAULT_STOP_TIMEOUT
                    };
                    stop = Some(stop.map_or(t, |s| s.min(t)));
                }
                Ok(s @ (Signal::SIGHUP | Signal::SIGUSR1 | Signal::SIGUSR2)) => forward.push(s),
                _ => {}
            }
        }
        if let State::Running(tree) | State::Stopping { tree, .. } = &mut state {
            // Every exited child until none is left (D2), whatever killed
            // it (realtime signals included): the monitor owns all its
            // children, so the tree's one core (`wait4(-1)`) reaps them,
            // adopted orphans too, and hands the leader's status to the
            // tree.
            let _ = tree.reap_all_children(&mut reaped);
            for s in forward {
                if tree.leader_exit().is_none() {
                    // The leader is our unreaped child: its pid is ours.
                    let _ = nix::sys::signal::kill(tree.leader(), s);
                }
            }
        } else {
            reap_strays();
        }

        state = match state {
            State::Running(mut tree) => {
                if let Some(t) = stop {
                    note(&format!(
                        "stopping: SIGTERM to the tree of pid {}, SIGKILL after {}",
                        tree.leader(),
                        humantime::format_duration(round_ms(t))
                    ));
                    tree.signal(Signal::SIGTERM);
                    State::Stopping {
                        tree,
                        kill_at: Instant::now() + t,
                    }
                } else if let Some(exit) = tree.leader_exit() {
                    status = crate::tree::status::exit_code(exit.status);
                    note(&format!(
                        "{} (pid {}) {}",
                        program(&cfg),
                        tree.leader(),
                        crate::tree::status::describe(exit.status)
                    ));
                    // The daemon is its tree: what it leaves behind goes
                    // with it.
                    tree.kill(KILL_WAIT);
                    drop(tree);
                    match after_death(&mut backoff, &pidfile) {
                        Some(s) => s,
                        None => finish(pidfile, status),
                    }
                } else {
                    State::Running(tree)
                }
            }
            State::Stopping { mut tree, kill_at } => {
                let kill_at = stop.map_or(kill_at, |t| kill_at.min(Instant::now() + t));
                if tree.is_empty() {
                    drop(tree);
                    finish(pidfile, 0);
                } else if Instant::now() >= kill_at {
                    tree.kill(KILL_WAIT);
                    drop(tree);
                    finish(pidfile, 0);
                } else {
                    State::Stopping { tree, kill_at }
                }
            }
            State::Backoff { until } => {
                if stop.is_some() {
                    finish(pidfile, status);
                } else if Instant::now() < until {
                    State::Backoff { until }
                } else {
                    match spawn(&cfg) {
                        Ok(tree) => {
                            if let Some(b) = &mut backoff {
                                b.started(Instant::now());
                            }
                            if let Some(pf) = &pidfile {
                                let _ = pf.write_pid(tree.leader().as_raw());
                            }
                            State::Running(tree)
                        }
                        Err(e) => {
                            note(&format!("cannot restart: {e}"));
                            if let Some(b) = &mut backoff {
                                b.started(Instant::now());
                            }
                            match after_death(&mut backoff, &pidfile) {
                                Some(s) => s,
                                None => finish(pidfile, 1),
                            }
                        }
                    }
                }
            }
        };
    }
}

/// After the program died: the backoff state, or `None` to end.
fn after_death(backoff: &mut Option<Backoff>, pidfile: &Option<Pidfile>) -> Option<State> {
    let b = backoff.as_mut()?;
    match b.died(Instant::now()) {
        Verdict::RestartIn(wait) => {
            note(&format!(
                "restarting in {}",
                humantime::format_duration(round_ms(wait))
            ));
            if let Some(pf) = pidfile {
                let _ = pf.clear();
            }
            Some(State::Backoff {
                until: Instant::now() + wait,
            })
        }
        Verdict::GiveUp { starts } => {
            note(&format!(
                "giving up: {starts} starts within the crash-loop window all died"
            ));
            None
        }
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

fn spawn(cfg: &Config) -> Result<Tree, TreeError> {
    let mut cmd = std::process::Command::new(&cfg.argv[0]);
    cmd.args(&cfg.argv[1..]);
    Tree::spawn(
        &mut cmd,
        cfg.tracking,
        ChildSetup {
            reset_dispositions: true,
            // If the monitor is killed outright (SIGKILL: no chance to
            // stop the tree), the program goes with it, so that an
            // unlocked pidfile never hides a running daemon.
            parent_death_signal: Some(Signal::SIGKILL),
            ..ChildSetup::default()
        },
    )
}

/// The exit status `sexton daemon` reports for a program that could not
/// start: 127 not found, 126 not executable, else 1.
pub(crate) fn start_failure_code(e: &TreeError) -> i32 {
    match e {
        TreeError::NotFound { .. } => 127,
        TreeError::NotExecutable { .. } => 126,
        _ => 1,
    }
}

/// Blocks the control signals and SIGCHLD and returns a signalfd for
/// them. The mask is set, not added to: whatever the caller had blocked
/// is unblocked.
fn control_signals() -> nix::Result<SignalFd> {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGHUP,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ] {
        set.add(s);
    }
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&set), None)?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
}

/// Waits for a signal, the lifeline's hang-up, or the timeout (`None`:
/// no timeout at all). Returns true when the lifeline broke.
fn wait(signals: &SignalFd, lifeline: Option<&OwnedFd>, timeout: Option<Duration>) -> bool {
    let t = match timeout {
        None => PollTimeout::NONE,
        Some(d) => {
            // Round up so a deadline is never polled for in a busy loop.
            let ms = d.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
        }
    };
    let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
    if let Some(l) = lifeline {
        fds.push(PollFd::new(l.as_fd(), PollFlags::POLLIN));
    }
    // EINTR (or any error) just goes round the loop again.
    let _ = poll(&mut fds, t);
    fds.get(1)
        .and_then(|f| f.revents())
        .is_some_and(|r| !r.is_empty())
}

/// Reaps stray children while no tree runs (between two starts): the
/// same `wait4(-1, WNOHANG)` loop, with no leader to hand a status to.
fn reap_strays() {
    while let Ok(Some(_)) = sys::wait4_any() {}
}

fn program(cfg: &Config) -> String {
    cfg.argv[0].to_string_lossy().into_owned()
}

/// The pid log lines name: the monitor users know (the lock holder).
static MONITOR: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// One timestamped line on the monitor's stderr (the daemon's `--stderr`
/// or `--log` file, else /dev/null).
fn note(msg: &str) {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
    let me = match MONITOR.load(std::sync::atomic::Ordering::Relaxed) {
        0 => std::process::id() as i32,
        m => m,
    };
    let line = format!("{now} sexton daemon[{me}]: {msg}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// A start that failed: clean up first (the pidfile goes), then tell
/// the caller, so that when it returns nothing of the attempt is left.
fn fail_start(mut report: File, pidfile: Option<Pidfile>, code: i32, reason: &str) -> ! {
    if let Some(pf) = pidfile {
        let _ = pf.remove();
    }
    let _ = report.write_all(report_failed(code, reason).as_bytes());
    std::process::exit(1)
}

/// Removes the pidfile (releasing its lock last) and exits.
fn finish(pidfile: Option<Pidfile>, status: i32) -> ! {
    if let Some(pf) = pidfile {
        let _ = pf.remove();
    }
    std::process::exit(status)
}
