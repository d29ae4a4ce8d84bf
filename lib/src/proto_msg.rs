//! The messages of the MARS wire protocol: what a frame's payload says, and its byte layout.
//!
//! A [`Message`] borrows its names and data, from a received payload (decoding copies nothing
//! and allocates nothing) or from the sender's own buffers. Every message is checked against the
//! limits below when it is decoded and again before it is encoded, so a host neither accepts nor
//! sends anything outside them. Framing, the handshake and the entry points are in the sibling
//! module `proto`; layouts byte by byte in docs/protocol.md. Names (resources, hosts, logfiles)
//! follow the grammars of the sibling module `names`, the same the cluster tree uses.

use core::fmt;
use core::iter::FusedIterator;
use core::slice::ChunksExact;

use super::bytes::{Reader, Short, Writer};
use super::logrec::SECTOR;
use super::names::{NameKind, NameProblem, MAX_HOST_NAME_LEN, MAX_LOGFILE_NAME_LEN, MAX_RESOURCE_NAME_LEN};
use super::proto::{ErrorCode, MessageType, ProtoError};
use super::sha256::DIGEST_LEN;

/// Most bytes of bulk data in one message: a tree chunk, logfile data, or block data (1 MiB).
pub const MAX_DATA: usize = 1 << 20;
/// Most sectors one block read, or one checksummed block, may span ([`MAX_DATA`] bytes).
pub const MAX_SECTORS: u32 = (MAX_DATA as u64 / SECTOR) as u32;
/// Most logfiles one log list names.
pub const MAX_LOG_ENTRIES: u32 = 4096;
/// Most blocks one checksum request may cover.
pub const MAX_CHECKSUM_BLOCKS: u32 = 4096;
/// Longest text of an error reply, in bytes.
pub const MAX_ERROR_TEXT: usize = 200;
/// Largest byte offset or size (the kernel's `loff_t` is signed 64-bit).
pub const MAX_OFFSET: u64 = i64::MAX as u64;
/// Bytes of a cluster identity.
pub const CLUSTER_ID_LEN: usize = 16;
/// Bytes of a handshake nonce.
pub const NONCE_LEN: usize = 32;
/// Bytes of a tree digest on the wire (64 buckets of 8 bytes, sibling module `gossip`).
pub const DIGEST_WIRE_LEN: usize = 512;
/// Longest tree chunk in a [`Message::TreeAnnounce`]: room for one host's own entries.
pub const MAX_ANNOUNCE: usize = 4096;

/// Checks `name` against the grammar of `kind` (sibling module `names`) and returns it as text.
fn check_name(kind: NameKind, name: &[u8]) -> Result<&str, ProtoError> {
    kind.validate(name).map_err(|fault| ProtoError::BadName { kind, fault })
}

/// The first message each side of a connection sends (docs/protocol.md, "Handshake").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello<'a> {
    /// Lowest protocol version the sender speaks; also the version in this frame's header.
    pub min_version: u16,
    /// Highest protocol version the sender speaks.
    pub max_version: u16,
    /// Identity of the sender's cluster; peers of different clusters do not talk.
    pub cluster_id: [u8; CLUSTER_ID_LEN],
    /// Fresh random bytes for this connection, so that proofs of an old one cannot be replayed.
    pub nonce: [u8; NONCE_LEN],
    /// The sender's host name.
    pub host_name: &'a str,
}

/// One logfile in a [`Message::LogList`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogEntry<'a> {
    /// The logfile's name, `log-NNNNNNNNN-HOST`.
    pub name: &'a str,
    /// Its current size in bytes on the sender.
    pub size: u64,
}

/// The logfiles of a [`Message::LogList`]: either decoded from a payload (checked, iterated
/// in place) or a sender's list.
#[derive(Clone, Copy)]
pub struct LogEntries<'a> {
    source: EntrySource<'a>,
}

#[derive(Clone, Copy)]
enum EntrySource<'a> {
    /// `count` encoded entries, already checked by the decoder.
    Wire { bytes: &'a [u8], count: u32 },
    /// A sender's list.
    List(&'a [LogEntry<'a>]),
}

impl<'a> LogEntries<'a> {
    /// The entries of `list`, for sending.
    pub fn from_list(list: &'a [LogEntry<'a>]) -> LogEntries<'a> {
        LogEntries { source: EntrySource::List(list) }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        match self.source {
            EntrySource::Wire { count, .. } => usize::try_from(count).unwrap_or(usize::MAX),
            EntrySource::List(list) => list.len(),
        }
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entries in order.
    pub fn iter(&self) -> LogEntryIter<'a> {
        LogEntryIter {
            source: match self.source {
                EntrySource::Wire { bytes, count } => IterSource::Wire { r: Reader::new(bytes), left: count },
                EntrySource::List(list) => IterSource::List(list.iter()),
            },
        }
    }
}

impl PartialEq for LogEntries<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for LogEntries<'_> {}

impl fmt::Debug for LogEntries<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Iterator over [`LogEntries`].
pub struct LogEntryIter<'a> {
    source: IterSource<'a>,
}

enum IterSource<'a> {
    Wire { r: Reader<'a>, left: u32 },
    List(core::slice::Iter<'a, LogEntry<'a>>),
}

impl<'a> Iterator for LogEntryIter<'a> {
    type Item = LogEntry<'a>;

    fn next(&mut self) -> Option<LogEntry<'a>> {
        match &mut self.source {
            IterSource::Wire { r, left } => {
                if *left == 0 {
                    return None;
                }
                // The decoder checked all `count` entries, so this cannot fail; stop if it does.
                let entry = read_log_entry(r).ok();
                *left = if entry.is_some() { left.saturating_sub(1) } else { 0 };
                entry
            }
            IterSource::List(list) => list.next().copied(),
        }
    }
}

impl FusedIterator for LogEntryIter<'_> {}

/// The block digests of a [`Message::Checksums`]: SHA-256 of each block, back to back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digests<'a> {
    bytes: &'a [u8],
}

impl<'a> Digests<'a> {
    /// The digests stored back to back in `bytes`; `None` unless its length is a multiple of
    /// [`DIGEST_LEN`].
    pub fn new(bytes: &'a [u8]) -> Option<Digests<'a>> {
        (bytes.len() % DIGEST_LEN == 0).then_some(Digests { bytes })
    }

    /// Number of digests.
    pub fn len(&self) -> usize {
        self.bytes.len() / DIGEST_LEN
    }

    /// Whether there are no digests.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The digests back to back.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The digests in block order.
    pub fn iter(&self) -> DigestIter<'a> {
        DigestIter { chunks: self.bytes.chunks_exact(DIGEST_LEN) }
    }
}

/// Iterator over [`Digests`].
pub struct DigestIter<'a> {
    chunks: ChunksExact<'a, u8>,
}

impl<'a> Iterator for DigestIter<'a> {
    type Item = &'a [u8; DIGEST_LEN];

    fn next(&mut self) -> Option<&'a [u8; DIGEST_LEN]> {
        self.chunks.next().and_then(|c| c.try_into().ok())
    }
}

impl FusedIterator for DigestIter<'_> {}

