//! The soak: tens of thousands of `sexton run` calls and thousands of
//! supervisor restarts, then the long-lived processes are checked for
//! growth: the test process's fds, zombies and RSS over the runs (each
//! `sexton run` is a new process, so the caller is what can leak), the
//! supervisor's fds and RSS over the restarts, and the `sexton-*`
//! cgroups everywhere.
//!
//! `SEXTON_SOAK=1` runs 20,000 runs and 2,000 restarts; without it, 200
//! of each, and the test says so. Each part runs in a sandbox subprocess
//! (see `signals.rs`): a subreaper in a cgroup of its own.

use crate::common::{DEADLINE, SEXTON, poll};
use crate::signals::{
    Sandbox, assert_no_panic, at_rest, children_of, fd_count, is_sexton, restarts, rss_kib,
    run_isolated, soak,
};
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One line of the figures table.
fn figure(name: &str, before: impl std::fmt::Display, after: impl std::fmt::Display) -> String {
    format!("{name} {before}->{after}")
}

#[test]
fn soak_runs() {
    let limit = if soak() { 3600 } else { 600 };
    run_isolated("soak::soak_runs_isolated", Duration::from_secs(limit));
}

/// What kind of run iteration `i` is, and the status it must end with.
fn run_kind(i: usize) -> (&'static str, Vec<String>, i32) {
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    match i % 10 {
        0 => ("true", s(&["run", "--", "true"]), 0),
        1 => ("false", s(&["run", "--", "false"]), 1),
        2 | 3 => {
            let code = (i / 10 % 256) as i32;
            (
                "exit N",
                s(&["run", "--", "sh", "-c", &format!("exit {code}")]),
                code,
            )
        }
        4 | 5 => (
            "timeout",
            s(&["run", "-t", "5ms", "--", "sleep", "10"]),
            124,
        ),
        6 => (
            "leftover holding stdout, killed",
            s(&[
                "run",
                "--wait-delay",
                "5ms",
                "--leftovers",
                "kill",
                "--",
                "sh",
                "-c",
                "sleep 10 & echo x",
            ]),
            0,
        ),
        7 => (
            "leftover holding stdout, left",
            s(&[
                "run",
                "--wait-delay",
                "5ms",
                "--",
                "sh",
                "-c",
                "sleep 0.2 & echo x",
            ]),
            0,
        ),
        8 => ("| head -c1", s(&["run", "--", "yes"]), 141),
        _ => (
            "--json",
            s(&[
                "run",
                "--json",
                "--",
                "sh",
                "-c",
                "echo out; echo err >&2; exit 3",
            ]),
            3,
        ),
    }
}

