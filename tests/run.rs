//! `sexton run`: exit codes, flags, the result document and the run log,
//! each in both tracking modes.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

#[test]
fn exit_codes_follow_gnu_timeout() {
    let s = Scratch::new("codes");
    let noexec = s.path("noexec");
    std::fs::write(&noexec, "#!/bin/sh\n").unwrap();
    for mode in modes() {
        let cases: &[(&[&str], i32)] = &[
            (&["--", "true"], 0),
            (&["--", "sh", "-c", "exit 3"], 3),
            (&["--", "sh", "-c", "kill -9 $$"], 128 + 9),
            (&["--", "sh", "-c", "kill -TERM $$"], 128 + 15),
            (&["--timeout", "200ms", "--", "sleep", "30"], 124),
            (
                &[
                    "--timeout",
                    "200ms",
                    "--preserve-status",
                    "--",
                    "sleep",
                    "30",
                ],
                128 + 15,
            ),
            (
                &[
                    "-t",
                    "200ms",
                    "-s",
                    "INT",
                    "--preserve-status",
                    "--",
                    "sleep",
                    "30",
                ],
                128 + 2,
            ),
            (&["--", "/nonexistent/program"], 127),
            (&["--", "no-such-program-anywhere"], 127),
            (&["--", noexec.to_str().unwrap()], 126),
            (&["--timeout", "soon", "--", "true"], 125),
            (&["--", "sh", "-c", "exit 0"], 0),
        ];
        for (args, want) in cases {
            let r = sexton_run(&s, mode, args);
            assert_eq!(r.code, Some(*want), "{mode} {args:?}: {r:?}");
        }
    }
}

#[test]
fn bad_input_gives_one_line_and_its_status() {
    let s = Scratch::new("badinput");
    for mode in modes() {
        let cases: &[(&[&str], i32, &str)] = &[
            (
                &["--", "no-such-program-anywhere"],
                127,
                "command not found",
            ),
            (
                &["--timeout", "5 parsecs", "--", "true"],
                125,
                "invalid duration",
            ),
            (&["-k", "-1", "--", "true"], 125, ""),
            (&["--signal", "NOPE", "--", "true"], 125, ""),
            (&["--output-limit", "lots", "--json", "--", "true"], 125, ""),
            (
                &["--shell", "--", "echo", "two"],
                125,
                "--shell takes exactly one",
            ),
            (&["--pass-fd", "200", "--", "true"], 125, "--pass-fd 200"),
            (
                &["--input", "/nonexistent/in", "--", "cat"],
                125,
                "/nonexistent/in",
            ),
            (&["--cwd", "/nonexistent/dir", "--", "true"], 125, ""),
            (&[], 125, ""),
        ];
        for (args, code, text) in cases {
            let r = sexton_run(&s, mode, args);
            assert_eq!(r.code, Some(*code), "{mode} {args:?}: {r:?}");
            let lines: Vec<&str> = r
                .stderr
                .lines()
                .filter(|l| !l.starts_with("hint: "))
                .collect();
            assert_eq!(lines.len(), 1, "{mode} {args:?}: one line: {:?}", r.stderr);
            assert!(lines[0].starts_with("sexton: "), "{args:?}: {lines:?}");
            assert!(lines[0].contains(text), "{args:?}: {lines:?} lacks {text}");
            assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
        }
    }
}

#[test]
fn emfile_is_a_one_line_error_and_125() {
    let s = Scratch::new("emfile");
    for mode in modes() {
        // Few enough descriptors that sexton cannot make its pipes.
        for n in 4..=7 {
            let mut c = Command::new("prlimit");
            c.arg(format!("--nofile={n}")).arg(SEXTON).args([
                "run",
                "--tracking",
                mode,
                "--",
                "true",
            ]);
            let r = run_cmd(&mut c, &s);
            if r.code == Some(0) {
                continue;
            }
            assert_eq!(r.code, Some(125), "nofile={n}: {r:?}");
            assert_eq!(r.stderr.lines().count(), 1, "nofile={n}: {:?}", r.stderr);
            assert!(r.stderr.starts_with("sexton: "), "{:?}", r.stderr);
            assert!(r.stderr.contains("(os error 24)"), "{:?}", r.stderr);
        }
        // Negative control: with room enough it runs.
        let mut c = Command::new("prlimit");
        c.arg("--nofile=64")
            .arg(SEXTON)
            .args(["run", "--tracking", mode, "--", "true"]);
        assert_eq!(run_cmd(&mut c, &s).code, Some(0));
    }
}

