//! `sexton orphans [--pid PID] [--json]`

use clap::Args;
use sexton::audit::orphans;

/// List processes left running by a killed group leader (adopted by PID 1 or a subreaper).
#[derive(Debug, Args)]
pub struct OrphansArgs {
    /// Only orphans in the subtree of PID.
    #[arg(long, value_name = "PID")]
    pub pid: Option<i32>,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
    /// Colour the findings: auto (a terminal without NO_COLOR), always, never.
    #[arg(long, value_enum, value_name = "WHEN", default_value = "auto")]
    pub color: super::Color,
}

pub fn main(a: OrphansArgs) -> i32 {
    let scan = match super::audit::take() {
        Ok(s) => s,
        Err(code) => return code,
    };
    if let Err(code) = super::audit::scope(&scan, "orphans", a.pid) {
        return code;
    }
    let findings = orphans::find(&scan, a.pid);
    super::audit::print(&scan, findings, a.json, a.color)
}
