//! Resource exhaustion: no fds, no processes, a full disk, no cgroup2.
//!
//! Every case runs the real binary with a deadline (the harness kills it
//! when it passes) and ends in one of two ways: the command works, or it
//! fails with one line `sexton: <what>: <why>` naming the resource and a
//! documented exit status (docs/exit-codes.md). Nothing may be left: each
//! sexton under test is moved, between fork and exec, into a cgroup2
//! directory of this test's own (a [`Cage`]), so that every process it
//! starts and every `sexton-*` cgroup it makes is inside; once sexton is
//! done, the cage must hold neither. Where cgroup2 is not writable the
//! cases run without a cage and say so on stderr.
//!
//! The limits are put on sexton only, in the same place: `RLIMIT_NOFILE`
//! (`prlimit --nofile=N:N`), a cgroup's `pids.max` (or `RLIMIT_NPROC` as
//! another user), a full tmpfs, a mount namespace with a read-only or
//! hidden cgroup2 mount. A limit the machine does not allow is skipped
//! with the reason on stderr.

use crate::common::*;
use serde_json::Value;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// The fd limits every command is tried with: from "nothing but 0, 1
/// and 2" up to a limit that is enough.
const NOFILES: [u64; 9] = [3, 4, 5, 6, 8, 10, 12, 16, 32];
/// A limit under which every command must work normally.
const ENOUGH_FDS: u64 = 64;
const EMFILE: &str = "Too many open files";
const EAGAIN: &str = "Resource temporarily unavailable";
const ENOSPC: &str = "No space left on device";

/// Whether `text` gives the reason `why`. EMFILE's words depend on who
/// wrote them: the C library (glibc "Too many open files", musl "No file
/// descriptors available") or sexton's own table (the supervisor's, the
/// former): either is accepted. The other reasons read the same in all.
fn mentions(text: &str, why: &str) -> bool {
    text.contains(why) || (why == EMFILE && text.contains("No file descriptors available"))
}

static SEQ: AtomicU32 = AtomicU32::new(0);

fn seq() -> u32 {
    SEQ.fetch_add(1, Ordering::Relaxed)
}

/// Writes `text` into an open control file (`cgroup.procs`, `pids.max`).
fn write_to(path: &Path, text: &str) -> std::io::Result<()> {
    OpenOptions::new()
        .write(true)
        .open(path)?
        .write_all(text.as_bytes())
}

/// The pids a cgroup directory lists (not those of nested ones).
fn procs_of(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// `dir` and every directory below it, parents first.
fn tree_of(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if let Ok(rd) = std::fs::read_dir(&out[i]) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    out.push(e.path());
                }
            }
        }
        i += 1;
    }
    out
}

/// SIGKILLs what runs in `dirs` until nothing does (or the deadline
/// passes), then removes them, deepest first.
fn kill_and_remove(dirs: &[PathBuf]) {
    let kill = |pid: i32| {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    };
    let _ = poll(DEADLINE, || {
        let live: Vec<i32> = dirs.iter().flat_map(|d| procs_of(d)).collect();
        live.iter().for_each(|&p| kill(p));
        live.is_empty()
    });
    for d in dirs.iter().rev() {
        let _ = poll(DEADLINE, || std::fs::remove_dir(d).is_ok() || !d.exists());
    }
}

/// A cgroup2 directory below this test's own cgroup that the sexton under
/// test is moved into before it execs: whatever it starts, and every
/// cgroup it makes, is inside. Dropping it kills what is left and
/// removes it.
struct Cage {
    dir: PathBuf,
    /// `cgroup.procs`, opened here: the child writes "0" into it.
    procs: File,
}

impl Cage {
    /// `None`, said on stderr, where no writable cgroup2 is found.
    fn new(tag: &str) -> Option<Cage> {
        let Some(parent) = sexton::tree::cgroup::own_cgroup() else {
            eprintln!("{tag}: no cgroup2 mount: leaks are not checked by cgroup");
            return None;
        };
        let dir = parent.join(format!(
            "reliability-{tag}-{}-{}",
            std::process::id(),
            seq()
        ));
        if let Err(e) = std::fs::create_dir(&dir) {
            eprintln!(
                "{tag}: cgroup2 at {} is not writable ({e}): leaks are not checked by cgroup",
                parent.display()
            );
            return None;
        }
        match OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.procs"))
        {
            Ok(procs) => Some(Cage { dir, procs }),
            Err(e) => {
                eprintln!("{tag}: cannot join a cgroup ({e}): leaks are not checked by cgroup");
                let _ = std::fs::remove_dir(&dir);
                None
            }
        }
    }

    /// Live processes anywhere in the cage (zombies are not listed).
    fn members(&self) -> Vec<i32> {
        tree_of(&self.dir)
            .iter()
            .flat_map(|d| procs_of(d))
            .collect()
    }

    /// Cgroups left inside the cage.
    fn subgroups(&self) -> Vec<PathBuf> {
        tree_of(&self.dir).into_iter().skip(1).collect()
    }

    /// Waits until nothing runs in the cage and no cgroup is left in it.
    fn assert_clean(&self, what: &str) {
        let clean = poll(DEADLINE, || {
            self.members().is_empty() && self.subgroups().is_empty()
        });
        if !clean {
            let left: Vec<String> = self
                .members()
                .iter()
                .map(|&p| format!("{p} ({})", sexton::procfs::cmdline(p).unwrap_or_default()))
                .collect();
            panic!(
                "{what}: left running: {left:?}; cgroups left: {:?}",
                self.subgroups()
            );
        }
    }
}

impl Drop for Cage {
    fn drop(&mut self) {
        let _ = write_to(&self.dir.join("cgroup.kill"), "1");
        kill_and_remove(&tree_of(&self.dir));
    }
}

/// What is put on the command between fork and exec.
#[derive(Debug, Clone, Default)]
struct Confine {
    /// `cgroup.procs` files (open in this process) to join.
    join: Vec<RawFd>,
    nofile: Option<u64>,
    /// `RLIMIT_NPROC`, then become this uid (and gid): root is not
    /// limited by it.
    nproc_as: Option<(u64, u32)>,
}

