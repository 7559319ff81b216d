//! Signals and timing: storms, SIGSTOP/SIGCONT of sexton, SIGKILL at random moments, the soak.
//!
//! The checks count processes, zombies and cgroups, which only means
//! something in a process nothing else shares: each test here runs as a
//! subprocess of the test binary (the `#[ignore]`d twin of the test,
//! started by [`run_isolated`]) that is a child subreaper, so that every
//! orphan of what it starts comes back to it, and that moves itself into
//! a cgroup of its own, so that the `sexton-*` cgroups sexton creates
//! beside itself are ours alone to count. Nothing else in the test run,
//! or on the machine, can change the figures.
//!
//! Every sexton command run here also has its stderr kept (see
//! [`Sandbox::stderr`]); each test ends by checking none of them says
//! "panicked".

use crate::common::{DEADLINE, SEXTON, Scratch, poll};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

// ------------------------------------------------------------- harness

/// Set in the environment of a test's subprocess twin.
const ISOLATED: &str = "SEXTON_RELIABILITY_ISOLATED";

/// `SEXTON_SOAK=1`: the long versions.
pub(crate) fn soak() -> bool {
    std::env::var("SEXTON_SOAK").is_ok_and(|v| v == "1")
}

/// Runs the `#[ignore]`d test `name` (its path in this crate, such as
/// `signals::storm_run`) in a subprocess of this test binary, waits for
/// it with `limit`, prints its output, and fails when it fails (or when
/// it did not run exactly one test). The subprocess and whatever it left
/// (its process group, its cgroup) are killed if it outlives `limit` or
/// this test fails.
pub(crate) fn run_isolated(name: &str, limit: Duration) {
    let scratch = Scratch::new("isolated");
    let out = scratch.path("stdout");
    let err = scratch.path("stderr");
    let mut c = Command::new(std::env::current_exe().expect("the test binary"));
    c.args([
        name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(ISOLATED, "1")
    .stdin(Stdio::null())
    .stdout(std::fs::File::create(&out).unwrap())
    .stderr(std::fs::File::create(&err).unwrap());
    let mut sp = crate::common::spawn(&mut c);
    let cleanup = SubprocessCgroup(sandbox_cgroup_of(sp.pid()));
    let status = sp.wait(limit);
    drop(cleanup);
    let stdout = std::fs::read_to_string(&out).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err).unwrap_or_default();
    eprintln!("--- {name} (subprocess) ---\n{stderr}{stdout}");
    assert!(
        status.success(),
        "{name} failed ({status:?}):\n{stderr}\n{stdout}"
    );
    assert!(
        stdout.contains("1 passed"),
        "{name} did not run exactly one test:\n{stdout}"
    );
}

/// Where the subprocess with `pid` puts itself: `reltest-PID` in the
/// cgroup this process is in.
fn sandbox_cgroup_of(pid: i32) -> Option<PathBuf> {
    let mount = sexton::procfs::cgroup2_mount()?;
    let own = sexton::procfs::own_cgroup_v2()?;
    Some(mount.join(own).join(format!("reltest-{pid}")))
}

/// Kills and removes a subprocess's cgroup (and the `sexton-*` ones in
/// it) if the subprocess did not: it failed or was killed.
struct SubprocessCgroup(Option<PathBuf>);

impl Drop for SubprocessCgroup {
    fn drop(&mut self) {
        if let Some(dir) = &self.0 {
            kill_cgroup_tree(dir);
        }
    }
}

/// `cgroup.kill` on `dir`, then removes it and every cgroup below it,
/// retrying while the kernel still counts dying members.
fn kill_cgroup_tree(dir: &Path) {
    if !dir.exists() {
        return;
    }
    let _ = std::fs::write(dir.join("cgroup.kill"), "1");
    let _ = poll(DEADLINE, || {
        remove_cgroup_tree(dir);
        !dir.exists()
    });
}

fn remove_cgroup_tree(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// How many sexton commands' stderr was looked at, and those that
/// mention a panic, for the check at the end of each test (only the
/// offenders are kept: the soak runs tens of thousands of commands).
static STDERRS: Mutex<(usize, Vec<(String, String)>)> = Mutex::new((0, Vec::new()));

/// Looks at `text`, what the command `label` wrote on stderr.
pub(crate) fn keep_stderr(label: &str, text: &str) {
    let mut all = STDERRS.lock().unwrap_or_else(|p| p.into_inner());
    all.0 += 1;
    if text.contains("panicked") || text.contains("RUST_BACKTRACE") {
        all.1.push((label.to_string(), text.to_string()));
    }
}

/// Fails if any stderr looked at mentions a panic; returns how many
/// were looked at.
pub(crate) fn assert_no_panic() -> usize {
    let all = STDERRS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((label, text)) = all.1.first() {
        panic!("{label} panicked:\n{text}");
    }
    all.0
}

/// The subprocess side: a child subreaper in a cgroup of its own, with a
/// scratch directory. Dropping it kills every process still below it
/// and removes its cgroup.
pub(crate) struct Sandbox {
    pub me: i32,
    /// Our own cgroup (`None`: no writable cgroup2, said on stderr).
    pub cgroup: Option<PathBuf>,
    /// Where we came from, to go back before removing ours.
    home: Option<PathBuf>,
    pub scratch: Scratch,
}

/// Children a test waits for itself (a std `Child`): never reaped behind
/// their owner's back.
static OWNED: Mutex<Vec<i32>> = Mutex::new(Vec::new());

fn owned() -> std::sync::MutexGuard<'static, Vec<i32>> {
    OWNED.lock().unwrap_or_else(|p| p.into_inner())
}

impl Sandbox {
    /// In a test's subprocess twin, the sandbox; `None` (said on stderr)
    /// when the test was started directly.
    pub(crate) fn enter(name: &str) -> Option<Sandbox> {
        if std::env::var_os(ISOLATED).is_none() {
            eprintln!("{name}: runs only as the subprocess of its twin test; nothing to do");
            return None;
        }
        nix::sys::prctl::set_child_subreaper(true).expect("PR_SET_CHILD_SUBREAPER");
        let me = std::process::id() as i32;
        let mut cgroup = None;
        let mut home = None;
        match sandbox_cgroup_of(me) {
            None => eprintln!("{name}: no cgroup2 mount: the cgroup checks are skipped"),
            Some(dir) => {
                let moved = std::fs::create_dir(&dir)
                    .and_then(|_| std::fs::write(dir.join("cgroup.procs"), me.to_string()));
                match moved {
                    Ok(()) => {
                        home = dir.parent().map(Path::to_path_buf);
                        cgroup = Some(dir);
                    }
                    Err(e) => {
                        let _ = std::fs::remove_dir(&dir);
                        eprintln!(
                            "{name}: cannot make a cgroup of our own ({e}): the cgroup checks are skipped"
                        );
                    }
                }
            }
        }
        Some(Sandbox {
            me,
            cgroup,
            home,
            scratch: Scratch::new(name),
        })
    }

    /// The number of `sexton-*` cgroups beside us, if we have a cgroup.
    pub(crate) fn sexton_cgroups(&self) -> Option<usize> {
        let dir = self.cgroup.as_ref()?;
        Some(
            std::fs::read_dir(dir)
                .map(|rd| {
                    rd.flatten()
                        .filter(|e| e.file_name().to_string_lossy().starts_with("sexton-"))
                        .count()
                })
                .unwrap_or(0),
        )
    }

    /// Spawns `cmd` (stdin /dev/null, stderr to a file kept for the
    /// panic check, stdout to a file unless set already).
    pub(crate) fn spawn(&self, label: &str, cmd: &mut Command) -> Kid {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let err = self.scratch.path(&format!("stderr.{n}"));
        cmd.stdin(Stdio::null())
            .stderr(std::fs::File::create(&err).expect("stderr file"));
        let child = cmd.spawn().unwrap_or_else(|e| panic!("{label}: {e}"));
        owned().push(child.id() as i32);
        Kid {
            child,
            label: label.to_string(),
            err,
        }
    }

    /// Runs `args` of sexton to the end (stdout captured); its stderr is
    /// kept for the panic check.
    pub(crate) fn sexton(&self, args: &[&str]) -> Done {
        self.sexton_in(&self.scratch.dir, args)
    }

    /// [`Sandbox::sexton`] in `dir`.
    pub(crate) fn sexton_in(&self, dir: &Path, args: &[&str]) -> Done {
        static N: AtomicU64 = AtomicU64::new(0);
        let out = self
            .scratch
            .path(&format!("stdout.{}", N.fetch_add(1, Ordering::Relaxed)));
        let mut c = Command::new(SEXTON);
        c.args(args)
            .current_dir(dir)
            .env_remove("SEXTON_STATE_DIR")
            .stdout(std::fs::File::create(&out).unwrap());
        let mut k = self.spawn(&format!("sexton {}", args.join(" ")), &mut c);
        let status = k.wait(DEADLINE);
        let stderr = k.stderr();
        let stdout = std::fs::read_to_string(&out).unwrap_or_default();
        let _ = std::fs::remove_file(&out);
        Done {
            code: status.code(),
            stdout,
            stderr,
        }
    }

    /// Our children other than the owned ones, each with its state.
    pub(crate) fn strays(&self) -> Vec<(i32, char)> {
        let owned = owned().clone();
        children_of(self.me)
            .into_iter()
            .filter(|(p, _)| !owned.contains(p))
            .collect()
    }

    /// Reaps the orphans that came back to us and have exited.
    pub(crate) fn reap_strays(&self) {
        for (pid, state) in self.strays() {
            if state == 'Z' {
                let _ = nix::sys::wait::waitpid(
                    Pid::from_raw(pid),
                    Some(nix::sys::wait::WaitPidFlag::WNOHANG),
                );
            }
        }
    }

    /// Waits until nothing below us runs but the owned children (orphans
    /// that exit are reaped); the processes still there otherwise.
    pub(crate) fn settle(&self, limit: Duration) -> Result<(), String> {
        let ok = poll(limit, || {
            self.reap_strays();
            self.strays().is_empty()
        });
        if ok {
            return Ok(());
        }
        Err(self
            .strays()
            .iter()
            .map(|(p, s)| describe(*p, *s))
            .collect::<Vec<_>>()
            .join("; "))
    }

    /// Zombies among our children (owned ones included: a child of ours
    /// that has exited and was not waited for).
    pub(crate) fn zombies(&self) -> usize {
        children_of(self.me)
            .into_iter()
            .filter(|(_, s)| *s == 'Z')
            .count()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Everything below us: kill our children until none is left
        // (killing one hands its own children to us).
        let _ = poll(DEADLINE, || {
            let kids = children_of(self.me);
            for (pid, _) in &kids {
                let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
                let _ = nix::sys::wait::waitpid(
                    Pid::from_raw(*pid),
                    Some(nix::sys::wait::WaitPidFlag::WNOHANG),
                );
            }
            kids.is_empty()
        });
        if let (Some(dir), Some(home)) = (&self.cgroup, &self.home) {
            let _ = std::fs::write(home.join("cgroup.procs"), self.me.to_string());
            kill_cgroup_tree(dir);
        }
    }
}

/// One process a test started, killed (and waited for) on drop.
pub(crate) struct Kid {
    pub child: Child,
    pub label: String,
    err: PathBuf,
}

impl Kid {
    pub(crate) fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits with a deadline (then panics; the drop kills).
    pub(crate) fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let mut status = None;
        let ok = poll(limit, || {
            status = self.child.try_wait().expect("try_wait");
            status.is_some()
        });
        assert!(ok, "{} did not exit within {limit:?}", self.label);
        let s = status.unwrap();
        let pid = self.pid();
        owned().retain(|&p| p != pid);
        keep_stderr(&self.label, &self.stderr());
        s
    }

    pub(crate) fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let pid = self.pid();
        owned().retain(|&p| p != pid);
        let _ = std::fs::remove_file(&self.err);
    }
}

