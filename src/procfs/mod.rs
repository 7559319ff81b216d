//! One reader for /proc, shared by the tree layer and the audit commands.
//!
//! Everything that looks at other processes goes through here, on top of
//! the `procfs` crate. A process can vanish between listing /proc and
//! reading its files; that is the normal state of a live system, so every
//! reader here skips vanished processes instead of failing.

use ::procfs::process::{FDTarget, Process};
use std::collections::HashMap;

/// What one line of `/proc/PID/stat` says about a process, plus nothing
/// that costs another file read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcInfo {
    pub pid: i32,
    pub ppid: i32,
    pub pgid: i32,
    pub sid: i32,
    /// One-letter state: `R`, `S`, `D`, `Z`, `T`, `t`, `X`, `I`...
    pub state: char,
    /// Start time in clock ticks since boot: with `pid` it names one
    /// process for its whole life, so a reused pid is never mistaken for
    /// the process seen before.
    pub start_time: u64,
    /// The kernel's short command name (`comm`), at most 15 bytes.
    pub comm: String,
}

impl ProcInfo {
    /// True once the process has exited and waits to be reaped.
    pub fn is_zombie(&self) -> bool {
        self.state == 'Z' || self.state == 'X'
    }
}

/// Reads `/proc/PID/stat` of one process; `None` if it is gone.
pub fn process(pid: i32) -> Option<ProcInfo> {
    let p = Process::new(pid).ok()?;
    info(&p)
}

fn info(p: &Process) -> Option<ProcInfo> {
    let st = p.stat().ok()?;
    Some(ProcInfo {
        pid: st.pid,
        ppid: st.ppid,
        pgid: st.pgrp,
        sid: st.session,
        state: st.state,
        start_time: st.starttime,
        comm: st.comm,
    })
}

/// Snapshot of every process on the machine (one `stat` read each).
/// Processes that exit during the scan are left out.
pub fn processes() -> Vec<ProcInfo> {
    let Ok(all) = ::procfs::process::all_processes() else {
        return Vec::new();
    };
    all.filter_map(|p| p.ok())
        .filter_map(|p| info(&p))
        .collect()
}

/// The children of `pid`, from `/proc/PID/task/*/children` (one small
/// read per thread instead of a scan of every process). `None` when the
/// kernel lacks `CONFIG_PROC_CHILDREN` or the process is gone; callers
/// then fall back to [`processes`].
///
/// A child whose parent is exiting is listed under the parent until it
/// has been reparented; walk parents that are zombies too.
pub fn children(pid: i32) -> Option<Vec<i32>> {
    let p = Process::new(pid).ok()?;
    let mut out = Vec::new();
    for t in p.tasks().ok()?.flatten() {
        // Any error (no children list in this kernel, a thread that
        // exited meanwhile) sends the caller to the full scan.
        out.extend(t.children().ok()?.into_iter().map(|c| c as i32));
    }
    Some(out)
}

/// True when `pid` has begun to exit but is not a zombie yet
/// (`PF_EXITING` in the flags field of `/proc/PID/stat`): its fds may be
/// closed and it may have left its cgroup already.
pub fn exiting(pid: i32) -> bool {
    const PF_EXITING: u32 = 0x4;
    Process::new(pid)
        .and_then(|p| p.stat())
        .is_ok_and(|st| st.flags & PF_EXITING != 0 && st.state != 'Z')
}

/// Index of a snapshot by parent pid, for walking trees downwards.
pub fn children_index(snapshot: &[ProcInfo]) -> HashMap<i32, Vec<usize>> {
    let mut idx: HashMap<i32, Vec<usize>> = HashMap::new();
    for (i, p) in snapshot.iter().enumerate() {
        idx.entry(p.ppid).or_default().push(i);
    }
    idx
}

/// The command line of a process joined with spaces, as `ps -o args`
/// shows it; for a zombie or kernel thread (empty cmdline) `[comm]`.
pub fn cmdline(pid: i32) -> Option<String> {
    let p = Process::new(pid).ok()?;
    match p.cmdline() {
        Ok(args) if !args.is_empty() => Some(args.join(" ")),
        _ => {
            let st = p.stat().ok()?;
            if st.state == 'Z' {
                Some(format!("[{}] <defunct>", st.comm))
            } else {
                Some(format!("[{}]", st.comm))
            }
        }
    }
}

/// What an open descriptor points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FdKind {
    /// `pipe:[inode]`; both ends of one pipe share the inode.
    Pipe(u64),
    /// `socket:[inode]`.
    Socket(u64),
    /// A path on a filesystem (files, devices, directories).
    Path(String),
    /// Anything else (`anon_inode:[eventfd]`, memfd...), as the link reads.
    Other(String),
}

/// One open fd of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fd {
    pub fd: i32,
    pub kind: FdKind,
}

