//! Shared harness of the `sexton run` tests: run the real binary with a
//! deadline, track every pid a test script announces, poll /proc until
//! a condition holds, and kill everything on drop.

#![allow(dead_code)]

mod schema;
#[allow(unused_imports)] // each test binary uses its own part
pub use schema::{assert_schema, parse_doc, schema_dir, schema_errors, schema_files};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SEXTON: &str = env!("CARGO_BIN_EXE_sexton");
/// Generous: the machine has two noisy cores.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// The tracking modes to test. cgroup is left out, with the reason
/// printed, only where no writable cgroup2 exists.
pub fn modes() -> Vec<&'static str> {
    let ok = Command::new(SEXTON)
        .args(["run", "--tracking", "cgroup", "--", "true"])
        .stderr(Stdio::piped())
        .output()
        .expect("sexton runs");
    if ok.status.success() {
        vec!["cgroup", "subreaper"]
    } else {
        eprintln!(
            "skipping cgroup mode: {}",
            String::from_utf8_lossy(&ok.stderr).trim()
        );
        vec!["subreaper"]
    }
}

/// A scratch directory and the pids test scripts wrote into `pids`
/// (one per line). Dropping it SIGKILLs every announced pid that is
/// still the process the script announced (started after the test
/// began), and removes the directory.
pub struct Scratch {
    pub dir: PathBuf,
    started: u64,
}

static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("sexton-test-{}-{}-{}", name, std::process::id(), n));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let started = sexton::procfs::process(std::process::id() as i32)
            .map(|p| p.start_time)
            .unwrap_or(0);
        Scratch { dir, started }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes an executable script.
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = self.path(name);
        std::fs::write(&p, body).expect("write script");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        p
    }

    pub fn pidfile(&self) -> PathBuf {
        self.path("pids")
    }

    /// The pids announced so far.
    pub fn pids(&self) -> Vec<i32> {
        std::fs::read_to_string(self.pidfile())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Announced pids that are alive (zombies count as dead: they are
    /// reaped by whoever adopted them, see `subreaper.py` for the zombie
    /// checks).
    pub fn alive(&self) -> Vec<i32> {
        self.pids().into_iter().filter(|&p| alive(p)).collect()
    }

    /// Waits until at least `n` pids are announced.
    pub fn wait_pids(&self, n: usize) -> Vec<i32> {
        assert!(
            poll(DEADLINE, || self.pids().len() >= n),
            "expected {n} pids, got {:?}",
            self.pids()
        );
        self.pids()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for p in self.pids() {
            if sexton::procfs::process(p).is_some_and(|i| i.start_time >= self.started) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// True while `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    sexton::procfs::process(pid).is_some_and(|p| !p.is_zombie())
}

/// Polls `cond` every 5 ms until it holds or `limit` passes.
pub fn poll(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A spawned process killed (with its process group) on drop.
pub struct Spawned {
    pub child: Child,
}

impl Spawned {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits with a deadline; panics (and the drop kills) when it passes.
    pub fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let end = Instant::now() + limit;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return s;
            }
            assert!(
                Instant::now() < end,
                "process did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// Spawns a command in its own process group.
pub fn spawn(cmd: &mut Command) -> Spawned {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    Spawned {
        child: cmd.spawn().expect("spawn"),
    }
}

/// What one finished run gave.
#[derive(Debug)]
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Ran {
    /// The last line of stdout as the result document of `run --json`,
    /// checked against docs/schema/run.json.
    pub fn json(&self) -> serde_json::Value {
        let line = self.stdout.lines().last().unwrap_or("");
        let doc = serde_json::from_str(line).unwrap_or_else(|e| panic!("bad json {line:?}: {e}"));
        assert_schema(&doc, "run.json");
        doc
    }
}

/// Runs a command to the end with a deadline, capturing its output
/// through files (a pipe held by a leftover would make the harness itself
/// wait).
pub fn run_cmd(cmd: &mut Command, scratch: &Scratch) -> Ran {
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let out = scratch.path(&format!("out.{n}"));
    let err = scratch.path(&format!("err.{n}"));
    cmd.stdout(std::fs::File::create(&out).expect("out"))
        .stderr(std::fs::File::create(&err).expect("err"))
        .stdin(Stdio::null());
    let t0 = Instant::now();
    let mut s = spawn(cmd);
    let status = s.wait(DEADLINE);
    let elapsed = t0.elapsed();
    Ran {
        code: status.code(),
        stdout: std::fs::read_to_string(&out).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err).unwrap_or_default(),
        elapsed,
    }
}

/// `sexton run --tracking MODE ARGS...`.
pub fn sexton_run(scratch: &Scratch, mode: &str, args: &[&str]) -> Ran {
    let mut c = Command::new(SEXTON);
    c.args(["run", "--tracking", mode]).args(args);
    c.current_dir(&scratch.dir);
    run_cmd(&mut c, scratch)
}

/// What `subreaper.py` found after the command exited.
#[derive(Debug)]
pub struct Reaped {
    pub ran: Ran,
    pub status: i64,
    /// Processes the command left behind (live or zombie) that were
    /// reparented to the subreaper.
    pub children: Vec<serde_json::Value>,
}

pub fn helper(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/helpers")
        .join(name)
}

/// Runs `argv` under `subreaper.py`, which lists whatever it left behind.
pub fn under_subreaper(scratch: &Scratch, argv: &[&str]) -> Reaped {
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let report = scratch.path(&format!("report.{n}"));
    let mut c = Command::new("python3");
    c.arg(helper("subreaper.py")).arg(&report).args(argv);
    c.current_dir(&scratch.dir);
    let ran = run_cmd(&mut c, scratch);
    let text = std::fs::read_to_string(&report)
        .unwrap_or_else(|e| panic!("no report ({e}); stderr: {}", ran.stderr));
    let v: serde_json::Value = serde_json::from_str(&text).expect("report json");
    Reaped {
        ran,
        status: v["status"].as_i64().unwrap_or(-1),
        children: v["children"].as_array().cloned().unwrap_or_default(),
    }
}

/// How a test reads sexton's stdout through a pipe, as shell pipelines
/// really do.
#[derive(Debug, Clone, Copy)]
pub enum Consumer {
    /// `| head -c N`: reads N bytes, then closes the pipe.
    CloseAfter(usize),
    /// A slow reader: takes `chunk` bytes, then pauses `pause`, until EOF.
    Slow { chunk: usize, pause: Duration },
}

/// What a piped run gave.
#[derive(Debug)]
pub struct Piped {
    pub status: std::process::ExitStatus,
    /// What the consumer read.
    pub got: Vec<u8>,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Piped {
    /// The exit status as a shell's `$?` shows it.
    pub fn shell_status(&self) -> i32 {
        use std::os::unix::process::ExitStatusExt;
        self.status
            .code()
            .unwrap_or_else(|| 128 + self.status.signal().unwrap_or(0))
    }
}

/// Runs `program args` with its stdout read by `consumer` through a
/// pipe, and waits for it with the harness deadline (the drop of the
/// spawned process kills it if the deadline passes).
pub fn piped(scratch: &Scratch, program: &str, args: &[&str], consumer: Consumer) -> Piped {
    use std::io::Read;
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let err = scratch.path(&format!("piped-err.{n}"));
    let mut c = Command::new(program);
    c.args(args)
        .current_dir(&scratch.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&err).expect("err file"));
    let t0 = Instant::now();
    let mut sp = spawn(&mut c);
    let mut out = sp.child.stdout.take().expect("stdout pipe");
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        match consumer {
            Consumer::CloseAfter(n) => {
                let mut buf = vec![0u8; n];
                let mut have = 0;
                while have < n {
                    match out.read(&mut buf[have..]) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => have += k,
                    }
                }
                got.extend_from_slice(&buf[..have]);
                drop(out);
            }
            Consumer::Slow { chunk, pause } => {
                let mut buf = vec![0u8; chunk];
                loop {
                    // The pause is the slow consumer itself, not a wait
                    // for anything.
                    std::thread::sleep(pause);
                    match out.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => got.extend_from_slice(&buf[..k]),
                    }
                }
            }
        }
        got
    });
    let status = sp.wait(DEADLINE);
    let elapsed = t0.elapsed();
    let got = reader.join().expect("reader thread");
    Piped {
        status,
        got,
        stderr: std::fs::read_to_string(&err).unwrap_or_default(),
        elapsed,
    }
}

