//! One end of a peer connection, whatever carries it: whole frames in and out, and the
//! handshake of docs/protocol.md, over a [`FrameIo`] (kernel sockets in mars.ko, std TCP in
//! marsadm, an in-memory pipe in the tests).
//!
//! Everything received goes through the decoder of the sibling module `proto` before it is used,
//! and a frame is refused by its header alone (type not expected now, payload longer than the
//! receiver's buffer) before any of its payload is read.

// A refusal carries the peer's text inline (no allocation here), so the error type is large.
#![allow(clippy::result_large_err)]

use core::fmt;

use super::proto::{
    auth_proof, check_payload, check_peer_hello, decode_header, decode_message, encode_frame_head, verify_proof,
    ErrorCode, ErrorText, FrameHeader, MessageType, ProtoError, Role, HEADER_LEN,
};
use super::proto_msg::{Hello, Message, CLUSTER_ID_LEN, MAX_ERROR_TEXT};
use super::sha256::HmacSha256;

/// Bytes in the cluster secret that `marsadm create-cluster` makes.
pub const SECRET_LEN: usize = 32;

/// Label of the cluster id derivation (see [`cluster_id`]).
const CLUSTER_ID_LABEL: &[u8] = b"mars-cluster-id-v1";

/// Room for any handshake message and error frame.
const SMALL_FRAME: usize = HEADER_LEN + 256;

/// The cluster id that hellos carry: the first 16 bytes of `HMAC-SHA256(secret,
/// "mars-cluster-id-v1")`.
///
/// Derived from the secret, so a joining host that has been given the secret knows it without
/// asking anyone, and a host of another cluster (another secret) is refused at the hello, before
/// any proof. The id reveals nothing about the secret (it is a MAC output), and it cannot stand
/// in for it: the proofs still need the secret itself.
pub fn cluster_id(secret: &[u8]) -> [u8; CLUSTER_ID_LEN] {
    let mut mac = HmacSha256::new(secret);
    mac.update(CLUSTER_ID_LABEL);
    let digest = mac.finish();
    let mut id = [0u8; CLUSTER_ID_LEN];
    id.iter_mut().zip(digest).for_each(|(d, s)| *d = s);
    id
}

/// A connection that carries whole byte strings both ways, each call with its own deadline.
pub trait FrameIo {
    /// Why a transfer failed (timeout, reset, the peer closed).
    type Error: Copy;

    /// Sends all of `bytes`.
    fn send(&mut self, bytes: &[u8]) -> Result<(), Self::Error>;

    /// Fills all of `buf`; fails if the peer closes first.
    fn recv(&mut self, buf: &mut [u8]) -> Result<(), Self::Error>;
}

/// Why a session step failed.
#[derive(Clone, Debug)]
pub enum SessionError<E> {
    /// The transport failed.
    Io(E),
    /// What the peer sent is wrong; it has been told so (best effort) and the connection must
    /// be closed.
    Proto(ProtoError),
    /// The peer refused us with an error frame outside any request.
    Refused {
        /// The peer's error code.
        code: ErrorCode,
        /// The peer's explanation.
        message: ErrorText,
    },
}

impl<E: fmt::Display> fmt::Display for SessionError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Io(e) => write!(f, "{e}"),
            SessionError::Proto(e) => write!(f, "{e}"),
            SessionError::Refused { code, message } => write!(f, "refused by the peer: {code}: {}", message.as_str()),
        }
    }
}

/// Encodes `message` with `request_id` into `scratch` and sends it; the bulk data of the
/// message (a tree chunk, logfile or block data) goes out from where it is, without a copy.
pub fn send<T: FrameIo>(
    io: &mut T,
    message: &Message<'_>,
    request_id: u64,
    scratch: &mut [u8],
) -> Result<(), SessionError<T::Error>> {
    let head = encode_frame_head(message, request_id, scratch).map_err(SessionError::Proto)?;
    io.send(scratch.get(..head).unwrap_or(&[])).map_err(SessionError::Io)?;
    let bulk = message.bulk();
    if !bulk.is_empty() {
        io.send(bulk).map_err(SessionError::Io)?;
    }
    Ok(())
}

