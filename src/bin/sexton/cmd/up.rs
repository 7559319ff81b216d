//! `sexton up [-d] [-f FILE] [--state-dir DIR]`

use crate::exit;
use clap::Args;
use sexton::daemon::pidfile::{self, LockState, Pidfile};
use sexton::supervise::config::Config;
use sexton::supervise::logs::Printer;
use sexton::supervise::state::{self, Record, StateDir};
use sexton::supervise::supervisor::{Foreground, Supervisor};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Where the config and the supervisor's state are: shared by every
/// supervisor command.
#[derive(Debug, Args, Clone)]
pub struct Where {
    /// The config file (default: sexton.toml, else Procfile, in the current directory).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The state directory (default: .sexton beside the config; or $SEXTON_STATE_DIR).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

impl Where {
    /// The directory the config is in (or would be in).
    pub fn config_dir(&self) -> PathBuf {
        let dir = match &self.file {
            Some(f) => f
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(".")),
            None => PathBuf::from("."),
        };
        std::path::absolute(&dir).unwrap_or(dir)
    }

    pub fn state(&self) -> StateDir {
        StateDir::resolve(&self.config_dir(), self.state_dir.as_deref())
    }

    /// Loads the config, or prints its one-line error.
    pub fn load(&self) -> Result<Config, i32> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        Config::load(&cwd, self.file.as_deref()).map_err(|e| {
            exit::error(format!("error: {e}"), None);
            exit::USAGE
        })
    }
}

/// Run the services of sexton.toml (or a Procfile): in the foreground,
/// each output line prefixed `name | `, or detached with -d.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Detach (as `sexton daemon` does) and return once every service is
    /// up or has failed: exit 0 when all are up, 1 otherwise.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Colour the service names: auto (a terminal without NO_COLOR), always, never.
    #[arg(long, value_enum, value_name = "WHEN", default_value = "auto")]
    pub color: super::Color,
    #[command(flatten)]
    pub place: Where,
}

pub fn main(a: UpArgs) -> i32 {
    let config = match a.place.load() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let dir = a.place.state();
    if let Err(e) = dir.create() {
        exit::error(
            format!(
                "cannot create the state directory {}: {e}",
                dir.path.display()
            ),
            None,
        );
        return 1;
    }
    if let Ok(LockState::Locked { holder }) = pidfile::probe(&dir.pidfile()) {
        return already_running(&dir, holder);
    }
    if a.detach {
        detached(config, dir)
    } else {
        foreground(config, dir, a.color.enabled())
    }
}

fn already_running(dir: &StateDir, holder: i32) -> i32 {
    exit::error(
        format!(
            "a supervisor is already running for {} (pid {holder})",
            dir.path.display()
        ),
        Some("'sexton status' shows it; 'sexton down' stops it"),
    );
    1
}

/// Locks the supervisor's pidfile; `Err` carries the exit status after
/// the error was printed.
fn lock(dir: &StateDir) -> Result<Pidfile, i32> {
    match Pidfile::lock(&dir.pidfile()) {
        Ok(Ok(pf)) => Ok(pf),
        Ok(Err(holder)) => Err(already_running(dir, holder)),
        Err(e) => {
            exit::error(
                format!("cannot lock {}: {e}", dir.pidfile().display()),
                None,
            );
            Err(1)
        }
    }
}

/// Kills what a supervisor that crashed left (the state file says what),
/// before anything is started.
fn clean_up(dir: &StateDir) {
    if let Some(rec) = Record::load(&dir.record()) {
        for note in state::clean_up(&rec) {
            eprintln!("sexton: {note}");
        }
        let _ = std::fs::remove_file(dir.record());
    }
}

fn guard(worker_only: Vec<i32>) -> sexton::tree::guard::Guard {
    use nix::sys::signal::Signal;
    sexton::tree::guard::Guard {
        // USR1 and USR2 too: the worker reads and ignores them, where
        // their default action would end the guard, and with it every
        // service.
        forward: sexton::tree::signals::set_of(&[
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGQUIT,
            Signal::SIGHUP,
            Signal::SIGUSR1,
            Signal::SIGUSR2,
        ]),
        forward_terminal: true,
        worker_only,
        long_lived: true,
    }
}

