//! IP addresses as the tree holds them (`ips/ip-HOST` = `10.0.0.1` or `2001:db8::7`), parsed
//! into bytes for the kernel's sockets. marsadm writes them with Rust's `IpAddr` formatting; this
//! parser takes that and every other standard text form (RFC 4291 section 2.2, without zones).

/// An IPv4 or IPv6 address, network order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpAddress {
    /// IPv4.
    V4([u8; 4]),
    /// IPv6.
    V6([u8; 16]),
}

impl IpAddress {
    /// Parses `text` (`a.b.c.d`, or eight 16-bit hex groups with at most one `::`, the last
    /// two groups optionally as an IPv4 address); `None` for anything else.
    pub fn parse(text: &str) -> Option<IpAddress> {
        if text.contains(':') {
            parse_v6(text).map(IpAddress::V6)
        } else {
            parse_v4(text).map(IpAddress::V4)
        }
    }
}

fn parse_v4(text: &str) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut parts = text.split('.');
    for slot in out.iter_mut() {
        let part = parts.next()?;
        // Decimal only, no leading zeros (an octal reading elsewhere would differ).
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if part.len() > 1 && part.starts_with('0') {
            return None;
        }
        *slot = part.parse().ok()?;
    }
    parts.next().is_none().then_some(out)
}

fn parse_v6(text: &str) -> Option<[u8; 16]> {
    let (head, tail) = match text.find("::") {
        Some(at) => (text.get(..at)?, Some(text.get(at + 2..)?)),
        None => (text, None),
    };
    let mut groups = [0u16; 8];
    let head_n = parse_groups(head, &mut groups, tail.is_none())?;
    let n = match tail {
        None => {
            if head_n != 8 {
                return None;
            }
            8
        }
        Some(tail) => {
            let mut rest = [0u16; 8];
            let tail_n = parse_groups(tail, &mut rest, true)?;
            // `::` stands for at least one group of zeros.
            if head_n + tail_n > 7 {
                return None;
            }
            let start = 8 - tail_n;
            for (i, g) in rest.iter().take(tail_n).enumerate() {
                *groups.get_mut(start + i)? = *g;
            }
            8
        }
    };
    let mut out = [0u8; 16];
    for (i, g) in groups.iter().take(n).enumerate() {
        let [hi, lo] = g.to_be_bytes();
        *out.get_mut(2 * i)? = hi;
        *out.get_mut(2 * i + 1)? = lo;
    }
    Some(out)
}

/// Parses colon-separated hex groups into `out`; the last one may be an IPv4 address if
/// `v4_tail_allowed`. Returns the number of 16-bit groups; "" is zero groups.
fn parse_groups(text: &str, out: &mut [u16; 8], v4_tail_allowed: bool) -> Option<usize> {
    if text.is_empty() {
        return Some(0);
    }
    let mut n = 0usize;
    let mut parts = text.split(':').peekable();
    while let Some(part) = parts.next() {
        let last = parts.peek().is_none();
        if last && v4_tail_allowed && part.contains('.') {
            let [a, b, c, d] = parse_v4(part)?;
            *out.get_mut(n)? = u16::from_be_bytes([a, b]);
            *out.get_mut(n + 1)? = u16::from_be_bytes([c, d]);
            n += 2;
            continue;
        }
        if part.is_empty() || part.len() > 4 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        *out.get_mut(n)? = u16::from_str_radix(part, 16).ok()?;
        n += 1;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    #[test]
    fn parses_what_rust_formats() {
        for text in [
            "10.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::",
            "::1",
            "2001:db8::7",
            "fe80::1:2:3:4",
            "1:2:3:4:5:6:7:8",
            "::ffff:10.1.2.3",
            "1::8",
        ] {
            let std: IpAddr = text.parse().unwrap();
            let ours = IpAddress::parse(text).unwrap_or_else(|| panic!("{text}"));
            match (std, ours) {
                (IpAddr::V4(a), IpAddress::V4(b)) => assert_eq!(a.octets(), b, "{text}"),
                (IpAddr::V6(a), IpAddress::V6(b)) => assert_eq!(a.octets(), b, "{text}"),
                _ => panic!("family of {text}"),
            }
            assert_eq!(IpAddress::parse(&std.to_string()), Some(ours));
        }
    }

    #[test]
    fn refuses_what_is_not_an_address() {
        for text in [
            "",
            "10.0.0",
            "10.0.0.1.2",
            "10.0.0.256",
            "010.0.0.1",
            "1.2.3.-4",
            "a.b.c.d",
            ":",
            ":::",
            "1::2::3",
            "1:2:3:4:5:6:7",
            "1:2:3:4:5:6:7:8:9",
            "1:2:3:4:5:6:7::8",
            "12345::",
            "g::",
            "::1.2.3",
            "1.2.3.4::",
            "node1",
            "10.0.0.1 ",
        ] {
            assert_eq!(IpAddress::parse(text), None, "{text:?}");
            assert!(text.parse::<IpAddr>().is_err(), "std accepts {text:?}");
        }
    }

    #[test]
    fn agrees_with_std_on_random_text() {
        // Seeded: replay with the printed seed.
        let seed = std::env::var("MARS_ADDR_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20261202u64);
        println!("MARS_ADDR_SEED={seed}");
        let mut rng = crate::gossip::Rng::new(seed);
        let alphabet = b"0123456789abcdef:.";
        for _ in 0..200_000 {
            let len = rng.below(24);
            let text: String = (0..len).map(|_| alphabet[rng.below(alphabet.len())] as char).collect();
            let std = text.parse::<IpAddr>().ok();
            let ours = IpAddress::parse(&text);
            match (std, ours) {
                (None, None) => {}
                (Some(IpAddr::V4(a)), Some(IpAddress::V4(b))) => assert_eq!(a.octets(), b, "{text}"),
                (Some(IpAddr::V6(a)), Some(IpAddress::V6(b))) => assert_eq!(a.octets(), b, "{text}"),
                (s, o) => panic!("{text:?}: std {s:?}, ours {o:?} (seed {seed})"),
            }
        }
    }
}