/// A protocol message. Requests and their replies are paired by the frame's request id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// Opens the handshake: versions, cluster, nonce, host name.
    Hello(Hello<'a>),
    /// Proves knowledge of the cluster secret (see `proto::auth_proof`).
    AuthProof {
        /// HMAC-SHA256 over the handshake.
        mac: [u8; DIGEST_LEN],
    },
    /// A request failed, or the connection is about to be closed.
    Error {
        /// What went wrong.
        code: ErrorCode,
        /// Details for the admin's log: printable UTF-8, at most [`MAX_ERROR_TEXT`] bytes.
        message: &'a str,
    },
    /// Sent when a connection has been quiet for a while; carries the sender's clock.
    Keepalive {
        /// The sender's Lamport clock, nanoseconds.
        stamp_nanos: u64,
    },
    /// Asks for tree entries.
    TreeRequest {
        /// Entries the responder stored after this time of its own clock; 0 for the whole tree.
        since_nanos: u64,
    },
    /// One chunk of the reply to a [`Message::TreeRequest`].
    TreeData {
        /// The responder's clock when it took the snapshot: `since_nanos` of the next request.
        as_of_nanos: u64,
        /// Whether this is the last chunk of the reply.
        last: bool,
        /// A tree chunk (sibling module `tree_codec`), at most [`MAX_DATA`] bytes.
        chunk: &'a [u8],
    },
    /// The sender's own membership entry (`ips/ip-SENDER`), sent by a client right after the
    /// handshake (protocol version 2): how the members learn of a host that has just joined,
    /// before anyone pulls from it. Needs no reply.
    TreeAnnounce {
        /// A tree chunk of at most [`MAX_ANNOUNCE`] bytes.
        chunk: &'a [u8],
    },
    /// A tree-request with the requester's tree digest (protocol version 2): the responder
    /// leaves out every digest bucket in which its own digest equals the requester's.
    TreeRequestDigest {
        /// As in [`Message::TreeRequest`].
        since_nanos: u64,
        /// The requester's digest: [`DIGEST_WIRE_LEN`] bytes, 64 little-endian `u64`s.
        digest: &'a [u8],
    },
    /// Asks which logfiles of a resource the responder has.
    LogListRequest {
        /// The resource.
        resource: &'a str,
    },
    /// The reply to a [`Message::LogListRequest`]: logfiles in ascending sequence order.
    LogList {
        /// The resource.
        resource: &'a str,
        /// The logfiles, at most [`MAX_LOG_ENTRIES`] (the oldest ones if there are more).
        entries: LogEntries<'a>,
    },
    /// Asks for a byte range of a logfile.
    LogFetch {
        /// The resource.
        resource: &'a str,
        /// The logfile.
        file: &'a str,
        /// First byte.
        offset: u64,
        /// Bytes wanted, 1 to [`MAX_DATA`].
        length: u32,
    },
    /// The reply to a [`Message::LogFetch`].
    LogData {
        /// The resource.
        resource: &'a str,
        /// The logfile.
        file: &'a str,
        /// Offset of the first byte of `data` in the logfile.
        offset: u64,
        /// Whether `data` reaches the end of the file as it is now on the sender (a live
        /// logfile may grow later).
        eof: bool,
        /// The bytes, at most the length asked for; fewer only at the end of the file.
        data: &'a [u8],
    },
    /// Asks for sectors of a resource's data device (full sync).
    BlockRead {
        /// The resource.
        resource: &'a str,
        /// First sector (512 bytes each).
        sector: u64,
        /// Sectors wanted, 1 to [`MAX_SECTORS`].
        count_sectors: u32,
    },
    /// The reply to a [`Message::BlockRead`].
    BlockData {
        /// First sector.
        sector: u64,
        /// Where the primary's log ended (appended, maybe not yet durable) right after the
        /// sectors were read: every write on the data device then comes from a record before it.
        logged: LogEnd,
        /// The sectors' bytes: a non-zero multiple of 512, at most [`MAX_DATA`].
        data: &'a [u8],
    },
    /// Asks for SHA-256 digests of consecutive blocks of a data device (fast full sync).
    ChecksumRequest {
        /// The resource.
        resource: &'a str,
        /// First sector of the first block.
        sector: u64,
        /// Sectors per block, 1 to [`MAX_SECTORS`].
        block_sectors: u32,
        /// Number of blocks, 1 to [`MAX_CHECKSUM_BLOCKS`].
        blocks: u32,
    },
    /// The reply to a [`Message::ChecksumRequest`].
    Checksums {
        /// First sector of the first block.
        sector: u64,
        /// Sectors per block.
        block_sectors: u32,
        /// As in [`Message::BlockData`], after the blocks were read.
        logged: LogEnd,
        /// One SHA-256 digest per block, in order.
        digests: Digests<'a>,
    },
}

/// A position in the sender's log: logfile sequence number and bytes into it (both 0: it has
/// logged nothing). Encoded as `seq u32`, `offset u64`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogEnd {
    /// Sequence number of the logfile.
    pub seq: u32,
    /// Bytes into it.
    pub offset: u64,
}

/// Encoded length of a name field: a length byte and the name.
fn name_len(name: &str) -> usize {
    name.len().saturating_add(1)
}

impl<'a> Message<'a> {
    /// The message's type code.
    pub fn kind(&self) -> MessageType {
        match self {
            Message::Hello(_) => MessageType::Hello,
            Message::AuthProof { .. } => MessageType::AuthProof,
            Message::Error { .. } => MessageType::Error,
            Message::Keepalive { .. } => MessageType::Keepalive,
            Message::TreeRequest { .. } => MessageType::TreeRequest,
            Message::TreeData { .. } => MessageType::TreeData,
            Message::TreeAnnounce { .. } => MessageType::TreeAnnounce,
            Message::TreeRequestDigest { .. } => MessageType::TreeRequestDigest,
            Message::LogListRequest { .. } => MessageType::LogListRequest,
            Message::LogList { .. } => MessageType::LogList,
            Message::LogFetch { .. } => MessageType::LogFetch,
            Message::LogData { .. } => MessageType::LogData,
            Message::BlockRead { .. } => MessageType::BlockRead,
            Message::BlockData { .. } => MessageType::BlockData,
            Message::ChecksumRequest { .. } => MessageType::ChecksumRequest,
            Message::Checksums { .. } => MessageType::Checksums,
        }
    }

