//! `sexton daemon`: daemonization, the locked pidfile, the monitor
//! (defect D9), and `--respawn` (D10).
//!
//! Every check reads real /proc state of the started processes; waits
//! poll with a generous deadline. Each test stops what it started in a
//! Drop guard, even when it fails.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const SEXTON: &str = env!("CARGO_BIN_EXE_sexton");
const DEADLINE: Duration = Duration::from_secs(30);

/// Starts a program from a deliberately dirty environment, then execs
/// it: cwd kept (argv[1]), umask 077, an extra inheritable fd, signals
/// blocked (USR1, TERM, CHLD) and ignored (HUP, INT, USR2; python also
/// leaves SIGPIPE ignored). Writes its pid (which the exec keeps) to
/// $DIRTY_PIDFILE when set.
const DIRTY: &str = r#"
import os, signal, sys
os.umask(0o077)
extra = os.open("/dev/null", os.O_RDONLY)
os.set_inheritable(extra, True)
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1, signal.SIGTERM, signal.SIGCHLD])
for s in (signal.SIGHUP, signal.SIGINT, signal.SIGUSR2):
    signal.signal(s, signal.SIG_IGN)
os.chdir(sys.argv[1])
if os.environ.get("DIRTY_PIDFILE"):
    with open(os.environ["DIRTY_PIDFILE"], "w") as f:
        f.write(str(os.getpid()))
os.execv(sys.argv[2], sys.argv[2:])
"#;

// ---------------------------------------------------------------- helpers

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sexton-daemon-{name}-{}-{}",
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

/// Stops the daemon on a pidfile when dropped: `--stop` first, then
/// SIGKILL to every process it recorded that is still the same process.
struct Guard {
    pidfile: PathBuf,
    pids: Vec<(i32, u64)>,
}

