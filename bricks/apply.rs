// SPDX-License-Identifier: GPL-2.0

//! Applying log records to the data device: in log order, as parallel as order allows.
//!
//! Writes that do not overlap go out together; a write that overlaps an earlier one of the same
//! run waits until that one has completed, so the device ends up holding the newest data. The
//! write-back thread uses this, and so does the replay at attach for crash recovery.

use kernel::prelude::*;

use crate::kx::bdev::{io_scope, BackingDevice};
use crate::mars_core::logrec::Op;

/// One record to apply.
#[derive(Clone, Copy)]
pub(crate) struct Item<'a> {
    /// Operation.
    pub(crate) op: Op,
    /// Target sector.
    pub(crate) sector: u64,
    /// Bytes affected.
    pub(crate) length: u32,
    /// Payload of a write.
    pub(crate) data: &'a [u8],
}

impl Item<'_> {
    /// Sectors `[start, end)` the item touches (none for a flush).
    pub(crate) fn range(&self) -> (u64, u64) {
        let sectors = u64::from(self.length) >> 9;
        (self.sector, self.sector.saturating_add(sectors))
    }
}

/// True if the sector ranges `a` and `b` share a sector.
pub(crate) fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// Applies `items` in order (without flushing the device). Discards are a hint: a device that
/// cannot discard keeps its data, which is allowed. Flushes and pads have nothing to apply: the
/// log order already orders the writes around a flush.
pub(crate) fn apply(dev: &BackingDevice, items: &[Item<'_>]) -> Result {
    let mut start = 0;
    while start < items.len() {
        let run = items.get(start..).unwrap_or(&[]);
        let mut taken = 0usize;
        io_scope(|scope| {
            for (i, item) in run.iter().enumerate() {
                let earlier = run.get(..i).unwrap_or(&[]);
                if earlier.iter().any(|e| overlaps(e.range(), item.range())) {
                    break;
                }
                match item.op {
                    Op::Write => scope.write(dev, item.sector, item.data)?,
                    Op::Discard | Op::Flush | Op::Pad => {}
                }
                taken = i + 1;
            }
            Ok(())
        })?;
        let discards = run.get(..taken).unwrap_or(&[]);
        if discards.iter().any(|d| d.op == Op::Discard) {
            // Errors ignored on purpose: see the function's comment.
            let _ = io_scope(|scope| {
                for d in discards.iter().filter(|d| d.op == Op::Discard) {
                    scope.discard(dev, d.sector, d.length as usize)?;
                }
                Ok(())
            });
        }
        start = start.saturating_add(taken.max(1));
    }
    Ok(())
}
