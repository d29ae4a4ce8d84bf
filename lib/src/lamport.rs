//! Lamport clock based on real time.
//!
//! Every key in the cluster tree carries a [`Stamp`]; the value with the greater stamp wins on
//! every host. A host's clock follows real time, never goes backwards, and is pushed past every
//! stamp it receives, so an update made after seeing another host's update always wins over it.
//! Ties between hosts (equal nanoseconds) are broken by host identity, which makes the order
//! total: two distinct hosts never produce equal stamps.

use core::cmp::Ordering;
use core::fmt;

/// Identity of a host, derived from its host name with [`HostId::from_name`].
///
/// Only used to break ties between stamps and to tell hosts apart in compact encodings; host
/// names stay the identities that admins see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HostId(pub u64);

impl HostId {
    /// Derives the identity of the host called `name` (64-bit FNV-1a of its bytes).
    pub const fn from_name(name: &[u8]) -> HostId {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut i = 0;
        while i < name.len() {
            hash ^= name[i] as u64;
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
            i += 1;
        }
        HostId(hash)
    }
}

/// A point in Lamport time: nanoseconds since the Unix epoch, plus the host that made it.
///
/// Ordered by time first, then by host, so the order is total.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Stamp {
    /// Nanoseconds since 1970-01-01 00:00:00 UTC (Lamport-adjusted, so possibly ahead of real time).
    pub nanos: u64,
    /// The host whose clock produced this stamp.
    pub host: HostId,
}

impl Stamp {
    /// The smallest stamp; older than every stamp a clock produces.
    pub const ZERO: Stamp = Stamp { nanos: 0, host: HostId(0) };

    /// Creates a stamp.
    pub const fn new(nanos: u64, host: HostId) -> Stamp {
        Stamp { nanos, host }
    }
}

impl Ord for Stamp {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos).then(self.host.cmp(&other.host))
    }
}

impl PartialOrd for Stamp {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Stamp {
    /// Formats as `SECONDS.NANOSECONDS@HOSTID`, e.g. `1700000000.000000042@00ab...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:09}@{:016x}", self.nanos / 1_000_000_000, self.nanos % 1_000_000_000, self.host.0)
    }
}

/// The Lamport clock of one host.
///
/// Pure state: the caller passes in the current real time, so the same code runs in the kernel
/// (under a lock, with `ktime_get_real`), in userspace and in the deterministic simulation.
#[derive(Clone, Debug)]
pub struct LamportClock {
    host: HostId,
    /// The greatest time this clock has issued or observed.
    last: u64,
}

impl LamportClock {
    /// Creates the clock of `host`, which has issued and observed nothing yet.
    pub const fn new(host: HostId) -> LamportClock {
        LamportClock { host, last: 0 }
    }

    /// The host this clock belongs to.
    pub const fn host(&self) -> HostId {
        self.host
    }

    /// Issues a stamp for a local event at real time `now_nanos`.
    ///
    /// The stamp is later than every stamp issued or observed before: `max(now, last + 1)`.
    pub fn tick(&mut self, now_nanos: u64) -> Stamp {
        let next = core::cmp::max(now_nanos, self.last.saturating_add(1));
        self.last = next;
        Stamp::new(next, self.host)
    }

    /// Issues `count` (at least 1) consecutive stamps at once, for events that happen together
    /// (the records of one logged batch): returns the first; the others follow it 1 ns apart, and
    /// the next tick is after the last of them.
    pub fn tick_many(&mut self, now_nanos: u64, count: u64) -> Stamp {
        let first = self.tick(now_nanos);
        self.last = first.nanos.saturating_add(count.saturating_sub(1));
        first
    }

    /// Takes note of a stamp received from elsewhere: later ticks will be greater than it.
    pub fn observe(&mut self, stamp: Stamp) {
        self.last = core::cmp::max(self.last, stamp.nanos);
    }