    /// The bulk data at the end of the payload (tree chunk, logfile or block data; empty for
    /// other messages), which `proto::encode_frame_head` leaves for the caller to send.
    pub fn bulk(&self) -> &'a [u8] {
        match *self {
            Message::TreeData { chunk, .. } | Message::TreeAnnounce { chunk } => chunk,
            Message::LogData { data, .. } | Message::BlockData { data, .. } => data,
            _ => &[],
        }
    }

    /// Length of the encoded payload in bytes.
    pub fn payload_len(&self) -> usize {
        let sum = |parts: &[usize]| parts.iter().fold(0usize, |acc, &p| acc.saturating_add(p));
        match *self {
            Message::Hello(h) => sum(&[4, CLUSTER_ID_LEN, NONCE_LEN, name_len(h.host_name)]),
            Message::AuthProof { .. } => DIGEST_LEN,
            Message::Error { message, .. } => sum(&[4, message.len()]),
            Message::Keepalive { .. } | Message::TreeRequest { .. } => 8,
            Message::TreeData { chunk, .. } => sum(&[13, chunk.len()]),
            Message::TreeAnnounce { chunk } => sum(&[4, chunk.len()]),
            Message::TreeRequestDigest { digest, .. } => sum(&[8, digest.len()]),
            Message::LogListRequest { resource } => name_len(resource),
            Message::LogList { resource, entries } => {
                entries.iter().fold(sum(&[name_len(resource), 4]), |acc, e| sum(&[acc, name_len(e.name), 8]))
            }
            Message::LogFetch { resource, file, .. } => sum(&[name_len(resource), name_len(file), 12]),
            Message::LogData { resource, file, data, .. } => sum(&[name_len(resource), name_len(file), 13, data.len()]),
            Message::BlockRead { resource, .. } => sum(&[name_len(resource), 12]),
            Message::BlockData { data, .. } => sum(&[24, data.len()]),
            Message::ChecksumRequest { resource, .. } => sum(&[name_len(resource), 16]),
            Message::Checksums { digests, .. } => sum(&[28, digests.as_bytes().len()]),
        }
    }

    /// Checks every field against its limits; the encoder and the decoder both call this.
    pub fn validate(&self) -> Result<(), ProtoError> {
        match *self {
            Message::Hello(h) => {
                check_name(NameKind::Host, h.host_name.as_bytes())?;
                if h.min_version == 0 || h.min_version > h.max_version {
                    return Err(ProtoError::Invalid {
                        field: "hello versions",
                        why: "need 1 <= min_version <= max_version",
                    });
                }
            }
            Message::AuthProof { .. } | Message::Keepalive { .. } | Message::TreeRequest { .. } => {}
            Message::Error { message, .. } => check_text("error text", message, MAX_ERROR_TEXT)?,
            Message::TreeData { chunk, .. } => check_count("tree chunk length", chunk.len(), 0, MAX_DATA)?,
            Message::TreeAnnounce { chunk } => check_count("announced chunk length", chunk.len(), 0, MAX_ANNOUNCE)?,
            Message::TreeRequestDigest { digest, .. } => {
                if digest.len() != DIGEST_WIRE_LEN {
                    return Err(ProtoError::Invalid { field: "tree digest", why: "must be 512 bytes" });
                }
            }
            Message::LogListRequest { resource } => {
                check_name(NameKind::Resource, resource.as_bytes())?;
            }
            Message::LogList { resource, entries } => {
                check_name(NameKind::Resource, resource.as_bytes())?;
                check_count("log list entries", entries.len(), 0, MAX_LOG_ENTRIES as usize)?;
                for entry in entries.iter() {
                    check_log_entry(&entry)?;
                }
            }
            Message::LogFetch { resource, file, offset, length } => {
                check_name(NameKind::Resource, resource.as_bytes())?;
                check_name(NameKind::Logfile, file.as_bytes())?;
                check_count("log fetch length", length as usize, 1, MAX_DATA)?;
                check_byte_range("log fetch range", offset, u64::from(length))?;
            }
            Message::LogData { resource, file, offset, data, .. } => {
                check_name(NameKind::Resource, resource.as_bytes())?;
                check_name(NameKind::Logfile, file.as_bytes())?;
                check_count("log data length", data.len(), 0, MAX_DATA)?;
                check_byte_range("log data range", offset, data.len() as u64)?;
            }
            Message::BlockRead { resource, sector, count_sectors } => {
                check_name(NameKind::Resource, resource.as_bytes())?;
                check_count("block read sectors", count_sectors as usize, 1, MAX_SECTORS as usize)?;
                check_sector_range("block read range", sector, u64::from(count_sectors))?;
            }
            Message::BlockData { sector, data, .. } => {
                check_count("block data length", data.len(), 1, MAX_DATA)?;
                if data.len() as u64 % SECTOR != 0 {
                    return Err(ProtoError::Invalid { field: "block data length", why: "must be a multiple of 512" });
                }
                check_sector_range("block data range", sector, data.len() as u64 / SECTOR)?;
            }
            Message::ChecksumRequest { resource, sector, block_sectors, blocks } => {
                check_name(NameKind::Resource, resource.as_bytes())?;
                check_blocks(sector, block_sectors, blocks as usize)?;
            }
            Message::Checksums { sector, block_sectors, digests, .. } => {
                check_blocks(sector, block_sectors, digests.len())?;
            }
        }
        Ok(())
    }

    /// Writes the payload except the [`Message::bulk`] bytes (but including their length).
    pub(super) fn write_head(&self, w: &mut Writer<'_>) -> Result<(), Short> {
        match *self {
            Message::Hello(h) => {
                w.u16(h.min_version)?;
                w.u16(h.max_version)?;
                w.bytes(&h.cluster_id)?;
                w.bytes(&h.nonce)?;
                write_name(w, h.host_name)
            }
            Message::AuthProof { mac } => w.bytes(&mac),
            Message::Error { code, message } => {
                w.u16(code.0)?;
                w.u16(u16::try_from(message.len()).unwrap_or(u16::MAX))?;
                w.bytes(message.as_bytes())
            }
            Message::Keepalive { stamp_nanos: nanos } | Message::TreeRequest { since_nanos: nanos } => w.u64(nanos),
            Message::TreeData { as_of_nanos, last, chunk } => {
                w.u64(as_of_nanos)?;
                w.u8(u8::from(last))?;
                write_bulk_len(w, chunk)
            }
            Message::TreeAnnounce { chunk } => write_bulk_len(w, chunk),
            Message::TreeRequestDigest { since_nanos, digest } => {
                w.u64(since_nanos)?;
                w.bytes(digest)
            }
            Message::LogListRequest { resource } => write_name(w, resource),
            Message::LogList { resource, entries } => {
                write_name(w, resource)?;
                w.u32(u32::try_from(entries.len()).unwrap_or(u32::MAX))?;
                for entry in entries.iter() {
                    write_name(w, entry.name)?;
                    w.u64(entry.size)?;
                }
                Ok(())
            }
            Message::LogFetch { resource, file, offset, length } => {
                write_name(w, resource)?;
                write_name(w, file)?;
                w.u64(offset)?;
                w.u32(length)
            }
            Message::LogData { resource, file, offset, eof, data } => {
                write_name(w, resource)?;
                write_name(w, file)?;
                w.u64(offset)?;
                w.u8(u8::from(eof))?;
                write_bulk_len(w, data)
            }
            Message::BlockRead { resource, sector, count_sectors } => {
                write_name(w, resource)?;
                w.u64(sector)?;
                w.u32(count_sectors)
            }
            Message::BlockData { sector, logged, data } => {
                w.u64(sector)?;
                w.u32(logged.seq)?;
                w.u64(logged.offset)?;
                write_bulk_len(w, data)
            }
            Message::ChecksumRequest { resource, sector, block_sectors, blocks } => {
                write_name(w, resource)?;
                w.u64(sector)?;
                w.u32(block_sectors)?;
                w.u32(blocks)
            }
            Message::Checksums { sector, block_sectors, logged, digests } => {
                w.u64(sector)?;
                w.u32(block_sectors)?;
                w.u32(logged.seq)?;
                w.u64(logged.offset)?;
                w.u32(u32::try_from(digests.len()).unwrap_or(u32::MAX))?;
                w.bytes(digests.as_bytes())
            }
        }
    }
}

