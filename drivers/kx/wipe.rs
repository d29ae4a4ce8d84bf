// SPDX-License-Identifier: GPL-2.0

//! Wiping secrets from memory before it is freed.

/// Overwrites `buf` with zeros in a way the compiler may not leave out, although nothing reads
/// the memory afterwards.
pub(crate) fn wipe(buf: &mut [u8]) {
    for b in buf.iter_mut() {
        // SAFETY: `b` is a valid, aligned, exclusive reference to one byte.
        unsafe { core::ptr::write_volatile(b, 0) };
    }
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
}
