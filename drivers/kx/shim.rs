// SPDX-License-Identifier: GPL-2.0

//! Declarations of the C shims in `drivers/mars_shim.c` (see `drivers/mars_shim.h`).

use kernel::bindings;
use kernel::ffi::{c_char, c_int, c_uint, c_void};

/// `show` callback of a single_open() proc file.
pub(crate) type ShowFn = unsafe extern "C" fn(*mut bindings::seq_file, *mut c_void) -> c_int;

// `seq_file` embeds a mutex whose lockdep map is empty without CONFIG_LOCKDEP, which rustc
// flags as not FFI-safe; only pointers to it cross this boundary.
#[allow(improper_ctypes)]
unsafe extern "C" {
    /// Creates `/proc/NAME`; `proc_dir_entry` is opaque here. NULL on failure.
    pub(crate) fn mars_proc_mkdir(name: *const c_char) -> *mut c_void;
    /// Creates a read-only seq_file entry under `parent`. NULL on failure.
    pub(crate) fn mars_proc_create_single(
        name: *const c_char,
        parent: *mut c_void,
        show: Option<ShowFn>,
        data: *mut c_void,
    ) -> *mut c_void;
    /// Removes a proc entry and its subtree, waiting for readers to leave.
    pub(crate) fn mars_proc_remove(entry: *mut c_void);
    /// Copies the host name into `buf`; returns its length or `-E2BIG`.
    pub(crate) fn mars_host_name(buf: *mut c_char, size: usize) -> isize;

    /// Creates the symlink `path` -> `target`.
    pub(crate) fn mars_vfs_symlink(path: *const c_char, target: *const c_char) -> c_int;
    /// Renames `dir/old_name` to `dir/new_name`, replacing it.
    pub(crate) fn mars_vfs_rename(dir: *const c_char, old_name: *const c_char, new_name: *const c_char) -> c_int;
    /// Copies a symlink's target into `buf`; length or negative errno.
    pub(crate) fn mars_vfs_readlink(path: *const c_char, buf: *mut c_char, size: usize) -> isize;
    /// Removes `dir/name`.
    pub(crate) fn mars_vfs_unlink(dir: *const c_char, name: *const c_char) -> c_int;
    /// Creates a directory.
    pub(crate) fn mars_vfs_mkdir(path: *const c_char, mode: u16) -> c_int;
    /// Lists a directory through `actor`.
    pub(crate) fn mars_vfs_list(path: *const c_char, actor: Option<ListActor>, private: *mut c_void) -> c_int;
}

/// Callback of `mars_vfs_list`: `(private, name, len, dt_type) -> 0 or -errno`.
pub(crate) type ListActor = unsafe extern "C" fn(*mut c_void, *const c_char, c_int, c_uint) -> c_int;
