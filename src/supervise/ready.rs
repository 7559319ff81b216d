//! Readiness checks: how the owner of an event loop learns that a
//! started program is ready (its port takes connections, a check command
//! exits 0, a line of its output matches, or it says `READY=1` over the
//! notify socket).
//!
//! A [`ReadyCheck`] is a state machine driven by the one poll loop of its
//! owner (the supervisor, the daemon monitor). Nothing here blocks,
//! sleeps or starts a thread; each check says what to wait on
//! ([`ReadyCheck::poll_fds`], [`ReadyCheck::deadline`]) and is stepped
//! after the wait ([`ReadyCheck::step`]). The owner:
//!
//! 1. builds the check before it starts the program, and starts the
//!    program with [`ReadyCheck::env`] added to its environment;
//! 2. adds `poll_fds()` to its poll set and `deadline()` to its timeout;
//! 3. after each wakeup, routes the status of every child it reaped with
//!    `wait4(-1)` whose pid is [`ReadyCheck::child_pid`] to
//!    [`ReadyCheck::on_child_exit`], feeds every output line of the program
//!    to [`ReadyCheck::on_line`], then calls [`ReadyCheck::step`] (a call
//!    when nothing happened is harmless: it finds nothing to do);
//! 4. applies its own overall timeout: a check keeps trying until it
//!    succeeds, and says [`Progress::Failed`] only when it cannot go on.
//!
//! The kinds:
//!
//! - **tcp** `HOST:PORT`: resolved once, when the check is built: an IP
//!   address, `localhost`, or a name in `/etc/hosts` (never DNS: see
//!   [`crate::names`]). Each attempt starts a non-blocking connect to every address
//!   at once; the first that completes (writable, `SO_ERROR` 0) makes the
//!   check ready. When all are refused, the next attempt starts
//!   [`TCP_RETRY`] later, with fresh sockets; an attempt that hangs (a
//!   dropped SYN) is abandoned after [`TCP_ATTEMPT_TIMEOUT`].
//! - **cmd**: the command runs as the program would (its user, working
//!   directory and environment) with stdio on `/dev/null`, as a
//!   [`Tree`] of its own, so it is tracked and killed like everything
//!   else. Its leader's pidfd is the fd to poll. The first run is one
//!   [`CMD_RETRY`] after the check is built. Exit 0 is ready; another
//!   status means try again after [`CMD_RETRY`]; a command still running
//!   after [`CMD_TIMEOUT`] is killed (the whole tree) and counts as a failed
//!   attempt. Dropping the check kills a command that still runs.
//! - **log**: [`ReadyCheck::on_line`] with each output line; no fd.
//! - **notify**: systemd's `sd_notify` protocol. A Unix datagram socket
//!   bound to a unique abstract name (`@sexton-notify-…`: no file, no
//!   108-byte path limit, gone with the socket) is handed to the program as
//!   `NOTIFY_SOCKET`. Each datagram is newline-separated `KEY=VALUE`
//!   assignments; `READY=1` makes the check ready, `STATUS=…` is kept for
//!   display ([`ReadyCheck::status_text`]), anything else is ignored.
//!   `SO_PASSCRED` is on, so the kernel attaches the sender's credentials
//!   to every datagram; only root and the program's own uid are listened
//!   to. An abstract socket can be reached by any process in the network
//!   namespace: the uid check is what keeps others out. The socket stays
//!   open after `READY=1` (later `STATUS=` lines are still read) for as
//!   long as the check lives.

