//! `sexton run` on real process trees: the inherited pipe (D6), orphans
//! (D4), escapees (D5), fork loops, and sexton itself killed with
//! SIGKILL. Each in both tracking modes; every check polls /proc with a
//! deadline.

mod common;

use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

/// The seed case: a start script prints "start ok" and backgrounds a
/// long sleeper that keeps stdout open.
fn start_script(s: &Scratch) -> String {
    s.script(
        "start.sh",
        &format!(
            "#!/bin/sh\necho start ok\nsleep 300 &\necho $! >> {}\n",
            s.pidfile().display()
        ),
    )
    .to_str()
    .unwrap()
    .to_string()
}

const PY_CALLER: &str = r#"
import subprocess, sys, time, json
t0 = time.monotonic()
try:
    r = subprocess.run(sys.argv[2:], capture_output=True, timeout=float(sys.argv[1]))
except subprocess.TimeoutExpired:
    print(json.dumps({"timeout": True}))
    sys.exit(0)
print(json.dumps({"timeout": False, "code": r.returncode,
                  "stdout": r.stdout.decode(), "elapsed": time.monotonic() - t0}))
"#;

fn python_caller(s: &Scratch, timeout: &str, argv: &[&str]) -> serde_json::Value {
    let mut c = Command::new("python3");
    c.args(["-c", PY_CALLER, timeout]).args(argv);
    let r = run_cmd(&mut c, s);
    serde_json::from_str(r.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {r:?}"))
}

#[test]
fn d6_python_caller_does_not_hang_on_a_held_stdout() {
    let s = Scratch::new("d6py");
    let sc = start_script(&s);
    for mode in modes() {
        let before = s.pids().len();
        let v = python_caller(&s, "10", &[SEXTON, "run", "--tracking", mode, "--", &sc]);
        assert_eq!(v["timeout"], false, "{mode}: the caller timed out");
        assert_eq!(v["code"], 0);
        assert_eq!(v["stdout"], "start ok\n");
        // Returned within the wait-delay (250 ms) plus slack for a noisy
        // machine; the sleeper (300 s) is still running.
        let elapsed = v["elapsed"].as_f64().unwrap();
        eprintln!("{mode}: python caller returned after {elapsed:.3} s");
        assert!(elapsed < 5.0, "{elapsed}");
        let pids = s.wait_pids(before + 1);
        assert!(alive(pids[before]));
    }
    // Negative control: the same caller on the script itself times out,
    // because the sleeper holds the pipe.
    let v = python_caller(&s, "1", &[&sc]);
    assert_eq!(v["timeout"], true);
}

#[test]
fn d6_json_names_the_sleeper_holding_stdout() {
    let s = Scratch::new("d6json");
    let sc = start_script(&s);
    for mode in modes() {
        let before = s.pids().len();
        let r = sexton_run(&s, mode, &["--json", "--wait-delay", "300ms", "--", &sc]);
        assert_eq!(r.code, Some(0), "{r:?}");
        let v = r.json();
        assert_eq!(v["stdout"], "start ok\n");
        let sleeper = s.wait_pids(before + 1)[before];
        let left = v["leftovers"].as_array().unwrap();
        assert_eq!(left.len(), 1, "{v}");
        assert_eq!(left[0]["pid"], sleeper);
        assert_eq!(left[0]["cmdline"], "sleep 300");
        assert!(
            left[0]["holds"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!("stdout")),
            "{v}"
        );
        eprintln!("{mode}: returned after {:?}", r.elapsed);
        assert!(r.elapsed < Duration::from_secs(5));
        // Negative control: a program whose background job closes its
        // output holds nothing and is not waited for either.
        let r = sexton_run(
            &s,
            mode,
            &[
                "--json",
                "--shell",
                "--",
                "sleep 300 >/dev/null 2>&1 & echo $! > bg.pid",
            ],
        );
        let v = r.json();
        let bg: i32 = std::fs::read_to_string(s.path("bg.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let mut all = std::fs::read_to_string(s.pidfile()).unwrap();
        all.push_str(&format!("{bg}\n"));
        std::fs::write(s.pidfile(), all).unwrap();
        assert_eq!(v["leftovers"][0]["pid"], bg);
        assert_eq!(v["leftovers"][0]["holds"], serde_json::json!([]));
    }
}

#[test]
fn d4_timeout_on_a_script_chain_leaves_nothing() {
    let s = Scratch::new("d4chain");
    let pf = s.pidfile();
    let sub = s.script(
        "sub.sh",
        &format!(
            "#!/bin/sh\necho $$ >> {pf}\nsleep 300 &\necho $! >> {pf}\nwait\n",
            pf = pf.display()
        ),
    );
    let start = s.script(
        "start.sh",
        &format!(
            "#!/bin/sh\necho $$ >> {pf}\n{sub} &\nwait\n",
            pf = pf.display(),
            sub = sub.display()
        ),
    );
    for mode in modes() {
        let _ = std::fs::remove_file(&pf);
        let rep = under_subreaper(
            &s,
            &[
                SEXTON,
                "run",
                "--tracking",
                mode,
                "--timeout",
                "500ms",
                "--json",
                "--",
                start.to_str().unwrap(),
            ],
        );
        assert_eq!(rep.status, 124, "{:?}", rep.ran);
        let v = rep.ran.json();
        assert_eq!(v["timed_out"], true);
        // The stop signal reached start.sh, sub.sh and the sleeper.
        assert_eq!(v["killed"], 3, "{v}");
        assert_eq!(s.pids().len(), 3);
        assert!(s.alive().is_empty(), "{mode}: alive {:?}", s.alive());
        assert!(rep.children.is_empty(), "{mode}: left {:?}", rep.children);
    }
    // Negative control: GNU timeout signals only the script, the chain
    // lives on as orphans.
    let _ = std::fs::remove_file(&pf);
    let rep = under_subreaper(&s, &["timeout", "0.5", start.to_str().unwrap()]);
    assert_eq!(rep.status, 124);
    assert!(!rep.children.is_empty());
}

#[test]
fn d5_escapees_and_fork_loops_are_killed() {
    let s = Scratch::new("d5");
    let pf = s.pidfile();
    // A setsid double-fork escapee that ignores TERM, a process forking
    // every 10 ms, and a plain child.
    let script = s.script(
        "tree.sh",
        &format!(
            r#"#!/bin/sh
setsid sh -c 'sh -c "trap \"\" TERM; echo \$\$ >> {pf}; while :; do sleep 1; done" &' </dev/null
sh -c 'echo $$ >> {pf}; while :; do sleep 300 & sleep 0.01; done' &
sleep 300 &
echo $! >> {pf}
wait
"#,
            pf = pf.display()
        ),
    );
    for mode in modes() {
        let _ = std::fs::remove_file(&pf);
        let rep = under_subreaper(
            &s,
            &[
                SEXTON,
                "run",
                "--tracking",
                mode,
                "--timeout",
                "700ms",
                "-k",
                "300ms",
                "--json",
                "--",
                script.to_str().unwrap(),
            ],
        );
        assert_eq!(rep.status, 124, "{:?}", rep.ran);
        let v = rep.ran.json();
        assert!(
            v["killed"].as_u64().unwrap() >= 1,
            "the TERM-proof escapee needed SIGKILL: {v}"
        );
        assert_eq!(s.pids().len(), 3, "{:?}", s.pids());
        assert!(s.alive().is_empty(), "{mode}: alive {:?}", s.alive());
        assert!(rep.children.is_empty(), "{mode}: left {:?}", rep.children);
    }
}

#[test]
fn d5_kill_minus_9_of_sexton_kills_its_tree() {
    let s = Scratch::new("kill9");
    let pf = s.pidfile();
    let script = s.script(
        "tree.sh",
        &format!(
            r#"#!/bin/sh
setsid sh -c 'sh -c "trap \"\" TERM HUP; echo \$\$ >> {pf}; while :; do sleep 1; done" &' </dev/null
sh -c 'echo $$ >> {pf}; while :; do sleep 300 & sleep 0.01; done' &
echo $$ >> {pf}
wait
"#,
            pf = pf.display()
        ),
    );
    for mode in modes() {
        let _ = std::fs::remove_file(&pf);
        let mut c = Command::new(SEXTON);
        c.args(["run", "--tracking", mode, "--", script.to_str().unwrap()])
            .stdout(std::process::Stdio::null());
        let mut sexton = spawn(&mut c);
        let pids = s.wait_pids(3);
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(sexton.pid()),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        let t0 = Instant::now();
        sexton.wait(DEADLINE);
        let gone = poll(Duration::from_secs(5), || pids.iter().all(|&p| !alive(p)));
        eprintln!(
            "{mode}: tree gone {:?} after kill -9 of sexton",
            t0.elapsed()
        );
        assert!(gone, "{mode}: alive {:?}", s.alive());
    }
}

#[test]
fn d5_negative_control_plain_kill_leaves_the_escapee() {
    // The check above can fail: the same tree under a plain parent that
    // is killed leaves the escapee running.
    let s = Scratch::new("kill9neg");
    let pf = s.pidfile();
    let script = s.script(
        "tree.sh",
        &format!(
            r#"#!/bin/sh
setsid sh -c 'sh -c "echo \$\$ >> {pf}; while :; do sleep 1; done" &' </dev/null
wait
"#,
            pf = pf.display()
        ),
    );
    let mut c = Command::new(script);
    let mut sh = spawn(&mut c);
    let pids = s.wait_pids(1);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sh.pid()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    sh.wait(DEADLINE);
    assert!(!poll(Duration::from_millis(500), || !alive(pids[0])));
}

#[test]
fn signals_to_sexton_reach_the_whole_tree() {
    let s = Scratch::new("sigfwd");
    let pf = s.pidfile();
    let script = s.script(
        "tree.sh",
        &format!(
            "#!/bin/sh\nsetsid sleep 300 &\necho $! >> {pf}\nsleep 300 &\necho $! >> {pf}\nwait\n",
            pf = pf.display()
        ),
    );
    for mode in modes() {
        let _ = std::fs::remove_file(&pf);
        let mut c = Command::new(SEXTON);
        c.args(["run", "--tracking", mode, "--", script.to_str().unwrap()]);
        let mut sexton = spawn(&mut c);
        let pids = s.wait_pids(2);
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(sexton.pid()),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let st = sexton.wait(DEADLINE);
        assert_eq!(st.code(), Some(143), "{mode}");
        assert!(poll(DEADLINE, || pids.iter().all(|&p| !alive(p))), "{mode}");
    }
}

#[test]
fn sexton_leaves_no_zombie_and_no_process() {
    let s = Scratch::new("zombies");
    // Many short-lived children exiting at once, some orphaned.
    let quick = "for i in $(seq 50); do (sleep 0.0$((i % 5)) &) ; sh -c 'exit 0' & done; wait";
    let slow = format!("{quick}; sleep 30");
    for mode in modes() {
        for (extra, script) in [
            (&[][..], quick),
            (&["--leftovers", "kill"][..], quick),
            (&["--timeout", "300ms"][..], slow.as_str()),
        ] {
            let mut argv = vec![SEXTON, "run", "--tracking", mode, "--json"];
            argv.extend_from_slice(extra);
            argv.extend_from_slice(&["--shell", "--", script]);
            let rep = under_subreaper(&s, &argv);
            assert!(rep.status == 0 || rep.status == 124, "{:?}", rep.ran);
            let v = rep.ran.json();
            if extra.len() == 2 && extra[0] == "--timeout" {
                assert_eq!(v["timed_out"], true);
            }
            // Only a leftover sexton reported as left may remain (a sleep
            // that closed its stdout but had not exited yet); it is then
            // the adopter's to reap. Nothing else, zombie or live.
            let left: Vec<i64> = v["leftovers"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|l| l["action"] == "left")
                .map(|l| l["pid"].as_i64().unwrap())
                .collect();
            for c in &rep.children {
                assert!(
                    left.contains(&c["pid"].as_i64().unwrap()),
                    "{mode} {extra:?}: left behind {c}, not reported"
                );
            }
        }
    }
    // Negative control: a parent that exits without waiting leaves a
    // zombie the subreaper finds, so the check above can fail.
    let rep = under_subreaper(
        &s,
        &[
            "python3",
            "-c",
            "import os\npid = os.fork()\nif pid == 0: os._exit(0)\nwhile open(f'/proc/{pid}/stat').read().rsplit(') ', 1)[1][0] != 'Z': pass\nos._exit(0)",
        ],
    );
    assert_eq!(rep.children.len(), 1, "{:?}", rep);
    assert_eq!(rep.children[0]["state"], "Z");
}

/// A tree with every way out of a process group: a setsid escapee that
/// ignores TERM and HUP, a double-fork daemon, a fork loop, a plain
/// child. Each announces its pid.
fn escape_tree(s: &Scratch) -> std::path::PathBuf {
    s.script(
        "escape.sh",
        &format!(
            r#"#!/bin/sh
setsid sh -c 'sh -c "trap \"\" TERM HUP; echo \$\$ >> {pf}; while :; do sleep 1; done" &' </dev/null
(setsid sleep 300 & echo $! >> {pf}) </dev/null
sh -c 'echo $$ >> {pf}; while :; do sleep 300 & sleep 0.01; done' &
echo $$ >> {pf}
wait
"#,
            pf = s.pidfile().display()
        ),
    )
}

/// The `sexton-*` cgroups this machine has (empty when there is no
/// writable cgroup2).
fn sexton_cgroups() -> Vec<std::path::PathBuf> {
    let Some(own) = sexton::tree::cgroup::own_cgroup() else {
        return Vec::new();
    };
    std::fs::read_dir(own)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("sexton-"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// cgroups named after one of `pids` (their owners).
fn cgroups_of(pids: &[i32]) -> Vec<std::path::PathBuf> {
    sexton_cgroups()
        .into_iter()
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            pids.iter()
                .any(|pid| n.starts_with(&format!("sexton-{pid}-")))
        })
        .collect()
}

/// sexton's guard and its worker (the guard's child).
fn guard_and_worker(guard: i32) -> Vec<i32> {
    let mut v = vec![guard];
    v.extend(
        sexton::procfs::processes()
            .into_iter()
            .filter(|p| p.ppid == guard)
            .map(|p| p.pid),
    );
    v
}

#[test]
fn d5_sigkill_to_sextons_whole_process_group_kills_the_tree() {
    // What CI runners, `kill -9 -PGID` and terminal hang-ups do: the
    // guard and everything in its group die at once.
    let s = Scratch::new("pgkill");
    let script = escape_tree(&s);
    for mode in modes() {
        let _ = std::fs::remove_file(s.pidfile());
        let mut c = Command::new(SEXTON);
        c.args(["run", "--tracking", mode, "--", script.to_str().unwrap()])
            .stdout(std::process::Stdio::null());
        let mut sexton = spawn(&mut c); // its own process group
        let pids = s.wait_pids(4);
        let ours = guard_and_worker(sexton.pid());
        nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(sexton.pid()),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        let t0 = Instant::now();
        sexton.wait(DEADLINE);
        let gone = poll(DEADLINE, || pids.iter().all(|&p| !alive(p)));
        eprintln!("{mode}: tree gone {:?} after kill -9 -PGID", t0.elapsed());
        assert!(gone, "{mode}: alive {:?}", s.alive());
        assert!(
            poll(DEADLINE, || cgroups_of(&ours).is_empty()),
            "{mode}: cgroups left {:?}",
            cgroups_of(&ours)
        );
    }
}

#[test]
fn d5_a_worker_killed_alone_leaves_nothing_either() {
    // The other half of the pair: the worker dies abruptly; the guard
    // (a subreaper) adopts the tree and kills it.
    let s = Scratch::new("workerkill");
    let script = escape_tree(&s);
    for mode in modes() {
        let _ = std::fs::remove_file(s.pidfile());
        let mut c = Command::new(SEXTON);
        c.args(["run", "--tracking", mode, "--", script.to_str().unwrap()])
            .stdout(std::process::Stdio::null());
        let mut sexton = spawn(&mut c);
        let pids = s.wait_pids(4);
        let ours = guard_and_worker(sexton.pid());
        assert_eq!(ours.len(), 2, "{mode}: guard and worker: {ours:?}");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(ours[1]),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        let st = sexton.wait(DEADLINE);
        assert_eq!(st.code(), Some(128 + 9), "{mode}");
        assert!(
            poll(DEADLINE, || pids.iter().all(|&p| !alive(p))),
            "{mode}: alive {:?}",
            s.alive()
        );
        assert!(
            cgroups_of(&ours).is_empty(),
            "{mode}: {:?}",
            cgroups_of(&ours)
        );
    }
}

#[test]
fn a_forwarded_signal_reaches_each_process_once() {
    // A realtime signal is queued, never merged: a process that got it
    // twice counts two. The stop signal of the timeout goes through the
    // same delivery as every forwarded signal.
    let s = Scratch::new("once");
    let py = r#"
import os, signal, sys
sig = signal.SIGRTMIN + 1
signal.pthread_sigmask(signal.SIG_BLOCK, [sig])
print("ready", flush=True)
n = 0
while signal.sigtimedwait([sig], 2 if n == 0 else 0.5) is not None:
    n += 1
sys.exit(n)
"#;
    for mode in modes() {
        for group in [&[][..], &["--foreground"][..]] {
            let mut argv = vec![SEXTON, "run", "--tracking", mode];
            argv.extend_from_slice(group);
            argv.extend_from_slice(&[
                "--json",
                "--preserve-status",
                "-s",
                "RTMIN+1",
                "-t",
                "500ms",
                "-k",
                "10s",
                "--",
                "python3",
                "-c",
                py,
            ]);
            let mut c = Command::new(argv[0]);
            c.args(&argv[1..]);
            let r = run_cmd(&mut c, &s);
            assert_eq!(r.code, Some(1), "{mode} {group:?}: signals received: {r:?}");
        }
    }
}

#[test]
fn a_realtime_signal_death_is_named() {
    let s = Scratch::new("rtname");
    for mode in modes() {
        let r = sexton_run(
            &s,
            mode,
            &[
                "--json",
                "--",
                "python3",
                "-c",
                "import os, signal; os.kill(os.getpid(), signal.SIGRTMIN + 3)",
            ],
        );
        assert_eq!(r.code, Some(128 + 37), "{r:?}");
        let v = r.json();
        assert_eq!(v["signal"], "RTMIN+3", "{v}");
        assert_eq!(v["exit_code"], serde_json::Value::Null);
    }
}

#[test]
fn stale_cgroups_of_dead_owners_are_removed() {
    let Some(own) = sexton::tree::cgroup::own_cgroup() else {
        eprintln!("skipping: no cgroup2 mount found");
        return;
    };
    let s = Scratch::new("stalecg");
    if !modes().contains(&"cgroup") {
        eprintln!("skipping: cgroup2 is not writable here");
        return;
    }
    // A pid that is surely dead: a child we reaped.
    let dead = {
        let mut c = Command::new("true");
        let mut sp = spawn(&mut c);
        sp.wait(DEADLINE);
        sp.pid()
    };
    let stale = own.join(format!("sexton-{dead}-7"));
    std::fs::create_dir(&stale).unwrap();
    // A live owner's cgroup is left alone (this test process's pid).
    let live = own.join(format!("sexton-{}-99", std::process::id()));
    std::fs::create_dir(&live).unwrap();
    let r = sexton_run(&s, "cgroup", &["--", "true"]);
    assert_eq!(r.code, Some(0));
    let stale_gone = !stale.exists();
    let live_kept = live.exists();
    let _ = std::fs::remove_dir(&stale);
    let _ = std::fs::remove_dir(&live);
    assert!(stale_gone, "the dead owner's empty cgroup is still there");
    assert!(live_kept, "a live owner's cgroup was removed");
}

#[test]
fn no_cgroup_is_left_on_any_exit_path() {
    let s = Scratch::new("cgpaths");
    if !modes().contains(&"cgroup") {
        eprintln!("skipping: cgroup2 is not writable here");
        return;
    }
    let tree = escape_tree(&s);
    let tree = tree.to_str().unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec!["--", "true"],
        vec!["--", "no-such-program-x"],
        vec!["-t", "200ms", "-k", "200ms", "--", tree],
        vec![
            "--leftovers",
            "leave",
            "--wait-delay",
            "50ms",
            "--",
            "sh",
            "-c",
            "sleep 2 &",
        ],
        vec!["--leftovers", "kill", "--", "sh", "-c", "sleep 300 &"],
        vec!["--leftovers", "fail", "--", "sh", "-c", "sleep 300 &"],
        vec!["--json", "--", "sh", "-c", "kill -9 $$"],
    ];
    for args in cases {
        let mut c = Command::new(SEXTON);
        c.args(["run", "--tracking", "cgroup"]).args(&args);
        c.current_dir(&s.dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut sp = spawn(&mut c);
        // The worker, while the run lasts.
        let mut ours = vec![sp.pid()];
        let st = loop {
            ours = guard_and_worker(sp.pid()).into_iter().chain(ours).collect();
            if let Some(st) = sp.child.try_wait().unwrap() {
                break st;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        ours.sort_unstable();
        ours.dedup();
        assert!(
            cgroups_of(&ours).is_empty(),
            "{args:?} (exit {st:?}): left {:?}",
            cgroups_of(&ours)
        );
    }
}

#[test]
fn gnu_timeout_parity() {
    // The cases of GNU coreutils' tests/timeout/timeout.sh, against
    // `sexton run`.
    let s = Scratch::new("gnu");
    let sh = |script: &str| {
        let mut c = Command::new("sh");
        c.args(["-c", script]).env("SEXTON", SEXTON);
        run_cmd(&mut c, &s)
    };
    for mode in modes() {
        let code = |args: &[&str]| sexton_run(&s, mode, args).code;
        assert_eq!(code(&["-t", "10", "--", "true"]), Some(0));
        assert_eq!(code(&["-t", "1d", "--", "true"]), Some(0));
        // Zero disables the timeout.
        assert_eq!(code(&["-t", "0", "--", "sh", "-c", "sleep 0.3"]), Some(0));
        assert_eq!(code(&["-t", "10", "--", "sh", "-c", "exit 2"]), Some(2));
        assert_eq!(code(&["-t", ".1", "--", "sleep", "10"]), Some(124));
        assert_eq!(
            code(&["--preserve-status", "-t", ".1", "--", "sleep", "10"]),
            Some(128 + 15)
        );
        // Signal 0 sends nothing; the kill-after's SIGKILL then ends it,
        // and a forced end is 128+KILL, not 124.
        assert_eq!(
            code(&["-s", "0", "-k", "1", "-t", ".1", "--", "sleep", "10"]),
            Some(137)
        );
        assert_eq!(
            code(&[
                "--foreground",
                "-s",
                "0",
                "-k",
                "1",
                "-t",
                ".1",
                "--",
                "sleep",
                "10"
            ]),
            Some(137)
        );
        // -v says which signals went out.
        let r = sexton_run(
            &s,
            mode,
            &["-v", "-s", "0", "-k", ".1", "-t", ".1", "--", "sleep", "10"],
        );
        let said: Vec<&str> = r.stderr.lines().collect();
        assert_eq!(
            said,
            [
                "sexton: sending signal 0 to command 'sleep'",
                "sexton: sending signal KILL to command 'sleep'"
            ],
            "{r:?}"
        );
    }
    // Immune to a caller that ignores SIGCHLD.
    let r = sh("trap '' CHLD; exec \"$SEXTON\" run -t 10 -- true");
    assert_eq!(r.code, Some(0), "{r:?}");
    // Not confused by a child it did not start (coreutils bug#9098).
    let r = sh(
        "out=$(sleep .1 & exec \"$SEXTON\" run -t .5 -- sh -c 'sleep 2; echo foo'); echo \"[$out] $?\"",
    );
    assert_eq!(r.stdout.trim(), "[] 124", "{r:?}");
}

#[test]
fn the_program_starts_with_the_callers_signal_mask_and_ignored_signals() {
    let s = Scratch::new("sigmask");
    let py = r#"
import signal, subprocess, sys
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1, signal.SIGALRM])
signal.signal(signal.SIGPIPE, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
out = subprocess.run(sys.argv[1:], capture_output=True, restore_signals=False).stdout.decode()
print(out.strip().replace("\n", " "))
"#;
    let grep = ["grep", "-E", "SigBlk|SigIgn", "/proc/self/status"];
    for mode in modes() {
        let mut direct = Command::new("python3");
        direct.args(["-c", py]).args(grep);
        let want = run_cmd(&mut direct, &s).stdout;
        assert!(want.contains("SigBlk:\t0000000000002200"), "{want}");
        let mut c = Command::new("python3");
        c.args(["-c", py, SEXTON, "run", "--tracking", mode, "--"])
            .args(grep);
        let got = run_cmd(&mut c, &s).stdout;
        assert_eq!(got, want, "{mode}");
    }
}
