// SPDX-License-Identifier: GPL-2.0

//! A peer connection as the session layer sees it: a kernel socket with a deadline on every
//! transfer, carrying whole frames (`mars_core::session`).
//!
//! It borrows the socket, so the socket's owner can still shut it down from another thread
//! (a brick stopping) while a transfer waits.

use kernel::prelude::*;
use kernel::time::Delta;

use crate::kx::net::Socket;
use crate::mars_core::errno::{describe, Described};
use crate::mars_core::session::FrameIo;

/// A connected socket and the time each transfer may take.
pub(crate) struct Wire<'a> {
    sock: &'a Socket,
    timeout: Delta,
}

impl<'a> Wire<'a> {
    /// Transfers on `sock`, each of which must finish within `timeout`.
    pub(crate) fn new(sock: &'a Socket, timeout: Delta) -> Wire<'a> {
        Wire { sock, timeout }
    }

    /// Changes the deadline of later transfers (short for the handshake, long once up).
    pub(crate) fn set_timeout(&mut self, timeout: Delta) {
        self.timeout = timeout;
    }
}

impl FrameIo for Wire<'_> {
    type Error = Described;

    fn send(&mut self, bytes: &[u8]) -> core::result::Result<(), Described> {
        self.sock.send_all(bytes, self.timeout).map_err(|e| describe(e.to_errno()))
    }

    fn recv(&mut self, buf: &mut [u8]) -> core::result::Result<(), Described> {
        match self.sock.recv_exact(buf, self.timeout) {
            Ok(true) => Ok(()),
            // The peer closed the connection between frames.
            Ok(false) => Err(describe(EPIPE.to_errno())),
            Err(e) => Err(describe(e.to_errno())),
        }
    }
}
