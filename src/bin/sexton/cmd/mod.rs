//! One file per command.

use std::ffi::OsString;

pub mod audit;
pub mod check;
pub mod ctl;
pub mod daemon;
pub mod demo;
pub mod init;
pub mod logs;
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
    #[arg(required = true, trailing_var_arg = true, value_name = "PROGRAM")]
    pub command: Vec<OsString>,
}
