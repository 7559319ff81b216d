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
//! The race handled here: a monitor removes its pidfile and then exits;
//! a second one may have opened the old file just before the removal and
//! would lock a file nobody can find any more. After locking, the file
//! at the path must still be the inode that was locked, else the lock is
//! dropped and taken again on the new file.
//!
//! See <https://man7.org/linux/man-pages/man2/fcntl.2.html> (advisory
//! record locking).

use nix::fcntl::{FcntlArg, OFlag, fcntl, open};
use nix::sys::stat::{Mode, fstat, stat};
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

/// A pidfile this process has locked. Dropping it releases the lock
/// (the file stays; see [`Pidfile::remove`]).
#[derive(Debug)]
pub struct Pidfile {
    path: PathBuf,
    fd: OwnedFd,
}

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

/// True when `fd` is still the file at `path` (same device and inode).
fn is_current(fd: &OwnedFd, path: &Path) -> bool {
    match (fstat(fd.as_fd()), stat(path)) {
        (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
        _ => false,
    }
}

fn retry<T>(mut f: impl FnMut() -> nix::Result<T>) -> nix::Result<T> {
    loop {
        match f() {
            Err(nix::errno::Errno::EINTR) => continue,
            r => return r,
        }
    }
}

impl Pidfile {
    /// Opens (creating it, mode 0644 less the umask) and locks `path`
    /// without waiting. `Err(Locked)`-style answers come back as
    /// `Ok(Err(holder))`: the pid of the process that holds the lock.
    pub fn lock(path: &Path) -> io::Result<Result<Pidfile, i32>> {
        loop {
            let fd = retry(|| {
                open(
                    path,
                    OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
                    Mode::from_bits_truncate(0o644),
                )
            })?;
            let fl = whole_file(libc::F_WRLCK as libc::c_short);
            match retry(|| fcntl(fd.as_fd(), FcntlArg::F_SETLK(&fl))) {
                Ok(_) => {}
                Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EACCES) => {
                    match holder_of(&fd)? {
                        Some(pid) => return Ok(Err(pid)),
                        // Released between the two calls: try again.
                        None => continue,
                    }
                }
                Err(e) => return Err(e.into()),
            }
            if is_current(&fd, path) {
                return Ok(Ok(Pidfile {
                    path: path.to_path_buf(),
                    fd,
                }));
            }
            // We locked a file that was removed meanwhile: start over.
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

/// Asks the lock, without taking it, whether a monitor holds `path`.
///
/// Only `F_GETLK` is used, so probing never disturbs a monitor that is
/// starting at the same moment. A pidfile removed while it was being
/// probed is looked at again.
pub fn probe(path: &Path) -> io::Result<LockState> {
    loop {
        let fd = match retry(|| {
            open(
                path,
                OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
                Mode::empty(),
            )
        }) {
            Ok(fd) => fd,
            Err(nix::errno::Errno::ENOENT) => return Ok(LockState::Missing),
            Err(e) => return Err(e.into()),
        };
        // F_GETLK with a write-lock request needs no write access: it
        // only asks which lock would conflict.
        match holder_of(&fd)? {
            Some(pid) => return Ok(LockState::Locked { holder: pid }),
            None if is_current(&fd, path) => return Ok(LockState::Unlocked),
            None => continue,
        }
    }
}

/// The pid written in the file (its first line), if it parses.
pub fn read_pid(path: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().next()?.trim().parse().ok()
}
