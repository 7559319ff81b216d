//! The two ways a subreaper-mode tree finds its members: following
//! `/proc/PID/task/*/children` down from this process, and, on kernels
//! without those lists, one /proc snapshot walked by parent pid. Both run
//! here on the same real tree (the second forced with
//! `procfs::without_children_lists`) and must find the same processes.
//!
//! The tests of this file run one at a time and nothing else in it
//! spawns processes: a subreaper tree counts every child of this process
//! started after its leader as an adopted member.

use sexton::procfs;
use sexton::tree::{ChildSetup, Tracking, Tree};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(30);
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Every process announces its pid in the file `argv[1]`: the leader,
/// a child, a child with a grandchild, and a grandchild (with its own
/// child) that left through `setsid` and a parent that exited, so it is
/// adopted by this process as the subreaper. Six processes in all.
const TREE: &str = r#"
import os, sys, time
out = sys.argv[1]
def announce():
    fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, b"%d\n" % os.getpid())
    os.close(fd)
def spawn(body):
    pid = os.fork()
    if pid == 0:
        try:
            body()
        finally:
            os._exit(0)
    return pid
def sleep():
    announce()
    time.sleep(300)
def nested():
    spawn(sleep)
    sleep()
def escape():
    os.setsid()
    spawn(nested)
spawn(sleep)
spawn(nested)
os.waitpid(spawn(escape), 0)
announce()
time.sleep(300)
"#;
const MEMBERS: usize = 6;

/// A scratch directory; removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let d =
            std::env::temp_dir().join(format!("sexton-tree-walk-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }

    fn announced(&self) -> BTreeSet<i32> {
        std::fs::read_to_string(self.0.join("pids"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// SIGKILLs the given pids (if still the processes announced: started
/// after `since`) when the test ends, passed or failed. The tree itself
/// kills its members on drop; this covers anything it would miss.
struct KillOnDrop {
    pids: BTreeSet<i32>,
    since: u64,
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for &p in &self.pids {
            if procfs::process(p).is_some_and(|i| i.start_time >= self.since) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

fn alive(pid: i32) -> bool {
    procfs::process(pid).is_some_and(|p| !p.is_zombie())
}

fn poll(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn pids(v: Vec<procfs::ProcInfo>) -> BTreeSet<i32> {
    v.into_iter().map(|p| p.pid).collect()
}

/// Clock ticks since boot, the unit of `ProcInfo::start_time`.
fn ticks_now() -> u64 {
    use ::procfs::Current;
    let up = ::procfs::Uptime::current().expect("/proc/uptime");
    (up.uptime_duration().as_secs_f64() * ::procfs::ticks_per_second() as f64) as u64
}

/// Starts the six-process tree in subreaper mode and waits until every
/// member has announced itself and is alive.
fn start(s: &Scratch) -> (Tree, BTreeSet<i32>, KillOnDrop) {
    let me = procfs::process(std::process::id() as i32).unwrap();
    let script = s.0.join("tree.py");
    std::fs::write(&script, TREE).unwrap();
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(&script).arg(s.0.join("pids"));
    let tree = Tree::spawn(&mut cmd, Tracking::Subreaper, ChildSetup::default()).expect("spawn");
    let mut guard = KillOnDrop {
        pids: BTreeSet::new(),
        since: me.start_time,
    };
    poll("the tree to announce its members", || {
        guard.pids = s.announced();
        guard.pids.len() >= MEMBERS && guard.pids.iter().all(|&p| alive(p))
    });
    let expected = s.announced();
    assert_eq!(expected.len(), MEMBERS, "{expected:?}");
    assert!(expected.contains(&tree.leader().as_raw()));
    (tree, expected, guard)
}

#[test]
fn both_walks_find_the_same_members_and_only_them() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let s = Scratch::new("walks");
    // Negative control: a child of ours started before the leader is not
    // a member; both walks must leave it out.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let outsider = Reap(
        std::process::Command::new("sleep")
            .arg("300")
            .spawn()
            .unwrap(),
    );
    let outsider_pid = outsider.0.id() as i32;
    let outsider_start = procfs::process(outsider_pid).unwrap().start_time;
    poll("a clock tick after the outsider started", || {
        ticks_now() > outsider_start + 1
    });
    let (mut tree, expected, _guard) = start(&s);

    let by_snapshot = procfs::without_children_lists(|| {
        assert!(procfs::children(std::process::id() as i32).is_none());
        pids(tree.members())
    });
    assert_eq!(by_snapshot, expected, "snapshot walk");
    assert!(!by_snapshot.contains(&outsider_pid));

    if procfs::has_children_lists() {
        let by_lists = pids(tree.members());
        assert_eq!(by_lists, expected, "children-list walk");
        assert_eq!(by_lists, by_snapshot);
    } else {
        eprintln!(
            "skipping the children-list walk: this kernel has no /proc/PID/task/TID/children"
        );
    }
    drop(outsider);
}

#[test]
fn a_tree_is_killed_and_reaped_without_children_lists() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let s = Scratch::new("kill");
    let (mut tree, expected, _guard) = start(&s);
    let me = std::process::id() as i32;
    let killed: BTreeSet<i32> =
        procfs::without_children_lists(|| tree.kill(DEADLINE).into_iter().collect());
    assert!(killed.is_superset(&expected), "{killed:?} vs {expected:?}");
    for &p in &expected {
        assert!(!alive(p), "{p} survived the kill");
    }
    // Whatever was adopted and is now a zombie of ours is reaped through
    // the snapshot path too.
    poll("the tree's zombies reaped", || {
        procfs::without_children_lists(|| tree.reap());
        !expected
            .iter()
            .any(|&p| procfs::process(p).is_some_and(|i| i.ppid == me))
    });
    assert!(procfs::without_children_lists(|| tree.members()).is_empty());
}
