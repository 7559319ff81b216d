//! `sexton zombies [--pid PID] [--json]`

use clap::Args;
use sexton::audit::zombies;

/// List zombies, grouped by the parent that never waits for them.
#[derive(Debug, Args)]
pub struct ZombiesArgs {
    /// Only zombies whose parent is PID or one of its descendants.
    #[arg(long, value_name = "PID")]
    pub pid: Option<i32>,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
    /// Colour the findings: auto (a terminal without NO_COLOR), always, never.
    #[arg(long, value_enum, value_name = "WHEN", default_value = "auto")]
    pub color: super::Color,
}

pub fn main(a: ZombiesArgs) -> i32 {
    let scan = match super::audit::take() {
        Ok(s) => s,
        Err(code) => return code,
    };
    if let Err(code) = super::audit::scope(&scan, "zombies", a.pid) {
        return code;
    }
    let findings = zombies::find(&scan, a.pid);
    super::audit::print(&scan, findings, a.json, a.color)
}
