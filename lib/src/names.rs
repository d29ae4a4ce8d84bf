//! The names MARS gives to hosts, resources and logfiles: one grammar each, in one place.
//!
//! The cluster tree (sibling module `tree`: keys such as `resource-RES/data-HOST`), the wire
//! protocol (sibling module `proto_msg`), mars.ko (logfiles under /mars, `/dev/mars/RES`) and
//! marsadm all check names with the functions here, so a name one of them accepts is accepted by
//! all. The table of rules is in docs/tree.md, "Names".
//!
//! | kind | grammar | max bytes | reserved |
//! |---|---|---|---|
//! | host | `[a-z][a-z0-9-]*`, not ending in `-` | [`MAX_HOST_NAME_LEN`] | [`RESERVED_HOST_NAMES`] |
//! | resource | `[a-z0-9][a-z0-9_-]*` | [`MAX_RESOURCE_NAME_LEN`] | [`RESERVED_RESOURCE_NAMES`] |
//! | logfile | `log-SSSSSSSSS-HOST`: 9 digits, HOST a host name | [`MAX_LOGFILE_NAME_LEN`] | |

use core::fmt;

/// Longest host name, in bytes (a DNS label).
pub const MAX_HOST_NAME_LEN: usize = 63;
/// Longest resource name, in bytes. The device of resource NAME is `/dev/mars/NAME`, and the
/// kernel keeps its disk name `mars/NAME` in a 32-byte buffer (`DISK_NAME_LEN`) with the
/// terminating NUL: 32 - 5 - 1 = 26.
pub const MAX_RESOURCE_NAME_LEN: usize = 26;
/// Digits of a logfile sequence number in a name: always exactly this many, with leading zeros.
pub const SEQ_DIGITS: usize = 9;
/// Largest logfile sequence number (nine decimal digits).
pub const MAX_SEQ: u32 = 999_999_999;
/// What every logfile name starts with.
const LOGFILE_PREFIX: &[u8] = b"log-";
/// Longest logfile name, in bytes: `log-`, [`SEQ_DIGITS`] digits, `-`, a host name.
pub const MAX_LOGFILE_NAME_LEN: usize = LOGFILE_PREFIX.len() + SEQ_DIGITS + 1 + MAX_HOST_NAME_LEN;
/// Size of the buffer [`format_logfile_name`] writes into: [`MAX_LOGFILE_NAME_LEN`] bytes.
pub const LOGFILE_NAME_MAX: usize = MAX_LOGFILE_NAME_LEN;
/// Words that are not host names: marsadm takes them as arguments, keys use them as names.
pub const RESERVED_HOST_NAMES: [&str; 8] = ["all", "any", "global", "local", "localhost", "none", "remote", "self"];
/// Words that are not resource names: marsadm takes them as arguments.
pub const RESERVED_RESOURCE_NAMES: [&str; 1] = ["all"];

/// What is wrong with a name, or with a key of the cluster tree (whose components are names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameProblem {
    /// The name is empty.
    Empty,
    /// The name is longer than allowed.
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The key has more components than the tree allows.
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// A component of the key is empty: a doubled, leading or trailing `/`.
    EmptyComponent {
        /// Byte offset where the empty component is.
        at: usize,
    },
    /// A name or component starts with a byte that may not start one.
    BadFirstByte {
        /// Byte offset.
        at: usize,
        /// The byte.
        byte: u8,
    },
    /// A byte that is not allowed anywhere in the name.
    BadByte {
        /// Byte offset.
        at: usize,
        /// The byte.
        byte: u8,
    },
    /// A host name ends with `-`.
    TrailingHyphen,
    /// The name is a reserved word ([`RESERVED_HOST_NAMES`], [`RESERVED_RESOURCE_NAMES`]).
    Reserved,
    /// Not of the form `log-SSSSSSSSS-HOST` (exactly nine digits, HOST a valid host name).
    NotLogfileName,
    /// A logfile sequence number does not fit in nine digits.
    SeqTooLarge {
        /// The number.
        seq: u32,
    },
}

/// Shows a byte as `'c'` if it is printable ASCII, else as `byte 0xNN`.
struct ShowByte(u8);

impl fmt::Display for ShowByte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_ascii_graphic() || self.0 == b' ' {
            write!(f, "'{}'", char::from(self.0))
        } else {
            write!(f, "byte 0x{:02x}", self.0)
        }
    }
}

