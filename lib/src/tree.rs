//! The cluster-state tree: keys, values, entries, and the rules that make every host converge.
//!
//! Cluster state is a set of entries `key -> value`. Each entry carries the Lamport [`Stamp`] of
//! the update that made it (the stamp's host is the entry's origin) and a deletion flag: a
//! deleted key stays as a *tombstone* so that the deletion spreads like any other update. For
//! every key all hosts keep the entry that [`precedence`] ranks highest, so they converge to the
//! same tree whatever order updates arrive in. A tombstone may be dropped once every member
//! holds it ([`may_collect`]).
//!
//! Encodings (binary chunks for the exchange between hosts, symlink targets under /mars) are in
//! the sibling module `tree_codec`; the grammars of host and resource names, which keys embed,
//! in the sibling module `names`. Byte-by-byte rules and the key table: docs/tree.md.

use core::cmp::Ordering;
use core::fmt;

use super::lamport::{HostId, Stamp};
use super::names::{self, check_name, NameKind};
use super::tree_codec::{CHUNK_HEADER_LEN, CHUNK_VERSION, MAX_CHUNK_LEN};

pub use super::names::{NameProblem, MAX_SEQ};

/// Longest key, in bytes.
pub const MAX_KEY_LEN: usize = 200;
/// Most components (`/`-separated levels) a key may have.
pub const MAX_KEY_DEPTH: usize = 4;
/// Longest value, in bytes.
pub const MAX_VALUE_LEN: usize = 1024;

/// Everything that can be wrong with a tree entry, a name, or an encoded chunk or link target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TreeError {
    /// The key breaks the key grammar.
    BadKey(NameProblem),
    /// The host name breaks the host name grammar.
    BadHostName(NameProblem),
    /// The resource name breaks the resource name grammar.
    BadResourceName(NameProblem),
    /// A switch, status, setting or request name is not a single key component.
    BadItemName(NameProblem),
    /// A logfile sequence number does not fit in nine digits.
    BadSequence {
        /// The number.
        seq: u32,
    },
    /// The value is longer than [`MAX_VALUE_LEN`].
    ValueTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The value is not valid UTF-8.
    ValueNotUtf8 {
        /// Byte offset of the first invalid byte.
        at: usize,
    },
    /// The value contains a control character (NUL, newline, tab, DEL, ...).
    ValueControlChar {
        /// Byte offset of the character.
        at: usize,
    },
    /// A tombstone (deletion marker) carries a value; tombstones have empty values.
    TombstoneWithValue,
    /// The output buffer is too small.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
    },
    /// The input ends too early.
    Truncated {
        /// Offset in the input where the missing field starts.
        offset: usize,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes the input has left there.
        available: usize,
    },
    /// The input does not start with the tree chunk magic.
    BadMagic,
    /// The chunk has a format version this code does not read.
    BadVersion {
        /// The version found.
        found: u16,
    },
    /// The chunk header length field is not the one of this format version.
    BadHeaderLength {
        /// The length found.
        found: u16,
    },
    /// The chunk declares a body longer than the limit.
    ChunkTooLarge {
        /// The declared body length.
        len: u32,
    },
    /// Bytes follow where the input should end.
    TrailingBytes {
        /// Offset of the first extra byte.
        offset: usize,
    },
    /// The chunk checksum does not match its contents.
    ChecksumMismatch {
        /// The checksum in the header.
        stored: u32,
        /// The checksum of the bytes received.
        computed: u32,
    },
    /// The chunk body ends before the declared number of entries.
    MissingEntries {
        /// Entries the header declares.
        declared: u32,
        /// Entries found.
        found: u32,
    },
    /// An entry has flag bits this code does not know.
    BadFlags {
        /// The flags byte.
        flags: u8,
    },
    /// A /mars link target does not have the `VALUE|STAMP[,deleted]` form.
    BadLinkTarget {
        /// What is wrong.
        why: &'static str,
    },
}

impl fmt::Display for TreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TreeError::BadKey(p) => write!(
                f,
                "invalid key: {p} (keys are up to {MAX_KEY_DEPTH} '/'-separated names of a-z, 0-9, '.', '_', '-', \
                 each starting with a letter or digit, at most {MAX_KEY_LEN} bytes in all)"
            ),
            TreeError::BadHostName(p) => write!(f, "invalid host name: {p} ({})", NameKind::Host.rule()),
            TreeError::BadResourceName(p) => {
                write!(f, "invalid resource name: {p} ({})", NameKind::Resource.rule())
            }
            TreeError::BadItemName(p) => write!(
                f,
                "invalid switch or status name: {p} (a single name of a-z, 0-9, '.', '_', '-', starting with a \
                 letter or digit)"
            ),
            TreeError::BadSequence { seq } => {
                write!(f, "logfile sequence number {seq} is larger than {MAX_SEQ}")
            }
            TreeError::ValueTooLong { len } => {
                write!(f, "value is {len} bytes long, the limit is {MAX_VALUE_LEN}")
            }
            TreeError::ValueNotUtf8 { at } => write!(f, "value is not valid UTF-8 at offset {at}"),
            TreeError::ValueControlChar { at } => {
                write!(f, "value contains a control character (newline, tab, NUL, ...) at offset {at}")
            }
            TreeError::TombstoneWithValue => write!(f, "a deletion marker carries a value"),
            TreeError::BufferTooSmall { needed } => write!(f, "output buffer too small: {needed} bytes needed"),
            TreeError::Truncated { offset, needed, available } => {
                write!(f, "input cut short at offset {offset}: {needed} bytes needed, only {available} left")
            }
            TreeError::BadMagic => write!(f, "not a MARS tree chunk (bad magic)"),
            TreeError::BadVersion { found } => write!(
                f,
                "tree chunk format version {found} is not supported (this MARS reads version {CHUNK_VERSION})"
            ),
            TreeError::BadHeaderLength { found } => {
                write!(f, "tree chunk header length is {found}, expected {CHUNK_HEADER_LEN}")
            }
            TreeError::ChunkTooLarge { len } => {
                write!(f, "tree chunk of {len} bytes is larger than the limit of {MAX_CHUNK_LEN}")
            }
            TreeError::TrailingBytes { offset } => write!(f, "unexpected bytes after the end, at offset {offset}"),
            TreeError::ChecksumMismatch { stored, computed } => write!(
                f,
                "tree chunk checksum mismatch (stored {stored:08x}, computed {computed:08x}): damaged in transit"
            ),
            TreeError::MissingEntries { declared, found } => {
                write!(f, "tree chunk declares {declared} entries but holds only {found}")
            }
            TreeError::BadFlags { flags } => write!(f, "entry has unknown flags 0x{flags:02x}"),
            TreeError::BadLinkTarget { why } => write!(f, "invalid /mars link target: {why}"),
        }
    }
}

