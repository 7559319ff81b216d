//! What a process is blocked on: `/proc/PID/syscall` and `/proc/PID/wchan`.
//!
//! `/proc/PID/syscall` (see proc(5)) holds the number and the six
//! arguments of the system call the process sleeps in, `-1` when it is
//! blocked outside one, or `running`. Reading it needs ptrace access to
//! the process (root, or the same user without Yama restrictions).

/// The system call a process is blocked in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    /// The syscall number; `None` when blocked outside a syscall.
    pub nr: Option<i64>,
    /// Its name when known for this architecture (`read`, `wait4`...).
    pub name: Option<&'static str>,
    /// The six raw arguments.
    pub args: [u64; 6],
}

impl Blocked {
    /// The fd the call works on, for calls whose first argument is one.
    pub fn fd(&self) -> Option<i32> {
        let name = self.name?;
        FD_CALLS
            .contains(&name)
            .then(|| self.args[0] as i32)
            .filter(|&fd| fd >= 0)
    }

    /// For `open`/`openat`: the address of the path argument and the
    /// open flags, and for `openat` the directory fd.
    pub fn open_args(&self) -> Option<OpenArgs> {
        match self.name? {
            "open" => Some(OpenArgs {
                dirfd: None,
                path: self.args[0],
                flags: self.args[1] as u32,
            }),
            "openat" => Some(OpenArgs {
                dirfd: Some(self.args[0] as i32),
                path: self.args[1],
                flags: self.args[2] as u32,
            }),
            _ => None,
        }
    }

    /// True for `fcntl(fd, F_SETLKW | F_OFD_SETLKW, ...)`: waiting for a
    /// POSIX or open file description lock.
    pub fn fcntl_lock_wait(&self) -> bool {
        const F_SETLKW: u64 = 7;
        const F_SETLKW64: u64 = 14;
        const F_OFD_SETLKW: u64 = 38;
        self.name == Some("fcntl") && matches!(self.args[1], F_SETLKW | F_SETLKW64 | F_OFD_SETLKW)
    }

    /// `read(3)`, `wait4(-1)`, `syscall 999`: how a person names the call.
    pub fn describe(&self) -> String {
        match (self.name, self.nr) {
            (Some(n), _) if self.fd().is_some() => format!("{n}({})", self.args[0] as i32),
            (Some(n @ ("wait4" | "waitid")), _) => format!("{n}({})", self.args[0] as i32),
            (Some(n), _) => n.to_string(),
            (None, Some(nr)) => format!("syscall {nr}"),
            (None, None) => "no system call".to_string(),
        }
    }
}

/// The arguments of a blocked `open(2)` or `openat(2)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenArgs {
    /// `openat`'s directory fd (`AT_FDCWD` is -100); `None` for `open`.
    pub dirfd: Option<i32>,
    /// The address of the path in the process's memory.
    pub path: u64,
    /// The `open(2)` flags.
    pub flags: u32,
}

/// Calls whose first argument is the fd they block on.
const FD_CALLS: &[&str] = &[
    "read",
    "write",
    "readv",
    "writev",
    "pread64",
    "pwrite64",
    "recvfrom",
    "sendto",
    "recvmsg",
    "sendmsg",
    "accept",
    "accept4",
    "connect",
    "flock",
    "fsync",
    "splice",
    "ioctl",
    "recvmmsg",
    "sendmmsg",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "fcntl",
    "sendfile",
];

/// The blocked syscall of `pid`; `None` if it is running, gone, or not
/// ours to inspect.
pub fn blocked(pid: i32) -> Option<Blocked> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/syscall")).ok()?;
    parse(&text)
}

fn parse(text: &str) -> Option<Blocked> {
    let mut it = text.split_whitespace();
    let first = it.next()?;
    if first == "running" {
        return None;
    }
    let nr: i64 = first.parse().ok()?;
    if nr < 0 {
        return Some(Blocked {
            nr: None,
            name: None,
            args: [0; 6],
        });
    }
    let mut args = [0u64; 6];
    for a in args.iter_mut() {
        let s = it.next().unwrap_or("0x0");
        *a = u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or(0);
    }
    Some(Blocked {
        nr: Some(nr),
        name: name(nr),
        args,
    })
}

/// Names of the calls a process is commonly found blocked in.
#[cfg(target_arch = "x86_64")]
fn name(nr: i64) -> Option<&'static str> {
    Some(match nr {
        0 => "read",
        1 => "write",
        2 => "open",
        7 => "poll",
        16 => "ioctl",
        17 => "pread64",
        18 => "pwrite64",
        19 => "readv",
        20 => "writev",
        23 => "select",
        34 => "pause",
        35 => "nanosleep",
        40 => "sendfile",
        42 => "connect",
        43 => "accept",
        44 => "sendto",
        45 => "recvfrom",
        46 => "sendmsg",
        47 => "recvmsg",
        61 => "wait4",
        72 => "fcntl",
        73 => "flock",
        74 => "fsync",
        128 => "rt_sigtimedwait",
        130 => "rt_sigsuspend",
        202 => "futex",
        230 => "clock_nanosleep",
        232 => "epoll_wait",
        247 => "waitid",
        257 => "openat",
        270 => "pselect6",
        271 => "ppoll",
        275 => "splice",
        281 => "epoll_pwait",
        288 => "accept4",
        299 => "recvmmsg",
        307 => "sendmmsg",
        441 => "epoll_pwait2",
        _ => return None,
    })
}

/// Names of the calls a process is commonly found blocked in.
#[cfg(target_arch = "aarch64")]
fn name(nr: i64) -> Option<&'static str> {
    Some(match nr {
        25 => "fcntl",
        29 => "ioctl",
        32 => "flock",
        56 => "openat",
        63 => "read",
        64 => "write",
        65 => "readv",
        66 => "writev",
        67 => "pread64",
        68 => "pwrite64",
        71 => "sendfile",
        72 => "pselect6",
        73 => "ppoll",
        76 => "splice",
        82 => "fsync",
        95 => "waitid",
        98 => "futex",
        101 => "nanosleep",
        115 => "clock_nanosleep",
        133 => "rt_sigsuspend",
        137 => "rt_sigtimedwait",
        202 => "accept",
        203 => "connect",
        206 => "sendto",
        207 => "recvfrom",
        211 => "sendmsg",
        212 => "recvmsg",
        22 => "epoll_pwait",
        242 => "accept4",
        243 => "recvmmsg",
        260 => "wait4",
        269 => "sendmmsg",
        441 => "epoll_pwait2",
        _ => return None,
    })
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn name(_nr: i64) -> Option<&'static str> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_shapes() {
        assert_eq!(parse("running\n"), None);
        let b = parse("-1 0x7ffd 0x7f00\n").unwrap();
        assert_eq!(b.nr, None);
        assert_eq!(b.describe(), "no system call");
        #[cfg(target_arch = "x86_64")]
        {
            let b = parse("0 0x3 0x7ffd1 0x2000 0x0 0x0 0x0 0x7ffd 0x7f00\n").unwrap();
            assert_eq!(b.fd(), Some(3));
            assert_eq!(b.describe(), "read(3)");
            let w = parse("61 0xffffffffffffffff 0x0 0x0 0x0 0x0 0x0 0x1 0x2\n").unwrap();
            assert_eq!(w.describe(), "wait4(-1)");
            assert_eq!(w.fd(), None);
        }
    }
}
