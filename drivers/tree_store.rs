// SPDX-License-Identifier: GPL-2.0

//! The cluster tree on the /mars filesystem, as the kernel reads and writes it.
//!
//! One symlink per key (docs/tree.md): `/mars/KEY` -> `VALUE|STAMP`. A write creates the link
//! under a temporary name (`.k-NAME`, never a key) and renames it over the key, so every update
//! of a key is atomic and a reader sees the old or the new entry, never a mix.

use kernel::prelude::*;
use kernel::str::CStr;

use crate::kx::vfs::{self, KPath};
use crate::mars_core::gossip::TreeDigest;
use crate::mars_core::tree::{EntryRef, MAX_KEY_DEPTH, MAX_KEY_LEN};
use crate::mars_core::tree_codec::{format_link_target, parse_link_target, MAX_LINK_TARGET_LEN};

/// Mount point of the /mars filesystem.
pub(crate) const ROOT: &[u8] = b"/mars";

/// Room for the longest link target plus its NUL.
const TARGET_BUF: usize = MAX_LINK_TARGET_LEN + 1;

/// A buffer to read or format one entry's link target.
pub(crate) struct TargetBuf(KVec<u8>);

impl TargetBuf {
    /// Allocates a buffer for the longest possible target.
    pub(crate) fn new() -> Result<TargetBuf> {
        let mut buf = KVec::with_capacity(TARGET_BUF, GFP_KERNEL)?;
        buf.resize(TARGET_BUF, 0, GFP_KERNEL)?;
        Ok(TargetBuf(buf))
    }
}

/// Reads the entry stored for `key`; `None` if there is none.
pub(crate) fn get<'a>(key: &'a str, buf: &'a mut TargetBuf) -> Result<Option<EntryRef<'a>>> {
    let path = KPath::join(&[ROOT, b"/", key.as_bytes()])?;
    let len = match vfs::readlink(&path, &mut buf.0) {
        Ok(len) => len,
        Err(e) if e == ENOENT => return Ok(None),
        Err(e) => return Err(e),
    };
    let target = buf.0.get(..len).ok_or(EINVAL)?;
    parse_link_target(key, target).map(Some).map_err(|_| crate::kx::errno::unclean())
}

/// Stores `entry` as `/mars/KEY`, creating parent directories as needed and replacing the
/// previous entry atomically. The caller decides whether `entry` supersedes what is stored.
pub(crate) fn put(entry: &EntryRef<'_>, buf: &mut TargetBuf) -> Result {
    entry.validate()?;
    let key = entry.key.as_bytes();
    let (dir_rel, name) = match key.iter().rposition(|&b| b == b'/') {
        Some(slash) => (key.get(..slash).unwrap_or(&[]), key.get(slash + 1..).unwrap_or(&[])),
        None => (&[][..], key),
    };
    make_dirs(dir_rel)?;
    let dir = if dir_rel.is_empty() { KPath::join(&[ROOT])? } else { KPath::join(&[ROOT, b"/", dir_rel])? };
    let len = format_link_target(entry, &mut buf.0)?;
    let with_nul = buf.0.get_mut(..len + 1).ok_or(EINVAL)?;
    if let Some(last) = with_nul.last_mut() {
        *last = 0;
    }
    let target = CStr::from_bytes_with_nul(with_nul).map_err(|_| EINVAL)?;
    let tmp_name = KPath::join(&[b".k-", name])?;
    let tmp_path = KPath::join(&[dir.as_bytes(), b"/", tmp_name.as_bytes()])?;
    // A leftover from an interrupted earlier write is simply replaced.
    match vfs::unlink(&dir, &tmp_name) {
        Ok(()) => {}
        Err(e) if e == ENOENT => {}
        Err(e) => return Err(e),
    }
    vfs::symlink(&tmp_path, target)?;
    vfs::rename(&dir, &tmp_name, &KPath::join(&[name])?)
}

