// SPDX-License-Identifier: GPL-2.0

//! The trans_logger brick: the write path of a primary.
//!
//! Every write, discard and flush that reaches `/dev/mars/NAME` becomes a record of the current
//! logfile. Submitters copy a write's data and checksum it in their own context; one logger
//! thread then commits in groups: it encodes every queued request into one buffer, appends it
//! with one direct write ([`LogWriter`]), flushes the log device if any request of the batch
//! carries REQ_PREFLUSH or REQ_FUA, and acknowledges them all. So a completed write is on the log
//! device exactly as a completed write to a disk is, and a REQ_FUA/REQ_PREFLUSH write completes
//! only once it and everything before it is durable. The batch then goes to the write-back
//! thread ([`WriteBack`]), which applies it to the data device behind the log. Reads that touch
//! data not yet written back wait until it is; others go straight to the disk.
//!
//! If the log cannot be written (a full /mars, an I/O error on it) the resource enters emergency
//! mode: it stops logging, acknowledges writes once they are durable on the data device, and says
//! that a full sync will be needed. Users never see an error for a full log filesystem.

use kernel::prelude::*;
use kernel::sync::{Arc, CondVar, Mutex};

use super::log_writer::{pad_after, LogWriter};
use super::r#if::BioInput;
use super::write_back::{Batch, LogPos, Request, WriteBack};
use crate::kx::crc;
use crate::kx::disk::{IncomingBio, Inflight};
use crate::kx::iobuf::IoBuf;
use crate::kx::kthread::Rounds;
use crate::kx::time::monotonic_ms;
use crate::kx::vfs::KPath;
use crate::logfiles;
use crate::mars_core::logrec::{self, Op, RecordHeader, HEADER_LEN};
use crate::status::ModuleStatus;

/// Payload bytes queued for the logger beyond which submitters wait.
const MAX_QUEUED_BYTES: usize = 32 << 20;
/// Pause before trying a rotation again that failed for want of memory.
const ROTATION_RETRY_MS: u32 = 100;
/// Appends are made durable at least this often (a device flush of the log), so secondaries,
/// which fetch only durable records, are at most this far behind for want of a flush.
const SYNC_INTERVAL_MS: u64 = 1000;

/// A received bio waiting for its acknowledgement.
struct Waiting {
    bio: IncomingBio,
    /// REQ_PREFLUSH or REQ_FUA: the log must be flushed before the acknowledgement.
    durable: bool,
    /// CRC-32C of the request's payload, computed by the submitter.
    crc: u32,
}

/// Requests not yet in the log; `requests[i]` belongs to `waiting[i]`.
struct LogState {
    requests: KVec<Request>,
    waiting: KVec<Waiting>,
    queued_bytes: usize,
    /// Bios received and not yet completed.
    in_flight: usize,
    /// Set once the log could not be written and the logfiles were dropped: logging stopped.
    emergency: bool,
    /// The failure to drop the logfiles was reported (once).
    drop_failure_reported: bool,
    /// A failed periodic log flush was reported (once).
    sync_failure_reported: bool,
    /// Where the log ends.
    logged: LogPos,
    /// Everything before this is durable on the log device: what secondaries may fetch of the
    /// current logfile (records past it could still be lost in a power cut here).
    synced: LogPos,
    /// The logfile the last rotation closed and its final length (synced before it was closed).
    closed: Option<LogPos>,
    /// Monotonic ms of the oldest append not yet synced (`None`: all synced).
    unsynced_since: Option<u64>,
    /// A new logfile the logger thread is to continue in ([`Logger::request_rotation`]).
    next_log: Option<LogWriter>,
    /// The logger thread is being stopped: it waits no more.
    stopping: bool,
}

/// What the strategy publishes about a logger.
#[derive(Clone, Copy)]
pub(crate) struct LoggerStats {
    /// Where the log ends (logfile number, bytes in it).
    pub(crate) logged: LogPos,
    /// Everything before this is written to the data device.
    pub(crate) written: LogPos,
    /// Emergency mode (logging stopped, full sync needed).
    pub(crate) emergency: bool,
    /// Errno of the first failed write-back, 0 if none.
    pub(crate) writeback_error: i32,
}