/// May `b` start a key component: `[a-z0-9]`.
fn is_component_start(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// May `b` appear in a key component: `[a-z0-9._-]`.
fn is_component_byte(b: u8) -> bool {
    is_component_start(b) || matches!(b, b'.' | b'_' | b'-')
}

/// Checks a key against the key grammar and returns it as text.
///
/// A key is 1 to [`MAX_KEY_DEPTH`] components separated by `/`, at most [`MAX_KEY_LEN`] bytes
/// in all; a component is `[a-z0-9][a-z0-9._-]*`. So no component is empty, `.` or `..`, and no
/// key names a hidden file (the kernel's temporary files under /mars start with `.`).
pub fn validate_key(key: &[u8]) -> Result<&str, TreeError> {
    let bad = TreeError::BadKey;
    if key.is_empty() {
        return Err(bad(NameProblem::Empty));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(bad(NameProblem::TooLong { len: key.len(), max: MAX_KEY_LEN }));
    }
    let mut depth = 0usize;
    let mut at_start = true;
    for (at, &byte) in key.iter().enumerate() {
        if byte == b'/' {
            if at_start {
                return Err(bad(NameProblem::EmptyComponent { at }));
            }
            at_start = true;
        } else if at_start {
            depth = depth.saturating_add(1);
            if depth > MAX_KEY_DEPTH {
                return Err(bad(NameProblem::TooDeep { max: MAX_KEY_DEPTH }));
            }
            if !is_component_start(byte) {
                return Err(bad(NameProblem::BadFirstByte { at, byte }));
            }
            at_start = false;
        } else if !is_component_byte(byte) {
            return Err(bad(NameProblem::BadByte { at, byte }));
        }
    }
    if at_start {
        return Err(bad(NameProblem::EmptyComponent { at: key.len() }));
    }
    names::ascii_str(key).map_err(bad)
}

/// Checks a host name and returns it as text: [`names::validate_host_name`], with the problem
/// reported as a [`TreeError`].
pub fn validate_host_name(name: &[u8]) -> Result<&str, TreeError> {
    names::validate_host_name(name).map_err(TreeError::BadHostName)
}

/// Checks a resource name and returns it as text: [`names::validate_resource_name`], with the
/// problem reported as a [`TreeError`].
pub fn validate_resource_name(name: &[u8]) -> Result<&str, TreeError> {
    names::validate_resource_name(name).map_err(TreeError::BadResourceName)
}

/// Checks the name of a switch, status item, setting or request (the last component of its
/// key) and returns it as text: one key component, `[a-z0-9][a-z0-9._-]*`.
pub fn validate_item_name(name: &[u8]) -> Result<&str, TreeError> {
    check_name(name, MAX_KEY_LEN, is_component_start, is_component_byte).map_err(TreeError::BadItemName)
}

/// Checks a value and returns it as text.
///
/// At most [`MAX_VALUE_LEN`] bytes of UTF-8 without control characters (so no NUL, newline,
/// tab or DEL). Spaces, `|`, `,` and any printable character are allowed; the value may be empty.
pub fn validate_value(value: &[u8]) -> Result<&str, TreeError> {
    if value.len() > MAX_VALUE_LEN {
        return Err(TreeError::ValueTooLong { len: value.len() });
    }
    let text = core::str::from_utf8(value).map_err(|e| TreeError::ValueNotUtf8 { at: e.valid_up_to() })?;
    if let Some((at, _)) = text.char_indices().find(|(_, c)| c.is_control()) {
        return Err(TreeError::ValueControlChar { at });
    }
    Ok(text)
}

/// A key built on the stack, without allocation; it always satisfies [`validate_key`].
#[derive(Clone, Copy)]
pub struct KeyBuf {
    bytes: [u8; MAX_KEY_LEN],
    /// Bytes used; at most `MAX_KEY_LEN`.
    len: usize,
}

impl KeyBuf {
    /// Concatenates `parts` and checks that the result is a key.
    fn from_parts(parts: &[&[u8]]) -> Result<KeyBuf, TreeError> {
        let len = parts.iter().fold(0usize, |sum, p| sum.saturating_add(p.len()));
        if len > MAX_KEY_LEN {
            return Err(TreeError::BadKey(NameProblem::TooLong { len, max: MAX_KEY_LEN }));
        }
        let mut key = KeyBuf { bytes: [0; MAX_KEY_LEN], len: 0 };
        for part in parts {
            // The parts add up to `len` <= MAX_KEY_LEN bytes, so every range lies in `bytes`.
            let end = key.len.saturating_add(part.len());
            if let Some(dst) = key.bytes.get_mut(key.len..end) {
                // Byte by byte rather than `copy_from_slice`, which keeps a length-mismatch panic
                // the compiler cannot rule out.
                dst.iter_mut().zip(part.iter()).for_each(|(d, s)| *d = *s);
            }
            key.len = end;
        }
        validate_key(key.as_bytes())?;
        Ok(key)
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    /// The key as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }
}

impl PartialEq for KeyBuf {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for KeyBuf {}

impl fmt::Debug for KeyBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for KeyBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The key families MARS knows, with their variable parts (docs/tree.md has the full table).
///
/// Keys of other shapes are still valid keys: the tree stores and replicates them unchanged,
/// so hosts running a newer MARS can add families.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key<'a> {
    /// `uuid`: the identity of the cluster.
    ClusterId,
    /// `ips/ip-HOST`: HOST is a member of the cluster, reachable at the address in the value.
    HostAddress {
        /// The member.
        host: &'a str,
    },
    /// `actual-HOST/ITEM`: status of HOST as a whole (alive, time, free space, ...).
    HostStatus {
        /// The host.
        host: &'a str,
        /// The status item.
        item: &'a str,
    },
    /// `defaults/ITEM`: a cluster-wide setting.
    ClusterSetting {
        /// The setting.
        item: &'a str,
    },
    /// `defaults-HOST/ITEM`: a setting of one host.
    HostSetting {
        /// The host.
        host: &'a str,
        /// The setting.
        item: &'a str,
    },
    /// `todo-global/ITEM`: a cluster-wide request, such as forgetting a host that left.
    GlobalRequest {
        /// The request.
        item: &'a str,
    },
    /// `resource-RES/size`: size of the resource in bytes.
    Size {
        /// The resource.
        resource: &'a str,
    },
    /// `resource-RES/primary`: the designated primary, or `(none)`.
    Primary {
        /// The resource.
        resource: &'a str,
    },
    /// `resource-RES/data-HOST`: HOST's backing device of the resource.
    DataDevice {
        /// The resource.
        resource: &'a str,
        /// The member.
        host: &'a str,
    },
    /// `resource-RES/device-HOST`: name of the resource's device on HOST (`/dev/mars/NAME`).
    DeviceName {
        /// The resource.
        resource: &'a str,
        /// The member.
        host: &'a str,
    },
    /// `resource-RES/replay-HOST`: how far HOST has applied the resource's log.
    ReplayPosition {
        /// The resource.
        resource: &'a str,
        /// The member.
        host: &'a str,
    },
    /// `resource-RES/version-SEQ-HOST`: HOST's chained digest of logfile SEQ.
    Version {
        /// The resource.
        resource: &'a str,
        /// The logfile sequence number, at most [`MAX_SEQ`].
        seq: u32,
        /// The member.
        host: &'a str,
    },
    /// `resource-RES/syncstatus-HOST`: bytes of the full sync HOST has done.
    SyncStatus {
        /// The resource.
        resource: &'a str,
        /// The member.
        host: &'a str,
    },
    /// `resource-RES/syncpos-HOST`: log position HOST must replay past to be consistent after
    /// its full sync.
    SyncPosition {
        /// The resource.
        resource: &'a str,
        /// The member.
        host: &'a str,
    },
    /// `resource-RES/todo-HOST/SWITCH`: what HOST is asked to do (attach, fetch, replay, ...).
    Switch {
        /// The resource.
        resource: &'a str,
        /// The member.
        host: &'a str,
        /// The switch.
        switch: &'a str,
    },
    /// `resource-RES/actual-HOST/ITEM`: what HOST reports it does.
    Status {
        /// The resource.
        resource: &'a str,
        /// The member.
        host: &'a str,
        /// The status item.
        item: &'a str,
    },
}

/// Host name as bytes, checked.
fn host_part(host: &str) -> Result<&[u8], TreeError> {
    validate_host_name(host.as_bytes()).map(str::as_bytes)
}

/// Resource name as bytes, checked.
fn resource_part(resource: &str) -> Result<&[u8], TreeError> {
    validate_resource_name(resource.as_bytes()).map(str::as_bytes)
}

/// Item name as bytes, checked.
fn item_part(item: &str) -> Result<&[u8], TreeError> {
    validate_item_name(item.as_bytes()).map(str::as_bytes)
}

/// `seq` as exactly nine decimal digits.
fn nine_digits(seq: u32) -> Result<[u8; names::SEQ_DIGITS], TreeError> {
    names::seq_digits(seq).ok_or(TreeError::BadSequence { seq })
}

/// The host name in `text` if it is one.
fn host_in(text: &str) -> Option<&str> {
    names::validate_host_name(text.as_bytes()).ok()
}

impl<'a> Key<'a> {
    /// Formats the key, checking every name in it.
    pub fn to_buf(&self) -> Result<KeyBuf, TreeError> {
        const E: &[u8] = b"";
        let digits = match *self {
            Key::Version { seq, .. } => nine_digits(seq)?,
            _ => [b'0'; names::SEQ_DIGITS],
        };
        let parts: [&[u8]; 6] = match *self {
            Key::ClusterId => [b"uuid", E, E, E, E, E],
            Key::HostAddress { host } => [b"ips/ip-", host_part(host)?, E, E, E, E],
            Key::HostStatus { host, item } => [b"actual-", host_part(host)?, b"/", item_part(item)?, E, E],
            Key::ClusterSetting { item } => [b"defaults/", item_part(item)?, E, E, E, E],
            Key::HostSetting { host, item } => [b"defaults-", host_part(host)?, b"/", item_part(item)?, E, E],
            Key::GlobalRequest { item } => [b"todo-global/", item_part(item)?, E, E, E, E],
            Key::Size { resource } => [b"resource-", resource_part(resource)?, b"/size", E, E, E],
            Key::Primary { resource } => [b"resource-", resource_part(resource)?, b"/primary", E, E, E],
            Key::DataDevice { resource, host } => {
                [b"resource-", resource_part(resource)?, b"/data-", host_part(host)?, E, E]
            }
            Key::DeviceName { resource, host } => {
                [b"resource-", resource_part(resource)?, b"/device-", host_part(host)?, E, E]
            }
            Key::ReplayPosition { resource, host } => {
                [b"resource-", resource_part(resource)?, b"/replay-", host_part(host)?, E, E]
            }
            Key::Version { resource, host, .. } => {
                [b"resource-", resource_part(resource)?, b"/version-", &digits, b"-", host_part(host)?]
            }
            Key::SyncStatus { resource, host } => {
                [b"resource-", resource_part(resource)?, b"/syncstatus-", host_part(host)?, E, E]
            }
            Key::SyncPosition { resource, host } => {
                [b"resource-", resource_part(resource)?, b"/syncpos-", host_part(host)?, E, E]
            }
            Key::Switch { resource, host, switch } => {
                [b"resource-", resource_part(resource)?, b"/todo-", host_part(host)?, b"/", item_part(switch)?]
            }
            Key::Status { resource, host, item } => {
                [b"resource-", resource_part(resource)?, b"/actual-", host_part(host)?, b"/", item_part(item)?]
            }
        };
        KeyBuf::from_parts(&parts)
    }

    /// Recognizes the family of `key`; `None` if it is not a valid key of a known family.
    ///
    /// For every `k` returned, `k.to_buf()` gives back exactly `key`.
    pub fn parse(key: &'a str) -> Option<Key<'a>> {
        validate_key(key.as_bytes()).ok()?;
        let mut levels = key.split('/');
        let top = levels.next()?;
        let second = levels.next();
        let third = levels.next();
        if levels.next().is_some() {
            return None;
        }
        match (top, second, third) {
            ("uuid", None, None) => Some(Key::ClusterId),
            ("ips", Some(name), None) => Some(Key::HostAddress { host: host_in(name.strip_prefix("ip-")?)? }),
            ("defaults", Some(item), None) => Some(Key::ClusterSetting { item }),
            ("todo-global", Some(item), None) => Some(Key::GlobalRequest { item }),
            (top, Some(item), None) => {
                if let Some(host) = top.strip_prefix("actual-") {
                    Some(Key::HostStatus { host: host_in(host)?, item })
                } else if let Some(resource) = top.strip_prefix("resource-") {
                    Key::parse_resource_key(names::validate_resource_name(resource.as_bytes()).ok()?, item)
                } else {
                    Some(Key::HostSetting { host: host_in(top.strip_prefix("defaults-")?)?, item })
                }
            }
            (top, Some(dir), Some(item)) => {
                let resource = names::validate_resource_name(top.strip_prefix("resource-")?.as_bytes()).ok()?;
                if let Some(host) = dir.strip_prefix("todo-") {
                    Some(Key::Switch { resource, host: host_in(host)?, switch: item })
                } else {
                    Some(Key::Status { resource, host: host_in(dir.strip_prefix("actual-")?)?, item })
                }
            }
            _ => None,
        }
    }

    /// Recognizes `name` as the second level of a key under `resource-RES/`.
    fn parse_resource_key(resource: &'a str, name: &'a str) -> Option<Key<'a>> {
        match name {
            "size" => return Some(Key::Size { resource }),
            "primary" => return Some(Key::Primary { resource }),
            _ => {}
        }
        if let Some(rest) = name.strip_prefix("version-") {
            let (seq, host) = names::parse_seq_host(rest.as_bytes())?;
            return Some(Key::Version { resource, seq, host });
        }
        let (prefix, host) = name.split_once('-')?;
        let host = host_in(host)?;
        match prefix {
            "data" => Some(Key::DataDevice { resource, host }),
            "device" => Some(Key::DeviceName { resource, host }),
            "replay" => Some(Key::ReplayPosition { resource, host }),
            "syncstatus" => Some(Key::SyncStatus { resource, host }),
            "syncpos" => Some(Key::SyncPosition { resource, host }),
            _ => None,
        }
    }

    /// The host this key is about (the member whose state it holds), if any.
    pub fn host(&self) -> Option<&'a str> {
        match *self {
            Key::ClusterId | Key::ClusterSetting { .. } | Key::GlobalRequest { .. } => None,
            Key::Size { .. } | Key::Primary { .. } => None,
            Key::HostAddress { host }
            | Key::HostStatus { host, .. }
            | Key::HostSetting { host, .. }
            | Key::DataDevice { host, .. }
            | Key::DeviceName { host, .. }
            | Key::ReplayPosition { host, .. }
            | Key::Version { host, .. }
            | Key::SyncStatus { host, .. }
            | Key::SyncPosition { host, .. }
            | Key::Switch { host, .. }
            | Key::Status { host, .. } => Some(host),
        }
    }

    /// The resource this key belongs to, if any.
    pub fn resource(&self) -> Option<&'a str> {
        match *self {
            Key::ClusterId
            | Key::HostAddress { .. }
            | Key::HostStatus { .. }
            | Key::ClusterSetting { .. }
            | Key::HostSetting { .. }
            | Key::GlobalRequest { .. } => None,
            Key::Size { resource }
            | Key::Primary { resource }
            | Key::DataDevice { resource, .. }
            | Key::DeviceName { resource, .. }
            | Key::ReplayPosition { resource, .. }
            | Key::Version { resource, .. }
            | Key::SyncStatus { resource, .. }
            | Key::SyncPosition { resource, .. }
            | Key::Switch { resource, .. }
            | Key::Status { resource, .. } => Some(resource),
        }
    }
}

