// SPDX-License-Identifier: GPL-2.0

//! The bio-based block device `/dev/mars/NAME` and the bios it receives.

use core::ptr::NonNull;

use kernel::bindings;
use kernel::error::from_err_ptr;
use kernel::ffi::c_void;
use kernel::prelude::*;
use kernel::sync::{Arc, Completion};

use super::bdev::BackingDevice;
use super::iobuf::IoBuf;
use super::shim::{self, codes, BioInfo};
use super::vfs::KPath;
use kernel::sync::atomic::{ordering, Atomic};

/// What an incoming bio asks for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum BioOp {
    /// Read `size` bytes at `sector`.
    Read,
    /// Write the bio's data at `sector`.
    Write,
    /// No data: make everything completed so far durable.
    Flush,
    /// Discard `size` bytes at `sector`.
    Discard,
    /// Write `size` zero bytes at `sector`.
    WriteZeroes,
    /// Something this device does not do.
    Unsupported,
}

/// A bio submitted to `/dev/mars/NAME`, to be completed exactly once.
///
/// # Invariants
///
/// `bio` is a live bio handed to our `submit_bio` and not yet ended; it is ended exactly once,
/// by [`IncomingBio::end`] or, failing that, by `Drop` with an I/O error.
pub(crate) struct IncomingBio {
    bio: NonNull<bindings::bio>,
    info: BioInfo,
}

// SAFETY: a bio may be completed from any thread.
unsafe impl Send for IncomingBio {}

impl IncomingBio {
    /// First sector.
    pub(crate) fn sector(&self) -> u64 {
        self.info.sector
    }

    /// Bytes covered.
    pub(crate) fn size(&self) -> u32 {
        self.info.size
    }

    /// The operation.
    pub(crate) fn op(&self) -> BioOp {
        match self.info.op {
            codes::BIO_READ => BioOp::Read,
            codes::BIO_WRITE => BioOp::Write,
            codes::BIO_FLUSH => BioOp::Flush,
            codes::BIO_DISCARD => BioOp::Discard,
            codes::BIO_WRITE_ZEROES => BioOp::WriteZeroes,
            _ => BioOp::Unsupported,
        }
    }

    /// True if the bio carries REQ_PREFLUSH or REQ_FUA (or is a flush): it may complete only once
    /// it, and every write completed before it, is durable.
    pub(crate) fn durable(&self) -> bool {
        self.info.durable != 0
    }

    /// A copy of a write's data ([`Self::size`] bytes).
    pub(crate) fn data(&self) -> Result<IoBuf> {
        let bio = self.bio.as_ptr();
        let len = self.info.size as usize;
        // SAFETY: `bio` is live (type invariant); the glue copies the bio's data, `size` bytes,
        // to the start of the room it is given (room for `len` = `size` bytes) and returns how
        // many it copied.
        unsafe { IoBuf::filled_by(len, |room| shim::mars_bio_copy_out(bio, room.cast())) }
    }

    /// Sends the bio on to the same sectors of `dev`, without waiting (so this is right in
    /// `submit_bio` context, where waiting for our own I/O would deadlock: bios submitted there
    /// are only dispatched after it returns). `inflight` counts it until it completes.
    pub(crate) fn remap(self, dev: &BackingDevice, inflight: &Arc<Inflight>) {
        let bio = self.bio;
        core::mem::forget(self);
        inflight.count.fetch_add(1, ordering::Relaxed);
        let private = Arc::into_raw(inflight.clone()).cast::<c_void>().cast_mut();
        // `bio` is handed over exactly once (`self` is forgotten); the glue ends it when the clone
        // completes. The caller keeps `dev` open until `inflight` is idle.
        // SAFETY: `bio` is live; `dev`'s file is open; `private` is an `Arc<Inflight>` reference
        // that `mars_rust_remap_done` takes back exactly once.
        unsafe { shim::mars_bio_remap(bio.as_ptr(), dev.file_ptr(), private) };
    }