impl Confine {
    fn caged(cage: Option<&Cage>) -> Confine {
        Confine {
            join: cage.iter().map(|c| c.procs.as_raw_fd()).collect(),
            ..Confine::default()
        }
    }

    fn nofile(mut self, n: u64) -> Confine {
        self.nofile = Some(n);
        self
    }

    fn apply(self, cmd: &mut Command) {
        use nix::sys::resource::{Resource, setrlimit};
        // SAFETY: between fork and exec the closure makes only system
        // calls (write, setrlimit, setgroups, setgid, setuid) and
        // allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                for &fd in &self.join {
                    nix::unistd::write(BorrowedFd::borrow_raw(fd), b"0")?;
                }
                if let Some(n) = self.nofile {
                    setrlimit(Resource::RLIMIT_NOFILE, n, n)?;
                }
                if let Some((n, uid)) = self.nproc_as {
                    setrlimit(Resource::RLIMIT_NPROC, n, n)?;
                    nix::unistd::setgroups(&[])?;
                    nix::unistd::setgid(nix::unistd::Gid::from_raw(uid))?;
                    nix::unistd::setuid(nix::unistd::Uid::from_raw(uid))?;
                }
                Ok(())
            });
        }
    }
}

/// `sexton ARGS` in `dir`, confined, run to the end with the deadline.
fn sexton_in(s: &Scratch, confine: Confine, args: &[&str]) -> Ran {
    let mut c = Command::new(SEXTON);
    c.args(args).current_dir(&s.dir);
    confine.apply(&mut c);
    run_cmd(&mut c, s)
}

/// `sexton ARGS`, unconfined (status, stop, down: the commands that
/// look at what the confined one left).
fn sexton_free(s: &Scratch, args: &[&str]) -> Ran {
    sexton_in(s, Confine::default(), args)
}

/// The command did not panic and was not killed by a signal.
fn no_panic(r: &Ran, what: &str) {
    assert!(r.code.is_some(), "{what}: killed by a signal: {r:?}");
    assert!(
        !r.stderr.contains("panicked") && !r.stderr.contains("RUST_BACKTRACE"),
        "{what}: panicked: {r:?}"
    );
}

/// stderr is exactly one `sexton: <what>: <why>` line naming `why`
/// (plus at most a `hint:` line).
fn one_line_error(r: &Ran, why: &str, what: &str) {
    no_panic(r, what);
    let lines: Vec<&str> = r.stderr.lines().collect();
    let errors: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("sexton: "))
        .collect();
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("sexton: ") || l.starts_with("hint: ")),
        "{what}: stray stderr: {r:?}"
    );
    assert_eq!(errors.len(), 1, "{what}: not one error line: {r:?}");
    let body = &errors[0]["sexton: ".len()..];
    assert!(
        mentions(body, why) && body.contains(": "),
        "{what}: the line does not say '<what>: {why}': {r:?}"
    );
}

// ---------------------------------------------------------------------
// 1. No fds left.
// ---------------------------------------------------------------------

#[test]
fn no_fds_run_fails_with_one_line_or_runs_and_leaves_nothing() {
    let s = Scratch::new("nofile-run");
    for mode in modes() {
        for n in NOFILES.iter().copied().chain([ENOUGH_FDS]) {
            let what = format!("run --tracking {mode} under nofile={n}");
            let cage = Cage::new("nofile-run");
            let r = sexton_in(
                &s,
                Confine::caged(cage.as_ref()).nofile(n),
                &[
                    "run",
                    "--json",
                    "--tracking",
                    mode,
                    "--leftovers",
                    "kill",
                    "--",
                    "sh",
                    "-c",
                    "setsid sleep 300 & echo ok",
                ],
            );
            match r.code {
                Some(0) => {
                    no_panic(&r, &what);
                    // Checked against docs/schema/run.json too.
                    let v = r.json();
                    assert_eq!(v["stdout"], "ok\n", "{what}: {r:?}");
                    assert_eq!(v["tracking"], mode, "{what}: {r:?}");
                }
                Some(125) => {
                    one_line_error(&r, EMFILE, &what);
                    if !r.stdout.is_empty() {
                        // The start failure's document, schema-checked.
                        let _ = r.json();
                    }
                    assert!(n < ENOUGH_FDS, "{what}: enough fds must work: {r:?}");
                }
                _ => panic!("{what}: neither 0 nor 125: {r:?}"),
            }
            eprintln!("{what}: exit {:?}", r.code);
            if let Some(c) = &cage {
                c.assert_clean(&what);
            }
        }
    }
    // Negative control: the cage does see an escapee that is left alone.
    if let Some(cage) = Cage::new("nofile-run-control") {
        let r = sexton_in(
            &s,
            Confine::caged(Some(&cage)).nofile(ENOUGH_FDS),
            &["run", "--", "sh", "-c", "setsid sleep 300 & echo ok"],
        );
        assert_eq!(r.code, Some(0), "{r:?}");
        assert!(
            poll(DEADLINE, || !cage.members().is_empty()),
            "the cage misses the escapee"
        );
    }
}

#[test]
fn no_fds_init_fails_with_one_line_or_returns_the_programs_status() {
    let s = Scratch::new("nofile-init");
    for n in NOFILES.iter().copied().chain([ENOUGH_FDS]) {
        let what = format!("init under nofile={n}");
        let cage = Cage::new("nofile-init");
        let r = sexton_in(
            &s,
            Confine::caged(cage.as_ref()).nofile(n),
            &["init", "--", "sh", "-c", "sleep 300 & exit 7"],
        );
        match r.code {
            Some(7) => no_panic(&r, &what),
            Some(125) => {
                one_line_error(&r, EMFILE, &what);
                assert!(n < ENOUGH_FDS, "{what}: enough fds must work: {r:?}");
            }
            _ => panic!("{what}: neither 7 nor 125: {r:?}"),
        }
        eprintln!("{what}: exit {:?}", r.code);
        if let Some(c) = &cage {
            c.assert_clean(&what);
        }
    }
}