#[test]
#[ignore = "the subprocess of soak_runs"]
fn soak_runs_isolated() {
    let Some(sb) = Sandbox::enter("soak_runs") else {
        return;
    };
    let n = if soak() { 20_000 } else { 200 };
    eprintln!(
        "soak_runs: {n} runs ({})",
        if soak() {
            "SEXTON_SOAK=1"
        } else {
            "the short version; SEXTON_SOAK=1 runs 20000"
        }
    );
    // One of each first, so that what the first run of a kind sets up
    // for good (the harness's own buffers) is in place.
    for i in 0..10 {
        one_run(&sb, i);
    }
    sb.reap_strays();
    assert!(sb.settle(DEADLINE).is_ok());
    let me = sb.me;
    let (fds0, rss0, z0, cg0) = (fd_count(me), rss_kib(me), sb.zombies(), sb.sexton_cgroups());
    let t0 = Instant::now();
    let mut by_kind: std::collections::BTreeMap<&str, usize> = Default::default();
    for i in 0..n {
        let kind = one_run(&sb, i);
        *by_kind.entry(kind).or_default() += 1;
        if i % 50 == 0 {
            sb.reap_strays();
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    if let Err(left) = sb.settle(DEADLINE) {
        panic!("left behind after {n} runs: {left}");
    }
    let cg1 = if cg0.is_some() {
        let _ = poll(DEADLINE, || sb.sexton_cgroups() == cg0);
        sb.sexton_cgroups()
    } else {
        None
    };
    let (fds1, rss1, z1) = (fd_count(me), rss_kib(me), sb.zombies());
    let show = |c: Option<usize>| c.map_or("n/a".to_string(), |c| c.to_string());
    eprintln!(
        "soak: {n} runs in {secs:.1} s ({:.1} ms each), {}, {}, {}, {}; {by_kind:?}",
        secs * 1000.0 / n as f64,
        figure("fds", fds0, fds1),
        figure("rss", rss0, rss1),
        figure("zombies", z0, z1),
        figure("cgroups", show(cg0), show(cg1)),
    );
    assert_eq!(fds1, fds0, "the test process's fds");
    assert_eq!(z1, z0, "zombies");
    assert_eq!(cg1, cg0, "sexton-* cgroups");
    // Allocator noise aside, nothing may grow with the number of runs.
    assert!(
        rss1.anon <= rss0.anon + 512,
        "the test process grew from {rss0} to {rss1} over {n} runs"
    );

    // The library in this process: the same tree, no new process to
    // hide a leak.
    let m = if soak() { 2_000 } else { 100 };
    for _ in 0..20 {
        library_run();
    }
    let (fds0, rss0, z0) = (fd_count(me), rss_kib(me), sb.zombies());
    let t0 = Instant::now();
    for i in 0..m {
        let code = library_run();
        assert_eq!(code, Some(0), "library run #{i}");
    }
    let secs = t0.elapsed().as_secs_f64();
    let (fds1, rss1, z1) = (fd_count(me), rss_kib(me), sb.zombies());
    let cg1 = sb.sexton_cgroups();

    eprintln!(
        "soak: {m} library runs (sexton::Command, in-process) in {secs:.1} s, {}, {}, {}, {}",
        figure("fds", fds0, fds1),
        figure("rss", rss0, rss1),
        figure("zombies", z0, z1),
        figure("cgroups", show(cg0), show(cg1)),
    );
    assert_eq!(fds1, fds0, "fds over library runs");
    assert_eq!(z1, z0, "zombies over library runs");
    assert_eq!(cg1, cg0, "sexton-* cgroups over library runs");
    assert!(
        rss1.anon <= rss0.anon + 512,
        "the process grew from {rss0} to {rss1} over {m} library runs"
    );
    eprintln!("{} stderr(s) checked for panics", assert_no_panic());
}

/// `sexton::Command` once, in this process: a tree with a background
/// child that holds the output, captured.
fn library_run() -> Option<i32> {
    let out = sexton::Command::new("sh")
        .args(["-c", "echo hi; sleep 10 & exit 0"])
        .leftovers(sexton::Leftovers::Kill)
        .wait_delay(Duration::from_millis(5))
        .run()
        .expect("library run");
    out.exit_code
}

/// Runs iteration `i` of the soak; returns its kind.
fn one_run(sb: &Sandbox, i: usize) -> &'static str {
    let (kind, args, want) = run_kind(i);
    let mut c = Command::new(SEXTON);
    c.args(&args).current_dir(&sb.scratch.dir);
    if kind == "| head -c1" {
        // A reader that takes one byte and closes the pipe.
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        c.stdout(Stdio::from(w));
        let mut k = sb.spawn(kind, &mut c);
        drop(c);
        let mut reader = std::fs::File::from(r);
        let mut one = [0u8; 1];
        let got = reader.read(&mut one).unwrap_or(0);
        drop(reader);
        let status = k.wait(DEADLINE);
        assert_eq!(got, 1, "#{i} {kind}: nothing read");
        let code = status
            .code()
            .or_else(|| std::os::unix::process::ExitStatusExt::signal(&status).map(|s| 128 + s));
        assert_eq!(code, Some(want), "#{i} {kind}: {}", k.stderr());
        return kind;
    }
    let out = sb.scratch.path("run.out");
    c.stdout(std::fs::File::create(&out).unwrap());
    let mut k = sb.spawn(kind, &mut c);
    let status = k.wait(DEADLINE);
    assert_eq!(
        status.code(),
        Some(want),
        "#{i} {kind} {args:?}: {}",
        k.stderr()
    );
    if kind == "--json" {
        let text = std::fs::read_to_string(&out).unwrap();
        let v: serde_json::Value = serde_json::from_str(text.trim()).expect("one JSON document");
        assert_eq!(v["stdout"], "out\n", "#{i}");
        assert_eq!(v["stderr"], "err\n", "#{i}");
    }
    kind
}

#[test]
fn soak_supervisor_restarts() {
    let limit = if soak() { 3600 } else { 600 };
    run_isolated(
        "soak::soak_supervisor_restarts_isolated",
        Duration::from_secs(limit),
    );
}

/// A crashing service restarted as fast as the config allows, next to a
/// steady one.
const CRASHING: &str = r#"
[services.crasher]
command = ["sh", "-c", "echo crash; exit 3"]
restart = "on-failure"
backoff_initial = "0s"
backoff_max = "0s"
start_limit_burst = 4294967295
start_limit_interval = "1ms"

[services.steady]
command = "sleep 3600"
"#;

#[test]
#[ignore = "the subprocess of soak_supervisor_restarts"]
fn soak_supervisor_restarts_isolated() {
    let Some(sb) = Sandbox::enter("soak_supervisor_restarts") else {
        return;
    };
    let n: u64 = if soak() { 2_000 } else { 200 };
    eprintln!(
        "soak_supervisor_restarts: {n} restarts ({})",
        if soak() {
            "SEXTON_SOAK=1"
        } else {
            "the short version; SEXTON_SOAK=1 runs 2000"
        }
    );
    let cg_start = sb.sexton_cgroups();
    std::fs::write(sb.scratch.path("sexton.toml"), CRASHING).unwrap();
    // In the foreground: `up -d` returns once every service is up or
    // has failed, which a crasher with no start limit never is.
    let mut c = Command::new(SEXTON);
    c.args(["up", "--color", "never"])
        .current_dir(&sb.scratch.dir)
        .env_remove("SEXTON_STATE_DIR")
        .stdout(Stdio::null());
    let mut up = sb.spawn("sexton up", &mut c);
    let restarts = |sb: &Sandbox| restarts(sb, &sb.scratch.dir, "crasher");
    let guard = up.pid();
    let worker = {
        let mut w = None;
        assert!(poll(DEADLINE, || {
            w = children_of(guard)
                .into_iter()
                .map(|(p, _)| p)
                .find(|&p| is_sexton(p));
            w.is_some()
        }));
        w.unwrap()
    };
    // Warm-up, then the figures at rest: the crasher stopped, so no run
    // of it holds fds in the supervisor at that moment.
    assert!(poll(DEADLINE, || restarts(&sb) >= 20), "no restarts");
    let dir = sb.scratch.dir.clone();
    let at_rest = || at_rest(&sb, &dir, "crasher", guard, worker);
    let before = at_rest();
    let r0 = restarts(&sb);
    let t0 = Instant::now();
    let long = Duration::from_secs(if soak() { 1800 } else { 300 });
    let mut last = r0;
    assert!(
        poll(long, || {
            last = restarts(&sb);
            last >= r0 + n
        }),
        "only {} restarts in {long:?}",
        last - r0
    );
    let secs = t0.elapsed().as_secs_f64();
    let after = at_rest();
    let down = sb.sexton(&["down"]);
    assert_eq!(down.code, Some(0), "{down:?}");
    let code = up.wait(DEADLINE).code();
    assert_eq!(code, Some(0), "sexton up: {}", up.stderr());
    if let Err(left) = sb.settle(DEADLINE) {
        panic!("left behind: {left}");
    }
    let cg_end = if cg_start.is_some() {
        let _ = poll(DEADLINE, || sb.sexton_cgroups() == cg_start);
        sb.sexton_cgroups()
    } else {
        None
    };
    let show = |c: Option<usize>| c.map_or("n/a".to_string(), |c| c.to_string());
    eprintln!(
        "soak: {} supervisor restarts in {secs:.1} s; supervisor guard {}, {}; worker {}, {}; zombies {}->{}; cgroups {}->{}; test process zombies {}",
        last - r0,
        figure("fds", before.fds.0, after.fds.0),
        figure("rss", before.rss.0, after.rss.0),
        figure("fds", before.fds.1, after.fds.1),
        figure("rss", before.rss.1, after.rss.1),
        before.zombies,
        after.zombies,
        show(cg_start),
        show(cg_end),
        sb.zombies(),
    );
    assert_eq!(after.fds, before.fds, "supervisor fds (guard, worker)");
    assert_eq!(after.zombies, 0, "zombie children of the supervisor");
    assert_eq!(cg_end, cg_start, "sexton-* cgroups");
    assert_eq!(sb.zombies(), 0);
    assert!(
        after.rss.0.anon <= before.rss.0.anon + 256,
        "the guard grew: {before:?} -> {after:?}"
    );
    assert!(
        after.rss.1.anon <= before.rss.1.anon + 512,
        "the supervisor grew over {} restarts: {before:?} -> {after:?}",
        last - r0
    );
    eprintln!("{} stderr(s) checked for panics", assert_no_panic());
}
