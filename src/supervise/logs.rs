//! Service output: per-service log files, reading them back, and the
//! prefixed foreground output of `sexton up`.
//!
//! - [`LogSink`] turns the bytes read from a service's stdout and stderr
//!   pipes into timestamped lines in `DIR/NAME.log`, one `write(2)` per
//!   line as soon as the line is complete, rotated by size between lines.
//!   It never blocks on anything but file writes, spawns nothing, and
//!   survives a full or failing disk: lines that cannot be written are
//!   counted, and a note saying how many were lost is written once writing
//!   works again.
//! - [`tail`], [`Follower`] and [`follow`] read the files back for
//!   `sexton logs [-f] [-n N]`, across rotated files, without a supervisor.
//! - [`Printer`] writes `NAME | line` for the foreground.
//!
//! A log line is
//!
//! ```text
//! 2024-05-01T12:00:00.123Z out the line the service wrote
//! 2024-05-01T12:00:00.125Z err a line from its stderr
//! 2024-05-01T12:00:01.000Z sexton a line from the supervisor
//! ```
//!
//! with the service's bytes copied as they are (they need not be UTF-8).
//! Rotation renames `NAME.log` to `NAME.log.1`, `NAME.log.1` to
//! `NAME.log.2` and so on, keeping `keep` rotated files.

use super::{io_reason, one_line};
use std::fs::{File, OpenOptions};
use std::io::{self, ErrorKind, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The longest line kept whole: a longer one is written (and returned) in
/// pieces of this size, each its own log line.
pub const MAX_LINE: usize = 64 * 1024;

/// What a [`LogSink`] line from the supervisor itself is tagged with.
pub const NOTE_TAG: &str = "sexton";

/// How often [`follow`] looks for new lines. Following polls instead of
/// using inotify: it is a reading tool, a fraction of a second of delay
/// does not matter, and polling works on every filesystem (inotify misses
/// writes made over NFS and needs a watch on the directory to see a
/// rotation).
pub const FOLLOW_INTERVAL: Duration = Duration::from_millis(150);

/// Which pipe of the service bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Out,
    Err,
}

impl Stream {
    /// The tag of the stream's lines in the log: `out` or `err`.
    pub fn tag(self) -> &'static str {
        match self {
            Stream::Out => "out",
            Stream::Err => "err",
        }
    }

    fn index(self) -> usize {
        match self {
            Stream::Out => 0,
            Stream::Err => 1,
        }
    }
}

/// The path of the current log of `name` in `dir`: `dir/NAME.log`.
pub fn log_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.log"))
}

/// The path of the `n`th rotated log (1 = the newest): `dir/NAME.log.N`.
pub fn rotated_path(dir: &Path, name: &str, n: u64) -> PathBuf {
    dir.join(format!("{name}.log.{n}"))
}

/// One service's log file: see the [module documentation](self).
///
/// Lines are written as soon as they are complete; the only bytes held
/// back are the incomplete last line of each stream (at most
/// [`MAX_LINE`] bytes each). Dropping the sink writes those too.
#[derive(Debug)]
pub struct LogSink {
    dir: PathBuf,
    name: String,
    path: PathBuf,
    max_size: u64,
    keep: u32,
    /// `None` after opening failed; every line tries again.
    file: Option<File>,
    /// Bytes in `file`, as far as this sink wrote them.
    size: u64,
    /// The file does not end with a newline (a write stopped part-way):
    /// the next write to the same file starts with one.
    torn: bool,
    /// The incomplete last line of stdout and of stderr.
    partial: [Vec<u8>; 2],
    /// Why the log cannot be written now.
    error: Option<String>,
    /// Lines lost since writing last worked: the recovery note's number.
    lost: u64,
    /// Lines lost, all told.
    dropped: u64,
}

impl LogSink {
    /// Opens `dir/NAME.log` for appending, creating `dir` (and its
    /// parents) when missing and the file with mode 0644 (less the
    /// umask). The file is close-on-exec. `max_size` is the size a log
    /// is rotated at, `keep` how many rotated logs are kept (0: none).
    pub fn open(dir: &Path, name: &str, max_size: u64, keep: u32) -> io::Result<LogSink> {
        check_name(name)?;
        let mut sink = LogSink {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            path: log_path(dir, name),
            max_size,
            keep,
            file: None,
            size: 0,
            torn: false,
            partial: [Vec::new(), Vec::new()],
            error: None,
            lost: 0,
            dropped: 0,
        };
        sink.reopen()?;
        Ok(sink)
    }

    /// The current log file, `dir/NAME.log`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Changes the rotation limits (a reloaded configuration); they apply
    /// from the next line on.
    pub fn set_limits(&mut self, max_size: u64, keep: u32) {
        self.max_size = max_size;
        self.keep = keep;
    }

