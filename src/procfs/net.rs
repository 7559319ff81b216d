//! Sockets decoded from `/proc/net/{tcp,tcp6,udp,udp6,unix}` (through the
//! `procfs` crate), keyed by inode so that a `socket:[N]` fd link finds
//! its endpoints. Each table is read once per scan. The tables describe
//! the network namespace of the reading process; a socket of another
//! namespace is simply not found and shows as `socket:[N]`.

use ::procfs::net::{TcpState, UdpState};
use std::collections::HashMap;
use std::net::SocketAddr;

/// The transport of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
    Unix,
}

/// One decoded socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Socket {
    pub inode: u64,
    pub proto: Proto,
    pub local: Option<SocketAddr>,
    pub remote: Option<SocketAddr>,
    /// The bound path of a unix socket (`@name` for the abstract namespace).
    pub path: Option<String>,
    /// Connected: an established (or closing) TCP connection, a UDP socket
    /// with a peer, a connected unix socket.
    pub connected: bool,
    /// A TCP socket in LISTEN state.
    pub listening: bool,
    /// The TCP state as `ss` names it (`ESTAB`, `LISTEN`...), if TCP.
    pub state: Option<&'static str>,
}

impl Socket {
    /// `tcp 127.0.0.1:50312 -> 127.0.0.1:3306`, `unix /run/x.sock`.
    pub fn endpoint(&self) -> String {
        match self.proto {
            Proto::Unix => match &self.path {
                Some(p) => format!("unix {p}"),
                None => format!("unix socket:[{}]", self.inode),
            },
            p => {
                let proto = if p == Proto::Tcp { "tcp" } else { "udp" };
                let l = self.local.map(|a| a.to_string()).unwrap_or_default();
                match self.remote.filter(|_| self.connected) {
                    Some(r) => format!("{proto} {l} -> {r}"),
                    None => format!("{proto} {l}"),
                }
            }
        }
    }
}

fn tcp_state(s: &TcpState) -> &'static str {
    match s {
        TcpState::Established => "ESTAB",
        TcpState::SynSent => "SYN-SENT",
        TcpState::SynRecv => "SYN-RECV",
        TcpState::FinWait1 => "FIN-WAIT-1",
        TcpState::FinWait2 => "FIN-WAIT-2",
        TcpState::TimeWait => "TIME-WAIT",
        TcpState::Close => "UNCONN",
        TcpState::CloseWait => "CLOSE-WAIT",
        TcpState::LastAck => "LAST-ACK",
        TcpState::Listen => "LISTEN",
        TcpState::Closing => "CLOSING",
        TcpState::NewSynRecv => "SYN-RECV",
    }
}

/// One of the socket tables of `/proc/net`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Tcp,
    Tcp6,
    Udp,
    Udp6,
    Unix,
}

impl Table {
    pub const ALL: [Table; 5] = [
        Table::Tcp,
        Table::Tcp6,
        Table::Udp,
        Table::Udp6,
        Table::Unix,
    ];

    /// The file the table is read from.
    pub fn path(self) -> &'static str {
        match self {
            Table::Tcp => "/proc/net/tcp",
            Table::Tcp6 => "/proc/net/tcp6",
            Table::Udp => "/proc/net/udp",
            Table::Udp6 => "/proc/net/udp6",
            Table::Unix => "/proc/net/unix",
        }
    }
}

/// Every socket of the reader's network namespace, by inode. A table
/// that cannot be read (no IPv6, say) is skipped.
pub fn sockets() -> HashMap<u64, Socket> {
    let mut out = HashMap::new();
    for table in Table::ALL {
        if let Ok(text) = std::fs::read(table.path()) {
            out.extend(parse_table(table, &text).into_iter().map(|s| (s.inode, s)));
        }
    }
    out
}

/// Decodes the text of one table (its header line included), as the
/// kernel writes it. A TCP or UDP table that does not parse gives no
/// socket; the unix table is read line by line (see [`parse_unix`]).
pub fn parse_table(table: Table, text: &[u8]) -> Vec<Socket> {
    use ::procfs::FromBufReadSI;
    use ::procfs::net::{TcpNetEntries, UdpNetEntries};
    let si = ::procfs::current_system_info();
    match table {
        Table::Tcp | Table::Tcp6 => TcpNetEntries::from_buf_read(text, si)
            .map(|t| t.0)
            .unwrap_or_default()
            .into_iter()
            .map(|e| Socket {
                inode: e.inode,
                proto: Proto::Tcp,
                local: Some(e.local_address),
                remote: Some(e.remote_address),
                path: None,
                connected: !matches!(
                    e.state,
                    TcpState::Listen | TcpState::Close | TcpState::TimeWait
                ),
                listening: e.state == TcpState::Listen,
                state: Some(tcp_state(&e.state)),
            })
            .collect(),
        Table::Udp | Table::Udp6 => UdpNetEntries::from_buf_read(text, si)
            .map(|t| t.0)
            .unwrap_or_default()
            .into_iter()
            .map(|e| Socket {
                inode: e.inode,
                proto: Proto::Udp,
                local: Some(e.local_address),
                remote: Some(e.remote_address),
                path: None,
                connected: e.state == UdpState::Established,
                listening: false,
                state: None,
            })
            .collect(),
        Table::Unix => parse_unix(text),
    }
}