#[test]
fn json_document_has_every_field() {
    let s = Scratch::new("json");
    for mode in modes() {
        let r = sexton_run(
            &s,
            mode,
            &["--json", "--", "sh", "-c", "echo out; echo err >&2; exit 4"],
        );
        assert_eq!(r.code, Some(4), "{r:?}");
        let v = r.json();
        for k in [
            "argv",
            "pid",
            "exit_code",
            "signal",
            "timed_out",
            "duration_ms",
            "stdout",
            "stderr",
            "stdout_bytes",
            "stderr_bytes",
            "stdout_dropped",
            "stderr_dropped",
            "rusage",
            "leftovers",
            "killed",
            "tracking",
        ] {
            assert!(v.get(k).is_some(), "{mode}: missing {k} in {v}");
        }
        assert_eq!(
            v["argv"],
            serde_json::json!(["sh", "-c", "echo out; echo err >&2; exit 4"])
        );
        assert_eq!(v["exit_code"], 4);
        assert_eq!(v["signal"], serde_json::Value::Null);
        assert_eq!(v["stdout"], "out\n");
        assert_eq!(v["stderr"], "err\n");
        assert_eq!(v["stdout_bytes"], 4);
        assert_eq!(v["tracking"], mode);
        assert!(v["rusage"]["max_rss_kb"].as_u64().unwrap() > 0);

        let r = sexton_run(&s, mode, &["--json", "--", "sh", "-c", "kill -TERM $$"]);
        let v = r.json();
        assert_eq!(v["exit_code"], serde_json::Value::Null);
        assert_eq!(v["signal"], "TERM");
        assert_eq!(r.code, Some(143));

        // Invalid UTF-8 is replaced, the byte count is the real one.
        let r = sexton_run(&s, mode, &["--json", "--", "printf", "a\\377b"]);
        let v = r.json();
        assert_eq!(v["stdout"], "a\u{fffd}b");
        assert_eq!(v["stdout_bytes"], 3);
    }
}

#[test]
fn output_limit_keeps_head_and_tail() {
    let s = Scratch::new("limit");
    for mode in modes() {
        let r = sexton_run(
            &s,
            mode,
            &[
                "--json",
                "--output-limit",
                "100",
                "--",
                "seq",
                "1",
                "100000",
            ],
        );
        let v = r.json();
        let out = v["stdout"].as_str().unwrap();
        let total = v["stdout_bytes"].as_u64().unwrap();
        assert_eq!(total, 588895, "seq 1 100000 writes 588895 bytes");
        assert_eq!(out.len(), 100);
        assert!(out.starts_with("1\n2\n3\n"), "{out:?}");
        assert!(out.ends_with("99999\n100000\n"), "{out:?}");
        assert_eq!(v["stdout_dropped"].as_u64().unwrap(), total - 100);
        // Negative control: without a limit, everything is kept.
        let v = sexton_run(&s, mode, &["--json", "--", "seq", "1", "100000"]).json();
        assert_eq!(v["stdout_dropped"], 0);
        assert_eq!(v["stdout"].as_str().unwrap().len(), 588895);
        // A size with a unit.
        let v = sexton_run(
            &s,
            mode,
            &[
                "--json",
                "--output-limit",
                "1KiB",
                "--",
                "seq",
                "1",
                "100000",
            ],
        )
        .json();
        assert_eq!(v["stdout"].as_str().unwrap().len(), 1024);
    }
}

