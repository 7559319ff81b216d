//! `sexton daemon [OPTIONS] -- PROGRAM [ARGS...]`,
//! `sexton daemon --stop --pidfile FILE [--timeout DUR]`,
//! `sexton daemon --status --pidfile FILE`

use crate::cmd::run::{TrackingArg, parse_duration};
use crate::exit;
use clap::Args;
use sexton::daemon::{self, Daemon, DaemonError, Respawn, Status, Stopped};
use sexton::supervise::config::Ready;
use sexton::tree::Tracking;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// Start PROGRAM as a proper daemon watched by a small monitor that locks
/// the pidfile; or stop it, or tell whether it runs.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Lock FILE for the daemon's life and keep PROGRAM's pid in it. FILE
    /// must be missing, empty or a stale pidfile (just a pid) of your own;
    /// anything else is refused and left as it is.
    #[arg(long, value_name = "FILE", required_if_eq_any = [("stop", "true"), ("status", "true")])]
    pub pidfile: Option<PathBuf>,
    /// Append PROGRAM's stdout to FILE (default /dev/null).
    #[arg(long, value_name = "FILE", conflicts_with = "log")]
    pub stdout: Option<PathBuf>,
    /// Append PROGRAM's stderr, and the monitor's notes, to FILE (default /dev/null).
    #[arg(long, value_name = "FILE", conflicts_with = "log")]
    pub stderr: Option<PathBuf>,
    /// Append both of PROGRAM's streams, and the monitor's notes, to FILE.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Working directory of the daemon.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub chdir: PathBuf,
    /// File mode creation mask of the daemon, in octal.
    #[arg(long, value_name = "MODE", default_value = "022", value_parser = parse_umask)]
    pub umask: u32,
    /// Restart PROGRAM when it dies (backoff from 1s doubling to 60s; 5
    /// starts within 60s that die again make the monitor give up).
    #[arg(long)]
    pub respawn: bool,
    /// With --respawn: first wait before a restart [default: 1s].
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub respawn_backoff: Option<Duration>,
    /// With --respawn: longest wait before a restart [default: 60s].
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub respawn_max: Option<Duration>,
    /// With --respawn: starts within the window after which a death ends
    /// the monitor [default: 5].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub respawn_limit: Option<u32>,
    /// With --respawn: the crash-loop window; a run this long also resets
    /// the backoff [default: 60s].
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub respawn_interval: Option<Duration>,
    /// How the monitor follows the daemon's tree.
    #[arg(long, value_enum, default_value = "auto")]
    pub tracking: TrackingArg,
    /// Return only once PROGRAM is ready: `notify` (it sends READY=1 to
    /// $NOTIFY_SOCKET), `tcp:HOST:PORT` (a connection succeeds),
    /// `log:REGEX` (a line of its output matches; the output then passes
    /// through the monitor on its way to the files), `cmd:COMMAND`
    /// (COMMAND, split like a shell does, exits 0; retried). Without it,
    /// PROGRAM must live 200ms. A start that fails is reported (exit 1)
    /// and leaves nothing running.
    #[arg(long, value_name = "CHECK", value_parser = parse_ready)]
    pub ready: Option<Ready>,
    /// With --ready: how long to wait; then the start fails and
    /// PROGRAM's tree is stopped [default: 60s].
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub ready_timeout: Option<Duration>,
    /// Stop the daemon holding --pidfile: SIGTERM to its whole tree,
    /// SIGKILL after --timeout, wait until it is gone.
    #[arg(long, conflicts_with_all = ["status", "command"])]
    pub stop: bool,
    /// Exit 0 if the daemon holding --pidfile runs, 1 if the pidfile is
    /// stale, 3 if there is none (LSB).
    #[arg(long, conflicts_with = "command")]
    pub status: bool,
    /// With --stop: how long after SIGTERM to SIGKILL what is left [default: 10s].
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Colour the state --status and --stop print: auto (a terminal
    /// without NO_COLOR), always, never.
    #[arg(long, value_enum, value_name = "WHEN", default_value = "auto")]
    pub color: super::Color,
    /// The program and its arguments.
    #[arg(
        required_unless_present_any = ["stop", "status"],
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "PROGRAM",
        value_hint = clap::ValueHint::CommandWithArguments
    )]
    pub command: Vec<OsString>,
}

fn parse_ready(s: &str) -> Result<Ready, String> {
    sexton::supervise::ready::parse_spec(s)
}

fn parse_umask(s: &str) -> Result<u32, String> {
    match u32::from_str_radix(s, 8) {
        Ok(m) if m <= 0o777 => Ok(m),
        _ => Err(format!("invalid umask '{s}' (use octal, e.g. 022)")),
    }
}

/// Option combinations clap cannot express (a `--flag` always counts
/// as present for its `requires`).
fn check(a: &DaemonArgs) -> Result<(), &'static str> {
    let knobs = a.respawn_backoff.is_some()
        || a.respawn_max.is_some()
        || a.respawn_limit.is_some()
        || a.respawn_interval.is_some();
    if knobs && !a.respawn {
        return Err(
            "--respawn-backoff, --respawn-max, --respawn-limit and --respawn-interval need --respawn",
        );
    }
    if a.timeout.is_some() && !a.stop {
        return Err("--timeout goes with --stop");
    }
    if a.ready_timeout.is_some() && a.ready.is_none() {
        return Err("--ready-timeout goes with --ready");
    }
    if (a.stop || a.status)
        && (a.stdout.is_some()
            || a.stderr.is_some()
            || a.log.is_some()
            || a.respawn
            || a.ready.is_some())
    {
        return Err("--stop and --status take only --pidfile (and --timeout, --color)");
    }
    Ok(())
}

