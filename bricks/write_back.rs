// SPDX-License-Identifier: GPL-2.0

//! The write-back thread of a primary: applies logged batches to the data device behind the log.
//!
//! The logger hands over each batch once it is in the log and acknowledged; this thread writes
//! the batches to the data device in log order and flushes the device at most once a second (or
//! when someone needs the position, [`WriteBack::sync`]), since the log already holds the data
//! durably. Until a range is written, reads of it wait ([`WriteBack::wait_written`]), so a read
//! always returns the newest data. Memory is bounded: the logger waits while more than
//! [`MAX_PENDING_BYTES`] are handed over and not yet written.

use kernel::prelude::*;
use kernel::sync::{Arc, CondVar, Mutex};
use kernel::time::{msecs_to_jiffies, Delta, Instant, Monotonic};

use super::apply::{apply, write_run, Item, Run};
use super::bio::BioBrick;
use super::ranges::{Range, RangeSet, Slot};
use crate::kx::iobuf::IoBuf;
use crate::kx::kthread::Rounds;
use crate::mars_core::logrec::{self, Op};

/// Handed over but not yet written (as [`Batch::bytes`] counts): beyond this the logger waits.
const MAX_PENDING_BYTES: usize = 64 << 20;
/// Longest time written data stays unflushed on the data device.
const FLUSH_INTERVAL_MS: i64 = 1000;

/// A position in this host's log: logfile number, then byte offset in it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct LogPos {
    /// Logfile number.
    pub(crate) file: u32,
    /// Byte offset within the logfile.
    pub(crate) offset: u64,
}

/// One request's part of a batch: what to write where.
pub(crate) struct Request {
    /// Operation.
    pub(crate) op: Op,
    /// Target sector.
    pub(crate) sector: u64,
    /// Bytes affected.
    pub(crate) length: u32,
    /// Payload of a write.
    pub(crate) data: IoBuf,
}

impl Request {
    fn item(&self) -> Item<'_> {
        Item { op: self.op, sector: self.sector, length: self.length, data: self.data.all() }
    }

    /// Sectors the request touches.
    pub(crate) fn range(&self) -> (u64, u64) {
        self.item().range()
    }
}

/// Requests logged together, and where the log is after them.
pub(crate) struct Batch {
    /// In log order.
    pub(crate) requests: KVec<Request>,
    /// Log position after the batch.
    pub(crate) end: LogPos,
}

impl Batch {
    /// Memory the batch stands for: its records as the log holds them, so that requests without
    /// data (flushes) count too and the queue stays bounded.
    fn bytes(&self) -> usize {
        self.requests.iter().map(|r| logrec::record_len(r.data.len())).sum()
    }
}

struct State {
    /// Handed over, not yet written, in log order.
    pending: KVec<Batch>,
    pending_bytes: usize,
    /// Sector ranges received by the logger and not yet written to the data device.
    unwritten: RangeSet,
    /// Sector ranges whose write to the data device failed: reads of them fail rather than
    /// return older data; at most [`MAX_LOST`] of them. `lost_untracked` when a range could not
    /// be noted (no memory, or too many): then all reads fail.
    lost: RangeSet,
    lost_count: usize,
    lost_untracked: bool,
    /// Log position of the last batch handed over.
    handed_over: LogPos,
    /// Everything before this is written to the data device.
    written: LogPos,
    /// Everything before this is durable on the data device.
    flushed: LogPos,
    /// [`WriteBack::sync`] callers wait for `flushed` to reach this.
    flush_upto: LogPos,
    /// Errno of the first failed write-back or flush, 0 if none. Sticky: after a failure,
    /// `written` and `flushed` stay where they were, so no logfile still needed is deleted.
    error: i32,
    /// When the data device was last flushed.
    last_flush: Instant<Monotonic>,
    /// The thread is being stopped: it waits no more.
    stopping: bool,
}

/// The write-back of one primary resource.
///
/// Lock order: `run` before `state` (the thread notes each run's outcome while holding its
/// ranges). `state` is taken last by everyone: the logger takes it while holding its `log`.
#[pin_data]
pub(crate) struct WriteBack {
    dev: Arc<BioBrick>,
    /// Queue, ranges, positions; shared by the logger, readers, the strategy and the thread.
    #[pin]
    state: Mutex<State>,
    /// Signalled when batches arrive or a flush is wanted.
    #[pin]
    work: CondVar,
    /// Signalled when batches are written or flushed.
    #[pin]
    progress: CondVar,
    /// The ranges of the run being written; used by the write-back thread only, allocated once
    /// so that writing back never fails for want of memory.
    #[pin]
    run: Mutex<Run>,
}

