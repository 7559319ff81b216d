//! `why PID`: what a process waits for, and who could end the wait.
//!
//! From `/proc/PID/stat` (state), `/proc/PID/syscall` (the call and its
//! fd) and `/proc/PID/wchan`, then the fd's link: for a pipe or a FIFO,
//! the other end's holders (by access mode) across the whole machine; for
//! a socket, its endpoints and, for a local TCP connection, the process
//! that holds the peer socket; for `flock`/`fcntl(F_SETLKW)`, the holder
//! of the lock (`/proc/locks`, and the `lock:` lines of fdinfo); for
//! `wait4`/`waitid`, the children waited for; for an `open` of a FIFO,
//! that it waits for a partner. This is the `communicate()` hang
//! explained: "blocked in read(3) on pipe:[N]; the write end is held by
//! 4242 sleep (fd 1), which is not a child of PID".
//!
//! A stopped process is said to be stopped (by a stop signal, or by its
//! tracer), whatever call it was in; a kernel thread is said to be one.

use super::{AuditError, Finding, Holder, Kind, Parent, Scan, zombies};
use crate::procfs::{self, FdKind, FileId, PipeEnd, locks, net};
use std::collections::{BTreeMap, HashSet};

/// Takes the scan and explains `pid` ([`explain`]), again when the
/// process's system call changed while the machine was being scanned (a
/// process still starting up goes through many calls): what is said of
/// the call's fd (its file, a lock's holder, a pipe's other end) must
/// come from the same wait as the call itself. Five tries at most; the
/// last one stands. An error when /proc cannot be listed at all (see
/// [`Scan::try_take`]).
pub fn explain_settled(pid: i32) -> std::io::Result<(Scan, Result<Finding, AuditError>)> {
    let mut tries = 0;
    loop {
        let before = procfs::blocked(pid);
        let scan = Scan::try_take()?;
        let f = explain(&scan, pid);
        tries += 1;
        if tries == 5 || procfs::blocked(pid) == before {
            return Ok((scan, f));
        }
    }
}

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
        f.parent = scan.parent(info.ppid).map(|p| Parent {
            zombies: Some(scan.zombies_of(info.ppid)),
            ..p
        });
        f.state = Some("Z".into());
        return Ok(f);
    }
    let wchan = procfs::wchan(pid);
    let mut f = Finding::new(Kind::Blocked, pid, cmdline, String::new(), "");
    f.ppid = Some(info.ppid);
    f.state = Some(info.state.to_string());
    f.wchan = wchan.clone();
    if p.kernel_thread {
        f.message = format!(
            "a kernel thread (state {}): it runs only kernel code, and nothing a process holds keeps it waiting",
            info.state
        );
        return Ok(f);
    }
    // A runnable process waits for nothing, even when /proc still shows
    // the call it was preempted in.
    let call = procfs::blocked(pid).filter(|_| info.state != 'R');
    f.syscall = call.as_ref().and_then(|c| c.name.map(str::to_string));
    match info.state {
        'T' => {
            f.message = "stopped by a stop signal (SIGSTOP, or SIGTSTP, SIGTTIN, SIGTTOU: /proc does not say which); it runs again when it gets SIGCONT".to_string();
            f.hint = format!("kill -CONT {pid} resumes it");
            return Ok(f);
        }
        't' => {
            match procfs::tracer(pid) {
                Some(t) => {
                    f.message = format!(
                        "stopped by its tracer {t} {} (ptrace); it runs again when the tracer resumes or detaches it",
                        scan.cmdline(t)
                    );
                    f.hint = format!(
                        "resume it from the tracer, or stop {t} (a tracer that exits detaches it)"
                    );
                }
                None => {
                    f.message = "stopped under ptrace; it runs again when its tracer resumes or detaches it".to_string();
                }
            }
            return Ok(f);
        }
        _ => {}
    }
    let Some(call) = call else {
        f.message = match info.state {
            'R' => "running, not blocked".to_string(),
            s if p.denied => format!(
                "state {s}; what it waits for is not readable: it is another user's process (run as root to see it)"
            ),
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
                other_end(scan, pid, other, holders, &mut f, &mut msg);
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
                                let names: Vec<String> = holders.iter().map(describe).collect();
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
                let file = procfs::fd_file(pid, fd);
                if call.name == Some("flock") || call.fcntl_lock_wait() {
                    if let Some(id) = file {
                        lock_wait(scan, pid, &k, id, &mut f, &mut msg);
                    }
                } else if let (FdKind::Path(_), Some(id)) = (&k, file)
                    && id.fifo
                {
                    msg.push_str(" (a FIFO)");
                    let other = match call.name {
                        Some("read" | "readv" | "pread64") => PipeEnd::Write,
                        Some("write" | "writev" | "pwrite64") => PipeEnd::Read,
                        _ => procfs::pipe_end(pid, fd).unwrap_or(PipeEnd::Read).other(),
                    };
                    let holders = fifo_holders(scan, &k, id, other);
                    other_end(scan, pid, other, holders, &mut f, &mut msg);
                }
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
    } else if let Some(o) = call.open_args() {
        fifo_open(pid, o, &mut f, &mut msg);
    }
    f.message = msg;
    Ok(f)
}

