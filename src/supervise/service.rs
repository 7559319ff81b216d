//! One service: its runs, its state, and what happens when it ends.
//!
//! Each run of a service is one [`Tree`]: the leader gets its own
//! process group, a cgroup where one is writable, `PR_SET_PDEATHSIG`
//! (SIGKILL), its stdout and stderr on pipes the supervisor reads into
//! the service's log, and `/dev/null` as stdin. Stopping is the tree
//! layer's: `stop_signal` to every member, `stop_timeout`, then SIGKILL
//! to whatever is left, escapees included. A run ends when its leader
//! exits: what the leader left behind is killed with it (the service is
//! its tree), the output still in the pipes is read to the end, and the
//! restart policy decides what comes next.
//!
//! The states are the ones `sexton status` shows:
//!
//! | state | meaning |
//! |---|---|
//! | `starting` | to be started, waiting for its dependencies to be ready |
//! | `running` | started; no readiness check, or not ready yet |
//! | `ready` | its readiness check passed |
//! | `backoff` | ended, to be started again after a wait |
//! | `stopping` | the stop signal went out; SIGKILL at `stop_timeout` |
//! | `stopped` | stopped on request (or a dependency failed: `reason`) |
//! | `exited` | ended, and the restart policy says not to start it again |
//! | `failed` | hit the crash-loop limit, or cannot be started (`reason`) |

use super::config::{Restart, Service};
use super::control::{LastExit, ServiceStatus};
use super::logs::{LogSink, Stream};
use super::ready::{Progress, ReadyCheck};
use crate::daemon::respawn::{Backoff, Respawn, Verdict};
use crate::pipes::{self, Got};
use crate::tree::{ChildSetup, SignalState, Tracking, Tree};
use nix::poll::PollFlags;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

/// How long the final SIGKILL may take to empty a service's tree.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// A service without a readiness check counts as up once it has run
/// this long: a program that dies at once (a typo in its arguments, a
/// port in use) is a failed start, not a service that is up.
pub const START_GRACE: Duration = Duration::from_millis(200);

/// The state of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Starting,
    Running,
    Ready,
    Backoff,
    Stopping,
    Stopped,
    Exited,
    Failed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Running => "running",
            State::Ready => "ready",
            State::Backoff => "backoff",
            State::Stopping => "stopping",
            State::Stopped => "stopped",
            State::Exited => "exited",
            State::Failed => "failed",
        }
    }

    /// Not running and not about to: nothing of it is alive.
    pub fn is_down(self) -> bool {
        matches!(self, State::Stopped | State::Exited | State::Failed)
    }
}

/// What comes after a stop that was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// `stopped` (`sexton stop`, shutdown, a removed service).
    Stay,
    /// Started again at once (`sexton restart`, a changed service).
    Start,
}

/// One run of a service.
struct Run {
    tree: Tree,
    started: Instant,
    /// The read ends of the service's stdout and stderr (`None` at EOF).
    out: [Option<OwnedFd>; 2],
    ready: Option<ReadyCheck>,
}

/// A supervised service.
pub struct Svc {
    pub cfg: Service,
    state: State,
    run: Option<Run>,
    restarts: u32,
    last_exit: Option<ExitStatus>,
    reason: Option<String>,
    backoff: Backoff,
    /// Backoff: when to start again. Stopping: when to SIGKILL.
    until: Option<Instant>,
    /// Set while a requested stop is under way.
    then: Option<Then>,
    log: LogSink,
    /// Complete output lines since the last [`Svc::take_lines`], for the
    /// foreground printer.
    lines: Vec<Vec<u8>>,
    /// The run's `status` text from sd_notify, if any.
    status_text: Option<String>,
}

fn policy(cfg: &Service) -> Respawn {
    Respawn {
        backoff: cfg.backoff_initial,
        backoff_max: cfg.backoff_max,
        limit: cfg.start_limit_burst,
        interval: cfg.start_limit_interval,
        healthy_after: cfg.backoff_initial.saturating_mul(10),
    }
}

