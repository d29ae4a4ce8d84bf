//! Encodings of tree entries: binary chunks for the exchange between hosts, and the symlink
//! targets that hold entries under /mars.
//!
//! A *chunk* is a header (magic, version, entry count, body length, CRC-32C) and entries packed
//! back to back. [`ChunkWriter`] fills a caller's buffer and says when an entry no longer fits,
//! so a large tree goes out as several chunks; [`decode_chunk`] checks the header and checksum,
//! then yields the entries one by one, checking every length before it is used.
//!
//! A *link target* is the text `VALUE|STAMP` or `|STAMP,deleted`, where `STAMP` is the
//! [`Stamp`] in its `Display` form. Byte-by-byte: docs/tree.md.

use core::fmt::{self, Write as _};
use core::iter::FusedIterator;

use super::bytes::{Reader, Short, Writer};
use super::crc32c::Crc32c;
use super::lamport::{HostId, Stamp};
use super::tree::{validate_key, validate_value, EntryRef, NameProblem, TreeError, MAX_KEY_LEN, MAX_VALUE_LEN};

/// First 8 bytes of every chunk.
pub const CHUNK_MAGIC: [u8; 8] = *b"MaRsTrE\x1a";
/// The chunk format version this code writes and reads.
pub const CHUNK_VERSION: u16 = 1;
/// Length of the chunk header.
pub const CHUNK_HEADER_LEN: usize = 24;
/// Largest chunk, header included.
pub const MAX_CHUNK_LEN: usize = 1 << 20;
/// Bytes of an encoded entry besides its key and value: two lengths, the stamp and the flags.
pub const ENTRY_OVERHEAD: usize = 2 + 2 + 8 + 8 + 1;
/// Largest encoded entry; a chunk buffer of `CHUNK_HEADER_LEN + MAX_ENTRY_LEN` bytes holds any entry.
pub const MAX_ENTRY_LEN: usize = ENTRY_OVERHEAD + MAX_KEY_LEN + MAX_VALUE_LEN;
/// Entry flag: the entry is a tombstone.
pub const FLAG_DELETED: u8 = 0x01;

/// Offset of the checksum in the header; the checksum covers the bytes before it and the body.
const CRC_OFFSET: usize = 20;

/// Encoded length of `entry` in a chunk.
pub fn encoded_len(entry: &EntryRef<'_>) -> usize {
    ENTRY_OVERHEAD.saturating_add(entry.key.len()).saturating_add(entry.value.len())
}

/// Which stored entries a sender puts in a delta.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryFilter {
    /// Every entry: the whole tree.
    All,
    /// Only entries the sender stored after this stamp of its own clock, i.e. those it learned
    /// after the receiver's previous pull (docs/tree.md, "Delta exchange").
    LearnedAfter(Stamp),
}

impl EntryFilter {
    /// Whether an entry the sender stored at its clock's `learned` stamp belongs in the delta.
    pub fn selects(&self, learned: Stamp) -> bool {
        match *self {
            EntryFilter::All => true,
            EntryFilter::LearnedAfter(since) => learned > since,
        }
    }
}

/// A stored entry with the stamp of the storing host's clock when it stored it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LearnedEntry<'a> {
    /// The entry.
    pub entry: EntryRef<'a>,
    /// The storing host's own clock when it stored the entry (a fresh tick, not the entry's stamp).
    pub learned: Stamp,
}

/// What [`encode_chunk`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodedChunk {
    /// Bytes of the chunk at the start of the output buffer.
    pub len: usize,
    /// Input entries dealt with (encoded or left out by the filter); the next chunk starts with
    /// the entry at this index.
    pub consumed: usize,
    /// Entries in the chunk.
    pub entries: u32,
}

/// How far a [`ChunkWriter`] got: bytes written (header included) and entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkState {
    /// Bytes of the chunk so far, its header included.
    pub len: usize,
    /// Entries appended so far.
    pub entries: u32,
}

/// Builds one chunk in a caller's buffer, entry by entry.
pub struct ChunkWriter<'b> {
    w: Writer<'b>,
    /// Usable bytes: the buffer's length, at most [`MAX_CHUNK_LEN`].
    capacity: usize,
    count: u32,
}

/// Maps an output shortfall to an error.
fn short_output(s: Short) -> TreeError {
    TreeError::BufferTooSmall { needed: s.needed }
}

