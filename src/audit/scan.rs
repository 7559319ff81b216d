//! One snapshot of the machine's processes, their fds and its sockets.

use super::{Parent, Scanned};
use crate::procfs::{self, FdKind, ProcFds, net};
use std::collections::{HashMap, HashSet};
use std::time::Instant;

/// Every process with its fds, and every socket by inode, read in one
/// pass. Processes that exit during the pass are simply not in it, and
/// neither is the process taking the scan: sexton never reports itself
/// (nor, so, anything of its own fds).
#[derive(Debug)]
pub struct Scan {
    pub procs: Vec<ProcFds>,
    by_pid: HashMap<i32, usize>,
    pub sockets: HashMap<u64, net::Socket>,
    pub started: Instant,
    /// Processes the pass could not read at all (pid, `errno`): see
    /// [`procfs::FdScan::unread`].
    pub unread: Vec<(i32, i32)>,
    /// Command lines read so far: each process's is read once per scan,
    /// however many findings name it.
    cmdlines: std::cell::RefCell<HashMap<i32, String>>,
}

impl Scan {
    /// Reads /proc now, in one thread. Splitting the pass between two
    /// threads was measured (`bench/audit.sh`, 3000 processes, 2-core VM
    /// under load): the mean got worse (177 ms against 146 ms), because the
    /// join waits for whichever thread the scheduler parked last; hence
    /// one thread here, and [`procfs::processes_with_fds`] takes a thread
    /// count for machines where it pays.
    ///
    /// A /proc that cannot be listed at all gives an empty scan; see
    /// [`Scan::try_take`] to tell that apart.
    pub fn take() -> Scan {
        Scan::try_take()
            .unwrap_or_else(|_| Scan::from_parts(Vec::new(), HashMap::new(), Instant::now()))
    }

    /// [`Scan::take`], or the error when /proc cannot be listed at all
    /// (no descriptor left to open it with, say). Processes that cannot
    /// be read are counted in [`Scan::skipped`], never left out silently.
    pub fn try_take() -> std::io::Result<Scan> {
        let started = Instant::now();
        let me = std::process::id() as i32;
        let all = procfs::processes_with_fds(1)?;
        let mut procs = all.procs;
        procs.retain(|p| p.info.pid != me);
        let sockets = net::sockets();
        let mut scan = Scan::from_parts(procs, sockets, started);
        scan.unread = all.unread;
        Ok(scan)
    }

    /// A scan of given parts (for tests and for sampling a tree).
    pub fn from_parts(
        procs: Vec<ProcFds>,
        sockets: HashMap<u64, net::Socket>,
        started: Instant,
    ) -> Scan {
        let by_pid = procs
            .iter()
            .enumerate()
            .map(|(i, p)| (p.info.pid, i))
            .collect();
        Scan {
            procs,
            by_pid,
            sockets,
            started,
            unread: Vec::new(),
            cmdlines: Default::default(),
        }
    }

    pub fn get(&self, pid: i32) -> Option<&ProcFds> {
        self.by_pid.get(&pid).map(|&i| &self.procs[i])
    }

    /// The command line of `pid` (read the first time it is asked for),
    /// or `[comm]` from the scan.
    pub fn cmdline(&self, pid: i32) -> String {
        if let Some(c) = self.cmdlines.borrow().get(&pid) {
            return c.clone();
        }
        let c = procfs::cmdline(pid)
            .or_else(|| self.get(pid).map(|p| format!("[{}]", p.info.comm)))
            .unwrap_or_else(|| "?".to_string());
        self.cmdlines.borrow_mut().insert(pid, c.clone());
        c
    }

    /// The parent record of a finding.
    pub fn parent(&self, pid: i32) -> Option<Parent> {
        let p = self.get(pid)?;
        Some(Parent {
            pid,
            cmdline: self.cmdline(pid),
            state: p.info.state.to_string(),
            zombies: None,
        })
    }

    /// How many zombie children `pid` has in the scan.
    pub fn zombies_of(&self, pid: i32) -> usize {
        self.procs
            .iter()
            .filter(|p| p.info.ppid == pid && p.info.is_zombie())
            .count()
    }

    /// `root` and all its descendants in the scan.
    pub fn subtree(&self, root: i32) -> HashSet<i32> {
        let mut kids: HashMap<i32, Vec<i32>> = HashMap::new();
        for p in &self.procs {
            kids.entry(p.info.ppid).or_default().push(p.info.pid);
        }
        let mut out = HashSet::new();
        let mut stack = vec![root];
        while let Some(p) = stack.pop() {
            if out.insert(p)
                && let Some(ch) = kids.get(&p)
            {
                stack.extend(ch);
            }
        }
        out
    }

    /// True when `pid` descends from `ancestor` (following ppid links).
    pub fn descends_from(&self, pid: i32, ancestor: i32) -> bool {
        let mut cur = pid;
        for _ in 0..4096 {
            let Some(p) = self.get(cur) else { return false };
            if p.info.ppid == ancestor {
                return true;
            }
            if p.info.ppid <= 1 {
                return false;
            }
            cur = p.info.ppid;
        }
        false
    }

    /// Every (pid, fd) that points at the given pipe or socket.
    pub fn holders_of(&self, kind: &FdKind) -> Vec<(i32, i32)> {
        let mut v = Vec::new();
        for p in &self.procs {
            for f in &p.fds {
                if &f.kind == kind {
                    v.push((p.info.pid, f.fd));
                }
            }
        }
        v
    }

    pub fn scanned(&self) -> Scanned {
        Scanned {
            processes: self.procs.len(),
            fds: self.procs.iter().map(|p| p.fds.len()).sum(),
            skipped: self.skipped(),
        }
    }

    /// How many processes the scan could not look into: their fds were
    /// not readable (another user's processes, scanned without root; no
    /// descriptor left to open them with), or the process itself was not
    /// (see [`Scan::unread`]). Kernel threads and zombies have no fds to
    /// miss and are not counted.
    pub fn skipped(&self) -> usize {
        self.procs
            .iter()
            .filter(|p| (p.denied || p.unread.is_some()) && !p.kernel_thread && !p.info.is_zombie())
            .count()
            + self.unread.len()
    }

    /// Why processes were skipped for another reason than permissions
    /// (`No file descriptors available (os error 24)`), if any were.
    pub fn skip_reason(&self) -> Option<String> {
        let errno = self
            .unread
            .first()
            .map(|&(_, e)| e)
            .or_else(|| self.procs.iter().find_map(|p| p.unread))?;
        Some(std::io::Error::from_raw_os_error(errno).to_string())
    }

    /// Milliseconds since the scan began, to one decimal.
    pub fn elapsed_ms(&self) -> f64 {
        (self.started.elapsed().as_secs_f64() * 10000.0).round() / 10.0
    }
}
