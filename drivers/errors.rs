// SPDX-License-Identifier: GPL-2.0

//! The domain errors of `mars_core` as kernel errnos: the one place where they are mapped, so
//! that `?` carries a fitting errno out of every pure-core call (callers that report a cause in
//! words take the domain error itself).

use kernel::error::code::{E2BIG, EINVAL};
use kernel::error::Error;

use crate::kx::errno;
use crate::mars_core::logrec::EncodeError;
use crate::mars_core::names::NameProblem;
use crate::mars_core::tree::TreeError;

impl From<NameProblem> for Error {
    fn from(p: NameProblem) -> Error {
        match p {
            NameProblem::TooLong { .. } => errno::name_too_long(),
            _ => EINVAL,
        }
    }
}

impl From<TreeError> for Error {
    fn from(e: TreeError) -> Error {
        match e {
            // A name or key we were about to write breaks the grammar.
            TreeError::BadKey(p)
            | TreeError::BadHostName(p)
            | TreeError::BadResourceName(p)
            | TreeError::BadItemName(p) => p.into(),
            TreeError::BadSequence { .. } => errno::overflow(),
            TreeError::ValueTooLong { .. } => E2BIG,
            TreeError::ValueNotUtf8 { .. } | TreeError::ValueControlChar { .. } | TreeError::TombstoneWithValue => {
                EINVAL
            }
            TreeError::BufferTooSmall { .. } => errno::overflow(),
            // What we read (a link target, a chunk) is malformed.
            TreeError::Truncated { .. }
            | TreeError::BadMagic
            | TreeError::BadVersion { .. }
            | TreeError::BadHeaderLength { .. }
            | TreeError::ChunkTooLarge { .. }
            | TreeError::TrailingBytes { .. }
            | TreeError::ChecksumMismatch { .. }
            | TreeError::MissingEntries { .. }
            | TreeError::BadFlags { .. }
            | TreeError::BadLinkTarget { .. } => errno::unclean(),
        }
    }
}

impl From<EncodeError> for Error {
    fn from(e: EncodeError) -> Error {
        match e {
            EncodeError::BufferTooSmall { .. } => errno::overflow(),
            EncodeError::BadLength => EINVAL,
        }
    }
}
