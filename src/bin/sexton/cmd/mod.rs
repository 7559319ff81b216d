//! One file per command, and what several commands share: the program
//! they launch, and colour for output meant for people.

use std::ffi::OsString;
use std::io::IsTerminal;

pub mod audit;
pub mod check;
pub mod completions;
pub mod ctl;
pub mod daemon;
pub mod demo;
pub mod init;
pub mod logs;
pub mod man;
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
    #[arg(
        required = true,
        trailing_var_arg = true,
        value_name = "PROGRAM",
        value_hint = clap::ValueHint::CommandWithArguments
    )]
    pub command: Vec<OsString>,
}

/// Writes `bytes` (`what`, for the error) to stdout: 0, or 1 with the
/// error on stderr. A reader that went away (`| head`) is not an error.
pub fn write_stdout(bytes: &[u8], what: &str) -> i32 {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Ok(()) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            crate::exit::error(format!("cannot write {what}: {e}"), None);
            1
        }
    }
}

/// `--color WHEN`: whether to colour output meant for people. `auto`
/// colours when the stream is a terminal and `NO_COLOR` is unset or
/// empty; `always` and `never` override both. JSON is never coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Color {
    #[default]
    Auto,
    Always,
    Never,
}

impl Color {
    /// Whether output on stdout is coloured.
    pub fn enabled(self) -> bool {
        self.enabled_on(&std::io::stdout())
    }

    /// Whether output on `stream` is coloured.
    pub fn enabled_on(self, stream: &impl IsTerminal) -> bool {
        match self {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && stream.is_terminal()
            }
        }
    }
}

/// ANSI SGR sequences.
pub mod sgr {
    pub const RESET: &str = "\x1b[0m";
    pub const BOLD: &str = "\x1b[1m";
    pub const RED: &str = "\x1b[31m";
    pub const BOLD_RED: &str = "\x1b[1;31m";
    pub const GREEN: &str = "\x1b[32m";
    pub const YELLOW: &str = "\x1b[33m";
    pub const MAGENTA: &str = "\x1b[35m";
    pub const CYAN: &str = "\x1b[36m";
}

/// `text` between `sgr` and a reset.
pub fn paint(text: &str, sgr: &str) -> String {
    format!("{sgr}{text}{}", sgr::RESET)
}

/// The colour of a finding's kind (`[shared_pipe]`) or of a process
/// state (`[state D]`) in a block's first line.
fn tag_color(tag: &str) -> &'static str {
    match tag {
        "zombie" | "orphan" | "leftover" | "state D" | "state Z" => sgr::RED,
        "blocked" => sgr::MAGENTA,
        _ => sgr::YELLOW,
    }
}

/// The first line of a finding block, coloured: the pid in bold, the
/// kind or state tag and the count of zombies or orphans in colour.
fn paint_head(line: &str) -> String {
    // `PID CMD  [kind]` (and `why`'s `PID CMD  [state S]`).
    if let Some(body) = line.strip_suffix(']')
        && let Some(i) = body.rfind("  [")
    {
        let (who, tag) = (&body[..i], &body[i + 3..]);
        return format!("{}  [{}]", paint_pid(who), paint(tag, tag_color(tag)));
    }
    // `PPID CMD  [state S]: N unreaped zombies`.
    if let Some(i) = line.rfind("]: ") {
        let (who, count) = line.split_at(i + 3);
        return format!("{}{}", paint_pid(who), paint(count, sgr::RED));
    }
    // `process group G (leader gone): N orphans`.
    if let Some(i) = line.rfind("): ") {
        let (group, count) = line.split_at(i + 3);
        return format!("{group}{}", paint(count, sgr::RED));
    }
    line.to_string()
}

/// `PID rest` with the pid in bold (unchanged if it starts otherwise).
fn paint_pid(s: &str) -> String {
    match s.split_once(' ') {
        Some((pid, rest)) if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{} {rest}", paint(pid, sgr::BOLD))
        }
        _ => s.to_string(),
    }
}