/// A finished sexton command.
#[derive(Debug)]
pub(crate) struct Done {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

// ------------------------------------------------- /proc, read directly

/// State and parent of `pid` from /proc/PID/stat.
pub(crate) fn stat_of(pid: i32) -> Option<(char, i32)> {
    let text = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    let close = text.iter().rposition(|&b| b == b')')?;
    let rest = String::from_utf8_lossy(&text[close + 1..]).into_owned();
    let mut it = rest.split_whitespace();
    let state = it.next()?.chars().next()?;
    let ppid = it.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Every process whose parent is `parent`, with its state.
pub(crate) fn children_of(parent: i32) -> Vec<(i32, char)> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let (state, ppid) = stat_of(pid)?;
            (ppid == parent).then_some((pid, state))
        })
        .collect()
}

/// Every process below `pid` (not `pid` itself).
pub(crate) fn descendants_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        for (c, _) in children_of(p) {
            out.push(c);
            todo.push(c);
        }
    }
    out
}

/// Open fds of `pid`.
pub(crate) fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|rd| rd.count())
        .unwrap_or(0)
}

/// `fd -> target` of every open fd of `pid`, for messages.
pub(crate) fn fd_links(pid: i32) -> String {
    let mut v: Vec<(i32, String)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let n = e.file_name().to_str()?.parse().ok()?;
                    let l = std::fs::read_link(e.path()).ok()?;
                    Some((n, l.display().to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v.iter()
        .map(|(n, l)| format!("{n}->{l}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Resident memory of a process: all of it (VmRSS, file pages of the
/// executable included, which come and go with the code paths taken) and
/// the anonymous part (RssAnon: heap and stacks, where a leak shows).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Rss {
    pub total: u64,
    pub anon: u64,
}

impl std::fmt::Display for Rss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} KiB (anon {})", self.total, self.anon)
    }
}

/// VmRSS and RssAnon of `pid`, KiB.
pub(crate) fn rss_kib(pid: i32) -> Rss {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    Rss {
        total: field("VmRSS:"),
        anon: field("RssAnon:"),
    }
}

/// True while `pid` exists and is not a zombie.
pub(crate) fn running(pid: i32) -> bool {
    stat_of(pid).is_some_and(|(s, _)| s != 'Z' && s != 'X')
}

/// `pid (cmdline) state X` for messages.
fn describe(pid: i32, state: char) -> String {
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default();
    format!("{pid} ({}) {state}", cmd.trim())
}

/// True when `pid` runs the sexton binary under test.
pub(crate) fn is_sexton(pid: i32) -> bool {
    let want = std::fs::canonicalize(SEXTON).ok();
    std::fs::read_link(format!("/proc/{pid}/exe")).ok() == want
}

// ------------------------------------------------------------- randomness

/// A small xorshift generator; the seed is printed so a run can be
/// repeated (`SEXTON_SEED`).
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(what: &str) -> Rng {
        let seed = std::env::var("SEXTON_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
                    | 1
            });
        eprintln!("{what}: seed {seed} (SEXTON_SEED={seed} repeats it)");
        Rng(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

// ------------------------------------------------------ the counting program

/// Counts the signals it gets (each one: they are blocked and taken with
/// sigwaitinfo, so a queued realtime signal counts once per delivery).
/// Writes its pid to PIDFILE once ready, and its counts to COUNTS after
/// every signal; exits CODE on SIGUSR2, or on RTMIN+2 (a marker that
/// comes after every RTMIN+1 sent before it).
const SIGCOUNT: &str = r#"
import os, signal, sys
pidfile, counts_path, code = sys.argv[1], sys.argv[2], int(sys.argv[3])
RT1, RT2 = signal.SIGRTMIN + 1, signal.SIGRTMIN + 2
watch = [signal.SIGUSR1, signal.SIGWINCH, signal.SIGCHLD, RT1]
names = {signal.SIGUSR1: "USR1", signal.SIGWINCH: "WINCH", signal.SIGCHLD: "CHLD", RT1: "RT1"}
signal.pthread_sigmask(signal.SIG_BLOCK, watch + [signal.SIGUSR2, RT2])
counts = {n: 0 for n in names.values()}
fd = os.open(counts_path, os.O_WRONLY | os.O_CREAT, 0o644)
def dump():
    line = " ".join(f"{k}={v:08d}" for k, v in counts.items()) + "\n"
    os.pwrite(fd, line.encode(), 0)
dump()
tmp = pidfile + ".tmp"
with open(tmp, "w") as f:
    f.write(str(os.getpid()))
os.rename(tmp, pidfile)
while True:
    info = signal.sigwaitinfo(set(watch + [signal.SIGUSR2, RT2]))
    if info.si_signo in (signal.SIGUSR2, RT2):
        dump()
        os._exit(code)
    counts[names[info.si_signo]] += 1
    dump()
"#;

/// The counts `SIGCOUNT` wrote last.
fn counts(path: &Path) -> Option<BTreeMap<String, u64>> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().next()?;
    let mut m = BTreeMap::new();
    for part in line.split_whitespace() {
        let (k, v) = part.split_once('=')?;
        m.insert(k.to_string(), v.parse().ok()?);
    }
    (m.len() == 4).then_some(m)
}

/// The counting program's files in `dir`: (pidfile, counts).
fn sigcount_files(sb: &Sandbox, tag: &str) -> (PathBuf, PathBuf, PathBuf) {
    let script = sb.scratch.path("sigcount.py");
    if !script.exists() {
        std::fs::write(&script, SIGCOUNT).unwrap();
    }
    (
        script,
        sb.scratch.path(&format!("{tag}.pid")),
        sb.scratch.path(&format!("{tag}.counts")),
    )
}

/// Polls for the pid the counting program wrote.
fn wait_pidfile(path: &Path) -> i32 {
    let mut pid = None;
    assert!(
        poll(DEADLINE, || {
            pid = std::fs::read_to_string(path)
                .ok()
                .and_then(|t| t.trim().parse().ok());
            pid.is_some()
        }),
        "no pid in {}",
        path.display()
    );
    pid.unwrap()
}

// -------------------------------------------------------------- the storm

/// How many of each signal a storm sent.
#[derive(Debug, Default, Clone)]
struct Sent(BTreeMap<&'static str, u64>);

impl Sent {
    fn of(&self, name: &str) -> u64 {
        self.0.get(name).copied().unwrap_or(0)
    }
}

/// SIGCONTs the processes on drop, so that a failing test never leaves
/// them stopped.
struct ContOnDrop(Vec<i32>);

impl Drop for ContOnDrop {
    fn drop(&mut self) {
        for &p in &self.0 {
            let _ = kill(Pid::from_raw(p), Signal::SIGCONT);
        }
    }
}

/// Sends `rounds` rounds of `per_round` each of SIGCHLD, SIGUSR1 and
/// SIGWINCH (and `rt` of RTMIN+1 in all, spread over the rounds) to
/// `target`; between rounds stops every process of `stop` with SIGSTOP,
/// sends a round to the stopped target, and continues them. Counts what
/// the kernel accepted. Thousands of signals a second: the loop does
/// nothing else.
fn storm(target: i32, stop: &[i32], rounds: u32, per_round: u32, rt: u64) -> Sent {
    let _cont = ContOnDrop(stop.to_vec());
    let mut sent = Sent::default();
    let rt1 = sexton::parse::RTMIN + 1;
    let mut rt_left = rt;
    let t0 = Instant::now();
    let pid = Pid::from_raw(target);
    for round in 0..rounds {
        let stopped = round % 2 == 1;
        if stopped {
            for &p in stop {
                let _ = kill(Pid::from_raw(p), Signal::SIGSTOP);
            }
        }
        for i in 0..per_round {
            for (name, sig) in [
                ("CHLD", Signal::SIGCHLD),
                ("USR1", Signal::SIGUSR1),
                ("WINCH", Signal::SIGWINCH),
            ] {
                if kill(pid, sig).is_ok() {
                    *sent.0.entry(name).or_default() += 1;
                }
            }
            if rt_left > 0 && i % 2 == 0 {
                // SAFETY: kill(2) with a realtime signal number, which
                // nix's Signal cannot name.
                if unsafe { libc::kill(target, rt1) } == 0 {
                    *sent.0.entry("RT1").or_default() += 1;
                    rt_left -= 1;
                }
            }
        }
        if stopped {
            for &p in stop {
                let _ = kill(Pid::from_raw(p), Signal::SIGCONT);
            }
        }
    }
    let secs = t0.elapsed().as_secs_f64().max(1e-6);
    let total: u64 = sent.0.values().sum();
    eprintln!(
        "storm: {total} signals to pid {target} in {secs:.3} s ({:.0}/s), {:?}",
        total as f64 / secs,
        sent.0
    );
    sent
}

/// Polls until the counting program has counted at least `want` of each
/// named signal; the counts then.
fn wait_counts(path: &Path, want: &[(&str, u64)]) -> BTreeMap<String, u64> {
    let mut last = BTreeMap::new();
    let ok = poll(DEADLINE, || {
        if let Some(c) = counts(path) {
            last = c;
        }
        want.iter()
            .all(|(k, n)| last.get(*k).copied().unwrap_or(0) >= *n)
    });
    assert!(
        ok,
        "the program counted {last:?}, expected at least {want:?}"
    );
    last
}

/// Fd counts of `pids`, polled until they equal `before` (a signal may
/// be in the middle of being handled); the last counts.
fn fds_settle(pids: &[i32], before: &[usize]) -> Vec<usize> {
    let mut now = Vec::new();
    let _ = poll(DEADLINE, || {
        now = pids.iter().map(|&p| fd_count(p)).collect();
        now == before
    });
    now
}

/// Zombie children of any of `pids`, polled until none (a child may have
/// just exited); the last count.
fn zombie_children_settle(pids: &[i32]) -> usize {
    let mut n = 0;
    let _ = poll(DEADLINE, || {
        n = pids
            .iter()
            .map(|&p| children_of(p).iter().filter(|(_, s)| *s == 'Z').count())
            .sum();
        n == 0
    });
    n
}

/// Control: one SIGCHLD sent straight to the counting program is
/// counted, so a count of SIGCHLD forwarded by sexton (which must stay
/// at this one) is not zero by accident.
fn direct_chld(program: i32, counts_path: &Path) {
    kill(Pid::from_raw(program), Signal::SIGCHLD).unwrap();
    wait_counts(counts_path, &[("CHLD", 1)]);
}

/// How many times the supervisor in `dir` restarted `service`.
pub(crate) fn restarts(sb: &Sandbox, dir: &Path, service: &str) -> u64 {
    let d = sb.sexton_in(dir, &["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(d.stdout.trim()).unwrap_or_default();
    v["services"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == service))
        .and_then(|s| s["restarts"].as_u64())
        .unwrap_or(0)
}

/// A supervisor's figures with no run of a restarting service going on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct AtRest {
    /// Open fds of the guard and of the worker.
    pub fds: (usize, usize),
    /// RSS of the guard and of the worker, KiB.
    pub rss: (Rss, Rss),
    /// Zombie children of either.
    pub zombies: usize,
}

/// Stops the crash-looping `service` of the supervisor in `dir`, takes
/// the figures of its guard and worker, and starts it again. `sexton
/// start` answers once the service is up or has failed, which a crasher
/// with no start limit never is: its restarts going on are the answer,
/// and the client is let go (the supervisor closes its connection).
pub(crate) fn at_rest(sb: &Sandbox, dir: &Path, service: &str, guard: i32, worker: i32) -> AtRest {
    let stop = sb.sexton_in(dir, &["stop", service]);
    assert_eq!(stop.code, Some(0), "{stop:?}");
    // The fewest fds seen over 100 ms: an answer's connection may still
    // be closing; a leaked fd stays.
    let fewest = |pid: i32| {
        let end = Instant::now() + Duration::from_millis(100);
        let mut n = fd_count(pid);
        while Instant::now() < end {
            n = n.min(fd_count(pid));
            std::thread::sleep(Duration::from_millis(2));
        }
        n
    };
    let figures = AtRest {
        fds: (fewest(guard), fewest(worker)),
        rss: (rss_kib(guard), rss_kib(worker)),
        zombies: [guard, worker]
            .iter()
            .map(|&p| children_of(p).iter().filter(|(_, s)| *s == 'Z').count())
            .sum(),
    };
    let r = restarts(sb, dir, service);
    let mut c = Command::new(SEXTON);
    c.args(["start", service])
        .current_dir(dir)
        .env_remove("SEXTON_STATE_DIR")
        .stdout(Stdio::null());
    let start = sb.spawn(&format!("sexton start {service}"), &mut c);
    assert!(
        poll(DEADLINE, || restarts(sb, dir, service) > r + 2),
        "{service} did not start again: {}",
        start.stderr()
    );
    drop(start);
    figures
}

/// The child of `parent` that runs sexton (a guard's worker).
fn sexton_child(parent: i32) -> i32 {
    let mut found = None;
    assert!(
        poll(DEADLINE, || {
            found = children_of(parent)
                .into_iter()
                .map(|(p, _)| p)
                .find(|&p| is_sexton(p));
            found.is_some()
        }),
        "no sexton child of {parent}"
    );
    found.unwrap()
}

/// Stops `procs` with SIGSTOP, has the program `program` exit on its own
/// (SIGUSR2 straight to it) while they are stopped, waits until it is a
/// zombie nobody reaped, then continues them.
///
/// In cgroup mode sexton freezes the tree's cgroup for the moment it
/// signals the members (`Tree::signal_each`): stopped inside that moment,
/// still forwarding the storm's backlog, it leaves the program frozen
/// until it is continued. The stop is then taken again, once the cgroup
/// has been thawed.
fn program_exits_while_stopped(procs: &[i32], program: i32) {
    let cont = ContOnDrop(procs.to_vec());
    let stop_all = || {
        for &p in procs {
            kill(Pid::from_raw(p), Signal::SIGSTOP).unwrap();
        }
        assert!(
            poll(DEADLINE, || procs
                .iter()
                .all(|&p| stat_of(p).is_some_and(|(s, _)| s == 'T'))),
            "sexton did not stop"
        );
    };
    stop_all();
    let mut thaws = 0;
    while frozen(program) {
        thaws += 1;
        assert!(
            thaws < 1000,
            "sexton keeps stopping with the program frozen"
        );
        for &p in procs {
            kill(Pid::from_raw(p), Signal::SIGCONT).unwrap();
        }
        assert!(
            poll(DEADLINE, || !frozen(program)),
            "sexton never thawed the program's cgroup"
        );
        stop_all();
    }
    kill(Pid::from_raw(program), Signal::SIGUSR2).unwrap();
    assert!(
        poll(DEADLINE, || stat_of(program).is_none_or(|(s, _)| s == 'Z')),
        "the program did not exit"
    );
    drop(cont);
}

/// Whether `pid`'s cgroup (cgroup v2) is frozen (`cgroup.freeze` is 1).
fn frozen(pid: i32) -> bool {
    let Some(mount) = sexton::procfs::cgroup2_mount() else {
        return false;
    };
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return false;
    };
    let Some(rel) = text.lines().find_map(|l| l.strip_prefix("0::")) else {
        return false;
    };
    let path = mount
        .join(rel.trim_start_matches('/'))
        .join("cgroup.freeze");
    std::fs::read_to_string(path).is_ok_and(|f| f.trim() == "1")
}

/// The common end of each storm test: nothing left below the sandbox, no
/// zombie, no cgroup, no panic.
fn assert_clean(sb: &Sandbox, what: &str) {
    if let Err(left) = sb.settle(DEADLINE) {
        panic!("{what}: left behind: {left}");
    }
    assert_eq!(sb.zombies(), 0, "{what}: zombies");
    if let Some(n) = sb.sexton_cgroups() {
        assert!(
            poll(DEADLINE, || sb.sexton_cgroups() == Some(0)),
            "{what}: {n} sexton-* cgroups left"
        );
    }
}

/// Negative controls of the sandbox's own counters: an orphan that comes
/// back to us is seen (and reaped once it exits), a child of ours not
/// yet waited for is a zombie, and a cgroup named `sexton-*` beside us
/// is counted.
fn controls(sb: &Sandbox) {
    let orphan = sb.scratch.path("orphan.pid");
    let script = format!("sleep 30 > /dev/null 2>&1 & echo $! > {}", orphan.display());
    let d = sb.sexton(&[
        "run",
        "--leftovers",
        "leave",
        "--wait-delay",
        "1ms",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(d.code, Some(0), "{d:?}");
    let pid: i32 = std::fs::read_to_string(&orphan)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        poll(DEADLINE, || sb.strays().iter().any(|(p, _)| *p == pid)),
        "control: the orphan {pid} did not come back to the sandbox"
    );
    assert!(
        sb.settle(Duration::from_millis(50)).is_err(),
        "control: settle ignored an orphan"
    );
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    assert!(
        sb.settle(DEADLINE).is_ok(),
        "control: the killed orphan was not reaped"
    );
    let mut c = Command::new("true");
    let mut k = sb.spawn("true", &mut c);
    assert!(
        poll(DEADLINE, || sb.zombies() == 1),
        "control: no zombie seen"
    );
    k.wait(DEADLINE);
    assert_eq!(sb.zombies(), 0);
    if let Some(dir) = &sb.cgroup {
        let fake = dir.join("sexton-control-0");
        std::fs::create_dir(&fake).unwrap();
        assert_eq!(
            sb.sexton_cgroups(),
            Some(1),
            "control: a sexton-* cgroup not counted"
        );
        std::fs::remove_dir(&fake).unwrap();
        assert_eq!(sb.sexton_cgroups(), Some(0));
    }
}

// ------------------------------------------------------------ storm tests

/// Storm rounds: 20 rounds of 150 of each signal, every other round with
/// sexton stopped: 9,000 signals and 10 stops.
const ROUNDS: u32 = 20;
const PER_ROUND: u32 = 150;

#[test]
fn storm_against_run() {
    run_isolated(
        "signals::storm_against_run_isolated",
        Duration::from_secs(300),
    );
}

#[test]
#[ignore = "the subprocess of storm_against_run"]
fn storm_against_run_isolated() {
    let Some(sb) = Sandbox::enter("storm_against_run") else {
        return;
    };
    controls(&sb);
    for mode in crate::common::modes() {
        let (script, pidfile, counts_path) = sigcount_files(&sb, &format!("run-{mode}"));
        let mut c = Command::new(SEXTON);
        c.args(["run", "--tracking", mode, "--", "python3"])
            .arg(&script)
            .arg(&pidfile)
            .arg(&counts_path)
            .arg("7")
            .stdout(Stdio::null());
        let mut run = sb.spawn(&format!("sexton run --tracking {mode}"), &mut c);
        let program = wait_pidfile(&pidfile);
        let guard = run.pid();
        let worker = sexton_child(guard);
        let before = vec![fd_count(guard), fd_count(worker)];
        assert!(before.iter().all(|&n| n > 0), "no fds read: {before:?}");
        if mode == "cgroup" {
            assert_eq!(
                sb.sexton_cgroups(),
                Some(1),
                "the run's cgroup is not beside us"
            );
        }
        // Control: a SIGCHLD sent to the program itself is counted.
        direct_chld(program, &counts_path);

        let sent = storm(guard, &[guard, worker], ROUNDS, PER_ROUND, 0);
        // Every forwarded kind reaches the program, none more often than
        // it was sent (standard signals coalesce on the way); SIGCHLD is
        // not forwarded at all.
        let seen = wait_counts(&counts_path, &[("USR1", 1), ("WINCH", 1)]);
        let after = fds_settle(&[guard, worker], &before);
        assert_eq!(after, before, "{mode}: fds of guard and worker");
        assert_eq!(zombie_children_settle(&[guard, worker]), 0, "{mode}");

        program_exits_while_stopped(&[guard, worker], program);
        let status = run.wait(DEADLINE);
        assert_eq!(status.code(), Some(7), "{mode}: {}", run.stderr());
        let fin = counts(&counts_path).unwrap();
        assert_eq!(fin["CHLD"], 1, "{mode}: SIGCHLD forwarded: {fin:?}");
        assert!(
            fin["USR1"] >= seen["USR1"] && fin["USR1"] <= sent.of("USR1"),
            "{mode}: {fin:?} {sent:?}"
        );
        assert!(
            fin["WINCH"] >= 1 && fin["WINCH"] <= sent.of("WINCH"),
            "{mode}: {fin:?} {sent:?}"
        );
        eprintln!(
            "run --tracking {mode}: sent {:?}, the program counted {fin:?}, fds {before:?} -> {after:?}, exit 7",
            sent.0
        );
        assert_clean(&sb, &format!("run --tracking {mode}"));
    }
    eprintln!("{} stderr(s) checked for panics", assert_no_panic());
}

#[test]
fn storm_against_init() {
    run_isolated(
        "signals::storm_against_init_isolated",
        Duration::from_secs(300),
    );
}

#[test]
#[ignore = "the subprocess of storm_against_init"]
fn storm_against_init_isolated() {
    let Some(sb) = Sandbox::enter("storm_against_init") else {
        return;
    };
    let (script, pidfile, counts_path) = sigcount_files(&sb, "init");
    let mut c = Command::new(SEXTON);
    c.args(["init", "--", "python3"])
        .arg(&script)
        .arg(&pidfile)
        .arg(&counts_path)
        .arg("7")
        .stdout(Stdio::null());
    let mut init = sb.spawn("sexton init", &mut c);
    let program = wait_pidfile(&pidfile);
    let pid = init.pid();
    let before = vec![fd_count(pid)];
    assert!(before[0] > 0);
    direct_chld(program, &counts_path);

    // Realtime signals queue: each of the 1,000 RTMIN+1 sent is one
    // delivery, so the count must be exact.
    let rt = 1000;
    let sent = storm(pid, &[pid], ROUNDS, PER_ROUND, rt);
    assert_eq!(sent.of("RT1"), rt, "the kernel refused realtime signals");
    let seen = wait_counts(&counts_path, &[("USR1", 1), ("WINCH", 1), ("RT1", rt)]);
    assert_eq!(fds_settle(&[pid], &before), before, "fds of init");
    assert_eq!(zombie_children_settle(&[pid]), 0);
    // A marker through the same way: it comes after every RTMIN+1 init
    // forwarded, so a duplicate would be counted by now.
    // SAFETY: kill(2) with a realtime signal number.
    assert_eq!(unsafe { libc::kill(pid, sexton::parse::RTMIN + 2) }, 0);
    let status = init.wait(DEADLINE);
    assert_eq!(status.code(), Some(7), "{}", init.stderr());
    let fin = counts(&counts_path).unwrap();
    assert_eq!(fin["RT1"], rt, "RTMIN+1 lost or doubled: {fin:?}");
    assert_eq!(fin["CHLD"], 1, "SIGCHLD forwarded: {fin:?}");
    assert!(
        fin["USR1"] >= seen["USR1"] && fin["USR1"] <= sent.of("USR1"),
        "{fin:?} {sent:?}"
    );
    assert!(
        fin["WINCH"] >= 1 && fin["WINCH"] <= sent.of("WINCH"),
        "{fin:?} {sent:?}"
    );
    eprintln!("init: sent {:?}, the program counted {fin:?}", sent.0);
    assert_clean(&sb, "init");

    // Again, and the program exits on its own while init is stopped.
    let (script, pidfile, counts_path) = sigcount_files(&sb, "init2");
    let mut c = Command::new(SEXTON);
    c.args(["init", "--", "python3"])
        .arg(&script)
        .arg(&pidfile)
        .arg(&counts_path)
        .arg("7")
        .stdout(Stdio::null());
    let mut init = sb.spawn("sexton init", &mut c);
    let program = wait_pidfile(&pidfile);
    let pid = init.pid();
    let before = vec![fd_count(pid)];
    let sent = storm(pid, &[pid], ROUNDS, PER_ROUND, 0);
    wait_counts(&counts_path, &[("USR1", 1), ("WINCH", 1)]);
    let after = fds_settle(&[pid], &before);
    assert_eq!(after, before, "fds of init");
    program_exits_while_stopped(&[pid], program);
    let status = init.wait(DEADLINE);
    assert_eq!(status.code(), Some(7), "{}", init.stderr());
    let fin = counts(&counts_path).unwrap();
    assert!(
        fin["USR1"] <= sent.of("USR1") && fin["WINCH"] <= sent.of("WINCH"),
        "{fin:?}"
    );
    assert_eq!(fin["CHLD"], 0, "SIGCHLD forwarded: {fin:?}");
    assert_clean(&sb, "init, stopped");
    eprintln!("{} stderr(s) checked for panics", assert_no_panic());
}

#[test]
fn storm_against_daemon() {
    run_isolated(
        "signals::storm_against_daemon_isolated",
        Duration::from_secs(300),
    );
}

#[test]
#[ignore = "the subprocess of storm_against_daemon"]
fn storm_against_daemon_isolated() {
    let Some(sb) = Sandbox::enter("storm_against_daemon") else {
        return;
    };
    let (script, pidfile, counts_path) = sigcount_files(&sb, "prog");
    let daemon_pidfile = sb.scratch.path("daemon.pid");
    let log = sb.scratch.path("daemon.log");
    let started = sb.sexton(&[
        "daemon",
        "--pidfile",
        daemon_pidfile.to_str().unwrap(),
        "--log",
        log.to_str().unwrap(),
        "--",
        "python3",
        script.to_str().unwrap(),
        pidfile.to_str().unwrap(),
        counts_path.to_str().unwrap(),
        "7",
    ]);
    assert_eq!(started.code, Some(0), "{started:?}");
    let program = wait_pidfile(&pidfile);
    // The monitor: the guard holding the pidfile (our child now: it was
    // orphaned by the double fork) and its worker.
    let status = sb.sexton(&[
        "daemon",
        "--status",
        "--pidfile",
        daemon_pidfile.to_str().unwrap(),
    ]);
    let guard: i32 = status
        .stdout
        .split("monitor ")
        .nth(1)
        .and_then(|r| r.trim_end().trim_end_matches(')').parse().ok())
        .unwrap_or_else(|| panic!("no monitor in {status:?}"));
    let worker = sexton_child(guard);
    let before = vec![fd_count(guard), fd_count(worker)];
    assert!(before.iter().all(|&n| n > 0), "no fds read: {before:?}");
    direct_chld(program, &counts_path);

    let sent = storm(guard, &[guard, worker], ROUNDS, PER_ROUND, 0);
    // USR1 is passed on to the program; WINCH and CHLD are not (the
    // monitor's control signals are TERM, INT, QUIT, HUP, USR1, USR2).
    let seen = wait_counts(&counts_path, &[("USR1", 1)]);
    let after = fds_settle(&[guard, worker], &before);
    assert_eq!(after, before, "fds of the monitor's guard and worker");
    assert_eq!(zombie_children_settle(&[guard, worker]), 0);

    program_exits_while_stopped(&[guard, worker], program);
    // The monitor logs the exit with its status, then ends (no respawn).
    assert!(
        poll(DEADLINE, || std::fs::read_to_string(&log)
            .is_ok_and(|l| l.contains("exited with status 7"))),
        "no exit logged: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let fin = counts(&counts_path).unwrap();
    assert_eq!(fin["CHLD"], 1, "SIGCHLD forwarded: {fin:?}");
    assert_eq!(fin["WINCH"], 0, "SIGWINCH forwarded: {fin:?}");
    assert!(
        fin["USR1"] >= seen["USR1"] && fin["USR1"] <= sent.of("USR1"),
        "{fin:?} {sent:?}"
    );
    eprintln!(
        "daemon: sent {:?}, the program counted {fin:?}, fds {before:?} -> {after:?}",
        sent.0
    );
    assert!(
        poll(DEADLINE, || !daemon_pidfile.exists()),
        "the pidfile outlived the monitor"
    );
    assert_clean(&sb, "daemon");
    eprintln!("{} stderr(s) checked for panics", assert_no_panic());
}

#[test]
fn storm_against_supervisor() {
    run_isolated(
        "signals::storm_against_supervisor_isolated",
        Duration::from_secs(300),
    );
}

#[test]
#[ignore = "the subprocess of storm_against_supervisor"]
fn storm_against_supervisor_isolated() {
    let Some(sb) = Sandbox::enter("storm_against_supervisor") else {
        return;
    };
    let (script, pidfile, counts_path) = sigcount_files(&sb, "svc");
    let config = format!(
        r#"
[services.counter]
command = ["python3", "{}", "{}", "{}", "7"]
restart = "never"

[services.crasher]
command = ["sh", "-c", "exit 3"]
restart = "on-failure"
backoff_initial = "1ms"
backoff_max = "1ms"
start_limit_burst = 4294967295
start_limit_interval = "1ms"
"#,
        script.display(),
        pidfile.display(),
        counts_path.display()
    );
    std::fs::write(sb.scratch.path("sexton.toml"), config).unwrap();
    let mut c = Command::new(SEXTON);
    c.args(["up", "--color", "never"])
        .current_dir(&sb.scratch.dir)
        .env_remove("SEXTON_STATE_DIR")
        .stdout(Stdio::null());
    let mut up = sb.spawn("sexton up", &mut c);
    let program = wait_pidfile(&pidfile);
    let guard = up.pid();
    let worker = sexton_child(guard);
    // At rest: the crasher stopped, so that no run of it holds fds in
    // the worker at that moment.
    let rest = |sb: &Sandbox| {
        let r = at_rest(sb, &sb.scratch.dir, "crasher", guard, worker);
        vec![r.fds.0, r.fds.1]
    };
    let before = rest(&sb);
    assert!(before.iter().all(|&n| n > 0), "no fds read: {before:?}");
    direct_chld(program, &counts_path);

    let sent = storm(guard, &[guard, worker], ROUNDS, PER_ROUND, 0);
    let after = rest(&sb);
    // The supervisor forwards nothing to its services.
    let fin = counts(&counts_path).unwrap();
    assert_eq!(
        fin.values().sum::<u64>(),
        1,
        "a service got the supervisor's signals: {fin:?}"
    );
    assert_eq!(after, before, "fds of the supervisor: {}", fd_links(worker));
    assert!(
        running(guard) && running(worker),
        "the supervisor died of the storm: {}",
        up.stderr()
    );

    // The counter exits 7 while the supervisor is stopped: its status
    // is still the one recorded.
    program_exits_while_stopped(&[guard, worker], program);
    let svc = |name: &str| -> serde_json::Value {
        let d = sb.sexton(&["status", "--json"]);
        let v: serde_json::Value = serde_json::from_str(d.stdout.trim()).unwrap_or_default();
        v["services"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["name"] == name).cloned())
            .unwrap_or_default()
    };
    let mut counter = serde_json::Value::Null;
    assert!(
        poll(DEADLINE, || {
            counter = svc("counter");
            counter["state"] == "exited"
        }),
        "counter: {counter}"
    );
    assert_eq!(counter["last_exit"]["code"], 7, "{counter}");
    assert_eq!(zombie_children_settle(&[guard, worker]), 0);
    // Every start of the crasher that ended has its exit in the log.
    let down = sb.sexton(&["down"]);
    assert_eq!(down.code, Some(0), "{down:?}");
    let status = up.wait(DEADLINE);
    assert_eq!(status.code(), Some(0), "{}", up.stderr());
    let log = std::fs::read_to_string(sb.scratch.path(".sexton/logs/crasher.log")).unwrap();
    let starts = log
        .lines()
        .filter(|l| l.contains(" sexton started (pid"))
        .count();
    let exits = log
        .lines()
        .filter(|l| l.contains("exited with status 3"))
        .count();
    assert!(starts > 10, "the crasher hardly ran: {starts} starts");
    // The last start may have been stopped by `down` instead.
    assert!(
        exits <= starts && starts <= exits + 1,
        "{starts} starts, {exits} exits with status 3:\n{log}"
    );
    eprintln!(
        "supervisor: sent {:?}, services counted nothing, fds {before:?} -> {after:?}, crasher {starts} starts / {exits} exits 3, counter last_exit 7",
        sent.0
    );
    assert_clean(&sb, "supervisor");
    eprintln!("{} stderr(s) checked for panics", assert_no_panic());
}

// ------------------------------------------------ SIGKILL at random moments

/// The moments sexton is killed at, in turn.
const MOMENTS: [&str; 4] = [
    "run, during the spawn",
    "run, during a timeout's kill",
    "up, during the restarts of a crashing service",
    "daemon, during the start",
];

#[test]
fn sigkill_at_random_moments() {
    let limit = if soak() { 1800 } else { 600 };
    run_isolated(
        "signals::sigkill_at_random_moments_isolated",
        Duration::from_secs(limit),
    );
}

#[test]
#[ignore = "the subprocess of sigkill_at_random_moments"]
fn sigkill_at_random_moments_isolated() {
    let Some(sb) = Sandbox::enter("sigkill_at_random_moments") else {
        return;
    };
    let reps = if soak() { 200 } else { 20 };
    eprintln!(
        "sigkill_at_random_moments: {reps} repetitions ({})",
        if soak() {
            "SEXTON_SOAK=1"
        } else {
            "the short version; SEXTON_SOAK=1 runs 200"
        }
    );
    let mut rng = Rng::new("sigkill_at_random_moments");
    let t0 = Instant::now();
    let mut victims: BTreeMap<&str, u32> = BTreeMap::new();
    for i in 0..reps {
        let moment = MOMENTS[i % MOMENTS.len()];
        let dir = sb.scratch.path(&format!("rep{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let victim = match i % MOMENTS.len() {
            0 => kill_run_during_spawn(&sb, &mut rng),
            1 => kill_run_during_timeout(&sb, &mut rng),
            2 => kill_up_while_restarting(&sb, &dir, &mut rng),
            _ => kill_daemon_during_start(&sb, &dir, &mut rng),
        };
        *victims.entry(victim).or_default() += 1;
        after_kill(&sb, &format!("#{i} {moment} ({victim} killed)"));
        next_run_works(&sb, &dir, i % MOMENTS.len(), &format!("#{i} {moment}"));
    }
    eprintln!(
        "sigkill_at_random_moments: {reps} repetitions in {:.1} s, killed: {victims:?}; \
         after each, nothing left, no zombie, no sexton-* cgroup, the next run worked",
        t0.elapsed().as_secs_f64()
    );
    eprintln!("{} stderr(s) checked for panics", assert_no_panic());
}

/// SIGKILL to one of: the process we started (the guard), the worker
/// below it (when it exists yet), or the guard's whole process group.
/// Returns which.
fn kill_front_end(guard: i32, rng: &mut Rng) -> &'static str {
    let worker = children_of(guard)
        .into_iter()
        .map(|(p, _)| p)
        .find(|&p| is_sexton(p));
    match (rng.below(3), worker) {
        (1, Some(w)) => {
            let _ = kill(Pid::from_raw(w), Signal::SIGKILL);
            "worker"
        }
        (2, _) => {
            let _ = nix::sys::signal::killpg(Pid::from_raw(guard), Signal::SIGKILL);
            "process group"
        }
        _ => {
            let _ = kill(Pid::from_raw(guard), Signal::SIGKILL);
            "guard"
        }
    }
}

/// A tree with an escapee (`setsid`) and a background child.
const TREE: &str = "sleep 30 & setsid sleep 30 & exec sleep 30";

fn kill_run_during_spawn(sb: &Sandbox, rng: &mut Rng) -> &'static str {
    let mut c = Command::new(SEXTON);
    c.args(["run", "--", "sh", "-c", TREE])
        .stdout(Stdio::null())
        .process_group(0);
    let mut k = sb.spawn("sexton run (killed)", &mut c);
    // The random delay is the point: somewhere in the start-up.
    std::thread::sleep(Duration::from_micros(rng.below(20_000)));
    let victim = kill_front_end(k.pid(), rng);
    k.wait(DEADLINE);
    victim
}

fn kill_run_during_timeout(sb: &Sandbox, rng: &mut Rng) -> &'static str {
    let mut c = Command::new(SEXTON);
    c.args([
        "run",
        "-t",
        "50ms",
        "-k",
        "300ms",
        "--",
        "sh",
        "-c",
        &format!("trap '' TERM; {TREE}"),
    ])
    .stdout(Stdio::null())
    .process_group(0);
    let mut k = sb.spawn("sexton run -t (killed)", &mut c);
    // Between the stop signal (50 ms) and past the SIGKILL (350 ms).
    std::thread::sleep(Duration::from_millis(30 + rng.below(400)));
    let victim = kill_front_end(k.pid(), rng);
    k.wait(DEADLINE);
    victim
}

