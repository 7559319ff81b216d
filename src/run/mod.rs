//! Run one program as a tracked tree and return its [`Outcome`]: the
//! library side of `sexton run`.
//!
//! ```
//! use std::time::Duration;
//! let out = sexton::Command::new("sh")
//!     .args(["-c", "echo start ok; sleep 30 &"])
//!     .timeout(Duration::from_secs(10))
//!     .wait_delay(Duration::from_millis(100))
//!     .leftovers(sexton::Leftovers::Kill)
//!     .run()
//!     .unwrap();
//! assert_eq!(out.stdout, "start ok\n");
//! assert_eq!(out.exit_code, Some(0));
//! // The backgrounded sleep held stdout and stderr open; it was found
//! // and killed.
//! assert_eq!(out.leftovers.len(), 1);
//! assert_eq!(out.leftovers[0].holds, ["stdout", "stderr"]);
//! ```
//!
//! The calling process becomes a child subreaper (see [`crate::tree`]).
//! In subreaper mode, a host that spawns other children from other threads
//! while a run is in progress should prefer cgroup tracking, which is
//! exact.

mod event_loop;
pub mod log;
mod outcome;

pub use outcome::{Leftover, LeftoverAction, Outcome, Usage};

use crate::tree::{Group, Tracking, TreeError};
use nix::sys::signal::Signal;
use std::ffi::{OsStr, OsString};
use std::os::fd::{OwnedFd, RawFd};
use std::path::PathBuf;
use std::time::Duration;

/// Where the program's stdin comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Input {
    /// `/dev/null` (the library's default, as `std::process::Command::output`
    /// and Go's `exec.Cmd` do: a program that reads stdin cannot hang on
    /// a terminal or an idle pipe it did not ask for). `sexton run`
    /// inherits instead, as GNU `timeout` does.
    #[default]
    Null,
    /// The calling process's own stdin.
    Inherit,
    /// A file.
    File(PathBuf),
}

/// What happens to one of the program's output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Output {
    /// Read into memory (bounded by the output limit) and returned.
    #[default]
    Capture,
    /// Through a pipe that sexton owns, forwarded to sexton's own fd of
    /// the same number: the program's descendants can never hold the
    /// caller's pipe.
    Forward,
    /// Forwarded and captured (for the run log).
    Tee,
    /// The program gets sexton's own fd (a terminal, typically).
    Inherit,
}

/// What to do with descendants alive after the program exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Leftovers {
    /// Report them and let them run.
    #[default]
    Leave,
    /// Report them and kill them.
    Kill,
    /// Kill them and make the run fail (exit 123).
    Fail,
}

/// Errors that keep a run from producing an outcome.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error("cannot open input {path}: {source}")]
    Input {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot set up the program's {what}: {source}")]
    Setup {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot use {path} as the working directory: {source}")]
    Cwd {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("empty command")]
    Empty,
}

/// Builder for one run, in the manner of `std::process::Command`.
#[derive(Debug)]
pub struct Command {
    pub(crate) argv: Vec<OsString>,
    pub(crate) shell: bool,
    pub(crate) env: Vec<(OsString, OsString)>,
    pub(crate) clear_env: bool,
    pub(crate) cwd: Option<PathBuf>,
    pub(crate) input: Input,
    pub(crate) stdout: Output,
    pub(crate) stderr: Output,
    pub(crate) output_limit: Option<u64>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) signal: i32,
    pub(crate) kill_after: Option<Duration>,
    pub(crate) wait_delay: Duration,
    pub(crate) leftovers: Leftovers,
    pub(crate) tracking: Tracking,
    pub(crate) pass_fds: Vec<RawFd>,
    pub(crate) lifeline: Option<OwnedFd>,
    pub(crate) forward_signals: bool,
    pub(crate) sampler: Option<Sampler>,
    pub(crate) signal_state: Option<crate::tree::SignalState>,
    pub(crate) group: Group,
    pub(crate) on_signal: Option<OnSignal>,
}

/// A callback the event loop calls with the live tree at a fixed
/// interval while the run lasts (see [`Command::sample_every`]).
pub struct Sampler {
    pub(crate) interval: Duration,
    pub(crate) f: Box<dyn FnMut(&mut crate::tree::Tree) + Send>,
}

/// The callback of [`Command::on_signal`].
pub struct OnSignal(pub(crate) Box<dyn FnMut(i32) + Send>);

impl std::fmt::Debug for OnSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnSignal")
    }
}

