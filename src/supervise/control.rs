//! The supervisor's control socket and its line-based JSON protocol.
//!
//! A Unix stream socket, `control.sock` in the state directory (mode
//! 0600 in a 0700 directory). A client connects, writes one request as
//! one line of JSON, and reads one response line; then the connection is
//! closed. Requests:
//!
//! ```text
//! {"cmd":"status"}
//! {"cmd":"start","services":["web"]}      start (a failed service is cleared)
//! {"cmd":"stop","services":["web"]}       stop: stop signal, stop_timeout, SIGKILL
//! {"cmd":"restart","services":["web"]}
//! {"cmd":"reload"}                        re-read the config, apply the changes
//! {"cmd":"down"}                          stop everything, then the supervisor
//! ```
//!
//! An empty `services` list means every service. A response is
//! `{"ok":true,...}` (with `status` for `status`) or
//! `{"ok":false,"error":"..."}`. `start`, `stop`, `restart` and `down`
//! answer once the work is done (the services are up or have failed,
//! are stopped), as `systemctl` does, so a script can chain them.
//!
//! The peer's credentials (`SO_PEERCRED`) are checked on every
//! connection: only the supervisor's own user and root may command it;
//! anybody else gets `{"ok":false,"error":"permission denied"}`.
//!
//! The socket path can be longer than a Unix socket address allows (108
//! bytes), so both ends name it through the state directory opened as a
//! file descriptor: `/proc/self/fd/N/control.sock`.

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use serde::{Deserialize, Serialize};
use std::io::{self, BufRead, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

/// One request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum Request {
    Status,
    Start {
        #[serde(default)]
        services: Vec<String>,
    },
    Stop {
        #[serde(default)]
        services: Vec<String>,
    },
    Restart {
        #[serde(default)]
        services: Vec<String>,
    },
    Reload,
    Down,
}

/// One service as `status` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    /// `starting`, `running`, `ready`, `backoff`, `stopping`, `stopped`,
    /// `exited` or `failed`.
    pub state: String,
    pub pid: Option<i32>,
    /// Seconds since the current run started, while there is one.
    pub uptime_s: Option<f64>,
    pub restarts: u32,
    /// How the last run ended: `{"code": 3}` or `{"signal": "TERM"}`.
    pub last_exit: Option<LastExit>,
    /// Why the service is `failed` or `stopped` when it was not asked to
    /// be (a dependency failed, the crash-loop limit).
    pub reason: Option<String>,
    /// Last text the service gave with sd_notify's `STATUS=`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub status_text: Option<String>,
    /// A problem with the service's log (a full disk).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub log_error: Option<String>,
}

/// How a run of a service ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LastExit {
    Code(i32),
    Signal(String),
}

/// The whole `status` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The supervisor's pid (the one holding the pidfile's lock).
    pub supervisor: i32,
    pub config: String,
    pub state_dir: String,
    /// Why the state file (`state.json`) cannot be written (a full
    /// disk): the services run on, but a supervisor killed meanwhile
    /// leaves the next `up` an older record to clean up after.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub state_error: Option<String>,
    pub services: Vec<ServiceStatus>,
}

/// One response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub status: Option<Status>,
    /// What was done, for people (`reload`: which services changed).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub message: Option<String>,
}

impl Response {
    pub fn ok(message: Option<String>) -> Response {
        Response {
            ok: true,
            error: None,
            status: None,
            message,
        }
    }

    pub fn error(msg: impl Into<String>) -> Response {
        Response {
            ok: false,
            error: Some(msg.into()),
            status: None,
            message: None,
        }
    }
}

/// Errors of a client talking to a supervisor.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no supervisor is running for {dir} (start one with 'sexton up')")]
    NotRunning { dir: String },
    #[error("cannot reach the supervisor at {path}: {source}")]
    Connect {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("the supervisor did not answer: {0}")]
    Io(#[source] io::Error),
    #[error("the supervisor's answer does not parse: {0}")]
    Protocol(String),
}

