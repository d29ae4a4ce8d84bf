// SPDX-License-Identifier: GPL-2.0

//! This host's logfiles of a resource: `/mars/resource-NAME/log-NUMBER-HOST`.

use kernel::prelude::*;

use crate::kx::file::{KFile, OpenMode};
use crate::kx::vfs::{self, KPath};
use crate::mars_core::names::{format_logfile_name, parse_logfile_name, LOGFILE_NAME_MAX};

/// `log-NUMBER-HOST` as bytes.
pub(crate) fn name(number: u32, host: &str) -> Result<KVec<u8>> {
    let mut buf = [0u8; LOGFILE_NAME_MAX];
    let n = format_logfile_name(number, host, &mut buf)?;
    let mut out = KVec::with_capacity(n, GFP_KERNEL)?;
    out.extend_from_slice(buf.get(..n).ok_or(EINVAL)?, GFP_KERNEL)?;
    Ok(out)
}

/// `DIR/log-NUMBER-HOST`.
pub(crate) fn path(dir: &KPath, number: u32, host: &str) -> Result<KPath> {
    KPath::join(&[dir.as_bytes(), b"/", &name(number, host)?])
}

/// Numbers of `host`'s logfiles in `dir`, ascending.
pub(crate) fn numbers(dir: &KPath, host: &str) -> Result<KVec<u32>> {
    let mut found = KVec::new();
    vfs::list(dir, |vfs::DirEntry { name: entry, .. }| {
        if let Ok((number, origin)) = parse_logfile_name(entry) {
            if origin == host {
                // Kept sorted as it grows (a directory holds a handful of logfiles), so no
                // general sort with its panic paths is needed.
                found.push(number, GFP_KERNEL)?;
                let mut i = found.len().saturating_sub(1);
                while i > 0 && found.get(i - 1).is_some_and(|prev| *prev > number) {
                    found.swap(i - 1, i);
                    i -= 1;
                }
            }
        }
        Ok(())
    })?;
    Ok(found)
}

/// Removes `host`'s logfile `number` from `dir`; `ENOENT` if it is not there.
pub(crate) fn unlink(dir: &KPath, number: u32, host: &str) -> Result {
    vfs::unlink(dir, &KPath::join(&[&name(number, host)?])?)
}

/// Deletes `host`'s logfiles in `dir` numbered below `limit` and makes the deletion durable;
/// returns how many it deleted.
pub(crate) fn delete_below(dir: &KPath, host: &str, limit: u32) -> Result<u32> {
    delete_where(dir, host, |number| number < limit)
}

/// Deletes `host`'s logfiles in `dir` numbered above `limit` and makes the deletion durable;
/// returns how many it deleted.
pub(crate) fn delete_above(dir: &KPath, host: &str, limit: u32) -> Result<u32> {
    delete_where(dir, host, |number| number > limit)
}

/// Deletes `host`'s logfiles in `dir` whose numbers `doomed` picks, durably.
fn delete_where(dir: &KPath, host: &str, doomed: impl Fn(u32) -> bool) -> Result<u32> {
    let mut deleted = 0u32;
    let mut seen = false;
    for number in numbers(dir, host)? {
        if !doomed(number) {
            continue;
        }
        seen = true;
        match unlink(dir, number, host) {
            Ok(()) => deleted = deleted.saturating_add(1),
            // Deleted meanwhile by someone else (log-delete and emergency mode may race): gone
            // is what was asked for.
            Err(e) if e == ENOENT => {}
            Err(e) => return Err(e),
        }
    }
    // Also when another caller did the unlinking: its sync may not have happened yet.
    if seen {
        KFile::open(dir, OpenMode::Read)?.sync_all()?;
    }
    Ok(deleted)
}