/// What the strategy publishes about the write-back.
#[derive(Clone, Copy)]
pub(crate) struct WriteBackStats {
    /// Everything before this is written to the data device.
    pub(crate) written: LogPos,
    /// Everything before this is durable on the data device.
    pub(crate) flushed: LogPos,
    /// Errno of the first failed write-back or flush, 0 if none.
    pub(crate) error: i32,
}

impl WriteBack {
    /// A write-back to `dev` whose log starts at `start`.
    pub(crate) fn new(dev: Arc<BioBrick>, start: LogPos) -> Result<impl PinInit<Self, Error>> {
        let run = Run::new()?;
        Ok(try_pin_init!(WriteBack {
            dev,
            state <- kernel::new_mutex!(State {
                pending: KVec::new(),
                pending_bytes: 0,
                unwritten: RangeSet::new(),
                lost: RangeSet::new(),
                lost_count: 0,
                lost_untracked: false,
                handed_over: start,
                written: start,
                flushed: start,
                flush_upto: start,
                error: 0,
                last_flush: Instant::now(),
                stopping: false,
            }),
            work <- kernel::new_condvar!(),
            progress <- kernel::new_condvar!(),
            run <- kernel::new_mutex!(run),
        }? Error))
    }

    /// The data device.
    pub(crate) fn dev(&self) -> &BioBrick {
        &self.dev
    }

    /// Current positions.
    pub(crate) fn stats(&self) -> WriteBackStats {
        let s = self.state.lock();
        WriteBackStats { written: s.written, flushed: s.flushed, error: s.error }
    }

    /// Notes that `range` was received and must not be read from the data device until written
    /// (an empty range needs no note).
    pub(crate) fn reserve(&self, range: Range) -> Result {
        if range.0 == range.1 {
            return Ok(());
        }
        let slot = Slot::new(range)?;
        let unused = self.state.lock().unwritten.insert(slot);
        drop(unused);
        Ok(())
    }

    /// Takes back a [`Self::reserve`] whose request never made it into the queue.
    pub(crate) fn unreserve(&self, range: Range) {
        self.state.lock().unwritten.remove(range);
        self.progress.notify_all();
    }

    /// Waits until no sector of `range` is waiting to be written; `EIO` if the data device
    /// failed to take a write to it (the data is in the log; the next attach replays it).
    pub(crate) fn wait_written(&self, range: Range) -> Result {
        let mut s = self.state.lock();
        while s.unwritten.overlaps(range) {
            self.progress.wait(&mut s);
        }
        if s.lost_untracked || s.lost.overlaps(range) {
            return Err(EIO);
        }
        Ok(())
    }

    /// Hands over a logged batch (waiting while too much is pending). Gives it back if there is
    /// no memory to queue it.
    pub(crate) fn hand_over(&self, batch: Batch) -> core::result::Result<(), Batch> {
        let bytes = batch.bytes();
        let mut s = self.state.lock();
        while s.pending_bytes > MAX_PENDING_BYTES {
            self.progress.wait(&mut s);
        }
        if s.pending.reserve(1, GFP_KERNEL).is_err() {
            return Err(batch);
        }
        let end = batch.end;
        if let Err(e) = s.pending.push_within_capacity(batch) {
            return Err(e.0);
        }
        s.pending_bytes = s.pending_bytes.saturating_add(bytes);
        s.handed_over = end;
        drop(s);
        self.work.notify_one();
        Ok(())
    }

    /// Writes `requests` to the data device after everything handed over, flushes it, and
    /// returns the result for their acknowledgement: for requests not logged (emergency mode)
    /// or logged but not handed over (no memory).
    pub(crate) fn write_through(&self, requests: &[Request]) -> Result {
        let result = self.sync().and_then(|()| {
            let mut items = KVec::with_capacity(requests.len(), GFP_KERNEL)?;
            for r in requests {
                items.push(r.item(), GFP_KERNEL)?;
            }
            apply(&*self.dev, &items).and_then(|()| self.dev.flush())
        });
        self.release(requests, result.is_err());
        result
    }

