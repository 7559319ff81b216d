//! The audit commands against real defective programs: each seed case is
//! reproduced with real processes and checked through `sexton ... --json`,
//! with a negative control that proves the check can come out clean.

mod common;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SEXTON: &str = env!("CARGO_BIN_EXE_sexton");
const DEADLINE: Duration = Duration::from_secs(30);

/// Kills (SIGKILL) and reaps every process it was given, even when the
/// test fails halfway.
#[derive(Default)]
struct Guard {
    children: Vec<Child>,
    pids: Vec<i32>,
    groups: Vec<i32>,
}

impl Guard {
    fn child(&mut self, c: Child) -> i32 {
        let pid = c.id() as i32;
        self.children.push(c);
        pid
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        for &g in &self.groups {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(g),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        for &p in &self.pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A script file in a fresh temporary directory.
fn script(name: &str, body: &str) -> PathBuf {
    let dir = scripts_dir().join(name.replace('.', "-"));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// This test process's script folder, under cargo's per-target temporary
/// directory (not /tmp): `audit-scripts/PID`. The first call removes the
/// folders of earlier runs whose process is gone, so runs do not pile up.
fn scripts_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("audit-scripts");
        if let Ok(entries) = std::fs::read_dir(&root) {
            for e in entries.flatten() {
                let gone = e
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<u32>().ok())
                    .is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists());
                if gone {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        root.join(std::process::id().to_string())
    })
    .clone()
}

/// Runs `sexton ARGS --json`; returns (exit code, document).
fn sexton_json(args: &[&str]) -> (i32, Value) {
    let out = Command::new(SEXTON)
        .args(args)
        .arg("--json")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let doc: Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "sexton {args:?}: not JSON ({e}): {text}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    common::assert_schema(&doc, "findings.json");
    (out.status.code().unwrap_or(-1), doc)
}

fn findings(doc: &Value) -> Vec<Value> {
    doc["findings"].as_array().cloned().unwrap_or_default()
}

/// Polls `f` until it returns Some or the deadline passes.
fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads one line announced by a helper on its stdout.
fn read_line(r: &mut impl BufRead) -> String {
    let mut s = String::new();
    r.read_line(&mut s).unwrap();
    s.trim().to_string()
}

/// The children of `pid`: from its children lists, or from a /proc
/// snapshot on kernels without them.
fn children_of(pid: i32) -> Vec<i32> {
    sexton::procfs::children(pid).unwrap_or_else(|| {
        sexton::procfs::processes()
            .into_iter()
            .filter(|p| p.ppid == pid)
            .map(|p| p.pid)
            .collect()
    })
}

// ---------------------------------------------------------------- zombies

const SERVER: &str = r#"
import os, signal, socket, sys
reap_all = sys.argv[1] == "loop"
def once(sig, frame):
    try:
        os.wait()
    except ChildProcessError:
        pass
def loop(sig, frame):
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
signal.signal(signal.SIGCHLD, loop if reap_all else once)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(256)
print(s.getsockname()[1], flush=True)
while True:
    try:
        c, _ = s.accept()
    except InterruptedError:
        continue
    if os.fork() == 0:
        s.close()
        c.recv(1)
        os._exit(0)
    c.close()
"#;

/// Starts the forking server in its own PID namespace (so that whatever
/// it leaves behind dies with it), connects 200 clients, waits for the
/// 200 workers, then disconnects them all at once. Returns the server's
/// host pid.
fn forking_server(g: &mut Guard, mode: &str) -> i32 {
    let path = script(&format!("server-{mode}.py"), SERVER);
    let mut child = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "python3"])
        .arg(&path)
        .arg(mode)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let unshare = g.child(child);
    let port: u16 = read_line(&mut out).parse().unwrap();
    let server = poll("the server's pid", || children_of(unshare).first().copied());
    g.pids.push(server);
    let clients: Vec<_> = (0..200)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    poll("200 workers", || {
        (children_of(server).len() >= 200).then_some(())
    });
    drop(clients);
    server
}

fn zombies_of(parent: i32) -> Vec<Value> {
    let (_, doc) = sexton_json(&["zombies"]);
    findings(&doc)
        .into_iter()
        .filter(|f| f["parent"]["pid"] == parent)
        .collect()
}

#[test]
fn d1_zombies_named_with_their_server() {
    let mut g = Guard::default();
    let server = forking_server(&mut g, "once");
    // All 200 workers exit; a handler that waits once per SIGCHLD
    // leaves most of them unreaped.
    poll("the workers to exit", || {
        let alive = children_of(server)
            .into_iter()
            .filter_map(sexton::procfs::process)
            .filter(|p| !p.is_zombie())
            .count();
        (alive == 0).then_some(())
    });
    let zs = zombies_of(server);
    assert!(!zs.is_empty(), "no zombie reported for server {server}");
    let f = &zs[0];
    assert_eq!(f["kind"], "zombie");
    assert_eq!(f["ppid"], server);
    assert!(f["parent"]["cmdline"].as_str().unwrap().contains("python3"));
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains(&format!("pid {server} never waits"))
    );
    assert!(f["hint"].as_str().unwrap().contains("waitpid"));
    // The exit code says there is a finding.
    let st = Command::new(SEXTON).arg("zombies").output().unwrap();
    assert_eq!(st.status.code(), Some(1));
    let text = String::from_utf8_lossy(&st.stdout);
    // The guilty parent comes first in its block.
    assert!(
        text.lines().any(|l| l.starts_with(&format!("{server} "))),
        "{text}"
    );
}

#[test]
fn d1_negative_a_server_that_reaps_in_a_loop_has_no_zombie() {
    let mut g = Guard::default();
    let server = forking_server(&mut g, "loop");
    poll("every worker reaped", || {
        children_of(server).is_empty().then_some(())
    });
    assert!(zombies_of(server).is_empty());
}

// ---------------------------------------------------------------- orphans

