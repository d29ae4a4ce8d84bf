// SPDX-License-Identifier: GPL-2.0

//! The client brick: one connection to one peer on one channel, in its own thread, opened as
//! the strategy asks and kept up by `mars_core::peer_link::Link` (deadlines, keepalives,
//! silent peers, capped exponential backoff with jitter).
//!
//! On the tree channel it pulls when the strategy asks ([`Client::pull_soon`], once per round):
//! a tree-request for what the peer stored since the last complete pull, every entry of the
//! reply merged with the Lamport rule. Requests carry increasing ids and a reply must carry the
//! id of its request. Its state (connected since, last contact, last error) is shown in
//! `/proc/mars/status` through [`Client::view`].

use core::fmt::Write;
use core::sync::atomic::{AtomicBool, Ordering};

use kernel::prelude::*;
use kernel::sync::{Arc, CondVar, Mutex};
use kernel::time::Delta;

use crate::handshake::{self, Refusal};
use crate::kx::kthread::Rounds;
use crate::kx::net::{SockAddr, Socket};
use crate::kx::random;
use crate::kx::time::monotonic_ms;
use crate::mars_core::errno::{describe, Described};
use crate::mars_core::gossip::{Pull, TreeDigest};
use crate::mars_core::lamport::{HostId, Stamp};
use crate::mars_core::peer_link::{
    Action, Failure, Link, State, CONNECT_TIMEOUT_MS, DEAD_AFTER_MS, HANDSHAKE_TIMEOUT_MS, KEEPALIVE_MS,
};
use crate::mars_core::proto::{Channel, MessageType, ProtoError, Role};
use crate::mars_core::proto_msg::{Message, DIGEST_WIRE_LEN};
use crate::mars_core::session::{self, SessionError};
use crate::mars_core::tree::Key;
use crate::mars_core::tree_codec::{decode_chunk, ChunkWriter, CHUNK_HEADER_LEN, MAX_ENTRY_LEN};
use crate::shown::Shown;
use crate::status::ModuleStatus;
use crate::tree_store::{self, TargetBuf, TextBuf};
use crate::wire::Wire;

/// What others may look at and change while the thread runs.
struct Shared {
    link: Link,
    /// The strategy asked for a pull, with this host's tree digest as of its round (or `None`:
    /// the digest could not be made; the pull goes without).
    pull_wanted: Option<Option<TreeDigest>>,
    /// The connection (or the connect in progress), for `stop` to shut down.
    sock: Option<Arc<Socket>>,
    /// Why the last connection ended or attempt failed, in words.
    last_error: TextBuf,
    /// Complete pulls, and entries stored by pulls (complete or not).
    pulls: u64,
    merged: u64,
}

/// What only the client's thread uses.
struct Own {
    pull: Pull,
    /// Id of the last request sent.
    request_id: u64,
    /// Receive buffer for tree-data frames (allocated while connected).
    rx: KVVec<u8>,
    /// Protocol version of the current connection.
    version: u16,
}

/// A client of one peer on one channel.
#[pin_data]
pub(crate) struct Client {
    peer: KVec<u8>,
    addr: SockAddr,
    channel: Channel,
    status: Arc<ModuleStatus>,
    stopping: AtomicBool,
    /// Lock order: `own` before `shared`; `shared` is never held across network I/O.
    #[pin]
    shared: Mutex<Shared>,
    #[pin]
    own: Mutex<Own>,
    /// Woken for a pull, a stop.
    #[pin]
    wake: CondVar,
}

/// A client's state for status: one line of `/proc/mars/status`.
pub(crate) struct ClientView {
    /// `down`, `connecting`, `handshaking` or `up`.
    pub(crate) state: &'static str,
    /// Milliseconds since the connection came up (up only).
    pub(crate) up_ms: Option<u64>,
    /// Milliseconds since anything arrived from the peer (`None`: never).
    pub(crate) contact_ago_ms: Option<u64>,
    /// Failed attempts in a row.
    pub(crate) failures: u32,
    /// Complete pulls, and the entries pulls stored (complete or not).
    pub(crate) pulls: u64,
    pub(crate) merged: u64,
    /// Why the last connection ended, or empty.
    pub(crate) last_error: TextBuf,
}

