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
    /// Colour the report (on stderr): auto (a terminal without NO_COLOR), always, never.
    #[arg(long, value_enum, value_name = "WHEN", default_value = "auto")]
    pub color: super::Color,
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
    super::audit::note_skipped(report.scanned.skipped, None);
    let cut = interrupted(&outcome);
    if a.json {
        let doc = match (&cut, serde_json::to_value(&report)) {
            // `"interrupted": {"signal": "TERM"}` after `duration_ms`.
            (Some(sig), Ok(serde_json::Value::Object(mut doc))) => {
                doc.insert("interrupted".into(), serde_json::json!({ "signal": sig }));
                serde_json::Value::Object(doc).to_string()
            }
            _ => report.to_json(),
        };
        super::audit::emit(&(doc + "\n"));
    } else {
        let on = a.color.enabled_on(&std::io::stderr());
        let mut t = super::paint_findings(audit::render(&report.findings), on);
        if n > 0 {
            t.push('\n');
        }
        match &cut {
            None => {
                let summary = super::paint_summary(super::audit::summary(n, &report), on);
                eprint!("{t}sexton check: {summary}");
            }
            Some(sig) => {
                let program = a.program.command[0].to_string_lossy();
                let found = match n {
                    0 => "nothing found until then".to_string(),
                    1 => "1 finding until then".to_string(),
                    n => format!("{n} findings until then"),
                };
                let summary = super::audit::summary(n, &report);
                let numbers = summary.find(" (").map_or("\n", |i| &summary[i..]);
                let label = if on {
                    super::paint("interrupted:", super::sgr::YELLOW)
                } else {
                    "interrupted:".to_string()
                };
                eprint!(
                    "{t}sexton check: {label} {} was killed by SIG{sig} before it finished, so the check is incomplete: {found}{numbers}",
                    audit::escape_controls(&program)
                );
            }
        }
    }
    if cut.is_some() || n == 0 {
        outcome.exit_status(false, false)
    } else {
        1
    }
}

/// The signal that cut the check short, if one did: PROGRAM was ended by
/// a signal that stops a program from outside (the terminating ones
/// sexton forwards, SIGTERM, SIGINT, SIGHUP, SIGQUIT, and SIGKILL), or
/// sexton check itself was killed (its lifeline closed). sexton cannot
/// tell a signal it forwarded from one PROGRAM got otherwise (Ctrl-C
/// reaches a foreground program directly): either way PROGRAM did not
/// run to its own end, and the check saw only part of its run.
fn interrupted(o: &sexton::Outcome) -> Option<String> {
    use nix::sys::signal::Signal;
    let outside = [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGKILL,
    ];
    match (o.exit_code, o.signal_number) {
        (None, Some(n)) if o.lifeline_lost || outside.iter().any(|&s| s as i32 == n) => {
            Some(sexton::parse::signal_name_of(n).into_owned())
        }
        _ => None,
    }
}