use super::config::{Ready, Service, UserSpec};
use crate::tree::{ChildSetup, Tracking, Tree, TreeError};
use nix::poll::PollFlags;
use rustix::io::Errno;
use std::ffi::OsString;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Wait between two tcp attempts that were refused.
pub const TCP_RETRY: Duration = Duration::from_millis(100);
/// Longest one tcp attempt may hang before it is abandoned.
pub const TCP_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// Wait between two runs of a check command that failed.
pub const CMD_RETRY: Duration = Duration::from_millis(250);
/// Longest one run of a check command may take before it is killed.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long killing a check command's tree may take.
const CMD_KILL_WAIT: Duration = Duration::from_secs(1);
/// The variable that names the notify socket.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";
/// Largest notify datagram read; a longer one is ignored whole (systemd
/// reads at most this much too).
const NOTIFY_MAX: usize = 4096;
/// Datagrams read per step, so that a flood cannot hold up the loop (the
/// socket stays readable and the next poll comes back at once).
const NOTIFY_BATCH: usize = 64;

/// Where a check stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Not ready yet; keep waiting.
    Pending,
    /// Ready. A check stays ready once it has been.
    Ready,
    /// The check cannot go on (an address that cannot be used, a command
    /// that cannot be started, a socket error); the reason, one line.
    Failed(String),
}

/// Errors building a check.
#[derive(Debug, thiserror::Error)]
pub enum ReadyError {
    #[error("tcp {addr}: cannot resolve: {source}")]
    Resolve {
        addr: String,
        #[source]
        source: io::Error,
    },
    #[error("tcp {addr}: the host is neither an IP address, localhost, nor a name in /etc/hosts")]
    NoAddress { addr: String },
    #[error("notify: cannot make the notify socket: {0}")]
    Notify(#[source] io::Error),
}

/// The intervals of the tcp and cmd checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Wait between two tcp attempts that were refused.
    pub tcp_retry: Duration,
    /// Longest one tcp attempt may hang before it is abandoned.
    pub tcp_attempt_timeout: Duration,
    /// Wait between two runs of a check command that failed.
    pub cmd_retry: Duration,
    /// Longest one run of a check command may take before it is killed.
    pub cmd_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            tcp_retry: TCP_RETRY,
            tcp_attempt_timeout: TCP_ATTEMPT_TIMEOUT,
            cmd_retry: CMD_RETRY,
            cmd_timeout: CMD_TIMEOUT,
        }
    }
}

/// What a check needs to know of the program it checks.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// Working directory of a check command (`None`: the caller's).
    pub cwd: Option<PathBuf>,
    /// Variables a check command gets on top of the caller's environment
    /// (the program's own).
    pub env: Vec<(OsString, OsString)>,
    /// The user the program runs as (`None`: the caller's). A check
    /// command runs as this user too, and only this uid and root may send
    /// notify messages.
    pub user: Option<UserSpec>,
    /// How a check command's tree is tracked.
    pub tracking: Tracking,
}

impl Target {
    /// What a service's check needs: its working directory, environment
    /// and user.
    pub fn of(svc: &Service, tracking: Tracking) -> Target {
        Target {
            cwd: Some(svc.cwd.clone()),
            env: svc.env.clone(),
            user: svc.user.clone(),
            tracking,
        }
    }
}

/// One readiness check; see the module docs.
#[derive(Debug)]
pub struct ReadyCheck {
    kind: Kind,
    /// Set once the check is ready or has failed: every later step says
    /// the same.
    done: Option<Progress>,
    /// What the last attempt saw ("connection refused", "exited with
    /// status 1"), for the message of a caller's timeout.
    detail: Option<String>,
}

#[derive(Debug)]
enum Kind {
    Tcp(Tcp),
    Cmd(Box<Cmd>),
    Log(regex::Regex),
    Notify(Notify),
}

impl ReadyCheck {
    /// Builds the check `ready` describes for a program run as `target`
    /// says. A tcp address is resolved here (this blocks on DNS for a
    /// name that needs it); the notify socket is made and bound here.
    /// Nothing is attempted yet: the first attempt is due at once
    /// ([`ReadyCheck::deadline`] is now), except a check command's, which
    /// runs one retry interval later.
    pub fn new(ready: &Ready, target: &Target) -> Result<ReadyCheck, ReadyError> {
        ReadyCheck::with_timing(ready, target, Timing::default())
    }

