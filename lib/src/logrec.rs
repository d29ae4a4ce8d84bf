//! Transaction log records: the on-disk format of `/mars/resource-NAME/log-*` files.
//!
//! A logfile is a sequence of records packed back to back, each a 64-byte header, then the
//! payload, then zero padding up to a multiple of 8 bytes. Byte-by-byte layout and the rules
//! for finding the valid end after a crash: docs/log-format.md.
//!
//! The reader accepts a record only if its magic, version, header checksum, lengths, payload
//! checksum, padding and sequence number all check out, and stops at the first record that does
//! not, saying why and where. Everything before that point is exactly what was written.

use core::fmt;

use super::bytes::{Reader, Writer};
use super::crc32c::crc32c;
use super::lamport::{HostId, Stamp};

/// First 8 bytes of every record.
pub const MAGIC: [u8; 8] = *b"MaRsReC\x1a";
/// The format version this code writes and reads.
pub const VERSION: u16 = 1;
/// Length of the record header.
pub const HEADER_LEN: usize = 64;
/// Largest payload of one record: a whole bio of up to 1 MiB.
pub const MAX_DATA: u32 = 1 << 20;
/// Records start at multiples of this many bytes.
pub const ALIGN: usize = 8;
/// Sector size of the `sector` field.
pub const SECTOR: u64 = 512;

/// What a record asks replay to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Write the payload at the target sector.
    Write,
    /// Discard `length` bytes at the target sector (no payload).
    Discard,
    /// A flush barrier: everything before it must be durable on the data device before anything
    /// after it is applied (no payload, no target).
    Flush,
    /// Filler that makes the next record start on an I/O block boundary (see [`pad_len`]): its
    /// payload is `length` zero bytes, it has no target, and replay skips it.
    Pad,
}

impl Op {
    fn code(self) -> u16 {
        match self {
            Op::Write => 1,
            Op::Discard => 2,
            Op::Flush => 3,
            Op::Pad => 4,
        }
    }

    fn from_code(code: u16) -> Option<Op> {
        match code {
            1 => Some(Op::Write),
            2 => Some(Op::Discard),
            3 => Some(Op::Flush),
            4 => Some(Op::Pad),
            _ => None,
        }
    }
}

/// The fields of a record header, as the writer chooses them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    /// Operation.
    pub op: Op,
    /// Sequence number within the logfile: the first record is 1, each next one is +1.
    pub seq: u64,
    /// Lamport stamp of the write.
    pub stamp: Stamp,
    /// Target position on the data device, in 512-byte sectors.
    pub sector: u64,
    /// Bytes affected on the data device (the payload length for writes).
    pub length: u32,
}

/// Why a header cannot be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The output buffer is too small for header, payload and padding.
    BufferTooSmall {
        /// Bytes the record needs.
        needed: usize,
    },
    /// Payload longer than [`MAX_DATA`], or not matching `length` for a write, or present for a
    /// discard or flush.
    BadLength,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::BufferTooSmall { needed } => {
                write!(f, "record needs {needed} bytes of buffer")
            }
            EncodeError::BadLength => {
                write!(f, "payload length does not fit the record's operation")
            }
        }
    }
}

/// Payload bytes a record with `header` carries.
fn data_len_of(header: &RecordHeader) -> u32 {
    match header.op {
        Op::Write | Op::Pad => header.length,
        Op::Discard | Op::Flush => 0,
    }
}

/// Zero bytes that follow a payload of `data_len` bytes.
pub const fn padding_len(data_len: usize) -> usize {
    (ALIGN - data_len % ALIGN) % ALIGN
}

/// Total on-disk size of a record with `data_len` payload bytes.
pub const fn record_len(data_len: usize) -> usize {
    HEADER_LEN + data_len + padding_len(data_len)
}

/// Length of the pad record that makes a log ending at byte `end` (a multiple of [`ALIGN`]) end
/// on a multiple of `block` (a multiple of [`ALIGN`], at least [`HEADER_LEN`]): 0 if it already
/// does, else the gap to the next boundary, or the gap plus one more block if the gap cannot
/// hold a header. Direct I/O writers append their batches on `block` boundaries this way.
pub const fn pad_len(end: usize, block: usize) -> usize {
    let gap = (block - end % block) % block;
    if gap == 0 || gap >= HEADER_LEN {
        gap
    } else {
        gap + block
    }
}