#[test]
fn d4_orphan_left_by_a_killed_start_script() {
    let mut g = Guard::default();
    let sub = script("sub.sh", "#!/bin/sh\necho $$\nexec sleep 300\n");
    let start = script(
        "start.sh",
        &format!("#!/bin/sh\n{} &\nsleep 300\n", sub.display()),
    );
    use std::os::unix::process::CommandExt;
    let mut child = Command::new(&start)
        .process_group(0)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let start_pid = g.child(child);
    // start.sh's own `sleep 300` is orphaned too when start.sh is killed.
    g.groups.push(start_pid);
    let sub_pid: i32 = read_line(&mut out).parse().unwrap();
    g.pids.push(sub_pid);
    let orphan = |doc: &Value| {
        findings(doc)
            .into_iter()
            .find(|f| f["kind"] == "orphan" && f["pid"] == sub_pid)
    };
    // Negative control: while start.sh lives, sub.sh is no orphan.
    let (_, doc) = sexton_json(&["orphans"]);
    assert!(orphan(&doc).is_none(), "{doc}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(start_pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let f = poll("sub.sh reported as an orphan", || {
        let (code, doc) = sexton_json(&["orphans"]);
        orphan(&doc).inspect(|_| assert_eq!(code, 1))
    });
    assert_eq!(f["pgid"], start_pid);
    assert!(f["cmdline"].as_str().unwrap().contains("sleep 300"));
    assert!(f["hint"].as_str().unwrap().contains("kill -- -PGID"));
}

#[test]
fn d4_negative_a_proper_daemon_is_not_an_orphan() {
    let mut g = Guard::default();
    let daemon = script(
        "daemon.py",
        r#"
import os, sys, time
r, w = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.close(r)
        os.write(w, b"%d\n" % os.getpid())
        os.close(w)
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.chdir("/")
        time.sleep(300)
    os._exit(0)
os.close(w)
print(os.read(r, 64).decode().strip(), flush=True)
os.wait()
"#,
    );
    let out = Command::new("python3").arg(&daemon).output().unwrap();
    let pid: i32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    g.pids.push(pid);
    poll("the daemon adopted", || {
        sexton::procfs::process(pid)
            .filter(|p| p.ppid != std::process::id() as i32 && p.sid == p.pgid)
            .map(|_| ())
    });
    let (_, doc) = sexton_json(&["orphans"]);
    assert!(
        !findings(&doc).iter().any(|f| f["pid"] == pid),
        "daemon {pid} reported: {doc}"
    );
}

// ---------------------------------------------------------------- shared

const FORKING_CLIENT: &str = r#"
import os, socket, sys, time
port = int(sys.argv[1])
after = sys.argv[2] == "after"
if not after:
    c = socket.create_connection(("127.0.0.1", port))
pid = os.fork()
if after:
    c = socket.create_connection(("127.0.0.1", port))
if pid == 0:
    time.sleep(300)
    os._exit(0)
print(pid, flush=True)
time.sleep(300)
"#;

fn forking_client(g: &mut Guard, mode: &str, port: u16) -> (i32, i32) {
    let path = script(&format!("client-{mode}.py"), FORKING_CLIENT);
    let mut child = Command::new("python3")
        .arg(&path)
        .arg(port.to_string())
        .arg(mode)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let parent = g.child(child);
    let kid: i32 = read_line(&mut out).parse().unwrap();
    g.pids.push(kid);
    (parent, kid)
}

fn shared_with(pid: i32) -> Vec<Value> {
    let (_, doc) = sexton_json(&["shared"]);
    findings(&doc)
        .into_iter()
        .filter(|f| f["kind"] == "shared_socket")
        .filter(|f| {
            f["pids"]
                .as_array()
                .is_some_and(|p| p.iter().any(|x| x == pid))
        })
        .collect()
}

#[test]
fn d8_connection_shared_after_fork_is_flagged() {
    let mut g = Guard::default();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (parent, kid) = forking_client(&mut g, "before", port);
    let (_conn, _) = listener.accept().unwrap();
    let f = poll("the shared connection", || shared_with(parent).pop());
    let pids = f["pids"].as_array().unwrap();
    assert!(pids.contains(&parent.into()) && pids.contains(&kid.into()));
    let ep = f["endpoint"].as_str().unwrap();
    assert!(ep.starts_with("tcp 127.0.0.1:"), "{ep}");
    assert!(ep.ends_with(&format!("-> 127.0.0.1:{port}")), "{ep}");
}

#[test]
fn d8_negative_connect_after_fork_is_not_flagged() {
    let mut g = Guard::default();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (parent, kid) = forking_client(&mut g, "after", port);
    let _a = listener.accept().unwrap();
    let _b = listener.accept().unwrap();
    // Both connections are established: each process has its own.
    assert!(shared_with(parent).is_empty());
    assert!(shared_with(kid).is_empty());
}

#[test]
fn d8_negative_prefork_listening_socket_is_not_flagged() {
    let mut g = Guard::default();
    let path = script(
        "prefork.py",
        r#"
import os, socket, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
kids = [os.fork() for _ in range(1)]
if 0 in kids:
    time.sleep(300)
    os._exit(0)
if os.fork() == 0:
    time.sleep(300)
    os._exit(0)
print(s.getsockname()[1], flush=True)
time.sleep(300)
"#,
    );
    let mut child = Command::new("python3")
        .arg(&path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let server = g.child(child);
    let _port = read_line(&mut out);
    let kids = poll("two workers", || {
        let k = children_of(server);
        (k.len() == 2).then_some(k)
    });
    g.pids.extend(&kids);
    assert!(shared_with(server).is_empty());
}

// ---------------------------------------------------------------- why

#[test]
fn d6_why_names_the_holder_of_a_communicate_hang() {
    let mut g = Guard::default();
    let path = script(
        "communicate.py",
        r#"
import subprocess
p = subprocess.Popen(["sh", "-c", "sleep 300 & echo started"], stdout=subprocess.PIPE)
p.communicate()
"#,
    );
    let py = g.child(Command::new("python3").arg(&path).spawn().unwrap());
    let f = poll("python blocked on the pipe", || {
        let (code, doc) = sexton_json(&["why", &py.to_string()]);
        assert_eq!(code, 0);
        let f = findings(&doc).pop()?;
        let holders = f["holders"].as_array()?;
        let by_sleep = holders.len() == 1
            && holders[0]["cmdline"]
                .as_str()
                .is_some_and(|c| c.starts_with("sleep 300"));
        (f["syscall"] == "read" && by_sleep).then_some(f)
    });
    let holder = &f["holders"][0];
    let sleep = holder["pid"].as_i64().unwrap() as i32;
    g.pids.push(sleep);
    assert!(holder["cmdline"].as_str().unwrap().starts_with("sleep 300"));
    assert_eq!(holder["fds"][0], 1);
    assert_eq!(holder["end"], "write");
    let msg = f["message"].as_str().unwrap();
    assert!(msg.starts_with("blocked in read("), "{msg}");
    assert!(msg.contains("on pipe:["), "{msg}");
    assert!(
        msg.contains(&format!(
            "the write end is held by {sleep} sleep 300 (fd 1), which is not a child of {py}"
        )),
        "{msg}"
    );
    // The human form says the same.
    let out = Command::new(SEXTON)
        .args(["why", &py.to_string()])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("which is not a child of"));
}

