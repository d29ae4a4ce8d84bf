// SPDX-License-Identifier: GPL-2.0

//! The if brick: `/dev/mars/NAME`, where the I/O of a resource's users enters its graph.
//!
//! A bio-based disk whose bios go, by operation, to the brick behind it (on a primary the
//! trans_logger). That brick gets them in `submit_bio` context, where it must not wait for I/O it
//! submits itself (such bios are only dispatched once `submit_bio` returns), so the interface is
//! its own: [`BioInput`] takes the bio and completes it later, from any thread. Operations the
//! device does not offer (write-zeroes, anything unknown) are refused here.

use kernel::prelude::*;
use kernel::sync::Arc;

use crate::kx::disk::{BioHandler, BioOp, Disk, IncomingBio};
use crate::kx::errno::not_supported;
use crate::mars_core::logrec::Op;

/// The brick behind an if brick.
pub(crate) trait BioInput: Send + Sync {
    /// A read: complete it once the newest data is in it.
    fn read(&self, bio: IncomingBio);
    /// A write, discard or flush (`op`): complete it once it is as durable as the bio asks.
    fn write(&self, bio: IncomingBio, op: Op);
}

impl<T: BioInput> BioHandler for T {
    fn submit(&self, bio: IncomingBio) {
        match bio.op() {
            BioOp::Read => self.read(bio),
            BioOp::Write => self.write(bio, Op::Write),
            BioOp::Flush => self.write(bio, Op::Flush),
            BioOp::Discard => self.write(bio, Op::Discard),
            BioOp::WriteZeroes | BioOp::Unsupported => bio.end(Err(not_supported())),
        }
    }
}

/// `/dev/mars/NAME`, alive until dropped (or [`IfBrick::remove`]d).
pub(crate) struct IfBrick<T: BioInput> {
    disk: Disk<T>,
}

impl<T: BioInput> IfBrick<T> {
    /// Creates `/dev/mars/{name}` of `size` bytes in front of `input`.
    pub(crate) fn create(name: &[u8], size: u64, input: Arc<T>) -> Result<IfBrick<T>> {
        Ok(IfBrick { disk: Disk::create(name, size / 512, input)? })
    }

    /// Removes the device: no new bio reaches the input after this; those it holds are still its
    /// to complete before the brick is dropped.
    pub(crate) fn remove(&mut self) {
        self.disk.remove();
    }

    /// How many have the device open now.
    pub(crate) fn openers(&self) -> u32 {
        self.disk.openers()
    }
}
