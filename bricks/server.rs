// SPDX-License-Identifier: GPL-2.0

//! The server brick: this member's listener on one channel port (docs/protocol.md) and one
//! thread per accepted connection.
//!
//! Nothing is served before the handshake completes, and a handshake must finish within
//! [`HANDSHAKE_TIMEOUT_MS`]. Connections are bounded per peer address and in all, so a peer
//! cannot make the server allocate beyond [`MAX_CONNECTIONS`] sessions of fixed size. Every
//! frame goes through the lib/ decoder (`mars_core::session::recv`), which refuses it by its
//! header alone if its type is not a request of this channel or its payload is longer than a
//! request can be; a bad frame gets its error reply and the connection closes. Requests are
//! dispatched by channel ([`serve`]): the tree channel now, replication and sync later.

use core::sync::atomic::{AtomicBool, Ordering};

use kernel::prelude::*;
use kernel::sync::{Arc, Mutex};
use kernel::time::Delta;

use super::{block_source, log_source};
use crate::handshake;
use crate::kx::iobuf::IoBuf;
use crate::kx::kthread::{KThread, Rounds};
use crate::kx::net::{SockAddr, Socket};
use crate::kx::time::{monotonic_ms, real_time_nanos};
use crate::mars_core::gossip::TreeDigest;
use crate::mars_core::peer_link::{DEAD_AFTER_MS, HANDSHAKE_TIMEOUT_MS};
use crate::mars_core::proto::{Channel, MessageType, ProtoError, Role};
use crate::mars_core::proto_msg::Message;
use crate::mars_core::ratelimit::RateLimit;
use crate::mars_core::session::{self, SessionError};
use crate::mars_core::tree::Key;
use crate::mars_core::tree_codec::{decode_chunk, ChunkWriter};
use crate::shown::Shown;
use crate::status::ModuleStatus;
use crate::tree_index::Filled;
use crate::tree_store::TargetBuf;
use crate::wire::Wire;

/// Sessions at most, over all peers.
pub(crate) const MAX_CONNECTIONS: usize = 64;
/// Sessions at most from one peer address (one per channel, and room for a reconnect whose
/// old connection the server has not noticed as dead yet).
pub(crate) const MAX_PER_PEER: usize = 8;
/// Pending connections the kernel queues for the listener.
const BACKLOG: u32 = 64;
/// Bytes of a tree-data chunk this server sends: small enough that [`MAX_CONNECTIONS`]
/// sessions serving at once hold 4 MiB, large enough to carry hundreds of entries.
const TREE_CHUNK: usize = 64 << 10;
/// Room for any request (the largest, tree-request-digest, has 520 payload bytes).
const REQUEST_BUF: usize = 1024;
/// An entry stored within this long before a reply's snapshot is sent again in the next reply:
/// file times are coarse (a clock tick), so an entry stored while the snapshot was taken may
/// carry a time a little before it.
const SNAPSHOT_MARGIN_NS: u64 = 1_000_000_000;
/// How long a reply may wait for the peer to take its bytes: longer than the silence after which
/// a peer counts as gone, as a peer storing a large reply (a full pull of a big tree) reads slowly.
const REPLY_TIMEOUT_MS: i64 = 60_000;
/// Lines about refused peers, at most one per this interval.
const REFUSAL_LOG_INTERVAL_MS: u64 = 5_000;

/// What the listener and its sessions share.
#[pin_data]
struct Shared {
    status: Arc<ModuleStatus>,
    channel: Channel,
    /// Limits log lines about refused peers.
    #[pin]
    refusals: Mutex<RateLimit>,
}

impl Shared {
    /// Logs a refusal of the peer at `addr`, rate-limited.
    fn refused(&self, addr: Option<SockAddr>, why: &dyn core::fmt::Display) {
        let Some(left_out) = self.refusals.lock().event(monotonic_ms()) else { return };
        match addr {
            Some(a) => pr_warn!("{} channel: refused peer {}: {}\n", self.channel.name(), Shown(&a), Shown(why)),
            None => pr_warn!("{} channel: refused a peer: {}\n", self.channel.name(), Shown(why)),
        }
        if left_out > 0 {
            pr_warn!("{} channel: {} more refusals not logged\n", self.channel.name(), left_out);
        }
    }
}

/// A running server on one channel; dropping it stops the listener and every session.
pub(crate) struct ServerBrick {
    /// Stopped on drop: its `finish` stops the sessions.
    _listener: KThread<Listener>,
    addr: SockAddr,
}

impl ServerBrick {
    /// Listens on `addr` (this host's address in the tree and the channel's port).
    pub(crate) fn start(addr: SockAddr, channel: Channel, status: Arc<ModuleStatus>) -> Result<ServerBrick> {
        let sock = Socket::listen(&addr, BACKLOG)?;
        let shared = Arc::pin_init(
            pin_init!(Shared {
                status,
                channel,
                refusals <- kernel::new_mutex!(RateLimit::new(REFUSAL_LOG_INTERVAL_MS), "mars_refusals"),
            }),
            GFP_KERNEL,
        )?;
        let listener = Arc::pin_init(
            pin_init!(Listener { sock, shared, sessions <- kernel::new_mutex!(KVec::new(), "mars_sessions") }),
            GFP_KERNEL,
        )?;
        let thread = KThread::spawn(c"mars_listen", listener)?;
        pr_info!("{} channel: listening on {}\n", channel.name(), Shown(&addr));
        Ok(ServerBrick { _listener: thread, addr })
    }