    /// [`ReadyCheck::new`] with other intervals than the defaults.
    pub fn with_timing(
        ready: &Ready,
        target: &Target,
        timing: Timing,
    ) -> Result<ReadyCheck, ReadyError> {
        let now = Instant::now();
        let kind = match ready {
            Ready::Tcp(addr) => Kind::Tcp(Tcp::new(addr, now, timing)?),
            Ready::Cmd(argv) => Kind::Cmd(Box::new(Cmd {
                argv: argv.clone(),
                target: target.clone(),
                timing,
                // The program gets a moment first (a run at once would
                // nearly always fail). This also puts the command's
                // start in a later clock tick than the program's, which
                // the tree layer needs to tell the program (started
                // before the command) from the command's own processes.
                phase: CmdPhase::Wait {
                    at: now + timing.cmd_retry,
                },
            })),
            Ready::Log(p) => Kind::Log(p.0.clone()),
            Ready::Notify => Kind::Notify(Notify::new(target)?),
        };
        Ok(ReadyCheck {
            kind,
            done: None,
            detail: None,
        })
    }

    /// The check a service's configuration asks for, if any.
    pub fn for_service(
        svc: &Service,
        tracking: Tracking,
    ) -> Result<Option<ReadyCheck>, ReadyError> {
        match &svc.ready {
            None => Ok(None),
            Some(r) => ReadyCheck::new(r, &Target::of(svc, tracking)).map(Some),
        }
    }

