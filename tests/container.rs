//! The release binary in a container image without the build machine's
//! shared libraries: `examples/container/Dockerfile` puts it alone in a
//! `FROM scratch` image. There is no container engine here, so each test
//! builds that image's file tree in a bare directory and runs it the way
//! a runtime does: PID 1 of a new PID namespace with the directory as its
//! root and a /proc of its own (`unshare --pid --fork --mount-proc
//! --root=DIR`, root only; skipped, saying why, elsewhere). The command
//! line is the Dockerfile's ENTRYPOINT, and for the sample the program,
//! user and layout of `pod.yaml` and the `sample` target.
//!
//! - The binary has no program interpreter (no dynamic loader) and runs
//!   in a root that holds nothing else; a dynamically linked program
//!   copied into the same root cannot start there (the negative control:
//!   the root really lacks the host's libraries).
//! - There, `sexton init` reaps the orphans it adopts (a PID 1 that never
//!   waits keeps them as zombies: the negative control) and forwards TERM
//!   to the program, and `sexton run --json` returns the start script's
//!   output with its leftover, a timeout, and a missing program.
//!
//! The busybox that plays the image's programs must be a static one
//! (Debian's busybox-static, which `.ci/run` installs): the tests that
//! need it say so and skip without it.

mod common;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const SEXTON: &str = env!("CARGO_BIN_EXE_sexton");
const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/container");
/// Generous: the machine has two noisy cores.
const DEADLINE: Duration = Duration::from_secs(20);

/// The ELF program interpreter (`PT_INTERP`, the dynamic loader) named by
/// the executable at `path`; None for a static executable.
fn interpreter(path: &Path) -> Option<String> {
    let elf = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        elf.len() > 64 && elf[..4] == *b"\x7fELF" && elf[4] == 2 && elf[5] == 1,
        "{}: not a 64-bit little-endian ELF file",
        path.display()
    );
    let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap()) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap()) as usize;
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    (0..phnum)
        .map(|i| phoff + i * phentsize)
        .find(|&ph| u32_at(ph) == 3) // PT_INTERP
        .map(|ph| {
            let (off, size) = (u64_at(ph + 8), u64_at(ph + 32));
            String::from_utf8_lossy(&elf[off..off + size])
                .trim_end_matches('\0')
                .to_string()
        })
}

/// Whether this machine can run a program as PID 1 of a new PID namespace
/// in another root. When it cannot, every test that asks says why.
fn can_contain() -> bool {
    static WHY_NOT: OnceLock<Option<String>> = OnceLock::new();
    let why_not = WHY_NOT.get_or_init(|| {
        if !rustix::process::geteuid().is_root() {
            return Some("not root (a PID namespace and a new root need it)".into());
        }
        // The host's own root, so that this probes unshare and the kernel,
        // not the image under test.
        match Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc", "--root=/", "true"])
            .stdin(Stdio::null())
            .output()
        {
            Err(e) => Some(format!("unshare cannot run: {e}")),
            Ok(o) if !o.status.success() => Some(format!(
                "unshare --pid --fork --mount-proc --root is not allowed here: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Ok(_) => None,
        }
    });
    if let Some(why) = why_not {
        eprintln!("skipping: {why}");
    }
    why_not.is_none()
}

/// A static busybox on this machine, to play the image's programs.
fn busybox() -> Option<PathBuf> {
    let found = ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file() && interpreter(p).is_none());
    if found.is_none() {
        eprintln!(
            "skipping: no statically linked busybox here (Debian: apt-get install busybox-static; .ci/run installs it)"
        );
    }
    found
}

/// The JSON array of the Dockerfile's (only) `KEYWORD [...]` line.
fn dockerfile_array(keyword: &str) -> Vec<String> {
    let text = std::fs::read_to_string(format!("{EXAMPLE}/Dockerfile")).unwrap();
    let mut lines = text
        .lines()
        .filter_map(|l| l.strip_prefix(keyword)?.strip_prefix(' '));
    let line = lines.next().unwrap_or_else(|| panic!("no {keyword} line"));
    assert!(lines.next().is_none(), "more than one {keyword} line");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{keyword} {line}: {e}"))
}

/// The image's ENTRYPOINT: `/sexton init --`.
fn entrypoint() -> Vec<String> {
    let e = dockerfile_array("ENTRYPOINT");
    assert_eq!(
        e[..2],
        ["/sexton", "init"],
        "the tests put sexton at /sexton"
    );
    e
}

/// The value of pod.yaml's (only) `KEY:` line.
fn pod_value(key: &str) -> String {
    let text = std::fs::read_to_string(format!("{EXAMPLE}/pod.yaml")).unwrap();
    let mut values = text
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix(key)?.strip_prefix(':'));
    let value = values
        .next()
        .unwrap_or_else(|| panic!("no {key} in pod.yaml"));
    assert!(values.next().is_none(), "more than one {key} in pod.yaml");
    value.trim().to_string()
}

