// SPDX-License-Identifier: GPL-2.0

//! Backing block devices, opened by path, and scoped I/O on them from kernel buffers.

use core::cell::{Cell, OnceCell};
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use core::ptr::NonNull;

use kernel::bindings;
use kernel::error::{from_err_ptr, to_result};
use kernel::ffi::{c_int, c_void};
use kernel::prelude::*;
use kernel::sync::atomic::{ordering, Atomic};
use kernel::sync::{Arc, Completion};

use super::iobuf::{IoSlice, IoSliceMut};
use super::shim;
use super::vfs::KPath;

/// A block device opened for reading and writing, exclusively.
///
/// # Invariants
///
/// `file` is a block device file returned by `bdev_file_open_by_path`, released only in `Drop`.
pub(crate) struct BackingDevice {
    file: NonNull<bindings::file>,
}

// SAFETY: the block device file may be used and released from any thread.
unsafe impl Send for BackingDevice {}
// SAFETY: all operations through `&BackingDevice` are thread-safe block-layer calls.
unsafe impl Sync for BackingDevice {}

impl BackingDevice {
    /// Opens `path` exclusively; `EBUSY` if it is in use (mounted, or opened by another holder).
    pub(crate) fn open(path: &KPath) -> Result<BackingDevice> {
        // The holder only has to be unique to MARS and stable: the module's own static.
        let holder = (&raw const HOLDER).cast::<c_void>().cast_mut();
        // SAFETY: `path` is NUL-terminated (KPath invariant); `holder` is a valid static address.
        let file = from_err_ptr(unsafe { shim::mars_bdev_open(path.as_ptr(), holder) })?;
        let file = NonNull::new(file).ok_or(ENODEV)?;
        // INVARIANT: an open block device file.
        Ok(BackingDevice { file })
    }

    /// The open block device file, for the block glue.
    pub(super) fn file_ptr(&self) -> *mut bindings::file {
        self.file.as_ptr()
    }

    /// Size in 512-byte sectors.
    pub(crate) fn sectors(&self) -> u64 {
        // SAFETY: `file` is an open block device file (type invariant).
        unsafe { shim::mars_bdev_sectors(self.file.as_ptr()) }
    }

    /// Waits until every write completed so far is durable on the device.
    pub(crate) fn flush(&self) -> Result {
        // SAFETY: `file` is an open block device file (type invariant); may sleep, as we do.
        to_result(unsafe { shim::mars_bdev_flush(self.file.as_ptr()) })
    }
}

impl Drop for BackingDevice {
    fn drop(&mut self) {
        // SAFETY: `file` is open (type invariant) and released exactly once, here.
        unsafe { shim::mars_bdev_close(self.file.as_ptr()) };
    }
}

/// The exclusive holder identity of MARS's backing devices.
static HOLDER: u8 = 0;

/// Counts the bios of one I/O scope; completes when all have completed.
#[pin_data]
struct IoGroup {
    /// Bios in flight, plus one while the scope is still submitting.
    pending: Atomic<i64>,
    /// First error (negative errno), 0 if none.
    error: Atomic<i32>,
    #[pin]
    done: Completion,
}

impl IoGroup {
    fn new() -> impl PinInit<Self> {
        pin_init!(IoGroup { pending: Atomic::new(1), error: Atomic::new(0), done <- Completion::new() })
    }

    /// Counts one completion (of a bio, or the scope's own count).
    fn put(&self, error: i32) {
        if error != 0 {
            // Keep the first error; later ones are the same story.
            let _ = self.error.cmpxchg(0, error, ordering::Relaxed);
        }
        if self.pending.fetch_sub(1, ordering::Full) == 1 {
            self.done.complete_all();
        }
    }
}

/// I/O operations a scope can submit (`enum mars_io_op` of mars_blk.h).
#[derive(Clone, Copy)]
#[repr(i32)]
enum IoOp {
    Write = shim::codes::IO_WRITE,
    Discard = shim::codes::IO_DISCARD,
    Read = shim::codes::IO_READ,
}

/// Submits bios whose buffers are borrowed for `'a`; see [`io_scope`].
///
/// The counter and the block plug are set up by the first bio: a scope that only does
/// synchronous work (a file brick's requests) allocates nothing and plugs nothing. That matters:
/// a task that sleeps with a plug started (as a synchronous direct write does) has its plugged
/// bios sent on by kblockd, a detour of a context switch per request.
///
/// # Invariants
///
/// `plug` points to plug storage in the frame of the [`io_scope`] call that made this scope, on
/// this task; `plugged` says whether it was started. The raw pointer also makes the scope neither
/// `Send` nor `Sync`, so it never leaves that task.
pub(crate) struct IoScope<'a> {
    group: OnceCell<Arc<IoGroup>>,
    plug: *mut bindings::blk_plug,
    plugged: Cell<bool>,
    /// Invariant in `'a`: buffers must outlive the whole scope.
    _buffers: PhantomData<&'a mut &'a ()>,
}

