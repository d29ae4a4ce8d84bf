// SPDX-License-Identifier: GPL-2.0

//! Regular files by path (the transaction logfiles under /mars), through the VFS.
//!
//! Plain synchronous `kernel_write`/`kernel_read` plus `fsync`: no in-kernel file AIO, which the
//! original MARS depended on and which stopped being usable after Linux 5.10. Logfiles are written
//! with direct I/O (`O_DIRECT`): a completed write is on the device, not in the page cache.

use core::ptr::NonNull;

use kernel::bindings;
use kernel::error::{from_err_ptr, to_result};
use kernel::ffi::c_int;
use kernel::prelude::*;

use super::vfs::KPath;

/// An open regular file.
///
/// # Invariants
///
/// `file` was returned by `filp_open` and is closed only in `Drop`.
pub(crate) struct KFile {
    file: NonNull<bindings::file>,
}

// SAFETY: a `struct file` may be used and closed from any thread.
unsafe impl Send for KFile {}
// SAFETY: reads and writes at explicit positions through `&KFile` are thread-safe VFS calls.
unsafe impl Sync for KFile {}

/// How to open a file.
#[derive(Clone, Copy)]
pub(crate) enum OpenMode {
    /// Read only; the file (or directory) must exist.
    Read,
    /// Create a new file for reading and writing with direct I/O (`EEXIST` if it exists): buffers,
    /// offsets and lengths of writes must be multiples of the device's logical block size.
    CreateDirect,
    /// Read and write through the page cache, creating the file if it is missing.
    Write,
}

impl KFile {
    /// Opens `path` (mode 0600 when created).
    pub(crate) fn open(path: &KPath, mode: OpenMode) -> Result<KFile> {
        let flags = bindings::O_LARGEFILE
            | match mode {
                OpenMode::Read => bindings::O_RDONLY,
                OpenMode::CreateDirect => bindings::O_RDWR | bindings::O_CREAT | bindings::O_EXCL | bindings::O_DIRECT,
                OpenMode::Write => bindings::O_RDWR | bindings::O_CREAT,
            };
        let flags = c_int::try_from(flags).map_err(|_| EINVAL)?;
        // SAFETY: `path` is NUL-terminated (KPath invariant).
        let file = from_err_ptr(unsafe { bindings::filp_open(path.as_ptr(), flags, 0o600) })?;
        let file = NonNull::new(file).ok_or(ENOENT)?;
        // INVARIANT: an open file from `filp_open`.
        Ok(KFile { file })
    }

    /// Writes all of `data` at byte `pos`.
    pub(crate) fn write_all_at(&self, data: &[u8], pos: u64) -> Result {
        let mut pos = i64::try_from(pos).map_err(|_| EINVAL)?;
        let mut rest = data;
        while !rest.is_empty() {
            // SAFETY: `file` is open (type invariant); `rest` is valid for `rest.len()` bytes;
            // `pos` is a valid `loff_t` the call advances.
            let n = unsafe { bindings::kernel_write(self.file.as_ptr(), rest.as_ptr().cast(), rest.len(), &mut pos) };
            let n = usize::try_from(n).map_err(|_| Error::from_errno(i32::try_from(n).unwrap_or(-5)))?;
            if n == 0 {
                return Err(EIO);
            }
            rest = rest.get(n..).ok_or(EIO)?;
        }
        Ok(())
    }

    /// Reads up to `buf.len()` bytes at byte `pos`; returns how many (0 at the end of the file).
    pub(crate) fn read_at(&self, buf: &mut [u8], pos: u64) -> Result<usize> {
        let mut pos = i64::try_from(pos).map_err(|_| EINVAL)?;
        let mut done = 0usize;
        while done < buf.len() {
            let rest = buf.get_mut(done..).ok_or(EIO)?;
            // SAFETY: `file` is open; `rest` is valid for writes of `rest.len()` bytes.
            let n =
                unsafe { bindings::kernel_read(self.file.as_ptr(), rest.as_mut_ptr().cast(), rest.len(), &mut pos) };
            let n = usize::try_from(n).map_err(|_| Error::from_errno(i32::try_from(n).unwrap_or(-5)))?;
            if n == 0 {
                break;
            }
            done = done.saturating_add(n);
        }
        Ok(done)
    }

    /// Makes the file's data (and the metadata needed to read it back) durable.
    pub(crate) fn sync_data(&self) -> Result {
        // SAFETY: `file` is open (type invariant).
        to_result(unsafe { bindings::vfs_fsync(self.file.as_ptr(), 1) })
    }

    /// Cuts the file to `length` bytes.
    pub(crate) fn truncate(&self, length: u64) -> Result {
        let length = i64::try_from(length).map_err(|_| EINVAL)?;
        // SAFETY: `file` is open (type invariant).
        to_result(unsafe { super::shim::mars_vfs_truncate(self.file.as_ptr(), length) })
    }

    /// Size in bytes.
    pub(crate) fn size(&self) -> u64 {
        // SAFETY: `file` is open (type invariant).
        let size = unsafe { super::shim::mars_vfs_size(self.file.as_ptr()) };
        u64::try_from(size).unwrap_or(0)
    }

    /// Makes the file and all its metadata durable (for a directory: its entries).
    pub(crate) fn sync_all(&self) -> Result {
        // SAFETY: `file` is open (type invariant).
        to_result(unsafe { bindings::vfs_fsync(self.file.as_ptr(), 0) })
    }
}

impl Drop for KFile {
    fn drop(&mut self) {
        // SAFETY: `file` is open (type invariant) and closed exactly once, here.
        unsafe { bindings::filp_close(self.file.as_ptr(), core::ptr::null_mut()) };
    }
}
