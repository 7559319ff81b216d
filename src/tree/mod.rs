//! A tracked process tree: the heart of sexton.
//!
//! [`Tree::spawn`] starts a program as the leader of a tree whose members
//! are every process it ever creates, including the ones that escape its
//! process group with `setsid` or a double fork (defect D5). Two backends
//! track membership, chosen by [`Tracking`]:
//!
//! - **cgroup**: a fresh cgroup v2 per tree (see [`cgroup`]). The child
//!   moves itself in before exec, so nothing it forks is ever outside.
//! - **subreaper**: the calling process becomes a child subreaper
//!   (`PR_SET_CHILD_SUBREAPER`), so every orphan of the tree is reparented
//!   to it instead of to PID 1, and the leader gets its own process group.
//!   Members are found by walking /proc: descendants of the leader, plus
//!   adopted orphans (children of this process that started after the
//!   leader).
//!
//! In both modes the caller is a subreaper, so adopted members can be
//! reaped, and [`Tree::kill`] is built so that a process forking in a
//! loop cannot outrun the kill: cgroup mode uses `cgroup.kill` (or
//! `cgroup.freeze` then SIGKILL), subreaper mode SIGKILLs every member a
//! walk finds and walks again until none is alive (a process with SIGKILL
//! pending cannot complete a fork, so every round closes the set).
//!
//! Reaping is by pid, never `waitpid(-1)`, so a library host's own
//! children are never stolen.

pub mod cgroup;
pub mod guard;
pub mod signals;
mod spawn;
pub mod status;

pub use spawn::{ChildSetup, Credentials, DirectIo, Group, SignalState};

use crate::procfs::{self, ProcInfo};
use crate::sys::{self, Rusage};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use std::collections::HashSet;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

/// How to follow the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tracking {
    /// cgroup v2 when a writable cgroup2 mount is found, else subreaper.
    #[default]
    Auto,
    /// cgroup v2 or fail.
    Cgroup,
    /// Child subreaper plus the leader's process group.
    Subreaper,
}

/// The backend a tree actually runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Cgroup,
    Subreaper,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Cgroup => "cgroup",
            Mode::Subreaper => "subreaper",
        }
    }
}

