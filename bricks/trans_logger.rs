// SPDX-License-Identifier: GPL-2.0

//! The trans_logger brick: the write path of a primary.
//!
//! Every write, discard and flush that reaches `/dev/mars/NAME` becomes a record of the current
//! logfile. One logger thread commits in groups: it takes every queued request, encodes them into
//! one buffer, writes it with one `kernel_write` and makes it durable with one `fsync`; then it
//! acknowledges them all (so REQ_PREFLUSH and REQ_FUA are honoured: nothing is acknowledged
//! before it is durable in the log), writes the batch back to the data device and flushes that.
//! Reads that touch data not yet written back wait until it is; others go straight to the disk.
//!
//! If the log cannot be written (a full /mars, an I/O error on it) the resource enters emergency
//! mode: it stops logging, acknowledges writes once they are durable on the data device, and says
//! that a full sync will be needed. Users never see an error for a full log filesystem.

use kernel::prelude::*;
use kernel::sync::{Arc, CondVar, Mutex};
use kernel::time::msecs_to_jiffies;

use super::writeback::{self, overlaps, Item};
use crate::kx::bdev::BackingDevice;
use crate::kx::disk::{BioHandler, BioOp, IncomingBio, Inflight};
use crate::kx::file::KFile;
use crate::kx::kthread::Rounds;
use crate::mars_core::logrec::{self, Op, RecordHeader};
use crate::status::ModuleStatus;

/// A request waiting for the log.
struct Queued {
    /// The bio to acknowledge; taken when it is.
    bio: Option<IncomingBio>,
    op: Op,
    sector: u64,
    length: u32,
    data: KVVec<u8>,
}

impl Queued {
    fn item(&self) -> Item<'_> {
        Item { op: self.op, sector: self.sector, length: self.length, data: &self.data }
    }
}

/// Logger state shared between submitters, the logger thread and the strategy.
struct LogState {
    /// Requests not yet in the log.
    queue: KVec<Queued>,
    /// Sector ranges queued or logged but not yet durable on the data device.
    unwritten: KVec<(u64, u64)>,
    /// Sequence number of the next record.
    next_seq: u64,
    /// Bytes of the logfile written and durable.
    log_pos: u64,
    /// Bytes of the logfile whose records are durable on the data device too.
    written_back_pos: u64,
    /// Set once the log could not be written: logging stopped for good.
    emergency: bool,
    /// Errno of the last failed write-back, 0 if none.
    writeback_error: i32,
}

/// What the strategy publishes about a logger.
#[derive(Clone, Copy)]
pub(crate) struct LoggerStats {
    /// Bytes in the current logfile.
    pub(crate) log_pos: u64,
    /// Of which durable on the data device.
    pub(crate) written_back_pos: u64,
    /// Emergency mode (logging stopped, full sync needed).
    pub(crate) emergency: bool,
    /// Errno of the last failed write-back, 0 if none.
    pub(crate) writeback_error: i32,
}

/// The logger of one primary resource.
#[pin_data]
pub(crate) struct Logger {
    name: KVec<u8>,
    dev: Arc<BackingDevice>,
    /// Reads sent on to the data device and not yet completed.
    reads: Arc<Inflight>,
    /// The logfile being written; held while a batch is appended, swapped by a rotation.
    #[pin]
    log: Mutex<KFile>,
    status: Arc<ModuleStatus>,
    #[pin]
    state: Mutex<LogState>,
    /// Signalled when requests are queued.
    #[pin]
    work: CondVar,
    /// Signalled when ranges become durable on the data device.
    #[pin]
    written_back: CondVar,
}

