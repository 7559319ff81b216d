//! Processes whose names would break a naive /proc/PID/stat parser (a
//! name is free text: `) R 1 (`, a newline, spaces) are read correctly by
//! every audit command.

mod common;

use common::*;
use std::process::Command;

/// A python3 process that renames itself (`prctl(PR_SET_NAME)`), makes a
/// zombie child it never reaps, announces its pid and sleeps.
const PY: &str = r#"
import ctypes, os, sys, time
name = sys.argv[2].encode()
ctypes.CDLL(None).prctl(15, ctypes.c_char_p(name), 0, 0, 0)
pid = os.fork()
if pid == 0:
    ctypes.CDLL(None).prctl(15, ctypes.c_char_p(name), 0, 0, 0)
    os._exit(0)
open(sys.argv[1], "a").write(f"{os.getpid()}\n")
time.sleep(300)
"#;

#[test]
fn a_name_that_looks_like_stat_fields_is_read_as_a_name() {
    let s = Scratch::new("weird");
    // The zombies made here are adopted by this process when their parent
    // is killed, and reaped here (not left to PID 1).
    nix::sys::prctl::set_child_subreaper(true).unwrap();
    for (i, name) in [") R 1 (", "a\nb", "x) Z 0 (y", "  "].iter().enumerate() {
        let mut c = Command::new("python3");
        c.args(["-c", PY, s.pidfile().to_str().unwrap(), name])
            .stdout(std::process::Stdio::null());
        let mut sp = spawn(&mut c);
        let pid = s.wait_pids(i + 1)[i];
        // The child is a zombie of `pid` once it has exited.
        assert!(
            poll(DEADLINE, || {
                sexton::procfs::processes()
                    .iter()
                    .any(|p| p.ppid == pid && p.is_zombie())
            }),
            "no zombie under {pid}"
        );
        let me = sexton::procfs::process(pid).expect("the named process");
        assert_eq!(me.comm, *name, "the library reads the name");
        assert_eq!(me.ppid, std::process::id() as i32);
        assert_eq!(me.state, 'S', "{me:?}");
        for args in [
            vec!["zombies", "--json"],
            vec!["orphans", "--json"],
            vec!["shared", "--json"],
            vec!["audit", "--json", "--pid", &pid.to_string()],
        ] {
            let mut c = Command::new(SEXTON);
            c.args(&args);
            let r = run_cmd(&mut c, &s);
            assert!(matches!(r.code, Some(0) | Some(1)), "{args:?}: {r:?}");
            assert!(!r.stderr.contains("panicked"), "{args:?}: {r:?}");
            let v: serde_json::Value = serde_json::from_str(r.stdout.trim())
                .unwrap_or_else(|e| panic!("{args:?}: {e}: {r:?}"));
            assert_schema(&v, "findings.json");
            if args[0] == "zombies" || args[0] == "audit" {
                let z = v["findings"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|f| f["kind"] == "zombie" && f["ppid"] == pid)
                    .unwrap_or_else(|| panic!("{args:?}: no zombie of {pid}: {v}"));
                assert_eq!(z["parent"]["pid"], pid, "{z}");
                assert_eq!(z["parent"]["state"], "S", "{z}");
            }
        }
        let mut c = Command::new(SEXTON);
        c.args(["why", &pid.to_string()]);
        let r = run_cmd(&mut c, &s);
        assert_eq!(r.code, Some(0), "{r:?}");
        assert!(
            r.stdout.contains("sleep") || r.stdout.contains("nanosleep"),
            "{r:?}"
        );
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(sp.pid()),
            nix::sys::signal::Signal::SIGKILL,
        );
        sp.wait(DEADLINE);
        assert!(poll(DEADLINE, || matches!(
            nix::sys::wait::waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG)),
            Err(nix::errno::Errno::ECHILD)
        )));
    }
}