#[test]
fn input_cwd_env_shell() {
    let s = Scratch::new("flags");
    let input = s.path("in.txt");
    std::fs::write(&input, "from a file\n").unwrap();
    for mode in modes() {
        let v = sexton_run(
            &s,
            mode,
            &["--json", "--input", input.to_str().unwrap(), "--", "cat"],
        )
        .json();
        assert_eq!(v["stdout"], "from a file\n");
        // Default stdin is /dev/null: cat does not wait.
        let v = sexton_run(&s, mode, &["--json", "--", "cat"]).json();
        assert_eq!(v["stdout"], "");
        // --input - is sexton's own stdin.
        let mut c = Command::new(SEXTON);
        c.args([
            "run",
            "--tracking",
            mode,
            "--json",
            "--input",
            "-",
            "--",
            "cat",
        ]);
        let r = run_cmd_stdin(&mut c, &s, &input);
        assert_eq!(r.json()["stdout"], "from a file\n");

        let v = sexton_run(&s, mode, &["--json", "--cwd", "/usr", "--", "pwd"]).json();
        assert_eq!(v["stdout"], "/usr\n");

        let v = sexton_run(
            &s,
            mode,
            &[
                "--json",
                "--env",
                "A=1",
                "--env",
                "B=x=y",
                "--",
                "sh",
                "-c",
                "echo $A $B $HOME",
            ],
        )
        .json();
        let home = std::env::var("HOME").unwrap_or_default();
        assert_eq!(v["stdout"], format!("1 x=y {home}\n"));
        let v = sexton_run(
            &s,
            mode,
            &[
                "--json",
                "--clear-env",
                "--env",
                "A=1",
                "--",
                "/usr/bin/env",
            ],
        )
        .json();
        assert_eq!(v["stdout"], "A=1\n");

        let v = sexton_run(
            &s,
            mode,
            &["--json", "--shell", "--", "echo a | tr a b; exit 2"],
        )
        .json();
        assert_eq!(v["stdout"], "b\n");
        assert_eq!(v["exit_code"], 2);
        assert_eq!(
            v["argv"],
            serde_json::json!(["sh", "-c", "echo a | tr a b; exit 2"])
        );
        // Never implied: without --shell the string is a program name.
        let r = sexton_run(&s, mode, &["--", "echo a | tr a b"]);
        assert_eq!(r.code, Some(127));
    }
}

fn run_cmd_stdin(cmd: &mut Command, s: &Scratch, input: &std::path::Path) -> Ran {
    let out = s.path("stdin.out");
    cmd.stdin(std::fs::File::open(input).unwrap())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::process::Stdio::null());
    let mut sp = spawn(cmd);
    let st = sp.wait(DEADLINE);
    Ran {
        code: st.code(),
        stdout: std::fs::read_to_string(&out).unwrap(),
        stderr: String::new(),
        elapsed: std::time::Duration::ZERO,
    }
}

#[test]
fn log_appends_one_line_per_run_and_dedups_output() {
    let s = Scratch::new("log");
    for mode in modes() {
        let log = s.path(&format!("run-{mode}.log"));
        let l = log.to_str().unwrap();
        let big = "x".repeat(10_000);
        let script = format!("echo same; printf {big}; echo err >&2");
        for _ in 0..2 {
            let r = sexton_run(&s, mode, &["--log", l, "--shell", "--", &script]);
            assert_eq!(r.code, Some(0), "{r:?}");
            // Output still streams through without --json.
            assert!(r.stdout.starts_with("same\n"), "{:?}", &r.stdout[..10]);
            assert_eq!(r.stderr, "err\n");
        }
        let r = sexton_run(&s, mode, &["--log", l, "--", "echo", "other"]);
        assert_eq!(r.stdout, "other\n");
        let r = sexton_run(&s, mode, &["--log", l, "--shell", "--", "echo changed"]);
        assert_eq!(r.code, Some(0));
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .map(|x| serde_json::from_str(x).expect("each line is json"))
            .collect();
        for line in &lines {
            assert_schema(line, "run-log.json");
        }
        assert_eq!(lines.len(), 4);
        // First run: trimmed to 4 KiB, counted in full.
        assert_eq!(lines[0]["stdout"].as_str().unwrap().len(), 4096);
        assert_eq!(lines[0]["stdout_bytes"], 10_005);
        assert_eq!(lines[0]["tracking"], mode);
        // Second run, same argv and output.
        assert_eq!(
            lines[1]["stdout"],
            serde_json::json!({"same_as_previous": true})
        );
        assert_eq!(
            lines[1]["stderr"],
            serde_json::json!({"same_as_previous": true})
        );
        // Other argv: its own text. Negative control: changed output.
        assert_eq!(lines[2]["stdout"], "other\n");
        assert_eq!(lines[3]["stdout"], "changed\n");
    }
}

