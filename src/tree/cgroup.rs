//! cgroup v2 backend of the tree: one fresh child cgroup per tree.
//!
//! The cgroup2 mount is found in `/proc/self/mountinfo` (on hybrid
//! machines it is often `/sys/fs/cgroup/unified`, never assumed), and the
//! new cgroup is made beside sexton inside sexton's own cgroup. A process
//! cannot leave a cgroup by forking, `setsid` or double-forking, so the
//! membership is exact. Killing uses `cgroup.kill` (Linux 5.14+), which
//! the kernel applies to every member atomically, forks in flight
//! included; on older kernels the cgroup is frozen first (`cgroup.freeze`)
//! so nothing can fork between listing and killing.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A cgroup this process created for one tree.
#[derive(Debug)]
pub struct Cgroup {
    path: PathBuf,
    /// `cgroup.procs` of the new cgroup, opened for writing before the
    /// fork so that the child only has to `write("0")` (async-signal-safe)
    /// to move itself in before it execs.
    procs: File,
    removed: bool,
    /// Seen unpopulated once. Final: a process enters a cgroup only by a
    /// member's fork or by a write to its `cgroup.procs`, and with no
    /// member and nobody writing (sexton never moves a process into a
    /// tree it is tearing down) it stays empty.
    empty: std::cell::Cell<bool>,
}

/// Where the cgroup2 hierarchy is mounted, from `/proc/self/mountinfo`
/// (looked up once per process).
pub fn mount_point() -> Option<PathBuf> {
    crate::procfs::cgroup2_mount()
}

/// This process's own cgroup v2 directory (`0::/path` in /proc/self/cgroup
/// joined to the mount point).
pub fn own_cgroup() -> Option<PathBuf> {
    let mount = mount_point()?;
    Some(mount.join(crate::procfs::own_cgroup_v2()?))
}