/// The logger of one primary resource.
///
/// Lock order: `log` before `state`; `log` before the write-back's `state` (a commit hands over
/// or writes through while holding `log`) and before the module status (record stamps). `state`
/// is never held while another lock is taken: submitters reserve their range with the write-back
/// before they take it.
#[pin_data]
pub(crate) struct Logger {
    name: KVec<u8>,
    /// The resource's directory, holding its logfiles.
    dir: KPath,
    wb: Arc<WriteBack>,
    /// Reads sent on to the data device and not yet completed.
    reads: Arc<Inflight>,
    /// The logfile being written; held while a batch is appended, swapped by a rotation. Taken
    /// by the logger thread only, and by nothing that waits for it.
    #[pin]
    log: Mutex<LogWriter>,
    status: Arc<ModuleStatus>,
    /// The queue and counters, shared by submitters, the logger thread and the strategy.
    #[pin]
    state: Mutex<LogState>,
    /// Signalled when requests are queued.
    #[pin]
    work: CondVar,
    /// Signalled when the queue shrinks or bios complete.
    #[pin]
    room: CondVar,
}

impl Logger {
    /// A logger for resource `name` (directory `dir`) appending to the new, empty logfile `log`,
    /// handing batches to `wb`.
    pub(crate) fn new(
        name: &[u8],
        dir: KPath,
        wb: Arc<WriteBack>,
        log: LogWriter,
        status: Arc<ModuleStatus>,
    ) -> Result<impl PinInit<Self, Error>> {
        let logged = LogPos { file: log.number(), offset: log.pos() };
        let mut owned = KVec::with_capacity(name.len(), GFP_KERNEL)?;
        owned.extend_from_slice(name, GFP_KERNEL)?;
        let reads = Inflight::new()?;
        Ok(try_pin_init!(Logger {
            name: owned,
            dir,
            wb,
            reads,
            log <- kernel::new_mutex!(log),
            status,
            state <- kernel::new_mutex!(LogState {
                requests: KVec::new(),
                waiting: KVec::new(),
                queued_bytes: 0,
                in_flight: 0,
                emergency: false,
                drop_failure_reported: false,
                sync_failure_reported: false,
                logged,
                synced: logged,
                closed: None,
                unsynced_since: None,
                next_log: None,
                stopping: false,
            }),
            work <- kernel::new_condvar!(),
            room <- kernel::new_condvar!(),
        }? Error))
    }

    /// Current counters.
    pub(crate) fn stats(&self) -> LoggerStats {
        let (logged, emergency) = {
            let s = self.state.lock();
            (s.logged, s.emergency)
        };
        let wb = self.wb.stats();
        LoggerStats { logged, written: wb.written, emergency, writeback_error: wb.error }
    }

    /// Waits until every bio received so far is completed and written back, the data device is
    /// flushed, and every read sent on to the data device has completed.
    pub(crate) fn quiesce(&self) -> Result {
        let mut state = self.state.lock();
        while state.in_flight > 0 {
            self.room.wait(&mut state);
        }
        drop(state);
        let synced = self.wb.quiesce();
        self.reads.wait_idle();
        synced
    }

    /// Copies and checksums a write, then queues it for the logger thread.
    fn enqueue(&self, bio: IncomingBio, op: Op) {
        let length = if op == Op::Flush { 0 } else { bio.size() };
        let data = if op == Op::Write {
            match bio.data() {
                Ok(d) => d,
                Err(e) => return bio.end(Err(e)),
            }
        } else {
            IoBuf::new()
        };
        let crc = if data.is_empty() { 0 } else { crc::crc32c(&data) };
        let request = Request { op, sector: bio.sector(), length, data };
        let range = request.range();
        if op != Op::Flush {
            if let Err(e) = self.wb.reserve(range) {
                return bio.end(Err(e));
            }
        }
        // As the log will hold it, so that requests without data (flushes) count too.
        let bytes = logrec::record_len(request.data.len());
        let durable = bio.durable();
        let mut state = self.state.lock();
        while state.queued_bytes > MAX_QUEUED_BYTES {
            self.room.wait(&mut state);
        }
        if state.waiting.push(Waiting { bio, durable, crc }, GFP_KERNEL).is_err() {
            drop(state);
            if op != Op::Flush {
                self.wb.unreserve(range);
            }
            // The bio went down with the failed push, which ends it with an I/O error.
            return;
        }
        if state.requests.push(request, GFP_KERNEL).is_err() {
            let waiting = state.waiting.pop();
            drop(state);
            if op != Op::Flush {
                self.wb.unreserve(range);
            }
            if let Some(w) = waiting {
                w.bio.end(Err(ENOMEM));
            }
            return;
        }
        state.queued_bytes = state.queued_bytes.saturating_add(bytes);
        state.in_flight = state.in_flight.saturating_add(1);
        drop(state);
        self.work.notify_one();
    }

