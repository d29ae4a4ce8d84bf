//! Talking to a member over the tree channel, for `join-cluster`: the same handshake and frames
//! as mars.ko (`mars_core::session`), over a std TCP stream with deadlines.
//!
//! marsadm does this itself (rather than asking mars.ko) because a joining host is no member
//! yet: it fetches the whole tree into memory, checks it, and only then writes anything to /mars.

use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use mars_core::lamport::Stamp;
use mars_core::proto::{Channel, MessageType, Role, MAX_VERSION, MIN_VERSION};
use mars_core::proto_msg::Hello;
use mars_core::session::{self, cluster_id, FrameIo, SessionError};
use mars_core::tree_codec::decode_chunk;

/// An entry received from the peer, owning its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The key.
    pub key: String,
    /// The value (empty for a tombstone).
    pub value: String,
    /// Its stamp.
    pub stamp: Stamp,
    /// True for a tombstone.
    pub deleted: bool,
}

/// A transfer error of the std stream: its kind, for the session layer's `Copy` errors.
#[derive(Clone, Copy, Debug)]
pub struct IoKind(ErrorKind);

impl fmt::Display for IoKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => f.write_str("no answer in time"),
            ErrorKind::UnexpectedEof => f.write_str("the peer closed the connection"),
            kind => write!(f, "{kind}"),
        }
    }
}

/// A TCP stream whose reads and writes time out.
struct Stream(TcpStream);

impl FrameIo for Stream {
    type Error = IoKind;

    fn send(&mut self, bytes: &[u8]) -> Result<(), IoKind> {
        self.0.write_all(bytes).map_err(|e| IoKind(e.kind()))
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<(), IoKind> {
        self.0.read_exact(buf).map_err(|e| IoKind(e.kind()))
    }
}

/// The socket address of `peer` (an IPv4 or IPv6 address, or a host name) on `port`.
pub fn resolve(peer: &str, port: u16) -> Result<SocketAddr> {
    if let Ok(ip) = peer.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    (peer, port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {peer:?}: give the peer's IP address instead"))?
        .next()
        .ok_or_else(|| anyhow!("{peer:?} resolves to no address: give the peer's IP address instead"))
}

/// Random bytes from the kernel.
pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut out = [0u8; N];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut out))
        .context("cannot read random bytes from /dev/urandom")?;
    Ok(out)
}

/// What the peer is and holds.
pub struct PeerTree {
    /// The peer's host name, as it proved it.
    pub name: String,
    /// Every entry of its tree.
    pub entries: Vec<Fetched>,
}

/// Connects to `addr` as host `me` and authenticates with `secret`; each step must finish
/// within `timeout`. Returns the connection and the peer's proven name.
fn connect(addr: SocketAddr, me: &str, secret: &[u8], timeout: Duration) -> Result<(Stream, String)> {
    let stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| match e.kind() {
        ErrorKind::TimedOut | ErrorKind::WouldBlock => {
            anyhow!(
                "cannot reach {addr}: no answer within {} s (is the peer up, is the address right?)",
                timeout.as_secs()
            )
        }
        ErrorKind::ConnectionRefused => {
            anyhow!("cannot reach {addr}: connection refused (is mars.ko loaded there, and is that host a member?)")
        }
        _ => anyhow!("cannot reach {addr}: {e}"),
    })?;
    stream.set_read_timeout(Some(timeout)).context("cannot set a read timeout")?;
    stream.set_write_timeout(Some(timeout)).context("cannot set a write timeout")?;
    stream.set_nodelay(true).context("cannot set TCP_NODELAY")?;
    let mut io = Stream(stream);
    let own = Hello {
        min_version: MIN_VERSION,
        max_version: MAX_VERSION,
        cluster_id: cluster_id(secret),
        nonce: random_bytes()?,
        host_name: me,
    };
    let peer = session::handshake(&mut io, Role::Client, secret, &own, None).map_err(|e| handshake_error(addr, e))?;
    Ok((io, peer.name().to_string()))
}