/// Creates `/mars/DIR` and its parents where missing (`dir` relative, `a/b`).
fn make_dirs(dir: &[u8]) -> Result {
    let mut end = 0;
    while end < dir.len() {
        end = dir.iter().skip(end + 1).position(|&b| b == b'/').map_or(dir.len(), |p| end + 1 + p);
        let path = KPath::join(&[ROOT, b"/", dir.get(..end).unwrap_or(&[])])?;
        match vfs::mkdir(&path) {
            Ok(()) => {}
            Err(e) if e == EEXIST => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Calls `f(entry)` for every entry this host stored at or after `since_ns` of its real-time
/// clock: the time its symlink was created or renamed into place (its ctime), by the module or
/// by marsadm. 0 visits the whole tree. Names starting with `.` (temporary links, the secret)
/// and `lost+found` are not keys and are left out, as are links that do not parse (reported by
/// the strategy where it reads them).
pub(crate) fn walk_changed(since_ns: u64, f: &mut dyn FnMut(&EntryRef<'_>) -> Result) -> Result {
    let mut key = KVec::with_capacity(MAX_KEY_LEN, GFP_KERNEL)?;
    let mut target = TargetBuf::new()?;
    walk_dir(&mut key, 1, since_ns, &mut target, f)
}

/// The digest of the whole tree as stored now (`mars_core::gossip::TreeDigest`): what a pull
/// sends so that the server leaves out the buckets both sides hold alike.
pub(crate) fn digest() -> Result<TreeDigest> {
    let mut digest = TreeDigest::new();
    walk_changed(0, &mut |entry| {
        digest.add(entry);
        Ok(())
    })?;
    Ok(digest)
}

/// Directory entry type of a symlink (`DT_LNK`).
const DT_LNK: u32 = 10;

/// One directory of [`walk_changed`]: `key` holds its path relative to /mars (the key prefix),
/// `depth` the number of key components an entry in it has.
fn walk_dir(
    key: &mut KVec<u8>,
    depth: usize,
    since_ns: u64,
    target: &mut TargetBuf,
    f: &mut dyn FnMut(&EntryRef<'_>) -> Result,
) -> Result {
    let dir = if key.is_empty() { KPath::join(&[ROOT])? } else { KPath::join(&[ROOT, b"/", key])? };
    // The names first, then the lookups: nothing looks up names in a directory while it is
    // being iterated. Each name is stored as its type, its length and its bytes.
    let mut names: KVec<u8> = KVec::new();
    let listed = vfs::list(&dir, |name, dt_type| {
        let wanted = (dt_type == vfs::DT_DIR && depth < MAX_KEY_DEPTH) || dt_type == DT_LNK;
        if !wanted || name.starts_with(b".") || name == b"lost+found" || name.len() > MAX_KEY_LEN {
            return Ok(());
        }
        names.push(u8::from(dt_type == DT_LNK), GFP_KERNEL)?;
        names.push(u8::try_from(name.len()).map_err(|_| EINVAL)?, GFP_KERNEL)?;
        names.extend_from_slice(name, GFP_KERNEL)?;
        Ok(())
    });
    match listed {
        Ok(()) => {}
        // A directory removed meanwhile (a resource being deleted) holds nothing to send.
        Err(e) if e == ENOENT || e == ENOTDIR => return Ok(()),
        Err(e) => return Err(e),
    }
    let mut at = 0usize;
    while let (Some(&is_link), Some(&len)) = (names.get(at), names.get(at + 1)) {
        let name = names.get(at + 2..at + 2 + usize::from(len)).ok_or(EINVAL)?;
        at += 2 + usize::from(len);
        let base = key.len();
        if base > 0 {
            key.push(b'/', GFP_KERNEL)?;
        }
        key.extend_from_slice(name, GFP_KERNEL)?;
        let result = if is_link == 1 {
            visit_link(key, since_ns, target, f)
        } else {
            walk_dir(key, depth + 1, since_ns, target, f)
        };
        key.truncate(base);
        result?;
    }
    Ok(())
}

/// Hands the entry stored as the symlink `/mars/KEY` to `f` if it changed at or after `since_ns`.
fn visit_link(key: &[u8], since_ns: u64, target: &mut TargetBuf, f: &mut dyn FnMut(&EntryRef<'_>) -> Result) -> Result {
    let path = KPath::join(&[ROOT, b"/", key])?;
    let (len, ctime) = match vfs::readlink_ctime(&path, &mut target.0) {
        Ok(found) => found,
        // Replaced or removed since the listing: its new version has a newer ctime.
        Err(e) if e == ENOENT || e == EINVAL => return Ok(()),
        Err(e) => return Err(e),
    };
    if ctime < since_ns {
        return Ok(());
    }
    let (Ok(key), Some(bytes)) = (core::str::from_utf8(key), target.0.get(..len)) else {
        return Ok(());
    };
    match parse_link_target(key, bytes) {
        Ok(entry) => f(&entry),
        Err(_) => Ok(()),
    }
}

/// Calls `f(name)` for each resource directory `/mars/resource-NAME`.
pub(crate) fn for_each_resource(mut f: impl FnMut(&[u8]) -> Result) -> Result {
    let root = KPath::join(&[ROOT])?;
    vfs::list(&root, |name, dt_type| match name.strip_prefix(b"resource-") {
        Some(res) if dt_type == vfs::DT_DIR => f(res),
        _ => Ok(()),
    })
}

/// A short text value formatted on the stack (status values are numbers and short messages).
pub(crate) struct TextBuf {
    buf: [u8; 240],
    len: usize,
}

impl TextBuf {
    /// An empty text.
    pub(crate) fn new() -> TextBuf {
        TextBuf { buf: [0; 240], len: 0 }
    }

    /// The text (always valid UTF-8: only `str` pieces are ever appended, cut at char bounds).
    pub(crate) fn as_str(&self) -> &str {
        core::str::from_utf8(self.buf.get(..self.len).unwrap_or(&[])).unwrap_or("")
    }
}

impl core::fmt::Write for TextBuf {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let room = self.buf.len().saturating_sub(self.len);
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        let dest = self.buf.get_mut(self.len..self.len + take).ok_or(core::fmt::Error)?;
        dest.copy_from_slice(s.as_bytes().get(..take).ok_or(core::fmt::Error)?);
        self.len += take;
        Ok(())
    }
}

/// Bytes from the tree (names, paths: valid UTF-8 by validation) as text; `?` if they are not.
pub(crate) fn text(bytes: &[u8]) -> &str {
    core::str::from_utf8(bytes).unwrap_or("?")
}
