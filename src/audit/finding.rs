//! The finding document shared by every audit command (`--json`).

use crate::procfs::PipeEnd;
use serde::Serialize;

/// What kind of defect a finding reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Zombie,
    Orphan,
    SharedSocket,
    SharedPipe,
    PipeHolder,
    Leftover,
    InheritedFd,
    Blocked,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Zombie => "zombie",
            Kind::Orphan => "orphan",
            Kind::SharedSocket => "shared_socket",
            Kind::SharedPipe => "shared_pipe",
            Kind::PipeHolder => "pipe_holder",
            Kind::Leftover => "leftover",
            Kind::InheritedFd => "inherited_fd",
            Kind::Blocked => "blocked",
        }
    }
}

/// The parent of the process a finding is about.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Parent {
    pub pid: i32,
    pub cmdline: String,
    pub state: String,
}

/// A process that holds a pipe or socket, and on which fds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Holder {
    pub pid: i32,
    pub cmdline: String,
    pub fds: Vec<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<PipeEnd>,
}

/// One defect: the guilty process first, what is wrong, and the fix.
/// Fields that a kind does not use are left out of the JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub kind: Kind,
    pub pid: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ppid: Option<i32>,
    pub cmdline: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<Parent>,
    /// The former process group of an orphan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pgid: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids: Option<Vec<i32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holders: Option<Vec<Holder>>,
    /// The pipes of the checked program a leftover holds (`stdout`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holds: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fd: Option<i32>,
    /// What the fd points at (`pipe:[N]`, `socket:[N]`, a path).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syscall: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wchan: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    pub message: String,
    pub hint: String,
}

impl Finding {
    /// A finding with only the common fields set.
    pub fn new(kind: Kind, pid: i32, cmdline: String, message: String, hint: &str) -> Finding {
        Finding {
            kind,
            pid,
            ppid: None,
            cmdline,
            parent: None,
            pgid: None,
            pids: None,
            endpoint: None,
            holders: None,
            holds: None,
            fd: None,
            target: None,
            syscall: None,
            wchan: None,
            state: None,
            message,
            hint: hint.to_string(),
        }
    }
}

/// How much a scan looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Scanned {
    pub processes: usize,
    pub fds: usize,
}

/// The JSON document every audit command prints with `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub scanned: Scanned,
    pub duration_ms: f64,
}

impl Report {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_string())
    }
}