#[test]
fn leftovers_leave_kill_fail() {
    let s = Scratch::new("leftovers");
    let pf = s.pidfile();
    let script = s.script(
        "start.sh",
        &format!(
            "#!/bin/sh\necho start ok\nsleep 300 &\necho $! >> {}\n",
            pf.display()
        ),
    );
    let sc = script.to_str().unwrap();
    for mode in modes() {
        let _ = std::fs::remove_file(&pf);
        // leave: reported, still running.
        let r = sexton_run(&s, mode, &["--json", "--", sc]);
        assert_eq!(r.code, Some(0));
        let v = r.json();
        let pid = s.pids()[0];
        assert_eq!(v["leftovers"][0]["pid"], pid);
        assert_eq!(v["leftovers"][0]["action"], "left");
        assert_eq!(v["leftovers"][0]["cmdline"], "sleep 300");
        assert_eq!(v["killed"], 0);
        assert!(alive(pid), "left means left running");
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );

        for (how, code) in [("kill", 0), ("fail", 123)] {
            let _ = std::fs::remove_file(&pf);
            let rep = under_subreaper(
                &s,
                &[
                    SEXTON,
                    "run",
                    "--tracking",
                    mode,
                    "--json",
                    "--leftovers",
                    how,
                    "--",
                    sc,
                ],
            );
            assert_eq!(rep.status, code as i64, "{how}: {:?}", rep.ran);
            let v = rep.ran.json();
            assert_eq!(v["leftovers"][0]["action"], "killed");
            assert_eq!(v["killed"], 1);
            assert!(rep.children.is_empty(), "{how}: left {:?}", rep.children);
            assert!(s.alive().is_empty());
        }
        // Without --json, fail names the leftover on stderr.
        let _ = std::fs::remove_file(&pf);
        let r = sexton_run(&s, mode, &["--leftovers", "fail", "--", sc]);
        assert_eq!(r.code, Some(123));
        assert_eq!(r.stdout, "start ok\n");
        let pid = s.pids()[0];
        assert!(
            r.stderr
                .starts_with(&format!("sexton: leftover: pid {pid} (sleep 300)")),
            "{:?}",
            r.stderr
        );
        assert!(!alive(pid));
        // fail without leftovers is the program's status.
        let r = sexton_run(
            &s,
            mode,
            &["--leftovers", "fail", "--", "sh", "-c", "exit 5"],
        );
        assert_eq!(r.code, Some(5));
    }
}

#[test]
fn pass_fd_keeps_only_the_named_fd() {
    let s = Scratch::new("passfd");
    for mode in modes() {
        // The shell opens fds 7 and 8 without CLOEXEC; only 7 is passed.
        let line = format!(
            "exec 7</dev/null 8</dev/null; exec {SEXTON} run --tracking {mode} --pass-fd 7 --json -- sh -c 'ls /proc/$$/fd'"
        );
        let r = run_cmd(Command::new("bash").args(["-c", &line]), &s);
        let v = r.json();
        assert_eq!(v["stdout"], "0\n1\n2\n7\n", "{mode}: {r:?}");
        // Without --pass-fd: 0, 1, 2 only, none of sexton's own fds
        // (pipes, signalfd, lifeline, cgroup.procs) either.
        let line = format!(
            "exec 7</dev/null 8</dev/null; exec {SEXTON} run --tracking {mode} --json -- sh -c 'ls /proc/$$/fd'"
        );
        let v = run_cmd(Command::new("bash").args(["-c", &line]), &s).json();
        assert_eq!(v["stdout"], "0\n1\n2\n", "{mode}");
    }
    // Negative control: the same shell line without sexton leaks 7 and 8.
    let r = run_cmd(
        Command::new("bash").args([
            "-c",
            "exec 7</dev/null 8</dev/null; exec sh -c 'ls /proc/$$/fd'",
        ]),
        &s,
    );
    let fds: Vec<&str> = r.stdout.lines().collect();
    assert!(fds.contains(&"7") && fds.contains(&"8"), "{fds:?}");
}

#[test]
fn forwarding_through_a_pipe_keeps_every_byte() {
    let s = Scratch::new("forward");
    let direct = run_cmd(
        Command::new("bash").args(["-c", "seq 1 3000000 | md5sum"]),
        &s,
    );
    assert_eq!(direct.code, Some(0));
    for mode in modes() {
        // stdout is a pipe to a slower reader: sexton forwards it (splice)
        // and waits whenever it is full; stderr goes through to a file.
        let line = format!(
            "{SEXTON} run --tracking {mode} -- sh -c 'seq 1 3000000; seq 1 1000 >&2' 2>err.txt | md5sum"
        );
        let r = run_cmd(
            Command::new("bash").args(["-c", &line]).current_dir(&s.dir),
            &s,
        );
        assert_eq!(r.code, Some(0), "{r:?}");
        assert_eq!(r.stdout, direct.stdout, "{mode}");
        let err = std::fs::read_to_string(s.path("err.txt")).unwrap();
        assert_eq!(err.lines().count(), 1000, "{mode}");
        assert!(err.ends_with("999\n1000\n"));
    }
}

