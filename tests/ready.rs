//! Readiness checks (`sexton::supervise::ready`) driven by a minimal
//! event loop like the supervisor's: one poll over the check's fds with
//! its deadline, the check command's status handed on by pid, then a
//! step. Real sockets, listeners and child processes; no sleeps.

use nix::poll::{PollFd, PollTimeout, poll};
use sexton::supervise::config::{LogPattern, Ready, resolve_user};
use sexton::supervise::ready::{Progress, ReadyCheck, Target, Timing};
use std::ffi::OsString;
use std::os::fd::BorrowedFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixDatagram};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(30);

/// The tests of this file run one at a time: a check command is a tree,
/// and a tree's kill reaps the zombie children of this process that
/// started after its leader (members it adopted, as far as it can tell),
/// which would include another test's children (and a `wait` for them
/// would then fail); a fork by another test could also hold a copy of a
/// socket whose closing a test checks.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sexton-ready-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One turn of the loop: poll the check's fds until its deadline (at most
/// until `limit`), hand on the check command's status if it has exited
/// (reaped by pid, as the supervisor's `wait4(-1)` would), step.
fn turn(check: &mut ReadyCheck, limit: Instant) -> Progress {
    let now = Instant::now();
    let until = check.deadline().map_or(limit, |d| d.min(limit));
    let fds = check.poll_fds();
    // SAFETY: the fds belong to the check, which outlives this poll.
    let mut pfds: Vec<PollFd<'_>> = fds
        .iter()
        .map(|&(fd, ev)| PollFd::new(unsafe { BorrowedFd::borrow_raw(fd) }, ev))
        .collect();
    let ms = until
        .saturating_duration_since(now)
        .as_micros()
        .div_ceil(1000)
        .min(60_000) as u16;
    let _ = poll(&mut pfds, PollTimeout::from(ms));
    drop(pfds);
    if let Some(pid) = check.child_pid()
        && let Ok(Some((status, _))) = sexton::sys::wait4(pid, true)
    {
        check.on_child_exit(status);
    }
    check.step(Instant::now())
}

/// Turns the loop until `done` says so; panics after the deadline. The
/// loop also wakes every 50 ms without cause, so `done` sees states in
/// between the check's own events (a step with nothing to do is
/// harmless, and that is checked too).
fn drive(
    check: &mut ReadyCheck,
    what: &str,
    mut done: impl FnMut(&ReadyCheck, &Progress) -> bool,
) -> Progress {
    let limit = Instant::now() + DEADLINE;
    loop {
        let p = turn(check, limit.min(Instant::now() + Duration::from_millis(50)));
        if done(check, &p) {
            return p;
        }
        assert!(
            Instant::now() < limit,
            "timed out waiting for {what}; last {p:?}, detail {:?}",
            check.detail()
        );
    }
}

/// Turns the loop for `span` and returns every progress seen.
fn drive_for(check: &mut ReadyCheck, span: Duration) -> Vec<Progress> {
    let limit = Instant::now() + span;
    let mut seen = Vec::new();
    while Instant::now() < limit {
        seen.push(turn(check, limit));
    }
    seen
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 2..];
            rest.chars().next()
        })
        .is_some_and(|st| st != 'Z' && st != 'X')
}

fn cmd(words: &[&str]) -> Ready {
    Ready::Cmd(words.iter().map(OsString::from).collect())
}

fn fast() -> Timing {
    Timing {
        tcp_retry: Duration::from_millis(20),
        cmd_retry: Duration::from_millis(20),
        ..Timing::default()
    }
}

// ------------------------------------------------------------------- tcp

