//! The one event loop of a run.
//!
//! A fixed set of fds (the leader's pidfd, the output pipes or, when the
//! caller's reader is slow, the outputs they wait for, the signalfd, the
//! lifeline) and one deadline (timeout, kill-after, wait-delay or the next
//! sample, whichever comes first), polled with `poll(2)`; EINTR just goes
//! round again. Each event has one small handler on [`Run`]:
//!
//! - **the leader exits**: the wait-delay starts;
//! - **a pipe is readable / an output is writable**: move bytes. When the
//!   caller's reader closed early (EPIPE) the pipe's read end is closed at
//!   once, so the program dies of SIGPIPE as it would without sexton;
//! - **a forwarded signal**: to every member once; a terminating one arms
//!   the kill-after deadline;
//! - **the lifeline hangs up**: whoever must not be outlived is gone; kill
//!   the tree and stop;
//! - **a deadline**: the timeout sends the stop signal to the whole tree
//!   and arms the kill-after; the kill-after kills the tree; the
//!   wait-delay *cuts* the pipes still open (D6).
//!
//! The wait-delay is only for output held open by processes the program
//! left behind: a pipe that reaches EOF ends by itself, however long its
//! slow reader takes. At the cut, what the pipe holds is still delivered,
//! then reading stops, so nothing the program wrote is ever dropped and a
//! leftover that keeps writing cannot keep sexton.
//!
//! The run is over when the leader has exited, every pipe has ended, and,
//! after a timeout, the tree is empty (or the kill-after gave up).

use super::{
    Command, Input, Leftover, LeftoverAction, Leftovers, Outcome, Output, RunError, Sampler, Usage,
};
use crate::pipes::{self, Capture, Drain, End, Reader, Sink};
use crate::procfs;
use crate::tree::{ChildSetup, DirectIo, SignalState, Tree, signals};
use nix::poll::{PollFd, PollFlags, ppoll};
use nix::sys::signalfd::SignalFd;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// How long after the last kill sexton waits for the tree to vanish.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// How long to wait for members that are still exiting after the tree
/// emptied, so none turns into a zombie when sexton exits.
const SETTLE_WAIT: Duration = Duration::from_millis(200);
/// Without a pidfd, how often the leader is polled.
const NO_PIDFD_TICK: Duration = Duration::from_millis(5);
/// While waiting for a signalled tree to empty, how often to look.
const EMPTY_TICK: Duration = Duration::from_millis(10);

pub(super) fn run(mut cmd: Command) -> Result<Outcome, RunError> {
    if cmd.argv.is_empty() || cmd.argv[0].is_empty() {
        return Err(RunError::Empty);
    }
    // What the program starts with is decided before sexton blocks
    // anything for its own signalfd.
    let signal_state = cmd.signal_state.unwrap_or_else(SignalState::of_this_thread);
    let signals = if cmd.forward_signals {
        let set = signals::set_of(&signals::FORWARDED);
        Some(signals::block(&set).map_err(|e| RunError::Setup {
            what: "signal handling",
            source: e.into(),
        })?)
    } else {
        None
    };
    let lifeline = cmd.lifeline.take();
    let sampler = cmd.sampler.take();
    let (readers, tree, start) = spawn(&cmd, signal_state)?;
    let blocked = vec![false; readers.len()];
    let rest = vec![None; readers.len()];
    let mut run = Run {
        // A timeout past what an Instant can hold is no timeout.
        timeout_at: cmd
            .timeout
            .filter(|t| !t.is_zero())
            .and_then(|d| start.checked_add(d)),
        sample_at: sampler.as_ref().map(|_| start),
        cmd,
        tree,
        readers,
        blocked,
        rest,
        start,
        signals,
        lifeline,
        sampler,
        timed_out: false,
        kill_at: None,
        drain_until: None,
        killed: Vec::new(),
        lifeline_lost: false,
    };
    run.go()?;
    run.finish()
}

