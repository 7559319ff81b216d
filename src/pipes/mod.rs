//! The program's output pipes: capture with a bounded buffer, forwarding
//! with `splice(2)`, and the bookkeeping that lets `run` stop reading after
//! the wait-delay (defect D6).
//!
//! The read ends are non-blocking and owned by sexton; the write ends go to
//! the program only. Whatever a descendant keeps open, sexton decides when
//! it stops reading, so its own caller never hangs.

use nix::errno::Errno;
use nix::fcntl::{OFlag, SpliceFFlags, fcntl, splice};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

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
    /// Only a little came (less than 64 KiB): the writer writes in small
    /// pieces. Waiting [`TRICKLE_REST`] before looking again lets one
    /// wakeup move a batch instead of one wakeup per write, which is what
    /// keeps a relay near the speed of a direct pipe.
    Trickle,
    /// The output side is full (a pipe whose reader is slow): wait for it
    /// to become writable before reading more.
    OutputFull,
    /// Reading has ended, for the reason given (the read end is closed).
    Ended(End),
}

/// Why sexton stopped reading one of the program's pipes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Every writer closed the pipe: everything was delivered.
    Eof,
    /// Our destination is gone (EPIPE: the caller's reader closed early).
    /// The read end is closed at once, so the program's next write fails
    /// as if it wrote to the closed destination itself: it dies of
    /// SIGPIPE, as it would without sexton.
    Closed,
    /// The wait-delay passed after the program exited, with the pipe
    /// still held open by processes it left behind; what the pipe held
    /// then was delivered, and reading stopped.
    Cut,
}

/// The read end of one of the program's output pipes.
#[derive(Debug)]
pub struct Reader {
    pub name: &'static str,
    /// One pipe for both of the program's stdout and stderr: the caller's
    /// fd 1 and fd 2 are one open file (`2>&1`), so the program writes
    /// both streams into one pipe and their order is kept.
    pub merged: bool,
    /// `None` once reading has ended.
    fd: Option<OwnedFd>,
    pub ino: u64,
    pub sink: Sink,
    /// Why reading ended, once it has.
    pub end: Option<End>,
    /// After a cut: bytes the pipe held at the cut, still to deliver.
    budget: Option<u64>,
    /// Copy buffer, allocated on the first read that needs one.
    buf: Vec<u8>,
}

/// Capacity asked for each output pipe (`F_SETPIPE_SZ`), within the
/// default unprivileged limit of `/proc/sys/fs/pipe-max-size` (1 MiB).
const PIPE_SIZE: i32 = 1 << 20;
/// A splice that moved less than this is a small move (see `drain_with`).
const SMALL_MOVE: usize = 64 * 1024;
/// How long a pipe that moved only a little rests before the next look.
/// Output reaches the caller at most this much later; a writer that
/// fills the pipe meanwhile only waits that long.
pub const TRICKLE_REST: std::time::Duration = std::time::Duration::from_micros(200);
/// Bytes moved per read when copying.
const CHUNK: usize = 256 * 1024;

/// Makes a pipe for one of a program's output streams: the read end
/// (non-blocking, CLOEXEC, enlarged) stays with sexton, the write end
/// (CLOEXEC, blocking; the spawn dup2s it onto fd 1 or 2) goes to the
/// program. Returns both ends and the pipe's inode (how the holders of
/// the pipe are recognised in /proc).
pub fn pipe_pair() -> std::io::Result<(OwnedFd, OwnedFd, u64)> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
    // The program's end must block like any ordinary stdout.
    fcntl(&w, nix::fcntl::FcntlArg::F_SETFL(OFlag::empty()))?;
    // A larger pipe means fewer wakeups per byte for the program and for
    // sexton; best effort (the default 64 KiB works, just slower).
    let _ = fcntl(&r, nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
    let ino = nix::sys::stat::fstat(&r)?.st_ino;
    Ok((r, w, ino))
}

/// When sexton's own fd `fd` (where a stream is forwarded) is a pipe,
/// asks for it to hold [`PIPE_SIZE`] too (`F_SETPIPE_SZ`): the relay then
/// moves a megabyte per wakeup instead of the default 64 KiB, and its
/// reader finds more at each read. Best effort: a pipe that cannot grow
/// (the unprivileged limit, memory) stays as it is.
pub fn widen_destination(fd: RawFd) {
    // SAFETY: `fd` is one of sexton's stdio fds, open for the call.
    let bfd = unsafe { BorrowedFd::borrow_raw(fd) };
    let is_pipe =
        nix::sys::stat::fstat(bfd).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFIFO);
    if is_pipe {
        let _ = fcntl(bfd, nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
    }
}

/// What one non-blocking read of a pipe gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Got {
    /// This many bytes, at the start of the buffer.
    Data(usize),
    /// Nothing for now (EAGAIN).
    Nothing,
    /// Every writer has closed the pipe.
    Eof,
}