    /// Takes bytes read from the service's `stream`: any chunk, a line may
    /// be split across calls and a call may hold many lines. Every line
    /// completed by these bytes is written to the log (one write each) and
    /// returned, without its newline, in order. A line longer than
    /// [`MAX_LINE`] comes out in pieces of [`MAX_LINE`] bytes.
    ///
    /// Never fails: a line that cannot be written is counted (see
    /// [`LogSink::last_error`] and [`LogSink::dropped_lines`]) and still
    /// returned.
    pub fn feed(&mut self, stream: Stream, bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let (head, newline) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..i], true),
                None => (rest, false),
            };
            rest = &rest[head.len() + usize::from(newline)..];
            self.append(stream, head, &mut lines);
            if newline {
                let line = std::mem::take(&mut self.partial[stream.index()]);
                self.write_line(stream.tag(), &line);
                lines.push(line);
            }
        }
        lines
    }

    /// The end of `stream` (EOF on the pipe): its incomplete last line, if
    /// any, is written and returned.
    pub fn finish(&mut self, stream: Stream) -> Option<Vec<u8>> {
        let line = std::mem::take(&mut self.partial[stream.index()]);
        if line.is_empty() {
            return None;
        }
        self.write_line(stream.tag(), &line);
        Some(line)
    }

    /// Writes a line from the supervisor: `TIMESTAMP sexton MSG`. Control
    /// characters in `msg` are escaped, so it stays one line.
    pub fn note(&mut self, msg: &str) {
        let text = one_line(msg);
        self.write_line(NOTE_TAG, text.as_bytes());
    }

    /// Why the log cannot be written right now (`cannot write PATH: No
    /// space left on device`), or why the last rotation failed; `None` once
    /// a line has been written (and rotated) without trouble again.
    pub fn last_error(&self) -> Option<String> {
        self.error.clone()
    }

    /// How many lines could not be written, since the sink was opened.
    pub fn dropped_lines(&self) -> u64 {
        self.dropped
    }

    /// Adds `data` to the incomplete line of `stream`, writing out a full
    /// [`MAX_LINE`] piece whenever more bytes of the same line arrive.
    fn append(&mut self, stream: Stream, mut data: &[u8], lines: &mut Vec<Vec<u8>>) {
        while !data.is_empty() {
            if self.partial[stream.index()].len() == MAX_LINE {
                let piece = std::mem::take(&mut self.partial[stream.index()]);
                self.write_line(stream.tag(), &piece);
                lines.push(piece);
            }
            let buf = &mut self.partial[stream.index()];
            let n = (MAX_LINE - buf.len()).min(data.len());
            buf.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
    }

    /// Writes one line, preceded by the note about lost lines when
    /// writing has just started to work again.
    fn write_line(&mut self, tag: &str, line: &[u8]) {
        if self.lost > 0 {
            let cause = self
                .error
                .clone()
                .unwrap_or_else(|| "write error".to_string());
            let n = self.lost;
            let msg = format!(
                "log: {n} line{} lost ({cause})",
                if n == 1 { "" } else { "s" }
            );
            if !self.put(&record(NOTE_TAG, msg.as_bytes())) {
                // The line waits behind the note: it is lost too.
                self.lose();
                return;
            }
            self.lost = 0;
        }
        if !self.put(&record(tag, line)) {
            self.lose();
        }
    }

    fn lose(&mut self) {
        self.lost += 1;
        self.dropped += 1;
    }

    /// Writes one record (rotating first when it would make the file
    /// larger than `max_size`); false when it is not, or not entirely,
    /// in the file.
    fn put(&mut self, rec: &[u8]) -> bool {
        if self.file.is_none()
            && let Err(e) = self.reopen()
        {
            self.error = Some(format!(
                "cannot open {}: {}",
                self.path.display(),
                io_reason(&e)
            ));
            return false;
        }
        let mut rotate_error = None;
        let len = rec.len() as u64 + u64::from(self.torn);
        if self.size > 0 && self.size.saturating_add(len) > self.max_size {
            rotate_error = self.rotate().err();
        }
        let Some(file) = self.file.as_mut() else {
            self.error = rotate_error;
            return false;
        };
        let mut buf = Vec::with_capacity(rec.len() + 1);
        if self.torn {
            buf.push(b'\n');
        }
        buf.extend_from_slice(rec);
        let (done, err) = write_some(file, &buf);
        self.size += done as u64;
        if done > 0 {
            self.torn = buf[done - 1] != b'\n';
        }
        match err {
            None => {
                self.error = rotate_error;
                true
            }
            Some(e) => {
                self.error = Some(format!(
                    "cannot write {}: {}",
                    self.path.display(),
                    io_reason(&e)
                ));
                false
            }
        }
    }

    /// Opens (or creates) `NAME.log` for appending.
    fn reopen(&mut self) -> io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o644)
            // std opens every file with O_CLOEXEC.
            .open(&self.path)?;
        self.size = file.metadata()?.len();
        // A file left ending mid-line (a write cut short by a full disk)
        // gets its newline before the next line.
        let mut last = [0u8; 1];
        self.torn = self.size > 0
            && file
                .read_at(&mut last, self.size - 1)
                .is_ok_and(|n| n == 1 && last[0] != b'\n');
        self.file = Some(file);
        Ok(())
    }

    /// Shifts the rotated logs up by one (dropping those past `keep`),
    /// renames `NAME.log` to `NAME.log.1` and opens a fresh `NAME.log`.
    /// Renames go from the oldest file to the newest, so that at every
    /// moment a higher number means an older file: [`Follower`] relies on
    /// it. When a rename fails the current file is kept (and grows past
    /// `max_size`) rather than losing lines; the next line tries again.
    fn rotate(&mut self) -> Result<(), String> {
        let fail = |what: &Path, e: io::Error| {
            format!("cannot rotate {}: {}", what.display(), io_reason(&e))
        };
        let keep = u64::from(self.keep);
        for (i, path) in rotated(&self.dir, &self.name).map_err(|e| fail(&self.dir, e))? {
            let res = if i >= keep {
                std::fs::remove_file(&path)
            } else {
                std::fs::rename(&path, rotated_path(&self.dir, &self.name, i + 1))
            };
            match res {
                Err(e) if e.kind() != ErrorKind::NotFound => return Err(fail(&path, e)),
                _ => {}
            }
        }
        let res = if keep == 0 {
            std::fs::remove_file(&self.path)
        } else {
            std::fs::rename(&self.path, rotated_path(&self.dir, &self.name, 1))
        };
        match res {
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(fail(&self.path, e)),
            _ => {}
        }
        self.file = None;
        self.size = 0;
        self.torn = false;
        self.reopen()
            .map_err(|e| format!("cannot open {}: {}", self.path.display(), io_reason(&e)))
    }
}

impl Drop for LogSink {
    /// Writes the incomplete last lines, so no byte that was fed is lost.
    fn drop(&mut self) {
        self.finish(Stream::Out);
        self.finish(Stream::Err);
    }
}

/// Writes `buf` with as few `write(2)` calls as the kernel allows (one,
/// normally), retrying EINTR; returns how many bytes went out and the
/// error that stopped it.
fn write_some(file: &mut File, buf: &[u8]) -> (usize, Option<io::Error>) {
    let mut done = 0;
    while done < buf.len() {
        match file.write(&buf[done..]) {
            Ok(0) => return (done, Some(ErrorKind::WriteZero.into())),
            Ok(n) => done += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return (done, Some(e)),
        }
    }
    (done, None)
}

/// `TIMESTAMP TAG LINE\n`, the timestamp in RFC 3339, UTC, milliseconds.
fn record(tag: &str, line: &[u8]) -> Vec<u8> {
    let now = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
    let mut rec = Vec::with_capacity(now.len() + tag.len() + line.len() + 3);
    rec.extend_from_slice(now.as_bytes());
    rec.push(b' ');
    rec.extend_from_slice(tag.as_bytes());
    rec.push(b' ');
    rec.extend_from_slice(line);
    rec.push(b'\n');
    rec
}

/// A service name makes a file name: no slash, not empty, not `.`/`..`.
fn check_name(name: &str) -> io::Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(io::Error::new(
            ErrorKind::InvalidInput,
            format!("'{}' cannot name a log file", one_line(name)),
        ));
    }
    Ok(())
}

/// The rotated logs of `name` in `dir` (`NAME.log.N`), oldest (highest
/// `N`) first. A missing directory has none.
pub fn rotated(dir: &Path, name: &str) -> io::Result<Vec<(u64, PathBuf)>> {
    let prefix = format!("{name}.log.");
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(rest) = file_name.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
            continue;
        };
        // Only the names rotation makes: "NAME.log.3", not "NAME.log.03".
        if let Ok(n) = rest.parse::<u64>()
            && n > 0
            && n.to_string() == rest
        {
            found.push((n, entry.path()));
        }
    }
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    Ok(found)
}

/// What names one file for as long as it exists: device and inode.
type FileId = (u64, u64);

fn id_of(meta: &std::fs::Metadata) -> FileId {
    (meta.dev(), meta.ino())
}

fn id_of_path(path: &Path) -> Option<FileId> {
    std::fs::metadata(path).ok().map(|m| id_of(&m))
}

