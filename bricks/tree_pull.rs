// SPDX-License-Identifier: GPL-2.0

//! The tree channel's work of a client brick: pulling the peer's tree.
//!
//! It pulls when the strategy asks ([`Client::pull_soon`], once per round): a tree-request for
//! what the peer stored since the last complete pull, every entry of the reply merged with the
//! Lamport rule. On connecting it announces this host's membership entry, so that a peer learns
//! of a host that just joined without waiting for someone to pull from it.

use kernel::prelude::*;
use kernel::sync::Mutex;

use super::client::{Client, Conn, ErrorWords, Failed, Next, Work};
use crate::mars_core::errno::{describe, Described};
use crate::mars_core::gossip::{Pull, TreeDigest};
use crate::mars_core::lamport::{HostId, Stamp};
use crate::mars_core::peer_link::Failure;
use crate::mars_core::proto::{Channel, MessageType};
use crate::mars_core::proto_msg::{Message, DIGEST_WIRE_LEN};
use crate::mars_core::session::{self, SessionError};
use crate::mars_core::tree::Key;
use crate::mars_core::tree_codec::{decode_chunk, ChunkWriter, CHUNK_HEADER_LEN, MAX_ENTRY_LEN};
use crate::tree_store::{self, TargetBuf};

/// What the strategy and status share with the client's thread.
struct Shared {
    /// The strategy asked for a pull, with this host's tree digest as of its round (or `None`:
    /// the digest could not be made; the pull goes without).
    wanted: Option<Option<TreeDigest>>,
    /// Complete pulls, and entries stored by pulls (complete or not).
    pulls: u64,
    merged: u64,
}

/// What only the client's thread uses.
struct Own {
    pull: Pull,
    /// Receive buffer for tree-data frames (allocated at the first connection).
    rx: KVVec<u8>,
}

/// Pulling the tree of one peer.
#[pin_data]
pub(crate) struct TreePull {
    /// Lock order: `own` before `shared`; `shared` is never held across network I/O.
    #[pin]
    shared: Mutex<Shared>,
    #[pin]
    own: Mutex<Own>,
}

impl TreePull {
    /// Nothing pulled yet.
    pub(crate) fn new() -> impl PinInit<TreePull, Error> {
        try_pin_init!(TreePull {
            shared <- kernel::new_mutex!(Shared { wanted: None, pulls: 0, merged: 0 }, "mars_tree_pull"),
            own <- kernel::new_mutex!(Own { pull: Pull::new(), rx: KVVec::new() }, "mars_tree_pull_own"),
        }? Error)
    }

    /// Complete pulls, and the entries pulls stored (complete or not).
    pub(crate) fn counts(&self) -> (u64, u64) {
        let shared = self.shared.lock();
        (shared.pulls, shared.merged)
    }
}

impl Client<TreePull> {
    /// Asks for a pull as soon as the connection is up, sending `digest`: this host's tree
    /// digest, made once per round for all its pulls. A digest older than the tree is safe: a
    /// bucket it shows alike holds nothing this host lacks (it only gained entries since).
    pub(crate) fn pull_soon(&self, digest: Option<TreeDigest>) {
        self.work().shared.lock().wanted = Some(digest);
        self.wake();
    }
}

impl Work for TreePull {
    const CHANNEL: Channel = Channel::Tree;

    fn connected(&self, conn: &mut Conn<'_>) -> core::result::Result<(), Failed> {
        if conn.version >= MessageType::TreeAnnounce.since_version() {
            announce(conn).map_err(|e| Failed::session(&e))?;
        }
        let mut own = self.own.lock();
        if own.rx.is_empty() && own.rx.resize(MessageType::TreeData.max_payload_len(), 0, GFP_KERNEL).is_err() {
            return Err(Failed::nomem());
        }
        Ok(())
    }

    fn run(&self, conn: &mut Conn<'_>) -> core::result::Result<Next, Failed> {
        let wanted = self.shared.lock().wanted.take();
        if let Some(digest) = wanted {
            self.pull(conn, digest.as_ref())?;
        }
        Ok(Next::WhenWoken)
    }
}

impl TreePull {
    /// One pull: request (with `digest` if the peer knows digests), replies, merges.
    fn pull(&self, conn: &mut Conn<'_>, digest: Option<&TreeDigest>) -> core::result::Result<(), Failed> {
        let mut own = self.own.lock();
        let own = &mut *own;
        let mut wire = conn.live_wire();
        let id = conn.next_id();
        let mut scratch = [0u8; 64 + DIGEST_WIRE_LEN];
        let since_nanos = own.pull.since_nanos();
        // With a peer that knows digests, ours lets it leave out what both hold alike.
        let digest =
            digest.filter(|_| conn.version >= MessageType::TreeRequestDigest.since_version()).map(|d| d.to_wire());
        let request = match &digest {
            Some(d) => Message::TreeRequestDigest { since_nanos, digest: d },
            None => Message::TreeRequest { since_nanos },
        };
        session::send(&mut wire, &request, id, &mut scratch).map_err(|e| Failed::session(&e))?;
        conn.sent();
        let mut target = TargetBuf::new().map_err(|_| Failed::nomem())?;
        loop {
            let (header, message) = session::recv(&mut wire, &mut own.rx, |k| k == MessageType::TreeData)
                .map_err(|e| Failed::session(&e))?;
            conn.received();
            if header.request_id != id {
                return Err(Failed::wrong_id(&mut wire));
            }
            let (as_of, last, chunk) = match message {
                Message::TreeData { as_of_nanos, last, chunk } => (as_of_nanos, last, chunk),
                Message::Error { code, message } => {
                    return Err(Failed::new(Failure::Protocol(code.0), &ErrorWords(code.0, message)));
                }
                _ => return Err(Failed::new(Failure::Closed, &"unexpected reply")),
            };
            let entries = decode_chunk(chunk).map_err(|e| Failed::new(Failure::Protocol(1), &e))?;
            let mut merged = 0u64;
            for entry in entries {
                let entry = entry.map_err(|e| Failed::new(Failure::Protocol(1), &e))?;
                match conn.status().merge_entry(&entry, &mut target) {
                    Ok(true) => merged += 1,
                    Ok(false) => {}
                    Err(e) => {
                        // This host's /mars refuses (full, read-only): the pull is not complete.
                        let words = describe(e.to_errno());
                        return Err(Failed::new(
                            Failure::Io(-e.to_errno()),
                            &format_args!("cannot store an entry: {words}"),
                        ));
                    }
                }
                // Storing a large reply takes a while (a chunk, too, on a slow host): the server,
                // done sending, must still hear from this side within its silence limit.
                conn.keepalive_if_due(&mut wire)?;
            }
            let mut shared = self.shared.lock();
            shared.merged = shared.merged.saturating_add(merged);
            if last {
                own.pull.completed(Stamp::new(as_of, HostId(0)));
                shared.pulls = shared.pulls.saturating_add(1);
                return Ok(());
            }
        }
    }
}

/// Sends this host's membership entry.
fn announce(conn: &mut Conn<'_>) -> core::result::Result<(), SessionError<Described>> {
    let nomem = || SessionError::Io(describe(ENOMEM.to_errno()));
    let Some(host) = conn.status().host_str() else { return Ok(()) };
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
    let mut wire = conn.wire(crate::mars_core::peer_link::HANDSHAKE_TIMEOUT_MS);
    session::send(&mut wire, &message, 0, &mut scratch)?;
    conn.sent();
    Ok(())
}
