// SPDX-License-Identifier: GPL-2.0

//! Time: the wall clock for Lamport stamps, the monotonic clock for deadlines.

use kernel::bindings;

/// Nanoseconds since the Unix epoch (`CLOCK_REALTIME`); 0 for times before the epoch.
pub(crate) fn real_time_nanos() -> u64 {
    let mut ts = bindings::timespec64::default();
    // SAFETY: `ts` is a valid, writable `timespec64` for the duration of the call.
    unsafe { bindings::ktime_get_real_ts64(&mut ts) };
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

/// Milliseconds of the monotonic clock (since boot): for deadlines and backoff, which must not
/// jump with the wall clock.
pub(crate) fn monotonic_ms() -> u64 {
    monotonic_ns() / 1_000_000
}

/// Nanoseconds of the monotonic clock (since boot): for rate limits.
pub(crate) fn monotonic_ns() -> u64 {
    // SAFETY: no preconditions; callable from any context.
    unsafe { bindings::ktime_get_mono_fast_ns() }
}

/// Nanoseconds of CPU time the calling thread has used, sampled by the scheduler tick: for
/// telling work from waiting over many calls (a single call's figure is off by up to a tick).
pub(crate) fn thread_cpu_ns() -> u64 {
    // SAFETY: no preconditions; reads the calling task's own counters.
    unsafe { super::shim::mars_thread_cpu_ns() }
}
