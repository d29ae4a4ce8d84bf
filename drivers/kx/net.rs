// SPDX-License-Identifier: GPL-2.0

//! TCP sockets (IPv4 and IPv6) for the server and client bricks, through `drivers/mars_net.c`.
//!
//! Every call that can block takes a timeout, so a dead or silent peer never holds a thread for
//! ever; [`Socket::shutdown`] from any other thread makes a blocked call return at once (how a
//! brick stops its threads). Buffers are left to the kernel's autotuning, which lets a single
//! connection's window grow to a long link's bandwidth-delay product.

use core::ptr::NonNull;

use kernel::bindings;
use kernel::error::to_result;
use kernel::ffi::c_int;
use kernel::prelude::*;
use kernel::time::Delta;

use super::shim;

/// An IPv4 or IPv6 address and a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SockAddr {
    /// 4 bytes (IPv4) or 16 (IPv6), network order.
    bytes: [u8; 16],
    /// 4 or 16.
    len: u8,
    /// Port.
    pub(crate) port: u16,
}

impl SockAddr {
    /// An IPv4 address.
    pub(crate) fn v4(octets: [u8; 4], port: u16) -> SockAddr {
        let mut bytes = [0u8; 16];
        bytes.iter_mut().zip(octets).for_each(|(d, s)| *d = s);
        SockAddr { bytes, len: 4, port }
    }

    /// An IPv6 address.
    pub(crate) fn v6(octets: [u8; 16], port: u16) -> SockAddr {
        SockAddr { bytes: octets, len: 16, port }
    }

    /// The address bytes (4 or 16).
    pub(crate) fn octets(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }

    fn c_len(&self) -> c_int {
        c_int::from(self.len)
    }
}

impl SockAddr {
    /// The same address without its port, for comparing peers.
    pub(crate) fn same_host(&self, other: &SockAddr) -> bool {
        self.octets() == other.octets()
    }
}

/// `10.0.0.1:7777` or `[2001:db8:0:0:0:0:0:7]:7777` (IPv6 groups not compressed).
impl core::fmt::Display for SockAddr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.octets() {
            [a, b, c, d] => write!(f, "{a}.{b}.{c}.{d}:{}", self.port),
            bytes => {
                f.write_str("[")?;
                for (i, pair) in bytes.chunks(2).enumerate() {
                    let group = pair.iter().fold(0u16, |acc, &b| (acc << 8) | u16::from(b));
                    if i > 0 {
                        f.write_str(":")?;
                    }
                    write!(f, "{group:x}")?;
                }
                write!(f, "]:{}", self.port)
            }
        }
    }
}

/// A timeout as the C glue takes it: milliseconds, at least 1.
fn millis(timeout: Delta) -> c_int {
    c_int::try_from(timeout.as_millis()).unwrap_or(c_int::MAX).max(1)
}

/// A kernel TCP socket, released on drop.
///
/// # Invariants
///
/// `sock` was returned by `mars_sock_listen`, `mars_sock_accept` or `mars_sock_connect` and is
/// released only in `Drop`.
pub(crate) struct Socket {
    sock: NonNull<bindings::socket>,
}

// SAFETY: a kernel socket may be used and released from any thread.
unsafe impl Send for Socket {}
// SAFETY: the calls through `&Socket` (send, receive, shutdown, peer name) are safe to make from
// several threads at once: the socket layer locks the socket for each.
unsafe impl Sync for Socket {}

impl Socket {
    /// Wraps a socket the glue returned.
    fn from_raw(sock: *mut bindings::socket) -> Result<Socket> {
        let sock = NonNull::new(sock).ok_or(ENOMEM)?;
        // INVARIANT: the caller got `sock` from the glue, and it is owned by this value alone.
        Ok(Socket { sock })
    }

    /// Listens on `addr` (the address this host's members know it by) with room for `backlog`
    /// connections waiting to be accepted.
    pub(crate) fn listen(addr: &SockAddr, backlog: u32) -> Result<Socket> {
        let mut sock = core::ptr::null_mut();
        let backlog = c_int::try_from(backlog).unwrap_or(c_int::MAX);
        // SAFETY: `addr.octets()` holds `c_len()` bytes; `sock` is valid for the glue to fill.
        to_result(unsafe {
            shim::mars_sock_listen(addr.octets().as_ptr(), addr.c_len(), addr.port, backlog, &mut sock)
        })?;
        Socket::from_raw(sock)
    }

