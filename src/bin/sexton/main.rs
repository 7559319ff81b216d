//! The `sexton` command line: argument parsing, one file per command,
//! nothing but arguments and printing. The work is in the library.

mod caller;
mod cmd;
mod exit;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Keeps a machine's processes in order: runs commands that cannot hang
/// their caller, buries zombies, kills whole process trees.
#[derive(Debug, Parser)]
#[command(name = "sexton", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Debug, Subcommand)]
enum Commands {
    Run(Box<cmd::run::RunArgs>),
    Demo(cmd::demo::DemoArgs),
    Daemon(cmd::daemon::DaemonArgs),
    Init(cmd::init::InitArgs),
    Zombies(cmd::zombies::ZombiesArgs),
    Orphans(cmd::orphans::OrphansArgs),
    Shared(cmd::shared::SharedArgs),
    Why(cmd::why::WhyArgs),
    Audit(cmd::audit::AuditArgs),
    Check(cmd::check::CheckArgs),
    Up(cmd::up::UpArgs),
    Status(cmd::ctl::StatusArgs),
    Start(cmd::ctl::NamesArgs),
    Stop(cmd::ctl::NamesArgs),
    Restart(cmd::ctl::NamesArgs),
    Reload(cmd::ctl::PlaceArgs),
    Down(cmd::ctl::PlaceArgs),
    Logs(cmd::logs::LogsArgs),
}

/// The subcommand names, for usage errors that must say which command
/// they are about.
pub const COMMANDS: &[&str] = &[
    "run", "demo", "daemon", "init", "zombies", "orphans", "shared", "why", "audit", "check", "up",
    "status", "start", "stop", "restart", "reload", "down", "logs",
];

fn main() -> ExitCode {
    caller::restore_sigchld();
    if let Err(e) = cmd::run::split_early() {
        exit::error(e, None);
        return ExitCode::from(exit::FAILED as u8);
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => return exit::usage(e),
    };
    let code = match cli.command {
        Commands::Run(a) => cmd::run::main(*a),
        Commands::Demo(a) => cmd::demo::main(a),
        Commands::Daemon(a) => cmd::daemon::main(a),
        Commands::Init(a) => cmd::init::main(a),
        Commands::Zombies(a) => cmd::zombies::main(a),
        Commands::Orphans(a) => cmd::orphans::main(a),
        Commands::Shared(a) => cmd::shared::main(a),
        Commands::Why(a) => cmd::why::main(a),
        Commands::Audit(a) => cmd::audit::main(a),
        Commands::Check(a) => cmd::check::main(a),
        Commands::Up(a) => cmd::up::main(a),
        Commands::Status(a) => cmd::ctl::status(a),
        Commands::Start(a) => cmd::ctl::start(a),
        Commands::Stop(a) => cmd::ctl::stop(a),
        Commands::Restart(a) => cmd::ctl::restart(a),
        Commands::Reload(a) => cmd::ctl::reload(a),
        Commands::Down(a) => cmd::ctl::down(a),
        Commands::Logs(a) => cmd::logs::main(a),
    };
    ExitCode::from(code.clamp(0, 255) as u8)
}