/// The state directory open as a descriptor, and the short path of a
/// file in it through `/proc/self/fd`.
fn through_fd(dir: &Path, name: &str) -> io::Result<(OwnedFd, String)> {
    let fd: OwnedFd = std::fs::File::open(dir)?.into();
    let path = format!("/proc/self/fd/{}/{name}", fd.as_raw_fd());
    Ok((fd, path))
}

/// The listening side, owned by the supervisor's event loop.
#[derive(Debug)]
pub struct Server {
    listener: UnixListener,
    clients: Vec<Client>,
    uid: u32,
    next: u64,
}

/// A connection whose request is being read, or whose answer waits.
#[derive(Debug)]
struct Client {
    id: u64,
    stream: UnixStream,
    buf: Vec<u8>,
    /// The request was read; the connection waits for its answer.
    waiting: bool,
    /// The peer may not command this supervisor: its request is read and
    /// answered with a refusal.
    refused: bool,
}

/// An accepted request, to be answered with [`Server::respond`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientId(pub u64);

/// Longest request line accepted.
const MAX_REQUEST: usize = 64 * 1024;

impl Server {
    /// Binds `control.sock` in `dir` (a stale socket file left by a dead
    /// supervisor is replaced: the caller holds the pidfile's lock, so
    /// no live supervisor owns it), mode 0600, non-blocking.
    pub fn bind(dir: &Path) -> io::Result<Server> {
        use std::os::unix::fs::PermissionsExt;
        let (_dirfd, path) = through_fd(dir, "control.sock")?;
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        listener.set_nonblocking(true)?;
        Ok(Server {
            listener,
            clients: Vec::new(),
            uid: nix::unistd::geteuid().as_raw(),
            next: 0,
        })
    }

    /// The descriptors to poll: the listener and every connection whose
    /// request is still being read (for input), and every connection
    /// waiting for its answer (for nothing: poll(2) still reports its
    /// hang-up, so a client that went away is noticed).
    pub fn poll_fds(&self) -> Vec<(RawFd, PollFlags)> {
        std::iter::once((self.listener.as_raw_fd(), PollFlags::POLLIN))
            .chain(self.clients.iter().map(|c| {
                let ev = if c.waiting {
                    PollFlags::empty()
                } else {
                    PollFlags::POLLIN
                };
                (c.stream.as_raw_fd(), ev)
            }))
            .collect()
    }

    /// True while the client of request `id` is connected and waits for
    /// its answer.
    pub fn connected(&self, id: ClientId) -> bool {
        self.clients.iter().any(|c| c.id == id.0)
    }

    /// Accepts new connections and reads what came; returns the requests
    /// that are complete. A peer that is neither this user nor root gets
    /// a refusal and is dropped; a malformed request gets an error.
    pub fn on_ready(&mut self) -> Vec<(ClientId, Request)> {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    let allowed = peer_uid(&stream).is_some_and(|u| u == 0 || u == self.uid);
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    self.next += 1;
                    self.clients.push(Client {
                        id: self.next,
                        stream,
                        buf: Vec::new(),
                        waiting: false,
                        refused: !allowed,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        let mut done = Vec::new();
        let mut drop_ids = Vec::new();
        // A client that hung up while waiting for its answer (Ctrl-C on
        // `sexton start` of a service that never comes up): its
        // connection is closed now, not when the answer is ready.
        for c in self.clients.iter().filter(|c| c.waiting) {
            if hung_up(&c.stream) {
                drop_ids.push(c.id);
            }
        }
        for c in self.clients.iter_mut().filter(|c| !c.waiting) {
            let mut chunk = [0u8; 4096];
            loop {
                match io::Read::read(&mut c.stream, &mut chunk) {
                    Ok(0) => {
                        drop_ids.push(c.id);
                        break;
                    }
                    Ok(n) => c.buf.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        drop_ids.push(c.id);
                        break;
                    }
                }
            }
            if let Some(end) = c.buf.iter().position(|&b| b == b'\n') {
                if c.refused {
                    let _ = send(&c.stream, &Response::error("permission denied"));
                    drop_ids.push(c.id);
                    continue;
                }
                match serde_json::from_slice::<Request>(&c.buf[..end]) {
                    Ok(r) => {
                        c.waiting = true;
                        done.push((ClientId(c.id), r));
                    }
                    Err(e) => {
                        let _ = send(&c.stream, &Response::error(format!("bad request: {e}")));
                        drop_ids.push(c.id);
                    }
                }
            } else if c.buf.len() > MAX_REQUEST {
                let _ = send(&c.stream, &Response::error("request too long"));
                drop_ids.push(c.id);
            }
        }
        self.clients.retain(|c| !drop_ids.contains(&c.id));
        done
    }

    /// Answers a request and closes its connection. The answer is one
    /// line written at once; a client that does not read it is dropped
    /// rather than waited for.
    pub fn respond(&mut self, id: ClientId, response: &Response) {
        if let Some(i) = self.clients.iter().position(|c| c.id == id.0) {
            let c = self.clients.remove(i);
            let _ = send(&c.stream, response);
        }
    }
}

/// True when the other end of `stream` has closed it (`POLLHUP`, or an
/// error), from a poll(2) that does not wait.
fn hung_up(stream: &UnixStream) -> bool {
    let mut fds = [PollFd::new(stream.as_fd(), PollFlags::empty())];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(n) if n > 0 => fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR)),
        _ => false,
    }
}