impl<'b> ChunkWriter<'b> {
    /// Starts a chunk at the beginning of `out`, which must hold at least the header.
    pub fn new(out: &'b mut [u8]) -> Result<ChunkWriter<'b>, TreeError> {
        let capacity = out.len().min(MAX_CHUNK_LEN);
        if capacity < CHUNK_HEADER_LEN {
            return Err(TreeError::BufferTooSmall { needed: CHUNK_HEADER_LEN });
        }
        let mut w = Writer::new(out);
        w.zeros(CHUNK_HEADER_LEN).map_err(short_output)?;
        Ok(ChunkWriter { w, capacity, count: 0 })
    }

    /// Goes on with a chunk an earlier writer started in `out` and left at `state`, so that a
    /// chunk can be filled across calls that each hold the buffer only briefly.
    pub fn resume(out: &'b mut [u8], state: ChunkState) -> Result<ChunkWriter<'b>, TreeError> {
        let capacity = out.len().min(MAX_CHUNK_LEN);
        if state.len < CHUNK_HEADER_LEN || state.len > capacity {
            return Err(TreeError::BufferTooSmall { needed: state.len.max(CHUNK_HEADER_LEN) });
        }
        Ok(ChunkWriter { w: Writer::resume(out, state.len), capacity, count: state.entries })
    }

    /// Where the chunk stands, for [`ChunkWriter::resume`].
    pub fn state(&self) -> ChunkState {
        ChunkState { len: self.w.position(), entries: self.count }
    }

    /// Appends `entry` if it fits: `Ok(true)` if appended, `Ok(false)` if the chunk is full
    /// (nothing written; finish it and start the next), an error if the entry is invalid.
    pub fn push(&mut self, entry: &EntryRef<'_>) -> Result<bool, TreeError> {
        entry.validate()?;
        let len = encoded_len(entry);
        if self.capacity.saturating_sub(self.w.position()) < len || self.count == u32::MAX {
            return Ok(false);
        }
        // The entry is valid, so both lengths are at most MAX_VALUE_LEN and fit in a u16.
        let key_len = u16::try_from(entry.key.len())
            .map_err(|_| TreeError::BadKey(NameProblem::TooLong { len: entry.key.len(), max: MAX_KEY_LEN }))?;
        let value_len =
            u16::try_from(entry.value.len()).map_err(|_| TreeError::ValueTooLong { len: entry.value.len() })?;
        let w = &mut self.w;
        w.u16(key_len)
            .and_then(|()| w.bytes(entry.key.as_bytes()))
            .and_then(|()| w.u16(value_len))
            .and_then(|()| w.bytes(entry.value.as_bytes()))
            .and_then(|()| w.u64(entry.stamp.nanos))
            .and_then(|()| w.u64(entry.stamp.host.0))
            .and_then(|()| w.u8(if entry.deleted { FLAG_DELETED } else { 0 }))
            .map_err(short_output)?;
        self.count = self.count.saturating_add(1);
        Ok(true)
    }

    /// Entries appended so far.
    pub fn entries(&self) -> u32 {
        self.count
    }

    /// Completes the header (count, length, checksum); returns the chunk's length in bytes.
    pub fn finish(mut self) -> usize {
        let total = self.w.position();
        let body_len = u32::try_from(total.saturating_sub(CHUNK_HEADER_LEN)).unwrap_or(u32::MAX);
        let mut head = [0u8; CHUNK_HEADER_LEN];
        let mut hw = Writer::new(&mut head);
        // 8 + 2 + 2 + 4 + 4 = CRC_OFFSET bytes into a CHUNK_HEADER_LEN buffer: cannot fail.
        let _ = hw
            .bytes(&CHUNK_MAGIC)
            .and_then(|()| hw.u16(CHUNK_VERSION))
            .and_then(|()| hw.u16(CHUNK_HEADER_LEN as u16))
            .and_then(|()| hw.u32(self.count))
            .and_then(|()| hw.u32(body_len));
        let written = self.w.written_mut();
        let mut crc = Crc32c::new();
        crc.update(head.get(..CRC_OFFSET).unwrap_or(&[]));
        crc.update(written.get(CHUNK_HEADER_LEN..).unwrap_or(&[]));
        if let Some(slot) = head.get_mut(CRC_OFFSET..) {
            slot.copy_from_slice(&crc.finish().to_le_bytes());
        }
        // `new` reserved the header, so `written` is at least CHUNK_HEADER_LEN long.
        if let Some(slot) = written.get_mut(..CHUNK_HEADER_LEN) {
            slot.copy_from_slice(&head);
        }
        total
    }
}

/// Encodes the entries of `entries` that `filter` selects into one chunk in `out`.
///
/// Stops at the first selected entry that does not fit; call again with
/// `&entries[result.consumed..]` until everything is consumed. Fails if `out` cannot hold
/// even that one entry, or if an entry is invalid.
pub fn encode_chunk(
    entries: &[LearnedEntry<'_>],
    filter: EntryFilter,
    out: &mut [u8],
) -> Result<EncodedChunk, TreeError> {
    let mut chunk = ChunkWriter::new(out)?;
    let mut consumed = 0usize;
    for item in entries {
        if filter.selects(item.learned) && !chunk.push(&item.entry)? {
            if chunk.entries() == 0 {
                let needed = CHUNK_HEADER_LEN.saturating_add(encoded_len(&item.entry));
                return Err(TreeError::BufferTooSmall { needed });
            }
            break;
        }
        consumed = consumed.saturating_add(1);
    }
    let entries = chunk.entries();
    Ok(EncodedChunk { len: chunk.finish(), consumed, entries })
}

/// Runs a read on `r`, reporting a shortfall as truncation at the read's offset in the chunk.
fn take<'a, T>(
    r: &mut Reader<'a>,
    base: usize,
    read: impl FnOnce(&mut Reader<'a>) -> Result<T, Short>,
) -> Result<T, TreeError> {
    let offset = base.saturating_add(r.position());
    read(r).map_err(|s| TreeError::Truncated { offset, needed: s.needed, available: s.available })
}

/// The header fields that matter after it has been checked.
struct ChunkHeader {
    count: u32,
    body_len: usize,
    crc: u32,
}

/// Reads and checks a chunk header at the start of `bytes`.
fn read_header(bytes: &[u8]) -> Result<ChunkHeader, TreeError> {
    let mut r = Reader::new(bytes);
    if take(&mut r, 0, Reader::array::<8>)? != CHUNK_MAGIC {
        return Err(TreeError::BadMagic);
    }
    let version = take(&mut r, 0, Reader::u16)?;
    if version != CHUNK_VERSION {
        return Err(TreeError::BadVersion { found: version });
    }
    let header_len = take(&mut r, 0, Reader::u16)?;
    if usize::from(header_len) != CHUNK_HEADER_LEN {
        return Err(TreeError::BadHeaderLength { found: header_len });
    }
    let count = take(&mut r, 0, Reader::u32)?;
    let body_len = take(&mut r, 0, Reader::u32)?;
    let crc = take(&mut r, 0, Reader::u32)?;
    let body_len_usize = usize::try_from(body_len).unwrap_or(usize::MAX);
    if body_len_usize > MAX_CHUNK_LEN - CHUNK_HEADER_LEN {
        return Err(TreeError::ChunkTooLarge { len: body_len });
    }
    Ok(ChunkHeader { count, body_len: body_len_usize, crc })
}

/// Length of the whole chunk whose header starts `header`, for reading chunks from a stream.
pub fn chunk_len(header: &[u8]) -> Result<usize, TreeError> {
    let h = read_header(header)?;
    Ok(CHUNK_HEADER_LEN.saturating_add(h.body_len))
}

/// Checks the chunk that is exactly `bytes` (header, length, checksum) and returns its entries.
///
/// The entries are checked one by one as the iterator yields them; it stops after the first
/// error. This is the entry point for fuzzing.
pub fn decode_chunk(bytes: &[u8]) -> Result<ChunkEntries<'_>, TreeError> {
    let h = read_header(bytes)?;
    let after_header = bytes.get(CHUNK_HEADER_LEN..).unwrap_or(&[]);
    let Some(body) = after_header.get(..h.body_len) else {
        return Err(TreeError::Truncated {
            offset: CHUNK_HEADER_LEN,
            needed: h.body_len,
            available: after_header.len(),
        });
    };
    if after_header.len() > h.body_len {
        return Err(TreeError::TrailingBytes { offset: CHUNK_HEADER_LEN.saturating_add(h.body_len) });
    }
    let mut crc = Crc32c::new();
    crc.update(bytes.get(..CRC_OFFSET).unwrap_or(&[]));
    crc.update(body);
    let computed = crc.finish();
    if computed != h.crc {
        return Err(TreeError::ChecksumMismatch { stored: h.crc, computed });
    }
    Ok(ChunkEntries {
        body: Reader::new(body),
        declared: h.count,
        found: 0,
        entry_offset: CHUNK_HEADER_LEN,
        done: false,
    })
}

/// The entries of a chunk whose header and checksum are good; see [`decode_chunk`].
pub struct ChunkEntries<'a> {
    body: Reader<'a>,
    declared: u32,
    found: u32,
    /// Offset in the chunk of the entry last yielded or rejected.
    entry_offset: usize,
    done: bool,
}

impl ChunkEntries<'_> {
    /// Entries the chunk header declares.
    pub fn declared_entries(&self) -> u32 {
        self.declared
    }

