//! `sexton init [OPTIONS] -- PROGRAM [ARGS...]`

use crate::cmd::run::{parse_duration, parse_signal};
use crate::exit;
use clap::Args;
use nix::sys::signal::Signal;
use sexton::reap::{Init, InitError};
use sexton::tree::TreeError;
use std::time::Duration;

/// An init for containers and a subreaper elsewhere: reaps every
/// process, forwards signals, stops leftovers when PROGRAM exits.
///
/// Every signal is forwarded, the fault signals (SEGV, ABRT...) that
/// another process sends included. Terminal-stop signals (TSTP, TTIN,
/// TTOU) are forwarded as STOP to the program's group, as themselves
/// with --child-only; sexton never stops itself as PID 1; when not PID 1
/// it then stops too, so the shell sees the job stop (CONT resumes both).
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Forward signals to PROGRAM alone, not to its process group
    /// (terminal-stop signals unchanged, not as STOP).
    #[arg(long)]
    pub child_only: bool,
    /// Forward signal FROM as TO (TO 0: do not forward FROM); repeatable.
    #[arg(long, value_name = "FROM:TO", value_parser = parse_rewrite)]
    pub rewrite: Vec<(Signal, i32)>,
    /// The stop signal for processes left when PROGRAM exits.
    #[arg(short = 's', long, value_name = "SIG", default_value = "TERM", value_parser = parse_signal)]
    pub signal: Signal,
    /// Time between the stop signal and SIGKILL for leftovers.
    #[arg(short = 'g', long, value_name = "DUR", default_value = "5s", value_parser = parse_duration)]
    pub grace: Duration,
    /// Taken by every command: auto, always, never. init colours nothing
    /// (what it prints is PROGRAM's output and one-line errors).
    #[arg(long, value_enum, value_name = "WHEN", default_value = "auto")]
    pub color: super::Color,
    #[command(flatten)]
    pub program: super::Program,
}

fn parse_rewrite(s: &str) -> Result<(Signal, i32), String> {
    sexton::parse::rewrite(s).map_err(|e| e.to_string())
}

pub fn main(a: InitArgs) -> i32 {
    let mut init = Init::new()
        .signal_state(crate::caller::signals())
        .child_only(a.child_only)
        .stop_signal(a.signal)
        .grace(a.grace);
    for &(from, to) in &a.rewrite {
        init = init.rewrite(from as i32, to);
    }
    let mut cmd = std::process::Command::new(&a.program.command[0]);
    cmd.args(&a.program.command[1..]);
    match init.run(&mut cmd) {
        Ok(out) => out.exit_code(),
        Err(e) => {
            exit::error(&e, None);
            match e {
                InitError::Tree(TreeError::NotFound { .. }) => exit::NOT_FOUND,
                InitError::Tree(TreeError::NotExecutable { .. }) => exit::NOT_EXECUTABLE,
                _ => exit::FAILED,
            }
        }
    }
}
