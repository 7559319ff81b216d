//! The program's output through the monitor, for `--ready log:REGEX`.
//!
//! The program writes into pipes instead of straight into its files; the
//! monitor reads them in its event loop, writes every byte on to the
//! destination the program would have had (the monitor's own fd 1 and 2:
//! the `--stdout`/`--stderr`/`--log` files or /dev/null), and while the
//! start is undecided hands each complete line to the readiness check.
//!
//! Nothing is lost: a read is always written in full before the next one
//! (a slow destination makes the monitor wait, and the program with it,
//! as a slow file would have); the monitor keeps the write ends, so the
//! pipes outlive every program it starts (`--respawn`) and are drained
//! one last time once the tree is gone. When the program's stdout and
//! stderr are one open file (`--log`), one pipe carries both, so their
//! order is kept. When the destination refuses a write (EPIPE: a FIFO
//! whose reader left), that stream's read end is closed, so the program's
//! next write fails as it would have without the monitor. Any other
//! write error (a full disk: ENOSPC, EDQUOT; EIO) drops that chunk and
//! keeps reading: the program goes on running, as it would have with its
//! own writes failing, the readiness check still gets every line, and
//! the monitor says on its stderr when the dropping starts and how many
//! bytes it dropped once writing works again.

use crate::pipes::write_all;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

/// Bytes moved per read.
const CHUNK: usize = 64 * 1024;
/// Reads per stream per wakeup, so that a chatty program cannot keep the
/// loop from its signals (the pipe stays readable: the next poll returns
/// at once).
const READS_PER_PUMP: usize = 16;
/// A line longer than this is handed to the check in pieces of this size.
const MAX_LINE: usize = 64 * 1024;

/// What a line is handed to.
type LineFn<'a> = dyn FnMut(&[u8]) + 'a;

/// One pipe: the program writes, the monitor copies to `to`.
#[derive(Debug)]
struct Stream {
    /// Non-blocking; `None` once the destination refused a write.
    read: Option<OwnedFd>,
    /// What the program gets (a dup of it) as its fd 1 or 2.
    write: OwnedFd,
    /// The monitor's own fd the bytes go to.
    to: RawFd,
    /// The start of a line not yet ended.
    partial: Vec<u8>,
    /// While writes to `to` fail: why, and how many bytes were dropped.
    dropping: Option<(Errno, u64)>,
}

/// The program's output pipes.
#[derive(Debug)]
pub(crate) struct Output {
    /// stdout's pipe, then stderr's when it has its own.
    streams: Vec<Stream>,
}

impl Output {
    /// Pipes for a program whose output goes to this process's fds 1 and
    /// 2: one pipe when they are one open file, else one each.
    pub(crate) fn new() -> io::Result<Output> {
        let merged = crate::sys::same_open_file(1, 2) == Some(true);
        let mut streams = vec![Stream::new(1)?];
        if !merged {
            streams.push(Stream::new(2)?);
        }
        Ok(Output { streams })
    }

    /// The program's stdout and stderr (fresh dups of the write ends).
    pub(crate) fn stdio(&self) -> io::Result<(OwnedFd, OwnedFd)> {
        let out = self.streams[0].write.try_clone()?;
        let err = self.streams.last().expect("one stream").write.try_clone()?;
        Ok((out, err))
    }

    /// The read ends to poll (readable).
    pub(crate) fn poll_fds(&self) -> Vec<RawFd> {
        self.streams
            .iter()
            .filter_map(|s| s.read.as_ref().map(|f| f.as_raw_fd()))
            .collect()
    }

    /// Copies what the pipes hold (a bounded amount per stream) to their
    /// destinations.
    pub(crate) fn pump(&mut self) {
        for s in &mut self.streams {
            s.pump(READS_PER_PUMP, None);
        }
    }

    /// [`Output::pump`], handing each complete line (newline included) to
    /// `f` as well.
    pub(crate) fn pump_lines(&mut self, f: &mut dyn FnMut(&[u8])) {
        for s in &mut self.streams {
            s.pump(READS_PER_PUMP, Some(&mut *f));
        }
    }

    /// Copies everything the pipes hold now: the last copy, once nothing
    /// that could write to them is left.
    pub(crate) fn drain(&mut self) {
        for s in &mut self.streams {
            s.pump(usize::MAX, None);
        }
    }
}

impl Stream {
    fn new(to: RawFd) -> io::Result<Stream> {
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        // The program's end blocks like any ordinary stdout.
        nix::fcntl::fcntl(&w, nix::fcntl::FcntlArg::F_SETFL(OFlag::empty()))?;
        Ok(Stream {
            read: Some(r),
            write: w,
            to,
            partial: Vec::new(),
            dropping: None,
        })
    }

    /// Up to `reads` reads, each written on in full; with `lines`, the
    /// lines are handed to it too, else no partial line is kept.
    fn pump(&mut self, reads: usize, mut lines: Option<&mut LineFn<'_>>) {
        if lines.is_none() {
            self.partial = Vec::new();
        }
        let mut buf = [0u8; CHUNK];
        let mut n_reads = 0;
        while n_reads < reads {
            let Some(fd) = &self.read else { return };
            let n = match nix::unistd::read(fd.as_fd(), &mut buf) {
                // Only once no writer is left, which the kept write end
                // prevents; nothing more can come either way.
                Ok(0) => return,
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(_) => return,
            };
            n_reads += 1;
            let data = &buf[..n];
            match write_all(self.to, data) {
                Ok(()) => self.written(),
                Err(Errno::EPIPE) => {
                    self.read = None;
                    return;
                }
                Err(e) => self.dropped(e, n as u64),
            }
            if let Some(f) = lines.as_deref_mut() {
                self.split(data, f);
            }
        }
    }

    /// The name of the destination in the monitor's notes.
    fn name(&self) -> &'static str {
        if self.to == 1 { "stdout" } else { "stderr" }
    }

    /// A chunk could not be written (and is dropped): the first one says
    /// so.
    fn dropped(&mut self, e: Errno, n: u64) {
        match &mut self.dropping {
            Some((_, total)) => *total += n,
            None => {
                super::monitor::note(&format!(
                    "cannot write the program's {}: {}; dropping its output until it can be written",
                    self.name(),
                    e.desc()
                ));
                self.dropping = Some((e, n));
            }
        }
    }

    /// A chunk was written: if chunks were dropped before, say how many
    /// bytes.
    fn written(&mut self) {
        if let Some((e, total)) = self.dropping.take() {
            super::monitor::note(&format!(
                "the program's {} is written again; {total} bytes were dropped ({})",
                self.name(),
                e.desc()
            ));
        }
    }

    /// Hands each line `data` completes to `f`, keeping the unfinished
    /// rest (at most [`MAX_LINE`] bytes) for the next read.
    fn split(&mut self, mut data: &[u8], f: &mut dyn FnMut(&[u8])) {
        while let Some(i) = data.iter().position(|&b| b == b'\n') {
            let (line, rest) = data.split_at(i + 1);
            if self.partial.is_empty() {
                f(line);
            } else {
                self.partial.extend_from_slice(line);
                f(&self.partial);
                self.partial.clear();
            }
            data = rest;
        }
        self.partial.extend_from_slice(data);
        while self.partial.len() >= MAX_LINE {
            let rest = self.partial.split_off(MAX_LINE);
            f(&self.partial);
            self.partial = rest;
        }
    }
}