    /// Appends the batch's records and a pad to the log; flushes the log device if `durable`.
    /// Returns where the log ends after them.
    fn append(&self, log: &mut LogWriter, requests: &[Request], waiting: &[Waiting], durable: bool) -> Result<LogPos> {
        let mut total = 0usize;
        for r in requests {
            total = total.checked_add(logrec::record_len(r.data.len())).ok_or(EINVAL)?;
        }
        let pad = pad_after(total);
        let count = u64::try_from(requests.len()).map_err(|_| EINVAL)?.saturating_add(u64::from(pad > 0));
        let mut seq = log.take_seqs(count);
        // One stamp per record, strictly increasing, issued together.
        let mut stamp = self.status.tick_many(count);
        let buf = log.buffer(total.checked_add(pad).ok_or(EINVAL)?)?;
        let mut off = 0usize;
        for (r, w) in requests.iter().zip(waiting.iter()) {
            let header = RecordHeader { op: r.op, seq, stamp, sector: r.sector, length: r.length };
            let head = logrec::encode_header(&header, w.crc)?;
            let len = logrec::record_len(r.data.len());
            let out = buf.get_mut(off..off + len).ok_or(EINVAL)?;
            let (h, rest) = out.split_at_mut(HEADER_LEN);
            h.copy_from_slice(&head);
            let (payload, padding) = rest.split_at_mut(r.data.len());
            payload.copy_from_slice(&r.data);
            padding.fill(0);
            off += len;
            seq = seq.saturating_add(1);
            stamp.nanos = stamp.nanos.saturating_add(1);
        }
        if pad > 0 {
            let out = buf.get_mut(off..).ok_or(EINVAL)?;
            off += logrec::encode_pad(seq, stamp, pad, out)?;
        }
        log.append(off)?;
        if durable {
            log.sync()?;
        }
        Ok(LogPos { file: log.number(), offset: log.pos() })
    }

    /// Logs and acknowledges one batch and hands it to the write-back. Only the logger thread
    /// appends, hands over and rotates, so batches reach the write-back in log order, rotations
    /// included.
    fn commit(&self, requests: KVec<Request>, waiting: KVec<Waiting>) {
        let durable = waiting.iter().any(|w| w.durable);
        let done = waiting.len();
        let emergency = self.state.lock().emergency;
        let mut log = self.log.lock();
        let result = if emergency {
            self.wb.write_through(&requests)
        } else {
            match self.append(&mut log, &requests, &waiting, durable) {
                Ok(end) => {
                    let mut state = self.state.lock();
                    state.logged = end;
                    if durable {
                        state.synced = end;
                        state.unsynced_since = None;
                    } else if state.unsynced_since.is_none() {
                        state.unsynced_since = Some(monotonic_ms());
                    }
                    let served = (state.synced, state.closed);
                    drop(state);
                    if durable {
                        self.status.update_served_log(&self.name, served.0, served.1);
                    }
                    // Before the write-back may write any of it (a sync's mark, block_source.rs).
                    self.status.note_logged(&self.name, end);
                    match self.wb.hand_over(Batch { requests, end }) {
                        Ok(()) => Ok(()),
                        // No memory to queue it: write it back now, before the acknowledgement.
                        Err(batch) => self.wb.write_through(&batch.requests),
                    }
                }
                // Short of memory for the batch buffer: these writes fail, logging goes on.
                Err(e) if e == ENOMEM => {
                    self.wb.release(&requests, false);
                    Err(e)
                }
                Err(e) => self.enter_emergency(e, &requests),
            }
        };
        for w in waiting {
            w.bio.end(result);
        }
        drop(log);
        let mut state = self.state.lock();
        state.in_flight = state.in_flight.saturating_sub(done);
        drop(state);
        self.room.notify_all();
    }

