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
    /// CRC-32C of `len` bytes at `p` by the kernel's `crc32c()`.
    pub(crate) fn mars_crc32c(p: *const c_void, len: usize) -> u32;
    /// SHA-256 of `len` bytes at `p` into the 32 bytes at `out`, by the kernel's `sha256()`.
    pub(crate) fn mars_sha256(p: *const c_void, len: usize, out: *mut u8);
    /// Makes the calling task's allocations GFP_NOIO until `mars_noio_end`.
    pub(crate) fn mars_noio_begin() -> c_uint;
    /// Ends a `mars_noio_begin`.
    pub(crate) fn mars_noio_end(flags: c_uint);
    /// Fills `buf` with `len` random bytes (the kernel's CSPRNG).
    pub(crate) fn mars_random_bytes(buf: *mut c_void, len: usize);
    /// CPU time (user + system, tick-sampled) of the calling thread in nanoseconds.
    pub(crate) fn mars_thread_cpu_ns() -> u64;

    /// Creates the symlink `path` -> `target`.
    pub(crate) fn mars_vfs_symlink(path: *const c_char, target: *const c_char) -> c_int;
    /// Renames `dir/old_name` to `dir/new_name`, replacing it.
    pub(crate) fn mars_vfs_rename(dir: *const c_char, old_name: *const c_char, new_name: *const c_char) -> c_int;
    /// Copies a symlink's target into `buf`; length or negative errno.
    pub(crate) fn mars_vfs_readlink(path: *const c_char, buf: *mut c_char, size: usize) -> isize;
    /// Stores a directory's change time in nanoseconds in `*ctime_ns`; 0 or negative errno.
    pub(crate) fn mars_vfs_dir_ctime(path: *const c_char, ctime_ns: *mut u64) -> c_int;
    /// Removes `dir/name`.
    pub(crate) fn mars_vfs_unlink(dir: *const c_char, name: *const c_char) -> c_int;
    /// Removes the empty directory `dir/name`.
    pub(crate) fn mars_vfs_rmdir(dir: *const c_char, name: *const c_char) -> c_int;
    /// Creates a directory.
    pub(crate) fn mars_vfs_mkdir(path: *const c_char, mode: u16) -> c_int;
    /// Cuts an open regular file to `length` bytes.
    pub(crate) fn mars_vfs_truncate(file: *mut bindings::file, length: i64) -> c_int;
    /// Size in bytes of an open file.
    pub(crate) fn mars_vfs_size(file: *mut bindings::file) -> i64;
    /// Lists a directory through `actor`.
    pub(crate) fn mars_vfs_list(path: *const c_char, actor: Option<ListActor>, private: *mut c_void) -> c_int;
}

// Block-layer glue in `drivers/mars_blk.c` (see `drivers/mars_blk.h`).
#[allow(improper_ctypes)]
unsafe extern "C" {
    /// Sets up the module's bio_set.
    pub(crate) fn mars_blk_init() -> c_int;
    /// Tears down the module's bio_set.
    pub(crate) fn mars_blk_exit();
    /// Opens a block device exclusively; ERR_PTR on error.
    pub(crate) fn mars_bdev_open(path: *const c_char, holder: *mut c_void) -> *mut bindings::file;
    /// Releases a block device file.
    pub(crate) fn mars_bdev_close(file: *mut bindings::file);
    /// Size in sectors.
    pub(crate) fn mars_bdev_sectors(file: *mut bindings::file) -> u64;
    /// Flushes the device's write cache.
    pub(crate) fn mars_bdev_flush(file: *mut bindings::file) -> c_int;
    /// Submits one bio (op: `codes::IO_*`); completion calls `mars_rust_io_done`.
    pub(crate) fn mars_bdev_submit(
        file: *mut bindings::file,
        op: c_int,
        sector: u64,
        buf: *mut c_void,
        len: usize,
        private: *mut c_void,
    ) -> c_int;
    /// Fills `info` from an incoming bio.
    pub(crate) fn mars_bio_get_info(bio: *mut bindings::bio, info: *mut BioInfo);
    /// Copies an incoming bio's data into `buf`.
    pub(crate) fn mars_bio_copy_out(bio: *mut bindings::bio, buf: *mut c_void) -> usize;
    /// Completes an incoming bio.
    pub(crate) fn mars_bio_end(bio: *mut bindings::bio, error: c_int);
    /// Sends a clone of an incoming bio to a block device; calls `mars_rust_remap_done` after.
    pub(crate) fn mars_bio_remap(bio: *mut bindings::bio, file: *mut bindings::file, private: *mut c_void);
    /// Creates and adds `/dev/mars/NAME`; ERR_PTR on error.
    pub(crate) fn mars_disk_create(name: *const c_char, sectors: u64, private: *mut c_void) -> *mut bindings::gendisk;
    /// Removes and frees a disk.
    pub(crate) fn mars_disk_remove(disk: *mut bindings::gendisk);
    /// Frees a removed disk.
    pub(crate) fn mars_disk_put(disk: *mut bindings::gendisk);
    /// Openers of the whole disk.
    pub(crate) fn mars_disk_openers(disk: *mut bindings::gendisk) -> c_int;
}