/// A terminal for a test: sexton runs with a pseudo-terminal as its
/// controlling terminal and stdio, in the terminal's foreground group,
/// as under an interactive shell. Dropping it kills what it started.
pub struct Pty {
    pub master: std::os::fd::OwnedFd,
    pub sp: Spawned,
    seen: Vec<u8>,
}

impl Pty {
    /// Starts `program args` on a new pseudo-terminal (`openpty`), in a
    /// new session whose controlling terminal it is.
    pub fn spawn(program: &str, args: &[&str], cwd: &Path) -> Pty {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let pty = nix::pty::openpty(None, None).expect("openpty");
        let slave = pty.slave;
        let mut c = Command::new(program);
        c.args(args).current_dir(cwd);
        c.stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // SAFETY: setsid and ioctl(TIOCSCTTY) are async-signal-safe.
        unsafe {
            c.pre_exec(|| {
                nix::unistd::setsid()?;
                rustix::process::ioctl_tiocsctty(std::io::stdin())?;
                Ok(())
            });
        }
        let child = c.spawn().expect("spawn on pty");
        let _ = pty.master.as_raw_fd();
        Pty {
            master: pty.master,
            sp: Spawned { child },
            seen: Vec::new(),
        }
    }

    pub fn write(&self, bytes: &[u8]) {
        nix::unistd::write(&self.master, bytes).expect("write to pty");
    }

    /// Reads the terminal until `want` has appeared (or the deadline
    /// passes: then false). Everything read stays in `seen()`.
    pub fn expect(&mut self, want: &str, limit: Duration) -> bool {
        use std::os::fd::AsFd;
        let end = Instant::now() + limit;
        loop {
            if String::from_utf8_lossy(&self.seen).contains(want) {
                return true;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let mut fds = [nix::poll::PollFd::new(
                self.master.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            let ms = left.as_millis().min(1000) as u16;
            if nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)).unwrap_or(0) > 0 {
                let mut buf = [0u8; 4096];
                match nix::unistd::read(&self.master, &mut buf) {
                    Ok(0) | Err(_) => {
                        // EIO once every slave fd is closed.
                        return String::from_utf8_lossy(&self.seen).contains(want);
                    }
                    Ok(n) => self.seen.extend_from_slice(&buf[..n]),
                }
            }
        }
    }

    pub fn seen(&self) -> String {
        String::from_utf8_lossy(&self.seen).into_owned()
    }
}