    /// The log cannot be written (error `cause`): drop the logfiles and switch to writing
    /// straight to the data device, starting with `requests`. If the logfiles cannot be dropped,
    /// the writes fail instead (writing through would make the logfiles older than the data
    /// device, and a later replay would bring back older data); the next batch tries again.
    fn enter_emergency(&self, cause: Error, requests: &[Request]) -> Result {
        match self.drop_log() {
            Ok(()) => {
                pr_err!(
                    "resource {}: cannot write its log (error {}): EMERGENCY MODE: logging stops, writes go straight to the data device, a full sync will be needed\n",
                    kernel::str::BStr::from_bytes(&self.name),
                    cause.to_errno()
                );
                self.state.lock().emergency = true;
                self.wb.write_through(requests)
            }
            Err(e) => {
                let mut state = self.state.lock();
                if !state.drop_failure_reported {
                    state.drop_failure_reported = true;
                    pr_err!(
                        "resource {}: cannot write its log (error {}) nor drop its logfiles (error {}): writes fail until one of them works\n",
                        kernel::str::BStr::from_bytes(&self.name),
                        cause.to_errno(),
                        e.to_errno()
                    );
                }
                drop(state);
                self.wb.release(requests, false);
                Err(EIO)
            }
        }
    }

    /// Entering emergency mode: once everything logged is on the data device, deletes this
    /// host's logfiles, durably. From now on the data device gets writes the log does not have,
    /// so a later replay of these logfiles would bring back older data.
    fn drop_log(&self) -> Result {
        self.wb.sync()?;
        let host = self.status.host_str().ok_or(EINVAL)?;
        logfiles::delete_below(&self.dir, host, u32::MAX)?;
        Ok(())
    }

    /// Asks the logger thread to continue in the new, empty logfile `next` after the batch it is
    /// committing, closing the current one; returns at once. `EBUSY` (and `next` is dropped) if
    /// an earlier request is still pending.
    pub(crate) fn request_rotation(&self, next: LogWriter) -> Result {
        let mut state = self.state.lock();
        if state.next_log.is_some() {
            return Err(EBUSY);
        }
        state.next_log = Some(next);
        drop(state);
        self.work.notify_one();
        Ok(())
    }

    /// True while a [`Self::request_rotation`] has not taken effect.
    pub(crate) fn rotation_pending(&self) -> bool {
        self.state.lock().next_log.is_some()
    }

    /// Carries out a requested rotation (logger thread only, between batches, so that batches are
    /// never split). The write-back learns of the new logfile in order, so once it has flushed
    /// that position every older logfile is on the data device. The request stays pending until
    /// the switch is done, so nobody sees it done early. Returns false if there was no memory to
    /// tell the write-back: the request stays for a later round.
    fn rotate_if_requested(&self) -> bool {
        let (number, emergency) = {
            let state = self.state.lock();
            // `next_log` is only taken by this thread.
            match &state.next_log {
                Some(next) => (next.number(), state.emergency),
                None => return true,
            }
        };
        if emergency {
            // Logging stopped and the logfiles were dropped: the new one has no use.
            self.discard_rotation();
            return true;
        }
        let start = LogPos { file: number, offset: 0 };
        let mut log = self.log.lock();
        // The closed logfile is served whole from now on: all of it must be durable.
        let end = LogPos { file: log.number(), offset: log.pos() };
        let closed_synced = log.sync().is_ok();
        if self.wb.hand_over(Batch { requests: KVec::new(), end: start }).is_err() {
            return false;
        }
        let mut state = self.state.lock();
        // Only `request_rotation` sets `next_log`, and only when it is empty: still ours.
        let Some(next) = state.next_log.take() else {
            return true;
        };
        let closed = Some(if closed_synced { end } else { state.synced });
        state.closed = closed;
        state.logged = start;
        state.synced = start;
        state.unsynced_since = None;
        drop(state);
        self.status.update_served_log(&self.name, start, closed);
        let old = core::mem::replace(&mut *log, next);
        drop(log);
        drop(old);
        true
    }

    /// Drops a pending rotation and removes its (empty) logfile; errors are only reported.
    fn discard_rotation(&self) {
        let Some(next) = self.state.lock().next_log.take() else {
            return;
        };
        let number = next.number();
        drop(next);
        let result = self.status.host_str().ok_or(EINVAL).and_then(|host| logfiles::unlink(&self.dir, number, host));
        // Gone already (emergency mode drops every logfile): fine.
        if let Err(e) = result.or_else(|e| if e == ENOENT { Ok(()) } else { Err(e) }) {
            pr_warn!(
                "resource {}: cannot remove the unused logfile {} (error {})\n",
                kernel::str::BStr::from_bytes(&self.name),
                number,
                e.to_errno()
            );
        }
    }