#[test]
fn no_fds_daemon_fails_with_one_line_or_starts_and_stops() {
    let s = Scratch::new("nofile-daemon");
    let pidfile = s.path("d.pid");
    let pf = pidfile.to_str().unwrap();
    for n in NOFILES.iter().copied().chain([ENOUGH_FDS]) {
        let what = format!("daemon under nofile={n}");
        let cage = Cage::new("nofile-daemon");
        let r = sexton_in(
            &s,
            Confine::caged(cage.as_ref()).nofile(n),
            &[
                "daemon",
                "--pidfile",
                pf,
                "--log",
                s.path("d.log").to_str().unwrap(),
                "--",
                "sh",
                "-c",
                "setsid sleep 300 & exec sleep 300",
            ],
        );
        match r.code {
            Some(0) => {
                no_panic(&r, &what);
                let st = sexton_free(&s, &["daemon", "--status", "--pidfile", pf]);
                assert_eq!(st.code, Some(0), "{what}: {st:?}");
                let stop = sexton_free(&s, &["daemon", "--stop", "--pidfile", pf]);
                assert_eq!(stop.code, Some(0), "{what}: {stop:?}");
            }
            Some(1) => {
                one_line_error(&r, EMFILE, &what);
                assert!(n < ENOUGH_FDS, "{what}: enough fds must work: {r:?}");
            }
            _ => panic!("{what}: neither 0 nor 1: {r:?}"),
        }
        eprintln!("{what}: exit {:?}", r.code);
        assert!(!pidfile.exists(), "{what}: the pidfile is left");
        if let Some(c) = &cage {
            c.assert_clean(&what);
        }
    }
}

/// Brings a supervisor down on drop (by its state directory).
struct Down<'a> {
    s: &'a Scratch,
    args: Vec<String>,
}

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let mut args = vec!["down".to_string()];
        args.extend(self.args.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut c = Command::new(SEXTON);
        c.args(&args)
            .current_dir(&self.s.dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut sp = spawn(&mut c);
        let _ = poll(DEADLINE, || sp.child.try_wait().ok().flatten().is_some());
    }
}

/// The supervisor's `status --json`, when one answers.
fn status_of(s: &Scratch, args: &[&str]) -> Option<Value> {
    let mut a = vec!["status", "--json"];
    a.extend_from_slice(args);
    let r = sexton_free(s, &a);
    (r.code == Some(0))
        .then(|| serde_json::from_str(r.stdout.trim()).ok())
        .flatten()
}

/// Files a state directory must not keep: temporary files of an atomic
/// write.
fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".tmp"))
                .collect()
        })
        .unwrap_or_default()
}

/// Services that fail fast: a crash loop ends after two quick starts.
const FAST_CONFIG: &str = r#"
[services.a]
command = "sleep 300"
restart = "always"
backoff_initial = "50ms"
backoff_max = "100ms"
start_limit_burst = 2
[services.b]
command = ["sh", "-c", "setsid sleep 300 & exec sleep 300"]
restart = "always"
backoff_initial = "50ms"
backoff_max = "100ms"
start_limit_burst = 2
"#;

#[test]
fn no_fds_supervisor_says_why_and_leaves_nothing() {
    let s = Scratch::new("nofile-up");
    std::fs::write(s.path("sexton.toml"), FAST_CONFIG).unwrap();
    for n in NOFILES.iter().copied().chain([ENOUGH_FDS]) {
        let what = format!("up -d under nofile={n}");
        let cage = Cage::new("nofile-up");
        let r = {
            let _down = Down {
                s: &s,
                args: Vec::new(),
            };
            let r = sexton_in(&s, Confine::caged(cage.as_ref()).nofile(n), &["up", "-d"]);
            no_panic(&r, &what);
            match r.code {
                Some(0) => {
                    let st = status_of(&s, &[]).expect("a supervisor answers");
                    for svc in st["services"].as_array().unwrap() {
                        assert_eq!(svc["state"], "running", "{what}: {st}");
                    }
                }
                Some(1) if r.stderr.contains("not up:") => {
                    // The supervisor runs; the status says why each
                    // service is not up.
                    let st = status_of(&s, &[]).expect("a supervisor answers");
                    for svc in st["services"].as_array().unwrap() {
                        if svc["state"] != "running" {
                            let why = svc["reason"].as_str().unwrap_or("");
                            assert!(mentions(why, EMFILE), "{what}: {svc} does not say why");
                        }
                    }
                }
                // The config cannot even be read: "a config that does
                // not load".
                Some(1 | 2) => one_line_error(&r, EMFILE, &what),
                _ => panic!("{what}: neither 0, 1 nor 2: {r:?}"),
            }
            if n >= ENOUGH_FDS {
                assert_eq!(r.code, Some(0), "{what}: enough fds must work: {r:?}");
            }
            r
        };
        eprintln!("{what}: exit {:?}: {}", r.code, r.stderr.trim());
        let state = s.path(".sexton");
        assert!(
            !state.join("state.json").exists(),
            "{what}: state.json is left"
        );
        assert_eq!(temp_files(&state), Vec::<String>::new(), "{what}");
        if let Some(c) = &cage {
            c.assert_clean(&what);
        }
    }
}

/// A zombie whose parent never waits: `sleep 0` under a shell that then
/// becomes `sleep 300`. Returns the parent (killed on drop) and the
/// zombie's pid.
fn zombie(s: &Scratch) -> (Spawned, i32) {
    let f = s.path(&format!("zombie.{}", seq()));
    let mut c = Command::new("sh");
    c.args([
        "-c",
        &format!("sleep 0 & echo $! > {}; exec sleep 300", f.display()),
    ]);
    let parent = spawn(&mut c);
    let mut pid = 0;
    assert!(
        poll(DEADLINE, || {
            pid = std::fs::read_to_string(&f)
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(0);
            pid > 0 && sexton::procfs::process(pid).is_some_and(|p| p.is_zombie())
        }),
        "no zombie"
    );
    (parent, pid)
}

