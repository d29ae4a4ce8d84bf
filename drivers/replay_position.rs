// SPDX-License-Identifier: GPL-2.0

//! `resource-NAME/replay-HOST`: how far HOST's data device holds the log of ORIGIN, the host
//! that wrote it: HOST itself on a primary, the primary on a secondary.
//!
//! Value `log-NUMBER-ORIGIN,OFFSET`: every record of the logfiles numbered below NUMBER and the
//! first OFFSET bytes of logfile NUMBER are durable on the data device. Attach replays from
//! there; a new logfile is numbered above it, so numbers keep growing even after every logfile
//! was deleted. Published by the strategy after write-back flushes and after a replay, and by a
//! secondary's fetch after each replay of fetched records; a lost update only means replaying
//! more, which is harmless (docs/resource-control.md).

use core::fmt::Write;

use kernel::prelude::*;

use crate::bricks::write_back::LogPos;
use crate::kx::vfs::KPath;
use crate::mars_core::names::parse_logfile_name;
use crate::mars_core::tree::{EntryRef, Key};
use crate::status::ModuleStatus;
use crate::tree_store::{self, TargetBuf, TextBuf};

/// The stored position of `host` for `resource` in `origin`'s log, if any (and readable).
pub(crate) fn load(resource: &str, host: &str, origin: &str) -> Result<Option<LogPos>> {
    let key = Key::ReplayPosition { resource, host }.to_buf()?;
    let mut buf = TargetBuf::new()?;
    let Some(entry) = tree_store::get(key.as_str(), &mut buf)? else {
        return Ok(None);
    };
    if entry.deleted {
        return Ok(None);
    }
    Ok(parse(entry.value.as_bytes(), origin))
}

/// Where every other host of `resource` stands in `origin`'s log (`replay-HOST` of hosts but
/// `origin` whose position lies in that log; deleted keys, those of hosts that left, do not
/// count): what the primary `origin` must keep its logfiles for.
pub(crate) fn others(resource: &str, origin: &str) -> Result<KVec<(KVec<u8>, LogPos)>> {
    let dir = KPath::join(&[tree_store::ROOT, b"/resource-", resource.as_bytes()])?;
    let mut hosts: KVec<KVec<u8>> = KVec::new();
    crate::kx::vfs::list(&dir, |crate::kx::vfs::DirEntry { name, .. }| {
        if let Some(host) = name.strip_prefix(b"replay-") {
            if host != origin.as_bytes() {
                let mut owned = KVec::with_capacity(host.len(), GFP_KERNEL)?;
                owned.extend_from_slice(host, GFP_KERNEL)?;
                hosts.push(owned, GFP_KERNEL)?;
            }
        }
        Ok(())
    })?;
    let mut found = KVec::with_capacity(hosts.len(), GFP_KERNEL)?;
    for host in hosts {
        let Ok(name) = core::str::from_utf8(&host) else { continue };
        if let Ok(Some(pos)) = load(resource, name, origin) {
            found.push((host, pos), GFP_KERNEL)?;
        }
    }
    Ok(found)
}

/// `log-NUMBER-ORIGIN,OFFSET` of `origin`; `None` if malformed or of another origin.
pub(crate) fn parse(value: &[u8], origin_wanted: &str) -> Option<LogPos> {
    let comma = value.iter().position(|&b| b == b',')?;
    let (name, offset) = (value.get(..comma)?, value.get(comma + 1..)?);
    let (file, origin) = parse_logfile_name(name).ok()?;
    if origin != origin_wanted {
        return None;
    }
    let offset = core::str::from_utf8(offset).ok()?.parse::<u64>().ok()?;
    Some(LogPos { file, offset })
}

/// Stores `pos` in `origin`'s log for `host` unless it is what is stored already.
pub(crate) fn store(resource: &str, host: &str, origin: &str, pos: LogPos, status: &ModuleStatus) -> Result {
    store_as(resource, host, origin, pos, status, false)
}

/// Like [`store`], durable before peers see it: a secondary's position, which its primary acts
/// on when it deletes logfiles, must not go back in a power cut.
pub(crate) fn store_durable(resource: &str, host: &str, origin: &str, pos: LogPos, status: &ModuleStatus) -> Result {
    store_as(resource, host, origin, pos, status, true)
}

fn store_as(resource: &str, host: &str, origin: &str, pos: LogPos, status: &ModuleStatus, durable: bool) -> Result {
    if load(resource, host, origin)? == Some(pos) {
        return Ok(());
    }
    let name = crate::logfiles::name(pos.file, origin)?;
    let mut value = TextBuf::new();
    write!(value, "{},{}", tree_store::text(&name), pos.offset).map_err(|_| EINVAL)?;
    let key = Key::ReplayPosition { resource, host }.to_buf()?;
    let entry = EntryRef::live(key.as_str(), value.as_str(), status.tick())?;
    if durable {
        status.store_entry_durable(&entry, &KPath::join(&[tree_store::ROOT, b"/resource-", resource.as_bytes()])?)
    } else {
        status.store_entry(&entry)
    }
}