    /// Releases the ranges [`Self::reserve`]d for `requests` and wakes waiters. `lost`: they were
    /// acknowledged, or are in the log, but the data device could not take them: reads of them
    /// fail from now on.
    pub(crate) fn release(&self, requests: &[Request], lost: bool) {
        let mut s = self.state.lock();
        for r in requests {
            release_one(&mut s, r.item(), lost);
        }
        drop(s);
        self.progress.notify_all();
    }

    /// Asks the thread to write and flush everything handed over so far, soon; does not wait.
    /// Returns the position asked for.
    pub(crate) fn request_flush(&self) -> LogPos {
        let mut s = self.state.lock();
        let target = s.handed_over;
        s.flush_upto = s.flush_upto.max(target);
        drop(s);
        self.work.notify_one();
        target
    }

    /// Waits until everything handed over so far is written and flushed; returns the error of
    /// the write-back, if it failed.
    pub(crate) fn sync(&self) -> Result {
        let target = self.request_flush();
        let mut s = self.state.lock();
        while s.flushed < target && s.error == 0 {
            self.progress.wait(&mut s);
        }
        match s.error {
            0 => Ok(()),
            e => Err(Error::from_errno(e)),
        }
    }

    /// Waits until nothing is pending or unwritten (the logger stopped sending), and flushes.
    pub(crate) fn quiesce(&self) -> Result {
        let mut s = self.state.lock();
        while !s.pending.is_empty() || !s.unwritten.is_empty() {
            self.progress.wait(&mut s);
        }
        drop(s);
        self.sync()
    }

    /// Writes `batches` (in log order) run by run, so that the data device gets as many writes
    /// at once as the order allows; after each run, releases its ranges, moves `written` past
    /// every batch it completed and frees their data.
    fn write_batches(&self, mut batches: KVec<Batch>) {
        let mut run = self.run.lock();
        let mut progress = Progress::default();
        // The first request of the next run: batch, then index in it.
        let mut from = (0usize, 0usize);
        loop {
            run.clear();
            let mut next = from;
            let mut count = 0usize;
            while let Some(batch) = batches.get(next.0) {
                match batch.requests.get(next.1) {
                    None => next = (next.0.saturating_add(1), 0),
                    Some(request) if run.add(&request.item()) => {
                        next.1 = next.1.saturating_add(1);
                        count = count.saturating_add(1);
                    }
                    Some(_) => break,
                }
            }
            let items = run_items(&batches, from, count);
            let result = if count == 0 { Ok(()) } else { write_run(&*self.dev, items.clone()) };
            let freed_before = progress.batches_done;
            self.run_done(items, result, &batches, &mut progress);
            if count == 0 {
                return;
            }
            // `next` is a request of a batch not yet complete, or past the last batch.
            from = next;
            for batch in batches.get_mut(freed_before..progress.batches_done).unwrap_or(&mut []) {
                batch.requests = KVec::new();
            }
        }
    }