    /// Completes the bio with `result`.
    pub(crate) fn end(self, result: Result) {
        let error = match result {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        };
        let bio = self.bio;
        core::mem::forget(self);
        // SAFETY: `bio` is live and, as `self` is forgotten, ended exactly once, here.
        unsafe { shim::mars_bio_end(bio.as_ptr(), error) };
    }
}

impl Drop for IncomingBio {
    fn drop(&mut self) {
        // SAFETY: `bio` is live (type invariant); reaching `Drop` means it was never ended.
        unsafe { shim::mars_bio_end(self.bio.as_ptr(), EIO.to_errno()) };
    }
}

/// Counts bios sent on with [`IncomingBio::remap`] that have not completed yet; its owner waits
/// for the last once no more are sent ([`Inflight::wait_idle`]).
#[pin_data]
pub(crate) struct Inflight {
    /// Bios in flight, plus one until [`Inflight::wait_idle`] is called.
    count: Atomic<i64>,
    /// Set by the first [`Inflight::wait_idle`].
    closing: Atomic<i32>,
    /// Completed when `count` reaches zero.
    #[pin]
    idle: Completion,
}

impl Inflight {
    /// A counter with no bio in flight.
    pub(crate) fn new() -> Result<Arc<Inflight>> {
        Arc::pin_init(
            pin_init!(Inflight { count: Atomic::new(1), closing: Atomic::new(0), idle <- Completion::new() }),
            GFP_KERNEL,
        )
    }

    fn put(&self) {
        if self.count.fetch_sub(1, ordering::Full) == 1 {
            self.idle.complete_all();
        }
    }

    /// Waits until every counted bio has completed. Call once no more bios are sent on (the
    /// disk is removed); later calls return at once.
    pub(crate) fn wait_idle(&self) {
        if self.closing.xchg(1, ordering::Full) == 0 {
            self.put();
        }
        self.idle.wait_for_completion();
    }
}

/// Completion of a bio sent on with [`IncomingBio::remap`]; called by the C glue, any context.
///
/// # Safety
///
/// `private` is the `Arc<Inflight>` reference given to `mars_bio_remap`, passed exactly once.
#[no_mangle]
unsafe extern "C" fn mars_rust_remap_done(private: *mut c_void) {
    // SAFETY: see the function's safety contract.
    let inflight = unsafe { Arc::from_raw(private.cast::<Inflight>()) };
    inflight.put();
}

/// Handles the bios of a [`Disk`].
pub(crate) trait BioHandler: Send + Sync {
    /// Takes a bio; completes it now or later, from any thread.
    fn submit(&self, bio: IncomingBio);
}

/// Routes a disk's bios to its handler: what the disk's `private_data` points to.
#[repr(C)]
struct Route {
    submit: unsafe fn(*const c_void, IncomingBio),
    handler: *const c_void,
}

/// The block device `/dev/mars/NAME`, alive until dropped.
///
/// # Invariants
///
/// `disk` was created by `mars_disk_create` with `private_data` pointing to `*route`, whose
/// `handler` is `Arc::as_ptr(&handler)`; it is removed (after which no bio reaches the route)
/// exactly once, by [`Disk::remove`] or else by `Drop`, and freed by `Drop`, before `route` and
/// `handler` are released. `removed` says whether it was removed.
pub(crate) struct Disk<T: BioHandler> {
    disk: NonNull<bindings::gendisk>,
    removed: bool,
    _route: KBox<Route>,
    _handler: Arc<T>,
}

// SAFETY: the gendisk pointer is only used for thread-safe block-layer calls.
unsafe impl<T: BioHandler> Send for Disk<T> {}
// SAFETY: `&Disk` only reads the opener count.
unsafe impl<T: BioHandler> Sync for Disk<T> {}