    /// Offset in the chunk of the entry last yielded or rejected (to report where an error is).
    pub fn offset(&self) -> usize {
        self.entry_offset
    }
}

impl<'a> Iterator for ChunkEntries<'a> {
    type Item = Result<EntryRef<'a>, TreeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        self.entry_offset = CHUNK_HEADER_LEN.saturating_add(self.body.position());
        if self.found == self.declared {
            self.done = true;
            if self.body.remaining() > 0 {
                return Some(Err(TreeError::TrailingBytes { offset: self.entry_offset }));
            }
            return None;
        }
        if self.body.remaining() == 0 {
            self.done = true;
            return Some(Err(TreeError::MissingEntries { declared: self.declared, found: self.found }));
        }
        match read_entry(&mut self.body, CHUNK_HEADER_LEN) {
            Ok(entry) => {
                self.found = self.found.saturating_add(1);
                Some(Ok(entry))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl FusedIterator for ChunkEntries<'_> {}

/// Reads one entry from `r`, whose position 0 is at offset `base` of the chunk.
fn read_entry<'a>(r: &mut Reader<'a>, base: usize) -> Result<EntryRef<'a>, TreeError> {
    let key_len = usize::from(take(r, base, Reader::u16)?);
    if key_len == 0 {
        return Err(TreeError::BadKey(NameProblem::Empty));
    }
    if key_len > MAX_KEY_LEN {
        return Err(TreeError::BadKey(NameProblem::TooLong { len: key_len, max: MAX_KEY_LEN }));
    }
    let key = validate_key(take(r, base, |r| r.bytes(key_len))?)?;
    let value_len = usize::from(take(r, base, Reader::u16)?);
    if value_len > MAX_VALUE_LEN {
        return Err(TreeError::ValueTooLong { len: value_len });
    }
    let value = validate_value(take(r, base, |r| r.bytes(value_len))?)?;
    let nanos = take(r, base, Reader::u64)?;
    let host = take(r, base, Reader::u64)?;
    let flags = take(r, base, Reader::u8)?;
    if flags & !FLAG_DELETED != 0 {
        return Err(TreeError::BadFlags { flags });
    }
    let deleted = flags & FLAG_DELETED != 0;
    if deleted && !value.is_empty() {
        return Err(TreeError::TombstoneWithValue);
    }
    Ok(EntryRef { key, value, stamp: Stamp::new(nanos, HostId(host)), deleted })
}

/// Separates the value from the stamp in a link target.
pub const LINK_SEPARATOR: char = '|';
/// Ends the link target of a tombstone.
pub const DELETED_SUFFIX: &str = ",deleted";
/// Longest stamp text: 11 digits of seconds, `.`, 9 of nanoseconds, `@`, 16 hex digits.
const MAX_STAMP_TEXT_LEN: usize = 11 + 1 + 9 + 1 + 16;
/// Longest link target.
pub const MAX_LINK_TARGET_LEN: usize = MAX_VALUE_LEN + 1 + MAX_STAMP_TEXT_LEN + DELETED_SUFFIX.len();

/// Number of decimal digits of `n`.
fn decimal_len(n: u64) -> usize {
    let mut len = 1;
    let mut rest = n / 10;
    while rest > 0 {
        len += 1;
        rest /= 10;
    }
    len
}

/// Length of the link target of `entry`.
pub fn link_target_len(entry: &EntryRef<'_>) -> usize {
    let stamp_len = decimal_len(entry.stamp.nanos / 1_000_000_000) + 1 + 9 + 1 + 16;
    let suffix = if entry.deleted { DELETED_SUFFIX.len() } else { 0 };
    entry.value.len().saturating_add(1 + stamp_len + suffix)
}

/// Text output into a [`Writer`].
struct TextOut<'b>(Writer<'b>);

impl fmt::Write for TextOut<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.bytes(s.as_bytes()).map_err(|_| fmt::Error)
    }
}

/// Writes the /mars link target of `entry` into `out`; returns its length.
///
/// `VALUE|SECONDS.NANOSECONDS@HOSTID` for a live entry, `|SECONDS.NANOSECONDS@HOSTID,deleted`
/// for a tombstone (the stamp as [`Stamp`] displays it).
pub fn format_link_target(entry: &EntryRef<'_>, out: &mut [u8]) -> Result<usize, TreeError> {
    entry.validate()?;
    let needed = link_target_len(entry);
    let mut text = TextOut(Writer::new(out));
    write!(text, "{}{}{}", entry.value, LINK_SEPARATOR, entry.stamp)
        .and_then(|()| if entry.deleted { text.write_str(DELETED_SUFFIX) } else { Ok(()) })
        .map_err(|_| TreeError::BufferTooSmall { needed })?;
    Ok(text.0.position())
}

/// A [`TreeError::BadLinkTarget`] saying `why`.
fn bad_target(why: &'static str) -> TreeError {
    TreeError::BadLinkTarget { why }
}