impl Logger {
    /// A logger for resource `name` appending to the new, empty logfile `log`.
    pub(crate) fn new(
        name: &[u8],
        dev: Arc<BackingDevice>,
        log: KFile,
        status: Arc<ModuleStatus>,
    ) -> Result<impl PinInit<Self, Error>> {
        let mut owned = KVec::with_capacity(name.len(), GFP_KERNEL)?;
        owned.extend_from_slice(name, GFP_KERNEL)?;
        let reads = Inflight::new()?;
        Ok(try_pin_init!(Logger {
            name: owned,
            dev,
            reads,
            log <- kernel::new_mutex!(log),
            status,
            state <- kernel::new_mutex!(LogState {
                queue: KVec::new(),
                unwritten: KVec::new(),
                next_seq: 1,
                log_pos: 0,
                written_back_pos: 0,
                emergency: false,
                writeback_error: 0,
            }),
            work <- kernel::new_condvar!(),
            written_back <- kernel::new_condvar!(),
        }? Error))
    }

    /// Current counters.
    pub(crate) fn stats(&self) -> LoggerStats {
        let s = self.state.lock();
        LoggerStats {
            log_pos: s.log_pos,
            written_back_pos: s.written_back_pos,
            emergency: s.emergency,
            writeback_error: s.writeback_error,
        }
    }

    /// A read waits until no part of it is still only in the log, then goes to the data device.
    /// (Waiting for the write-back is fine here: the logger thread submits it, not this context.)
    fn read(&self, bio: IncomingBio) {
        let sectors = u64::from(bio.size()) >> 9;
        let range = (bio.sector(), bio.sector().saturating_add(sectors));
        {
            let mut state = self.state.lock();
            while state.unwritten.iter().any(|r| overlaps(*r, range)) {
                self.written_back.wait(&mut state);
            }
        }
        bio.remap(&self.dev, &self.reads);
    }

    /// Waits until every request received so far is logged, acknowledged and written back, and
    /// every read sent on to the data device has completed.
    pub(crate) fn quiesce(&self) {
        let mut state = self.state.lock();
        while !state.queue.is_empty() || !state.unwritten.is_empty() {
            self.written_back.wait(&mut state);
        }
        drop(state);
        self.reads.wait_idle();
    }

    fn enqueue(&self, bio: IncomingBio, op: Op) {
        let length = if op == Op::Flush { 0 } else { bio.size() };
        let data = if op == Op::Write {
            let mut data = match KVVec::from_elem(0u8, bio.size() as usize, GFP_KERNEL) {
                Ok(d) => d,
                Err(_) => return bio.end(Err(ENOMEM)),
            };
            if let Err(e) = bio.copy_out(&mut data) {
                return bio.end(Err(e));
            }
            data
        } else {
            KVVec::new()
        };
        let sector = bio.sector();
        let range = (sector, sector.saturating_add(u64::from(length) >> 9));
        let mut state = self.state.lock();
        if op != Op::Flush {
            if let Err(e) = state.unwritten.push(range, GFP_KERNEL) {
                drop(state);
                return bio.end(Err(e.into()));
            }
        }
        let queued = Queued { bio: Some(bio), op, sector, length, data };
        // On failure the request is dropped, which ends its bio with an I/O error.
        if state.queue.push(queued, GFP_KERNEL).is_err() {
            if op != Op::Flush {
                state.unwritten.pop();
            }
            return;
        }
        self.work.notify_one();
    }

    /// Appends the batch's records to the log and makes them durable.
    fn append(&self, batch: &[Queued]) -> Result {
        let mut total = 0usize;
        for q in batch {
            total = total.checked_add(logrec::record_len(q.data.len())).ok_or(EINVAL)?;
        }
        let mut buf = KVVec::from_elem(0u8, total, GFP_KERNEL)?;
        let (first_seq, pos) = {
            let s = self.state.lock();
            (s.next_seq, s.log_pos)
        };
        let mut seq = first_seq;
        let mut off = 0usize;
        for q in batch {
            let header = RecordHeader { op: q.op, seq, stamp: self.status.tick(), sector: q.sector, length: q.length };
            let out = buf.get_mut(off..).ok_or(EINVAL)?;
            off += logrec::encode_record(&header, &q.data, out).map_err(|_| EINVAL)?;
            seq = seq.saturating_add(1);
        }
        let log = self.log.lock();
        log.write_all_at(&buf, pos)?;
        log.sync_data()?;
        let mut s = self.state.lock();
        s.next_seq = seq;
        s.log_pos = pos.saturating_add(total as u64);
        Ok(())
    }

