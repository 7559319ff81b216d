//! The supervisor's one event loop.
//!
//! A fixed kind of fds — a signalfd (TERM, INT, QUIT, HUP, CHLD; USR1
//! and USR2 read and ignored), the
//! control socket and its connections, for each service its leader's
//! pidfd, its two output pipes and its readiness check's fds, and the
//! lifeline from the guard — and one deadline (the nearest backoff,
//! stop timeout or readiness retry), polled with `poll(2)`. Nothing
//! polls on a clock: with every service up and quiet, the loop sleeps
//! until something happens.
//!
//! Each wakeup: reap every exited child (`wait4(-1)`, each status handed
//! to the service that owns the pid), move output into the logs, advance
//! each service (its dependencies decide whether a `starting` service may
//! start), answer the control requests whose work is done, and record the
//! running leaders in `state.json`.
//!
//! Shutdown (SIGTERM, SIGINT, `sexton down`) stops services in reverse
//! dependency order: a service is stopped once nothing that depends on
//! it is still running. When the guard above this process dies (the
//! supervisor was killed, even with SIGKILL) every service tree is
//! killed at once.

use super::config::Config;
use super::control::{ClientId, Request, Response, Server, Status};
use super::logs::{LogSink, Printer};
use super::service::{DepState, State, Svc, Then};
use super::state::{Record, StateDir};
use crate::tree::signals;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// Errors that keep a supervisor from running.
#[derive(Debug, thiserror::Error)]
pub enum SuperviseError {
    #[error("cannot set up {what}: {source}")]
    Setup {
        what: &'static str,
        #[source]
        source: io::Error,
    },
}

/// What a control request waits for before it is answered.
#[derive(Debug)]
enum Wait {
    /// Every named service up, or failed.
    Up(Vec<String>),
    /// Every named service down.
    Down(Vec<String>),
}

/// How `sexton up` shows the services' output.
pub struct Foreground {
    pub printer: Printer,
    /// Lines the terminal could not take at once (kept in the logs).
    pub dropped: u64,
}

/// A running supervisor.
pub struct Supervisor {
    config: Config,
    dir: StateDir,
    /// The pid users know (the pidfile's lock holder).
    me: i32,
    svcs: BTreeMap<String, Svc>,
    server: Server,
    signals: SignalFd,
    lifeline: Option<OwnedFd>,
    foreground: Option<Foreground>,
    pending: Vec<(ClientId, Wait)>,
    /// Shutting down; the `down` requests to answer at the end.
    shutdown: Option<Vec<ClientId>>,
    /// `up -d`: the pipe to the caller, written once every service is up
    /// or has failed.
    report: Option<std::fs::File>,
    /// Every service came up (or failed) once: start-up pages given back.
    settled: bool,
    record: Record,
    /// Services a reload removed, dropped once they are down.
    removed: Vec<String>,
    /// The log error last reported on stderr, per service.
    log_errors: BTreeMap<String, Option<String>>,
    /// Why `state.json` could not be written (a full disk), until it can.
    record_error: Option<String>,
    /// When to try writing it again while it cannot be.
    record_retry: Option<Instant>,
}

