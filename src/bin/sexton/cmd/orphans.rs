//! `sexton orphans [--json]`

use clap::Args;
use sexton::audit::{Scan, orphans};

/// List processes left running by a killed group leader (adopted by PID 1 or a subreaper).
#[derive(Debug, Args)]
pub struct OrphansArgs {
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
}

pub fn main(a: OrphansArgs) -> i32 {
    let scan = Scan::take();
    let findings = orphans::find(&scan, None);
    super::audit::print(&scan, findings, a.json)
}
