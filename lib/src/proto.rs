//! The MARS wire protocol: frames, the handshake, and the entry points to encode and decode.
//!
//! Every message travels as a *frame*: a 32-byte header (magic, protocol version, message type,
//! flags, payload length, request id, payload CRC-32C, header CRC-32C) and the payload. A
//! receiver reads the header, [`decode_header`] checks it completely (including the payload
//! length against the limit of its message type) before a single payload byte is read, then
//! [`decode_message`] checks the payload's length and checksum and decodes it into a
//! [`Message`] that borrows from the payload. Nothing a peer sends is used before it is checked;
//! every failure is a [`ProtoError`] that says what was wrong, never a panic.
//!
//! Connections open with a handshake: each side sends a [`Hello`] (versions, cluster, nonce,
//! host name) and then an [`Message::AuthProof`], an HMAC-SHA256 keyed with the cluster secret
//! over both hellos ([`auth_proof`]), so each side proves it knows the secret without sending
//! it. The messages themselves are in the sibling module `proto_msg`; byte-exact layouts, the
//! handshake sequence, ports and error codes in docs/protocol.md.

use core::fmt;

use super::bytes::{Reader, Short, Writer};
use super::crc32c::{crc32c, Crc32c};
use super::names::{NameKind, NameProblem};
use super::proto_msg::{decode_payload, max_payload_len, Hello, Message, MAX_DATA, MAX_ERROR_TEXT};
use super::sha256::{ct_eq, HmacSha256, DIGEST_LEN};

/// First 4 bytes of every frame.
pub const MAGIC: [u8; 4] = *b"MaRN";
/// Length of the frame header.
pub const HEADER_LEN: usize = 32;
/// Lowest protocol version this code speaks.
pub const MIN_VERSION: u16 = 1;
/// Highest protocol version this code speaks; frames other than hellos are sent with it.
pub const MAX_VERSION: u16 = 2;
/// Largest payload of any frame: the bulk data limit plus room for the fields around it.
pub const MAX_PAYLOAD: usize = MAX_DATA + 256;
/// Largest frame, header included: the receive buffer that holds any frame.
pub const MAX_FRAME_LEN: usize = HEADER_LEN + MAX_PAYLOAD;
/// Label that starts every authentication MAC, naming its purpose and version.
pub const AUTH_LABEL: &[u8] = b"mars-auth-v1";

/// Offset of the header checksum, which covers the bytes before it.
const HEADER_CRC_OFFSET: usize = 28;

/// The type of a message, as coded in the frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// [`Message::Hello`]
    Hello,
    /// [`Message::AuthProof`]
    AuthProof,
    /// [`Message::Error`]
    Error,
    /// [`Message::Keepalive`]
    Keepalive,
    /// [`Message::TreeRequest`]
    TreeRequest,
    /// [`Message::TreeData`]
    TreeData,
    /// [`Message::TreeAnnounce`]
    TreeAnnounce,
    /// [`Message::TreeRequestDigest`]
    TreeRequestDigest,
    /// [`Message::LogListRequest`]
    LogListRequest,
    /// [`Message::LogList`]
    LogList,
    /// [`Message::LogFetch`]
    LogFetch,
    /// [`Message::LogData`]
    LogData,
    /// [`Message::BlockRead`]
    BlockRead,
    /// [`Message::BlockData`]
    BlockData,
    /// [`Message::ChecksumRequest`]
    ChecksumRequest,
    /// [`Message::Checksums`]
    Checksums,
}

impl MessageType {
    /// Every message type, in code order.
    pub const ALL: [MessageType; 16] = [
        MessageType::Hello,
        MessageType::AuthProof,
        MessageType::Error,
        MessageType::Keepalive,
        MessageType::TreeRequest,
        MessageType::TreeData,
        MessageType::TreeAnnounce,
        MessageType::TreeRequestDigest,
        MessageType::LogListRequest,
        MessageType::LogList,
        MessageType::LogFetch,
        MessageType::LogData,
        MessageType::BlockRead,
        MessageType::BlockData,
        MessageType::ChecksumRequest,
        MessageType::Checksums,
    ];

    /// The type's code in the frame header.
    pub const fn code(self) -> u16 {
        match self {
            MessageType::Hello => 1,
            MessageType::AuthProof => 2,
            MessageType::Error => 3,
            MessageType::Keepalive => 4,
            MessageType::TreeRequest => 16,
            MessageType::TreeData => 17,
            MessageType::TreeAnnounce => 18,
            MessageType::TreeRequestDigest => 19,
            MessageType::LogListRequest => 32,
            MessageType::LogList => 33,
            MessageType::LogFetch => 34,
            MessageType::LogData => 35,
            MessageType::BlockRead => 48,
            MessageType::BlockData => 49,
            MessageType::ChecksumRequest => 50,
            MessageType::Checksums => 51,
        }
    }

    /// The type with header code `code`, if there is one.
    pub fn from_code(code: u16) -> Option<MessageType> {
        MessageType::ALL.into_iter().find(|t| t.code() == code)
    }

    /// The protocol version that brought this type: its frames carry this version, and a frame
    /// of an older version with this type code is of an unknown type. A side sends a type only
    /// on a connection whose negotiated version has it.
    pub const fn since_version(self) -> u16 {
        match self {
            MessageType::TreeAnnounce | MessageType::TreeRequestDigest => 2,
            _ => 1,
        }
    }

