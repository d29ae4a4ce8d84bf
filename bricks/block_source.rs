// SPDX-License-Identifier: GPL-2.0

//! The sync channel's side of the server brick: a primary's data device as secondaries sync
//! from it (block-read and checksum-request, docs/protocol.md).
//!
//! Only the primary of a resource serves its device: the bio brick its logger writes back to
//! ([`ModuleStatus::served_device`]). It is read as it is, while the write-back goes on; that is
//! what makes a sync followed by a replay consistent (lib/src/sync.rs says why). A request is
//! refused unless every block lies within the device, and a checksum request may cover at most
//! [`MAX_CHECKSUM_BYTES`], so one request never keeps the server reading for long.

use kernel::prelude::*;
use kernel::sync::Arc;

use super::bio::BioBrick;
use super::brick::{self, Brick, Io};
use crate::kx::iobuf::IoBuf;
use crate::mars_core::proto::ErrorCode;
use crate::mars_core::proto_msg::{Digests, LogEnd, Message, MAX_DATA};
use crate::kx::sha::sha256;
use crate::mars_core::sync::BLOCK;
use crate::status::ModuleStatus;
use crate::wire::Wire;

/// Bytes one checksum request may cover: 64 MiB.
pub(crate) const MAX_CHECKSUM_BYTES: u64 = 64 << 20;
/// Bytes per sector.
const SECTOR: u64 = 512;

/// Sends the error reply `code`, `message` for request `id`.
fn refuse(wire: &mut Wire<'_>, id: u64, code: ErrorCode, message: &str) -> Result {
    let mut scratch = [0u8; 256];
    crate::mars_core::session::send(wire, &Message::Error { code, message }, id, &mut scratch).map_err(|_| EPIPE)
}

/// The device of `resource` if this host is its primary; else the refusal is sent and `None`
/// returned.
fn device(wire: &mut Wire<'_>, status: &ModuleStatus, id: u64, resource: &str) -> Result<Option<Arc<BioBrick>>> {
    match status.served_device(resource.as_bytes()) {
        Some(dev) => Ok(Some(dev)),
        None => refuse(wire, id, ErrorCode::NOT_FOUND, "not the primary of this resource").map(|()| None),
    }
}

/// Where the log of `resource` ends now (read after the blocks, so every write they hold comes
/// from a record before it); `ENODEV` if the logger stopped meanwhile.
fn logged(status: &ModuleStatus, resource: &str) -> Result<LogEnd> {
    let at = status.served_logged(resource.as_bytes()).ok_or(ENODEV)?;
    Ok(LogEnd { seq: at.file, offset: at.offset })
}

/// Whether `count` bytes at `sector` lie within `dev`.
fn within(dev: &BioBrick, sector: u64, bytes: u64) -> bool {
    sector.checked_mul(SECTOR).and_then(|start| start.checked_add(bytes)).is_some_and(|end| end <= dev.size())
}

/// A buffer of at least `len` bytes in `buf` (kept by the session, grown to the largest request).
fn room(buf: &mut IoBuf, len: usize) -> Result {
    if buf.len() < len {
        *buf = IoBuf::zeroed(len)?;
    }
    Ok(())
}

/// Answers a block-read: `count_sectors` sectors of the device at `sector`.
pub(crate) fn read(
    wire: &mut Wire<'_>,
    status: &ModuleStatus,
    id: u64,
    (resource, sector, count_sectors): (&str, u64, u32),
    buf: &mut IoBuf,
) -> Result {
    let Some(dev) = device(wire, status, id, resource)? else { return Ok(()) };
    let len = u64::from(count_sectors) * SECTOR;
    if !within(&dev, sector, len) {
        return refuse(wire, id, ErrorCode::OUT_OF_RANGE, "beyond the end of the device");
    }
    let len = usize::try_from(len).map_err(|_| EINVAL)?.min(MAX_DATA);
    room(buf, len)?;
    brick::run(&*dev, Io::Read { pos: sector * SECTOR, into: buf.slice_mut(0..len)? })?;
    let logged = logged(status, resource)?;
    let mut head = [0u8; 64];
    let data = buf.get(..len).ok_or(EINVAL)?;
    crate::mars_core::session::send(wire, &Message::BlockData { sector, logged, data }, id, &mut head)
        .map_err(|_| EPIPE)
}

/// Hands `out` the SHA-256 of each of `count` blocks of `block` bytes from byte `pos` of `dev`,
/// in order. Block i+1 is read while block i is hashed, so digests come at the pace of the
/// slower of the disk and the hash, not of the two one after the other (both sides of a fast
/// sync use it). `buf` holds at least two blocks.
pub(crate) fn digest_blocks(
    dev: &BioBrick,
    pos: u64,
    block: usize,
    count: usize,
    buf: &mut IoBuf,
    mut out: impl FnMut(usize, [u8; 32]) -> Result,
) -> Result {
    let at = |i: usize| pos + (i as u64) * (block as u64);
    if count > 0 {
        brick::run(dev, Io::Read { pos: at(0), into: buf.slice_mut(0..block)? })?;
    }
    for i in 0..count {
        let mut halves = buf.chunks_mut(block);
        let (Some(first), Some(second)) = (halves.next(), halves.next()) else { return Err(EINVAL) };
        let (hashed, next) = if i % 2 == 0 { (first, second) } else { (second, first) };
        let digest = brick::batch(|b| {
            if i + 1 < count {
                dev.submit(b, Io::Read { pos: at(i + 1), into: next })?;
                b.dispatch();
            }
            Ok(sha256(hashed.bytes()))
        })?;
        out(i, digest)?;
    }
    Ok(())
}

/// Answers a checksum-request: the SHA-256 of each of `blocks` blocks of `block_sectors` sectors
/// from `sector`.
pub(crate) fn checksums(
    wire: &mut Wire<'_>,
    status: &ModuleStatus,
    id: u64,
    (resource, sector, block_sectors, blocks): (&str, u64, u32, u32),
    buf: &mut IoBuf,
) -> Result {
    let Some(dev) = device(wire, status, id, resource)? else { return Ok(()) };
    let block = u64::from(block_sectors) * SECTOR;
    let total = block * u64::from(blocks);
    if total > MAX_CHECKSUM_BYTES {
        return refuse(wire, id, ErrorCode::TOO_LARGE, "a checksum request covers at most 64 MiB");
    }
    if !within(&dev, sector, total) {
        return refuse(wire, id, ErrorCode::OUT_OF_RANGE, "beyond the end of the device");
    }
    let block = usize::try_from(block).map_err(|_| EINVAL)?;
    room(buf, 2 * block.max(BLOCK as usize))?;
    let mut digests = KVec::with_capacity(blocks as usize * 32, GFP_KERNEL)?;
    digest_blocks(&dev, sector * SECTOR, block, blocks as usize, buf, |_, d| Ok(digests.extend_from_slice(&d, GFP_KERNEL)?))?;
    let logged = logged(status, resource)?;
    let digests = Digests::new(&digests).ok_or(EINVAL)?;
    let mut frame = KVec::from_elem(0u8, 64 + digests.as_bytes().len(), GFP_KERNEL)?;
    let reply = Message::Checksums { sector, block_sectors, logged, digests };
    crate::mars_core::session::send(wire, &reply, id, &mut frame).map_err(|_| EPIPE)
}
