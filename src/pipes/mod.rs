//! The program's output pipes: capture with a bounded buffer, forwarding
//! with `splice(2)`, and the bookkeeping that lets `run` stop reading after
//! the wait-delay (defect D6).
//!
//! The read ends are non-blocking and owned by sexton; the write ends go to
//! the program only. Whatever a descendant keeps open, sexton decides when
//! it stops reading, so its own caller never hangs.

use nix::errno::Errno;
use nix::fcntl::{OFlag, SpliceFFlags, fcntl, splice};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};

/// Keeps the first and last `limit / 2` bytes of a stream and counts what
/// fell in between, so memory stays bounded by the limit, not the output.
#[derive(Debug, Default, Clone)]
pub struct Capture {
    limit: Option<usize>,
    head: Vec<u8>,
    /// Ring buffer of the newest bytes once the head is full.
    tail: Vec<u8>,
    tail_pos: usize,
    total: u64,
}

impl Capture {
    /// A capture keeping at most `limit` bytes (`None`: everything).
    pub fn new(limit: Option<u64>) -> Capture {
        Capture {
            limit: limit.map(|l| l.min(usize::MAX as u64) as usize),
            ..Capture::default()
        }
    }

    /// Appends bytes the program wrote.
    pub fn push(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        let Some(limit) = self.limit else {
            self.head.extend_from_slice(data);
            return;
        };
        let head_cap = limit - limit / 2;
        let tail_cap = limit / 2;
        if self.head.len() < head_cap {
            let n = data.len().min(head_cap - self.head.len());
            self.head.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
        if tail_cap == 0 || data.is_empty() {
            return;
        }
        if data.len() >= tail_cap {
            self.tail.clear();
            self.tail.extend_from_slice(&data[data.len() - tail_cap..]);
            self.tail_pos = 0;
            return;
        }
        // Fill the ring, then overwrite its oldest bytes, slice by slice.
        if self.tail.len() < tail_cap {
            let n = data.len().min(tail_cap - self.tail.len());
            self.tail.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
        while !data.is_empty() {
            let n = data.len().min(tail_cap - self.tail_pos);
            self.tail[self.tail_pos..self.tail_pos + n].copy_from_slice(&data[..n]);
            self.tail_pos = (self.tail_pos + n) % tail_cap;
            data = &data[n..];
        }
    }

    /// Every byte the program wrote.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes written but not kept.
    pub fn dropped(&self) -> u64 {
        self.total - (self.head.len() + self.tail.len()) as u64
    }

    /// What was kept: head then tail, in order.
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.head.len() + self.tail.len());
        out.extend_from_slice(&self.head);
        out.extend_from_slice(&self.tail[self.tail_pos..]);
        out.extend_from_slice(&self.tail[..self.tail_pos]);
        out
    }
}

/// Where the bytes read from one of the program's pipes go.
#[derive(Debug)]
pub enum Sink {
    /// Kept in memory (`--json`).
    Capture(Capture),
    /// Written to one of sexton's own fds, with splice where possible.
    Forward { to: RawFd, splice_ok: bool },
    /// Written to one of sexton's fds and also kept (for `--log`).
    Tee { to: RawFd, capture: Capture },
}

/// What one drain of a pipe found.
#[derive(Debug, PartialEq, Eq)]
pub enum Drain {
    /// Nothing more to read for now.
    Idle,
    /// The output side is full (a pipe whose reader is slow): wait for it
    /// to become writable before reading more.
    OutputFull,
    /// Every writer has closed the pipe.
    Eof,
    /// Our destination is gone (EPIPE): stop reading; the program's next
    /// write fails as if it wrote to the closed destination itself.
    Closed,
}

/// The read end of one of the program's output pipes.
#[derive(Debug)]
pub struct Reader {
    pub name: &'static str,
    fd: OwnedFd,
    pub ino: u64,
    pub sink: Sink,
    pub done: bool,
    /// Copy buffer, allocated on the first read that needs one.
    buf: Vec<u8>,
}

/// Capacity asked for each output pipe (`F_SETPIPE_SZ`), within the
/// default unprivileged limit of `/proc/sys/fs/pipe-max-size` (1 MiB).
const PIPE_SIZE: i32 = 1 << 20;
/// A splice that moved less than this is a small move (see `drain_with`).
const SMALL_MOVE: usize = 64 * 1024;
/// Bytes moved per read when copying.
const CHUNK: usize = 256 * 1024;

