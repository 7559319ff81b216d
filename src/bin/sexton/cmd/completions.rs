//! `sexton completions bash|zsh|fish`: a completion script, made from
//! the same definitions as `--help`.

use clap::{Args, CommandFactory, ValueEnum};

/// Print the completion script of a shell (install it where the shell
/// loads completions from).
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell the script is for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: Shell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// The completion script for `shell`.
pub fn script(shell: Shell) -> Vec<u8> {
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut crate::Cli::command(), "sexton", &mut out);
    out
}

pub fn main(a: CompletionsArgs) -> i32 {
    super::write_stdout(&script(a.shell), "the completion script")
}