impl Guard {
    fn new(pidfile: &Path) -> Guard {
        Guard {
            pidfile: pidfile.to_path_buf(),
            pids: Vec::new(),
        }
    }
    fn track(&mut self, pid: i32) {
        if let Some(st) = stat(pid) {
            self.pids.push((pid, st.start));
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = Command::new(SEXTON)
            .args(["daemon", "--stop", "--timeout", "1s", "--pidfile"])
            .arg(&self.pidfile)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        for &(pid, start) in &self.pids {
            if stat(pid).is_some_and(|s| s.start == start) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

/// A child process killed and reaped on drop.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sexton(args: &[&str]) -> Output {
    Command::new(SEXTON)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run sexton")
}

fn daemon(args: &[&str]) -> Output {
    let mut all = vec!["daemon"];
    all.extend_from_slice(args);
    sexton(&all)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The fields of /proc/PID/stat the tests need.
#[derive(Debug, Clone, Copy)]
struct Stat {
    state: char,
    ppid: i32,
    pgid: i32,
    sid: i32,
    tty_nr: i64,
    start: u64,
}

fn stat(pid: i32) -> Option<Stat> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        state: f[0].chars().next()?,
        ppid: f[1].parse().ok()?,
        pgid: f[2].parse().ok()?,
        sid: f[3].parse().ok()?,
        tty_nr: f[4].parse().ok()?,
        start: f[19].parse().ok()?,
    })
}

/// Alive: present and not a zombie.
fn alive(pid: i32) -> bool {
    stat(pid).is_some_and(|s| s.state != 'Z' && s.state != 'X')
}

fn status_fields(pid: i32) -> HashMap<String, String> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

/// Waits until `pid` has finished exec'ing `comm`. The kernel sets the
/// new name after it has closed the close-on-exec fds, whereas the exe
/// link changes (and the spawner's exec-error pipe closes) before that.
fn wait_exec(pid: i32, comm: &str) {
    poll("exec to complete", || {
        let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let name = &s[s.find('(')? + 1..s.rfind(')')?];
        (name == comm).then_some(())
    });
}

fn fds(pid: i32) -> Vec<(i32, String)> {
    let mut v: Vec<(i32, String)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let n = e.file_name().to_str()?.parse().ok()?;
                    let target = std::fs::read_link(e.path()).ok()?;
                    Some((n, target.to_string_lossy().into_owned()))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// Who holds a POSIX lock on the file (`F_GETLK`), asked independently
/// of sexton's own code.
fn lock_holder(path: &Path) -> Option<i32> {
    use std::os::fd::AsFd;
    let f = std::fs::File::open(path).ok()?;
    // SAFETY: flock is plain old data.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    nix::fcntl::fcntl(f.as_fd(), nix::fcntl::FcntlArg::F_GETLK(&mut fl)).ok()?;
    (fl.l_type != libc::F_UNLCK as libc::c_short).then_some(fl.l_pid)
}

/// Starts a daemon and returns (program pid, monitor pid) once the
/// pidfile names it.
fn start(guard: &mut Guard, args: &[&str]) -> (i32, i32) {
    let mut all = vec!["--pidfile", guard.pidfile.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = daemon(&all);
    assert!(
        out.status.success(),
        "start failed: {:?} {}",
        out.status,
        text(&out.stderr)
    );
    let pid = read_pid(&guard.pidfile).expect("pidfile names the program once start returns");
    // The monitor is the pidfile lock's holder; the program's parent is
    // the worker below it (its own process group), which runs the tree.
    let monitor = lock_holder(&guard.pidfile).expect("the monitor holds the lock");
    let worker = stat(pid).expect("program alive").ppid;
    assert_eq!(
        stat(worker).map(|s| s.ppid),
        Some(monitor),
        "worker under the monitor"
    );
    guard.track(pid);
    guard.track(worker);
    guard.track(monitor);
    (pid, monitor)
}

fn bit(mask_hex: &str, sig: i32) -> bool {
    u64::from_str_radix(mask_hex, 16).unwrap() & (1 << (sig - 1)) != 0
}

/// Everything that is wrong with `pid` as a daemon; empty when it is a
/// proper one. `stdio` is what fds 0, 1, 2 must point at.
fn daemon_defects(pid: i32, stdio: [&str; 3]) -> Vec<String> {
    let mut bad = Vec::new();
    let st = stat(pid).expect("probe alive");
    let me = stat(std::process::id() as i32).unwrap();
    if st.sid == me.sid {
        bad.push(format!("still in the caller's session {}", st.sid));
    }
    if st.sid == pid {
        bad.push("session leader (could acquire a terminal)".into());
    }
    if st.tty_nr != 0 {
        bad.push(format!("controlling terminal {}", st.tty_nr));
    }
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
    if cwd != Path::new("/") {
        bad.push(format!("cwd {}", cwd.display()));
    }
    let s = status_fields(pid);
    if s["Umask"] != "0022" {
        bad.push(format!("umask {}", s["Umask"]));
    }
    if !s["SigBlk"].trim_start_matches('0').is_empty() {
        bad.push(format!("blocked signals {}", s["SigBlk"]));
    }
    if !s["SigIgn"].trim_start_matches('0').is_empty() {
        bad.push(format!("ignored signals {}", s["SigIgn"]));
    }
    let fds = fds(pid);
    let numbers: Vec<i32> = fds.iter().map(|f| f.0).collect();
    if numbers != [0, 1, 2] {
        bad.push(format!("fds {numbers:?}: {fds:?}"));
    }
    for (fd, target) in &fds {
        if (*fd as usize) < 3 && target != stdio[*fd as usize] {
            bad.push(format!("fd {fd} -> {target}"));
        }
    }
    bad
}

// ------------------------------------------------------------------ tests

/// The probe (`sleep`, which changes nothing of what it inherits) is
/// started by sexton from a dirty environment inside a pseudo-terminal
/// (`script`), and inspected through /proc. The negative control is the
/// same program started from the same environment without sexton: every
/// check must fire on it.
#[test]
fn d9_daemon_is_clean_even_from_a_dirty_start() {
    let dir = Scratch::new("clean");
    let dirty = dir.path("dirty.py");
    std::fs::write(&dirty, DIRTY).unwrap();
    let pidfile = dir.path("probe.pid");
    let mut guard = Guard::new(&pidfile);
    let inner = format!(
        "python3 {} {} {SEXTON} daemon --pidfile {} -- /bin/sleep 600",
        dirty.display(),
        dir.0.display(),
        pidfile.display()
    );
    let out = Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stdout));
    let pid = read_pid(&pidfile).expect("pidfile written");
    guard.track(pid);
    let monitor = stat(pid).unwrap().ppid;
    guard.track(monitor);
    // `script` has exited and hung up its terminal: the daemon lives on.
    assert!(alive(pid));
    wait_exec(pid, "sleep");
    let defects = daemon_defects(pid, ["/dev/null"; 3]);
    assert!(defects.is_empty(), "daemon defects: {defects:?}");
    // In the monitor's session, whose leader (the intermediate child) is
    // gone.
    assert_eq!(stat(pid).unwrap().sid, stat(monitor).unwrap().sid);
    // Its own process group, so a signal to the group reaches its
    // children and nothing of the monitor.
    assert_eq!(stat(pid).unwrap().pgid, pid);

    // Negative control: the same start without sexton.
    let raw_pid = dir.path("raw.pid");
    // `exec`: whatever shell `script` runs ($SHELL), the probe replaces
    // it and so is the session leader `script` made.
    let inner = format!(
        "exec python3 {} {} /bin/sleep 600",
        dirty.display(),
        dir.0.display()
    );
    let _raw = KillOnDrop(
        Command::new("script")
            .args(["-qec", &inner, "/dev/null"])
            .env("DIRTY_PIDFILE", &raw_pid)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let raw = poll("the raw probe", || read_pid(&raw_pid));
    wait_exec(raw, "sleep");
    let raw_defects = daemon_defects(raw, ["/dev/null"; 3]).join("; ");
    let _kill_raw = RawKill(raw);
    for expected in [
        "session leader",
        "controlling terminal",
        "cwd",
        "umask 0077",
        "blocked signals",
        "ignored signals",
        "fds",
    ] {
        assert!(
            raw_defects.contains(expected),
            "negative control misses {expected:?}: {raw_defects}"
        );
    }
}

/// Kills one pid on drop (the negative control's probe).
struct RawKill(i32);

impl Drop for RawKill {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

#[test]
fn d9_pidfile_holds_the_pid_and_the_monitor_holds_its_lock() {
    let dir = Scratch::new("lock");
    let pidfile = dir.path("d.pid");
    let mut guard = Guard::new(&pidfile);
    let (pid, monitor) = start(&mut guard, &["--", "sleep", "600"]);
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap(),
        format!("{pid}\n")
    );
    assert_eq!(lock_holder(&pidfile), Some(monitor));
    assert_ne!(monitor, std::process::id() as i32);
    // The program does not hold the pidfile open.
    assert!(fds(pid).iter().all(|(_, t)| !t.ends_with("d.pid")));
    let out = daemon(&["--status", "--pidfile", pidfile.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains(&format!("pid {pid}")));

    let out = daemon(&["--stop", "--pidfile", pidfile.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // When --stop returns: lock released, file gone, program gone.
    assert!(!pidfile.exists());
    assert!(!alive(pid));
    assert!(!alive(monitor));
    let out = daemon(&["--status", "--pidfile", pidfile.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    // --stop again: nothing to do, still success.
    let out = daemon(&["--stop", "--pidfile", pidfile.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("not running"));
}

/// A pidfile left behind names a pid that now belongs to an unrelated
/// live process: it is reported as stale, and --stop leaves that process
/// alone. The negative control is the lock check itself: the same file
/// held by a monitor reports running.
#[test]
fn d9_stale_pidfile_naming_a_live_process_is_not_running() {
    let dir = Scratch::new("stale");
    let pidfile = dir.path("d.pid");
    let mut innocent = KillOnDrop(Command::new("sleep").arg("600").spawn().unwrap());
    let innocent_pid = innocent.0.id() as i32;
    std::fs::write(&pidfile, format!("{innocent_pid}\n")).unwrap();

    let out = daemon(&["--status", "--pidfile", pidfile.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("stale"));
    let out = daemon(&[
        "--stop",
        "--timeout",
        "1s",
        "--pidfile",
        pidfile.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("not running"));
    assert!(
        innocent.0.try_wait().unwrap().is_none(),
        "innocent process was killed"
    );
    assert!(alive(innocent_pid));

    // A new daemon takes the stale file over.
    let mut guard = Guard::new(&pidfile);
    let (pid, _) = start(&mut guard, &["--", "sleep", "600"]);
    assert_ne!(pid, innocent_pid);
    let out = daemon(&["--status", "--pidfile", pidfile.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let out = daemon(&["--stop", "--pidfile", pidfile.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(!alive(pid));
    assert!(
        alive(innocent_pid),
        "stopping the daemon hit the innocent process"
    );
}

/// Two daemons on one pidfile: the second refuses. Then several started
/// at the same instant: exactly one wins the lock.
#[test]
fn d9_second_daemon_on_one_pidfile_refuses() {
    let dir = Scratch::new("twice");
    let pidfile = dir.path("d.pid");
    let mut guard = Guard::new(&pidfile);
    let (pid, monitor) = start(&mut guard, &["--", "sleep", "600"]);
    let marker = dir.path("second-ran");
    let out = daemon(&[
        "--pidfile",
        pidfile.to_str().unwrap(),
        "--",
        "touch",
        marker.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.starts_with("sexton: daemon: "), "{err}");
    assert!(
        err.contains("already running") && err.contains(&monitor.to_string()),
        "{err}"
    );
    assert!(!marker.exists(), "the second program ran");
    assert_eq!(read_pid(&pidfile), Some(pid));
    assert!(alive(pid));
    drop(guard);
    assert!(!alive(pid));

    // The race: N starts at once on a fresh pidfile.
    let race = dir.path("race.pid");
    let mut guard = Guard::new(&race);
    let children: Vec<Child> = (0..4)
        .map(|_| {
            Command::new(SEXTON)
                .args([
                    "daemon",
                    "--pidfile",
                    race.to_str().unwrap(),
                    "--",
                    "sleep",
                    "600",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    if let Some(p) = read_pid(&race) {
        guard.track(p);
    }
    let winners = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(
        winners,
        1,
        "{:?}",
        outs.iter().map(|o| text(&o.stderr)).collect::<Vec<_>>()
    );
    for o in outs.iter().filter(|o| !o.status.success()) {
        assert!(
            text(&o.stderr).contains("already running"),
            "{}",
            text(&o.stderr)
        );
    }
    // Only the winner's program runs: no other `sleep` has a parent
    // started on this pidfile.
    let race_s = race.to_str().unwrap().to_string();
    let running: Vec<i32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| {
            let Some(st) = stat(p) else { return false };
            let parent = std::fs::read(format!("/proc/{}/cmdline", st.ppid)).unwrap_or_default();
            alive(p)
                && text(&parent).contains(&race_s)
                && std::fs::read_link(format!("/proc/{p}/exe"))
                    .is_ok_and(|e| e.to_string_lossy().ends_with("/sleep"))
        })
        .collect();
    assert_eq!(running, vec![read_pid(&race).unwrap()]);
}

#[test]
fn d9_start_failures_exit_non_zero_with_the_reason() {
    let dir = Scratch::new("fail");
    let pidfile = dir.path("d.pid");
    let p = pidfile.to_str().unwrap();

    let out = daemon(&["--pidfile", p, "--", "no-such-program-here"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(text(&out.stderr).contains("no-such-program-here: command not found"));
    assert!(!pidfile.exists(), "a failed start left its pidfile");

    let script = dir.path("not-executable.sh");
    std::fs::write(&script, "#!/bin/sh\n").unwrap();
    let out = daemon(&["--pidfile", p, "--", script.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(126), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("permission denied"));

    let out = daemon(&["--pidfile", "/nonexistent-dir/d.pid", "--", "sleep", "600"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot use pidfile /nonexistent-dir/d.pid"));

    let out = daemon(&["--chdir", "/nonexistent-dir", "--", "sleep", "600"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("/nonexistent-dir"));

    // Usage errors: exit 2, one line and a hint.
    for args in [
        &[][..],
        &["--stop"][..],
        &["--status"][..],
        &["--umask", "999", "--", "true"][..],
        &["--respawn-limit", "3", "--", "true"][..],
        &["--stop", "--pidfile", p, "--", "true"][..],
        &["--timeout", "1s", "--pidfile", p, "--", "true"][..],
    ] {
        let out = daemon(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(text(&out.stderr).starts_with("sexton: usage: "), "{args:?}");
    }
}

#[test]
fn d9_stdio_goes_to_the_given_files_relative_to_the_caller() {
    let dir = Scratch::new("stdio");
    let pidfile = dir.path("d.pid");
    let mut guard = Guard::new(&pidfile);
    let out = Command::new(SEXTON)
        .current_dir(&dir.0)
        .args([
            "daemon",
            "--pidfile",
            "d.pid",
            "--stdout",
            "out.txt",
            "--stderr",
            "err.txt",
            "--",
            "sh",
            "-c",
            "echo to-out; echo to-err >&2; exec sleep 600",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pid = read_pid(&pidfile).unwrap();
    guard.track(pid);
    let out_file = dir.path("out.txt");
    let err_file = dir.path("err.txt");
    poll("both streams written", || {
        let o = std::fs::read_to_string(&out_file).ok()?;
        let e = std::fs::read_to_string(&err_file).ok()?;
        (o.contains("to-out") && e.contains("to-err")).then_some(())
    });
    assert_eq!(std::fs::read_to_string(&out_file).unwrap(), "to-out\n");
    let out_s = out_file.to_str().unwrap();
    let err_s = err_file.to_str().unwrap();
    // `sh` exec'd sleep: the probe is the same pid.
    wait_exec(pid, "sleep");
    let defects = daemon_defects(pid, ["/dev/null", out_s, err_s]);
    assert!(defects.is_empty(), "{defects:?}");
    // Negative control: the check notices stdio on the wrong files.
    assert!(!daemon_defects(pid, ["/dev/null"; 3]).is_empty());
    drop(guard);

    // --log: both streams in one file, monitor notes included.
    let pidfile = dir.path("l.pid");
    let log = dir.path("both.log");
    let mut guard = Guard::new(&pidfile);
    let (pid, _) = start(
        &mut guard,
        &[
            "--log",
            log.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "echo one; echo two >&2; exec sleep 600",
        ],
    );
    poll("log written", || {
        let t = std::fs::read_to_string(&log).ok()?;
        (t.contains("one\n") && t.contains("two\n")).then_some(())
    });
    let out = daemon(&["--stop", "--pidfile", pidfile.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(!alive(pid));
    let t = std::fs::read_to_string(&log).unwrap();
    assert!(t.contains("stopping: SIGTERM"), "{t}");
}

/// --stop reaches the whole tree: a child in the program's group and an
/// escapee in a session of its own. Run with both tracking backends.
#[test]
fn d9_stop_kills_the_whole_tree_escapees_included() {
    for tracking in ["subreaper", "auto"] {
        let dir = Scratch::new("tree");
        let pidfile = dir.path("d.pid");
        let esc = dir.path("esc");
        let kid = dir.path("kid");
        let mut guard = Guard::new(&pidfile);
        let script = format!(
            "setsid sleep 600 & echo $! > {}; sleep 600 & echo $! > {}; exec sleep 600",
            esc.display(),
            kid.display()
        );
        let (pid, _) = start(
            &mut guard,
            &["--tracking", tracking, "--", "sh", "-c", &script],
        );
        let esc_pid = poll("escapee", || read_pid(&esc).filter(|&p| stat(p).is_some()));
        let kid_pid = poll("kid", || read_pid(&kid).filter(|&p| stat(p).is_some()));
        guard.track(esc_pid);
        guard.track(kid_pid);
        // It did escape: own session, not the program's.
        poll("escapee in its own session", || {
            stat(esc_pid).filter(|s| s.sid == esc_pid).map(|_| ())
        });
        assert_ne!(stat(esc_pid).unwrap().sid, stat(pid).unwrap().sid);
        assert!(alive(esc_pid) && alive(kid_pid) && alive(pid));

        let out = daemon(&["--stop", "--pidfile", pidfile.to_str().unwrap()]);
        assert!(out.status.success(), "{tracking}: {}", text(&out.stderr));
        for p in [pid, kid_pid, esc_pid] {
            assert!(!alive(p), "{tracking}: pid {p} survived --stop");
        }
    }
}

/// A program that ignores SIGTERM is SIGKILLed after --timeout.
#[test]
fn d9_stop_escalates_to_sigkill_after_the_timeout() {
    let dir = Scratch::new("kill");
    let pidfile = dir.path("d.pid");
    let log = dir.path("log");
    let mut guard = Guard::new(&pidfile);
    let (pid, _) = start(
        &mut guard,
        &[
            "--log",
            log.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "trap '' TERM; exec sleep 600",
        ],
    );
    // Negative control: the program really ignores SIGTERM.
    poll("TERM ignored", || {
        let s = status_fields(pid);
        s.get("SigIgn").filter(|m| bit(m, 15)).map(|_| ())
    });
    let out = daemon(&[
        "--stop",
        "--timeout",
        "300ms",
        "--pidfile",
        pidfile.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!alive(pid));
    assert!(!pidfile.exists());
    let t = std::fs::read_to_string(&log).unwrap();
    assert!(t.contains("SIGKILL after 300ms"), "{t}");
}

/// Start times of a crashing program, one line each (seconds, with ns).
fn starts(path: &Path) -> Vec<f64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

#[test]
fn d10_respawn_backs_off_and_gives_up_at_the_limit() {
    let dir = Scratch::new("respawn");
    let pidfile = dir.path("d.pid");
    let log = dir.path("log");
    let record = dir.path("starts");
    let _guard = Guard::new(&pidfile);
    // The first run lives past the start (a program that dies within its
    // first moments is a failed start, never restarted); the restarts
    // die at once.
    let script = format!(
        "date +%s.%N >> {r}; [ $(wc -l < {r}) -gt 1 ] || sleep 1; exit 3",
        r = record.display()
    );
    let out = daemon(&[
        "--pidfile",
        pidfile.to_str().unwrap(),
        "--log",
        log.to_str().unwrap(),
        "--respawn",
        "--respawn-backoff",
        "100ms",
        "--respawn-limit",
        "5",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    poll("the monitor to give up", || {
        (!pidfile.exists() && lock_holder(&pidfile).is_none()).then_some(())
    });
    let t = starts(&record);
    assert_eq!(t.len(), 5, "starts: {t:?}");
    // Each wait is at least the backoff for that restart: 100, 200, 400,
    // 800 ms (lower bounds only; the machine may be slow; the first gap
    // also holds the first run's second).
    for (i, pair) in t.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        let want = 0.1 * f64::from(1u32 << i);
        assert!(
            gap >= want - 0.005,
            "gap {i} is {gap:.3}s, expected >= {want}s"
        );
    }
    let l = std::fs::read_to_string(&log).unwrap();
    assert_eq!(l.matches("exited with status 3").count(), 5, "{l}");
    assert!(
        l.contains("restarting in 100ms") && l.contains("restarting in 800ms"),
        "{l}"
    );
    assert!(l.contains("giving up"), "{l}");

    // Negative control: without --respawn, one start only.
    let record2 = dir.path("starts2");
    let script = format!("date +%s.%N >> {}; sleep 1; exit 3", record2.display());
    let out = daemon(&[
        "--pidfile",
        pidfile.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert!(out.status.success());
    poll("the monitor to end", || (!pidfile.exists()).then_some(()));
    assert_eq!(starts(&record2).len(), 1);
    // A program that dies at once is a failed start, not restarted even
    // with --respawn.
    let record3 = dir.path("starts3");
    let script = format!("date +%s.%N >> {}; exit 3", record3.display());
    let out = daemon(&[
        "--pidfile",
        pidfile.to_str().unwrap(),
        "--respawn",
        "--respawn-backoff",
        "100ms",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(!pidfile.exists());
    assert!(lock_holder(&pidfile).is_none());
    assert_eq!(starts(&record3).len(), 1);
}

#[test]
fn d10_respawn_restarts_a_killed_program_with_a_new_pid() {
    let dir = Scratch::new("restart");
    let pidfile = dir.path("d.pid");
    let mut guard = Guard::new(&pidfile);
    let (pid, monitor) = start(
        &mut guard,
        &[
            "--respawn",
            "--respawn-backoff",
            "50ms",
            "--",
            "sleep",
            "600",
        ],
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let new = poll("a restart", || {
        read_pid(&pidfile).filter(|&p| p != pid && alive(p))
    });
    guard.track(new);
    // Restarted by the same worker, below the same monitor.
    assert_eq!(stat(stat(new).unwrap().ppid).unwrap().ppid, monitor);
    assert!(!alive(pid));
    assert_eq!(lock_holder(&pidfile), Some(monitor));
    let out = daemon(&["--stop", "--pidfile", pidfile.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(!alive(new));
}

/// Without --respawn, the program's end is the monitor's: the pidfile
/// goes, the status says not running.
#[test]
fn d9_program_exit_ends_the_monitor_and_removes_the_pidfile() {
    let dir = Scratch::new("exit");
    let pidfile = dir.path("d.pid");
    let mut guard = Guard::new(&pidfile);
    let (pid, monitor) = start(&mut guard, &["--", "sleep", "600"]);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    poll("the pidfile removed", || (!pidfile.exists()).then_some(()));
    poll("the monitor gone", || (!alive(monitor)).then_some(()));
    let out = daemon(&["--status", "--pidfile", pidfile.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
}

/// The monitor's own fds: stdio on /dev/null (no files given), the
/// pidfile, and its event sources; nothing inherited from the caller.
#[test]
fn d9_monitor_keeps_nothing_of_the_caller() {
    let dir = Scratch::new("monitor");
    let pidfile = dir.path("d.pid");
    let mut guard = Guard::new(&pidfile);
    let (_, monitor) = start(&mut guard, &["--", "sleep", "600"]);
    let st = stat(monitor).unwrap();
    assert_ne!(st.sid, monitor, "monitor is a session leader");
    assert_eq!(st.tty_nr, 0);
    assert_eq!(
        std::fs::read_link(format!("/proc/{monitor}/cwd")).unwrap(),
        Path::new("/")
    );
    // The monitor (the lock holder) and the worker below it that runs
    // the tree share one pipe: the lifeline.
    let worker = sexton::procfs::processes()
        .into_iter()
        .find(|p| p.ppid == monitor)
        .expect("the monitor's worker")
        .pid;
    let worker_fds = fds(worker);
    let lifeline = |t: &String| {
        t.starts_with("pipe:")
            && fds(monitor).iter().any(|(_, m)| m == t)
            && worker_fds.iter().any(|(_, w)| w == t)
    };
    for (who, list) in [("monitor", fds(monitor)), ("worker", worker_fds.clone())] {
        for (fd, target) in &list {
            let ok = match fd {
                0..=2 => target == "/dev/null",
                _ => {
                    target.ends_with("d.pid")
                        || target.starts_with("anon_inode:")
                        || target.ends_with("cgroup.procs")
                        || lifeline(target)
                }
            };
            assert!(ok, "{who} fd {fd} -> {target}");
        }
    }
}

/// The monitor killed outright (SIGKILL) takes the daemon's whole tree
/// with it, escapees included, in both tracking modes: the worker below
/// it sees its lifeline break, kills the tree, removes the cgroup and
/// the pidfile (once it has the lock again), and exits.
#[test]
fn d9_the_whole_tree_dies_with_a_killed_monitor() {
    let dir = Scratch::new("monkill");
    let pidfile = dir.path("d.pid");
    let pids = dir.path("pids");
    let script = dir.path("tree.sh");
    std::fs::write(
        &script,
        format!(
            r#"#!/bin/sh
setsid sh -c 'sh -c "trap \"\" TERM HUP; echo \$\$ >> {pf}; while :; do sleep 1; done" &' </dev/null
(setsid sleep 600 & echo $! >> {pf}) </dev/null
sleep 600 &
echo $! >> {pf}
echo $$ >> {pf}
wait
"#,
            pf = pids.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cgroup_ok = sexton(&["run", "--tracking", "cgroup", "--", "true"])
        .status
        .success();
    if !cgroup_ok {
        eprintln!("skipping cgroup mode: no writable cgroup2 here");
    }
    let modes: &[&str] = if cgroup_ok {
        &["cgroup", "subreaper"]
    } else {
        &["subreaper"]
    };
    for &mode in modes {
        let _ = std::fs::remove_file(&pids);
        let mut guard = Guard::new(&pidfile);
        let (pid, monitor) = start(
            &mut guard,
            &["--tracking", mode, "--", script.to_str().unwrap()],
        );
        let worker = stat(pid).unwrap().ppid;
        let tree: Vec<i32> = poll("four pids", || {
            let v: Vec<i32> = std::fs::read_to_string(&pids)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect();
            (v.len() >= 4).then_some(v)
        });
        for &p in &tree {
            guard.track(p);
        }
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(monitor),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        poll("the whole tree gone with its monitor", || {
            tree.iter().all(|&p| !alive(p)).then_some(())
        });
        poll("the worker gone", || (!alive(worker)).then_some(()));
        poll("the pidfile removed", || (!pidfile.exists()).then_some(()));
        let out = daemon(&["--status", "--pidfile", pidfile.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(3), "{mode}: {}", text(&out.stdout));
        if let Some(own) = sexton::tree::cgroup::own_cgroup() {
            let left: Vec<String> = std::fs::read_dir(&own)
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| {
                    n.starts_with(&format!("sexton-{worker}-"))
                        || n.starts_with(&format!("sexton-{monitor}-"))
                })
                .collect();
            assert!(left.is_empty(), "{mode}: cgroups left {left:?}");
        }
    }
}

#[test]
fn d9_chdir_and_umask_options_are_applied() {
    let dir = Scratch::new("opts");
    let pidfile = dir.path("d.pid");
    let mut guard = Guard::new(&pidfile);
    let (pid, monitor) = start(
        &mut guard,
        &[
            "--chdir",
            dir.0.to_str().unwrap(),
            "--umask",
            "027",
            "--",
            "sleep",
            "600",
        ],
    );
    wait_exec(pid, "sleep");
    for p in [pid, monitor] {
        assert_eq!(std::fs::read_link(format!("/proc/{p}/cwd")).unwrap(), dir.0);
        assert_eq!(status_fields(p)["Umask"], "0027");
    }
}

/// SIGHUP, SIGUSR1 and SIGUSR2 sent to the monitor reach the program.
#[test]
fn d9_monitor_passes_hup_and_usr_signals_to_the_program() {
    let dir = Scratch::new("hup");
    let pidfile = dir.path("d.pid");
    let log = dir.path("log");
    let ready = dir.path("ready");
    let mut guard = Guard::new(&pidfile);
    let script = format!(
        "trap 'echo got-hup' HUP; trap 'echo got-usr1' USR1; touch {}; while :; do sleep 0.05; done",
        ready.display()
    );
    let (_, monitor) = start(
        &mut guard,
        &["--log", log.to_str().unwrap(), "--", "sh", "-c", &script],
    );
    poll("traps set", || ready.exists().then_some(()));
    for sig in [
        nix::sys::signal::Signal::SIGHUP,
        nix::sys::signal::Signal::SIGUSR1,
    ] {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(monitor), sig).unwrap();
    }
    poll("both signals handled", || {
        let t = std::fs::read_to_string(&log).ok()?;
        (t.contains("got-hup") && t.contains("got-usr1")).then_some(())
    });
    // The monitor itself lives on (HUP did not stop the daemon).
    assert_eq!(lock_holder(&pidfile), Some(monitor));
}

/// Between two starts the pidfile is empty (the old pid may be reused
/// meanwhile), the monitor still holds it, and --stop ends the wait.
#[test]
fn d10_stop_during_a_restart_backoff() {
    let dir = Scratch::new("backoff");
    let pidfile = dir.path("d.pid");
    let mut guard = Guard::new(&pidfile);
    let (pid, monitor) = start(
        &mut guard,
        &["--respawn", "--respawn-backoff", "1h", "--", "sleep", "600"],
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    poll("the pidfile emptied", || {
        std::fs::read_to_string(&pidfile)
            .ok()
            .filter(|t| t.is_empty())
    });
    let out = daemon(&["--status", "--pidfile", pidfile.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stdout).contains("waiting to restart"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(lock_holder(&pidfile), Some(monitor));
    let out = daemon(&["--stop", "--pidfile", pidfile.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!pidfile.exists());
    assert!(!alive(monitor));
}

// ------------------------------------------------- what a pidfile may be

/// Runs `sexton daemon ARGS` with a deadline (a start that opens a FIFO
/// could block forever): (exit code, stdout, stderr), or `None` when it
/// had to be killed.
fn daemon_within(dir: &Scratch, args: &[&str]) -> Option<(Option<i32>, String, String)> {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let out_path = dir.path(&format!(".out-{n}"));
    let err_path = dir.path(&format!(".err-{n}"));
    let child = Command::new(SEXTON)
        .arg("daemon")
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = child.0.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() >= deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = std::fs::read_to_string(&out_path).unwrap_or_default();
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    status.map(|s| (s.code(), out, err))
}

/// Everything observable about what is at `path`, not following a
/// symbolic link: type, inode, owner, device number, size, and the
/// contents (a file's bytes, a link's target, a directory's names).
fn snapshot(path: &Path) -> String {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let Ok(m) = std::fs::symlink_metadata(path) else {
        return "missing".into();
    };
    let t = m.file_type();
    let kind = if t.is_file() {
        "file"
    } else if t.is_dir() {
        "dir"
    } else if t.is_symlink() {
        "symlink"
    } else if t.is_char_device() {
        "chardev"
    } else if t.is_fifo() {
        "fifo"
    } else {
        "other"
    };
    let contents = if t.is_file() {
        format!("{:?}", std::fs::read(path).unwrap())
    } else if t.is_symlink() {
        format!("-> {:?}", std::fs::read_link(path).unwrap())
    } else if t.is_dir() {
        let mut names: Vec<String> = std::fs::read_dir(path)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        format!("{names:?}")
    } else {
        String::new()
    };
    format!(
        "{kind} dev {} ino {} mode {:o} uid {} rdev {} size {} {contents}",
        m.dev(),
        m.ino(),
        m.mode(),
        m.uid(),
        m.rdev(),
        m.size()
    )
}

/// `--pidfile` on something that is not a pidfile: a device node (as
/// /dev/null would be), a FIFO, a directory, a file with other contents,
/// another user's pidfile, a symbolic link. Each is refused by a start
/// with one line naming the path and the reason, the program never runs,
/// and `--status`, `--stop` and the lock itself leave it exactly as it
/// was (same inode, same contents, a device still a device). Positive
/// controls: a missing path, an empty file and a stale pidfile are taken
/// and removed at stop.
#[test]
fn d9_pidfile_that_is_not_a_pidfile_is_refused_and_left_untouched() {
    use std::os::unix::fs::MetadataExt;
    let dir = Scratch::new("refuse");
    let marker = dir.path("program-ran");
    let mut cases: Vec<(PathBuf, &str)> = Vec::new();

    let null = dir.path("null");
    match nix::sys::stat::mknod(
        &null,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    ) {
        Ok(()) => cases.push((null, "it is a character device, not a regular file")),
        Err(e) => eprintln!("skipping the device node case: mknod: {e}"),
    }
    let fifo = dir.path("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    cases.push((fifo, "it is a FIFO, not a regular file"));
    let sub = dir.path("dir");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("inside"), "x").unwrap();
    cases.push((sub, "it is a directory, not a regular file"));
    let other = dir.path("notes.txt");
    std::fs::write(&other, "not a pid\n12345\n").unwrap();
    cases.push((other, "it holds something other than a pid"));
    let two = dir.path("two.pid");
    std::fs::write(&two, "12345\n\n").unwrap();
    cases.push((two, "it holds something other than a pid"));
    let theirs = dir.path("theirs.pid");
    std::fs::write(&theirs, "12345\n").unwrap();
    match std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)) {
        Ok(()) => cases.push((theirs, "it belongs to uid 65534")),
        Err(e) => eprintln!("skipping the other user's file case: chown: {e}"),
    }
    let target = dir.path("target.pid");
    std::fs::write(&target, "12345\n").unwrap();
    let link = dir.path("link.pid");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    cases.push((link, "it is a symbolic link"));

    // Every case is checked to the end and the problems listed together.
    let mut bad: Vec<String> = Vec::new();
    for (path, reason) in &cases {
        let p = path.to_str().unwrap();
        let before = snapshot(path);
        let target_before = snapshot(&target);
        let what = format!("{p} ({before})");
        let mut check = |ok: bool, msg: String| {
            if !ok {
                bad.push(format!("{what}: {msg}"));
            }
        };
        let line = format!("sexton: daemon: cannot use pidfile {p}: {reason}");

        match daemon_within(
            &dir,
            &["--pidfile", p, "--", "touch", marker.to_str().unwrap()],
        ) {
            None => check(false, "start blocked".into()),
            Some((code, _, err)) => {
                check(
                    matches!(code, Some(c) if c != 0),
                    format!("start exit {code:?}"),
                );
                check(
                    err.starts_with(&line) && err.lines().count() == 1,
                    format!("start said {err:?}"),
                );
            }
        }
        check(!marker.exists(), "the program ran".into());
        let _ = std::fs::remove_file(&marker);
        let now = snapshot(path);
        check(now == before, format!("a start left {now}"));

        match daemon_within(&dir, &["--status", "--pidfile", p]) {
            None => check(false, "--status blocked".into()),
            // Asking is no use of the file: another user's pidfile is
            // just stale to --status; anything else is not a pidfile.
            Some((code, _, err)) if !reason.contains("uid") => {
                check(code == Some(4), format!("--status exit {code:?}"));
                check(err.starts_with(&line), format!("--status said {err:?}"));
            }
            Some(_) => {}
        }
        let now = snapshot(path);
        check(now == before, format!("--status left {now}"));

        match daemon_within(&dir, &["--stop", "--timeout", "1s", "--pidfile", p]) {
            None => check(false, "--stop blocked".into()),
            Some((code, _, err)) if !reason.contains("uid") => {
                check(code == Some(1), format!("--stop exit {code:?}"));
                check(err.starts_with(&line), format!("--stop said {err:?}"));
            }
            Some(_) => {}
        }
        let now = snapshot(path);
        check(now == before, format!("--stop left {now}"));

        // The monitor's own lock attempt (what counts when the caller's
        // early check is raced) refuses it too; asked only while the
        // path is still what it was.
        if now == before {
            match sexton::daemon::pidfile::Pidfile::lock(path) {
                Err(e) => check(
                    e.kind() == std::io::ErrorKind::InvalidInput
                        && e.to_string().starts_with(reason),
                    format!("the lock said {e}"),
                ),
                Ok(r) => check(false, format!("locked: {r:?}")),
            }
            let now = snapshot(path);
            check(now == before, format!("the lock left {now}"));
        }
        let now = snapshot(&target);
        check(
            now == target_before,
            format!("the link target became {now}"),
        );
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    // The device is still the device it was.
    if let Some((null, _)) = cases.iter().find(|(p, _)| p.ends_with("null")) {
        let m = std::fs::symlink_metadata(null).unwrap();
        assert_eq!(m.rdev(), nix::sys::stat::makedev(1, 3));
    }

    // Positive controls: nothing there, an empty file, a stale pidfile.
    let empty = dir.path("empty.pid");
    std::fs::write(&empty, "").unwrap();
    let stale = dir.path("stale.pid");
    std::fs::write(&stale, "12345\n").unwrap();
    for path in [dir.path("missing.pid"), empty, stale] {
        let p = path.to_str().unwrap();
        let mut guard = Guard::new(&path);
        let (pid, monitor) = start(&mut guard, &["--", "sleep", "600"]);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{pid}\n"));
        assert_eq!(lock_holder(&path), Some(monitor), "{p}");
        let out = daemon(&["--status", "--pidfile", p]);
        assert_eq!(out.status.code(), Some(0), "{p}: {}", text(&out.stderr));
        let out = daemon(&["--stop", "--pidfile", p]);
        assert!(out.status.success(), "{p}: {}", text(&out.stderr));
        assert!(!path.exists(), "{p}: left behind at stop");
        assert!(!alive(pid));
    }
}

/// The monitor removes only the file it locked: a symbolic link to that
/// file, or another file, put at the path meanwhile stays.
#[test]
fn d9_monitor_removes_only_the_pidfile_it_locked() {
    let dir = Scratch::new("swap");
    let pidfile = dir.path("d.pid");
    let kept = dir.path("kept");
    let swap = dir.path("swap");
    // The last round replaces nothing: the control that the monitor
    // does remove its own file when it ends this way.
    for case in [
        "a symbolic link to the locked file",
        "another file",
        "nothing",
    ] {
        let mut guard = Guard::new(&pidfile);
        let (pid, monitor) = start(&mut guard, &["--", "sleep", "600"]);
        let _ = std::fs::remove_file(&kept);
        std::fs::hard_link(&pidfile, &kept).unwrap();
        match case {
            "nothing" => {}
            "another file" => std::fs::write(&swap, "999\n").unwrap(),
            _ => std::os::unix::fs::symlink(&kept, &swap).unwrap(),
        }
        if case != "nothing" {
            std::fs::rename(&swap, &pidfile).unwrap();
        }
        let before = snapshot(&pidfile);
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(monitor),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        poll("the monitor gone", || (!alive(monitor)).then_some(()));
        assert!(!alive(pid));
        assert_eq!(std::fs::read_to_string(&kept).unwrap(), format!("{pid}\n"));
        if case == "nothing" {
            assert!(!pidfile.exists(), "the monitor left its own pidfile");
        } else {
            assert_eq!(snapshot(&pidfile), before, "{case} was removed");
            std::fs::remove_file(&pidfile).unwrap();
        }
    }
}

// ------------------------------------------------- realtime signal deaths

/// The zombie children of `pid`.
fn zombie_children(pid: i32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| stat(p).is_some_and(|s| s.ppid == pid && s.state == 'Z'))
        .collect()
}

/// Sends the realtime signal RTMIN+3 (as `kill -s RTMIN+3` does).
fn kill_rtmin3(pid: i32) {
    sexton::sys::kill_raw(pid, sexton::parse::RTMIN + 3).unwrap();
}

/// A program killed by a realtime signal is reaped like any other: the
/// monitor logs the signal's name, removes the pidfile and ends.
#[test]
fn d9_program_killed_by_a_realtime_signal_is_reaped() {
    let dir = Scratch::new("rtsig");
    let pidfile = dir.path("d.pid");
    let log = dir.path("log");
    let mut guard = Guard::new(&pidfile);
    let (pid, monitor) = start(
        &mut guard,
        &["--log", log.to_str().unwrap(), "--", "sleep", "600"],
    );
    wait_exec(pid, "sleep");
    let started = stat(pid).unwrap().start;
    kill_rtmin3(pid);
    // Reaped by the monitor (which is still its parent until then).
    poll("the program reaped", || {
        let s = stat(pid).filter(|s| s.start == started);
        s.is_none_or(|s| s.ppid != monitor).then_some(())
    });
    poll("the pidfile removed", || (!pidfile.exists()).then_some(()));
    poll("the monitor gone", || (!alive(monitor)).then_some(()));
    let out = daemon(&["--status", "--pidfile", pidfile.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stdout));
    let l = std::fs::read_to_string(&log).unwrap();
    assert!(
        l.contains(&format!("sleep (pid {pid}) was killed by signal RTMIN+3")),
        "{l}"
    );
}

/// With --respawn, a program killed by a realtime signal is restarted
/// with a new pid, and the dead one leaves no zombie behind.
#[test]
fn d10_respawn_restarts_a_program_killed_by_a_realtime_signal() {
    // Negative control of the zombie check: a zombie child of ours.
    let mut z = KillOnDrop(Command::new("true").spawn().unwrap());
    let zpid = z.0.id() as i32;
    let me = std::process::id() as i32;
    poll("our own zombie", || {
        zombie_children(me).contains(&zpid).then_some(())
    });
    let _ = z.0.wait();

    let dir = Scratch::new("rtrespawn");
    let pidfile = dir.path("d.pid");
    let log = dir.path("log");
    let mut guard = Guard::new(&pidfile);
    let (pid, monitor) = start(
        &mut guard,
        &[
            "--log",
            log.to_str().unwrap(),
            "--respawn",
            "--respawn-backoff",
            "50ms",
            "--",
            "sleep",
            "600",
        ],
    );
    wait_exec(pid, "sleep");
    kill_rtmin3(pid);
    let new = poll("a restart", || {
        read_pid(&pidfile).filter(|&p| p != pid && alive(p))
    });
    guard.track(new);
    // Restarted by the same worker, below the same monitor.
    assert_eq!(stat(stat(new).unwrap().ppid).unwrap().ppid, monitor);
    assert_eq!(zombie_children(monitor), Vec::<i32>::new());
    assert_eq!(lock_holder(&pidfile), Some(monitor));
    let l = std::fs::read_to_string(&log).unwrap();
    assert!(
        l.contains(&format!("sleep (pid {pid}) was killed by signal RTMIN+3")),
        "{l}"
    );
    assert!(l.contains("restarting in 50ms"), "{l}");
    let out = daemon(&["--status", "--pidfile", pidfile.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains(&format!("pid {new}")));
    let out = daemon(&["--stop", "--pidfile", pidfile.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!alive(new));
}

/// A log that is a FIFO nobody reads must not hang the caller: it is a
/// one-line error at once (opening it used to block until a reader came).
#[test]
fn d9_a_log_fifo_without_a_reader_is_an_error_not_a_hang() {
    let dir = Scratch::new("fifo-log");
    let fifo = dir.path("log.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let ran = dir.path("ran");
    let mut c = Command::new(SEXTON);
    c.args(["daemon", "--log", fifo.to_str().unwrap(), "--", "touch"])
        .arg(&ran)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = KillOnDrop(c.spawn().unwrap());
    let status = poll("the daemon start to return", || child.0.try_wait().unwrap());
    assert_eq!(status.code(), Some(1));
    let mut err = String::new();
    std::io::Read::read_to_string(child.0.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("FIFO"), "{err}");
    assert!(!ran.exists(), "the program must not run");
}

// --------------------------------------------------------------- readiness

/// A program that starts slowly: it records its pid (and an escapee's,
/// started in a session of its own; both have argv[1] on their command
/// line) in argv[1], prints a few lines on both streams, waits until the
/// file argv[2] exists, then does what argv[3] says to become ready,
/// creates argv[1].acted, and runs on:
/// - `listen PORT`: listens on 127.0.0.1:PORT;
/// - `notify MESSAGE`: sends MESSAGE ("\n" for newlines) to $NOTIFY_SOCKET;
/// - `print LINE`: prints LINE, then 3000 more numbered lines on each
///   stream;
/// - `touch FILE`: creates FILE;
/// - `nothing`.
const SLOW_START: &str = r#"
import os, socket, subprocess, sys, time
marker, gate, action = sys.argv[1], sys.argv[2], sys.argv[3]
arg = sys.argv[4] if len(sys.argv) > 4 else ""
esc = subprocess.Popen(["sh", "-c", "sleep 600; :", marker], start_new_session=True)
with open(marker + ".tmp", "w") as f:
    f.write(f"{os.getpid()} {esc.pid}\n")
os.rename(marker + ".tmp", marker)
for i in range(3):
    print(f"starting {i}", flush=True)
    print(f"warming {i}", file=sys.stderr, flush=True)
while not os.path.exists(gate):
    time.sleep(0.01)
if action == "listen":
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(arg)))
    s.listen()
elif action == "notify":
    a = os.environ["NOTIFY_SOCKET"]
    a = "\0" + a[1:] if a.startswith("@") else a
    n = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    n.sendto(arg.replace("\\n", "\n").encode(), a)
elif action == "print":
    print(arg, flush=True)
    # One write per line: with both streams on one pipe (--log), whole
    # lines interleave, never parts of them.
    for i in range(3000):
        print(f"out line {i:05} " + "x" * 80, flush=True)
        print(f"err line {i:05} " + "y" * 80, file=sys.stderr, flush=True)
elif action == "touch":
    open(arg, "w").close()
open(marker + ".acted", "w").close()
time.sleep(600)
"#;

/// `sexton daemon` started in the background, killed and reaped on drop.
fn daemon_child(args: &[&str]) -> KillOnDrop {
    KillOnDrop(
        Command::new(SEXTON)
            .arg("daemon")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run sexton"),
    )
}

/// Waits for the caller to return; its status and stderr.
fn returned(child: &mut KillOnDrop) -> (std::process::ExitStatus, String) {
    let status = poll("the caller to return", || child.0.try_wait().unwrap());
    let mut err = String::new();
    std::io::Read::read_to_string(child.0.stderr.as_mut().unwrap(), &mut err).unwrap();
    (status, err)
}

/// (program pid, escapee pid) from SLOW_START's marker, once written.
fn slow_pids(marker: &Path) -> (i32, i32) {
    poll("the program to start", || {
        let t = std::fs::read_to_string(marker).ok()?;
        let mut w = t.split_whitespace().map(|x| x.parse::<i32>().ok());
        Some((w.next()??, w.next()??))
    })
}

/// The parts of one slow-start case.
struct Slow {
    dir: Scratch,
    pidfile: PathBuf,
    marker: PathBuf,
    gate: PathBuf,
    script: PathBuf,
}

/// Live processes whose command line mentions `dir`: a case's monitor
/// (its arguments name the pidfile), program and escapee.
fn mentioning(dir: &Path) -> Vec<(i32, String)> {
    // With the slash: another case's directory may extend this name.
    let needle = format!("{}/", dir.display());
    let me = std::process::id() as i32;
    sexton::procfs::processes()
        .into_iter()
        .filter(|p| p.pid != me && alive(p.pid))
        .filter_map(|p| {
            let c = std::fs::read(format!("/proc/{}/cmdline", p.pid)).ok()?;
            let c = String::from_utf8_lossy(&c).replace('\0', " ");
            c.contains(&needle).then_some((p.pid, c))
        })
        .collect()
}

/// Cleans up after a failed test: every process of the case still
/// running is killed (the guard's `--stop` comes first).
impl Drop for Slow {
    fn drop(&mut self) {
        for (pid, _) in mentioning(&self.dir.0) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// After a failed start: nothing of the case runs but the monitor on its
/// way out, which must then be gone too.
fn nothing_left(slow: &Slow, what: &str) {
    let left: Vec<(i32, String)> = mentioning(&slow.dir.0)
        .into_iter()
        .filter(|(_, c)| !c.starts_with(SEXTON))
        .collect();
    assert!(left.is_empty(), "{what}: left running: {left:?}");
    assert!(!slow.pidfile.exists(), "{what}: pidfile left");
    assert_eq!(lock_holder(&slow.pidfile), None, "{what}: lock held");
    poll("the monitor to exit", || {
        mentioning(&slow.dir.0).is_empty().then_some(())
    });
}

impl Slow {
    fn new(name: &str) -> Slow {
        let dir = Scratch::new(name);
        let script = dir.path("slow.py");
        std::fs::write(&script, SLOW_START).unwrap();
        Slow {
            pidfile: dir.path("d.pid"),
            marker: dir.path("pids"),
            gate: dir.path("gate"),
            script,
            dir,
        }
    }

    /// `--pidfile FILE` + `opts` + `-- python3 slow.py ... action`.
    fn args<'a>(&'a self, opts: &[&'a str], action: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["--pidfile", self.pidfile.to_str().unwrap()];
        v.extend_from_slice(opts);
        v.extend([
            "--",
            "python3",
            self.script.to_str().unwrap(),
            self.marker.to_str().unwrap(),
            self.gate.to_str().unwrap(),
        ]);
        v.extend_from_slice(action);
        v
    }
}

/// Starts a slow program with `opts` (a `--ready` check) and `action`;
/// checks that the caller waits while the program is not ready (for a
/// second after the program has started, far past the 200ms a start
/// without a check takes), then opens the gate and checks that the
/// caller returns 0 with the program running. Returns the program's pid.
fn starts_once_ready(slow: &Slow, guard: &mut Guard, opts: &[&str], action: &[&str]) -> i32 {
    let mut caller = daemon_child(&slow.args(opts, action));
    let (pid, esc) = slow_pids(&slow.marker);
    guard.track(pid);
    guard.track(esc);
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        if let Some(st) = caller.0.try_wait().unwrap() {
            let (_, err) = returned(&mut caller);
            panic!("the caller returned ({st:?}) before the program was ready: {err}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::write(&slow.gate, "").unwrap();
    let (status, err) = returned(&mut caller);
    assert!(status.success(), "{status:?}: {err}");
    assert_eq!(read_pid(&slow.pidfile), Some(pid));
    assert!(alive(pid));
    pid
}

/// Negative control for every `--ready` test: without a check, the same
/// program that never becomes ready counts as started once it has lived
/// 200ms, so a caller that waits is waiting for the check.
#[test]
fn ready_without_a_check_the_caller_returns_once_the_program_lives() {
    let slow = Slow::new("ready-none");
    let mut guard = Guard::new(&slow.pidfile);
    let mut caller = daemon_child(&slow.args(&[], &["nothing"]));
    let (status, err) = returned(&mut caller);
    assert!(status.success(), "{status:?}: {err}");
    let (pid, esc) = slow_pids(&slow.marker);
    guard.track(pid);
    guard.track(esc);
    assert!(!slow.gate.exists());
    assert_eq!(read_pid(&slow.pidfile), Some(pid));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn ready_tcp_waits_until_the_port_takes_connections() {
    let slow = Slow::new("ready-tcp");
    let mut guard = Guard::new(&slow.pidfile);
    let port = free_port().to_string();
    let check = format!("tcp:127.0.0.1:{port}");
    starts_once_ready(&slow, &mut guard, &["--ready", &check], &["listen", &port]);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).is_ok(),
        "the program listens"
    );
}

#[test]
fn ready_notify_waits_for_ready_1() {
    let slow = Slow::new("ready-notify");
    let mut guard = Guard::new(&slow.pidfile);
    let pid = starts_once_ready(
        &slow,
        &mut guard,
        &["--ready", "notify"],
        &["notify", "STATUS=serving\\nREADY=1"],
    );
    let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(
        env.split(|&b| b == 0)
            .any(|v| v.starts_with(b"NOTIFY_SOCKET=@sexton-notify-")),
        "the program got NOTIFY_SOCKET"
    );
}

#[test]
fn ready_cmd_waits_until_the_command_succeeds() {
    let slow = Slow::new("ready-cmd");
    let mut guard = Guard::new(&slow.pidfile);
    let flag = slow.dir.path("serving");
    let check = format!("cmd:test -e '{}'", flag.display());
    starts_once_ready(
        &slow,
        &mut guard,
        &["--ready", &check],
        &["touch", flag.to_str().unwrap()],
    );
}

/// The log check reads the program's output through the monitor: every
/// byte still reaches the files, in order, before and after the start.
#[test]
fn ready_log_matches_a_line_and_the_output_still_reaches_the_files() {
    for merged in [true, false] {
        let slow = Slow::new("ready-log");
        let mut guard = Guard::new(&slow.pidfile);
        let (out, err) = (slow.dir.path("out"), slow.dir.path("err"));
        let mut opts = vec!["--ready", "log:^listening on [0-9]+$"];
        if merged {
            opts.extend(["--log", out.to_str().unwrap()]);
        } else {
            opts.extend(["--stdout", out.to_str().unwrap()]);
            opts.extend(["--stderr", err.to_str().unwrap()]);
        }
        starts_once_ready(&slow, &mut guard, &opts, &["print", "listening on 8080"]);
        // Written (into the pipes, at least) once the program says so;
        // the stop then delivers the rest.
        let done = slow.dir.path("pids.acted");
        poll("the program to print everything", || {
            done.exists().then_some(())
        });
        let stopped = daemon(&["--stop", "--pidfile", slow.pidfile.to_str().unwrap()]);
        assert!(stopped.status.success(), "{}", text(&stopped.stderr));
        let o = std::fs::read_to_string(&out).unwrap();
        let e = if merged {
            o.clone()
        } else {
            std::fs::read_to_string(&err).unwrap()
        };
        let out_lines: Vec<&str> = o
            .lines()
            .filter(|l| !l.contains("sexton daemon["))
            .collect();
        let want_out: Vec<String> = (0..3)
            .map(|i| format!("starting {i}"))
            .chain(["listening on 8080".to_string()])
            .chain((0..3000).map(|i| format!("out line {i:05} {}", "x".repeat(80))))
            .collect();
        let want_err: Vec<String> = (0..3)
            .map(|i| format!("warming {i}"))
            .chain((0..3000).map(|i| format!("err line {i:05} {}", "y".repeat(80))))
            .collect();
        let got_out: Vec<&str> = out_lines
            .iter()
            .copied()
            .filter(|l| !l.starts_with("warming") && !l.starts_with("err line"))
            .collect();
        let got_err: Vec<&str> = e
            .lines()
            .filter(|l| l.starts_with("warming") || l.starts_with("err line"))
            .collect();
        same_lines(&got_out, &want_out, &format!("merged {merged}: stdout"));
        same_lines(&got_err, &want_err, &format!("merged {merged}: stderr"));
        if !merged {
            assert!(
                !o.contains("err line") && !e.contains("out line"),
                "streams mixed"
            );
        }
    }
}

/// Asserts that `got` is `want`, naming the first difference only.
fn same_lines(got: &[&str], want: &[String], what: &str) {
    if let Some(i) = (0..got.len().max(want.len()))
        .find(|&i| got.get(i).copied() != want.get(i).map(|s| s.as_str()))
    {
        panic!(
            "{what}: {} lines, {} wanted; first difference at line {i}: got {:?}, want {:?}",
            got.len(),
            want.len(),
            got.get(i),
            want.get(i)
        );
    }
}

/// Each kind, with a program that never becomes ready (the negative
/// control of each check: a near miss, done well within the timeout):
/// the start fails after the timeout with the reason, and the monitor
/// stops the whole tree (the escapee too) and removes the pidfile before
/// the caller returns. The kinds run side by side.
#[test]
fn ready_timeout_fails_the_start_and_leaves_nothing() {
    let port = free_port().to_string();
    let other = free_port().to_string();
    let tcp = format!("tcp:127.0.0.1:{port}");
    let cases: Vec<(&str, String, Vec<&str>, &str)> = vec![
        ("tcp", tcp, vec!["listen", &other], "connection refused"),
        (
            "notify",
            "notify".into(),
            vec!["notify", "STATUS=almost\\nREADY=0\\nXREADY=1"],
            "(notify)",
        ),
        (
            "log",
            "log:^listening on [0-9]+$".into(),
            vec!["print", "listening on port 8080"],
            "(log '^listening on [0-9]+$')",
        ),
        (
            "cmd",
            "cmd:false".into(),
            vec!["nothing"],
            "cmd false: exited with status 1",
        ),
    ];
    std::thread::scope(|scope| {
        for (kind, check, action, detail) in &cases {
            scope.spawn(move || {
                let slow = Slow::new("ready-timeout");
                let _guard = Guard::new(&slow.pidfile);
                // The gate is open from the start: the program does its
                // near miss at once.
                std::fs::write(&slow.gate, "").unwrap();
                let mut caller =
                    daemon_child(&slow.args(&["--ready", check, "--ready-timeout", "3s"], action));
                let (status, err) = returned(&mut caller);
                assert_eq!(status.code(), Some(1), "{kind}: {err}");
                assert_eq!(err.lines().count(), 1, "{kind}: {err}");
                assert!(err.contains("not ready within 3s"), "{kind}: {err}");
                assert!(err.contains(detail), "{kind}: {err}");
                assert!(
                    slow.dir.path("pids.acted").exists(),
                    "{kind}: the program did not get to its near miss within the timeout"
                );
                let (pid, esc) = slow_pids(&slow.marker);
                assert!(
                    !alive(pid) && !alive(esc),
                    "{kind}: program or escapee left"
                );
                nothing_left(&slow, kind);
            });
        }
    });
}

#[test]
fn start_fails_when_the_program_dies_within_200ms() {
    let dir = Scratch::new("early-death");
    let pidfile = dir.path("d.pid");
    let p = pidfile.to_str().unwrap();
    for (argv, want) in [
        (
            &["false"][..],
            "false exited with status 1 within 200ms of its start",
        ),
        (
            &["sh", "-c", "exit 7"][..],
            "sh exited with status 7 within 200ms",
        ),
        (
            &["sh", "-c", "kill -TERM $$"][..],
            "sh was killed by signal TERM within 200ms",
        ),
        // Exiting 0 at once is no daemon either.
        (&["true"][..], "true exited with status 0 within 200ms"),
    ] {
        let mut args = vec!["--pidfile", p, "--"];
        args.extend_from_slice(argv);
        let out = daemon(&args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{argv:?}: {}",
            text(&out.stderr)
        );
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(want), "{argv:?}: {err}");
        assert!(!pidfile.exists(), "{argv:?}: pidfile left");
        assert_eq!(lock_holder(&pidfile), None);
    }
    // With a check, dying first is reported as such.
    let out = daemon(&[
        "--pidfile",
        p,
        "--ready",
        "notify",
        "--",
        "sh",
        "-c",
        "exit 4",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("sh exited with status 4 before it was ready"),
        "{}",
        text(&out.stderr)
    );
    assert!(!pidfile.exists());
    // Negative control: a program that lives past its first 200ms has
    // started, even though it exits later.
    let out = daemon(&["--pidfile", p, "--", "sh", "-c", "sleep 2; exit 3"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pid = read_pid(&pidfile).expect("running");
    let mut guard = Guard::new(&pidfile);
    guard.track(pid);
    poll("the program to end", || (!pidfile.exists()).then_some(()));
}

/// A check that cannot go on fails the start at once, and the program
/// is stopped.
#[test]
fn ready_check_that_cannot_run_fails_the_start() {
    let slow = Slow::new("ready-broken");
    let _guard = Guard::new(&slow.pidfile);
    let mut caller = daemon_child(&slow.args(&["--ready", "cmd:no-such-check-here"], &["nothing"]));
    let (status, err) = returned(&mut caller);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("readiness check failed: cmd: no-such-check-here: command not found"),
        "{err}"
    );
    nothing_left(&slow, "broken check");
}

#[test]
fn ready_usage_errors() {
    for (args, why) in [
        (
            &["--ready-timeout", "5s", "--", "sleep", "1"][..],
            "--ready-timeout goes with --ready",
        ),
        (
            &["--ready", "http:x", "--", "sleep", "1"][..],
            "unknown check 'http'",
        ),
        (
            &["--ready", "tcp:80", "--", "sleep", "1"][..],
            "'80' is not HOST:PORT",
        ),
        (
            &["--ready", "log:(", "--", "sleep", "1"][..],
            "invalid regex '('",
        ),
        (
            &["--ready", "cmd:'open", "--", "sleep", "1"][..],
            "unbalanced quotes",
        ),
        (
            &[
                "--stop",
                "--pidfile",
                "/nonexistent/x.pid",
                "--ready",
                "notify",
            ][..],
            "--stop and --status take only",
        ),
    ] {
        let out = daemon(args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.starts_with("sexton: usage: "), "{args:?}: {err}");
        assert!(err.contains(why), "{args:?}: {err}");
    }
}

/// A check command still running when the start fails (the program died
/// first) is killed with everything else.
#[test]
fn ready_check_command_goes_with_a_failed_start() {
    let dir = Scratch::new("ready-cmd-left");
    let pidfile = dir.path("d.pid");
    let check_pid = dir.path("check.pid");
    let started = dir.path("check-started");
    let _guard = Guard::new(&pidfile);
    let check = format!(
        "cmd:sh -c 'echo $$ > {}; exec sleep 600'",
        check_pid.display()
    );
    // The program waits until the check command runs, then dies.
    let script = format!(
        "while [ ! -s {c} ]; do sleep 0.01; done; touch {s}; exit 5",
        c = check_pid.display(),
        s = started.display()
    );
    let out = daemon(&[
        "--pidfile",
        pidfile.to_str().unwrap(),
        "--ready",
        &check,
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("exited with status 5 before it was ready"),
        "{}",
        text(&out.stderr)
    );
    assert!(started.exists(), "the check command ran");
    let pid = read_pid(&check_pid).expect("the check command's pid");
    let _kill = RawKill(pid);
    assert!(!alive(pid), "the check command is left running");
}
