//! The pidfile and its lock.
//!
//! A pidfile alone cannot say whether a daemon runs: the process it names
//! may be long dead and its pid reused by something unrelated (defect
//! D9). So the monitor holds a POSIX record lock (`fcntl(F_SETLK)`,
//! whole file, write lock) on the pidfile for the daemon's whole life.
//! The kernel drops that lock when the monitor exits, however it exits,
//! so "locked" means "a monitor is alive", and `F_GETLK` names that
//! monitor's pid without anybody having to trust the file's contents.
//!
//! POSIX locks rather than `flock`: `F_GETLK` reports the holder's pid,
//! which is how `--stop` finds the monitor, and the lock is not inherited
//! by forked children, so a daemon's descendants can never keep it. The
//! one trap of POSIX locks (closing any fd of the file drops the lock) is
//! avoided by opening the file once and rewriting it through that fd.
//!
//! What sexton takes as its pidfile, and what it removes: a path is
//! taken only when nothing is there (it is then created exclusively),
//! or when it is a regular file of the user running sexton that is empty
//! or holds just a pid (digits, optionally a newline) and whose lock
//! nobody holds. Anything else (other contents, a directory, a device, a
//! FIFO, a symbolic link, another user's file) is refused and left
//! exactly as it was: a mistyped `--pidfile` must never overwrite or
//! delete a file that is not a pidfile. The file is looked at with
//! `lstat` before it is opened, so a device or FIFO is never opened
//! (`O_NONBLOCK` and `O_NOCTTY` cover one swapped in between), and the
//! opened file must be the inode that was looked at. Only the file this
//! process locked is ever removed, and only while the path still names
//! that inode.
//!
//! The race handled here: a monitor removes its pidfile and then exits;
//! a second one may have opened the old file just before the removal and
//! would lock a file nobody can find any more. After locking, the file
//! at the path must still be the inode that was locked, else the lock is
//! dropped and taken again on the new file.
//!
//! See <https://man7.org/linux/man-pages/man2/fcntl.2.html> (advisory
//! record locking).

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl, open};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, lstat};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

/// What the lock says about a pidfile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockState {
    /// No file at the path.
    Missing,
    /// The file exists and nobody holds its lock: whatever it names is not
    /// our daemon.
    Unlocked,
    /// A live process (the monitor) holds the lock.
    Locked { holder: i32 },
}

/// What a look at a pidfile found, without taking its lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub state: LockState,
    /// The pid the file names, if it names one.
    pub pid: Option<i32>,
}

/// A pidfile this process has locked. Dropping it releases the lock
/// (the file stays; see [`Pidfile::remove`]).
#[derive(Debug)]
pub struct Pidfile {
    path: PathBuf,
    fd: OwnedFd,
}

/// The longest file taken for a pidfile: a pid is at most 10 digits, so
/// anything much longer holds something else.
const MAX_LEN: usize = 32;

/// A whole-file lock request of the given type for `fcntl`.
fn whole_file(kind: libc::c_short) -> libc::flock {
    // SAFETY: flock is plain old data; all-zero is a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = 0;
    fl.l_len = 0;
    fl
}

/// True when `fd` is still the file at `path` (same device and inode;
/// the path itself, a symbolic link put there is not followed).
fn is_current(fd: &OwnedFd, path: &Path) -> bool {
    match (fstat(fd.as_fd()), lstat(path)) {
        (Ok(a), Ok(b)) => same_file(&a, &b),
        _ => false,
    }
}

fn same_file(a: &FileStat, b: &FileStat) -> bool {
    a.st_dev == b.st_dev && a.st_ino == b.st_ino
}

fn retry<T>(mut f: impl FnMut() -> nix::Result<T>) -> nix::Result<T> {
    loop {
        match f() {
            Err(Errno::EINTR) => continue,
            r => return r,
        }
    }
}

/// The error of a path that is not taken as a pidfile.
fn refused(reason: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, reason)
}

/// Refuses anything but a regular file, and with `own`, a file that
/// belongs to another user.
fn check_file(st: &FileStat, own: bool) -> io::Result<()> {
    let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
    let what = match kind {
        SFlag::S_IFREG => None,
        SFlag::S_IFLNK => {
            return Err(refused(
                "it is a symbolic link (a pidfile is never followed)".into(),
            ));
        }
        SFlag::S_IFDIR => Some("a directory"),
        SFlag::S_IFCHR => Some("a character device"),
        SFlag::S_IFBLK => Some("a block device"),
        SFlag::S_IFIFO => Some("a FIFO"),
        SFlag::S_IFSOCK => Some("a socket"),
        _ => Some("a special file"),
    };
    if let Some(what) = what {
        return Err(refused(format!("it is {what}, not a regular file")));
    }
    let me = nix::unistd::geteuid().as_raw();
    if own && st.st_uid != me {
        return Err(refused(format!(
            "it belongs to uid {}, not to uid {me} that runs sexton",
            st.st_uid
        )));
    }
    Ok(())
}