/// Makes a pipe for one output stream: the read end (non-blocking,
/// CLOEXEC) stays with sexton, the write end (CLOEXEC; std dup2s it onto
/// fd 1 or 2 in the child) goes to the program.
pub fn output_pipe(name: &'static str, sink: Sink) -> std::io::Result<(Reader, OwnedFd)> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
    // The program's end must block like any ordinary stdout.
    fcntl(&w, nix::fcntl::FcntlArg::F_SETFL(OFlag::empty()))?;
    // A larger pipe means fewer wakeups per byte for the program and for
    // sexton; best effort (the default 64 KiB works, just slower).
    let _ = fcntl(&r, nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
    let ino = nix::sys::stat::fstat(&r)?.st_ino;
    Ok((
        Reader {
            name,
            fd: r,
            ino,
            sink,
            done: false,
            buf: Vec::new(),
        },
        w,
    ))
}

impl Reader {
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Moves everything available from the pipe to the sink.
    pub fn drain(&mut self) -> Drain {
        let mut buf = std::mem::take(&mut self.buf);
        let r = self.drain_with(&mut buf);
        self.buf = buf;
        r
    }

    fn drain_with(&mut self, buf: &mut Vec<u8>) -> Drain {
        loop {
            if let Sink::Forward { to, splice_ok } = &mut self.sink {
                if *splice_ok {
                    // SAFETY: `to` is one of sexton's own stdio fds, open
                    // for the whole run.
                    let out = unsafe { BorrowedFd::borrow_raw(*to) };
                    match splice(
                        &self.fd,
                        None,
                        out,
                        None,
                        1 << 20,
                        SpliceFFlags::SPLICE_F_NONBLOCK | SpliceFFlags::SPLICE_F_MOVE,
                    ) {
                        Ok(0) => return Drain::Eof,
                        // One splice moves every buffer the pipe held (up
                        // to the output's room); a second one would mostly
                        // find the pipe empty. Back to poll, which says
                        // at once if more came.
                        Ok(n) => {
                            // A small move means the writer is producing
                            // in small writes and sexton wakes for each:
                            // give the CPU to the writer (and the reader)
                            // first, so the next wakeup moves a batch.
                            // Measured: 2 GiB in 4 KiB writes went from
                            // 0.46x to 0.54x of the direct pipe on 2 cores.
                            if n < SMALL_MOVE {
                                rustix::thread::sched_yield();
                            }
                            return Drain::Idle;
                        }
                        Err(Errno::EINTR) => continue,
                        // We only drain when the pipe was readable, so
                        // EAGAIN means the output is full, unless the pipe
                        // was emptied meanwhile; the caller polls both.
                        Err(Errno::EAGAIN) => return self.probe_after_eagain(),
                        Err(Errno::EPIPE) => return Drain::Closed,
                        // Not spliceable (O_APPEND file, tty...): copy.
                        Err(_) => {
                            *splice_ok = false;
                            continue;
                        }
                    }
                }
            }
            if buf.is_empty() {
                buf.resize(CHUNK, 0);
            }
            let n = match nix::unistd::read(&self.fd, buf) {
                Ok(0) => return Drain::Eof,
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return Drain::Idle,
                Err(_) => return Drain::Eof,
            };
            let data = &buf[..n];
            match &mut self.sink {
                Sink::Capture(c) => c.push(data),
                Sink::Forward { to, .. } => {
                    if write_all(*to, data).is_err() {
                        return Drain::Closed;
                    }
                }
                Sink::Tee { to, capture } => {
                    capture.push(data);
                    if write_all(*to, data).is_err() {
                        // Keep capturing for the log; stop forwarding.
                        self.sink = Sink::Capture(std::mem::take(capture));
                    }
                }
            }
        }
    }

    /// After splice said EAGAIN: if the pipe still holds data the output
    /// is what is full.
    fn probe_after_eagain(&self) -> Drain {
        // FIONREAD through rustix: how many bytes wait in the pipe.
        if rustix::io::ioctl_fionread(&self.fd).is_ok_and(|n| n > 0) {
            Drain::OutputFull
        } else {
            Drain::Idle
        }
    }

    /// The fd to wait on for writability when the output is full.
    pub fn output_fd(&self) -> Option<RawFd> {
        match &self.sink {
            Sink::Forward { to, .. } | Sink::Tee { to, .. } => Some(*to),
            Sink::Capture(_) => None,
        }
    }

    /// What was captured, if this stream is captured.
    pub fn capture(&self) -> Option<&Capture> {
        match &self.sink {
            Sink::Capture(c) | Sink::Tee { capture: c, .. } => Some(c),
            Sink::Forward { .. } => None,
        }
    }
}

/// write(2) until everything is written, retrying EINTR and waiting out
/// EAGAIN on a non-blocking destination.
pub fn write_all(fd: RawFd, mut data: &[u8]) -> Result<(), Errno> {
    // SAFETY: the fd is one of sexton's own, open for the call.
    let bfd = unsafe { BorrowedFd::borrow_raw(fd) };
    while !data.is_empty() {
        match nix::unistd::write(bfd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                let mut pfd = [nix::poll::PollFd::new(bfd, nix::poll::PollFlags::POLLOUT)];
                let _ = nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(100u16));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_keeps_head_and_tail() {
        let mut c = Capture::new(Some(10));
        c.push(b"0123456789abcdefghij");
        assert_eq!(c.total(), 20);
        assert_eq!(c.bytes(), b"01234fghij");
        assert_eq!(c.dropped(), 10);
        let mut c = Capture::new(Some(6));
        for b in b"abcdefghijk" {
            c.push(&[*b]);
        }
        assert_eq!(c.bytes(), b"abcijk");
        // Chunks that wrap the ring keep the newest bytes in order.
        let mut c = Capture::new(Some(8));
        for chunk in [&b"0123"[..], b"45", b"678", b"9ab", b"cd", b"e"] {
            c.push(chunk);
        }
        assert_eq!(c.bytes(), b"0123bcde");
        assert_eq!(c.dropped(), 7);
        let mut c = Capture::new(None);
        c.push(b"all of it");
        assert_eq!(c.bytes(), b"all of it");
        assert_eq!(c.dropped(), 0);
    }
}