    /// Logs, acknowledges and writes back one batch.
    fn commit(&self, mut batch: KVec<Queued>) {
        let emergency = self.state.lock().emergency;
        let logged = if emergency { Err(ENOSPC) } else { self.append(&batch) };
        match &logged {
            Ok(()) => {
                for q in batch.iter_mut() {
                    if let Some(bio) = q.bio.take() {
                        bio.end(Ok(()));
                    }
                }
            }
            Err(e) if !emergency => {
                pr_err!(
                    "resource {}: cannot write its log (error {}): EMERGENCY MODE: logging stops, writes go straight to the data device, a full sync will be needed\n",
                    kernel::str::BStr::from_bytes(&self.name),
                    e.to_errno()
                );
                self.state.lock().emergency = true;
            }
            Err(_) => {}
        }
        let mut items = KVec::with_capacity(batch.len(), GFP_KERNEL);
        let written = match items.as_mut() {
            Ok(items) => {
                for q in batch.iter() {
                    // Capacity reserved above: cannot fail.
                    let _ = items.push(q.item(), GFP_KERNEL);
                }
                writeback::apply(&self.dev, items)
            }
            Err(_) => Err(ENOMEM),
        };
        drop(items);
        // Requests not acknowledged yet (emergency mode) are done once on the data device.
        for q in batch.iter_mut() {
            if let Some(bio) = q.bio.take() {
                bio.end(written);
            }
        }
        let mut s = self.state.lock();
        if let Err(e) = written {
            if s.writeback_error == 0 {
                pr_err!(
                    "resource {}: write-back to the data device failed (error {}); the log keeps the data\n",
                    kernel::str::BStr::from_bytes(&self.name),
                    e.to_errno()
                );
            }
            s.writeback_error = e.to_errno();
        } else {
            s.writeback_error = 0;
        }
        for q in batch.iter() {
            if q.op != Op::Flush {
                let range = (q.sector, q.sector.saturating_add(u64::from(q.length) >> 9));
                if let Some(i) = s.unwritten.iter().position(|r| *r == range) {
                    let _ = s.unwritten.remove(i);
                }
            }
        }
        if logged.is_ok() {
            s.written_back_pos = s.log_pos;
        }
        drop(s);
        self.written_back.notify_all();
    }

    /// Continues logging in the new, empty logfile `next`; the current one is closed. Batches are
    /// never split: this waits until the one being appended is durable.
    pub(crate) fn rotate(&self, next: KFile) {
        let mut log = self.log.lock();
        let old = core::mem::replace(&mut *log, next);
        let mut s = self.state.lock();
        s.next_seq = 1;
        s.log_pos = 0;
        s.written_back_pos = 0;
        drop(s);
        drop(log);
        drop(old);
    }

    /// Takes everything queued, waiting up to 100 ms for something to arrive.
    fn take_batch(&self, wait: bool) -> KVec<Queued> {
        let mut state = self.state.lock();
        if wait && state.queue.is_empty() {
            let _ = self.work.wait_interruptible_timeout(&mut state, msecs_to_jiffies(100));
        }
        core::mem::replace(&mut state.queue, KVec::new())
    }
}

impl BioHandler for Logger {
    fn submit(&self, bio: IncomingBio) {
        match bio.op() {
            BioOp::Read => self.read(bio),
            BioOp::Write => self.enqueue(bio, Op::Write),
            BioOp::Flush => self.enqueue(bio, Op::Flush),
            BioOp::Discard => self.enqueue(bio, Op::Discard),
            BioOp::WriteZeroes | BioOp::Unsupported => bio.end(Err(crate::kx::errno::not_supported())),
        }
    }
}

impl Rounds for Logger {
    fn round(&self) -> u32 {
        let batch = self.take_batch(true);
        if !batch.is_empty() {
            self.commit(batch);
        }
        0
    }

    fn finish(&self) {
        loop {
            let batch = self.take_batch(false);
            if batch.is_empty() {
                return;
            }
            self.commit(batch);
        }
    }
}
