//! The supervisor behind `sexton up`: a set of long-running services kept
//! alive, started in dependency order and stopped in reverse.
//!
//! - [`config`]: finds, parses and checks `sexton.toml` or a `Procfile`
//!   before anything is started.
//! - [`ready`]: readiness checks (tcp, cmd, log, notify) as state machines
//!   of the one event loop.

pub mod config;
pub mod ready;