/// The holders as the message names them: each described, with how it
/// relates to `pid` (`own` when it is `pid` itself), joined by commas.
fn named(scan: &Scan, holders: &[Holder], pid: i32, own: &str) -> String {
    holders
        .iter()
        .map(|h| format!("{}{}", describe(h), relation(scan, h.pid, pid, own)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Names who holds the `other` end of the pipe or FIFO `pid` waits on.
fn other_end(
    scan: &Scan,
    pid: i32,
    other: PipeEnd,
    holders: Vec<Holder>,
    f: &mut Finding,
    msg: &mut String,
) {
    if holders.is_empty() {
        msg.push_str(&format!("; nobody holds the {} end", other.as_str()));
    } else {
        let names = named(scan, &holders, pid, "it waits for its own end to close");
        msg.push_str(&format!("; the {} end is held by {names}", other.as_str()));
        f.hint = format!(
            "the {} end must be closed for this call to return: close it where it is not used (O_CLOEXEC, close_fds) or stop {}",
            other.as_str(),
            pids(&holders)
        );
    }
    f.holders = Some(holders);
}

/// A wait for a `flock(2)` or `fcntl(2)` lock on the file `pid` has open
/// as `file`: the lock it waits for (its `->` line in `/proc/locks`), and
/// who holds that lock (the processes whose fdinfo shows it, or else the
/// pid `/proc/locks` gives).
fn lock_wait(
    scan: &Scan,
    pid: i32,
    path: &FdKind,
    file: FileId,
    f: &mut Finding,
    msg: &mut String,
) {
    let table = locks::all();
    let on_file = |l: &locks::Lock| l.dev == file.dev && l.ino == file.ino;
    let mut waits: HashSet<u64> = table
        .iter()
        .filter(|l| l.waiting && l.pid == pid && on_file(l))
        .map(|l| l.id)
        .collect();
    if waits.is_empty() {
        // An open file description lock has no pid (-1).
        waits = table
            .iter()
            .filter(|l| l.waiting && l.pid == -1 && on_file(l))
            .map(|l| l.id)
            .collect();
    }
    let blockers: Vec<&locks::Lock> = table
        .iter()
        .filter(|l| !l.waiting && on_file(l) && waits.contains(&l.id))
        .collect();
    let Some(first) = blockers.first() else {
        msg.push_str("; /proc/locks shows no lock it waits for");
        return;
    };
    let mut by_pid: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for p in &scan.procs {
        for x in p.fds.iter().filter(|x| &x.kind == path) {
            let pid2 = p.info.pid;
            let same_file = procfs::fd_file(pid2, x.fd)
                .is_some_and(|id| id.dev == file.dev && id.ino == file.ino);
            if same_file
                && locks::held_through(pid2, x.fd)
                    .iter()
                    .any(|h| blockers.iter().any(|b| b.same_as(h)))
            {
                by_pid.entry(pid2).or_default().push(x.fd);
            }
        }
    }
    if by_pid.is_empty() {
        // The fds it is held through could not be read: the pid that
        // took it is what /proc/locks says.
        for b in &blockers {
            if b.pid > 0 && scan.get(b.pid).is_some() {
                by_pid.entry(b.pid).or_default();
            }
        }
    }
    let holders: Vec<Holder> = by_pid
        .into_iter()
        .map(|(pid, fds)| Holder {
            pid,
            cmdline: scan.cmdline(pid),
            fds,
            end: None,
        })
        .collect();
    let lock = format!("{} {} lock", first.kind_name(), first.mode.to_lowercase());
    if holders.is_empty() {
        let who = blockers
            .iter()
            .map(|b| b.pid.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        msg.push_str(&format!(
            "; it waits for a {lock} taken by {who}, a process it cannot see"
        ));
        return;
    }
    let names = named(
        scan,
        &holders,
        pid,
        "it waits for a lock it holds itself through another open file",
    );
    msg.push_str(&format!("; the {lock} on it is held by {names}"));
    f.hint = format!(
        "the wait ends when the lock is released: {} must unlock it, close the file or exit",
        pids(&holders)
    );
    f.holders = Some(holders);
}

/// A wait in `open(2)` of a FIFO: it returns once another process opens
/// the FIFO for the other direction. The path is read from the process's
/// memory (`/proc/PID/mem`); anything else `open` waits for is left as
/// the call and wchan say.
fn fifo_open(pid: i32, o: procfs::OpenArgs, f: &mut Finding, msg: &mut String) {
    use std::os::unix::ffi::OsStrExt;
    let Some(raw) = procfs::read_c_string(pid, o.path) else {
        return;
    };
    let mut full = Vec::new();
    if !raw.starts_with(b"/") {
        const AT_FDCWD: i32 = -100;
        let base = match o.dirfd {
            None | Some(AT_FDCWD) => procfs::link(pid, "cwd"),
            Some(d) => procfs::link(pid, &format!("fd/{d}")),
        };
        let Some(base) = base else { return };
        full.extend_from_slice(base.trim_end_matches('/').as_bytes());
        full.push(b'/');
    }
    full.extend_from_slice(&raw);
    // Through the process's own root: its mount namespace or chroot.
    let mut seen = format!("/proc/{pid}/root").into_bytes();
    seen.extend_from_slice(&full);
    let path = std::path::Path::new(std::ffi::OsStr::from_bytes(&seen));
    if !procfs::file_id(path).is_some_and(|id| id.fifo) {
        return;
    }
    let shown = procfs::escape_bytes(&full);
    let (mine, other) = if o.flags & 0o3 == 0 {
        ("reading", "writing")
    } else {
        ("writing", "reading")
    };
    msg.push_str(&format!(
        " opening the FIFO {shown} for {mine}: the open returns once another process opens it for {other}, and none has"
    ));
    f.hint = format!(
        "open {shown} for {other} in the process meant to (is it running?), or open it with O_NONBLOCK (or O_RDWR) where waiting is not wanted"
    );
    f.target = Some(shown);
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
    to_holders(scan, by_pid, end)
}

/// Every process holding the FIFO `file` (open at the path `path`) open
/// for the `end` direction: an fd opened read-write holds both.
fn fifo_holders(scan: &Scan, path: &FdKind, file: FileId, end: PipeEnd) -> Vec<Holder> {
    let mut by_pid: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for (pid, fd) in scan.holders_of(path) {
        let same = procfs::fd_file(pid, fd).is_some_and(|id| id == file);
        let opened = procfs::fd_access(pid, fd).is_some_and(|(r, w)| match end {
            PipeEnd::Read => r,
            PipeEnd::Write => w,
        });
        if same && opened {
            by_pid.entry(pid).or_default().push(fd);
        }
    }
    to_holders(scan, by_pid, Some(end))
}

fn to_holders(scan: &Scan, by_pid: BTreeMap<i32, Vec<i32>>, end: Option<PipeEnd>) -> Vec<Holder> {
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
fn describe(h: &Holder) -> String {
    if h.fds.is_empty() {
        return format!("{} {}", h.pid, h.cmdline);
    }
    let word = if h.fds.len() == 1 { "fd" } else { "fds" };
    let fds: Vec<String> = h.fds.iter().map(|f| f.to_string()).collect();
    format!("{} {} ({word} {})", h.pid, h.cmdline, fds.join(", "))
}

/// `1, 2`: the pids of some holders.
fn pids(holders: &[Holder]) -> String {
    holders
        .iter()
        .map(|h| h.pid.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// How a holder is related to the blocked process; `itself` says what it
/// means when the holder is the process.
fn relation(scan: &Scan, holder: i32, pid: i32, itself: &str) -> String {
    if holder == pid {
        format!(", that is the process itself: {itself}")
    } else if scan.get(holder).is_some_and(|h| h.info.ppid == pid) {
        format!(", a child of {pid}")
    } else if scan.descends_from(holder, pid) {
        format!(", a descendant of {pid} but not its child")
    } else {
        format!(", which is not a child of {pid}")
    }
}