const CRASHER: &str = r#"
[services.crasher]
command = ["sh", "-c", "sleep 30 & setsid sleep 30 & exit 3"]
backoff_initial = "1ms"
backoff_max = "1ms"
start_limit_burst = 4294967295
start_limit_interval = "1ms"

[services.steady]
command = "sleep 30"
"#;

fn kill_up_while_restarting(sb: &Sandbox, dir: &Path, rng: &mut Rng) -> &'static str {
    std::fs::write(dir.join("sexton.toml"), CRASHER).unwrap();
    let mut c = Command::new(SEXTON);
    c.args(["up", "--color", "never"])
        .current_dir(dir)
        .env_remove("SEXTON_STATE_DIR")
        .stdout(Stdio::null())
        .process_group(0);
    let mut k = sb.spawn("sexton up (killed)", &mut c);
    let log = dir.join(".sexton/logs/crasher.log");
    assert!(
        poll(DEADLINE, || std::fs::read_to_string(&log)
            .is_ok_and(|l| l.matches("started (pid").count() >= 2)),
        "the crasher never restarted: {}",
        k.stderr()
    );
    std::thread::sleep(Duration::from_micros(rng.below(200_000)));
    let victim = kill_front_end(k.pid(), rng);
    k.wait(DEADLINE);
    victim
}

