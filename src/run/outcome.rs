//! The result of one run: the fields of the spec's result document.

use serde::Serialize;

/// CPU time and peak memory of the program (from `wait4`: the leader and
/// every descendant it reaped).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Usage {
    pub user_ms: f64,
    pub sys_ms: f64,
    pub max_rss_kb: u64,
}

/// What happened to a process still alive after the program exited.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LeftoverAction {
    Left,
    Killed,
}

/// A descendant still running after the program exited.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Leftover {
    pub pid: i32,
    pub ppid: i32,
    pub cmdline: String,
    /// Which of the program's output pipes it holds open: `"stdout"`,
    /// `"stderr"`.
    pub holds: Vec<&'static str>,
    pub action: LeftoverAction,
}

/// Everything a run produced, serialised as the result document.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub argv: Vec<String>,
    pub pid: i32,
    /// The program's exit code; `None` when a signal killed it.
    pub exit_code: Option<i32>,
    /// The signal that killed the program (`"TERM"`, `"RTMIN+3"`), else
    /// `None`.
    pub signal: Option<String>,
    pub timed_out: bool,
    pub duration_ms: f64,
    /// Captured output (UTF-8, invalid bytes replaced). Empty when the
    /// stream was not captured.
    pub stdout: String,
    pub stderr: String,
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
    pub stdout_dropped: u64,
    pub stderr_dropped: u64,
    pub rusage: Usage,
    pub leftovers: Vec<Leftover>,
    /// How many processes sexton killed (timeout or `leftovers kill`).
    pub killed: usize,
    pub tracking: &'static str,
    /// The captured bytes as the program wrote them.
    #[serde(skip)]
    pub stdout_raw: Vec<u8>,
    #[serde(skip)]
    pub stderr_raw: Vec<u8>,
    /// The signal number behind `signal`.
    #[serde(skip)]
    pub signal_number: Option<i32>,
    /// The run was cut short because its lifeline closed (the process
    /// that asked for it died); the tree was killed.
    #[serde(skip)]
    pub lifeline_lost: bool,
}

impl Outcome {
    /// The exit status `sexton run` reports, with GNU `timeout`'s
    /// conventions: 124 timed out (unless `preserve_status`), 123 when
    /// `leftovers fail` found leftovers, the program's code, or 128+N
    /// when signal N killed it.
    pub fn exit_status(&self, preserve_status: bool, fail_on_leftovers: bool) -> i32 {
        if self.timed_out && !preserve_status {
            return 124;
        }
        if fail_on_leftovers && !self.leftovers.is_empty() {
            return 123;
        }
        match (self.exit_code, self.signal_number) {
            (Some(c), _) => c,
            (None, Some(n)) => 128 + n,
            (None, None) => 125,
        }
    }

    /// The result document as one JSON line.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("outcome serialises")
    }
}
