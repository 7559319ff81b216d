//! D1 and D2: zombies, each named with the parent that never waits.
//!
//! A zombie is a process that has exited and whose parent has not yet
//! collected its status with `wait`. The guilty process is the parent;
//! the finding names it and how many zombies it holds (`parent.zombies`).

use super::{Finding, Kind, Parent, Scan};
use std::collections::{HashMap, HashSet};

/// The fix for a parent that leaves zombies.
pub const HINT: &str = "reap with waitpid(-1, WNOHANG) in a loop on SIGCHLD";

/// One finding per zombie (restricted to zombies whose parent is in the
/// subtree of `root` when given), ordered by parent.
pub fn find(scan: &Scan, root: Option<i32>) -> Vec<Finding> {
    let within: Option<HashSet<i32>> = root.map(|r| scan.subtree(r));
    let zombies: Vec<_> = scan
        .procs
        .iter()
        .filter(|p| p.info.is_zombie())
        .filter(|p| within.as_ref().is_none_or(|w| w.contains(&p.info.ppid)))
        .map(|p| &p.info)
        .collect();
    let mut per_parent: HashMap<i32, usize> = HashMap::new();
    for z in &zombies {
        *per_parent.entry(z.ppid).or_default() += 1;
    }
    let mut out: Vec<Finding> = zombies
        .iter()
        .map(|z| {
            let n = per_parent[&z.ppid];
            let plural = if n == 1 { "zombie" } else { "zombies" };
            let mut f = Finding::new(
                Kind::Zombie,
                z.pid,
                format!("[{}] <defunct>", z.comm),
                format!("pid {} never waits for its children ({n} {plural})", z.ppid),
                HINT,
            );
            f.ppid = Some(z.ppid);
            f.parent = scan.parent(z.ppid).map(|p| Parent {
                zombies: Some(n),
                ..p
            });
            f
        })
        .collect();
    out.sort_by_key(|f| (f.ppid, f.pid));
    out
}
