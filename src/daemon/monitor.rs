//! The monitor: the small sexton process that stays as the daemon's
//! parent.
//!
//! It holds the pidfile's lock for as long as the daemon lives, reaps it
//! (and every orphan of its tree: the monitor is a child subreaper),
//! restarts it under `--respawn`, stops its whole tree on request, and
//! removes the pidfile when it ends.
//!
//! It also decides the start the caller waits for: "started" once the
//! program is ready (its `--ready` check succeeded; without one, once it
//! has lived [`MIN_LIFE`]), "failed" with the reason when it died first,
//! its check failed or did not succeed within the readiness timeout
//! (the tree is then stopped and the pidfile removed before the caller
//! hears it).
//!
//! One event loop: a signalfd for SIGCHLD and the control signals, the
//! lifeline, the readiness check's fds and the output pipes (`--ready
//! log:`) when there are some, and one deadline (the start's decision, a
//! check's next attempt, a restart's backoff, or a stop's kill-after).
//! While the daemon simply runs there is no deadline at all, so an idle
//! monitor never wakes up.
//!
//! Control is by signal, so `kill MONITOR` works as expected:
//! - SIGTERM, SIGINT, SIGQUIT: stop. The stop signal (SIGTERM) goes to
//!   the whole tree; whatever is left after the timeout is frozen and
//!   killed. The timeout is the signal's `sigqueue` value in
//!   milliseconds when there is one (`sexton daemon --stop` sends it
//!   through a pidfd), else 10s.
//! - SIGHUP, SIGUSR1, SIGUSR2: passed on to the program (reload, log
//!   rotation).

use super::output::Output;
use super::pidfile::Pidfile;
use super::respawn::{Backoff, Respawn, Verdict};
use crate::supervise::config::Ready;
use crate::supervise::ready::{Progress, ReadyCheck, Target};
use crate::sys;
use crate::tree::{ChildSetup, Tracking, Tree, TreeError};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
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

/// How long a program started without a readiness check must live for
/// its start to count as a success.
pub const MIN_LIFE: Duration = Duration::from_millis(200);
/// How long the caller waits for a readiness check by default.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// After a start failed (the check failed or timed out), how long the
/// tree has between SIGTERM and SIGKILL.
const FAILED_START_GRACE: Duration = Duration::from_secs(5);

/// What the monitor runs.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) argv: Vec<OsString>,
    pub(crate) respawn: Option<Respawn>,
    pub(crate) tracking: Tracking,
    /// How the caller learns the program is ready (`None`: it lived
    /// [`MIN_LIFE`]).
    pub(crate) ready: Option<Ready>,
    pub(crate) ready_timeout: Duration,
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

/// The start the caller is waiting for: `report` stays open until it is
/// decided (the caller reads it to EOF).
struct Start {
    report: File,
    /// When it is decided without news: the readiness timeout with a
    /// check, the end of [`MIN_LIFE`] without.
    by: Instant,
    /// Why it failed, once it has (the tree is being stopped).
    failed: Option<String>,
}