/// Opens `path` for reading; `None` when it does not exist.
fn open_existing(path: &Path) -> io::Result<Option<File>> {
    match File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The last `n` lines of `file` before byte `end`, read backwards in
/// blocks, and the length of the incomplete line `end` falls in (bytes
/// after the last newline; that line is among the `n` ones).
fn last_lines(file: &mut File, end: u64, n: usize) -> io::Result<(Vec<Vec<u8>>, u64)> {
    const BLOCK: u64 = 64 * 1024;
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    let mut newlines = 0usize;
    let mut start = end;
    let mut ends_with_newline = None;
    // The first of the last n lines starts after the (n + 1)th newline
    // from the end, or the nth when the content does not end with one.
    while start > 0 {
        let from = start.saturating_sub(BLOCK);
        let mut block = vec![0; (start - from) as usize];
        file.seek(SeekFrom::Start(from))?;
        file.read_exact(&mut block)?;
        if ends_with_newline.is_none() {
            ends_with_newline = Some(block.last() == Some(&b'\n'));
        }
        newlines += block.iter().filter(|&&b| b == b'\n').count();
        start = from;
        blocks.push(block);
        if newlines > n {
            break;
        }
    }
    blocks.reverse();
    let text = blocks.concat();
    if text.is_empty() {
        return Ok((Vec::new(), 0));
    }
    let partial = match text.iter().rposition(|&b| b == b'\n') {
        Some(i) => text.len() - i - 1,
        None if start == 0 => text.len(),
        None => 0,
    };
    let mut lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    if ends_with_newline == Some(true) {
        lines.pop();
    }
    if start > 0 {
        // The first piece may be the end of a longer line.
        lines.remove(0);
    }
    let skip = lines.len().saturating_sub(n);
    Ok((
        lines[skip..].iter().map(|l| l.to_vec()).collect(),
        partial as u64,
    ))
}

/// Which file each name of a log names, oldest first: the rotated files
/// by decreasing number, then `NAME.log` as number 0.
///
/// Two equal snapshots taken one after the other mean that no rotation
/// renamed anything in between (every rename changes what some name
/// names), so what was opened by name in between is what the snapshot
/// says. And at every moment, even in the middle of a rotation (which
/// renames the oldest file first, each into the place just freed), a
/// higher number is an older file: the order of a snapshot is the order
/// the files were written in.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot(Vec<(u64, FileId)>);

impl Snapshot {
    fn take(dir: &Path, name: &str) -> io::Result<Snapshot> {
        let mut files = Vec::new();
        for (i, path) in rotated(dir, name)? {
            if let Some(id) = id_of_path(&path) {
                files.push((i, id));
            }
        }
        if let Some(id) = id_of_path(&log_path(dir, name)) {
            files.push((0, id));
        }
        Ok(Snapshot(files))
    }
}

/// How many times a reader takes its snapshots again when a rotation
/// happened while it read.
const SNAPSHOT_TRIES: usize = 100;

/// Runs `read` between two equal snapshots of the log's files (see
/// [`Snapshot`]), again while they differ. `read` returns `None` when
/// what it opened was not what the snapshot said (a rotation happened:
/// try again).
fn consistent<T>(
    dir: &Path,
    name: &str,
    mut read: impl FnMut(&Snapshot) -> io::Result<Option<T>>,
) -> io::Result<Option<T>> {
    for _ in 0..SNAPSHOT_TRIES {
        let before = Snapshot::take(dir, name)?;
        let got = read(&before)?;
        if got.is_some() && Snapshot::take(dir, name)? == before {
            return Ok(got);
        }
    }
    Ok(None)
}

/// The file number `i` of a log names (0: `NAME.log`).
fn path_of(dir: &Path, name: &str, i: u64) -> PathBuf {
    if i == 0 {
        log_path(dir, name)
    } else {
        rotated_path(dir, name, i)
    }
}

/// Opens `path` if it is still the file `id`.
fn open_as(path: &Path, id: FileId) -> io::Result<Option<File>> {
    match open_existing(path)? {
        Some(f) if id_of(&f.metadata()?) == id => Ok(Some(f)),
        _ => Ok(None),
    }
}

fn kept_changing(dir: &Path, name: &str) -> io::Error {
    io::Error::other(format!(
        "{} kept being rotated while it was read",
        log_path(dir, name).display()
    ))
}

/// The last `need` lines of the files of `snap` before position `upto`
/// (exclusive), newest file first; `None` when a file is no longer the
/// one the snapshot names.
fn older_lines(
    dir: &Path,
    name: &str,
    snap: &Snapshot,
    upto: usize,
    mut need: usize,
) -> io::Result<Option<Vec<Vec<u8>>>> {
    let mut chunks = Vec::new();
    for &(i, id) in snap.0[..upto].iter().rev() {
        if need == 0 {
            break;
        }
        let Some(mut file) = open_as(&path_of(dir, name, i), id)? else {
            return Ok(None);
        };
        let len = file.metadata()?.len();
        let (lines, _) = last_lines(&mut file, len, need)?;
        need -= lines.len();
        chunks.push(lines);
    }
    Ok(Some(chunks.into_iter().rev().flatten().collect()))
}

/// The last `n` lines of the log of `name` in `dir`, oldest first, taken
/// from `NAME.log` and then, when it has fewer, from `NAME.log.1`,
/// `NAME.log.2`... Bytes that are not UTF-8 are replaced. An incomplete
/// last line (one being written) is included. A rotation while this reads
/// makes it read again, so no line is missed or read twice.
///
/// Fails with `NotFound` when there is no log at all.
pub fn tail(dir: &Path, name: &str, n: usize) -> io::Result<Vec<String>> {
    check_name(name)?;
    let lines = consistent(dir, name, |snap| {
        if snap.0.is_empty() {
            return Ok(Some(None));
        }
        Ok(older_lines(dir, name, snap, snap.0.len(), n)?.map(Some))
    })?
    .ok_or_else(|| kept_changing(dir, name))?;
    let Some(lines) = lines else {
        return Err(io::Error::new(
            ErrorKind::NotFound,
            format!("no log at {}", log_path(dir, name).display()),
        ));
    };
    Ok(lines.into_iter().map(lossy).collect())
}

/// Reads the log of one service as it grows, across rotations: each line
/// is returned once, in order, whatever the rotation does between two
/// calls to [`Follower::poll`], as long as the rotated file that holds
/// the line is not deleted (`keep` rotations later) before the follower
/// gets to it.
///
/// It holds the file it reads open. When `NAME.log` is no longer that
/// file, the file has been renamed by a rotation and nothing more will be
/// written to it: the follower reads it to its end, then moves to the file
/// written right after it: the next newer one in a listing of the log's
/// files taken twice around the look-up, identical both times (so no
/// rename happened meanwhile; a higher number is always an older file,
/// even half-way through a rotation).
#[derive(Debug)]
pub struct Follower {
    dir: PathBuf,
    name: String,
    cur: Option<Reading>,
    /// The incomplete last line read from `cur`.
    partial: Vec<u8>,
}

#[derive(Debug)]
struct Reading {
    file: File,
    id: FileId,
}

impl Follower {
    /// Starts following the log of `name` in `dir` and returns its last
    /// `n` lines (as [`tail`]); the follower's first [`Follower::poll`]
    /// returns what comes after them. With no log yet, there are no lines
    /// and the follower starts at the beginning of the first log that
    /// appears.
    pub fn start(dir: &Path, name: &str, n: usize) -> io::Result<(Follower, Vec<String>)> {
        check_name(name)?;
        let mut f = Follower {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            cur: None,
            partial: Vec::new(),
        };
        let started = consistent(dir, name, |snap| {
            // The newest file: NAME.log, or NAME.log.1 in the middle of a
            // rotation.
            let Some(&(i, id)) = snap.0.last() else {
                return Ok(Some(None));
            };
            let Some(mut file) = open_as(&path_of(dir, name, i), id)? else {
                return Ok(None);
            };
            let end = file.metadata()?.len();
            let (mut lines, partial) = last_lines(&mut file, end, n.saturating_add(1))?;
            // An incomplete line at the end is still being written: poll
            // returns it whole once it is.
            if partial > 0 {
                lines.pop();
            }
            let mut lines = lines.split_off(lines.len().saturating_sub(n));
            if lines.len() < n {
                let need = n - lines.len();
                let Some(mut older) = older_lines(dir, name, snap, snap.0.len() - 1, need)? else {
                    return Ok(None);
                };
                older.append(&mut lines);
                lines = older;
            }
            file.seek(SeekFrom::Start(end - partial))?;
            Ok(Some(Some((Reading { file, id }, lines))))
        })?
        .ok_or_else(|| kept_changing(dir, name))?;
        let Some((reading, lines)) = started else {
            return Ok((f, Vec::new()));
        };
        f.cur = Some(reading);
        Ok((f, lines.into_iter().map(lossy).collect()))
    }

    fn current_path(&self) -> PathBuf {
        log_path(&self.dir, &self.name)
    }

    /// The complete lines written since the last call, oldest first;
    /// never waits. An incomplete line is held back until it is complete
    /// (or until its file has been rotated away).
    pub fn poll(&mut self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        if self.cur.is_none() {
            match self.first_file()? {
                Some(r) => self.cur = Some(r),
                None => return Ok(out),
            }
        }
        // Each turn moves to a newer file; a writer that rotates faster
        // than this reads is caught up with at the next call.
        for _ in 0..1000 {
            self.read_new(&mut out)?;
            let Some(cur) = self.cur.as_ref() else {
                break;
            };
            if id_of_path(&self.current_path()) == Some(cur.id) {
                break;
            }
            // Rotated away: the writer no longer writes to it, so what it
            // holds now is all it will ever hold.
            self.read_new(&mut out)?;
            match self.next_file()? {
                Some(next) => {
                    if !self.partial.is_empty() {
                        out.push(lossy(std::mem::take(&mut self.partial)));
                    }
                    self.cur = Some(next);
                }
                None => break,
            }
        }
        Ok(out)
    }

    /// The oldest file there is, to be read from its beginning.
    fn first_file(&self) -> io::Result<Option<Reading>> {
        let (dir, name) = (&self.dir, &self.name);
        let first = consistent(dir, name, |snap| {
            let Some(&(i, id)) = snap.0.first() else {
                return Ok(Some(None));
            };
            Ok(open_as(&path_of(dir, name, i), id)?.map(|file| Some(Reading { file, id })))
        })?;
        Ok(first.flatten())
    }

    /// The file written right after `cur`, once it exists; `None` until
    /// then (and while rotations keep renaming files under the reader).
    fn next_file(&self) -> io::Result<Option<Reading>> {
        let Some(cur) = self.cur.as_ref() else {
            return Ok(None);
        };
        let (dir, name) = (&self.dir, &self.name);
        let next = consistent(dir, name, |snap| {
            let Some(at) = snap.0.iter().position(|&(_, id)| id == cur.id) else {
                // No name leads to it any more: deleted by a rotation
                // before it was read to the end, maybe with what came
                // after it. Go on with the oldest file there is.
                let Some(&(i, id)) = snap.0.first() else {
                    return Ok(Some(None));
                };
                return Ok(
                    open_as(&path_of(dir, name, i), id)?.map(|file| Some(Reading { file, id }))
                );
            };
            let Some(&(i, id)) = snap.0.get(at + 1) else {
                // The newer file is not created yet.
                return Ok(Some(None));
            };
            Ok(open_as(&path_of(dir, name, i), id)?.map(|file| Some(Reading { file, id })))
        })?;
        Ok(next.flatten())
    }

    /// Reads `cur` to its end, adding its complete lines to `out`.
    fn read_new(&mut self, out: &mut Vec<String>) -> io::Result<()> {
        let Some(cur) = self.cur.as_mut() else {
            return Ok(());
        };
        let pos = cur.file.stream_position()?;
        if cur.file.metadata()?.len() < pos {
            // Truncated in place (not by sexton): start over.
            cur.file.seek(SeekFrom::Start(0))?;
            self.partial.clear();
        }
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match cur.file.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let mut rest = &buf[..n];
            while let Some(i) = rest.iter().position(|&b| b == b'\n') {
                self.partial.extend_from_slice(&rest[..i]);
                out.push(lossy(std::mem::take(&mut self.partial)));
                rest = &rest[i + 1..];
            }
            self.partial.extend_from_slice(rest);
            // sexton's lines are at most MAX_LINE plus a prefix; anything
            // longer is not one of them and is passed on in pieces.
            if self.partial.len() > 2 * MAX_LINE {
                out.push(lossy(std::mem::take(&mut self.partial)));
            }
        }
    }
}

