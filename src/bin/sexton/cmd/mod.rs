//! One file per command.

pub mod daemon;
pub mod demo;
pub mod init;
pub mod run;