/// The leader is in the tree's cgroup from its first instruction (spawned
/// into it, or moved before exec), and nowhere near it in subreaper mode
/// (the negative control).
#[test]
fn leader_starts_inside_its_cgroup() {
    let s = Scratch::new("cgstart");
    for mode in modes() {
        let v = sexton_run(&s, mode, &["--json", "--", "cat", "/proc/self/cgroup"]).json();
        let line = v["stdout"]
            .as_str()
            .unwrap()
            .lines()
            .find(|l| l.starts_with("0::"))
            .unwrap_or("")
            .to_string();
        let in_tree = line.rsplit('/').next().unwrap_or("").starts_with("sexton-");
        assert_eq!(in_tree, mode == "cgroup", "{mode}: {line}");
    }
}

/// The program is found and started exactly as execvp would: PATH search
/// with the program's own PATH, the default path under --clear-env, a
/// file without `#!` run by sh, a file without x permission refused with
/// 126, a missing one 127; and its signal mask is empty and SIGPIPE at
/// its default.
#[test]
fn program_start_follows_execvp() {
    let s = Scratch::new("execvp");
    let script = s.path("noshebang");
    std::fs::write(&script, "echo ran by sh\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let plain = s.path("plain");
    std::fs::write(&plain, "echo never\n").unwrap();
    let bin = s.dir.to_str().unwrap().to_string();
    for mode in modes() {
        let r = sexton_run(&s, mode, &["--json", "--", script.to_str().unwrap()]);
        assert_eq!(r.json()["stdout"], "ran by sh\n", "{mode}");
        let path = format!("PATH=/nonexistent:{bin}");
        let r = sexton_run(&s, mode, &["--json", "--env", &path, "--", "noshebang"]);
        assert_eq!(r.json()["stdout"], "ran by sh\n", "{mode}");
        let r = sexton_run(&s, mode, &["--clear-env", "--", "true"]);
        assert_eq!(r.code, Some(0), "{mode}: {}", r.stderr);
        let r = sexton_run(&s, mode, &["--env", "PATH=/nonexistent", "--", "true"]);
        assert_eq!(r.code, Some(127), "{mode}: {}", r.stderr);
        let r = sexton_run(&s, mode, &["--", plain.to_str().unwrap()]);
        assert_eq!(r.code, Some(126), "{mode}: {}", r.stderr);
        let r = sexton_run(&s, mode, &["--", "sexton-no-such-program"]);
        assert_eq!(r.code, Some(127), "{mode}: {}", r.stderr);
        // What sexton itself ignores (SIGPIPE) is not handed on; what its
        // caller ignored may be, as with any exec.
        let v = sexton_run(
            &s,
            mode,
            &[
                "--json",
                "--",
                "grep",
                "-E",
                "^Sig(Blk|Ign)",
                "/proc/self/status",
            ],
        )
        .json();
        let out = v["stdout"].as_str().unwrap();
        let field = |name: &str| {
            let hex = out
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap_or_else(|| panic!("{mode}: no {name} in {out:?}"));
            u64::from_str_radix(hex.trim(), 16).unwrap()
        };
        const SIGPIPE_BIT: u64 = 1 << (13 - 1);
        assert_eq!(field("SigBlk:"), 0, "{mode}: {out}");
        assert_eq!(field("SigIgn:") & SIGPIPE_BIT, 0, "{mode}: {out}");
    }
}

// ---- Where shells really use `sexton run` -------------------------------

#[test]
fn d6_a_reader_that_closes_early_ends_the_program_with_sigpipe() {
    // `sexton run -- yes | head -1` must return at once with the
    // program's SIGPIPE death (141), as `timeout 10 yes | head -1` does.
    let s = Scratch::new("epipe");
    for mode in modes() {
        for (what, args) in [
            ("run yes", vec!["run", "--tracking", mode, "--", "yes"]),
            (
                "run seq",
                vec!["run", "--tracking", mode, "--", "seq", "1", "100000000"],
            ),
            (
                "run --log",
                vec!["run", "--tracking", mode, "--log", "run.log", "--", "yes"],
            ),
            ("check yes", vec!["check", "--", "yes"]),
        ] {
            let p = piped(&s, SEXTON, &args, Consumer::CloseAfter(2));
            assert!(!p.got.is_empty(), "{what}: nothing read");
            // check reports a program that died of a signal as its status.
            assert_eq!(p.shell_status(), 141, "{mode} {what}: {p:?}");
            assert!(!p.stderr.contains("panicked"), "{}", p.stderr);
        }
    }
}

#[test]
fn d6_python_popen_that_closes_its_pipe_ends_the_run() {
    let s = Scratch::new("popen");
    let py = r#"
import subprocess, sys, time
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE)
p.stdout.read(10)
p.stdout.close()
t0 = time.monotonic()
try:
    rc = p.wait(timeout=10)
except subprocess.TimeoutExpired:
    p.kill(); print("hung"); sys.exit(1)
print(rc)
"#;
    for mode in modes() {
        let mut c = Command::new("python3");
        c.args(["-c", py, SEXTON, "run", "--tracking", mode, "--", "yes"]);
        let r = run_cmd(&mut c, &s);
        assert_eq!(r.stdout.trim(), "141", "{mode}: {r:?}");
    }
}

