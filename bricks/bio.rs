// SPDX-License-Identifier: GPL-2.0

//! The bio brick: a local block device (a resource's data device) as a brick.
//!
//! Requests become bios of the module's own (through the batch's I/O scope), so many are in flight
//! at once; reads of `/dev/mars/NAME` that need no waiting are sent on as clones of the incoming
//! bio instead ([`BioBrick::remap`]), without a copy.

use kernel::prelude::*;
use kernel::sync::Arc;

use super::brick::{Batch, Brick, Io};
use crate::kx::bdev::BackingDevice;
use crate::kx::disk::{IncomingBio, Inflight};
use crate::kx::vfs::KPath;

/// Bytes per sector, the unit of block-device positions.
const SECTOR: u64 = 512;

/// An open data device.
pub(crate) struct BioBrick {
    dev: BackingDevice,
}

impl BioBrick {
    /// Opens the block device `path` exclusively; `EBUSY` if it is in use.
    pub(crate) fn open(path: &KPath) -> Result<BioBrick> {
        Ok(BioBrick { dev: BackingDevice::open(path)? })
    }

    /// Sends the incoming bio on to the same place of this device without waiting (right in
    /// `submit_bio` context); `inflight` counts it until it completes.
    pub(crate) fn remap(&self, bio: IncomingBio, inflight: &Arc<Inflight>) {
        bio.remap(&self.dev, inflight);
    }

    /// Waits until every write completed so far is durable.
    pub(crate) fn flush(&self) -> Result {
        self.dev.flush()
    }
}

/// The sector of byte position `pos`; `EINVAL` unless on a sector boundary.
fn sector_of(pos: u64) -> Result<u64> {
    if pos % SECTOR == 0 {
        Ok(pos / SECTOR)
    } else {
        Err(EINVAL)
    }
}

impl Brick for BioBrick {
    fn size(&self) -> u64 {
        self.dev.sectors().saturating_mul(SECTOR)
    }

    fn submit<'a>(&'a self, batch: &Batch<'a>, io: Io<'a>) -> Result {
        match io {
            Io::Read { pos, into } => batch.read(&self.dev, sector_of(pos)?, into),
            Io::Write { pos, data } => batch.write(&self.dev, sector_of(pos)?, data),
            Io::Discard { pos, len } => {
                batch.discard(&self.dev, sector_of(pos)?, usize::try_from(len).map_err(|_| EINVAL)?)
            }
            // A flush waits right here: it covers the writes completed before it, as a
            // REQ_OP_FLUSH does.
            Io::Flush => self.dev.flush(),
        }
    }
}