    /// Largest payload a message of this type can have (at most [`MAX_PAYLOAD`]).
    pub const fn max_payload_len(self) -> usize {
        max_payload_len(self)
    }

    /// The type's name in docs and messages.
    pub const fn name(self) -> &'static str {
        match self {
            MessageType::Hello => "hello",
            MessageType::AuthProof => "auth-proof",
            MessageType::Error => "error",
            MessageType::Keepalive => "keepalive",
            MessageType::TreeRequest => "tree-request",
            MessageType::TreeData => "tree-data",
            MessageType::TreeAnnounce => "tree-announce",
            MessageType::TreeRequestDigest => "tree-request-digest",
            MessageType::LogListRequest => "log-list-request",
            MessageType::LogList => "log-list",
            MessageType::LogFetch => "log-fetch",
            MessageType::LogData => "log-data",
            MessageType::BlockRead => "block-read",
            MessageType::BlockData => "block-data",
            MessageType::ChecksumRequest => "checksum-request",
            MessageType::Checksums => "checksums",
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A traffic class: each has its own TCP connection and port, so bulk sync traffic does not
/// hold up tree exchange or log shipping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    /// Tree exchange, on the first port.
    Tree,
    /// Logfile listing and fetching, on the first port + 1.
    Replication,
    /// Full sync (block reads and checksums), on the first port + 2.
    Sync,
}

impl Channel {
    /// Offset of this channel's port from the first MARS port (module parameter `port`).
    pub const fn port_offset(self) -> u16 {
        match self {
            Channel::Tree => 0,
            Channel::Replication => 1,
            Channel::Sync => 2,
        }
    }

    /// The channel's name, as docs/protocol.md and the logs call it.
    pub const fn name(self) -> &'static str {
        match self {
            Channel::Tree => "tree",
            Channel::Replication => "replication",
            Channel::Sync => "sync",
        }
    }

    /// Whether messages of type `kind` may be sent on this channel. Handshake, error and
    /// keepalive messages go on every channel.
    pub fn carries(self, kind: MessageType) -> bool {
        match kind {
            MessageType::Hello | MessageType::AuthProof | MessageType::Error | MessageType::Keepalive => true,
            MessageType::TreeRequest
            | MessageType::TreeData
            | MessageType::TreeAnnounce
            | MessageType::TreeRequestDigest => self == Channel::Tree,
            MessageType::LogListRequest | MessageType::LogList | MessageType::LogFetch | MessageType::LogData => {
                self == Channel::Replication
            }
            MessageType::BlockRead | MessageType::BlockData | MessageType::ChecksumRequest | MessageType::Checksums => {
                self == Channel::Sync
            }
        }
    }
}

/// A frame header that [`decode_header`] has checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Protocol version of the frame.
    pub version: u16,
    /// Type of the message in the payload.
    pub kind: MessageType,
    /// Payload bytes that follow the header.
    pub payload_len: u32,
    /// Chosen by the requester, echoed by the reply; 0 for messages that are not requests or
    /// replies (handshake, keepalive, connection-level errors).
    pub request_id: u64,
    /// CRC-32C of the payload.
    pub payload_crc: u32,
}

/// Code of an error reply ([`Message::Error`]). Unknown codes are kept as they are, so a newer
/// peer's codes still reach the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub u16);

impl ErrorCode {
    /// A frame or message was malformed or corrupted.
    pub const BAD_FRAME: ErrorCode = ErrorCode(1);
    /// No protocol version in common.
    pub const UNSUPPORTED_VERSION: ErrorCode = ErrorCode(2);
    /// A message type the receiver does not know.
    pub const UNKNOWN_TYPE: ErrorCode = ErrorCode(3);
    /// A valid message at the wrong time or on the wrong channel (e.g. a request before the
    /// handshake completed).
    pub const PROTOCOL: ErrorCode = ErrorCode(4);
    /// The handshake failed: wrong secret, reflected nonce, unexpected or own host name.
    pub const AUTH_FAILED: ErrorCode = ErrorCode(5);
    /// The peer belongs to a different cluster.
    pub const WRONG_CLUSTER: ErrorCode = ErrorCode(6);
    /// The resource or logfile does not exist on the responder.
    pub const NOT_FOUND: ErrorCode = ErrorCode(7);
    /// The range lies beyond the end of the device or file.
    pub const OUT_OF_RANGE: ErrorCode = ErrorCode(8);
    /// A length or count exceeds a limit.
    pub const TOO_LARGE: ErrorCode = ErrorCode(9);
    /// The responder cannot serve the request now; retry later.
    pub const BUSY: ErrorCode = ErrorCode(10);
    /// The responder failed (I/O error, out of memory).
    pub const INTERNAL: ErrorCode = ErrorCode(11);

