//! `why PID`: what a process waits for, and who could end the wait.
//!
//! From `/proc/PID/stat` (state), `/proc/PID/syscall` (the call and its
//! fd) and `/proc/PID/wchan`, then the fd's link: for a pipe, the other
//! end's holders (by fdinfo access mode) across the whole machine; for a
//! socket, its endpoints and, for a local TCP connection, the process that
//! holds the peer socket; for `wait4`/`waitid`, the children waited for.
//! This is the `communicate()` hang explained: "blocked in read(3) on
//! pipe:[N]; the write end is held by 4242 sleep (fd 1), which is not a
//! child of PID".

use super::{AuditError, Finding, Holder, Kind, Scan, zombies};
use crate::procfs::{self, FdKind, PipeEnd, net};
use std::collections::BTreeMap;

/// One `blocked` (or `zombie`) finding that explains what `pid` waits for.
pub fn explain(scan: &Scan, pid: i32) -> Result<Finding, AuditError> {
    let p = scan.get(pid).ok_or(AuditError::NoSuchPid(pid))?;
    let info = &p.info;
    let cmdline = scan.cmdline(pid);
    if info.is_zombie() {
        let mut f = Finding::new(
            Kind::Zombie,
            pid,
            cmdline,
            format!(
                "exited; its parent {} has not collected its status",
                info.ppid
            ),
            zombies::HINT,
        );
        f.ppid = Some(info.ppid);
        f.parent = scan.parent(info.ppid);
        f.state = Some("Z".into());
        return Ok(f);
    }
    let wchan = procfs::wchan(pid);
    let call = procfs::blocked(pid);
    let mut f = Finding::new(Kind::Blocked, pid, cmdline, String::new(), "");
    f.ppid = Some(info.ppid);
    f.state = Some(info.state.to_string());
    f.wchan = wchan.clone();
    f.syscall = call.as_ref().and_then(|c| c.name.map(str::to_string));
    let Some(call) = call else {
        f.message = match info.state {
            'R' => "running, not blocked".to_string(),
            'T' | 't' => "stopped (SIGSTOP or a tracer); SIGCONT resumes it".to_string(),
            s => format!("state {s}, system call not readable"),
        };
        return Ok(f);
    };
    let what = call.describe();
    let mut msg = format!("blocked in {what}");
    if let Some(w) = &wchan {
        msg.push_str(&format!(" (wchan {w})"));
    }
    if let Some(fd) = call.fd() {
        f.fd = Some(fd);
        let target = p.fds.iter().find(|x| x.fd == fd).map(|x| x.kind.clone());
        match target {
            Some(FdKind::Pipe(ino)) => {
                f.target = Some(format!("pipe:[{ino}]"));
                msg.push_str(&format!(" on pipe:[{ino}]"));
                let mine = procfs::pipe_end(pid, fd).unwrap_or(PipeEnd::Read);
                let other = mine.other();
                let holders = pipe_holders(scan, ino, other);
                if holders.is_empty() {
                    msg.push_str(&format!("; nobody holds the {} end", other.as_str()));
                } else {
                    let names: Vec<String> = holders
                        .iter()
                        .map(|h| format!("{}{}", describe(scan, h), relation(scan, h.pid, pid)))
                        .collect();
                    msg.push_str(&format!(
                        "; the {} end is held by {}",
                        other.as_str(),
                        names.join(", ")
                    ));
                    f.hint = format!(
                        "the {} end must be closed for this call to return: close it where it is not used (O_CLOEXEC, close_fds) or stop {}",
                        other.as_str(),
                        holders
                            .iter()
                            .map(|h| h.pid.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
                f.holders = Some(holders);
            }
            Some(FdKind::Socket(ino)) => {
                f.target = Some(format!("socket:[{ino}]"));
                match scan.sockets.get(&ino) {
                    Some(s) => {
                        let ep = s.endpoint();
                        msg.push_str(&format!(" on {ep}"));
                        f.endpoint = Some(ep);
                        if let Some(peer) = net::tcp_peer(&scan.sockets, s) {
                            let holders = socket_holders(scan, peer.inode);
                            if !holders.is_empty() {
                                let names: Vec<String> =
                                    holders.iter().map(|h| describe(scan, h)).collect();
                                msg.push_str(&format!(
                                    "; the other end is held by {}",
                                    names.join(", ")
                                ));
                                f.holders = Some(holders);
                            }
                        }
                    }
                    None => msg.push_str(&format!(" on socket:[{ino}]")),
                }
            }
            Some(k) => {
                f.target = Some(k.to_string());
                msg.push_str(&format!(" on {k}"));
            }
            None => {}
        }
    } else if matches!(call.name, Some("wait4" | "waitid")) {
        let kids: Vec<String> = scan
            .procs
            .iter()
            .filter(|c| c.info.ppid == pid)
            .map(|c| format!("{} {}", c.info.pid, scan.cmdline(c.info.pid)))
            .collect();
        if kids.is_empty() {
            msg.push_str("; it has no child");
        } else {
            msg.push_str(&format!("; waiting for its children: {}", kids.join(", ")));
        }
    }
    f.message = msg;
    Ok(f)
}

fn pipe_holders(scan: &Scan, ino: u64, end: PipeEnd) -> Vec<Holder> {
    holders(scan, &FdKind::Pipe(ino), Some(end))
}

fn socket_holders(scan: &Scan, ino: u64) -> Vec<Holder> {
    holders(scan, &FdKind::Socket(ino), None)
}

/// Every process holding `kind`, with its fds; for a pipe, only the fds on
/// the given end.
fn holders(scan: &Scan, kind: &FdKind, end: Option<PipeEnd>) -> Vec<Holder> {
    let mut by_pid: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for (pid, fd) in scan.holders_of(kind) {
        if end.is_none() || procfs::pipe_end(pid, fd) == end {
            by_pid.entry(pid).or_default().push(fd);
        }
    }
    by_pid
        .into_iter()
        .map(|(pid, fds)| Holder {
            pid,
            cmdline: scan.cmdline(pid),
            fds,
            end,
        })
        .collect()
}

/// `4242 sleep 1000 (fds 1, 2)`.
fn describe(_scan: &Scan, h: &Holder) -> String {
    let word = if h.fds.len() == 1 { "fd" } else { "fds" };
    let fds: Vec<String> = h.fds.iter().map(|f| f.to_string()).collect();
    format!("{} {} ({word} {})", h.pid, h.cmdline, fds.join(", "))
}

/// How a holder is related to the blocked process.
fn relation(scan: &Scan, holder: i32, pid: i32) -> String {
    if holder == pid {
        ", that is the process itself: it waits for its own end to close".to_string()
    } else if scan.get(holder).is_some_and(|h| h.info.ppid == pid) {
        format!(", a child of {pid}")
    } else if scan.descends_from(holder, pid) {
        format!(", a descendant of {pid} but not its child")
    } else {
        format!(", which is not a child of {pid}")
    }
}
