//! `sexton demo`: the seed case of `sexton run` on a built-in script.

use clap::Args;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use sexton::{Command, LeftoverAction, Leftovers, Outcome};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// Show what `sexton run` does on a start script that leaves a daemon
/// holding its stdout (the case that hangs subprocess.run and exec.Cmd).
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The shell that runs the script, outside and inside `setsid` (a
    /// name in PATH or a path). Shells differ in how many processes the
    /// script leaves (dash keeps the inner shell, bash execs `sleep`);
    /// the demo holds for any of them.
    #[arg(long, value_name = "SHELL", default_value = "sh", value_parser = parse_shell)]
    pub shell: String,
    /// Colour the headings and the verdict: auto (a terminal without
    /// NO_COLOR), always, never.
    #[arg(long, value_enum, value_name = "WHEN", default_value = "auto")]
    pub color: super::Color,
}

/// A shell name that can go into the script unquoted.
fn parse_shell(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_.+-".contains(&b));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "'{s}' is not a plain shell name or path (letters, digits, / _ . + -)"
        ))
    }
}

/// The demo's start script, for `shell`: it prints a line and exits at
/// once, leaving two `sleep 300`, one of them in a session of its own,
/// with its stdout and stderr.
fn script(shell: &str) -> String {
    format!("echo 'start ok'; (setsid {shell} -c 'sleep 300' &) ; sleep 300 &")
}

/// How long the processes sexton killed may take to finish exiting
/// (and close what they held) before the demo calls them survivors.
const EXIT_LIMIT: Duration = Duration::from_secs(5);

pub fn main(a: DemoArgs) -> i32 {
    let shell = a.shell;
    let script = script(&shell);
    let on = a.color.enabled();
    let bold = |t: &str| {
        if on {
            super::paint(t, super::sgr::BOLD)
        } else {
            t.to_string()
        }
    };
    println!("{}  {shell} -c \"{script}\"", bold("The script:"));
    println!("prints 'start ok' and exits at once, but leaves sleepers behind,");
    println!("one escaped into its own session, all holding its stdout open.");
    println!(
        "A plain `out=$({shell} -c ...)` or subprocess.run(capture_output=True) waits 300 s.\n"
    );
    // A witness: every process of the script inherits the write end with
    // its stdout, so the read end hangs up only once none of them is
    // left, whether sexton named it or not.
    let (witness, witness_w) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => {
            crate::exit::error(format!("demo: cannot create a pipe: {e}"), None);
            return crate::exit::FAILED;
        }
    };
    let t0 = Instant::now();
    let out = Command::new(&shell)
        .arg("-c")
        .arg(&script)
        .timeout(Duration::from_secs(10))
        .wait_delay(Duration::from_millis(250))
        .leftovers(Leftovers::Kill)
        .pass_fd(witness_w.as_raw_fd())
        .run();
    drop(witness_w);
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            crate::exit::error(e, None);
            return crate::exit::FAILED;
        }
    };
    println!(
        "{} returned after {:.0} ms:",
        bold(&format!(
            "sexton run --json --leftovers kill -- {shell} -c ..."
        )),
        t0.elapsed().as_secs_f64() * 1000.0
    );
    match serde_json::to_string_pretty(&out) {
        Ok(s) => println!("{s}"),
        Err(e) => crate::exit::error(e, None),
    }
    let survivors = !writers_gone(&witness, EXIT_LIMIT);
    let alive: Vec<i32> = out
        .leftovers
        .iter()
        .map(|l| l.pid)
        .filter(|&p| sexton::procfs::process(p).is_some_and(|i| !i.is_zombie()))
        .collect();
    println!(
        "\n{} leftover(s) found (tracking: {}), {} killed, {} still alive.",
        out.leftovers.len(),
        out.tracking,
        out.killed,
        alive.len()
    );
    let problems = problems(&Seen::of(&out), &alive, survivors);
    if problems.is_empty() {
        let verdict = "Every process that held the output was named and killed; none is left.";
        if on {
            println!("{}", super::paint(verdict, super::sgr::GREEN));
        } else {
            println!("{verdict}");
        }
        0
    } else {
        for p in &problems {
            crate::exit::error(format!("demo: {p}"), None);
        }
        1
    }
}

/// What the demo checks of a run, taken from its outcome.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    timed_out: bool,
    exit_code: Option<i32>,
    stdout: String,
    leftovers: Vec<SeenLeftover>,
}

#[derive(Debug, Clone, PartialEq)]
struct SeenLeftover {
    pid: i32,
    cmdline: String,
    holds: Vec<&'static str>,
    killed: bool,
}

impl Seen {
    fn of(out: &Outcome) -> Seen {
        Seen {
            timed_out: out.timed_out,
            exit_code: out.exit_code,
            stdout: out.stdout.clone(),
            leftovers: out
                .leftovers
                .iter()
                .map(|l| SeenLeftover {
                    pid: l.pid,
                    cmdline: l.cmdline.clone(),
                    holds: l.holds.clone(),
                    killed: l.action == LeftoverAction::Killed,
                })
                .collect(),
        }
    }
}