/// Sends an error frame, for the peer's log, before the caller closes the connection. Best
/// effort: the connection is going away anyway, so a failure to send is not reported.
pub fn send_error<T: FrameIo>(io: &mut T, error: &ProtoError, request_id: u64) {
    let mut text = ErrorText::new();
    let _ = fmt::write(&mut text, format_args!("{error}"));
    let mut scratch = [0u8; SMALL_FRAME];
    let _ = send(io, &Message::Error { code: error.code(), message: text.as_str() }, request_id, &mut scratch);
}

/// Receives one frame into `buf` and decodes it.
///
/// `expect` says which message types may come now; error frames may always come. A frame of
/// another type, or with a payload longer than `buf`, is refused after its 32-byte header, and
/// the peer is told why. An error frame outside any request (request id 0) is returned as
/// [`SessionError::Refused`]; one that answers a request is returned as a message, for the
/// caller to pair with its request.
pub fn recv<'b, T: FrameIo>(
    io: &mut T,
    buf: &'b mut [u8],
    expect: impl Fn(MessageType) -> bool,
) -> Result<(FrameHeader, Message<'b>), SessionError<T::Error>> {
    let mut head = [0u8; HEADER_LEN];
    io.recv(&mut head).map_err(SessionError::Io)?;
    let header = decode_header(&head).map_err(|e| refuse(io, e))?;
    if header.kind != MessageType::Error && !expect(header.kind) {
        return Err(refuse(io, ProtoError::Unexpected { kind: header.kind }));
    }
    let len = usize::try_from(header.payload_len).unwrap_or(usize::MAX);
    let room = buf.len();
    let Some(payload) = buf.get_mut(..len) else {
        return Err(refuse(
            io,
            ProtoError::TooLarge { field: "payload length", value: u64::from(header.payload_len), max: room as u64 },
        ));
    };
    io.recv(payload).map_err(SessionError::Io)?;
    let payload: &'b [u8] = payload;
    check_payload(&header, payload).map_err(|e| refuse(io, e))?;
    let message = decode_message(&header, payload).map_err(|e| refuse(io, e))?;
    if let (Message::Error { code, message }, 0) = (message, header.request_id) {
        let mut text = ErrorText::new();
        let _ = fmt::write(&mut text, format_args!("{message}"));
        return Err(SessionError::Refused { code, message: text });
    }
    Ok((header, message))
}

/// Tells the peer why its frame is refused and returns the error for the caller.
fn refuse<T: FrameIo>(io: &mut T, error: ProtoError) -> SessionError<T::Error> {
    send_error(io, &error, 0);
    SessionError::Proto(error)
}

/// The peer, as the handshake proved it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Authenticated {
    name: [u8; MAX_HOST_NAME_BYTES],
    name_len: usize,
    /// The protocol version both sides use on this connection.
    pub version: u16,
}

/// Longest host name (sibling module `names`).
const MAX_HOST_NAME_BYTES: usize = super::names::MAX_HOST_NAME_LEN;

impl Authenticated {
    /// The peer's host name (checked against the host grammar by the hello's decoder).
    pub fn name(&self) -> &str {
        core::str::from_utf8(self.name.get(..self.name_len).unwrap_or(&[])).unwrap_or("")
    }
}