impl Supervisor {
    /// Sets up the loop: signals, the control socket, every service's
    /// log. Nothing is started yet.
    pub fn new(
        config: Config,
        dir: StateDir,
        me: i32,
        lifeline: Option<OwnedFd>,
        foreground: Option<Foreground>,
    ) -> Result<Supervisor, SuperviseError> {
        let setup = |what| move |source| SuperviseError::Setup { what, source };
        // USR1 and USR2 are taken and ignored: their default action
        // would end the supervisor and, through the lifeline, SIGKILL
        // every service (a log rotation script's `kill -USR1` to a
        // daemon's pid is a common reflex).
        let set = signals::set_of(&[
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGQUIT,
            Signal::SIGHUP,
            Signal::SIGCHLD,
            Signal::SIGUSR1,
            Signal::SIGUSR2,
        ]);
        let signals = signals::block(&set).map_err(|e| SuperviseError::Setup {
            what: "signal handling",
            source: e.into(),
        })?;
        raise_fd_limit();
        let server = Server::bind(&dir.path).map_err(setup("the control socket"))?;
        let logs = dir.logs(config.log_dir.as_deref());
        let mut svcs = BTreeMap::new();
        for (name, cfg) in &config.services {
            let log = LogSink::open(&logs, name, cfg.log_max_size, cfg.log_keep)
                .map_err(setup("the service logs"))?;
            svcs.insert(name.clone(), Svc::new(cfg.clone(), log));
        }
        Ok(Supervisor {
            record: Record {
                supervisor: me,
                worker: std::process::id() as i32,
                services: BTreeMap::new(),
            },
            config,
            dir,
            me,
            svcs,
            server,
            signals,
            lifeline,
            foreground,
            pending: Vec::new(),
            shutdown: None,
            report: None,
            settled: false,
            removed: Vec::new(),
            log_errors: BTreeMap::new(),
            record_error: None,
            record_retry: None,
        })
    }

    /// `up -d`: the pipe to the caller, told once every service is up or
    /// has failed (a supervisor that could not even be set up tells it
    /// why itself, on the same pipe).
    pub fn report_to(mut self, report: std::fs::File) -> Supervisor {
        self.report = Some(report);
        self
    }

    /// Starts every service and runs until shutdown; returns the exit
    /// status (0 after a clean shutdown).
    pub fn run(mut self) -> i32 {
        for s in self.svcs.values_mut() {
            s.want_up();
        }
        loop {
            let now = Instant::now();
            self.reap();
            self.drive(now);
            self.show_output();
            self.report_log_errors();
            self.answer_pending();
            self.report_when_settled();
            self.save_record(now);
            if let Some(ids) = &self.shutdown
                && self.svcs.values().all(|s| s.state().is_down())
            {
                // The state goes before the answer: whoever asked for the
                // shutdown finds none of it left once answered.
                let _ = std::fs::remove_file(self.dir.record());
                let _ = std::fs::remove_file(self.dir.socket());
                for id in ids.clone() {
                    self.server
                        .respond(id, &Response::ok(Some("stopped".into())));
                }
                return 0;
            }
            if self.wait(now) {
                // The guard is gone: nobody is left to answer to.
                for s in self.svcs.values_mut() {
                    s.note("the supervisor was killed: killing the service");
                    s.kill_now();
                }
                let _ = std::fs::remove_file(self.dir.record());
                let _ = std::fs::remove_file(self.dir.socket());
                return 1;
            }
        }
    }

    /// Reaps every exited child and hands each status to its service.
    fn reap(&mut self) {
        while let Ok(Some((pid, status, rusage))) = crate::sys::wait4_any() {
            for s in self.svcs.values_mut() {
                if s.on_reaped(pid, status, rusage) {
                    break;
                }
            }
        }
    }

    /// Advances every service, in start order so that a dependency's
    /// change is seen by its dependents in the same pass.
    fn drive(&mut self, now: Instant) {
        if self.shutdown.is_some() {
            self.stop_in_order(now, None);
        }
        let mut order: Vec<String> = self
            .config
            .start_order()
            .into_iter()
            .map(str::to_string)
            .collect();
        // Services a reload removed are no longer in the config's order.
        order.extend(self.removed.iter().cloned());
        // Passes until nothing changes: a run that ended in one pass may
        // start again (restart) or let a dependent go in the next, and
        // the loop must not sleep with work left.
        for _ in 0..16 {
            let before: Vec<State> = self.svcs.values().map(Svc::state).collect();
            for name in &order {
                let deps = self.deps_of(name);
                if let Some(s) = self.svcs.get_mut(name) {
                    s.tick(now, deps);
                }
            }
            if self.shutdown.is_some() {
                self.stop_in_order(now, None);
            }
            let after: Vec<State> = self.svcs.values().map(Svc::state).collect();
            if before == after {
                break;
            }
        }
        let svcs = &mut self.svcs;
        self.removed.retain(|n| {
            let down = svcs.get(n).is_none_or(|s| s.state().is_down());
            if down {
                svcs.remove(n);
            }
            !down
        });
    }

