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

/// `/proc/net/unix`, through the `procfs` crate.
pub fn parse_unix(text: &[u8]) -> Vec<Socket> {
    use ::procfs::FromBufRead;
    use ::procfs::net::{UnixNetEntries, UnixState};
    UnixNetEntries::from_buf_read(text)
        .map(|t| t.0)
        .unwrap_or_default()
        .into_iter()
        .map(|e| Socket {
            inode: e.inode,
            proto: Proto::Unix,
            local: None,
            remote: None,
            path: e.path.map(|p| p.to_string_lossy().into_owned()),
            connected: e.state == UnixState::CONNECTED,
            listening: false,
            state: None,
        })
        .collect()
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
