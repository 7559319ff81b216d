//! `sexton logs [-f] [-n N] [NAME...]`

use super::up::Where;
use crate::exit;
use clap::Args;
use sexton::supervise::logs::{self, Follower, Printer};
use std::io::Write;

/// Show the services' logs (the last lines; -f to follow them).
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep printing lines as they are written.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// How many of the last lines to show per service.
    #[arg(short = 'n', long, value_name = "N", default_value = "20")]
    pub lines: usize,
    /// The services (default: every service of the config).
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// Colour the service names, as `sexton up` does: auto (a terminal
    /// without NO_COLOR), always, never.
    #[arg(long, value_enum, value_name = "WHEN", default_value = "auto")]
    pub color: super::Color,
    #[command(flatten)]
    pub place: Where,
}

pub fn main(a: LogsArgs) -> i32 {
    let config = match a.place.load() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let dir = a.place.state().logs(config.log_dir.as_deref());
    let names: Vec<String> = if a.names.is_empty() {
        config.services.keys().cloned().collect()
    } else {
        for n in &a.names {
            if !config.services.contains_key(n) {
                exit::error(
                    format!("no service named '{n}' in {}", config.file.display()),
                    None,
                );
                return exit::USAGE;
            }
        }
        a.names.clone()
    };
    // One service: its lines as they are; several: prefixed by the name,
    // as `sexton up` prints them (in the same colours).
    let prefix = (names.len() > 1).then(|| Printer::new(&names, a.color.enabled()));
    let mut out = std::io::stdout().lock();
    let emit = |out: &mut std::io::StdoutLock, name: &str, line: &str| -> bool {
        let text = match &prefix {
            Some(p) => p.format(name, line.as_bytes()),
            None => format!("{line}\n").into_bytes(),
        };
        // A reader that went away (| head) ends the command quietly.
        out.write_all(&text).is_ok()
    };
    let mut followers = Vec::new();
    for n in &names {
        let result = if a.follow {
            Follower::start(&dir, n, a.lines).map(|(f, lines)| {
                followers.push((n.clone(), f));
                lines
            })
        } else {
            logs::tail(&dir, n, a.lines)
        };
        match result {
            Ok(lines) => {
                for l in lines {
                    if !emit(&mut out, n, &l) {
                        return 0;
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                exit::error(format!("cannot read the log of {n}: {e}"), None);
                return 1;
            }
        }
    }
    let _ = out.flush();
    if !a.follow {
        return 0;
    }
    loop {
        for (n, f) in &mut followers {
            match f.poll() {
                Ok(lines) => {
                    for l in lines {
                        if !emit(&mut out, n, &l) {
                            return 0;
                        }
                    }
                }
                Err(e) => {
                    exit::error(format!("cannot read the log of {n}: {e}"), None);
                    return 1;
                }
            }
        }
        if out.flush().is_err() {
            return 0;
        }
        std::thread::sleep(logs::FOLLOW_INTERVAL);
    }
}
