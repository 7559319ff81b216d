//! `sexton audit [--pid PID] [--json]`, and the printing shared by the
//! audit commands.

use crate::exit;
use clap::Args;
use sexton::audit::{self, Finding, Report, Scan};
use std::io::Write;

/// Run every check (zombies, orphans, shared sockets and pipes), machine-wide or for a subtree.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only the subtree of PID.
    #[arg(long, value_name = "PID")]
    pub pid: Option<i32>,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
    /// Colour the findings: auto (a terminal without NO_COLOR), always, never.
    #[arg(long, value_enum, value_name = "WHEN", default_value = "auto")]
    pub color: super::Color,
}

pub fn main(a: AuditArgs) -> i32 {
    let scan = match take() {
        Ok(s) => s,
        Err(code) => return code,
    };
    if let Err(code) = scope(&scan, "audit", a.pid) {
        return code;
    }
    let findings = audit::all(&scan, a.pid);
    print(&scan, findings, a.json, a.color)
}

/// Scans /proc for an audit command; when /proc cannot be read at all
/// (no descriptor left to open it with), says so and gives the exit
/// status (2: nothing could be checked).
pub fn take() -> Result<Scan, i32> {
    Scan::try_take().map_err(|e| {
        exit::error(format!("cannot read /proc: {e}"), None);
        exit::USAGE
    })
}

/// Checks the `--pid PID` of an audit command: PID must be a process of
/// the scan. On error, says so and gives the exit status.
pub fn scope(scan: &Scan, command: &str, pid: Option<i32>) -> Result<(), i32> {
    match pid {
        Some(pid) if scan.get(pid).is_none() => {
            exit::error(format!("{command} --pid {pid}: no such process"), None);
            Err(exit::USAGE)
        }
        _ => Ok(()),
    }
}

/// Says once on stderr how many processes a scan could not look into
/// (their fds were not readable), if any, and why: `reason` when it was
/// not a matter of permissions (EMFILE, `No file descriptors available`).
pub fn note_skipped(skipped: usize, reason: Option<String>) {
    if skipped == 0 {
        return;
    }
    let what = if skipped == 1 {
        "1 process".to_string()
    } else {
        format!("{skipped} processes")
    };
    if let Some(why) = reason {
        eprintln!("sexton: note: {what} could not be read: {why}");
    } else if rustix::process::geteuid().is_root() {
        eprintln!("sexton: note: {what} could not be read (permission denied)");
    } else {
        eprintln!("sexton: note: {what} could not be read (not yours); run as root to see them");
    }
}

/// Prints a scan's findings (human blocks or one JSON document) on
/// stdout, the human ones coloured as `color` says, and the note on
/// processes it could not read on stderr; returns 1 if there is any
/// finding, 0 if not.
pub fn print(scan: &Scan, findings: Vec<Finding>, json: bool, color: super::Color) -> i32 {
    note_skipped(scan.skipped(), scan.skip_reason());
    let n = findings.len();
    let report = Report {
        findings,
        scanned: scan.scanned(),
        duration_ms: scan.elapsed_ms(),
    };
    let text = if json {
        report.to_json() + "\n"
    } else {
        let on = color.enabled();
        let mut t = super::paint_findings(audit::render(&report.findings), on);
        if n > 0 {
            t.push('\n');
        }
        t + &super::paint_summary(summary(n, &report), on)
    };
    emit(&text);
    i32::from(n > 0)
}

/// `2 findings (3081 processes, 27100 fds scanned in 41.0 ms)`.
pub fn summary(n: usize, r: &Report) -> String {
    let what = match n {
        0 => "no findings".to_string(),
        1 => "1 finding".to_string(),
        n => format!("{n} findings"),
    };
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    format!(
        "{what} ({}, {} scanned in {} ms)\n",
        plural(r.scanned.processes, "process", "processes"),
        plural(r.scanned.fds, "fd", "fds"),
        r.duration_ms
    )
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
pub fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        exit::error(format!("cannot write the report: {e}"), None);
    }
}
