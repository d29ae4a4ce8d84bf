// SPDX-License-Identifier: GPL-2.0

//! The cluster secret: 32 bytes in `/mars/.secret` (root only, mode 0600), written by `marsadm
//! create-cluster` and brought to every joining host by the admin (docs/cluster.md).
//!
//! A dot name is never a tree key, so the secret is never exchanged; it is read afresh for each
//! handshake (so a rotated secret takes effect without a reload), never logged, and wiped from
//! memory when dropped.

use kernel::prelude::*;

use crate::kx::file::{KFile, OpenMode};
use crate::kx::vfs::KPath;
use crate::mars_core::session::SECRET_LEN;
use crate::tree_store::ROOT;

/// The secret's file under /mars.
const FILE: &[u8] = b"/.secret";

/// The cluster secret, in memory for one handshake.
pub(crate) struct Secret([u8; SECRET_LEN]);

/// Why there is no usable secret.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum SecretProblem {
    /// `/mars/.secret` does not exist.
    Missing,
    /// It holds a number of bytes other than [`SECRET_LEN`].
    WrongLength(u64),
    /// It cannot be read (errno).
    Unreadable(i32),
}

impl core::fmt::Display for SecretProblem {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            SecretProblem::Missing => f.write_str("no cluster secret (/mars/.secret is missing)"),
            SecretProblem::WrongLength(n) => {
                write!(f, "/mars/.secret holds {n} bytes, a cluster secret has {SECRET_LEN}")
            }
            SecretProblem::Unreadable(e) => {
                write!(f, "cannot read /mars/.secret: {}", crate::mars_core::errno::describe(e))
            }
        }
    }
}

impl Secret {
    /// Reads the secret from `/mars/.secret`.
    pub(crate) fn load() -> core::result::Result<Secret, SecretProblem> {
        let path = KPath::join(&[ROOT, FILE]).map_err(|e| SecretProblem::Unreadable(e.to_errno()))?;
        let file = match KFile::open(&path, OpenMode::Read) {
            Ok(f) => f,
            Err(e) if e == ENOENT => return Err(SecretProblem::Missing),
            Err(e) => return Err(SecretProblem::Unreadable(e.to_errno())),
        };
        let size = file.size();
        if size != SECRET_LEN as u64 {
            return Err(SecretProblem::WrongLength(size));
        }
        let mut secret = Secret([0; SECRET_LEN]);
        match file.read_at(&mut secret.0, 0) {
            Ok(SECRET_LEN) => Ok(secret),
            Ok(n) => Err(SecretProblem::WrongLength(n as u64)),
            Err(e) => Err(SecretProblem::Unreadable(e.to_errno())),
        }
    }

    /// The secret's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        crate::kx::wipe::wipe(&mut self.0);
    }
}