    /// Short description of the code.
    pub const fn name(self) -> &'static str {
        match self.0 {
            1 => "bad frame",
            2 => "unsupported version",
            3 => "unknown message type",
            4 => "protocol violation",
            5 => "authentication failed",
            6 => "wrong cluster",
            7 => "not found",
            8 => "out of range",
            9 => "too large",
            10 => "busy",
            11 => "internal error",
            _ => "unknown error code",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

/// Everything that can be wrong with a frame, a message or a handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtoError {
    /// The frame does not start with [`MAGIC`].
    BadMagic {
        /// The first four bytes.
        found: [u8; 4],
    },
    /// The header checksum does not match.
    HeaderChecksum {
        /// Checksum in the header.
        stored: u32,
        /// Checksum of the received header bytes.
        computed: u32,
    },
    /// A protocol version outside [`MIN_VERSION`]`..=`[`MAX_VERSION`].
    UnsupportedVersion {
        /// The version.
        found: u16,
    },
    /// A message type code this code does not know.
    UnknownType {
        /// The code.
        found: u16,
    },
    /// Reserved header flags are set.
    ReservedFlags {
        /// The flags.
        found: u32,
    },
    /// The header announces more payload than a message of its type can have.
    PayloadTooLarge {
        /// The message type.
        kind: MessageType,
        /// Announced length.
        len: u64,
        /// The type's limit.
        max: u64,
    },
    /// The payload received is not as long as the header says.
    PayloadLength {
        /// Length in the header.
        declared: u32,
        /// Bytes received.
        actual: usize,
    },
    /// The payload checksum does not match.
    PayloadChecksum {
        /// Checksum in the header.
        stored: u32,
        /// Checksum of the received payload.
        computed: u32,
    },
    /// The input ended inside a field.
    Truncated {
        /// The field.
        field: &'static str,
        /// Bytes the field needed.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// Bytes left over after the message's last field.
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// A host, resource or logfile name breaks its grammar.
    BadName {
        /// Which kind of name.
        kind: NameKind,
        /// What is wrong with it (grammars: sibling module `names`).
        fault: NameProblem,
    },
    /// Text that is not UTF-8 or contains control characters.
    BadText {
        /// The field.
        field: &'static str,
    },
    /// A length or count over its limit.
    TooLarge {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
        /// The limit.
        max: u64,
    },
    /// A field with an impossible value.
    Invalid {
        /// The field.
        field: &'static str,
        /// Why it is invalid.
        why: &'static str,
    },
    /// The output buffer cannot hold the frame.
    BufferTooSmall {
        /// Bytes the frame needs.
        needed: usize,
    },
    /// The peer's versions and ours do not overlap.
    NoCommonVersion {
        /// The peer's lowest version.
        peer_min: u16,
        /// The peer's highest version.
        peer_max: u16,
    },
    /// The peer's cluster id differs from ours.
    WrongCluster,
    /// The peer uses our own host name.
    PeerIsSelf,
    /// The peer's host name is not the one the connection was made to.
    UnexpectedPeer,
    /// The peer sent our own nonce back.
    ReflectedNonce,
    /// The peer's authentication proof is wrong.
    AuthFailed,
    /// A valid message at the wrong time (a request before the handshake completed, a second
    /// hello) or on the wrong channel.
    Unexpected {
        /// The message's type.
        kind: MessageType,
    },
}

impl ProtoError {
    /// The code to send in the error reply to a peer whose frame caused this error.
    pub const fn code(&self) -> ErrorCode {
        match self {
            ProtoError::UnsupportedVersion { .. } | ProtoError::NoCommonVersion { .. } => {
                ErrorCode::UNSUPPORTED_VERSION
            }
            ProtoError::UnknownType { .. } => ErrorCode::UNKNOWN_TYPE,
            ProtoError::PayloadTooLarge { .. } | ProtoError::TooLarge { .. } => ErrorCode::TOO_LARGE,
            ProtoError::WrongCluster => ErrorCode::WRONG_CLUSTER,
            ProtoError::PeerIsSelf
            | ProtoError::UnexpectedPeer
            | ProtoError::ReflectedNonce
            | ProtoError::AuthFailed => ErrorCode::AUTH_FAILED,
            ProtoError::BufferTooSmall { .. } => ErrorCode::INTERNAL,
            ProtoError::Unexpected { .. } => ErrorCode::PROTOCOL,
            ProtoError::BadMagic { .. }
            | ProtoError::HeaderChecksum { .. }
            | ProtoError::ReservedFlags { .. }
            | ProtoError::PayloadLength { .. }
            | ProtoError::PayloadChecksum { .. }
            | ProtoError::Truncated { .. }
            | ProtoError::TrailingBytes { .. }
            | ProtoError::BadName { .. }
            | ProtoError::BadText { .. }
            | ProtoError::Invalid { .. } => ErrorCode::BAD_FRAME,
        }
    }
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ProtoError::BadMagic { found } => write!(
                f,
                "not a MARS frame (starts with {:02x} {:02x} {:02x} {:02x}): the peer does not speak the \
                 MARS protocol (wrong port?)",
                found[0], found[1], found[2], found[3]
            ),
            ProtoError::HeaderChecksum { stored, computed } => write!(
                f,
                "frame header checksum mismatch (stored {stored:08x}, computed {computed:08x}): corrupted in transit"
            ),
            ProtoError::UnsupportedVersion { found } => write!(
                f,
                "protocol version {found} is not supported (this MARS speaks versions {MIN_VERSION} to {MAX_VERSION})"
            ),
            ProtoError::UnknownType { found } => write!(f, "unknown message type {found}"),
            ProtoError::ReservedFlags { found } => write!(f, "reserved frame flags {found:#x} are set"),
            ProtoError::PayloadTooLarge { kind, len, max } => {
                write!(f, "{kind} frame announces {len} payload bytes, the limit is {max}")
            }
            ProtoError::PayloadLength { declared, actual } => {
                write!(f, "frame header announces {declared} payload bytes, but {actual} arrived")
            }
            ProtoError::PayloadChecksum { stored, computed } => write!(
                f,
                "frame payload checksum mismatch (stored {stored:08x}, computed {computed:08x}): corrupted in transit"
            ),
            ProtoError::Truncated { field, needed, available } => {
                write!(f, "message ends inside {field}: needed {needed} bytes, only {available} left")
            }
            ProtoError::TrailingBytes { count } => write!(f, "{count} unexpected bytes after the end of the message"),
            ProtoError::BadName { kind, fault } => write!(f, "invalid {kind} name: {fault}"),
            ProtoError::BadText { field } => write!(f, "{field} is not printable UTF-8 text"),
            ProtoError::TooLarge { field, value, max } => write!(f, "{field} is {value}, the limit is {max}"),
            ProtoError::Invalid { field, why } => write!(f, "invalid {field}: {why}"),
            ProtoError::BufferTooSmall { needed } => {
                write!(f, "output buffer too small: the frame needs {needed} bytes")
            }
            ProtoError::NoCommonVersion { peer_min, peer_max } => write!(
                f,
                "no common protocol version: the peer speaks {peer_min} to {peer_max}, this MARS {MIN_VERSION} to \
                 {MAX_VERSION}"
            ),
            ProtoError::WrongCluster => write!(
                f,
                "the peer belongs to a different cluster or has a different cluster secret (cluster id mismatch)"
            ),
            ProtoError::PeerIsSelf => write!(f, "the peer uses this host's own name: a loop or an impostor"),
            ProtoError::UnexpectedPeer => {
                write!(f, "the peer's host name is not the one this connection was made to")
            }
            ProtoError::ReflectedNonce => write!(f, "the peer sent this host's own nonce back: a reflection attempt"),
            ProtoError::AuthFailed => {
                write!(f, "authentication failed: the peer does not know this cluster's secret")
            }
            ProtoError::Unexpected { kind } => write!(f, "protocol violation: unexpected {kind} message"),
        }
    }
}