#[test]
fn d6_a_slow_reader_gets_every_byte() {
    // 3 MB through a reader that takes 64 KiB every 20 ms: it needs about
    // a second, well past the wait-delay, and must still get all of it.
    let s = Scratch::new("slow");
    let big = s.path("big");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    std::fs::write(&big, &data).unwrap();
    let slow = Consumer::Slow {
        chunk: 64 << 10,
        pause: Duration::from_millis(20),
    };
    let bigp = big.to_str().unwrap();
    for mode in modes() {
        let p = piped(
            &s,
            SEXTON,
            &["run", "--tracking", mode, "--", "cat", bigp],
            slow,
        );
        assert_eq!(p.shell_status(), 0, "{mode}: {}", p.stderr);
        assert_eq!(p.got.len(), data.len(), "{mode}: bytes lost");
        assert!(p.got == data, "{mode}: bytes changed");
        // With the log on (forward and keep a copy).
        let p = piped(
            &s,
            SEXTON,
            &[
                "run",
                "--tracking",
                mode,
                "--log",
                "slow.log",
                "--",
                "cat",
                bigp,
            ],
            slow,
        );
        assert_eq!(p.got.len(), data.len(), "{mode} --log: bytes lost");
        // check streams the program's output the same way.
        let p = piped(&s, SEXTON, &["check", "--", "cat", bigp], slow);
        assert_eq!(p.got.len(), data.len(), "check: bytes lost");
        assert_eq!(p.shell_status(), 0, "check: {}", p.stderr);
        // A leftover keeps the pipe open: what the program wrote is still
        // all delivered, then sexton stops reading and names the holder.
        let script = format!(
            "cat {bigp}; sleep 300 & echo $! >> {}",
            s.pidfile().display()
        );
        let p = piped(
            &s,
            SEXTON,
            &[
                "run",
                "--tracking",
                mode,
                "--leftovers",
                "kill",
                "--shell",
                "--",
                &script,
            ],
            slow,
        );
        assert_eq!(
            p.got.len(),
            data.len(),
            "{mode} with a leftover: bytes lost"
        );
        assert_eq!(p.shell_status(), 0, "{mode}: {}", p.stderr);
    }
    // --json keeps everything a leftover-held pipe had, too.
    for mode in modes() {
        let script = format!(
            "cat {bigp}; sleep 300 & echo $! >> {}",
            s.pidfile().display()
        );
        let r = sexton_run(
            &s,
            mode,
            &["--json", "--leftovers", "kill", "--shell", "--", &script],
        );
        let v = r.json();
        assert_eq!(v["stdout_bytes"], 3_000_000, "{mode}");
        assert_eq!(v["stdout"].as_str().unwrap().len(), 3_000_000);
        assert_eq!(
            v["leftovers"][0]["holds"],
            serde_json::json!(["stdout", "stderr"])
        );
    }
}

