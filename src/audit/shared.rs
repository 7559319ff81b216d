//! D8 (and D7's visible half): connected sockets and pipe ends open in
//! more than one process.
//!
//! After `fork`, parent and child share every descriptor. A connected
//! socket used by both interleaves their requests and replies ("crossed
//! packets"); a pipe end kept by a process that does not use it keeps the
//! reader waiting for an EOF that never comes. Listening sockets shared
//! by prefork workers are how such servers work and are not reported.
//!
//! Noise control: a socket or pipe end held by several processes *only*
//! on fds 0-2 is ordinary stdio inheritance (a shell pipeline, a service's
//! journal stream) and is not reported; at least one holder must have it
//! on an fd above 2.
//!
//! One pipe is one finding, whichever of its ends are shared: its
//! `holders` list the holders of each shared end (with `end`), and a
//! process holding both shared ends is listed once for each.

use super::{Finding, Holder, Kind, Scan};
use crate::procfs::{self, FdKind, PipeEnd};
use std::collections::{BTreeMap, BTreeSet, HashSet};

pub const SOCKET_HINT: &str = "give each process its own connection: connect after fork, or close the inherited socket in the process that does not use it";
pub const PIPE_HINT: &str = "close the pipe end in every process that does not use it (O_CLOEXEC, close_fds, close after fork)";

/// Shared connected sockets and shared pipes (restricted to those with
/// a holder in the subtree of `root` when given; the finding's `pid` is
/// then a holder inside the subtree).
pub fn find(scan: &Scan, root: Option<i32>) -> Vec<Finding> {
    let within: Option<HashSet<i32>> = root.map(|r| scan.subtree(r));
    // inode -> (pid -> fds), for sockets and pipes, in one pass.
    let mut socks: BTreeMap<u64, BTreeMap<i32, Vec<i32>>> = BTreeMap::new();
    let mut pipes: BTreeMap<u64, BTreeMap<i32, Vec<i32>>> = BTreeMap::new();
    for p in &scan.procs {
        for f in &p.fds {
            let map = match f.kind {
                FdKind::Socket(ino) => socks.entry(ino),
                FdKind::Pipe(ino) => pipes.entry(ino),
                _ => continue,
            };
            map.or_default().entry(p.info.pid).or_default().push(f.fd);
        }
    }
    let relevant = |holders: &BTreeMap<i32, Vec<i32>>| {
        holders.len() >= 2
            && holders.values().flatten().any(|&fd| fd > 2)
            && within
                .as_ref()
                .is_none_or(|w| holders.keys().any(|p| w.contains(p)))
    };
    let mut out = Vec::new();
    for (ino, holders) in &socks {
        if !relevant(holders) {
            continue;
        }
        let Some(sock) = scan.sockets.get(ino) else {
            continue;
        };
        if !sock.connected || sock.listening {
            continue;
        }
        let pids: Vec<i32> = holders.keys().copied().collect();
        let first = first_holder(&pids, within.as_ref());
        let endpoint = sock.endpoint();
        let mut f = Finding::new(
            Kind::SharedSocket,
            first,
            scan.cmdline(first),
            format!(
                "connected socket {endpoint} is open in {} processes: {}",
                pids.len(),
                list(&pids)
            ),
            SOCKET_HINT,
        );
        f.target = Some(format!("socket:[{ino}]"));
        f.holders = Some(to_holders(scan, holders, None));
        f.pids = Some(pids);
        f.endpoint = Some(endpoint);
        out.push(f);
    }
    for (ino, holders) in &pipes {
        if !relevant(holders) {
            continue;
        }
        // Only now, for pipes that several processes hold, find which end
        // each fd is (one lstat per fd).
        let mut ends: BTreeMap<PipeEnd, BTreeMap<i32, Vec<i32>>> = BTreeMap::new();
        for (&pid, fds) in holders {
            for &fd in fds {
                if let Some(end) = procfs::pipe_end(pid, fd) {
                    ends.entry(end)
                        .or_default()
                        .entry(pid)
                        .or_default()
                        .push(fd);
                }
            }
        }
        // One finding per pipe: the write end first, then the read end,
        // each listed when it is shared.
        let shared: Vec<(PipeEnd, BTreeMap<i32, Vec<i32>>)> = ends
            .into_iter()
            .rev()
            .filter(|(_, same)| relevant(same))
            .collect();
        if shared.is_empty() {
            continue;
        }
        let pids: Vec<i32> = shared
            .iter()
            .flat_map(|(_, same)| same.keys().copied())
            .collect::<BTreeSet<i32>>()
            .into_iter()
            .collect();
        let first = first_holder(&pids, within.as_ref());
        let message = match shared.as_slice() {
            [(end, same)] => {
                let p: Vec<i32> = same.keys().copied().collect();
                format!(
                    "the {} end of pipe:[{ino}] is open in {} processes: {}",
                    end.as_str(),
                    p.len(),
                    list(&p)
                )
            }
            _ => {
                let parts: Vec<String> = shared
                    .iter()
                    .map(|(end, same)| {
                        let p: Vec<i32> = same.keys().copied().collect();
                        format!("the {} end in {} ({})", end.as_str(), p.len(), list(&p))
                    })
                    .collect();
                format!(
                    "both ends of pipe:[{ino}] are open in several processes: {}",
                    parts.join(", ")
                )
            }
        };
        let mut f = Finding::new(
            Kind::SharedPipe,
            first,
            scan.cmdline(first),
            message,
            PIPE_HINT,
        );
        f.target = Some(format!("pipe:[{ino}]"));
        f.holders = Some(
            shared
                .iter()
                .flat_map(|(end, same)| to_holders(scan, same, Some(*end)))
                .collect(),
        );
        f.pids = Some(pids);
        out.push(f);
    }
    out
}

/// The holder a finding is about: the first one, or under `--pid` the
/// first one inside the subtree.
fn first_holder(pids: &[i32], within: Option<&HashSet<i32>>) -> i32 {
    within
        .and_then(|w| pids.iter().copied().find(|p| w.contains(p)))
        .unwrap_or(pids[0])
}

/// `1, 2, 3`, or the first eight and `...` for more.
fn list(pids: &[i32]) -> String {
    let mut s = pids
        .iter()
        .take(8)
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if pids.len() > 8 {
        s.push_str(", ...");
    }
    s
}

fn to_holders(scan: &Scan, holders: &BTreeMap<i32, Vec<i32>>, end: Option<PipeEnd>) -> Vec<Holder> {
    holders
        .iter()
        .map(|(&pid, fds)| Holder {
            pid,
            cmdline: scan.cmdline(pid),
            fds: fds.clone(),
            end,
        })
        .collect()
}
