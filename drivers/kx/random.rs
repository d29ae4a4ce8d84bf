// SPDX-License-Identifier: GPL-2.0

//! Random bytes from the kernel's cryptographically secure generator: handshake nonces, seeds.

use super::shim;

/// Fills `buf` with random bytes.
pub(crate) fn fill(buf: &mut [u8]) {
    // SAFETY: `buf` is valid for writes of its length for the duration of the call.
    unsafe { shim::mars_random_bytes(buf.as_mut_ptr().cast(), buf.len()) };
}

/// A random 64-bit number.
pub(crate) fn u64() -> u64 {
    let mut b = [0u8; 8];
    fill(&mut b);
    u64::from_le_bytes(b)
}