/// `/proc/net/unix`, read here rather than by the `procfs` crate: the
/// kernel writes a socket's path as the raw bytes it was bound to, so a
/// path may hold spaces (the crate keeps the first word), bytes that
/// are not UTF-8 or a newline (the crate then fails the whole table,
/// and one such socket would hide every other). Each line is
/// `SLOT: REFS PROTO FLAGS TYPE STATE INODE[ PATH]`; the path is the
/// rest of the line, and a line that does not have that shape continues
/// the path of the line before it (the path held a newline).
pub fn parse_unix(text: &[u8]) -> Vec<Socket> {
    const CONNECTED: u8 = 3;
    let mut out: Vec<Socket> = Vec::new();
    // The path bytes of the last socket, kept until its last line.
    let mut path: Option<Vec<u8>> = None;
    let finish = |out: &mut Vec<Socket>, path: &mut Option<Vec<u8>>| {
        if let (Some(last), Some(p)) = (out.last_mut(), path.take()) {
            last.path = Some(String::from_utf8_lossy(&p).into_owned());
        }
    };
    // The file's own final newline ends the last line; a path ending
    // in a newline keeps its own.
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    let mut lines = text.split(|&b| b == b'\n');
    let _header = lines.next();
    for line in lines {
        match unix_line(line) {
            Some((inode, state, p)) => {
                finish(&mut out, &mut path);
                path = p.map(<[u8]>::to_vec);
                out.push(Socket {
                    inode,
                    proto: Proto::Unix,
                    local: None,
                    remote: None,
                    path: None,
                    connected: state == CONNECTED,
                    listening: false,
                    state: None,
                });
            }
            None => {
                // The rest of a path that held a newline.
                if let Some(p) = path.as_mut() {
                    p.push(b'\n');
                    p.extend_from_slice(line);
                }
            }
        }
    }
    finish(&mut out, &mut path);
    out
}

/// One socket line of `/proc/net/unix`: its inode, state and path.
fn unix_line(line: &[u8]) -> Option<(u64, u8, Option<&[u8]>)> {
    let colon = line.iter().position(|&b| b == b':')?;
    let slot = &line[..colon];
    if slot.is_empty() || !slot.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut rest = line[colon + 1..].strip_prefix(b" ")?;
    let mut field = |hex: bool| next_field(&mut rest, hex);
    // RefCount, Protocol, Flags, Type: hex, not needed.
    for _ in 0..4 {
        field(true)?;
    }
    let state = u8::from_str_radix(std::str::from_utf8(field(true)?).ok()?, 16).ok()?;
    let inode = std::str::from_utf8(field(false)?).ok()?.parse().ok()?;
    let path = match rest {
        [] => None,
        [b' ', p @ ..] => Some(p),
        _ => return None,
    };
    Some((inode, state, path))
}

/// The next field of `rest` (after any spaces), hex or decimal digits;
/// `rest` moves past it.
fn next_field<'a>(rest: &mut &'a [u8], hex: bool) -> Option<&'a [u8]> {
    let r: &'a [u8] = rest;
    let start = r.iter().position(|&b| b != b' ')?;
    let r = &r[start..];
    let end = r.iter().position(|&b| b == b' ').unwrap_or(r.len());
    let f = &r[..end];
    let ok = if hex {
        f.iter().all(u8::is_ascii_hexdigit)
    } else {
        f.iter().all(u8::is_ascii_digit)
    };
    if f.is_empty() || !ok {
        return None;
    }
    *rest = &r[end..];
    Some(f)
}

/// The other end of a TCP connection inside this machine: the socket
/// whose local and remote addresses are this one's, swapped.
pub fn tcp_peer<'a>(table: &'a HashMap<u64, Socket>, s: &Socket) -> Option<&'a Socket> {
    if s.proto != Proto::Tcp || !s.connected {
        return None;
    }
    table
        .values()
        .find(|o| o.proto == Proto::Tcp && o.local == s.remote && o.remote == s.local)
}