/// A port nothing listens on: bound once to find a free one, then closed.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn tcp_is_ready_once_a_listener_appears() {
    let _serial = serial();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut check =
        ReadyCheck::with_timing(&Ready::Tcp(addr.clone()), &Target::default(), fast()).unwrap();
    assert_eq!(check.describe(), format!("tcp {addr}"));
    assert!(check.env().is_empty());
    // Negative control: refused, and still trying, while nothing listens.
    let seen = drive_for(&mut check, Duration::from_millis(300));
    assert!(seen.iter().all(|p| *p == Progress::Pending), "{seen:?}");
    assert!(seen.len() >= 3, "several attempts: {seen:?}");
    assert_eq!(check.detail(), Some("connection refused"));
    let listener = std::net::TcpListener::bind(&addr).unwrap();
    let p = drive(&mut check, "tcp ready", |_, p| *p != Progress::Pending);
    assert_eq!(p, Progress::Ready);
    assert!(check.is_ready());
    // Ready stays ready, with nothing left to wait on.
    assert!(check.poll_fds().is_empty());
    assert_eq!(check.deadline(), None);
    assert_eq!(check.step(Instant::now()), Progress::Ready);
    // The connection was made (and closed): the listener has it queued.
    listener.set_nonblocking(true).unwrap();
    assert!(listener.accept().is_ok(), "the check connected");
}

#[test]
fn tcp_name_is_resolved_when_the_check_is_built() {
    let _serial = serial();
    let port = free_port();
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let mut check = ReadyCheck::with_timing(
        &Ready::Tcp(format!("localhost:{port}")),
        &Target::default(),
        fast(),
    )
    .unwrap();
    // localhost may also resolve to ::1, where nothing listens: the
    // check tries every address and one answer is enough.
    let p = drive(&mut check, "tcp ready", |_, p| *p != Progress::Pending);
    assert_eq!(p, Progress::Ready);
    drop(listener);
}

// ------------------------------------------------------------------- cmd

#[test]
fn cmd_is_ready_once_the_command_exits_zero() {
    let _serial = serial();
    let dir = Scratch::new("cmd");
    let flag = dir.path("flag");
    let ready = cmd(&["test", "-e", flag.to_str().unwrap()]);
    let mut check = ReadyCheck::with_timing(&ready, &Target::default(), fast()).unwrap();
    assert_eq!(check.describe(), format!("cmd test -e {}", flag.display()));
    // Negative control: the command fails again and again (each status
    // handed on by pid) while the file is missing.
    let mut runs = std::collections::HashSet::new();
    drive(&mut check, "three failed runs", |c, p| {
        assert_eq!(*p, Progress::Pending);
        if let Some(pid) = c.child_pid() {
            runs.insert(pid);
        }
        runs.len() >= 3 && c.detail().is_some()
    });
    assert_eq!(check.detail(), Some("exited with status 1"));
    std::fs::write(&flag, "").unwrap();
    let p = drive(&mut check, "cmd ready", |_, p| *p != Progress::Pending);
    assert_eq!(p, Progress::Ready);
    assert_eq!(check.child_pid(), None);
    assert!(check.poll_fds().is_empty());
    assert_eq!(check.deadline(), None);
    for pid in runs {
        assert!(!alive(pid), "check run {pid} left");
    }
}

#[test]
fn cmd_reaps_by_itself_when_nobody_hands_the_status_on() {
    let _serial = serial();
    let mut check = ReadyCheck::with_timing(&cmd(&["true"]), &Target::default(), fast()).unwrap();
    let limit = Instant::now() + DEADLINE;
    let p = loop {
        // No reaper here: the step reaps its command by pid.
        let fds = check.poll_fds();
        let mut pfds: Vec<PollFd<'_>> = fds
            .iter()
            .map(|&(fd, ev)| PollFd::new(unsafe { BorrowedFd::borrow_raw(fd) }, ev))
            .collect();
        let _ = poll(&mut pfds, PollTimeout::from(100u16));
        drop(pfds);
        let p = check.step(Instant::now());
        if p != Progress::Pending {
            break p;
        }
        assert!(Instant::now() < limit, "timed out");
    };
    assert_eq!(p, Progress::Ready);
}