/// Opens the file at `path` that is there already, after `lstat` has
/// passed it through [`check_file`]: a device or FIFO is never opened.
/// `None` when the path changed between the two looks (look again).
fn open_existing(path: &Path, access: OFlag, own: bool) -> io::Result<Option<OwnedFd>> {
    let before = match lstat(path) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    check_file(&before, own)?;
    // O_NONBLOCK and O_NOCTTY: should a FIFO or a terminal be swapped in
    // after the lstat, opening it neither blocks nor adopts a terminal.
    let flags = access | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let fd = match retry(|| open(path, flags, Mode::empty())) {
        Ok(fd) => fd,
        Err(Errno::ENOENT | Errno::ELOOP) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let st = fstat(fd.as_fd())?;
    if !same_file(&st, &before) {
        return Ok(None);
    }
    check_file(&st, own)?;
    Ok(Some(fd))
}

/// Reads the whole (short) file behind `fd`, from offset 0.
fn read_short(fd: &OwnedFd) -> io::Result<Vec<u8>> {
    let size = fstat(fd.as_fd())?.st_size;
    if size < 0 || size as usize > MAX_LEN {
        return Err(refused(format!("it holds {size} bytes, more than a pid")));
    }
    let mut buf = [0u8; MAX_LEN + 1];
    let mut len = 0;
    loop {
        match rustix::io::pread(fd, &mut buf[len..], len as u64) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
        if len > MAX_LEN {
            return Err(refused("it holds more than a pid".into()));
        }
    }
    Ok(buf[..len].to_vec())
}

/// A pidfile's contents: nothing, or digits with an optional newline.
/// `Err` for anything else. The pid is `None` for an empty file (or
/// digits too many for a pid).
fn parse_strict(text: &[u8]) -> Result<Option<i32>, ()> {
    if text.is_empty() {
        return Ok(None);
    }
    let digits = text.strip_suffix(b"\n").unwrap_or(text);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(());
    }
    Ok(std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse().ok()))
}

/// A locked pidfile's contents, read while its monitor may be rewriting
/// it ([`Pidfile::write_pid`] leaves the tail of a longer old pid for a
/// moment): nothing, or a first line of digits.
fn parse_first_line(text: &[u8]) -> Result<Option<i32>, ()> {
    if text.is_empty() {
        return Ok(None);
    }
    let line = text.split(|&b| b == b'\n').next().unwrap_or(text);
    parse_strict(line)
}

fn not_a_pid() -> io::Error {
    refused("it holds something other than a pid".into())
}

impl Pidfile {
    /// Locks `path` without waiting: creates it (mode 0644 less the
    /// umask) when nothing is there, else takes it over when it is a
    /// pidfile of this user whose lock nobody holds (see the module docs;
    /// anything else is refused with `InvalidInput`, untouched).
    /// `Err(Locked)`-style answers come back as `Ok(Err(holder))`: the
    /// pid of the process that holds the lock.
    pub fn lock(path: &Path) -> io::Result<Result<Pidfile, i32>> {
        loop {
            let created = retry(|| {
                open(
                    path,
                    OFlag::O_RDWR
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o644),
                )
            });
            let fd = match created {
                Ok(fd) => fd,
                Err(Errno::EEXIST) => match open_existing(path, OFlag::O_RDWR, true)? {
                    Some(fd) => fd,
                    None => continue,
                },
                Err(e) => return Err(e.into()),
            };
            let fl = whole_file(libc::F_WRLCK as libc::c_short);
            match retry(|| fcntl(fd.as_fd(), FcntlArg::F_SETLK(&fl))) {
                Ok(_) => {}
                Err(Errno::EAGAIN) | Err(Errno::EACCES) => {
                    match holder_of(&fd)? {
                        Some(pid) => return Ok(Err(pid)),
                        // Released between the two calls: try again.
                        None => continue,
                    }
                }
                Err(e) => return Err(e.into()),
            }
            if !is_current(&fd, path) {
                // We locked a file that was removed meanwhile: start over.
                continue;
            }
            // Nobody else writes it now: it must be empty or a stale pid.
            // (Dropping the fd on refusal releases the lock.)
            if parse_strict(&read_short(&fd)?).is_err() {
                return Err(not_a_pid());
            }
            return Ok(Ok(Pidfile {
                path: path.to_path_buf(),
                fd,
            }));
        }
    }

    /// The path of the pidfile.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the contents with `pid` and a newline. The new text is
    /// written over the old one before the file is cut to length, so a
    /// reader of the first line never sees an empty file mid-rewrite.
    pub fn write_pid(&self, pid: i32) -> io::Result<()> {
        let text = format!("{pid}\n");
        write_all_at(&self.fd, text.as_bytes())?;
        truncate(&self.fd, text.len() as u64)
    }

    /// Empties the file (the program is not running, e.g. between two
    /// starts), so that nobody acts on a pid that may be reused meanwhile.
    pub fn clear(&self) -> io::Result<()> {
        truncate(&self.fd, 0)
    }

    /// Removes the file while still holding its lock, then releases the
    /// lock: whoever looks after this sees no file, never an unlocked one.
    /// Only when the path still names the file this process locked: one
    /// put in its place meanwhile is left alone.
    pub fn remove(self) -> io::Result<()> {
        let r = if is_current(&self.fd, &self.path) {
            std::fs::remove_file(&self.path)
        } else {
            Ok(())
        };
        drop(self);
        r
    }
}

