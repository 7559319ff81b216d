//! The state directory of a supervisor, and what a crashed run left.
//!
//! `sexton up` keeps its state in `.sexton/` beside the config file
//! (`--state-dir DIR` or `SEXTON_STATE_DIR` choose another): the locked
//! pidfile of the supervisor (`supervisor.pid`, the same locked pidfile as
//! `sexton daemon`'s, so a second `up` learns the running one's pid), the
//! control socket (`control.sock`), the logs (`logs/`, unless the config's
//! `log_dir` says otherwise), and `state.json`: for every running service
//! the leader's pid, start time and process group, and its cgroup. Every
//! command run from the config's folder derives the same directory, so
//! it finds the same supervisor.
//!
//! `state.json` is what makes "no service ever runs twice" hold after a
//! crash that even the supervisor's guard did not survive: before the
//! next `up` starts anything, [`clean_up`] kills what the record names
//! (the whole cgroup of each service; in subreaper mode the leader and
//! its process group, checked by start time so a reused pid is never
//! hit). The file is written whole to a temporary file and renamed over
//! the old one, so a reader never sees half a record.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The environment variable that names the state directory.
pub const ENV: &str = "SEXTON_STATE_DIR";

/// Where one supervisor keeps its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir {
    pub path: PathBuf,
}

impl StateDir {
    /// `explicit` (`--state-dir`), else `$SEXTON_STATE_DIR`, else
    /// `.sexton` in the config's directory. Relative paths are taken
    /// from the current directory.
    pub fn resolve(config_dir: &Path, explicit: Option<&Path>) -> StateDir {
        let chosen = explicit
            .map(Path::to_path_buf)
            .or_else(|| {
                std::env::var_os(ENV)
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })
            .unwrap_or_else(|| config_dir.join(".sexton"));
        StateDir {
            path: std::path::absolute(&chosen).unwrap_or(chosen),
        }
    }

    /// Creates the directory (mode 0700: the control socket in it is
    /// the supervisor's command line).
    pub fn create(&self) -> io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.path)
    }

    pub fn pidfile(&self) -> PathBuf {
        self.path.join("supervisor.pid")
    }

    pub fn socket(&self) -> PathBuf {
        self.path.join("control.sock")
    }

    pub fn record(&self) -> PathBuf {
        self.path.join("state.json")
    }

    /// The log directory: the config's `log_dir`, else `logs/` here.
    pub fn logs(&self, log_dir: Option<&Path>) -> PathBuf {
        log_dir
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.path.join("logs"))
    }
}

/// One running service's leader, as the state file records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leader {
    pub pid: i32,
    /// Start time in clock ticks since boot (`/proc/PID/stat`): with the
    /// pid it names one process for good.
    pub start_time: u64,
    /// The leader's process group (its own pid: each service leads one).
    pub pgid: i32,
    /// The service's cgroup, in cgroup mode.
    pub cgroup: Option<PathBuf>,
}

/// What `state.json` holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The supervisor users see (the lock holder).
    pub supervisor: i32,
    /// The worker below it that runs the services (owner of the cgroups).
    pub worker: i32,
    pub services: BTreeMap<String, Leader>,
}

impl Record {
    /// Writes the record to `path` atomically: a temporary file in the
    /// same directory, flushed, then renamed over `path`.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let text = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        write_atomic(path, &text)
    }

    /// The record at `path`; `None` when there is none or it does not
    /// parse (a record is only ever replaced whole, so a bad one is not
    /// ours).
    pub fn load(path: &Path) -> Option<Record> {
        let text = std::fs::read(path).ok()?;
        serde_json::from_slice(&text).ok()
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, so
/// `path` holds either the old contents or the new ones, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_data()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Kills what a crashed run left, from its record, before anything new
/// starts; returns one line per service it found alive. In cgroup mode
/// the worker's cgroups are killed and removed whole (escapees included);
/// without a cgroup, the leader and every process still in its process
/// group that started after it are killed through start-time-checked
/// pidfds. A supervisor that had no time to record a service started in
/// its last moments is covered by the cgroup pass, which takes every
/// cgroup named after the dead worker.
pub fn clean_up(record: &Record) -> Vec<String> {
    let mut notes = Vec::new();
    if record.worker > 0
        && crate::procfs::process(record.worker).is_none_or(|p| p.is_zombie())
        && let Some(parent) = crate::tree::cgroup::own_cgroup()
    {
        crate::tree::cgroup::remove_stale(&parent, Some(record.worker));
    }
    let snapshot = crate::procfs::processes();
    for (name, leader) in &record.services {
        let mut found: Vec<&crate::procfs::ProcInfo> = snapshot
            .iter()
            .filter(|p| !p.is_zombie())
            .filter(|p| {
                (p.pid == leader.pid && p.start_time == leader.start_time)
                    || (leader.pgid > 0
                        && p.pgid == leader.pgid
                        && p.start_time >= leader.start_time)
            })
            .collect();
        found.retain(|p| p.pid != std::process::id() as i32);
        if found.is_empty() {
            continue;
        }
        let killed = crate::tree::kill_checked(&found, libc::SIGKILL);
        notes.push(format!(
            "service {name}: killed {killed} process(es) left by a supervisor that crashed"
        ));
    }
    notes
}