impl Client {
    /// A client for `peer` at `addr` on `channel`, not yet running (see `KThread::spawn`).
    pub(crate) fn new(
        peer: &[u8],
        addr: SockAddr,
        channel: Channel,
        status: Arc<ModuleStatus>,
    ) -> Result<impl PinInit<Client, Error>> {
        let mut name = KVec::with_capacity(peer.len(), GFP_KERNEL)?;
        name.extend_from_slice(peer, GFP_KERNEL)?;
        Ok(try_pin_init!(Client {
            peer: name,
            addr,
            channel,
            status,
            stopping: AtomicBool::new(false),
            shared <- kernel::new_mutex!(
                Shared { link: Link::new(), pull_wanted: None, sock: None, last_error: TextBuf::new(), pulls: 0, merged: 0 },
                "mars_client"
            ),
            own <- kernel::new_mutex!(
                Own { pull: Pull::new(), request_id: 0, rx: KVVec::new(), version: 1 },
                "mars_client_own"
            ),
            wake <- kernel::new_condvar!("mars_client_wake"),
        }? Error))
    }

    /// The peer's address.
    pub(crate) fn addr(&self) -> SockAddr {
        self.addr
    }

    /// Asks for a pull as soon as the connection is up, sending `digest`: this host's tree
    /// digest, made once per round for all its pulls. A digest older than the tree is safe: a
    /// bucket it shows alike holds nothing this host lacks (it only gained entries since).
    pub(crate) fn pull_soon(&self, digest: Option<TreeDigest>) {
        self.shared.lock().pull_wanted = Some(digest);
        self.wake.notify_all();
    }

    /// The client's state now.
    pub(crate) fn view(&self) -> ClientView {
        let now = monotonic_ms();
        let shared = self.shared.lock();
        let link = &shared.link;
        let (state, up_ms) = match link.state() {
            State::Down { .. } => ("down", None),
            State::Connecting { .. } => ("connecting", None),
            State::Handshaking { .. } => ("handshaking", None),
            State::Up { since } => ("up", Some(now.saturating_sub(since))),
        };
        let mut last_error = TextBuf::new();
        let _ = last_error.write_str(shared.last_error.as_str());
        ClientView {
            state,
            up_ms,
            contact_ago_ms: (link.last_contact() != 0).then(|| now.saturating_sub(link.last_contact())),
            failures: link.failures(),
            pulls: shared.pulls,
            merged: shared.merged,
            last_error,
        }
    }

    fn peer_str(&self) -> &str {
        crate::tree_store::text(&self.peer)
    }

    /// Records a failure: the link goes down (and waits its backoff), the socket is closed.
    fn fail(&self, why: Failure, words: &dyn core::fmt::Display) {
        let mut shared = self.shared.lock();
        let was_up = shared.link.is_up();
        shared.link.fail(monotonic_ms(), why, random::u64());
        shared.sock = None;
        let mut text = TextBuf::new();
        let _ = write!(text, "{words}");
        let changed = text.as_str() != shared.last_error.as_str();
        shared.last_error = text;
        drop(shared);
        if self.stopping.load(Ordering::Acquire) {
            return;
        }
        if was_up {
            pr_warn!("peer {}: connection lost: {}\n", self.peer_str(), Shown(words));
        } else if changed {
            pr_warn!("peer {} at {}: cannot connect: {}\n", self.peer_str(), Shown(&self.addr), Shown(words));
        }
    }

    /// Connects and authenticates.
    fn connect(&self, own: &mut Own) {
        let sock = match Socket::for_address(&self.addr).and_then(|s| Arc::new(s, GFP_KERNEL).map_err(Error::from)) {
            Ok(s) => s,
            Err(e) => return self.fail(Failure::Io(-e.to_errno()), &describe(e.to_errno())),
        };
        {
            let mut shared = self.shared.lock();
            shared.sock = Some(sock.clone());
            shared.link.connecting(monotonic_ms());
        }
        if self.stopping.load(Ordering::Acquire) {
            return;
        }
        if let Err(e) = sock.connect(&self.addr, Delta::from_millis(CONNECT_TIMEOUT_MS as i64)) {
            let why = if e == EAGAIN { Failure::ConnectTimeout } else { Failure::Io(-e.to_errno()) };
            return self.fail(why, &describe(e.to_errno()));
        }
        self.shared.lock().link.tcp_up(monotonic_ms());
        let Some(host) = self.status.host_str() else { return };
        let mut wire = Wire::new(&sock, Delta::from_millis(HANDSHAKE_TIMEOUT_MS as i64));
        let peer = match handshake::authenticate(&mut wire, Role::Client, host, Some(self.peer_str())) {
            Ok(p) => p,
            Err(why) => {
                let failure = match (&why, why.code()) {
                    (_, Some(code)) => Failure::Protocol(code),
                    (Refusal::Session(SessionError::Io(e)), None) => Failure::Io(e.0.abs()),
                    _ => Failure::Closed,
                };
                return self.fail(failure, &why);
            }
        };
        own.version = peer.version;
        if peer.version >= MessageType::TreeAnnounce.since_version() {
            if let Err(e) = self.announce(&mut wire, host) {
                return self.fail(failure_of(&e), &e);
            }
        }
        if own.rx.is_empty() {
            if own.rx.resize(MessageType::TreeData.max_payload_len(), 0, GFP_KERNEL).is_err() {
                return self.fail(Failure::Io(12), &"out of memory for the receive buffer");
            }
        }
        let mut shared = self.shared.lock();
        shared.link.authenticated(monotonic_ms());
        shared.last_error = TextBuf::new();
        drop(shared);
        pr_info!("peer {}: connected to {} ({} channel)\n", self.peer_str(), Shown(&self.addr), self.channel.name());
    }