/// The outcome of a handshake on one channel, for `check-peer`.
#[derive(Debug, serde::Serialize)]
pub struct ChannelCheck {
    /// The channel.
    pub channel: &'static str,
    /// Where.
    pub address: String,
    /// The peer's proven name, if the handshake succeeded.
    pub peer: Option<String>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// Tries the handshake with `peer` on every channel's port (`base_port` + offset).
pub fn check_channels(ip: IpAddr, base_port: u16, me: &str, secret: &[u8], timeout: Duration) -> Vec<ChannelCheck> {
    [Channel::Tree, Channel::Replication, Channel::Sync]
        .into_iter()
        .map(|channel| {
            let addr = SocketAddr::new(ip, base_port.saturating_add(channel.port_offset()));
            let (peer, error) = match connect(addr, me, secret, timeout) {
                Ok((_, name)) => (Some(name), None),
                Err(e) => (None, Some(e.to_string())),
            };
            ChannelCheck { channel: channel.name(), address: addr.to_string(), peer, error }
        })
        .collect()
}

/// Connects to `addr` as host `me`, authenticates with `secret` and fetches the peer's whole
/// tree. Each step must finish within `timeout`.
pub fn fetch_tree(addr: SocketAddr, me: &str, secret: &[u8], timeout: Duration) -> Result<PeerTree> {
    let (mut io, name) = connect(addr, me, secret, timeout)?;
    let mut scratch = [0u8; 64];
    session::send(&mut io, &mars_core::proto_msg::Message::TreeRequest { since_nanos: 0 }, 1, &mut scratch)
        .map_err(|e| anyhow!("{addr}: cannot ask for the tree: {e}"))?;
    let mut buf = vec![0u8; MessageType::TreeData.max_payload_len()];
    let mut entries = Vec::new();
    loop {
        let (header, message) = session::recv(&mut io, &mut buf, |k| k == MessageType::TreeData)
            .map_err(|e| anyhow!("{addr}: receiving the tree: {e}"))?;
        if header.request_id != 1 {
            bail!("{addr}: the reply carries request id {}, not 1", header.request_id);
        }
        let (last, chunk) = match message {
            mars_core::proto_msg::Message::TreeData { last, chunk, .. } => (last, chunk),
            mars_core::proto_msg::Message::Error { code, message } => {
                bail!("{addr} refused the tree: {code}: {message}")
            }
            other => bail!("{addr}: unexpected {} in reply to the tree request", other.kind()),
        };
        for entry in decode_chunk(chunk).map_err(|e| anyhow!("{addr}: bad tree chunk: {e}"))? {
            let e = entry.map_err(|e| anyhow!("{addr}: bad tree entry: {e}"))?;
            entries.push(Fetched { key: e.key.into(), value: e.value.into(), stamp: e.stamp, deleted: e.deleted });
        }
        if last {
            break;
        }
    }
    Ok(PeerTree { name, entries })
}

/// Connects to the replication channel at `addr` as host `me` and asks for the logfiles of
/// `resource`: returns the peer's newest own logfile as (sequence number, bytes it serves), or
/// `None` if it has none.
pub fn log_end(
    addr: SocketAddr,
    me: &str,
    secret: &[u8],
    resource: &str,
    timeout: Duration,
) -> Result<Option<(u32, u64)>> {
    use mars_core::proto_msg::Message;
    let (mut io, name) = connect(addr, me, secret, timeout)?;
    let mut scratch = [0u8; 256];
    session::send(&mut io, &Message::LogListRequest { resource }, 1, &mut scratch)
        .map_err(|e| anyhow!("{addr}: cannot ask for the logfiles of {resource}: {e}"))?;
    let mut buf = vec![0u8; MessageType::LogList.max_payload_len()];
    let (header, message) = session::recv(&mut io, &mut buf, |k| k == MessageType::LogList)
        .map_err(|e| anyhow!("{addr}: receiving the logfile list: {e}"))?;
    if header.request_id != 1 {
        bail!("{addr}: the reply carries request id {}, not 1", header.request_id);
    }
    let entries = match message {
        Message::LogList { entries, .. } => entries,
        Message::Error { code, message } => bail!("{addr} refused the logfile list: {code}: {message}"),
        other => bail!("{addr}: unexpected {} in reply to the logfile list", other.kind()),
    };
    let mut newest = None;
    for entry in entries.iter() {
        if let Ok((seq, origin)) = mars_core::names::parse_logfile_name(entry.name.as_bytes()) {
            if origin == name && newest.is_none_or(|(s, _)| seq > s) {
                newest = Some((seq, entry.size));
            }
        }
    }
    Ok(newest)
}

/// A failed handshake in words an admin can act on.
fn handshake_error(addr: SocketAddr, e: SessionError<IoKind>) -> anyhow::Error {
    use mars_core::proto::ErrorCode;
    match e {
        SessionError::Refused { code, .. } if code == ErrorCode::WRONG_CLUSTER => anyhow!(
            "wrong cluster secret: {addr} refused this host (the secret given is not that of the peer's cluster)"
        ),
        SessionError::Refused { code, .. } if code == ErrorCode::AUTH_FAILED => {
            anyhow!("wrong cluster secret: {addr} refused this host (authentication failed)")
        }
        SessionError::Proto(mars_core::proto::ProtoError::WrongCluster) => anyhow!(
            "wrong cluster secret: {addr} belongs to another cluster, or the secret given is not that of its cluster"
        ),
        SessionError::Proto(mars_core::proto::ProtoError::AuthFailed) => {
            anyhow!("{addr} could not prove it knows the cluster secret: refusing it")
        }
        e => anyhow!("handshake with {addr} failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_addresses_and_refuses_nonsense() {
        assert_eq!(resolve("10.0.0.1", 7777).unwrap(), "10.0.0.1:7777".parse().unwrap());
        assert_eq!(resolve("2001:db8::7", 7777).unwrap(), "[2001:db8::7]:7777".parse().unwrap());
        assert!(resolve("no-such-host.invalid", 7777).is_err());
    }

    #[test]
    fn an_unreachable_peer_fails_with_a_clear_message() {
        // A listener that is closed again: the port refuses connections.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let e = fetch_tree(addr, "node2", &[0; 32], Duration::from_secs(2)).err().unwrap();
        assert!(e.to_string().contains("connection refused"), "{e}");
    }
}
