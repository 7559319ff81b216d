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

/// Escapes control characters (newlines above all) so that text taken from
/// a file or a user cannot break a message into several lines.
pub(crate) fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The reason an I/O call failed, without Rust's "(os error N)" suffix.
pub(crate) fn io_reason(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => e.to_string(),
    }
}
