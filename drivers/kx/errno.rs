// SPDX-License-Identifier: GPL-2.0

//! Error codes MARS uses that `kernel::error::code` does not declare.

use kernel::bindings;
use kernel::error::Error;

/// `ENAMETOOLONG`: a path does not fit.
pub(crate) fn name_too_long() -> Error {
    Error::from_errno(-(bindings::ENAMETOOLONG as i32))
}

/// `EUCLEAN`: an on-disk structure (a tree entry) is malformed.
pub(crate) fn unclean() -> Error {
    Error::from_errno(-(bindings::EUCLEAN as i32))
}

/// `EOVERFLOW`: a buffer of ours is too small for what had to go into it.
pub(crate) fn overflow() -> Error {
    Error::from_errno(-(bindings::EOVERFLOW as i32))
}

/// `EOPNOTSUPP`: the device does not do this operation.
pub(crate) fn not_supported() -> Error {
    Error::from_errno(-(bindings::EOPNOTSUPP as i32))
}