#[test]
fn cmd_runs_as_the_user_in_the_directory_with_the_environment() {
    let _serial = serial();
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to run a check as another user");
        return;
    }
    let dir = Scratch::new("cmd-user");
    let nobody = resolve_user("nobody").expect("user nobody");
    let script = format!(
        "test \"$(id -u)\" = {uid} && test \"$(id -g)\" = {gid} && test \"$(id -G)\" = \"{groups}\" && test \"$PWD\" = {dir} && test \"$CHECK_VAR\" = yes",
        uid = nobody.uid,
        gid = nobody.gid,
        groups = nobody
            .groups
            .iter()
            .map(|g| g.to_string())
            .collect::<Vec<_>>()
            .join(" "),
        dir = dir.0.display(),
    );
    let ready = cmd(&["sh", "-c", &script]);
    let target = Target {
        cwd: Some(dir.0.clone()),
        env: vec![("CHECK_VAR".into(), "yes".into())],
        user: Some(nobody.clone()),
        ..Target::default()
    };
    let mut check = ReadyCheck::with_timing(&ready, &target, fast()).unwrap();
    assert_eq!(
        drive(&mut check, "cmd ready", |_, p| *p != Progress::Pending),
        Progress::Ready
    );
    // Negative controls: without the user, the directory or the
    // variable, the same script never succeeds.
    for t in [
        Target {
            user: None,
            ..target.clone()
        },
        Target {
            cwd: None,
            ..target.clone()
        },
        Target {
            env: Vec::new(),
            ..target.clone()
        },
    ] {
        let mut check = ReadyCheck::with_timing(&ready, &t, fast()).unwrap();
        let seen = drive_for(&mut check, Duration::from_millis(300));
        assert!(seen.iter().all(|p| *p == Progress::Pending), "{seen:?}");
        assert_eq!(check.detail(), Some("exited with status 1"), "{t:?}");
    }
}

#[test]
fn cmd_still_running_after_its_timeout_is_killed_and_retried() {
    let _serial = serial();
    let dir = Scratch::new("cmd-timeout");
    let pids = dir.path("pids");
    let script = format!("echo $$ >> {}; exec sleep 600", pids.display());
    let timing = Timing {
        cmd_timeout: Duration::from_millis(300),
        ..fast()
    };
    let mut check =
        ReadyCheck::with_timing(&cmd(&["sh", "-c", &script]), &Target::default(), timing).unwrap();
    let read = || -> Vec<i32> {
        std::fs::read_to_string(&pids)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.parse().ok())
            .collect()
    };
    drive(&mut check, "a second run", |c, p| {
        assert_eq!(*p, Progress::Pending);
        let runs = read();
        runs.len() >= 2 && c.child_pid().is_some_and(|pid| runs.contains(&pid))
    });
    assert_eq!(check.detail(), Some("still running after 300ms: killed"));
    let runs = read();
    assert!(!alive(runs[0]), "the timed-out run is killed");
    // Dropping the check kills the run in progress.
    let current = check.child_pid().expect("a run in progress");
    assert!(alive(current));
    drop(check);
    assert!(!alive(current), "drop kills the running check");
    for pid in read() {
        assert!(!alive(pid), "{pid} left");
    }
}

#[test]
fn cmd_that_cannot_start_fails() {
    let _serial = serial();
    let mut check = ReadyCheck::new(&cmd(&["no-such-check-command"]), &Target::default()).unwrap();
    let p = drive(&mut check, "a verdict", |_, p| *p != Progress::Pending);
    assert_eq!(
        p,
        Progress::Failed("cmd: no-such-check-command: command not found".into())
    );
    assert_eq!(check.step(Instant::now()), p, "failed stays failed");
    assert!(check.poll_fds().is_empty());
}

// ------------------------------------------------------------------- log

#[test]
fn log_pattern_matches_output_lines() {
    let _serial = serial();
    let re = regex::Regex::new(r"^listening on \d+$").unwrap();
    let mut check = ReadyCheck::new(&Ready::Log(LogPattern(re)), &Target::default()).unwrap();
    assert!(check.poll_fds().is_empty());
    assert_eq!(check.deadline(), None);
    assert_eq!(check.step(Instant::now()), Progress::Pending);
    // Negative controls: near misses.
    for line in [
        &b"starting\n"[..],
        b"listening on port 80\n",
        b"  listening on 80\n",
        b"listening on 80 now\n",
        b"listening on \xff80\n",
    ] {
        assert_eq!(
            check.on_line(line),
            Progress::Pending,
            "{:?}",
            String::from_utf8_lossy(line)
        );
    }
    assert!(!check.is_ready());
    // The newline (and a CR before it) is not part of the line.
    assert_eq!(check.on_line(b"listening on 8080\r\n"), Progress::Ready);
    assert_eq!(check.step(Instant::now()), Progress::Ready);
    assert_eq!(check.on_line(b"anything"), Progress::Ready);

    let re = regex::Regex::new("ready").unwrap();
    let mut check = ReadyCheck::new(&Ready::Log(LogPattern(re)), &Target::default()).unwrap();
    assert_eq!(
        check.on_line(b"\xfe\xff server is ready"),
        Progress::Ready,
        "invalid UTF-8 around a match"
    );
}