#[test]
fn no_fds_audit_says_what_it_skipped() {
    let s = Scratch::new("nofile-audit");
    let (_parent, z) = zombie(&s);
    for cmd in ["zombies", "audit"] {
        for n in NOFILES.iter().copied().chain([ENOUGH_FDS]) {
            let what = format!("{cmd} --json under nofile={n}");
            let r = sexton_in(&s, Confine::default().nofile(n), &[cmd, "--json"]);
            match r.code {
                Some(0 | 1) => {
                    no_panic(&r, &what);
                    let line = r.stdout.lines().last().unwrap_or("");
                    let v: Value = serde_json::from_str(line)
                        .unwrap_or_else(|e| panic!("{what}: bad json {line:?}: {e}"));
                    assert_schema(&v, "findings.json");
                    let found = v["findings"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|f| f["kind"] == "zombie" && f["pid"] == z);
                    let scanned = &v["scanned"];
                    let skipped = scanned["skipped"].as_u64().unwrap();
                    eprintln!(
                        "{what}: exit {:?}, zombie found: {found}, {scanned}",
                        r.code
                    );
                    // Missing the zombie is allowed only when the scan
                    // says it skipped processes, and says so on stderr.
                    assert!(found || skipped > 0, "{what}: missed {z} silently: {r:?}");
                    // Every process has fds; none read means skipped.
                    assert!(
                        scanned["fds"].as_u64().unwrap() > 0 || skipped > 0,
                        "{what}: read no fd and skipped nothing: {r:?}"
                    );
                    if skipped > 0 {
                        assert!(
                            r.stderr.lines().any(|l| l.starts_with("sexton: note: ")
                                && l.contains(&skipped.to_string())),
                            "{what}: the skip is not said on stderr: {r:?}"
                        );
                    }
                    if n >= ENOUGH_FDS {
                        assert!(found && skipped == 0, "{what}: {r:?}");
                        assert_eq!(r.code, Some(1), "{what}: {r:?}");
                    }
                }
                Some(2) => {
                    eprintln!("{what}: exit 2: {}", r.stderr.trim());
                    one_line_error(&r, EMFILE, &what);
                    assert!(n < ENOUGH_FDS, "{what}: enough fds must work: {r:?}");
                }
                _ => panic!("{what}: neither 0, 1 nor 2: {r:?}"),
            }
        }
    }
}

// ---------------------------------------------------------------------
// 2. No processes left.
// ---------------------------------------------------------------------

/// A cgroup whose `pids.max` limits the sexton moved into it: from the
/// cgroup2 hierarchy when its pids controller is enabled below this
/// process's cgroup, else from a cgroup v1 `pids` hierarchy (hybrid
/// machines). Dropping it kills what is left and removes it.
struct PidsCgroup {
    dir: PathBuf,
    procs: File,
}

impl PidsCgroup {
    /// `None`, said on stderr, when no pids controller can be used.
    fn new(tag: &str, max: u32) -> Option<PidsCgroup> {
        let name = format!("reliability-{tag}-{}-{}", std::process::id(), seq());
        let parent = match v2_pids_parent() {
            Some(p) => p,
            None => match v1_pids_parent() {
                Some(p) => {
                    eprintln!(
                        "{tag}: cgroup2 has no pids controller enabled here: using the cgroup v1 pids hierarchy at {}",
                        p.display()
                    );
                    p
                }
                None => {
                    eprintln!(
                        "{tag}: skipping pids.max: no cgroup2 pids controller and no cgroup v1 pids hierarchy"
                    );
                    return None;
                }
            },
        };
        let dir = parent.join(name);
        if let Err(e) = std::fs::create_dir(&dir) {
            eprintln!(
                "{tag}: skipping pids.max: cannot create {}: {e}",
                dir.display()
            );
            return None;
        }
        let made = write_to(&dir.join("pids.max"), &max.to_string()).and_then(|_| {
            OpenOptions::new()
                .write(true)
                .open(dir.join("cgroup.procs"))
        });
        match made {
            Ok(procs) => Some(PidsCgroup { dir, procs }),
            Err(e) => {
                eprintln!("{tag}: skipping pids.max: {}: {e}", dir.display());
                let _ = std::fs::remove_dir(&dir);
                None
            }
        }
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        kill_and_remove(&tree_of(&self.dir));
    }
}

/// This process's cgroup2 directory when `pids` is enabled for its
/// children.
fn v2_pids_parent() -> Option<PathBuf> {
    let own = sexton::tree::cgroup::own_cgroup()?;
    let enabled = std::fs::read_to_string(own.join("cgroup.subtree_control")).ok()?;
    enabled
        .split_whitespace()
        .any(|c| c == "pids")
        .then_some(own)
}

/// This process's cgroup in a cgroup v1 hierarchy with the `pids`
/// controller, from /proc/self/mountinfo and /proc/self/cgroup.
fn v1_pids_parent() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = info.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        let mut post = post.split(' ');
        let (fstype, _source, opts) = (post.next()?, post.next()?, post.next()?);
        (fstype == "cgroup" && opts.split(',').any(|o| o == "pids"))
            .then(|| PathBuf::from(pre.split(' ').nth(4).unwrap_or("")))
    })?;
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = own.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_id, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        ctrls
            .split(',')
            .any(|c| c == "pids")
            .then(|| path.trim_start_matches('/').to_string())
    })?;
    Some(mount.join(path))
}

/// uid 65534 (`nobody`) when /etc/passwd has it: a user that runs no
/// process here, so `RLIMIT_NPROC` counts only what the test starts.
fn nobody() -> Option<u32> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd
        .lines()
        .any(|l| l.split(':').nth(2) == Some("65534"))
        .then_some(65534)
}