impl fmt::Display for NameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            NameProblem::Empty => write!(f, "it is empty"),
            NameProblem::TooLong { len, max } => write!(f, "it is {len} bytes long, the limit is {max}"),
            NameProblem::TooDeep { max } => write!(f, "it has more than {max} levels"),
            NameProblem::EmptyComponent { at } => {
                write!(f, "empty level at offset {at} (a doubled, leading or trailing '/')")
            }
            NameProblem::BadFirstByte { at, byte } => {
                write!(f, "{} may not start a name (offset {at})", ShowByte(byte))
            }
            NameProblem::BadByte { at, byte } => write!(f, "{} is not allowed (offset {at})", ShowByte(byte)),
            NameProblem::TrailingHyphen => write!(f, "it ends with '-'"),
            NameProblem::Reserved => write!(f, "it is a reserved word"),
            NameProblem::NotLogfileName => write!(f, "it is not of the form log-<9 digits>-<host name>"),
            NameProblem::SeqTooLarge { seq } => {
                write!(f, "logfile sequence number {seq} is larger than {MAX_SEQ}")
            }
        }
    }
}

/// The kinds of names this module checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameKind {
    /// A resource name ([`validate_resource_name`]).
    Resource,
    /// A host name ([`validate_host_name`]).
    Host,
    /// A logfile name ([`validate_logfile_name`]).
    Logfile,
}

impl NameKind {
    /// Longest name of this kind, in bytes.
    pub const fn max_len(self) -> usize {
        match self {
            NameKind::Resource => MAX_RESOURCE_NAME_LEN,
            NameKind::Host => MAX_HOST_NAME_LEN,
            NameKind::Logfile => MAX_LOGFILE_NAME_LEN,
        }
    }

    /// Checks `name` against this kind's grammar and returns it as text.
    pub fn validate(self, name: &[u8]) -> Result<&str, NameProblem> {
        match self {
            NameKind::Resource => validate_resource_name(name),
            NameKind::Host => validate_host_name(name),
            NameKind::Logfile => validate_logfile_name(name),
        }
    }

    /// This kind's grammar in words, for messages to admins: `host names are up to 63 ...`.
    pub fn rule(self) -> impl fmt::Display {
        Rule(self)
    }
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::Resource => "resource",
            NameKind::Host => "host",
            NameKind::Logfile => "logfile",
        })
    }
}

/// The grammar of a [`NameKind`] in words.
struct Rule(NameKind);

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            NameKind::Host => write!(
                f,
                "host names are up to {MAX_HOST_NAME_LEN} of a-z, 0-9 and '-', start with a letter, do not end \
                 with '-' and are none of {}",
                Words(&RESERVED_HOST_NAMES)
            ),
            NameKind::Resource => write!(
                f,
                "resource names are up to {MAX_RESOURCE_NAME_LEN} of a-z, 0-9, '_' and '-', start with a letter or \
                 digit and are not {}",
                Words(&RESERVED_RESOURCE_NAMES)
            ),
            NameKind::Logfile => {
                write!(f, "logfile names are 'log-', {SEQ_DIGITS} digits, '-' and a host name")
            }
        }
    }
}

/// Shows a word list as `a, b, c`.
struct Words<'a>(&'a [&'a str]);

impl fmt::Display for Words<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, w) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(w)?;
        }
        Ok(())
    }
}

/// May `b` start a resource name: `[a-z0-9]`.
fn is_resource_start(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// May `b` appear in a resource name: `[a-z0-9_-]`.
fn is_resource_byte(b: u8) -> bool {
    is_resource_start(b) || matches!(b, b'_' | b'-')
}

/// May `b` start a host name: `[a-z]`.
fn is_host_start(b: u8) -> bool {
    b.is_ascii_lowercase()
}

/// May `b` appear in a host name after its first letter: `[a-z0-9-]`.
fn is_host_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'
}

