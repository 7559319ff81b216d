//! One reader for /proc, shared by the tree layer and the audit commands.
//!
//! Everything that looks at other processes goes through here, on top of
//! the `procfs` crate. A process can vanish between listing /proc and
//! reading its files; that is the normal state of a live system, so every
//! reader here skips vanished processes instead of failing.

pub mod locks;
pub mod net;
mod syscall;

pub use syscall::{Blocked, OpenArgs, blocked};

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

/// Reads `/proc/PID/stat` of one process; `None` if it is gone (or
/// cannot be read).
///
/// The readers a tree walks with ([`process`], [`children`],
/// [`processes`]) hold at most one descriptor at a time: a process that
/// has used up its fd limit (`RLIMIT_NOFILE`) still has the few its last
/// spawn gave back, and with them it can still find and kill its tree.
pub fn process(pid: i32) -> Option<ProcInfo> {
    stat(pid).map(ProcInfo::from)
}

/// Now, in the unit of a process's start time (`/proc/PID/stat` field
/// 22): clock ticks since boot. The kernel stamps a new process with the
/// boot clock (`CLOCK_BOOTTIME`, time-namespace offset included on both
/// sides) and divides by the tick length, so a child forked between two
/// calls that return the same value started in that tick. `None` if the
/// clock cannot be read.
pub fn boot_ticks() -> Option<u64> {
    use nix::unistd::{SysconfVar, sysconf};
    // libc's sysconf and clock_gettime (the vDSO's, found by libc): no
    // auxiliary-vector parsing of our own.
    let hz = u64::try_from(sysconf(SysconfVar::CLK_TCK).ok()??).ok()?;
    if hz == 0 || 1_000_000_000 % hz != 0 {
        return None;
    }
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).ok()?;
    let ns = u64::try_from(ts.tv_sec()).ok()? * 1_000_000_000 + u64::try_from(ts.tv_nsec()).ok()?;
    Some(ns / (1_000_000_000 / hz))
}

/// The parsed `/proc/PID/stat`, read with one descriptor.
fn stat(pid: i32) -> Option<::procfs::process::Stat> {
    use ::procfs::FromRead;
    let mut buf = [0u8; 4096];
    let len = read_small(&format!("/proc/{pid}/stat"), &mut buf).ok()?;
    ::procfs::process::Stat::from_read(&buf[..len]).ok()
}