    /// What the check is, for messages: `tcp 127.0.0.1:8000`,
    /// `cmd test -e /run/x`, `log 'listening on'`, `notify`.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Tcp(t) => format!("tcp {}", t.addr),
            Kind::Cmd(c) => {
                let words: Vec<String> = c
                    .argv
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect();
                format!(
                    "cmd {}",
                    shlex::try_join(words.iter().map(|s| s.as_str()))
                        .unwrap_or_else(|_| words.join(" "))
                )
            }
            Kind::Log(re) => format!("log '{}'", re.as_str()),
            Kind::Notify(_) => "notify".to_string(),
        }
    }

    /// Variables the program must be started with: `NOTIFY_SOCKET` for a
    /// notify check (`@name`, the abstract address, as systemd writes it),
    /// nothing for the others.
    pub fn env(&self) -> Vec<(OsString, OsString)> {
        match &self.kind {
            Kind::Notify(n) => vec![(NOTIFY_SOCKET.into(), format!("@{}", n.name).into())],
            _ => Vec::new(),
        }
    }

    /// The fds to wait on: the sockets of a tcp attempt (writable), the
    /// pidfd of a running check command (readable), the notify socket
    /// (readable). Nothing once a tcp or cmd check is over.
    pub fn poll_fds(&self) -> Vec<(RawFd, PollFlags)> {
        if matches!(self.done, Some(Progress::Failed(_))) {
            return Vec::new();
        }
        match &self.kind {
            Kind::Tcp(t) if self.done.is_none() => match &t.phase {
                TcpPhase::Connecting { socks, .. } => socks
                    .iter()
                    .map(|(s, _)| (s.as_raw_fd(), PollFlags::POLLOUT))
                    .collect(),
                TcpPhase::Wait { .. } => Vec::new(),
            },
            Kind::Cmd(c) if self.done.is_none() => match &c.phase {
                CmdPhase::Running { tree, .. } => crate::tree::raw(tree.leader_fd())
                    .map(|fd| vec![(fd, PollFlags::POLLIN)])
                    .unwrap_or_default(),
                CmdPhase::Wait { .. } => Vec::new(),
            },
            Kind::Notify(n) => vec![(n.sock.as_raw_fd(), PollFlags::POLLIN)],
            _ => Vec::new(),
        }
    }

    /// The next time [`ReadyCheck::step`] has something to do without any
    /// fd becoming ready: the next attempt, or the end of a running one.
    pub fn deadline(&self) -> Option<Instant> {
        if self.done.is_some() {
            return None;
        }
        match &self.kind {
            Kind::Tcp(t) => Some(match &t.phase {
                TcpPhase::Wait { at } => *at,
                TcpPhase::Connecting { give_up, .. } => *give_up,
            }),
            Kind::Cmd(c) => Some(match &c.phase {
                CmdPhase::Wait { at } => *at,
                CmdPhase::Running { kill_at, tree } => {
                    // Without a pidfd (kernels before 5.3) the exit is
                    // only seen by looking: look every retry interval.
                    if tree.leader_fd().is_none() {
                        (*kill_at).min(Instant::now() + c.timing.cmd_retry)
                    } else {
                        *kill_at
                    }
                }
            }),
            Kind::Log(_) | Kind::Notify(_) => None,
        }
    }

    /// Moves the check on after a wakeup: looks at what its fds say,
    /// starts an attempt that is due, ends one that took too long. Never
    /// blocks (killing a timed-out check command waits for the kill, as
    /// every kill of a tree does). Safe to call at any time.
    pub fn step(&mut self, now: Instant) -> Progress {
        if let Some(p) = &self.done {
            if let (Progress::Ready, Kind::Notify(n)) = (p, &mut self.kind) {
                // Later STATUS= messages are still read; errors no longer
                // matter.
                let _ = n.drain(&mut None);
            }
            return p.clone();
        }
        let r = match &mut self.kind {
            Kind::Tcp(t) => t.step(now, &mut self.detail),
            Kind::Cmd(c) => c.step(now, &mut self.detail),
            Kind::Log(_) => Progress::Pending,
            Kind::Notify(n) => n.drain(&mut self.detail),
        };
        self.settle(r)
    }

    /// A line of the program's output, for a log check (the trailing
    /// newline, and a carriage return before it, are not part of it).
    /// Invalid UTF-8 is matched as U+FFFD. Other kinds ignore lines.
    pub fn on_line(&mut self, line: &[u8]) -> Progress {
        if let Some(p) = &self.done {
            return p.clone();
        }
        let Kind::Log(re) = &self.kind else {
            return Progress::Pending;
        };
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if re.is_match(&String::from_utf8_lossy(line)) {
            self.settle(Progress::Ready)
        } else {
            Progress::Pending
        }
    }

    /// The pid of the running check command, which the owner of the loop
    /// reaps with `wait4(-1)` and whose status it hands to
    /// [`ReadyCheck::on_child_exit`].
    pub fn child_pid(&self) -> Option<i32> {
        match &self.kind {
            Kind::Cmd(c) => match &c.phase {
                CmdPhase::Running { tree, .. } if tree.leader_exit().is_none() => {
                    Some(tree.leader().as_raw())
                }
                _ => None,
            },
            _ => None,
        }
    }

    /// The raw wait status of [`ReadyCheck::child_pid`], reaped by the
    /// owner of the loop. The next [`ReadyCheck::step`] acts on it.
    pub fn on_child_exit(&mut self, raw_status: i32) {
        if let Kind::Cmd(c) = &mut self.kind
            && let CmdPhase::Running { tree, .. } = &mut c.phase
        {
            tree.set_leader_exit(raw_status, crate::sys::Rusage::default());
        }
    }

    /// The last `STATUS=` text a notify sender gave.
    pub fn status_text(&self) -> Option<&str> {
        match &self.kind {
            Kind::Notify(n) => n.status.as_deref(),
            _ => None,
        }
    }

    /// What the last attempt saw, for a message when the caller gives
    /// up: `connection refused`, `exited with status 1`, `ignored a
    /// message from uid 65534`.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// True once the check has succeeded.
    pub fn is_ready(&self) -> bool {
        self.done == Some(Progress::Ready)
    }

    fn settle(&mut self, p: Progress) -> Progress {
        match &p {
            Progress::Pending => {}
            Progress::Ready | Progress::Failed(_) => {
                if let Progress::Failed(why) = &p {
                    self.detail = Some(why.clone());
                }
                self.done = Some(p.clone());
                // Nothing of a finished tcp or cmd check stays open.
                match &mut self.kind {
                    Kind::Tcp(t) => t.phase = TcpPhase::Wait { at: Instant::now() },
                    Kind::Cmd(c) => c.stop(),
                    _ => {}
                }
            }
        }
        p
    }
}