/// Encodes a pad record of `len` bytes (from [`pad_len`], non-zero) into `out`.
pub fn encode_pad(seq: u64, stamp: Stamp, len: usize, out: &mut [u8]) -> Result<usize, EncodeError> {
    let data_len = len.checked_sub(HEADER_LEN).ok_or(EncodeError::BadLength)?;
    if data_len % ALIGN != 0 {
        return Err(EncodeError::BadLength);
    }
    let length = u32::try_from(data_len).map_err(|_| EncodeError::BadLength)?;
    let out = out.get_mut(..len).ok_or(EncodeError::BufferTooSmall { needed: len })?;
    let (head, payload) = out.split_at_mut(HEADER_LEN);
    payload.fill(0);
    let header = RecordHeader { op: Op::Pad, seq, stamp, sector: 0, length };
    head.copy_from_slice(&encode_header(&header, crc32c(payload))?);
    Ok(len)
}

/// Encodes the header of a record whose payload has checksum `data_crc` (see [`Crc32c`]).
///
/// For writers that gather the payload from several buffers (bio segments): compute the
/// payload CRC incrementally, write this header, the payload, then [`padding_len`] zeros.
pub fn encode_header(header: &RecordHeader, data_crc: u32) -> Result<[u8; HEADER_LEN], EncodeError> {
    let data_len = data_len_of(header);
    if data_len > MAX_DATA || (header.op == Op::Flush && header.length != 0) {
        return Err(EncodeError::BadLength);
    }
    let mut out = [0u8; HEADER_LEN];
    let mut w = Writer::new(&mut out);
    // The buffer is exactly HEADER_LEN long and the fields below add up to it, so none of
    // these writes can fail; map the impossible error anyway instead of panicking.
    let fill = |w: &mut Writer<'_>| -> Result<(), super::bytes::Short> {
        w.bytes(&MAGIC)?;
        w.u16(VERSION)?;
        w.u16(HEADER_LEN as u16)?;
        w.u16(header.op.code())?;
        w.u16(0)?; // flags: reserved, zero
        w.u64(header.seq)?;
        w.u64(header.stamp.nanos)?;
        w.u64(header.stamp.host.0)?;
        w.u64(header.sector)?;
        w.u32(header.length)?;
        w.u32(data_len)?;
        w.u32(data_crc)?;
        let crc = crc32c(w.written());
        w.u32(crc)
    };
    fill(&mut w).map_err(|_| EncodeError::BufferTooSmall { needed: HEADER_LEN })?;
    Ok(out)
}

/// Encodes a whole record (header, `data`, padding) into `out`; returns its length.
pub fn encode_record(header: &RecordHeader, data: &[u8], out: &mut [u8]) -> Result<usize, EncodeError> {
    if data.len() != data_len_of(header) as usize {
        return Err(EncodeError::BadLength);
    }
    let head = encode_header(header, crc32c(data))?;
    let needed = record_len(data.len());
    let mut w = Writer::new(out);
    w.bytes(&head)
        .and_then(|()| w.bytes(data))
        .and_then(|()| w.zeros(padding_len(data.len())))
        .map_err(|_| EncodeError::BufferTooSmall { needed })?;
    Ok(needed)
}

/// A valid record found by the reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// Byte offset of the record in the scanned input.
    pub offset: usize,
    /// Its header.
    pub header: RecordHeader,
    /// Its payload (empty for discards and flushes).
    pub data: &'a [u8],
}

impl Record<'_> {
    /// On-disk length of this record, padding included (never zero).
    pub fn disk_len(&self) -> usize {
        record_len(self.data.len())
    }

    /// Offset of the byte after this record: where the next one starts.
    pub fn end(&self) -> usize {
        self.offset.saturating_add(self.disk_len())
    }
}