/// Reports a shortfall while reading the fixed-size header (cannot happen: the array holds
/// every field).
fn header_short(s: Short) -> ProtoError {
    ProtoError::Truncated { field: "frame header", needed: s.needed, available: s.available }
}

/// Checks a received frame header: magic, header checksum, version, flags, message type, and
/// the payload length against the type's limit, in this order. Nothing of the payload is needed.
pub fn decode_header(bytes: &[u8; HEADER_LEN]) -> Result<FrameHeader, ProtoError> {
    let mut r = Reader::new(bytes);
    let magic: [u8; 4] = r.array().map_err(header_short)?;
    if magic != MAGIC {
        return Err(ProtoError::BadMagic { found: magic });
    }
    let version = r.u16().map_err(header_short)?;
    let kind = r.u16().map_err(header_short)?;
    let flags = r.u32().map_err(header_short)?;
    let payload_len = r.u32().map_err(header_short)?;
    let request_id = r.u64().map_err(header_short)?;
    let payload_crc = r.u32().map_err(header_short)?;
    let stored = r.u32().map_err(header_short)?;
    let computed = crc32c(bytes.get(..HEADER_CRC_OFFSET).unwrap_or(&[]));
    if stored != computed {
        return Err(ProtoError::HeaderChecksum { stored, computed });
    }
    if !(MIN_VERSION..=MAX_VERSION).contains(&version) {
        return Err(ProtoError::UnsupportedVersion { found: version });
    }
    if flags != 0 {
        return Err(ProtoError::ReservedFlags { found: flags });
    }
    let kind = MessageType::from_code(kind)
        .filter(|t| t.since_version() <= version)
        .ok_or(ProtoError::UnknownType { found: kind })?;
    let max = kind.max_payload_len();
    if usize::try_from(payload_len).map_or(true, |len| len > max) {
        return Err(ProtoError::PayloadTooLarge { kind, len: u64::from(payload_len), max: max as u64 });
    }
    Ok(FrameHeader { version, kind, payload_len, request_id, payload_crc })
}

/// Checks that `payload` has the length and checksum `header` announces.
pub fn check_payload(header: &FrameHeader, payload: &[u8]) -> Result<(), ProtoError> {
    if usize::try_from(header.payload_len) != Ok(payload.len()) {
        return Err(ProtoError::PayloadLength { declared: header.payload_len, actual: payload.len() });
    }
    let computed = crc32c(payload);
    if computed != header.payload_crc {
        return Err(ProtoError::PayloadChecksum { stored: header.payload_crc, computed });
    }
    Ok(())
}

/// Checks `payload` against `header` ([`check_payload`]) and decodes the message in it,
/// checking every field.
pub fn decode_message<'a>(header: &FrameHeader, payload: &'a [u8]) -> Result<Message<'a>, ProtoError> {
    check_payload(header, payload)?;
    let message = decode_payload(header.kind, payload)?;
    if let Message::Hello(hello) = message {
        if hello.min_version != header.version {
            return Err(ProtoError::Invalid {
                field: "hello min_version",
                why: "differs from the frame's protocol version",
            });
        }
    }
    Ok(message)
}

/// Decodes a frame that is exactly `bytes`: the header, then the message. The entry point for
/// fuzzing.
pub fn decode_frame(bytes: &[u8]) -> Result<(FrameHeader, Message<'_>), ProtoError> {
    let head: &[u8; HEADER_LEN] = bytes
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(ProtoError::Truncated { field: "frame header", needed: HEADER_LEN, available: bytes.len() })?;
    let header = decode_header(head)?;
    let message = decode_message(&header, bytes.get(HEADER_LEN..).unwrap_or(&[]))?;
    Ok((header, message))
}

