//! The supervisor behind `sexton up`: a set of long-running services kept
//! alive, started in dependency order and stopped in reverse.
//!
//! - [`config`]: finds, parses and checks `sexton.toml` or a `Procfile`
//!   before anything is started.
//! - [`logs`]: service output: log files with rotation, reading them back
//!   (`sexton logs`), and the prefixed foreground output.

pub mod config;
pub mod logs;
