//! `check`: the defects one program causes, found by sampling its tree
//! while it runs (the library side of `sexton check`).
//!
//! A [`Checker`] is fed the live [`Tree`] at a fixed interval (through
//! [`crate::Command::sample_every`]) and, at the end, the run's
//! [`Outcome`]. At each sample it looks at every live member:
//!
//! - **zombies**: children of a member (from `/proc/PID/task/*/children`)
//!   that are zombies. One left unreaped longer than `zombie_after` while
//!   its parent still lived is a finding (D1/D2). A zombie whose parent
//!   exited is reaped by sexton and is not the program's defect.
//! - **fds inherited across exec** (D7): the kernel does not say who
//!   opened an fd, so this is a heuristic. When a member is first seen
//!   running another executable than its parent (it has exec'd), each of
//!   its fds above 2 that points at the same object (pipe, socket or file,
//!   `/dev/null` aside) as an fd its parent holds at that moment is taken
//!   as inherited without `O_CLOEXEC`. A forked child that did not exec
//!   shares everything with its parent by design and is not looked at; an
//!   fd the parent closed before the sample is missed.
//! - **shared connections** (D8): connected sockets open in two members,
//!   on an fd above 2 in at least one of them.
//!
//! After the program exits, the run's leftovers (descendants still
//! running, with the output pipes they hold: D6) are findings too.

use super::{Finding, Holder, Kind, Parent, Scanned, zombies};
use crate::procfs::{self, FdKind, net};
use crate::run::Outcome;
use crate::tree::Tree;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

/// How a tree is watched.
#[derive(Debug, Clone, Copy)]
pub struct CheckOptions {
    /// Time between samples (default 10 ms).
    pub interval: Duration,
    /// How long a zombie may wait for its living parent before it counts
    /// (default 250 ms: a parent that reaps on SIGCHLD does it in well
    /// under a millisecond).
    pub zombie_after: Duration,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            interval: Duration::from_millis(10),
            zombie_after: Duration::from_millis(250),
        }
    }
}

#[derive(Debug)]
struct ZombieSeen {
    pid: i32,
    comm: String,
    parent: Parent,
    first: Instant,
    last: Instant,
}

/// The state of one check across samples.
#[derive(Debug)]
pub struct Checker {
    opts: CheckOptions,
    me: i32,
    zombies: HashMap<(i32, u64), ZombieSeen>,
    exes: HashMap<(i32, u64), String>,
    inherited: Vec<Finding>,
    shared_seen: HashSet<u64>,
    shared: Vec<Finding>,
    seen: HashSet<(i32, u64)>,
    /// Members whose fds could not be read (another user's: a setuid
    /// program, without root).
    denied: HashSet<(i32, u64)>,
    fds_seen: usize,
    started: Instant,
}

impl Checker {
    pub fn new(opts: CheckOptions) -> Checker {
        Checker {
            opts,
            me: std::process::id() as i32,
            zombies: HashMap::new(),
            exes: HashMap::new(),
            inherited: Vec::new(),
            shared_seen: HashSet::new(),
            shared: Vec::new(),
            seen: HashSet::new(),
            denied: HashSet::new(),
            fds_seen: 0,
            started: Instant::now(),
        }
    }

    pub fn options(&self) -> CheckOptions {
        self.opts
    }

    /// Looks at the tree once.
    pub fn sample(&mut self, tree: &mut Tree) {
        let now = Instant::now();
        let leader = tree.leader().as_raw();
        let members = tree.members();
        let live: HashMap<i32, &procfs::ProcInfo> = members.iter().map(|m| (m.pid, m)).collect();
        let mut fds: HashMap<i32, Vec<procfs::Fd>> = HashMap::new();
        for m in &members {
            self.seen.insert((m.pid, m.start_time));
            let f = match procfs::try_fds(m.pid) {
                Ok(f) => f,
                Err(procfs::FdsError::Denied) => {
                    if !m.is_zombie() {
                        self.denied.insert((m.pid, m.start_time));
                    }
                    Vec::new()
                }
                Err(procfs::FdsError::Gone) => Vec::new(),
            };
            self.fds_seen += f.len();
            fds.insert(m.pid, f);
        }
        for m in &members {
            self.zombies_of(m, now);
            if m.pid != leader && m.pid != self.me {
                self.exec_check(m, &live, &fds);
            }
        }
        self.shared_sockets(&fds);
    }