/// Runs the monitor to its end and exits. `report` is the pipe to the
/// caller, `pidfile` the already locked pidfile, if any; `lifeline` the
/// read end whose hang-up says the guard that holds the pidfile's lock
/// (the pid users know as the monitor) is gone.
///
/// The caller hears "started" only once the program is ready: its check
/// succeeded (`--ready`), or, without one, it lived [`MIN_LIFE`]. A
/// program that dies first, a check that fails or times out, or a stop
/// request meanwhile makes the start fail: the tree is stopped, the
/// pidfile removed, and only then is the caller told why. A failed start
/// is final even with `--respawn`, which restarts a program that has
/// started.
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
    let mut output = match &cfg.ready {
        Some(Ready::Log(_)) => match Output::new() {
            Ok(o) => Some(o),
            Err(e) => fail_start(
                report,
                pidfile,
                1,
                &format!("cannot make the output pipes: {e}"),
            ),
        },
        _ => None,
    };
    let mut check = match &cfg.ready {
        None => None,
        Some(r) => {
            let target = Target {
                tracking: cfg.tracking,
                ..Target::default()
            };
            match ReadyCheck::new(r, &target) {
                Ok(c) => Some(c),
                Err(e) => fail_start(report, pidfile, 1, &format!("readiness check: {e}")),
            }
        }
    };
    let env = check.as_ref().map(|c| c.env()).unwrap_or_default();
    let tree = match spawn(&cfg, &env, output.as_ref()) {
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
    let mut start = Some(Start {
        report,
        by: Instant::now()
            + if check.is_some() {
                cfg.ready_timeout
            } else {
                MIN_LIFE
            },
        failed: None,
    });

    let mut state = State::Running(tree);
    let mut status = 0;
    loop {
        let now = Instant::now();
        let mut deadline = match &state {
            State::Running(_) => None,
            State::Backoff { until } => Some(*until),
            State::Stopping { kill_at, .. } => Some((*kill_at).min(now + STOPPING_TICK)),
        };
        if let Some(s) = &start
            && s.failed.is_none()
        {
            let mut by = s.by;
            if let Some(d) = check.as_ref().and_then(|c| c.deadline()) {
                by = by.min(d);
            }
            deadline = Some(deadline.map_or(by, |d| d.min(by)));
        }
        let mut extra: Vec<(RawFd, PollFlags)> = Vec::new();
        if let Some(c) = &check {
            extra.extend(c.poll_fds());
        }
        if let Some(o) = &output {
            extra.extend(o.poll_fds().into_iter().map(|fd| (fd, PollFlags::POLLIN)));
        }
        if wait(
            &signals,
            lifeline.as_ref(),
            &extra,
            deadline.map(|d| d.saturating_duration_since(now)),
        ) {
            note(&format!(
                "the monitor (pid {me}) is gone: killing the daemon's tree"
            ));
            if let State::Running(mut tree) | State::Stopping { mut tree, .. } = state {
                tree.kill(KILL_WAIT);
            }
            drop(check);
            if let Some(o) = &mut output {
                o.drain();
            }
            if let Some(pf) = pidfile {
                let _ = pf.reclaim();
            }
            if let Some(mut s) = start {
                let why = format!("the monitor (pid {me}) was killed before the program was ready");
                let _ = s.report.write_all(report_failed(1, &why).as_bytes());
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
        // Every exited child until none is left (D2), whatever killed it
        // (realtime signals included): the monitor owns all its children,
        // so one `wait4(-1)` loop reaps them, adopted orphans too, and
        // hands the leader's status to the tree and the check command's
        // to the check.
        let mut tree = match &mut state {
            State::Running(tree) | State::Stopping { tree, .. } => Some(tree),
            State::Backoff { .. } => None,
        };
        reap_children(tree.as_deref_mut(), check.as_mut());
        if let Some(tree) = tree {
            for s in forward {
                if tree.leader_exit().is_none() {
                    // The leader is our unreaped child: its pid is ours.
                    let _ = nix::sys::signal::kill(tree.leader(), s);
                }
            }
        }
        // The output first (its lines may make the check ready), then the
        // check.
        let deciding = start.as_ref().is_some_and(|s| s.failed.is_none());
        let mut progress = Progress::Pending;
        if let Some(o) = &mut output {
            match (&mut check, deciding) {
                (Some(c), true) => {
                    let mut on_line = |line: &[u8]| {
                        if progress == Progress::Pending {
                            progress = c.on_line(line);
                        }
                    };
                    o.pump_lines(&mut on_line);
                }
                _ => o.pump(),
            }
        }
        if let Some(c) = &mut check {
            let p = c.step(Instant::now());
            if progress == Progress::Pending {
                progress = p;
            }
        }

        state = match state {
            State::Running(mut tree) => {
                if let Some(exit) = tree.leader_exit() {
                    status = crate::tree::status::exit_code(exit.status);
                    let how = crate::tree::status::describe(exit.status);
                    note(&format!("{} (pid {}) {how}", program(&cfg), tree.leader()));
                    // The daemon is its tree: what it leaves behind goes
                    // with it.
                    tree.kill(KILL_WAIT);
                    drop(tree);
                    if let Some(s) = start.take() {
                        let when = if check.is_some() {
                            "before it was ready".to_string()
                        } else {
                            format!(
                                "within {} of its start",
                                humantime::format_duration(MIN_LIFE)
                            )
                        };
                        let why = format!("{} {how} {when}", program(&cfg));
                        finish(pidfile, 1, check.take(), output.as_mut(), Some((s, why)));
                    }
                    match after_death(&mut backoff, &pidfile) {
                        Some(s) => s,
                        None => finish(pidfile, status, check.take(), output.as_mut(), None),
                    }
                } else if let Some(t) = stop {
                    if let Some(s) = &mut start {
                        s.failed = Some("stopped before the program was ready".to_string());
                        check = None;
                    }
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
                } else if let Some(s) = start.as_mut().filter(|s| s.failed.is_none()) {
                    let why = match (&progress, &check) {
                        (Progress::Failed(why), _) => {
                            Some(format!("readiness check failed: {why}"))
                        }
                        (Progress::Ready, _) => None,
                        (Progress::Pending, _) if Instant::now() < s.by => None,
                        (Progress::Pending, Some(c)) => Some(format!(
                            "not ready within {} ({}{})",
                            humantime::format_duration(round_ms(cfg.ready_timeout)),
                            c.describe(),
                            c.detail().map(|d| format!(": {d}")).unwrap_or_default()
                        )),
                        // Lived its first moments: started.
                        (Progress::Pending, None) => None,
                    };
                    let decided = progress != Progress::Pending || Instant::now() >= s.by;
                    match why {
                        None if decided => {
                            let s = start.take().expect("a start to decide");
                            started(s, tree.leader().as_raw(), me);
                            // Only a notify socket outlives the start (a
                            // restarted program gets it too, and later
                            // messages find it open).
                            if check.as_ref().is_none_or(|c| c.env().is_empty()) {
                                check = None;
                            }
                            State::Running(tree)
                        }
                        None => State::Running(tree),
                        Some(why) => {
                            note(&format!(
                                "{why}: SIGTERM to the tree of pid {}, SIGKILL after {}",
                                tree.leader(),
                                humantime::format_duration(FAILED_START_GRACE)
                            ));
                            s.failed = Some(why);
                            check = None;
                            tree.signal(Signal::SIGTERM);
                            State::Stopping {
                                tree,
                                kill_at: Instant::now() + FAILED_START_GRACE,
                            }
                        }
                    }
                } else {
                    State::Running(tree)
                }
            }
            State::Stopping { mut tree, kill_at } => {
                let kill_at = stop.map_or(kill_at, |t| kill_at.min(Instant::now() + t));
                let failed = |start: Option<Start>| {
                    start.map(|s| {
                        let why = s.failed.clone().unwrap_or_default();
                        (s, why)
                    })
                };
                if tree.is_empty() {
                    drop(tree);
                    finish(pidfile, 0, check.take(), output.as_mut(), failed(start));
                } else if Instant::now() >= kill_at {
                    tree.kill(KILL_WAIT);
                    drop(tree);
                    finish(pidfile, 0, check.take(), output.as_mut(), failed(start));
                } else {
                    State::Stopping { tree, kill_at }
                }
            }
            State::Backoff { until } => {
                if stop.is_some() {
                    finish(pidfile, status, check.take(), output.as_mut(), None);
                } else if Instant::now() < until {
                    State::Backoff { until }
                } else {
                    match spawn(&cfg, &env, output.as_ref()) {
                        Ok(tree) => {
                            if let Some(b) = &mut backoff {
                                b.started(Instant::now());
                            }
                            if let Some(pf) = &pidfile
                                && let Err(e) = pf.write_pid(tree.leader().as_raw())
                            {
                                // The daemon runs; the file stays empty
                                // (its lock still names the monitor).
                                note(&format!(
                                    "cannot write pidfile {}: {e}; it stays empty until the next restart",
                                    pf.path().display()
                                ));
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
                                None => finish(pidfile, 1, check.take(), output.as_mut(), None),
                            }
                        }
                    }
                }
            }
        };
    }
}

/// Tells the caller the program has started and lets it go.
/// From here the monitor only waits: it gives back its start-up pages.
fn started(mut s: Start, pid: i32, monitor: i32) {
    let _ = s.report.write_all(report_started(pid, monitor).as_bytes());
    crate::idle::shed_startup_pages();
}

/// Reaps every exited child (`wait4(-1, WNOHANG)` until none), handing
/// the leader's status to the tree and the check command's to the check;
/// other children (adopted orphans) are just reaped.
fn reap_children(mut tree: Option<&mut Tree>, mut check: Option<&mut ReadyCheck>) {
    while let Ok(Some((pid, status, rusage))) = sys::wait4_any() {
        if let Some(t) = tree.as_deref_mut()
            && t.leader().as_raw() == pid
        {
            t.set_leader_exit(status, rusage);
        } else if let Some(c) = check.as_deref_mut()
            && c.child_pid() == Some(pid)
        {
            c.on_child_exit(status);
        }
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

fn spawn(
    cfg: &Config,
    env: &[(OsString, OsString)],
    output: Option<&Output>,
) -> Result<Tree, TreeError> {
    let mut cmd = std::process::Command::new(&cfg.argv[0]);
    cmd.args(&cfg.argv[1..]);
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    if let Some(o) = output {
        let (out, err) = o.stdio().map_err(|e| TreeError::Spawn {
            program: program(cfg),
            source: e,
        })?;
        cmd.stdout(out).stderr(err);
    }
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
    let mut set = crate::tree::signals::set_of(&CONTROL);
    set.add(Signal::SIGCHLD);
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&set), None)?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
}

/// Waits for a signal, the lifeline's hang-up, one of the `extra` fds
/// (the readiness check's, the output pipes), or the timeout (`None`: no
/// timeout at all). Returns true when the lifeline broke.
fn wait(
    signals: &SignalFd,
    lifeline: Option<&OwnedFd>,
    extra: &[(RawFd, PollFlags)],
    timeout: Option<Duration>,
) -> bool {
    let t = match timeout {
        None => PollTimeout::NONE,
        Some(d) => {
            // Round up so a deadline is never polled for in a busy loop.
            let ms = d.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
        }
    };
    let mut fds = Vec::with_capacity(2 + extra.len());
    if let Some(l) = lifeline {
        fds.push(PollFd::new(l.as_fd(), PollFlags::POLLIN));
    }
    fds.push(PollFd::new(signals.as_fd(), PollFlags::POLLIN));
    for &(fd, ev) in extra {
        // SAFETY: the fds belong to the check and the output pipes, which
        // outlive this call.
        fds.push(PollFd::new(unsafe { BorrowedFd::borrow_raw(fd) }, ev));
    }
    // EINTR (or any error) just goes round the loop again.
    let _ = poll(&mut fds, t);
    lifeline.is_some()
        && fds
            .first()
            .and_then(|f| f.revents())
            .is_some_and(|r| !r.is_empty())
}

fn program(cfg: &Config) -> String {
    cfg.argv[0].to_string_lossy().into_owned()
}

/// The pid log lines name: the monitor users know (the lock holder).
static MONITOR: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// One timestamped line on the monitor's stderr (the daemon's `--stderr`
/// or `--log` file, else /dev/null).
pub(crate) fn note(msg: &str) {
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

/// The end: stops the readiness check, copies the last of the
/// program's output, removes the pidfile (releasing its lock last), tells a caller still waiting why
/// the start failed, and exits.
fn finish(
    pidfile: Option<Pidfile>,
    status: i32,
    check: Option<ReadyCheck>,
    output: Option<&mut Output>,
    failed: Option<(Start, String)>,
) -> ! {
    // A check command still running goes too (exit runs no destructor).
    drop(check);
    if let Some(o) = output {
        o.drain();
    }
    if let Some(pf) = pidfile {
        let _ = pf.remove();
    }
    if let Some((mut s, why)) = failed {
        let _ = s.report.write_all(report_failed(1, &why).as_bytes());
        std::process::exit(1);
    }
    std::process::exit(status)
}
