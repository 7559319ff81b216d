//! `sexton check [--json] [--interval DUR] -- PROGRAM [ARGS...]`

use crate::exit;
use clap::Args;
use sexton::audit::check::{CheckOptions, Checker};
use sexton::audit::{self, Report};
use sexton::{Command, Leftovers, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Run PROGRAM as `run` does while sampling its tree, and report every defect it caused.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Time between two samples of the tree.
    #[arg(long, value_name = "DUR", default_value = "10ms", value_parser = super::run::parse_duration)]
    pub interval: Duration,
    /// A zombie unreaped this long while its parent lives is a finding.
    #[arg(long, value_name = "DUR", default_value = "250ms", value_parser = super::run::parse_duration)]
    pub zombie_after: Duration,
    /// After PROGRAM exits, how long to wait for descendants to release its output.
    #[arg(long, value_name = "DUR", default_value = "250ms", value_parser = super::run::parse_duration)]
    pub wait_delay: Duration,
    /// Print one JSON document on stdout (after PROGRAM's own output).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub program: super::Program,
}

pub fn main(a: CheckArgs) -> i32 {
    if a.interval.is_zero() {
        exit::error(
            "usage: --interval must be more than 0",
            Some("try 'sexton check --help'"),
        );
        return exit::FAILED;
    }
    let Some(w) = super::run::worker() else {
        exit::error("cannot start the check: no worker", None);
        return exit::FAILED;
    };
    let (fg, pgrp, lifeline) = (w.foreground, w.pgrp, w.lifeline);
    let checker = Arc::new(Mutex::new(Checker::new(CheckOptions {
        interval: a.interval,
        zombie_after: a.zombie_after,
    })));
    let sampler = Arc::clone(&checker);
    let mut cmd = Command::new(&a.program.command[0])
        .args(&a.program.command[1..])
        .stdout(Output::Forward)
        .stderr(Output::Forward)
        .wait_delay(a.wait_delay)
        .signal_state(crate::caller::signals())
        .leftovers(Leftovers::Kill)
        .lifeline(lifeline)
        .forward_signals(true)
        .sample_every(a.interval, move |tree| {
            if let Ok(mut c) = sampler.lock() {
                c.sample(tree);
            }
        })
        .input(sexton::Input::Inherit);
    if fg {
        cmd = cmd.group(sexton::tree::Group::Join(pgrp));
    }
    let outcome = match cmd.run() {
        Ok(o) => o,
        Err(e) => {
            exit::error(&e, None);
            return super::run::start_failure(&e);
        }
    };
    let checker = match checker.lock() {
        Ok(c) => c,
        Err(p) => p.into_inner(),
    };
    let findings = checker.findings(&outcome);
    let n = findings.len();
    let report = Report {
        findings,
        scanned: checker.scanned(),
        duration_ms: checker.elapsed_ms(),
    };
    if a.json {
        super::audit::emit(&(report.to_json() + "\n"));
    } else {
        let mut t = audit::render(&report.findings);
        if n > 0 {
            t.push('\n');
        }
        eprint!("{t}sexton check: {}", super::audit::summary(n, &report));
    }
    if n > 0 {
        1
    } else {
        outcome.exit_status(false, false)
    }
}
