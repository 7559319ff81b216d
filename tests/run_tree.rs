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
