// SPDX-License-Identifier: GPL-2.0

//! Sets of sector ranges with lookups that do not scan: what the write-back has still to write,
//! and what it failed to write.
//!
//! A red-black tree keyed by `(start, end)`, with a count for a range present more than once (a
//! block rewritten before its first write reached the data device). Every range is at most
//! [`MAX_SPAN`] sectors long (one bio of `/dev/mars/NAME`), so the ranges that can overlap
//! `[a, b)` all start in `[a - MAX_SPAN, b)`: a lookup visits only those.

use kernel::prelude::*;
use kernel::rbtree::{RBTree, RBTreeNode};

/// Longest range, in sectors: 1 MiB, the largest bio the if brick takes (mars_blk.c).
pub(crate) const MAX_SPAN: u64 = 2048;

/// Sectors `[start, end)`.
pub(crate) type Range = (u64, u64);

/// A multiset of ranges, each at most [`MAX_SPAN`] sectors long.
pub(crate) struct RangeSet {
    /// Range -> how many times it is in the set (at least 1).
    tree: RBTree<Range, u32>,
}

/// Memory for one more range, allocated before a lock is taken.
pub(crate) struct Slot {
    range: Range,
    node: RBTreeNode<Range, u32>,
}

impl Slot {
    /// Room for `range`; `EINVAL` if it is longer than [`MAX_SPAN`] or empty.
    pub(crate) fn new(range: Range) -> Result<Slot> {
        let len = range.1.checked_sub(range.0).ok_or(EINVAL)?;
        if len == 0 || len > MAX_SPAN {
            return Err(EINVAL);
        }
        Ok(Slot { range, node: RBTreeNode::new(range, 1, GFP_KERNEL)? })
    }
}

impl RangeSet {
    /// An empty set.
    pub(crate) fn new() -> RangeSet {
        RangeSet { tree: RBTree::new() }
    }

    /// True if the set holds no range.
    pub(crate) fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// Adds the range of `slot` (once more, if it is there already). Returns the slot's memory
    /// when it was not needed, for the caller to free after its lock.
    pub(crate) fn insert(&mut self, slot: Slot) -> Option<Slot> {
        if let Some(count) = self.tree.get_mut(&slot.range) {
            *count = count.saturating_add(1);
            return Some(slot);
        }
        // Not present, so the insertion replaces no node.
        let _ = self.tree.insert(slot.node);
        None
    }

    /// Removes `range` once; false if it was not in the set.
    pub(crate) fn remove(&mut self, range: Range) -> bool {
        match self.tree.get_mut(&range) {
            Some(count) if *count > 1 => {
                *count -= 1;
                true
            }
            Some(_) => self.tree.remove(&range).is_some(),
            None => false,
        }
    }

    /// True if a range of the set shares a sector with `range`.
    pub(crate) fn overlaps(&mut self, range: Range) -> bool {
        let mut cursor = self.tree.cursor_lower_bound_mut(&(range.0.saturating_sub(MAX_SPAN), 0));
        while let Some(c) = cursor {
            let (r, _) = c.current();
            if r.0 >= range.1 {
                return false;
            }
            if r.1 > range.0 {
                return true;
            }
            cursor = c.move_next();
        }
        false
    }

    /// Empties the set.
    pub(crate) fn clear(&mut self) {
        self.tree = RBTree::new();
    }
}
