// SPDX-License-Identifier: GPL-2.0

//! The one brick interface: a request for a range of bytes, its completion counted in a batch.
//!
//! A brick holds bytes at positions (a data device, a logfile; later a remote device through a
//! client brick) and takes reads, writes, discards and flushes of ranges of them. Whoever uses a
//! brick opens a [`Batch`] with [`batch`], submits any number of requests into it, to any bricks,
//! and the batch ends once every request has completed, with the first error: so independent
//! requests are in flight together (a run of writes to the data device goes out as one plug), and
//! the buffers they borrow stay until their I/O is done. A brick completes a request from any
//! context, maybe before `submit` returns (a file brick does its I/O right there).
//!
//! Bricks built on others take them as `&dyn Brick`: replay reads a logfile brick and writes a
//! data brick, the write-back writes a data brick, and a copy brick can take any two.

use kernel::prelude::*;

use crate::kx::iobuf::{IoSlice, IoSliceMut};

pub(crate) use crate::kx::bdev::{io_scope as batch, IoScope as Batch};

/// What a request asks of a brick. Positions and lengths are bytes.
pub(crate) enum Io<'a> {
    /// Fill `into` with the bytes at `pos`.
    Read {
        /// Byte position.
        pos: u64,
        /// Where the data goes.
        into: IoSliceMut<'a>,
    },
    /// Write `data` at `pos`.
    Write {
        /// Byte position.
        pos: u64,
        /// The data.
        data: IoSlice<'a>,
    },
    /// The `len` bytes at `pos` may be dropped (a hint: a brick may keep them).
    Discard {
        /// Byte position.
        pos: u64,
        /// Bytes.
        len: u64,
    },
    /// Make every write completed before this request durable.
    Flush,
}

/// A brick: bytes at positions, taking [`Io`] requests.
pub(crate) trait Brick: Send + Sync {
    /// Bytes the brick holds.
    fn size(&self) -> u64;

    /// Starts `io` within `batch`, which ends only after it has completed. An error returned
    /// here means the request did not start (or, for a brick that completes at once, failed).
    fn submit<'a>(&'a self, batch: &Batch<'a>, io: Io<'a>) -> Result;
}

/// Carries out the single request `io` on `brick` and waits for it.
pub(crate) fn run(brick: &dyn Brick, io: Io<'_>) -> Result {
    batch(|b| brick.submit(b, io))
}