#[test]
fn no_processes_run_exits_125_with_the_reason() {
    let s = Scratch::new("pids-run");
    // pids.max 1: sexton cannot split into guard and worker; 2: the
    // worker cannot start the program.
    for max in [1, 2, 64] {
        let what = format!("run under pids.max={max}");
        let Some(pids) = PidsCgroup::new("pids-run", max) else {
            break;
        };
        let cage = Cage::new("pids-run");
        let mut confine = Confine::caged(cage.as_ref());
        confine.join.push(pids.procs.as_raw_fd());
        let r = sexton_in(&s, confine, &["run", "--", "sh", "-c", "echo ok"]);
        eprintln!("{what}: exit {:?}: {}", r.code, r.stderr.trim());
        if max >= 64 {
            assert_eq!(r.code, Some(0), "{what}: {r:?}");
            assert_eq!(r.stdout, "ok\n");
        } else {
            assert_eq!(r.code, Some(125), "{what}: {r:?}");
            one_line_error(&r, EAGAIN, &what);
        }
        if let Some(c) = &cage {
            c.assert_clean(&what);
        }
    }
    // The same with RLIMIT_NPROC, as a user that runs nothing else.
    let Some(uid) = nobody() else {
        eprintln!("skipping RLIMIT_NPROC: no uid 65534 in /etc/passwd");
        return;
    };
    for max in [1, 2] {
        let what = format!("run as uid {uid} under RLIMIT_NPROC={max}");
        let cage = Cage::new("nproc-run");
        let mut confine = Confine::caged(cage.as_ref());
        confine.nproc_as = Some((max, uid));
        let r = sexton_in(&s, confine, &["run", "--", "true"]);
        eprintln!("{what}: exit {:?}: {}", r.code, r.stderr.trim());
        assert_eq!(r.code, Some(125), "{what}: {r:?}");
        one_line_error(&r, EAGAIN, &what);
        if let Some(c) = &cage {
            c.assert_clean(&what);
        }
    }
}

/// Forks until EAGAIN, and on: each round leaves an orphan that lives
/// 100 ms (an intermediate child forks it and exits), which the init
/// must reap to give its slot back. Exits 7 once it has made four times
/// `pids.max` orphans and met EAGAIN, which only an init that keeps
/// reaping allows; 1 if that does not happen within a minute.
const FORKER: &str = r#"
import os, sys, time
limit = int(sys.argv[1])
made = refused = 0
end = time.monotonic() + 60
while time.monotonic() < end and not (made >= 4 * limit and refused > 0):
    try:
        pid = os.fork()
    except BlockingIOError:
        refused += 1
        time.sleep(0.01)  # its own pace: some orphans end meanwhile
        continue
    if pid == 0:
        try:
            if os.fork() == 0:
                time.sleep(0.1)
                os._exit(0)
        except BlockingIOError:
            os._exit(1)
        os._exit(0)
    _, st = os.waitpid(pid, 0)
    if st == 0:
        made += 1
    else:
        refused += 1
print(made, refused, flush=True)
sys.exit(7 if made >= 4 * limit and refused > 0 else 1)
"#;

#[test]
fn no_processes_init_keeps_reaping() {
    let s = Scratch::new("pids-init");
    let max = 12;
    let Some(pids) = PidsCgroup::new("pids-init", max) else {
        return;
    };
    let cage = Cage::new("pids-init");
    let mut confine = Confine::caged(cage.as_ref());
    confine.join.push(pids.procs.as_raw_fd());
    let what = format!("init under pids.max={max}");
    let r = sexton_in(
        &s,
        confine,
        &["init", "--", "python3", "-c", FORKER, &max.to_string()],
    );
    eprintln!(
        "{what}: exit {:?}, made and refused: {}",
        r.code,
        r.stdout.trim()
    );
    no_panic(&r, &what);
    assert_eq!(r.code, Some(7), "{what}: {r:?}");
    if let Some(c) = &cage {
        c.assert_clean(&what);
    }
}

/// utime + stime of `pid` and its children (clock ticks).
fn cpu_ticks(pid: i32) -> u64 {
    let one = |p: i32| -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        let Some(i) = stat.rfind(')') else { return 0 };
        let f: Vec<&str> = stat[i + 2..].split(' ').collect();
        // Fields 14 and 15 of stat(5), counted from the state (field 3).
        f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
    };
    let kids: Vec<i32> = sexton::procfs::children(pid).unwrap_or_default();
    one(pid) + kids.into_iter().map(one).sum::<u64>()
}

#[test]
fn no_processes_supervisor_backs_off_and_says_why() {
    let s = Scratch::new("pids-up");
    std::fs::write(
        s.path("sexton.toml"),
        r#"
[services.a]
command = "sleep 300"
restart = "always"
backoff_initial = "200ms"
backoff_max = "1s"
start_limit_burst = 100
"#,
    )
    .unwrap();
    // The supervisor is two processes (guard and worker): nothing more.
    let Some(pids) = PidsCgroup::new("pids-up", 2) else {
        return;
    };
    let cage = Cage::new("pids-up");
    let mut confine = Confine::caged(cage.as_ref());
    confine.join.push(pids.procs.as_raw_fd());
    let _down = Down {
        s: &s,
        args: Vec::new(),
    };
    let mut c = Command::new(SEXTON);
    c.arg("up")
        .current_dir(&s.dir)
        .stdout(File::create(s.path("up.out")).unwrap())
        .stderr(File::create(s.path("up.err")).unwrap());
    confine.apply(&mut c);
    let mut up = spawn(&mut c);
    let mut last = Value::Null;
    // Several backoff rounds (0.2 + 0.4 + 0.8 + 1 s...).
    let backed_off = poll(DEADLINE, || {
        last = status_of(&s, &[]).unwrap_or(Value::Null);
        last["services"][0]["restarts"].as_u64().unwrap_or(0) >= 4
    });
    assert!(backed_off, "no backoff rounds: {last}");
    let svc = &last["services"][0];
    assert_eq!(svc["state"], "backoff", "{last}");
    let why = svc["reason"].as_str().unwrap_or("");
    assert!(why.contains(EAGAIN), "the status does not say why: {last}");
    // Four rounds took seconds; a loop that spins would have used them
    // all. Generous: a second of CPU.
    let ticks = cpu_ticks(up.pid());
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as u64;
    eprintln!("supervisor under pids.max=2: {ticks} ticks of CPU after 4 backoff rounds; {svc}");
    assert!(ticks <= hz, "the supervisor spins: {ticks} ticks");
    let down = sexton_free(&s, &["down"]);
    assert_eq!(down.code, Some(0), "{down:?}");
    let st = up.wait(DEADLINE);
    assert_eq!(st.code(), Some(0), "{st:?}");
    if let Some(c) = &cage {
        c.assert_clean("up under pids.max=2");
    }
}

// ---------------------------------------------------------------------
// 3. A full disk.
// ---------------------------------------------------------------------