/// Runs the handshake of docs/protocol.md as `role`: hellos both ways, the checks of
/// `check_peer_hello` (`expected_peer`: the name of the host the client meant to reach, if it
/// knows it), proofs both ways, each checked. Until it returns Ok nothing but a hello and a proof
/// is accepted from the peer. On any failure the peer has been told why (best effort) and the
/// connection must be closed.
pub fn handshake<T: FrameIo>(
    io: &mut T,
    role: Role,
    secret: &[u8],
    own: &Hello<'_>,
    expected_peer: Option<&str>,
) -> Result<Authenticated, SessionError<T::Error>> {
    let mut scratch = [0u8; SMALL_FRAME];
    send(io, &Message::Hello(*own), 0, &mut scratch)?;
    let mut hello_buf = [0u8; MessageType::Hello.max_payload_len()];
    let (_, message) = recv(io, &mut hello_buf, |kind| kind == MessageType::Hello)?;
    let Message::Hello(peer) = message else {
        return Err(refuse(io, ProtoError::Unexpected { kind: message.kind() }));
    };
    let version = check_peer_hello(own, &peer, expected_peer).map_err(|e| refuse(io, e))?;
    send(io, &Message::AuthProof { mac: auth_proof(secret, role, own, &peer) }, 0, &mut scratch)?;
    let mut proof_buf = [0u8; MessageType::AuthProof.max_payload_len()];
    let (_, message) = recv(io, &mut proof_buf, |kind| kind == MessageType::AuthProof)?;
    let Message::AuthProof { mac } = message else {
        return Err(refuse(io, ProtoError::Unexpected { kind: message.kind() }));
    };
    if !verify_proof(secret, role, own, &peer, &mac) {
        return Err(refuse(io, ProtoError::AuthFailed));
    }
    let mut name = [0u8; MAX_HOST_NAME_BYTES];
    let bytes = peer.host_name.as_bytes();
    name.iter_mut().zip(bytes).for_each(|(d, s)| *d = *s);
    Ok(Authenticated { name, name_len: bytes.len().min(MAX_HOST_NAME_BYTES), version })
}

