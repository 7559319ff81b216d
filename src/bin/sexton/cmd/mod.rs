//! One file per command.

pub mod audit;
pub mod check;
pub mod daemon;
pub mod demo;
pub mod init;
pub mod orphans;
pub mod run;
pub mod shared;
pub mod why;
pub mod zombies;
