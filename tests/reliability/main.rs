//! The reliability suite: sexton under resource exhaustion, signal storms,
//! SIGKILL at random moments and a long soak. Each part checks real /proc
//! state afterwards: no process lost, no zombie, no leaked fd, no stale
//! cgroup, no partial file.
//!
//! The long parts (200 random kills, 20,000 runs, 2,000 restarts) run
//! when `SEXTON_SOAK=1` is set (`.ci/run` sets it); without it they run a
//! short version of themselves and say so on stderr.

#[path = "../common/mod.rs"]
mod common;

mod limits;
mod signals;
mod soak;
