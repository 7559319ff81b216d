//! `sexton zombies [--json]`

use clap::Args;
use sexton::audit::{Scan, zombies};

/// List zombies, grouped by the parent that never waits for them.
#[derive(Debug, Args)]
pub struct ZombiesArgs {
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
}

pub fn main(a: ZombiesArgs) -> i32 {
    let scan = Scan::take();
    let findings = zombies::find(&scan, None);
    super::audit::print(&scan, findings, a.json)
}