pub fn main(a: DaemonArgs) -> i32 {
    if let Err(msg) = check(&a) {
        exit::error(format!("usage: {msg}"), Some("try 'sexton daemon --help'"));
        return exit::USAGE;
    }
    if a.stop {
        return stop(&a);
    }
    if a.status {
        return status(&a);
    }
    start(a)
}

fn start(a: DaemonArgs) -> i32 {
    let mut d = Daemon::new(a.command)
        .chdir(a.chdir)
        .umask(a.umask)
        .tracking(match a.tracking {
            TrackingArg::Auto => Tracking::Auto,
            TrackingArg::Cgroup => Tracking::Cgroup,
            TrackingArg::Subreaper => Tracking::Subreaper,
        });
    if let Some(p) = a.pidfile {
        d = d.pidfile(p);
    }
    if let Some(r) = a.ready {
        d = d.ready(r);
    }
    if let Some(t) = a.ready_timeout {
        d = d.ready_timeout(t);
    }
    if let Some(p) = &a.log {
        d = d.stdout(p).stderr(p);
    }
    if let Some(p) = a.stdout {
        d = d.stdout(p);
    }
    if let Some(p) = a.stderr {
        d = d.stderr(p);
    }
    if a.respawn {
        let dflt = Respawn::default();
        let backoff = a.respawn_backoff.unwrap_or(dflt.backoff);
        d = d.respawn(Respawn {
            backoff,
            backoff_max: a.respawn_max.unwrap_or(dflt.backoff_max).max(backoff),
            limit: a.respawn_limit.unwrap_or(dflt.limit),
            interval: a.respawn_interval.unwrap_or(dflt.interval),
            healthy_after: a.respawn_interval.unwrap_or(dflt.interval),
        });
    }
    // SAFETY: sexton is single-threaded here (clap spawns no thread).
    match unsafe { d.start() } {
        Ok(_) => 0,
        Err(e) => {
            let code = match &e {
                DaemonError::Start { code, .. } => *code,
                _ => 1,
            };
            let hint = match &e {
                DaemonError::Locked { .. } => {
                    Some("stop it first with 'sexton daemon --stop --pidfile FILE'")
                }
                _ => None,
            };
            exit::error(format!("daemon: {e}"), hint);
            code
        }
    }
}

fn pidfile(a: &DaemonArgs) -> PathBuf {
    // clap requires --pidfile with --stop and --status.
    a.pidfile.clone().unwrap_or_default()
}

/// Prints a state (`running`, `dead`, `not running`) and what follows
/// it, the state in colour with `color`: green running, red dead,
/// yellow not running.
fn say(state: &str, rest: &str, color: bool) {
    use super::sgr;
    let c = match state {
        "running" => sgr::GREEN,
        "dead" => sgr::RED,
        _ => sgr::YELLOW,
    };
    if color {
        println!("{}{rest}", super::paint(state, c));
    } else {
        println!("{state}{rest}");
    }
}

fn status(a: &DaemonArgs) -> i32 {
    let path = pidfile(a);
    let on = a.color.enabled();
    match daemon::status(&path) {
        Ok(s) => {
            match s {
                Status::Running {
                    monitor,
                    pid: Some(pid),
                } => say("running", &format!(": pid {pid} (monitor {monitor})"), on),
                Status::Running { monitor, pid: None } => say(
                    "running",
                    &format!(": waiting to restart (monitor {monitor})"),
                    on,
                ),
                Status::Stale { pid: Some(pid) } => say(
                    "dead",
                    &format!(
                        ": stale pidfile {} names pid {pid}, which is not the daemon",
                        path.display()
                    ),
                    on,
                ),
                Status::Stale { pid: None } => {
                    say("dead", &format!(": stale pidfile {}", path.display()), on)
                }
                Status::NotRunning => say("not running", "", on),
            }
            s.lsb_code()
        }
        Err(e) => {
            exit::error(format!("daemon: {e}"), None);
            // LSB: 4 is "status unknown".
            4
        }
    }
}

fn stop(a: &DaemonArgs) -> i32 {
    let timeout = a.timeout.unwrap_or(daemon::monitor::DEFAULT_STOP_TIMEOUT);
    let on = a.color.enabled();
    match daemon::stop(&pidfile(a), timeout) {
        Ok(Stopped::Stopped { .. }) => 0,
        Ok(Stopped::NotRunning(s)) => {
            match s {
                Status::Stale { .. } => say(
                    "not running",
                    &format!(
                        " (stale pidfile {}; the pid in it was left alone)",
                        pidfile(a).display()
                    ),
                    on,
                ),
                _ => say("not running", "", on),
            }
            0
        }
        Err(e) => {
            exit::error(format!("daemon: {e}"), None);
            1
        }
    }
}
