//! The tree exchange between hosts: whom a host pulls from in a round, and what it asks for.
//!
//! Each strategy round a host pulls from a few peers (docs/cluster.md): every other member while
//! the cluster is small, else [`FANOUT`] members chosen at random per round, so no host holds a
//! connection to every other in a cluster of thousands and a change still reaches all of them in
//! a number of rounds that grows with the logarithm of the cluster's size. A pull asks only for
//! what the peer learned since the last complete pull from it ([`Pull`]), and only from the parts
//! of the tree where the two hosts differ ([`TreeDigest`]): so a round costs bytes in proportion
//! to what changed, a converged cluster exchanges digests and nothing else, and a host that was
//! away catches up in one exchange.

use super::lamport::Stamp;
use super::tree::EntryRef;
use super::tree_codec::EntryFilter;

/// Peers pulled from per round in a cluster larger than `FANOUT + 1` hosts.
pub const FANOUT: usize = 3;

/// A small, fast pseudo-random generator (SplitMix64), seeded by the caller: the kernel seeds it
/// from its random pool, the simulation from the seed it prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rng(u64);

impl Rng {
    /// A generator starting from `seed`.
    pub const fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 if `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        // Multiply-shift: no modulo bias worth the name for the sizes used here.
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// Chooses the members host `me` pulls from this round, out of `members` hosts numbered
/// `0..members` (`me` among them), into `out`; returns how many. Every other member if there
/// are at most `out.len()` of them, else `out.len()` distinct ones at random.
pub fn pick_peers(members: usize, me: usize, rng: &mut Rng, out: &mut [usize]) -> usize {
    let others = members.saturating_sub(1);
    if others <= out.len() {
        let mut n = 0;
        for (peer, slot) in (0..members).filter(|&p| p != me).zip(out.iter_mut()) {
            *slot = peer;
            n += 1;
        }
        return n;
    }
    let mut n = 0;
    while n < out.len() {
        // A random member other than `me`: draw among `others`, then skip over `me`.
        let mut peer = rng.below(others);
        if peer >= me {
            peer += 1;
        }
        let taken = out.get(..n).is_some_and(|chosen| chosen.contains(&peer));
        if let (false, Some(slot)) = (taken, out.get_mut(n)) {
            *slot = peer;
            n += 1;
        }
    }
    n
}

/// What a host knows about its pulls from one peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pull {
    /// Snapshot stamp of the last complete pull from the peer (`Stamp::ZERO`: none yet).
    since: Stamp,
}

impl Pull {
    /// No pull from the peer yet.
    pub const fn new() -> Pull {
        Pull { since: Stamp::ZERO }
    }

    /// What to ask the peer for: what it learned after the last complete pull, or everything.
    pub fn filter(&self) -> EntryFilter {
        if self.since == Stamp::ZERO {
            EntryFilter::All
        } else {
            EntryFilter::LearnedAfter(self.since)
        }
    }

    /// The `since_nanos` of a tree-request for [`Self::filter`] (docs/protocol.md).
    pub fn since_nanos(&self) -> u64 {
        self.since.nanos
    }

    /// A pull whose every entry has been applied completed; `snapshot` is the peer's stamp for it.
    /// An interrupted pull must not be recorded: the next one asks again from the same point.
    pub fn completed(&mut self, snapshot: Stamp) {
        self.since = self.since.max(snapshot);
    }

    /// The snapshot of the last complete pull (this host's acknowledgement of the peer).
    pub fn since(&self) -> Stamp {
        self.since
    }
}

/// Buckets of a [`TreeDigest`]: keys are spread over them by a hash of the key.
pub const DIGEST_BUCKETS: usize = 64;

/// 64-bit FNV-1a, continued from `hash` over `bytes`.
fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// Which digest bucket `key` falls in.
pub fn bucket_of(key: &str) -> usize {
    (fnv1a(FNV_OFFSET, key.as_bytes()) % DIGEST_BUCKETS as u64) as usize
}

/// A hash of a whole entry (key, value, stamp, tombstone flag), mixed so that XORs of many of them
/// do not cancel by accident.
pub fn entry_hash(entry: &EntryRef<'_>) -> u64 {
    let mut h = fnv1a(FNV_OFFSET, entry.key.as_bytes());
    h = fnv1a(h, &[0xff]);
    h = fnv1a(h, entry.value.as_bytes());
    h = fnv1a(h, &entry.stamp.nanos.to_le_bytes());
    h = fnv1a(h, &entry.stamp.host.0.to_le_bytes());
    h = fnv1a(h, &[u8::from(entry.deleted)]);
    // SplitMix64's finaliser.
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// A summary of a host's tree: per bucket, the XOR of the hashes of its entries. Kept up to date
/// as entries are stored (`add` the new, `remove` the replaced one). Two hosts whose bucket
/// digests are equal hold the same entries in that bucket (but for a 2^-64 chance), so a pull
/// leaves those buckets out: the puller sends its digest, the server sends only entries of
/// buckets where the digests differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeDigest {
    buckets: [u64; DIGEST_BUCKETS],
}

impl Default for TreeDigest {
    fn default() -> TreeDigest {
        TreeDigest::new()
    }
}

impl TreeDigest {
    /// The digest of an empty tree.
    pub const fn new() -> TreeDigest {
        TreeDigest { buckets: [0; DIGEST_BUCKETS] }
    }

    fn toggle(&mut self, entry: &EntryRef<'_>) {
        if let Some(b) = self.buckets.get_mut(bucket_of(entry.key)) {
            *b ^= entry_hash(entry);
        }
    }

    /// Counts `entry`, newly stored.
    pub fn add(&mut self, entry: &EntryRef<'_>) {
        self.toggle(entry);
    }

    /// Stops counting `entry`, replaced or dropped.
    pub fn remove(&mut self, entry: &EntryRef<'_>) {
        self.toggle(entry);
    }

    /// The buckets where `self` and `other` differ, one bit per bucket.
    pub fn differing(&self, other: &TreeDigest) -> u64 {
        self.buckets.iter().zip(other.buckets.iter()).enumerate().fold(0u64, |mask, (i, (a, b))| {
            if a != b {
                mask | 1u64.checked_shl(i as u32).unwrap_or(0)
            } else {
                mask
            }
        })
    }

    /// The digest as it goes on the wire: 64 little-endian `u64`s.
    pub fn buckets(&self) -> &[u64; DIGEST_BUCKETS] {
        &self.buckets
    }

    /// A digest received from a peer.
    pub const fn from_buckets(buckets: [u64; DIGEST_BUCKETS]) -> TreeDigest {
        TreeDigest { buckets }
    }

    /// The digest in its wire form (docs/protocol.md, tree-request-digest).
    pub fn to_wire(&self) -> [u8; DIGEST_BUCKETS * 8] {
        let mut out = [0u8; DIGEST_BUCKETS * 8];
        for (chunk, b) in out.chunks_exact_mut(8).zip(self.buckets.iter()) {
            chunk.iter_mut().zip(b.to_le_bytes()).for_each(|(d, s)| *d = s);
        }
        out
    }

    /// A digest from its wire form; `None` unless `bytes` has exactly 512 bytes.
    pub fn from_wire(bytes: &[u8]) -> Option<TreeDigest> {
        if bytes.len() != DIGEST_BUCKETS * 8 {
            return None;
        }
        let mut buckets = [0u64; DIGEST_BUCKETS];
        for (b, chunk) in buckets.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut le = [0u8; 8];
            le.iter_mut().zip(chunk).for_each(|(d, s)| *d = *s);
            *b = u64::from_le_bytes(le);
        }
        Some(TreeDigest { buckets })
    }
}

/// Whether a server sends `key` to a puller whose digest differs from its own in `differing`.
pub fn bucket_wanted(key: &str, differing: u64) -> bool {
    differing & 1u64.checked_shl(bucket_of(key) as u32).unwrap_or(0) != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lamport::HostId;

    #[test]
    fn digests_round_trip_through_their_wire_form() {
        let mut d = TreeDigest::new();
        d.add(&EntryRef::live("uuid", "c1", crate::lamport::Stamp::new(5, HostId(1))).unwrap());
        assert_eq!(TreeDigest::from_wire(&d.to_wire()), Some(d));
        assert_eq!(TreeDigest::from_wire(&[0; 511]), None);
        assert_eq!(crate::proto_msg::DIGEST_WIRE_LEN, DIGEST_BUCKETS * 8);
    }

    #[test]
    fn a_small_cluster_pulls_from_everyone() {
        let mut rng = Rng::new(1);
        let mut out = [0usize; FANOUT];
        assert_eq!(pick_peers(1, 0, &mut rng, &mut out), 0);
        assert_eq!(pick_peers(3, 1, &mut rng, &mut out), 2);
        assert_eq!(out[..2], [0, 2]);
        assert_eq!(pick_peers(4, 3, &mut rng, &mut out), 3);
        assert_eq!(out, [0, 1, 2]);
    }

    #[test]
    fn a_large_cluster_pulls_from_fanout_distinct_others() {
        let mut rng = Rng::new(7);
        let mut seen = [0u32; 50];
        for round in 0..2000 {
            let me = round % 50;
            let mut out = [0usize; FANOUT];
            assert_eq!(pick_peers(50, me, &mut rng, &mut out), FANOUT);
            for (i, p) in out.iter().enumerate() {
                assert!(*p < 50 && *p != me);
                assert!(!out[..i].contains(p));
                seen[*p] += 1;
            }
        }
        // Every member is picked, roughly evenly (expected 120 each).
        assert!(seen.iter().all(|&n| (60..200).contains(&n)), "{seen:?}");
    }

    #[test]
    fn pulls_ask_for_everything_first_then_for_changes() {
        let mut p = Pull::new();
        assert_eq!(p.filter(), EntryFilter::All);
        let snap = Stamp::new(500, HostId(9));
        p.completed(snap);
        assert_eq!(p.filter(), EntryFilter::LearnedAfter(snap));
        assert_eq!(p.since_nanos(), 500);
        // An older snapshot (a late reply of an earlier pull) never moves it back.
        p.completed(Stamp::new(100, HostId(9)));
        assert_eq!(p.since(), snap);
    }

    #[test]
    fn digests_tell_equal_trees_and_point_at_the_differences() {
        let s1 = Stamp::new(1, HostId(1));
        let s2 = Stamp::new(2, HostId(1));
        let a = EntryRef::live("resource-r0/primary", "node1", s1).unwrap();
        let b = EntryRef::live("ips/ip-node2", "10.0.0.2", s1).unwrap();
        let a2 = EntryRef::live("resource-r0/primary", "node2", s2).unwrap();
        let mut x = TreeDigest::new();
        let mut y = TreeDigest::new();
        // Order does not matter.
        x.add(&a);
        x.add(&b);
        y.add(&b);
        y.add(&a);
        assert_eq!(x.differing(&y), 0);
        // A replaced entry shows up in its bucket only.
        y.remove(&a);
        y.add(&a2);
        let diff = x.differing(&y);
        assert_eq!(diff, 1u64 << bucket_of(a.key));
        assert!(bucket_wanted(a.key, diff));
        assert!(!bucket_wanted(b.key, diff) || bucket_of(b.key) == bucket_of(a.key));
        // A tombstone differs from the live entry it replaces.
        let t = EntryRef::tombstone("resource-r0/primary", s1).unwrap();
        assert_ne!(entry_hash(&t), entry_hash(&a));
        assert_eq!(TreeDigest::from_buckets(*x.buckets()), x);
    }

    #[test]
    fn rng_is_reproducible_and_below_stays_below() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        for n in 1..1000usize {
            let x = a.below(n);
            assert_eq!(x, b.below(n));
            assert!(x < n);
        }
    }
}