#[test]
fn two_to_one_keeps_the_order_of_lines() {
    // `sexton run -- prog > file 2>&1`: the program gets one pipe for
    // both streams, so its lines land in the order it wrote them.
    let s = Scratch::new("order");
    let script = "i=0; while [ $i -lt 200 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done";
    let want: String = (0..200).map(|i| format!("out{i}\nerr{i}\n")).collect();
    for mode in modes() {
        let out = s.path(&format!("both.{mode}"));
        let f = std::fs::File::create(&out).unwrap();
        let mut c = Command::new(SEXTON);
        c.args(["run", "--tracking", mode, "--shell", "--", script])
            .stdin(std::process::Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f);
        let st = spawn(&mut c).wait(DEADLINE);
        assert!(st.success());
        assert_eq!(std::fs::read_to_string(&out).unwrap(), want, "{mode}");
        // --json still keeps them apart.
        let v = sexton_run(&s, mode, &["--json", "--shell", "--", script]).json();
        let outs: String = (0..200).map(|i| format!("out{i}\n")).collect();
        assert_eq!(v["stdout"], outs);
    }
}

#[test]
fn stdin_is_the_callers_unless_told_otherwise() {
    let s = Scratch::new("stdin");
    let input = s.path("in.txt");
    std::fs::write(&input, "hello\n").unwrap();
    for mode in modes() {
        // Default: inherited, as GNU timeout and every exec API do.
        let mut c = Command::new(SEXTON);
        c.args(["run", "--tracking", mode, "--json", "--", "cat"]);
        assert_eq!(
            run_cmd_stdin(&mut c, &s, &input).json()["stdout"],
            "hello\n"
        );
        // --no-stdin: /dev/null.
        let mut c = Command::new(SEXTON);
        c.args([
            "run",
            "--tracking",
            mode,
            "--json",
            "--no-stdin",
            "--",
            "cat",
        ]);
        assert_eq!(run_cmd_stdin(&mut c, &s, &input).json()["stdout"], "");
        // Without --json, the program's output streams through.
        let mut c = Command::new(SEXTON);
        c.args(["run", "--tracking", mode, "--", "cat"]);
        let r = run_cmd_stdin(&mut c, &s, &input);
        assert_eq!(r.code, Some(0));
        assert_eq!(
            std::fs::read_to_string(s.path("stdin.out")).unwrap(),
            "hello\n"
        );
    }
}

#[test]
fn an_interactive_program_reads_the_terminal() {
    // Under a terminal, `sexton run -- sh -c 'read x'` must not leave sh
    // stopped by SIGTTIN: it shares sexton's foreground group.
    let s = Scratch::new("pty");
    for mode in modes() {
        let mut t = Pty::spawn(
            SEXTON,
            &[
                "run",
                "--tracking",
                mode,
                "--",
                "sh",
                "-c",
                "echo ready; read x; echo got-$x; read y; echo got-$y",
            ],
            &s.dir,
        );
        assert!(t.expect("ready", DEADLINE), "{mode}: {}", t.seen());
        t.write(b"one\n");
        assert!(t.expect("got-one", DEADLINE), "{mode}: {}", t.seen());
        t.write(b"two\n");
        assert!(t.expect("got-two", DEADLINE), "{mode}: {}", t.seen());
        assert_eq!(t.sp.wait(DEADLINE).code(), Some(0), "{mode}");
    }
}

#[test]
fn ctrl_c_on_the_terminal_reaches_the_program_once() {
    let s = Scratch::new("ctrlc");
    let count = s.path("count");
    let py = format!(
        r#"
import signal, sys, time
n = 0
def h(sig, frame):
    global n
    n += 1
    open("{c}", "w").write(str(n))
signal.signal(signal.SIGINT, h)
print("ready", flush=True)
t = None
while True:
    time.sleep(0.05)
    if n and t is None:
        t = time.monotonic()
    if t is not None and time.monotonic() - t > 0.5:
        sys.exit(n)
"#,
        c = count.display()
    );
    for mode in modes() {
        let mut t = Pty::spawn(
            SEXTON,
            &["run", "--tracking", mode, "--", "python3", "-c", &py],
            &s.dir,
        );
        assert!(t.expect("ready", DEADLINE), "{mode}: {}", t.seen());
        t.write(b"\x03");
        // The program exits with the number of SIGINTs it got.
        assert_eq!(t.sp.wait(DEADLINE).code(), Some(1), "{mode}: {}", t.seen());
    }
}

