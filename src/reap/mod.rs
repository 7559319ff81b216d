//! The reaping loop of `sexton init`: an init for containers (PID 1 of a
//! PID namespace) and a child subreaper elsewhere.
//!
//! One thread, one loop, a fixed set of one fd (a signalfd) and one
//! deadline. On every wakeup the loop reaps with
//! `wait4(-1, WNOHANG)` until the kernel says no child has exited, so
//! however many SIGCHLDs coalesced into one, no zombie is left (defect
//! D2). Signals are blocked and read from the signalfd, so no handler
//! ever interrupts a system call (defect D3); the calls that can still
//! see EINTR (poll, wait4, read) retry.
//!
//! The program is spawned through [`crate::tree`] as the leader of its
//! own process group, with the subreaper backend: sexton owns every
//! process below it, so reaping with `waitpid(-1)` steals nothing. The
//! one race, the loop reaping the leader before the tree does, is closed
//! by handing the status to the tree ([`Tree::set_leader_exit`]).
//!
//! When the program exits, every remaining process gets the stop signal
//! (and SIGCONT if it is stopped, so that it can act on it), then SIGKILL
//! after the grace period; sexton exits with the program's status once
//! nothing is left. As PID 1 "every remaining process" is
//! `kill(-1)`, everything in the namespace; elsewhere it is the tracked
//! tree (descendants and adopted orphans).
//!
//! ```no_run
//! let mut cmd = std::process::Command::new("sh");
//! cmd.args(["-c", "sleep 1 & exit 3"]);
//! let out = sexton::reap::Init::new().run(&mut cmd).unwrap();
//! assert_eq!(out.exit_code(), 3);
//! ```

pub mod signals;

use crate::sys;
use crate::tree::{ChildSetup, SignalState, Tracking, Tree, TreeError};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use signals::{Forwarded, Forwarding, Origin};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

/// Pause after a pass that reaped several children while others live.
/// Every `wait4(-1)` walks this process's whole child list in the
/// kernel, so with thousands of children exiting at once, reaping them a
/// few per wakeup costs far more than letting them pile up for a moment
/// and reaping them in batches. Signals that arrive meanwhile wait in the
/// signalfd; nothing is lost, forwarding is delayed by at most this.
const BATCH_PAUSE: Duration = Duration::from_millis(2);