    /// The address it listens on.
    pub(crate) fn addr(&self) -> SockAddr {
        self.addr
    }
}

/// The accepting thread's work.
#[pin_data]
struct Listener {
    sock: Socket,
    shared: Arc<Shared>,
    /// Sessions running or finished but not yet reaped. Only the listener thread adds and
    /// removes; `stop` shuts their sockets down from the stopping thread.
    #[pin]
    sessions: Mutex<KVec<KThread<Session>>>,
}

impl Listener {
    /// Drops sessions that have ended (joining their threads).
    fn reap(&self) {
        self.sessions.lock().retain(|s| !s.body().done.load(Ordering::Acquire));
    }

    /// Starts a session for a new connection, unless a limit says no.
    fn admit(&self, sock: Socket) -> Result {
        let peer = sock.peer().ok();
        let mut sessions = self.sessions.lock();
        let same_peer =
            sessions.iter().filter(|s| peer.is_some_and(|p| s.body().peer.is_some_and(|q| q.same_host(&p)))).count();
        let all = sessions.len();
        if all >= MAX_CONNECTIONS || same_peer >= MAX_PER_PEER {
            drop(sessions);
            self.shared.refused(
                peer,
                &format_args!("too many connections ({all} in all, at most {MAX_CONNECTIONS}; {same_peer} from this address, at most {MAX_PER_PEER})"),
            );
            return Ok(()); // `sock` is closed here.
        }
        let session =
            Arc::new(Session { sock, peer, shared: self.shared.clone(), done: AtomicBool::new(false) }, GFP_KERNEL)?;
        sessions.push(KThread::spawn(c"mars_session", session)?, GFP_KERNEL)?;
        Ok(())
    }
}

impl Rounds for Listener {
    fn round(&self) -> u32 {
        self.reap();
        match self.sock.accept(Delta::from_secs(30)) {
            Ok(sock) => {
                if let Err(e) = self.admit(sock) {
                    pr_warn!(
                        "{} channel: cannot start a session: error {}\n",
                        self.shared.channel.name(),
                        e.to_errno()
                    );
                }
                0
            }
            Err(e) if e == EAGAIN => 0,
            // Shut down (the brick stops), or out of memory: not in a tight loop.
            Err(_) => 1000,
        }
    }

    fn stop(&self) {
        self.sock.shutdown();
        for s in self.sessions.lock().iter() {
            s.body().sock.shutdown();
        }
    }

    fn finish(&self) {
        // Each session's thread is stopped (its socket already shut down) and joined.
        let sessions = core::mem::take(&mut *self.sessions.lock());
        drop(sessions);
    }
}

/// One accepted connection.
struct Session {
    sock: Socket,
    peer: Option<SockAddr>,
    shared: Arc<Shared>,
    /// Set once the session ended; the listener then reaps it.
    done: AtomicBool,
}

impl Rounds for Session {
    fn round(&self) -> u32 {
        if !self.done.load(Ordering::Acquire) {
            self.run();
            self.sock.shutdown();
            self.done.store(true, Ordering::Release);
        }
        // Ended: idle until the listener reaps the thread (stopping wakes it).
        60_000
    }

    fn stop(&self) {
        self.sock.shutdown();
    }

    fn finish(&self) {}
}

impl Session {
    /// The whole session: handshake, then requests until the peer goes or breaks the protocol.
    fn run(&self) {
        let status = &self.shared.status;
        let Some(host) = status.host_str() else { return };
        let mut wire = Wire::new(&self.sock, Delta::from_millis(HANDSHAKE_TIMEOUT_MS as i64));
        let peer = match handshake::authenticate(&mut wire, Role::Server, host, None) {
            Ok(p) => p,
            Err(why) => {
                self.shared.refused(self.peer, &why);
                return;
            }
        };
        // A client pulls at least every keepalive interval; silence this long means it is gone.
        wire.set_timeout(Delta::from_millis(DEAD_AFTER_MS as i64));
        let mut request = [0u8; REQUEST_BUF];
        // Logfile data for log-fetch replies, grown to the largest request (at most 1 MiB).
        let mut data = KVVec::new();
        // Device blocks for block-read and checksum-request replies, grown likewise.
        let mut blocks = IoBuf::new();
        let channel = self.shared.channel;
        loop {
            wire.set_timeout(Delta::from_millis(DEAD_AFTER_MS as i64));
            let expect = |kind: MessageType| {
                kind == MessageType::Keepalive
                    || (channel.carries(kind) && (is_request(kind) || kind == MessageType::TreeAnnounce))
            };
            let (header, message) = match session::recv(&mut wire, &mut request, expect) {
                Ok(frame) => frame,
                Err(SessionError::Proto(e)) => {
                    pr_info!("{} channel: closed connection of {}: {}\n", channel.name(), peer.name(), Shown(&e));
                    return;
                }
                // The peer went away, fell silent or refused something: nothing to serve.
                Err(_) => return,
            };
            // A peer busy storing a large reply takes its bytes slowly, but it is there.
            wire.set_timeout(Delta::from_millis(REPLY_TIMEOUT_MS));
            if serve(&mut wire, status, peer.name(), header.request_id, &message, (&mut data, &mut blocks)).is_err() {
                return;
            }
        }
    }
}

