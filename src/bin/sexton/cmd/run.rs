//! `sexton run [OPTIONS] -- PROGRAM [ARGS...]`

use crate::exit;
use clap::builder::TypedValueParser;
use clap::{Args, ValueEnum};
use nix::sys::signal::Signal;
use sexton::tree::{Tracking, TreeError};
use sexton::{Command, Input, Leftovers, Output, RunError, parse};
use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

/// Run one program as a tracked tree and return its outcome.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// After DUR, send the stop signal to the whole tree (exit 124; 0: no timeout).
    #[arg(short = 't', long, value_name = "DUR", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// The stop signal (a name, RTMIN+N, or a number; 0 sends nothing).
    #[arg(short = 's', long, value_name = "SIG", default_value = "TERM", value_parser = parse_signal_number)]
    pub signal: i32,
    /// SIGKILL the whole tree if it is alive DUR after the stop signal (0: never).
    #[arg(short = 'k', long, value_name = "DUR", default_value = "2s", value_parser = parse_duration)]
    pub kill_after: Duration,
    /// After PROGRAM exits, keep reading its output this long while descendants hold the pipes.
    #[arg(long, value_name = "DUR", default_value = "250ms", value_parser = parse_duration)]
    pub wait_delay: Duration,
    /// What to do with descendants alive after PROGRAM exits (fail: kill them, exit 123).
    #[arg(long, value_enum, default_value = "leave")]
    pub leftovers: LeftoversArg,
    /// PROGRAM's stdin: a file, or - for sexton's own (the default).
    #[arg(long, value_name = "FILE", conflicts_with = "no_stdin")]
    pub input: Option<PathBuf>,
    /// Give PROGRAM /dev/null as its stdin.
    #[arg(long)]
    pub no_stdin: bool,
    /// Run PROGRAM in sexton's own process group, so it can read the
    /// terminal and gets the terminal's signals (Ctrl-C) directly; the
    /// default whenever stdin is a terminal and sexton runs in its
    /// foreground.
    #[arg(long)]
    pub foreground: bool,
    /// Say on stderr which signal is sent to PROGRAM's tree, and when.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Run PROGRAM in DIR.
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Set K=V in PROGRAM's environment (repeatable).
    #[arg(long = "env", value_name = "K=V", value_parser = clap::builder::OsStringValueParser::new().try_map(parse_env))]
    pub env: Vec<(OsString, OsString)>,
    /// Start PROGRAM with an empty environment (plus --env).
    #[arg(long)]
    pub clear_env: bool,
    /// PROGRAM is one string run by `sh -c`.
    #[arg(long)]
    pub shell: bool,
    /// Capture stdout and stderr and print one JSON result document.
    #[arg(long)]
    pub json: bool,
    /// Keep at most this much of each captured stream (head and tail).
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub output_limit: Option<u64>,
    /// Append one JSON line per run to FILE.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Keep fd N open in PROGRAM (repeatable); it gets 0, 1, 2 otherwise.
    #[arg(long = "pass-fd", value_name = "N")]
    pub pass_fd: Vec<i32>,
    /// How to follow the tree.
    #[arg(long, value_enum, default_value = "auto")]
    pub tracking: TrackingArg,
    /// On timeout, exit with PROGRAM's status instead of 124.
    #[arg(long)]
    pub preserve_status: bool,
    /// Taken by every command: auto, always, never. run colours nothing
    /// (what it prints is PROGRAM's output and one-line errors).
    #[arg(long, value_enum, value_name = "WHEN", default_value = "auto")]
    pub color: super::Color,
    #[command(flatten)]
    pub program: super::Program,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LeftoversArg {
    Leave,
    Kill,
    Fail,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TrackingArg {
    Auto,
    Cgroup,
    Subreaper,
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    parse::duration(s).map_err(|e| e.to_string())
}

pub fn parse_signal(s: &str) -> Result<Signal, String> {
    parse::signal(s).map_err(|e| e.to_string())
}

pub fn parse_signal_number(s: &str) -> Result<i32, String> {
    parse::signal_number(s).map_err(|e| e.to_string())
}

pub fn parse_size(s: &str) -> Result<u64, String> {
    parse::size(s).map_err(|e| e.to_string())
}

/// `K=V`, as bytes: a value need not be UTF-8, as in any environment.
fn parse_env(s: OsString) -> Result<(OsString, OsString), String> {
    parse::env_pair(&s).map_err(|e| e.to_string())
}

/// How a stream of the program reaches sexton's own fd.
fn output_mode(json: bool, log: bool, is_tty: bool) -> Output {
    if json {
        Output::Capture
    } else if is_tty && !log {
        Output::Inherit
    } else if log {
        Output::Tee
    } else {
        Output::Forward
    }
}

/// Builds the library command from the arguments.
pub fn build(a: &RunArgs) -> Result<Command, String> {
    for &fd in &a.pass_fd {
        if fd < 3 || nix::fcntl::fcntl(unsafe_borrow(fd), nix::fcntl::FcntlArg::F_GETFD).is_err() {
            return Err(format!("--pass-fd {fd}: not an open descriptor above 2"));
        }
    }
    let mut c = if a.shell {
        if a.program.command.len() != 1 {
            return Err("--shell takes exactly one string: sexton run --shell -- 'a | b'".into());
        }
        Command::shell(&a.program.command[0])
    } else {
        Command::new(&a.program.command[0]).args(&a.program.command[1..])
    };
    c = c
        .signal_number(a.signal)
        .kill_after((!a.kill_after.is_zero()).then_some(a.kill_after))
        .wait_delay(a.wait_delay)
        .leftovers(match a.leftovers {
            LeftoversArg::Leave => Leftovers::Leave,
            LeftoversArg::Kill => Leftovers::Kill,
            LeftoversArg::Fail => Leftovers::Fail,
        })
        .tracking(match a.tracking {
            TrackingArg::Auto => Tracking::Auto,
            TrackingArg::Cgroup => Tracking::Cgroup,
            TrackingArg::Subreaper => Tracking::Subreaper,
        })
        .signal_state(crate::caller::signals())
        .stdout(output_mode(
            a.json,
            a.log.is_some(),
            std::io::stdout().is_terminal(),
        ))
        .stderr(output_mode(
            a.json,
            a.log.is_some(),
            std::io::stderr().is_terminal(),
        ));
    if let Some(t) = a.timeout {
        c = c.timeout(t);
    }
    if a.json
        && let Some(limit) = a.output_limit
    {
        c = c.output_limit(limit);
    } else if !a.json && a.log.is_some() {
        // The log keeps 4 KiB of each stream: the copy kept for it needs
        // no more, however much the program writes.
        c = c.output_limit(sexton::run::log::STREAM_LIMIT);
    }
    c = match &a.input {
        _ if a.no_stdin => c.input(Input::Null),
        None => c.input(Input::Inherit),
        Some(p) if p.as_os_str() == "-" => c.input(Input::Inherit),
        Some(p) => c.input(Input::File(p.clone())),
    };
    if a.verbose {
        let program = a.program.command[0].to_string_lossy().into_owned();
        c = c.on_signal(move |signo| {
            eprintln!(
                "sexton: sending signal {} to command '{program}'",
                parse::signal_name_of(signo)
            )
        });
    }
    if let Some(d) = &a.cwd {
        c = c.cwd(d);
    }
    if a.clear_env {
        c = c.clear_env();
    }
    for (k, v) in &a.env {
        c = c.env(k, v);
    }
    for &fd in &a.pass_fd {
        c = c.pass_fd(fd);
    }
    Ok(c)
}

fn unsafe_borrow(fd: i32) -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: only used for an F_GETFD probe; an fd that is not open just
    // yields EBADF.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}

/// The exit status for a run that could not start.
pub fn start_failure(e: &RunError) -> i32 {
    match e {
        RunError::Tree(TreeError::NotFound { .. }) => exit::NOT_FOUND,
        RunError::Tree(TreeError::NotExecutable { .. }) => exit::NOT_EXECUTABLE,
        _ => exit::FAILED,
    }
}

/// Whether the program should share sexton's (foreground) process group:
/// asked for, or stdin is a terminal whose foreground group is sexton's.
pub fn foreground(asked: bool) -> bool {
    asked
        || (std::io::stdin().is_terminal()
            && nix::unistd::tcgetpgrp(std::io::stdin()).is_ok_and(|g| g == nix::unistd::getpgrp()))
}

/// Splits off the worker that runs the tree (see `sexton::tree::guard`);
/// returns in the worker with the lifeline, or the error to report.
pub fn split(foreground: bool) -> Result<std::os::fd::OwnedFd, String> {
    let guard = sexton::tree::guard::Guard {
        forward: sexton::tree::signals::set_of(&sexton::tree::signals::FORWARDED),
        forward_terminal: !foreground,
        worker_only: Vec::new(),
        long_lived: false,
    };
    // SAFETY: sexton is single-threaded here (clap spawns no thread).
    unsafe { guard.split() }.map_err(|e| format!("cannot start the run: {e}"))
}

/// What the early split left the worker: the lifeline from the guard,
/// whether the program shares the guard's (foreground) group, and that
/// group.
pub struct Worker {
    pub lifeline: std::os::fd::OwnedFd,
    pub foreground: bool,
    pub pgrp: i32,
}

static WORKER: std::sync::Mutex<Option<Worker>> = std::sync::Mutex::new(None);

/// `run` and `check` split into guard and worker (see
/// `sexton::tree::guard`) first thing, before the command line is even
/// parsed: a fork is cheapest while the process has written little (every
/// page written before it is copied again by the first write after it),
/// and a usage error is then simply the worker's to print. The
/// foreground question needs only `--foreground` among the options.
/// Returns the error to report when the split fails.
pub fn split_early() -> Result<(), String> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let Some(sub) = args.first() else {
        return Ok(());
    };
    if sub != "run" && sub != "check" {
        return Ok(());
    }
    let asked = args[1..]
        .iter()
        .take_while(|a| a.as_os_str() != "--")
        .any(|a| a == "--foreground");
    let fg = foreground(asked);
    // The guard's group, named before the split: the worker leaves it.
    let pgrp = nix::unistd::getpgrp().as_raw();
    let lifeline = split(fg)?;
    *WORKER.lock().unwrap_or_else(|p| p.into_inner()) = Some(Worker {
        lifeline,
        foreground: fg,
        pgrp,
    });
    Ok(())
}