/// One entry of the tree, borrowed from wherever it is stored or was received.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EntryRef<'a> {
    /// The key.
    pub key: &'a str,
    /// The value; empty for a tombstone.
    pub value: &'a str,
    /// The stamp of the update that made this entry; its host is the entry's origin.
    pub stamp: Stamp,
    /// True for a tombstone: the key was deleted at `stamp`.
    pub deleted: bool,
}

impl<'a> EntryRef<'a> {
    /// A live entry, checked.
    pub fn live(key: &'a str, value: &'a str, stamp: Stamp) -> Result<EntryRef<'a>, TreeError> {
        let entry = EntryRef { key, value, stamp, deleted: false };
        entry.validate()?;
        Ok(entry)
    }

    /// A tombstone: `key` deleted at `stamp`, checked.
    pub fn tombstone(key: &'a str, stamp: Stamp) -> Result<EntryRef<'a>, TreeError> {
        let entry = EntryRef { key, value: "", stamp, deleted: true };
        entry.validate()?;
        Ok(entry)
    }

    /// Checks key, value, and that a tombstone has an empty value.
    pub fn validate(&self) -> Result<(), TreeError> {
        validate_key(self.key.as_bytes())?;
        validate_value(self.value.as_bytes())?;
        if self.deleted && !self.value.is_empty() {
            return Err(TreeError::TombstoneWithValue);
        }
        Ok(())
    }

    /// The host whose update made this entry.
    pub fn origin(&self) -> HostId {
        self.stamp.host
    }
}