/// Why the reader stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The input ended exactly after the last valid record.
    End,
    /// The next bytes are a zero-filled header: the unused, preallocated tail of the file.
    ZeroTail,
    /// The input ends inside the next record: a torn write, or a file still growing.
    Truncated {
        /// Bytes the record needs from its start.
        needed: usize,
        /// Bytes there are from its start.
        available: usize,
    },
    /// No record magic where a record should start.
    BadMagic,
    /// A record of a format version this code does not read.
    UnsupportedVersion(u16),
    /// The header checksum does not match: a damaged or torn header.
    HeaderChecksum,
    /// Header fields that cannot belong together (unknown op, lengths out of range).
    BadHeader(&'static str),
    /// The payload checksum does not match: damaged or torn payload.
    DataChecksum,
    /// Non-zero bytes in the padding after the payload.
    BadPadding,
    /// The record's sequence number is not the expected one: stale data from an earlier use of
    /// the file, or a record missing.
    Sequence {
        /// The number the reader expected.
        expected: u64,
        /// The number it found.
        found: u64,
    },
    /// The record's Lamport stamp is not later than its predecessor's: a logfile has one writer
    /// whose clock only moves forward, so this is stale data from an earlier use of the file.
    StampNotIncreasing {
        /// Nanoseconds of the previous record's stamp.
        previous: u64,
        /// Nanoseconds of this record's stamp.
        found: u64,
    },
}

impl StopReason {
    /// True if the log simply ends here (cleanly, in zeros, or in a record still being written),
    /// false if something is damaged.
    pub fn is_clean_end(&self) -> bool {
        matches!(self, StopReason::End | StopReason::ZeroTail | StopReason::Truncated { .. })
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::End => write!(f, "end of log"),
            StopReason::ZeroTail => write!(f, "end of log (zero-filled tail)"),
            StopReason::Truncated { needed, available } => {
                write!(f, "incomplete record ({available} of {needed} bytes): torn write or log still growing")
            }
            StopReason::BadMagic => write!(f, "no record magic: garbage after the last record"),
            StopReason::UnsupportedVersion(v) => {
                write!(f, "record format version {v} is not supported (this MARS reads version {VERSION})")
            }
            StopReason::HeaderChecksum => {
                write!(f, "record header checksum mismatch: damaged record")
            }
            StopReason::BadHeader(why) => write!(f, "invalid record header: {why}"),
            StopReason::DataChecksum => {
                write!(f, "record payload checksum mismatch: damaged record")
            }
            StopReason::BadPadding => {
                write!(f, "non-zero padding after record payload: damaged record")
            }
            StopReason::Sequence { expected, found } => {
                write!(f, "record sequence number {found} where {expected} was expected: stale or missing record")
            }
            StopReason::StampNotIncreasing { previous, found } => {
                write!(f, "record stamp {found} is not after the previous record's {previous}: stale record")
            }
        }
    }
}

/// Where and why a scan stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stop {
    /// Offset of the first byte not accepted: the end of the valid log.
    pub offset: usize,
    /// Why.
    pub reason: StopReason,
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at offset {}: {}", self.offset, self.reason)
    }
}

/// What the next record of a logfile must look like to continue it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Expect {
    /// Its sequence number, if known.
    pub seq: Option<u64>,
    /// Its stamp must be later than this many nanoseconds, if known.
    pub after_nanos: Option<u64>,
}

impl Expect {
    /// What the first record of a logfile must look like.
    pub const START: Expect = Expect { seq: Some(1), after_nanos: None };

    /// What the record after `header` must look like.
    pub fn after(header: &RecordHeader) -> Expect {
        Expect { seq: Some(header.seq.saturating_add(1)), after_nanos: Some(header.stamp.nanos) }
    }
}

/// Parses and checks the record that starts at the beginning of `input` (found at `offset` of
/// the log); it must continue the log as `expect` says.
pub fn scan_record(input: &[u8], offset: usize, expect: Expect) -> Result<Record<'_>, StopReason> {
    if input.is_empty() {
        return Err(StopReason::End);
    }
    let Some(head) = input.get(..HEADER_LEN) else {
        if input.iter().all(|&b| b == 0) {
            return Err(StopReason::ZeroTail);
        }
        return Err(StopReason::Truncated { needed: HEADER_LEN, available: input.len() });
    };
    if head.iter().all(|&b| b == 0) {
        return Err(StopReason::ZeroTail);
    }
    let header = parse_header(head)?;
    let data_len = data_len_of(&header.0) as usize;
    let needed = record_len(data_len);
    let Some(whole) = input.get(..needed) else {
        return Err(StopReason::Truncated { needed, available: input.len() });
    };
    // `needed` = HEADER_LEN + data_len + padding, so both ranges lie within `whole`.
    let data = whole.get(HEADER_LEN..HEADER_LEN + data_len).unwrap_or(&[]);
    let padding = whole.get(HEADER_LEN + data_len..).unwrap_or(&[]);
    if crc32c(data) != header.1 {
        return Err(StopReason::DataChecksum);
    }
    if padding.iter().any(|&b| b != 0) {
        return Err(StopReason::BadPadding);
    }
    if let Some(expected) = expect.seq {
        if header.0.seq != expected {
            return Err(StopReason::Sequence { expected, found: header.0.seq });
        }
    }
    if let Some(previous) = expect.after_nanos {
        if header.0.stamp.nanos <= previous {
            return Err(StopReason::StampNotIncreasing { previous, found: header.0.stamp.nanos });
        }
    }
    Ok(Record { offset, header: header.0, data })
}