/// Whether `text` is a non-empty run of ASCII digits.
fn all_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// Parses a stamp written as `Stamp`'s `Display` does, accepting only that exact form.
fn parse_stamp(text: &str) -> Result<Stamp, TreeError> {
    let (time, host) = text.split_once('@').ok_or(bad_target("no '@' between the time and the host id"))?;
    let (secs, nanos) = time.split_once('.').ok_or(bad_target("no '.' between seconds and nanoseconds"))?;
    if !all_digits(secs) || secs.len() > 11 || (secs.len() > 1 && secs.starts_with('0')) {
        return Err(bad_target("the seconds are not a decimal number without leading zeros"));
    }
    if nanos.len() != 9 || !all_digits(nanos) {
        return Err(bad_target("the nanoseconds are not exactly 9 digits"));
    }
    if host.len() != 16 || !host.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(bad_target("the host id is not exactly 16 lowercase hex digits"));
    }
    let out_of_range = || bad_target("the time is beyond the year 2554");
    let secs = secs.parse::<u64>().map_err(|_| out_of_range())?;
    let nanos = nanos.parse::<u64>().map_err(|_| out_of_range())?;
    let host = u64::from_str_radix(host, 16).map_err(|_| bad_target("the host id is not hex"))?;
    let total = secs.checked_mul(1_000_000_000).and_then(|n| n.checked_add(nanos)).ok_or_else(out_of_range)?;
    Ok(Stamp::new(total, HostId(host)))
}

/// Parses the /mars link target of the entry for `key` (see [`format_link_target`]).
///
/// The value is everything before the last `|`, so values may contain `|` themselves.
pub fn parse_link_target<'a>(key: &'a str, target: &'a [u8]) -> Result<EntryRef<'a>, TreeError> {
    let key = validate_key(key.as_bytes())?;
    if target.len() > MAX_LINK_TARGET_LEN {
        return Err(bad_target("longer than any entry's"));
    }
    let text = core::str::from_utf8(target).map_err(|e| TreeError::ValueNotUtf8 { at: e.valid_up_to() })?;
    let (value, meta) = text.rsplit_once(LINK_SEPARATOR).ok_or(bad_target("no '|' between the value and the stamp"))?;
    let (stamp, deleted) = match meta.strip_suffix(DELETED_SUFFIX) {
        Some(stamp) => (stamp, true),
        None => (meta, false),
    };
    let stamp = parse_stamp(stamp)?;
    let value = validate_value(value.as_bytes())?;
    if deleted && !value.is_empty() {
        return Err(TreeError::TombstoneWithValue);
    }
    Ok(EntryRef { key, value, stamp, deleted })
}

#[cfg(test)]
mod tests {
    use super::super::crc32c::crc32c;
    use super::super::lamport::LamportClock;
    use super::super::tree::{gc_horizon, may_collect, supersedes};
    use super::*;

    #[test]
    fn a_resumed_writer_builds_the_same_chunk() {
        let entries = [
            EntryRef::live("uuid", "c1", Stamp::new(5, HostId(1))).unwrap(),
            EntryRef::tombstone("ips/ip-a", Stamp::new(6, HostId(2))).unwrap(),
            EntryRef::live("ips/ip-b", "10.0.0.2", Stamp::new(7, HostId(3))).unwrap(),
        ];
        let mut once = [0u8; 512];
        let mut w = ChunkWriter::new(&mut once).unwrap();
        entries.iter().for_each(|e| assert!(w.push(e).unwrap()));
        let len = w.finish();
        let mut parts = [0u8; 512];
        let mut state = ChunkWriter::new(&mut parts).unwrap().state();
        for e in &entries {
            let mut w = ChunkWriter::resume(&mut parts, state).unwrap();
            assert!(w.push(e).unwrap());
            state = w.state();
        }
        assert_eq!(ChunkWriter::resume(&mut parts, state).unwrap().finish(), len);
        assert_eq!(once[..len], parts[..len]);
        assert!(ChunkWriter::resume(&mut parts, ChunkState { len: 3, entries: 0 }).is_err());
    }
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::string::{String, ToString};
    use std::vec::Vec;

    #[derive(Clone, Debug, PartialEq, Eq)]
    struct Owned {
        key: String,
        value: String,
        stamp: Stamp,
        deleted: bool,
    }

    impl Owned {
        fn of(e: &EntryRef<'_>) -> Owned {
            Owned { key: e.key.to_string(), value: e.value.to_string(), stamp: e.stamp, deleted: e.deleted }
        }