/// Reads a small file (a /proc `stat` line) into `buf`, up to its size,
/// through one descriptor that is closed before this returns. `read(2)`
/// straight into the buffer: `File::read_to_end` would add a `statx` and
/// an `lseek` to size a buffer for a file /proc says is empty.
fn read_small(path: &str, buf: &mut [u8]) -> rustix::io::Result<usize> {
    use rustix::fs::{CWD, Mode, OFlags, openat};
    let fd = openat(CWD, path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    let mut len = 0;
    while len < buf.len() {
        match rustix::io::read(&fd, &mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(len)
}

/// The numeric names in a /proc directory (the pids in `/proc`, the
/// thread ids in `/proc/PID/task`), listed through one descriptor that
/// is closed before this returns.
fn numeric_entries(path: &str) -> rustix::io::Result<Vec<i32>> {
    use rustix::fs::{CWD, Mode, OFlags, openat};
    let fd = openat(
        CWD,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut dir = rustix::fs::Dir::new(fd)?;
    let mut out = Vec::new();
    while let Some(entry) = dir.read() {
        let entry = entry?;
        if let Some(n) = entry.file_name().to_str().ok().and_then(|s| s.parse().ok()) {
            out.push(n);
        }
    }
    Ok(out)
}

/// Decodes the text of a `/proc/PID/stat` file with the parser every
/// reader here uses (the `procfs` crate's): the command name is what
/// lies between the first `(` and the last `)`, so a name holding
/// spaces, parentheses or newlines is read whole; bytes that are not
/// UTF-8 become U+FFFD. `None` if the text is not a stat line.
pub fn parse_stat(text: &[u8]) -> Option<ProcInfo> {
    use ::procfs::FromRead;
    // The crate slices the text one byte before the first `(` and two
    // past the last `)`, and panics where those are not there: the
    // kernel always writes them, other text is refused first.
    let lossy = String::from_utf8_lossy(text);
    let t = lossy.trim();
    let open = t.find('(')?;
    let close = t.rfind(')')?;
    let shaped = open >= 1
        && close > open
        && t.is_char_boundary(open - 1)
        && t.len() >= close + 2
        && t.is_char_boundary(close + 2);
    if !shaped {
        return None;
    }
    ::procfs::process::Stat::from_read(text)
        .ok()
        .map(ProcInfo::from)
}

impl From<::procfs::process::Stat> for ProcInfo {
    fn from(st: ::procfs::process::Stat) -> ProcInfo {
        ProcInfo {
            pid: st.pid,
            ppid: st.ppid,
            pgid: st.pgrp,
            sid: st.session,
            state: st.state,
            start_time: st.starttime,
            comm: st.comm,
        }
    }
}

/// Snapshot of every process on the machine (one `stat` read each).
/// Processes that exit during the scan are left out.
pub fn processes() -> Vec<ProcInfo> {
    let Ok(pids) = numeric_entries("/proc") else {
        return Vec::new();
    };
    pids.into_iter().filter_map(process).collect()
}

/// The children of `pid`, from `/proc/PID/task/*/children` (one small
/// read per thread instead of a scan of every process). `None` when the
/// kernel lacks `CONFIG_PROC_CHILDREN`, the process is gone, or the
/// caller runs inside [`without_children_lists`]; callers then fall back
/// to [`processes`].
///
/// A child whose parent is exiting is listed under the parent until it
/// has been reparented; walk parents that are zombies too.
pub fn children(pid: i32) -> Option<Vec<i32>> {
    if CHILDREN_LISTS_OFF.with(std::cell::Cell::get) {
        return None;
    }
    let mut out = Vec::new();
    for tid in numeric_entries(&format!("/proc/{pid}/task")).ok()? {
        // Any error (no children list in this kernel, a thread that
        // exited meanwhile) sends the caller to the full scan.
        let list = read_list(&format!("/proc/{pid}/task/{tid}/children"))?;
        out.extend(
            list.split_whitespace()
                .filter_map(|c| c.parse::<i32>().ok()),
        );
    }
    Some(out)
}

thread_local! {
    /// Set by [`without_children_lists`] for the thread it runs on.
    static CHILDREN_LISTS_OFF: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` as on a kernel without `CONFIG_PROC_CHILDREN`: on the
/// calling thread, and only while `f` runs, [`children`] answers `None`,
/// so every caller takes its /proc-snapshot fallback (the tree walk,
/// reaping, `check`'s zombie count). This makes the fallback testable on
/// kernels that have children lists; other threads are not affected.
pub fn without_children_lists<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            CHILDREN_LISTS_OFF.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(CHILDREN_LISTS_OFF.with(|c| c.replace(true)));
    f()
}

/// True when [`children`] reads children lists here: the kernel has
/// them and the calling thread is not inside [`without_children_lists`].
pub fn has_children_lists() -> bool {
    children(std::process::id() as i32).is_some()
}

/// True when `pid` has begun to exit but is not a zombie yet
/// (`PF_EXITING` in the flags field of `/proc/PID/stat`): its fds may be
/// closed and it may have left its cgroup already.
pub fn exiting(pid: i32) -> bool {
    const PF_EXITING: u32 = 0x4;
    stat(pid).is_some_and(|st| st.flags & PF_EXITING != 0 && st.state != 'Z')
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
/// Bytes that are not UTF-8 are written `\xNN` (see [`escape_bytes`]):
/// a command line is whatever bytes `execve(2)` was given.
pub fn cmdline(pid: i32) -> Option<String> {
    let p = Process::new(pid).ok()?;
    let raw = read_bytes(&format!("/proc/{pid}/cmdline"));
    let args: Vec<String> = raw
        .as_deref()
        .unwrap_or_default()
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(escape_bytes)
        .collect();
    if !args.is_empty() {
        return Some(args.join(" "));
    }
    let st = p.stat().ok()?;
    if st.state == 'Z' {
        Some(format!("[{}] <defunct>", st.comm))
    } else {
        Some(format!("[{}]", st.comm))
    }
}

/// Bytes as text: UTF-8 as it is, every byte that is not part of valid
/// UTF-8 as `\xNN` (lower-case hex).
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// The whole content of a small /proc file as bytes; `None` if it cannot
/// be read.
/// The whole of a /proc file, through one descriptor closed before this
/// returns: `openat` and `read`s, no `fstat`/`lseek` to size a buffer
/// for a file /proc calls empty (what `File::read_to_end` adds, and the
/// C library's `open` may add an `fcntl`), for one file per process in
/// a scan of thousands.
fn read_bytes(path: &str) -> Option<Vec<u8>> {
    use rustix::fs::{CWD, Mode, OFlags, openat};
    let fd = openat(CWD, path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match rustix::io::read(&fd, &mut chunk) {
            Ok(0) => return Some(out),
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return None,
        }
    }
}

/// True when `pid` is a kernel thread (`PF_KTHREAD` in the flags of
/// `/proc/PID/stat`).
pub fn kernel_thread(pid: i32) -> bool {
    stat(pid).is_some_and(|st| st.flags & PF_KTHREAD != 0)
}

/// `PF_KTHREAD` of `include/linux/sched.h`.
const PF_KTHREAD: u32 = 0x0020_0000;

/// The process tracing `pid` (`TracerPid` in `/proc/PID/status`), if any.
pub fn tracer(pid: i32) -> Option<i32> {
    let st = Process::new(pid).ok()?.status().ok()?;
    (st.tracerpid > 0).then_some(st.tracerpid)
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

impl std::fmt::Display for FdKind {
    /// As `readlink /proc/PID/fd/N` shows it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FdKind::Pipe(ino) => write!(f, "pipe:[{ino}]"),
            FdKind::Socket(ino) => write!(f, "socket:[{ino}]"),
            FdKind::Path(p) | FdKind::Other(p) => f.write_str(p),
        }
    }
}

/// The open fds of a process (`/proc/PID/fd`); empty if it is gone or not
/// readable. Each fd costs one `readlink(2)`, never a `stat(2)`: that is
/// what keeps a machine-wide scan cheap.
pub fn fds(pid: i32) -> Vec<Fd> {
    let Ok(p) = Process::new(pid) else {
        return Vec::new();
    };
    fds_of(&p)
}

/// The open fds of a process, or [`FdsError`] when they cannot be read:
/// not ours to read (another user's process, without root), or gone.
pub fn try_fds(pid: i32) -> Result<Vec<Fd>, FdsError> {
    let p = Process::new(pid).map_err(|_| FdsError::Gone)?;
    match p.fd() {
        Ok(_) => Ok(fds_of(&p)),
        Err(::procfs::ProcError::PermissionDenied(_)) => Err(FdsError::Denied),
        Err(_) => Err(FdsError::Gone),
    }
}

/// Why [`try_fds`] could not read a process's fds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdsError {
    /// Permission denied: the process belongs to another user.
    Denied,
    /// The process is gone (or /proc does not have it).
    Gone,
}

fn fds_of(p: &Process) -> Vec<Fd> {
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

/// Which end of a pipe an fd is, from the access mode in
/// `/proc/PID/fdinfo/FD` (`flags:` is octal `open(2)` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PipeEnd {
    Read,
    Write,
}

impl PipeEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            PipeEnd::Read => "read",
            PipeEnd::Write => "write",
        }
    }

    /// The end a process blocked on this end waits for.
    pub fn other(self) -> PipeEnd {
        match self {
            PipeEnd::Read => PipeEnd::Write,
            PipeEnd::Write => PipeEnd::Read,
        }
    }
}

/// The `open(2)` flags of one fd (`/proc/PID/fdinfo/FD`); `None` if the
/// process or fd is gone.
pub fn fd_flags(pid: i32, fd: i32) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok()?;
    let line = text.lines().find(|l| l.starts_with("flags:"))?;
    u32::from_str_radix(line["flags:".len()..].trim(), 8).ok()
}

/// The end of a pipe that fd `fd` of `pid` is. The permission bits of
/// the `/proc/PID/fd/N` link itself mirror the open mode (`lr-x` read,
/// `l-wx` write), so one `lstat(2)` answers; `fdinfo` flags
/// (`O_ACCMODE`) are the fallback.
pub fn pipe_end(pid: i32, fd: i32) -> Option<PipeEnd> {
    if let Ok(st) = rustix::fs::lstat(format!("/proc/{pid}/fd/{fd}")) {
        match st.st_mode & 0o600 {
            0o400 => return Some(PipeEnd::Read),
            0o200 => return Some(PipeEnd::Write),
            _ => {}
        }
    }
    let flags = fd_flags(pid, fd)?;
    Some(if flags & 0o3 == 0 {
        PipeEnd::Read
    } else {
        PipeEnd::Write
    })
}

/// What an fd's file is, by identity: device, inode, and whether it is
/// a FIFO (named pipe). One `stat(2)` of `/proc/PID/fd/N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    /// The device (major, minor), as `/proc/locks` writes it.
    pub dev: (u32, u32),
    pub ino: u64,
    pub fifo: bool,
}

/// The identity of the file fd `fd` of `pid` is open on; `None` if the
/// process or fd is gone or not ours to inspect.
pub fn fd_file(pid: i32, fd: i32) -> Option<FileId> {
    file_id(std::path::Path::new(&format!("/proc/{pid}/fd/{fd}")))
}

/// The identity of the file at `path` (following links).
pub fn file_id(path: &std::path::Path) -> Option<FileId> {
    let st = rustix::fs::stat(path).ok()?;
    Some(FileId {
        dev: (rustix::fs::major(st.st_dev), rustix::fs::minor(st.st_dev)),
        ino: st.st_ino,
        fifo: rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Fifo,
    })
}

/// Whether fd `fd` of `pid` was opened for reading and for writing: the
/// permission bits of the `/proc/PID/fd/N` link mirror the open mode.
pub fn fd_access(pid: i32, fd: i32) -> Option<(bool, bool)> {
    let st = rustix::fs::lstat(format!("/proc/{pid}/fd/{fd}")).ok()?;
    Some((st.st_mode & 0o400 != 0, st.st_mode & 0o200 != 0))
}

/// The target of one `/proc/PID/...` link (`cwd`, `fd/N`), as text.
pub fn link(pid: i32, name: &str) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/{name}"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// The NUL-terminated string at `addr` in the memory of `pid` (at most
/// 4096 bytes), through `/proc/PID/mem`: how the path argument of a
/// blocked `open(2)` is read. Needs ptrace access to `pid`; `None`
/// without it or if the address is not mapped.
pub fn read_c_string(pid: i32, addr: u64) -> Option<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    const MAX: usize = 4096;
    const PAGE: u64 = 4096;
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).ok()?;
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < MAX {
        // Up to the end of the page: the next one may not be mapped.
        let len = (PAGE - at % PAGE) as usize;
        let mut buf = vec![0u8; len.min(MAX - out.len())];
        let n = loop {
            match mem.read_at(&mut buf, at) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => break r.ok()?,
            }
        };
        if n == 0 {
            return None;
        }
        if let Some(end) = buf[..n].iter().position(|&b| b == 0) {
            out.extend_from_slice(&buf[..end]);
            return Some(out);
        }
        out.extend_from_slice(&buf[..n]);
        at += n as u64;
    }
    None
}

/// The executable of a process (`/proc/PID/exe`); `None` for kernel
/// threads, zombies and processes we may not inspect.
pub fn exe(pid: i32) -> Option<String> {
    let p = Process::new(pid).ok()?;
    p.exe().ok().map(|e| e.to_string_lossy().into_owned())
}

/// The kernel function a sleeping process waits in (`/proc/PID/wchan`);
/// `None` when it is running or the kernel hides it.
pub fn wchan(pid: i32) -> Option<String> {
    let w = std::fs::read_to_string(format!("/proc/{pid}/wchan")).ok()?;
    let w = w.trim();
    (!w.is_empty() && w != "0").then(|| w.to_string())
}

/// Reads one process for a machine-wide scan with as few system calls as
/// possible: open `/proc/PID`, read `stat` through it, open `fd` through
/// it, then one `readlinkat(2)` per fd (the `procfs` crate's fd iterator
/// also opens and `stat`s each fd, four calls instead of one). The `stat`
/// line is parsed by the `procfs` crate. At most two descriptors are
/// open at a time.
///
/// `Err(None)`: the process is gone (it exited during the scan, the
/// normal state of a live system); `Err(Some(errno))`: it could not be
/// read for another reason (no descriptor left to read it with: EMFILE,
/// ENFILE).
fn scan_one(pid: i32) -> Result<ProcFds, Option<rustix::io::Errno>> {
    use ::procfs::FromRead;
    use rustix::fs::{CWD, Mode, OFlags, openat, readlinkat};
    use rustix::io::Errno;
    let flags = OFlags::RDONLY | OFlags::CLOEXEC;
    // ENOENT and ESRCH: gone; anything else is worth saying.
    let why = |e: Errno| (e != Errno::NOENT && e != Errno::SRCH).then_some(e);
    let dir = openat(
        CWD,
        format!("/proc/{pid}"),
        flags | OFlags::DIRECTORY,
        Mode::empty(),
    )
    .map_err(why)?;
    // Read into a fixed buffer: `File::read_to_end` would add a statx and
    // an lseek per process to size a buffer for a file of 300 bytes.
    let stat_fd = openat(&dir, "stat", flags, Mode::empty()).map_err(why)?;
    let mut buf = [0u8; 4096];
    let mut len = 0;
    while len < buf.len() {
        match rustix::io::read(&stat_fd, &mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(why(e)),
        }
    }
    drop(stat_fd);
    // A stat line that does not parse: the process was reaped mid-read.
    let stat = ::procfs::process::Stat::from_read(&buf[..len]).map_err(|_| None)?;
    let kernel_thread = stat.flags & PF_KTHREAD != 0;
    let info = ProcInfo::from(stat);
    let mut fds = Vec::new();
    let fd_dir = openat(&dir, "fd", flags | OFlags::DIRECTORY, Mode::empty());
    let denied = matches!(fd_dir, Err(Errno::ACCESS | Errno::PERM));
    let mut unread = match &fd_dir {
        Err(e) if !denied => why(*e),
        _ => None,
    };
    if let Ok(fd_dir) = fd_dir {
        match rustix::fs::Dir::new(fd_dir) {
            Ok(mut entries) => {
                let mut link = Vec::with_capacity(64);
                while let Some(Ok(e)) = entries.read() {
                    let name = e.file_name();
                    let Some(fd) = name.to_str().ok().and_then(|n| n.parse::<i32>().ok()) else {
                        continue;
                    };
                    let Ok(dfd) = entries.fd() else { break };
                    link.clear();
                    let Ok(target) = readlinkat(dfd, name, std::mem::take(&mut link)) else {
                        continue;
                    };
                    let text = target.to_string_lossy();
                    fds.push(Fd {
                        fd,
                        kind: FdKind::from_link(&text),
                    });
                    link = target.into_bytes();
                }
            }
            Err(e) => unread = why(e),
        }
    }
    Ok(ProcFds {
        info,
        fds,
        denied,
        unread: unread.map(|e| e.raw_os_error()),
        kernel_thread,
    })
}

impl FdKind {
    /// What a `/proc/PID/fd/N` link text points at: `pipe:[N]` and
    /// `socket:[N]` by inode, a path (whatever bytes it holds: spaces,
    /// newlines, a ` (deleted)` suffix) when it starts with `/`, anything
    /// else as it reads. [`FdKind`]'s `Display` gives the text back.
    pub fn from_link(link: &str) -> FdKind {
        let ino = |prefix: &str| {
            link.strip_prefix(prefix)
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|n| n.parse::<u64>().ok())
        };
        if let Some(i) = ino("pipe:[") {
            FdKind::Pipe(i)
        } else if let Some(i) = ino("socket:[") {
            FdKind::Socket(i)
        } else if link.starts_with('/') {
            FdKind::Path(link.to_string())
        } else {
            FdKind::Other(link.to_string())
        }
    }
}