/// Largest payload of a message of type `kind`, from the limits above.
pub(super) const fn max_payload_len(kind: MessageType) -> usize {
    const RES: usize = 1 + MAX_RESOURCE_NAME_LEN;
    const FILE: usize = 1 + MAX_LOGFILE_NAME_LEN;
    match kind {
        MessageType::Hello => 4 + CLUSTER_ID_LEN + NONCE_LEN + 1 + MAX_HOST_NAME_LEN,
        MessageType::AuthProof => DIGEST_LEN,
        MessageType::Error => 4 + MAX_ERROR_TEXT,
        MessageType::Keepalive | MessageType::TreeRequest => 8,
        MessageType::TreeData => 13 + MAX_DATA,
        MessageType::TreeAnnounce => 4 + MAX_ANNOUNCE,
        MessageType::TreeRequestDigest => 8 + DIGEST_WIRE_LEN,
        MessageType::LogListRequest => RES,
        MessageType::LogList => RES + 4 + MAX_LOG_ENTRIES as usize * (FILE + 8),
        MessageType::LogFetch => RES + FILE + 12,
        MessageType::LogData => RES + FILE + 13 + MAX_DATA,
        MessageType::BlockRead => RES + 12,
        MessageType::BlockData => 24 + MAX_DATA,
        MessageType::ChecksumRequest => RES + 16,
        MessageType::Checksums => 28 + MAX_CHECKSUM_BLOCKS as usize * DIGEST_LEN,
    }
}

fn write_name(w: &mut Writer<'_>, name: &str) -> Result<(), Short> {
    // Validated names are at most MAX_LOGFILE_NAME_LEN (< 256) bytes.
    w.u8(u8::try_from(name.len()).unwrap_or(u8::MAX))?;
    w.bytes(name.as_bytes())
}

fn write_bulk_len(w: &mut Writer<'_>, bulk: &[u8]) -> Result<(), Short> {
    w.u32(u32::try_from(bulk.len()).unwrap_or(u32::MAX))
}

/// Checks that `value` lies in `min..=max`.
fn check_count(field: &'static str, value: usize, min: usize, max: usize) -> Result<(), ProtoError> {
    if value < min {
        return Err(ProtoError::Invalid { field, why: "must not be zero" });
    }
    if value > max {
        return Err(ProtoError::TooLarge { field, value: value as u64, max: max as u64 });
    }
    Ok(())
}

/// Checks that `len` bytes from `start` end at or before [`MAX_OFFSET`].
fn check_byte_range(field: &'static str, start: u64, len: u64) -> Result<(), ProtoError> {
    match start.checked_add(len) {
        Some(end) if end <= MAX_OFFSET => Ok(()),
        _ => Err(ProtoError::Invalid { field, why: "ends beyond the largest possible offset" }),
    }
}

/// Checks that `count` sectors from `sector` end at or before [`MAX_OFFSET`].
fn check_sector_range(field: &'static str, sector: u64, count: u64) -> Result<(), ProtoError> {
    match sector.checked_add(count).and_then(|end| end.checked_mul(SECTOR)) {
        Some(end) if end <= MAX_OFFSET => Ok(()),
        _ => Err(ProtoError::Invalid { field, why: "ends beyond the largest possible offset" }),
    }
}

/// Checks the block geometry of a checksum request or reply.
fn check_blocks(sector: u64, block_sectors: u32, blocks: usize) -> Result<(), ProtoError> {
    check_count("checksum block sectors", block_sectors as usize, 1, MAX_SECTORS as usize)?;
    check_count("checksum blocks", blocks, 1, MAX_CHECKSUM_BLOCKS as usize)?;
    // Both factors are bounded above (2048 * 4096), so the product cannot overflow.
    let sectors = u64::from(block_sectors).saturating_mul(blocks as u64);
    check_sector_range("checksum range", sector, sectors)
}

/// Checks that `text` is at most `max` bytes without control characters.
fn check_text(field: &'static str, text: &str, max: usize) -> Result<(), ProtoError> {
    check_count(field, text.len(), 0, max)?;
    if text.chars().any(char::is_control) {
        return Err(ProtoError::BadText { field });
    }
    Ok(())
}

fn check_log_entry(entry: &LogEntry<'_>) -> Result<(), ProtoError> {
    check_name(NameKind::Logfile, entry.name.as_bytes())?;
    if entry.size > MAX_OFFSET {
        return Err(ProtoError::TooLarge { field: "logfile size", value: entry.size, max: MAX_OFFSET });
    }
    Ok(())
}

/// Runs a read on `r`, reporting a shortfall as truncation inside `field`.
fn take<'a, T>(
    r: &mut Reader<'a>,
    field: &'static str,
    read: impl FnOnce(&mut Reader<'a>) -> Result<T, Short>,
) -> Result<T, ProtoError> {
    read(r).map_err(|s| ProtoError::Truncated { field, needed: s.needed, available: s.available })
}

fn read_flag(r: &mut Reader<'_>, field: &'static str) -> Result<bool, ProtoError> {
    match take(r, field, Reader::u8)? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(ProtoError::Invalid { field, why: "must be 0 or 1" }),
    }
}

/// Reads a name: its length byte, checked against the kind's limit first, then the name.
fn read_name<'a>(r: &mut Reader<'a>, kind: NameKind) -> Result<&'a str, ProtoError> {
    let len = usize::from(take(r, "name length", Reader::u8)?);
    if len > kind.max_len() {
        return Err(ProtoError::BadName { kind, fault: NameProblem::TooLong { len, max: kind.max_len() } });
    }
    check_name(kind, take(r, "name", |r| r.bytes(len))?)
}

/// Reads bulk data: its u32 length, checked against `max` first, then the bytes.
/// A [`LogEnd`]: `seq u32`, `offset u64`.
fn read_log_end(r: &mut Reader<'_>) -> Result<LogEnd, ProtoError> {
    let seq = take(r, "log end logfile", Reader::u32)?;
    let offset = take(r, "log end offset", Reader::u64)?;
    Ok(LogEnd { seq, offset })
}

fn read_bulk<'a>(r: &mut Reader<'a>, field: &'static str, max: usize) -> Result<&'a [u8], ProtoError> {
    let len = take(r, field, Reader::u32)?;
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    check_count(field, len, 0, max)?;
    take(r, field, |r| r.bytes(len))
}

fn read_log_entry<'a>(r: &mut Reader<'a>) -> Result<LogEntry<'a>, ProtoError> {
    let entry = LogEntry { name: read_name(r, NameKind::Logfile)?, size: take(r, "logfile size", Reader::u64)? };
    check_log_entry(&entry)?;
    Ok(entry)
}