fn kill_daemon_during_start(sb: &Sandbox, dir: &Path, rng: &mut Rng) -> &'static str {
    let pidfile = dir.join("d.pid");
    let mut c = Command::new(SEXTON);
    c.args(["daemon", "--pidfile"])
        .arg(&pidfile)
        .arg("--log")
        .arg(dir.join("d.log"))
        .args(["--", "sh", "-c", TREE])
        .stdout(Stdio::null());
    let mut k = sb.spawn("sexton daemon (killed)", &mut c);
    std::thread::sleep(Duration::from_micros(rng.below(300_000)));
    // Any sexton process of the start: the caller, the process between
    // the two forks, the monitor's guard or its worker.
    let mut sextons: Vec<i32> = vec![k.pid()];
    sextons.extend(descendants_of(sb.me).into_iter().filter(|&p| is_sexton(p)));
    sextons.sort();
    sextons.dedup();
    let pick = sextons[rng.below(sextons.len() as u64) as usize];
    let victim = if pick == k.pid() {
        "caller"
    } else if stat_of(pick).is_some_and(|(_, pp)| pp == sb.me) {
        "monitor"
    } else {
        "worker or middle process"
    };
    let _ = kill(Pid::from_raw(pick), Signal::SIGKILL);
    k.wait(DEADLINE);
    // Whatever survived the kill goes on by itself; wait until it has
    // settled: a daemon running on the pidfile, or no sexton left.
    let status =
        |sb: &Sandbox| sb.sexton(&["daemon", "--status", "--pidfile", pidfile.to_str().unwrap()]);
    assert!(
        poll(DEADLINE, || status(sb).code == Some(0)
            || !descendants_of(sb.me).into_iter().any(is_sexton)),
        "the start never settled"
    );
    let stop = sb.sexton(&["daemon", "--stop", "--pidfile", pidfile.to_str().unwrap()]);
    assert_eq!(stop.code, Some(0), "--stop after the kill: {stop:?}");
    victim
}