impl<'a> IoScope<'a> {
    /// The scope's counter, made (and the plug started) by the first bio.
    fn group(&self) -> Result<&Arc<IoGroup>> {
        if self.group.get().is_none() {
            let group = Arc::pin_init(IoGroup::new(), GFP_KERNEL)?;
            let _ = self.group.set(group);
        }
        if !self.plugged.get() {
            // SAFETY: `plug` is storage in `io_scope`'s frame on this task (type invariant), not
            // started yet; `blk_start_plug` initialises it and makes it this task's until
            // `io_scope` finishes it, before its frame ends.
            unsafe { bindings::blk_start_plug(self.plug) };
            self.plugged.set(true);
        }
        self.group.get().ok_or(ENOMEM)
    }

    fn submit(&self, dev: &'a BackingDevice, op: IoOp, sector: u64, buf: *mut u8, len: usize) -> Result {
        let group = self.group()?;
        // Count the bio before it exists: it may complete before `mars_bdev_submit` returns.
        group.pending.fetch_add(1, ordering::Relaxed);
        let private = Arc::into_raw(group.clone()).cast::<c_void>().cast_mut();
        // `buf` is null (discard) or `IoSlice`/`IoSliceMut` memory: kvmalloc, which the glue maps,
        // valid (for a read: borrowed mutably) for `len` bytes for `'a`.
        // SAFETY: `dev.file` is open; `buf` as above, and `io_scope` waits for every bio before
        // `'a` ends; `private` is an `Arc<IoGroup>` reference `mars_rust_io_done` takes back once.
        let ret = unsafe { shim::mars_bdev_submit(dev.file.as_ptr(), op as c_int, sector, buf.cast(), len, private) };
        if ret != 0 {
            // SAFETY: the bio was not submitted, so the reference is still ours to release.
            drop(unsafe { Arc::from_raw(private.cast::<IoGroup>()) });
            group.put(0);
            return Err(Error::from_errno(ret));
        }
        Ok(())
    }

    /// Sends the bios submitted so far on to the driver now rather than at the scope's end, so
    /// that the caller can compute while they run (a plugged bio waits until its task sleeps or
    /// the plug ends). A later bio starts a new plug.
    pub(crate) fn dispatch(&self) {
        if self.plugged.replace(false) {
            // SAFETY: the plug was started by this scope on this task (type invariant) and is
            // finished once here; `plugged` is false now, so `io_scope` does not finish it
            // again, and `group()` starts it anew in the same storage for a later bio.
            unsafe { bindings::blk_finish_plug(self.plug) };
        }
    }

    /// Writes `data` (at most 1 MiB) at `sector`. `data` is a part of an `IoBuf`, memory the
    /// C glue can map to pages.
    pub(crate) fn write(&self, dev: &'a BackingDevice, sector: u64, data: IoSlice<'a>) -> Result {
        let bytes = data.bytes();
        self.submit(dev, IoOp::Write, sector, bytes.as_ptr().cast_mut(), bytes.len())
    }

    /// Reads `into.len()` bytes (at most 1 MiB) at `sector` into `into`, a part of an `IoBuf`.
    pub(crate) fn read(&self, dev: &'a BackingDevice, sector: u64, into: IoSliceMut<'a>) -> Result {
        let bytes = into.bytes();
        self.submit(dev, IoOp::Read, sector, bytes.as_mut_ptr(), bytes.len())
    }

    /// Discards `len` bytes at `sector`.
    pub(crate) fn discard(&self, dev: &'a BackingDevice, sector: u64, len: usize) -> Result {
        self.submit(dev, IoOp::Discard, sector, core::ptr::null_mut(), len)
    }
}

/// Runs `f`, which submits bios through the scope, then waits until every one of them has
/// completed. Returns `f`'s error, else the first I/O error, else `f`'s value. The bios go out
/// under one block plug, as one batch to the driver.
pub(crate) fn io_scope<'a, R>(f: impl FnOnce(&IoScope<'a>) -> Result<R>) -> Result<R> {
    let mut plug = MaybeUninit::<bindings::blk_plug>::uninit();
    // INVARIANT: `plug` lives in this frame until after the scope is gone; not started.
    let scope =
        IoScope { group: OnceCell::new(), plug: plug.as_mut_ptr(), plugged: Cell::new(false), _buffers: PhantomData };
    let result = f(&scope);
    if scope.plugged.get() {
        // SAFETY: the plug was started by `scope` on this task and is finished exactly once.
        unsafe { bindings::blk_finish_plug(plug.as_mut_ptr()) };
    }
    if let Some(group) = scope.group.get() {
        // Drop the scope's own count, then wait for the bios; only then may `'a` end.
        group.put(0);
        group.done.wait_for_completion();
        let error = group.error.load(ordering::Relaxed);
        result.and_then(|value| to_result(error).map(|()| value))
    } else {
        result
    }
}

/// Completion of a bio submitted by an [`IoScope`]; called by the C glue from any context.
///
/// # Safety
///
/// `private` is the `Arc<IoGroup>` reference given to `mars_bdev_submit`, passed exactly once.
#[no_mangle]
unsafe extern "C" fn mars_rust_io_done(private: *mut c_void, error: c_int) {
    // SAFETY: see the function's safety contract.
    let group = unsafe { Arc::from_raw(private.cast::<IoGroup>()) };
    group.put(error);
}