/// One process of a machine-wide snapshot with its open fds.
#[derive(Debug, Clone)]
pub struct ProcFds {
    pub info: ProcInfo,
    pub fds: Vec<Fd>,
    /// Its fds could not be read: permission denied (another user's
    /// process, read without root). `fds` is empty then.
    pub denied: bool,
    /// Its fds could not be read for another reason (an `errno`: no
    /// descriptor left to open them with, EMFILE or ENFILE). `fds` is
    /// empty then.
    pub unread: Option<i32>,
    /// A kernel thread (`PF_KTHREAD`): it has no fds and no command line.
    pub kernel_thread: bool,
}

/// What one pass over /proc read: every process with its fds, and the
/// processes that could not be read at all.
#[derive(Debug, Clone, Default)]
pub struct FdScan {
    pub procs: Vec<ProcFds>,
    /// Processes whose `stat` could not be read, for another reason than
    /// having exited: (pid, `errno`), EMFILE or ENFILE when no
    /// descriptor is left to read them with.
    pub unread: Vec<(i32, i32)>,
}

/// Every process with its fds: one pass over /proc (a `stat` read and
/// the fd links of each process). With `threads > 1` the pids are split
/// between that many scoped threads; processes that vanish mid-scan are
/// left out, processes that cannot be read are listed as such. An error
/// when /proc itself cannot be listed.
pub fn processes_with_fds(threads: usize) -> std::io::Result<FdScan> {
    let pids = numeric_entries("/proc")?;
    let one = |pids: &[i32]| {
        let mut out = FdScan::default();
        for &pid in pids {
            match scan_one(pid) {
                Ok(p) => out.procs.push(p),
                Err(Some(e)) => out.unread.push((pid, e.raw_os_error())),
                Err(None) => {}
            }
        }
        out
    };
    let threads = threads.clamp(1, 16);
    if threads == 1 || pids.len() < 64 {
        return Ok(one(&pids));
    }
    let chunk = pids.len().div_ceil(threads);
    Ok(std::thread::scope(|s| {
        let handles: Vec<_> = pids
            .chunks(chunk)
            .map(|c| s.spawn(move || one(c)))
            .collect();
        let mut all = FdScan::default();
        for h in handles {
            let part = h.join().unwrap_or_default();
            all.procs.extend(part.procs);
            all.unread.extend(part.unread);
        }
        all
    }))
}

