//! `sexton why PID [--json]`

use crate::exit;
use clap::Args;
use sexton::audit::{AuditError, Report, escape_controls, why};

/// Explain what PID is blocked on and who holds the other end.
#[derive(Debug, Args)]
pub struct WhyArgs {
    /// The process to explain.
    #[arg(value_name = "PID")]
    pub pid: i32,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
    /// Colour the explanation: auto (a terminal without NO_COLOR), always, never.
    #[arg(long, value_enum, value_name = "WHEN", default_value = "auto")]
    pub color: super::Color,
}

pub fn main(a: WhyArgs) -> i32 {
    let (scan, f) = match why::explain_settled(a.pid) {
        Ok(r) => r,
        Err(e) => {
            exit::error(format!("cannot read /proc: {e}"), None);
            return exit::USAGE;
        }
    };
    let f = match f {
        Ok(f) => f,
        Err(e @ AuditError::NoSuchPid(_)) => {
            exit::error(format!("why {}: {e}", a.pid), None);
            return exit::USAGE;
        }
    };
    super::audit::note_skipped(scan.skipped(), scan.skip_reason());
    if a.json {
        let r = Report {
            findings: vec![f],
            scanned: scan.scanned(),
            duration_ms: scan.elapsed_ms(),
        };
        super::audit::emit(&(r.to_json() + "\n"));
    } else {
        let e = escape_controls;
        let mut text = format!(
            "{} {}  [state {}]\n  {}\n",
            f.pid,
            e(&f.cmdline),
            f.state.as_deref().unwrap_or("?"),
            e(&f.message)
        );
        if !f.hint.is_empty() {
            text.push_str(&format!("  hint: {}\n", e(&f.hint)));
        }
        super::audit::emit(&super::paint_findings(text, a.color.enabled()));
    }
    0
}
