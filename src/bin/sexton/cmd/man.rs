//! `sexton man [COMMAND]`, `sexton man --dir DIR`: manual pages in roff,
//! made from the same definitions as `--help`.

use crate::exit;
use clap::{Args, CommandFactory};
use std::path::PathBuf;

/// Print the manual page of sexton, or of one command (sexton-run(1)...);
/// with --dir, write every page into a directory.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// The command whose page to print (default: sexton(1) itself).
    #[arg(value_name = "COMMAND", value_parser = clap::builder::PossibleValuesParser::new(crate::COMMANDS), conflicts_with = "dir")]
    pub command: Option<String>,
    /// Write every page (sexton.1, sexton-run.1, ...) into DIR, which must exist.
    #[arg(long, value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    pub dir: Option<PathBuf>,
}

/// The command line's definition, built as `--help` sees it, without the
/// `help` command (clap's own, which has no page).
fn definition() -> clap::Command {
    let mut cli = crate::Cli::command().disable_help_subcommand(true);
    cli.build();
    cli
}

/// The page of `cmd` (sexton itself or one of its commands).
fn page(cmd: &clap::Command) -> clap_mangen::Man {
    let name = cmd.get_display_name().unwrap_or(cmd.get_name());
    clap_mangen::Man::new(cmd.clone())
        .title(name.to_uppercase())
        // No date (the pages change with the version, not by the day).
        // An empty argument of `.TH` must be written `""`: roff writes
        // arguments without spaces as they are, and an empty one not at
        // all, which would shift the source and manual into its place.
        .date("\"\"")
        .source(format!("sexton {}", env!("CARGO_PKG_VERSION")))
        .manual("sexton manual")
}

/// Every page: sexton's, then each command's in the order of `--help`.
pub fn pages() -> Vec<clap_mangen::Man> {
    let cli = definition();
    let mut pages = vec![page(&cli)];
    pages.extend(cli.get_subcommands().filter(|c| !c.is_hide_set()).map(page));
    pages
}

pub fn main(a: ManArgs) -> i32 {
    if let Some(dir) = &a.dir {
        for p in pages() {
            let path = dir.join(p.get_filename());
            let mut roff = Vec::new();
            let written = p
                .render(&mut roff)
                .and_then(|_| std::fs::write(&path, &roff));
            if let Err(e) = written {
                exit::error(format!("man: cannot write {}: {e}", path.display()), None);
                return 1;
            }
        }
        return 0;
    }
    let cli = definition();
    let cmd = match &a.command {
        None => &cli,
        // The value parser only lets the names of commands through.
        Some(name) => match cli.find_subcommand(name) {
            Some(c) => c,
            None => {
                exit::error(format!("man: no command named '{name}'"), None);
                return exit::USAGE;
            }
        },
    };
    let mut roff = Vec::new();
    if let Err(e) = page(cmd).render(&mut roff) {
        exit::error(format!("man: cannot render the page: {e}"), None);
        return 1;
    }
    super::write_stdout(&roff, "the page")
}
