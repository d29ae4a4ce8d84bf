// SPDX-License-Identifier: GPL-2.0

//! Applying log records to the data device: in log order, as parallel as order allows.
//!
//! Records are written in runs: a run takes records in log order until one overlaps a record
//! already in the run (or the run is full), then all of its writes go out at once and the run
//! waits for them. So a write that overlaps an earlier one is only submitted once that one has
//! completed, and the device ends up holding the newest data. The write-back thread uses this,
//! and so does the replay at attach for crash recovery.

use kernel::prelude::*;

use super::brick::{batch, Brick, Io};
use crate::kx::iobuf::IoSlice;
use crate::mars_core::logrec::Op;

/// Most records written at once: bounds the bios in flight per data device.
const MAX_RUN: usize = 256;

/// One record to apply.
#[derive(Clone, Copy)]
pub(crate) struct Item<'a> {
    /// Operation.
    pub(crate) op: Op,
    /// Target sector.
    pub(crate) sector: u64,
    /// Bytes affected.
    pub(crate) length: u32,
    /// Payload of a write (empty for the other operations).
    pub(crate) data: IoSlice<'a>,
}

impl Item<'_> {
    /// Byte position of the record's first sector.
    fn pos(&self) -> Result<u64> {
        self.sector.checked_mul(512).ok_or(EINVAL)
    }

    /// Sectors `[start, end)` the item touches (none for a flush).
    pub(crate) fn range(&self) -> (u64, u64) {
        let sectors = u64::from(self.length) >> 9;
        (self.sector, self.sector.saturating_add(sectors))
    }
}

/// True if the sector ranges `a` and `b` share a sector.
fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// The sector ranges of a run: records that do not overlap one another, to be written at once.
/// Owns no record, so one can be kept and reused.
pub(crate) struct Run {
    /// The non-empty ranges taken, sorted by start; disjoint.
    ranges: KVec<(u64, u64)>,
    /// Records taken (including those without a range: flushes, pads).
    count: usize,
}

impl Run {
    /// An empty run.
    pub(crate) fn new() -> Result<Self> {
        Ok(Run { ranges: KVec::with_capacity(MAX_RUN, GFP_KERNEL)?, count: 0 })
    }

    /// Takes `item` unless the run is full or `item` overlaps a record already taken.
    pub(crate) fn add(&mut self, item: &Item<'_>) -> bool {
        if self.count >= MAX_RUN {
            return false;
        }
        let range = item.range();
        if range.0 < range.1 {
            // Where `range` goes among the disjoint, sorted ranges: only its neighbours can
            // overlap it.
            let at = self.ranges.partition_point(|r| r.0 < range.0);
            let before = at.checked_sub(1).and_then(|i| self.ranges.get(i));
            let after = self.ranges.get(at);
            if before.is_some_and(|b| overlaps(*b, range)) || after.is_some_and(|a| overlaps(*a, range)) {
                return false;
            }
            // Cannot fail: at most MAX_RUN ranges, the capacity.
            if self.ranges.insert_within_capacity(at, range).is_err() {
                return false;
            }
        }
        self.count += 1;
        true
    }

    /// Empties the run.
    pub(crate) fn clear(&mut self) {
        self.ranges.clear();
        self.count = 0;
    }
}

/// Writes `items`, records of one [`Run`], to `dev` at once and waits for them (without
/// flushing the device). Discards are a hint: a device that cannot discard keeps its data, which
/// is allowed. Flushes and pads have nothing to apply: the log order already orders the writes
/// around a flush.
pub(crate) fn write_run<'a>(dev: &dyn Brick, items: impl Iterator<Item = Item<'a>> + Clone) -> Result {
    batch(|b| {
        for item in items.clone().filter(|i| i.op == Op::Write) {
            dev.submit(b, Io::Write { pos: item.pos()?, data: item.data })?;
        }
        Ok(())
    })?;
    let mut discards = items.filter(|i| i.op == Op::Discard).peekable();
    if discards.peek().is_some() {
        // Errors ignored on purpose: see above.
        let _ = batch(|b| {
            for d in discards {
                dev.submit(b, Io::Discard { pos: d.pos()?, len: u64::from(d.length) })?;
            }
            Ok(())
        });
    }
    Ok(())
}

/// Applies `items` in order, run by run (without flushing the device).
pub(crate) fn apply(dev: &dyn Brick, items: &[Item<'_>]) -> Result {
    let mut run = Run::new()?;
    let mut rest = items;
    while !rest.is_empty() {
        let taken = rest.iter().take_while(|item| run.add(item)).count();
        if taken == 0 {
            // An empty run takes any record; not reached.
            return Err(EINVAL);
        }
        let (now, later) = rest.split_at(taken);
        write_run(dev, now.iter().copied())?;
        run.clear();
        rest = later;
    }
    Ok(())
}
