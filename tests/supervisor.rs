//! `sexton up` and the commands that talk to it, with real services: no
//! orphan survives a stop, a restart or the supervisor's SIGKILL; nothing
//! runs twice; no log line is lost.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A project folder with a config, and the supervisor started in it.
/// Dropping it brings the supervisor down and kills whatever is left of
/// what it started (by the pids the services announced).
struct Project {
    s: Scratch,
}

impl Project {
    fn new(name: &str, config_name: &str, config: &str) -> Project {
        let s = Scratch::new(name);
        std::fs::write(s.path(config_name), config).unwrap();
        Project { s }
    }

    fn dir(&self) -> &Path {
        &self.s.dir
    }

    fn sexton(&self, args: &[&str]) -> Ran {
        let mut c = Command::new(SEXTON);
        c.args(args)
            .current_dir(self.dir())
            .env_remove("SEXTON_STATE_DIR");
        run_cmd(&mut c, &self.s)
    }

    fn up(&self) -> Ran {
        self.sexton(&["up", "-d"])
    }

    fn status(&self) -> Value {
        let r = self.sexton(&["status", "--json"]);
        assert_eq!(r.code, Some(0), "{r:?}");
        let v = serde_json::from_str(r.stdout.trim()).unwrap();
        assert_schema(&v, "status.json");
        v
    }

    /// The service's status, or `None` while no supervisor answers (one
    /// started in the foreground may not have its socket yet).
    fn try_service(&self, name: &str) -> Option<Value> {
        let r = self.sexton(&["status", "--json"]);
        let v: Value = serde_json::from_str(r.stdout.trim()).ok()?;
        assert_schema(&v, "status.json");
        v["services"]
            .as_array()?
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
    }

    fn service(&self, name: &str) -> Value {
        self.status()["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no service {name}"))
    }

    /// Polls until `name` is in `state`; returns its status.
    fn wait_state(&self, name: &str, state: &str) -> Value {
        let mut last = Value::Null;
        let ok = poll(DEADLINE, || {
            last = self.service(name);
            last["state"] == state
        });
        assert!(ok, "{name} never became {state}: {last}");
        last
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir().join(".sexton/logs").join(format!("{name}.log")))
            .unwrap_or_default()
    }

    fn supervisor_pid(&self) -> i32 {
        self.status()["supervisor"].as_i64().unwrap() as i32
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let mut c = Command::new(SEXTON);
        c.args(["down"])
            .current_dir(&self.s.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut sp = spawn(&mut c);
        let _ = poll(DEADLINE, || sp.child.try_wait().ok().flatten().is_some());
    }
}

/// A service script that announces its pid in the scratch pid file, then
/// runs `body`.
fn announce(s: &Scratch, body: &str) -> String {
    format!("echo $$ >> {}; {body}", s.pidfile().display())
}

