// SPDX-License-Identifier: GPL-2.0

//! Replay: applying a logfile's valid records to the data device, in order.
//!
//! Used at attach, before the device opens for I/O, to bring the data device up to date with
//! everything acknowledged before a crash. Replay is idempotent (records carry whole data), so
//! replaying a logfile that was already written back is harmless.

use kernel::prelude::*;

use super::apply::{apply, Item};
use super::brick::{run, Brick, Io};
use crate::kx::iobuf::IoBuf;
use crate::mars_core::logrec::{scan_record, Expect, Op, RecordHeader, Stop, StopReason, HEADER_LEN, MAX_DATA};

/// Bytes read from the logfile at a time: room for several of the largest records.
const WINDOW: usize = 4 << 20;

/// `len` rounded up to a multiple of 4 KiB.
fn align_up(len: usize) -> usize {
    len.div_ceil(4096).saturating_mul(4096)
}

/// Bytes of a record's payload that replay writes to the data device (pads carry none to write).
fn payload_len(header: &RecordHeader) -> usize {
    if header.op == Op::Write {
        header.length as usize
    } else {
        0
    }
}

/// The memory a replay works in, kept by a caller that replays again and again (the replay
/// thread of a secondary), so that each run neither allocates nor zeroes megabytes anew.
pub(crate) struct ReplayBuffers {
    /// The window of the logfile read at a time ([`WINDOW`] bytes, once allocated).
    window: IoBuf,
    /// The window's payloads at 4 KiB-aligned places; grown to the largest window's need.
    staging: IoBuf,
}

impl ReplayBuffers {
    /// No memory yet: the first replay allocates it.
    pub(crate) fn new() -> Self {
        ReplayBuffers { window: IoBuf::new(), staging: IoBuf::new() }
    }
}

/// What a replay did.
pub(crate) struct Replayed {
    /// Records applied.
    pub(crate) records: u64,
    /// Where and why the valid log ended.
    pub(crate) stop: Stop,
}

/// Applies every valid record of the logfile `log` from byte `start` on (a record boundary: 0, or
/// a position the write-back published) to the data brick `dev`, then flushes `dev`; works in
/// `mem`, which a caller that replays often keeps from call to call.
pub(crate) fn replay(log: &dyn Brick, start: u64, dev: &dyn Brick, mem: &mut ReplayBuffers) -> Result<Replayed> {
    // The window must hold at least one whole record.
    const _: () = assert!(WINDOW > HEADER_LEN + MAX_DATA as usize + 8);
    let size = log.size();
    if mem.window.len() < WINDOW {
        mem.window = IoBuf::zeroed(WINDOW)?;
    }
    let buf = &mut mem.window;
    let mut base = start; // file offset of buf[0]
    let mut filled = 0usize;
    // In the middle of a logfile the reader cannot know the sequence number to expect.
    let mut expect = if start == 0 { Expect::START } else { Expect::default() };
    let mut records = 0u64;
    loop {
        let at = base.saturating_add(filled as u64);
        let n = usize::try_from(size.saturating_sub(at)).unwrap_or(usize::MAX).min(WINDOW.saturating_sub(filled));
        if n > 0 {
            run(log, Io::Read { pos: at, into: buf.slice_mut(filled..filled + n)? })?;
        }
        filled = filled.saturating_add(n);
        let eof = at.saturating_add(n as u64) >= size;
        // First pass: find the window's valid records.
        let mut off = 0usize;
        let mut found = KVec::new();
        let stop = loop {
            let rest = buf.get(off..filled).unwrap_or(&[]);
            match scan_record(rest, base as usize + off, expect) {
                Ok(rec) => {
                    found.push((rec.header, off + HEADER_LEN), GFP_KERNEL)?;
                    expect = Expect::after(&rec.header);
                    off = off.saturating_add(rec.disk_len());
                    records = records.saturating_add(1);
                }
                Err(StopReason::End | StopReason::Truncated { .. }) if !eof => break None,
                Err(reason) => break Some(Stop { offset: base as usize + off, reason }),
            }
        };
        // Second pass: payloads sit 64 bytes into their records, not on a block boundary, and a
        // bio's segments must be; copy them to 4 KiB-aligned places of a staging buffer.
        let mut staged_len = 0usize;
        for (header, _) in found.iter() {
            staged_len = staged_len.checked_add(align_up(payload_len(header))).ok_or(EINVAL)?;
        }
        if mem.staging.len() < staged_len {
            mem.staging = IoBuf::zeroed(staged_len)?;
        }
        let staging = &mut mem.staging;
        let mut at = 0usize;
        for (header, data_at) in found.iter() {
            let len = payload_len(header);
            let from = buf.get(*data_at..data_at + len).ok_or(EINVAL)?;
            staging.get_mut(at..at + len).ok_or(EINVAL)?.copy_from_slice(from);
            at += align_up(len);
        }
        let mut items = KVec::with_capacity(found.len(), GFP_KERNEL)?;
        let mut at = 0usize;
        for (header, _) in found.iter() {
            let len = payload_len(header);
            let data = staging.slice(at..at + len)?;
            items.push(Item { op: header.op, sector: header.sector, length: header.length, data }, GFP_KERNEL)?;
            at += align_up(len);
        }
        apply(dev, &items)?;
        drop(items);
        if let Some(stop) = stop {
            if mem.staging.len() > WINDOW {
                // Small writes stage at 4 KiB each: do not keep what a window of them needed.
                mem.staging = IoBuf::new();
            }
            run(dev, Io::Flush)?;
            return Ok(Replayed { records, stop });
        }
        // Keep the incomplete record at the end of the window for the next read.
        buf.copy_within(off..filled, 0);
        filled -= off;
        base = base.saturating_add(off as u64);
    }
}
