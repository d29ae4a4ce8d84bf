//! A token bucket: the rate limit of sync and fetch traffic, settable per resource at run time.
//!
//! Tokens are bytes. The bucket fills at `rate` bytes per second up to `burst` bytes; a transfer
//! of `n` bytes may start once `n` tokens are there (a transfer larger than the burst waits for a
//! full bucket and takes it all). Rate 0 means unlimited. Time is passed in, in nanoseconds of a
//! monotonic clock, so the bucket is a pure value.

/// Nanoseconds per second.
const NS_PER_S: u64 = 1_000_000_000;

/// The highest rate and burst a bucket takes (8 GiB/s, 8 GiB); higher ones are lowered to it.
/// Below it every product of the arithmetic (bytes times nanoseconds per second, nanoseconds
/// within a second times the rate) stays under 2^63, so it needs no 128-bit division, which the
/// kernel does not link.
pub const MAX: u64 = 1 << 33;

/// The burst of the sync and fetch limits: two of their largest requests (1 MiB each), so a
/// limited transfer keeps one request in flight while the next one's tokens gather.
pub const BURST: u64 = 2 << 20;

/// Reads a rate as `marsadm` takes it: bytes per second as digits with an optional binary
/// suffix (`k`, `M`, `G`, any case: KiB, MiB, GiB per second), or `0` / `unlimited` for no
/// limit. The switches hold it as plain digits. `None` if it is anything else or overflows.
pub fn parse_rate(text: &str) -> Option<u64> {
    if text == "unlimited" {
        return Some(0);
    }
    let (digits, shift) = [('k', 10), ('K', 10), ('m', 20), ('M', 20), ('g', 30), ('G', 30)]
        .iter()
        .find_map(|&(suffix, shift)| text.strip_suffix(suffix).map(|d| (d, shift)))
        .unwrap_or((text, 0));
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 20 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    n.checked_mul(1u64 << shift)
}

/// A rate for people: `unlimited`, or bytes per second in the largest binary unit that
/// divides it, `10 MiB/s`, `1500 B/s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate(pub u64);

impl core::fmt::Display for Rate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let n = self.0;
        match n {
            0 => write!(f, "unlimited"),
            _ if n % (1 << 30) == 0 => write!(f, "{} GiB/s", n >> 30),
            _ if n % (1 << 20) == 0 => write!(f, "{} MiB/s", n >> 20),
            _ if n % (1 << 10) == 0 => write!(f, "{} KiB/s", n >> 10),
            _ => write!(f, "{n} B/s"),
        }
    }
}

/// A rate limit in bytes per second.
///
/// # Invariants
///
/// `tokens <= burst`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    /// Bytes per second; 0: unlimited.
    rate: u64,
    /// Most tokens the bucket holds.
    burst: u64,
    tokens: u64,
    /// When `tokens` was last brought up to date.
    at_ns: u64,
}

impl TokenBucket {
    /// A full bucket filling at `rate` bytes per second (0: unlimited); it holds `burst` bytes
    /// at most (at least 1).
    pub fn new(rate: u64, burst: u64, now_ns: u64) -> TokenBucket {
        let burst = burst.clamp(1, MAX);
        TokenBucket { rate: rate.min(MAX), burst, tokens: burst, at_ns: now_ns }
    }

    /// The rate in bytes per second (0: unlimited).
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// Changes the rate from now on; tokens gathered so far are kept.
    pub fn set_rate(&mut self, rate: u64, now_ns: u64) {
        self.refill(now_ns);
        self.rate = rate.min(MAX);
    }

    /// Takes `bytes` tokens if they are there: `Ok(())`, or `Err(ns)`, how long to wait before
    /// they will be (asking again then succeeds unless the rate was lowered meanwhile).
    pub fn take(&mut self, bytes: u64, now_ns: u64) -> Result<(), u64> {
        if self.rate == 0 {
            return Ok(());
        }
        self.refill(now_ns);
        let need = bytes.min(self.burst);
        if self.tokens >= need {
            // INVARIANT: tokens only shrink here.
            self.tokens -= need;
            return Ok(());
        }
        // `missing <= burst <= MAX`: the product fits. Time since the last whole token counts
        // towards the first missing one.
        let missing = need - self.tokens;
        let gathering = now_ns.saturating_sub(self.at_ns);
        Err((missing * NS_PER_S).div_ceil(self.rate).saturating_sub(gathering).max(1))
    }