/// Writes one response line.
fn send(mut stream: &UnixStream, response: &Response) -> io::Result<()> {
    let mut line = serde_json::to_vec(response).map_err(io::Error::other)?;
    line.push(b'\n');
    // A short answer to a fresh connection fits its socket buffer; a
    // client that stopped reading loses it instead of stalling the loop.
    stream.write_all(&line)
}

/// The uid of the process at the other end (`SO_PEERCRED`).
fn peer_uid(stream: &UnixStream) -> Option<u32> {
    nix::sys::socket::getsockopt(&stream.as_fd(), nix::sys::socket::sockopt::PeerCredentials)
        .ok()
        .map(|c| c.uid())
}

/// Sends one request to the supervisor whose state directory is `dir`
/// and waits up to `limit` for the answer (EINTR is retried by std).
pub fn request(dir: &Path, req: &Request, limit: Duration) -> Result<Response, ControlError> {
    let not_running = || ControlError::NotRunning {
        dir: dir.display().to_string(),
    };
    let (_dirfd, path) = through_fd(dir, "control.sock").map_err(|_| not_running())?;
    let stream = match UnixStream::connect(&path) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Err(not_running());
        }
        Err(e) => {
            return Err(ControlError::Connect {
                path: dir.join("control.sock").display().to_string(),
                source: e,
            });
        }
    };
    stream
        .set_read_timeout(Some(limit))
        .map_err(ControlError::Io)?;
    let mut line = serde_json::to_vec(req).map_err(|e| ControlError::Protocol(e.to_string()))?;
    line.push(b'\n');
    (&stream).write_all(&line).map_err(ControlError::Io)?;
    let mut answer = String::new();
    io::BufReader::new(&stream)
        .read_line(&mut answer)
        .map_err(ControlError::Io)?;
    if answer.is_empty() {
        return Err(ControlError::Io(io::Error::from(
            io::ErrorKind::UnexpectedEof,
        )));
    }
    serde_json::from_str(&answer).map_err(|e| ControlError::Protocol(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_as_one_line_each() {
        for r in [
            Request::Status,
            Request::Start {
                services: vec!["web".into()],
            },
            Request::Stop { services: vec![] },
            Request::Restart {
                services: vec!["a".into(), "b".into()],
            },
            Request::Reload,
            Request::Down,
        ] {
            let line = serde_json::to_string(&r).unwrap();
            assert!(!line.contains('\n'));
            assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), r);
        }
        let r: Request = serde_json::from_str(r#"{"cmd":"stop"}"#).unwrap();
        assert_eq!(r, Request::Stop { services: vec![] });
    }
}
