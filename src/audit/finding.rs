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

/// How many holders of one pipe or socket the human form lists.
const HOLDER_LINES: usize = 8;

/// The findings as a person reads them: one block per defect, the guilty
/// pid and command first, the hint last. Zombies are grouped by their
/// parent (the guilty one), orphans by their former process group.
pub fn render(findings: &[Finding]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let mut done = vec![false; findings.len()];
    for i in 0..findings.len() {
        if done[i] {
            continue;
        }
        let f = &findings[i];
        let group: Vec<usize> = match f.kind {
            Kind::Zombie => (i..findings.len())
                .filter(|&j| findings[j].kind == Kind::Zombie && findings[j].ppid == f.ppid)
                .collect(),
            Kind::Orphan => (i..findings.len())
                .filter(|&j| findings[j].kind == Kind::Orphan && findings[j].pgid == f.pgid)
                .collect(),
            _ => vec![i],
        };
        for &j in &group {
            done[j] = true;
        }
        if !s.is_empty() {
            s.push('\n');
        }
        match f.kind {
            Kind::Zombie => {
                let ppid = f.ppid.unwrap_or(0);
                let (cmd, state) = f
                    .parent
                    .as_ref()
                    .map(|p| (p.cmdline.as_str(), p.state.as_str()))
                    .unwrap_or(("?", "?"));
                let n = group.len();
                let plural = if n == 1 { "zombie" } else { "zombies" };
                let _ = writeln!(s, "{ppid} {cmd}  [state {state}]: {n} unreaped {plural}");
                let pids: Vec<String> = group
                    .iter()
                    .take(16)
                    .map(|&j| findings[j].pid.to_string())
                    .collect();
                let more = if n > 16 { " ..." } else { "" };
                let _ = writeln!(s, "  zombies: {}{more}", pids.join(" "));
                let _ = writeln!(s, "  {}", f.message);
            }
            Kind::Orphan => {
                let _ = writeln!(
                    s,
                    "process group {} (leader gone): {} orphan{}",
                    f.pgid.unwrap_or(0),
                    group.len(),
                    if group.len() == 1 { "" } else { "s" }
                );
                for &j in &group {
                    let o = &findings[j];
                    let _ = writeln!(
                        s,
                        "  {} {}  [adopted by {}]",
                        o.pid,
                        o.cmdline,
                        o.ppid.unwrap_or(0)
                    );
                }
            }
            _ => {
                let _ = writeln!(s, "{} {}  [{}]", f.pid, f.cmdline, f.kind.as_str());
                let _ = writeln!(s, "  {}", f.message);
                if let Some(hs) = &f.holders
                    && f.kind != Kind::Blocked
                {
                    for h in hs.iter().take(HOLDER_LINES) {
                        let fds: Vec<String> = h.fds.iter().map(|x| x.to_string()).collect();
                        let end = h
                            .end
                            .map(|e| format!(" {} end", e.as_str()))
                            .unwrap_or_default();
                        let _ =
                            writeln!(s, "  {} {}  (fd {}{end})", h.pid, h.cmdline, fds.join(", "));
                    }
                    if hs.len() > HOLDER_LINES {
                        let _ = writeln!(
                            s,
                            "  ... and {} more (--json lists them all)",
                            hs.len() - HOLDER_LINES
                        );
                    }
                }
            }
        }
        if !f.hint.is_empty() {
            let _ = writeln!(s, "  hint: {}", f.hint);
        }
    }
    s
}
