//! `sexton shared [--json]`

use clap::Args;
use sexton::audit::{Scan, shared};

/// List connected sockets and pipe ends open in more than one process.
#[derive(Debug, Args)]
pub struct SharedArgs {
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
}

pub fn main(a: SharedArgs) -> i32 {
    let scan = Scan::take();
    let findings = shared::find(&scan, None);
    super::audit::print(&scan, findings, a.json)
}