/// Errors of the init layer.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error("cannot set up signal handling: {0}")]
    Signals(#[source] io::Error),
    #[error("waiting for events failed: {0}")]
    Poll(#[source] io::Error),
    #[error("reaping failed: {0}")]
    Reap(#[source] io::Error),
}

/// How an init run ended.
#[derive(Debug, Clone, Copy)]
pub struct InitOutcome {
    /// The program's status.
    pub status: ExitStatus,
    /// Processes reaped, the program included.
    pub reaped: u64,
    /// Whether leftovers were still alive when the grace ran out.
    pub killed: bool,
    /// Whether this init ran as PID 1 of its namespace.
    pub pid1: bool,
}

impl InitOutcome {
    /// The status to exit with: the program's code, or 128+N when it died
    /// of signal N.
    pub fn exit_code(&self) -> i32 {
        crate::tree::status::exit_code(self.status)
    }
}

/// An init: forwards signals to one program and reaps everything.
#[derive(Debug, Clone)]
pub struct Init {
    signal_state: Option<SignalState>,
    forwarding: Forwarding,
    stop: Signal,
    grace: Duration,
}

impl Default for Init {
    fn default() -> Self {
        Init {
            signal_state: None,
            forwarding: Forwarding::default(),
            stop: Signal::SIGTERM,
            grace: Duration::from_secs(5),
        }
    }
}

/// Where the loop is in the program's life.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// The program runs.
    Running,
    /// The program exited; leftovers got the stop signal.
    Grace { until: Instant },
    /// Leftovers got SIGKILL; waiting for the last of them.
    Killed,
}

impl Init {
    pub fn new() -> Init {
        Init::default()
    }

    /// The signal mask and ignored signals the program starts with
    /// (default: the calling thread's, taken before `run` blocks every
    /// signal).
    pub fn signal_state(mut self, state: SignalState) -> Init {
        self.signal_state = Some(state);
        self
    }

    /// Forward signals to the program alone instead of its process group.
    pub fn child_only(mut self, yes: bool) -> Init {
        self.forwarding.child_only = yes;
        self
    }

    /// Forward signal `from` as `to` (`to == 0`: do not forward `from`).
    pub fn rewrite(mut self, from: i32, to: i32) -> Init {
        self.forwarding.rewrite(from, to);
        self
    }

    /// The signal leftovers get when the program exits (default TERM).
    pub fn stop_signal(mut self, sig: Signal) -> Init {
        self.stop = sig;
        self
    }

    /// How long leftovers have between the stop signal and SIGKILL
    /// (default 5s).
    pub fn grace(mut self, grace: Duration) -> Init {
        self.grace = grace;
        self
    }

    /// Runs `cmd` under this init until it and every other process below
    /// sexton are gone. Blocks every signal in the calling thread for
    /// good and changes the working directory to `/` once `cmd` has
    /// started: meant to be the whole life of the process.
    pub fn run(&self, cmd: &mut std::process::Command) -> Result<InitOutcome, InitError> {
        let pid1 = std::process::id() == 1;
        // Taken before sexton blocks every signal for its signalfd.
        let signal_state = self
            .signal_state
            .unwrap_or_else(SignalState::of_this_thread);
        let sfd = signals::block_all().map_err(InitError::Signals)?;
        let setup = ChildSetup {
            signals: signal_state,
            foreground: true,
            ..ChildSetup::default()
        };
        let mut tree = Tree::spawn(cmd, Tracking::Subreaper, setup)?;
        let leader = tree.leader().as_raw();
        // Pin no directory for the program's whole life (as catatonit and
        // dumb-init): the caller's may be on a filesystem to unmount. The
        // program keeps its own; nothing below opens a relative path.
        let _ = nix::unistd::chdir("/");
        crate::idle::shed_startup_pages();
        let mut phase = Phase::Running;
        let mut reaped = 0u64;
        let mut killed = false;
        loop {
            let before = reaped;
            let children = tree
                .reap_all_children(&mut reaped)
                .map_err(InitError::Reap)?;
            if reaped - before > 1 && children {
                // A storm is on: let more exits pile up before the next
                // pass (see BATCH_PAUSE).
                std::thread::sleep(BATCH_PAUSE);
            }
            if tree.leader_exit().is_some() {
                if !children {
                    break;
                }
                phase = self.advance(phase, &mut tree, pid1, &mut killed);
            }
            let timeout = match phase {
                Phase::Grace { until } => {
                    let left = until.saturating_duration_since(Instant::now());
                    // Round up so the wakeup is never before the deadline.
                    PollTimeout::try_from(left.as_millis().saturating_add(1).min(60_000) as i32)
                        .unwrap_or(PollTimeout::MAX)
                }
                _ => PollTimeout::NONE,
            };
            wait_readable(sfd.as_fd(), timeout)?;
            loop {
                match sfd.read_signal() {
                    Ok(Some(info)) => {
                        self.on_signal(info.ssi_signo as i32, info.ssi_code, leader, pid1)
                    }
                    Ok(None) => break,
                    Err(Errno::EINTR) => continue,
                    Err(e) => return Err(InitError::Signals(e.into())),
                }
            }
        }
        // Every process is gone and reaped: nothing for the tree's drop
        // to kill.
        tree.release();
        let status = tree
            .leader_exit()
            .map(|e| e.status)
            .unwrap_or_else(|| ExitStatus::from_raw(1 << 8));
        Ok(InitOutcome {
            status,
            reaped,
            killed,
            pid1,
        })
    }

    /// One step of the program-exited state machine: stop signal, grace,
    /// SIGKILL.
    fn advance(&self, phase: Phase, tree: &mut Tree, pid1: bool, killed: &mut bool) -> Phase {
        match phase {
            Phase::Running if self.grace.is_zero() => {
                self.kill_rest(tree, pid1);
                *killed = true;
                Phase::Killed
            }
            Phase::Running => {
                if pid1 {
                    let _ = sys::kill_raw(-1, self.stop as i32);
                } else {
                    tree.signal(self.stop);
                }
                resume_stopped(tree, pid1);
                Phase::Grace {
                    until: Instant::now() + self.grace,
                }
            }
            Phase::Grace { until } if Instant::now() >= until => {
                self.kill_rest(tree, pid1);
                *killed = true;
                Phase::Killed
            }
            p => p,
        }
    }

    /// SIGKILL for everything left: `kill(-1)` as PID 1 (the whole
    /// namespace but us), else the tree's freeze-then-kill.
    fn kill_rest(&self, tree: &mut Tree, pid1: bool) {
        if pid1 {
            let _ = sys::kill_raw(-1, Signal::SIGKILL as i32);
        } else {
            tree.kill(Duration::from_secs(1));
        }
    }

    /// Forwards one signal with `si_code` `code`. Every signal another
    /// process sent is forwarded, the fault signals included; a fault
    /// signal the kernel raised about sexton itself ends it as it would
    /// without the mask. A terminal-stop signal stops the program's
    /// group with SIGSTOP and, when sexton is not PID 1, sexton itself,
    /// so that the shell it runs under sees the job stop; SIGCONT (which
    /// resumes sexton by itself) is then forwarded like any other signal.
    fn on_signal(&self, signo: i32, code: i32, leader: i32, pid1: bool) {
        if signals::origin(signo, code) == Origin::OwnFault {
            signals::die_of(signo);
            return;
        }
        if self.forwarding.forward(signo, leader) == Forwarded::JobStop && !pid1 {
            let _ = nix::sys::signal::kill(Pid::this(), Signal::SIGSTOP);
        }
    }
}

/// SIGCONT for the leftovers that are stopped (state `T`), which could
/// not act on the stop signal otherwise; the others get none (a SIGCONT
/// is a signal like any other, which a program may count or act on).
/// The leftovers are the tree's live members, or as PID 1 every process
/// in /proc but sexton: this assumes /proc is this namespace's, as in
/// any container. With another namespace's /proc (or none) a stopped
/// leftover misses its SIGCONT and gets the SIGKILL after the grace, and
/// a process here may get a needless SIGCONT (which every leftover got
/// before). The stop signal is sent first; a process that stops after
/// the look is not resumed.
fn resume_stopped(tree: &mut Tree, pid1: bool) {
    let leftovers = if pid1 {
        crate::procfs::processes()
    } else {
        tree.members()
    };
    for p in leftovers {
        if p.state == 'T' && p.pid != std::process::id() as i32 {
            let _ = sys::kill_raw(p.pid, Signal::SIGCONT as i32);
        }
    }
}

/// `poll(2)` on the signalfd, retried on EINTR with the same timeout
/// (a spurious early wakeup only costs one more pass of the loop).
fn wait_readable(fd: std::os::fd::BorrowedFd<'_>, timeout: PollTimeout) -> Result<(), InitError> {
    loop {
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(InitError::Poll(e.into())),
        }
    }
}