/// Parses the daemon's `--ready` value: `notify`, `tcp:HOST:PORT`,
/// `log:REGEX` or `cmd:COMMAND` (split like a shell does, without one).
pub fn parse_spec(s: &str) -> Result<Ready, String> {
    if s == "notify" {
        return Ok(Ready::Notify);
    }
    let (kind, rest) = s
        .split_once(':')
        .ok_or_else(|| format!("'{s}' is not notify, tcp:HOST:PORT, log:REGEX or cmd:COMMAND"))?;
    match kind {
        "tcp" => {
            let ok = rest.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0)
            });
            if ok {
                Ok(Ready::Tcp(rest.to_string()))
            } else {
                Err(format!(
                    "'{rest}' is not HOST:PORT (e.g. tcp:127.0.0.1:8000)"
                ))
            }
        }
        "log" => {
            if rest.is_empty() {
                return Err("log: needs a regex".to_string());
            }
            regex::Regex::new(rest)
                .map(|re| Ready::Log(super::config::LogPattern(re)))
                .map_err(|e| {
                    let msg = e.to_string();
                    let last = msg.lines().last().unwrap_or("").trim().to_string();
                    format!("invalid regex '{rest}': {last}")
                })
        }
        "cmd" => match shlex::split(rest) {
            Some(words) if !words.is_empty() => {
                Ok(Ready::Cmd(words.into_iter().map(OsString::from).collect()))
            }
            Some(_) => Err("cmd: needs a command".to_string()),
            None => Err(format!(
                "cmd: unbalanced quotes or a trailing backslash in '{rest}'"
            )),
        },
        _ => Err(format!(
            "unknown check '{kind}' (use notify, tcp:HOST:PORT, log:REGEX or cmd:COMMAND)"
        )),
    }
}

// ------------------------------------------------------------------- tcp

#[derive(Debug)]
struct Tcp {
    addr: String,
    addrs: Vec<SocketAddr>,
    timing: Timing,
    phase: TcpPhase,
}

#[derive(Debug)]
enum TcpPhase {
    /// The next attempt starts at `at`.
    Wait { at: Instant },
    /// One connect per address in flight.
    Connecting {
        socks: Vec<(OwnedFd, SocketAddr)>,
        give_up: Instant,
    },
}

/// Connect errors after which the same address may work later (nothing
/// listens yet, the network is not up yet).
fn retriable(e: Errno) -> bool {
    matches!(
        e,
        Errno::CONNREFUSED
            | Errno::TIMEDOUT
            | Errno::CONNRESET
            | Errno::CONNABORTED
            | Errno::HOSTUNREACH
            | Errno::NETUNREACH
            | Errno::NETDOWN
            | Errno::HOSTDOWN
            | Errno::AGAIN
            | Errno::ADDRNOTAVAIL
            | Errno::INTR
    )
}

fn errno_text(e: Errno) -> String {
    io::Error::from_raw_os_error(e.raw_os_error())
        .to_string()
        .split(" (os error")
        .next()
        .unwrap_or("")
        .to_lowercase()
}

/// `HOST:PORT` (or `[V6]:PORT`) as socket addresses: the host as an IP
/// address, `localhost`, or a name in `/etc/hosts` (see
/// [`crate::names`]: never through NSS, which a static binary cannot
/// use).
fn resolve(addr: &str) -> io::Result<Vec<SocketAddr>> {
    let bad = || io::Error::new(io::ErrorKind::InvalidInput, "expected HOST:PORT");
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let ips = crate::names::host(host)?;
    Ok(ips
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect())
}