    /// Sends this host's membership entry, so that a peer learns of a host that just joined
    /// without waiting for someone to pull from it.
    fn announce(&self, wire: &mut Wire<'_>, host: &str) -> core::result::Result<(), SessionError<Described>> {
        let nomem = || SessionError::Io(describe(ENOMEM.to_errno()));
        let key = Key::HostAddress { host }.to_buf().map_err(|_| nomem())?;
        let mut target = TargetBuf::new().map_err(|_| nomem())?;
        let Ok(Some(entry)) = tree_store::get(key.as_str(), &mut target) else { return Ok(()) };
        let mut chunk = [0u8; CHUNK_HEADER_LEN + MAX_ENTRY_LEN];
        let mut w = ChunkWriter::new(&mut chunk).map_err(|_| nomem())?;
        if !w.push(&entry).map_err(|_| nomem())? {
            return Ok(());
        }
        let len = w.finish();
        let mut scratch = [0u8; 64];
        let message = Message::TreeAnnounce { chunk: chunk.get(..len).unwrap_or(&[]) };
        session::send(wire, &message, 0, &mut scratch)
    }

    /// The connection, if up.
    fn socket(&self) -> Option<Arc<Socket>> {
        self.shared.lock().sock.clone()
    }

    /// Sends a keepalive.
    fn keepalive(&self) {
        let Some(sock) = self.socket() else { return };
        let mut wire = Wire::new(&sock, Delta::from_millis(DEAD_AFTER_MS as i64));
        let mut scratch = [0u8; 64];
        let stamp = self.status.tick();
        match session::send(&mut wire, &Message::Keepalive { stamp_nanos: stamp.nanos }, 0, &mut scratch) {
            Ok(()) => self.shared.lock().link.sent(monotonic_ms()),
            Err(e) => self.fail(failure_of(&e), &e),
        }
    }