    fn zombies_of(&mut self, m: &procfs::ProcInfo, now: Instant) {
        let kids = match procfs::children(m.pid) {
            Some(k) => k,
            None => procfs::processes()
                .into_iter()
                .filter(|p| p.ppid == m.pid)
                .map(|p| p.pid)
                .collect(),
        };
        for k in kids {
            let Some(z) = procfs::process(k) else {
                continue;
            };
            if !z.is_zombie() || z.ppid != m.pid {
                continue;
            }
            self.seen.insert((z.pid, z.start_time));
            let e = self
                .zombies
                .entry((z.pid, z.start_time))
                .or_insert_with(|| ZombieSeen {
                    pid: z.pid,
                    comm: z.comm.clone(),
                    parent: Parent {
                        pid: m.pid,
                        cmdline: procfs::cmdline(m.pid).unwrap_or_else(|| m.comm.clone()),
                        state: m.state.to_string(),
                        zombies: None,
                    },
                    first: now,
                    last: now,
                });
            e.last = now;
        }
    }

    fn exec_check(
        &mut self,
        m: &procfs::ProcInfo,
        live: &HashMap<i32, &procfs::ProcInfo>,
        fds: &HashMap<i32, Vec<procfs::Fd>>,
    ) {
        let Some(exe) = procfs::exe(m.pid) else {
            return;
        };
        let key = (m.pid, m.start_time);
        if self.exes.get(&key) == Some(&exe) {
            return;
        }
        self.exes.insert(key, exe.clone());
        if !live.contains_key(&m.ppid) || procfs::exe(m.ppid).as_deref() == Some(exe.as_str()) {
            return;
        }
        let (Some(mine), Some(theirs)) = (fds.get(&m.pid), fds.get(&m.ppid)) else {
            return;
        };
        let leaked: Vec<&procfs::Fd> = mine
            .iter()
            .filter(|f| f.fd > 2 && interesting(&f.kind))
            .filter(|f| theirs.iter().any(|t| t.kind == f.kind))
            .collect();
        if leaked.is_empty() {
            return;
        }
        let list: Vec<String> = leaked
            .iter()
            .map(|f| format!("{} ({})", f.fd, f.kind))
            .collect();
        let parent_cmd = procfs::cmdline(m.ppid).unwrap_or_default();
        let word = if leaked.len() == 1 { "fd" } else { "fds" };
        let mut f = Finding::new(
            Kind::InheritedFd,
            m.pid,
            procfs::cmdline(m.pid).unwrap_or_else(|| m.comm.clone()),
            format!(
                "{word} {} inherited across exec from {} {parent_cmd}",
                list.join(", "),
                m.ppid
            ),
            "open them with O_CLOEXEC (or close_fds=True, FD_CLOEXEC) in the parent",
        );
        f.ppid = Some(m.ppid);
        f.fd = Some(leaked[0].fd);
        f.target = Some(leaked[0].kind.to_string());
        f.parent = Some(Parent {
            pid: m.ppid,
            cmdline: parent_cmd,
            state: live
                .get(&m.ppid)
                .map(|p| p.state.to_string())
                .unwrap_or_default(),
            zombies: None,
        });
        f.holders = Some(vec![Holder {
            pid: m.pid,
            cmdline: f.cmdline.clone(),
            fds: leaked.iter().map(|f| f.fd).collect(),
            end: None,
        }]);
        self.inherited.push(f);
    }