impl std::fmt::Debug for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sampler")
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl Command {
    /// A run of `program`, found in `PATH` when it has no slash.
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        Command {
            argv: vec![program.as_ref().to_owned()],
            shell: false,
            env: Vec::new(),
            clear_env: false,
            cwd: None,
            input: Input::Null,
            stdout: Output::Capture,
            stderr: Output::Capture,
            output_limit: None,
            timeout: None,
            signal: libc::SIGTERM,
            kill_after: Some(Duration::from_secs(2)),
            wait_delay: Duration::from_millis(250),
            leftovers: Leftovers::Leave,
            tracking: Tracking::Auto,
            pass_fds: Vec::new(),
            lifeline: None,
            forward_signals: false,
            sampler: None,
            signal_state: None,
            group: Group::New,
            on_signal: None,
        }
    }

    /// A run of `sh -c script`.
    pub fn shell(script: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new(script);
        c.shell = true;
        c
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.argv.push(a.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.argv
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Self {
        self.env
            .push((k.as_ref().to_owned(), v.as_ref().to_owned()));
        self
    }

    /// Start from an empty environment (`--clear-env`).
    pub fn clear_env(mut self) -> Self {
        self.clear_env = true;
        self
    }

    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    pub fn input(mut self, input: Input) -> Self {
        self.input = input;
        self
    }

    pub fn stdout(mut self, o: Output) -> Self {
        self.stdout = o;
        self
    }

    pub fn stderr(mut self, o: Output) -> Self {
        self.stderr = o;
        self
    }

    /// Keep at most this many bytes of each captured stream (half from
    /// the start, half from the end).
    pub fn output_limit(mut self, bytes: u64) -> Self {
        self.output_limit = Some(bytes);
        self
    }

    /// Send the stop signal to the whole tree after this long (zero: no
    /// timeout, as GNU `timeout 0`).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    /// The stop signal (default SIGTERM).
    pub fn signal(mut self, s: Signal) -> Self {
        self.signal = s as i32;
        self
    }

    /// The stop signal by number: realtime signals, and 0 (GNU `timeout
    /// -s 0`: the timeout sends nothing, and only the kill-after ends the
    /// program).
    pub fn signal_number(mut self, signo: i32) -> Self {
        self.signal = signo;
        self
    }

    /// Call `f` with the signal number each time the timeout sends the
    /// stop signal or the kill-after sends SIGKILL (`sexton run -v`).
    pub fn on_signal(mut self, f: impl FnMut(i32) + Send + 'static) -> Self {
        self.on_signal = Some(OnSignal(Box::new(f)));
        self
    }

    /// The process group the program joins: its own (the default), or an
    /// existing one of this session. `sexton run` joins its own group
    /// when it runs in the terminal's foreground, so that an interactive
    /// program can read the terminal and gets Ctrl-C from it directly.
    pub fn group(mut self, g: Group) -> Self {
        self.group = g;
        self
    }

    /// SIGKILL the tree this long after the stop signal (default 2 s;
    /// `None` never).
    pub fn kill_after(mut self, d: Option<Duration>) -> Self {
        self.kill_after = d;
        self
    }

    /// How long to keep reading output after the program exits while
    /// descendants hold the pipes (default 250 ms).
    pub fn wait_delay(mut self, d: Duration) -> Self {
        self.wait_delay = d;
        self
    }

    pub fn leftovers(mut self, l: Leftovers) -> Self {
        self.leftovers = l;
        self
    }

    pub fn tracking(mut self, t: Tracking) -> Self {
        self.tracking = t;
        self
    }

    /// Keep fd `fd` open in the program (it gets 0, 1, 2 and these only).
    pub fn pass_fd(mut self, fd: RawFd) -> Self {
        self.pass_fds.push(fd);
        self
    }

    /// Kill the tree and return as soon as `fd` reads EOF or hangs up:
    /// give it the read end of a pipe whose write end only the process
    /// that must not be outlived holds.
    pub fn lifeline(mut self, fd: OwnedFd) -> Self {
        self.lifeline = Some(fd);
        self
    }

    /// Block SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and
    /// SIGWINCH in the calling thread and forward them to the whole tree
    /// (a terminating one also arms `kill_after`). Meant for
    /// single-threaded command-line front ends.
    pub fn forward_signals(mut self, on: bool) -> Self {
        self.forward_signals = on;
        self
    }

    /// The signal mask and ignored signals the program starts with
    /// (default: those of the thread that calls [`Command::run`], taken
    /// before sexton blocks anything). A front end that blocked signals
    /// before it got here passes what its own caller gave it.
    pub fn signal_state(mut self, state: crate::tree::SignalState) -> Self {
        self.signal_state = Some(state);
        self
    }

    /// Call `f` with the tree right after the spawn and then every
    /// `interval` until the run ends (between poll wakeups of the event
    /// loop; a slow `f` delays the loop, never the program). This is how
    /// `sexton check` watches a tree while it runs.
    pub fn sample_every(
        mut self,
        interval: Duration,
        f: impl FnMut(&mut crate::tree::Tree) + Send + 'static,
    ) -> Self {
        self.sampler = Some(Sampler {
            interval: interval.max(Duration::from_millis(1)),
            f: Box::new(f),
        });
        self
    }

    /// The argv the program will see, as strings.
    pub fn argv_lossy(&self) -> Vec<String> {
        if self.shell {
            let mut v = vec!["sh".to_string(), "-c".to_string()];
            v.extend(self.argv.iter().map(|a| a.to_string_lossy().into_owned()));
            v
        } else {
            self.argv
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        }
    }

    /// Runs the program to the end and returns what happened.
    pub fn run(self) -> Result<Outcome, RunError> {
        event_loop::run(self)
    }
}