    /// The current Lamport time at real time `now_nanos`, without issuing a stamp.
    pub fn peek(&self, now_nanos: u64) -> u64 {
        core::cmp::max(now_nanos, self.last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const A: HostId = HostId::from_name(b"alpha");
    const B: HostId = HostId::from_name(b"beta");

    #[test]
    fn host_ids_differ_and_are_stable() {
        assert_ne!(A, B);
        assert_eq!(HostId::from_name(b"alpha"), A);
        // FNV-1a of the empty string is the offset basis: a fixed, documented value.
        assert_eq!(HostId::from_name(b"").0, 0xcbf2_9ce4_8422_2325);
    }

    #[test]
    fn tick_follows_real_time_when_it_is_ahead() {
        let mut c = LamportClock::new(A);
        assert_eq!(c.tick(1_000).nanos, 1_000);
        assert_eq!(c.tick(5_000).nanos, 5_000);
    }

    #[test]
    fn tick_never_goes_backwards_when_real_time_does() {
        let mut c = LamportClock::new(A);
        let s1 = c.tick(10_000);
        let s2 = c.tick(3_000);
        let s3 = c.tick(3_000);
        assert!(s1 < s2 && s2 < s3);
        assert_eq!(s3.nanos, 10_002);
    }

    #[test]
    fn tick_many_reserves_consecutive_stamps() {
        let mut c = LamportClock::new(A);
        let first = c.tick_many(1_000, 5);
        assert_eq!(first.nanos, 1_000);
        assert_eq!(c.tick(1_000).nanos, 1_005);
        let one = c.tick_many(0, 1);
        assert_eq!(one.nanos, 1_006);
        let none = c.tick_many(0, 0);
        assert_eq!(none.nanos, 1_007);
        assert_eq!(c.tick(0).nanos, 1_008);
    }

    #[test]
    fn observe_pushes_the_clock_past_received_stamps() {
        let mut a = LamportClock::new(A);
        let mut b = LamportClock::new(B);
        let from_future = b.tick(1_000_000);
        a.observe(from_future);
        let reply = a.tick(5);
        assert!(reply > from_future);
        assert_eq!(a.peek(0), reply.nanos);
    }

    #[test]
    fn ties_are_broken_by_host() {
        let sa = Stamp::new(7, A);
        let sb = Stamp::new(7, B);
        assert_ne!(sa.cmp(&sb), Ordering::Equal);
        assert_eq!(sa.cmp(&sb), A.cmp(&B));
        assert!(Stamp::ZERO < sa);
    }

    #[test]
    fn saturates_at_the_end_of_time() {
        let mut c = LamportClock::new(A);
        c.observe(Stamp::new(u64::MAX, B));
        assert_eq!(c.tick(0).nanos, u64::MAX);
    }

    #[test]
    fn display_is_seconds_nanoseconds_host() {
        let s = Stamp::new(1_700_000_000_000_000_042, HostId(0xab));
        assert_eq!(std::format!("{s}"), "1700000000.000000042@00000000000000ab");
    }

    proptest! {
        /// Whatever real time does and whatever is received, issued stamps strictly increase and
        /// every stamp issued after an observation is greater than the observed stamp.
        #[test]
        fn stamps_increase_and_pass_observed(events in proptest::collection::vec((any::<bool>(), 0u64..1u64 << 40), 1..200)) {
            let mut c = LamportClock::new(A);
            let mut last_issued = Stamp::ZERO;
            let mut max_seen = Stamp::ZERO;
            for (is_receive, t) in events {
                if is_receive {
                    let s = Stamp::new(t, B);
                    c.observe(s);
                    max_seen = max_seen.max(s);
                } else {
                    let s = c.tick(t);
                    prop_assert!(s > last_issued);
                    prop_assert!(s.nanos > max_seen.nanos || max_seen == Stamp::ZERO);
                    last_issued = s;
                }
            }
        }

        /// The order is total and agrees with (nanos, host) lexicographic order.
        #[test]
        fn order_is_lexicographic(a in any::<(u64, u64)>(), b in any::<(u64, u64)>()) {
            let sa = Stamp::new(a.0, HostId(a.1));
            let sb = Stamp::new(b.0, HostId(b.1));
            prop_assert_eq!(sa.cmp(&sb), a.cmp(&b));
        }
    }
}
