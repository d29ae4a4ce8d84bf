// SPDX-License-Identifier: GPL-2.0

//! Authenticating a peer connection, as client or server: this host's hello (its name, the
//! cluster id of its secret, a fresh nonce) and `mars_core::session::handshake` over a [`Wire`].

use crate::kx;
use crate::mars_core::errno::Described;
use crate::mars_core::proto::{Role, MAX_VERSION, MIN_VERSION};
use crate::mars_core::proto_msg::{Hello, NONCE_LEN};
use crate::mars_core::session::{self, cluster_id, Authenticated, SessionError};
use crate::secret::{Secret, SecretProblem};
use crate::wire::Wire;

/// Why a connection was not authenticated.
pub(crate) enum Refusal {
    /// This host has no usable secret: it neither proves nor checks anything.
    NoSecret(SecretProblem),
    /// The handshake failed (the peer has been told why, or told us why).
    Session(SessionError<Described>),
}

impl core::fmt::Display for Refusal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Refusal::NoSecret(p) => write!(f, "{p}"),
            Refusal::Session(e) => write!(f, "{e}"),
        }
    }
}

impl Refusal {
    /// The protocol error code involved, if any (for status).
    pub(crate) fn code(&self) -> Option<u16> {
        match self {
            Refusal::Session(SessionError::Proto(e)) => Some(e.code().0),
            Refusal::Session(SessionError::Refused { code, .. }) => Some(code.0),
            _ => None,
        }
    }
}

/// Runs the handshake on `wire` as `role` for this host `host`; `expected_peer` is the name of
/// the host a client meant to reach.
pub(crate) fn authenticate(
    wire: &mut Wire<'_>,
    role: Role,
    host: &str,
    expected_peer: Option<&str>,
) -> core::result::Result<Authenticated, Refusal> {
    let secret = Secret::load().map_err(Refusal::NoSecret)?;
    let mut nonce = [0u8; NONCE_LEN];
    kx::random::fill(&mut nonce);
    let own = Hello {
        min_version: MIN_VERSION,
        max_version: MAX_VERSION,
        cluster_id: cluster_id(secret.bytes()),
        nonce,
        host_name: host,
    };
    session::handshake(wire, role, secret.bytes(), &own, expected_peer).map_err(Refusal::Session)
}