/// Length of the frame that carries `message`.
pub fn frame_len(message: &Message<'_>) -> usize {
    HEADER_LEN.saturating_add(message.payload_len())
}

/// Encodes `message` as one frame into the start of `out`; returns the frame's length.
///
/// The message is checked first ([`Message::validate`]); hellos go out with their
/// `min_version` as frame version, everything else with [`MAX_VERSION`].
pub fn encode_frame(message: &Message<'_>, request_id: u64, out: &mut [u8]) -> Result<usize, ProtoError> {
    encode(message, request_id, out, true)
}

/// Like [`encode_frame`], but leaves out the message's bulk data ([`Message::bulk`]): the
/// caller sends those bytes right after the returned length of `out`, without copying them.
/// The header's length and checksum already cover them.
pub fn encode_frame_head(message: &Message<'_>, request_id: u64, out: &mut [u8]) -> Result<usize, ProtoError> {
    encode(message, request_id, out, false)
}

fn encode(message: &Message<'_>, request_id: u64, out: &mut [u8], with_bulk: bool) -> Result<usize, ProtoError> {
    message.validate()?;
    let kind = message.kind();
    let version = match message {
        Message::Hello(hello) => hello.min_version,
        _ => message.kind().since_version(),
    };
    if !(MIN_VERSION..=MAX_VERSION).contains(&version) {
        return Err(ProtoError::UnsupportedVersion { found: version });
    }
    let payload_len = message.payload_len();
    if payload_len > kind.max_payload_len() {
        return Err(ProtoError::PayloadTooLarge { kind, len: payload_len as u64, max: kind.max_payload_len() as u64 });
    }
    let bulk = message.bulk();
    let frame_len = HEADER_LEN.saturating_add(payload_len);
    let needed = if with_bulk { frame_len } else { frame_len.saturating_sub(bulk.len()) };
    if out.len() < needed {
        return Err(ProtoError::BufferTooSmall { needed });
    }
    let too_small = |_: Short| ProtoError::BufferTooSmall { needed };
    let mut w = Writer::new(out);
    w.zeros(HEADER_LEN).map_err(too_small)?;
    message.write_head(&mut w).map_err(too_small)?;
    // Length and checksum come from the bytes actually written, so the frame is consistent.
    let head_payload = w.written().get(HEADER_LEN..).unwrap_or(&[]);
    let mut crc = Crc32c::new();
    crc.update(head_payload);
    crc.update(bulk);
    let payload_len = u32::try_from(head_payload.len().saturating_add(bulk.len()))
        .map_err(|_| ProtoError::PayloadTooLarge { kind, len: u64::MAX, max: kind.max_payload_len() as u64 })?;
    if with_bulk {
        w.bytes(bulk).map_err(too_small)?;
    }
    let mut header = [0u8; HEADER_LEN];
    let mut hw = Writer::new(&mut header);
    hw.bytes(&MAGIC)
        .and_then(|()| hw.u16(version))
        .and_then(|()| hw.u16(kind.code()))
        .and_then(|()| hw.u32(0))
        .and_then(|()| hw.u32(payload_len))
        .and_then(|()| hw.u64(request_id))
        .and_then(|()| hw.u32(crc.finish()))
        .map_err(too_small)?;
    let header_crc = crc32c(hw.written());
    hw.u32(header_crc).map_err(too_small)?;
    if let Some(slot) = w.written_mut().get_mut(..HEADER_LEN) {
        slot.copy_from_slice(&header);
    }
    Ok(w.position())
}

/// Which end of a connection a side is: the one that connected, or the one that accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The side that opened the TCP connection.
    Client,
    /// The side that accepted it.
    Server,
}

impl Role {
    /// The role of the other side.
    pub const fn peer(self) -> Role {
        match self {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        }
    }

    /// The byte that stands for this role in an authentication MAC.
    const fn mac_byte(self) -> u8 {
        match self {
            Role::Client => 1,
            Role::Server => 2,
        }
    }
}

/// The highest protocol version both this code and a peer speaking `peer_min..=peer_max` speak.
pub fn negotiate_version(peer_min: u16, peer_max: u16) -> Result<u16, ProtoError> {
    let high = MAX_VERSION.min(peer_max);
    if MIN_VERSION.max(peer_min) <= high {
        Ok(high)
    } else {
        Err(ProtoError::NoCommonVersion { peer_min, peer_max })
    }
}

/// Checks the peer's hello against our own before any proof is exchanged, and returns the
/// version the connection will use.
///
/// The peer must be of our cluster, not use our own host name, be called `expected_peer_name`
/// if we know whom we connected to, not send our nonce back, and share a protocol version.
pub fn check_peer_hello(
    own: &Hello<'_>,
    peer: &Hello<'_>,
    expected_peer_name: Option<&str>,
) -> Result<u16, ProtoError> {
    if peer.cluster_id != own.cluster_id {
        return Err(ProtoError::WrongCluster);
    }
    if peer.host_name == own.host_name {
        return Err(ProtoError::PeerIsSelf);
    }
    if expected_peer_name.is_some_and(|name| name != peer.host_name) {
        return Err(ProtoError::UnexpectedPeer);
    }
    if peer.nonce == own.nonce {
        return Err(ProtoError::ReflectedNonce);
    }
    negotiate_version(peer.min_version, peer.max_version)
}