impl<T: BioHandler> Disk<T> {
    /// Creates `/dev/mars/{name}` of `sectors` sectors, whose bios go to `handler`.
    pub(crate) fn create(name: &[u8], sectors: u64, handler: Arc<T>) -> Result<Disk<T>> {
        let name = KPath::join(&[name])?;
        let route = KBox::new(Route { submit: route_to::<T>, handler: Arc::as_ptr(&handler).cast() }, GFP_KERNEL)?;
        let private = core::ptr::from_ref::<Route>(&route).cast::<c_void>().cast_mut();
        // SAFETY: `name` is NUL-terminated; `private` points to `route`, which with `handler`
        // lives until `Drop` has removed the disk (type invariant).
        let disk = from_err_ptr(unsafe { shim::mars_disk_create(name.as_ptr(), sectors, private) })?;
        let disk = NonNull::new(disk).ok_or(ENOMEM)?;
        // INVARIANT: created with `private` = `route`, holding `handler`.
        Ok(Disk { disk, removed: false, _route: route, _handler: handler })
    }

    /// Removes `/dev/mars/NAME`: once this returns, no new bio reaches the handler, and whoever
    /// still has it open gets errors. Bios the handler holds are still its to complete, before
    /// the `Disk` is dropped.
    pub(crate) fn remove(&mut self) {
        if !self.removed {
            // SAFETY: `disk` is live and not yet removed (type invariant).
            unsafe { shim::mars_disk_remove(self.disk.as_ptr()) };
            self.removed = true;
        }
    }

    /// How many have the device open now.
    pub(crate) fn openers(&self) -> u32 {
        // SAFETY: `disk` is live (type invariant).
        let n = unsafe { shim::mars_disk_openers(self.disk.as_ptr()) };
        u32::try_from(n).unwrap_or(0)
    }
}

impl<T: BioHandler> Drop for Disk<T> {
    fn drop(&mut self) {
        self.remove();
        // SAFETY: `disk` is live and removed (type invariant), and freed exactly once, here; no
        // bio reaches `route` any more, which is released after this.
        unsafe { shim::mars_disk_put(self.disk.as_ptr()) };
    }
}

/// Hands a bio to the handler of type `T` behind `handler`.
///
/// # Safety
///
/// `handler` is `Arc::as_ptr` of a live `Arc<T>` (a [`Disk`]'s), and `bio` a fresh incoming bio.
unsafe fn route_to<T: BioHandler>(handler: *const c_void, bio: IncomingBio) {
    // SAFETY: see the function's safety contract.
    let handler = unsafe { &*handler.cast::<T>() };
    handler.submit(bio);
}

/// Entry point of every bio sent to a MARS disk; called by the C glue's `submit_bio`.
///
/// # Safety
///
/// `private` is the `private_data` of a disk created by [`Disk::create`] that is still alive,
/// and `bio` a live bio submitted to it.
#[no_mangle]
unsafe extern "C" fn mars_rust_submit_bio(private: *mut c_void, bio: *mut bindings::bio) {
    let Some(bio) = NonNull::new(bio) else { return };
    let mut info = BioInfo::default();
    // SAFETY: `bio` is live; `info` is a valid `mars_bio_info`.
    unsafe { shim::mars_bio_get_info(bio.as_ptr(), &mut info) };
    // INVARIANT: a live bio not yet ended; from here on `IncomingBio` ends it exactly once.
    let incoming = IncomingBio { bio, info };
    // SAFETY: `private` points to the disk's `Route`, alive while the disk is (Disk invariant).
    let route = unsafe { &*private.cast::<Route>() };
    // SAFETY: `route.handler` belongs to `route.submit`'s type (set together in `Disk::create`).
    unsafe { (route.submit)(route.handler, incoming) };
}

/// Sets up the block-layer state of the module (its bio_set); undone by dropping the guard.
pub(crate) struct BlockLayer(());

impl BlockLayer {
    /// Initialises the module's bio_set.
    pub(crate) fn init() -> Result<BlockLayer> {
        // SAFETY: called once at module load, before any bio of ours exists.
        kernel::error::to_result(unsafe { shim::mars_blk_init() })?;
        let layer = BlockLayer(());
        shim::check_codes()?; // on failure, dropping `layer` tears the bio_set down again
        Ok(layer)
    }
}

impl Drop for BlockLayer {
    fn drop(&mut self) {
        // SAFETY: called once at unload, after every disk and every I/O scope is gone (the
        // module drops its resources before this guard).
        unsafe { shim::mars_blk_exit() };
    }
}
