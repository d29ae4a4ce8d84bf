//! At most one log line per interval for events a peer can cause at will (refused handshakes,
//! connections over the limits), with the number left out in between, so that an attacker
//! cannot flood the kernel log.

/// A log rate limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    interval_ms: u64,
    /// Earliest time of the next line (0: at once).
    next_ms: u64,
    /// Events not logged since the last line.
    suppressed: u64,
}

impl RateLimit {
    /// At most one line per `interval_ms`.
    pub const fn new(interval_ms: u64) -> RateLimit {
        RateLimit { interval_ms, next_ms: 0, suppressed: 0 }
    }

    /// An event at `now_ms`: `Some(n)` if it is to be logged, `n` being how many were left out
    /// since the last line; `None` if it is to be left out.
    pub fn event(&mut self, now_ms: u64) -> Option<u64> {
        if now_ms < self.next_ms {
            self.suppressed = self.suppressed.saturating_add(1);
            return None;
        }
        self.next_ms = now_ms.saturating_add(self.interval_ms);
        Some(core::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count_left_out() {
        let mut r = RateLimit::new(1000);
        assert_eq!(r.event(5), Some(0));
        assert_eq!(r.event(6), None);
        assert_eq!(r.event(1004), None);
        assert_eq!(r.event(1005), Some(2));
        assert_eq!(r.event(5000), Some(0));
    }
}