        fn view(&self) -> EntryRef<'_> {
            EntryRef { key: &self.key, value: &self.value, stamp: self.stamp, deleted: self.deleted }
        }
    }

    fn arb_owned() -> impl Strategy<Value = Owned> {
        (
            "[a-z0-9][a-z0-9._-]{0,12}(/[a-z0-9][a-z0-9._-]{0,12}){0,3}",
            "[ -~\u{a0}-\u{ff}\u{2713}]{0,40}",
            any::<u64>(),
            any::<u64>(),
            any::<bool>(),
        )
            .prop_map(|(key, value, nanos, host, deleted)| Owned {
                key,
                value: if deleted { String::new() } else { value },
                stamp: Stamp::new(nanos, HostId(host)),
                deleted,
            })
    }

    /// Encodes `entries` (all learned at ZERO) with `filter` into chunks of at most `buf_len` bytes.
    fn encode_all(entries: &[LearnedEntry<'_>], filter: EntryFilter, buf_len: usize) -> Vec<Vec<u8>> {
        let mut chunks = Vec::new();
        let mut pos = 0;
        loop {
            let mut buf = std::vec![0u8; buf_len];
            let done = encode_chunk(&entries[pos..], filter, &mut buf).unwrap();
            buf.truncate(done.len);
            chunks.push(buf);
            pos += done.consumed;
            if pos == entries.len() {
                return chunks;
            }
        }
    }

    fn learned_at_zero(entries: &[Owned]) -> Vec<LearnedEntry<'_>> {
        entries.iter().map(|o| LearnedEntry { entry: o.view(), learned: Stamp::ZERO }).collect()
    }

    fn decode_all(chunk: &[u8]) -> Result<Vec<Owned>, TreeError> {
        decode_chunk(chunk)?.map(|e| e.map(|e| Owned::of(&e))).collect()
    }

    /// A chunk with the given count and body and a correct header and checksum.
    fn raw_chunk(count: u32, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&CHUNK_MAGIC);
        out.extend_from_slice(&CHUNK_VERSION.to_le_bytes());
        out.extend_from_slice(&(CHUNK_HEADER_LEN as u16).to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        let mut crc_input = out.clone();
        crc_input.extend_from_slice(body);
        out.extend_from_slice(&crc32c(&crc_input).to_le_bytes());
        out.extend_from_slice(body);
        out
    }

    /// The body bytes of one entry, fields given freely.
    fn raw_entry(key: &[u8], value: &[u8], nanos: u64, host: u64, flags: u8) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(key.len() as u16).to_le_bytes());
        out.extend_from_slice(key);
        out.extend_from_slice(&(value.len() as u16).to_le_bytes());
        out.extend_from_slice(value);
        out.extend_from_slice(&nanos.to_le_bytes());
        out.extend_from_slice(&host.to_le_bytes());
        out.push(flags);
        out
    }

    #[test]
    fn chunk_bytes_are_exactly_as_documented() {
        let e = EntryRef::live("uuid", "c1", Stamp::new(1_700_000_000_000_000_042, HostId(0xab))).unwrap();
        let mut buf = [0u8; 64];
        let mut w = ChunkWriter::new(&mut buf).unwrap();
        assert_eq!(w.push(&e), Ok(true));
        let len = w.finish();
        assert_eq!(len, 24 + 27);
        assert_eq!(encoded_len(&e), 27);
        #[rustfmt::skip]
        let expected: [u8; 51] = [
            b'M', b'a', b'R', b's', b'T', b'r', b'E', 0x1a, // magic
            0x01, 0x00, // version 1
            0x18, 0x00, // header length 24
            0x01, 0x00, 0x00, 0x00, // 1 entry
            0x1b, 0x00, 0x00, 0x00, // body of 27 bytes
            0x4f, 0xec, 0x55, 0xec, // CRC-32C of bytes 0..20 and the body
            0x04, 0x00, b'u', b'u', b'i', b'd', // key
            0x02, 0x00, b'c', b'1', // value
            0x2a, 0x00, 0x2a, 0x36, 0xfe, 0x9c, 0x97, 0x17, // stamp nanos 1700000000000000042
            0xab, 0, 0, 0, 0, 0, 0, 0, // stamp host
            0x00, // flags: live
        ];
        assert_eq!(buf[..len], expected);
        assert_eq!(chunk_len(&buf[..24]), Ok(51));
        assert_eq!(decode_all(&buf[..len]), Ok(std::vec![Owned::of(&e)]));
    }

    #[test]
    fn empty_chunk_is_just_a_header() {
        let mut buf = [0u8; CHUNK_HEADER_LEN];
        let done = encode_chunk(&[], EntryFilter::All, &mut buf).unwrap();
        assert_eq!(done, EncodedChunk { len: CHUNK_HEADER_LEN, consumed: 0, entries: 0 });
        assert_eq!(decode_all(&buf), Ok(std::vec![]));
        assert_eq!(ChunkWriter::new(&mut [0u8; 23]).err(), Some(TreeError::BufferTooSmall { needed: 24 }));
    }

    #[test]
    fn an_entry_too_big_for_an_empty_chunk_is_an_error_not_a_loop() {
        let value = "v".repeat(100);
        let e = EntryRef::live("k", &value, Stamp::ZERO).unwrap();
        let mut buf = [0u8; 64];
        let r = encode_chunk(&[LearnedEntry { entry: e, learned: Stamp::ZERO }], EntryFilter::All, &mut buf);
        assert_eq!(r, Err(TreeError::BufferTooSmall { needed: 24 + 21 + 1 + 100 }));
        let bad = EntryRef { key: "K", ..e };
        let mut big = [0u8; 4096];
        let r = encode_chunk(&[LearnedEntry { entry: bad, learned: Stamp::ZERO }], EntryFilter::All, &mut big);
        assert_eq!(r, Err(TreeError::BadKey(NameProblem::BadFirstByte { at: 0, byte: b'K' })));
        let most = "v".repeat(MAX_VALUE_LEN);
        let key = "k".repeat(MAX_KEY_LEN);
        let largest = EntryRef::live(&key, &most, Stamp::ZERO).unwrap();
        let mut exact = [0u8; CHUNK_HEADER_LEN + MAX_ENTRY_LEN];
        assert_eq!(ChunkWriter::new(&mut exact).unwrap().push(&largest), Ok(true));
    }

    #[test]
    fn header_problems_are_named() {
        let good = raw_chunk(1, &raw_entry(b"uuid", b"c1", 1, 2, 0));
        let with = |at: usize, bytes: &[u8]| {
            let mut c = good.clone();
            c[at..at + bytes.len()].copy_from_slice(bytes);
            c
        };
        assert_eq!(decode_all(&good).map(|v| v.len()), Ok(1));
        let cases: Vec<(Vec<u8>, TreeError)> = std::vec![
            (std::vec![], TreeError::Truncated { offset: 0, needed: 8, available: 0 }),
            (good[..7].to_vec(), TreeError::Truncated { offset: 0, needed: 8, available: 7 }),
            (good[..22].to_vec(), TreeError::Truncated { offset: 20, needed: 4, available: 2 }),
            (with(0, b"MaRsReC"), TreeError::BadMagic),
            (with(8, &[2, 0]), TreeError::BadVersion { found: 2 }),
            (with(10, &[32, 0]), TreeError::BadHeaderLength { found: 32 }),
            (with(16, &[0, 0, 0x10, 0]), TreeError::ChunkTooLarge { len: 0x10_0000 }),
            (good[..40].to_vec(), TreeError::Truncated { offset: 24, needed: 27, available: 16 }),
            ([&good[..], &[0]].concat(), TreeError::TrailingBytes { offset: 51 }),
        ];
        for (bytes, error) in cases {
            assert_eq!(decode_chunk(&bytes).err(), Some(error), "{error}");
        }
        let flipped = with(12, &[3]);
        assert!(matches!(decode_chunk(&flipped).err(), Some(TreeError::ChecksumMismatch { .. })));
        assert_eq!(chunk_len(&good[..20]), Err(TreeError::Truncated { offset: 20, needed: 4, available: 0 }));
    }

    #[test]
    fn entry_problems_are_named() {
        let e = |key: &[u8], value: &[u8], flags: u8| raw_entry(key, value, 5, 6, flags);
        let cases: Vec<(u32, Vec<u8>, TreeError)> = std::vec![
            (1, e(b"", b"", 0), TreeError::BadKey(NameProblem::Empty)),
            (1, e(&[b'k'; 201], b"", 0), TreeError::BadKey(NameProblem::TooLong { len: 201, max: 200 })),
            (1, e(b"Uuid", b"", 0), TreeError::BadKey(NameProblem::BadFirstByte { at: 0, byte: b'U' })),
            (1, e(b"uuid", &[b'v'; 1025], 0), TreeError::ValueTooLong { len: 1025 }),
            (1, e(b"uuid", b"a\nb", 0), TreeError::ValueControlChar { at: 1 }),
            (1, e(b"uuid", b"\xff", 0), TreeError::ValueNotUtf8 { at: 0 }),
            (1, e(b"uuid", b"", 2), TreeError::BadFlags { flags: 2 }),
            (1, e(b"uuid", b"x", FLAG_DELETED), TreeError::TombstoneWithValue),
            (2, e(b"uuid", b"", 0), TreeError::MissingEntries { declared: 2, found: 1 }),
            (0, e(b"uuid", b"", 0), TreeError::TrailingBytes { offset: 24 }),
            (1, e(b"uuid", b"", 0)[..20].to_vec(), TreeError::Truncated { offset: 40, needed: 8, available: 4 }),
            (1, std::vec![9, 0, b'u'], TreeError::Truncated { offset: 26, needed: 9, available: 1 }),
            (1, std::vec![9], TreeError::Truncated { offset: 24, needed: 2, available: 1 }),
        ];
        for (count, body, error) in cases {
            let chunk = raw_chunk(count, &body);
            let mut it = decode_chunk(&chunk).unwrap();
            let last = it.by_ref().find_map(Result::err);
            assert_eq!(last, Some(error), "{error}");
            assert_eq!(it.next(), None, "stops after the first error");
        }
        // The iterator tells where the rejected entry starts.
        let body = [e(b"uuid", b"", 0), e(b"x", b"", 9)].concat();
        let chunk = raw_chunk(2, &body);
        let mut it = decode_chunk(&chunk).unwrap();
        assert!(it.next().unwrap().is_ok());
        assert_eq!(it.next(), Some(Err(TreeError::BadFlags { flags: 9 })));
        assert_eq!((it.offset(), it.declared_entries()), (24 + 25, 2));
    }

    #[test]
    fn deltas_select_by_when_the_sender_learned_an_entry() {
        let (a, s) = (HostId(1), HostId(2));
        // S wrote its own entry at 100 and answered a pull from R with snapshot (101, S). Then
        // S received from A (whose clock is behind) an entry stamped 50 and stored it at (102, S).
        let own = EntryRef::live("uuid", "c1", Stamp::new(100, s)).unwrap();
        let relayed = EntryRef::live("ips/ip-a", "10.0.0.1", Stamp::new(50, a)).unwrap();
        let stored = [
            LearnedEntry { entry: own, learned: Stamp::new(100, s) },
            LearnedEntry { entry: relayed, learned: Stamp::new(102, s) },
        ];
        let since = EntryFilter::LearnedAfter(Stamp::new(101, s));
        let mut buf = [0u8; 256];
        let done = encode_chunk(&stored, since, &mut buf).unwrap();
        assert_eq!((done.consumed, done.entries), (2, 1));
        assert_eq!(decode_all(&buf[..done.len]), Ok(std::vec![Owned::of(&relayed)]));
        // Selecting by the entries' own stamps would never send the relayed entry to R.
        let by_entry_stamp = stored.map(|l| LearnedEntry { learned: l.entry.stamp, ..l });
        let done = encode_chunk(&by_entry_stamp, since, &mut buf).unwrap();
        assert_eq!(done.entries, 0);
    }

    #[test]
    fn link_targets_read_well() {
        let s = Stamp::new(1_700_000_000_123_456_789, HostId(0xab));
        let cases = [
            (EntryRef::live("resource-r0/primary", "node1", s), "node1|1700000000.123456789@00000000000000ab"),
            (EntryRef::live("k", "a|b, c", s), "a|b, c|1700000000.123456789@00000000000000ab"),
            (EntryRef::live("k", "x,deleted", s), "x,deleted|1700000000.123456789@00000000000000ab"),
            (EntryRef::live("k", "", Stamp::ZERO), "|0.000000000@0000000000000000"),
            (EntryRef::tombstone("k", s), "|1700000000.123456789@00000000000000ab,deleted"),
            (
                EntryRef::live("k", "/dev/vg/r0", Stamp::new(u64::MAX, HostId(u64::MAX))),
                "/dev/vg/r0|18446744073.709551615@ffffffffffffffff",
            ),
        ];
        for (entry, text) in cases {
            let entry = entry.unwrap();
            let mut buf = [0u8; 128];
            let len = format_link_target(&entry, &mut buf).unwrap();
            assert_eq!(core::str::from_utf8(&buf[..len]), Ok(text));
            assert_eq!(link_target_len(&entry), len);
            assert_eq!(parse_link_target(entry.key, text.as_bytes()), Ok(entry));
        }
        let entry = EntryRef::live("k", "node1", s).unwrap();
        assert_eq!(format_link_target(&entry, &mut [0u8; 20]), Err(TreeError::BufferTooSmall { needed: 43 }));
    }

    #[test]
    fn bad_link_targets_are_rejected() {
        let host = "@00000000000000ab";
        let t = |text: &str| parse_link_target("k", text.as_bytes()).err();
        let why = |why| Some(TreeError::BadLinkTarget { why });
        assert_eq!(t(""), why("no '|' between the value and the stamp"));
        assert_eq!(t("node1"), why("no '|' between the value and the stamp"));
        assert_eq!(t("v|1.000000000"), why("no '@' between the time and the host id"));
        assert_eq!(t(&std::format!("v|1{host}")), why("no '.' between seconds and nanoseconds"));
        let secs = why("the seconds are not a decimal number without leading zeros");
        assert_eq!(t(&std::format!("v|01.000000000{host}")), secs);
        assert_eq!(t(&std::format!("v|.000000000{host}")), secs);
        assert_eq!(t(&std::format!("v|+1.000000000{host}")), secs);
        assert_eq!(t(&std::format!("v|123456789012.000000000{host}")), secs);
        let nanos = why("the nanoseconds are not exactly 9 digits");
        assert_eq!(t(&std::format!("v|1.5{host}")), nanos);
        assert_eq!(t(&std::format!("v|1.0000000000{host}")), nanos);
        let hex = why("the host id is not exactly 16 lowercase hex digits");
        assert_eq!(t("v|1.000000000@00000000000000AB"), hex);
        assert_eq!(t("v|1.000000000@ab"), hex);
        assert_eq!(t(&std::format!("v|1.000000000{host},gone")), hex);
        assert_eq!(t(&std::format!("v|18446744074.000000000{host}")), why("the time is beyond the year 2554"));
        assert_eq!(t(&std::format!("v|1.000000000{host},deleted")), Some(TreeError::TombstoneWithValue));
        assert_eq!(t(&std::format!("a\nb|1.000000000{host}")), Some(TreeError::ValueControlChar { at: 1 }));
        assert_eq!(
            parse_link_target("k", b"\xff|1.000000000@00000000000000ab").err(),
            Some(TreeError::ValueNotUtf8 { at: 0 })
        );
        assert_eq!(
            parse_link_target("K", b"v|1.000000000@00000000000000ab").err(),
            Some(TreeError::BadKey(NameProblem::BadFirstByte { at: 0, byte: b'K' }))
        );
        let long = std::format!("{}|1.000000000{host}", "v".repeat(MAX_LINK_TARGET_LEN));
        assert_eq!(t(&long), why("longer than any entry's"));
    }

    proptest! {
        #[test]
        fn chunks_round_trip(entries in proptest::collection::vec(arb_owned(), 0..30)) {
            let list = learned_at_zero(&entries);
            let chunks = encode_all(&list, EntryFilter::All, MAX_CHUNK_LEN);
            prop_assert_eq!(chunks.len(), 1);
            prop_assert_eq!(decode_all(&chunks[0]), Ok(entries));
        }

        /// A tree too big for one buffer goes out as several chunks that together hold it all.
        #[test]
        fn small_buffers_split_a_tree_into_chunks(
            entries in proptest::collection::vec(arb_owned(), 0..60),
            buf_len in (CHUNK_HEADER_LEN + MAX_ENTRY_LEN)..3000,
        ) {
            let list = learned_at_zero(&entries);
            let chunks = encode_all(&list, EntryFilter::All, buf_len);
            let mut decoded = Vec::new();
            for chunk in &chunks {
                prop_assert!(chunk.len() <= buf_len);
                decoded.extend(decode_all(chunk).unwrap());
            }
            prop_assert_eq!(decoded, entries);
        }

        /// Every flipped bit and every truncation of a chunk is caught before any entry is read.
        #[test]
        fn damage_is_detected(entries in proptest::collection::vec(arb_owned(), 0..4)) {
            let list = learned_at_zero(&entries);
            let chunk = encode_all(&list, EntryFilter::All, 8192).remove(0);
            for bit in 0..chunk.len() * 8 {
                let mut damaged = chunk.clone();
                damaged[bit / 8] ^= 1 << (bit % 8);
                prop_assert!(decode_chunk(&damaged).is_err(), "bit {} not detected", bit);
            }
            for len in 0..chunk.len() {
                prop_assert!(decode_chunk(&chunk[..len]).is_err());
            }
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(entries) = decode_chunk(&bytes) {
                entries.for_each(drop);
            }
            let _ = chunk_len(&bytes);
            let _ = parse_link_target("k", &bytes);
        }

        /// Random bodies behind a correct header and checksum exercise every entry check.
        #[test]
        fn random_bodies_never_panic(
            count in 0u32..4,
            body in proptest::collection::vec(
                prop_oneof![any::<u8>(), Just(0u8), Just(1u8), Just(b'a'), Just(b'/')], 0..200),
        ) {
            let chunk = raw_chunk(count, &body);
            let mut it = decode_chunk(&chunk).unwrap();
            let mut yielded = 0;
            for e in it.by_ref() {
                yielded += 1;
                if let Ok(e) = e {
                    prop_assert!(e.validate().is_ok());
                }
            }
            prop_assert!(yielded <= count + 1);
        }

        #[test]
        fn link_targets_round_trip(entry in arb_owned()) {
            let e = entry.view();
            let mut buf = std::vec![0u8; MAX_LINK_TARGET_LEN];
            let len = format_link_target(&e, &mut buf).unwrap();
            prop_assert_eq!(len, link_target_len(&e));
            prop_assert_eq!(parse_link_target(e.key, &buf[..len]), Ok(e));
        }
    }

    // ---- Simulation: hosts exchange deltas as chunks, and collect tombstones. ----

    const KEYS: [&str; 4] = ["uuid", "ips/ip-a", "resource-r0/primary", "resource-r0/todo-b/attach"];
    const VALUES: [&str; 3] = ["a", "b|c", "node 1"];
    const HOSTS: usize = 3;

    #[derive(Clone, Copy, Debug)]
    enum Op {
        Write {
            host: usize,
            key: usize,
            value: usize,
        },
        Delete {
            host: usize,
            key: usize,
        },
        Pull {
            to: usize,
            from: usize,
        },
        Collect {
            host: usize,
        },
        Wait {
            nanos: u64,
        },
        /// Every host pulls from every other.
        Round,
    }

    fn arb_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0..HOSTS, 0..KEYS.len(), 0..VALUES.len()).prop_map(|(host, key, value)| Op::Write { host, key, value }),
            2 => (0..HOSTS, 0..KEYS.len()).prop_map(|(host, key)| Op::Delete { host, key }),
            5 => (0..HOSTS, 0..HOSTS).prop_map(|(to, from)| Op::Pull { to, from }),
            2 => (0..HOSTS).prop_map(|host| Op::Collect { host }),
            1 => (1u64..3000).prop_map(|nanos| Op::Wait { nanos }),
            1 => Just(Op::Round),
        ]
    }

    struct Host {
        clock: LamportClock,
        /// key -> (entry, this host's clock when it stored the entry)
        tree: BTreeMap<String, (Owned, Stamp)>,
        /// Per peer: snapshot stamp of the last complete pull from it.
        since: [Stamp; HOSTS],
        /// Per peer: its acknowledgement, as received with that pull.
        acks: [Stamp; HOSTS],
    }

    struct Sim {
        hosts: Vec<Host>,
        /// Each host's real-time clock offset.
        skew: [u64; HOSTS],
        now: u64,
        /// Every entry ever made, merged: what the cluster must agree on.
        truth: BTreeMap<String, Owned>,
        /// Every tombstone some host has collected.
        collected: Vec<Owned>,
        chunk_buf: usize,
    }

    impl Sim {
        fn new(skew: [u64; HOSTS], chunk_buf: usize) -> Sim {
            let hosts = (0..HOSTS)
                .map(|h| Host {
                    clock: LamportClock::new(HostId(h as u64 + 1)),
                    tree: BTreeMap::new(),
                    since: [Stamp::ZERO; HOSTS],
                    acks: [Stamp::ZERO; HOSTS],
                })
                .collect();
            Sim { hosts, skew, now: 1_000_000, truth: BTreeMap::new(), collected: Vec::new(), chunk_buf }
        }

        fn real_time(&self, host: usize) -> u64 {
            self.now + self.skew[host]
        }

        fn update(&mut self, host: usize, key: usize, value: Option<usize>) {
            let now = self.real_time(host);
            let stamp = self.hosts[host].clock.tick(now);
            let e = Owned {
                key: KEYS[key].to_string(),
                value: value.map_or(String::new(), |v| VALUES[v].to_string()),
                stamp,
                deleted: value.is_none(),
            };
            let stored = self.truth.get(&e.key).map(Owned::view);
            if supersedes(&e.view(), stored.as_ref()) {
                self.truth.insert(e.key.clone(), e.clone());
            }
            self.hosts[host].tree.insert(e.key.clone(), (e, stamp));
        }

        /// Everything `host` holds has a stamp below this, from every peer.
        fn ack(&self, host: usize) -> Stamp {
            gc_horizon((0..HOSTS).filter(|&p| p != host).map(|p| self.hosts[host].since[p]))
        }

        fn pull(&mut self, to: usize, from: usize) {
            if to == from {
                return;
            }
            let now = self.real_time(from);
            let snapshot = self.hosts[from].clock.tick(now);
            let ack = self.ack(from);
            let list: Vec<LearnedEntry<'_>> = self.hosts[from]
                .tree
                .values()
                .map(|(e, learned)| LearnedEntry { entry: e.view(), learned: *learned })
                .collect();
            let chunks = encode_all(&list, EntryFilter::LearnedAfter(self.hosts[to].since[from]), self.chunk_buf);
            let now = self.real_time(to);
            let host = &mut self.hosts[to];
            for chunk in &chunks {
                for e in decode_chunk(chunk).unwrap() {
                    let e = e.unwrap();
                    host.clock.observe(e.stamp);
                    let stored = host.tree.get(e.key).map(|(s, _)| s.view());
                    if supersedes(&e, stored.as_ref()) {
                        let learned = host.clock.tick(now);
                        host.tree.insert(e.key.to_string(), (Owned::of(&e), learned));
                    }
                }
            }
            host.clock.observe(snapshot);
            host.since[from] = snapshot;
            host.acks[from] = ack;
        }

        fn collect(&mut self, host: usize) {
            let own = self.ack(host);
            let h = &mut self.hosts[host];
            let horizon = gc_horizon((0..HOSTS).map(|m| if m == host { own } else { h.acks[m] }));
            let collected = &mut self.collected;
            h.tree.retain(|_, (e, _)| {
                let drop = may_collect(&e.view(), horizon);
                if drop {
                    collected.push(e.clone());
                }
                !drop
            });
        }

        fn run(&mut self, op: Op) {
            self.now += 10;
            match op {
                Op::Write { host, key, value } => self.update(host, key, Some(value)),
                Op::Delete { host, key } => self.update(host, key, None),
                Op::Pull { to, from } => self.pull(to, from),
                Op::Collect { host } => self.collect(host),
                Op::Wait { nanos } => self.now += nanos,
                Op::Round => self.pull_all(),
            }
        }

        fn pull_all(&mut self) {
            for to in 0..HOSTS {
                for from in 0..HOSTS {
                    self.pull(to, from);
                }
            }
        }

        fn entries(&self, host: usize) -> BTreeMap<String, Owned> {
            self.hosts[host].tree.iter().map(|(k, (e, _))| (k.clone(), e.clone())).collect()
        }
    }

    fn live(t: &BTreeMap<String, Owned>) -> BTreeMap<String, String> {
        t.iter().filter(|(_, e)| !e.deleted).map(|(k, e)| (k.clone(), e.value.clone())).collect()
    }

    proptest! {
        /// Hosts with skewed clocks that exchange only deltas (selected by learned stamp, sent
        /// as chunks through small buffers) converge to exactly the merge of all updates.
        #[test]
        fn deltas_converge_to_every_update(
            ops in proptest::collection::vec(arb_op(), 0..80),
            skew in proptest::array::uniform3(0u64..5000),
            chunk_buf in 100usize..400,
        ) {
            let mut sim = Sim::new(skew, chunk_buf);
            for op in ops.into_iter().filter(|op| !matches!(op, Op::Collect { .. })) {
                sim.run(op);
            }
            sim.pull_all();
            sim.pull_all();
            for host in 0..HOSTS {
                prop_assert_eq!(&sim.entries(host), &sim.truth);
            }
        }

        /// Tombstones collected by the acknowledgement rule, at any time, on any host, never
        /// bring a deleted key back; after a few quiet rounds every tombstone is gone.
        #[test]
        fn collection_never_resurrects(
            ops in proptest::collection::vec(arb_op(), 0..80),
            skew in proptest::array::uniform3(0u64..5000),
            chunk_buf in 100usize..400,
        ) {
            let mut sim = Sim::new(skew, chunk_buf);
            for op in ops {
                sim.run(op);
                for host in 0..HOSTS {
                    for (k, e) in sim.entries(host) {
                        let collected = sim.collected.iter().find(|t| t.key == k && e.stamp < t.stamp);
                        prop_assert!(
                            collected.is_none() || e.deleted,
                            "host {} holds {:?} although the newer deletion {:?} was collected", host, e, collected
                        );
                    }
                }
            }
            for _ in 0..3 {
                sim.pull_all();
            }
            for host in 0..HOSTS {
                sim.collect(host);
            }
            sim.pull_all();
            for host in 0..HOSTS {
                let entries = sim.entries(host);
                prop_assert_eq!(live(&entries), live(&sim.truth));
                prop_assert!(entries.values().all(|e| !e.deleted), "host {} kept a tombstone", host);
            }
        }
    }
}
