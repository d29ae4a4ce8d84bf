// SPDX-License-Identifier: GPL-2.0

//! Printing `lib/` values with the kernel's formatting macros.
//!
//! `pr_*!` and `seq_print!` format through [`kernel::fmt::Display`]; the types of the shared core
//! implement [`core::fmt::Display`] (they also serve userspace), so they are wrapped in [`Shown`].

use core::fmt;

/// Shows a [`core::fmt::Display`] value through [`kernel::fmt::Display`].
pub(crate) struct Shown<'a, T: ?Sized>(pub(crate) &'a T);

impl<T: fmt::Display + ?Sized> kernel::fmt::Display for Shown<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.0, f)
    }
}
