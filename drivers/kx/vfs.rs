// SPDX-License-Identifier: GPL-2.0

//! Files and directories by path, for the /mars tree: symlinks as keys, directories, listing.
//!
//! Thin safe wrappers over `drivers/mars_vfs.c`; every path is a [`KPath`], an absolute,
//! NUL-terminated path in a fixed buffer.

use kernel::error::to_result;
use kernel::ffi::{c_char, c_int, c_uint, c_void};
use kernel::prelude::*;

use super::shim;

/// Longest path MARS builds (a tree key is at most 200 bytes, plus the /mars prefix).
const PATH_MAX: usize = 255;

/// Directory entry type of a directory (`DT_DIR`).
pub(crate) const DT_DIR: u32 = 4;

/// An absolute path in a fixed buffer, NUL-terminated.
///
/// # Invariants
///
/// `len < buf.len()`, `buf[len] == 0`, and `buf[..len]` contains no NUL.
pub(crate) struct KPath {
    buf: [u8; PATH_MAX + 1],
    len: usize,
}

impl KPath {
    /// Joins `parts` into one path (no separators added); fails with `ENAMETOOLONG` if it does not
    /// fit and `EINVAL` if a part contains a NUL byte.
    pub(crate) fn join(parts: &[&[u8]]) -> Result<KPath> {
        let mut buf = [0u8; PATH_MAX + 1];
        let mut len = 0usize;
        for part in parts {
            if part.contains(&0) {
                return Err(EINVAL);
            }
            let end = len.checked_add(part.len()).ok_or_else(super::errno::name_too_long)?;
            let dest = buf.get_mut(len..end).filter(|_| end <= PATH_MAX).ok_or_else(super::errno::name_too_long)?;
            dest.copy_from_slice(part);
            len = end;
        }
        // INVARIANT: `len <= PATH_MAX < buf.len()`, the buffer started zeroed so `buf[len] == 0`,
        // and no part contained a NUL.
        Ok(KPath { buf, len })
    }

    /// The path without its NUL.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// Pointer to the NUL-terminated path, valid while `self` lives.
    pub(super) fn as_ptr(&self) -> *const c_char {
        self.buf.as_ptr().cast()
    }
}

/// Creates the symlink `path` -> `target`; `EEXIST` if `path` exists.
pub(crate) fn symlink(path: &KPath, target: &CStr) -> Result {
    // SAFETY: both pointers are NUL-terminated strings that live across the call (KPath
    // invariant, CStr); the shim only reads them.
    to_result(unsafe { shim::mars_vfs_symlink(path.as_ptr(), target.as_char_ptr()) })
}

/// Renames `dir/old` to `dir/new`, atomically replacing `new`.
pub(crate) fn rename(dir: &KPath, old: &KPath, new: &KPath) -> Result {
    // SAFETY: all three are NUL-terminated and live across the call (KPath invariant).
    to_result(unsafe { shim::mars_vfs_rename(dir.as_ptr(), old.as_ptr(), new.as_ptr()) })
}