/// Ranks two entries: `Greater` if `a` wins over `b`.
///
/// For entries of one key: the greater stamp wins; at equal stamps (which honest hosts never
/// produce, since a stamp names its host) the tombstone wins, then the greater value. The key
/// decides last, so this is a total order over all entries that is `Equal` only for equal
/// entries; every host thus keeps the same winner whatever order entries arrive in.
pub fn precedence(a: &EntryRef<'_>, b: &EntryRef<'_>) -> Ordering {
    a.stamp.cmp(&b.stamp).then(a.deleted.cmp(&b.deleted)).then(a.value.cmp(b.value)).then(a.key.cmp(b.key))
}

/// The winner of two entries of the same key (by [`precedence`]).
pub fn newer<'a>(a: EntryRef<'a>, b: EntryRef<'a>) -> EntryRef<'a> {
    if precedence(&a, &b) == Ordering::Less {
        b
    } else {
        a
    }
}

/// Whether a host that stores `stored` for a key (or nothing) must replace it with `incoming`.
///
/// True if nothing is stored or `incoming` wins; false for an equal or older entry. Tombstones
/// are stored like any entry, also for keys not stored yet: dropping them early could let an
/// older copy of the key come back.
pub fn supersedes(incoming: &EntryRef<'_>, stored: Option<&EntryRef<'_>>) -> bool {
    stored.is_none_or(|s| precedence(incoming, s) == Ordering::Greater)
}

/// The oldest of `acks`, or [`Stamp::ZERO`] if there are none.
///
/// Used twice (docs/tree.md, "Tombstones and their collection"): a host's own acknowledgement
/// is the oldest of the snapshot stamps of its last complete pull from every member, and the
/// GC horizon is the oldest of all members' acknowledgements.
pub fn gc_horizon<I: IntoIterator<Item = Stamp>>(acks: I) -> Stamp {
    acks.into_iter().min().unwrap_or(Stamp::ZERO)
}

/// Whether `entry` may be dropped from the tree, given the GC `horizon` (see [`gc_horizon`]).
///
/// Only tombstones older than the horizon go: every member holds them (or something newer for
/// the key), so no member can send an older live copy of the key any more.
pub fn may_collect(entry: &EntryRef<'_>, horizon: Stamp) -> bool {
    entry.deleted && entry.stamp < horizon
}

#[cfg(test)]
mod tests {
    use super::super::names::{MAX_HOST_NAME_LEN, MAX_RESOURCE_NAME_LEN};
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::string::{String, ToString};
    use std::vec::Vec;