    /// Whether `name`'s dependencies let it start.
    fn deps_of(&self, name: &str) -> DepState {
        let Some(s) = self.svcs.get(name) else {
            return DepState::Waiting;
        };
        for d in &s.cfg.depends_on {
            match self.svcs.get(d) {
                Some(dep) if dep.is_up() => {}
                Some(dep)
                    if matches!(dep.state(), State::Failed | State::Exited | State::Stopped) =>
                {
                    return DepState::Failed(d.clone());
                }
                _ => return DepState::Waiting,
            }
        }
        DepState::Up
    }

    /// Stops the services of `only` (all when `None`), dependents first:
    /// a service is asked to stop once every service depending on it is
    /// down.
    fn stop_in_order(&mut self, now: Instant, only: Option<&[String]>) {
        let order: Vec<String> = self
            .config
            .stop_order()
            .into_iter()
            .map(str::to_string)
            .collect();
        for name in order {
            if only.is_some_and(|o| !o.contains(&name)) {
                continue;
            }
            let dependents_down = self
                .svcs
                .values()
                .filter(|s| s.cfg.depends_on.contains(&name))
                .all(|s| s.state().is_down() || only.is_some_and(|o| !o.contains(&s.cfg.name)));
            if !dependents_down {
                continue;
            }
            if let Some(s) = self.svcs.get_mut(&name)
                && !s.state().is_down()
                && s.state() != State::Stopping
            {
                s.stop(now, Then::Stay);
            }
        }
    }

    /// Says on stderr when a service's log starts or stops failing (a full
    /// disk): the service goes on either way, and `status` shows it too.
    fn report_log_errors(&mut self) {
        for (name, s) in &self.svcs {
            let now = s.log_error();
            let before = self.log_errors.get(name).cloned().flatten();
            if now != before {
                match &now {
                    Some(e) => eprintln!("sexton: service {name}: log: {e}"),
                    None => eprintln!("sexton: service {name}: log: writing again"),
                }
                self.log_errors.insert(name.clone(), now);
            }
        }
    }

    /// Prints the new output lines in the foreground (`name | line`).
    /// The terminal never holds the loop up: a line it cannot take at
    /// once is dropped there (the log keeps it).
    fn show_output(&mut self) {
        let mut out = std::io::stdout().lock();
        for s in self.svcs.values_mut() {
            let lines = s.take_lines();
            let Some(fg) = self.foreground.as_mut() else {
                continue;
            };
            for line in lines {
                let mut text = fg.printer.format(s.name(), &line);
                // At most PIPE_BUF, so a write after POLLOUT cannot block.
                text.truncate(4096);
                if text.last() != Some(&b'\n') {
                    text.push(b'\n');
                }
                if writable(out.as_fd()) && out.write_all(&text).is_ok() {
                    continue;
                }
                fg.dropped += 1;
            }
        }
        let _ = out.flush();
    }

    /// Answers the requests whose work is done.
    fn answer_pending(&mut self) {
        let mut still = Vec::new();
        for (id, wait) in std::mem::take(&mut self.pending) {
            if !self.server.connected(id) {
                // Its client went away: nobody to answer.
                continue;
            }
            let done = match &wait {
                Wait::Up(names) => names.iter().all(|n| {
                    self.svcs.get(n).is_none_or(|s| {
                        s.is_up()
                            || matches!(s.state(), State::Failed | State::Exited | State::Stopped)
                    })
                }),
                Wait::Down(names) => names
                    .iter()
                    .all(|n| self.svcs.get(n).is_none_or(|s| s.state().is_down())),
            };
            if !done {
                still.push((id, wait));
                continue;
            }
            let resp = match &wait {
                Wait::Up(names) => {
                    let bad: Vec<String> = names
                        .iter()
                        .filter(|n| self.svcs.get(*n).is_some_and(|s| !s.is_up()))
                        .map(|n| {
                            let s = &self.svcs[n];
                            let st = s.status(Instant::now());
                            format!(
                                "{n} is {}{}",
                                st.state,
                                st.reason.map(|r| format!(" ({r})")).unwrap_or_default()
                            )
                        })
                        .collect();
                    if bad.is_empty() {
                        Response::ok(None)
                    } else {
                        Response::error(bad.join("; "))
                    }
                }
                Wait::Down(_) => Response::ok(None),
            };
            self.server.respond(id, &resp);
        }
        self.pending = still;
    }

