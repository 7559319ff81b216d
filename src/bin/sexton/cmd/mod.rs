//! One file per command.

pub mod demo;
pub mod init;
pub mod run;