/// Parses a 64-byte header; returns it with the payload checksum it declares.
fn parse_header(head: &[u8]) -> Result<(RecordHeader, u32), StopReason> {
    let short = |_| StopReason::Truncated { needed: HEADER_LEN, available: head.len() };
    let mut r = Reader::new(head);
    if r.array::<8>().map_err(short)? != MAGIC {
        return Err(StopReason::BadMagic);
    }
    let version = r.u16().map_err(short)?;
    let header_len = r.u16().map_err(short)?;
    let op = r.u16().map_err(short)?;
    let flags = r.u16().map_err(short)?;
    let seq = r.u64().map_err(short)?;
    let nanos = r.u64().map_err(short)?;
    let host = r.u64().map_err(short)?;
    let sector = r.u64().map_err(short)?;
    let length = r.u32().map_err(short)?;
    let data_len = r.u32().map_err(short)?;
    let data_crc = r.u32().map_err(short)?;
    let header_crc = r.u32().map_err(short)?;
    if crc32c(head.get(..HEADER_LEN - 4).unwrap_or(&[])) != header_crc {
        return Err(StopReason::HeaderChecksum);
    }
    if version != VERSION {
        return Err(StopReason::UnsupportedVersion(version));
    }
    if usize::from(header_len) != HEADER_LEN {
        return Err(StopReason::BadHeader("header length is not 64"));
    }
    if flags != 0 {
        return Err(StopReason::BadHeader("reserved flags are set"));
    }
    let op = Op::from_code(op).ok_or(StopReason::BadHeader("unknown operation"))?;
    let header = RecordHeader { op, seq, stamp: Stamp::new(nanos, HostId(host)), sector, length };
    if data_len != data_len_of(&header) || data_len > MAX_DATA {
        return Err(StopReason::BadHeader("payload length does not match the operation"));
    }
    let unit = if op == Op::Pad { ALIGN as u64 } else { SECTOR };
    if u64::from(length) % unit != 0 && op != Op::Flush {
        return Err(StopReason::BadHeader("length is not a multiple of 512 (of 8 for a pad)"));
    }
    if op == Op::Flush && (length != 0 || sector != 0) {
        return Err(StopReason::BadHeader("flush record with a target"));
    }
    if op == Op::Pad && sector != 0 {
        return Err(StopReason::BadHeader("pad record with a target"));
    }
    Ok((header, data_crc))
}

/// Walks a log held in memory and yields its valid records in order.
///
/// After the iterator returns `None`, [`LogReader::stop`] tells where the valid log ends and why.
pub struct LogReader<'a> {
    input: &'a [u8],
    /// Offset of the first byte of `input` within the logfile.
    base: usize,
    pos: usize,
    expect: Expect,
    stop: Option<Stop>,
}