/// The open fds of a process (`/proc/PID/fd`); empty if it is gone or not
/// readable.
pub fn fds(pid: i32) -> Vec<Fd> {
    let Ok(p) = Process::new(pid) else {
        return Vec::new();
    };
    let Ok(iter) = p.fd() else {
        return Vec::new();
    };
    iter.filter_map(|f| f.ok())
        .map(|f| Fd {
            fd: f.fd,
            kind: match f.target {
                FDTarget::Pipe(ino) => FdKind::Pipe(ino),
                FDTarget::Socket(ino) => FdKind::Socket(ino),
                FDTarget::Path(p) => FdKind::Path(p.to_string_lossy().into_owned()),
                FDTarget::Net(ino) => FdKind::Other(format!("net:[{ino}]")),
                FDTarget::AnonInode(s) => FdKind::Other(format!("anon_inode:{s}")),
                FDTarget::MemFD(s) => FdKind::Other(format!("/memfd:{s}")),
                FDTarget::Other(s, ino) => FdKind::Other(format!("{s}:[{ino}]")),
                FDTarget::Unknown(a, b) => FdKind::Other(format!("{a}:{b}")),
            },
        })
        .collect()
}

/// The fds of `pid` that point at the pipe with inode `ino`.
pub fn fds_on_pipe(pid: i32, ino: u64) -> Vec<i32> {
    fds(pid)
        .into_iter()
        .filter(|f| f.kind == FdKind::Pipe(ino))
        .map(|f| f.fd)
        .collect()
}

/// Address ranges of this process's file mappings that are not
/// writable (code and constants of the executable and its libraries),
/// from `/proc/self/maps`. Used by `init` to give back the pages only
/// start-up touched.
pub fn own_code_ranges() -> Vec<(usize, usize)> {
    use ::procfs::process::MMapPath;
    let Ok(maps) = Process::myself().and_then(|me| me.maps()) else {
        return Vec::new();
    };
    maps.into_iter()
        .filter(|m| matches!(&m.pathname, MMapPath::Path(_)))
        .filter(|m| !m.perms.contains(::procfs::process::MMPermissions::WRITE))
        .map(|m| (m.address.0 as usize, m.address.1 as usize))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_itself_and_its_pipe() {
        let me = std::process::id() as i32;
        let snap = processes();
        assert!(snap.iter().any(|p| p.pid == me));
        let info = process(me).expect("own stat");
        assert_eq!(info.pid, me);
        let (r, _w) = nix::unistd::pipe().unwrap();
        let ino = nix::sys::stat::fstat(&r).unwrap().st_ino;
        assert_eq!(fds_on_pipe(me, ino).len(), 2);
        assert!(process(i32::MAX - 1).is_none());
    }

    #[test]
    fn children_lists_a_child_or_says_unknown() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id() as i32;
        let me = std::process::id() as i32;
        let listed = children(me);
        let _ = child.kill();
        let _ = child.wait();
        // None where the kernel has no children lists; else it is there.
        if let Some(kids) = listed {
            assert!(kids.contains(&pid), "{kids:?} lacks {pid}");
        }
        // A process that does not exist has no list.
        assert!(children(i32::MAX - 1).is_none());
    }
}

/// Mount point of the cgroup2 hierarchy, from `/proc/self/mountinfo`
/// (parsed by the `procfs` crate's `MountInfos`), read once per process:
/// mounts do not move under a running sexton in any way that matters to
/// it, and the lookup sits on every spawn.
pub fn cgroup2_mount() -> Option<std::path::PathBuf> {
    use ::procfs::FromRead;
    static MOUNT: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    MOUNT
        .get_or_init(|| {
            let text = read_text("/proc/self/mountinfo")?;
            let mounts = ::procfs::process::MountInfos::from_read(text.as_bytes()).ok()?;
            mounts
                .into_iter()
                .find(|m| m.fs_type == "cgroup2")
                .map(|m| m.mount_point)
        })
        .clone()
}

/// This process's cgroup v2 path relative to the mount (`0::/path` in
/// `/proc/self/cgroup`), without the leading `/`.
pub fn own_cgroup_v2() -> Option<String> {
    let text = read_text("/proc/self/cgroup")?;
    let rel = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(rel.trim_start_matches('/').to_string())
}

/// Reads a small /proc text file in one or two reads: /proc reports size
/// 0, so `fs::read_to_string` would start from a 32-byte buffer and
/// double it read after read.
fn read_text(path: &str) -> Option<String> {
    use std::io::Read;
    let mut text = String::with_capacity(8192);
    std::fs::File::open(path)
        .ok()?
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

#[cfg(test)]
mod mountinfo_tests {
    use super::*;

    #[test]
    fn finds_the_cgroup2_mount_this_machine_has() {
        let listed = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let has_cgroup2 = listed.lines().any(|l| l.contains(" - cgroup2 "));
        assert_eq!(cgroup2_mount().is_some(), has_cgroup2);
        if let Some(m) = cgroup2_mount() {
            assert!(
                m.join("cgroup.controllers").exists(),
                "{m:?} is not a cgroup2 root"
            );
        }
    }
}