fn lossy(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// `sexton logs -f`: writes the last `n` lines of the log of `name` to
/// `out`, then every line appended to it, across rotations, looking every
/// [`FOLLOW_INTERVAL`] (this sleeps between looks: it is meant for a
/// reading command, not for the supervisor's event loop).
///
/// `stop` is asked before each look; once it returns true one last look
/// is made and `follow` returns, so every line written before `stop`
/// returned true is written to `out`. Each line is one `write_all`.
pub fn follow<W: Write>(
    dir: &Path,
    name: &str,
    n: usize,
    out: &mut W,
    mut stop: impl FnMut() -> bool,
) -> io::Result<()> {
    let (mut follower, lines) = Follower::start(dir, name, n)?;
    let emit = |out: &mut W, lines: Vec<String>| -> io::Result<()> {
        for mut line in lines {
            line.push('\n');
            out.write_all(line.as_bytes())?;
        }
        out.flush()
    };
    emit(out, lines)?;
    loop {
        let last = stop();
        emit(out, follower.poll()?)?;
        if last {
            return Ok(());
        }
        std::thread::sleep(FOLLOW_INTERVAL);
    }
}

/// Foreground output of `sexton up`: `NAME | line`, the names padded to
/// the longest one, each name in a colour of its own when asked.
#[derive(Debug, Clone)]
pub struct Printer {
    width: usize,
    color: bool,
}

/// The ANSI foreground colours names are given: red, green, yellow, blue,
/// magenta, cyan.
const COLORS: [u8; 6] = [31, 32, 33, 34, 35, 36];

/// The ANSI colour code (31 to 36) of `name`: the same name gets the same
/// colour on every run (FNV-1a of its bytes).
pub fn color_of(name: &str) -> u8 {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    COLORS[(h % COLORS.len() as u32) as usize]
}

impl Printer {
    /// A printer for these names (the services, and whatever else the
    /// caller prints lines for, such as `sexton`). `color` is the caller's
    /// decision (a terminal, no `NO_COLOR`, `--color`).
    pub fn new<I, S>(names: I, color: bool) -> Printer
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let width = names
            .into_iter()
            .map(|n| n.as_ref().chars().count())
            .max()
            .unwrap_or(0);
        Printer { width, color }
    }

    /// The bytes of one output line, newline included.
    pub fn format(&self, name: &str, line: &[u8]) -> Vec<u8> {
        let pad = self.width.saturating_sub(name.chars().count());
        let mut buf = Vec::with_capacity(self.width + line.len() + 16);
        if self.color {
            buf.extend_from_slice(format!("\x1b[{}m", color_of(name)).as_bytes());
        }
        buf.extend_from_slice(name.as_bytes());
        buf.resize(buf.len() + pad, b' ');
        buf.extend_from_slice(b" |");
        if self.color {
            buf.extend_from_slice(b"\x1b[0m");
        }
        buf.push(b' ');
        buf.extend_from_slice(line);
        buf.push(b'\n');
        buf
    }

    /// Writes one line to `out` with a single `write_all` of the whole
    /// line (one `write(2)` on an unbuffered or line-buffered stream), so
    /// lines of concurrent writers to the same terminal or pipe cannot be
    /// mixed within a line.
    pub fn print<W: Write>(&self, out: &mut W, name: &str, line: &[u8]) -> io::Result<()> {
        out.write_all(&self.format(name, line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A directory of its own for one test, removed when the test ends,
    /// passed or failed.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            static N: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "sexton-logs-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A deterministic stream of pseudo-random numbers (xorshift).
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    /// Feeds `bytes` in chunks of 1 to `max` bytes.
    fn feed_chunked(
        sink: &mut LogSink,
        stream: Stream,
        bytes: &[u8],
        max: usize,
        rng: &mut Rng,
    ) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = (1 + rng.below(max)).min(rest.len());
            out.extend(sink.feed(stream, &rest[..n]));
            rest = &rest[n..];
        }
        out
    }

    /// The (tag, text) of every line of a log file, each checked to be
    /// `TIMESTAMP TAG TEXT` with an RFC 3339 UTC millisecond timestamp.
    fn records(path: &Path) -> Vec<(String, String)> {
        let re =
            regex::Regex::new(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (out|err|sexton) (.*)$")
                .unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "{} ends within a line",
            path.display()
        );
        text.lines()
            .map(|l| {
                let c = re
                    .captures(l)
                    .unwrap_or_else(|| panic!("malformed log line {l:?}"));
                humantime::parse_rfc3339(&c[1]).expect("timestamp parses");
                (c[2].to_string(), c[3].to_string())
            })
            .collect()
    }

    fn texts(path: &Path) -> Vec<String> {
        records(path).into_iter().map(|(_, t)| t).collect()
    }

    fn strings(lines: &[Vec<u8>]) -> Vec<String> {
        lines
            .iter()
            .map(|l| String::from_utf8(l.clone()).unwrap())
            .collect()
    }

    /// `line 000042 end`: fixed width, and a line cut short lacks " end".
    fn numbered(prefix: &str, i: usize) -> String {
        format!("{prefix} {i:06} end")
    }

    fn numbered_block(prefix: &str, range: std::ops::Range<usize>) -> String {
        range.map(|i| numbered(prefix, i) + "\n").collect()
    }

    #[test]
    fn a_line_split_across_feeds_is_written_once_complete() {
        let d = TempDir::new();
        let mut sink = LogSink::open(&d.0, "web", 1 << 20, 3).unwrap();
        assert!(sink.feed(Stream::Out, b"hel").is_empty());
        assert!(sink.feed(Stream::Out, b"").is_empty());
        // Nothing is written before the line is complete.
        assert_eq!(std::fs::read(sink.path()).unwrap(), b"");
        assert_eq!(strings(&sink.feed(Stream::Out, b"lo\nwor")), ["hello"]);
        // Written through: in the file as soon as feed returns.
        assert_eq!(texts(sink.path()), ["hello"]);
        assert_eq!(strings(&sink.feed(Stream::Out, b"ld\n")), ["world"]);
        assert_eq!(
            records(sink.path()),
            [
                ("out".to_string(), "hello".to_string()),
                ("out".to_string(), "world".to_string())
            ]
        );
        assert_eq!(sink.last_error(), None);
        assert_eq!(sink.dropped_lines(), 0);
    }

    #[test]
    fn many_lines_in_one_feed_come_back_in_order() {
        let d = TempDir::new();
        let mut sink = LogSink::open(&d.0, "web", 1 << 20, 3).unwrap();
        let input = numbered_block("line", 0..1000);
        let got = sink.feed(Stream::Err, input.as_bytes());
        let want: Vec<String> = (0..1000).map(|i| numbered("line", i)).collect();
        assert_eq!(strings(&got), want);
        let recs = records(sink.path());
        assert!(recs.iter().all(|(tag, _)| tag == "err"));
        assert_eq!(texts(sink.path()), want);
        // Empty lines are lines.
        assert_eq!(strings(&sink.feed(Stream::Out, b"\n\nx\n")), ["", "", "x"]);
    }

    #[test]
    fn each_stream_keeps_its_own_incomplete_line() {
        let d = TempDir::new();
        let mut sink = LogSink::open(&d.0, "web", 1 << 20, 3).unwrap();
        assert!(sink.feed(Stream::Out, b"a").is_empty());
        assert_eq!(strings(&sink.feed(Stream::Err, b"b\n")), ["b"]);
        assert_eq!(strings(&sink.feed(Stream::Out, b"c\n")), ["ac"]);
        let recs = records(sink.path());
        assert_eq!(
            recs,
            [
                ("err".to_string(), "b".to_string()),
                ("out".to_string(), "ac".to_string())
            ]
        );
    }

    #[test]
    fn numbered_lines_and_a_partial_last_line_are_all_written_at_eof() {
        let d = TempDir::new();
        let mut sink = LogSink::open(&d.0, "web", 1 << 20, 3).unwrap();
        let mut input = numbered_block("line", 0..500);
        input.push_str("partial, no newline");
        let mut rng = Rng(0x5eed);
        let mut got = feed_chunked(&mut sink, Stream::Out, input.as_bytes(), 97, &mut rng);
        assert_eq!(got.len(), 500);
        got.push(sink.finish(Stream::Out).expect("the partial line"));
        assert_eq!(sink.finish(Stream::Out), None);
        assert_eq!(sink.finish(Stream::Err), None);
        let mut want: Vec<String> = (0..500).map(|i| numbered("line", i)).collect();
        want.push("partial, no newline".to_string());
        assert_eq!(strings(&got), want);
        assert_eq!(texts(sink.path()), want);
    }

    #[test]
    fn dropping_the_sink_writes_incomplete_lines() {
        let d = TempDir::new();
        let path = {
            let mut sink = LogSink::open(&d.0, "web", 1 << 20, 3).unwrap();
            sink.feed(Stream::Out, b"one\ntw");
            sink.feed(Stream::Err, b"three");
            sink.path().to_path_buf()
        };
        assert_eq!(texts(&path), ["one", "tw", "three"]);
    }

    #[test]
    fn a_long_line_is_written_in_pieces_never_held_whole() {
        let d = TempDir::new();
        let mut sink = LogSink::open(&d.0, "web", 1 << 30, 3).unwrap();
        let line: Vec<u8> = (0..200 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
        let mut got = Vec::new();
        for chunk in line.chunks(1000) {
            got.extend(sink.feed(Stream::Out, chunk));
            assert!(sink.partial[0].len() <= MAX_LINE);
        }
        got.extend(sink.feed(Stream::Out, b"\nnext\n"));
        let sizes: Vec<usize> = got.iter().map(Vec::len).collect();
        assert_eq!(
            sizes,
            [MAX_LINE, MAX_LINE, MAX_LINE, 200 * 1024 - 3 * MAX_LINE, 4]
        );
        assert_eq!(got[..4].concat(), line);
        let written = texts(sink.path());
        assert_eq!(written.len(), 5);
        assert_eq!(written[..4].concat().as_bytes(), &line[..]);

        // Exactly MAX_LINE bytes then a newline: one line, no empty piece.
        let exact = vec![b'x'; MAX_LINE];
        let mut got = sink.feed(Stream::Err, &exact);
        assert!(got.is_empty());
        got.extend(sink.feed(Stream::Err, b"\n"));
        assert_eq!(got, [exact]);
        // Many megabytes in one chunk: pieces as well.
        let big = vec![b'y'; 5 * MAX_LINE + 1];
        let got = sink.feed(Stream::Out, &big);
        assert_eq!(got.len(), 5);
        assert_eq!(sink.partial[0].len(), 1);
    }

    #[test]
    fn a_note_is_one_supervisor_line() {
        let d = TempDir::new();
        let mut sink = LogSink::open(&d.0, "web", 1 << 20, 3).unwrap();
        sink.note("web exited with status 1\nsecond line");
        assert_eq!(
            records(sink.path()),
            [(
                "sexton".to_string(),
                "web exited with status 1\\nsecond line".to_string()
            )]
        );
    }

    #[test]
    fn open_creates_the_directory_and_a_0644_close_on_exec_file() {
        use std::os::unix::fs::PermissionsExt;
        let d = TempDir::new();
        let dir = d.0.join("a/b");
        let sink = LogSink::open(&dir, "web", 1 << 20, 3).unwrap();
        assert_eq!(sink.path(), dir.join("web.log"));
        let umask = std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("Umask:"))
            .map(|u| u32::from_str_radix(u.trim(), 8).unwrap())
            .unwrap();
        let mode = std::fs::metadata(sink.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644 & !umask);
        // The fd this process has on the file is close-on-exec.
        let mut checked = 0;
        for entry in std::fs::read_dir("/proc/self/fd").unwrap() {
            let entry = entry.unwrap();
            if std::fs::read_link(entry.path()).ok().as_deref() != Some(sink.path()) {
                continue;
            }
            let info =
                std::fs::read_to_string(Path::new("/proc/self/fdinfo").join(entry.file_name()))
                    .unwrap();
            let flags = info
                .lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .map(|f| u32::from_str_radix(f.trim(), 8).unwrap())
                .unwrap();
            assert_ne!(flags & libc::O_CLOEXEC as u32, 0, "fd without O_CLOEXEC");
            assert_ne!(flags & libc::O_APPEND as u32, 0, "fd without O_APPEND");
            checked += 1;
        }
        assert_eq!(checked, 1, "found the sink's fd in /proc/self/fd");
        // Appends to what is there.
        drop(sink);
        let mut sink = LogSink::open(&dir, "web", 1 << 20, 3).unwrap();
        sink.note("one");
        drop(sink);
        let mut sink = LogSink::open(&dir, "web", 1 << 20, 3).unwrap();
        sink.note("two");
        assert_eq!(texts(sink.path()), ["one", "two"]);
    }

    #[test]
    fn a_log_left_ending_mid_line_gets_its_newline_first() {
        let d = TempDir::new();
        std::fs::write(d.0.join("web.log"), "cut sho").unwrap();
        let mut sink = LogSink::open(&d.0, "web", 1 << 20, 3).unwrap();
        sink.note("next");
        let text = std::fs::read_to_string(sink.path()).unwrap();
        let (first, rest) = text.split_once('\n').unwrap();
        assert_eq!(first, "cut sho");
        assert!(rest.ends_with(" sexton next\n") && rest.matches('\n').count() == 1);
        // Negative control: a file ending with a newline gets none more.
        std::fs::write(d.0.join("ok.log"), "whole\n").unwrap();
        let mut sink = LogSink::open(&d.0, "ok", 1 << 20, 3).unwrap();
        sink.note("next");
        let text = std::fs::read_to_string(sink.path()).unwrap();
        assert_eq!(text.matches('\n').count(), 2, "{text:?}");
    }

    #[test]
    fn open_refuses_what_cannot_be_a_log() {
        let d = TempDir::new();
        let file = d.0.join("plain");
        std::fs::write(&file, "").unwrap();
        // A file where the directory should be.
        let e = LogSink::open(&file, "web", 1 << 20, 3).unwrap_err();
        assert_eq!(io_reason(&e), "File exists");
        for bad in ["", ".", "..", "a/b"] {
            let e = LogSink::open(&d.0, bad, 1 << 20, 3).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}");
        }
        assert!(LogSink::open(&d.0, "ok", 1 << 20, 3).is_ok());
    }

    /// Checks that the `prefix` lines among `lines` are a contiguous run
    /// of numbered lines ending at `last`, each complete; returns the
    /// first number.
    fn contiguous_suffix(lines: &[String], prefix: &str, last: usize) -> Result<usize, String> {
        let mut nums = Vec::new();
        for l in lines {
            let Some(rest) = l.strip_prefix(prefix).and_then(|r| r.strip_prefix(' ')) else {
                continue;
            };
            let num = rest
                .strip_suffix(" end")
                .ok_or_else(|| format!("split line {l:?}"))?;
            if num.len() != 6 {
                return Err(format!("malformed line {l:?}"));
            }
            nums.push(
                num.parse::<usize>()
                    .map_err(|_| format!("bad number {l:?}"))?,
            );
        }
        let first = *nums.first().ok_or("no line at all")?;
        for (k, n) in nums.iter().enumerate() {
            if *n != first + k {
                return Err(format!("expected {prefix} {}, found {n}", first + k));
            }
        }
        if *nums.last().unwrap() != last {
            return Err(format!("ends at {}, not {last}", nums.last().unwrap()));
        }
        Ok(first)
    }

    /// Every line of the log, oldest file first.
    fn all_texts(dir: &Path, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (_, p) in rotated(dir, name).unwrap() {
            out.extend(texts(&p));
        }
        out.extend(texts(&log_path(dir, name)));
        out
    }

    /// Writes `n` numbered lines to each stream of a sink, in random
    /// chunks, alternating streams.
    fn write_load(sink: &mut LogSink, n: usize) {
        let out = numbered_block("out", 0..n);
        let err = numbered_block("err", 0..n);
        let mut rng = Rng(42);
        let (mut o, mut e) = (out.as_bytes(), err.as_bytes());
        while !o.is_empty() || !e.is_empty() {
            let k = (1 + rng.below(300)).min(o.len());
            sink.feed(Stream::Out, &o[..k]);
            o = &o[k..];
            let k = (1 + rng.below(300)).min(e.len());
            sink.feed(Stream::Err, &e[..k]);
            e = &e[k..];
        }
    }

    #[test]
    fn rotation_under_load_keeps_a_contiguous_suffix_and_keep_files() {
        let d = TempDir::new();
        let max = 64 * 1024;
        let mut sink = LogSink::open(&d.0, "web", max, 3).unwrap();
        write_load(&mut sink, 20_000);
        assert_eq!(sink.last_error(), None);
        let rot = rotated(&d.0, "web").unwrap();
        let nums: Vec<u64> = rot.iter().map(|(i, _)| *i).collect();
        assert_eq!(nums, [3, 2, 1], "exactly keep = 3 rotated files");
        let mut total = 0;
        for (_, p) in &rot {
            let len = std::fs::metadata(p).unwrap().len();
            assert!(len <= max, "{} is {len} bytes", p.display());
            // Rotated only when the next line would not fit.
            assert!(
                len > max - 100,
                "{} rotated early: {len} bytes",
                p.display()
            );
            total += len;
        }
        total += std::fs::metadata(sink.path()).unwrap().len();
        assert!(total > 3 * max, "the files hold what they can: {total}");
        let lines = all_texts(&d.0, "web");
        let first_out = contiguous_suffix(&lines, "out", 19_999).unwrap();
        let first_err = contiguous_suffix(&lines, "err", 19_999).unwrap();
        // Not vacuous: the files hold thousands of lines, and not all.
        assert!(first_out > 10_000 && first_err > 10_000);
        assert!(lines.len() > 5_000, "{} lines", lines.len());

        // Negative controls: the check fails on a gap, a split line and a
        // missing last line.
        let mut gap = lines.clone();
        let mid = gap.len() / 2;
        let removed = gap.remove(mid);
        let which = &removed[..3];
        assert!(contiguous_suffix(&gap, which, 19_999).is_err());
        let mut split = lines.clone();
        split[mid].truncate(10);
        assert!(contiguous_suffix(&split, which, 19_999).is_err());
        let short = &lines[..lines.len() - 2];
        assert!(
            contiguous_suffix(short, "out", 19_999).is_err()
                || contiguous_suffix(short, "err", 19_999).is_err()
        );
    }

    #[test]
    fn rotation_with_room_for_everything_loses_nothing() {
        let d = TempDir::new();
        let mut sink = LogSink::open(&d.0, "web", 64 * 1024, 100).unwrap();
        write_load(&mut sink, 20_000);
        let rot = rotated(&d.0, "web").unwrap();
        assert!(
            rot.len() > 10 && rot.len() < 100,
            "{} rotated files",
            rot.len()
        );
        let lines = all_texts(&d.0, "web");
        assert_eq!(lines.len(), 40_000);
        assert_eq!(contiguous_suffix(&lines, "out", 19_999), Ok(0));
        assert_eq!(contiguous_suffix(&lines, "err", 19_999), Ok(0));
    }

    #[test]
    fn keep_zero_keeps_only_the_current_file() {
        let d = TempDir::new();
        let mut sink = LogSink::open(&d.0, "web", 16 * 1024, 0).unwrap();
        write_load(&mut sink, 2_000);
        assert!(rotated(&d.0, "web").unwrap().is_empty());
        let lines = texts(sink.path());
        assert!(std::fs::metadata(sink.path()).unwrap().len() <= 16 * 1024);
        assert!(lines.len() < 4_000, "rotated: {}", lines.len());
        contiguous_suffix(&lines, "out", 1_999).unwrap();
        contiguous_suffix(&lines, "err", 1_999).unwrap();
    }

    #[test]
    fn a_line_larger_than_max_size_gets_a_file_of_its_own() {
        let d = TempDir::new();
        let mut sink = LogSink::open(&d.0, "web", 10, 2).unwrap();
        sink.feed(Stream::Out, b"first line\nsecond line\nthird line\n");
        assert_eq!(texts(sink.path()), ["third line"]);
        assert_eq!(texts(&rotated_path(&d.0, "web", 1)), ["second line"]);
        assert_eq!(texts(&rotated_path(&d.0, "web", 2)), ["first line"]);
        assert!(!rotated_path(&d.0, "web", 3).exists());
    }

    #[test]
    fn rotation_removes_files_past_a_reduced_keep() {
        let d = TempDir::new();
        let mut sink = LogSink::open(&d.0, "web", 100, 5).unwrap();
        for i in 0..10 {
            sink.note(&format!("{i:0>80}"));
        }
        assert_eq!(rotated(&d.0, "web").unwrap().len(), 5);
        // Not a rotated log: left alone.
        std::fs::write(d.0.join("web.log.07"), "x").unwrap();
        std::fs::write(d.0.join("web.log.old"), "x").unwrap();
        sink.set_limits(100, 2);
        sink.note(&format!("{:0>80}", 10));
        let nums: Vec<u64> = rotated(&d.0, "web").unwrap().iter().map(|r| r.0).collect();
        assert_eq!(nums, [2, 1]);
        assert!(d.0.join("web.log.07").exists() && d.0.join("web.log.old").exists());
        assert_eq!(all_texts(&d.0, "web").len(), 3);
    }

    /// A device node like /dev/full, made in the test's own directory:
    /// every write fails with ENOSPC.
    fn full_device(path: &Path) -> bool {
        use nix::sys::stat::{Mode, SFlag, makedev, mknod};
        match mknod(
            path,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o644),
            makedev(1, 7),
        ) {
            Ok(()) => true,
            Err(e) => {
                eprintln!("skipping: cannot make a full device node: {}", e.desc());
                false
            }
        }
    }

    #[test]
    fn a_failing_write_is_counted_not_fatal() {
        let d = TempDir::new();
        if !full_device(&d.0.join("web.log")) {
            return;
        }
        let mut sink = LogSink::open(&d.0, "web", 1 << 20, 3).unwrap();
        let got = sink.feed(Stream::Out, b"one\ntwo\nthr");
        // The lines still come back for the foreground and ready_log.
        assert_eq!(strings(&got), ["one", "two"]);
        sink.note("a note");
        assert_eq!(sink.finish(Stream::Out), Some(b"thr".to_vec()));
        assert_eq!(sink.dropped_lines(), 4);
        let err = sink.last_error().expect("an error");
        assert!(err.contains("No space left on device"), "{err}");
        assert!(err.contains("web.log"), "{err}");
        // Negative control: the same lines to a regular file drop nothing.
        let mut ok = LogSink::open(&d.0, "other", 1 << 20, 3).unwrap();
        ok.feed(Stream::Out, b"one\ntwo\n");
        assert_eq!((ok.dropped_lines(), ok.last_error()), (0, None));
    }

    #[test]
    fn tail_reads_back_across_rotated_files() {
        let d = TempDir::new();
        let mut sink = LogSink::open(&d.0, "web", 1024, 100).unwrap();
        let input = numbered_block("line", 0..300);
        sink.feed(Stream::Out, input.as_bytes());
        assert!(rotated(&d.0, "web").unwrap().len() > 5);
        let want: Vec<String> = (0..300).map(|i| numbered("line", i)).collect();
        let strip = |lines: Vec<String>| -> Vec<String> {
            lines
                .into_iter()
                .map(|l| l.splitn(3, ' ').nth(2).unwrap().to_string())
                .collect()
        };
        assert_eq!(strip(tail(&d.0, "web", 250).unwrap()), want[50..]);
        assert_eq!(strip(tail(&d.0, "web", 1).unwrap()), want[299..]);
        assert_eq!(strip(tail(&d.0, "web", 10_000).unwrap()), want);
        assert!(tail(&d.0, "web", 0).unwrap().is_empty());
        let e = tail(&d.0, "nothing", 5).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        // Missing directory: the same.
        let e = tail(&d.0.join("nope"), "web", 5).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }

    #[test]
    fn tail_reads_files_as_they_are() {
        let d = TempDir::new();
        let write = |name: &str, text: &[u8]| std::fs::write(d.0.join(name), text).unwrap();
        write("a.log", b"");
        assert!(tail(&d.0, "a", 5).unwrap().is_empty());
        write("a.log.1", b"one\ntwo\n");
        write("a.log", b"three\nfour");
        assert_eq!(tail(&d.0, "a", 2).unwrap(), ["three", "four"]);
        assert_eq!(tail(&d.0, "a", 3).unwrap(), ["two", "three", "four"]);
        assert_eq!(tail(&d.0, "a", 9).unwrap(), ["one", "two", "three", "four"]);
        write("a.log", b"\n\n");
        assert_eq!(tail(&d.0, "a", 3).unwrap(), ["two", "", ""]);
        write("a.log", b"bad \xff byte\n");
        assert_eq!(tail(&d.0, "a", 1).unwrap(), ["bad \u{fffd} byte"]);
        // A rotated file only (NAME.log just renamed away).
        std::fs::remove_file(d.0.join("a.log")).unwrap();
        assert_eq!(tail(&d.0, "a", 1).unwrap(), ["two"]);
        // Lines much longer than a read block, and more than one block.
        let long: Vec<String> = (0..40).map(|i| format!("{i}").repeat(5000)).collect();
        write("b.log", (long.join("\n") + "\n").as_bytes());
        assert_eq!(tail(&d.0, "b", 7).unwrap(), long[33..]);
        assert_eq!(tail(&d.0, "b", 100).unwrap(), long);
    }

    fn strip_all(lines: Vec<String>) -> Vec<String> {
        lines
            .into_iter()
            .map(|l| l.splitn(3, ' ').nth(2).unwrap_or("").to_string())
            .collect()
    }

    #[test]
    fn a_follower_started_before_the_log_exists_sees_it_from_the_start() {
        let d = TempDir::new();
        let (mut f, lines) = Follower::start(&d.0, "web", 10).unwrap();
        assert!(lines.is_empty());
        assert!(f.poll().unwrap().is_empty());
        let mut sink = LogSink::open(&d.0, "web", 1 << 20, 3).unwrap();
        sink.feed(Stream::Out, b"a\nb\n");
        assert_eq!(strip_all(f.poll().unwrap()), ["a", "b"]);
        assert!(f.poll().unwrap().is_empty());
        sink.feed(Stream::Out, b"c\n");
        assert_eq!(strip_all(f.poll().unwrap()), ["c"]);
    }

    #[test]
    fn a_follower_holds_back_an_incomplete_line() {
        let d = TempDir::new();
        let path = d.0.join("web.log");
        std::fs::write(&path, "one\ntwo\nthr").unwrap();
        let (mut f, lines) = Follower::start(&d.0, "web", 5).unwrap();
        // The incomplete line is not in the tail: it comes whole later.
        assert_eq!(lines, ["one", "two"]);
        assert!(f.poll().unwrap().is_empty());
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"ee\nfo").unwrap();
        assert_eq!(f.poll().unwrap(), ["three"]);
        file.write_all(b"ur\n").unwrap();
        assert_eq!(f.poll().unwrap(), ["four"]);
        let (_, lines) = Follower::start(&d.0, "web", 1).unwrap();
        assert_eq!(lines, ["four"]);
        let (_, lines) = Follower::start(&d.0, "web", 0).unwrap();
        assert!(lines.is_empty());
    }

    /// Checks that `lines` are `line 0` .. `line n-1`, each once, in order.
    fn each_once(lines: &[String], n: usize) -> Result<(), String> {
        if lines.len() != n {
            return Err(format!("{} lines, not {n}", lines.len()));
        }
        for (i, l) in lines.iter().enumerate() {
            if *l != numbered("line", i) {
                return Err(format!("line {i} is {l:?}"));
            }
        }
        Ok(())
    }

    #[test]
    fn a_follower_crosses_many_rotations_between_polls() {
        let d = TempDir::new();
        let mut sink = LogSink::open(&d.0, "web", 500, 1000).unwrap();
        sink.feed(Stream::Out, numbered_block("line", 0..20).as_bytes());
        let (mut f, first) = Follower::start(&d.0, "web", 1000).unwrap();
        let mut seen = strip_all(first);
        assert!(!rotated(&d.0, "web").unwrap().is_empty());
        let mut n = 20;
        for round in 0..30 {
            // From no rotation to several between two polls.
            let k = round * 7 % 45;
            sink.feed(Stream::Out, numbered_block("line", n..n + k).as_bytes());
            n += k;
            seen.extend(strip_all(f.poll().unwrap()));
        }
        assert!(rotated(&d.0, "web").unwrap().len() > 50);
        each_once(&seen, n).unwrap();
        // Negative controls: the check sees a duplicate and a gap.
        let mut dup = seen.clone();
        dup.insert(5, seen[5].clone());
        dup.pop();
        assert!(each_once(&dup, n).is_err());
        let mut gap = seen.clone();
        gap.remove(5);
        gap.push(numbered("line", n));
        assert!(each_once(&gap, n).is_err());
    }

    #[test]
    fn a_follower_that_falls_behind_goes_on_in_order() {
        let d = TempDir::new();
        let mut sink = LogSink::open(&d.0, "web", 500, 2).unwrap();
        sink.feed(Stream::Out, numbered_block("line", 0..5).as_bytes());
        let (mut f, _) = Follower::start(&d.0, "web", 0).unwrap();
        // Far more than keep rotations: the file it reads is deleted.
        sink.feed(Stream::Out, numbered_block("line", 5..200).as_bytes());
        let seen = strip_all(f.poll().unwrap());
        let nums: Vec<usize> = seen.iter().map(|l| l[5..11].parse().unwrap()).collect();
        assert!(
            nums.windows(2).all(|w| w[0] < w[1]),
            "in order, once: {nums:?}"
        );
        assert_eq!(nums.last(), Some(&199));
        assert!(
            nums.len() < 195,
            "some lines were rotated out: {}",
            nums.len()
        );
    }

    #[test]
    fn keep_zero_is_followed_too() {
        let d = TempDir::new();
        let mut sink = LogSink::open(&d.0, "web", 200, 0).unwrap();
        let (mut f, _) = Follower::start(&d.0, "web", 0).unwrap();
        let mut seen = Vec::new();
        let mut n = 0;
        for _ in 0..20 {
            // Less than a file's worth between polls.
            sink.feed(Stream::Out, numbered_block("line", n..n + 3).as_bytes());
            n += 3;
            seen.extend(strip_all(f.poll().unwrap()));
        }
        each_once(&seen, n).unwrap();
    }

    #[test]
    fn printer_pads_names_and_colours_only_when_asked() {
        let p = Printer::new(["web", "worker", "db"], false);
        assert_eq!(p.format("web", b"hello"), b"web    | hello\n");
        assert_eq!(p.format("worker", b""), b"worker | \n");
        let c = Printer::new(["web", "worker"], true);
        let code = color_of("web");
        assert_eq!(
            c.format("web", b"hi"),
            format!("\x1b[{code}mweb    |\x1b[0m hi\n").as_bytes()
        );
        // Stable: the same name, the same colour (FNV-1a, not a seeded hash).
        assert_eq!(color_of("web"), color_of("web"));
        assert_eq!(color_of(""), COLORS[(0x811c_9dc5u32 % 6) as usize]);
        let colours: HashSet<u8> = [
            "web", "worker", "db", "api", "queue", "cache", "mail", "cron",
        ]
        .iter()
        .map(|n| color_of(n))
        .collect();
        assert!(colours.iter().all(|c| (31..=36).contains(c)));
        // Not one colour for everything.
        assert!(colours.len() >= 3, "{colours:?}");
    }

    #[test]
    fn printer_writes_a_line_in_one_call() {
        struct Calls(Vec<Vec<u8>>);
        impl Write for Calls {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.0.push(buf.to_vec());
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let p = Printer::new(["a", "bbb"], true);
        let mut out = Calls(Vec::new());
        p.print(&mut out, "a", b"one").unwrap();
        p.print(&mut out, "bbb", b"two").unwrap();
        assert_eq!(out.0.len(), 2);
        assert!(out.0[0].ends_with(b"\x1b[0m one\n") && out.0[0].starts_with(b"\x1b["));
    }
}