/// Whether `kind` is a request a client sends (not a reply or a handshake message).
fn is_request(kind: MessageType) -> bool {
    matches!(
        kind,
        MessageType::TreeRequest
            | MessageType::TreeRequestDigest
            | MessageType::LogListRequest
            | MessageType::LogFetch
            | MessageType::BlockRead
            | MessageType::ChecksumRequest
    )
}

/// Answers one request of the authenticated `peer` (the dispatch that the replication and
/// sync channels plug into).
fn serve(
    wire: &mut Wire<'_>,
    status: &ModuleStatus,
    peer: &str,
    id: u64,
    message: &Message<'_>,
    (buf, blocks): (&mut KVVec<u8>, &mut IoBuf),
) -> Result {
    match *message {
        Message::Keepalive { .. } => Ok(()),
        Message::TreeRequest { since_nanos } => serve_tree(wire, status, id, since_nanos, u64::MAX),
        Message::TreeRequestDigest { since_nanos, digest } => {
            let Some(theirs) = TreeDigest::from_wire(digest) else { return Err(EINVAL) };
            serve_tree(wire, status, id, since_nanos, status.tree_digest().differing(&theirs))
        }
        Message::TreeAnnounce { chunk } => take_announce(wire, status, peer, chunk),
        Message::LogListRequest { resource } => log_source::list(wire, status, id, resource),
        Message::LogFetch { resource, file, offset, length } => {
            log_source::fetch(wire, status, id, (resource, file, offset, length), buf)
        }
        Message::BlockRead { resource, sector, count_sectors } => {
            block_source::read(wire, status, id, (resource, sector, count_sectors), blocks)
        }
        Message::ChecksumRequest { resource, sector, block_sectors, blocks: count } => {
            block_source::checksums(wire, status, id, (resource, sector, block_sectors, count), blocks)
        }
        _ => {
            session::send_error(wire, &ProtoError::Unexpected { kind: message.kind() }, id);
            Err(EINVAL)
        }
    }
}

/// A tree-announce: the peer's own membership entry, merged by the Lamport rule. Any other key
/// in it is left alone: a peer speaks for itself only.
fn take_announce(wire: &mut Wire<'_>, status: &ModuleStatus, peer: &str, chunk: &[u8]) -> Result {
    let entries = match decode_chunk(chunk) {
        Ok(e) => e,
        Err(e) => {
            session::send_error(
                wire,
                &ProtoError::Invalid { field: "announced chunk", why: "not a valid tree chunk" },
                0,
            );
            pr_info!("tree channel: bad announce from {}: {}\n", peer, Shown(&e));
            return Err(EINVAL);
        }
    };
    let own_key = Key::HostAddress { host: peer }.to_buf()?;
    let mut buf = TargetBuf::new()?;
    for entry in entries {
        let Ok(entry) = entry else {
            session::send_error(wire, &ProtoError::Invalid { field: "announced entry", why: "malformed" }, 0);
            return Err(EINVAL);
        };
        if entry.key == own_key.as_str() && status.merge_entry(&entry, &mut buf)? {
            pr_info!("tree channel: {} announced itself as a member\n", peer);
        }
    }
    Ok(())
}

/// A tree-request: every entry this host stored at or after `since_nanos` whose digest bucket is
/// in `buckets` (one bit per bucket: those where the requester's digest differs), in chunks. The
/// tree lock is held while a chunk is filled, never while it is sent.
fn serve_tree(wire: &mut Wire<'_>, status: &ModuleStatus, id: u64, since_nanos: u64, buckets: u64) -> Result {
    let as_of = real_time_nanos().saturating_sub(SNAPSHOT_MARGIN_NS);
    let mut chunk = KVVec::from_elem(0u8, TREE_CHUNK, GFP_KERNEL)?;
    let mut head = [0u8; 64];
    let mut from = KVec::new();
    loop {
        let mut writer = ChunkWriter::new(&mut chunk)?;
        let filled = status.fill_tree(&from, since_nanos, buckets, &mut writer)?;
        // An entry is at most a few KiB: a chunk that is full holds at least one.
        if matches!(filled, Filled::Full(_)) && writer.entries() == 0 {
            return Err(EINVAL);
        }
        let len = writer.finish();
        let last = matches!(filled, Filled::Done);
        let data = Message::TreeData { as_of_nanos: as_of, last, chunk: chunk.get(..len).unwrap_or(&[]) };
        session::send(wire, &data, id, &mut head).map_err(|_| EPIPE)?;
        match filled {
            Filled::Done => return Ok(()),
            Filled::Full(next) => from = next,
        }
    }
}
