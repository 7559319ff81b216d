//! The supervisor behind `sexton up`: a set of long-running services kept
//! alive, started in dependency order and stopped in reverse.
//!
//! - [`config`]: finds, parses and checks `sexton.toml` or a `Procfile`
//!   before anything is started.
//! - [`ready`]: readiness checks (tcp, cmd, log, notify) as state machines
//!   of the one event loop.
//! - [`logs`]: each service's log file (timestamped lines, rotation) and
//!   the foreground's prefixed lines.
//! - [`service`]: one service's runs and states.
//! - [`supervisor`]: the one event loop.
//! - [`control`]: the control socket and its protocol.
//! - [`state`]: the state directory, and cleaning up after a crash.

pub mod config;
pub mod control;
pub mod logs;
pub mod ready;
pub mod service;
pub mod state;
pub mod supervisor;