impl<'a> LogReader<'a> {
    /// Reads a whole logfile from its start (the first record must have sequence number 1).
    pub fn new(input: &'a [u8]) -> LogReader<'a> {
        LogReader { input, base: 0, pos: 0, expect: Expect::START, stop: None }
    }

    /// Reads `input`, which starts at byte `offset` of a logfile, where the next record must
    /// continue the log as `expect` says.
    pub fn resume(input: &'a [u8], offset: usize, expect: Expect) -> LogReader<'a> {
        LogReader { input, base: offset, pos: 0, expect, stop: None }
    }

    /// Where and why the scan stopped; `None` while records are still coming.
    pub fn stop(&self) -> Option<Stop> {
        self.stop
    }

    /// Offset (in the logfile) just after the last valid record returned so far.
    pub fn valid_end(&self) -> usize {
        self.base.saturating_add(self.pos)
    }

    /// What the next record must look like (to resume reading later from [`Self::valid_end`]).
    pub fn expect(&self) -> Expect {
        self.expect
    }
}

impl<'a> Iterator for LogReader<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        if self.stop.is_some() {
            return None;
        }
        let rest = self.input.get(self.pos..).unwrap_or(&[]);
        match scan_record(rest, self.valid_end(), self.expect) {
            Ok(rec) => {
                self.pos = self.pos.saturating_add(rec.disk_len());
                self.expect = Expect::after(&rec.header);
                Some(rec)
            }
            Err(reason) => {
                self.stop = Some(Stop { offset: self.valid_end(), reason });
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    const HOST: HostId = HostId(0x1234_5678_9abc_def0);

    fn write_hdr(seq: u64, sector: u64, len: u32) -> RecordHeader {
        RecordHeader { op: Op::Write, seq, stamp: Stamp::new(1_000 + seq, HOST), sector, length: len }
    }

    /// A log of `records` (op, payload byte, sectors) encoded back to back from sequence number 1.
    fn build_log(records: &[(u8, u8, u32)]) -> (Vec<u8>, Vec<RecordHeader>) {
        build_log_at(1_000, records)
    }

    /// Like [`build_log`], with stamps starting after `base_nanos`.
    fn build_log_at(base_nanos: u64, records: &[(u8, u8, u32)]) -> (Vec<u8>, Vec<RecordHeader>) {
        let mut log = Vec::new();
        let mut headers = Vec::new();
        for (i, &(op, fill, sectors)) in records.iter().enumerate() {
            let seq = i as u64 + 1;
            let mut header = match op % 3 {
                0 => write_hdr(seq, u64::from(fill) * 8, sectors * 512),
                1 => RecordHeader { op: Op::Discard, ..write_hdr(seq, 16, sectors * 512) },
                _ => RecordHeader { op: Op::Flush, ..write_hdr(seq, 0, 0) },
            };
            header.stamp.nanos = base_nanos + seq;
            let data: Vec<u8> = if header.op == Op::Write {
                (0..header.length).map(|b| fill ^ (b as u8)).collect()
            } else {
                Vec::new()
            };
            let mut buf = std::vec![0u8; record_len(data.len())];
            let n = encode_record(&header, &data, &mut buf).expect("encodes");
            assert_eq!(n, buf.len());
            log.extend_from_slice(&buf);
            headers.push(header);
        }
        (log, headers)
    }

    fn records_strategy() -> impl Strategy<Value = Vec<(u8, u8, u32)>> {
        proptest::collection::vec((any::<u8>(), any::<u8>(), 0u32..5), 0..8)
    }

    #[test]
    fn header_layout_is_as_documented() {
        let h = encode_header(&write_hdr(7, 99, 512), 0xaabb_ccdd).unwrap();
        assert_eq!(&h[0..8], b"MaRsReC\x1a");
        assert_eq!(&h[8..10], &[1, 0]);
        assert_eq!(&h[10..12], &[64, 0]);
        assert_eq!(&h[12..14], &[1, 0]);
        assert_eq!(&h[16..24], &7u64.to_le_bytes());
        assert_eq!(&h[24..32], &1007u64.to_le_bytes());
        assert_eq!(&h[32..40], &HOST.0.to_le_bytes());
        assert_eq!(&h[40..48], &99u64.to_le_bytes());
        assert_eq!(&h[48..52], &512u32.to_le_bytes());
        assert_eq!(&h[52..56], &512u32.to_le_bytes());
        assert_eq!(&h[56..60], &0xaabb_ccddu32.to_le_bytes());
        assert_eq!(&h[60..64], &crc32c(&h[..60]).to_le_bytes());
    }

    #[test]
    fn encoder_rejects_inconsistent_records() {
        let mut buf = [0u8; 2048];
        assert_eq!(encode_record(&write_hdr(1, 0, 512), &[0u8; 100], &mut buf), Err(EncodeError::BadLength));
        let flush = RecordHeader { op: Op::Flush, ..write_hdr(1, 0, 512) };
        assert_eq!(encode_record(&flush, &[], &mut buf), Err(EncodeError::BadLength));
        let big = write_hdr(1, 0, MAX_DATA + 512);
        assert_eq!(encode_header(&big, 0), Err(EncodeError::BadLength));
        assert_eq!(
            encode_record(&write_hdr(1, 0, 512), &[0u8; 512], &mut buf[..100]),
            Err(EncodeError::BufferTooSmall { needed: 576 })
        );
    }

    #[test]
    fn empty_and_zero_filled_logs_end_cleanly() {
        let mut r = LogReader::new(&[]);
        assert!(r.next().is_none());
        assert_eq!(r.stop(), Some(Stop { offset: 0, reason: StopReason::End }));
        let (mut log, _) = build_log(&[(0, 1, 1)]);
        let end = log.len();
        log.extend_from_slice(&[0u8; 4096]);
        let mut r = LogReader::new(&log);
        assert_eq!(r.by_ref().count(), 1);
        assert_eq!(r.stop(), Some(Stop { offset: end, reason: StopReason::ZeroTail }));
    }

    #[test]
    fn garbage_after_the_tail_stops_the_scan() {
        let (mut log, _) = build_log(&[(0, 1, 1), (0, 2, 2)]);
        let end = log.len();
        log.extend_from_slice(b"this is not a record at all, just some leftover text......................");
        let mut r = LogReader::new(&log);
        assert_eq!(r.by_ref().count(), 2);
        assert_eq!(r.stop(), Some(Stop { offset: end, reason: StopReason::BadMagic }));
        assert!(!r.stop().unwrap().reason.is_clean_end());
    }

    #[test]
    fn stale_records_from_an_earlier_use_are_refused() {
        // Records 1..3 of an old log, then the new log's records 1..2 written over its start.
        // Same sizes, so the old record 3 sits exactly where the new record 3 would start and
        // even carries the expected sequence number; its older stamp gives it away.
        let (old, _) = build_log_at(1_000, &[(0, 9, 1), (0, 9, 1), (0, 9, 1)]);
        let (new, _) = build_log_at(5_000, &[(0, 1, 1), (0, 2, 1)]);
        let mut log = old.clone();
        log[..new.len()].copy_from_slice(&new);
        let mut r = LogReader::new(&log);
        assert_eq!(r.by_ref().count(), 2);
        assert_eq!(r.stop().unwrap().reason, StopReason::StampNotIncreasing { previous: 5_002, found: 1_003 });
    }

    #[test]
    fn resume_in_the_middle() {
        let (log, headers) = build_log(&[(0, 1, 1), (1, 2, 3), (2, 0, 0), (0, 3, 2)]);
        let first = LogReader::new(&log).next().unwrap();
        let mut r = LogReader::resume(&log[first.end()..], first.end(), Expect::after(&first.header));
        let rest: Vec<_> = r.by_ref().map(|rec| rec.header).collect();
        assert_eq!(rest, headers[1..]);
        assert_eq!(r.valid_end(), log.len());
        assert_eq!(r.expect(), Expect { seq: Some(5), after_nanos: Some(1_004) });
        // Resuming with the wrong expectations refuses the first record.
        let mut r = LogReader::resume(&log[first.end()..], first.end(), Expect::START);
        assert_eq!(r.next(), None);
        assert_eq!(r.stop().unwrap().reason, StopReason::Sequence { expected: 1, found: 2 });
    }

    #[test]
    fn pad_len_reaches_the_next_block_boundary_with_room_for_a_header() {
        assert_eq!(pad_len(0, 512), 0);
        assert_eq!(pad_len(512, 512), 0);
        assert_eq!(pad_len(8, 512), 504);
        assert_eq!(pad_len(448, 512), 64);
        assert_eq!(pad_len(456, 512), 568);
        assert_eq!(pad_len(4160, 4096), 4032);
        for end in (0..4096).step_by(8) {
            let n = pad_len(end, 512);
            assert_eq!((end + n) % 512, 0);
            assert!(n == 0 || n >= HEADER_LEN);
        }
    }

    #[test]
    fn batches_padded_to_blocks_read_back_with_their_pads() {
        let mut log = Vec::new();
        let mut seq = 1u64;
        for payload in [4096usize, 512, 0, 1 << 20, 1024] {
            let header = if payload == 0 {
                RecordHeader { op: Op::Flush, ..write_hdr(seq, 0, 0) }
            } else {
                write_hdr(seq, seq * 8, payload as u32)
            };
            let data = vec![seq as u8; payload];
            let start = log.len();
            log.resize(start + record_len(payload), 0xee);
            encode_record(&header, &data, &mut log[start..]).unwrap();
            seq += 1;
            let n = pad_len(log.len(), 512);
            let start = log.len();
            log.resize(start + n, 0xee);
            encode_pad(seq, Stamp::new(1_000 + seq, HOST), n, &mut log[start..]).unwrap();
            seq += 1;
            assert_eq!(log.len() % 512, 0);
        }
        log.resize(log.len() + 4096, 0);
        let mut reader = LogReader::new(&log);
        let ops: Vec<Op> = reader.by_ref().map(|r| r.header.op).collect();
        assert_eq!(ops.len(), 10);
        assert!(ops.iter().skip(1).step_by(2).all(|op| *op == Op::Pad));
        assert_eq!(reader.stop().unwrap().reason, StopReason::ZeroTail);
        assert!(encode_pad(1, Stamp::new(1, HOST), 60, &mut [0u8; 64]).is_err());
        assert!(encode_pad(1, Stamp::new(1, HOST), 68, &mut [0u8; 68]).is_err());
        let mut bad = log.clone();
        bad[4608 - 8] = 1;
        let mut reader = LogReader::new(&bad);
        assert_eq!(reader.by_ref().count(), 1);
        assert_eq!(reader.stop().unwrap().reason, StopReason::DataChecksum);
    }

    #[test]
    fn stop_reasons_read_well() {
        let s = Stop { offset: 4160, reason: StopReason::DataChecksum };
        assert_eq!(std::format!("{s}"), "at offset 4160: record payload checksum mismatch: damaged record");
    }

    proptest! {
        #[test]
        fn round_trip(records in records_strategy()) {
            let (log, headers) = build_log(&records);
            let mut r = LogReader::new(&log);
            let got: Vec<RecordHeader> = r.by_ref().map(|rec| rec.header).collect();
            prop_assert_eq!(got, headers);
            prop_assert_eq!(r.stop(), Some(Stop { offset: log.len(), reason: StopReason::End }));
            for rec in LogReader::new(&log) {
                prop_assert_eq!(rec.offset % ALIGN, 0);
                if rec.header.op == Op::Write {
                    prop_assert_eq!(rec.data.len() as u32, rec.header.length);
                }
            }
        }

        /// Cutting the log at any byte yields exactly the records that end at or before the cut.
        #[test]
        fn truncation_keeps_exactly_the_complete_records(records in records_strategy(), cut in any::<proptest::sample::Index>()) {
            let (log, _) = build_log(&records);
            let cut = cut.index(log.len() + 1);
            let ends: Vec<usize> = LogReader::new(&log).map(|r| r.end()).collect();
            let mut r = LogReader::new(&log[..cut]);
            let got: Vec<usize> = r.by_ref().map(|r| r.end()).collect();
            let want: Vec<usize> = ends.iter().copied().filter(|&e| e <= cut).collect();
            prop_assert_eq!(&got, &want);
            let stop = r.stop().unwrap();
            prop_assert!(stop.reason.is_clean_end(), "{stop}");
            prop_assert_eq!(stop.offset, want.last().copied().unwrap_or(0));
        }

        /// Any byte string is scanned without panicking, and the scan's end lies within it.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut r = LogReader::new(&bytes);
            let n = r.by_ref().count();
            prop_assert!(r.valid_end() <= bytes.len());
            prop_assert!(n <= bytes.len() / HEADER_LEN);
        }
    }

    /// Every single-bit flip anywhere in a record is detected: the damaged record and everything
    /// after it are refused, everything before it is kept.
    #[test]
    fn every_single_bit_flip_is_detected() {
        let (log, _) = build_log(&[(0, 1, 1), (1, 2, 2), (2, 0, 0), (0, 7, 2)]);
        let ends: Vec<usize> = LogReader::new(&log).map(|r| r.end()).collect();
        for byte in 0..log.len() {
            for bit in 0..8 {
                let mut damaged = log.clone();
                damaged[byte] ^= 1 << bit;
                let mut r = LogReader::new(&damaged);
                let got: Vec<usize> = r.by_ref().map(|r| r.end()).collect();
                let before: Vec<usize> = ends.iter().copied().take_while(|&e| e <= byte).collect();
                assert_eq!(got, before, "flip of bit {bit} in byte {byte} went unnoticed");
                assert!(
                    !r.stop().unwrap().reason.is_clean_end() || r.stop().unwrap().reason == StopReason::ZeroTail,
                    "flip at {byte}:{bit} looks like a clean end: {:?}",
                    r.stop()
                );
            }
        }
    }
}