/// Reads the target of the symlink `path` into `buf`; returns its length.
///
/// `EINVAL` if `path` is not a symlink, `E2BIG` if `buf` is too small, `ENOENT` if it is missing.
pub(crate) fn readlink(path: &KPath, buf: &mut [u8]) -> Result<usize> {
    // SAFETY: `path` is NUL-terminated (KPath invariant); `buf` is valid for writes of
    // `buf.len()` bytes and the shim writes at most that many.
    let ret = unsafe { shim::mars_vfs_readlink(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if ret < 0 {
        return Err(c_int::try_from(ret).map_or(EINVAL, Error::from_errno));
    }
    usize::try_from(ret).map_err(|_| EINVAL)
}

/// The change time of the directory `path` (nanoseconds since the epoch): it moves whenever an
/// entry is created, renamed or removed in the directory.
pub(crate) fn dir_ctime(path: &KPath) -> Result<u64> {
    let mut ctime = 0u64;
    // SAFETY: `path` is NUL-terminated and lives across the call (KPath invariant); `ctime` is a
    // valid, writable u64 for the duration of the call.
    to_result(unsafe { shim::mars_vfs_dir_ctime(path.as_ptr(), &mut ctime) })?;
    Ok(ctime)
}

/// Removes `dir/name` (not a directory).
pub(crate) fn unlink(dir: &KPath, name: &KPath) -> Result {
    // SAFETY: both are NUL-terminated and live across the call (KPath invariant).
    to_result(unsafe { shim::mars_vfs_unlink(dir.as_ptr(), name.as_ptr()) })
}

/// Removes the empty directory `dir/name`.
pub(crate) fn rmdir(dir: &KPath, name: &KPath) -> Result {
    // SAFETY: both are NUL-terminated and live across the call (KPath invariant).
    to_result(unsafe { shim::mars_vfs_rmdir(dir.as_ptr(), name.as_ptr()) })
}

/// Removes `dir/name` and, if it is a directory, everything below it (at most `depth` levels).
pub(crate) fn remove_tree(dir: &KPath, name: &[u8], depth: u32) -> Result {
    let path = KPath::join(&[dir.as_bytes(), b"/", name])?;
    let name = KPath::join(&[name])?;
    // Collect first: removing entries while the directory is being iterated is not safe.
    let mut entries: KVec<(KVec<u8>, u32)> = KVec::new();
    match list(&path, |DirEntry { name: entry, dt_type, .. }| {
        let mut owned = KVec::with_capacity(entry.len(), GFP_KERNEL)?;
        owned.extend_from_slice(entry, GFP_KERNEL)?;
        entries.push((owned, dt_type), GFP_KERNEL)?;
        Ok(())
    }) {
        Ok(()) => {}
        Err(e) if e == ENOTDIR => return unlink(dir, &name),
        Err(e) => return Err(e),
    }
    for (entry, dt_type) in entries.iter() {
        if *dt_type == DT_DIR {
            remove_tree(&path, entry, depth.checked_sub(1).ok_or(EINVAL)?)?;
        } else {
            unlink(&path, &KPath::join(&[entry])?)?;
        }
    }
    rmdir(dir, &name)
}

/// Creates the directory `path` (mode 0700); `EEXIST` if it exists.
pub(crate) fn mkdir(path: &KPath) -> Result {
    // SAFETY: `path` is NUL-terminated and lives across the call (KPath invariant).
    to_result(unsafe { shim::mars_vfs_mkdir(path.as_ptr(), 0o700) })
}

/// One entry of a directory listing.
pub(crate) struct DirEntry<'a> {
    pub(crate) name: &'a [u8],
    /// `DT_DIR`, `DT_LNK`, ...
    pub(crate) dt_type: u32,
    /// Inode number: a link replaced (a new link renamed over it) shows a new one, as the old
    /// inode lives on until the rename has freed it.
    pub(crate) ino: u64,
}

/// Calls `f` for each entry of the directory `path` (without `.` and `..`); stops at, and
/// returns, the first error `f` returns.
pub(crate) fn list<F: FnMut(DirEntry<'_>) -> Result>(path: &KPath, mut f: F) -> Result {
    let ctx: *mut F = &mut f;
    // SAFETY: `path` is NUL-terminated; `actor::<F>` is called only during this call, with
    // `ctx`, which points to `f` on this stack frame and outlives the call.
    to_result(unsafe { shim::mars_vfs_list(path.as_ptr(), Some(actor::<F>), ctx.cast()) })
}

/// Forwards one directory entry to the caller's closure.
///
/// # Safety
///
/// `ctx` is the `*mut F` passed by [`list`], valid and not otherwise used during the call;
/// `name` points to `len` readable bytes.
unsafe extern "C" fn actor<F: FnMut(DirEntry<'_>) -> Result>(
    ctx: *mut c_void,
    name: *const c_char,
    len: c_int,
    dt_type: c_uint,
    ino: u64,
) -> c_int {
    // SAFETY: see the function's safety contract.
    let f = unsafe { &mut *ctx.cast::<F>() };
    let Ok(len) = usize::try_from(len) else {
        return EINVAL.to_errno();
    };
    // SAFETY: `name` points to `len` bytes that stay valid during the call (filldir contract).
    let name = unsafe { core::slice::from_raw_parts(name.cast::<u8>(), len) };
    match f(DirEntry { name, dt_type, ino }) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}