#[test]
fn up_d_status_and_down() {
    let p = Project::new(
        "updown",
        "sexton.toml",
        r#"
[services.a]
command = "sleep 300"
[services.b]
command = ["sh", "-c", "echo hello from b; exec sleep 300"]
depends_on = ["a"]
"#,
    );
    let r = p.up();
    assert_eq!(r.code, Some(0), "{r:?}");
    let st = p.status();
    assert!(st["supervisor"].as_i64().unwrap() > 0);
    for s in st["services"].as_array().unwrap() {
        assert_eq!(s["state"], "running", "{s}");
        assert!(alive(s["pid"].as_i64().unwrap() as i32));
        for k in ["name", "state", "pid", "uptime_s", "restarts", "last_exit"] {
            assert!(s.get(k).is_some(), "missing {k} in {s}");
        }
    }
    assert!(
        poll(DEADLINE, || p.log("b").contains("out hello from b")),
        "{}",
        p.log("b")
    );
    // A second up for the same folder: one line naming the running one.
    let sup = p.supervisor_pid();
    let r = p.up();
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stderr.contains(&format!("pid {sup}")), "{r:?}");
    let pids: Vec<i32> = st["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["pid"].as_i64().unwrap() as i32)
        .collect();
    let r = p.sexton(&["down"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(poll(DEADLINE, || !alive(sup)));
    assert!(pids.iter().all(|&q| !alive(q)), "services left running");
    let r = p.sexton(&["status"]);
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("no supervisor is running"), "{r:?}");
}

#[test]
fn d4_stop_and_restart_leave_nothing_of_the_old_tree() {
    let p = Project::new("stoptree", "sexton.toml", "");
    let script = announce(
        &p.s,
        &format!(
            "setsid sh -c 'echo $$ >> {pf}; exec sleep 300' & sleep 300 & echo $! >> {pf}; wait",
            pf = p.s.pidfile().display()
        ),
    );
    std::fs::write(
        p.s.path("sexton.toml"),
        format!("[services.w]\nshell = true\ncommand = {script:?}\n"),
    )
    .unwrap();
    assert_eq!(p.up().code, Some(0));
    let first = p.s.wait_pids(3);
    let r = p.sexton(&["restart", "w"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(
        poll(DEADLINE, || first.iter().all(|&q| !alive(q))),
        "old tree alive: {first:?}"
    );
    let all = p.s.wait_pids(6);
    let second = &all[3..];
    assert!(second.iter().all(|&q| alive(q)));
    assert_eq!(p.service("w")["restarts"], 1);
    let r = p.sexton(&["stop", "w"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(p.service("w")["state"], "stopped");
    assert!(second.iter().all(|&q| !alive(q)), "stopped tree alive");
}

#[test]
fn a_service_that_ignores_term_is_killed_at_stop_timeout() {
    let p = Project::new(
        "stubborn",
        "sexton.toml",
        "[services.s]\ncommand = [\"sh\", \"-c\", \"trap '' TERM; echo $$ > pid; while :; do sleep 1; done\"]\nstop_timeout = \"500ms\"\n",
    );
    assert_eq!(p.up().code, Some(0));
    assert!(poll(DEADLINE, || p.dir().join("pid").exists()));
    let r = p.sexton(&["stop", "s"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let pid: i32 = std::fs::read_to_string(p.dir().join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(!alive(pid));
    assert!(p.log("s").contains("SIGKILL"), "{}", p.log("s"));
}

#[test]
fn d10_a_crash_loop_ends_in_failed_and_start_clears_it() {
    let p = Project::new(
        "crashloop",
        "sexton.toml",
        r#"
[services.c]
command = ["sh", "-c", "echo crashing; exit 3"]
backoff_initial = "50ms"
backoff_max = "100ms"
start_limit_burst = 3
start_limit_interval = "60s"
"#,
    );
    let r = p.up();
    assert_eq!(r.code, Some(1), "a failed service makes up -d fail: {r:?}");
    assert!(r.stderr.contains("c"), "{r:?}");
    let s = p.wait_state("c", "failed");
    assert!(s["reason"].as_str().unwrap().contains("crash loop"), "{s}");
    assert_eq!(s["last_exit"], serde_json::json!({"code": 3}));
    assert_eq!(s["restarts"], 2);
    assert!(p.log("c").contains("crash loop"));
    // start clears failed and tries again.
    let r = p.sexton(&["start", "c"]);
    assert_eq!(r.code, Some(1), "{r:?}");
    assert_eq!(p.service("c")["state"], "failed");
}

#[test]
fn no_line_is_lost_when_a_service_dies_at_once() {
    let p = Project::new(
        "lines",
        "sexton.toml",
        "[services.n]\ncommand = [\"sh\", \"-c\", \"seq 1 20000; printf partial; exit 1\"]\nrestart = \"never\"\n",
    );
    p.up();
    p.wait_state("n", "exited");
    let log = p.log("n");
    let got: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split_once(" out ").map(|(_, t)| t))
        .collect();
    let want: Vec<String> = (1..=20000)
        .map(|i| i.to_string())
        .chain(["partial".to_string()])
        .collect();
    assert_eq!(got.len(), want.len(), "lines lost");
    assert!(
        got.iter().zip(&want).all(|(a, b)| a == b),
        "lines out of order"
    );
}

#[test]
fn rotation_under_load_loses_no_line() {
    let p = Project::new(
        "rotate",
        "sexton.toml",
        "[services.r]\ncommand = [\"seq\", \"1\", \"100000\"]\nrestart = \"never\"\nlog_max_size = \"64KiB\"\nlog_keep = 100\n",
    );
    p.up();
    p.wait_state("r", "exited");
    let logs = p.dir().join(".sexton/logs");
    let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(&logs)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let idx = if n == "r.log" {
                0
            } else {
                n.strip_prefix("r.log.")?.parse().ok()?
            };
            Some((idx, e.path()))
        })
        .collect();
    assert!(files.len() > 5, "rotated: {files:?}");
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    let mut got = Vec::new();
    for (_, f) in &files {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(text.len() as u64 <= 64 * 1024 + 200, "{f:?} too big");
        got.extend(
            text.lines()
                .filter_map(|l| l.split_once(" out ").map(|(_, t)| t.to_string())),
        );
    }
    let want: Vec<String> = (1..=100000).map(|i| i.to_string()).collect();
    assert_same_lines(&got, &want);
}

#[test]
fn reload_keeps_the_unchanged_and_applies_the_rest() {
    let p = Project::new(
        "reload",
        "sexton.toml",
        "[services.keep]\ncommand = \"sleep 300\"\n[services.change]\ncommand = \"sleep 300\"\n[services.gone]\ncommand = \"sleep 300\"\n",
    );
    assert_eq!(p.up().code, Some(0));
    let keep = p.service("keep")["pid"].as_i64().unwrap();
    let change = p.service("change")["pid"].as_i64().unwrap() as i32;
    let gone = p.service("gone")["pid"].as_i64().unwrap() as i32;
    std::fs::write(
        p.s.path("sexton.toml"),
        "[services.keep]\ncommand = \"sleep 300\"\n[services.change]\ncommand = \"sleep 301\"\n[services.new]\ncommand = \"sleep 300\"\n",
    )
    .unwrap();
    let r = p.sexton(&["reload"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(poll(DEADLINE, || !alive(gone) && !alive(change)));
    p.wait_state("new", "running");
    let c = p.wait_state("change", "running");
    assert_ne!(c["pid"].as_i64().unwrap() as i32, change);
    assert_eq!(
        p.service("keep")["pid"].as_i64().unwrap(),
        keep,
        "unchanged kept its pid"
    );
    let names: Vec<String> = p.status()["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["change", "keep", "new"]);
    // A bad config changes nothing and says why.
    std::fs::write(p.s.path("sexton.toml"), "[services.keep]\ncommand = 3\n").unwrap();
    let r = p.sexton(&["reload"]);
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("sexton.toml:2"), "{r:?}");
    assert_eq!(p.service("keep")["pid"].as_i64().unwrap(), keep);
}

#[test]
fn d4_sigkill_of_the_supervisor_then_up_runs_nothing_twice() {
    let p = Project::new("supkill", "sexton.toml", "");
    let script = announce(
        &p.s,
        &format!(
            "setsid sh -c 'echo $$ >> {pf}; exec sleep 300' & exec sleep 300",
            pf = p.s.pidfile().display()
        ),
    );
    std::fs::write(
        p.s.path("sexton.toml"),
        format!("[services.x]\nshell = true\ncommand = {script:?}\n"),
    )
    .unwrap();
    assert_eq!(p.up().code, Some(0));
    let first = p.s.wait_pids(2);
    let sup = p.supervisor_pid();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sup),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(
        poll(DEADLINE, || first.iter().all(|&q| !alive(q))),
        "a service survived its supervisor: {:?}",
        first.iter().filter(|&&q| alive(q)).collect::<Vec<_>>()
    );
    // The next up starts one instance, and only one.
    assert!(poll(DEADLINE, || p.up().code == Some(0)));
    let all = p.s.wait_pids(4);
    let second: Vec<i32> = all[2..].to_vec();
    assert!(second.iter().all(|&q| alive(q)));
    assert_eq!(p.s.alive().len(), 2, "{:?}", p.s.alive());
}

#[test]
fn bad_configs_are_one_line_errors_and_start_nothing() {
    for (name, text, want) in [
        ("syntax", "[services.a\ncommand = 1\n", "sexton.toml:1"),
        (
            "unknown",
            "[services.a]\ncommand = \"true\"\ncomand = \"x\"\n",
            "sexton.toml:3",
        ),
        (
            "dep",
            "[services.a]\ncommand = \"true\"\ndepends_on = [\"b\"]\n",
            "sexton.toml:3",
        ),
        (
            "cycle",
            "[services.a]\ncommand = \"true\"\ndepends_on = [\"b\"]\n[services.b]\ncommand = \"true\"\ndepends_on = [\"a\"]\n",
            "->",
        ),
        (
            "duration",
            "[services.a]\ncommand = \"true\"\nstop_timeout = \"soon\"\n",
            "sexton.toml:3",
        ),
        ("missing", "[services.a]\ncwd = \"/\"\n", "command"),
    ] {
        let p = Project::new(&format!("bad{name}"), "sexton.toml", text);
        let r = p.up();
        assert_eq!(r.code, Some(2), "{name}: {r:?}");
        let lines: Vec<&str> = r.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{name}: {r:?}");
        assert!(lines[0].starts_with("sexton: error: "), "{name}: {r:?}");
        assert!(lines[0].contains(want), "{name}: {r:?}");
        assert!(
            !p.dir().join(".sexton/supervisor.pid").exists(),
            "{name}: started"
        );
    }
}

#[test]
fn a_procfile_is_found_and_run_through_sh() {
    let p = Project::new(
        "procfile",
        "Procfile",
        "web: echo \"web $((1+1))\"; exec sleep 300\n",
    );
    assert_eq!(p.up().code, Some(0));
    assert!(
        poll(DEADLINE, || p.log("web").contains("out web 2")),
        "{}",
        p.log("web")
    );
}

#[test]
fn dependents_start_only_once_their_dependency_is_ready() {
    let port = free_port();
    let p = Project::new(
        "ready",
        "sexton.toml",
        &format!(
            r#"
[services.tcp]
command = ["python3", "-c", '''import socket,time; time.sleep(0.5); s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", {port})); s.listen(); open("tcp.ready","w"); time.sleep(300)''']
ready_tcp = "127.0.0.1:{port}"

[services.logline]
command = ["sh", "-c", "sleep 0.3; echo listening now; touch log.ready; exec sleep 300"]
ready_log = "listening"

[services.cmd]
command = ["sh", "-c", "sleep 0.3; touch cmd.ready; exec sleep 300"]
ready_cmd = ["test", "-e", "cmd.ready"]

[services.notify]
command = ["python3", "-c", '''import os,socket,time; time.sleep(0.3); open("notify.ready","w").close(); a=os.environ["NOTIFY_SOCKET"]; a="\0"+a[1:] if a.startswith("@") else a; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"READY=1", a); time.sleep(300)''']
ready = "notify"

[services.last]
command = ["sh", "-c", "for f in tcp log cmd notify; do test -e $f.ready || {{ echo early $f; exit 9; }}; done; echo all ready; exec sleep 300"]
depends_on = ["tcp", "logline", "cmd", "notify"]
restart = "never"
"#
        ),
    );
    let r = p.up();
    assert_eq!(r.code, Some(0), "{r:?}");
    for n in ["tcp", "logline", "cmd", "notify"] {
        assert_eq!(p.service(n)["state"], "ready", "{n}");
    }
    assert_eq!(p.service("last")["state"], "running");
    assert!(
        poll(DEADLINE, || p.log("last").contains("all ready")),
        "{}",
        p.log("last")
    );
}

#[test]
fn a_dependency_that_fails_leaves_the_dependent_stopped() {
    let p = Project::new(
        "depfail",
        "sexton.toml",
        "[services.db]\ncommand = \"false\"\nrestart = \"never\"\n[services.web]\ncommand = \"sleep 300\"\ndepends_on = [\"db\"]\n",
    );
    let r = p.up();
    assert_eq!(r.code, Some(1), "{r:?}");
    let web = p.service("web");
    assert_eq!(web["state"], "stopped");
    assert!(web["reason"].as_str().unwrap().contains("db"), "{web}");
    assert_eq!(web["pid"], Value::Null);
}

#[test]
fn a_service_runs_as_its_user() {
    let p = Project::new(
        "user",
        "sexton.toml",
        "[services.u]\ncommand = [\"sh\", \"-c\", \"id -u; id -g; exec sleep 300\"]\nuser = \"nobody\"\n",
    );
    assert_eq!(p.up().code, Some(0));
    let pid = p.service("u")["pid"].as_i64().unwrap() as i32;
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid = st.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid.split_whitespace().skip(1).all(|u| u == "65534"),
        "{uid}"
    );
    let groups = st.lines().find(|l| l.starts_with("Groups:")).unwrap();
    assert!(
        !groups.split_whitespace().skip(1).any(|g| g == "0"),
        "{groups}"
    );
}

#[test]
fn another_user_is_refused_by_the_control_socket() {
    use std::os::unix::process::CommandExt;
    let p = Project::new(
        "peer",
        "sexton.toml",
        "[services.a]\ncommand = \"sleep 300\"\n",
    );
    assert_eq!(p.up().code, Some(0));
    let sock = p.dir().join(".sexton/control.sock");
    let meta = std::fs::metadata(&sock).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    // The socket's mode already shuts other users out; open it up to show
    // that the credential check holds on its own.
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(
        p.dir().join(".sexton"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let py = "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b'{\"cmd\":\"down\"}\\n'); print(s.makefile().readline().strip())";
    let mut c = Command::new("python3");
    c.args(["-c", py]).arg(&sock);
    // SAFETY: setgid/setuid only, before exec.
    unsafe {
        c.pre_exec(|| {
            nix::unistd::setgid(nix::unistd::Gid::from_raw(65534))?;
            nix::unistd::setuid(nix::unistd::Uid::from_raw(65534))?;
            Ok(())
        });
    }
    let r = run_cmd(&mut c, &p.s);
    assert!(r.stdout.contains("permission denied"), "{r:?}");
    assert_schema(
        &serde_json::from_str(r.stdout.trim()).unwrap(),
        "control.json",
    );
    // Still up: the refused command did nothing.
    assert_eq!(p.service("a")["state"], "running");
    // Negative control: the same request as the owner works.
    let mut c = Command::new("python3");
    c.args(["-c", py]).arg(&sock);
    let r = run_cmd(&mut c, &p.s);
    assert!(r.stdout.contains("\"ok\":true"), "{r:?}");
    assert_schema(
        &serde_json::from_str(r.stdout.trim()).unwrap(),
        "control.json",
    );
}

/// Writes one request line to the control socket and returns the answer
/// line, checked against docs/schema/control.json.
fn control(sock: &Path, request: &str) -> Value {
    use std::io::{BufRead, Write};
    let stream = std::os::unix::net::UnixStream::connect(sock).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    (&stream)
        .write_all(format!("{request}\n").as_bytes())
        .unwrap();
    let mut answer = String::new();
    std::io::BufReader::new(&stream)
        .read_line(&mut answer)
        .unwrap();
    let v: Value = serde_json::from_str(answer.trim())
        .unwrap_or_else(|e| panic!("{request}: answer is not JSON ({e}): {answer:?}"));
    assert_schema(&v, "control.json#/$defs/response");
    v
}

#[test]
fn control_socket_lines_match_the_schema() {
    let p = Project::new("control", "sexton.toml", "");
    let script = announce(&p.s, "exec sleep 300");
    std::fs::write(
        p.s.path("sexton.toml"),
        format!("[services.a]\nshell = true\ncommand = {script:?}\n"),
    )
    .unwrap();
    assert_eq!(p.up().code, Some(0));
    let sock = p.dir().join(".sexton/control.sock");
    let requests = [
        r#"{"cmd":"status"}"#,
        r#"{"cmd":"stop","services":["a"]}"#,
        r#"{"cmd":"start","services":["a"]}"#,
        r#"{"cmd":"restart","services":["no-such-service"]}"#,
        r#"{"cmd":"reload"}"#,
    ];
    let mut answers = Vec::new();
    for line in requests {
        assert_schema(&serde_json::from_str(line).unwrap(), "control.json");
        answers.push(control(&sock, line));
    }
    assert_eq!(answers[0]["ok"], true, "{}", answers[0]);
    assert_eq!(answers[0]["status"]["services"][0]["name"], "a");
    assert_eq!(answers[1]["ok"], true, "{}", answers[1]);
    assert_eq!(answers[2]["ok"], true, "{}", answers[2]);
    assert_eq!(answers[3]["ok"], false, "{}", answers[3]);
    assert_eq!(answers[4]["ok"], true, "{}", answers[4]);
    // A request the server refuses is one the schema refuses too.
    let bad = r#"{"cmd":"frobnicate"}"#;
    assert!(!schema_errors(&serde_json::from_str(bad).unwrap(), "control.json").is_empty());
    let v = control(&sock, bad);
    assert_eq!(v["ok"], false, "{v}");
    let sup = p.supervisor_pid();
    let v = control(&sock, r#"{"cmd":"down"}"#);
    assert_eq!(v["ok"], true, "{v}");
    assert!(poll(DEADLINE, || !alive(sup)), "supervisor {sup} still up");
}

#[test]
fn foreground_up_prefixes_lines_and_stops_on_sigterm() {
    let p = Project::new(
        "fg",
        "sexton.toml",
        "[services.db]\ncommand = [\"sh\", \"-c\", \"echo db says hi; exec sleep 300\"]\n[services.web]\ncommand = [\"sh\", \"-c\", \"echo web says hi; exec sleep 300\"]\ndepends_on = [\"db\"]\n",
    );
    let out = p.s.path("fg.out");
    let mut c = Command::new(SEXTON);
    c.args(["up"])
        .current_dir(p.dir())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::null());
    let mut sp = spawn(&mut c);
    assert!(poll(DEADLINE, || {
        let t = std::fs::read_to_string(&out).unwrap_or_default();
        t.contains("web | web says hi") && t.contains("db  | db says hi")
    }));
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(!text.contains('\x1b'), "colour on a file: {text:?}");
    let pids: Vec<i32> = p.status()["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["pid"].as_i64().unwrap() as i32)
        .collect();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sp.pid()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(sp.wait(DEADLINE).code(), Some(0));
    assert!(pids.iter().all(|&q| !alive(q)));
    // Dependents first: web's stop is logged before db's.
    let text = std::fs::read_to_string(&out).unwrap();
    let web = text.find("web | [sexton] stopping").expect("web stopped");
    let db = text.find("db  | [sexton] stopping").expect("db stopped");
    assert!(web < db, "{text}");
}

/// `got == want`, saying where they first differ (never the whole lists).
fn assert_same_lines(got: &[String], want: &[String]) {
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
        panic!(
            "line {i} differs: got {:?}, want {:?} ({} lines got, {} wanted)",
            got[i],
            want[i],
            got.len(),
            want.len()
        );
    }
    assert_eq!(got.len(), want.len(), "lines missing at the end");
}

/// A TCP port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn logs_shows_the_last_lines_of_each_service() {
    let p = Project::new(
        "logscmd",
        "sexton.toml",
        "[services.a]\ncommand = [\"sh\", \"-c\", \"seq 1 50; exec sleep 300\"]\n[services.bb]\ncommand = [\"sh\", \"-c\", \"echo only; exec sleep 300\"]\n",
    );
    assert_eq!(p.up().code, Some(0));
    assert!(poll(DEADLINE, || p.log("a").contains("out 50")));
    let r = p.sexton(&["logs", "-n", "3", "a"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{r:?}");
    assert!(lines[2].ends_with("out 50"), "{r:?}");
    let r = p.sexton(&["logs", "-n", "1"]);
    assert!(r.stdout.lines().any(|l| l.starts_with("a  | ")), "{r:?}");
    assert!(r.stdout.lines().any(|l| l.starts_with("bb | ")), "{r:?}");
    let r = p.sexton(&["logs", "nope"]);
    assert_eq!(r.code, Some(2), "{r:?}");
}

#[test]
fn d4_after_a_crash_nobody_could_clean_up_the_next_up_kills_the_leftovers() {
    // Both halves of the supervisor die without a chance to act (the
    // guard stopped first, then both SIGKILLed): the escapee lives on,
    // and the next `up` finds it through state.json before it starts
    // anything.
    let p = Project::new("crash", "sexton.toml", "");
    let script = announce(
        &p.s,
        &format!(
            "setsid sh -c 'echo $$ >> {pf}; exec sleep 300' & exec sleep 300",
            pf = p.s.pidfile().display()
        ),
    );
    std::fs::write(
        p.s.path("sexton.toml"),
        format!("[services.x]\nshell = true\ncommand = {script:?}\n"),
    )
    .unwrap();
    assert_eq!(p.up().code, Some(0));
    let first = p.s.wait_pids(2);
    let sup = p.supervisor_pid();
    // The record the next `up` goes by, as docs/schema/supervisor-state.json
    // describes it.
    let record = p.dir().join(".sexton/state.json");
    let mut state = Value::Null;
    assert!(
        poll(DEADLINE, || {
            state = std::fs::read(&record)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or(Value::Null);
            state["services"]["x"]["pid"] == first[0]
        }),
        "state.json never named x's leader {}: {state}",
        first[0]
    );
    assert_schema(&state, "supervisor-state.json");
    assert_eq!(state["supervisor"], sup, "{state}");
    let worker = sexton::procfs::processes()
        .into_iter()
        .find(|q| q.ppid == sup)
        .expect("the supervisor's worker")
        .pid;
    assert_eq!(state["worker"], worker, "{state}");
    let kill =
        |pid: i32, sig| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).unwrap();
    use nix::sys::signal::Signal::{SIGKILL, SIGSTOP};
    kill(sup, SIGSTOP);
    kill(worker, SIGKILL);
    kill(sup, SIGKILL);
    assert!(poll(DEADLINE, || !alive(sup) && !alive(worker)));
    let escapee = first[1];
    assert!(
        alive(escapee),
        "the negative control: nothing cleaned up yet"
    );
    assert!(poll(DEADLINE, || p.up().code == Some(0)));
    assert!(
        poll(DEADLINE, || !alive(escapee)),
        "the next up left the escapee"
    );
    let all = p.s.wait_pids(4);
    assert_eq!(p.s.alive().len(), 2, "{:?} of {all:?}", p.s.alive());
}

#[test]
fn a_full_disk_is_reported_and_the_service_keeps_running() {
    let p = Project::new(
        "fulldisk",
        "sexton.toml",
        "log_dir = \"logs\"\n[services.chatty]\ncommand = [\"sh\", \"-c\", \"while :; do echo a line of output that fills the disk; sleep 0.005; done\"]\n",
    );
    let logs = p.dir().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16k", "tmpfs"])
        .arg(&logs)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipping: cannot mount a small tmpfs here");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(logs.clone());
    let err = p.s.path("up.err");
    let mut c = Command::new(SEXTON);
    c.args(["up"])
        .current_dir(p.dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap());
    let mut sp = spawn(&mut c);
    let mut last = Value::Null;
    assert!(
        poll(DEADLINE, || {
            last = p.try_service("chatty").unwrap_or(Value::Null);
            last["log_error"]
                .as_str()
                .is_some_and(|e| e.contains("No space left"))
        }),
        "no log error reported: {last}"
    );
    assert_eq!(last["state"], "running", "{last}");
    assert!(alive(last["pid"].as_i64().unwrap() as i32));
    assert!(
        poll(DEADLINE, || std::fs::read_to_string(&err)
            .unwrap_or_default()
            .contains("service chatty: log:")),
        "not said on stderr"
    );
    let r = p.sexton(&["status"]);
    assert!(r.stdout.contains("chatty: log:"), "{r:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sp.pid()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(sp.wait(DEADLINE).code(), Some(0));
}