    /// Adds the tokens gathered since the last update.
    fn refill(&mut self, now_ns: u64) {
        if now_ns < self.at_ns || self.rate == 0 {
            // A clock that went back restarts the count (it mints nothing); unlimited gathers
            // nothing.
            self.at_ns = now_ns;
            return;
        }
        let rate = self.rate;
        let elapsed = now_ns - self.at_ns;
        // `elapsed % NS_PER_S < 2^30` and `rate <= 2^33`: the product fits.
        let gained = (elapsed / NS_PER_S).saturating_mul(rate).saturating_add(elapsed % NS_PER_S * rate / NS_PER_S);
        let room = self.burst - self.tokens;
        if gained >= room {
            // INVARIANT: full, not beyond.
            self.tokens = self.burst;
            self.at_ns = now_ns;
            return;
        }
        // INVARIANT: `gained < burst - tokens`. Time that gathered no whole token counts towards
        // the next one; it is less than the time elapsed, so the sum stays below `now_ns`.
        // `gained < burst <= MAX`: the product fits.
        self.tokens += gained;
        self.at_ns += gained * NS_PER_S / rate;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_binary_suffixes() {
        assert_eq!(parse_rate("0"), Some(0));
        assert_eq!(parse_rate("unlimited"), Some(0));
        assert_eq!(parse_rate("1500"), Some(1500));
        assert_eq!(parse_rate("64k"), Some(64 << 10));
        assert_eq!(parse_rate("10M"), Some(10 << 20));
        assert_eq!(parse_rate("2g"), Some(2 << 30));
        for bad in ["", "k", "-1", "1.5M", "10 M", "10MB", "ten", "99999999999999999999G", "18446744073709551616"] {
            assert_eq!(parse_rate(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rates_show_in_the_largest_unit_that_divides_them() {
        assert_eq!(Rate(0).to_string(), "unlimited");
        assert_eq!(Rate(10 << 20).to_string(), "10 MiB/s");
        assert_eq!(Rate(1536).to_string(), "1536 B/s");
        assert_eq!(Rate(3 << 30).to_string(), "3 GiB/s");
        assert_eq!(Rate(1500).to_string(), "1500 B/s");
        for n in [1u64, 1024, 1536 << 10, 5 << 20, 7 << 30] {
            let shown = Rate(n).to_string();
            let (num, unit) = shown.split_once(' ').expect("number and unit");
            let suffix = match unit {
                "B/s" => "",
                "KiB/s" => "k",
                "MiB/s" => "M",
                "GiB/s" => "G",
                _ => panic!("{unit}"),
            };
            assert_eq!(parse_rate(&format!("{num}{suffix}")), Some(n), "{shown}");
        }
    }

    const S: u64 = 1_000_000_000;

    #[test]
    fn the_highest_rates_do_not_overflow() {
        let mut b = TokenBucket::new(u64::MAX, u64::MAX, 0);
        assert_eq!(b.rate(), MAX);
        assert_eq!(b.take(MAX, 0), Ok(()));
        assert_eq!(b.take(MAX, 0), Err(S));
        assert_eq!(b.take(MAX, u64::MAX), Ok(()));
        let mut slow = TokenBucket::new(1, MAX, 0);
        assert_eq!(slow.take(MAX, 0), Ok(()));
        assert_eq!(slow.take(1, 0), Err(S));
        assert_eq!(slow.take(2, 3 * S / 2), Err(S / 2));
    }

    #[test]
    fn unlimited_never_waits() {
        let mut b = TokenBucket::new(0, 1, 0);
        for i in 0..1000 {
            assert_eq!(b.take(1 << 30, i), Ok(()));
        }
    }

    #[test]
    fn a_full_bucket_gives_its_burst_then_the_rate() {
        let mut b = TokenBucket::new(1000, 500, 0);
        assert_eq!(b.take(500, 0), Ok(()));
        // Empty: 100 bytes take 0.1 s.
        assert_eq!(b.take(100, 0), Err(S / 10));
        assert_eq!(b.take(100, S / 10), Ok(()));
    }

    #[test]
    fn a_transfer_larger_than_the_burst_waits_for_a_full_bucket() {
        let mut b = TokenBucket::new(1000, 500, 0);
        assert_eq!(b.take(500, 0), Ok(()));
        assert_eq!(b.take(1 << 20, 0), Err(S / 2));
        assert_eq!(b.take(1 << 20, S / 2), Ok(()));
    }

    #[test]
    fn the_long_run_rate_is_the_set_rate() {
        // 1 MB/s, 64 KiB transfers asked for as soon as allowed, for 10 s.
        let mut b = TokenBucket::new(1_000_000, 65536, 0);
        let (mut now, mut sent) = (0u64, 0u64);
        while now < 10 * S {
            match b.take(65536, now) {
                Ok(()) => sent += 65536,
                Err(wait) => now += wait,
            }
        }
        let expected = 10_000_000 + 65536;
        assert!(sent.abs_diff(expected) <= 65536, "sent {sent} in 10 s at 1 MB/s");
    }

    #[test]
    fn changing_the_rate_applies_from_then_on() {
        let mut b = TokenBucket::new(1000, 1000, 0);
        assert_eq!(b.take(1000, 0), Ok(()));
        b.set_rate(0, S);
        assert_eq!(b.take(1 << 40, S), Ok(()));
        b.set_rate(100, 2 * S);
        // Tokens kept from before the unlimited spell: none were taken meanwhile.
        assert_eq!(b.take(1000, 2 * S), Ok(()));
        assert_eq!(b.take(50, 2 * S), Err(S / 2));
    }

    #[test]
    fn the_clock_going_backwards_does_not_mint_tokens() {
        let mut b = TokenBucket::new(1000, 1000, 10 * S);
        assert_eq!(b.take(1000, 10 * S), Ok(()));
        assert!(b.take(1000, 5 * S).is_err());
        assert!(b.take(500, 5 * S + S / 2).is_ok());
    }
}
