//! The run log (`--log FILE`): one JSON result document per line.
//!
//! Output is trimmed to 4 KiB per stream (head and tail). A stream that is
//! identical to what the previous run of the same argv wrote is logged as
//! `{"same_as_previous": true}`, so a job that prints the same thing every
//! minute does not fill the disk. Lines are appended with `O_APPEND` under
//! an exclusive `flock`, so concurrent runs never interleave. A line is
//! in the log whole or not at all: a write that fails part-way (a full
//! disk) is cut back off before the lock is released.

use super::Outcome;
use crate::pipes::Capture;
use serde_json::{Value, json};
use std::fs::OpenOptions;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Bytes of each stream kept in a log line.
pub const STREAM_LIMIT: u64 = 4096;
/// How much of the end of the log is searched for the previous run.
const LOOKBACK: u64 = 8 << 20;

/// Appends the outcome to the log at `path`.
pub fn append(path: &Path, outcome: &Outcome) -> io::Result<()> {
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)?;
    // flock(2) blocks until the lock is ours; nix retries EINTR.
    let mut locked = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| io::Error::from(e))?;

    let len = locked.metadata()?.len();
    let from = len.saturating_sub(LOOKBACK);
    locked.seek(SeekFrom::Start(from))?;
    let mut raw = Vec::new();
    std::io::Read::by_ref(&mut *locked)
        .take(LOOKBACK)
        .read_to_end(&mut raw)?;
    let tail = String::from_utf8_lossy(&raw);

    // The document as the line keeps it: each stream trimmed to its
    // head and tail, and the counts saying what the line does not hold.
    let trim = |raw: &[u8]| {
        let mut cap = Capture::new(Some(STREAM_LIMIT));
        cap.push(raw);
        cap.bytes()
    };
    let (out, err) = (trim(&outcome.stdout_raw), trim(&outcome.stderr_raw));
    let mut kept = outcome.clone();
    kept.set_output(
        out.clone(),
        outcome.stdout_bytes,
        outcome.stdout_bytes - out.len() as u64,
        err.clone(),
        outcome.stderr_bytes,
        outcome.stderr_bytes - err.len() as u64,
    );
    let mut doc = serde_json::to_value(&kept).map_err(io::Error::other)?;
    for (stream, bytes, total) in [
        ("stdout", &out, outcome.stdout_bytes),
        ("stderr", &err, outcome.stderr_bytes),
    ] {
        let trimmed = String::from_utf8_lossy(bytes).into_owned();
        let same = previous_stream(&tail, &outcome.argv, stream)
            .is_some_and(|(text, bytes)| text == trimmed && bytes == total);
        if same {
            doc[stream] = json!({"same_as_previous": true});
            if let Some(m) = doc.as_object_mut() {
                m.remove(&format!("{stream}_base64"));
            }
        }
    }
    let mut line = serde_json::to_string(&doc).map_err(io::Error::other)?;
    line.push('\n');
    if let Err(e) = locked.write_all(line.as_bytes()) {
        // A write cut short (a full disk) would leave half a line, and
        // the next run's line glued to it: cut the file back to where
        // the line began. The lock is still ours, so nobody appended
        // meanwhile.
        let _ = locked.set_len(len);
        return Err(e);
    }
    Ok(())
}

/// The last logged text of `stream` for `argv` (skipping entries that say
/// `same_as_previous`, which point further back), with its byte count.
fn previous_stream(log: &str, argv: &[String], stream: &str) -> Option<(String, u64)> {
    for line in log.lines().rev() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let same_argv = v["argv"].as_array().is_some_and(|a| {
            a.len() == argv.len() && a.iter().zip(argv).all(|(x, y)| x.as_str() == Some(y))
        });
        if !same_argv {
            continue;
        }
        if let Some(s) = v[stream].as_str() {
            let bytes = v[format!("{stream}_bytes")].as_u64().unwrap_or(0);
            return Some((s.to_string(), bytes));
        }
    }
    None
}