// ---------------------------------------------------------------- notify

/// The abstract socket address from NOTIFY_SOCKET.
fn notify_addr(check: &ReadyCheck) -> (String, UnixAddr) {
    let env = check.env();
    assert_eq!(env.len(), 1);
    assert_eq!(env[0].0, "NOTIFY_SOCKET");
    let v = env[0].1.to_str().unwrap().to_string();
    let name = v.strip_prefix('@').expect("an abstract address");
    assert!(name.starts_with("sexton-notify-"), "{v}");
    (
        v.clone(),
        UnixAddr::from_abstract_name(name.as_bytes()).unwrap(),
    )
}

fn send(addr: &UnixAddr, msg: &[u8]) {
    let s = UnixDatagram::unbound().unwrap();
    s.send_to_addr(msg, addr).unwrap();
}

#[test]
fn notify_ready_from_a_real_client() {
    let _serial = serial();
    let mut check = ReadyCheck::new(&Ready::Notify, &Target::default()).unwrap();
    let (var, addr) = notify_addr(&check);
    assert_eq!(check.poll_fds().len(), 1);
    // Nothing sent yet: pending.
    let seen = drive_for(&mut check, Duration::from_millis(100));
    assert!(seen.iter().all(|p| *p == Progress::Pending));
    // Status, and assignments that are not READY=1, do not make it ready.
    send(&addr, b"STATUS=loading data\nMAINPID=1\nREADY=0\nXREADY=1");
    drive(&mut check, "the status", |c, p| {
        assert_eq!(*p, Progress::Pending);
        c.status_text() == Some("loading data")
    });
    // sd_notify as a program does it, from python, with the variable.
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import os, socket\n\
             a = os.environ['NOTIFY_SOCKET']\n\
             a = '\\0' + a[1:] if a.startswith('@') else a\n\
             s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
             s.sendto(b'STATUS=serving\\nREADY=1\\n', a)\n",
        )
        .env("NOTIFY_SOCKET", &var)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = drive(&mut check, "ready", |_, p| *p != Progress::Pending);
    assert_eq!(p, Progress::Ready);
    assert_eq!(check.status_text(), Some("serving"));
    // Later status lines are still read.
    send(&addr, b"STATUS=busy");
    drive(&mut check, "a later status", |c, p| {
        assert_eq!(*p, Progress::Ready);
        c.status_text() == Some("busy")
    });
    // The socket goes with the check.
    drop(check);
    let s = UnixDatagram::unbound().unwrap();
    assert!(
        s.send_to_addr(b"READY=1", &addr).is_err(),
        "socket still bound"
    );
}

/// Forks a child that takes `uid` (and the same gid) when given, then
/// sends `msg` to `addr`. Returns once the child has sent it (the
/// datagram is then queued, or was refused): the child says so on a
/// pipe, then exits.
fn send_as(uid: Option<u32>, addr: &UnixAddr, msg: &[u8]) {
    use std::io::Read;
    // Everything the child needs is prepared before the fork; it makes
    // raw system calls only.
    let sock = UnixDatagram::unbound().unwrap();
    let name = addr.as_abstract_name().unwrap().to_vec();
    let raddr = rustix::net::SocketAddrUnix::new_abstract_name(&name).unwrap();
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    // SAFETY: the child only makes system calls (setgid, setuid, sendto,
    // write, exit) on data prepared above.
    match unsafe { libc::fork() } {
        0 => {
            let mut ok = true;
            if let Some(uid) = uid {
                ok &= rustix::thread::set_thread_gid(rustix::thread::Gid::from_raw(uid)).is_ok();
                ok &= rustix::thread::set_thread_uid(rustix::thread::Uid::from_raw(uid)).is_ok();
            }
            ok &= rustix::net::sendto(&sock, msg, rustix::net::SendFlags::empty(), &raddr).is_ok();
            let _ = rustix::io::write(&w, if ok { b"y" } else { b"n" });
            // SAFETY: _exit ends the child without running anything of
            // the parent's.
            unsafe { libc::_exit(0) }
        }
        pid if pid > 0 => {
            drop(w);
            let mut said = Vec::new();
            std::fs::File::from(r).read_to_end(&mut said).unwrap();
            let _ = sexton::sys::wait4(pid, false);
            assert_eq!(said, b"y", "the sender failed");
        }
        _ => panic!("fork failed"),
    }
}