impl Svc {
    /// A service not started yet, its log open.
    pub fn new(cfg: Service, log: LogSink) -> Svc {
        Svc {
            backoff: Backoff::new(policy(&cfg)),
            cfg,
            state: State::Stopped,
            run: None,
            restarts: 0,
            last_exit: None,
            reason: None,
            until: None,
            then: None,
            log,
            lines: Vec::new(),
            status_text: None,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// Ready for its dependents: its check passed, or it has none and has
    /// run for [`START_GRACE`].
    pub fn is_up(&self) -> bool {
        self.state == State::Ready
            || (self.state == State::Running
                && self.cfg.ready.is_none()
                && self
                    .run
                    .as_ref()
                    .is_some_and(|r| r.started.elapsed() >= START_GRACE))
    }

    /// The leader's pid while a run is alive.
    pub fn pid(&self) -> Option<i32> {
        self.run
            .as_ref()
            .filter(|r| r.tree.leader_exit().is_none())
            .map(|r| r.tree.leader().as_raw())
    }

    /// The tree of the current run (to record it, or to hand it a status).
    pub fn tree_mut(&mut self) -> Option<&mut Tree> {
        self.run.as_mut().map(|r| &mut r.tree)
    }

    /// Writes a supervisor line into the service's log (and among the
    /// lines the foreground shows).
    pub fn note(&mut self, msg: &str) {
        self.log.note(msg);
        self.lines.push(format!("[sexton] {msg}").into_bytes());
    }

    /// The service's log error, while writing it fails.
    pub fn log_error(&self) -> Option<String> {
        self.log.last_error()
    }

    /// Lines of output since the last call.
    pub fn take_lines(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.lines)
    }

    /// Wants to be up: `starting` until its dependencies are up (a
    /// `failed` service is cleared, its crash-loop history forgotten).
    pub fn want_up(&mut self) {
        match self.state {
            State::Stopped | State::Exited | State::Failed => {
                self.state = State::Starting;
                self.reason = None;
                self.backoff = Backoff::new(policy(&self.cfg));
            }
            State::Stopping => self.then = Some(Then::Start),
            _ => {}
        }
    }

    /// Leaves `starting` for `stopped` with `reason`: a dependency failed.
    pub fn blocked(&mut self, reason: String) {
        if self.state == State::Starting {
            self.note(&reason);
            self.state = State::Stopped;
            self.reason = Some(reason);
        }
    }

    /// Starts a run now. A start that fails (program not found, no such
    /// user) counts as a run that ended at once.
    pub fn start(&mut self, now: Instant) {
        self.until = None;
        self.then = None;
        match self.spawn() {
            Ok(run) => {
                self.note(&format!(
                    "started (pid {}, {} tracking)",
                    run.tree.leader(),
                    run.tree.mode().as_str()
                ));
                self.run = Some(run);
                self.state = State::Running;
                self.status_text = None;
                self.backoff.started(now);
            }
            Err(e) => {
                self.note(&format!("cannot start: {e}"));
                self.backoff.started(now);
                self.reason = Some(format!("cannot start: {e}"));
                self.after_end(now, None);
            }
        }
    }

    fn spawn(&mut self) -> std::io::Result<Run> {
        let cfg = &self.cfg;
        let ready = ReadyCheck::for_service(cfg, Tracking::Auto).map_err(std::io::Error::other)?;
        let mut cmd = std::process::Command::new(&cfg.argv[0]);
        cmd.args(&cfg.argv[1..]).current_dir(&cfg.cwd);
        for (k, v) in &cfg.env {
            cmd.env(k, v);
        }
        if let Some(r) = &ready {
            for (k, v) in r.env() {
                cmd.env(k, v);
            }
        }
        let (out_r, out_w, _) = pipes::pipe_pair()?;
        let (err_r, err_w, _) = pipes::pipe_pair()?;
        cmd.stdin(std::process::Stdio::null())
            .stdout(out_w)
            .stderr(err_w);
        let setup = ChildSetup {
            signals: SignalState::default(),
            reset_dispositions: true,
            parent_death_signal: Some(nix::sys::signal::Signal::SIGKILL),
            credentials: cfg.user.as_ref().and_then(|u| u.credentials()),
            ..ChildSetup::default()
        };
        let tree = Tree::spawn(&mut cmd, Tracking::Auto, setup).map_err(std::io::Error::other)?;
        Ok(Run {
            tree,
            // Taken after the spawn, not at the loop's wakeup: starting a
            // hundred services takes a while, and the grace of the last
            // one must not have passed before it even started.
            started: Instant::now(),
            out: [Some(out_r), Some(err_r)],
            ready,
        })
    }

    /// Asks the service to stop, then `then`. A run gets `stop_signal`
    /// to every member of its tree and `stop_timeout` to end.
    pub fn stop(&mut self, now: Instant, then: Then) {
        match self.state {
            State::Running | State::Ready => {
                let Some(run) = self.run.as_mut() else { return };
                let sig = self.cfg.stop_signal;
                run.tree.signal_each(sig);
                self.until = now.checked_add(self.cfg.stop_timeout);
                self.then = Some(then);
                self.state = State::Stopping;
                self.note(&format!(
                    "stopping: {} to the whole tree, SIGKILL after {}",
                    crate::parse::signal_name_of(sig),
                    humantime::format_duration(self.cfg.stop_timeout)
                ));
            }
            State::Stopping => {
                self.then = Some(match (self.then, then) {
                    (Some(Then::Start), Then::Start) => Then::Start,
                    _ => then,
                });
            }
            State::Starting | State::Backoff => {
                self.until = None;
                self.state = State::Stopped;
                self.reason = None;
                if then == Then::Start {
                    self.want_up();
                }
            }
            State::Stopped | State::Exited | State::Failed => {
                if then == Then::Start {
                    self.want_up();
                }
            }
        }
    }

    /// The descriptors of this service to poll, with what each waits for.
    pub fn poll_fds(&self) -> Vec<(RawFd, PollFlags)> {
        let mut v = Vec::new();
        if let Some(run) = &self.run {
            if let Some(fd) = run.tree.leader_fd() {
                v.push((fd.as_raw_fd(), PollFlags::POLLIN));
            }
            for fd in run.out.iter().flatten() {
                v.push((fd.as_raw_fd(), PollFlags::POLLIN));
            }
            if let Some(r) = &run.ready
                && self.state == State::Running
            {
                v.extend(r.poll_fds());
            }
        }
        v
    }

    /// The next timer of this service.
    pub fn deadline(&self) -> Option<Instant> {
        let ready = self
            .run
            .as_ref()
            .filter(|_| self.state == State::Running)
            .and_then(|r| r.ready.as_ref())
            .and_then(|r| r.deadline());
        // The moment a service without a check counts as up.
        let grace = self
            .run
            .as_ref()
            .filter(|_| self.state == State::Running && self.cfg.ready.is_none())
            .map(|r| r.started + START_GRACE)
            .filter(|&t| t > Instant::now());
        [self.until, ready, grace].into_iter().flatten().min()
    }

    /// A child of the supervisor was reaped: true if it was this
    /// service's (its leader, or its readiness command).
    pub fn on_reaped(&mut self, pid: i32, status: i32, rusage: crate::sys::Rusage) -> bool {
        let Some(run) = self.run.as_mut() else {
            return false;
        };
        if run.tree.leader().as_raw() == pid {
            run.tree.set_leader_exit(status, rusage);
            return true;
        }
        if let Some(r) = run.ready.as_mut()
            && r.child_pid() == Some(pid)
        {
            r.on_child_exit(status);
            return true;
        }
        false
    }

    /// Moves whatever the service wrote into its log; returns the
    /// complete lines (also kept for [`Svc::take_lines`]) after feeding
    /// each to a `ready_log` check.
    pub fn read_output(&mut self) {
        self.read_output_upto(16);
    }

    /// [`Svc::read_output`], at most `reads` reads per pipe (`usize::MAX`:
    /// until the pipe is empty).
    fn read_output_upto(&mut self, reads: usize) {
        let Some(run) = self.run.as_mut() else { return };
        let mut buf = [0u8; 16384];
        let mut fresh: Vec<Vec<u8>> = Vec::new();
        for (i, stream) in [(0, Stream::Out), (1, Stream::Err)] {
            let Some(fd) = run.out[i].as_ref() else {
                continue;
            };
            // A bounded number of reads per wakeup, so one chatty service
            // cannot starve the others.
            let mut eof = false;
            for _ in 0..reads {
                match pipes::read_available(fd.as_fd(), &mut buf) {
                    Got::Data(n) => fresh.extend(self.log.feed(stream, &buf[..n])),
                    Got::Nothing => break,
                    Got::Eof => {
                        eof = true;
                        break;
                    }
                }
            }
            if eof {
                fresh.extend(self.log.finish(stream));
                run.out[i] = None;
            }
        }
        // Only the service's own lines can make it ready (never the
        // supervisor's notes).
        if self.state == State::Running
            && let Some(r) = run.ready.as_mut()
            && fresh.iter().any(|line| r.on_line(line) == Progress::Ready)
        {
            self.state = State::Ready;
            self.status_text = r.status_text().map(str::to_string);
            run.ready = None;
            self.lines.extend(fresh);
            self.note("ready");
            return;
        }
        self.lines.extend(fresh);
    }

    /// Advances the timers and the readiness check, and ends a run whose
    /// leader has exited. `deps_up` says whether every dependency is up.
    pub fn tick(&mut self, now: Instant, deps: DepState) {
        match self.state {
            State::Starting => match deps {
                DepState::Up => self.start(now),
                DepState::Failed(name) => self.blocked(format!("dependency {name} failed")),
                DepState::Waiting => {}
            },
            State::Backoff if self.until.is_some_and(|t| now >= t) => {
                self.until = None;
                self.state = State::Starting;
                self.tick(now, deps);
            }
            State::Stopping if self.until.is_some_and(|t| now >= t) => {
                self.until = None;
                if let Some(run) = self.run.as_mut() {
                    let n = run.tree.kill(KILL_WAIT).len();
                    self.note(&format!("stop_timeout passed: SIGKILL to {n} process(es)"));
                }
            }
            State::Running => {
                let Some(run) = self.run.as_mut() else { return };
                let Some(r) = run.ready.as_mut() else {
                    return self.end_if_exited(now);
                };
                match r.step(now) {
                    Progress::Ready => {
                        self.state = State::Ready;
                        self.status_text = r.status_text().map(str::to_string);
                        run.ready = None;
                        self.note("ready");
                    }
                    Progress::Failed(why) => {
                        run.ready = None;
                        let why = format!("readiness check cannot go on: {why}");
                        self.note(&why);
                        self.reason = Some(why);
                    }
                    Progress::Pending => {}
                }
            }
            _ => {}
        }
        self.end_if_exited(now);
    }

    /// Ends the run if its leader has exited.
    fn end_if_exited(&mut self, now: Instant) {
        let ended = self
            .run
            .as_ref()
            .is_some_and(|r| r.tree.leader_exit().is_some());
        if ended {
            self.end_run(now);
        }
    }

    /// The leader exited: the rest of the tree goes with it, the output
    /// is read to its end, and the restart policy decides.
    fn end_run(&mut self, now: Instant) {
        let Some(mut run) = self.run.take() else {
            return;
        };
        let Some(exit) = run.tree.leader_exit() else {
            self.run = Some(run);
            return;
        };
        let killed = run.tree.kill(KILL_WAIT);
        let left: Vec<i32> = killed
            .into_iter()
            .filter(|&p| p != run.tree.leader().as_raw())
            .collect();
        // Every writer of the pipes is dead now: what they hold is the
        // last of the output. (A writer outside the tree, if any, is cut.)
        self.run = Some(run);
        self.read_output_upto(usize::MAX);
        let mut run = self.run.take().expect("the run was just put back");
        for (i, stream) in [(0, Stream::Out), (1, Stream::Err)] {
            if run.out[i].take().is_some()
                && let Some(last) = self.log.finish(stream)
            {
                self.lines.push(last);
            }
        }
        run.tree.settle(Duration::from_millis(100));
        run.tree.release();
        let ran = now.saturating_duration_since(run.started);
        self.last_exit = Some(exit.status);
        let mut msg = format!(
            "pid {} {} after {}",
            run.tree.leader(),
            crate::tree::status::describe(exit.status),
            humantime::format_duration(Duration::from_millis(ran.as_millis() as u64))
        );
        if !left.is_empty() {
            msg.push_str(&format!(
                "; killed {} process(es) it left behind",
                left.len()
            ));
        }
        self.note(&msg);
        drop(run);
        self.after_end(now, Some(exit.status));
    }

    /// After a run ended (or could not start): stopped, started again,
    /// backoff, exited or failed.
    fn after_end(&mut self, now: Instant, status: Option<ExitStatus>) {
        if let Some(then) = self.then.take() {
            self.until = None;
            match then {
                Then::Stay => {
                    self.state = State::Stopped;
                    self.note("stopped");
                }
                Then::Start => {
                    self.restarts += 1;
                    self.state = State::Starting;
                }
            }
            return;
        }
        let failed = status.is_none_or(|s| !s.success());
        let again = match self.cfg.restart {
            Restart::Always => true,
            Restart::OnFailure => failed,
            Restart::Never => false,
        };
        if !again {
            self.state = if status.is_none() {
                State::Failed
            } else {
                State::Exited
            };
            return;
        }
        match self.backoff.died(now) {
            Verdict::RestartIn(wait) => {
                self.restarts += 1;
                self.state = State::Backoff;
                self.until = now.checked_add(wait);
                self.note(&format!(
                    "restarting in {}",
                    humantime::format_duration(Duration::from_millis(wait.as_millis() as u64))
                ));
            }
            Verdict::GiveUp { starts } => {
                // A start that failed says why (no fd or process left):
                // the status keeps it.
                let last = match (status, &self.reason) {
                    (None, Some(r)) => format!(" (last: {r})"),
                    _ => String::new(),
                };
                let why = format!(
                    "crash loop: {starts} starts within {} all ended{last}; not restarting (use 'sexton start {}')",
                    humantime::format_duration(self.cfg.start_limit_interval),
                    self.cfg.name
                );
                self.note(&why);
                self.state = State::Failed;
                self.reason = Some(why);
            }
        }
    }

    /// Kills the current run at once (the supervisor is going away
    /// without a graceful stop: its guard died).
    pub fn kill_now(&mut self) {
        if let Some(run) = self.run.as_mut() {
            run.tree.kill(KILL_WAIT);
        }
        self.run = None;
    }

    /// The service as `sexton status` shows it.
    pub fn status(&self, now: Instant) -> ServiceStatus {
        use std::os::unix::process::ExitStatusExt;
        ServiceStatus {
            name: self.cfg.name.clone(),
            state: self.state.as_str().to_string(),
            pid: self.pid(),
            uptime_s: self
                .run
                .as_ref()
                .filter(|_| self.pid().is_some())
                .map(|r| (now.saturating_duration_since(r.started).as_millis() as f64) / 1000.0),
            restarts: self.restarts,
            last_exit: self.last_exit.map(|s| match (s.code(), s.signal()) {
                (Some(c), _) => LastExit::Code(c),
                (None, Some(n)) => LastExit::Signal(crate::parse::signal_name_of(n).into_owned()),
                _ => LastExit::Code(-1),
            }),
            reason: self.reason.clone(),
            status_text: self.status_text.clone(),
            log_error: self.log.last_error(),
        }
    }

    /// The leader as the state file records it.
    pub fn leader_record(&self) -> Option<super::state::Leader> {
        let run = self.run.as_ref()?;
        let pid = self.pid()?;
        let start_time = crate::procfs::process(pid)?.start_time;
        Some(super::state::Leader {
            pid,
            start_time,
            pgid: pid,
            cgroup: run.tree.cgroup_path().map(|p| p.to_path_buf()),
        })
    }
}

/// What the dependencies of a service say about starting it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DepState {
    /// Every dependency is up.
    Up,
    /// At least one is not up yet.
    Waiting,
    /// This one failed (or was stopped): the service cannot start.
    Failed(String),
}
