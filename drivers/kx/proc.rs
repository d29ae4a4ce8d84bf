// SPDX-License-Identifier: GPL-2.0

//! Read-only files under `/proc`, printed through `seq_file`.

use core::ptr::NonNull;

use kernel::bindings;
use kernel::ffi::{c_int, c_void};
use kernel::prelude::*;
use kernel::seq_file::SeqFile;
use kernel::sync::Arc;

use super::shim;

/// Something that prints itself into a `seq_file` when its proc file is read.
pub(crate) trait SeqShow: Send + Sync {
    /// Prints the file's contents.
    fn show(&self, m: &SeqFile);
}

/// A directory `/proc/DIR` holding one file `FILE` whose contents `T` prints.
///
/// # Invariants
///
/// `dir` is a live proc entry created by `mars_proc_mkdir`; the file below it was created with
/// `Arc::as_ptr(&data)` as its private data, so `_data` outlives every reader: `Drop` removes the
/// entries (which waits for readers) before `data` is released.
pub(crate) struct ProcDir<T: SeqShow> {
    dir: NonNull<c_void>,
    /// Keeps the shown data alive while the entry exists; read only through the entry.
    _data: Arc<T>,
}

// SAFETY: `dir` is only handed to `proc_remove`, which may be called from any thread, and `T` is
// `Send + Sync`.
unsafe impl<T: SeqShow> Send for ProcDir<T> {}
// SAFETY: `&ProcDir` gives access to nothing but the `Sync` data.
unsafe impl<T: SeqShow> Sync for ProcDir<T> {}

impl<T: SeqShow> ProcDir<T> {
    /// Creates `/proc/{dir}/{file}` showing `data`.
    pub(crate) fn new(dir: &CStr, file: &CStr, data: Arc<T>) -> Result<Self> {
        // SAFETY: `dir` is a NUL-terminated string valid for the call.
        let dir_entry = unsafe { shim::mars_proc_mkdir(dir.as_char_ptr()) };
        let Some(dir_entry) = NonNull::new(dir_entry) else {
            pr_err!("cannot create /proc/{}: does it exist already?\n", dir);
            return Err(EEXIST);
        };
        let private = Arc::as_ptr(&data).cast::<c_void>().cast_mut();
        // SAFETY: `file` is NUL-terminated; `dir_entry` is live; `private` points to the `T` that
        // `data` keeps alive until `Drop` has removed this entry (type invariant), and `show::<T>`
        // reads it as exactly that type.
        let file_entry = unsafe {
            shim::mars_proc_create_single(file.as_char_ptr(), dir_entry.as_ptr(), Some(show::<T>), private)
        };
        if file_entry.is_null() {
            // SAFETY: `dir_entry` was created above and is removed exactly once.
            unsafe { shim::mars_proc_remove(dir_entry.as_ptr()) };
            return Err(ENOMEM);
        }
        // INVARIANT: both entries exist and `data` is held by the returned value.
        Ok(ProcDir { dir: dir_entry, _data: data })
    }
}

impl<T: SeqShow> Drop for ProcDir<T> {
    fn drop(&mut self) {
        // SAFETY: `dir` is live (type invariant); after this returns no reader uses `data`, which
        // is released only afterwards, when the fields drop.
        unsafe { shim::mars_proc_remove(self.dir.as_ptr()) };
    }
}

/// The `show` callback: prints the `T` registered as the file's private data.
///
/// # Safety
///
/// Called by the seq_file core with a valid `m` whose `private` is the pointer registered in
/// [`ProcDir::new`] for this `T`.
unsafe extern "C" fn show<T: SeqShow>(m: *mut bindings::seq_file, _v: *mut c_void) -> c_int {
    // SAFETY: `m` is valid for the duration of the call (seq_file core contract).
    let private = unsafe { (*m).private };
    // SAFETY: `private` is `Arc::as_ptr` of a live `T` (ProcDir's invariant: the entry is removed,
    // and readers drained, before the `Arc` is released).
    let data = unsafe { &*private.cast::<T>() };
    // SAFETY: `m` is valid and not used elsewhere during this call.
    let seq = unsafe { SeqFile::from_raw(m) };
    data.show(seq);
    0
}
