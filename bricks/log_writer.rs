// SPDX-License-Identifier: GPL-2.0

//! Appending group commits to a logfile (a [`SioBrick`]): the trans_logger's log side.
//!
//! The file is written with direct I/O, so a completed append is on the log device, as a
//! completed write to a disk is (a device flush, [`LogWriter::sync`], makes it durable across a
//! power loss). For that to hold without a filesystem journal commit per append, the space is
//! preallocated by writing zeros ahead of the appends (and syncing once per step): appends then
//! overwrite allocated, initialised blocks, which needs no metadata update. A zero tail is where
//! the reader stops cleanly (docs/log-format.md).

use kernel::prelude::*;

use super::brick::{run, Io};
use super::sio::SioBrick;
use crate::kx::iobuf::IoBuf;
use crate::kx::vfs::KPath;
use crate::mars_core::logrec;

/// Appends start on multiples of this many bytes (direct I/O needs logical-block alignment).
pub(crate) const BLOCK: usize = 512;
/// Zeros written ahead of the appends at a time.
const PREALLOC_STEP: u64 = 16 << 20;
/// Size of the zero buffer the preallocation writes from.
const ZERO_CHUNK: usize = 1 << 20;

/// The logfile being appended to.
pub(crate) struct LogWriter {
    file: SioBrick,
    /// Number of the logfile (`log-NUMBER-HOST`).
    number: u32,
    /// Bytes appended.
    pos: u64,
    /// Sequence number of the next record.
    next_seq: u64,
    /// Bytes initialised with zeros and durable.
    prealloc_end: u64,
    /// Zeros for the preallocation; 1 MiB from kvmalloc, so aligned as direct I/O needs.
    zeros: IoBuf,
    /// The batch being encoded; a power of two of at least 1 MiB (aligned), grown as needed,
    /// reused.
    buf: IoBuf,
}

impl LogWriter {
    /// Creates the new, empty logfile `path` with number `number` and preallocates its first
    /// step. Fails (`ENOSPC` on a full /mars) without leaving the caller anything to undo but
    /// the file.
    pub(crate) fn create(path: &KPath, number: u32) -> Result<LogWriter> {
        let file = SioBrick::create(path)?;
        let zeros = IoBuf::zeroed(ZERO_CHUNK)?;
        let mut writer = LogWriter { file, number, pos: 0, next_seq: 1, prealloc_end: 0, zeros, buf: IoBuf::new() };
        writer.preallocate(PREALLOC_STEP)?;
        Ok(writer)
    }

    /// The logfile's number.
    pub(crate) fn number(&self) -> u32 {
        self.number
    }

    /// Bytes appended so far.
    pub(crate) fn pos(&self) -> u64 {
        self.pos
    }

    /// Sequence numbers for the next `count` records: returns the first.
    pub(crate) fn take_seqs(&mut self, count: u64) -> u64 {
        let first = self.next_seq;
        self.next_seq = first.saturating_add(count);
        first
    }

    /// A buffer of `len` bytes (old contents) to encode the next batch into.
    pub(crate) fn buffer(&mut self, len: usize) -> Result<&mut [u8]> {
        if self.buf.len() < len {
            self.buf = IoBuf::new();
            self.buf = IoBuf::zeroed(len.next_power_of_two().max(ZERO_CHUNK))?;
        }
        self.buf.get_mut(..len).ok_or(EINVAL)
    }

    /// Appends the first `len` bytes of [`Self::buffer`] (a multiple of [`BLOCK`]) and waits
    /// until they are on the log device.
    pub(crate) fn append(&mut self, len: usize) -> Result {
        if len % BLOCK != 0 {
            return Err(EINVAL);
        }
        let end = self.pos.checked_add(len as u64).ok_or(EFBIG)?;
        if end > self.prealloc_end {
            self.preallocate(end.saturating_sub(self.prealloc_end).max(PREALLOC_STEP))?;
        }
        run(&self.file, Io::Write { pos: self.pos, data: self.buf.slice(0..len)? })?;
        self.pos = end;
        Ok(())
    }

    /// Makes everything appended durable (a device flush).
    pub(crate) fn sync(&self) -> Result {
        run(&self.file, Io::Flush)
    }

    /// Writes `len` more bytes of zeros at the end of the preallocated space, then makes them
    /// and the file's new size durable.
    fn preallocate(&mut self, len: u64) -> Result {
        let end = self.prealloc_end.checked_add(len).ok_or(EFBIG)?;
        let mut at = self.prealloc_end;
        while at < end {
            let n = usize::try_from(end - at).unwrap_or(ZERO_CHUNK).min(ZERO_CHUNK);
            run(&self.file, Io::Write { pos: at, data: self.zeros.slice(0..n)? })?;
            at = at.saturating_add(n as u64);
        }
        run(&self.file, Io::Flush)?;
        self.prealloc_end = end;
        Ok(())
    }
}

impl LogWriter {
    /// Cuts the unused preallocated tail now (a logfile closed for good: rotation, end of
    /// primary), so that the file's size is its records; done again, harmlessly, when dropped.
    pub(crate) fn close(&mut self) {
        self.cut();
    }

    fn cut(&mut self) {
        if let Err(e) = self.file.truncate(self.pos) {
            pr_warn!(
                "cannot cut logfile {} to its {} bytes (error {}); its zero tail stays\n",
                self.number,
                self.pos,
                e.to_errno()
            );
        }
    }
}

impl Drop for LogWriter {
    /// A logfile is closed for good: its unused preallocated tail goes.
    fn drop(&mut self) {
        self.cut();
    }
}

/// Bytes of the pad record that ends a batch of `len` bytes on a [`BLOCK`] boundary.
pub(crate) const fn pad_after(len: usize) -> usize {
    logrec::pad_len(len, BLOCK)
}
