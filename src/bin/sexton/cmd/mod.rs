//! One file per command.

pub mod demo;
pub mod run;