#[test]
fn why_no_such_pid_exits_2() {
    let out = Command::new(SEXTON)
        .args(["why", "2147483646"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim(), "sexton: why 2147483646: no such process");
    let out = Command::new(SEXTON).args(["why", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(SEXTON)
        .args(["zombies", "--bogus"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// A subtree with two defects: a connection shared by the parent and
/// its forked child, and a zombie the parent never waits for. Prints
/// "KID ZOMBIE". It first closes whatever fds above 2 it inherited from
/// the test's own environment: a pipe held there by processes outside
/// the subtree would be a legitimate finding that names them.
const SUBTREE: &str = r#"
import os, socket, sys, time
os.closerange(3, os.sysconf("SC_OPEN_MAX"))
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
kid = os.fork()
if kid == 0:
    time.sleep(300)
    os._exit(0)
zombie = os.fork()
if zombie == 0:
    os._exit(0)
print(kid, zombie, flush=True)
time.sleep(300)
"#;

/// A parent elsewhere that never waits for its child. Prints "ZOMBIE".
const ELSEWHERE: &str = r#"
import os, time
zombie = os.fork()
if zombie == 0:
    os._exit(0)
print(zombie, flush=True)
time.sleep(300)
"#;

/// `root` and its descendants now, from a /proc snapshot.
fn subtree_of(root: i32) -> std::collections::HashSet<i32> {
    let snap = sexton::procfs::processes();
    let kids = sexton::procfs::children_index(&snap);
    let mut out = std::collections::HashSet::new();
    let mut stack = vec![root];
    while let Some(p) = stack.pop() {
        if out.insert(p) {
            stack.extend(kids.get(&p).into_iter().flatten().map(|&i| snap[i].pid));
        }
    }
    out
}

fn is_zombie(pid: i32) -> bool {
    sexton::procfs::process(pid).is_some_and(|p| p.is_zombie())
}

#[test]
fn audit_of_a_subtree_reports_only_that_subtree() {
    let mut g = Guard::default();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Their stderr is not the test's either (see SUBTREE).
    let spawn = |path: PathBuf, arg: Option<String>, g: &mut Guard| {
        let mut child = Command::new("python3")
            .arg(path)
            .args(arg)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let pid = g.child(child);
        (pid, read_line(&mut out))
    };
    let (parent, line) = spawn(
        script("subtree.py", SUBTREE),
        Some(port.to_string()),
        &mut g,
    );
    let _conn = listener.accept().unwrap();
    let (kid, zombie) = match line.split_once(' ') {
        Some((k, z)) => (k.parse::<i32>().unwrap(), z.parse::<i32>().unwrap()),
        None => panic!("subtree.py said {line:?}"),
    };
    g.pids.push(kid);
    let (elsewhere, line) = spawn(script("elsewhere.py", ELSEWHERE), None, &mut g);
    let outside_zombie: i32 = line.parse().unwrap();
    poll("both zombies", || {
        (is_zombie(zombie) && is_zombie(outside_zombie)).then_some(())
    });
    let subtree = subtree_of(parent);
    assert!(
        [parent, kid, zombie].iter().all(|p| subtree.contains(p)),
        "{subtree:?}"
    );
    assert!(!subtree.contains(&elsewhere) && !subtree.contains(&outside_zombie));
    let zombie_finding = |doc: &Value, pid: i32| {
        findings(doc)
            .into_iter()
            .find(|f| f["kind"] == "zombie" && f["pid"] == pid)
    };

    // Machine-wide, both zombies are reported: the one outside the
    // subtree is a finding the filter has to drop.
    let (code, all) = sexton_json(&["audit"]);
    assert_eq!(code, 1);
    assert!(doc_has_scanned(&all));
    let outside = zombie_finding(&all, outside_zombie)
        .unwrap_or_else(|| panic!("outside zombie {outside_zombie} not reported: {all}"));
    assert_eq!(outside["ppid"], elsewhere);
    assert!(zombie_finding(&all, zombie).is_some(), "{all}");

    let (code, doc) = sexton_json(&["audit", "--pid", &parent.to_string()]);
    assert_eq!(code, 1, "{doc}");
    assert!(doc_has_scanned(&doc));
    let within = findings(&doc);
    // Every finding is about the subtree: its process is in it, and a
    // finding naming several processes has one of them there.
    for f in &within {
        let pid = f["pid"].as_i64().unwrap() as i32;
        assert!(subtree.contains(&pid), "{pid} is outside {subtree:?}: {f}");
        if let Some(pids) = f["pids"].as_array() {
            assert!(
                pids.iter()
                    .any(|p| subtree.contains(&(p.as_i64().unwrap() as i32))),
                "{f}"
            );
        }
    }
    // Both defects of the subtree are there, the zombie elsewhere is not.
    let z = zombie_finding(&doc, zombie).unwrap_or_else(|| panic!("{doc}"));
    assert_eq!(z["ppid"], parent);
    let shared = within
        .iter()
        .find(|f| f["kind"] == "shared_socket")
        .unwrap_or_else(|| panic!("no shared connection: {doc}"));
    let pids = shared["pids"].as_array().unwrap();
    assert!(
        pids.contains(&parent.into()) && pids.contains(&kid.into()),
        "{shared}"
    );
    assert!(zombie_finding(&doc, outside_zombie).is_none(), "{doc}");
    assert!(
        !within
            .iter()
            .any(|f| f["pid"] == elsewhere || f["ppid"] == elsewhere),
        "{doc}"
    );
}

fn doc_has_scanned(doc: &Value) -> bool {
    doc["scanned"]["processes"].as_u64().unwrap_or(0) > 0 && doc["duration_ms"].is_number()
}

// ---------------------------------------------------------------- check

/// Runs `sexton check [--json] -- ARGS`; returns (code, stdout, stderr).
fn check(json: bool, args: &[&str]) -> (i32, String, String) {
    let mut c = Command::new(SEXTON);
    c.arg("check");
    if json {
        c.arg("--json");
    }
    let mut child = c
        .arg("--")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = child.stderr.take().unwrap();
    let t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let st = child.wait().unwrap();
    (st.code().unwrap_or(-1), out, t.join().unwrap())
}

fn check_findings(args: &[&str]) -> (i32, Vec<Value>) {
    let (code, out, err) = check(true, args);
    let last = out.lines().last().unwrap_or("");
    let doc: Value =
        serde_json::from_str(last).unwrap_or_else(|e| panic!("check {args:?}: {e}: {out}\n{err}"));
    common::assert_schema(&doc, "findings.json");
    (code, findings(&doc))
}

#[test]
fn check_clean_program_exits_0() {
    let (code, out, err) = check(false, &["sh", "-c", "echo ok; sleep 0.1; true"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "ok\n");
    assert!(err.contains("no findings"), "{err}");
    let (code, f) = check_findings(&[
        "python3",
        "-c",
        "import subprocess; subprocess.run(['sleep', '0.3'])",
    ]);
    assert_eq!((code, f.len()), (0, 0), "{f:?}");
}

#[test]
fn check_passes_the_program_status_and_usage_errors_exit_125() {
    let (code, _, _) = check(false, &["sh", "-c", "exit 3"]);
    assert_eq!(code, 3);
    let out = Command::new(SEXTON).args(["check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    let out = Command::new(SEXTON)
        .args(["check", "--interval", "soon", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    let (code, _, _) = check(false, &["/nonexistent/program"]);
    assert_eq!(code, 127);
}

#[test]
fn d1_check_reports_zombies_left_while_the_parent_lived() {
    let (code, f) = check_findings(&[
        "python3",
        "-c",
        "import os, time\nfor _ in range(3):\n    if os.fork() == 0: os._exit(0)\ntime.sleep(1)",
    ]);
    assert_eq!(code, 1);
    let z: Vec<&Value> = f.iter().filter(|x| x["kind"] == "zombie").collect();
    assert_eq!(z.len(), 3, "{f:?}");
    assert!(z.iter().all(|x| x["parent"]["zombies"] == 3), "{z:?}");
    assert!(
        z[0]["parent"]["cmdline"]
            .as_str()
            .unwrap()
            .contains("python3")
    );
}

#[test]
fn d6_check_reports_a_descendant_holding_stdout() {
    let (code, f) = check_findings(&["sh", "-c", "sleep 30 & echo started"]);
    assert_eq!(code, 1);
    let l = f
        .iter()
        .find(|x| x["kind"] == "leftover")
        .unwrap_or_else(|| panic!("{f:?}"));
    assert!(l["cmdline"].as_str().unwrap().starts_with("sleep 30"));
    assert_eq!(l["holds"][0], "stdout");
}

const LEAKER: &str = "import os, subprocess, sys\nr, w = os.pipe()\nos.set_inheritable(w, True)\nsubprocess.run(['sleep', '0.5'], close_fds=sys.argv[1] == 'close')";

#[test]
fn d7_check_reports_an_fd_inherited_across_exec() {
    let (code, f) = check_findings(&["python3", "-c", LEAKER, "leak"]);
    assert_eq!(code, 1);
    let i = f
        .iter()
        .find(|x| x["kind"] == "inherited_fd")
        .unwrap_or_else(|| panic!("{f:?}"));
    assert!(i["cmdline"].as_str().unwrap().starts_with("sleep"));
    assert!(i["target"].as_str().unwrap().starts_with("pipe:["));
    assert!(i["fd"].as_i64().unwrap() > 2);
    // Negative control: the same program with close_fds is clean.
    let (code, f) = check_findings(&["python3", "-c", LEAKER, "close"]);
    assert_eq!((code, f.len()), (0, 0), "{f:?}");
}

#[test]
fn d8_check_reports_a_connection_shared_by_its_processes() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let prog = "import os, socket, sys, time\nc = socket.create_connection(('127.0.0.1', int(sys.argv[1])))\npid = os.fork()\ntime.sleep(0.5)\nif pid: os.waitpid(pid, 0)";
    let port_s = port.to_string();
    let t = std::thread::spawn(move || listener.accept().map(|(c, _)| c));
    let (code, f) = check_findings(&["python3", "-c", prog, &port_s]);
    let _conn = t.join().unwrap();
    assert_eq!(code, 1);
    let s = f
        .iter()
        .find(|x| x["kind"] == "shared_socket")
        .unwrap_or_else(|| panic!("{f:?}"));
    assert_eq!(s["pids"].as_array().unwrap().len(), 2);
    assert!(
        s["endpoint"]
            .as_str()
            .unwrap()
            .ends_with(&format!(":{port}"))
    );
}

#[test]
fn check_killed_with_sigkill_kills_the_tree() {
    let mut g = Guard::default();
    let mut child = Command::new(SEXTON)
        .args(["check", "--", "sh", "-c", "sleep 300 & echo $!; wait"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let check = g.child(child);
    let sleep: i32 = read_line(&mut out).parse().unwrap();
    g.pids.push(sleep);
    let alive = |pid: i32| sexton::procfs::process(pid).is_some_and(|p| !p.is_zombie());
    assert!(alive(sleep));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(check),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    poll("the checked tree to die with sexton check", || {
        (!alive(sleep)).then_some(())
    });
}

// ------------------------------------------------- zombie counts, --pid

/// A parent that forks argv[1] children that exit at once, and never
/// waits for them. Prints the zombies' pids.
const NOWAIT: &str = r#"
import os, sys, time
os.closerange(3, os.sysconf("SC_OPEN_MAX"))
kids = []
for _ in range(int(sys.argv[1])):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    kids.append(pid)
print(" ".join(map(str, kids)), flush=True)
time.sleep(300)
"#;

/// Runs `python3 SCRIPT ARGS` with stdin, stderr on /dev/null and stdout
/// piped; returns its pid and the first line it prints.
fn python(g: &mut Guard, path: &PathBuf, args: &[&str]) -> (i32, String) {
    let mut child = Command::new("python3")
        .arg(path)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let pid = g.child(child);
    (pid, read_line(&mut out))
}

fn pids_of(line: &str) -> Vec<i32> {
    line.split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

#[test]
fn zombie_findings_carry_their_parents_zombie_count() {
    let mut g = Guard::default();
    let path = script("nowait.py", NOWAIT);
    let (three, line) = python(&mut g, &path, &["3"]);
    let zs3 = pids_of(&line);
    let (one, line) = python(&mut g, &path, &["1"]);
    let zs1 = pids_of(&line);
    poll("the zombies", || {
        zs3.iter().chain(&zs1).all(|&z| is_zombie(z)).then_some(())
    });
    for cmd in ["zombies", "audit"] {
        let (_, doc) = sexton_json(&[cmd]);
        for (parent, n) in [(three, 3), (one, 1)] {
            let mine: Vec<Value> = findings(&doc)
                .into_iter()
                .filter(|f| f["kind"] == "zombie" && f["ppid"] == parent)
                .collect();
            assert_eq!(mine.len(), n, "{cmd}: {doc}");
            for f in &mine {
                assert_eq!(
                    f["parent"]["zombies"].as_u64(),
                    Some(n as u64),
                    "{cmd}: {f}"
                );
            }
        }
    }
    // `why` of one of them says the same of its parent.
    let (_, doc) = sexton_json(&["why", &zs3[0].to_string()]);
    assert_eq!(doc["findings"][0]["parent"]["zombies"], 3, "{doc}");
}

/// Two families, each a parent with a child sharing a pipe (both ends,
/// fds above 2) and a zombie. Prints "CHILD ZOMBIE".
const FAMILY: &str = r#"
import os, sys, time
os.closerange(3, os.sysconf("SC_OPEN_MAX"))
r, w = os.pipe()
kid = os.fork()
if kid == 0:
    time.sleep(300)
    os._exit(0)
zombie = os.fork()
if zombie == 0:
    os._exit(0)
print(kid, zombie, flush=True)
time.sleep(300)
"#;

#[test]
fn zombies_and_shared_take_a_subtree_with_pid() {
    let mut g = Guard::default();
    let path = script("family.py", FAMILY);
    let (a, line) = python(&mut g, &path, &[]);
    let [a_kid, a_zombie] = pids_of(&line)[..] else {
        panic!("{line}")
    };
    g.pids.push(a_kid);
    let (b, line) = python(&mut g, &path, &[]);
    let [b_kid, b_zombie] = pids_of(&line)[..] else {
        panic!("{line}")
    };
    g.pids.push(b_kid);
    poll("both zombies", || {
        (is_zombie(a_zombie) && is_zombie(b_zombie)).then_some(())
    });
    let zombie_pids = |doc: &Value| -> Vec<i64> {
        findings(doc)
            .iter()
            .filter(|f| f["kind"] == "zombie")
            .map(|f| f["pid"].as_i64().unwrap())
            .collect()
    };
    let pipe_of = |doc: &Value, parent: i32| {
        findings(doc).into_iter().find(|f| {
            f["kind"] == "shared_pipe"
                && f["pids"]
                    .as_array()
                    .is_some_and(|p| p.contains(&parent.into()))
        })
    };
    // Machine-wide, both families are there.
    let (_, all) = sexton_json(&["zombies"]);
    let z = zombie_pids(&all);
    assert!(
        z.contains(&a_zombie.into()) && z.contains(&b_zombie.into()),
        "{all}"
    );
    let (_, all) = sexton_json(&["shared"]);
    assert!(
        pipe_of(&all, a).is_some() && pipe_of(&all, b).is_some(),
        "{all}"
    );

    // Under --pid A, only A's.
    let (code, doc) = sexton_json(&["zombies", "--pid", &a.to_string()]);
    assert_eq!(
        (code, zombie_pids(&doc)),
        (1, vec![a_zombie.into()]),
        "{doc}"
    );
    let (code, doc) = sexton_json(&["shared", "--pid", &a.to_string()]);
    assert_eq!(code, 1, "{doc}");
    assert!(pipe_of(&doc, a).is_some(), "{doc}");
    assert!(pipe_of(&doc, b).is_none(), "{doc}");
    for f in findings(&doc) {
        let pids = f["pids"].as_array().unwrap();
        assert!(
            pids.contains(&a.into()) || pids.contains(&a_kid.into()),
            "{f}"
        );
    }
    // Under --pid of A's child, the pipe it shares with its parent is
    // found, and the finding is about the holder in the subtree.
    for cmd in ["shared", "audit"] {
        let (_, doc) = sexton_json(&[cmd, "--pid", &a_kid.to_string()]);
        let f = pipe_of(&doc, a).unwrap_or_else(|| panic!("{cmd}: {doc}"));
        assert_eq!(f["pid"], a_kid, "{cmd}: {f}");
        assert!(
            !zombie_pids(&doc).contains(&a_zombie.into()),
            "{cmd}: {doc}"
        );
    }
    // A pid that does not exist is a usage error, as for audit.
    for cmd in ["zombies", "orphans", "shared"] {
        let out = Command::new(SEXTON)
            .args([cmd, "--pid", "2147483646"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim(),
            format!("sexton: {cmd} --pid 2147483646: no such process")
        );
    }
}

/// A subreaper R that forks X; X starts a session, forks a group leader
/// L, and L forks M in its group; L exits, so M is adopted by R from
/// another session: an orphan in R's subtree. Prints "X M".
const SUBREAPER_ORPHAN: &str = r#"
import ctypes, os, sys, time
os.closerange(3, os.sysconf("SC_OPEN_MAX"))
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
r, w = os.pipe()
x = os.fork()
if x == 0:
    os.setsid()
    l = os.fork()
    if l == 0:
        os.setpgid(0, 0)
        m = os.fork()
        if m == 0:
            time.sleep(300)
            os._exit(0)
        os.write(w, b"%d\n" % m)
        os._exit(0)
    os.waitpid(l, 0)
    time.sleep(300)
    os._exit(0)
m = os.read(r, 64).decode().strip()
print(x, m, flush=True)
time.sleep(300)
"#;

#[test]
fn orphans_take_a_subtree_with_pid() {
    let mut g = Guard::default();
    let path = script("subreaper.py", SUBREAPER_ORPHAN);
    let (r, line) = python(&mut g, &path, &[]);
    let [x, m] = pids_of(&line)[..] else {
        panic!("{line}")
    };
    g.pids.extend([x, m]);
    poll("M adopted by R", || {
        sexton::procfs::process(m)
            .is_some_and(|p| p.ppid == r)
            .then_some(())
    });
    let has_m = |doc: &Value| {
        findings(doc)
            .iter()
            .any(|f| f["kind"] == "orphan" && f["pid"] == m)
    };
    let (_, all) = sexton_json(&["orphans"]);
    assert!(has_m(&all), "{all}");
    let (code, doc) = sexton_json(&["orphans", "--pid", &r.to_string()]);
    assert_eq!(code, 1, "{doc}");
    assert!(has_m(&doc), "{doc}");
    for f in findings(&doc) {
        assert!(
            subtree_of(r).contains(&(f["pid"].as_i64().unwrap() as i32)),
            "{f}"
        );
    }
    // X started the session but M is no longer below it.
    let (code, doc) = sexton_json(&["orphans", "--pid", &x.to_string()]);
    assert_eq!(code, 0, "{doc}");
    assert!(!has_m(&doc), "{doc}");
}

// ------------------------------------------------------- shared: itself

#[test]
fn shared_never_lists_sexton_itself() {
    use std::os::fd::AsRawFd;
    let mut g = Guard::default();
    // The read end stays open here on an fd above 2, and is sexton's
    // stdin: were sexton counted, it would share the read end with us.
    let (r, _w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    assert!(r.as_raw_fd() > 2);
    let ino = nix::sys::stat::fstat(&r).unwrap().st_ino;
    let target = format!("pipe:[{ino}]");
    let run = |r: &std::os::fd::OwnedFd| {
        let child = Command::new(SEXTON)
            .args(["shared", "--json"])
            .stdin(Stdio::from(r.try_clone().unwrap()))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let me = child.id() as i32;
        let out = child.wait_with_output().unwrap();
        let doc = common::parse_doc(&out.stdout, "findings.json");
        (me, doc)
    };
    let (me, doc) = run(&r);
    for f in findings(&doc) {
        assert_ne!(f["pid"], me, "sexton reported itself: {f}");
        assert_ne!(f["target"], target.as_str(), "{f}");
        let pids = f["pids"].as_array().cloned().unwrap_or_default();
        assert!(!pids.contains(&me.into()), "sexton listed itself: {f}");
    }
    // Negative control: another process reading the same pipe makes it
    // a finding, without sexton in it.
    let sleep = g.child(
        Command::new("sleep")
            .arg("300")
            .stdin(Stdio::from(r.try_clone().unwrap()))
            .spawn()
            .unwrap(),
    );
    let (me, doc) = run(&r);
    let f = findings(&doc)
        .into_iter()
        .find(|f| f["target"] == target.as_str())
        .unwrap_or_else(|| panic!("{target} not reported: {doc}"));
    let ours = std::process::id() as i32;
    let pids = f["pids"].as_array().unwrap();
    assert!(
        pids.contains(&ours.into()) && pids.contains(&sleep.into()),
        "{f}"
    );
    assert!(!pids.contains(&me.into()), "sexton listed itself: {f}");
}

/// A parent and its child both keep both ends of one pipe on fds above
/// 2; the script's last argument is a tag for its command line. Prints
/// the child's pid.
const BOTH_ENDS: &str = r#"
import os, time
os.closerange(3, os.sysconf("SC_OPEN_MAX"))
r, w = os.pipe()
kid = os.fork()
if kid == 0:
    time.sleep(300)
    os._exit(0)
print(kid, flush=True)
time.sleep(300)
"#;

#[test]
fn a_pipe_shared_on_both_ends_is_one_finding_and_text_stays_on_its_lines() {
    let mut g = Guard::default();
    let path = script("both-ends.py", BOTH_ENDS);
    let (parent, line) = python(&mut g, &path, &["tag\nline2"]);
    let kid: i32 = line.parse().unwrap();
    g.pids.push(kid);
    let (_, doc) = sexton_json(&["shared"]);
    let mine: Vec<Value> = findings(&doc)
        .into_iter()
        .filter(|f| {
            f["kind"] == "shared_pipe"
                && f["pids"]
                    .as_array()
                    .is_some_and(|p| p.contains(&parent.into()))
        })
        .collect();
    assert_eq!(mine.len(), 1, "one pipe, one finding: {mine:?}");
    let f = &mine[0];
    assert_eq!(f["pids"], serde_json::json!([parent, kid]), "{f}");
    let holders = f["holders"].as_array().unwrap();
    for end in ["read", "write"] {
        let on: Vec<&Value> = holders.iter().filter(|h| h["end"] == end).collect();
        assert_eq!(on.len(), 2, "{end}: {f}");
    }
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .starts_with("both ends of pipe:["),
        "{f}"
    );
    // The JSON keeps the command line as it is...
    assert!(
        f["cmdline"].as_str().unwrap().ends_with(" tag\nline2"),
        "{f}"
    );
    // ...the text escapes it: every line of the block is sexton's.
    let out = Command::new(SEXTON)
        .args(["shared", "--pid", &kid.to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(" tag\\nline2"), "{text}");
    assert!(!text.lines().any(|l| l.starts_with("line2")), "{text}");
}

// ------------------------------------------------------------- why, more

/// The `why` finding of `pid`.
fn why(pid: i32) -> Value {
    let (code, doc) = sexton_json(&["why", &pid.to_string()]);
    assert_eq!(code, 0, "{doc}");
    findings(&doc).pop().unwrap_or_else(|| panic!("{doc}"))
}

fn state_of(pid: i32) -> Option<char> {
    sexton::procfs::process(pid).map(|p| p.state)
}

#[test]
fn why_says_a_stopped_process_is_stopped() {
    let mut g = Guard::default();
    let sleep = g.child(Command::new("sleep").arg("300").spawn().unwrap());
    // Negative control: asleep, it is blocked in its call.
    let f = poll("sleep asleep", || {
        let f = why(sleep);
        f["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("blocked in clock_nanosleep"))
            .then_some(f)
    });
    assert_eq!(f["state"], "S");
    let pid = nix::unistd::Pid::from_raw(sleep);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    poll("sleep stopped", || {
        (state_of(sleep) == Some('T')).then_some(())
    });
    let f = why(sleep);
    let msg = f["message"].as_str().unwrap();
    assert!(msg.starts_with("stopped"), "{msg}");
    assert!(
        msg.contains("SIGSTOP") && !msg.contains("blocked in"),
        "{msg}"
    );
    assert_eq!(f["state"], "T");
    assert!(
        f["hint"]
            .as_str()
            .unwrap()
            .contains(&format!("kill -CONT {sleep}"))
    );
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
}

#[test]
fn why_names_the_writer_of_a_fifo() {
    let mut g = Guard::default();
    let dir = script("fifo-dir", "").parent().unwrap().to_path_buf();
    let fifo = dir.join("fifo");
    let _ = std::fs::remove_file(&fifo);
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let cat = g.child(
        Command::new("cat")
            .arg(&fifo)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Opening a FIFO waits for the other side.
    let f = poll("cat waiting for a writer", || {
        let f = why(cat);
        f["message"]
            .as_str()
            .is_some_and(|m| m.contains("opening the FIFO"))
            .then_some(f)
    });
    let msg = f["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!("{} for reading", fifo.display())),
        "{msg}"
    );
    let writer = g.child(
        Command::new("sh")
            .args(["-c", "exec sleep 300 3>\"$0\""])
            .arg(&fifo)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let f = poll("cat blocked reading the FIFO", || {
        let f = why(cat);
        (f["syscall"] == "read" && f["holders"].as_array().is_some_and(|h| !h.is_empty()))
            .then_some(f)
    });
    // The writer holds it; cat, which holds the read end, is not listed.
    assert_eq!(f["holders"].as_array().unwrap().len(), 1, "{f}");
    let h = &f["holders"][0];
    assert_eq!(
        (h["pid"].as_i64(), h["end"].as_str()),
        (Some(writer.into()), Some("write")),
        "{f}"
    );
    assert_eq!(h["fds"], serde_json::json!([3]));
    let msg = f["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!(
            "the write end is held by {writer} sleep 300 (fd 3)"
        )),
        "{msg}"
    );
}

/// Takes a lock on the file argv[1] (`flock` or `fcntl` as argv[2]),
/// prints "locked", and sleeps.
const LOCKER: &str = r#"
import fcntl, os, sys, time
os.closerange(3, os.sysconf("SC_OPEN_MAX"))
f = open(sys.argv[1], "w")
if sys.argv[2] == "flock":
    fcntl.flock(f, fcntl.LOCK_EX)
else:
    fcntl.lockf(f, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(300)
"#;

#[test]
fn why_names_the_holder_of_a_lock() {
    let path = script("locker.py", LOCKER);
    for (how, call) in [("flock", "flock"), ("fcntl", "fcntl")] {
        let mut g = Guard::default();
        let file = path.with_file_name(format!("{how}.lock"));
        std::fs::write(&file, "").unwrap();
        let file_s = file.to_str().unwrap();
        let (holder, line) = python(&mut g, &path, &[file_s, how]);
        assert_eq!(line, "locked");
        // A process that has the file open without a lock: not a holder.
        let bystander = g.child(
            Command::new("sh")
                .args(["-c", "exec sleep 300 3<\"$0\""])
                .arg(&file)
                .spawn()
                .unwrap(),
        );
        let waiter = g.child(
            Command::new("python3")
                .arg(&path)
                .args([file_s, how])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let f = poll("the waiter blocked on the lock", || {
            let f = why(waiter);
            (f["syscall"] == call && f["holders"].is_array()).then_some(f)
        });
        let holders: Vec<i64> = f["holders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["pid"].as_i64().unwrap())
            .collect();
        assert_eq!(holders, vec![i64::from(holder)], "{how}: {f}");
        assert!(!holders.contains(&bystander.into()));
        let msg = f["message"].as_str().unwrap();
        assert!(
            msg.contains(&format!("lock on it is held by {holder} ")),
            "{how}: {msg}"
        );
        assert!(
            f["target"]
                .as_str()
                .unwrap()
                .ends_with(&format!("{how}.lock")),
            "{f}"
        );
    }
}

/// A kernel thread, from the flags of /proc/PID/stat (`PF_KTHREAD`).
fn a_kernel_thread() -> Option<i32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let after = &stat[stat.rfind(')')? + 2..];
        let flags: u64 = after.split(' ').nth(6)?.parse().ok()?;
        (flags & 0x0020_0000 != 0).then_some(pid)
    })
}

#[test]
fn why_says_a_kernel_thread_is_one_and_escapes_a_command_line() {
    let Some(k) = a_kernel_thread() else {
        eprintln!(
            "no kernel thread visible here (PID namespace?): only the command line is checked"
        );
        return;
    };
    let f = why(k);
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .starts_with("a kernel thread"),
        "{f}"
    );
    assert!(f["cmdline"].as_str().unwrap().starts_with('['), "{f}");

    // A user process whose command line has a newline and bytes that are
    // not UTF-8: not shown as `[comm]`, not as a kernel thread.
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::CommandExt;
    let mut g = Guard::default();
    // In a group of its own, killed whole at the end: its sleep too.
    let sh = g.child(
        Command::new("sh")
            .args(["-c", "sleep 300; :", "a\nb"])
            .arg(std::ffi::OsStr::from_bytes(b"x\xffy"))
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap(),
    );
    g.groups.push(sh);
    let f = poll("sh waiting for sleep", || {
        let f = why(sh);
        (f["syscall"] == "wait4").then_some(f)
    });
    assert_eq!(f["cmdline"], "sh -c sleep 300; : a\nb x\\xffy", "{f}");
    assert!(
        !f["message"].as_str().unwrap().contains("kernel thread"),
        "{f}"
    );
    let out = Command::new(SEXTON)
        .args(["why", &sh.to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().unwrap_or("");
    assert!(
        first.starts_with(&format!("{sh} sh -c sleep 300; : a\\nb x\\xffy  [state S]")),
        "{text}"
    );
    assert!(!text.lines().any(|l| l.starts_with("b x")), "{text}");
}

// ------------------------------------------------------------- non-root

/// Runs `sexton ARGS --json` as uid/gid 65534; returns (code, document,
/// stderr), or None when this machine cannot (not root, binary not
/// reachable by that user).
fn as_nobody(args: &[&str]) -> Option<(i32, Value, String)> {
    use std::os::unix::process::CommandExt;
    if !nix::unistd::geteuid().is_root() {
        eprintln!("not root: cannot run sexton as another user");
        return None;
    }
    let mut c = Command::new(SEXTON);
    c.args(args).arg("--json").stdin(Stdio::null());
    // SAFETY: only async-signal-safe calls (setgroups, setgid, setuid)
    // between fork and exec.
    unsafe {
        c.pre_exec(|| {
            let nobody = 65534;
            nix::unistd::setgroups(&[]).map_err(std::io::Error::from)?;
            nix::unistd::setgid(nix::unistd::Gid::from_raw(nobody))
                .map_err(std::io::Error::from)?;
            nix::unistd::setuid(nix::unistd::Uid::from_raw(nobody))
                .map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let out = match c.output() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("cannot run {SEXTON} as uid 65534 ({e}): not checked");
            return None;
        }
    };
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "sexton {args:?} as nobody: {e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    common::assert_schema(&doc, "findings.json");
    Some((
        out.status.code().unwrap_or(-1),
        doc,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[test]
fn as_non_root_every_audit_command_says_what_it_skipped() {
    let mut g = Guard::default();
    // A process of root's that nobody may look into.
    let sleep = g.child(Command::new("sleep").arg("300").spawn().unwrap());
    let sleep_s = sleep.to_string();
    let commands: [&[&str]; 5] = [
        &["zombies"],
        &["orphans"],
        &["shared"],
        &["audit"],
        &["why", &sleep_s],
    ];
    for args in commands {
        let Some((_, doc, err)) = as_nobody(args) else {
            return;
        };
        let skipped = doc["scanned"]["skipped"]
            .as_u64()
            .unwrap_or_else(|| panic!("{args:?}: no scanned.skipped: {doc}"));
        assert!(skipped >= 1, "{args:?}: {doc}");
        let notes: Vec<&str> = err
            .lines()
            .filter(|l| l.starts_with("sexton: note:"))
            .collect();
        let what = if skipped == 1 {
            "1 process".to_string()
        } else {
            format!("{skipped} processes")
        };
        assert_eq!(
            notes,
            vec![format!(
                "sexton: note: {what} could not be read (not yours); run as root to see them"
            )],
            "{args:?}: {err}"
        );
    }
    let (_, doc, _) = as_nobody(&["why", &sleep_s]).unwrap();
    let msg = doc["findings"][0]["message"].as_str().unwrap();
    assert!(msg.contains("another user's process"), "{msg}");
    // Negative control: root reads everything, and says nothing.
    for cmd in ["audit", "zombies"] {
        let out = Command::new(SEXTON)
            .args([cmd, "--json"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let doc = common::parse_doc(&out.stdout, "findings.json");
        assert_eq!(doc["scanned"]["skipped"], 0, "{doc}");
        assert!(!String::from_utf8_lossy(&out.stderr).contains("note:"));
    }
}

// ------------------------------------------------------ check, interrupted

#[test]
fn check_interrupted_by_a_signal_does_not_claim_a_clean_run() {
    for json in [false, true] {
        let mut g = Guard::default();
        let mut c = Command::new(SEXTON);
        c.arg("check");
        if json {
            c.arg("--json");
        }
        let child = c
            .args(["--", "sleep", "30"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let check = child.id() as i32;
        let sleep = poll("the checked sleep", || {
            subtree_of(check).into_iter().find(|&p| {
                sexton::procfs::process(p).is_some_and(|i| i.comm == "sleep" && !i.is_zombie())
            })
        });
        g.pids.push(sleep);
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(check),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let out = child.wait_with_output().unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert_eq!(out.status.code(), Some(128 + 15), "{stdout}{stderr}");
        if json {
            let doc = common::parse_doc(stdout.as_bytes(), "findings.json");
            assert_eq!(doc["interrupted"]["signal"], "TERM", "{doc}");
        } else {
            assert!(!stderr.contains("no findings"), "{stderr}");
            assert!(
                stderr.contains("sexton check: interrupted: sleep was killed by SIGTERM"),
                "{stderr}"
            );
        }
    }
    // Negative control: a program that ends by itself is a full check.
    let (code, out, err) = check(true, &["sleep", "0.1"]);
    assert_eq!(code, 0, "{err}");
    let doc = common::parse_doc(&out, "findings.json");
    assert!(doc.get("interrupted").is_none(), "{doc}");
    assert_eq!(doc["scanned"]["skipped"], 0, "{doc}");
}
