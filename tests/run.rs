//! `sexton run`: exit codes, flags, the result document and the run log,
//! each in both tracking modes.

mod common;

use common::*;
use std::process::Command;

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
            assert!(
                r.stderr.to_lowercase().contains("too many open files"),
                "{:?}",
                r.stderr
            );
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
