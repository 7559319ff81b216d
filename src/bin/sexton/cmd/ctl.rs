//! `sexton status|start|stop|restart|reload|down`: commands to a running
//! supervisor, through its control socket.

use super::up::Where;
use crate::exit;
use clap::Args;
use sexton::supervise::control::{self, LastExit, Request, Response, Status};
use sexton::supervise::supervisor::REQUEST_WAIT;
use std::time::Duration;

/// Show the supervisor's pid and each service's state.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
    /// Colour the states: auto (a terminal without NO_COLOR), always, never.
    #[arg(long, value_enum, value_name = "WHEN", default_value = "auto")]
    pub color: super::Color,
    #[command(flatten)]
    pub place: Where,
}

/// Services to act on (none: all of them).
#[derive(Debug, Args)]
pub struct NamesArgs {
    /// The services (default: every service).
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// Taken by every command: auto, always, never. The supervisor's
    /// answer is one plain line, never coloured.
    #[arg(long, value_enum, value_name = "WHEN", default_value = "auto")]
    pub color: super::Color,
    #[command(flatten)]
    pub place: Where,
}

/// Commands that name only where the supervisor is.
#[derive(Debug, Args)]
pub struct PlaceArgs {
    /// Taken by every command: auto, always, never. The supervisor's
    /// answer is one plain line, never coloured.
    #[arg(long, value_enum, value_name = "WHEN", default_value = "auto")]
    pub color: super::Color,
    #[command(flatten)]
    pub place: Where,
}

/// Sends `req` and returns the answer, or prints why there is none.
fn ask(place: &Where, req: &Request, wait: Duration) -> Result<Response, i32> {
    control::request(&place.state().path, req, wait).map_err(|e| {
        exit::error(&e, None);
        1
    })
}

/// 0 when the answer is ok, else its error on stderr and 1.
fn answered(resp: Response) -> i32 {
    if resp.ok {
        if let Some(m) = resp.message {
            println!("{m}");
        }
        0
    } else {
        exit::error(resp.error.unwrap_or_else(|| "failed".into()), None);
        1
    }
}

pub fn status(a: StatusArgs) -> i32 {
    let resp = match ask(&a.place, &Request::Status, Duration::from_secs(10)) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let Some(st) = resp.status.clone() else {
        return answered(resp);
    };
    if a.json {
        println!("{}", serde_json::to_string(&st).unwrap_or_default());
    } else {
        print!("{}", render(&st, a.color.enabled()));
    }
    0
}

/// The colour of a service state in the status table.
fn state_color(state: &str) -> Option<&'static str> {
    use super::sgr;
    match state {
        "running" | "ready" => Some(sgr::GREEN),
        "starting" | "stopping" | "backoff" => Some(sgr::YELLOW),
        "failed" => Some(sgr::RED),
        _ => None,
    }
}

/// The status as a table for people; with `color`, the heading in bold
/// and the states in colour (green up, yellow on the way, red failed).
fn render(st: &Status, color: bool) -> String {
    let mut out = format!("supervisor pid {} ({})\n", st.supervisor, st.config);
    if let Some(e) = &st.state_error {
        out.push_str(&format!("state: {e}\n"));
    }
    let rows: Vec<[String; 6]> = st
        .services
        .iter()
        .map(|s| {
            [
                s.name.clone(),
                s.state.clone(),
                s.pid.map_or("-".into(), |p| p.to_string()),
                s.uptime_s.map_or("-".into(), |u| {
                    humantime::format_duration(Duration::from_secs(u as u64)).to_string()
                }),
                s.restarts.to_string(),
                match &s.last_exit {
                    None => "-".into(),
                    Some(LastExit::Code(c)) => format!("exit {c}"),
                    Some(LastExit::Signal(n)) => format!("signal {n}"),
                },
            ]
        })
        .collect();
    let head = ["NAME", "STATE", "PID", "UPTIME", "RESTARTS", "LAST EXIT"];
    let mut w = head.map(str::len);
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    // Padded as plain text; the colour goes around the cell's text only.
    let line = |cells: [&str; 6], paint: &dyn Fn(usize, &str) -> Option<&'static str>| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = " ".repeat(w[i].saturating_sub(c.chars().count()) + 2);
            match paint(i, c).filter(|_| color) {
                Some(sgr) => l.push_str(&format!("{}{pad}", super::paint(c, sgr))),
                None => l.push_str(&format!("{c}{pad}")),
            }
        }
        l.trim_end().to_string() + "\n"
    };
    out.push_str(&line(head, &|_, _| Some(super::sgr::BOLD)));
    for (r, s) in rows.iter().zip(&st.services) {
        let cells = [&*r[0], &r[1], &r[2], &r[3], &r[4], &r[5]];
        out.push_str(&line(cells, &|i, c| {
            if i == 1 { state_color(c) } else { None }
        }));
        if let Some(why) = &s.reason {
            out.push_str(&format!("  {}: {why}\n", s.name));
        }
        if let Some(e) = &s.log_error {
            out.push_str(&format!("  {}: log: {e}\n", s.name));
        }
    }
    out
}

pub fn start(a: NamesArgs) -> i32 {
    names_request(a, |services| Request::Start { services })
}

pub fn stop(a: NamesArgs) -> i32 {
    names_request(a, |services| Request::Stop { services })
}

pub fn restart(a: NamesArgs) -> i32 {
    names_request(a, |services| Request::Restart { services })
}

fn names_request(a: NamesArgs, make: impl FnOnce(Vec<String>) -> Request) -> i32 {
    match ask(&a.place, &make(a.names), REQUEST_WAIT) {
        Ok(r) => answered(r),
        Err(code) => code,
    }
}

pub fn reload(a: PlaceArgs) -> i32 {
    match ask(&a.place, &Request::Reload, Duration::from_secs(60)) {
        Ok(r) => answered(r),
        Err(code) => code,
    }
}

pub fn down(a: PlaceArgs) -> i32 {
    let code = match ask(&a.place, &Request::Down, REQUEST_WAIT) {
        Ok(r) => answered(r),
        Err(code) => code,
    };
    if code != 0 {
        return code;
    }
    // The supervisor answers once every service is down, then exits:
    // return once it has (its pidfile's lock released), so that an `up`
    // right after this one starts a new supervisor instead of finding the
    // old one still there.
    let pidfile = a.place.state().pidfile();
    let deadline = std::time::Instant::now() + DOWN_EXIT_WAIT;
    loop {
        match sexton::daemon::pidfile::probe(&pidfile) {
            Ok(sexton::daemon::LockState::Locked { holder }) => {
                if std::time::Instant::now() >= deadline {
                    exit::error(
                        format!(
                            "the supervisor (pid {holder}) stopped its services but did not exit within {}",
                            humantime::format_duration(DOWN_EXIT_WAIT)
                        ),
                        None,
                    );
                    return 1;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            _ => return 0,
        }
    }
}

/// How long `down` waits for a supervisor that answered to exit.
const DOWN_EXIT_WAIT: Duration = Duration::from_secs(10);