/// The fds of `pid` that point at the pipe with inode `ino`.
pub fn fds_on_pipe(pid: i32, ino: u64) -> Vec<i32> {
    fds(pid)
        .into_iter()
        .filter(|f| f.kind == FdKind::Pipe(ino))
        .map(|f| f.fd)
        .collect()
}

/// This process's file mappings that are not writable (code and
/// constants of the executable and its libraries), from
/// `/proc/self/smaps`: each range, and whether it holds no anonymous
/// page (no page of it was ever copied on write, as the relocated
/// read-only data of a static executable is). Used by the long-lived
/// processes to give back the pages only start-up touched.
pub fn own_code_ranges() -> Vec<CodeRange> {
    use ::procfs::process::MMapPath;
    let Ok(maps) = Process::myself().and_then(|me| me.smaps()) else {
        return Vec::new();
    };
    maps.into_iter()
        .filter(|m| matches!(&m.pathname, MMapPath::Path(_)))
        .filter(|m| !m.perms.contains(::procfs::process::MMPermissions::WRITE))
        .map(|m| CodeRange {
            start: m.address.0 as usize,
            end: m.address.1 as usize,
            // Unknown counts as copied: the caller then takes the path
            // that is safe for copied pages.
            pristine: m.extension.map.get("Anonymous") == Some(&0),
        })
        .collect()
}