    #[test]
    fn keys_accept_and_reject() {
        let max = "a".repeat(MAX_KEY_LEN);
        for ok in [
            "uuid",
            "ips/ip-node1",
            "resource-r0/primary",
            "resource-r0/todo-node1/attach",
            "resource-r0/version-000000001-node1",
            "todo-global/delete-x_y.z",
            "a/b/c/d",
            "0",
            max.as_str(),
        ] {
            assert_eq!(validate_key(ok.as_bytes()), Ok(ok), "{ok}");
        }
        let bad = TreeError::BadKey;
        let too_long = "a".repeat(MAX_KEY_LEN + 1);
        for (key, problem) in [
            ("", NameProblem::Empty),
            (too_long.as_str(), NameProblem::TooLong { len: MAX_KEY_LEN + 1, max: MAX_KEY_LEN }),
            ("a/b/c/d/e", NameProblem::TooDeep { max: MAX_KEY_DEPTH }),
            ("/a", NameProblem::EmptyComponent { at: 0 }),
            ("a//b", NameProblem::EmptyComponent { at: 2 }),
            ("a/", NameProblem::EmptyComponent { at: 2 }),
            ("a/./b", NameProblem::BadFirstByte { at: 2, byte: b'.' }),
            ("a/../b", NameProblem::BadFirstByte { at: 2, byte: b'.' }),
            (".tmp-x", NameProblem::BadFirstByte { at: 0, byte: b'.' }),
            ("-a", NameProblem::BadFirstByte { at: 0, byte: b'-' }),
            ("Uuid", NameProblem::BadFirstByte { at: 0, byte: b'U' }),
            ("ab c", NameProblem::BadByte { at: 2, byte: b' ' }),
            ("ab\0", NameProblem::BadByte { at: 2, byte: 0 }),
            ("a\u{e9}", NameProblem::BadByte { at: 1, byte: 0xc3 }),
        ] {
            assert_eq!(validate_key(key.as_bytes()), Err(bad(problem)), "{key:?}");
        }
    }

    #[test]
    fn host_names_accept_and_reject() {
        let max = "h".repeat(MAX_HOST_NAME_LEN);
        for ok in ["node1", "a", "db-2-east", "x9", max.as_str()] {
            assert_eq!(validate_host_name(ok.as_bytes()), Ok(ok), "{ok}");
        }
        let bad = TreeError::BadHostName;
        let too_long = "h".repeat(MAX_HOST_NAME_LEN + 1);
        for (name, problem) in [
            ("", NameProblem::Empty),
            (too_long.as_str(), NameProblem::TooLong { len: MAX_HOST_NAME_LEN + 1, max: MAX_HOST_NAME_LEN }),
            ("1node", NameProblem::BadFirstByte { at: 0, byte: b'1' }),
            ("Node", NameProblem::BadFirstByte { at: 0, byte: b'N' }),
            ("node_1", NameProblem::BadByte { at: 4, byte: b'_' }),
            ("node.example", NameProblem::BadByte { at: 4, byte: b'.' }),
            ("node-", NameProblem::TrailingHyphen),
            ("all", NameProblem::Reserved),
            ("none", NameProblem::Reserved),
            ("global", NameProblem::Reserved),
            ("local", NameProblem::Reserved),
            ("remote", NameProblem::Reserved),
        ] {
            assert_eq!(validate_host_name(name.as_bytes()), Err(bad(problem)), "{name:?}");
        }
        assert_eq!(validate_host_name(b"(none)"), Err(bad(NameProblem::BadFirstByte { at: 0, byte: b'(' })));
    }

    #[test]
    fn resource_and_item_names_accept_and_reject() {
        let max = "r".repeat(MAX_RESOURCE_NAME_LEN);
        for ok in ["r0", "0db", "lv_home-1", "a-b", max.as_str()] {
            assert_eq!(validate_resource_name(ok.as_bytes()), Ok(ok));
            assert_eq!(validate_item_name(ok.as_bytes()), Ok(ok));
        }
        // Items are key components, which may hold '.' and be as long as a key; resource names
        // are also device names and may not.
        let long = "r".repeat(MAX_RESOURCE_NAME_LEN + 1);
        assert_eq!(validate_item_name(long.as_bytes()), Ok(long.as_str()));
        assert_eq!(
            validate_resource_name(long.as_bytes()),
            Err(TreeError::BadResourceName(NameProblem::TooLong { len: 27, max: 26 }))
        );
        assert_eq!(validate_item_name(b"lv_home.1"), Ok("lv_home.1"));
        assert_eq!(
            validate_resource_name(b"lv_home.1"),
            Err(TreeError::BadResourceName(NameProblem::BadByte { at: 7, byte: b'.' }))
        );
        assert_eq!(validate_resource_name(b"all"), Err(TreeError::BadResourceName(NameProblem::Reserved)));
        assert_eq!(validate_item_name(b"all"), Ok("all"));
        assert_eq!(
            validate_resource_name(b"r/0"),
            Err(TreeError::BadResourceName(NameProblem::BadByte { at: 1, byte: b'/' }))
        );
        assert_eq!(
            validate_item_name(b"is-primary/x"),
            Err(TreeError::BadItemName(NameProblem::BadByte { at: 10, byte: b'/' }))
        );
        assert_eq!(validate_item_name(b""), Err(TreeError::BadItemName(NameProblem::Empty)));
        assert_eq!(
            validate_resource_name(b"_r"),
            Err(TreeError::BadResourceName(NameProblem::BadFirstByte { at: 0, byte: b'_' }))
        );
    }

    #[test]
    fn values_accept_and_reject() {
        let max = "v".repeat(MAX_VALUE_LEN);
        for ok in
            ["", "1", "/dev/vg0/r0", "log-000000003-node1,4096,0", "a b, c | d", "gr\u{fc}n \u{2713}", max.as_str()]
        {
            assert_eq!(validate_value(ok.as_bytes()), Ok(ok), "{ok:?}");
        }
        let too_long = "v".repeat(MAX_VALUE_LEN + 1);
        assert_eq!(validate_value(too_long.as_bytes()), Err(TreeError::ValueTooLong { len: MAX_VALUE_LEN + 1 }));
        assert_eq!(validate_value(b"a\nb"), Err(TreeError::ValueControlChar { at: 1 }));
        assert_eq!(validate_value(b"\0"), Err(TreeError::ValueControlChar { at: 0 }));
        assert_eq!(validate_value(b"ab\t"), Err(TreeError::ValueControlChar { at: 2 }));
        assert_eq!(validate_value(b"\x7f"), Err(TreeError::ValueControlChar { at: 0 }));
        assert_eq!(validate_value("x\u{85}".as_bytes()), Err(TreeError::ValueControlChar { at: 1 }));
        assert_eq!(validate_value(b"ab\xff"), Err(TreeError::ValueNotUtf8 { at: 2 }));
        assert_eq!(validate_value(b"\xc3"), Err(TreeError::ValueNotUtf8 { at: 0 }));
    }