/// What the demo promised and did not happen, in words; empty when it
/// all held. The promises: the run returns at once with the script's
/// output; both sleepers are named (however many shells the script's
/// shell leaves besides: that differs between shells); every process
/// named holds the output and was killed; none of them, and nothing else
/// of the script (`survivors`, from the witness pipe), is still alive.
fn problems(seen: &Seen, alive: &[i32], survivors: bool) -> Vec<String> {
    let mut p = Vec::new();
    if seen.timed_out {
        p.push("the run timed out instead of returning when the script exited".to_string());
    }
    if seen.exit_code != Some(0) {
        p.push(format!(
            "the script ended with {:?} instead of exit code 0",
            seen.exit_code
        ));
    }
    if seen.stdout != "start ok\n" {
        p.push(format!(
            "the script's output is {:?}, not \"start ok\\n\"",
            seen.stdout
        ));
    }
    let sleepers = seen
        .leftovers
        .iter()
        .filter(|l| l.cmdline == "sleep 300")
        .count();
    if sleepers < 2 {
        p.push(format!(
            "{sleepers} of the script's two `sleep 300` were named as leftovers"
        ));
    }
    for l in &seen.leftovers {
        if l.holds.is_empty() {
            p.push(format!(
                "leftover {} ({}) is named but holds none of the output",
                l.pid, l.cmdline
            ));
        }
        if !l.killed {
            p.push(format!("leftover {} ({}) was not killed", l.pid, l.cmdline));
        }
    }
    if !alive.is_empty() {
        p.push(format!("leftovers still alive: {alive:?}"));
    }
    if survivors {
        p.push(format!(
            "a process of the script still holds its output {} s after the run",
            EXIT_LIMIT.as_secs()
        ));
    }
    p
}

/// True once no process holds the write end of the pipe `r` reads
/// (`poll` reports a hang-up), false if one still does after `limit`.
fn writers_gone(r: &OwnedFd, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(r.as_fd(), PollFlags::POLLIN)];
        let revents = match poll(&mut fds, timeout) {
            Err(Errno::EINTR) => continue,
            Err(_) | Ok(0) => return false,
            Ok(_) => fds[0].revents().unwrap_or(PollFlags::empty()),
        };
        if revents.contains(PollFlags::POLLHUP) {
            return true;
        }
        if revents.contains(PollFlags::POLLIN) {
            // Something wrote on it: drain, a hang-up may follow.
            let mut buf = [0u8; 512];
            match nix::unistd::read(r, &mut buf) {
                Ok(0) => return true,
                Ok(_) | Err(Errno::EINTR) | Err(Errno::EAGAIN) => {}
                Err(_) => return false,
            }
        }
        if Instant::now() >= deadline {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> Seen {
        let l = |pid, cmdline: &str| SeenLeftover {
            pid,
            cmdline: cmdline.to_string(),
            holds: vec!["stdout", "stderr"],
            killed: true,
        };
        Seen {
            timed_out: false,
            exit_code: Some(0),
            stdout: "start ok\n".to_string(),
            leftovers: vec![
                l(10, "sh -c sleep 300"),
                l(11, "sleep 300"),
                l(12, "sleep 300"),
            ],
        }
    }

    #[test]
    fn the_verdict_does_not_depend_on_how_many_shells_are_left() {
        // dash leaves the inner shell, bash does not.
        assert_eq!(problems(&good(), &[], false), Vec::<String>::new());
        let mut bash = good();
        bash.leftovers.remove(0);
        assert_eq!(problems(&bash, &[], false), Vec::<String>::new());
    }

    #[test]
    fn the_verdict_fails_on_each_broken_promise() {
        let mut s = good();
        s.timed_out = true;
        assert_eq!(problems(&s, &[], false).len(), 1);
        let mut s = good();
        s.exit_code = None;
        assert_eq!(problems(&s, &[], false).len(), 1);
        let mut s = good();
        s.stdout.clear();
        assert_eq!(problems(&s, &[], false).len(), 1);
        let mut s = good();
        s.leftovers.pop();
        assert_eq!(problems(&s, &[], false).len(), 1, "one sleeper missing");
        let mut s = good();
        s.leftovers[0].holds.clear();
        assert_eq!(problems(&s, &[], false).len(), 1);
        let mut s = good();
        s.leftovers[1].killed = false;
        assert_eq!(problems(&s, &[], false).len(), 1);
        assert_eq!(problems(&good(), &[11], false).len(), 1);
        assert_eq!(problems(&good(), &[], true).len(), 1);
    }

    #[test]
    fn the_witness_hangs_up_only_when_its_last_holder_is_gone() {
        use std::process::{Command as StdCommand, Stdio};
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        // A child holds the write end (as its stdout), we do not.
        let mut child = StdCommand::new("sleep")
            .arg("30")
            .stdin(Stdio::null())
            .stdout(Stdio::from(w))
            .spawn()
            .expect("spawn sleep");
        struct Reap<'a>(&'a mut std::process::Child);
        impl Drop for Reap<'_> {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let guard = Reap(&mut child);
        // Negative control: while it lives, no hang-up.
        assert!(!writers_gone(&r, Duration::from_millis(100)));
        drop(guard);
        assert!(writers_gone(&r, Duration::from_secs(20)));
    }

    #[test]
    fn shell_names_go_into_the_script_unquoted() {
        assert!(parse_shell("sh").is_ok());
        assert!(parse_shell("/usr/bin/bash").is_ok());
        for bad in ["", "sh -x", "b'a", "$(x)", "a;b"] {
            assert!(parse_shell(bad).is_err(), "{bad:?}");
        }
    }
}
