// SPDX-License-Identifier: GPL-2.0

//! This host's name.

use super::shim;

/// Maximum length of a host name (`__NEW_UTS_LEN`).
const MAX_LEN: usize = 64;

/// A copy of the host name, taken at one moment.
///
/// # Invariants
///
/// `len <= MAX_LEN` and `buf[..len]` holds the name without its terminating NUL.
pub(crate) struct HostName {
    buf: [u8; MAX_LEN + 1],
    len: usize,
}

impl HostName {
    /// Copies the current host name (of the initial UTS namespace).
    pub(crate) fn current() -> HostName {
        let mut buf = [0u8; MAX_LEN + 1];
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes; the shim writes at most that
        // many, NUL-terminated.
        let ret = unsafe { shim::mars_host_name(buf.as_mut_ptr().cast(), buf.len()) };
        // A negative return means truncation, impossible with a buffer of `__NEW_UTS_LEN + 1`;
        // keep what fits rather than fail.
        let len = usize::try_from(ret).unwrap_or(MAX_LEN).min(MAX_LEN);
        // INVARIANT: `len` is clamped to `MAX_LEN`, and the shim wrote `len` name bytes.
        HostName { buf, len }
    }

    /// The name's bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}