/// Errors of the tree layer.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("{program}: command not found")]
    NotFound { program: String },
    #[error("{program}: permission denied")]
    NotExecutable { program: String },
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("cgroup tracking unavailable: {0}")]
    NoCgroup(#[source] io::Error),
    #[error("cannot become a child subreaper: {0}")]
    Subreaper(#[source] io::Error),
    #[error("waiting for the program failed: {0}")]
    Wait(#[source] io::Error),
}

/// How the leader ended, with its resource usage.
#[derive(Debug, Clone, Copy)]
pub struct LeaderExit {
    pub status: ExitStatus,
    pub rusage: Rusage,
    pub at: Instant,
}

/// A running tree: its leader, how it is tracked, and what has been seen
/// of it.
#[derive(Debug)]
pub struct Tree {
    mode: Mode,
    leader: Pid,
    pidfd: Option<OwnedFd>,
    cgroup: Option<cgroup::Cgroup>,
    /// Members seen so far, as (pid, start time), so that an adopted
    /// orphan is recognised as ours and a reused pid is not.
    known: HashSet<(i32, u64)>,
    /// This tree's entry in the process-wide [`registry`].
    id: u64,
    exit: Option<LeaderExit>,
    /// The leader leads a process group of its own ([`Group::New`]), so
    /// `kill(-leader)` reaches that group while the leader is unreaped.
    group_leader: bool,
    me: i32,
    released: bool,
}

impl Tree {
    /// Spawns `cmd` as the leader of a new tree.
    ///
    /// `setup` says which fds to pass and which signal state to reset;
    /// the tree adds the cgroup move (cgroup mode) or the new process
    /// group (subreaper mode). The calling process becomes a child
    /// subreaper (`prctl(PR_SET_CHILD_SUBREAPER)`) in both modes, so that
    /// orphans of the tree are reparented to it and can be reaped.
    pub fn spawn(
        cmd: &mut std::process::Command,
        tracking: Tracking,
        setup: ChildSetup,
    ) -> Result<Tree, TreeError> {
        Tree::spawn_with(cmd, None, tracking, setup)
    }

    /// [`Tree::spawn`], given also where the leader's stdio comes from
    /// and whether its environment starts empty. With that, cgroup mode
    /// creates the leader directly inside its cgroup
    /// (`clone3(CLONE_INTO_CGROUP)`, Linux 5.7+) instead of moving it
    /// there after the fork, which is the largest cost of a short run;
    /// where the kernel cannot, it falls back to the same path as
    /// [`Tree::spawn`].
    pub fn spawn_with(
        cmd: &mut std::process::Command,
        direct: Option<spawn::DirectIo>,
        tracking: Tracking,
        mut setup: ChildSetup,
    ) -> Result<Tree, TreeError> {
        let program = cmd.get_program().to_string_lossy().into_owned();
        nix::sys::prctl::set_child_subreaper(true).map_err(|e| TreeError::Subreaper(e.into()))?;
        let cg = match tracking {
            Tracking::Subreaper => None,
            Tracking::Cgroup => Some(cgroup::Cgroup::create().map_err(TreeError::NoCgroup)?),
            Tracking::Auto => cgroup::Cgroup::create().ok(),
        };
        let mode = if cg.is_some() {
            Mode::Cgroup
        } else {
            Mode::Subreaper
        };
        let map_err = |e: io::Error| match e.kind() {
            io::ErrorKind::NotFound => TreeError::NotFound {
                program: program.clone(),
            },
            io::ErrorKind::PermissionDenied => TreeError::NotExecutable {
                program: program.clone(),
            },
            _ if e.raw_os_error() == Some(libc::ENOEXEC) => TreeError::NotExecutable {
                program: program.clone(),
            },
            _ => TreeError::Spawn {
                program: program.clone(),
                source: e,
            },
        };
        let before = procfs::boot_ticks();
        let mut spawned = None;
        if let (Some(cg), Some(dio)) = (&cg, &direct)
            && let Ok(dir) = std::fs::File::open(cg.path())
        {
            spawned =
                spawn::spawn_into_cgroup(cmd, dio, &setup, dir.as_raw_fd()).map_err(map_err)?;
        }
        let (leader, pidfd) = match spawned {
            Some((pid, pidfd)) => (Pid::from_raw(pid), Some(pidfd)),
            None => {
                setup.cgroup_procs = cg.as_ref().map(|c| c.procs_fd());
                setup.apply(cmd, direct.as_ref().is_some_and(|d| d.clear_env));
                let child = cmd.spawn().map_err(map_err)?;
                let leader = Pid::from_raw(child.id() as i32);
                // std's Child is dropped without waiting: the tree reaps the
                // leader itself (wait4, for its rusage).
                drop(child);
                // The leader is our unreaped child, so its pid cannot be reused
                // before we wait for it: the pidfd surely names it.
                let pidfd = rustix::process::pidfd_open(
                    rustix::process::Pid::from_raw(leader.as_raw()).expect("child pid is positive"),
                    rustix::process::PidfdFlags::empty(),
                )
                .ok();
                (leader, pidfd)
            }
        };
        // The leader's start time (its identity with its pid): forked
        // between two readings of the boot clock that fall in the same
        // clock tick, it started in that tick; otherwise /proc says.
        let leader_start = match (before, procfs::boot_ticks()) {
            (Some(a), Some(b)) if a == b => a,
            _ => procfs::process(leader.as_raw())
                .map(|p| p.start_time)
                .unwrap_or(0),
        };
        let mut known = HashSet::new();
        known.insert((leader.as_raw(), leader_start));
        let id = registry::add(leader.as_raw(), leader_start, setup.group == Group::New);
        Ok(Tree {
            mode,
            leader,
            pidfd,
            cgroup: cg,
            known,
            id,
            exit: None,
            group_leader: setup.group == Group::New,
            me: std::process::id() as i32,
            released: false,
        })
    }

    /// A tree over an existing child of this process and whatever it
    /// leaves behind: every orphan adopted after `leader` started is a
    /// member (this process must be a child subreaper). Subreaper
    /// tracking, no process group assumed. The guard uses it to kill what
    /// a worker that died abruptly left (see [`guard`]).
    pub fn adopt(leader: Pid, leader_start: u64) -> Tree {
        let mut known = HashSet::new();
        known.insert((leader.as_raw(), leader_start));
        let id = registry::add(leader.as_raw(), leader_start, false);
        Tree {
            mode: Mode::Subreaper,
            leader,
            pidfd: None,
            cgroup: None,
            known,
            id,
            exit: None,
            group_leader: false,
            me: std::process::id() as i32,
            released: false,
        }
    }

    /// Which backend follows this tree.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The tree's cgroup directory, in cgroup mode.
    pub fn cgroup_path(&self) -> Option<&std::path::Path> {
        self.cgroup.as_ref().map(|c| c.path())
    }

    /// The pid of the program that was spawned.
    pub fn leader(&self) -> Pid {
        self.leader
    }

    /// A pidfd for the leader (Linux 5.3+): readable once it has exited.
    /// `None` on kernels without pidfd; poll [`Tree::try_wait`] then.
    pub fn leader_fd(&self) -> Option<BorrowedFd<'_>> {
        if self.exit.is_some() {
            return None;
        }
        self.pidfd.as_ref().map(|f| f.as_fd())
    }

    /// How the leader ended, once it has been reaped.
    pub fn leader_exit(&self) -> Option<LeaderExit> {
        self.exit
    }

    /// Hands the tree the leader's status when the caller reaped it
    /// itself (an init that reaps with `waitpid(-1)` may reap the leader
    /// before [`Tree::try_wait`] does). Later waits return this status.
    /// Ignored when the leader's exit is already known.
    pub fn set_leader_exit(&mut self, raw_status: i32, rusage: Rusage) {
        use std::os::unix::process::ExitStatusExt;
        if self.exit.is_none() {
            self.exit = Some(LeaderExit {
                status: ExitStatus::from_raw(raw_status),
                rusage,
                at: Instant::now(),
            });
            self.pidfd = None;
        }
    }

    /// Reaps the leader if it has exited (`wait4(pid, WNOHANG)`).
    pub fn try_wait(&mut self) -> Result<Option<LeaderExit>, TreeError> {
        self.wait_leader(true)
    }

    /// Blocks until the leader exits and reaps it.
    pub fn wait(&mut self) -> Result<LeaderExit, TreeError> {
        Ok(self
            .wait_leader(false)?
            .expect("blocking wait returns a status"))
    }

    fn wait_leader(&mut self, nohang: bool) -> Result<Option<LeaderExit>, TreeError> {
        if let Some(e) = self.exit {
            return Ok(Some(e));
        }
        use std::os::unix::process::ExitStatusExt;
        match sys::wait4(self.leader.as_raw(), nohang).map_err(TreeError::Wait)? {
            None => Ok(None),
            Some((raw, rusage)) => {
                let e = LeaderExit {
                    status: ExitStatus::from_raw(raw),
                    rusage,
                    at: Instant::now(),
                };
                self.exit = Some(e);
                self.pidfd = None;
                Ok(Some(e))
            }
        }
    }

    /// Every process of the tree that is alive now (zombies excluded),
    /// leader included while it runs.
    pub fn members(&mut self) -> Vec<ProcInfo> {
        self.scan().into_iter().filter(|p| !p.is_zombie()).collect()
    }

    /// True when no member is alive. Cheap in both modes: cgroup mode
    /// reads `cgroup.events`; subreaper mode first asks whether this
    /// process has any child at all (every member is a descendant).
    pub fn is_empty(&mut self) -> bool {
        match &self.cgroup {
            Some(cg) => !cg.populated() || self.members().is_empty(),
            None => !has_children() || self.members().is_empty(),
        }
    }

    /// Members and member zombies, from one scan.
    fn scan(&mut self) -> Vec<ProcInfo> {
        let found: Vec<ProcInfo> = match &self.cgroup {
            // An exited process leaves the cgroup: these are the live
            // members (and the odd zombie not yet moved out).
            Some(cg) => cg.pids().into_iter().filter_map(procfs::process).collect(),
            None => self.walk(),
        };
        let mut new = Vec::new();
        for p in &found {
            if self.known.insert((p.pid, p.start_time)) {
                new.push((p.pid, p.start_time));
            }
        }
        registry::saw(self.id, &new);
        found
    }

    /// Zombie children of ours that belonged to the tree, read from our
    /// own children list when the kernel has one, else from a scan.
    fn adopted_zombies(&self) -> Vec<ProcInfo> {
        if !has_children() {
            return Vec::new();
        }
        self.own_children()
            .into_iter()
            .filter(|p| p.is_zombie() && self.is_ours(p))
            .collect()
    }

    /// Every child of this process, live or zombie: from our children
    /// list when the kernel has one, else from a /proc scan.
    fn own_children(&self) -> Vec<ProcInfo> {
        match procfs::children(self.me) {
            Some(pids) => pids.into_iter().filter_map(procfs::process).collect(),
            None => procfs::processes()
                .into_iter()
                .filter(|p| p.ppid == self.me)
                .collect(),
        }
    }

    /// Whether a child of this process (the leader, or an orphan of the
    /// tree it adopted as subreaper) belongs to this tree. Exact for the
    /// leader and for every member a scan has seen; for an orphan no scan
    /// saw, the process-wide [`registry`] of trees decides, so that the
    /// trees of one process (a supervisor's services) never take each
    /// other's processes: see [`registry::owner_of`].
    fn is_ours(&self, p: &ProcInfo) -> bool {
        p.pid == self.leader.as_raw()
            || self.known.contains(&(p.pid, p.start_time))
            || registry::owner_of(p) == Some(self.id)
    }

    /// Subreaper mode membership. Every member is a descendant of this
    /// process (orphans of the tree are reparented to us, the subreaper),
    /// so the walk starts at our children that are ours (the leader and
    /// adopted orphans, not a library host's other children) and follows
    /// `/proc/PID/task/*/children` down: it reads the tree's processes
    /// only. Kernels without children lists get one /proc snapshot and
    /// the same walk over it.
    fn walk(&self) -> Vec<ProcInfo> {
        match self.walk_children() {
            Some(v) => v,
            None => self.walk_snapshot(),
        }
    }

    fn walk_children(&self) -> Option<Vec<ProcInfo>> {
        let mut out = Vec::new();
        let mut seen: HashSet<i32> = HashSet::new();
        let mut stack: Vec<ProcInfo> = Vec::new();
        for pid in procfs::children(self.me)? {
            if let Some(p) = procfs::process(pid)
                && (p.pid == self.leader.as_raw() || self.is_ours(&p))
                && seen.insert(p.pid)
            {
                stack.push(p);
            }
        }
        while let Some(p) = stack.pop() {
            for c in procfs::children(p.pid).unwrap_or_default() {
                if seen.insert(c)
                    && let Some(cp) = procfs::process(c)
                {
                    stack.push(cp);
                }
            }
            out.push(p);
        }
        Some(out)
    }

    fn walk_snapshot(&self) -> Vec<ProcInfo> {
        let snap = procfs::processes();
        let kids = procfs::children_index(&snap);
        let leader = self.leader.as_raw();
        let mut seen: HashSet<i32> = HashSet::new();
        let mut stack: Vec<usize> = Vec::new();
        for (i, p) in snap.iter().enumerate() {
            let root =
                p.pid == leader || p.pgid == leader || (p.ppid == self.me && self.is_ours(p));
            if root && p.pid != self.me && seen.insert(p.pid) {
                stack.push(i);
            }
        }
        let mut out = Vec::new();
        while let Some(i) = stack.pop() {
            let p = &snap[i];
            if let Some(ch) = kids.get(&p.pid) {
                for &c in ch {
                    if seen.insert(snap[c].pid) {
                        stack.push(c);
                    }
                }
            }
            out.push(p.clone());
        }
        out
    }

    /// Sends `sig` to every live member, each exactly once. Returns how
    /// many processes were signalled. See [`Tree::signal_each`].
    pub fn signal(&mut self, sig: Signal) -> usize {
        self.signal_each(sig as i32).len()
    }

    /// Sends signal number `signo` (realtime ones included; 0 only checks
    /// that the members exist) to every live member, each exactly once,
    /// and returns the pids it reached.
    ///
    /// cgroup mode freezes the cgroup (`cgroup.freeze`) around the
    /// delivery, so nothing forks or exits between the listing and the
    /// signal and the listed pids are the members. Subreaper mode sends
    /// one `kill(-leader)` to the leader's own group while the leader is
    /// unreaped (its pgid cannot name another group then), and reaches
    /// each member outside that group through a pidfd opened and checked
    /// against the member's start time, so a pid reused since the walk is
    /// never signalled.
    pub fn signal_each(&mut self, signo: i32) -> Vec<i32> {
        if let Some(cg) = &self.cgroup {
            let frozen = cg.freeze(true, Duration::from_millis(200)).is_ok();
            let members = self.members();
            let mut sent = Vec::with_capacity(members.len());
            for m in &members {
                let ok = if frozen {
                    // Frozen: the pid cannot exit and be reused meanwhile.
                    sys::kill_raw(m.pid, signo).is_ok()
                } else {
                    signal_checked(m, signo)
                };
                if ok {
                    sent.push(m.pid);
                }
            }
            if let Some(cg) = &self.cgroup {
                let _ = cg.freeze(false, Duration::ZERO);
            }
            return sent;
        }
        // Listed first: a member the signal ends is not alive to be
        // counted afterwards. The group signal then also reaches what the
        // group forked since.
        let members = self.members();
        let group = self.group_alive();
        let mut sent = Vec::new();
        let group_sent = group && sys::kill_raw(-self.leader.as_raw(), signo).is_ok();
        for m in members {
            let in_group = group_sent && m.pgid == self.leader.as_raw();
            if in_group || signal_checked(&m, signo) {
                sent.push(m.pid);
            }
        }
        sent
    }

    /// True while `kill(-leader)` names the tree's own group: the leader
    /// leads a group of its own and has not been reaped (a pid, and so a
    /// pgid, is never reused while its process exists, zombie included).
    fn group_alive(&self) -> bool {
        self.group_leader && self.exit.is_none()
    }

    /// Kills the whole tree with SIGKILL so that forks cannot outrun it,
    /// reaps what it adopted, and waits until no member is left or
    /// `limit` has passed. Returns the pids that were killed.
    ///
    /// cgroup mode writes `cgroup.kill`. Subreaper mode SIGKILLs every
    /// member one walk finds, then walks again until a walk finds none
    /// alive: a process with SIGKILL pending cannot complete a fork
    /// (`copy_process` aborts it), so each walk finds every child that
    /// exists, and a fork loop dies in the round that first sees it.
    pub fn kill(&mut self, limit: Duration) -> Vec<i32> {
        let deadline = Instant::now() + limit;
        let mut killed: HashSet<i32> = HashSet::new();
        loop {
            if let Some(cg) = &self.cgroup {
                // cgroup.kill first, counting from cgroup.procs (one
                // read): the kill must not wait for a /proc walk.
                let pids = cg.pids();
                if pids.is_empty() {
                    break;
                }
                if cg.kill_all().is_ok() {
                    killed.extend(pids);
                    self.reap();
                    if Instant::now() >= deadline {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
            }
            let members = self.members();
            if members.is_empty() {
                break;
            }
            killed.extend(members.iter().map(|m| m.pid));
            // The group first, in one call, while it is surely ours; then
            // every member outside it through a checked pidfd.
            let group = self.group_alive();
            if group {
                let _ = sys::kill_raw(-self.leader.as_raw(), libc::SIGKILL);
            }
            for m in &members {
                if !(group && m.pgid == self.leader.as_raw()) {
                    signal_checked(m, libc::SIGKILL);
                }
            }
            self.reap();
            if Instant::now() >= deadline {
                break;
            }
            // Killed processes need a moment to finish exiting.
            std::thread::sleep(Duration::from_millis(1));
        }
        self.reap();
        let mut v: Vec<i32> = killed.into_iter().collect();
        v.sort_unstable();
        v
    }

    /// Reaps every zombie child of ours that belongs to the tree (by pid,
    /// with `WNOHANG`), the leader included. Returns how many.
    pub fn reap(&mut self) -> usize {
        if !has_children() {
            return 0;
        }
        let mut n = 0;
        let zombies = self.adopted_zombies();
        for z in zombies {
            if z.pid == self.leader.as_raw() {
                if let Ok(Some(_)) = self.try_wait() {
                    n += 1;
                }
            } else if let Ok(Some(_)) = sys::wait4(z.pid, true) {
                n += 1;
            }
        }
        n
    }

    /// Reaps every exited child of this process, whoever it is
    /// (`wait4(-1, WNOHANG)` until it says none has exited), handing the
    /// leader's status to the tree; counts them in `reaped`. Returns
    /// whether any child is left. Allocation-free.
    ///
    /// This is the reaping core of a process that owns all its children
    /// (`init`, the daemon monitor, the supervisor): one call after every
    /// wakeup reaps however many exits coalesced into one SIGCHLD (D2),
    /// and a child killed by any signal, realtime ones included, is
    /// reaped like any other. A library host, whose other children are
    /// not the tree's, uses [`Tree::reap`] (by pid) instead.
    pub fn reap_all_children(&mut self, reaped: &mut u64) -> io::Result<bool> {
        loop {
            match sys::wait4_any() {
                Ok(Some((pid, status, rusage))) => {
                    *reaped += 1;
                    if pid == self.leader.as_raw() {
                        self.set_leader_exit(status, rusage);
                    }
                }
                Ok(None) => return Ok(true),
                Err(e) if e.raw_os_error() == Some(libc::ECHILD) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }

    /// Reaps members that have left the tree but are not zombies yet.
    ///
    /// A process closes its fds and leaves its cgroup before it becomes a
    /// zombie, so a run can see EOF and an empty cgroup while the last
    /// members are still exiting; if sexton then exits, they turn into
    /// zombies for whoever adopts them. Every such process is, or will be
    /// once its exiting parent is gone, a child of ours (we are the
    /// subreaper), so in cgroup mode this reaps our children that are from
    /// the tree but outside its cgroup until a fresh look finds none (or
    /// `limit` passes); in both modes a child of ours that is exiting
    /// (`PF_EXITING`) is waited for the same way.
    pub fn settle(&mut self, limit: Duration) {
        self.reap();
        if !has_children() {
            return;
        }
        let deadline = Instant::now() + limit;
        loop {
            let inside: HashSet<i32> = self
                .cgroup
                .as_ref()
                .map(|cg| cg.pids().into_iter().collect())
                .unwrap_or_default();
            let exiting: Vec<i32> = self
                .own_children()
                .into_iter()
                .filter(|p| p.pid != self.leader.as_raw() && self.is_ours(p))
                .filter(|p| {
                    p.is_zombie()
                        || (self.cgroup.is_some() && !inside.contains(&p.pid))
                        || procfs::exiting(p.pid)
                })
                .map(|p| p.pid)
                .collect();
            if exiting.is_empty() || Instant::now() >= deadline {
                return;
            }
            let mut reaped = false;
            for pid in exiting {
                reaped |= matches!(sys::wait4(pid, true), Ok(Some(_)));
            }
            if !reaped {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    /// Stops tracking without killing: live members keep running (moved
    /// out to sexton's own cgroup in cgroup mode) and the cgroup is
    /// removed. Idempotent; after this, dropping the tree kills nothing.
    pub fn release(&mut self) {
        if self.released {
            return;
        }
        self.released = true;
        registry::remove(self.id);
        if let Some(mut cg) = self.cgroup.take() {
            if cg.populated()
                && let Some(own) = cgroup::own_cgroup()
            {
                cg.evacuate(&own);
            }
            let _ = cg.remove(Duration::from_millis(500));
            // Nothing left to kill in it on drop; its fd is closed.
            cg.leave();
        }
    }

    /// The pipe-holding members: for each live member, which of the given
    /// pipe inodes it has open, and on which fds.
    pub fn holders(&mut self, pipes: &[(&'static str, u64)]) -> Vec<(ProcInfo, Vec<&'static str>)> {
        self.members()
            .into_iter()
            .map(|m| {
                let fds = procfs::fds(m.pid);
                let holds: Vec<&'static str> = pipes
                    .iter()
                    .filter(|(_, ino)| fds.iter().any(|f| f.kind == procfs::FdKind::Pipe(*ino)))
                    .map(|(name, _)| *name)
                    .collect();
                (m, holds)
            })
            .collect()
    }
}

impl Drop for Tree {
    /// Last line of defence: a tree that was neither emptied nor released
    /// is killed, so dropping a `Tree` never leaks processes.
    fn drop(&mut self) {
        registry::remove(self.id);
        if !self.released {
            self.kill(Duration::from_secs(5));
            if let Some(mut cg) = self.cgroup.take() {
                let _ = cg.remove(Duration::from_secs(1));
            }
        }
    }
}

/// The trees this process runs, so that one tree never takes what
/// belongs to another.
///
/// Every tree's leader is a child of this process, and in subreaper mode
/// (and, for zombies, in cgroup mode too) the orphans of every tree are
/// adopted by this process as well. A process that runs several trees at
/// once (the supervisor: one per service) must tell them apart when it
/// reaps or walks: a tree never takes another tree's leader, nor a member
/// another tree has seen. An adopted orphan no scan has seen goes to the
/// tree whose leader's process group it is in, else to the tree started
/// last before it (a process cannot be older than the tree that made
/// it); with one tree, as in `run`, that is simply "started after the
/// leader".
pub mod registry {
    use super::ProcInfo;
    use std::collections::HashSet;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};

    struct Entry {
        id: u64,
        leader: i32,
        leader_start: u64,
        /// The leader leads a process group of its own.
        group: bool,
        seen: HashSet<(i32, u64)>,
    }

    static TREES: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
    static NEXT: AtomicU64 = AtomicU64::new(1);

    fn trees() -> std::sync::MutexGuard<'static, Vec<Entry>> {
        TREES.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn add(leader: i32, leader_start: u64, group: bool) -> u64 {
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        trees().push(Entry {
            id,
            leader,
            leader_start,
            group,
            seen: HashSet::new(),
        });
        id
    }

    pub(super) fn remove(id: u64) {
        trees().retain(|e| e.id != id);
    }

    pub(super) fn saw(id: u64, members: &[(i32, u64)]) {
        if members.is_empty() {
            return;
        }
        if let Some(e) = trees().iter_mut().find(|e| e.id == id) {
            e.seen.extend(members.iter().copied());
        }
    }

    /// The tree an adopted child of this process belongs to (see the
    /// module docs), if any.
    pub fn owner_of(p: &ProcInfo) -> Option<u64> {
        let trees = trees();
        let key = (p.pid, p.start_time);
        if let Some(e) = trees
            .iter()
            .find(|e| (e.leader, e.leader_start) == key || e.seen.contains(&key))
        {
            return Some(e.id);
        }
        if let Some(e) = trees.iter().find(|e| e.group && p.pgid == e.leader) {
            return Some(e.id);
        }
        trees
            .iter()
            .filter(|e| e.leader_start <= p.start_time)
            .max_by_key(|e| e.leader_start)
            .map(|e| e.id)
    }
}

/// Sends `signo` to each process described, as [`signal_checked`] does
/// (a pid reused since the description was read is never signalled);
/// returns how many were signalled. For processes outside any tree this
/// process runs (what a crashed supervisor left).
pub fn kill_checked(procs: &[&ProcInfo], signo: i32) -> usize {
    procs.iter().filter(|p| signal_checked(p, signo)).count()
}

/// Sends `signo` to the process `p` describes, through a pidfd
/// (`pidfd_open(2)`, `pidfd_send_signal(2)`) opened first and then checked
/// against `p`'s start time: if the pid was reused since `p` was read, the
/// pidfd names the newcomer, whose start time differs, and nothing is
/// sent. Kernels without pidfds (before 5.3) get a plain `kill(2)`.
/// Returns whether the signal was sent.
fn signal_checked(p: &ProcInfo, signo: i32) -> bool {
    let Some(pid) = rustix::process::Pid::from_raw(p.pid) else {
        return false;
    };
    let fd = match rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOSYS) => return sys::kill_raw(p.pid, signo).is_ok(),
        Err(_) => return false,
    };
    if procfs::process(p.pid).is_none_or(|now| now.start_time != p.start_time) {
        return false;
    }
    if signo == 0 {
        return true;
    }
    // SAFETY: `signo` is a signal number sexton was asked to deliver
    // (parsed from a name or number in 1..=64, or forwarded as received);
    // it is only sent, never blocked or handled here.
    let sig = unsafe { rustix::process::Signal::from_raw_unchecked(signo) };
    loop {
        match rustix::process::pidfd_send_signal(&fd, sig) {
            Ok(()) => return true,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return false,
        }
    }
}

/// True when this process has at least one child, live or zombie
/// (`waitid(P_ALL, WEXITED|WNOHANG|WNOWAIT)` says ECHILD otherwise).
pub fn has_children() -> bool {
    use nix::sys::wait::{Id, WaitPidFlag, waitid};
    loop {
        match waitid(
            Id::All,
            WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT,
        ) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::ECHILD) => return false,
            _ => return true,
        }
    }
}

/// Raw fd helper for callers that poll the leader.
pub fn raw(fd: Option<BorrowedFd<'_>>) -> Option<RawFd> {
    use std::os::fd::AsRawFd;
    fd.map(|f| f.as_raw_fd())
}