impl Tcp {
    fn new(addr: &str, now: Instant, timing: Timing) -> Result<Tcp, ReadyError> {
        let addrs = resolve(addr).map_err(|e| ReadyError::Resolve {
            addr: addr.to_string(),
            source: e,
        })?;
        if addrs.is_empty() {
            return Err(ReadyError::NoAddress {
                addr: addr.to_string(),
            });
        }
        Ok(Tcp {
            addr: addr.to_string(),
            addrs,
            timing,
            phase: TcpPhase::Wait { at: now },
        })
    }

    fn step(&mut self, now: Instant, detail: &mut Option<String>) -> Progress {
        let addr = self.addr.clone();
        let failed = |what: String| Progress::Failed(format!("tcp {addr}: {what}"));
        match &mut self.phase {
            TcpPhase::Wait { at } => {
                if now < *at {
                    return Progress::Pending;
                }
                let mut socks = Vec::new();
                let mut usable = 0;
                for &a in &self.addrs {
                    let family = match a {
                        SocketAddr::V4(_) => rustix::net::AddressFamily::INET,
                        SocketAddr::V6(_) => rustix::net::AddressFamily::INET6,
                    };
                    let s = match rustix::net::socket_with(
                        family,
                        rustix::net::SocketType::STREAM,
                        rustix::net::SocketFlags::NONBLOCK | rustix::net::SocketFlags::CLOEXEC,
                        None,
                    ) {
                        Ok(s) => s,
                        // No IPv6 (or IPv4) here: that address cannot
                        // be tried; the others may still work.
                        Err(Errno::AFNOSUPPORT) => {
                            *detail = Some(format!("{a}: address family not supported"));
                            continue;
                        }
                        Err(e) => {
                            return failed(format!("cannot make a socket: {}", errno_text(e)));
                        }
                    };
                    usable += 1;
                    match connect(&s, &a) {
                        Ok(()) => return Progress::Ready,
                        Err(Errno::INPROGRESS) => socks.push((s, a)),
                        Err(e) if retriable(e) => *detail = Some(errno_text(e)),
                        Err(e) => {
                            return failed(format!("cannot connect to {a}: {}", errno_text(e)));
                        }
                    }
                }
                if usable == 0 {
                    return failed("no address of a family this system supports".to_string());
                }
                self.phase = if socks.is_empty() {
                    TcpPhase::Wait {
                        at: now + self.timing.tcp_retry,
                    }
                } else {
                    TcpPhase::Connecting {
                        socks,
                        give_up: now + self.timing.tcp_attempt_timeout,
                    }
                };
                Progress::Pending
            }
            TcpPhase::Connecting { socks, give_up } => {
                // Which connects have finished: a poll that does not wait.
                let mut fds: Vec<nix::poll::PollFd<'_>> = socks
                    .iter()
                    .map(|(s, _)| nix::poll::PollFd::new(s.as_fd(), PollFlags::POLLOUT))
                    .collect();
                if let Err(e) = nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO) {
                    if e == nix::errno::Errno::EINTR {
                        return Progress::Pending;
                    }
                    return failed(format!("poll: {}", e.desc()));
                }
                let finished: Vec<bool> = fds
                    .iter()
                    .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                    .collect();
                drop(fds);
                let mut keep = Vec::new();
                for ((s, a), done) in socks.drain(..).zip(finished) {
                    if !done {
                        keep.push((s, a));
                        continue;
                    }
                    match rustix::net::sockopt::socket_error(&s) {
                        Ok(Ok(())) => return Progress::Ready,
                        Ok(Err(e)) if retriable(e) => *detail = Some(errno_text(e)),
                        Ok(Err(e)) => {
                            return failed(format!("cannot connect to {a}: {}", errno_text(e)));
                        }
                        Err(e) => return failed(format!("SO_ERROR: {}", errno_text(e))),
                    }
                }
                if keep.is_empty() {
                    self.phase = TcpPhase::Wait {
                        at: now + self.timing.tcp_retry,
                    };
                } else if now >= *give_up {
                    *detail = Some(format!(
                        "no answer within {}",
                        humantime::format_duration(self.timing.tcp_attempt_timeout)
                    ));
                    // Dropping the sockets abandons their connects.
                    self.phase = TcpPhase::Wait { at: now };
                } else {
                    *socks = keep;
                }
                Progress::Pending
            }
        }
    }
}

