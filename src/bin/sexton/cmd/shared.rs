//! `sexton shared [--pid PID] [--json]`

use clap::Args;
use sexton::audit::shared;

/// List connected sockets and pipe ends open in more than one process.
#[derive(Debug, Args)]
pub struct SharedArgs {
    /// Only sockets and pipes with a holder in the subtree of PID.
    #[arg(long, value_name = "PID")]
    pub pid: Option<i32>,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
    /// Colour the findings: auto (a terminal without NO_COLOR), always, never.
    #[arg(long, value_enum, value_name = "WHEN", default_value = "auto")]
    pub color: super::Color,
}

pub fn main(a: SharedArgs) -> i32 {
    let scan = match super::audit::take() {
        Ok(s) => s,
        Err(code) => return code,
    };
    if let Err(code) = super::audit::scope(&scan, "shared", a.pid) {
        return code;
    }
    let findings = shared::find(&scan, a.pid);
    super::audit::print(&scan, findings, a.json, a.color)
}
