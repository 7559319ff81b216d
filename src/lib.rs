//! sexton: run commands that cannot hang their caller, bury zombies, kill
//! whole process trees (escapees included), and find the process defects
//! that people otherwise dig out with ps, lsof and strace.
//!
//! The layers, from the bottom:
//! - [`procfs`]: one reader for /proc, shared by everything that looks at
//!   other processes;
//! - [`tree`]: a tracked process tree (cgroup v2 or subreaper), spawned,
//!   listed, signalled, frozen-then-killed and reaped in one place;
//! - [`pipes`]: output capture and forwarding, the wait-delay machinery;
//! - [`run`]: the [`Command`] builder and its [`Outcome`];
//! - [`parse`]: durations, sizes and signals as users type them;
//! - [`sys`]: the few raw system calls no crate covers.

pub mod audit;
pub mod daemon;
pub mod idle;
pub mod names;
pub mod parse;
pub mod pipes;
pub mod procfs;
pub mod reap;
pub mod run;
pub mod supervise;
pub mod sys;
pub mod tree;

pub use run::{Command, Input, Leftover, LeftoverAction, Leftovers, Outcome, Output, RunError};
pub use tree::{Mode, Tracking, Tree};