    /// Makes the appends durable once the oldest of them not yet durable is
    /// [`SYNC_INTERVAL_MS`] old, so that secondaries can fetch them.
    fn sync_if_due(&self) {
        let due =
            self.state.lock().unsynced_since.is_some_and(|t| monotonic_ms() >= t.saturating_add(SYNC_INTERVAL_MS));
        if !due {
            return;
        }
        let log = self.log.lock();
        let end = LogPos { file: log.number(), offset: log.pos() };
        let result = log.sync();
        let mut state = self.state.lock();
        match result {
            Ok(()) => {
                state.synced = end;
                state.unsynced_since = None;
                let closed = state.closed;
                drop(state);
                self.status.update_served_log(&self.name, end, closed);
            }
            // The next append meets the trouble too and decides (emergency mode); until then
            // the sync is tried again each interval.
            Err(e) => {
                state.unsynced_since = Some(monotonic_ms());
                if !state.sync_failure_reported {
                    state.sync_failure_reported = true;
                    pr_warn!(
                        "resource {}: cannot flush its log (error {}); secondaries get nothing newer until it works\n",
                        kernel::str::BStr::from_bytes(&self.name),
                        e.to_errno()
                    );
                }
            }
        }
    }

    /// Takes everything queued; if `wait`, first waits for something to arrive (a request or a
    /// rotation) unless the thread is stopping.
    fn take_batch(&self, wait: bool) -> (KVec<Request>, KVec<Waiting>) {
        let mut state = self.state.lock();
        while wait && state.requests.is_empty() && state.next_log.is_none() && !state.stopping {
            // Interruptible: an idle logger is no hung task. With appends not yet durable it
            // wakes up in time to sync them.
            match state.unsynced_since {
                None => {
                    let _ = self.work.wait_interruptible(&mut state);
                }
                Some(t) => {
                    let left = t.saturating_add(SYNC_INTERVAL_MS).saturating_sub(monotonic_ms());
                    if left == 0 {
                        break;
                    }
                    let ms = u32::try_from(left).unwrap_or(u32::MAX);
                    let _ = self.work.wait_interruptible_timeout(&mut state, kernel::time::msecs_to_jiffies(ms));
                }
            }
        }
        state.queued_bytes = 0;
        let taken =
            (core::mem::replace(&mut state.requests, KVec::new()), core::mem::replace(&mut state.waiting, KVec::new()));
        drop(state);
        self.room.notify_all();
        taken
    }
}

impl BioInput for Logger {
    /// A read waits until no part of it is still only in the log, then goes to the data device.
    /// (Waiting for the write-back is fine here: its thread submits those writes, not this one.)
    fn read(&self, bio: IncomingBio) {
        let sectors = u64::from(bio.size()) >> 9;
        match self.wb.wait_written((bio.sector(), bio.sector().saturating_add(sectors))) {
            Ok(()) => self.wb.dev().remap(bio, &self.reads),
            Err(e) => bio.end(Err(e)),
        }
    }

    fn write(&self, bio: IncomingBio, op: Op) {
        self.enqueue(bio, op);
    }
}

impl Rounds for Logger {
    fn round(&self) -> u32 {
        let (requests, waiting) = self.take_batch(true);
        if !requests.is_empty() {
            self.commit(requests, waiting);
        }
        self.sync_if_due();
        if self.rotate_if_requested() {
            0
        } else {
            ROTATION_RETRY_MS
        }
    }

    fn stop(&self) {
        self.state.lock().stopping = true;
        self.work.notify_all();
    }

    fn finish(&self) {
        loop {
            let (requests, waiting) = self.take_batch(false);
            if requests.is_empty() {
                break;
            }
            self.commit(requests, waiting);
        }
        if !self.rotate_if_requested() {
            self.discard_rotation();
        }
        // The logfile is closed for good and served whole from now on: all of it durable, and
        // its size its records.
        let mut log = self.log.lock();
        if let Err(e) = log.sync() {
            pr_warn!(
                "resource {}: cannot flush its last logfile (error {})\n",
                kernel::str::BStr::from_bytes(&self.name),
                e.to_errno()
            );
        }
        log.close();
        drop(log);
        self.status.forget_served_log(&self.name);
    }
}
