//! One file per command.

use std::ffi::OsString;

pub mod audit;
pub mod check;
pub mod completions;
pub mod ctl;
pub mod daemon;
pub mod demo;
pub mod init;
pub mod logs;
pub mod man;
pub mod orphans;
pub mod run;
pub mod shared;
pub mod up;
pub mod why;
pub mod zombies;

/// `-- PROGRAM [ARGS...]`, the command line every launching command takes.
#[derive(Debug, clap::Args)]
pub struct Program {
    /// The program and its arguments.
    #[arg(
        required = true,
        trailing_var_arg = true,
        value_name = "PROGRAM",
        value_hint = clap::ValueHint::CommandWithArguments
    )]
    pub command: Vec<OsString>,
}

/// Writes `bytes` (`what`, for the error) to stdout: 0, or 1 with the
/// error on stderr. A reader that went away (`| head`) is not an error.
pub fn write_stdout(bytes: &[u8], what: &str) -> i32 {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Ok(()) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            crate::exit::error(format!("cannot write {what}: {e}"), None);
            1
        }
    }
}
