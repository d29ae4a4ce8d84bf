//! Requests in flight on one connection, paired with their replies by request id.
//!
//! One request per round trip leaves a long link idle most of the time: one 1 MiB log-fetch per
//! 54 ms round trip is at most 19 MB/s, whatever the link could carry. A client therefore keeps
//! up to `N` requests outstanding. A reply may take several frames (a tree reply comes in
//! chunks); every frame names the id of its request, which must be one in flight, or the
//! connection is broken (docs/protocol.md). Servers answer in order, but the pairing does not
//! rely on it.

/// A reply named a request that is not in flight (never sent, or already answered).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownRequest(pub u64);

/// One request in flight.
#[derive(Clone, Copy, Debug)]
struct InFlight<T> {
    id: u64,
    sent_ms: u64,
    what: T,
}

/// Up to `N` requests in flight, each with what the caller needs to handle its reply (`T`).
///
/// # Invariants
///
/// The ids of the requests in flight are distinct and never 0 (0 names no request: an error
/// about the connection as a whole).
#[derive(Debug)]
pub struct Pipeline<T, const N: usize> {
    slots: [Option<InFlight<T>>; N],
    last_id: u64,
}

impl<T: Copy, const N: usize> Default for Pipeline<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy, const N: usize> Pipeline<T, N> {
    /// Nothing in flight.
    pub fn new() -> Self {
        Pipeline { slots: [None; N], last_id: 0 }
    }

    /// Requests in flight.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.slots.iter().all(Option::is_none)
    }

    /// Whether another request may be sent.
    pub fn has_room(&self) -> bool {
        self.slots.iter().any(Option::is_none)
    }

    /// Records a request about to be sent at `now_ms`; returns its id, or `None` if `N` are in
    /// flight already.
    pub fn issue(&mut self, what: T, now_ms: u64) -> Option<u64> {
        let free = self.slots.iter().position(Option::is_none)?;
        let mut id = self.last_id;
        // At most N ids are taken, so one of the next N + 1 is free.
        loop {
            id = id.wrapping_add(1).max(1);
            if !self.slots.iter().flatten().any(|f| f.id == id) {
                break;
            }
        }
        self.last_id = id;
        // INVARIANT: `id` is not 0 and not the id of any request in flight.
        let slot = self.slots.get_mut(free)?;
        *slot = Some(InFlight { id, sent_ms: now_ms, what });
        Some(id)
    }

    /// A frame of the reply to `id` arrived that is not its last: what the request was for.
    pub fn part(&self, id: u64) -> Result<T, UnknownRequest> {
        self.slots.iter().flatten().find(|f| f.id == id).map(|f| f.what).ok_or(UnknownRequest(id))
    }

    /// The last frame of the reply to `id` arrived: the request is answered.
    pub fn complete(&mut self, id: u64) -> Result<T, UnknownRequest> {
        let slot = self.slots.iter_mut().find(|s| s.is_some_and(|f| f.id == id)).ok_or(UnknownRequest(id))?;
        slot.take().map(|f| f.what).ok_or(UnknownRequest(id))
    }

    /// When the oldest request in flight was sent (`None`: nothing in flight).
    pub fn oldest_sent_ms(&self) -> Option<u64> {
        self.slots.iter().flatten().map(|f| f.sent_ms).min()
    }

    /// The connection is gone: forgets every request in flight, calling `f` with each, oldest
    /// first, so that the caller can ask again on the next connection.
    pub fn abandon(&mut self, mut f: impl FnMut(T)) {
        while let Some(i) = self.oldest_slot() {
            if let Some(request) = self.slots.get_mut(i).and_then(Option::take) {
                f(request.what);
            }
        }
    }

    /// The slot of the request sent first (ties: the lower id).
    fn oldest_slot(&self) -> Option<usize> {
        let sent = self.slots.iter().enumerate().filter_map(|(i, s)| s.map(|f| (f.sent_ms, f.id, i)));
        sent.min().map(|(_, _, i)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_nonzero_and_bounded_by_the_window() {
        let mut p: Pipeline<u32, 4> = Pipeline::new();
        let ids: Vec<u64> = (0..4).map(|i| p.issue(i, 10).unwrap()).collect();
        assert_eq!(ids, vec![1, 2, 3, 4]);
        assert!(!p.has_room());
        assert_eq!(p.issue(9, 11), None);
        assert_eq!(p.len(), 4);
    }

    #[test]
    fn replies_pair_by_id_in_any_order() {
        let mut p: Pipeline<&str, 3> = Pipeline::new();
        let a = p.issue("a", 1).unwrap();
        let b = p.issue("b", 2).unwrap();
        let c = p.issue("c", 3).unwrap();
        assert_eq!(p.part(b), Ok("b"));
        assert_eq!(p.complete(c), Ok("c"));
        assert_eq!(p.complete(a), Ok("a"));
        assert_eq!(p.oldest_sent_ms(), Some(2));
        assert_eq!(p.complete(b), Ok("b"));
        assert!(p.is_empty());
        assert_eq!(p.oldest_sent_ms(), None);
    }

    #[test]
    fn a_reply_to_no_request_in_flight_is_refused() {
        let mut p: Pipeline<u8, 2> = Pipeline::new();
        let a = p.issue(1, 0).unwrap();
        assert_eq!(p.part(a + 1), Err(UnknownRequest(a + 1)));
        assert_eq!(p.complete(0), Err(UnknownRequest(0)));
        assert_eq!(p.complete(a), Ok(1));
        // Answered already.
        assert_eq!(p.complete(a), Err(UnknownRequest(a)));
    }

    #[test]
    fn ids_wrap_around_without_zero_or_a_taken_id() {
        let mut p: Pipeline<u8, 2> = Pipeline::new();
        p.last_id = u64::MAX - 1;
        let a = p.issue(0, 0).unwrap();
        assert_eq!(a, u64::MAX);
        let b = p.issue(1, 0).unwrap();
        assert_eq!(b, 1);
        p.complete(a).unwrap();
        // 1 is still in flight: the next id skips it.
        p.last_id = 0;
        assert_eq!(p.issue(2, 0), Some(2));
    }

    #[test]
    fn abandoned_requests_come_back_oldest_first() {
        let mut p: Pipeline<u32, 4> = Pipeline::new();
        p.issue(30, 30).unwrap();
        p.issue(10, 10).unwrap();
        p.issue(20, 20).unwrap();
        let mut back = Vec::new();
        p.abandon(|w| back.push(w));
        assert_eq!(back, vec![10, 20, 30]);
        assert!(p.is_empty());
        assert!(p.issue(1, 40).is_some());
    }
}
