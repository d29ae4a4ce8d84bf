// SPDX-License-Identifier: GPL-2.0

//! Buffers the block layer can map: the only memory an [`IoScope`](super::bdev::IoScope) takes.
//!
//! The C glue (`mars_bdev_submit` in mars_blk.c) turns a buffer into bio pages with
//! `virt_to_page` or, for vmalloc addresses, `vmalloc_to_page`. That is right for memory from
//! kmalloc or vmalloc and wrong for anything else (a module's static data lies in neither the
//! direct map nor the vmalloc range, so it would map to some unrelated page). So bios are only
//! ever built from an [`IoBuf`], whose memory always comes from `kvmalloc`.

use core::ops::{Deref, DerefMut, Range};

use kernel::prelude::*;

/// A byte buffer from `kvmalloc` (kmalloc, or vmalloc for large sizes).
///
/// # Invariants
///
/// `bytes` is a [`KVVec`]: its memory, if any, comes from kmalloc or vmalloc.
pub(crate) struct IoBuf {
    bytes: KVVec<u8>,
}

impl IoBuf {
    /// An empty buffer (no memory).
    pub(crate) fn new() -> Self {
        // INVARIANT: an empty KVVec.
        IoBuf { bytes: KVVec::new() }
    }

    /// `len` zero bytes.
    pub(crate) fn zeroed(len: usize) -> Result<Self> {
        // INVARIANT: KVVec allocates with kvmalloc.
        Ok(IoBuf { bytes: KVVec::from_elem(0u8, len, GFP_KERNEL)? })
    }

    /// A buffer of `len` bytes whose contents `fill` writes, without zeroing them first (for
    /// data about to be copied in). `fill` gets the address of room for `len` bytes and returns
    /// how many it wrote there; `EIO` (and the memory is freed) unless that is all `len`.
    ///
    /// # Safety
    ///
    /// `fill` writes only within the `len` bytes it is given, and the `n` it returns are the
    /// first `n` of them, all written.
    pub(super) unsafe fn filled_by(len: usize, fill: impl FnOnce(*mut u8) -> usize) -> Result<Self> {
        let mut bytes = KVVec::<u8>::with_capacity(len, GFP_KERNEL)?;
        let done = fill(bytes.as_mut_ptr());
        if done != len {
            return Err(EIO);
        }
        // SAFETY: the capacity is at least `len`, and `fill` wrote the first `len` bytes (the
        // caller's contract).
        unsafe { bytes.inc_len(len) };
        // INVARIANT: KVVec allocates with kvmalloc.
        Ok(IoBuf { bytes })
    }

    /// The bytes `range`, for I/O; `EINVAL` if `range` is not within the buffer.
    pub(crate) fn slice(&self, range: Range<usize>) -> Result<IoSlice<'_>> {
        let bytes = self.bytes.get(range).ok_or(EINVAL)?;
        // INVARIANT: a part of this buffer.
        Ok(IoSlice { bytes })
    }

    /// The bytes `range`, for I/O that fills them; `EINVAL` if not within the buffer.
    pub(crate) fn slice_mut(&mut self, range: Range<usize>) -> Result<IoSliceMut<'_>> {
        let bytes = self.bytes.get_mut(range).ok_or(EINVAL)?;
        // INVARIANT: a part of this buffer.
        Ok(IoSliceMut { bytes })
    }

    /// The buffer cut into consecutive parts of `size` bytes (the last may be shorter; `size` 0
    /// counts as 1), for reads that fill them together.
    pub(crate) fn chunks_mut(&mut self, size: usize) -> impl Iterator<Item = IoSliceMut<'_>> {
        // INVARIANT: each part lies within this buffer.
        self.bytes.chunks_mut(size.max(1)).map(|bytes| IoSliceMut { bytes })
    }

    /// The whole buffer, for I/O.
    pub(crate) fn all(&self) -> IoSlice<'_> {
        // INVARIANT: all of this buffer.
        IoSlice { bytes: &self.bytes }
    }
}

impl Deref for IoBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl DerefMut for IoBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // Changing the contents cannot change where the memory comes from.
        &mut self.bytes
    }
}

/// A part of an [`IoBuf`], borrowed for `'a`.
///
/// # Invariants
///
/// `bytes` lies within the memory of an [`IoBuf`] that lives for `'a`.
#[derive(Clone, Copy)]
pub(crate) struct IoSlice<'a> {
    bytes: &'a [u8],
}

impl<'a> IoSlice<'a> {
    /// The bytes.
    pub(crate) fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }
}

/// A part of an [`IoBuf`], borrowed mutably for `'a`: where a read puts its data.
///
/// # Invariants
///
/// `bytes` lies within the memory of an [`IoBuf`] that lives for `'a`.
pub(crate) struct IoSliceMut<'a> {
    bytes: &'a mut [u8],
}

impl<'a> IoSliceMut<'a> {
    /// The bytes.
    pub(crate) fn bytes(self) -> &'a mut [u8] {
        self.bytes
    }
}