#[test]
fn json_and_log_say_why_a_program_could_not_start() {
    let s = Scratch::new("starterr");
    let log = s.path("run.log");
    let logp = log.to_str().unwrap();
    for mode in modes() {
        let r = sexton_run(
            &s,
            mode,
            &["--json", "--log", logp, "--", "no-such-program-x"],
        );
        assert_eq!(r.code, Some(127), "{r:?}");
        let v = r.json();
        assert!(
            v["error"].as_str().unwrap().contains("command not found"),
            "{v}"
        );
        assert_eq!(v["pid"], serde_json::Value::Null);
        assert_eq!(v["exit_code"], serde_json::Value::Null);
        assert_eq!(v["argv"], serde_json::json!(["no-such-program-x"]));
        let last: serde_json::Value = serde_json::from_str(
            std::fs::read_to_string(&log)
                .unwrap()
                .lines()
                .last()
                .unwrap(),
        )
        .unwrap();
        assert_schema(&last, "run-log.json");
        assert!(last["error"].as_str().is_some(), "{last}");
        // A program that starts has no error field.
        let v = sexton_run(&s, mode, &["--json", "--", "true"]).json();
        assert!(v.get("error").is_none(), "{v}");
    }
}

#[test]
fn json_keeps_output_that_is_not_utf8_losslessly() {
    use base64::Engine;
    let s = Scratch::new("b64");
    for mode in modes() {
        let v = sexton_run(&s, mode, &["--json", "--", "printf", "a\\377b\\0c"]).json();
        assert_eq!(v["stdout_bytes"], 5);
        let raw = base64::engine::general_purpose::STANDARD
            .decode(v["stdout_base64"].as_str().expect("stdout_base64"))
            .unwrap();
        assert_eq!(raw, b"a\xffb\0c");
        // Valid UTF-8 has no base64 twin.
        let v = sexton_run(&s, mode, &["--json", "--", "printf", "\u{e9}t\u{e9}"]).json();
        assert!(v.get("stdout_base64").is_none(), "{v}");
        assert_eq!(v["stdout"], "\u{e9}t\u{e9}");
    }
}

#[test]
fn mistyped_options_are_usage_errors_not_programs() {
    let s = Scratch::new("strict");
    for (args, tip) in [
        (
            &["run", "--timout", "1", "--", "sleep", "10"][..],
            "--timeout",
        ),
        (&["run", "-x", "--", "true"][..], ""),
        (&["run", "--jsn", "--", "true"][..], "--json"),
        (&["check", "--jsn", "--", "true"][..], "--json"),
    ] {
        let mut c = Command::new(SEXTON);
        c.args(args);
        let r = run_cmd(&mut c, &s);
        assert_eq!(r.code, Some(125), "{args:?}: {r:?}");
        let first = r.stderr.lines().next().unwrap_or("");
        assert!(
            first.starts_with("sexton: usage: unexpected argument"),
            "{r:?}"
        );
        assert!(!r.stderr.contains("command not found"), "{r:?}");
        assert!(r.stderr.contains(tip), "{args:?}: {:?}", r.stderr);
        assert!(
            r.stderr
                .contains(&format!("try 'sexton {} --help'", args[0]))
        );
    }
    // A top-level unknown option points at the top-level help.
    let mut c = Command::new(SEXTON);
    c.arg("--frobnicate");
    let r = run_cmd(&mut c, &s);
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("try 'sexton --help'"), "{:?}", r.stderr);
    // After `--`, anything is the program's.
    let v = sexton_run(
        &s,
        "subreaper",
        &["--json", "--", "sh", "-c", "echo $1", "-", "-x"],
    )
    .json();
    assert_eq!(v["stdout"], "-x\n");
}

#[test]
fn arguments_that_are_not_utf8_are_passed_as_they_are() {
    // `sexton $'\xff'` used to panic; argv is handled as bytes.
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let s = Scratch::new("nonutf8");
    let bad = OsStr::from_bytes(b"\xff");
    let mut c = Command::new(SEXTON);
    c.arg(bad);
    let r = run_cmd(&mut c, &s);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.starts_with("sexton: usage:"), "{r:?}");
    assert!(!r.stderr.contains("panicked"), "{r:?}");
    // As a program argument and an environment value, the bytes reach the
    // program unchanged.
    let out = s.path("bytes");
    let mut c = Command::new(SEXTON);
    c.args(["run", "--env"])
        .arg(OsStr::from_bytes(b"V=\xfe"))
        .args(["--", "sh", "-c", "printf '%s%s' \"$1\" \"$V\" > \"$0\""])
        .arg(&out)
        .arg(bad);
    let r = run_cmd(&mut c, &s);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(std::fs::read(&out).unwrap(), b"\xff\xfe");
}
