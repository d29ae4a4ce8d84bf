// SPDX-License-Identifier: GPL-2.0

//! SHA-256 of sync blocks: the kernel's `sha256()` (SHA or vector instructions where there are
//! some) or `lib/`'s portable one, whichever is faster on this machine, as [`super::crc`] does
//! for CRC-32C. At load, [`init`] proves that both agree and measures them. A fast sync hashes
//! every block on both hosts, so the digest's speed bounds it.

use kernel::prelude::*;
use kernel::sync::atomic::{ordering, Atomic};
use kernel::time::{Delta, Instant, Monotonic};

use super::shim;
use crate::mars_core::sha256 as portable;

/// True once [`init`] found the kernel's implementation faster.
static USE_KERNEL: Atomic<bool> = Atomic::new(false);

/// SHA-256 of `data`.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    if USE_KERNEL.load(ordering::Relaxed) {
        kernel_sha256(data)
    } else {
        portable::sha256(data)
    }
}

fn kernel_sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    // SAFETY: `data` is valid for reads of `data.len()` bytes and `out` for writes of 32 bytes
    // for the duration of the call, which keeps no pointer to either.
    unsafe { shim::mars_sha256(data.as_ptr().cast(), data.len(), out.as_mut_ptr()) };
    out
}

/// Checks the implementations against each other, then picks the faster one on a 256 KiB
/// buffer and says which in dmesg. `EINVAL` (with a message) if they disagree: the two hosts
/// of a sync would see every block differ, or worse, none.
pub(crate) fn init() -> Result {
    let mut buf = KVVec::with_capacity(256 << 10, GFP_KERNEL)?;
    let mut x = 0x9E37_79B9u32;
    for _ in 0..256 << 10 {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        buf.push((x >> 24) as u8, GFP_KERNEL)?;
    }
    for len in [0usize, 3, 55, 56, 63, 64, 65, 1000, 4096, 256 << 10] {
        let data = buf.get(..len).ok_or(EINVAL)?;
        if kernel_sha256(data) != portable::sha256(data) {
            pr_err!("the kernel's sha256() and MARS's disagree on {} bytes; not loading\n", len);
            return Err(EINVAL);
        }
    }
    let time = |f: fn(&[u8]) -> [u8; 32]| {
        let start = Instant::<Monotonic>::now();
        let mut first = 0u8;
        for _ in 0..4 {
            first ^= f(&buf)[0];
        }
        (start.elapsed(), first)
    };
    let (kernel_time, _) = time(kernel_sha256);
    let (portable_time, _) = time(portable::sha256);
    let faster = kernel_time < portable_time;
    USE_KERNEL.store(faster, ordering::Relaxed);
    // 1 MiB in total: bytes per microsecond are MB/s.
    let mb_s = |d: Delta| (1u64 << 20) / u64::try_from(d.as_micros_ceil().max(1)).unwrap_or(1);
    pr_info!(
        "SHA-256: kernel sha256() {} MB/s, portable {} MB/s: using the {}\n",
        mb_s(kernel_time),
        mb_s(portable_time),
        if faster { "kernel's" } else { "portable one" }
    );
    Ok(())
}