/// A scratch directory holding the image's root (`root/`, with nothing in
/// it but what a test adds and the /proc mount point) and the captured
/// output of the runs (beside it, not in it). Removed when dropped.
struct Image {
    dir: PathBuf,
    root: PathBuf,
    runs: u32,
}

impl Image {
    fn new(name: &str) -> Image {
        use std::os::unix::fs::PermissionsExt;
        let dir =
            std::env::temp_dir().join(format!("sexton-container-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let root = dir.join("root");
        std::fs::create_dir_all(root.join("proc")).unwrap();
        // Readable by the pod's unprivileged user, whatever the umask.
        for d in [&dir, &root, &root.join("proc")] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let image = Image { dir, root, runs: 0 };
        image.copy(Path::new(SEXTON), "sexton");
        image
    }

    /// Copies `from` to `to` (relative to the root), mode included.
    fn copy(&self, from: &Path, to: &str) {
        let dest = self.root.join(to);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(from, &dest).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    }

    /// What a container runtime adds to every image: /dev/null (a device
    /// node of this image's own, not the host's).
    fn runtime_dev(&self) {
        use nix::sys::stat::{Mode, SFlag, makedev, mknod};
        std::fs::create_dir_all(self.root.join("dev")).unwrap();
        let null = self.root.join("dev/null");
        mknod(
            &null,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(1, 3),
        )
        .expect("mknod dev/null");
        std::fs::set_permissions(&null, std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .unwrap();
    }

    /// The Dockerfile's `sample` target: a static busybox at /bin/busybox
    /// with its applets installed as `RUN busybox --install -s /bin` does
    /// it (run inside the root, by that busybox), and /dev/null.
    fn with_busybox(&mut self, busybox: &Path) {
        self.copy(busybox, "bin/busybox");
        self.runtime_dev();
        let mut install = self.contained(None, &["/bin/busybox", "--install", "-s", "/bin"]);
        let status = install.wait();
        assert!(status.success(), "busybox --install: {}", install.output());
        assert!(self.root.join("bin/sh").exists() && self.root.join("bin/sleep").exists());
    }

    /// Every path in the root, sorted (symbolic links not followed).
    fn listing(&self) -> Vec<String> {
        fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                out.push(p.strip_prefix(base).unwrap().display().to_string());
                if p.is_dir() && !p.is_symlink() {
                    walk(base, &p, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &self.root, &mut out);
        out.sort();
        out
    }

    /// Starts `argv` as PID 1 of a new PID namespace with the image as
    /// its root, optionally as user and group `uid` (`runAsUser`).
    fn contained(&mut self, uid: Option<u32>, argv: &[&str]) -> Contained {
        self.runs += 1;
        let out = self.dir.join(format!("out.{}", self.runs));
        let err = self.dir.join(format!("err.{}", self.runs));
        let mut c = Command::new("unshare");
        c.args(["--pid", "--fork", "--mount-proc", "--kill-child"])
            .arg(format!("--root={}", self.root.display()));
        if let Some(uid) = uid {
            c.arg(format!("--setuid={uid}"))
                .arg(format!("--setgid={uid}"));
        }
        c.arg("--").args(argv);
        c.stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap());
        use std::os::unix::process::CommandExt;
        c.process_group(0);
        Contained {
            child: c.spawn().expect("spawn unshare"),
            out,
            err,
        }
    }

    /// Runs `argv` under the image's ENTRYPOINT to the end.
    fn run(&mut self, argv: &[&str]) -> (ExitStatus, String, String) {
        let mut full: Vec<String> = entrypoint();
        full.extend(argv.iter().map(|s| s.to_string()));
        let full: Vec<&str> = full.iter().map(String::as_str).collect();
        let mut c = self.contained(None, &full);
        let status = c.wait();
        (status, c.stdout(), c.stderr())
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        // The /proc mount lived in the namespace's own mount namespace,
        // gone with its last process.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `unshare` and the namespace under it. Dropping it kills the whole
/// namespace (SIGKILL of its PID 1, through `--kill-child` and directly).
struct Contained {
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Contained {
    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    fn output(&self) -> String {
        format!("stdout {:?}, stderr {:?}", self.stdout(), self.stderr())
    }

    /// The namespace's PID 1, as this (the host's) /proc numbers it.
    fn pid1(&self) -> i32 {
        let me = self.child.id() as i32;
        let mut pid1 = 0;
        assert!(
            poll(|| {
                pid1 = sexton::procfs::processes()
                    .iter()
                    .find(|p| p.ppid == me)
                    .map_or(0, |p| p.pid);
                pid1 != 0
            }),
            "no PID 1 under unshare ({})",
            self.output()
        );
        pid1
    }

    fn wait(&mut self) -> ExitStatus {
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return s;
            }
            assert!(
                Instant::now() < end,
                "the namespace did not end within {DEADLINE:?} ({})",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Contained {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let me = self.child.id() as i32;
            if let Some(p) = sexton::procfs::processes().iter().find(|p| p.ppid == me) {
                let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
            }
            let _ = kill(Pid::from_raw(me), Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// Polls `cond` every 10 ms until it holds or the deadline passes.
fn poll(mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + DEADLINE;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The children of `pid`: (pid, state, command line).
fn children(pid: i32) -> Vec<(i32, char, String)> {
    sexton::procfs::processes()
        .into_iter()
        .filter(|p| p.ppid == pid)
        .map(|p| {
            let cmd = sexton::procfs::cmdline(p.pid).unwrap_or_default();
            (p.pid, p.state, cmd)
        })
        .collect()
}

/// The last line of `stdout`: the result document of `run --json`,
/// checked against docs/schema/run.json.
fn json(stdout: &str) -> serde_json::Value {
    let line = stdout.lines().last().unwrap_or("");
    let doc = serde_json::from_str(line).unwrap_or_else(|e| panic!("bad json {stdout:?}: {e}"));
    common::assert_schema(&doc, "run.json");
    doc
}

#[test]
fn the_release_binary_has_no_dynamic_loader() {
    assert_eq!(interpreter(Path::new(SEXTON)), None, "{SEXTON} is dynamic");
    // Negative control: the same reader finds the loader of a dynamically
    // linked program.
    let dynamic = interpreter(Path::new("/bin/true"));
    assert!(
        dynamic.as_deref().is_some_and(|i| i.contains("ld-")),
        "/bin/true: {dynamic:?}"
    );
}

#[test]
fn sexton_alone_runs_as_pid1_of_a_root_with_nothing_else() {
    if !can_contain() {
        return;
    }
    let mut image = Image::new("alone");
    assert_eq!(image.listing(), ["proc", "sexton"]);
    // The program is sexton too: run --json of zombies --json, which
    // reads the namespace's /proc.
    let (status, out, err) = image.run(&[
        "/sexton", "run", "--json", "--", "/sexton", "zombies", "--json",
    ]);
    assert_eq!(status.code(), Some(0), "stdout {out:?}, stderr {err:?}");
    let doc = json(&out);
    assert_eq!(doc["exit_code"], 0, "{doc}");
    assert_eq!(doc["error"], serde_json::Value::Null, "{doc}");
    // A pid of the new namespace: init 1, the guard and worker of run,
    // then zombies.
    assert!(doc["pid"].as_i64().is_some_and(|p| p < 10), "{doc}");
    let audit = common::parse_doc(doc["stdout"].as_str().unwrap(), "findings.json");
    assert_eq!(audit["findings"], serde_json::json!([]), "{audit}");
    let seen = audit["scanned"]["processes"].as_i64().unwrap();
    // init, run's guard and its worker: the scanning process never
    // counts itself.
    assert!((3..10).contains(&seen), "the namespace's /proc: {audit}");
}

#[test]
fn negative_control_a_dynamic_program_cannot_start_in_the_same_root() {
    if !can_contain() {
        return;
    }
    let host = Command::new("/bin/true").status().unwrap();
    assert!(host.success(), "/bin/true runs on the host");
    assert!(interpreter(Path::new("/bin/true")).is_some());
    let mut image = Image::new("dynamic");
    image.copy(Path::new("/bin/true"), "true");
    assert_eq!(image.listing(), ["proc", "sexton", "true"]);
    let (status, out, err) = image.run(&["/sexton", "run", "--json", "--", "/true"]);
    // execve finds no loader in this root: the file is there, its
    // interpreter is not.
    assert_eq!(status.code(), Some(127), "stdout {out:?}, stderr {err:?}");
    let doc = json(&out);
    assert_eq!(doc["exit_code"], serde_json::Value::Null, "{doc}");
    assert!(
        doc["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{doc}"
    );
}

/// `(sleep 300 &)` five times, so that PID 1 adopts five sleepers, then
/// the program becomes `sleep 301`.
const ORPHANS: &str = "for i in 1 2 3 4 5; do (sleep 300 &); done; exec sleep 301";

/// Waits until PID 1 of `c` has adopted the five orphans of `ORPHANS`
/// and returns their pids.
fn adopted(c: &Contained, pid1: i32) -> Vec<i32> {
    let mut orphans = Vec::new();
    assert!(
        poll(|| {
            orphans = children(pid1)
                .into_iter()
                .filter(|(_, _, cmd)| cmd == "sleep 300")
                .map(|(p, _, _)| p)
                .collect();
            orphans.len() == 5
        }),
        "five orphans adopted by PID 1: {:?} ({})",
        children(pid1),
        c.output()
    );
    orphans
}

#[test]
fn init_reaps_adopted_orphans_and_forwards_term_in_a_bare_root() {
    if !can_contain() {
        return;
    }
    let Some(bb) = busybox() else { return };
    let mut image = Image::new("reap");
    image.with_busybox(&bb);
    let mut argv = entrypoint();
    argv.extend(["/bin/sh", "-c", ORPHANS].map(String::from));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let mut c = image.contained(None, &argv);
    let init = c.pid1();
    let orphans = adopted(&c, init);
    for &p in &orphans {
        kill(Pid::from_raw(p), Signal::SIGKILL).unwrap();
    }
    // Each orphan dies; sexton, their parent now, reaps them: no zombie,
    // only the program is left under PID 1.
    assert!(
        poll(|| {
            let kids = children(init);
            kids.len() == 1 && kids[0].2 == "sleep 301" && kids[0].1 != 'Z'
        }),
        "orphans not reaped: {:?}",
        children(init)
    );
    // TERM to PID 1 (as `docker stop` and kubelet send it) reaches the
    // program, whose status is init's.
    kill(Pid::from_raw(init), Signal::SIGTERM).unwrap();
    let status = c.wait();
    assert_eq!(status.code(), Some(128 + 15), "{}", c.output());
}

#[test]
fn negative_control_a_pid1_that_never_waits_keeps_the_zombies() {
    if !can_contain() {
        return;
    }
    let Some(bb) = busybox() else { return };
    let mut image = Image::new("nowait");
    image.with_busybox(&bb);
    // No init: after the exec, PID 1 is `sleep 301`, which never waits.
    let c = image.contained(None, &["/bin/sh", "-c", ORPHANS]);
    let pid1 = c.pid1();
    let orphans = adopted(&c, pid1);
    for &p in &orphans {
        kill(Pid::from_raw(p), Signal::SIGKILL).unwrap();
    }
    assert!(
        poll(|| {
            let kids = children(pid1);
            orphans
                .iter()
                .all(|o| kids.iter().any(|(p, state, _)| p == o && *state == 'Z'))
        }),
        "the orphans should be zombies of PID 1: {:?}",
        children(pid1)
    );
    drop(c);
}

#[test]
fn run_json_returns_the_start_script_with_its_leftover_in_a_bare_root() {
    if !can_contain() {
        return;
    }
    let Some(bb) = busybox() else { return };
    let mut image = Image::new("run");
    image.with_busybox(&bb);
    let script = "echo start ok; sleep 300 &";
    let (status, out, err) =
        image.run(&["/sexton", "run", "--json", "--", "/bin/sh", "-c", script]);
    // The leftover is left running by run, and stopped by init once run,
    // its program, has exited.
    assert_eq!(status.code(), Some(0), "stdout {out:?}, stderr {err:?}");
    let doc = json(&out);
    assert_eq!(doc["exit_code"], 0, "{doc}");
    assert_eq!(doc["stdout"], "start ok\n", "{doc}");
    let leftovers = doc["leftovers"].as_array().unwrap();
    assert_eq!(leftovers.len(), 1, "{doc}");
    assert_eq!(leftovers[0]["cmdline"], "sleep 300", "{doc}");
    assert_eq!(leftovers[0]["action"], "left", "{doc}");
    let holds = leftovers[0]["holds"].as_array().unwrap();
    assert!(holds.iter().any(|h| h == "stdout"), "{doc}");
    // No cgroup2 in this root: the subreaper keeps the promise.
    assert_eq!(doc["tracking"], "subreaper", "{doc}");
}

#[test]
fn run_json_times_out_and_reports_a_missing_program_in_a_bare_root() {
    if !can_contain() {
        return;
    }
    let Some(bb) = busybox() else { return };
    let mut image = Image::new("timeout");
    image.with_busybox(&bb);
    let (status, out, err) = image.run(&[
        "/sexton",
        "run",
        "--json",
        "--timeout",
        "0.5",
        "--",
        "/bin/sh",
        "-c",
        "setsid sleep 300 & sleep 300; exit 1",
    ]);
    assert_eq!(status.code(), Some(124), "stdout {out:?}, stderr {err:?}");
    let doc = json(&out);
    assert_eq!(doc["timed_out"], true, "{doc}");
    assert_eq!(doc["signal"], "TERM", "{doc}");
    assert_eq!(doc["exit_code"], serde_json::Value::Null, "{doc}");
    // sh, its sleep and the setsid escapee (the `exit 1` keeps busybox sh
    // from exec'ing its last command).
    assert_eq!(doc["killed"], 3, "{doc}");
    assert_eq!(doc["leftovers"], serde_json::json!([]), "{doc}");

    let (status, out, err) = image.run(&["/sexton", "run", "--json", "--", "/no-such-program"]);
    assert_eq!(status.code(), Some(127), "stdout {out:?}, stderr {err:?}");
    let doc = json(&out);
    assert_eq!(doc["exit_code"], serde_json::Value::Null, "{doc}");
    assert_eq!(doc["pid"], serde_json::Value::Null, "{doc}");
    assert!(
        doc["error"]
            .as_str()
            .is_some_and(|e| e.contains("/no-such-program")),
        "{doc}"
    );
}

#[test]
fn the_sample_pod_runs_and_stops_on_term() {
    if !can_contain() {
        return;
    }
    let Some(bb) = busybox() else { return };
    let mut image = Image::new("sample");
    image.with_busybox(&bb);
    image.copy(&Path::new(EXAMPLE).join("sample.sh"), "sample.sh");
    // ENTRYPOINT from the Dockerfile, args and user from pod.yaml.
    let args: Vec<String> = serde_json::from_str(&pod_value("args")).expect("pod args");
    assert_eq!(
        args,
        dockerfile_array("CMD"),
        "pod args and the image's CMD"
    );
    let uid: u32 = pod_value("runAsUser").parse().unwrap();
    assert_eq!(pod_value("runAsGroup").parse::<u32>().unwrap(), uid);
    assert_eq!(pod_value("shareProcessNamespace"), "false");
    let mut argv = entrypoint();
    argv.extend(args);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let mut c = image.contained(Some(uid), &argv);
    let init = c.pid1();
    assert!(
        poll(|| c.stdout().matches("orphans so far").count() >= 2),
        "the sample did not run: {}",
        c.output()
    );
    let process = sexton::procfs::process(init).unwrap();
    assert_eq!(process.comm, "sexton");
    let uid_line = std::fs::read_to_string(format!("/proc/{init}/status"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .map(str::to_string)
        .unwrap();
    assert!(
        uid_line
            .split_whitespace()
            .skip(1)
            .all(|u| u == uid.to_string()),
        "{uid_line}"
    );
    kill(Pid::from_raw(init), Signal::SIGTERM).unwrap();
    let status = c.wait();
    let out = c.stdout();
    assert_eq!(status.code(), Some(0), "{}", c.output());
    assert!(out.contains("PID 1 is sexton"), "{out}");
    assert!(out.contains("zombies: none"), "{out}");
    assert!(out.ends_with("sample: got TERM, exiting\n"), "{out}");
}