/// `connect(2)`, retried on EINTR (a non-blocking connect goes on in the
/// background after EINTR; asking again says EALREADY, which means just
/// that).
fn connect(s: &OwnedFd, a: &SocketAddr) -> Result<(), Errno> {
    match rustix::net::connect(s, a) {
        Err(Errno::INTR) | Err(Errno::ALREADY) => Err(Errno::INPROGRESS),
        r => r,
    }
}

// ------------------------------------------------------------------- cmd

#[derive(Debug)]
struct Cmd {
    argv: Vec<OsString>,
    target: Target,
    timing: Timing,
    phase: CmdPhase,
}

#[derive(Debug)]
enum CmdPhase {
    /// The next run starts at `at`.
    Wait { at: Instant },
    /// A run in progress, killed at `kill_at`.
    Running { tree: Tree, kill_at: Instant },
}

impl Cmd {
    fn spawn(&self) -> Result<Tree, TreeError> {
        let mut cmd = std::process::Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..])
            .envs(self.target.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if let Some(dir) = &self.target.cwd {
            cmd.current_dir(dir);
        }
        let setup = ChildSetup {
            credentials: self.target.user.as_ref().and_then(UserSpec::credentials),
            ..ChildSetup::default()
        };
        Tree::spawn(&mut cmd, self.target.tracking, setup)
    }

    fn step(&mut self, now: Instant, detail: &mut Option<String>) -> Progress {
        match &mut self.phase {
            CmdPhase::Wait { at } => {
                if now < *at {
                    return Progress::Pending;
                }
                match self.spawn() {
                    Ok(tree) => {
                        self.phase = CmdPhase::Running {
                            tree,
                            kill_at: now + self.timing.cmd_timeout,
                        };
                        Progress::Pending
                    }
                    Err(e) => Progress::Failed(format!("cmd: {e}")),
                }
            }
            CmdPhase::Running { tree, kill_at } => {
                // The owner's reaper normally hands the status on; if it
                // has not reaped yet, reap by pid (an error means it has,
                // and its status is on the way).
                let exit = match tree.leader_exit() {
                    Some(e) => Some(e),
                    None => tree.try_wait().ok().flatten(),
                };
                if let Some(exit) = exit {
                    // Whatever the command left behind goes with it.
                    tree.kill(CMD_KILL_WAIT);
                    if exit.status.success() {
                        return Progress::Ready;
                    }
                    *detail = Some(crate::tree::status::describe(exit.status));
                    self.phase = CmdPhase::Wait {
                        at: now + self.timing.cmd_retry,
                    };
                    return Progress::Pending;
                }
                if now >= *kill_at {
                    tree.kill(CMD_KILL_WAIT);
                    *detail = Some(format!(
                        "still running after {}: killed",
                        humantime::format_duration(self.timing.cmd_timeout)
                    ));
                    self.phase = CmdPhase::Wait {
                        at: now + self.timing.cmd_retry,
                    };
                }
                Progress::Pending
            }
        }
    }

    /// Kills a run in progress (the check is over).
    fn stop(&mut self) {
        if let CmdPhase::Running { tree, .. } = &mut self.phase {
            tree.kill(CMD_KILL_WAIT);
        }
        self.phase = CmdPhase::Wait { at: Instant::now() };
    }
}

// ---------------------------------------------------------------- notify