/// One run in progress: the tree, its pipes, and the deadlines.
struct Run {
    cmd: Command,
    tree: Tree,
    readers: Vec<Reader>,
    /// `blocked[i]`: reader `i` waits for its output to take more.
    blocked: Vec<bool>,
    /// `rest[i]`: reader `i` is not looked at before this (it trickles).
    rest: Vec<Option<Instant>>,
    start: Instant,
    signals: Option<SignalFd>,
    lifeline: Option<OwnedFd>,
    sampler: Option<Sampler>,
    sample_at: Option<Instant>,
    timeout_at: Option<Instant>,
    timed_out: bool,
    kill_at: Option<Instant>,
    /// Set when the leader exits: when the open pipes are cut.
    drain_until: Option<Instant>,
    killed: Vec<i32>,
    lifeline_lost: bool,
}

/// What one polled fd stands for.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Leader,
    Reader(usize),
    Output(usize),
    Signals,
    Lifeline,
}

impl Run {
    fn go(&mut self) -> Result<(), RunError> {
        loop {
            self.on_deadlines(Instant::now());
            if self.finished() {
                return Ok(());
            }
            let (slots, raw, wait) = self.poll_set(Instant::now());
            let mut fds: Vec<PollFd> = raw
                .iter()
                .map(|&(fd, ev)| {
                    // SAFETY: every fd is owned by `self` (tree, readers,
                    // signals, lifeline) and stays open across this poll.
                    PollFd::new(unsafe { BorrowedFd::borrow_raw(fd) }, ev)
                })
                .collect();
            // ppoll: the rest of a trickling pipe is well under a
            // millisecond, which poll(2)'s timeout cannot express.
            match ppoll(
                &mut fds,
                wait.map(nix::sys::time::TimeSpec::from_duration),
                None,
            ) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    return Err(RunError::Setup {
                        what: "event loop",
                        source: e.into(),
                    });
                }
            }
            let ready: Vec<Slot> = slots
                .iter()
                .zip(fds.iter())
                .filter(|(_, p)| p.revents().is_some_and(|r| !r.is_empty()))
                .map(|(s, _)| *s)
                .collect();
            drop(fds);
            for slot in ready {
                match slot {
                    Slot::Leader => {
                        self.tree.try_wait()?;
                    }
                    Slot::Reader(i) | Slot::Output(i) => self.on_pipe(i),
                    Slot::Signals => self.on_signals(),
                    Slot::Lifeline => self.on_lifeline_lost(),
                }
            }
            if self.tree.leader_fd().is_none() && self.tree.leader_exit().is_none() {
                // No pidfd: the leader is polled on every wakeup.
                self.tree.try_wait()?;
            }
        }
    }

    fn leader_done(&self) -> bool {
        self.tree.leader_exit().is_some()
    }

    /// The leader is gone, every pipe has ended, and after a timeout the
    /// tree is empty or given up on; or the lifeline broke.
    fn finished(&mut self) -> bool {
        if self.lifeline_lost {
            return true;
        }
        if !self.leader_done() || !self.readers.iter().all(Reader::done) {
            return false;
        }
        !self.timed_out || self.kill_at.is_none() || self.tree.is_empty()
    }

    /// Runs whatever deadline has come.
    fn on_deadlines(&mut self, now: Instant) {
        if let (Some(s), Some(t)) = (self.sampler.as_mut(), self.sample_at)
            && now >= t
        {
            (s.f)(&mut self.tree);
            self.sample_at = Some(Instant::now() + s.interval);
        }
        if !self.timed_out && self.timeout_at.is_some_and(|t| now >= t) {
            self.timed_out = true;
            let signo = self.cmd.signal;
            self.notify(signo);
            // What the stop signal ends, sexton killed.
            let sent = self.tree.signal_each(signo);
            self.killed.extend(sent);
            self.kill_at = self.cmd.kill_after.and_then(|d| now.checked_add(d));
        }
        if self.kill_at.is_some_and(|t| now >= t) {
            self.kill_at = None;
            self.notify(libc::SIGKILL);
            let killed = self.tree.kill(KILL_WAIT);
            self.killed.extend(killed);
        }
        if self.leader_done() && self.drain_until.is_none() {
            // A wait-delay past what an Instant holds never cuts.
            self.drain_until = Some(
                now.checked_add(self.cmd.wait_delay)
                    .unwrap_or(far_future(now)),
            );
        }
        if self.drain_until.is_some_and(|t| now >= t) {
            for r in &mut self.readers {
                r.cut();
            }
        }
    }

    fn notify(&mut self, signo: i32) {
        if let Some(f) = self.cmd.on_signal.as_mut() {
            (f.0)(signo);
        }
    }

    /// The fds to poll (with what each stands for) and how long to wait.
    #[allow(clippy::type_complexity)]
    fn poll_set(&mut self, now: Instant) -> (Vec<Slot>, Vec<(RawFd, PollFlags)>, Option<Duration>) {
        let mut slots = Vec::with_capacity(6);
        let mut fds = Vec::with_capacity(6);
        let leader_fd = self.tree.leader_fd().map(|f| f.as_raw_fd());
        if let Some(fd) = leader_fd {
            slots.push(Slot::Leader);
            fds.push((fd, PollFlags::POLLIN));
        }
        for (i, r) in self.readers.iter().enumerate() {
            let Some(fd) = r.fd() else { continue };
            if self.rest[i].is_some_and(|t| now < t) {
                continue;
            }
            self.rest[i] = None;
            match (self.blocked[i], r.output_fd()) {
                (true, Some(out)) => {
                    slots.push(Slot::Output(i));
                    fds.push((out, PollFlags::POLLOUT));
                }
                _ => {
                    slots.push(Slot::Reader(i));
                    fds.push((fd.as_raw_fd(), PollFlags::POLLIN));
                }
            }
        }
        if let Some(s) = &self.signals {
            slots.push(Slot::Signals);
            fds.push((s.as_fd().as_raw_fd(), PollFlags::POLLIN));
        }
        if let Some(l) = &self.lifeline {
            slots.push(Slot::Lifeline);
            fds.push((l.as_raw_fd(), PollFlags::POLLIN));
        }
        let cut_pending = self.readers.iter().any(|r| !r.done());
        let mut wait = [
            self.timeout_at.filter(|_| !self.timed_out),
            self.kill_at,
            self.drain_until.filter(|_| cut_pending),
            self.sample_at,
            self.rest.iter().flatten().min().copied(),
        ]
        .into_iter()
        .flatten()
        .min()
        .map(|t| t.saturating_duration_since(now));
        let tick = |w: Option<Duration>, t: Duration| Some(w.map_or(t, |w| w.min(t)));
        if !self.leader_done() && leader_fd.is_none() {
            wait = tick(wait, NO_PIDFD_TICK);
        }
        if self.leader_done() && self.timed_out && self.kill_at.is_some() {
            // Waiting for the signalled tree to empty.
            wait = tick(wait, EMPTY_TICK);
        }
        (slots, fds, wait)
    }

    fn on_pipe(&mut self, i: usize) {
        self.blocked[i] = false;
        match self.readers[i].drain() {
            Drain::OutputFull => self.blocked[i] = true,
            Drain::Trickle => self.rest[i] = Instant::now().checked_add(pipes::TRICKLE_REST),
            Drain::Idle | Drain::Ended(_) => {}
        }
    }

    fn on_signals(&mut self) {
        let Some(sfd) = &self.signals else { return };
        let mut got = Vec::new();
        while let Ok(Some(info)) = sfd.read_signal() {
            got.push(info.ssi_signo as i32);
        }
        for signo in got {
            self.tree.signal_each(signo);
            if signals::terminating(signo) && self.kill_at.is_none() {
                self.kill_at = self
                    .cmd
                    .kill_after
                    .and_then(|d| Instant::now().checked_add(d));
            }
        }
    }

    /// Whoever held the lifeline's other end died: nobody is left to
    /// answer to, so nothing of the tree may stay.
    fn on_lifeline_lost(&mut self) {
        self.lifeline_lost = true;
        let killed = self.tree.kill(KILL_WAIT);
        self.killed.extend(killed);
    }

    /// Names and handles the leftovers, reaps, and builds the outcome.
    fn finish(mut self) -> Result<Outcome, RunError> {
        // The pipes that were cut were held by someone the program left.
        let held: Vec<(&'static str, u64)> = self
            .readers
            .iter()
            .filter(|r| r.end == Some(End::Cut))
            .flat_map(|r| r.streams().iter().map(move |s| (*s, r.ino)))
            .collect();
        let mut leftovers = Vec::new();
        if !self.tree.is_empty() {
            let action = match self.cmd.leftovers {
                Leftovers::Leave => LeftoverAction::Left,
                Leftovers::Kill | Leftovers::Fail => LeftoverAction::Killed,
            };
            let leader = self.tree.leader().as_raw();
            for (p, holds) in self.tree.holders(&held) {
                if p.pid == leader {
                    continue;
                }
                leftovers.push(Leftover {
                    pid: p.pid,
                    ppid: p.ppid,
                    cmdline: procfs::cmdline(p.pid).unwrap_or_else(|| p.comm.clone()),
                    holds,
                    action,
                });
            }
            if action == LeftoverAction::Killed {
                let killed = self.tree.kill(KILL_WAIT);
                self.killed.extend(killed);
            }
        }
        self.tree.settle(SETTLE_WAIT);
        let leader = self.tree.wait()?;
        self.tree.release();

        let status = leader.status;
        self.killed.sort_unstable();
        self.killed.dedup();
        let out = capture_of(&self.readers, "stdout");
        let err = capture_of(&self.readers, "stderr");
        use std::os::unix::process::ExitStatusExt;
        let mut outcome = Outcome {
            argv: self.cmd.argv_lossy(),
            pid: Some(self.tree.leader().as_raw()),
            exit_code: status.code(),
            signal: crate::tree::status::signal_name(status),
            timed_out: self.timed_out,
            duration_ms: round1(leader.at.duration_since(self.start).as_secs_f64() * 1000.0),
            rusage: Usage {
                user_ms: round1(leader.rusage.user_us as f64 / 1000.0),
                sys_ms: round1(leader.rusage.sys_us as f64 / 1000.0),
                max_rss_kb: leader.rusage.max_rss_kb,
            },
            leftovers,
            killed: self.killed.len(),
            tracking: self.tree.mode().as_str(),
            signal_number: status.signal(),
            lifeline_lost: self.lifeline_lost,
            ..Outcome::default()
        };
        outcome.set_output(
            out.bytes(),
            out.total(),
            out.dropped(),
            err.bytes(),
            err.total(),
            err.dropped(),
        );
        Ok(outcome)
    }
}

