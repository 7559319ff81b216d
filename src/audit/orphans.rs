//! D4: orphans, the processes a killed start script left running.
//!
//! When `start.sh` is killed, its children are reparented to PID 1 (or to
//! the nearest child subreaper) and keep running in the process group of
//! the dead script: a service "stopped" but still running. From /proc a
//! process is such an orphan when
//!
//! - it is not a group leader and the leader of its process group is gone
//!   (no live process has the group's pid), and
//! - it was adopted: its parent is PID 1, or its parent is in another
//!   session than the one the process was created in (a parent shares
//!   its session with the children it forks, so a foreign-session parent
//!   is a subreaper that adopted it).
//!
//! A properly daemonized process (double fork: it is in the session of
//! its dead session leader, which was also its group leader, and none of
//! its fds 0-2 is a terminal, pipe or socket) is not a finding.
//! A subreaper in the orphan's own session cannot be told from the
//! process's real parent in /proc; such orphans are not reported.

use super::{Finding, Kind, Scan};
use crate::procfs::{FdKind, ProcFds};
use std::collections::HashSet;

/// The fix for a group left running.
pub const HINT: &str = "stop the whole group (kill -- -PGID), and run start scripts under a tree-tracking runner (sexton run, a supervisor) so that stopping one stops all";

/// One finding per orphan, grouped by former process group (restricted
/// to the subtree of `root` when given).
pub fn find(scan: &Scan, root: Option<i32>) -> Vec<Finding> {
    let within: Option<HashSet<i32>> = root.map(|r| scan.subtree(r));
    let alive = |pid: i32| scan.get(pid).is_some_and(|p| !p.info.is_zombie());
    let mut out: Vec<Finding> = Vec::new();
    for p in &scan.procs {
        let i = &p.info;
        if i.is_zombie() || i.pid <= 2 || i.ppid == 2 || i.ppid == 0 || i.pgid <= 0 {
            continue;
        }
        if i.pgid == i.pid || alive(i.pgid) {
            continue;
        }
        let adopted = i.ppid == 1
            || scan
                .get(i.ppid)
                .is_some_and(|parent| parent.info.sid != i.sid && i.sid != i.pid);
        if !adopted || daemonized(p) {
            continue;
        }
        if within.as_ref().is_some_and(|w| !w.contains(&i.pid)) {
            continue;
        }
        let mut f = Finding::new(
            Kind::Orphan,
            i.pid,
            scan.cmdline(i.pid),
            format!(
                "still running in process group {} whose leader is gone; adopted by {}",
                i.pgid, i.ppid
            ),
            HINT,
        );
        f.ppid = Some(i.ppid);
        f.pgid = Some(i.pgid);
        f.parent = scan.parent(i.ppid);
        out.push(f);
    }
    out.sort_by_key(|f| (f.pgid, f.pid));
    out
}

/// The shape of a proper daemon: its group is its session (made by
/// `setsid` in the first child, which then exited), and its stdio is
/// detached from any terminal, pipe or socket.
fn daemonized(p: &ProcFds) -> bool {
    if p.info.sid != p.info.pgid {
        return false;
    }
    p.fds.iter().filter(|f| f.fd <= 2).all(|f| match &f.kind {
        FdKind::Pipe(_) | FdKind::Socket(_) => false,
        FdKind::Path(path) => !(path.starts_with("/dev/pts/") || path.starts_with("/dev/tty")),
        FdKind::Other(_) => true,
    })
}