/// Checks a name of at most `max` bytes whose first byte satisfies `first` and others `rest`
/// (both accepting ASCII only) and returns it as text.
pub(super) fn check_name(
    name: &[u8],
    max: usize,
    first: fn(u8) -> bool,
    rest: fn(u8) -> bool,
) -> Result<&str, NameProblem> {
    if name.is_empty() {
        return Err(NameProblem::Empty);
    }
    if name.len() > max {
        return Err(NameProblem::TooLong { len: name.len(), max });
    }
    for (at, &byte) in name.iter().enumerate() {
        if at == 0 && !first(byte) {
            return Err(NameProblem::BadFirstByte { at, byte });
        }
        if at > 0 && !rest(byte) {
            return Err(NameProblem::BadByte { at, byte });
        }
    }
    ascii_str(name)
}

/// `bytes` as text; callers have checked them to be ASCII, so this cannot fail in practice.
pub(super) fn ascii_str(bytes: &[u8]) -> Result<&str, NameProblem> {
    core::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        NameProblem::BadByte { at, byte: bytes.get(at).copied().unwrap_or(0) }
    })
}

/// Checks a host name and returns it as text.
///
/// `[a-z][a-z0-9-]*`, at most [`MAX_HOST_NAME_LEN`] bytes, not ending in `-`, and not one of
/// [`RESERVED_HOST_NAMES`].
pub fn validate_host_name(name: &[u8]) -> Result<&str, NameProblem> {
    let name = check_name(name, MAX_HOST_NAME_LEN, is_host_start, is_host_byte)?;
    if name.ends_with('-') {
        return Err(NameProblem::TrailingHyphen);
    }
    if RESERVED_HOST_NAMES.contains(&name) {
        return Err(NameProblem::Reserved);
    }
    Ok(name)
}

/// Checks a resource name and returns it as text.
///
/// `[a-z0-9][a-z0-9_-]*`, at most [`MAX_RESOURCE_NAME_LEN`] bytes, and not one of
/// [`RESERVED_RESOURCE_NAMES`]. No `.`: the name is also a path component under /mars and the
/// device name `/dev/mars/NAME`.
pub fn validate_resource_name(name: &[u8]) -> Result<&str, NameProblem> {
    let name = check_name(name, MAX_RESOURCE_NAME_LEN, is_resource_start, is_resource_byte)?;
    if RESERVED_RESOURCE_NAMES.contains(&name) {
        return Err(NameProblem::Reserved);
    }
    Ok(name)
}

/// `seq` as exactly [`SEQ_DIGITS`] decimal digits; `None` if it is larger than [`MAX_SEQ`].
pub(super) fn seq_digits(seq: u32) -> Option<[u8; SEQ_DIGITS]> {
    if seq > MAX_SEQ {
        return None;
    }
    let mut digits = [b'0'; SEQ_DIGITS];
    let mut rest = seq;
    for d in digits.iter_mut().rev() {
        // `rest % 10` < 10, so the cast and the addition stay within b'0'..=b'9'.
        *d = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    Some(digits)
}

/// Splits `SSSSSSSSS-HOST` (exactly [`SEQ_DIGITS`] digits, a valid host name) into its sequence
/// number and host. Logfile names (`log-` + this) and version keys (`version-` + this) share it.
pub(super) fn parse_seq_host(text: &[u8]) -> Option<(u32, &str)> {
    let digits = text.get(..SEQ_DIGITS)?;
    if text.get(SEQ_DIGITS) != Some(&b'-') {
        return None;
    }
    let mut seq = 0u32;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        // Nine digits are at most MAX_SEQ < u32::MAX: nothing saturates.
        seq = seq.saturating_mul(10).saturating_add(u32::from(d.saturating_sub(b'0')));
    }
    let host = validate_host_name(text.get(SEQ_DIGITS + 1..)?).ok()?;
    Some((seq, host))
}

/// Splits a logfile name `log-SSSSSSSSS-HOST` into its sequence number and host.
///
/// Exactly [`SEQ_DIGITS`] digits (leading zeros included, so every sequence number has one
/// spelling) and HOST a valid host name ([`validate_host_name`]). Because the digits have a fixed
/// width, valid names sort bytewise in the order of (sequence number, host).
pub fn parse_logfile_name(name: &[u8]) -> Result<(u32, &str), NameProblem> {
    if name.is_empty() {
        return Err(NameProblem::Empty);
    }
    if name.len() > MAX_LOGFILE_NAME_LEN {
        return Err(NameProblem::TooLong { len: name.len(), max: MAX_LOGFILE_NAME_LEN });
    }
    name.strip_prefix(LOGFILE_PREFIX).and_then(parse_seq_host).ok_or(NameProblem::NotLogfileName)
}

