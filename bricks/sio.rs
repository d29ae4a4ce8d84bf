// SPDX-License-Identifier: GPL-2.0

//! The sio brick: a file under /mars (a logfile) as a brick.
//!
//! Synchronous VFS calls on an open file (`kernel_read`/`kernel_write` at explicit positions,
//! `fsync`): each request completes before `submit` returns. The file is opened with direct I/O
//! when written, so a completed write is on the log device, not in the page cache; a flush makes
//! it durable across a power loss.

use kernel::prelude::*;

use super::brick::{Batch, Brick, Io};
use crate::kx::errno::not_supported;
use crate::kx::file::{KFile, OpenMode};
use crate::kx::vfs::KPath;

/// An open logfile.
pub(crate) struct SioBrick {
    file: KFile,
    /// Bytes of the file the brick shows (`u64::MAX`: all of them, however it grows).
    limit: u64,
}

impl SioBrick {
    /// Opens the existing file `path` for reading.
    pub(crate) fn open(path: &KPath) -> Result<SioBrick> {
        Ok(SioBrick { file: KFile::open(path, OpenMode::Read)?, limit: u64::MAX })
    }

    /// Opens the existing file `path` for reading its first `len` bytes only: what another
    /// thread, appending to it meanwhile, has made durable.
    pub(crate) fn open_prefix(path: &KPath, len: u64) -> Result<SioBrick> {
        Ok(SioBrick { file: KFile::open(path, OpenMode::Read)?, limit: len })
    }

    /// Creates the new file `path` for direct-I/O writes (`EEXIST` if it exists): positions,
    /// lengths and buffers of writes must be multiples of the log device's logical block size.
    pub(crate) fn create(path: &KPath) -> Result<SioBrick> {
        Ok(SioBrick { file: KFile::open(path, OpenMode::CreateDirect)?, limit: u64::MAX })
    }

    /// Cuts the file to `length` bytes.
    pub(crate) fn truncate(&self, length: u64) -> Result {
        self.file.truncate(length)
    }
}

impl Brick for SioBrick {
    fn size(&self) -> u64 {
        self.file.size().min(self.limit)
    }

    /// A read beyond the end of the file reads zeros there (where a logfile reader stops).
    fn submit<'a>(&'a self, _batch: &Batch<'a>, io: Io<'a>) -> Result {
        match io {
            Io::Read { pos, into } => {
                let into = into.bytes();
                let n = self.file.read_at(into, pos)?;
                into.get_mut(n..).unwrap_or(&mut []).fill(0);
                Ok(())
            }
            Io::Write { pos, data } => self.file.write_all_at(data.bytes(), pos),
            Io::Flush => self.file.sync_data(),
            // Logfiles are only ever appended to and deleted whole.
            Io::Discard { .. } => Err(not_supported()),
        }
    }
}