    /// Records the outcome `result` of writing `items`, the next requests of `batches`: releases
    /// their ranges (as lost on error) and advances `written` over the batches now complete.
    fn run_done<'a>(
        &self,
        items: impl Iterator<Item = Item<'a>>,
        result: Result,
        batches: &[Batch],
        progress: &mut Progress,
    ) {
        let mut s = self.state.lock();
        let mut bytes = 0usize;
        for item in items {
            release_one(&mut s, item, result.is_err());
            progress.requests_done = progress.requests_done.saturating_add(1);
            bytes = bytes.saturating_add(logrec::record_len(item.data.len()));
        }
        s.pending_bytes = s.pending_bytes.saturating_sub(bytes);
        if let Err(e) = result {
            if s.error == 0 {
                pr_err!("write-back to the data device failed (error {}); the log keeps the data\n", e.to_errno());
                s.error = e.to_errno();
            }
        }
        while let Some(batch) = batches.get(progress.batches_done) {
            let through = progress.requests_before.saturating_add(batch.requests.len());
            if through > progress.requests_done {
                break;
            }
            if s.error == 0 {
                s.written = batch.end;
            }
            progress.requests_before = through;
            progress.batches_done = progress.batches_done.saturating_add(1);
        }
        drop(s);
        self.progress.notify_all();
    }

    /// Flushes the data device if something was written since the last flush.
    fn flush(&self) {
        let target = {
            let s = self.state.lock();
            if s.written == s.flushed || s.error != 0 {
                return;
            }
            s.written
        };
        let result = self.dev.flush();
        let mut s = self.state.lock();
        match result {
            Ok(()) if s.error == 0 => s.flushed = s.flushed.max(target),
            Ok(()) => {}
            Err(e) if s.error == 0 => {
                pr_err!("flush of the data device failed (error {}); the log keeps the data\n", e.to_errno());
                s.error = e.to_errno();
            }
            Err(_) => {}
        }
        drop(s);
        self.progress.notify_all();
    }

    /// Writes every pending batch, oldest first; false if there was none.
    fn write_pending(&self, wait: bool) -> bool {
        let batches = {
            let mut s = self.state.lock();
            let flush_due = s.flushed < s.flush_upto && s.error == 0;
            if wait && s.pending.is_empty() && !flush_due && !s.stopping {
                if s.written != s.flushed && s.error == 0 {
                    // Written but not flushed: sleep no longer than until the flush is due.
                    let left = FLUSH_INTERVAL_MS.saturating_sub(s.last_flush.elapsed().as_millis());
                    if left > 0 {
                        let ms = u32::try_from(left).unwrap_or(u32::MAX);
                        let _ = self.work.wait_interruptible_timeout(&mut s, msecs_to_jiffies(ms));
                    }
                } else {
                    // Nothing to do until a batch or a flush request arrives, or the thread stops
                    // (interruptible: an idle thread is no hung task).
                    let _ = self.work.wait_interruptible(&mut s);
                }
            }
            core::mem::replace(&mut s.pending, KVec::new())
        };
        let any = !batches.is_empty();
        self.write_batches(batches);
        any
    }
}

/// The `count` requests of `batches` from `from` (batch, index in it) on, as records.
fn run_items(batches: &[Batch], from: (usize, usize), count: usize) -> impl Iterator<Item = Item<'_>> + Clone {
    let rest = batches.get(from.0..).unwrap_or(&[]);
    rest.iter().flat_map(|b| b.requests.iter()).skip(from.1).take(count).map(Request::item)
}

/// How far [`WriteBack::write_batches`] got through its batches.
#[derive(Default)]
struct Progress {
    /// Requests written (or failed).
    requests_done: usize,
    /// Batches complete, from the first.
    batches_done: usize,
    /// Requests in those batches.
    requests_before: usize,
}

/// Most ranges noted as lost; beyond that every read fails (the data device is failing anyway).
const MAX_LOST: usize = 4096;

/// Releases `item`'s range from `unwritten` (once: the same range may be queued twice), and
/// notes it as lost if `lost`.
fn release_one(s: &mut State, item: Item<'_>, lost: bool) {
    if item.op == Op::Write || item.op == Op::Discard {
        let range = item.range();
        s.unwritten.remove(range);
        if lost && item.op == Op::Write && !s.lost_untracked {
            note_lost(s, range);
        }
    }
}

/// Adds `range` to the lost ranges, or gives up tracking them (no memory, or too many).
fn note_lost(s: &mut State, range: Range) {
    match Slot::new(range) {
        Ok(slot) if s.lost_count < MAX_LOST => {
            if s.lost.insert(slot).is_none() {
                s.lost_count += 1;
            }
        }
        _ => {
            s.lost_untracked = true;
            s.lost.clear();
            s.lost_count = 0;
        }
    }
}

impl Rounds for WriteBack {
    fn round(&self) -> u32 {
        self.write_pending(true);
        let due = {
            let mut s = self.state.lock();
            let due = s.flushed < s.flush_upto || s.last_flush.elapsed() >= Delta::from_millis(FLUSH_INTERVAL_MS);
            if due {
                s.last_flush = Instant::now();
            }
            due
        };
        if due {
            self.flush();
        }
        0
    }

    fn stop(&self) {
        self.state.lock().stopping = true;
        self.work.notify_all();
    }

    fn finish(&self) {
        while self.write_pending(false) {}
        self.flush();
    }
}