/// One read-only file mapping of this process; see [`own_code_ranges`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeRange {
    /// First address.
    pub start: usize,
    /// One past the last address.
    pub end: usize,
    /// No page of the range is a private (copied-on-write) copy: every
    /// resident page is the file's page-cache page.
    pub pristine: bool,
}

/// Mount point of the cgroup2 hierarchy: `/sys/fs/cgroup` or
/// `/sys/fs/cgroup/unified` when `statfs(2)` says cgroup2 is there, else
/// from `/proc/self/mountinfo` (parsed by the `procfs` crate's
/// `MountInfos`; a mount point that another mount now hides is not
/// taken); looked up once per process:
/// mounts do not move under a running sexton in any way that matters to
/// it, and the lookup sits on every spawn.
pub fn cgroup2_mount() -> Option<std::path::PathBuf> {
    use ::procfs::FromRead;
    static MOUNT: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    MOUNT
        .get_or_init(|| {
            // The usual places first, one statfs(2) each: a cgroup2 there
            // is the answer without reading and parsing every mount.
            const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
            for dir in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
                // f_type's width differs between architectures.
                #[allow(clippy::unnecessary_cast)]
                if rustix::fs::statfs(dir).is_ok_and(|st| st.f_type as i64 == CGROUP2_SUPER_MAGIC) {
                    return Some(std::path::PathBuf::from(dir));
                }
            }
            // A cgroup2 mount that another mount hides (a tmpfs mounted
            // over it) is listed still, but creating a cgroup there would
            // create a directory in whatever hides it: statfs(2) says
            // what the path is now.
            let text = read_text("/proc/self/mountinfo")?;
            let mounts = ::procfs::process::MountInfos::from_read(text.as_bytes()).ok()?;
            #[allow(clippy::unnecessary_cast)]
            mounts
                .into_iter()
                .filter(|m| m.fs_type == "cgroup2")
                .map(|m| m.mount_point)
                .find(|p| {
                    rustix::fs::statfs(p).is_ok_and(|st| st.f_type as i64 == CGROUP2_SUPER_MAGIC)
                })
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

/// A `children` list (one descriptor): usually empty or a few pids, so
/// a small first buffer.
fn read_list(path: &str) -> Option<String> {
    use std::io::Read;
    let mut text = String::with_capacity(128);
    std::fs::File::open(path)
        .ok()?
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
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
mod tests {
    use super::*;

    /// The tree takes a leader's start time from two readings of the
    /// boot clock around the fork when they agree: they must bracket
    /// what /proc says, and equal it when they agree.
    #[test]
    fn a_child_forked_within_one_boot_tick_started_in_it() {
        let mut agreed = 0;
        for _ in 0..100 {
            let before = boot_ticks().expect("boot clock");
            let mut child = std::process::Command::new("sleep")
                .arg("5")
                .spawn()
                .unwrap();
            let after = boot_ticks().expect("boot clock");
            let start = process(child.id() as i32).map(|p| p.start_time);
            let _ = child.kill();
            let _ = child.wait();
            let start = start.expect("the child in /proc");
            assert!(
                before <= start && start <= after,
                "{before} <= {start} <= {after}"
            );
            if before == after {
                assert_eq!(start, before);
                agreed += 1;
            }
        }
        assert!(agreed > 0, "the two readings never agreed in 100 forks");
    }

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

    #[test]
    fn children_lists_can_be_turned_off_for_one_thread() {
        let me = std::process::id() as i32;
        let kernel_has_them = std::fs::read_dir(format!("/proc/{me}/task"))
            .unwrap()
            .flatten()
            .all(|t| t.path().join("children").exists());
        assert_eq!(has_children_lists(), kernel_has_them);
        if !kernel_has_them {
            eprintln!("this kernel has no /proc/PID/task/TID/children: only the off state is seen");
        }
        let inside = without_children_lists(|| {
            // Nested use keeps it off, and other threads keep the lists.
            let nested = without_children_lists(|| children(me));
            let other = std::thread::scope(|s| s.spawn(has_children_lists).join().unwrap());
            (children(me), nested, has_children_lists(), other)
        });
        assert_eq!(inside, (None, None, false, kernel_has_them));
        // Restored afterwards, even after a panic inside.
        assert_eq!(has_children_lists(), kernel_has_them);
        let _ = std::panic::catch_unwind(|| without_children_lists(|| panic!("inside")));
        assert_eq!(has_children_lists(), kernel_has_them);
    }

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

    #[test]
    fn pipe_ends_and_a_local_tcp_connection() {
        use std::os::fd::AsRawFd;
        let me = std::process::id() as i32;
        let (r, w) = nix::unistd::pipe().unwrap();
        assert_eq!(pipe_end(me, r.as_raw_fd()), Some(PipeEnd::Read));
        assert_eq!(pipe_end(me, w.as_raw_fd()), Some(PipeEnd::Write));
        let scan = processes_with_fds(2).unwrap().procs;
        let mine = scan.iter().find(|p| p.info.pid == me).expect("own entry");
        let ino = nix::sys::stat::fstat(&r).unwrap().st_ino;
        assert_eq!(
            mine.fds
                .iter()
                .filter(|f| f.kind == FdKind::Pipe(ino))
                .count(),
            2
        );

        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (_a, _) = l.accept().unwrap();
        let sock_ino = |fd: i32| match fds(me).into_iter().find(|f| f.fd == fd).map(|f| f.kind) {
            Some(FdKind::Socket(i)) => i,
            other => panic!("fd {fd}: {other:?}"),
        };
        let table = net::sockets();
        let client = &table[&sock_ino(c.as_raw_fd())];
        assert!(client.connected && !client.listening);
        assert_eq!(client.remote, Some(l.local_addr().unwrap()));
        let listener = &table[&sock_ino(l.as_raw_fd())];
        assert!(listener.listening && !listener.connected);
        let peer = net::tcp_peer(&table, client).expect("peer of a local connection");
        assert_eq!(peer.local, client.remote);
        assert!(client.endpoint().starts_with("tcp 127.0.0.1:"));
    }
}