// The error text of a refusal always fits an error frame.
const _: () = assert!(SMALL_FRAME >= HEADER_LEN + 2 + 2 + MAX_ERROR_TEXT);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::MAX_VERSION;
    use crate::proto::MIN_VERSION;
    use std::collections::VecDeque;
    use std::sync::mpsc;
    use std::thread;

    /// One end of an in-memory duplex pipe.
    struct Pipe {
        tx: mpsc::Sender<Vec<u8>>,
        rx: mpsc::Receiver<Vec<u8>>,
        pending: VecDeque<u8>,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct Closed;

    impl fmt::Display for Closed {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("closed")
        }
    }

    impl FrameIo for Pipe {
        type Error = Closed;
        fn send(&mut self, bytes: &[u8]) -> Result<(), Closed> {
            self.tx.send(bytes.to_vec()).map_err(|_| Closed)
        }
        fn recv(&mut self, buf: &mut [u8]) -> Result<(), Closed> {
            while self.pending.len() < buf.len() {
                self.pending.extend(self.rx.recv().map_err(|_| Closed)?);
            }
            buf.iter_mut().for_each(|b| *b = self.pending.pop_front().unwrap_or(0));
            Ok(())
        }
    }

    fn pipe() -> (Pipe, Pipe) {
        let (a_tx, b_rx) = mpsc::channel();
        let (b_tx, a_rx) = mpsc::channel();
        (Pipe { tx: a_tx, rx: a_rx, pending: VecDeque::new() }, Pipe { tx: b_tx, rx: b_rx, pending: VecDeque::new() })
    }

    fn hello(secret: &[u8], name: &'static str, nonce: u8) -> Hello<'static> {
        Hello {
            min_version: MIN_VERSION,
            max_version: MAX_VERSION,
            cluster_id: cluster_id(secret),
            nonce: [nonce; 32],
            host_name: name,
        }
    }

    type Outcome = Result<Authenticated, String>;

    /// Runs a client and a server handshake against each other.
    fn run(
        client_secret: &'static [u8],
        server_secret: &'static [u8],
        expected: Option<&'static str>,
    ) -> (Outcome, Outcome) {
        let (mut c, mut s) = pipe();
        let server = thread::spawn(move || {
            let own = hello(server_secret, "beta", 2);
            let r = handshake(&mut s, Role::Server, server_secret, &own, None).map_err(|e| e.to_string());
            drop(s);
            r
        });
        let own = hello(client_secret, "alpha", 1);
        let client = handshake(&mut c, Role::Client, client_secret, &own, expected).map_err(|e| e.to_string());
        drop(c);
        (client, server.join().expect("server thread"))
    }

    #[test]
    fn peers_with_one_secret_authenticate_each_other() {
        let (c, s) = run(b"0123456789abcdef0123456789abcdef", b"0123456789abcdef0123456789abcdef", Some("beta"));
        assert_eq!(c.expect("client").name(), "beta");
        assert_eq!(s.expect("server").name(), "alpha");
    }

    #[test]
    fn another_secret_is_another_cluster_and_refused_at_the_hello() {
        let (c, s) = run(b"0123456789abcdef0123456789abcdef", b"fedcba9876543210fedcba9876543210", None);
        assert!(c.unwrap_err().contains("different cluster"));
        assert!(s.unwrap_err().contains("different cluster"));
    }

    #[test]
    fn a_peer_that_copies_the_cluster_id_without_the_secret_fails_the_proof() {
        let (mut c, mut s) = pipe();
        let secret: &[u8] = b"0123456789abcdef0123456789abcdef";
        let server = thread::spawn(move || {
            let own = hello(secret, "beta", 2);
            handshake(&mut s, Role::Server, secret, &own, None).map_err(|e| e.to_string())
        });
        // The impostor knows the cluster id (it is on the wire) but not the secret.
        let own = hello(secret, "alpha", 1);
        let r = handshake(&mut c, Role::Client, b"guessed", &own, None).map_err(|e| e.to_string());
        assert!(server.join().unwrap().unwrap_err().contains("authentication failed"));
        // The client either sees the refusal or fails the server's proof itself.
        let e = r.unwrap_err();
        assert!(e.contains("authentication failed"), "{e}");
    }

    #[test]
    fn the_client_refuses_a_server_of_another_name() {
        let s: &[u8] = b"0123456789abcdef0123456789abcdef";
        let (c, _) = run(s, s, Some("gamma"));
        assert!(c.unwrap_err().contains("not the one this connection was made to"));
    }

    #[test]
    fn a_request_before_the_handshake_is_refused_by_its_header() {
        let (mut c, mut s) = pipe();
        let secret: &[u8] = b"0123456789abcdef0123456789abcdef";
        let server = thread::spawn(move || {
            let own = hello(secret, "beta", 2);
            handshake(&mut s, Role::Server, secret, &own, None).map_err(|e| e.to_string())
        });
        let mut scratch = [0u8; 128];
        send(&mut c, &Message::TreeRequest { since_nanos: 0 }, 1, &mut scratch).unwrap();
        let e = server.join().unwrap().unwrap_err();
        assert!(e.contains("unexpected tree-request"), "{e}");
    }

    #[test]
    fn a_payload_longer_than_the_buffer_is_refused_before_it_is_read() {
        let (mut c, mut s) = pipe();
        let chunk = vec![0u8; 4096];
        let mut scratch = [0u8; 128];
        send(&mut c, &Message::TreeData { as_of_nanos: 1, last: true, chunk: &chunk }, 1, &mut scratch).unwrap();
        let mut small = [0u8; 100];
        match recv(&mut s, &mut small, |_| true) {
            Err(SessionError::Proto(ProtoError::TooLarge { max: 100, .. })) => {}
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn an_error_frame_outside_a_request_is_a_refusal() {
        let (mut c, mut s) = pipe();
        send_error(&mut c, &ProtoError::AuthFailed, 0);
        let mut buf = [0u8; 256];
        match recv(&mut s, &mut buf, |_| false) {
            Err(SessionError::Refused { code, message }) => {
                assert_eq!(code, ErrorCode::AUTH_FAILED);
                assert!(message.as_str().contains("authentication failed"));
            }
            _ => panic!("not a refusal"),
        }
    }

    #[test]
    fn the_cluster_id_depends_on_the_secret_only() {
        assert_eq!(cluster_id(b"a"), cluster_id(b"a"));
        assert_ne!(cluster_id(b"a"), cluster_id(b"b"));
    }
}
