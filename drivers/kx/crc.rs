// SPDX-License-Identifier: GPL-2.0

//! CRC-32C of write payloads: the kernel's `crc32c()` (CPU instructions where there are some) or
//! `lib/`'s portable one, whichever is faster on this machine. At load, [`init`] proves that both
//! agree and measures them. (Under emulation, e.g. QEMU without KVM, the CPU's CRC and carry-less
//! multiply instructions are emulated and slower than the portable table code.)

use kernel::prelude::*;
use kernel::sync::atomic::{ordering, Atomic};
use kernel::time::{Delta, Instant, Monotonic};

use super::shim;
use crate::mars_core::crc32c as portable;

/// True once [`init`] found the kernel's implementation faster.
static USE_KERNEL: Atomic<bool> = Atomic::new(false);

/// CRC-32C of `data`, as `lib/src/crc32c.rs` defines it.
pub(crate) fn crc32c(data: &[u8]) -> u32 {
    if USE_KERNEL.load(ordering::Relaxed) {
        kernel_crc32c(data)
    } else {
        portable::crc32c(data)
    }
}

fn kernel_crc32c(data: &[u8]) -> u32 {
    // SAFETY: `data` is valid for reads of `data.len()` bytes for the duration of the call.
    unsafe { shim::mars_crc32c(data.as_ptr().cast(), data.len()) }
}

/// Checks the implementations against each other ([`self_check`]), then picks the faster one
/// on a 256 KiB buffer and says which in dmesg.
pub(crate) fn init() -> Result {
    self_check()?;
    let buf = KVVec::from_elem(0x5Au8, 256 << 10, GFP_KERNEL)?;
    let time = |f: fn(&[u8]) -> u32| {
        let start = Instant::<Monotonic>::now();
        let mut sum = 0u32;
        for _ in 0..4 {
            sum = sum.wrapping_add(f(&buf));
        }
        (start.elapsed(), sum)
    };
    let (kernel_time, a) = time(kernel_crc32c);
    let (portable_time, b) = time(portable::crc32c);
    let faster = kernel_time < portable_time && a == b;
    USE_KERNEL.store(faster, ordering::Relaxed);
    // 1 MiB in total: bytes per microsecond are MB/s.
    let mb_s = |d: Delta| (1u64 << 20) / u64::try_from(d.as_micros_ceil().max(1)).unwrap_or(1);
    pr_info!(
        "CRC-32C: kernel crc32c() {} MB/s, portable {} MB/s: using the {}\n",
        mb_s(kernel_time),
        mb_s(portable_time),
        if faster { "kernel's" } else { "portable one" }
    );
    Ok(())
}

/// Checks that the kernel's CRC-32C and `lib/`'s agree: on the standard check value and on
/// buffers of every length up to 4 KiB and unaligned starts. `EINVAL` (with a message) if not:
/// logs written with one and read with the other would look damaged.
fn self_check() -> Result {
    if kernel_crc32c(b"123456789") != 0xE306_9283 {
        pr_err!("the kernel's crc32c() does not give the CRC-32C check value; not loading\n");
        return Err(EINVAL);
    }
    let mut buf = KVec::with_capacity(4096 + 8, GFP_KERNEL)?;
    let mut x = 0x9E37_79B9u32;
    for _ in 0..4096 + 8 {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        buf.push((x >> 24) as u8, GFP_KERNEL)?;
    }
    for start in 0..8 {
        for len in Iterator::chain((0..=4096).step_by(61), [4096]) {
            let data = buf.get(start..start + len).ok_or(EINVAL)?;
            if kernel_crc32c(data) != portable::crc32c(data) {
                pr_err!("the kernel's crc32c() and MARS's disagree ({} bytes at offset {}); not loading\n", len, start);
                return Err(EINVAL);
            }
        }
    }
    Ok(())
}