#[test]
fn notify_refuses_a_sender_of_another_uid() {
    let _serial = serial();
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to send as another uid");
        return;
    }
    let mut check = ReadyCheck::new(&Ready::Notify, &Target::default()).unwrap();
    let (_, addr) = notify_addr(&check);
    send_as(Some(65534), &addr, b"STATUS=impostor\nREADY=1");
    drive(&mut check, "the message read", |c, p| {
        assert_eq!(*p, Progress::Pending);
        c.detail().is_some()
    });
    assert_eq!(check.detail(), Some("ignored a message from uid 65534"));
    assert_eq!(check.status_text(), None);
    // Negative control: the same sender, without the setuid, is heard.
    send_as(None, &addr, b"READY=1");
    assert_eq!(
        drive(&mut check, "ready", |_, p| *p != Progress::Pending),
        Progress::Ready
    );

    // A service of its own user: that uid and root are heard, others not.
    let nobody = resolve_user("nobody").unwrap();
    let target = Target {
        user: Some(nobody),
        ..Target::default()
    };
    let mut check = ReadyCheck::new(&Ready::Notify, &target).unwrap();
    let (_, addr) = notify_addr(&check);
    send_as(Some(1), &addr, b"READY=1");
    drive(&mut check, "the message read", |c, p| {
        assert_eq!(*p, Progress::Pending);
        c.detail().is_some()
    });
    assert_eq!(check.detail(), Some("ignored a message from uid 1"));
    send_as(Some(65534), &addr, b"READY=1");
    assert_eq!(
        drive(&mut check, "ready", |_, p| *p != Progress::Pending),
        Progress::Ready
    );
}

#[test]
fn notify_sockets_are_unique_and_close_on_exec() {
    let _serial = serial();
    let a = ReadyCheck::new(&Ready::Notify, &Target::default()).unwrap();
    let b = ReadyCheck::new(&Ready::Notify, &Target::default()).unwrap();
    assert_ne!(a.env(), b.env());
    let fd = a.poll_fds()[0].0;
    let flags = nix::fcntl::fcntl(
        unsafe { BorrowedFd::borrow_raw(fd) },
        nix::fcntl::FcntlArg::F_GETFD,
    )
    .unwrap();
    assert!(flags & libc::FD_CLOEXEC != 0);
}

// ----------------------------------------------------------------- spec

#[test]
fn daemon_ready_specs_parse() {
    let _serial = serial();
    use sexton::supervise::ready::parse_spec;
    assert_eq!(parse_spec("notify"), Ok(Ready::Notify));
    assert_eq!(
        parse_spec("tcp:127.0.0.1:80"),
        Ok(Ready::Tcp("127.0.0.1:80".into()))
    );
    assert_eq!(
        parse_spec("tcp:[::1]:80"),
        Ok(Ready::Tcp("[::1]:80".into()))
    );
    assert_eq!(
        parse_spec("cmd:test -e '/tmp/a b'"),
        Ok(cmd(&["test", "-e", "/tmp/a b"]))
    );
    match parse_spec("log:^ready: \\d+$") {
        Ok(Ready::Log(p)) => assert_eq!(p.0.as_str(), "^ready: \\d+$"),
        other => panic!("{other:?}"),
    }
    for bad in [
        "",
        "notify:",
        "tcp:80",
        "tcp:host:0",
        "tcp::80",
        "cmd:",
        "cmd:'open",
        "log:",
        "log:(",
        "http:x",
    ] {
        assert!(parse_spec(bad).is_err(), "{bad}");
    }
}
