//! The one event loop of a run.
//!
//! A fixed set of fds (the leader's pidfd, the output pipes, the signalfd,
//! the lifeline) and one deadline (timeout, kill-after or wait-delay,
//! whichever comes first), polled with `poll(2)`; EINTR just goes round
//! again. The phases are explicit:
//!
//! 1. running: output is drained as it comes;
//! 2. timeout: the stop signal goes to the whole tree and the kill-after
//!    deadline is armed; at that deadline the tree is killed;
//! 3. the leader exited: output is read for at most `wait_delay` more,
//!    then sexton stops reading whoever still holds the pipes (D6);
//! 4. leftovers: live members are listed with the pipes they hold, then
//!    left, or killed, as asked.

use super::{
    Command, Input, Leftover, LeftoverAction, Leftovers, Outcome, Output, RunError, Usage,
};
use crate::pipes::{self, Capture, Drain, Reader, Sink};
use crate::procfs;
use crate::tree::{ChildSetup, DirectIo, SignalState, Tree};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Signals a front end forwards to the tree.
const FORWARDED: [Signal; 7] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

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
    let argv = cmd.argv_lossy();
    // What the program starts with is decided before sexton blocks
    // anything for its own signalfd.
    let signal_state = cmd.signal_state.unwrap_or_else(SignalState::of_this_thread);
    let signals = if cmd.forward_signals {
        Some(block_forwarded().map_err(|e| RunError::Setup {
            what: "signal handling",
            source: e.into(),
        })?)
    } else {
        None
    };
    let lifeline = cmd.lifeline.take();

    let (mut readers, mut tree, start) = spawn(&cmd, signal_state)?;
    let mut timed_out = false;
    let mut killed: Vec<i32> = Vec::new();
    let timeout_at = cmd.timeout.map(|d| start + d);
    let mut kill_at: Option<Instant> = None;
    let mut drain_until: Option<Instant> = None;
    let mut lifeline_lost = false;
    let mut output_blocked = vec![false; readers.len()];
    let mut sampler = cmd.sampler.take();
    let mut sample_at: Option<Instant> = sampler.as_ref().map(|_| start);

    loop {
        let mut now = Instant::now();
        if let (Some(s), Some(t)) = (sampler.as_mut(), sample_at)
            && now >= t
        {
            (s.f)(&mut tree);
            now = Instant::now();
            sample_at = Some(now + s.interval);
        }
        // Deadlines first: they may change what we wait for.
        if !timed_out && timeout_at.is_some_and(|t| now >= t) {
            timed_out = true;
            // What the stop signal ends, sexton killed.
            killed.extend(tree.signal_pids(cmd.signal));
            kill_at = cmd.kill_after.map(|d| now + d);
        }
        if kill_at.is_some_and(|t| now >= t) {
            kill_at = None;
            killed.extend(tree.kill(KILL_WAIT));
        }
        let leader_done = tree.leader_exit().is_some();
        if leader_done && drain_until.is_none() {
            drain_until = Some(now + cmd.wait_delay);
        }
        let output_done = readers.iter().all(|r| r.done) || drain_until.is_some_and(|t| now >= t);
        // After a timeout the whole tree must go: wait for it to empty
        // (or for the kill) before returning.
        let tree_settled = !timed_out || kill_at.is_none() || tree.is_empty();
        if leader_done && output_done && tree_settled {
            break;
        }

        // One poll over the fixed set of fds.
        let mut wait = [
            timeout_at.filter(|_| !timed_out),
            kill_at,
            drain_until,
            sample_at,
        ]
        .into_iter()
        .flatten()
        .min()
        .map(|t| t.saturating_duration_since(now));
        let leader_fd = tree.leader_fd().map(|f| f.as_raw_fd());
        if !leader_done && leader_fd.is_none() {
            wait = Some(wait.map_or(NO_PIDFD_TICK, |w| w.min(NO_PIDFD_TICK)));
        }
        if leader_done && timed_out && !tree_settled {
            wait = Some(wait.map_or(EMPTY_TICK, |w| w.min(EMPTY_TICK)));
        }
        let mut slots: Vec<Slot> = Vec::with_capacity(5);
        let mut fds: Vec<PollFd> = Vec::with_capacity(5);
        // SAFETY (all borrow_raw below): every fd is owned by `tree`,
        // `readers`, `signals` or `lifeline`, alive across this poll.
        if let Some(fd) = leader_fd {
            slots.push(Slot::Leader);
            fds.push(PollFd::new(
                unsafe { BorrowedFd::borrow_raw(fd) },
                PollFlags::POLLIN,
            ));
        }
        if drain_until.is_none_or(|t| now < t) {
            for (i, r) in readers.iter().enumerate() {
                if r.done {
                    continue;
                }
                if output_blocked[i] {
                    if let Some(out) = r.output_fd() {
                        slots.push(Slot::Output(i));
                        fds.push(PollFd::new(
                            unsafe { BorrowedFd::borrow_raw(out) },
                            PollFlags::POLLOUT,
                        ));
                    }
                } else {
                    slots.push(Slot::Reader(i));
                    fds.push(PollFd::new(
                        unsafe { BorrowedFd::borrow_raw(r.fd().as_raw_fd()) },
                        PollFlags::POLLIN,
                    ));
                }
            }
        }
        if let Some(s) = &signals {
            slots.push(Slot::Signals);
            fds.push(PollFd::new(
                unsafe { BorrowedFd::borrow_raw(s.as_fd().as_raw_fd()) },
                PollFlags::POLLIN,
            ));
        }
        if let Some(l) = &lifeline {
            slots.push(Slot::Lifeline);
            fds.push(PollFd::new(
                unsafe { BorrowedFd::borrow_raw(l.as_raw_fd()) },
                PollFlags::POLLIN,
            ));
        }
        let ms = match wait {
            None => PollTimeout::NONE,
            // Round up so a deadline is never polled for 0 ms too early.
            Some(w) => {
                PollTimeout::try_from(w.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32)
                    .unwrap_or(PollTimeout::MAX)
            }
        };
        match poll(&mut fds, ms) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                return Err(RunError::Setup {
                    what: "event loop",
                    source: e.into(),
                });
            }
        }
        let events: Vec<(Slot, PollFlags)> = slots
            .iter()
            .zip(fds.iter())
            .map(|(s, p)| (*s, p.revents().unwrap_or(PollFlags::empty())))
            .filter(|(_, ev)| !ev.is_empty())
            .collect();
        drop(fds);
        drop(slots);

        for (slot, _ev) in events {
            match slot {
                Slot::Leader => {
                    tree.try_wait()?;
                }
                Slot::Reader(i) | Slot::Output(i) => {
                    output_blocked[i] = false;
                    match readers[i].drain() {
                        Drain::Idle => {}
                        Drain::OutputFull => output_blocked[i] = true,
                        Drain::Eof | Drain::Closed => readers[i].done = true,
                    }
                }
                Slot::Signals => {
                    if let Some(sfd) = &signals {
                        while let Ok(Some(info)) = sfd.read_signal() {
                            let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
                                continue;
                            };
                            tree.signal(sig);
                            let terminating = matches!(
                                sig,
                                Signal::SIGTERM | Signal::SIGINT | Signal::SIGHUP | Signal::SIGQUIT
                            );
                            if terminating && kill_at.is_none() {
                                kill_at = cmd.kill_after.map(|d| Instant::now() + d);
                            }
                        }
                    }
                }
                Slot::Lifeline => {
                    // Whoever held the other end died: nobody is left to
                    // answer to, so nothing of the tree may stay.
                    lifeline_lost = true;
                    killed.extend(tree.kill(KILL_WAIT));
                }
            }
        }
        if lifeline_lost {
            break;
        }
        if leader_fd.is_none() && !leader_done {
            tree.try_wait()?;
        }
    }

    // Whoever still holds the pipes is named before sexton lets go.
    let pipes: Vec<(&'static str, u64)> = readers
        .iter()
        .filter(|r| !r.done)
        .map(|r| (r.name, r.ino))
        .collect();
    let mut leftovers = Vec::new();
    if !tree.is_empty() {
        let holders = tree.holders(&pipes);
        let action = match cmd.leftovers {
            Leftovers::Leave => LeftoverAction::Left,
            Leftovers::Kill | Leftovers::Fail => LeftoverAction::Killed,
        };
        for (p, holds) in holders {
            if p.pid == tree.leader().as_raw() {
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
            killed.extend(tree.kill(KILL_WAIT));
        }
    }
    tree.settle(SETTLE_WAIT);
    let leader = tree.wait()?;
    tree.release();

    let status = leader.status;
    killed.sort_unstable();
    killed.dedup();
    let (out_cap, err_cap) = (
        capture_of(&readers, "stdout"),
        capture_of(&readers, "stderr"),
    );
    Ok(Outcome {
        argv,
        pid: tree.leader().as_raw(),
        exit_code: status.code(),
        signal: crate::tree::status::signal_name(status),
        timed_out,
        duration_ms: round1(leader.at.duration_since(start).as_secs_f64() * 1000.0),
        stdout: String::from_utf8_lossy(&out_cap.bytes()).into_owned(),
        stderr: String::from_utf8_lossy(&err_cap.bytes()).into_owned(),
        stdout_bytes: out_cap.total(),
        stderr_bytes: err_cap.total(),
        stdout_dropped: out_cap.dropped(),
        stderr_dropped: err_cap.dropped(),
        rusage: Usage {
            user_ms: round1(leader.rusage.user_us as f64 / 1000.0),
            sys_ms: round1(leader.rusage.sys_us as f64 / 1000.0),
            max_rss_kb: leader.rusage.max_rss_kb,
        },
        leftovers,
        killed: killed.len(),
        tracking: tree.mode().as_str(),
        stdout_raw: out_cap.bytes(),
        stderr_raw: err_cap.bytes(),
        signal_number: status.signal(),
        lifeline_lost,
    })
}

#[derive(Debug, Clone, Copy)]
enum Slot {
    Leader,
    Reader(usize),
    Output(usize),
    Signals,
    Lifeline,
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

/// Blocks the forwarded signals in this thread and returns a signalfd
/// that reads them.
fn block_forwarded() -> nix::Result<SignalFd> {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
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
    for (name, mode, fd) in [("stdout", cmd.stdout, 1), ("stderr", cmd.stderr, 2)] {
        let stdio = match mode {
            Output::Inherit => Stdio::inherit(),
            _ => {
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
                let (reader, w) = pipes::output_pipe(name, sink).map_err(|e| RunError::Setup {
                    what: name,
                    source: e,
                })?;
                readers.push(reader);
                direct.stdio[fd as usize] = Some(w.as_raw_fd());
                Stdio::from(w)
            }
        };
        if fd == 1 {
            std_cmd.stdout(stdio);
        } else {
            std_cmd.stderr(stdio);
        }
    }
    let setup = ChildSetup {
        pass_fds: cmd.pass_fds.clone(),
        signals: signal_state,
        ..ChildSetup::default()
    };
    let start = Instant::now();
    let tree = Tree::spawn_with(&mut std_cmd, Some(direct), cmd.tracking, setup)?;
    drop(std_cmd);
    Ok((readers, tree, start))
}