// TCP sockets in `drivers/mars_net.c` (see `drivers/mars_net.h`). `struct socket` embeds a lock
// whose lockdep map is empty without CONFIG_LOCKDEP, which rustc flags as not FFI-safe; only
// pointers to it cross this boundary.
#[allow(improper_ctypes)]
unsafe extern "C" {
    /// Creates a listening socket on an address (4 or 16 bytes) and port.
    pub(crate) fn mars_sock_listen(
        addr: *const u8,
        addr_len: c_int,
        port: u16,
        backlog: c_int,
        out: *mut *mut bindings::socket,
    ) -> c_int;
    /// Accepts a connection within a timeout.
    pub(crate) fn mars_sock_accept(
        listener: *mut bindings::socket,
        timeout_ms: c_int,
        out: *mut *mut bindings::socket,
    ) -> c_int;
    /// Creates an unconnected TCP socket for 4- or 16-byte addresses.
    pub(crate) fn mars_sock_create(addr_len: c_int, out: *mut *mut bindings::socket) -> c_int;
    /// Connects a socket within a timeout.
    pub(crate) fn mars_sock_connect(
        sock: *mut bindings::socket,
        addr: *const u8,
        addr_len: c_int,
        port: u16,
        timeout_ms: c_int,
    ) -> c_int;
    /// Sends a whole buffer within a timeout.
    pub(crate) fn mars_sock_send(
        sock: *mut bindings::socket,
        buf: *const c_void,
        len: usize,
        timeout_ms: c_int,
    ) -> c_int;
    /// Receives exactly `len` bytes within a timeout; 0 if the peer closed first.
    pub(crate) fn mars_sock_recv(sock: *mut bindings::socket, buf: *mut c_void, len: usize, timeout_ms: c_int)
        -> c_int;
    /// The peer's address (16 bytes of room) and port; returns the address length.
    pub(crate) fn mars_sock_peer(sock: *mut bindings::socket, addr: *mut u8, port: *mut u16) -> c_int;
    /// Shuts a socket down both ways.
    pub(crate) fn mars_sock_shutdown(sock: *mut bindings::socket);
    /// Releases a socket.
    pub(crate) fn mars_sock_release(sock: *mut bindings::socket);
}

/// The operation codes of `drivers/mars_blk.h` (`enum mars_io_op`, `enum mars_bio_op`).
/// [`check_codes`] compares them with the header's table when the module loads.
pub(crate) mod codes {
    use kernel::ffi::c_int;

    /// `MARS_IO_WRITE`.
    pub(crate) const IO_WRITE: c_int = 1;
    /// `MARS_IO_DISCARD`.
    pub(crate) const IO_DISCARD: c_int = 2;
    /// `MARS_IO_READ`.
    pub(crate) const IO_READ: c_int = 3;
    /// `MARS_BIO_OTHER`: an incoming bio MARS does not handle.
    pub(crate) const BIO_OTHER: c_int = -1;
    /// `MARS_BIO_READ`.
    pub(crate) const BIO_READ: c_int = 0;
    /// `MARS_BIO_WRITE`.
    pub(crate) const BIO_WRITE: c_int = 1;
    /// `MARS_BIO_FLUSH`: a flush, or a write without data.
    pub(crate) const BIO_FLUSH: c_int = 2;
    /// `MARS_BIO_DISCARD`.
    pub(crate) const BIO_DISCARD: c_int = 3;
    /// `MARS_BIO_WRITE_ZEROES`.
    pub(crate) const BIO_WRITE_ZEROES: c_int = 4;

    /// In the order of `mars_blk_codes[]` in the header.
    pub(super) const ALL: [c_int; 9] =
        [IO_WRITE, IO_DISCARD, BIO_OTHER, BIO_READ, BIO_WRITE, BIO_FLUSH, BIO_DISCARD, BIO_WRITE_ZEROES, IO_READ];
}

unsafe extern "C" {
    /// `mars_blk_codes[]` of `drivers/mars_blk.h`: every operation code, as the C side has it.
    static mars_blk_codes: [c_int; 9];
}

/// `EINVAL` unless the C glue and [`codes`] agree on every operation code.
pub(crate) fn check_codes() -> kernel::error::Result {
    // SAFETY: `mars_blk_codes` is a `const` array of 9 ints defined in mars_blk.c; nothing
    // writes it, so reading it is a plain read of immutable data.
    let c_side = unsafe { mars_blk_codes };
    if c_side != codes::ALL {
        kernel::pr_err!(
            "mars_blk.c and drivers/kx/shim.rs disagree on operation codes: {:?} vs {:?}\n",
            c_side,
            codes::ALL
        );
        return Err(kernel::error::code::EINVAL);
    }
    Ok(())
}

/// `struct mars_bio_info` of `drivers/mars_blk.h`.
#[repr(C)]
#[derive(Default, Clone, Copy)]
pub(crate) struct BioInfo {
    /// First sector.
    pub(crate) sector: u64,
    /// Bytes.
    pub(crate) size: u32,
    /// One of `codes::BIO_*`.
    pub(crate) op: c_int,
    /// 1 if REQ_PREFLUSH or REQ_FUA is set or the bio is a flush.
    pub(crate) durable: c_int,
}

/// Callback of `mars_vfs_list`: `(private, name, len, dt_type, ino) -> 0 or -errno`.
pub(crate) type ListActor = unsafe extern "C" fn(*mut c_void, *const c_char, c_int, c_uint, u64) -> c_int;