/// Nothing of the killed run is left: every process below us gone, no
/// zombie, no `sexton-*` cgroup.
fn after_kill(sb: &Sandbox, what: &str) {
    assert_clean(sb, what);
}

/// The next run of the same kind works, on the same pidfile or state
/// directory, and leaves nothing either.
fn next_run_works(sb: &Sandbox, dir: &Path, kind: usize, what: &str) {
    match kind {
        0 | 1 => {
            let d = sb.sexton(&["run", "--", "sh", "-c", "exit 7"]);
            assert_eq!(d.code, Some(7), "{what}: the next run: {d:?}");
        }
        2 => {
            std::fs::write(
                dir.join("sexton.toml"),
                "[services.steady]\ncommand = \"sleep 30\"\n",
            )
            .unwrap();
            let up = sb.sexton_in(dir, &["up", "-d"]);
            assert_eq!(up.code, Some(0), "{what}: the next up: {up:?}");
            let down = sb.sexton_in(dir, &["down"]);
            assert_eq!(down.code, Some(0), "{what}: down: {down:?}");
        }
        _ => {
            let pidfile = dir.join("d.pid");
            let p = pidfile.to_str().unwrap();
            let start = sb.sexton(&["daemon", "--pidfile", p, "--", "sleep", "30"]);
            assert_eq!(start.code, Some(0), "{what}: the next start: {start:?}");
            let stop = sb.sexton(&["daemon", "--stop", "--pidfile", p]);
            assert_eq!(stop.code, Some(0), "{what}: --stop: {stop:?}");
        }
    }
    assert_clean(sb, &format!("{what}, the next run"));
}