    /// Every key family with its text.
    fn family_table() -> Vec<(Key<'static>, &'static str)> {
        let (r, h) = ("r0", "node1");
        std::vec![
            (Key::ClusterId, "uuid"),
            (Key::HostAddress { host: h }, "ips/ip-node1"),
            (Key::HostStatus { host: h, item: "alive" }, "actual-node1/alive"),
            (Key::ClusterSetting { item: "sync-limit" }, "defaults/sync-limit"),
            (Key::HostSetting { host: h, item: "sync-limit" }, "defaults-node1/sync-limit"),
            (Key::GlobalRequest { item: "deleted-node2" }, "todo-global/deleted-node2"),
            (Key::Size { resource: r }, "resource-r0/size"),
            (Key::Primary { resource: r }, "resource-r0/primary"),
            (Key::DataDevice { resource: r, host: h }, "resource-r0/data-node1"),
            (Key::DeviceName { resource: r, host: h }, "resource-r0/device-node1"),
            (Key::ReplayPosition { resource: r, host: h }, "resource-r0/replay-node1"),
            (Key::Version { resource: r, seq: 1, host: h }, "resource-r0/version-000000001-node1"),
            (Key::Version { resource: r, seq: MAX_SEQ, host: "a-b" }, "resource-r0/version-999999999-a-b"),
            (Key::SyncStatus { resource: r, host: h }, "resource-r0/syncstatus-node1"),
            (Key::SyncPosition { resource: r, host: h }, "resource-r0/syncpos-node1"),
            (Key::Switch { resource: r, host: h, switch: "attach" }, "resource-r0/todo-node1/attach"),
            (Key::Status { resource: r, host: h, item: "is-primary" }, "resource-r0/actual-node1/is-primary"),
        ]
    }

    #[test]
    fn key_families_format_and_parse() {
        for (key, text) in family_table() {
            assert_eq!(key.to_buf().map(|b| b.to_string()), Ok(text.to_string()));
            assert_eq!(Key::parse(text), Some(key), "{text}");
        }
        let k = Key::Switch { resource: "r0", host: "node1", switch: "attach" };
        assert_eq!((k.host(), k.resource()), (Some("node1"), Some("r0")));
        assert_eq!((Key::ClusterId.host(), Key::ClusterId.resource()), (None, None));
        assert_eq!(Key::HostAddress { host: "b" }.host(), Some("b"));
        assert_eq!(Key::Size { resource: "r" }.resource(), Some("r"));
    }

    #[test]
    fn unknown_or_malformed_keys_have_no_family() {
        for text in [
            "maxnr",
            "ips/node1",
            "ips/ip-Node1",
            "ips/ip-all",
            "actual-global/alive",
            "todo-node1/attach",
            "defaults-/x",
            "resource-all/size",
            "resource-r.0/size",
            "resource-abcdefghijklmnopqrstuvwxyz0/size",
            "resource-r0/version-00000001-node1",
            "resource-r0/version-0000000001-node1",
            "resource-r0/version-000000001-all",
            "resource-r0/version-000000001-node-",
            "resource-r0/log-000000001-node1",
            "resource-r0/version-1-node1",
            "resource-r0/version-00000000x-node1",
            "resource-r0/version-000000001node1",
            "resource-r0/version-000000001-",
            "resource-r0/data-",
            "resource-r0/todo-global/attach",
            "resource-r0/other-node1/x",
            "resource-r0/size/x",
            "resource-r0/actual-node1/a/b",
            "uuid/x",
            "Uuid",
        ] {
            assert_eq!(Key::parse(text), None, "{text}");
        }
    }

    #[test]
    fn formatting_checks_every_name() {
        assert_eq!(Key::HostAddress { host: "all" }.to_buf(), Err(TreeError::BadHostName(NameProblem::Reserved)));
        assert_eq!(
            Key::Size { resource: "R" }.to_buf(),
            Err(TreeError::BadResourceName(NameProblem::BadFirstByte { at: 0, byte: b'R' }))
        );
        assert_eq!(
            Key::Primary { resource: "r.0" }.to_buf(),
            Err(TreeError::BadResourceName(NameProblem::BadByte { at: 1, byte: b'.' }))
        );
        let long = "r".repeat(27);
        assert_eq!(
            Key::DataDevice { resource: &long, host: "h" }.to_buf(),
            Err(TreeError::BadResourceName(NameProblem::TooLong { len: 27, max: 26 }))
        );
        assert_eq!(
            Key::Switch { resource: "r", host: "h", switch: "a/b" }.to_buf(),
            Err(TreeError::BadItemName(NameProblem::BadByte { at: 1, byte: b'/' }))
        );
        assert_eq!(
            Key::Version { resource: "r", seq: MAX_SEQ + 1, host: "h" }.to_buf(),
            Err(TreeError::BadSequence { seq: MAX_SEQ + 1 })
        );
        let long_item = "i".repeat(190);
        let long = Key::Status { resource: "r", host: "h", item: &long_item }.to_buf();
        assert_eq!(long, Err(TreeError::BadKey(NameProblem::TooLong { len: 210, max: MAX_KEY_LEN })));
    }

