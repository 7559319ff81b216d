//! Advisory file locks: `/proc/locks` (every lock of the machine, and
//! who waits for which) and the `lock:` lines of `/proc/PID/fdinfo/FD`
//! (the locks held through one open file), see proc(5).
//!
//! A `/proc/locks` line reads
//! `7: FLOCK  ADVISORY  WRITE 27877 fe:00:10011987 0 EOF`; a process
//! waiting for lock 7 follows it as `7: -> FLOCK  ADVISORY  WRITE 27883
//! fe:00:10011987 0 EOF`. The pid of a `flock(2)` lock is the process
//! that took it, which may have exited while a process it forked still
//! holds the open file (and so the lock); the `lock:` lines of fdinfo
//! name the fds the lock is really held through.

/// One line of `/proc/locks` (or one `lock:` line of fdinfo).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    /// The lock's number in `/proc/locks`; a waiter has its blocker's.
    pub id: u64,
    /// A `->` line: a process waiting for lock `id`.
    pub waiting: bool,
    /// `FLOCK`, `POSIX`, `OFDLCK`, `LEASE`...
    pub class: String,
    /// `READ` or `WRITE` (`UNLCK` for a lease being broken).
    pub mode: String,
    /// The process that took (or waits for) the lock; -1 for an open
    /// file description lock.
    pub pid: i32,
    /// The device (major, minor) and inode of the locked file.
    pub dev: (u32, u32),
    pub ino: u64,
    /// The locked byte range, as the kernel prints it (`0 EOF`).
    pub range: String,
}

impl Lock {
    /// How a person names the kind of lock: `flock`, `fcntl`...
    pub fn kind_name(&self) -> &'static str {
        match self.class.as_str() {
            "FLOCK" => "flock",
            "POSIX" => "fcntl",
            "OFDLCK" => "fcntl (open file description)",
            "LEASE" => "lease",
            "DELEG" => "delegation",
            _ => "file",
        }
    }

    /// Same lock as `other` (the same line in `/proc/locks` and in an
    /// fdinfo), the numbering aside: fdinfo numbers its own lines.
    pub fn same_as(&self, other: &Lock) -> bool {
        self.class == other.class
            && self.mode == other.mode
            && self.pid == other.pid
            && self.dev == other.dev
            && self.ino == other.ino
            && self.range == other.range
    }
}

/// Parses one line: `ID: [->] CLASS TYPE MODE PID MAJ:MIN:INO START END`.
fn parse(line: &str) -> Option<Lock> {
    let (id, rest) = line.trim().split_once(':')?;
    let id = id.trim().parse().ok()?;
    let mut it = rest.split_whitespace().peekable();
    let waiting = it.next_if_eq(&"->").is_some();
    let class = it.next()?.to_string();
    let _advisory = it.next()?;
    let mode = it.next()?.to_string();
    let pid = it.next()?.parse().ok()?;
    let mut file = it.next()?.split(':');
    let major = u32::from_str_radix(file.next()?, 16).ok()?;
    let minor = u32::from_str_radix(file.next()?, 16).ok()?;
    let ino = file.next()?.parse().ok()?;
    let range = it.collect::<Vec<_>>().join(" ");
    Some(Lock {
        id,
        waiting,
        class,
        mode,
        pid,
        dev: (major, minor),
        ino,
        range,
    })
}

/// Every lock of the machine and every waiter (`/proc/locks`); empty if
/// it cannot be read.
pub fn all() -> Vec<Lock> {
    std::fs::read_to_string("/proc/locks")
        .map(|t| t.lines().filter_map(parse).collect())
        .unwrap_or_default()
}

/// The locks held through fd `fd` of `pid` (the `lock:` lines of its
/// fdinfo); empty if there is none or it cannot be read.
pub fn held_through(pid: i32, fd: i32) -> Vec<Lock> {
    std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}"))
        .map(|t| {
            t.lines()
                .filter_map(|l| l.strip_prefix("lock:"))
                .filter_map(parse)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_holders_and_waiters() {
        let l = parse("7: FLOCK  ADVISORY  WRITE 27877 fe:00:10011987 0 EOF").unwrap();
        assert_eq!(
            (l.id, l.waiting, l.class.as_str(), l.mode.as_str(), l.pid),
            (7, false, "FLOCK", "WRITE", 27877)
        );
        assert_eq!(
            (l.dev, l.ino, l.range.as_str()),
            ((0xfe, 0), 10011987, "0 EOF")
        );
        let w = parse("7: -> FLOCK  ADVISORY  WRITE 27883 fe:00:10011987 0 EOF").unwrap();
        assert!(w.waiting && w.id == 7 && w.pid == 27883);
        let o = parse("12: OFDLCK ADVISORY  READ  -1 08:01:42 100 199").unwrap();
        assert_eq!((o.pid, o.range.as_str()), (-1, "100 199"));
        assert!(l.same_as(&parse("1: FLOCK  ADVISORY  WRITE 27877 fe:00:10011987 0 EOF").unwrap()));
        assert!(parse("garbage").is_none());
    }
}