/// The proof the side with `role` sends: HMAC-SHA256 keyed with the cluster `secret` over
/// [`AUTH_LABEL`], the role byte, the prover's own hello payload and the peer's hello payload
/// (exactly as they are encoded on the wire).
///
/// Both hellos must be valid (as every encoded or decoded hello is). Because the hellos carry
/// both fresh nonces and both names, a proof is good for one connection and one direction only.
pub fn auth_proof(secret: &[u8], role: Role, own: &Hello<'_>, peer: &Hello<'_>) -> [u8; DIGEST_LEN] {
    let mut mac = HmacSha256::new(secret);
    mac.update(AUTH_LABEL);
    mac.update(&[role.mac_byte()]);
    for hello in [own, peer] {
        let mut buf = [0u8; MessageType::Hello.max_payload_len()];
        let mut w = Writer::new(&mut buf);
        // A valid hello fits the buffer; an invalid one is cut short, which no peer can match.
        let _ = Message::Hello(*hello).write_head(&mut w);
        mac.update(w.written());
    }
    mac.finish()
}

/// Checks the proof the peer sent, in constant time; `own_role` is this side's role.
pub fn verify_proof(
    secret: &[u8],
    own_role: Role,
    own: &Hello<'_>,
    peer: &Hello<'_>,
    proof: &[u8; DIGEST_LEN],
) -> bool {
    ct_eq(&auth_proof(secret, own_role.peer(), peer, own), proof)
}

/// The text of an error reply, formatted on the stack (`write!(text, "{error}")`): at most
/// [`MAX_ERROR_TEXT`] bytes, control characters replaced by `?`, cut at a character boundary.
#[derive(Clone)]
pub struct ErrorText {
    bytes: [u8; MAX_ERROR_TEXT],
    len: usize,
}

impl fmt::Debug for ErrorText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Default for ErrorText {
    fn default() -> Self {
        Self::new()
    }
}

impl ErrorText {
    /// An empty text.
    pub const fn new() -> ErrorText {
        ErrorText { bytes: [0; MAX_ERROR_TEXT], len: 0 }
    }

    /// The text so far.
    pub fn as_str(&self) -> &str {
        // Only whole characters are ever appended, so the bytes are valid UTF-8.
        core::str::from_utf8(self.bytes.get(..self.len).unwrap_or(&[])).unwrap_or("")
    }
}

