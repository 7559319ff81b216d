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
    /// Start services (and what they depend on) of a running supervisor;
    /// a failed service is cleared. No NAME: every service.
    Start(cmd::ctl::NamesArgs),
    /// Stop services: the stop signal to each one's whole tree, then
    /// SIGKILL after its stop_timeout. No NAME: every service.
    Stop(cmd::ctl::NamesArgs),
    /// Stop, then start services again. No NAME: every service.
    Restart(cmd::ctl::NamesArgs),
    /// Read the config again: start the services it adds, stop the ones
    /// it removes, restart the changed ones.
    Reload(cmd::ctl::PlaceArgs),
    /// Stop every service (dependents first), then the supervisor.
    Down(cmd::ctl::PlaceArgs),
    Logs(cmd::logs::LogsArgs),
    Man(cmd::man::ManArgs),
    Completions(cmd::completions::CompletionsArgs),
}

/// The subcommand names, for usage errors that must say which command
/// they are about.
pub const COMMANDS: &[&str] = &[
    "run",
    "demo",
    "daemon",
    "init",
    "zombies",
    "orphans",
    "shared",
    "why",
    "audit",
    "check",
    "up",
    "status",
    "start",
    "stop",
    "restart",
    "reload",
    "down",
    "logs",
    "man",
    "completions",
];

/// The hot commands (`run`, `init`, `check`) parsed with only their own
/// definition built: building every command's definition is most of the
/// CPU a short `run` spends in sexton, and touches pages an init then
/// keeps. Help and version requests go the full way, so they read the
/// same whatever the command. `None`: not one of them.
fn lean() -> Option<Result<Commands, clap::Error>> {
    use clap::{Args, FromArgMatches};
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let sub = args.first()?.to_str()?;
    let asks_help = args
        .iter()
        .take_while(|a| a.as_os_str() != "--")
        .any(|a| matches!(a.to_str(), Some("-h" | "--help" | "-V" | "--version")));
    if asks_help {
        return None;
    }
    fn one<A: Args + FromArgMatches>(
        name: &'static str,
        args: &[std::ffi::OsString],
    ) -> Result<A, clap::Error> {
        let cmd = A::augment_args(clap::Command::new(name).bin_name(format!("sexton {name}")));
        A::from_arg_matches(&cmd.try_get_matches_from(args)?)
    }
    Some(match sub {
        "run" => one::<cmd::run::RunArgs>("run", &args).map(|a| Commands::Run(Box::new(a))),
        "init" => one("init", &args).map(Commands::Init),
        "check" => one("check", &args).map(Commands::Check),
        _ => return None,
    })
}

fn main() -> ExitCode {
    caller::restore_sigchld();
    if let Err(e) = cmd::run::split_early() {
        exit::error(e, None);
        return ExitCode::from(exit::FAILED as u8);
    }
    let command = match lean() {
        Some(c) => c,
        None => Cli::try_parse().map(|c| c.command),
    };
    let command = match command {
        Ok(c) => c,
        Err(e) => return exit::usage(e),
    };
    let code = match command {
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
        Commands::Man(a) => cmd::man::main(a),
        Commands::Completions(a) => cmd::completions::main(a),
    };
    ExitCode::from(code.clamp(0, 255) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_definition_is_sound() {
        Cli::command().debug_assert();
    }

    #[test]
    fn commands_lists_every_command() {
        let cli = Cli::command();
        let names: Vec<&str> = cli
            .get_subcommands()
            .map(|c| c.get_name())
            .filter(|&n| n != "help")
            .collect();
        assert_eq!(names, COMMANDS);
    }
}