    fn shared_sockets(&mut self, fds: &HashMap<i32, Vec<procfs::Fd>>) {
        let mut by_ino: BTreeMap<u64, BTreeMap<i32, Vec<i32>>> = BTreeMap::new();
        for (&pid, list) in fds {
            for f in list {
                if let FdKind::Socket(ino) = f.kind {
                    by_ino
                        .entry(ino)
                        .or_default()
                        .entry(pid)
                        .or_default()
                        .push(f.fd);
                }
            }
        }
        by_ino.retain(|ino, h| {
            h.len() >= 2
                && h.values().flatten().any(|&fd| fd > 2)
                && !self.shared_seen.contains(ino)
        });
        if by_ino.is_empty() {
            return;
        }
        let table = net::sockets();
        for (ino, holders) in by_ino {
            let Some(s) = table.get(&ino) else { continue };
            if !s.connected || s.listening {
                continue;
            }
            self.shared_seen.insert(ino);
            let pids: Vec<i32> = holders.keys().copied().collect();
            let ep = s.endpoint();
            let cmd = |p: i32| procfs::cmdline(p).unwrap_or_default();
            let mut f = Finding::new(
                Kind::SharedSocket,
                pids[0],
                cmd(pids[0]),
                format!(
                    "connected socket {ep} is open in {} processes: {}",
                    pids.len(),
                    pids.iter()
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                super::shared::SOCKET_HINT,
            );
            f.target = Some(format!("socket:[{ino}]"));
            f.holders = Some(
                holders
                    .iter()
                    .map(|(&pid, fds)| Holder {
                        pid,
                        cmdline: cmd(pid),
                        fds: fds.clone(),
                        end: None,
                    })
                    .collect(),
            );
            f.pids = Some(pids);
            f.endpoint = Some(ep);
            self.shared.push(f);
        }
    }

    /// Everything found, the run's leftovers included.
    pub fn findings(&self, outcome: &Outcome) -> Vec<Finding> {
        let mut out = Vec::new();
        let mut late: Vec<&ZombieSeen> = self
            .zombies
            .values()
            .filter(|z| z.last.duration_since(z.first) >= self.opts.zombie_after)
            .collect();
        late.sort_by_key(|z| (z.parent.pid, z.pid));
        let mut per_parent: HashMap<i32, usize> = HashMap::new();
        for z in &late {
            *per_parent.entry(z.parent.pid).or_default() += 1;
        }
        for z in late {
            let n = per_parent[&z.parent.pid];
            let plural = if n == 1 { "zombie" } else { "zombies" };
            let mut f = Finding::new(
                Kind::Zombie,
                z.pid,
                format!("[{}] <defunct>", z.comm),
                format!(
                    "pid {} never waited for its children ({n} {plural}, unreaped for {} ms or more while it lived)",
                    z.parent.pid,
                    z.last.duration_since(z.first).as_millis()
                ),
                zombies::HINT,
            );
            f.ppid = Some(z.parent.pid);
            f.parent = Some(Parent {
                zombies: Some(n),
                ..z.parent.clone()
            });
            out.push(f);
        }
        for l in &outcome.leftovers {
            let holding = if l.holds.is_empty() {
                String::new()
            } else {
                format!(", holding its {}", l.holds.join(" and "))
            };
            let mut f = Finding::new(
                Kind::Leftover,
                l.pid,
                l.cmdline.clone(),
                format!(
                    "still running after {} exited{holding} ({})",
                    outcome.pid.unwrap_or(0),
                    match l.action {
                        crate::LeftoverAction::Killed => "killed by sexton",
                        crate::LeftoverAction::Left => "left running",
                    }
                ),
                "wait for (or stop) the children you start before exiting; do not hand them your stdout/stderr",
            );
            f.ppid = Some(l.ppid);
            f.holds = Some(l.holds.iter().map(|s| s.to_string()).collect());
            out.push(f);
        }
        out.extend(self.inherited.iter().cloned());
        out.extend(self.shared.iter().cloned());
        out
    }

    pub fn scanned(&self) -> Scanned {
        Scanned {
            processes: self.seen.len(),
            fds: self.fds_seen,
            skipped: self.denied.len(),
        }
    }

    /// Milliseconds since the checker was made, to one decimal.
    pub fn elapsed_ms(&self) -> f64 {
        (self.started.elapsed().as_secs_f64() * 10000.0).round() / 10.0
    }
}

/// An fd worth reporting when inherited: pipes, sockets, files; not
/// `/dev/null` or anonymous kernel objects.
fn interesting(k: &FdKind) -> bool {
    match k {
        FdKind::Pipe(_) | FdKind::Socket(_) => true,
        FdKind::Path(p) => p != "/dev/null",
        FdKind::Other(_) => false,
    }
}