impl Cgroup {
    /// Creates `sexton-PID-N` inside this process's own cgroup. Fails
    /// (and the caller falls back to the subreaper backend) when there is
    /// no cgroup2 mount or it is not writable.
    pub fn create() -> io::Result<Cgroup> {
        let parent = own_cgroup().ok_or_else(|| io::Error::other("no cgroup2 mount found"))?;
        remove_stale(&parent, None);
        // A name left by an earlier process with our pid (killed before
        // it could remove its cgroup) is skipped, or removed when empty.
        let mut attempt = 0;
        let path = loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = parent.join(format!("sexton-{}-{}", std::process::id(), n));
            match fs::create_dir(&path) {
                Ok(()) => break path,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 16 => {
                    let _ = fs::remove_dir(&path);
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        };
        let procs = match OpenOptions::new()
            .write(true)
            .open(path.join("cgroup.procs"))
        {
            Ok(f) => f,
            Err(e) => {
                let _ = fs::remove_dir(&path);
                return Err(e);
            }
        };
        Ok(Cgroup {
            path,
            procs,
            removed: false,
            empty: std::cell::Cell::new(false),
        })
    }

    /// The cgroup's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The raw fd of `cgroup.procs`, for the child to write "0" into
    /// between fork and exec.
    pub fn procs_fd(&self) -> RawFd {
        self.procs.as_raw_fd()
    }

    /// Pids in this cgroup and in any cgroup nested below it.
    pub fn pids(&self) -> Vec<i32> {
        let mut out = Vec::new();
        collect_pids(&self.path, &mut out);
        out
    }

    /// True while any process is in the cgroup (`populated 1` in
    /// `cgroup.events`). Once false, remembered (see `empty`): teardown
    /// asks more than once.
    pub fn populated(&self) -> bool {
        if self.empty.get() {
            return false;
        }
        let populated = match fs::read_to_string(self.path.join("cgroup.events")) {
            Ok(s) => s.lines().any(|l| l == "populated 1"),
            Err(_) => !self.pids().is_empty(),
        };
        self.empty.set(!populated);
        populated
    }

    /// Freezes (`true`) or thaws (`false`) every member, waiting up to
    /// `limit` for the kernel to report the cgroup frozen.
    pub fn freeze(&self, on: bool, limit: Duration) -> io::Result<()> {
        write_file(&self.path.join("cgroup.freeze"), if on { "1" } else { "0" })?;
        if !on {
            return Ok(());
        }
        let deadline = Instant::now() + limit;
        loop {
            let ev = fs::read_to_string(self.path.join("cgroup.events")).unwrap_or_default();
            if ev.lines().any(|l| l == "frozen 1") || !ev.lines().any(|l| l == "populated 1") {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// SIGKILLs every member at once through `cgroup.kill`; on kernels
    /// without it, freezes, kills each listed pid, and thaws, so that no
    /// member can fork between the listing and the kill.
    pub fn kill_all(&self) -> io::Result<()> {
        match write_file(&self.path.join("cgroup.kill"), "1") {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.freeze(true, Duration::from_secs(1))?;
                for pid in self.pids() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                self.freeze(false, Duration::ZERO)
            }
            Err(e) => Err(e),
        }
    }

    /// Moves every member into `dest` (normally sexton's own cgroup), so
    /// that processes left running outlive this cgroup.
    pub fn evacuate(&self, dest: &Path) {
        let procs = dest.join("cgroup.procs");
        for pid in self.pids() {
            let _ = write_file(&procs, &pid.to_string());
        }
    }

    /// Lets the cgroup go: its `cgroup.procs` is closed, and nothing in
    /// it is killed (or removed) on drop. For a tree released with
    /// members left to live on.
    pub fn leave(mut self) {
        self.removed = true;
    }

    /// Removes the cgroup directory (and nested ones), retrying while the
    /// kernel still counts exiting members. Idempotent.
    pub fn remove(&mut self, limit: Duration) -> io::Result<()> {
        if self.removed {
            return Ok(());
        }
        let deadline = Instant::now() + limit;
        loop {
            match remove_tree(&self.path) {
                Ok(()) => {
                    self.removed = true;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    self.removed = true;
                    return Ok(());
                }
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(2)),
            }
        }
    }
}

/// The pid in a cgroup name this module made (`sexton-PID-N`).
fn owner_of(name: &str) -> Option<i32> {
    let rest = name.strip_prefix("sexton-")?;
    let (pid, n) = rest.split_once('-')?;
    n.parse::<u32>().ok()?;
    pid.parse().ok()
}

/// Removes the `sexton-PID-N` cgroups in `parent` left by an owner that
/// is gone (killed before it could remove them; a process that exits any
/// other way removes its own). With `owner: None`, every owner that is
/// no longer alive counts, and only empty cgroups are removed: a
/// populated one belongs to a run whose processes were left to live on
/// and is not ours to judge. With `owner: Some(pid)` (a worker that this
/// process knows died abruptly), that owner's cgroups are killed
/// (`cgroup.kill`) and removed.
///
/// One `readdir` of the parent, plus one `rmdir` per stale entry: cheap
/// enough to run at every [`Cgroup::create`].
pub fn remove_stale(parent: &Path, owner: Option<i32>) {
    let Ok(rd) = fs::read_dir(parent) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(owner_of) else {
            continue;
        };
        let path = e.path();
        match owner {
            Some(o) if o == pid => {
                let mut cg = Cgroup {
                    procs: match OpenOptions::new()
                        .write(true)
                        .open(path.join("cgroup.procs"))
                    {
                        Ok(f) => f,
                        Err(_) => continue,
                    },
                    path,
                    removed: false,
                    empty: std::cell::Cell::new(false),
                };
                if cg.populated() {
                    let _ = cg.kill_all();
                }
                let _ = cg.remove(Duration::from_secs(1));
            }
            Some(_) => {}
            None => {
                // A live owner (or a pid reused by a live process) keeps
                // its cgroups; rmdir fails on a populated one anyway.
                let dead = crate::procfs::process(pid).is_none_or(|p| p.is_zombie());
                if pid as u32 != std::process::id() && dead {
                    let _ = remove_tree(&path);
                }
            }
        }
    }
}

fn collect_pids(dir: &Path, out: &mut Vec<i32>) {
    if let Ok(s) = fs::read_to_string(dir.join("cgroup.procs")) {
        out.extend(s.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    }
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                collect_pids(&e.path(), out);
            }
        }
    }
}

/// Removes `dir` and the cgroups nested in it. One `rmdir` when nothing
/// is nested (the usual case); the directory is listed only when the
/// kernel refuses that (EBUSY for a cgroup with children).
fn remove_tree(dir: &Path) -> io::Result<()> {
    match fs::remove_dir(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(e),
        Err(_) => {}
    }
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_tree(&e.path())?;
            }
        }
    }
    fs::remove_dir(dir)
}

fn write_file(path: &Path, text: &str) -> io::Result<()> {
    let mut f = OpenOptions::new().write(true).open(path)?;
    loop {
        match f.write_all(text.as_bytes()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        if !self.removed && self.populated() {
            let _ = self.kill_all();
        }
        let _ = self.remove(Duration::from_secs(1));
    }
}
