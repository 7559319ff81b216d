//! Exit statuses and the one-line error format shared by every command.
//!
//! Errors print as `sexton: <what failed>: <why>` on stderr, plus a hint
//! line where one helps. Usage errors exit 125 for `run`, `init` and
//! `check` (whose other statuses belong to the program) and 2 otherwise.

use std::process::ExitCode;

/// sexton itself failed (GNU timeout's 125).
pub const FAILED: i32 = 125;
/// The program exists but cannot be executed.
pub const NOT_EXECUTABLE: i32 = 126;
/// The program was not found.
pub const NOT_FOUND: i32 = 127;
/// Usage error of a command whose statuses are not the program's.
pub const USAGE: i32 = 2;

/// Prints `sexton: <msg>` (and an optional hint) on stderr.
pub fn error(msg: impl std::fmt::Display, hint: Option<&str>) {
    eprintln!("sexton: {msg}");
    if let Some(h) = hint {
        eprintln!("hint: {h}");
    }
}

/// Handles a clap error: help and version print normally and exit 0;
/// anything else becomes one line plus a hint, with the exit status of
/// the command it was meant for.
pub fn usage(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return ExitCode::from(
                if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    USAGE as u8
                } else {
                    0
                },
            );
        }
        _ => {}
    }
    // The command the error is about: the first argument when it names
    // one (an argument that is not valid UTF-8 cannot name a command).
    let sub = std::env::args_os()
        .nth(1)
        .and_then(|a| a.into_string().ok())
        .filter(|a| crate::COMMANDS.contains(&a.as_str()))
        .unwrap_or_default();
    let code = match sub.as_str() {
        "run" | "init" | "check" => FAILED,
        _ => USAGE,
    };
    let text = e.render().to_string();
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("invalid usage");
    let mut first = first.strip_prefix("error: ").unwrap_or(first).to_string();
    // "the following required arguments were not provided:" lists them on
    // the indented lines that follow: keep them on the one line.
    if first.ends_with(':') {
        let items: Vec<&str> = lines
            .clone()
            .take_while(|l| l.starts_with(' '))
            .map(str::trim)
            .collect();
        first = format!("{first} {}", items.join(", "));
    }
    // clap's "did you mean" ("tip: a similar argument exists: '--timeout'").
    let tip = text
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("tip: "))
        .map(|t| format!("{t}; "))
        .unwrap_or_default();
    let hint = if sub.is_empty() {
        format!("{tip}try 'sexton --help'")
    } else {
        format!("{tip}try 'sexton {sub} --help'")
    };
    error(format!("usage: {first}"), Some(&hint));
    ExitCode::from(code as u8)
}