/// A 256 KiB tmpfs mounted in the scratch directory; unmounted on drop
/// (declare it after the scratch, so it goes first).
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// `None`, said on stderr, when mounting is not allowed.
    fn new(s: &Scratch, name: &str) -> Option<Tmpfs> {
        let dir = s.path(name);
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs"])
            .arg(&dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { dir }),
            Ok(o) => {
                eprintln!(
                    "skipping the full-disk case: cannot mount a tmpfs: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipping the full-disk case: no mount(8): {e}");
                None
            }
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Fills every free block with a filler file.
    fn fill(&self) {
        let mut f = File::create(self.path("filler")).unwrap();
        let chunk = [0u8; 4096];
        while f.write(&chunk).is_ok_and(|n| n > 0) {}
        while f.write(&chunk[..1]).is_ok_and(|n| n > 0) {}
    }

    /// Makes room again.
    fn free(&self) {
        let _ = std::fs::remove_file(self.path("filler"));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = poll(DEADLINE, || {
            Command::new("umount")
                .arg(&self.dir)
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// Every line of `text` is a whole JSON document.
fn whole_json_lines(text: &str) -> bool {
    text.is_empty()
        || (text.ends_with('\n')
            && text
                .lines()
                .all(|l| serde_json::from_str::<Value>(l).is_ok()))
}

#[test]
fn full_disk_run_log_keeps_whole_lines() {
    let s = Scratch::new("disk-run");
    let Some(t) = Tmpfs::new(&s, "fs") else {
        return;
    };
    let log = t.path("run.log");
    let log_s = log.to_str().unwrap();
    let first = sexton_free(&s, &["run", "--log", log_s, "--", "echo", "first"]);
    assert_eq!(first.code, Some(0), "{first:?}");
    let before = std::fs::read_to_string(&log).unwrap();
    assert!(whole_json_lines(&before));
    t.fill();
    // A line longer than what is left of the log's last page: the write
    // stops part-way.
    let big = "head -c 6000 /dev/zero | tr '\\0' x";
    let r = sexton_free(&s, &["run", "--log", log_s, "--", "sh", "-c", big]);
    one_line_error(&r, ENOSPC, "run --log on a full disk");
    assert_eq!(r.code, Some(125), "{r:?}");
    assert_eq!(r.stdout.len(), 6000, "the program did not run");
    let after = std::fs::read_to_string(&log).unwrap();
    assert!(
        whole_json_lines(&after),
        "a partial line is left: {after:?}"
    );
    assert_eq!(after, before, "the failed line left something");
    // With --json the result document still comes out.
    let r = sexton_free(
        &s,
        &["run", "--json", "--log", log_s, "--", "sh", "-c", big],
    );
    one_line_error(&r, ENOSPC, "run --json --log on a full disk");
    assert_eq!(r.code, Some(125), "{r:?}");
    assert_eq!(r.json()["stdout_bytes"], 6000, "{r:?}");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), before);
    // Room again: the next run is logged after the old lines.
    t.free();
    let r = sexton_free(&s, &["run", "--log", log_s, "--", "echo", "third"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(whole_json_lines(&text), "{text:?}");
    assert_eq!(text.lines().count(), 2, "{text:?}");
}

#[test]
fn full_disk_daemon_output_keeps_the_program_running() {
    let s = Scratch::new("disk-daemon");
    let Some(t) = Tmpfs::new(&s, "fs") else {
        return;
    };
    t.fill();
    let pidfile = s.path("d.pid");
    let pf = pidfile.to_str().unwrap();
    let count = s.path("count");
    let program = format!(
        "echo READY; i=0; while :; do echo line $i; i=$((i+1)); echo $i > {}; sleep 0.01; done",
        count.display()
    );
    let out = t.path("out.log");
    let err = s.path("err.log");
    // Straight to the file (the program sees ENOSPC itself), and through
    // the monitor (`--ready log:`, which copies the output).
    for ready in [None, Some("log:^READY")] {
        let what = format!("daemon --stdout on a full disk, ready {ready:?}");
        let _ = std::fs::remove_file(&count);
        let _ = std::fs::remove_file(&err);
        let cage = Cage::new("disk-daemon");
        let mut args = vec!["daemon", "--pidfile", pf];
        if let Some(r) = ready {
            args.extend(["--ready", r]);
        }
        args.extend([
            "--stdout",
            out.to_str().unwrap(),
            "--stderr",
            err.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            &program,
        ]);
        let r = sexton_in(&s, Confine::caged(cage.as_ref()), &args);
        assert_eq!(r.code, Some(0), "{what}: {r:?}");
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Fifty lines written into the full disk, and it still runs.
        let ran = poll(DEADLINE, || {
            std::fs::read_to_string(&count)
                .ok()
                .and_then(|c| c.trim().parse::<u32>().ok())
                .is_some_and(|c| c >= 50)
        });
        assert!(ran && alive(pid), "{what}: the program stopped");
        assert_eq!(std::fs::metadata(&out).unwrap().len(), 0, "{what}");
        if ready.is_some() {
            // The monitor copies the output: it says what it dropped.
            let said = poll(DEADLINE, || {
                std::fs::read_to_string(&err).is_ok_and(|e| e.contains(ENOSPC))
            });
            assert!(
                said,
                "{what}: the monitor does not say: {:?}",
                std::fs::read_to_string(&err)
            );
        }
        let stop = sexton_free(&s, &["daemon", "--stop", "--pidfile", pf]);
        assert_eq!(stop.code, Some(0), "{what}: {stop:?}");
        assert!(!pidfile.exists(), "{what}");
        if let Some(c) = &cage {
            c.assert_clean(&what);
        }
    }
}

#[test]
fn full_disk_daemon_pidfile_is_a_failed_start_that_leaves_nothing() {
    let s = Scratch::new("disk-pidfile");
    let Some(t) = Tmpfs::new(&s, "fs") else {
        return;
    };
    t.fill();
    let pidfile = t.path("d.pid");
    let cage = Cage::new("disk-pidfile");
    let r = sexton_in(
        &s,
        Confine::caged(cage.as_ref()),
        &[
            "daemon",
            "--pidfile",
            pidfile.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "setsid sleep 300 & exec sleep 300",
        ],
    );
    assert_eq!(r.code, Some(1), "{r:?}");
    one_line_error(&r, ENOSPC, "daemon --pidfile on a full disk");
    assert!(r.stderr.contains("pidfile"), "{r:?}");
    assert!(!pidfile.exists(), "a pidfile is left");
    let left: Vec<String> = std::fs::read_dir(&t.dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "filler")
        .collect();
    assert_eq!(left, Vec::<String>::new(), "files left");
    if let Some(c) = &cage {
        c.assert_clean("daemon --pidfile on a full disk");
    }
}

#[test]
fn full_disk_daemon_respawn_says_the_pidfile_stays_empty() {
    let s = Scratch::new("disk-respawn");
    let Some(t) = Tmpfs::new(&s, "fs") else {
        return;
    };
    let pidfile = t.path("d.pid");
    let pf = pidfile.to_str().unwrap();
    let err = s.path("err.log");
    let cage = Cage::new("disk-respawn");
    let r = sexton_in(
        &s,
        Confine::caged(cage.as_ref()),
        &[
            "daemon",
            "--respawn",
            "--respawn-backoff",
            "3s",
            "--pidfile",
            pf,
            "--stderr",
            err.to_str().unwrap(),
            "--",
            "sleep",
            "300",
        ],
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    let first: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    t.fill();
    // The program dies; the monitor empties the pidfile (giving its
    // block back) and waits three seconds; the disk fills that block.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(
        poll(DEADLINE, || std::fs::read(&pidfile)
            .is_ok_and(|b| b.is_empty())),
        "the pidfile was not emptied"
    );
    t.fill();
    let said = poll(DEADLINE, || {
        std::fs::read_to_string(&err).is_ok_and(|e| e.contains("cannot write pidfile"))
    });
    let log = std::fs::read_to_string(&err).unwrap_or_default();
    assert!(said, "the monitor does not say: {log}");
    assert!(log.contains(ENOSPC), "{log}");
    // Empty, not partial, and the daemon still counts as running.
    assert_eq!(std::fs::read(&pidfile).unwrap(), b"");
    let st = sexton_free(&s, &["daemon", "--status", "--pidfile", pf]);
    assert_eq!(st.code, Some(0), "{st:?}");
    t.free();
    let stop = sexton_free(&s, &["daemon", "--stop", "--pidfile", pf]);
    assert_eq!(stop.code, Some(0), "{stop:?}");
    assert!(!pidfile.exists());
    if let Some(c) = &cage {
        c.assert_clean("daemon --respawn with a full pidfile disk");
    }
}

#[test]
fn full_disk_supervisor_keeps_services_and_says_so() {
    let s = Scratch::new("disk-up");
    let Some(t) = Tmpfs::new(&s, "fs") else {
        return;
    };
    let count = s.path("count");
    std::fs::write(
        s.path("sexton.toml"),
        format!(
            r#"
[services.a]
command = ["sh", "-c", "i=0; while :; do echo line $i; i=$((i+1)); echo $i > {}; sleep 0.01; done"]
"#,
            count.display()
        ),
    )
    .unwrap();
    t.fill();
    let state = t.path("st");
    let sd = ["--state-dir", state.to_str().unwrap()];
    let cage = Cage::new("disk-up");
    let _down = Down {
        s: &s,
        args: sd.iter().map(|a| a.to_string()).collect(),
    };
    let r = sexton_in(
        &s,
        Confine::caged(cage.as_ref()),
        &["up", "-d", sd[0], sd[1]],
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    let ran = poll(DEADLINE, || {
        std::fs::read_to_string(&count)
            .ok()
            .and_then(|c| c.trim().parse::<u32>().ok())
            .is_some_and(|c| c >= 50)
    });
    assert!(ran, "the service stopped");
    let st = status_of(&s, &sd).expect("status");
    let svc = &st["services"][0];
    assert_eq!(svc["state"], "running", "{st}");
    let log_error = svc["log_error"].as_str().unwrap_or("");
    assert!(log_error.contains(ENOSPC), "no log error: {st}");
    let state_error = st["state_error"].as_str().unwrap_or("");
    assert!(state_error.contains(ENOSPC), "no state error: {st}");
    assert_schema(&st, "status.json");
    assert_eq!(
        temp_files(&state),
        Vec::<String>::new(),
        "a partial state file is left"
    );
    assert!(!state.join("state.json").exists());
    // Room again: the record is written, the log says what it lost.
    t.free();
    let pid = svc["pid"].as_i64().unwrap();
    let recorded = poll(DEADLINE, || {
        std::fs::read_to_string(state.join("state.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .is_some_and(|v| v["services"]["a"]["pid"] == pid)
    });
    assert!(recorded, "state.json never written");
    let logged = poll(DEADLINE, || {
        std::fs::read_to_string(state.join("logs/a.log")).is_ok_and(|l| l.contains("lost ("))
    });
    assert!(logged, "the log does not say what it lost");
    let st = status_of(&s, &sd).expect("status");
    assert!(st.get("state_error").is_none_or(Value::is_null), "{st}");
    let down = sexton_free(&s, &["down", sd[0], sd[1]]);
    assert_eq!(down.code, Some(0), "{down:?}");
    if let Some(c) = &cage {
        c.assert_clean("up with a full state directory");
    }
}

#[test]
fn supervisor_down_returns_with_nothing_left() {
    let s = Scratch::new("down");
    std::fs::write(s.path("sexton.toml"), FAST_CONFIG).unwrap();
    let state = s.path(".sexton");
    let _down = Down {
        s: &s,
        args: Vec::new(),
    };
    let cage = Cage::new("down");
    // The check races with the supervisor's exit: a few rounds.
    for round in 0..20 {
        let up = sexton_in(&s, Confine::caged(cage.as_ref()), &["up", "-d"]);
        assert_eq!(up.code, Some(0), "round {round}: {up:?}");
        let down = sexton_free(&s, &["down"]);
        assert_eq!(down.code, Some(0), "round {round}: {down:?}");
        // Once `down` has returned, nothing of the supervisor is left.
        let left: Vec<String> = std::fs::read_dir(&state)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "logs")
            .collect();
        assert_eq!(
            left,
            Vec::<String>::new(),
            "round {round}: left in the state directory"
        );
    }
    if let Some(c) = &cage {
        c.assert_clean("up -d and down, 20 rounds");
    }
}

// ---------------------------------------------------------------------
// 4. No cgroup2 (read-only or hidden), no children lists, no unshare.
// ---------------------------------------------------------------------

/// Whether `unshare --mount` works here (said on stderr when not).
fn can_unshare_mount() -> bool {
    let ok = Command::new("unshare")
        .args(["--mount", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipping: unshare --mount is not allowed here");
    }
    ok
}

/// `sexton ARGS` in a mount namespace where the cgroup2 mount is made
/// read-only (`ro`) or hidden under a tmpfs (`hidden`).
fn without_cgroup2(s: &Scratch, cage: Option<&Cage>, how: &str, args: &[&str]) -> Ran {
    let mount = sexton::procfs::cgroup2_mount().expect("a cgroup2 mount");
    let m = mount.display();
    let setup = match how {
        "ro" => format!("mount --bind {m} {m} && mount -o remount,bind,ro {m}"),
        _ => format!("mount -t tmpfs none {m}"),
    };
    let mut c = Command::new("unshare");
    c.args([
        "--mount",
        "sh",
        "-c",
        &format!("{setup} && exec \"$0\" \"$@\""),
        SEXTON,
    ])
    .args(args)
    .current_dir(&s.dir);
    Confine::caged(cage).apply(&mut c);
    run_cmd(&mut c, s)
}

#[test]
fn no_cgroup2_falls_back_to_subreaper_and_kills_the_whole_tree() {
    let s = Scratch::new("nocg");
    if sexton::procfs::cgroup2_mount().is_none() {
        eprintln!("skipping: no cgroup2 mount to take away");
        return;
    }
    if !can_unshare_mount() {
        return;
    }
    for how in ["ro", "hidden"] {
        let what = format!("run with cgroup2 {how}");
        let cage = Cage::new("nocg");
        // A tree that leaves an escapee (its own session) and an orphan
        // (its parent gone) behind, both made before the shell exits:
        // all of it goes.
        let r = without_cgroup2(
            &s,
            cage.as_ref(),
            how,
            &[
                "run",
                "--json",
                "--leftovers",
                "kill",
                "--",
                "sh",
                "-c",
                "setsid sleep 300 & (sleep 300 &); exit 0",
            ],
        );
        assert_eq!(r.code, Some(0), "{what}: {r:?}");
        let v = r.json();
        assert_eq!(v["tracking"], "subreaper", "{what}: {r:?}");
        assert_eq!(v["leftovers"].as_array().unwrap().len(), 2, "{what}: {r:?}");
        assert!(v["killed"].as_u64().unwrap() >= 2, "{what}: {r:?}");
        if let Some(c) = &cage {
            c.assert_clean(&what);
        }
        // cgroup tracking asked for: one line saying cgroup2 is missing.
        let r = without_cgroup2(
            &s,
            None,
            how,
            &["run", "--tracking", "cgroup", "--", "true"],
        );
        assert_eq!(r.code, Some(125), "{what}: {r:?}");
        one_line_error(&r, "cgroup", &what);
        let why = r.stderr.lines().next().unwrap_or("");
        match how {
            "ro" => assert!(why.contains("Read-only file system"), "{what}: {r:?}"),
            _ => assert!(why.contains("no cgroup2 mount"), "{what}: {r:?}"),
        }
        // The daemon falls back too, and --stop kills its whole tree.
        let cage = Cage::new("nocg-daemon");
        let pf = s.path("d.pid");
        let r = without_cgroup2(
            &s,
            cage.as_ref(),
            how,
            &[
                "daemon",
                "--pidfile",
                pf.to_str().unwrap(),
                "--",
                "sh",
                "-c",
                "setsid sleep 300 & exec sleep 300",
            ],
        );
        assert_eq!(r.code, Some(0), "{what}: {r:?}");
        if let Some(c) = &cage {
            // Negative control: the tree is there before the stop.
            assert!(poll(DEADLINE, || c.members().len() >= 4), "{what}");
        }
        let stop = sexton_free(&s, &["daemon", "--stop", "--pidfile", pf.to_str().unwrap()]);
        assert_eq!(stop.code, Some(0), "{what}: {stop:?}");
        if let Some(c) = &cage {
            c.assert_clean(&format!("daemon with cgroup2 {how}"));
        }
    }
}

/// The environment variable that makes [`no_children_lists_case`] run.
const CASE: &str = "SEXTON_RELIABILITY_NO_CHILDREN";

/// Run by [`no_children_lists_the_walk_still_kills_the_whole_tree`] in
/// a process of its own (this test binary again): a run in subreaper
/// mode as on a kernel without `/proc/PID/task/TID/children`, whose
/// outcome it prints. Nothing otherwise.
#[test]
fn no_children_lists_case() {
    if std::env::var_os(CASE).is_none() {
        return;
    }
    let out = sexton::procfs::without_children_lists(|| {
        sexton::Command::new("sh")
            .args(["-c", "setsid sleep 300 & (sleep 300 &); exit 0"])
            .tracking(sexton::tree::Tracking::Subreaper)
            .leftovers(sexton::Leftovers::Kill)
            .run()
            .expect("run")
    });
    println!("{}", out.to_json());
}

#[test]
fn no_children_lists_the_walk_still_kills_the_whole_tree() {
    let s = Scratch::new("nochildren");
    let cage = Cage::new("nochildren");
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        "--exact",
        "limits::no_children_lists_case",
        "--nocapture",
        "--test-threads=1",
        "--quiet",
    ])
    .env(CASE, "1");
    Confine::caged(cage.as_ref()).apply(&mut c);
    let r = run_cmd(&mut c, &s);
    assert_eq!(r.code, Some(0), "{r:?}");
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no outcome: {r:?}"));
    let v: Value = serde_json::from_str(line).unwrap();
    eprintln!("without children lists: {line}");
    assert_eq!(v["tracking"], "subreaper", "{v}");
    // The escapee and the orphan, both found by the /proc snapshot walk.
    let left = v["leftovers"].as_array().unwrap();
    assert_eq!(left.len(), 2, "{v}");
    assert!(left.iter().all(|l| l["action"] == "killed"), "{v}");
    if let Some(c) = &cage {
        c.assert_clean("a subreaper run without children lists");
    }
}
