//! The result of one run: the fields of the result document
//! (docs/run.md).

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
///
/// `stdout` and `stderr` are text: output that is not valid UTF-8 shows
/// there with U+FFFD in place of the bad bytes, and the bytes themselves
/// are kept, losslessly, in `stdout_base64` / `stderr_base64` (standard
/// base64), which appear only then.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    pub argv: Vec<String>,
    /// The program's pid; `None` when it could not be started.
    pub pid: Option<i32>,
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
    /// The captured stdout bytes, base64, when they are not valid UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdout_base64: Option<String>,
    pub stderr: String,
    /// The captured stderr bytes, base64, when they are not valid UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr_base64: Option<String>,
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
    pub stdout_dropped: u64,
    pub stderr_dropped: u64,
    pub rusage: Usage,
    pub leftovers: Vec<Leftover>,
    /// How many processes sexton killed (timeout or `leftovers kill`).
    pub killed: usize,
    /// `cgroup` or `subreaper`; absent when the program could not be
    /// started.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub tracking: &'static str,
    /// Why the program could not be started; only then present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
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

/// The text of captured bytes, and their base64 when the text cannot
/// hold them losslessly.
fn text_of(bytes: &[u8]) -> (String, Option<String>) {
    match std::str::from_utf8(bytes) {
        Ok(t) => (t.to_string(), None),
        Err(_) => {
            use base64::Engine;
            (
                String::from_utf8_lossy(bytes).into_owned(),
                Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
            )
        }
    }
}

impl Outcome {
    /// The document of a run whose program could not be started: `error`
    /// says why, `pid` and `exit_code` are null.
    pub fn start_failure(argv: Vec<String>, error: String) -> Outcome {
        Outcome {
            argv,
            error: Some(error),
            ..Outcome::default()
        }
    }

    /// Sets both captured streams: the raw bytes, their text (with base64
    /// beside it when not UTF-8), and the byte counts.
    pub fn set_output(
        &mut self,
        stdout: Vec<u8>,
        stdout_bytes: u64,
        stdout_dropped: u64,
        stderr: Vec<u8>,
        stderr_bytes: u64,
        stderr_dropped: u64,
    ) {
        (self.stdout, self.stdout_base64) = text_of(&stdout);
        (self.stderr, self.stderr_base64) = text_of(&stderr);
        self.stdout_raw = stdout;
        self.stderr_raw = stderr;
        self.stdout_bytes = stdout_bytes;
        self.stderr_bytes = stderr_bytes;
        self.stdout_dropped = stdout_dropped;
        self.stderr_dropped = stderr_dropped;
    }

    /// The exit status `sexton run` reports, with GNU `timeout`'s
    /// conventions: 124 timed out (unless `preserve_status`), 123 when
    /// `leftovers fail` found leftovers, the program's code, or 128+N
    /// when signal N killed it.
    ///
    /// As GNU `timeout` does, a timed-out program that had to be killed
    /// with SIGKILL (the kill-after fired, or the stop signal was KILL)
    /// reports 128+9, so a caller can tell it was forced.
    pub fn exit_status(&self, preserve_status: bool, fail_on_leftovers: bool) -> i32 {
        let forced = self.signal_number == Some(libc::SIGKILL);
        if self.timed_out && !preserve_status && !forced {
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