    #[test]
    fn messages_speak_to_admins() {
        let e = validate_host_name(b"node_1").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid host name: '_' is not allowed (offset 4) (host names are up to 63 of a-z, 0-9 and '-', \
             start with a letter, do not end with '-' and are none of all, any, global, local, localhost, none, \
             remote, self)"
        );
        let e = validate_resource_name(b"r.0").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid resource name: '.' is not allowed (offset 1) (resource names are up to 26 of a-z, 0-9, '_' and \
             '-', start with a letter or digit and are not all)"
        );
        let e = validate_key(b"a//b").unwrap_err();
        assert!(e.to_string().starts_with("invalid key: empty level at offset 2 (a doubled, leading or trailing '/')"));
        assert_eq!(
            validate_key(b"a\x01").unwrap_err().to_string().split(" (keys").next(),
            Some("invalid key: byte 0x01 is not allowed (offset 1)")
        );
        assert_eq!(TreeError::ValueTooLong { len: 2000 }.to_string(), "value is 2000 bytes long, the limit is 1024");
        assert_eq!(
            TreeError::ChecksumMismatch { stored: 1, computed: 0xabc }.to_string(),
            "tree chunk checksum mismatch (stored 00000001, computed 00000abc): damaged in transit"
        );
        assert_eq!(
            TreeError::BadVersion { found: 7 }.to_string(),
            "tree chunk format version 7 is not supported (this MARS reads version 1)"
        );
    }

    #[test]
    fn entries_are_checked() {
        let s = Stamp::new(5, HostId(1));
        assert!(EntryRef::live("uuid", "c1", s).is_ok());
        assert_eq!(EntryRef::live("uuid", "a\nb", s), Err(TreeError::ValueControlChar { at: 1 }));
        assert_eq!(EntryRef::live("", "x", s), Err(TreeError::BadKey(NameProblem::Empty)));
        let t = EntryRef::tombstone("uuid", s).unwrap();
        assert!(t.deleted && t.value.is_empty());
        assert_eq!(t.origin(), HostId(1));
        let bad = EntryRef { value: "x", ..t };
        assert_eq!(bad.validate(), Err(TreeError::TombstoneWithValue));
    }

    #[test]
    fn newer_stamp_wins_and_ties_are_deterministic() {
        let old = EntryRef::live("k", "old", Stamp::new(1, HostId(9))).unwrap();
        let new = EntryRef::live("k", "new", Stamp::new(2, HostId(0))).unwrap();
        let gone = EntryRef::tombstone("k", Stamp::new(2, HostId(0))).unwrap();
        assert_eq!(newer(old, new), new);
        assert_eq!(newer(new, old), new);
        assert_eq!(newer(new, gone), gone, "at equal stamps the deletion wins");
        let a = EntryRef::live("k", "a", Stamp::new(2, HostId(0))).unwrap();
        assert_eq!(newer(a, new), new, "then the greater value");
        assert!(supersedes(&new, Some(&old)));
        assert!(!supersedes(&old, Some(&new)));
        assert!(!supersedes(&new, Some(&new)));
        assert!(supersedes(&gone, None), "tombstones are stored for unknown keys too");
    }

    // ---- Model: a tree as a BTreeMap, merged with the rules above. ----

    #[derive(Clone, Debug, PartialEq, Eq)]
    struct Owned {
        value: String,
        stamp: Stamp,
        deleted: bool,
    }

    type Tree = BTreeMap<String, Owned>;

    fn view<'a>(key: &'a str, e: &'a Owned) -> EntryRef<'a> {
        EntryRef { key, value: &e.value, stamp: e.stamp, deleted: e.deleted }
    }

    /// Stores `e` under `key` if it supersedes what is there; true if stored.
    fn apply(t: &mut Tree, key: &str, e: &Owned) -> bool {
        let wins = supersedes(&view(key, e), t.get(key).map(|s| view(key, s)).as_ref());
        if wins {
            t.insert(key.to_string(), e.clone());
        }
        wins
    }

    /// Per-key maximum of two trees, with `newer`.
    fn merge(a: &Tree, b: &Tree) -> Tree {
        let mut out = a.clone();
        for (k, eb) in b {
            let winner = match a.get(k) {
                Some(ea) => newer(view(k, ea), view(k, eb)),
                None => view(k, eb),
            };
            out.insert(
                k.clone(),
                Owned { value: winner.value.to_string(), stamp: winner.stamp, deleted: winner.deleted },
            );
        }
        out
    }

    fn live(t: &Tree) -> BTreeMap<String, String> {
        t.iter().filter(|(_, e)| !e.deleted).map(|(k, e)| (k.clone(), e.value.clone())).collect()
    }

    const KEYS: [&str; 5] = ["uuid", "ips/ip-a", "resource-r0/primary", "resource-r0/todo-b/attach", "x"];
    const VALUES: [&str; 4] = ["", "a", "b", "node 1, |x"];

    fn arb_update() -> impl Strategy<Value = (String, Owned)> {
        (0..KEYS.len(), 0..VALUES.len(), 0u64..6, 0u64..3, any::<bool>()).prop_map(|(k, v, nanos, host, deleted)| {
            let value = if deleted { String::new() } else { VALUES[v].to_string() };
            (KEYS[k].to_string(), Owned { value, stamp: Stamp::new(nanos, HostId(host)), deleted })
        })
    }

    fn arb_tree() -> impl Strategy<Value = Tree> {
        proptest::collection::vec(arb_update(), 0..12).prop_map(|updates| {
            let mut t = Tree::new();
            for (k, e) in &updates {
                apply(&mut t, k, e);
            }
            t
        })
    }

    fn arb_entry() -> impl Strategy<Value = Owned> {
        arb_update().prop_map(|(_, e)| e)
    }

    proptest! {
        /// `precedence` is a total order that is `Equal` exactly for equal entries.
        #[test]
        fn precedence_is_a_total_order(a in arb_entry(), b in arb_entry(), c in arb_entry()) {
            let (a, b, c) = (view("k", &a), view("k", &b), view("k", &c));
            prop_assert_eq!(precedence(&a, &b), precedence(&b, &a).reverse());
            prop_assert_eq!(precedence(&a, &b) == Ordering::Equal, a == b);
            if precedence(&a, &b) != Ordering::Greater && precedence(&b, &c) != Ordering::Greater {
                prop_assert_ne!(precedence(&a, &c), Ordering::Greater);
            }
            prop_assert_eq!(newer(a, b), newer(b, a));
        }

        #[test]
        fn merge_is_commutative(a in arb_tree(), b in arb_tree()) {
            prop_assert_eq!(merge(&a, &b), merge(&b, &a));
        }

        #[test]
        fn merge_is_associative(a in arb_tree(), b in arb_tree(), c in arb_tree()) {
            prop_assert_eq!(merge(&merge(&a, &b), &c), merge(&a, &merge(&b, &c)));
        }

        #[test]
        fn merge_is_idempotent(a in arb_tree(), b in arb_tree()) {
            prop_assert_eq!(merge(&a, &a), a.clone());
            let ab = merge(&a, &b);
            prop_assert_eq!(merge(&ab, &b), ab.clone());
        }

        /// Applying entries one by one with `supersedes` equals merging with `newer`.
        #[test]
        fn apply_agrees_with_merge(a in arb_tree(), b in arb_tree()) {
            let mut applied = a.clone();
            for (k, e) in &b {
                apply(&mut applied, k, e);
            }
            prop_assert_eq!(applied, merge(&a, &b));
        }

        /// Replicas that receive the same updates in any order, some of them twice, end equal.
        #[test]
        fn any_order_of_updates_converges(
            (updates, orders) in proptest::collection::vec(arb_update(), 0..20).prop_flat_map(|u| {
                let n = u.len();
                let order = Just((0..n).collect::<Vec<_>>()).prop_shuffle();
                (Just(u), proptest::collection::vec((order, proptest::collection::vec(0..n.max(1), 0..5)), 3))
            })
        ) {
            let mut replicas = Vec::new();
            for (order, repeats) in &orders {
                let mut t = Tree::new();
                for &i in order.iter().chain(repeats.iter().filter(|&&i| i < updates.len())) {
                    apply(&mut t, &updates[i].0, &updates[i].1);
                }
                replicas.push(t);
            }
            let all = updates.iter().fold(Tree::new(), |t, (k, e)| merge(&t, &Tree::from([(k.clone(), e.clone())])));
            for r in &replicas {
                prop_assert_eq!(r, &all);
            }
        }

        /// Once all replicas hold the same tree, any of them may collect tombstones below any
        /// horizon: exchanging trees afterwards, in any order, never brings a deleted key back
        /// and never loses a live one.
        #[test]
        fn collection_after_convergence_never_resurrects(
            updates in proptest::collection::vec(arb_update(), 0..20),
            horizon in (0u64..8, 0u64..3),
            collects in proptest::collection::vec(any::<bool>(), 3),
            exchanges in proptest::collection::vec((0usize..3, 0usize..3), 0..12),
        ) {
            let converged = updates.iter().fold(Tree::new(), |mut t, (k, e)| { apply(&mut t, k, e); t });
            let horizon = Stamp::new(horizon.0, HostId(horizon.1));
            let mut replicas: Vec<Tree> = collects.iter().map(|&collect| {
                let mut t = converged.clone();
                if collect {
                    t.retain(|k, e| !may_collect(&view(k, e), horizon));
                }
                t
            }).collect();
            for (to, from) in exchanges.iter().copied().chain((0..3).flat_map(|a| (0..3).map(move |b| (a, b)))) {
                let sent = replicas[from].clone();
                for (k, e) in &sent {
                    apply(&mut replicas[to], k, e);
                }
            }
            for r in &replicas {
                prop_assert_eq!(live(r), live(&converged));
                for (k, e) in r {
                    prop_assert_eq!(Some(e), converged.get(k));
                }
            }
        }
    }

    #[test]
    fn horizon_is_the_oldest_acknowledgement() {
        assert_eq!(gc_horizon([]), Stamp::ZERO);
        let acks = [Stamp::new(9, HostId(1)), Stamp::new(4, HostId(2)), Stamp::new(7, HostId(0))];
        assert_eq!(gc_horizon(acks), Stamp::new(4, HostId(2)));
        let t = EntryRef::tombstone("k", Stamp::new(3, HostId(5))).unwrap();
        assert!(may_collect(&t, Stamp::new(4, HostId(0))));
        assert!(!may_collect(&t, Stamp::new(3, HostId(5))), "not at the horizon itself");
        let l = EntryRef::live("k", "v", Stamp::new(3, HostId(5))).unwrap();
        assert!(!may_collect(&l, Stamp::new(u64::MAX, HostId(0))), "live entries stay");
    }

    /// Why the horizon must come from acknowledgements of what hosts *hold*, not from the newest
    /// stamp heard from each host: a host whose clock runs ahead can be heard from "after" a
    /// deletion it has never received.
    #[test]
    fn newest_stamp_heard_is_not_a_safe_horizon() {
        let key = "resource-r0/primary";
        let (a, b) = (HostId(1), HostId(2));
        let old = Owned { value: "node1".into(), stamp: Stamp::new(10, b), deleted: false };
        let delete = Owned { value: String::new(), stamp: Stamp::new(100, a), deleted: true };
        let unrelated = Owned { value: "1".into(), stamp: Stamp::new(1000, b), deleted: false };
        // Host B wrote the key and, with its clock far ahead, something else; it never got the
        // deletion. Host C holds the deletion and has heard from A (at 150) and B (at 1000).
        let host_b = Tree::from([(key.to_string(), old.clone()), ("uuid".to_string(), unrelated)]);
        let mut host_c = Tree::from([(key.to_string(), delete.clone())]);
        let naive = gc_horizon([Stamp::new(150, a), Stamp::new(1000, b)]);
        host_c.retain(|k, e| !may_collect(&view(k, e), naive));
        for (k, e) in &host_b {
            apply(&mut host_c, k, e);
        }
        assert_eq!(host_c.get(key), Some(&old), "the deleted key came back");
        // With acknowledgements, B's is at most the snapshot of its last pull from A, which
        // predates the deletion, so the tombstone stays and wins.
        let mut host_c = Tree::from([(key.to_string(), delete.clone())]);
        let acked = gc_horizon([Stamp::new(150, a), Stamp::new(50, a)]);
        host_c.retain(|k, e| !may_collect(&view(k, e), acked));
        for (k, e) in &host_b {
            apply(&mut host_c, k, e);
        }
        assert_eq!(host_c.get(key), Some(&delete));
    }

    proptest! {
        /// Every key built from valid names formats to a valid key and parses back to itself.
        #[test]
        fn typed_keys_round_trip(
            family in 0usize..16,
            resource in "[a-z0-9][a-z0-9_-]{0,25}",
            host in "[a-z][a-z0-9-]{0,20}[a-z0-9]",
            item in "[a-z0-9][a-z0-9._-]{0,20}",
            seq in 0u32..=MAX_SEQ,
        ) {
            prop_assume!(validate_resource_name(resource.as_bytes()).is_ok());
            prop_assume!(validate_host_name(host.as_bytes()).is_ok());
            let (r, h, i) = (resource.as_str(), host.as_str(), item.as_str());
            let key = match family {
                0 => Key::ClusterId,
                1 => Key::HostAddress { host: h },
                2 => Key::HostStatus { host: h, item: i },
                3 => Key::ClusterSetting { item: i },
                4 => Key::HostSetting { host: h, item: i },
                5 => Key::GlobalRequest { item: i },
                6 => Key::Size { resource: r },
                7 => Key::Primary { resource: r },
                8 => Key::DataDevice { resource: r, host: h },
                9 => Key::DeviceName { resource: r, host: h },
                10 => Key::ReplayPosition { resource: r, host: h },
                11 => Key::Version { resource: r, seq, host: h },
                12 => Key::SyncStatus { resource: r, host: h },
                13 => Key::SyncPosition { resource: r, host: h },
                14 => Key::Switch { resource: r, host: h, switch: i },
                _ => Key::Status { resource: r, host: h, item: i },
            };
            let buf = key.to_buf().unwrap();
            prop_assert!(validate_key(buf.as_bytes()).is_ok());
            prop_assert_eq!(Key::parse(buf.as_str()), Some(key));
        }

        /// Whatever text `parse` recognizes formats back to exactly that text.
        #[test]
        fn parsed_keys_format_back(
            prefix in proptest::sample::select(&[
                "", "uuid", "ips/ip-", "actual-", "defaults/", "defaults-", "todo-global/", "resource-r0/",
                "resource-r0/version-000000001-", "resource-r0/data-", "resource-r0/syncpos-",
                "resource-r0/todo-", "resource-r0/actual-",
            ][..]),
            rest in "[a-z0-9/._-]{0,30}",
        ) {
            let text = std::format!("{prefix}{rest}");
            if let Some(key) = Key::parse(&text) {
                let buf = key.to_buf().unwrap();
                prop_assert_eq!(buf.as_str(), text.as_str());
            }
        }

        /// Validation never panics and accepts exactly the grammar.
        #[test]
        fn validation_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = validate_key(&bytes);
            let _ = validate_value(&bytes);
            let _ = validate_host_name(&bytes);
            let _ = validate_resource_name(&bytes);
            let _ = validate_item_name(&bytes);
            if let Ok(text) = core::str::from_utf8(&bytes) {
                let _ = Key::parse(text);
            }
        }
    }
}
