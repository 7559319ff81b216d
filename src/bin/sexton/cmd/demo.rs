//! `sexton demo`: the seed case of `sexton run` on a built-in script.

use clap::Args;
use sexton::{Command, Leftovers};
use std::time::{Duration, Instant};

/// Show what `sexton run` does on a start script that leaves a daemon
/// holding its stdout (the case that hangs subprocess.run and exec.Cmd).
#[derive(Debug, Args)]
pub struct DemoArgs {}

const SCRIPT: &str = "echo 'start ok'; (setsid sh -c 'sleep 300' &) ; sleep 300 &";

pub fn main(_a: DemoArgs) -> i32 {
    println!("The script:  sh -c \"{SCRIPT}\"");
    println!("prints 'start ok' and exits at once, but leaves sleepers behind,");
    println!("one escaped into its own session, all holding its stdout open.");
    println!("A plain `out=$(sh -c ...)` or subprocess.run(capture_output=True) waits 300 s.\n");
    let t0 = Instant::now();
    let out = Command::shell(SCRIPT)
        .timeout(Duration::from_secs(10))
        .wait_delay(Duration::from_millis(250))
        .leftovers(Leftovers::Kill)
        .run();
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            crate::exit::error(e, None);
            return crate::exit::FAILED;
        }
    };
    println!(
        "sexton run --json --leftovers kill -- sh -c ... returned after {:.0} ms:",
        t0.elapsed().as_secs_f64() * 1000.0
    );
    match serde_json::to_string_pretty(&out) {
        Ok(s) => println!("{s}"),
        Err(e) => crate::exit::error(e, None),
    }
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
    if alive.is_empty() && out.leftovers.len() == 2 {
        0
    } else {
        1
    }
}
