// SPDX-License-Identifier: GPL-2.0

//! The copy brick: the sync channel's work of a client brick, copying the primary's data device
//! onto this secondary's (full sync, or fast sync: only blocks whose SHA-256 differs).
//!
//! It copies while `syncstatus-HOST` says `DONE/TOTAL` with DONE short of TOTAL (the fetch
//! begins a sync, `fetch.rs`), window by window of [`WINDOW_BLOCKS`] blocks from DONE on: in a
//! fast sync it asks for the primary's digests of a window, reads and hashes the same blocks
//! here meanwhile, and fetches only the blocks that differ, up to a window's worth in flight.
//! After each run the device is flushed and the new DONE stored durably, so a disconnect, crash
//! or rmmod resumes there. Every reply carries where the primary's log ended after it read the
//! blocks; the last one's becomes `syncpos-HOST`, the mark replay must pass before the device is
//! consistent (it is stored before the status says the copy is complete). Replay does not run
//! while a sync copies (the fetch holds it back), so nothing else writes the device meanwhile.
//! A rate limit (`todo-HOST/sync-rate`) paces the block reads; the digests are not limited.

use kernel::prelude::*;
use kernel::sync::{Arc, Mutex};

use super::bio::BioBrick;
use super::block_source::digest_blocks;
use super::brick::{self, Io};
use super::client::{Conn, ErrorWords, Failed, Next, Work};
use crate::kx::iobuf::IoBuf;
use crate::kx::time::{monotonic_ms, monotonic_ns};
use crate::mars_core::peer_link::Failure;
use crate::mars_core::pipeline::Pipeline;
use crate::mars_core::proto::{Channel, MessageType};
use crate::mars_core::proto_msg::{LogEnd, Message};
use crate::mars_core::session;
use crate::mars_core::sync::{blocks, differing, next_window, SyncStatus, BLOCK, WINDOW_BLOCKS};
use crate::mars_core::token_bucket::{TokenBucket, BURST};
use crate::bricks::write_back::LogPos;
use crate::sync_record;
use crate::tree_store;

/// Bytes per sector.
const SECTOR: u64 = 512;
/// A run ends after this long (progress stored, the link's keepalives and the switches seen).
const RUN_MS: u64 = 3000;
/// How often an idle copy looks whether a sync is due.
const POLL_MS: u64 = 1000;
/// Blocks per window, as an array length.
const WINDOW: usize = WINDOW_BLOCKS as usize;

/// What the strategy and status see of a copy.
#[derive(Clone, Copy, Default)]
pub(crate) struct CopyView {
    /// A sync is copying (`syncstatus` short of its total).
    pub(crate) active: bool,
    /// Bytes of the device done (compared or copied), of `total`.
    pub(crate) done: u64,
    /// The resource's size.
    pub(crate) total: u64,
    /// Block data received over the link since this copy brick started.
    pub(crate) transferred: u64,
    /// Bytes done per second in the last run.
    pub(crate) rate: u64,
    /// `todo-HOST/sync` is off and no copy runs.
    pub(crate) paused: bool,
}

/// What the strategy and status share with the client's thread.
struct Shared {
    view: CopyView,
    /// `todo-HOST/sync`.
    on: bool,
    /// The rate limit of block reads (`todo-HOST/sync-rate`).
    limit: TokenBucket,
}

/// What only the client's thread uses.
struct Own {
    /// Receive buffer for block-data frames (allocated at the first connection).
    rx: IoBuf,
    /// This host's blocks of a window, for their digests.
    local: IoBuf,
}

/// Copying `primary`'s data device of `resource` onto `dev`.
#[pin_data]
pub(crate) struct SyncCopy {
    resource: KVec<u8>,
    primary: KVec<u8>,
    dev: Arc<BioBrick>,
    /// Lock order: `own` before `shared`; `shared` is never held across I/O.
    #[pin]
    shared: Mutex<Shared>,
    #[pin]
    own: Mutex<Own>,
}

impl SyncCopy {
    /// A copy of `resource` onto `dev`.
    pub(crate) fn new(resource: &[u8], primary: &[u8], dev: Arc<BioBrick>) -> Result<impl PinInit<SyncCopy, Error>> {
        let (res, origin) = (tree_store::owned(resource)?, tree_store::owned(primary)?);
        Ok(try_pin_init!(SyncCopy {
            resource: res,
            primary: origin,
            dev,
            shared <- kernel::new_mutex!(
                Shared { view: CopyView::default(), on: true, limit: TokenBucket::new(0, BURST, monotonic_ns()) },
                "mars_copy"
            ),
            own <- kernel::new_mutex!(Own { rx: IoBuf::new(), local: IoBuf::new() }, "mars_copy_own"),
        }? Error))
    }