    /// Once every service is up or has failed: tells the caller of
    /// `up -d` which (if any) failed, and gives back the pages start-up
    /// touched ([`crate::idle`]), the supervisor only waits from here.
    fn report_when_settled(&mut self) {
        if self.settled {
            return;
        }
        let settled = self.svcs.values().all(|s| {
            s.is_up() || matches!(s.state(), State::Failed | State::Exited | State::Stopped)
        });
        if !settled {
            return;
        }
        self.settled = true;
        let failed: Vec<&str> = self
            .svcs
            .values()
            .filter(|s| !(s.is_up() || (s.state() == State::Exited && exited_ok(s))))
            .map(|s| s.name())
            .collect();
        let line = if failed.is_empty() {
            format!("up {}\n", self.me)
        } else {
            format!("failed {}\n", failed.join(" "))
        };
        if let Some(mut r) = self.report.take() {
            let _ = r.write_all(line.as_bytes());
        }
        crate::idle::shed_startup_pages();
    }

    /// Records the running leaders when they changed. A record that
    /// cannot be written (a full disk) is tried again every
    /// [`RECORD_RETRY`] until it is, and the status says why meanwhile
    /// (`state_error`): the old record stays whole (see
    /// [`state::write_atomic`](super::state::write_atomic)), the services
    /// keep running.
    fn save_record(&mut self, now: Instant) {
        let services: BTreeMap<String, super::state::Leader> = self
            .svcs
            .iter()
            .filter_map(|(n, s)| s.leader_record().map(|l| (n.clone(), l)))
            .collect();
        let changed = services != self.record.services;
        let due = self.record_retry.is_some_and(|t| now >= t);
        if !changed && !due {
            return;
        }
        self.record.services = services;
        let path = self.dir.record();
        match self.record.save(&path) {
            Ok(()) => {
                if self.record_error.take().is_some() {
                    eprintln!("sexton: {} is written again", path.display());
                }
                self.record_retry = None;
            }
            Err(e) => {
                let why = format!("cannot write {}: {e}", path.display());
                if self.record_error.as_ref() != Some(&why) {
                    eprintln!("sexton: {why}");
                }
                self.record_error = Some(why);
                self.record_retry = now.checked_add(RECORD_RETRY);
            }
        }
    }

