// SPDX-License-Identifier: GPL-2.0

//! A secondary's sync in the tree: `resource-RES/syncstatus-HOST` (a `SyncStatus`: `wanted`, or
//! `DONE/TOTAL` bytes copied, each maybe followed by ` full`) and `resource-RES/syncpos-HOST`
//! (`log-N-ORIGIN,OFF`: the primary's log end listed after the copy finished, which replay must
//! pass before HOST's device is consistent; `none` until then). Both are stored durably: a sync
//! resumes where its stored status says after a crash, and must never claim more than is on the
//! device. docs/replication.md.

use core::fmt::Write;

use kernel::prelude::*;

use crate::bricks::write_back::LogPos;
use crate::kx::vfs::KPath;
use crate::mars_core::sync::SyncStatus;
use crate::mars_core::tree::{EntryRef, Key};
use crate::replay_position;
use crate::status::ModuleStatus;
use crate::tree_store::{self, TargetBuf, TextBuf};

/// The live value of `key`, handed to `f`; `None` if absent or deleted.
fn with_value<T>(key: Key<'_>, f: impl FnOnce(&str) -> Option<T>) -> Result<Option<T>> {
    let key = key.to_buf()?;
    let mut buf = TargetBuf::new()?;
    match tree_store::get(key.as_str(), &mut buf)? {
        Some(entry) if !entry.deleted => Ok(f(entry.value)),
        _ => Ok(None),
    }
}

/// Stores `value` at `key` durably, unless it holds that already.
fn store(resource: &str, key: Key<'_>, value: &str, status: &ModuleStatus) -> Result {
    if with_value(key, |v| (v == value).then_some(()))?.is_some() {
        return Ok(());
    }
    let key = key.to_buf()?;
    let entry = EntryRef::live(key.as_str(), value, status.tick())?;
    status.store_entry_durable(&entry, &KPath::join(&[tree_store::ROOT, b"/resource-", resource.as_bytes()])?)
}

/// HOST's sync status of `resource`; `None` if there is none or it does not parse (either way a
/// sync is wanted).
pub(crate) fn load_status(resource: &str, host: &str) -> Result<Option<SyncStatus>> {
    with_value(Key::SyncStatus { resource, host }, SyncStatus::parse)
}

/// Stores HOST's sync status of `resource`.
pub(crate) fn store_status(resource: &str, host: &str, sync: SyncStatus, status: &ModuleStatus) -> Result {
    let mut value = TextBuf::new();
    write!(value, "{sync}").map_err(|_| EINVAL)?;
    store(resource, Key::SyncStatus { resource, host }, value.as_str(), status)
}

/// HOST's consistency mark of `resource` in `origin`'s log, if set.
pub(crate) fn load_mark(resource: &str, host: &str, origin: &str) -> Result<Option<LogPos>> {
    with_value(Key::SyncPosition { resource, host }, |v| replay_position::parse(v.as_bytes(), origin))
}

/// Sets (or with `None` clears) HOST's consistency mark of `resource` in `origin`'s log.
pub(crate) fn store_mark(resource: &str, host: &str, origin: &str, mark: Option<LogPos>, status: &ModuleStatus) -> Result {
    let mut value = TextBuf::new();
    match mark {
        Some(m) => {
            let name = crate::logfiles::name(m.file, origin)?;
            write!(value, "{},{}", tree_store::text(&name), m.offset).map_err(|_| EINVAL)?;
        }
        None => write!(value, "none").map_err(|_| EINVAL)?,
    }
    store(resource, Key::SyncPosition { resource, host }, value.as_str(), status)
}