/// One `read(2)` of a non-blocking fd into `buf`, EINTR retried; any
/// error other than EAGAIN counts as the end of the stream.
pub fn read_available(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Got {
    loop {
        match nix::unistd::read(fd, buf) {
            Ok(0) => return Got::Eof,
            Ok(n) => return Got::Data(n),
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => return Got::Nothing,
            Err(_) => return Got::Eof,
        }
    }
}

/// Makes a pipe for one output stream with [`pipe_pair`], its read end
/// wrapped as a [`Reader`] that moves what comes into `sink`.
pub fn output_pipe(name: &'static str, sink: Sink) -> std::io::Result<(Reader, OwnedFd)> {
    let (r, w, ino) = pipe_pair()?;
    Ok((
        Reader {
            name,
            merged: false,
            fd: Some(r),
            ino,
            sink,
            end: None,
            budget: None,
            buf: Vec::new(),
        },
        w,
    ))
}

impl Reader {
    /// The read end, while reading goes on.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.fd.as_ref().map(|f| f.as_fd())
    }

    /// True once reading has ended.
    pub fn done(&self) -> bool {
        self.end.is_some()
    }

    /// The stream names the program has this pipe on.
    pub fn streams(&self) -> &'static [&'static str] {
        match (self.name, self.merged) {
            (_, true) => &["stdout", "stderr"],
            ("stderr", false) => &["stderr"],
            _ => &["stdout"],
        }
    }

    /// Stops reading for `why`: the read end is closed now.
    pub fn close(&mut self, why: End) {
        if self.end.is_none() {
            self.end = Some(why);
        }
        self.fd = None;
    }

    /// The wait-delay passed: deliver what the pipe holds now (`FIONREAD`),
    /// however slowly the output takes it, then stop. Nothing the program
    /// wrote before this moment is lost.
    pub fn cut(&mut self) {
        if self.done() || self.budget.is_some() {
            return;
        }
        let held = self
            .fd
            .as_ref()
            .and_then(|fd| rustix::io::ioctl_fionread(fd).ok())
            .unwrap_or(0);
        if held == 0 {
            self.close(End::Cut);
        } else {
            self.budget = Some(held);
        }
    }

    /// Moves what is available from the pipe to the sink (within the
    /// budget after a cut).
    pub fn drain(&mut self) -> Drain {
        if let Some(end) = self.end {
            return Drain::Ended(end);
        }
        let mut buf = std::mem::take(&mut self.buf);
        let r = self.drain_with(&mut buf);
        self.buf = buf;
        if let Drain::Ended(why) = r {
            self.close(why);
        }
        r
    }

    /// The most one call may move now.
    fn allowance(&self, max: usize) -> usize {
        self.budget.map_or(max, |b| (b.min(max as u64)) as usize)
    }

    /// Counts `n` moved bytes against the budget; true when it is spent.
    fn spend(&mut self, n: usize) -> bool {
        match &mut self.budget {
            Some(b) => {
                *b = b.saturating_sub(n as u64);
                *b == 0
            }
            None => false,
        }
    }

    fn drain_with(&mut self, buf: &mut Vec<u8>) -> Drain {
        let Some(fd) = self.fd.as_ref().map(|f| f.as_raw_fd()) else {
            return Drain::Ended(End::Eof);
        };
        // SAFETY: `fd` is our read end, open until `close`, which only
        // runs after this returns.
        let pipe = unsafe { BorrowedFd::borrow_raw(fd) };
        loop {
            let len = self.allowance(1 << 20);
            if let Sink::Forward { to, splice_ok } = &mut self.sink
                && *splice_ok
            {
                // SAFETY: `to` is one of sexton's own stdio fds, open
                // for the whole run.
                let out = unsafe { BorrowedFd::borrow_raw(*to) };
                match splice(
                    pipe,
                    None,
                    out,
                    None,
                    len,
                    SpliceFFlags::SPLICE_F_NONBLOCK | SpliceFFlags::SPLICE_F_MOVE,
                ) {
                    Ok(0) => return Drain::Ended(End::Eof),
                    // One splice moves every buffer the pipe held (up
                    // to the output's room); a second one would mostly
                    // find the pipe empty. Back to poll, which says
                    // at once if more came.
                    Ok(n) => {
                        if self.spend(n) {
                            return Drain::Ended(End::Cut);
                        }
                        // A small move means the writer produces in small
                        // writes and sexton would wake for each: the
                        // caller lets the pipe fill a moment first.
                        if n < SMALL_MOVE {
                            return Drain::Trickle;
                        }
                        return Drain::Idle;
                    }
                    Err(Errno::EINTR) => continue,
                    // We only drain when the pipe was readable, so
                    // EAGAIN means the output is full, unless the pipe
                    // was emptied meanwhile; the caller polls both.
                    Err(Errno::EAGAIN) => return probe_after_eagain(pipe),
                    Err(Errno::EPIPE) => return Drain::Ended(End::Closed),
                    // Not spliceable (O_APPEND file, tty...): copy.
                    Err(_) => {
                        *splice_ok = false;
                        continue;
                    }
                }
            }
            if buf.is_empty() {
                buf.resize(CHUNK, 0);
            }
            let len = self.allowance(buf.len());
            let n = match nix::unistd::read(pipe, &mut buf[..len]) {
                Ok(0) => return Drain::Ended(End::Eof),
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return Drain::Idle,
                Err(_) => return Drain::Ended(End::Eof),
            };
            let data = &buf[..n];
            match &mut self.sink {
                Sink::Capture(c) => c.push(data),
                Sink::Forward { to, .. } => {
                    if write_all(*to, data).is_err() {
                        return Drain::Ended(End::Closed);
                    }
                }
                Sink::Tee { to, capture } => {
                    capture.push(data);
                    if write_all(*to, data).is_err() {
                        return Drain::Ended(End::Closed);
                    }
                }
            }
            if self.spend(n) {
                return Drain::Ended(End::Cut);
            }
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

/// After splice said EAGAIN: if the pipe still holds data the output is
/// what is full (`FIONREAD` through rustix: how many bytes wait in the
/// pipe).
fn probe_after_eagain(pipe: BorrowedFd<'_>) -> Drain {
    if rustix::io::ioctl_fionread(pipe).is_ok_and(|n| n > 0) {
        Drain::OutputFull
    } else {
        Drain::Idle
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