    /// The copy's state now.
    pub(crate) fn view(&self) -> CopyView {
        self.shared.lock().view
    }

    /// Switches copying on or off (`todo-HOST/sync`).
    pub(crate) fn set_on(&self, on: bool) {
        self.shared.lock().on = on;
    }

    /// Limits the block data asked for to `rate` bytes per second from now on (0: no limit;
    /// `todo-HOST/sync-rate`). Comparing digests is not limited: it moves 32 bytes per MiB.
    pub(crate) fn set_rate(&self, rate: u64) {
        let mut shared = self.shared.lock();
        if shared.limit.rate() != rate {
            shared.limit.set_rate(rate, monotonic_ns());
        }
    }

    fn res(&self) -> &str {
        tree_store::text(&self.resource)
    }

    /// Compares or copies the window `(pos, len)`; returns the primary's log end after the last
    /// blocks it read for it.
    fn window(
        &self,
        conn: &mut Conn<'_>,
        own: &mut Own,
        (pos, len): (u64, u64),
        full: bool,
    ) -> core::result::Result<LogEnd, Failed> {
        let mut last = LogEnd::default();
        let io = Failed::io;
        let mut wire = conn.live_wire();
        let count = blocks(pos, len).count();
        let mut local = [[0u8; 32]; WINDOW];
        let mut remote = [[0u8; 32]; WINDOW];
        // Digests only of whole blocks: a shorter last block is always copied.
        let whole = usize::try_from(len / u64::from(BLOCK)).unwrap_or(0).min(WINDOW);
        let mut compared = 0;
        if !full && whole > 0 {
            let id = conn.next_id();
            let request = Message::ChecksumRequest {
                resource: self.res(),
                sector: pos / SECTOR,
                block_sectors: BLOCK / SECTOR as u32,
                blocks: whole as u32,
            };
            let mut scratch = [0u8; 128];
            session::send(&mut wire, &request, id, &mut scratch).map_err(|e| Failed::session(&e))?;
            conn.sent();
            // The primary reads and hashes its blocks while this host does the same.
            digest_blocks(&self.dev, pos, BLOCK as usize, whole, &mut own.local, |i, d| {
                if let Some(slot) = local.get_mut(i) {
                    *slot = d;
                }
                Ok(())
            })
            .map_err(io)?;
            let (header, message) = session::recv(&mut wire, &mut own.rx, |k| k == MessageType::Checksums)
                .map_err(|e| Failed::session(&e))?;
            conn.received();
            if header.request_id != id {
                return Err(Failed::wrong_id(&mut wire));
            }
            match message {
                Message::Checksums { sector, block_sectors, logged, digests }
                    if sector == pos / SECTOR && block_sectors == BLOCK / SECTOR as u32 && digests.len() == whole =>
                {
                    last = last.max(logged);
                    for (slot, d) in remote.iter_mut().zip(digests.iter()) {
                        *slot = *d;
                    }
                }
                Message::Checksums { .. } => {
                    return Err(Failed::new(Failure::Protocol(1), &"checksums of other blocks than asked for"))
                }
                Message::Error { code, message } => {
                    return Err(Failed::new(Failure::Protocol(code.0), &ErrorWords(code.0, message)))
                }
                _ => return Err(Failed::new(Failure::Closed, &"unexpected reply")),
            }
            compared = whole;
        }
        let mut wanted: KVec<(u64, u32)> = KVec::new();
        for i in differing(full, &local[..compared], &remote[..compared], count) {
            if let Some(block) = blocks(pos, len).nth(i) {
                wanted.push(block, GFP_KERNEL).map_err(|_| Failed::nomem())?;
            }
        }
        let mut pipeline: Pipeline<(u64, u32), WINDOW> = Pipeline::new();
        let mut next = wanted.iter().peekable();
        loop {
            let mut wait_ns = 0;
            while pipeline.has_room() {
                let Some(&&(at, l)) = next.peek() else { break };
                if let Err(ns) = self.shared.lock().limit.take(u64::from(l), monotonic_ns()) {
                    wait_ns = ns;
                    break;
                }
                let Some(id) = pipeline.issue((at, l), monotonic_ms()) else { break };
                next.next();
                let request = Message::BlockRead { resource: self.res(), sector: at / SECTOR, count_sectors: l / SECTOR as u32 };
                let mut scratch = [0u8; 128];
                session::send(&mut wire, &request, id, &mut scratch).map_err(|e| Failed::session(&e))?;
                conn.sent();
            }
            if pipeline.is_empty() {
                if next.peek().is_none() {
                    return Ok(last);
                }
                // Nothing in flight and the rate limit says wait.
                conn.idle(&mut wire, wait_ns.div_ceil(1_000_000))?;
                continue;
            }
            let (start, id) = {
                let (header, message) = session::recv(&mut wire, &mut own.rx, |k| k == MessageType::BlockData)
                    .map_err(|e| Failed::session(&e))?;
                conn.received();
                let Ok((at, l)) = pipeline.part(header.request_id) else {
                    return Err(Failed::wrong_id(&mut wire));
                };
                match message {
                    Message::BlockData { sector, logged, data } if sector == at / SECTOR && data.len() == l as usize => {
                        last = last.max(logged);
                        (data.as_ptr() as usize - own.rx.as_ptr() as usize, header.request_id)
                    }
                    Message::BlockData { .. } => {
                        return Err(Failed::new(Failure::Protocol(1), &"block data of other sectors than asked for"))
                    }
                    Message::Error { code, message } => {
                        return Err(Failed::new(Failure::Protocol(code.0), &ErrorWords(code.0, message)))
                    }
                    _ => return Err(Failed::new(Failure::Closed, &"unexpected reply")),
                }
            };
            let Ok((at, l)) = pipeline.complete(id) else { return Err(Failed::wrong_id(&mut wire)) };
            // Moved to the start of a page first: at its place in the frame, 1 MiB spans 257
            // pages, one more than a bio holds.
            let len = l as usize;
            let (Some(from), Some(to)) = (own.rx.get(start..start + len), own.local.get_mut(..len)) else {
                return Err(Failed::io(EINVAL));
            };
            for (d, b) in to.iter_mut().zip(from) {
                *d = *b;
            }
            brick::run(&*self.dev, Io::Write { pos: at, data: own.local.slice(0..len).map_err(io)? }).map_err(io)?;
            let mut shared = self.shared.lock();
            shared.view.transferred = shared.view.transferred.saturating_add(u64::from(l));
        }
    }
}