/// Checks a logfile name (see [`parse_logfile_name`]) and returns it as text.
pub fn validate_logfile_name(name: &[u8]) -> Result<&str, NameProblem> {
    parse_logfile_name(name)?;
    ascii_str(name)
}

/// Writes the name of logfile `seq` of `host`, `log-SSSSSSSSS-HOST`, into `out` and returns its
/// length. Fails if `host` is not a host name or `seq` is larger than [`MAX_SEQ`].
pub fn format_logfile_name(seq: u32, host: &str, out: &mut [u8; LOGFILE_NAME_MAX]) -> Result<usize, NameProblem> {
    let host = validate_host_name(host.as_bytes())?.as_bytes();
    let digits = seq_digits(seq).ok_or(NameProblem::SeqTooLarge { seq })?;
    let parts: [&[u8]; 4] = [LOGFILE_PREFIX, &digits, b"-", host];
    let mut len = 0usize;
    // The parts add up to at most MAX_LOGFILE_NAME_LEN bytes, the size of `out`.
    for (dst, &src) in out.iter_mut().zip(parts.iter().flat_map(|p| p.iter())) {
        *dst = src;
        len = len.saturating_add(1);
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::string::{String, ToString};
    use std::{format, vec::Vec};

    #[test]
    fn host_names_accept_and_reject() {
        let max = "h".repeat(MAX_HOST_NAME_LEN);
        for ok in ["node1", "a", "db-2-east", "x9", "a-1", "alls", "self-1", max.as_str()] {
            assert_eq!(validate_host_name(ok.as_bytes()), Ok(ok), "{ok}");
        }
        let too_long = "h".repeat(MAX_HOST_NAME_LEN + 1);
        for (name, problem) in [
            ("", NameProblem::Empty),
            (too_long.as_str(), NameProblem::TooLong { len: MAX_HOST_NAME_LEN + 1, max: MAX_HOST_NAME_LEN }),
            ("1node", NameProblem::BadFirstByte { at: 0, byte: b'1' }),
            ("-node", NameProblem::BadFirstByte { at: 0, byte: b'-' }),
            ("Node", NameProblem::BadFirstByte { at: 0, byte: b'N' }),
            ("(none)", NameProblem::BadFirstByte { at: 0, byte: b'(' }),
            ("node_1", NameProblem::BadByte { at: 4, byte: b'_' }),
            ("node.example", NameProblem::BadByte { at: 4, byte: b'.' }),
            ("nOde", NameProblem::BadByte { at: 1, byte: b'O' }),
            ("a/b", NameProblem::BadByte { at: 1, byte: b'/' }),
            ("a\u{e9}", NameProblem::BadByte { at: 1, byte: 0xc3 }),
            ("node-", NameProblem::TrailingHyphen),
            ("a-", NameProblem::TrailingHyphen),
        ] {
            assert_eq!(validate_host_name(name.as_bytes()), Err(problem), "{name:?}");
        }
        for word in RESERVED_HOST_NAMES {
            assert_eq!(validate_host_name(word.as_bytes()), Err(NameProblem::Reserved), "{word}");
        }
    }

    #[test]
    fn resource_names_accept_and_reject() {
        let max = "r".repeat(MAX_RESOURCE_NAME_LEN);
        let max_mixed = "0a_b-c".repeat(5);
        let max_mixed = &max_mixed[..MAX_RESOURCE_NAME_LEN];
        for ok in ["r0", "0db", "lv_home-1", "a-b", "a_", "r-", "9", "alls", "none", max.as_str(), max_mixed] {
            assert_eq!(validate_resource_name(ok.as_bytes()), Ok(ok), "{ok}");
        }
        let too_long = "r".repeat(MAX_RESOURCE_NAME_LEN + 1);
        let host_sized = "r".repeat(MAX_HOST_NAME_LEN);
        for (name, problem) in [
            ("", NameProblem::Empty),
            (too_long.as_str(), NameProblem::TooLong { len: 27, max: 26 }),
            (host_sized.as_str(), NameProblem::TooLong { len: 63, max: 26 }),
            ("_r", NameProblem::BadFirstByte { at: 0, byte: b'_' }),
            ("-r", NameProblem::BadFirstByte { at: 0, byte: b'-' }),
            (".r", NameProblem::BadFirstByte { at: 0, byte: b'.' }),
            ("R0", NameProblem::BadFirstByte { at: 0, byte: b'R' }),
            ("lv_home.1", NameProblem::BadByte { at: 7, byte: b'.' }),
            ("a.b", NameProblem::BadByte { at: 1, byte: b'.' }),
            ("r..", NameProblem::BadByte { at: 1, byte: b'.' }),
            ("r/0", NameProblem::BadByte { at: 1, byte: b'/' }),
            ("r 0", NameProblem::BadByte { at: 1, byte: b' ' }),
            ("r\0", NameProblem::BadByte { at: 1, byte: 0 }),
            ("rA", NameProblem::BadByte { at: 1, byte: b'A' }),
            ("all", NameProblem::Reserved),
        ] {
            assert_eq!(validate_resource_name(name.as_bytes()), Err(problem), "{name:?}");
        }
    }

    #[test]
    fn logfile_names_accept_and_reject() {
        let longest = format!("log-999999999-{}", "h".repeat(MAX_HOST_NAME_LEN));
        assert_eq!(longest.len(), MAX_LOGFILE_NAME_LEN);
        for (name, seq, host) in [
            ("log-000000001-node1", 1, "node1"),
            ("log-000000000-a", 0, "a"),
            ("log-000000042-node-1", 42, "node-1"),
            ("log-999999999-db-2-east", MAX_SEQ, "db-2-east"),
            (longest.as_str(), MAX_SEQ, &longest[14..]),
        ] {
            assert_eq!(parse_logfile_name(name.as_bytes()), Ok((seq, host)), "{name}");
            assert_eq!(validate_logfile_name(name.as_bytes()), Ok(name), "{name}");
        }
        let too_long = format!("{longest}h");
        assert_eq!(
            parse_logfile_name(too_long.as_bytes()),
            Err(NameProblem::TooLong { len: MAX_LOGFILE_NAME_LEN + 1, max: MAX_LOGFILE_NAME_LEN })
        );
        assert_eq!(parse_logfile_name(b""), Err(NameProblem::Empty));
        for name in [
            "log-00000001-a",     // 8 digits
            "log-0000000001-a",   // 10 digits
            "log-1-a",            // not zero-padded
            "log-00000000x-a",    // not a digit
            "log-+00000001-a",    // sign
            "log-000000001",      // no host
            "log-000000001-",     // empty host
            "log-000000001-A",    // upper case host
            "log-000000001-1a",   // host starting with a digit
            "log-000000001-a-",   // host ending with '-'
            "log-000000001-a_b",  // '_' in host
            "log-000000001-a.b",  // '.' in host
            "log-000000001-all",  // reserved host
            "log-000000001-none", // reserved host
            "log-000000001_a",    // wrong separator
            "log-000000001a",     // no separator
            "lag-000000001-a",    // wrong prefix
            "Log-000000001-a",    // upper case prefix
            "log000000001-a",     // no '-' after log
            "000000001-a",        // no prefix
            "log-",
            "log",
        ] {
            assert_eq!(parse_logfile_name(name.as_bytes()), Err(NameProblem::NotLogfileName), "{name:?}");
            assert_eq!(validate_logfile_name(name.as_bytes()), Err(NameProblem::NotLogfileName), "{name:?}");
        }
    }

    #[test]
    fn logfile_names_format() {
        let mut buf = [0u8; LOGFILE_NAME_MAX];
        let n = format_logfile_name(7, "node1", &mut buf).unwrap();
        assert_eq!(&buf[..n], b"log-000000007-node1");
        let host = "h".repeat(MAX_HOST_NAME_LEN);
        let n = format_logfile_name(MAX_SEQ, &host, &mut buf).unwrap();
        assert_eq!(n, MAX_LOGFILE_NAME_LEN);
        assert_eq!(parse_logfile_name(&buf[..n]), Ok((MAX_SEQ, host.as_str())));
        assert_eq!(format_logfile_name(MAX_SEQ + 1, "a", &mut buf), Err(NameProblem::SeqTooLarge { seq: MAX_SEQ + 1 }));
        assert_eq!(format_logfile_name(1, "all", &mut buf), Err(NameProblem::Reserved));
        assert_eq!(format_logfile_name(1, "a-", &mut buf), Err(NameProblem::TrailingHyphen));
        assert_eq!(format_logfile_name(1, "", &mut buf), Err(NameProblem::Empty));
    }

    #[test]
    fn kinds_dispatch_and_explain() {
        assert_eq!(NameKind::Resource.validate(b"a.b"), Err(NameProblem::BadByte { at: 1, byte: b'.' }));
        assert_eq!(NameKind::Host.validate(b"self"), Err(NameProblem::Reserved));
        assert_eq!(NameKind::Logfile.validate(b"log-000000001-a"), Ok("log-000000001-a"));
        assert_eq!([NameKind::Resource, NameKind::Host, NameKind::Logfile].map(NameKind::max_len), [26, 63, 77]);
        assert_eq!(NameKind::Logfile.to_string(), "logfile");
        assert_eq!(
            NameKind::Resource.rule().to_string(),
            "resource names are up to 26 of a-z, 0-9, '_' and '-', start with a letter or digit and are not all"
        );
        assert_eq!(NameProblem::BadByte { at: 3, byte: 0 }.to_string(), "byte 0x00 is not allowed (offset 3)");
        assert_eq!(NameProblem::NotLogfileName.to_string(), "it is not of the form log-<9 digits>-<host name>");
    }

    fn host() -> impl Strategy<Value = String> {
        "[a-z]([a-z0-9-]{0,61}[a-z0-9])?".prop_filter("reserved", |h| !RESERVED_HOST_NAMES.contains(&h.as_str()))
    }

    proptest! {
        /// Every host name the grammar describes is accepted, and is a valid resource name too
        /// when short enough and without reserved words.
        #[test]
        fn grammar_strings_are_accepted(h in host(), r in "[a-z0-9][a-z0-9_-]{0,25}") {
            prop_assert_eq!(validate_host_name(h.as_bytes()), Ok(h.as_str()));
            if r != "all" {
                prop_assert_eq!(validate_resource_name(r.as_bytes()), Ok(r.as_str()));
            }
        }

        /// Formatting and parsing logfile names are inverse, and names sort like (seq, host).
        #[test]
        fn logfile_names_round_trip_and_sort(a in (0..=MAX_SEQ, host()), b in (0..=MAX_SEQ, host())) {
            let name = |(seq, host): &(u32, String)| {
                let mut buf = [0u8; LOGFILE_NAME_MAX];
                let n = format_logfile_name(*seq, host, &mut buf).unwrap();
                prop_assert_eq!(n, 14 + host.len());
                let text = core::str::from_utf8(&buf[..n]).unwrap().to_string();
                prop_assert_eq!(&text, &format!("log-{seq:09}-{host}"));
                prop_assert_eq!(parse_logfile_name(text.as_bytes()), Ok((*seq, host.as_str())));
                Ok(text)
            };
            let (na, nb) = (name(&a)?, name(&b)?);
            prop_assert_eq!(na.cmp(&nb), (a.0, a.1.as_bytes()).cmp(&(b.0, b.1.as_bytes())));
        }

        /// No input makes a validator panic; whatever is accepted is short enough and ASCII.
        #[test]
        fn validation_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            for kind in [NameKind::Resource, NameKind::Host, NameKind::Logfile] {
                if let Ok(text) = kind.validate(&bytes) {
                    prop_assert!(text.len() <= kind.max_len() && text.is_ascii());
                }
            }
            let _ = parse_logfile_name(&bytes);
            let _ = parse_seq_host(&bytes);
        }

        /// Near-misses of logfile names: mutating one byte never yields an accepted name that
        /// does not also parse back to the digits and host it spells.
        #[test]
        fn mutated_logfile_names_parse_consistently(
            seq in 0..=MAX_SEQ,
            h in host(),
            at in any::<proptest::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut name: Vec<u8> = format!("log-{seq:09}-{h}").into_bytes();
            let i = at.index(name.len());
            name[i] = byte;
            if let Ok((s, host)) = parse_logfile_name(&name) {
                let spelled = format!("log-{s:09}-{host}");
                prop_assert_eq!(spelled.as_bytes(), &name[..]);
            }
        }
    }
}