/// An instant about a century ahead: "never" for a deadline.
fn far_future(now: Instant) -> Instant {
    now.checked_add(Duration::from_secs(100 * 365 * 86400))
        .unwrap_or(now)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn capture_of(readers: &[Reader], name: &str) -> Capture {
    readers
        .iter()
        .find(|r| r.name == name)
        .and_then(|r| r.capture())
        .cloned()
        .unwrap_or_default()
}

/// Builds the std command, the pipes, and spawns the tree. The write ends
/// of the pipes live only in the std command, which is dropped before
/// this returns, so sexton holds read ends only.
fn spawn(
    cmd: &Command,
    signal_state: SignalState,
) -> Result<(Vec<Reader>, Tree, Instant), RunError> {
    let mut std_cmd = if cmd.shell {
        let mut c = std::process::Command::new("sh");
        c.arg("-c").args(&cmd.argv);
        c
    } else {
        let mut c = std::process::Command::new(&cmd.argv[0]);
        c.args(&cmd.argv[1..]);
        c
    };
    if cmd.clear_env {
        std_cmd.env_clear();
    }
    for (k, v) in &cmd.env {
        std_cmd.env(k, v);
    }
    if let Some(d) = &cmd.cwd {
        // Checked here: a chdir failure in the child would surface as the
        // spawn's ENOENT, indistinguishable from a missing program.
        match std::fs::metadata(d) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(RunError::Cwd {
                    path: d.clone(),
                    source: std::io::Error::from_raw_os_error(libc::ENOTDIR),
                });
            }
            Err(e) => {
                return Err(RunError::Cwd {
                    path: d.clone(),
                    source: e,
                });
            }
        }
        std_cmd.current_dir(d);
    }
    // The raw fds given to the child, for the direct spawn; they stay
    // open as long as `std_cmd` holds them.
    let mut direct = DirectIo {
        stdio: [None; 3],
        clear_env: cmd.clear_env,
    };
    let stdin = match &cmd.input {
        Input::Null => Some(
            std::fs::File::open("/dev/null").map_err(|e| RunError::Setup {
                what: "stdin",
                source: e,
            })?,
        ),
        Input::Inherit => None,
        Input::File(p) => Some(std::fs::File::open(p).map_err(|e| RunError::Input {
            path: p.clone(),
            source: e,
        })?),
    };
    std_cmd.stdin(match stdin {
        Some(f) => {
            direct.stdio[0] = Some(f.as_raw_fd());
            Stdio::from(f)
        }
        None => Stdio::inherit(),
    });
    let mut readers = Vec::new();
    let setup_err = |what: &'static str| move |e| RunError::Setup { what, source: e };
    // The caller's fd 1 and fd 2 are one open file (`2>&1`): one pipe for
    // both keeps the order of the program's lines.
    // (Forwarded, or forwarded and kept for the log, both the same way;
    // the log's `stdout` then holds both streams.)
    let merge = cmd.stdout == cmd.stderr
        && matches!(cmd.stdout, Output::Forward | Output::Tee)
        && sys_same_open_file(1, 2);
    for (name, mode, fd) in [("stdout", cmd.stdout, 1), ("stderr", cmd.stderr, 2)] {
        if merge && fd == 2 {
            continue;
        }
        let mut stdio = match mode {
            Output::Inherit => vec![Stdio::inherit()],
            _ => {
                if matches!(mode, Output::Forward | Output::Tee) {
                    pipes::widen_destination(fd);
                }
                let sink = match mode {
                    Output::Capture => Sink::Capture(Capture::new(cmd.output_limit)),
                    Output::Forward => Sink::Forward {
                        to: fd,
                        splice_ok: true,
                    },
                    _ => Sink::Tee {
                        to: fd,
                        capture: Capture::new(cmd.output_limit),
                    },
                };
                let (mut reader, w) = pipes::output_pipe(name, sink).map_err(setup_err(name))?;
                direct.stdio[fd as usize] = Some(w.as_raw_fd());
                let mut v = Vec::new();
                if merge {
                    reader.merged = true;
                    let w2 = w.try_clone().map_err(setup_err("stderr"))?;
                    direct.stdio[2] = Some(w2.as_raw_fd());
                    v.push(Stdio::from(w));
                    v.push(Stdio::from(w2));
                } else {
                    v.push(Stdio::from(w));
                }
                readers.push(reader);
                v
            }
        };
        if fd == 1 {
            std_cmd.stdout(stdio.remove(0));
            if let Some(s) = stdio.pop() {
                std_cmd.stderr(s);
            }
        } else {
            std_cmd.stderr(stdio.remove(0));
        }
    }
    let setup = ChildSetup {
        pass_fds: cmd.pass_fds.clone(),
        signals: signal_state,
        group: cmd.group,
        ..ChildSetup::default()
    };
    let start = Instant::now();
    let tree = Tree::spawn_with(&mut std_cmd, Some(direct), cmd.tracking, setup)?;
    drop(std_cmd);
    Ok((readers, tree, start))
}

/// Whether this process's fds `a` and `b` are one open file: `kcmp(2)`,
/// else the same device and inode (`fstat(2)`).
fn sys_same_open_file(a: RawFd, b: RawFd) -> bool {
    if let Some(same) = crate::sys::same_open_file(a, b) {
        return same;
    }
    // SAFETY: fds 1 and 2 are sexton's own stdio, open for the process's
    // life; only fstat'ed here.
    let st = |fd| nix::sys::stat::fstat(unsafe { BorrowedFd::borrow_raw(fd) });
    matches!((st(a), st(b)), (Ok(x), Ok(y)) if x.st_dev == y.st_dev && x.st_ino == y.st_ino)
}