    /// One pull of the tree: request (with `digest` if the peer knows digests), replies, merges.
    fn pull(&self, own: &mut Own, digest: Option<&TreeDigest>) {
        let Some(sock) = self.socket() else { return };
        let mut wire = Wire::new(&sock, Delta::from_millis(DEAD_AFTER_MS as i64));
        own.request_id = own.request_id.wrapping_add(1).max(1);
        let id = own.request_id;
        let mut scratch = [0u8; 64 + DIGEST_WIRE_LEN];
        let since_nanos = own.pull.since_nanos();
        // With a peer that knows digests, ours lets it leave out what both hold alike.
        let digest =
            digest.filter(|_| own.version >= MessageType::TreeRequestDigest.since_version()).map(|d| d.to_wire());
        let request = match &digest {
            Some(d) => Message::TreeRequestDigest { since_nanos, digest: d },
            None => Message::TreeRequest { since_nanos },
        };
        if let Err(e) = session::send(&mut wire, &request, id, &mut scratch) {
            return self.fail(failure_of(&e), &e);
        }
        let mut sent_ms = monotonic_ms();
        self.shared.lock().link.sent(sent_ms);
        let mut target = match TargetBuf::new() {
            Ok(t) => t,
            Err(_) => return self.fail(Failure::Io(12), &"out of memory"),
        };
        loop {
            let (header, message) = match session::recv(&mut wire, &mut own.rx, |k| k == MessageType::TreeData) {
                Ok(frame) => frame,
                Err(e) => return self.fail(failure_of(&e), &e),
            };
            self.shared.lock().link.received(monotonic_ms());
            if header.request_id != id {
                let e = ProtoError::Invalid { field: "request id", why: "does not match the request" };
                session::send_error(&mut wire, &e, 0);
                return self.fail(Failure::Protocol(e.code().0), &e);
            }
            let (as_of, last, chunk) = match message {
                Message::TreeData { as_of_nanos, last, chunk } => (as_of_nanos, last, chunk),
                Message::Error { code, message } => {
                    let text = ErrorWords(code.0, message);
                    return self.fail(Failure::Protocol(code.0), &text);
                }
                _ => return self.fail(Failure::Closed, &"unexpected reply"),
            };
            let entries = match decode_chunk(chunk) {
                Ok(e) => e,
                Err(e) => return self.fail(Failure::Protocol(1), &e),
            };
            let mut merged = 0u64;
            for entry in entries {
                let entry = match entry {
                    Ok(e) => e,
                    Err(e) => return self.fail(Failure::Protocol(1), &e),
                };
                match self.status.merge_entry(&entry, &mut target) {
                    Ok(true) => merged += 1,
                    Ok(false) => {}
                    Err(e) => {
                        // This host's /mars refuses (full, read-only): the pull is not complete.
                        let words = describe(e.to_errno());
                        return self.fail(Failure::Io(-e.to_errno()), &format_args!("cannot store an entry: {words}"));
                    }
                }
                // Storing a large reply takes a while (a chunk, too, on a slow host): the server,
                // done sending, must still hear from this side within its silence limit.
                let now = monotonic_ms();
                if now.saturating_sub(sent_ms) >= KEEPALIVE_MS {
                    let stamp = self.status.tick();
                    let keepalive = Message::Keepalive { stamp_nanos: stamp.nanos };
                    if let Err(e) = session::send(&mut wire, &keepalive, 0, &mut scratch) {
                        return self.fail(failure_of(&e), &e);
                    }
                    self.shared.lock().link.sent(now);
                    sent_ms = now;
                }
            }
            let mut shared = self.shared.lock();
            shared.merged = shared.merged.saturating_add(merged);
            if last {
                own.pull.completed(Stamp::new(as_of, HostId(0)));
                shared.pulls = shared.pulls.saturating_add(1);
                return;
            }
        }
    }
}

/// A peer's error reply, for logs.
struct ErrorWords<'a>(u16, &'a str);

impl core::fmt::Display for ErrorWords<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "the peer answered: {}: {}", crate::mars_core::proto::ErrorCode(self.0), self.1)
    }
}

/// The link failure a session error stands for.
fn failure_of(e: &SessionError<Described>) -> Failure {
    match e {
        SessionError::Io(errno) => Failure::Io(errno.0.abs()),
        SessionError::Proto(p) => Failure::Protocol(p.code().0),
        SessionError::Refused { code, .. } => Failure::Protocol(code.0),
    }
}

impl Rounds for Client {
    fn round(&self) -> u32 {
        let mut own = self.own.lock();
        if self.stopping.load(Ordering::Acquire) {
            return 1000;
        }
        let now = monotonic_ms();
        let action = self.shared.lock().link.poll(now, random::u64());
        match action {
            Action::Connect => self.connect(&mut own),
            Action::SendKeepalive => self.keepalive(),
            Action::Close(_) => {
                self.shared.lock().sock = None;
            }
            Action::Wait { until } => {
                let mut shared = self.shared.lock();
                if let (true, Some(digest)) = (shared.link.is_up(), shared.pull_wanted) {
                    shared.pull_wanted = None;
                    drop(shared);
                    self.pull(&mut own, digest.as_ref());
                } else {
                    drop(own);
                    let ms = until.saturating_sub(now).clamp(1, 60_000);
                    let jiffies = kernel::time::msecs_to_jiffies(u32::try_from(ms).unwrap_or(60_000));
                    if !self.stopping.load(Ordering::Acquire) {
                        let _ = self.wake.wait_interruptible_timeout(&mut shared, jiffies);
                    }
                }
            }
        }
        0
    }

    fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        let shared = self.shared.lock();
        if let Some(sock) = &shared.sock {
            sock.shutdown();
        }
        drop(shared);
        self.wake.notify_all();
    }

    fn finish(&self) {
        self.shared.lock().sock = None;
    }
}
