// SPDX-License-Identifier: GPL-2.0

//! The replication channel's side of the server brick: this host's logfiles as secondaries
//! fetch them (log-list and log-fetch, docs/protocol.md).
//!
//! A secondary must never get a byte the primary could still lose or change: of the logfile a
//! logger writes, only what is durable (the logger reports it, [`ModuleStatus::served_len`]);
//! of the logfile a rotation just closed, its final length; of one the logger has not begun
//! (created ahead, full of zeros), nothing. Every other logfile is closed for good and durable,
//! and is served whole.

use kernel::prelude::*;

use crate::kx::file::{KFile, OpenMode};
use crate::kx::vfs::KPath;
use crate::logfiles;
use crate::mars_core::names::parse_logfile_name;
use crate::mars_core::proto::ErrorCode;
use crate::mars_core::proto_msg::{LogEntries, LogEntry, Message, MAX_DATA, MAX_LOG_ENTRIES};
use crate::mars_core::session;
use crate::status::ModuleStatus;
use crate::tree_store::ROOT;
use crate::wire::Wire;

/// How much of this host's logfile `number` of `resource` may be fetched; `None` if it is gone.
fn servable(status: &ModuleStatus, dir: &KPath, resource: &str, number: u32, host: &str) -> Result<Option<u64>> {
    if let Some(len) = status.served_len(resource.as_bytes(), number) {
        return Ok(Some(len));
    }
    match KFile::open(&logfiles::path(dir, number, host)?, OpenMode::Read) {
        Ok(f) => Ok(Some(f.size())),
        Err(e) if e == ENOENT => Ok(None),
        Err(e) => Err(e),
    }
}

/// The directory of `resource`.
fn dir_of(resource: &str) -> Result<KPath> {
    KPath::join(&[ROOT, b"/resource-", resource.as_bytes()])
}

/// Answers a log-list-request: this host's logfiles of `resource`, oldest first, each with the
/// bytes that may be fetched of it.
pub(crate) fn list(wire: &mut Wire<'_>, status: &ModuleStatus, id: u64, resource: &str) -> Result {
    let host = status.host_str().ok_or(EINVAL)?;
    let dir = dir_of(resource)?;
    let numbers = match logfiles::numbers(&dir, host) {
        Ok(n) => n,
        // No such resource here: no logfiles.
        Err(e) if e == ENOENT || e == ENOTDIR => KVec::new(),
        Err(e) => return Err(e),
    };
    // Newest first: a rotation may happen while the list is made, and a secondary fetches a
    // logfile only once it is listed with bytes, after the older ones are fetched to their
    // listed lengths. Read in this order, a listed newer logfile with bytes means that the older
    // ones, read after it, are listed at their final lengths (the logger closes a logfile
    // before it writes the next one).
    let numbers = numbers.get(..numbers.len().min(MAX_LOG_ENTRIES as usize)).unwrap_or(&[]);
    let mut sizes: KVec<Option<u64>> = KVec::with_capacity(numbers.len(), GFP_KERNEL)?;
    sizes.resize(numbers.len(), None, GFP_KERNEL)?;
    for (&number, size) in numbers.iter().zip(sizes.iter_mut()).rev() {
        *size = servable(status, &dir, resource, number, host)?;
    }
    // The names back to back, then the entries borrowing them.
    let mut names: KVec<u8> = KVec::new();
    let mut found: KVec<(usize, usize, u64)> = KVec::new();
    for (&number, size) in numbers.iter().zip(sizes.iter()) {
        let Some(size) = *size else { continue };
        let name = logfiles::name(number, host)?;
        found.push((names.len(), name.len(), size), GFP_KERNEL)?;
        names.extend_from_slice(&name, GFP_KERNEL)?;
    }
    let mut entries = KVec::with_capacity(found.len(), GFP_KERNEL)?;
    let mut frame_len = 128 + resource.len();
    for &(start, len, size) in found.iter() {
        let name = core::str::from_utf8(names.get(start..start + len).ok_or(EINVAL)?).map_err(|_| EINVAL)?;
        entries.push(LogEntry { name, size }, GFP_KERNEL)?;
        frame_len += 2 + len + 8;
    }
    let reply = Message::LogList { resource, entries: LogEntries::from_list(&entries) };
    let mut frame = KVVec::from_elem(0u8, frame_len, GFP_KERNEL)?;
    session::send(wire, &reply, id, &mut frame).map_err(|_| EPIPE)
}

/// Answers a log-fetch: up to `length` bytes of logfile `file` of `resource` from `offset`, as
/// far as they may be fetched, read into `buf` (kept by the session, grown to the largest
/// request: at most [`MAX_DATA`]).
pub(crate) fn fetch(
    wire: &mut Wire<'_>,
    status: &ModuleStatus,
    id: u64,
    (resource, file, offset, length): (&str, &str, u64, u32),
    buf: &mut KVVec<u8>,
) -> Result {
    let host = status.host_str().ok_or(EINVAL)?;
    let mut head = [0u8; 256];
    let refuse = |wire: &mut Wire<'_>, code: ErrorCode, message: &str| {
        let mut scratch = [0u8; 256];
        session::send(wire, &Message::Error { code, message }, id, &mut scratch).map_err(|_| EPIPE)
    };
    // The decoder checked the name's grammar; only this host's own logfiles are served.
    let number = match parse_logfile_name(file.as_bytes()) {
        Ok((number, origin)) if origin == host => number,
        _ => return refuse(wire, ErrorCode::NOT_FOUND, "not a logfile of this host"),
    };
    let dir = dir_of(resource)?;
    let Some(size) = servable(status, &dir, resource, number, host)? else {
        return refuse(wire, ErrorCode::NOT_FOUND, "no such logfile (deleted?)");
    };
    if offset > size {
        return refuse(wire, ErrorCode::OUT_OF_RANGE, "offset beyond the end of the logfile");
    }
    let want = usize::try_from(u64::from(length).min(size - offset)).map_err(|_| EINVAL)?.min(MAX_DATA);
    if buf.len() < want {
        *buf = KVVec::from_elem(0u8, want, GFP_KERNEL)?;
    }
    let into = buf.get_mut(..want).ok_or(EINVAL)?;
    let got = if want == 0 {
        0
    } else {
        match KFile::open(&logfiles::path(&dir, number, host)?, OpenMode::Read) {
            Ok(f) => f.read_at(into, offset)?,
            Err(e) if e == ENOENT => return refuse(wire, ErrorCode::NOT_FOUND, "no such logfile (deleted?)"),
            Err(e) => return Err(e),
        }
    };
    let data = buf.get(..got).ok_or(EINVAL)?;
    let eof = offset + got as u64 == size;
    let reply = Message::LogData { resource, file, offset, eof, data };
    session::send(wire, &reply, id, &mut head).map_err(|_| EPIPE)
}