/// The worker's side of the early split (`None` if it did not happen).
pub fn worker() -> Option<Worker> {
    WORKER.lock().unwrap_or_else(|p| p.into_inner()).take()
}

pub fn main(a: RunArgs) -> i32 {
    let cmd = match build(&a) {
        Ok(c) => c,
        Err(e) => {
            exit::error(format!("usage: {e}"), Some("try 'sexton run --help'"));
            return exit::FAILED;
        }
    };
    let Some(w) = worker() else {
        exit::error("cannot start the run: no worker", None);
        return exit::FAILED;
    };
    let mut cmd = cmd.lifeline(w.lifeline).forward_signals(true);
    if w.foreground {
        cmd = cmd.group(sexton::tree::Group::Join(w.pgrp));
    }
    let argv = cmd.argv_lossy();
    let (outcome, status) = match cmd.run() {
        Ok(o) => {
            let status =
                o.exit_status(a.preserve_status, matches!(a.leftovers, LeftoversArg::Fail));
            (o, status)
        }
        Err(e) => {
            exit::error(&e, None);
            (
                sexton::Outcome::start_failure(argv, e.to_string()),
                start_failure(&e),
            )
        }
    };
    // A log that cannot be written fails the run (125), but the result
    // document still comes out: it is the run's only other record.
    let mut status = status;
    if let Some(path) = &a.log
        && let Err(e) = sexton::run::log::append(path, &outcome)
    {
        exit::error(format!("cannot write log {}: {e}", path.display()), None);
        status = exit::FAILED;
    }
    if a.json {
        let mut out = std::io::stdout().lock();
        let line = outcome.to_json();
        if let Err(e) = writeln!(out, "{line}").and_then(|_| out.flush())
            && e.kind() != std::io::ErrorKind::BrokenPipe
        {
            exit::error(format!("cannot write the result: {e}"), None);
            return exit::FAILED;
        }
    }
    if !a.json && matches!(a.leftovers, LeftoversArg::Fail) {
        // Without the result document, say why the run fails.
        for l in &outcome.leftovers {
            let holds = if l.holds.is_empty() {
                String::new()
            } else {
                format!(", held {}", l.holds.join(" and "))
            };
            exit::error(
                format!(
                    "leftover: pid {} ({}) still ran after the program exited{holds}; killed",
                    l.pid, l.cmdline
                ),
                None,
            );
        }
    }
    status
}
