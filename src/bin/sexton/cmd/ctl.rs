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
    #[command(flatten)]
    pub place: Where,
}

/// Services to act on (none: all of them).
#[derive(Debug, Args)]
pub struct NamesArgs {
    /// The services (default: every service).
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    #[command(flatten)]
    pub place: Where,
}

/// Commands that name only where the supervisor is.
#[derive(Debug, Args)]
pub struct PlaceArgs {
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
        print!("{}", render(&st));
    }
    0
}

/// The status as a table for people.
fn render(st: &Status) -> String {
    let mut out = format!("supervisor pid {} ({})\n", st.supervisor, st.config);
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
    let line = |cells: [&str; 6]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            l.push_str(&format!("{c:<width$}  ", width = w[i]));
        }
        l.trim_end().to_string() + "\n"
    };
    out.push_str(&line(head));
    for (r, s) in rows.iter().zip(&st.services) {
        out.push_str(&line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]]));
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
    match ask(&a.place, &Request::Down, REQUEST_WAIT) {
        Ok(r) => answered(r),
        Err(code) => code,
    }
}
