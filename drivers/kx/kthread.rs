// SPDX-License-Identifier: GPL-2.0

//! A kernel thread that runs rounds of work until it is stopped.

use core::ptr::NonNull;

use kernel::bindings;
use kernel::error::from_err_ptr;
use kernel::ffi::{c_int, c_void};
use kernel::prelude::*;
use kernel::sync::Arc;

/// The work of a [`KThread`]: one round at a time, with a pause between rounds.
pub(crate) trait Rounds: Send + Sync {
    /// Does one round of work and returns how many milliseconds to sleep before the next one (0:
    /// none; such a round must itself sleep while there is nothing to do).
    fn round(&self) -> u32;
    /// Called (from the stopping thread) just before the thread is stopped: a round that waits on
    /// its own wait queue must stop waiting from now on, so that the thread sees the stop. (The
    /// pause between rounds needs nothing: stopping wakes it.)
    fn stop(&self) {}
    /// Runs once in the thread after the last round, before it exits.
    fn finish(&self);
}

/// A kernel thread calling `T::round` until the `KThread` is dropped.
///
/// # Invariants
///
/// `task` is a thread created by `kthread_create_on_node` with a task reference held by us, whose
/// thread function reads `*Arc::as_ptr(&_body)`; `Drop` stops it (waiting for its function to
/// return) before `_body` is released.
pub(crate) struct KThread<T: Rounds> {
    task: NonNull<bindings::task_struct>,
    /// Keeps the thread's work alive while the thread runs; the thread reads it by pointer.
    _body: Arc<T>,
}

// SAFETY: the task pointer is only used for `kthread_stop_put`, which may be called from any
// thread; `T` is `Send + Sync`.
unsafe impl<T: Rounds> Send for KThread<T> {}
// SAFETY: `&KThread` exposes nothing but the `Sync` body.
unsafe impl<T: Rounds> Sync for KThread<T> {}

impl<T: Rounds> KThread<T> {
    /// Starts a thread named `name` (shown by `ps`) running `body`'s rounds.
    pub(crate) fn spawn(name: &CStr, body: Arc<T>) -> Result<KThread<T>> {
        let data = Arc::as_ptr(&body).cast::<c_void>().cast_mut();
        // SAFETY: `thread_fn::<T>` matches the kthread function signature and reads `data` as a
        // `T`, which `body` keeps alive until the thread has been stopped (type invariant); the
        // format string is "%s" with one NUL-terminated argument.
        let task = unsafe {
            bindings::kthread_create_on_node(
                Some(thread_fn::<T>),
                data,
                bindings::NUMA_NO_NODE,
                c"%s".as_char_ptr(),
                name.as_char_ptr(),
            )
        };
        let task = NonNull::new(from_err_ptr(task)?).ok_or(ENOMEM)?;
        // SAFETY: `task` is a valid, newly created task; the reference taken here keeps the
        // task_struct valid for `kthread_stop_put` even if the thread exited on its own.
        unsafe { bindings::get_task_struct(task.as_ptr()) };
        // SAFETY: `task` is valid; waking it starts `thread_fn`.
        unsafe { bindings::wake_up_process(task.as_ptr()) };
        // INVARIANT: created, referenced and running with `data` from `body`.
        Ok(KThread { task, _body: body })
    }
}

impl<T: Rounds> KThread<T> {
    /// The thread's work, for others to look at while it runs.
    pub(crate) fn body(&self) -> &T {
        &self._body
    }
}

impl<T: Rounds> Drop for KThread<T> {
    fn drop(&mut self) {
        self._body.stop();
        // SAFETY: `task` is a kthread we hold a reference on (type invariant); this wakes it,
        // waits for `thread_fn` to return, and drops our reference. `_body` is released after.
        unsafe { bindings::kthread_stop_put(self.task.as_ptr()) };
    }
}

/// The thread function: rounds until asked to stop.
///
/// # Safety
///
/// `data` points to a `T` that stays valid until `kthread_stop` has returned.
unsafe extern "C" fn thread_fn<T: Rounds>(data: *mut c_void) -> c_int {
    // SAFETY: see the function's safety contract.
    let body = unsafe { &*data.cast::<T>() };
    // MARS's threads are what its I/O waits for (the logger, the write-back): an allocation of
    // theirs that reclaimed memory by writing to /dev/mars/NAME would wait for itself.
    // SAFETY: no precondition; undone below on this same task.
    let noio = unsafe { super::shim::mars_noio_begin() };
    // SAFETY: called from a kthread.
    while !unsafe { bindings::kthread_should_stop() } {
        let pause_ms = body.round();
        // No pause: straight on. (`schedule_timeout(0)` would sleep until the next timer tick,
        // which a round waiting for work on its own wait queue must not add to every request.)
        if pause_ms == 0 {
            continue;
        }
        let jiffies = kernel::time::msecs_to_jiffies(pause_ms);
        let jiffies = kernel::ffi::c_long::try_from(jiffies).unwrap_or(kernel::ffi::c_long::MAX);
        // SAFETY: sleeping is allowed here; `kthread_stop` wakes the thread early.
        unsafe { bindings::schedule_timeout_interruptible(jiffies) };
    }
    body.finish();
    // SAFETY: ends the `mars_noio_begin` above, on the same task.
    unsafe { super::shim::mars_noio_end(noio) };
    0
}