impl Pidfile {
    /// Removes the file after the process that held its lock died
    /// abruptly (the monitor's guard, see [`crate::tree::guard`]): the
    /// lock is taken again first (`F_SETLK`), and only when nobody else
    /// has taken it meanwhile is the file removed. A new daemon that
    /// claimed the path in between keeps it.
    pub fn reclaim(self) -> io::Result<()> {
        let fl = whole_file(libc::F_WRLCK as libc::c_short);
        match retry(|| fcntl(self.fd.as_fd(), FcntlArg::F_SETLK(&fl))) {
            Ok(_) => self.remove(),
            Err(Errno::EAGAIN) | Err(Errno::EACCES) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

fn truncate(fd: &OwnedFd, len: u64) -> io::Result<()> {
    loop {
        match rustix::fs::ftruncate(fd, len) {
            Err(rustix::io::Errno::INTR) => continue,
            r => return r.map_err(io::Error::from),
        }
    }
}

fn write_all_at(fd: &OwnedFd, mut buf: &[u8]) -> io::Result<()> {
    let mut off = 0;
    while !buf.is_empty() {
        match rustix::io::pwrite(fd, buf, off) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                buf = &buf[n..];
                off += n as u64;
            }
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The pid holding a conflicting lock on `fd`'s file (`F_GETLK`), if any.
fn holder_of(fd: &OwnedFd) -> io::Result<Option<i32>> {
    let mut fl = whole_file(libc::F_WRLCK as libc::c_short);
    retry(|| fcntl(fd.as_fd(), FcntlArg::F_GETLK(&mut fl)))?;
    if fl.l_type == libc::F_UNLCK as libc::c_short {
        Ok(None)
    } else {
        Ok(Some(fl.l_pid))
    }
}

/// Looks at `path` without taking its lock and without changing
/// anything: whether a monitor holds it, and the pid it names.
///
/// Only `F_GETLK` is used, so this never disturbs a monitor that is
/// starting at the same moment. A path that is not a pidfile (see the
/// module docs; with `own`, also another user's file) is an
/// `InvalidInput` error: a locked file whose first line is not a pid is
/// not a monitor's. A pidfile removed while it was being looked at is
/// looked at again.
fn look(path: &Path, own: bool) -> io::Result<Found> {
    loop {
        let Some(fd) = open_existing(path, OFlag::O_RDONLY, own)? else {
            if matches!(lstat(path), Err(Errno::ENOENT)) {
                return Ok(Found {
                    state: LockState::Missing,
                    pid: None,
                });
            }
            continue;
        };
        // F_GETLK with a write-lock request needs no write access: it
        // only asks which lock would conflict.
        let holder = holder_of(&fd)?;
        if holder.is_none() && !is_current(&fd, path) {
            continue;
        }
        let text = read_short(&fd)?;
        return match holder {
            Some(holder) => Ok(Found {
                state: LockState::Locked { holder },
                pid: parse_first_line(&text).map_err(|()| not_a_pid())?,
            }),
            None => Ok(Found {
                state: LockState::Unlocked,
                pid: parse_strict(&text).map_err(|()| not_a_pid())?,
            }),
        };
    }
}

/// What `--status` and `--stop` see at `path` (see [`look`]).
pub fn inspect(path: &Path) -> io::Result<Found> {
    look(path, false)
}

/// The check before a start: [`inspect`], and another user's file is
/// refused too, as [`Pidfile::lock`] will.
pub fn preflight(path: &Path) -> io::Result<Found> {
    look(path, true)
}

/// Asks the lock, without taking it, whether a monitor holds `path`.
pub fn probe(path: &Path) -> io::Result<LockState> {
    inspect(path).map(|f| f.state)
}

/// The pid written in the file, if it is a pidfile that names one.
pub fn read_pid(path: &Path) -> Option<i32> {
    inspect(path).ok()?.pid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contents_taken_for_a_pidfile() {
        assert_eq!(parse_strict(b""), Ok(None));
        assert_eq!(parse_strict(b"12345\n"), Ok(Some(12345)));
        assert_eq!(parse_strict(b"12345"), Ok(Some(12345)));
        for bad in [
            &b"\n"[..],
            b"12 34\n",
            b"12345\n\n",
            b"hello\n",
            b"-1\n",
            b" 1\n",
        ] {
            assert_eq!(parse_strict(bad), Err(()), "{bad:?}");
        }
        // A monitor's rewrite in progress: a shorter pid over a longer one.
        assert_eq!(parse_first_line(b"123\n8\n"), Ok(Some(123)));
        assert_eq!(parse_first_line(b"hello\n"), Err(()));
    }
}
