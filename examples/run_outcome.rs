//! Runs a start script that leaves a daemon holding its stdout, the case
//! that hangs `subprocess.run(capture_output=True)`, and prints the outcome.
//!
//! `cargo run --release --example run_outcome`

use std::time::Duration;

fn main() -> Result<(), sexton::RunError> {
    let out = sexton::Command::new("sh")
        .args(["-c", "echo start ok; sleep 30 &"])
        .timeout(Duration::from_secs(10))
        .wait_delay(Duration::from_millis(100))
        .leftovers(sexton::Leftovers::Kill)
        .run()?;
    println!("{}", out.to_json());
    println!(
        "exit {:?}, {} leftover(s) killed, tracked by {}",
        out.exit_code,
        out.leftovers.len(),
        out.tracking
    );
    Ok(())
}