    /// Waits up to `timeout` for a connection; `EAGAIN` if none came.
    pub(crate) fn accept(&self, timeout: Delta) -> Result<Socket> {
        let mut sock = core::ptr::null_mut();
        // SAFETY: `self.sock` is a live listening socket (type invariant); `sock` is valid.
        to_result(unsafe { shim::mars_sock_accept(self.sock.as_ptr(), millis(timeout), &mut sock) })?;
        Socket::from_raw(sock)
    }

    /// A TCP socket, not yet connected, for addresses of `addr`'s family: it exists before the
    /// connect, so another thread can [`Socket::shutdown`] it to end a connect that waits.
    pub(crate) fn for_address(addr: &SockAddr) -> Result<Socket> {
        let mut sock = core::ptr::null_mut();
        // SAFETY: `sock` is valid for the glue to fill.
        to_result(unsafe { shim::mars_sock_create(addr.c_len(), &mut sock) })?;
        Socket::from_raw(sock)
    }

    /// Connects to `addr` within `timeout` (`EAGAIN` if it did not come up in time).
    pub(crate) fn connect(&self, addr: &SockAddr, timeout: Delta) -> Result {
        // SAFETY: `self.sock` is a live socket (type invariant); `addr.octets()` holds
        // `c_len()` bytes.
        to_result(unsafe {
            shim::mars_sock_connect(
                self.sock.as_ptr(),
                addr.octets().as_ptr(),
                addr.c_len(),
                addr.port,
                millis(timeout),
            )
        })
    }

    /// Sends all of `data` within `timeout`; `EAGAIN` if it did not all go (the connection is
    /// then out of step with the peer: close it).
    pub(crate) fn send_all(&self, data: &[u8], timeout: Delta) -> Result {
        // SAFETY: `self.sock` is live; `data` is valid for reads of its length for the call.
        to_result(unsafe {
            shim::mars_sock_send(self.sock.as_ptr(), data.as_ptr().cast(), data.len(), millis(timeout))
        })
    }

    /// Fills `buf` from the connection within `timeout`. Returns false if the peer closed the
    /// connection before the first byte; `ECONNRESET` if it closed within, `EAGAIN` on timeout.
    pub(crate) fn recv_exact(&self, buf: &mut [u8], timeout: Delta) -> Result<bool> {
        // SAFETY: `self.sock` is live; `buf` is valid for writes of its length for the call.
        let n =
            unsafe { shim::mars_sock_recv(self.sock.as_ptr(), buf.as_mut_ptr().cast(), buf.len(), millis(timeout)) };
        to_result(n.min(0))?;
        Ok(n != 0 || buf.is_empty())
    }

    /// The peer's address.
    pub(crate) fn peer(&self) -> Result<SockAddr> {
        let mut bytes = [0u8; 16];
        let mut port = 0u16;
        // SAFETY: `self.sock` is live; `bytes` has the 16 bytes of room the glue may fill.
        let len = unsafe { shim::mars_sock_peer(self.sock.as_ptr(), bytes.as_mut_ptr(), &mut port) };
        to_result(len.min(0))?;
        let len = u8::try_from(len).map_err(|_| EINVAL)?;
        Ok(SockAddr { bytes, len, port })
    }

    /// Shuts the connection down both ways: calls blocked on it in other threads return now, and
    /// every later one fails. The socket stays valid until dropped.
    pub(crate) fn shutdown(&self) {
        // SAFETY: `self.sock` is live (type invariant).
        unsafe { shim::mars_sock_shutdown(self.sock.as_ptr()) };
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // SAFETY: `sock` is live and, as `drop` has `self` exclusively, nobody else uses it; it
        // is released exactly once, here.
        unsafe { shim::mars_sock_release(self.sock.as_ptr()) };
    }
}