// ------------------------------------------------------------- bad input

/// Every command with bad input: one line (and maybe a hint) on stderr,
/// an exit status (not a signal), never a panic. Release builds abort on a panic, so
/// its message on stderr is the only trace.
#[test]
fn bad_input_never_panics() {
    run_isolated(
        "signals::bad_input_never_panics_isolated",
        Duration::from_secs(300),
    );
}

#[test]
#[ignore = "the subprocess of bad_input_never_panics"]
fn bad_input_never_panics_isolated() {
    let Some(sb) = Sandbox::enter("bad_input_never_panics") else {
        return;
    };
    let d = |name: &str| sb.scratch.path(name).to_str().unwrap().to_string();
    // A directory where a file is expected: unreadable for root too.
    std::fs::create_dir_all(sb.scratch.path("dir.toml")).unwrap();
    std::fs::write(sb.scratch.path("bad.toml"), "[services.a\ncommand = 'x'\n").unwrap();
    std::fs::write(
        sb.scratch.path("latin1.toml"),
        b"[services.a]\ncommand = \"caf\xe9\"\n",
    )
    .unwrap();
    std::fs::write(
        sb.scratch.path("values.toml"),
        "[services.a]\ncommand = \"true\"\nstop_timeout = \"10 parsecs\"\n",
    )
    .unwrap();
    std::fs::write(sb.scratch.path("text.pid"), "not a pid file\nat all\n").unwrap();
    std::fs::write(sb.scratch.path("Procfile.bad"), "web ./server\n").unwrap();
    std::fs::write(
        sb.scratch.path("envfile.toml"),
        "[services.a]\ncommand = \"true\"\nenv_file = \"missing.env\"\n",
    )
    .unwrap();
    let missing_dir_pid = d("no/such/dir/x.pid");
    let cases: Vec<Vec<String>> = [
        vec!["run", "--", "/nonexistent/program"],
        vec!["run", "--", "no-such-program-anywhere"],
        vec!["run", "--"],
        vec!["run", "-t", "soon", "--", "true"],
        vec!["run", "-t", "-1", "--", "true"],
        vec!["run", "-k", "1e", "--", "true"],
        vec!["run", "--wait-delay", "x", "--", "true"],
        vec!["run", "-s", "NOPE", "--", "true"],
        vec!["run", "-s", "99", "--", "true"],
        vec!["run", "-s", "RTMIN+99", "--", "true"],
        vec!["run", "--json", "--output-limit", "lots", "--", "true"],
        vec!["run", "--env", "=x", "--", "true"],
        vec!["run", "--env", "noequals", "--", "true"],
        vec!["run", "--cwd", "/nonexistent", "--", "true"],
        vec!["run", "--input", "/nonexistent", "--", "cat"],
        vec!["run", "--pass-fd", "99", "--", "true"],
        vec!["run", "--pass-fd", "-1", "--", "true"],
        vec!["run", "--tracking", "sideways", "--", "true"],
        vec!["run", "--log", &d("no/such/dir/log"), "--", "true"],
        vec!["run", "--shell", "--", "a", "b"],
        vec!["run", "--timout", "5", "--", "true"],
        vec!["init", "--", "/nonexistent/program"],
        vec!["init"],
        vec!["init", "--rewrite", "TERM", "--", "true"],
        vec!["init", "--rewrite", "TERM:NOPE", "--", "true"],
        vec!["init", "--rewrite", ":USR1", "--", "true"],
        vec!["init", "--rewrite", "RTMIN:TERM", "--", "true"],
        vec!["init", "-s", "NOPE", "--", "true"],
        vec!["init", "-g", "soon", "--", "true"],
        vec!["daemon", "--pidfile", &missing_dir_pid, "--", "sleep", "1"],
        vec!["daemon", "--stop", "--pidfile", &missing_dir_pid],
        vec!["daemon", "--stop", "--pidfile", &d("text.pid")],
        vec!["daemon", "--status", "--pidfile", &d("text.pid")],
        vec!["daemon", "--status"],
        vec!["daemon", "--umask", "999", "--", "true"],
        vec![
            "daemon",
            "--respawn",
            "--respawn-backoff",
            "soon",
            "--",
            "true",
        ],
        vec!["daemon", "--respawn-limit", "0", "--respawn", "--", "true"],
        vec!["daemon", "--ready", "bogus", "--", "true"],
        vec!["daemon", "--ready", "tcp:nohost", "--", "true"],
        vec!["daemon", "--ready", "log:(", "--", "true"],
        vec!["daemon", "--ready", "cmd:'unbalanced", "--", "true"],
        vec!["daemon", "--timeout", "5s", "--", "true"],
        vec![
            "daemon",
            "--pidfile",
            &d("p.pid"),
            "--",
            "/nonexistent/program",
        ],
        vec!["daemon", "--log", &d("no/such/dir/log"), "--", "true"],
        vec!["up", "-f", &d("dir.toml")],
        vec!["up", "-f", &d("missing.toml")],
        vec!["up", "-f", &d("bad.toml")],
        vec!["up", "-f", &d("latin1.toml")],
        vec!["up", "-f", &d("values.toml")],
        vec!["up", "-f", &d("Procfile.bad")],
        vec!["up", "-f", &d("envfile.toml")],
        vec!["up", "--state-dir", &d("text.pid"), "-f", &d("values.toml")],
        vec!["status", "--state-dir", &d("nowhere")],
        vec!["stop", "nosuch", "--state-dir", &d("nowhere")],
        vec!["start", "nosuch", "--state-dir", &d("nowhere")],
        vec!["reload", "--state-dir", &d("nowhere")],
        vec!["down", "--state-dir", &d("nowhere")],
        vec!["logs", "nosuch", "--state-dir", &d("nowhere")],
        vec!["logs", "-n", "x", "web"],
        vec!["why", "notapid"],
        vec!["why", "999999999"],
        vec!["why", "-5"],
        vec!["zombies", "--pid", "x"],
        vec!["orphans", "--pid", "-1"],
        vec!["shared", "--pid", "0"],
        vec!["audit", "--bogus"],
        vec!["check", "--", "/nonexistent/program"],
        vec!["check", "-t", "soon", "--", "true"],
        vec!["demo", "bogus"],
        vec!["man", "bogus"],
        vec!["completions", "bogus"],
        vec!["run", "--color", "bogus", "--", "true"],
        vec!["status", "--color", "sometimes"],
        vec!["bogus"],
        vec![],
    ]
    .into_iter()
    .map(|v| v.into_iter().map(String::from).collect())
    .collect();
    let mut failed = Vec::new();
    for args in &cases {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = sb.sexton(&a);
        let text = r.stderr.trim_end();
        let lines: Vec<&str> = text.lines().collect();
        let shaped = match lines.as_slice() {
            [] => true,
            [one] => one.starts_with("sexton: ") || one.starts_with("Usage: "),
            [one, two] => one.starts_with("sexton: ") && two.starts_with("hint: "),
            _ => false,
        };
        // A panic aborts (SIGABRT): no exit code at all.
        let ok = r.code.is_some()
            && !text.contains("panicked")
            && (shaped || a.is_empty() || a == ["daemon", "--status"]);
        eprintln!("{:?} -> {:?}: {}", a, r.code, text.replace('\n', " | "));
        if !ok {
            failed.push(format!("{a:?} -> {:?}:\n{}", r.code, r.stderr));
        }
    }
    // The supervisor with a backoff as long as it gets, restarting a
    // crashing service: it restarts (in a very long time) and stops
    // cleanly, without overflowing the backoff.
    std::fs::write(
        sb.scratch.path("sexton.toml"),
        "[services.c]\ncommand = \"false\"\nbackoff_initial = 1.8e19\nbackoff_max = 1.8e19\nstop_timeout = 9223372036854775807\n",
    )
    .unwrap();
    let mut c = Command::new(SEXTON);
    c.args(["up", "--color", "never"])
        .current_dir(&sb.scratch.dir)
        .env_remove("SEXTON_STATE_DIR")
        .stdout(Stdio::null());
    let mut up = sb.spawn("sexton up (huge backoff)", &mut c);
    let log = sb.scratch.path(".sexton/logs/c.log");
    let waited = poll(DEADLINE, || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("restarting in"))
            || !running(up.pid())
    });
    assert!(waited, "no restart planned: {}", up.stderr());
    let down = sb.sexton(&["down"]);
    let status = up.wait(DEADLINE);
    if status.code() != Some(0) || down.code != Some(0) {
        failed.push(format!(
            "up with a huge backoff: {status:?}, down {down:?}:\n{}",
            up.stderr()
        ));
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    assert_clean(&sb, "bad input");
    eprintln!(
        "bad_input_never_panics: {} commands; {} stderr(s) checked for panics",
        cases.len() + 1,
        assert_no_panic()
    );
}