fn foreground(config: Config, dir: StateDir, color: bool) -> i32 {
    let pf = match lock(&dir) {
        Ok(pf) => pf,
        Err(code) => return code,
    };
    clean_up(&dir);
    let me = std::process::id() as i32;
    // SAFETY: sexton is single-threaded here.
    let lifeline = match unsafe { guard(Vec::new()).split() } {
        Ok(fd) => fd,
        Err(e) => {
            exit::error(format!("cannot start the supervisor: {e}"), None);
            return 1;
        }
    };
    let names: Vec<&str> = config.services.keys().map(String::as_str).collect();
    let printer = Printer::new(names, color);
    let fg = Foreground {
        printer,
        dropped: 0,
    };
    let code = match Supervisor::new(config, dir, me, Some(lifeline), Some(fg)) {
        Ok(s) => s.run(),
        Err(e) => {
            exit::error(&e, None);
            1
        }
    };
    let _ = pf.remove();
    code
}

fn detached(config: Config, dir: StateDir) -> i32 {
    use sexton::daemon::detach;
    let stdio = match (detach::dev_null(), detach::dev_null(), detach::dev_null()) {
        (Ok(stdin), Ok(stdout), Ok(stderr)) => detach::Stdio {
            stdin,
            stdout,
            stderr,
        },
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            exit::error(format!("cannot open /dev/null: {e}"), None);
            return 1;
        }
    };
    // SAFETY: sexton is single-threaded here.
    match unsafe { detach::double_fork() } {
        Err(e) => {
            exit::error(format!("cannot detach: {e}"), None);
            1
        }
        Ok(detach::Forked::Caller { mut report }) => {
            let mut text = String::new();
            let _ = report.read_to_string(&mut text);
            let line = text.lines().next().unwrap_or("");
            match line.split_once(' ') {
                Some(("up", pid)) => {
                    println!("sexton: every service is up (supervisor pid {pid})");
                    0
                }
                Some(("failed", names)) => {
                    exit::error(
                        format!(
                            "not up: {}",
                            names.split(' ').collect::<Vec<_>>().join(", ")
                        ),
                        Some("'sexton status' and 'sexton logs NAME' say why"),
                    );
                    1
                }
                Some(("error", why)) => {
                    exit::error(why, None);
                    1
                }
                _ => {
                    exit::error("the supervisor ended before every service was up", None);
                    1
                }
            }
        }
        Ok(detach::Forked::Monitor { report }) => {
            use std::io::Write;
            let umask = nix::sys::stat::Mode::from_bits_truncate(0o022);
            let mut report = match detach::settle(Path::new("/"), umask, stdio, report) {
                Ok(r) => r,
                Err(_) => std::process::exit(1),
            };
            let pf = match Pidfile::lock(&dir.pidfile()) {
                Ok(Ok(pf)) => pf,
                Ok(Err(holder)) => {
                    let _ = writeln!(
                        report,
                        "error a supervisor is already running for {} (pid {holder})",
                        dir.path.display()
                    );
                    std::process::exit(1);
                }
                Err(e) => {
                    let _ = writeln!(report, "error cannot lock {}: {e}", dir.pidfile().display());
                    std::process::exit(1);
                }
            };
            clean_up(&dir);
            let me = std::process::id() as i32;
            let report_fd = std::os::fd::AsRawFd::as_raw_fd(&report);
            // SAFETY: the detached process is single-threaded.
            let lifeline = match unsafe { guard(vec![report_fd]).split() } {
                Ok(fd) => fd,
                Err(e) => {
                    let _ = writeln!(report, "error cannot start the supervisor: {e}");
                    std::process::exit(1);
                }
            };
            let code = match Supervisor::new(config, dir, me, Some(lifeline), None) {
                Ok(s) => s.report_to(report).run(),
                Err(e) => {
                    // The caller waits on the report: the reason goes
                    // there (stderr is /dev/null by now).
                    let _ = writeln!(report, "error {e}");
                    1
                }
            };
            let _ = pf.remove();
            std::process::exit(code)
        }
    }
}
