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
    /// For a zombie finding: how many zombies this parent holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zombies: Option<usize>,
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
    /// Processes whose fds could not be read (another user's, without
    /// root; no descriptor left to open them with), or that could not be
    /// read at all: the checks that look at them did not see them.
    pub skipped: usize,
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

/// `s` fit for a terminal line: control characters (a newline in a
/// command line, an escape sequence in a file name) written as `\n`,
/// `\r`, `\t` or `\xNN` (`\u{NNNN}` beyond ASCII), so that a finding
/// keeps to its own lines and prints nothing it does not mean to. The
/// JSON document keeps the raw text.
pub fn escape_controls(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() && (c as u32) < 0x80 => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// How many holders of one pipe or socket the human form lists.
const HOLDER_LINES: usize = 8;

/// The findings as a person reads them: one block per defect, the guilty
/// pid and command first, the hint last. Zombies are grouped by their
/// parent (the guilty one), orphans by their former process group.
/// Control characters in command lines, paths and messages are escaped
/// ([`escape_controls`]).
pub fn render(findings: &[Finding]) -> String {
    use std::fmt::Write;
    let e = escape_controls;
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
                let _ = writeln!(
                    s,
                    "{ppid} {}  [state {}]: {n} unreaped {plural}",
                    e(cmd),
                    e(state)
                );
                let pids: Vec<String> = group
                    .iter()
                    .take(16)
                    .map(|&j| findings[j].pid.to_string())
                    .collect();
                let more = if n > 16 { " ..." } else { "" };
                let _ = writeln!(s, "  zombies: {}{more}", pids.join(" "));
                let _ = writeln!(s, "  {}", e(&f.message));
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
                        e(&o.cmdline),
                        o.ppid.unwrap_or(0)
                    );
                }
            }
            _ => {
                let _ = writeln!(s, "{} {}  [{}]", f.pid, e(&f.cmdline), f.kind.as_str());
                let _ = writeln!(s, "  {}", e(&f.message));
                if let Some(hs) = &f.holders
                    && f.kind != Kind::Blocked
                {
                    for h in hs.iter().take(HOLDER_LINES) {
                        let fds: Vec<String> = h.fds.iter().map(|x| x.to_string()).collect();
                        let end = h
                            .end
                            .map(|e| format!(" {} end", e.as_str()))
                            .unwrap_or_default();
                        let _ = writeln!(
                            s,
                            "  {} {}  (fd {}{end})",
                            h.pid,
                            e(&h.cmdline),
                            fds.join(", ")
                        );
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
            let _ = writeln!(s, "  hint: {}", e(&f.hint));
        }
    }
    s
}