#[derive(Debug)]
struct Notify {
    sock: OwnedFd,
    /// The abstract name, without the leading NUL (or `@`).
    name: String,
    /// The uid besides root whose messages count.
    uid: u32,
    status: Option<String>,
    ready: bool,
}

impl Notify {
    fn new(target: &Target) -> Result<Notify, ReadyError> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let sock = rustix::net::socket_with(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::DGRAM,
            rustix::net::SocketFlags::NONBLOCK | rustix::net::SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| ReadyError::Notify(e.into()))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let mut tries = 0;
        let name = loop {
            // Unique per check: our pid and a counter; the clock makes a
            // name squatted in advance unlikely, and a taken one is
            // skipped.
            let name = format!(
                "sexton-notify-{}-{}-{nanos:08x}",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::Relaxed)
            );
            let addr = rustix::net::SocketAddrUnix::new_abstract_name(name.as_bytes())
                .map_err(|e| ReadyError::Notify(e.into()))?;
            match rustix::net::bind(&sock, &addr) {
                Ok(()) => break name,
                Err(Errno::ADDRINUSE) if tries < 16 => tries += 1,
                Err(e) => return Err(ReadyError::Notify(e.into())),
            }
        };
        rustix::net::sockopt::set_socket_passcred(&sock, true)
            .map_err(|e| ReadyError::Notify(e.into()))?;
        let uid = target
            .user
            .as_ref()
            .map_or_else(|| nix::unistd::geteuid().as_raw(), |u| u.uid);
        Ok(Notify {
            sock,
            name,
            uid,
            status: None,
            ready: false,
        })
    }

    /// Reads the datagrams waiting (one per `recvmsg`), up to a batch.
    fn drain(&mut self, detail: &mut Option<String>) -> Progress {
        let mut buf = [0u8; NOTIFY_MAX];
        for _ in 0..NOTIFY_BATCH {
            let mut space =
                [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmCredentials(1))];
            let mut control = rustix::net::RecvAncillaryBuffer::new(&mut space);
            let mut iov = [io::IoSliceMut::new(&mut buf)];
            let msg = match rustix::net::recvmsg(
                &self.sock,
                &mut iov,
                &mut control,
                rustix::net::RecvFlags::DONTWAIT | rustix::net::RecvFlags::CMSG_CLOEXEC,
            ) {
                Ok(m) => m,
                Err(Errno::INTR) => continue,
                Err(Errno::AGAIN) => break,
                Err(e) => {
                    return Progress::Failed(format!(
                        "notify: reading the socket failed: {}",
                        errno_text(e)
                    ));
                }
            };
            let mut sender = None;
            // Descriptors someone passed (SCM_RIGHTS) are closed as the
            // drain drops them: the protocol's fd store is not kept.
            for m in control.drain() {
                if let rustix::net::RecvAncillaryMessage::ScmCredentials(c) = m {
                    sender = Some(c.uid.as_raw());
                }
            }
            // The credentials come first in the control data, so a
            // message whose passed fds did not fit (MSG_CTRUNC; they are
            // discarded) still says who sent it. A cut message is ignored.
            if msg.flags.contains(rustix::net::ReturnFlags::TRUNC) {
                *detail = Some(format!("ignored a message longer than {NOTIFY_MAX} bytes"));
                continue;
            }
            match sender {
                Some(uid) if uid == 0 || uid == self.uid => {}
                Some(uid) => {
                    *detail = Some(format!("ignored a message from uid {uid}"));
                    continue;
                }
                // With SO_PASSCRED every datagram carries credentials;
                // one without cannot be vouched for.
                None => continue,
            }
            let text = String::from_utf8_lossy(&buf[..msg.bytes]);
            for line in text.split('\n') {
                if line == "READY=1" {
                    self.ready = true;
                } else if let Some(s) = line.strip_prefix("STATUS=") {
                    self.status = Some(s.to_string());
                }
            }
        }
        if self.ready {
            Progress::Ready
        } else {
            Progress::Pending
        }
    }
}
