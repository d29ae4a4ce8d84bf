// SPDX-License-Identifier: GPL-2.0

//! The cluster tree on the /mars filesystem, as the kernel reads and writes it.
//!
//! One symlink per key (docs/tree.md): `/mars/KEY` -> `VALUE|STAMP`. A write creates the link
//! under a temporary name (`.k-NAME`, never a key) and renames it over the key, so every update
//! of a key is atomic and a reader sees the old or the new entry, never a mix.

use kernel::prelude::*;
use kernel::str::CStr;

use crate::kx::vfs::{self, KPath};
use crate::mars_core::tree::EntryRef;
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

/// Reads the entry stored for `key` as a scan of the tree does: a link that is gone, is no
/// symlink or does not parse is `None` (the strategy reports bad links where it reads them).
pub(crate) fn get_valid<'a>(key: &'a str, buf: &'a mut TargetBuf) -> Result<Option<EntryRef<'a>>> {
    match get(key, buf) {
        Err(e) if e == EINVAL || e == crate::kx::errno::unclean() => Ok(None),
        other => other,
    }
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
    let dir = if dir_rel.is_empty() { KPath::join(&[ROOT])? } else { KPath::join(&[ROOT, b"/", dir_rel])? };
    let len = format_link_target(entry, &mut buf.0)?;
    let with_nul = buf.0.get_mut(..len + 1).ok_or(EINVAL)?;
    if let Some(last) = with_nul.last_mut() {
        *last = 0;
    }
    let target = CStr::from_bytes_with_nul(with_nul).map_err(|_| EINVAL)?;
    let tmp_name = KPath::join(&[b".k-", name])?;
    let tmp_path = KPath::join(&[dir.as_bytes(), b"/", tmp_name.as_bytes()])?;
    // The usual case costs two calls: the link and its rename. A missing directory is made, and
    // a leftover of an interrupted earlier write replaced, only when the link fails for them.
    match vfs::symlink(&tmp_path, target) {
        Ok(()) => {}
        Err(e) if e == ENOENT => {
            make_dirs(dir_rel)?;
            vfs::symlink(&tmp_path, target)?;
        }
        Err(e) if e == EEXIST => {
            vfs::unlink(&dir, &tmp_name)?;
            vfs::symlink(&tmp_path, target)?;
        }
        Err(e) => return Err(e),
    }
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

/// Calls `f(name)` for each resource directory `/mars/resource-NAME`.
pub(crate) fn for_each_resource(mut f: impl FnMut(&[u8]) -> Result) -> Result {
    let root = KPath::join(&[ROOT])?;
    vfs::list(&root, |vfs::DirEntry { name, dt_type, .. }| match name.strip_prefix(b"resource-") {
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

/// A copy of `bytes` the caller owns (a name kept by a brick).
pub(crate) fn owned(bytes: &[u8]) -> Result<KVec<u8>> {
    let mut v = KVec::with_capacity(bytes.len(), GFP_KERNEL)?;
    v.extend_from_slice(bytes, GFP_KERNEL)?;
    Ok(v)
}

/// Bytes from the tree (names, paths: valid UTF-8 by validation) as text; `?` if they are not.
pub(crate) fn text(bytes: &[u8]) -> &str {
    core::str::from_utf8(bytes).unwrap_or("?")
}
