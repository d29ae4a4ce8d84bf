//! A token bucket: the rate limit of sync and fetch traffic, settable per resource at run time.
//!
//! Tokens are bytes. The bucket fills at `rate` bytes per second up to `burst` bytes; a transfer
//! of `n` bytes may start once `n` tokens are there (a transfer larger than the burst waits for a
//! full bucket and takes it all). Rate 0 means unlimited. Time is passed in, in nanoseconds of a
//! monotonic clock, so the bucket is a pure value.

/// Nanoseconds per second.
const NS_PER_S: u128 = 1_000_000_000;

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
        let burst = burst.max(1);
        TokenBucket { rate, burst, tokens: burst, at_ns: now_ns }
    }

    /// The rate in bytes per second (0: unlimited).
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// Changes the rate from now on; tokens gathered so far are kept.
    pub fn set_rate(&mut self, rate: u64, now_ns: u64) {
        self.refill(now_ns);
        self.rate = rate;
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
        let missing = u128::from(need - self.tokens);
        let wait = (missing * NS_PER_S).div_ceil(u128::from(self.rate));
        Err(u64::try_from(wait).unwrap_or(u64::MAX))
    }

    /// Adds the tokens gathered since the last update.
    fn refill(&mut self, now_ns: u64) {
        if now_ns < self.at_ns || self.rate == 0 {
            // A clock that went back restarts the count (it mints nothing); unlimited gathers
            // nothing.
            self.at_ns = now_ns;
            return;
        }
        let rate = u128::from(self.rate);
        let gained = u128::from(now_ns - self.at_ns) * rate / NS_PER_S;
        let room = u128::from(self.burst - self.tokens);
        if gained >= room {
            // INVARIANT: full, not beyond.
            self.tokens = self.burst;
            self.at_ns = now_ns;
            return;
        }
        // INVARIANT: `gained < burst - tokens`. Time that gathered no whole token counts towards
        // the next one; it is less than the time elapsed, so the sum stays below `now_ns`.
        self.tokens += gained as u64;
        self.at_ns += (gained * NS_PER_S / rate) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

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