impl fmt::Write for ErrorText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            let c = if c.is_control() { '?' } else { c };
            let mut utf8 = [0u8; 4];
            let encoded = c.encode_utf8(&mut utf8).as_bytes();
            let end = self.len.saturating_add(encoded.len());
            match self.bytes.get_mut(self.len..end) {
                // Not `copy_from_slice`: that keeps a length-mismatch panic in the code.
                Some(slot) => slot.iter_mut().zip(encoded).for_each(|(d, s)| *d = *s),
                // Full: drop the rest quietly, a cut message is better than none.
                None => return Ok(()),
            }
            self.len = end;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write as _;
    use proptest::prelude::*;
    use std::format;
    use std::vec::Vec;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// A header with a correct header checksum and the given fields.
    fn raw_header(version: u16, kind: u16, flags: u32, payload_len: u32) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        let mut w = Writer::new(&mut h);
        w.bytes(&MAGIC).unwrap();
        w.u16(version).unwrap();
        w.u16(kind).unwrap();
        w.u32(flags).unwrap();
        w.u32(payload_len).unwrap();
        w.u64(9).unwrap();
        w.u32(0).unwrap();
        let crc = crc32c(w.written());
        w.u32(crc).unwrap();
        h
    }

    #[test]
    fn keepalive_frame_is_byte_exact() {
        // Computed independently from docs/protocol.md (Python, bitwise CRC-32C).
        let m = Message::Keepalive { stamp_nanos: 0x0102_0304_0506_0708 };
        let mut buf = [0u8; 64];
        let n = encode_frame(&m, 0x1122_3344_5566_7788, &mut buf).unwrap();
        assert_eq!(
            buf[..n].to_vec(),
            hex("4d61524e01000400000000000800000088776655443322111c02f9266f39af000807060504030201")
        );
        let (h, back) = decode_frame(&buf[..n]).unwrap();
        assert_eq!(back, m);
        assert_eq!(
            h,
            FrameHeader {
                version: 1,
                kind: MessageType::Keepalive,
                payload_len: 8,
                request_id: 0x1122_3344_5566_7788,
                payload_crc: 0x26f9_021c,
            }
        );
    }

    #[test]
    fn header_checks_come_in_order_and_say_what_is_wrong() {
        assert_eq!(decode_header(&raw_header(3, 4, 0, 8)), Err(ProtoError::UnsupportedVersion { found: 3 }));
        assert!(decode_header(&raw_header(2, 4, 0, 8)).is_ok());
        // A type newer than the frame's version is unknown in that version.
        assert_eq!(decode_header(&raw_header(1, 18, 0, 8)), Err(ProtoError::UnknownType { found: 18 }));
        assert!(decode_header(&raw_header(2, 18, 0, 8)).is_ok());
        assert_eq!(decode_header(&raw_header(0, 4, 0, 8)), Err(ProtoError::UnsupportedVersion { found: 0 }));
        assert_eq!(decode_header(&raw_header(1, 999, 0, 8)), Err(ProtoError::UnknownType { found: 999 }));
        assert_eq!(decode_header(&raw_header(1, 0, 0, 0)), Err(ProtoError::UnknownType { found: 0 }));
        assert_eq!(decode_header(&raw_header(1, 4, 1, 8)), Err(ProtoError::ReservedFlags { found: 1 }));
        let mut bad_magic = raw_header(1, 4, 0, 8);
        bad_magic[..4].copy_from_slice(b"GET ");
        assert_eq!(decode_header(&bad_magic), Err(ProtoError::BadMagic { found: *b"GET " }));
        let mut bad_crc = raw_header(1, 4, 0, 8);
        bad_crc[12] ^= 1;
        assert!(matches!(decode_header(&bad_crc), Err(ProtoError::HeaderChecksum { .. })));
        assert_eq!(
            format!("{}", ProtoError::UnsupportedVersion { found: 3 }),
            "protocol version 3 is not supported (this MARS speaks versions 1 to 2)"
        );
        assert_eq!(format!("{}", ProtoError::UnknownType { found: 999 }), "unknown message type 999");
        assert_eq!(ProtoError::UnsupportedVersion { found: 2 }.code(), ErrorCode::UNSUPPORTED_VERSION);
        assert_eq!(ProtoError::UnknownType { found: 9 }.code(), ErrorCode::UNKNOWN_TYPE);
    }

    #[test]
    fn oversized_lengths_are_refused_from_the_header_alone() {
        for kind in MessageType::ALL {
            let max = kind.max_payload_len() as u32;
            let v = kind.since_version();
            assert!(decode_header(&raw_header(v, kind.code(), 0, max)).is_ok());
            for len in [max + 1, MAX_PAYLOAD as u32 + 1, u32::MAX] {
                assert_eq!(
                    decode_header(&raw_header(v, kind.code(), 0, len)),
                    Err(ProtoError::PayloadTooLarge { kind, len: u64::from(len), max: u64::from(max) })
                );
            }
        }
        assert_eq!(
            format!("{}", decode_header(&raw_header(1, 4, 0, 9)).unwrap_err()),
            "keepalive frame announces 9 payload bytes, the limit is 8"
        );
        assert!(MAX_FRAME_LEN >= HEADER_LEN + MessageType::ALL.iter().map(|k| k.max_payload_len()).max().unwrap());
    }

    #[test]
    fn payload_length_and_checksum_are_checked() {
        let header = decode_header(&raw_header(1, 4, 0, 8)).unwrap();
        assert_eq!(check_payload(&header, &[0; 7]), Err(ProtoError::PayloadLength { declared: 8, actual: 7 }));
        assert!(matches!(check_payload(&header, &[1; 8]), Err(ProtoError::PayloadChecksum { .. })));
        assert_eq!(
            check_payload(&header, &[0; 8]),
            Err(ProtoError::PayloadChecksum { stored: 0, computed: crc32c(&[0; 8]) })
        );
        assert!(decode_frame(&[0x4d, 0x61]).is_err());
    }

    #[test]
    fn type_codes_are_unique_and_round_trip() {
        for kind in MessageType::ALL {
            assert_eq!(MessageType::from_code(kind.code()), Some(kind));
            assert!(kind.max_payload_len() <= MAX_PAYLOAD);
        }
        let known = (0..=u16::MAX).filter(|&c| MessageType::from_code(c).is_some()).count();
        assert_eq!(known, MessageType::ALL.len());
        assert!(Channel::Tree.carries(MessageType::TreeData));
        assert!(!Channel::Tree.carries(MessageType::LogFetch));
        assert!(Channel::Replication.carries(MessageType::LogData));
        assert!(Channel::Sync.carries(MessageType::Checksums));
        assert!(Channel::Sync.carries(MessageType::Hello));
        assert!(!Channel::Sync.carries(MessageType::TreeRequest));
        assert_eq!(Channel::Sync.port_offset(), 2);
    }

    const SECRET: &[u8] = b"correct horse battery staple";

    fn hello<'a>(name: &'a str, nonce: u8) -> Hello<'a> {
        let mut cluster_id = [0u8; 16];
        for (i, b) in cluster_id.iter_mut().enumerate() {
            *b = i as u8;
        }
        Hello { min_version: 1, max_version: 1, cluster_id, nonce: [nonce; 32], host_name: name }
    }

    #[test]
    fn auth_proof_is_byte_exact() {
        // Computed independently from docs/protocol.md (Python hmac + hashlib).
        let (a, b) = (hello("alpha", 0x11), hello("beta", 0x22));
        assert_eq!(
            auth_proof(SECRET, Role::Client, &a, &b).to_vec(),
            hex("253d7f8f4243b5785f3f1116f002398296cdd6eed621b53971067c7e0f3b0cab")
        );
        assert_eq!(
            auth_proof(SECRET, Role::Server, &b, &a).to_vec(),
            hex("18935dc79fff8d3219df1f74b1ba53265042b3cefc5991a9280f6d63e803e32d")
        );
    }

    #[test]
    fn both_sides_verify_each_other_and_nothing_else_passes() {
        let (client, server) = (hello("alpha", 0x11), hello("beta", 0x22));
        assert_eq!(check_peer_hello(&client, &server, Some("beta")), Ok(1));
        assert_eq!(check_peer_hello(&server, &client, None), Ok(1));
        let from_client = auth_proof(SECRET, Role::Client, &client, &server);
        let from_server = auth_proof(SECRET, Role::Server, &server, &client);
        assert!(verify_proof(SECRET, Role::Server, &server, &client, &from_client));
        assert!(verify_proof(SECRET, Role::Client, &client, &server, &from_server));
        assert_ne!(from_client, from_server);
        // Wrong secret.
        assert!(!verify_proof(b"wrong", Role::Server, &server, &client, &from_client));
        let forged = auth_proof(b"wrong", Role::Client, &client, &server);
        assert!(!verify_proof(SECRET, Role::Server, &server, &client, &forged));
        // A proof sent back in the other direction (swapped role).
        assert!(!verify_proof(SECRET, Role::Client, &client, &server, &from_client));
        assert!(!verify_proof(SECRET, Role::Server, &server, &client, &from_server));
        // Replay into a new connection: the server's nonce is fresh.
        let new_server = hello("beta", 0x33);
        assert!(!verify_proof(SECRET, Role::Server, &new_server, &client, &from_client));
        // Another claimed name.
        let other = hello("gamma", 0x11);
        assert!(!verify_proof(SECRET, Role::Server, &server, &other, &from_client));
    }

    #[test]
    fn peer_hellos_are_checked_before_any_proof() {
        let own = hello("alpha", 0x11);
        let mut peer = hello("beta", 0x22);
        peer.cluster_id[0] ^= 1;
        assert_eq!(check_peer_hello(&own, &peer, None), Err(ProtoError::WrongCluster));
        assert_eq!(check_peer_hello(&own, &hello("alpha", 0x22), None), Err(ProtoError::PeerIsSelf));
        assert_eq!(check_peer_hello(&own, &hello("beta", 0x22), Some("gamma")), Err(ProtoError::UnexpectedPeer));
        assert_eq!(check_peer_hello(&own, &hello("beta", 0x11), None), Err(ProtoError::ReflectedNonce));
        let mut future = hello("beta", 0x22);
        future.min_version = 3;
        future.max_version = 5;
        assert_eq!(
            check_peer_hello(&own, &future, None),
            Err(ProtoError::NoCommonVersion { peer_min: 3, peer_max: 5 })
        );
        // A version 1 peer and this one speak version 1 (without tree-announce).
        let mut old = hello("beta", 0x22);
        old.max_version = 1;
        assert_eq!(check_peer_hello(&own, &old, None), Ok(1));
        assert_eq!(negotiate_version(1, 7), Ok(MAX_VERSION));
        for e in
            [ProtoError::PeerIsSelf, ProtoError::UnexpectedPeer, ProtoError::ReflectedNonce, ProtoError::AuthFailed]
        {
            assert_eq!(e.code(), ErrorCode::AUTH_FAILED);
        }
    }

    #[test]
    fn hello_frames_carry_their_min_version() {
        let own = hello("alpha", 1);
        let mut buf = [0u8; 256];
        let n = encode_frame(&Message::Hello(own), 0, &mut buf).unwrap();
        assert_eq!(decode_frame(&buf[..n]).unwrap().0.version, 1);
        let mut newer = own;
        newer.min_version = 3;
        newer.max_version = 3;
        assert_eq!(encode_frame(&Message::Hello(newer), 0, &mut buf), Err(ProtoError::UnsupportedVersion { found: 3 }));
        // A hello whose payload disagrees with its frame version is refused.
        let mut payload = [0u8; 116];
        let mut w = Writer::new(&mut payload);
        Message::Hello(Hello { min_version: 1, max_version: 3, ..own }).write_head(&mut w).unwrap();
        let len = w.position();
        let mut header = decode_frame(&buf[..n]).unwrap().0;
        payload[0] = 2;
        header.payload_len = len as u32;
        header.payload_crc = crc32c(&payload[..len]);
        assert_eq!(
            decode_message(&header, &payload[..len]),
            Err(ProtoError::Invalid { field: "hello min_version", why: "differs from the frame's protocol version" })
        );
    }

    #[test]
    fn error_text_is_bounded_and_printable() {
        let mut t = ErrorText::new();
        write!(t, "{}", ProtoError::AuthFailed).unwrap();
        assert_eq!(t.as_str(), "authentication failed: the peer does not know this cluster's secret");
        let mut t = ErrorText::default();
        write!(t, "a\nb\u{7f}{}", "é".repeat(200)).unwrap();
        assert_eq!(t.as_str().len(), MAX_ERROR_TEXT);
        assert!(t.as_str().starts_with("a?b?é"));
        let m = Message::Error { code: ErrorCode::AUTH_FAILED, message: t.as_str() };
        assert!(m.validate().is_ok());
        assert_eq!(format!("{}", ErrorCode::NOT_FOUND), "not found (7)");
        assert_eq!(format!("{}", ErrorCode(900)), "unknown error code (900)");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            prop_assert!(decode_frame(&bytes).is_err());
        }

        #[test]
        fn arbitrary_headers_with_good_checksums_never_panic(
            mut head in any::<[u8; HEADER_LEN]>(), version in 0u16..3, kind in 0u16..60, flags in 0u32..2
        ) {
            head[..4].copy_from_slice(&MAGIC);
            head[4..6].copy_from_slice(&version.to_le_bytes());
            head[6..8].copy_from_slice(&kind.to_le_bytes());
            head[8..12].copy_from_slice(&flags.to_le_bytes());
            let crc = crc32c(&head[..28]);
            head[28..].copy_from_slice(&crc.to_le_bytes());
            if let Ok(h) = decode_header(&head) {
                prop_assert_eq!(h.version, 1);
                prop_assert_eq!(h.kind.code(), kind);
                prop_assert!(h.payload_len as usize <= h.kind.max_payload_len());
                // Whatever the payload, deciding about it never panics.
                let payload = std::vec![0u8; (h.payload_len as usize).min(64)];
                let _ = decode_message(&h, &payload);
            }
        }
    }
}
