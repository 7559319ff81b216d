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

use super::{Finding, Holder, Kind, Scan};
use crate::procfs::{self, FdKind, PipeEnd};
use std::collections::{BTreeMap, HashSet};

pub const SOCKET_HINT: &str = "give each process its own connection: connect after fork, or close the inherited socket in the process that does not use it";
pub const PIPE_HINT: &str = "close the pipe end in every process that does not use it (O_CLOEXEC, close_fds, close after fork)";

/// Shared connected sockets and shared pipe ends (restricted to those
/// with a holder in the subtree of `root` when given).
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
        let endpoint = sock.endpoint();
        let mut f = Finding::new(
            Kind::SharedSocket,
            pids[0],
            scan.cmdline(pids[0]),
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
        for (end, same) in ends.into_iter().rev() {
            if !relevant(&same) {
                continue;
            }
            let pids: Vec<i32> = same.keys().copied().collect();
            let mut f = Finding::new(
                Kind::SharedPipe,
                pids[0],
                scan.cmdline(pids[0]),
                format!(
                    "the {} end of pipe:[{ino}] is open in {} processes: {}",
                    end.as_str(),
                    pids.len(),
                    list(&pids)
                ),
                PIPE_HINT,
            );
            f.target = Some(format!("pipe:[{ino}]"));
            f.holders = Some(to_holders(scan, &same, Some(end)));
            f.pids = Some(pids);
            out.push(f);
        }
    }
    out
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