/// The human form of findings (`sexton::audit::render`, or `why`'s
/// block) in colour when `on`: each block's first line with its pid in
/// bold and its kind in colour, the `hint:` labels in cyan. Only escapes
/// are added: without them the text is the same.
pub fn paint_findings(text: String, on: bool) -> String {
    if !on {
        return text;
    }
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    for line in text.split_inclusive('\n') {
        let (body, nl) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        if let Some(rest) = body.strip_prefix("  hint:") {
            out.push_str("  ");
            out.push_str(&paint("hint:", sgr::CYAN));
            out.push_str(rest);
        } else if !body.is_empty() && !body.starts_with(' ') {
            out.push_str(&paint_head(body));
        } else {
            out.push_str(body);
        }
        out.push_str(nl);
    }
    out
}

/// The summary line of the audit commands (`no findings (...)`,
/// `2 findings (...)`) in colour when `on`: green when there is none,
/// bold red otherwise.
pub fn paint_summary(line: String, on: bool) -> String {
    if !on {
        return line;
    }
    let Some(i) = line.find(" (") else {
        return line;
    };
    let (what, rest) = line.split_at(i);
    let color = if what == "no findings" {
        sgr::GREEN
    } else {
        sgr::BOLD_RED
    };
    format!("{}{rest}", paint(what, color))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find("\x1b[") {
            out.push_str(&rest[..i]);
            let after = &rest[i + 2..];
            let end = after.find('m').expect("an SGR ends with m");
            rest = &after[end + 1..];
        }
        out + rest
    }

    const RENDERED: &str = "\
4242 python3 server.py  [state S]: 2 unreaped zombies
  zombies: 4243 4244
  the parent never waits
  hint: reap them

process group 77 (leader gone): 1 orphan
  78 sleep 300  [adopted by 1]

99 sh -c a  [b]  [shared_pipe]
  a pipe held by two
  99 sh  (fd 1 write end)
  hint: close it
";

    #[test]
    fn painting_only_adds_escapes() {
        let painted = paint_findings(RENDERED.to_string(), true);
        assert_ne!(painted, RENDERED);
        assert_eq!(strip(&painted), RENDERED);
        assert!(painted.contains(&paint("2 unreaped zombies", sgr::RED)));
        assert!(painted.contains(&paint("1 orphan", sgr::RED)));
        assert!(painted.contains(&format!(
            "{} sh -c a  [b]  [{}]",
            paint("99", sgr::BOLD),
            paint("shared_pipe", sgr::YELLOW)
        )));
        assert!(painted.contains(&format!("  {} close it", paint("hint:", sgr::CYAN))));
        // The lines under a block's first one are left alone.
        assert!(painted.contains("\n  78 sleep 300  [adopted by 1]\n"));
        assert_eq!(paint_findings(RENDERED.to_string(), false), RENDERED);
    }

    #[test]
    fn why_state_and_summary() {
        let why = "12 cat  [state D]\n  blocked\n";
        let painted = paint_findings(why.to_string(), true);
        assert!(painted.contains(&paint("state D", sgr::RED)));
        assert_eq!(strip(&painted), why);
        let none = "no findings (3 processes, 9 fds scanned in 1.0 ms)\n";
        let p = paint_summary(none.to_string(), true);
        assert!(p.starts_with(&paint("no findings", sgr::GREEN)));
        assert_eq!(strip(&p), none);
        let two = "2 findings (3 processes, 9 fds scanned in 1.0 ms)\n";
        let p = paint_summary(two.to_string(), true);
        assert!(p.starts_with(&paint("2 findings", sgr::BOLD_RED)));
        assert_eq!(paint_summary(two.to_string(), false), two);
    }

    #[test]
    fn color_never_and_always_ignore_the_stream() {
        assert!(Color::Always.enabled_on(&std::io::stdout()));
        assert!(!Color::Never.enabled_on(&std::io::stdout()));
    }
}