/// Decodes and checks the payload of a message of type `kind`. The frame's length and
/// checksum must have been checked already (`proto::decode_message` does both).
pub(super) fn decode_payload(kind: MessageType, payload: &[u8]) -> Result<Message<'_>, ProtoError> {
    let r = &mut Reader::new(payload);
    let message = match kind {
        MessageType::Hello => {
            let min_version = take(r, "min_version", Reader::u16)?;
            let max_version = take(r, "max_version", Reader::u16)?;
            let cluster_id = take(r, "cluster_id", Reader::array)?;
            let nonce = take(r, "nonce", Reader::array)?;
            let host_name = read_name(r, NameKind::Host)?;
            Message::Hello(Hello { min_version, max_version, cluster_id, nonce, host_name })
        }
        MessageType::AuthProof => Message::AuthProof { mac: take(r, "mac", Reader::array)? },
        MessageType::Error => {
            let code = ErrorCode(take(r, "error code", Reader::u16)?);
            let len = usize::from(take(r, "error text length", Reader::u16)?);
            check_count("error text", len, 0, MAX_ERROR_TEXT)?;
            let text = take(r, "error text", |r| r.bytes(len))?;
            let message = core::str::from_utf8(text).map_err(|_| ProtoError::BadText { field: "error text" })?;
            Message::Error { code, message }
        }
        MessageType::Keepalive => Message::Keepalive { stamp_nanos: take(r, "stamp", Reader::u64)? },
        MessageType::TreeRequest => Message::TreeRequest { since_nanos: take(r, "since", Reader::u64)? },
        MessageType::TreeData => {
            let as_of_nanos = take(r, "as_of", Reader::u64)?;
            let last = read_flag(r, "last flag")?;
            let chunk = read_bulk(r, "tree chunk length", MAX_DATA)?;
            Message::TreeData { as_of_nanos, last, chunk }
        }
        MessageType::TreeAnnounce => {
            Message::TreeAnnounce { chunk: read_bulk(r, "announced chunk length", MAX_ANNOUNCE)? }
        }
        MessageType::TreeRequestDigest => Message::TreeRequestDigest {
            since_nanos: take(r, "since", Reader::u64)?,
            digest: take(r, "tree digest", |r| r.bytes(DIGEST_WIRE_LEN))?,
        },
        MessageType::LogListRequest => Message::LogListRequest { resource: read_name(r, NameKind::Resource)? },
        MessageType::LogList => {
            let resource = read_name(r, NameKind::Resource)?;
            let count = take(r, "log list entry count", Reader::u32)?;
            check_count("log list entries", count as usize, 0, MAX_LOG_ENTRIES as usize)?;
            let mut start = r.clone();
            let before = r.position();
            for _ in 0..count {
                read_log_entry(r)?;
            }
            let bytes = take(&mut start, "log list", |s| s.bytes(r.position().saturating_sub(before)))?;
            Message::LogList { resource, entries: LogEntries { source: EntrySource::Wire { bytes, count } } }
        }
        MessageType::LogFetch => {
            let resource = read_name(r, NameKind::Resource)?;
            let file = read_name(r, NameKind::Logfile)?;
            let offset = take(r, "offset", Reader::u64)?;
            let length = take(r, "length", Reader::u32)?;
            Message::LogFetch { resource, file, offset, length }
        }
        MessageType::LogData => {
            let resource = read_name(r, NameKind::Resource)?;
            let file = read_name(r, NameKind::Logfile)?;
            let offset = take(r, "offset", Reader::u64)?;
            let eof = read_flag(r, "eof flag")?;
            let data = read_bulk(r, "log data length", MAX_DATA)?;
            Message::LogData { resource, file, offset, eof, data }
        }
        MessageType::BlockRead => {
            let resource = read_name(r, NameKind::Resource)?;
            let sector = take(r, "sector", Reader::u64)?;
            let count_sectors = take(r, "sector count", Reader::u32)?;
            Message::BlockRead { resource, sector, count_sectors }
        }
        MessageType::BlockData => {
            let sector = take(r, "sector", Reader::u64)?;
            let logged = read_log_end(r)?;
            let data = read_bulk(r, "block data length", MAX_DATA)?;
            Message::BlockData { sector, logged, data }
        }
        MessageType::ChecksumRequest => {
            let resource = read_name(r, NameKind::Resource)?;
            let sector = take(r, "sector", Reader::u64)?;
            let block_sectors = take(r, "block sectors", Reader::u32)?;
            let blocks = take(r, "block count", Reader::u32)?;
            Message::ChecksumRequest { resource, sector, block_sectors, blocks }
        }
        MessageType::Checksums => {
            let sector = take(r, "sector", Reader::u64)?;
            let block_sectors = take(r, "block sectors", Reader::u32)?;
            let logged = read_log_end(r)?;
            let count = take(r, "digest count", Reader::u32)?;
            check_count("checksum blocks", count as usize, 1, MAX_CHECKSUM_BLOCKS as usize)?;
            // count <= MAX_CHECKSUM_BLOCKS, so the product is small.
            let bytes = take(r, "digests", |r| r.bytes(count as usize * DIGEST_LEN))?;
            let digests = Digests::new(bytes).ok_or(ProtoError::Invalid { field: "digests", why: "bad length" })?;
            Message::Checksums { sector, block_sectors, logged, digests }
        }
    };
    if r.remaining() != 0 {
        return Err(ProtoError::TrailingBytes { count: r.remaining() });
    }
    message.validate()?;
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::super::crc32c::crc32c;
    use super::super::names::{RESERVED_HOST_NAMES, RESERVED_RESOURCE_NAMES};
    use super::super::proto::{decode_frame, decode_message, encode_frame, encode_frame_head, frame_len, FrameHeader};
    use super::super::proto::{MAX_PAYLOAD, MIN_VERSION};
    use super::*;
    use proptest::prelude::*;
    use std::string::{String, ToString};
    use std::vec::Vec;
    use std::{format, vec};

    /// A message with owned contents, for generating messages.
    #[derive(Clone, Debug)]
    enum Owned {
        Hello { max: u16, cluster: [u8; 16], nonce: [u8; 32], host: String },
        AuthProof([u8; 32]),
        Error(u16, String),
        Keepalive(u64),
        TreeRequest(u64),
        TreeData(u64, bool, Vec<u8>),
        TreeAnnounce(Vec<u8>),
        TreeRequestDigest(u64, Vec<u8>),
        LogListRequest(String),
        LogList(String, Vec<(String, u64)>),
        LogFetch(String, String, u64, u32),
        LogData(String, String, u64, bool, Vec<u8>),
        BlockRead(String, u64, u32),
        BlockData(u64, LogEnd, Vec<u8>),
        ChecksumRequest(String, u64, u32, u32),
        Checksums(u64, u32, LogEnd, Vec<u8>),
    }

    /// Calls `f` with the message `o` stands for.
    fn with_message<R>(o: &Owned, f: impl FnOnce(&Message<'_>) -> R) -> R {
        let list: Vec<LogEntry<'_>> = match o {
            Owned::LogList(_, entries) => entries.iter().map(|(name, size)| LogEntry { name, size: *size }).collect(),
            _ => Vec::new(),
        };
        let m = match o {
            Owned::Hello { max, cluster, nonce, host } => Message::Hello(Hello {
                min_version: MIN_VERSION,
                max_version: *max,
                cluster_id: *cluster,
                nonce: *nonce,
                host_name: host,
            }),
            Owned::AuthProof(mac) => Message::AuthProof { mac: *mac },
            Owned::Error(code, text) => Message::Error { code: ErrorCode(*code), message: text },
            Owned::Keepalive(n) => Message::Keepalive { stamp_nanos: *n },
            Owned::TreeRequest(n) => Message::TreeRequest { since_nanos: *n },
            Owned::TreeData(n, last, chunk) => Message::TreeData { as_of_nanos: *n, last: *last, chunk },
            Owned::TreeAnnounce(chunk) => Message::TreeAnnounce { chunk },
            Owned::TreeRequestDigest(n, digest) => Message::TreeRequestDigest { since_nanos: *n, digest },
            Owned::LogListRequest(r) => Message::LogListRequest { resource: r },
            Owned::LogList(r, _) => Message::LogList { resource: r, entries: LogEntries::from_list(&list) },
            Owned::LogFetch(r, file, offset, length) => {
                Message::LogFetch { resource: r, file, offset: *offset, length: *length }
            }
            Owned::LogData(r, file, offset, eof, data) => {
                Message::LogData { resource: r, file, offset: *offset, eof: *eof, data }
            }
            Owned::BlockRead(r, sector, count) => {
                Message::BlockRead { resource: r, sector: *sector, count_sectors: *count }
            }
            Owned::BlockData(sector, logged, data) => Message::BlockData { sector: *sector, logged: *logged, data },
            Owned::ChecksumRequest(r, sector, block_sectors, blocks) => Message::ChecksumRequest {
                resource: r,
                sector: *sector,
                block_sectors: *block_sectors,
                blocks: *blocks,
            },
            Owned::Checksums(sector, block_sectors, logged, digests) => Message::Checksums {
                sector: *sector,
                block_sectors: *block_sectors,
                logged: *logged,
                digests: Digests::new(digests).unwrap(),
            },
        };
        f(&m)
    }

    fn log_end() -> impl Strategy<Value = LogEnd> {
        (any::<u32>(), any::<u64>()).prop_map(|(seq, offset)| LogEnd { seq, offset })
    }

    fn resource() -> impl Strategy<Value = String> {
        "[a-z0-9][a-z0-9_-]{0,25}".prop_filter("reserved", |r| !RESERVED_RESOURCE_NAMES.contains(&r.as_str()))
    }

    fn host() -> impl Strategy<Value = String> {
        "[a-z]([a-z0-9-]{0,61}[a-z0-9])?".prop_filter("reserved", |h| !RESERVED_HOST_NAMES.contains(&h.as_str()))
    }

    fn logfile() -> impl Strategy<Value = String> {
        (0u32..1_000_000_000, host()).prop_map(|(seq, host)| format!("log-{seq:09}-{host}"))
    }

    fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..=max)
    }

    /// Messages of every type within the limits, with at most `max_bulk` bytes of bulk data and
    /// `max_items` list entries.
    fn owned(max_bulk: usize, max_items: usize) -> impl Strategy<Value = Owned> {
        let offset = 0u64..1 << 62;
        let sector = 0u64..1 << 50;
        prop_oneof![
            (MIN_VERSION..=u16::MAX, any::<[u8; 16]>(), any::<[u8; 32]>(), host())
                .prop_map(|(max, cluster, nonce, host)| Owned::Hello { max, cluster, nonce, host }),
            any::<[u8; 32]>().prop_map(Owned::AuthProof),
            (any::<u16>(), "\\PC{0,50}").prop_map(|(c, t)| Owned::Error(c, t)),
            any::<u64>().prop_map(Owned::Keepalive),
            any::<u64>().prop_map(Owned::TreeRequest),
            (any::<u64>(), any::<bool>(), bytes(max_bulk)).prop_map(|(n, l, c)| Owned::TreeData(n, l, c)),
            bytes(max_bulk.min(MAX_ANNOUNCE)).prop_map(Owned::TreeAnnounce),
            (any::<u64>(), proptest::collection::vec(any::<u8>(), DIGEST_WIRE_LEN))
                .prop_map(|(n, d)| Owned::TreeRequestDigest(n, d)),
            resource().prop_map(Owned::LogListRequest),
            (resource(), proptest::collection::vec((logfile(), 0..=MAX_OFFSET), 0..=max_items))
                .prop_map(|(r, e)| Owned::LogList(r, e)),
            (resource(), logfile(), offset.clone(), 1..=MAX_DATA as u32)
                .prop_map(|(r, f, o, l)| Owned::LogFetch(r, f, o, l)),
            (resource(), logfile(), offset, any::<bool>(), bytes(max_bulk))
                .prop_map(|(r, f, o, e, d)| Owned::LogData(r, f, o, e, d)),
            (resource(), sector.clone(), 1..=MAX_SECTORS).prop_map(|(r, s, c)| Owned::BlockRead(r, s, c)),
            (sector.clone(), 1..=(max_bulk / 512).max(1))
                .prop_flat_map(|(s, k)| (Just(s), log_end(), proptest::collection::vec(any::<u8>(), k * 512)))
                .prop_map(|(s, l, d)| Owned::BlockData(s, l, d)),
            (resource(), sector.clone(), 1..=MAX_SECTORS, 1..=MAX_CHECKSUM_BLOCKS)
                .prop_map(|(r, s, b, n)| Owned::ChecksumRequest(r, s, b, n)),
            (sector, 1..=MAX_SECTORS, 1..=max_items.max(1))
                .prop_flat_map(|(s, b, n)| (
                    Just(s),
                    Just(b),
                    log_end(),
                    proptest::collection::vec(any::<u8>(), n * 32)
                ))
                .prop_map(|(s, b, l, d)| Owned::Checksums(s, b, l, d)),
        ]
    }

    fn encode(m: &Message<'_>, request_id: u64) -> Vec<u8> {
        let mut buf = vec![0u8; frame_len(m)];
        let n = encode_frame(m, request_id, &mut buf).unwrap();
        assert_eq!(n, buf.len());
        buf
    }

    /// A header that announces `payload` correctly as a message of type `kind`.
    fn header_for(kind: MessageType, payload: &[u8]) -> FrameHeader {
        FrameHeader {
            version: MIN_VERSION,
            kind,
            payload_len: payload.len() as u32,
            request_id: 0,
            payload_crc: crc32c(payload),
        }
    }

    /// If `payload` decodes as `kind`, encoding the result gives back exactly `payload`.
    fn assert_canonical(kind: MessageType, payload: &[u8]) {
        let header = header_for(kind, payload);
        if let Ok(m) = decode_message(&header, payload) {
            let frame = encode(&m, 0);
            assert_eq!(&frame[32..], payload, "{m:?}");
        }
    }

    proptest! {
        #[test]
        fn every_message_round_trips(o in owned(2048, 20), request_id in any::<u64>()) {
            with_message(&o, |m| {
                let frame = encode(m, request_id);
                let (header, decoded) = decode_frame(&frame).unwrap();
                assert_eq!(&decoded, m);
                assert_eq!(header.kind, m.kind());
                assert_eq!(header.request_id, request_id);
                assert_eq!(header.payload_len as usize, m.payload_len());
                assert!(m.payload_len() <= m.kind().max_payload_len());
                // The head plus the bulk bytes make up the same frame.
                let mut head = vec![0u8; frame.len()];
                let n = encode_frame_head(m, request_id, &mut head).unwrap();
                head.truncate(n);
                head.extend_from_slice(m.bulk());
                assert_eq!(head, frame);
                // A buffer one byte short is refused, not overrun.
                let mut short = vec![0u8; frame.len() - 1];
                assert_eq!(encode_frame(m, request_id, &mut short), Err(ProtoError::BufferTooSmall { needed: frame.len() }));
            });
        }

        #[test]
        fn wire_log_entries_equal_the_sent_list(o in owned(0, 30)) {
            with_message(&o, |m| {
                if let Message::LogList { entries, .. } = m {
                    let frame = encode(m, 1);
                    let (_, decoded) = decode_frame(&frame).unwrap();
                    let Message::LogList { entries: got, .. } = decoded else { panic!("wrong type") };
                    assert_eq!(got.len(), entries.len());
                    assert!(got.iter().eq(entries.iter()));
                }
            });
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn every_bit_flip_is_detected(o in owned(64, 3)) {
            with_message(&o, |m| {
                let mut frame = encode(m, 42);
                for bit in 0..frame.len() * 8 {
                    frame[bit / 8] ^= 1 << (bit % 8);
                    assert!(decode_frame(&frame).is_err(), "flip of bit {bit} in {m:?} not detected");
                    frame[bit / 8] ^= 1 << (bit % 8);
                }
            });
        }

        #[test]
        fn every_cut_is_detected(o in owned(64, 3)) {
            with_message(&o, |m| {
                let frame = encode(m, 42);
                for cut in 0..frame.len() {
                    assert!(decode_frame(&frame[..cut]).is_err());
                }
                let mut longer = frame.clone();
                longer.push(0);
                assert!(decode_frame(&longer).is_err());
            });
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn garbage_payloads_never_panic(kind in proptest::sample::select(MessageType::ALL.to_vec()), payload in bytes(300)) {
            assert_canonical(kind, &payload);
        }

        #[test]
        fn mutated_payloads_never_panic(o in owned(64, 3), edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..4)) {
            with_message(&o, |m| {
                let frame = encode(m, 0);
                let mut payload = frame[32..].to_vec();
                if payload.is_empty() {
                    return;
                }
                for (at, value) in &edits {
                    let i = at.index(payload.len());
                    payload[i] = *value;
                }
                assert_canonical(m.kind(), &payload);
                // Cut short or extended, the payload is never read out of bounds.
                let cut = edits[0].0.index(payload.len());
                assert_canonical(m.kind(), &payload[..cut]);
            });
        }
    }

    #[test]
    fn names_follow_their_grammars() {
        let kind_check = |kind: NameKind, name: &str| check_name(kind, name.as_bytes()).map(str::to_string);
        let bad = |kind, name: &str, fault| {
            assert_eq!(kind_check(kind, name), Err(ProtoError::BadName { kind, fault }), "{name:?}")
        };
        for ok in ["r", "0", "my-res_1", "abcdefghijklmnopqrstuvwxyz"] {
            assert_eq!(kind_check(NameKind::Resource, ok).as_deref(), Ok(ok));
        }
        bad(NameKind::Resource, "", NameProblem::Empty);
        bad(NameKind::Resource, "abcdefghijklmnopqrstuvwxyz0", NameProblem::TooLong { len: 27, max: 26 });
        bad(NameKind::Resource, "-r", NameProblem::BadFirstByte { at: 0, byte: b'-' });
        bad(NameKind::Resource, "a/b", NameProblem::BadByte { at: 1, byte: b'/' });
        bad(NameKind::Resource, "a.b", NameProblem::BadByte { at: 1, byte: b'.' });
        bad(NameKind::Resource, "Ab", NameProblem::BadFirstByte { at: 0, byte: b'A' });
        bad(NameKind::Resource, "all", NameProblem::Reserved);
        for ok in ["a", "node-1", "x9"] {
            assert_eq!(kind_check(NameKind::Host, ok).as_deref(), Ok(ok));
        }
        bad(NameKind::Host, "1node", NameProblem::BadFirstByte { at: 0, byte: b'1' });
        bad(NameKind::Host, "node-", NameProblem::TrailingHyphen);
        bad(NameKind::Host, "no_de", NameProblem::BadByte { at: 2, byte: b'_' });
        bad(NameKind::Host, "localhost", NameProblem::Reserved);
        assert!(kind_check(NameKind::Host, &"a".repeat(63)).is_ok());
        bad(NameKind::Host, &"a".repeat(64), NameProblem::TooLong { len: 64, max: 63 });
        assert_eq!(kind_check(NameKind::Logfile, "log-000000001-node-1").as_deref(), Ok("log-000000001-node-1"));
        for name in [
            "log-00000001-a",
            "log-0000000001-a",
            "log-000000001-",
            "log-000000001-A",
            "log-000000001-self",
            "log-00000000x-a",
            "lag-000000001-a",
            "log-000000001_a",
        ] {
            bad(NameKind::Logfile, name, NameProblem::NotLogfileName);
        }
        let longest = format!("log-999999999-{}", "h".repeat(63));
        assert_eq!(longest.len(), MAX_LOGFILE_NAME_LEN);
        assert!(kind_check(NameKind::Logfile, &longest).is_ok());
        assert_eq!(
            ProtoError::BadName { kind: NameKind::Host, fault: NameProblem::BadByte { at: 3, byte: 0 } }.to_string(),
            "invalid host name: byte 0x00 is not allowed (offset 3)"
        );
    }

    /// Names on the wire are checked by the same rules when decoded, not only when encoded.
    #[test]
    fn received_names_are_checked() {
        let decode = |kind, payload: &[u8]| decode_message(&header_for(kind, payload), payload).map(|_| ());
        let name_field = |name: &[u8]| {
            let mut p = vec![name.len() as u8];
            p.extend_from_slice(name);
            p
        };
        assert_eq!(decode(MessageType::LogListRequest, &name_field(b"r0")), Ok(()));
        for (name, fault) in [
            (&b"r.0"[..], NameProblem::BadByte { at: 1, byte: b'.' }),
            (b"all", NameProblem::Reserved),
            (&[b'r'; 27], NameProblem::TooLong { len: 27, max: 26 }),
        ] {
            assert_eq!(
                decode(MessageType::LogListRequest, &name_field(name)),
                Err(ProtoError::BadName { kind: NameKind::Resource, fault })
            );
        }
        let mut fetch = name_field(b"r0");
        fetch.extend_from_slice(&name_field(b"log-000000001-none"));
        fetch.extend_from_slice(&[0; 8]);
        fetch.extend_from_slice(&1u32.to_le_bytes());
        assert_eq!(
            decode(MessageType::LogFetch, &fetch),
            Err(ProtoError::BadName { kind: NameKind::Logfile, fault: NameProblem::NotLogfileName })
        );
    }

    #[test]
    fn largest_messages_fit_their_limits_exactly() {
        let res = "r".repeat(MAX_RESOURCE_NAME_LEN);
        let file = format!("log-000000001-{}", "h".repeat(MAX_HOST_NAME_LEN));
        let data = vec![7u8; MAX_DATA];
        let names: Vec<LogEntry<'_>> =
            (0..MAX_LOG_ENTRIES).map(|_| LogEntry { name: &file, size: MAX_OFFSET }).collect();
        let digests = vec![1u8; MAX_CHECKSUM_BLOCKS as usize * DIGEST_LEN];
        let text = "e".repeat(MAX_ERROR_TEXT);
        let host = "h".repeat(MAX_HOST_NAME_LEN);
        let largest = [
            Message::Hello(Hello {
                min_version: 1,
                max_version: 9,
                cluster_id: [0; 16],
                nonce: [0; 32],
                host_name: &host,
            }),
            Message::AuthProof { mac: [0; 32] },
            Message::Error { code: ErrorCode::BUSY, message: &text },
            Message::Keepalive { stamp_nanos: 1 },
            Message::TreeRequest { since_nanos: 1 },
            Message::TreeData { as_of_nanos: 1, last: true, chunk: &data },
            Message::TreeAnnounce { chunk: &data[..MAX_ANNOUNCE] },
            Message::TreeRequestDigest { since_nanos: 1, digest: &data[..DIGEST_WIRE_LEN] },
            Message::LogListRequest { resource: &res },
            Message::LogList { resource: &res, entries: LogEntries::from_list(&names) },
            Message::LogFetch { resource: &res, file: &file, offset: 0, length: MAX_DATA as u32 },
            Message::LogData { resource: &res, file: &file, offset: 0, eof: true, data: &data },
            Message::BlockRead { resource: &res, sector: 0, count_sectors: MAX_SECTORS },
            Message::BlockData { sector: 0, logged: LogEnd { seq: u32::MAX, offset: u64::MAX }, data: &data },
            Message::ChecksumRequest {
                resource: &res,
                sector: 0,
                block_sectors: MAX_SECTORS,
                blocks: MAX_CHECKSUM_BLOCKS,
            },
            Message::Checksums {
                sector: 0,
                block_sectors: MAX_SECTORS,
                logged: LogEnd::default(),
                digests: Digests::new(&digests).unwrap(),
            },
        ];
        for (m, kind) in largest.iter().zip(MessageType::ALL) {
            assert_eq!(m.kind(), kind);
            assert_eq!(m.payload_len(), kind.max_payload_len(), "{kind}");
            assert!(kind.max_payload_len() <= MAX_PAYLOAD);
            let frame = encode(m, 1);
            assert_eq!(&decode_frame(&frame).unwrap().1, m);
        }
    }

    #[test]
    fn limits_are_enforced_both_ways() {
        let file = "log-000000001-a";
        let too_long = vec![0u8; MAX_DATA + 1];
        let cases: [(Message<'_>, &str); 10] = [
            (
                Message::LogFetch { resource: "r", file, offset: 0, length: 0 },
                "invalid log fetch length: must not be zero",
            ),
            (
                Message::LogFetch { resource: "r", file, offset: 0, length: MAX_DATA as u32 + 1 },
                "log fetch length is 1048577, the limit is 1048576",
            ),
            (
                Message::LogFetch { resource: "r", file, offset: MAX_OFFSET, length: 1 },
                "invalid log fetch range: ends beyond the largest possible offset",
            ),
            (
                Message::LogData { resource: "r", file, offset: 0, eof: false, data: &too_long },
                "log data length is 1048577, the limit is 1048576",
            ),
            (
                Message::BlockData { sector: 0, logged: LogEnd::default(), data: &[0; 100] },
                "invalid block data length: must be a multiple of 512",
            ),
            (
                Message::BlockData { sector: 0, logged: LogEnd::default(), data: &[] },
                "invalid block data length: must not be zero",
            ),
            (
                Message::BlockRead { resource: "r", sector: MAX_OFFSET / 512, count_sectors: 1 },
                "invalid block read range: ends beyond the largest possible offset",
            ),
            (
                Message::ChecksumRequest {
                    resource: "r",
                    sector: 0,
                    block_sectors: 8,
                    blocks: MAX_CHECKSUM_BLOCKS + 1,
                },
                "checksum blocks is 4097, the limit is 4096",
            ),
            (Message::Error { code: ErrorCode::BUSY, message: "a\nb" }, "error text is not printable UTF-8 text"),
            (
                Message::Hello(Hello {
                    min_version: 2,
                    max_version: 1,
                    cluster_id: [0; 16],
                    nonce: [0; 32],
                    host_name: "a",
                }),
                "invalid hello versions: need 1 <= min_version <= max_version",
            ),
        ];
        let mut buf = vec![0u8; 2 * MAX_DATA];
        for (m, text) in &cases {
            let e = encode_frame(m, 1, &mut buf).unwrap_err();
            assert_eq!(std::format!("{e}"), *text);
            assert_eq!(m.validate(), Err(e));
        }
        // The same limits on the receiving side: a count over the limit is refused before the
        // entries are read.
        let mut payload = vec![1u8, b'r'];
        payload.extend_from_slice(&(MAX_LOG_ENTRIES + 1).to_le_bytes());
        let header = header_for(MessageType::LogList, &payload);
        assert_eq!(
            decode_message(&header, &payload),
            Err(ProtoError::TooLarge { field: "log list entries", value: 4097, max: 4096 })
        );
        let payload = [0u8, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff];
        let header = header_for(MessageType::TreeData, &payload);
        assert_eq!(
            decode_message(&header, &payload),
            Err(ProtoError::TooLarge { field: "tree chunk length", value: u32::MAX as u64, max: MAX_DATA as u64 })
        );
    }

    #[test]
    fn flags_and_texts_are_strict() {
        let payload = [0u8, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0];
        let header = header_for(MessageType::TreeData, &payload);
        assert_eq!(
            decode_message(&header, &payload),
            Err(ProtoError::Invalid { field: "last flag", why: "must be 0 or 1" })
        );
        let payload = [5u8, 0, 2, 0, 0xc3, 0x28];
        let header = header_for(MessageType::Error, &payload);
        assert_eq!(decode_message(&header, &payload), Err(ProtoError::BadText { field: "error text" }));
        let payload = [5u8, 0, 0, 0, 9];
        let header = header_for(MessageType::Error, &payload);
        assert_eq!(decode_message(&header, &payload), Err(ProtoError::TrailingBytes { count: 1 }));
    }

    #[test]
    fn digests_and_entries_views() {
        assert!(Digests::new(&[0; 33]).is_none());
        let raw: Vec<u8> = (0..64).collect();
        let d = Digests::new(&raw).unwrap();
        assert_eq!(d.len(), 2);
        assert!(!d.is_empty());
        assert_eq!(d.iter().nth(1).unwrap()[0], 32);
        let list = [LogEntry { name: "log-000000001-a", size: 5 }];
        let entries = LogEntries::from_list(&list);
        assert_eq!(entries.len(), 1);
        assert!(LogEntries::from_list(&[]).is_empty());
        assert_eq!(std::format!("{entries:?}"), "[LogEntry { name: \"log-000000001-a\", size: 5 }]");
    }
}