    /// One poll over everything; handles what came. Returns true when
    /// the lifeline broke.
    fn wait(&mut self, now: Instant) -> bool {
        let mut fds: Vec<(RawFd, PollFlags, Slot)> = Vec::new();
        fds.push((
            self.signals.as_fd().as_raw_fd(),
            PollFlags::POLLIN,
            Slot::Signals,
        ));
        if let Some(l) = &self.lifeline {
            fds.push((l.as_raw_fd(), PollFlags::POLLIN, Slot::Lifeline));
        }
        for (fd, ev) in self.server.poll_fds() {
            fds.push((fd, ev, Slot::Control));
        }
        for (name, s) in &self.svcs {
            for (fd, ev) in s.poll_fds() {
                fds.push((fd, ev, Slot::Service(name.clone())));
            }
        }
        let deadline = self
            .svcs
            .values()
            .filter_map(|s| s.deadline())
            .chain(self.record_retry)
            .min();
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(t) => {
                let ms = t.saturating_duration_since(now).as_micros().div_ceil(1000);
                PollTimeout::try_from(ms.min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut pfds: Vec<PollFd> = fds
            .iter()
            // SAFETY: every fd belongs to `self` and stays open across
            // this poll.
            .map(|(fd, ev, _)| PollFd::new(unsafe { BorrowedFd::borrow_raw(*fd) }, *ev))
            .collect();
        match poll(&mut pfds, timeout) {
            Ok(_) => {}
            // EINTR (nothing is handled by a handler here, but a stop and
            // continue can interrupt poll) just goes round again.
            Err(_) => return false,
        }
        let ready: Vec<Slot> = fds
            .iter()
            .zip(pfds.iter())
            .filter(|(_, p)| p.revents().is_some_and(|r| !r.is_empty()))
            .map(|((_, _, slot), _)| slot.clone())
            .collect();
        drop(pfds);
        let mut control = false;
        let mut lifeline = false;
        for slot in ready {
            match slot {
                Slot::Signals => self.on_signals(),
                Slot::Lifeline => lifeline = true,
                Slot::Control => control = true,
                Slot::Service(name) => {
                    if let Some(s) = self.svcs.get_mut(&name) {
                        s.read_output();
                    }
                }
            }
        }
        if control {
            for (id, req) in self.server.on_ready() {
                self.on_request(id, req);
            }
        }
        lifeline
    }

    fn on_signals(&mut self) {
        let mut reload = false;
        while let Ok(Some(info)) = self.signals.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGTERM | Signal::SIGINT | Signal::SIGQUIT) => {
                    self.shutdown.get_or_insert_with(Vec::new);
                }
                Ok(Signal::SIGHUP) => reload = true,
                _ => {}
            }
        }
        if reload && self.shutdown.is_none() {
            let _ = self.reload();
        }
    }

    fn on_request(&mut self, id: ClientId, req: Request) {
        if self.shutdown.is_some() && req != Request::Status {
            if req == Request::Down {
                if let Some(ids) = self.shutdown.as_mut() {
                    ids.push(id);
                }
            } else {
                self.server
                    .respond(id, &Response::error("the supervisor is shutting down"));
            }
            return;
        }
        let now = Instant::now();
        let names = |list: &Vec<String>| -> Result<Vec<String>, String> {
            if list.is_empty() {
                return Ok(self.svcs.keys().cloned().collect());
            }
            for n in list {
                if !self.svcs.contains_key(n) {
                    return Err(format!("no service named '{n}'"));
                }
            }
            Ok(list.clone())
        };
        match req {
            Request::Status => {
                let resp = Response {
                    status: Some(self.status(now)),
                    ..Response::ok(None)
                };
                self.server.respond(id, &resp);
            }
            Request::Start { services } => match names(&services) {
                Ok(list) => {
                    let list = self.with_dependencies(&list);
                    for n in &list {
                        if let Some(s) = self.svcs.get_mut(n) {
                            s.want_up();
                        }
                    }
                    self.pending.push((id, Wait::Up(list)));
                }
                Err(e) => self.server.respond(id, &Response::error(e)),
            },
            Request::Stop { services } => match names(&services) {
                Ok(list) => {
                    for n in &list {
                        if let Some(s) = self.svcs.get_mut(n) {
                            s.stop(now, Then::Stay);
                        }
                    }
                    self.pending.push((id, Wait::Down(list)));
                }
                Err(e) => self.server.respond(id, &Response::error(e)),
            },
            Request::Restart { services } => match names(&services) {
                Ok(list) => {
                    for n in &list {
                        if let Some(s) = self.svcs.get_mut(n) {
                            s.stop(now, Then::Start);
                        }
                    }
                    self.pending.push((id, Wait::Up(list)));
                }
                Err(e) => self.server.respond(id, &Response::error(e)),
            },
            Request::Reload => {
                let resp = match self.reload() {
                    Ok(msg) => Response::ok(Some(msg)),
                    Err(e) => Response::error(e),
                };
                self.server.respond(id, &resp);
            }
            Request::Down => {
                self.shutdown.get_or_insert_with(Vec::new).push(id);
            }
        }
    }

    /// `names` and, transitively, what they depend on.
    fn with_dependencies(&self, names: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut todo: Vec<String> = names.to_vec();
        while let Some(n) = todo.pop() {
            if out.contains(&n) {
                continue;
            }
            if let Some(s) = self.svcs.get(&n) {
                todo.extend(s.cfg.depends_on.iter().cloned());
            }
            out.push(n);
        }
        out
    }

    /// Re-reads the config: added services start, removed ones stop and
    /// go, changed ones restart with the new settings, unchanged ones go
    /// on (same pid). A config that does not load changes nothing.
    fn reload(&mut self) -> Result<String, String> {
        let found = super::config::Found {
            path: self.config.file.clone(),
            format: self.config_format(),
        };
        let newer = Config::load_found(&found).map_err(|e| e.to_string())?;
        let diff = self.config.diff(&newer);
        let now = Instant::now();
        let logs = self.dir.logs(newer.log_dir.as_deref());
        for name in &diff.removed {
            if let Some(s) = self.svcs.get_mut(name) {
                s.stop(now, Then::Stay);
            }
        }
        for name in &diff.changed {
            if let Some(s) = self.svcs.get_mut(name) {
                s.cfg = newer.services[name].clone();
                s.stop(now, Then::Start);
            }
        }
        for name in &diff.added {
            let cfg = newer.services[name].clone();
            let log = LogSink::open(&logs, name, cfg.log_max_size, cfg.log_keep)
                .map_err(|e| format!("cannot open the log of {name}: {e}"))?;
            let mut s = Svc::new(cfg, log);
            s.want_up();
            self.svcs.insert(name.clone(), s);
        }
        // Removed services leave once they are down (see `forget_removed`).
        self.removed.extend(diff.removed.iter().cloned());
        self.config = newer;
        Ok(format!(
            "added: {}; removed: {}; changed: {}; unchanged: {}",
            list(&diff.added),
            list(&diff.removed),
            list(&diff.changed),
            list(&diff.unchanged)
        ))
    }

    fn config_format(&self) -> super::config::Format {
        super::config::find(&self.config.dir, Some(&self.config.file))
            .map(|f| f.format)
            .unwrap_or(super::config::Format::Toml)
    }

    /// The `status` answer.
    pub fn status(&self, now: Instant) -> Status {
        Status {
            supervisor: self.me,
            config: self.config.file.display().to_string(),
            state_dir: self.dir.path.display().to_string(),
            state_error: self.record_error.clone(),
            services: self.svcs.values().map(|s| s.status(now)).collect(),
        }
    }
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "-".to_string()
    } else {
        v.join(", ")
    }
}

fn exited_ok(s: &Svc) -> bool {
    s.status(Instant::now()).last_exit == Some(super::control::LastExit::Code(0))
}

/// What one polled fd stands for.
#[derive(Debug, Clone)]
enum Slot {
    Signals,
    Lifeline,
    Control,
    Service(String),
}

/// True when `fd` can take a write now (`poll` with no wait).
fn writable(fd: BorrowedFd<'_>) -> bool {
    let mut p = [PollFd::new(fd, PollFlags::POLLOUT)];
    matches!(poll(&mut p, PollTimeout::ZERO), Ok(1))
        && p[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLOUT))
}

/// Raises the soft limit on open files towards the hard one (at most
/// 65536): each service takes a few descriptors (pidfd, two pipes, its
/// log).
fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let want = hard.min(65536);
        if want > soft {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, want, hard);
        }
    }
}

/// How often a `state.json` that cannot be written is tried again.
const RECORD_RETRY: Duration = Duration::from_secs(1);

/// How long the supervisor may take to answer a control request that
/// waits for services (a stop of a service with a long stop_timeout).
pub const REQUEST_WAIT: Duration = Duration::from_secs(3600);