impl Work for SyncCopy {
    const CHANNEL: Channel = Channel::Sync;

    fn connected(&self, _conn: &mut Conn<'_>) -> core::result::Result<(), Failed> {
        let mut own = self.own.lock();
        if own.rx.is_empty() {
            own.rx = IoBuf::zeroed(MessageType::BlockData.max_payload_len()).map_err(|_| Failed::nomem())?;
        }
        if own.local.is_empty() {
            own.local = IoBuf::zeroed(WINDOW * BLOCK as usize).map_err(|_| Failed::nomem())?;
        }
        Ok(())
    }

    fn run(&self, conn: &mut Conn<'_>) -> core::result::Result<Next, Failed> {
        let io = Failed::io;
        let mut own = self.own.lock();
        let own = &mut *own;
        let host = conn.status().host_str().ok_or(EINVAL).map_err(io)?;
        let loaded = sync_record::load_status(self.res(), host).map_err(io)?;
        let (mut done, total, full) = match loaded {
            Some(SyncStatus::Copying { done, total, full }) if done < total => (done, total, full),
            _ => {
                let mut shared = self.shared.lock();
                shared.view.active = false;
                if let Some(SyncStatus::Copying { done, total, .. }) = loaded {
                    shared.view.done = done;
                    shared.view.total = total;
                }
                return Ok(Next::After(POLL_MS));
            }
        };
        {
            let mut shared = self.shared.lock();
            shared.view.paused = !shared.on;
            shared.view.active = true;
            shared.view.done = done;
            shared.view.total = total;
            if !shared.on {
                return Ok(Next::After(POLL_MS));
            }
        }
        let started = monotonic_ms();
        let from = done;
        let mut logged = LogEnd::default();
        while let Some(window) = next_window(done, total) {
            logged = self.window(conn, own, window, full)?;
            done += window.1;
            let mut shared = self.shared.lock();
            shared.view.done = done;
            if !shared.on || monotonic_ms().saturating_sub(started) >= RUN_MS {
                break;
            }
        }
        self.dev.flush().map_err(io)?;
        // Stored only if nobody replaced the status meanwhile (`marsadm invalidate`: that
        // sync starts over, with its own replay start).
        if sync_record::load_status(self.res(), host).map_err(io)? == loaded {
            if done == total {
                let mark = LogPos { file: logged.seq, offset: logged.offset };
                sync_record::store_mark(self.res(), host, tree_store::text(&self.primary), Some(mark), conn.status())
                    .map_err(io)?;
            }
            sync_record::store_status(self.res(), host, SyncStatus::Copying { done, total, full }, conn.status())
                .map_err(io)?;
        }
        let ms = monotonic_ms().saturating_sub(started).max(1);
        let view = {
            let mut shared = self.shared.lock();
            shared.view.rate = (done - from).saturating_mul(1000) / ms;
            shared.view.active = done < total;
            shared.view
        };
        if done == total {
            pr_info!(
                "resource {}: sync complete, {} of {} bytes transferred\n",
                self.res(),
                view.transferred,
                total
            );
        }
        Ok(Next::After(0))
    }
}
