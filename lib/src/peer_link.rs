//! One connection to one peer on one channel, as a client sees it: when to connect, when to give
//! up on a connect or a handshake, when to send a keepalive, when a silent peer counts as gone,
//! and how long to wait before trying again.
//!
//! Pure: the client brick in mars.ko owns the socket, tells a [`Link`] what happened (with the
//! time, in milliseconds of a monotonic clock) and does what [`Link::poll`] says. The cluster
//! simulation drives the same state machine. Times are `u64` milliseconds; nothing here reads a
//! clock.

/// A connect (TCP up) must finish within this.
pub const CONNECT_TIMEOUT_MS: u64 = 10_000;
/// The handshake (hello and proof both ways) must finish within this after TCP is up.
pub const HANDSHAKE_TIMEOUT_MS: u64 = 10_000;
/// Send a keepalive when nothing was sent for this long.
pub const KEEPALIVE_MS: u64 = 3_000;
/// A peer from which nothing arrived for this long (several keepalive intervals) is gone.
pub const DEAD_AFTER_MS: u64 = 4 * KEEPALIVE_MS;
/// First wait before reconnecting after a failure.
pub const BACKOFF_BASE_MS: u64 = 250;
/// Longest wait before reconnecting.
pub const BACKOFF_CAP_MS: u64 = 30_000;

/// Why a connection ended, for status and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// TCP did not come up within [`CONNECT_TIMEOUT_MS`].
    ConnectTimeout,
    /// The handshake did not finish within [`HANDSHAKE_TIMEOUT_MS`].
    HandshakeTimeout,
    /// Nothing arrived for [`DEAD_AFTER_MS`].
    PeerSilent,
    /// The connect, a send or a receive failed with this errno (positive).
    Io(i32),
    /// The peer refused us or broke the protocol: the error code it sent or we sent (docs/protocol.md).
    Protocol(u16),
    /// This side closed it (stop, leave-cluster).
    Closed,
}

/// Capped exponential backoff with jitter between reconnection attempts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backoff {
    /// Failures in a row since the last success.
    failures: u32,
}

impl Backoff {
    /// No failure yet.
    pub const fn new() -> Backoff {
        Backoff { failures: 0 }
    }

    /// Counts a failure and returns how long to wait before the next attempt: a `random` point
    /// in the upper half of `min(cap, base * 2^failures)`, so that many hosts that lost the same
    /// peer do not all come back at the same moment.
    pub fn failed(&mut self, random: u64) -> u64 {
        let exp = self.failures.min(20);
        self.failures = self.failures.saturating_add(1);
        let ceiling = BACKOFF_BASE_MS.saturating_mul(1u64 << exp).min(BACKOFF_CAP_MS);
        let half = ceiling / 2;
        half.saturating_add(random % half.saturating_add(1))
    }

    /// Counts a success: the next failure waits the shortest time again.
    pub fn succeeded(&mut self) {
        self.failures = 0;
    }

    /// Failures in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// Where a link is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Not connected; the next attempt may start at `retry_at`.
    Down {
        /// Earliest time of the next connect.
        retry_at: u64,
    },
    /// TCP connect in progress since `since`.
    Connecting {
        /// When it started.
        since: u64,
    },
    /// TCP is up since `since`; hellos and proofs are being exchanged.
    Handshaking {
        /// When TCP came up.
        since: u64,
    },
    /// Authenticated since `since`: requests may flow.
    Up {
        /// When the handshake completed.
        since: u64,
    },
}

/// What the owner of a link should do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing until the time given (or until something happens).
    Wait {
        /// When to poll again at the latest.
        until: u64,
    },
    /// Start a TCP connect.
    Connect,
    /// Send a keepalive.
    SendKeepalive,
    /// Close the socket: the connection failed for this reason (already recorded).
    Close(Failure),
}

/// The client side of one connection to a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    state: State,
    backoff: Backoff,
    /// Last time anything arrived from the peer (0: never).
    last_rx: u64,
    /// Last time anything was sent.
    last_tx: u64,
    /// Why the last connection ended or attempt failed.
    last_failure: Option<Failure>,
}

impl Default for Link {
    fn default() -> Link {
        Link::new()
    }
}

impl Link {
    /// A link that may connect at once.
    pub const fn new() -> Link {
        Link { state: State::Down { retry_at: 0 }, backoff: Backoff::new(), last_rx: 0, last_tx: 0, last_failure: None }
    }

    /// Where the link is.
    pub fn state(&self) -> State {
        self.state
    }

    /// True once authenticated.
    pub fn is_up(&self) -> bool {
        matches!(self.state, State::Up { .. })
    }

    /// Last time anything arrived from the peer (0: never): its last contact.
    pub fn last_contact(&self) -> u64 {
        self.last_rx
    }

    /// Why the last connection ended or attempt failed.
    pub fn last_failure(&self) -> Option<Failure> {
        self.last_failure
    }

    /// Failed attempts in a row.
    pub fn failures(&self) -> u32 {
        self.backoff.failures()
    }

    /// What to do at time `now`. [`Action::Close`] has already moved the link down.
    pub fn poll(&mut self, now: u64, random: u64) -> Action {
        match self.state {
            State::Down { retry_at } if now >= retry_at => Action::Connect,
            State::Down { retry_at } => Action::Wait { until: retry_at },
            State::Connecting { since } => {
                self.by_deadline(now, since.saturating_add(CONNECT_TIMEOUT_MS), Failure::ConnectTimeout, random)
            }
            State::Handshaking { since } => {
                self.by_deadline(now, since.saturating_add(HANDSHAKE_TIMEOUT_MS), Failure::HandshakeTimeout, random)
            }
            State::Up { .. } => {
                let dead_at = self.last_rx.saturating_add(DEAD_AFTER_MS);
                let keepalive_at = self.last_tx.saturating_add(KEEPALIVE_MS);
                if now >= dead_at {
                    self.fail(now, Failure::PeerSilent, random)
                } else if now >= keepalive_at {
                    Action::SendKeepalive
                } else {
                    Action::Wait { until: dead_at.min(keepalive_at) }
                }
            }
        }
    }

    /// Waits until `deadline`, or fails with `why` once it has passed.
    fn by_deadline(&mut self, now: u64, deadline: u64, why: Failure, random: u64) -> Action {
        if now >= deadline {
            self.fail(now, why, random)
        } else {
            Action::Wait { until: deadline }
        }
    }

    /// A connect was started at `now` (after [`Action::Connect`]).
    pub fn connecting(&mut self, now: u64) {
        self.state = State::Connecting { since: now };
    }

    /// TCP came up at `now`; the handshake starts.
    pub fn tcp_up(&mut self, now: u64) {
        if let State::Connecting { .. } = self.state {
            self.state = State::Handshaking { since: now };
            self.last_rx = self.last_rx.max(now);
            self.last_tx = now;
        }
    }

    /// The handshake completed at `now`: the peer proved it knows the secret.
    pub fn authenticated(&mut self, now: u64) {
        if let State::Handshaking { .. } = self.state {
            self.state = State::Up { since: now };
            self.backoff.succeeded();
            self.last_failure = None;
            self.last_rx = now;
        }
    }

    /// A frame arrived at `now`.
    pub fn received(&mut self, now: u64) {
        if !matches!(self.state, State::Down { .. }) {
            self.last_rx = self.last_rx.max(now);
        }
    }

    /// A frame was sent at `now`.
    pub fn sent(&mut self, now: u64) {
        self.last_tx = self.last_tx.max(now);
    }

    /// The connection or attempt failed at `now` for `why`; returns [`Action::Close`] with it.
    /// The next attempt waits per the backoff (`random` jitters it).
    pub fn fail(&mut self, now: u64, why: Failure, random: u64) -> Action {
        let wait = self.backoff.failed(random);
        self.state = State::Down { retry_at: now.saturating_add(wait) };
        self.last_failure = Some(why);
        Action::Close(why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new();
        // With random = 0 the wait is the lower end: half the ceiling.
        let waits: Vec<u64> = (0..10).map(|_| b.failed(0)).collect();
        assert_eq!(waits[..4], [125, 250, 500, 1000]);
        assert_eq!(*waits.last().unwrap(), BACKOFF_CAP_MS / 2);
        let mut c = Backoff::new();
        for _ in 0..64 {
            assert!(c.failed(u64::MAX) <= BACKOFF_CAP_MS);
        }
        b.succeeded();
        assert_eq!(b.failed(0), 125);
    }

    #[test]
    fn backoff_jitter_stays_in_the_upper_half() {
        for r in 0..2000u64 {
            let mut b = Backoff::new();
            b.failed(0);
            b.failed(0);
            let w = b.failed(r.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            assert!((500..=1000).contains(&w), "{w}");
        }
    }

    #[test]
    fn a_link_connects_authenticates_and_keeps_alive() {
        let mut l = Link::new();
        assert_eq!(l.poll(0, 0), Action::Connect);
        l.connecting(0);
        assert_eq!(l.poll(5, 0), Action::Wait { until: CONNECT_TIMEOUT_MS });
        l.tcp_up(10);
        assert!(matches!(l.state(), State::Handshaking { since: 10 }));
        l.authenticated(20);
        assert!(l.is_up());
        assert_eq!(l.poll(20, 0), Action::Wait { until: 10 + KEEPALIVE_MS });
        assert_eq!(l.poll(10 + KEEPALIVE_MS, 0), Action::SendKeepalive);
        l.sent(10 + KEEPALIVE_MS);
        l.received(1000);
        assert_eq!(l.last_contact(), 1000);
    }

    #[test]
    fn a_silent_peer_is_dropped_and_retried_with_backoff() {
        let mut l = Link::new();
        l.connecting(0);
        l.tcp_up(0);
        l.authenticated(0);
        l.sent(DEAD_AFTER_MS);
        assert_eq!(l.poll(DEAD_AFTER_MS, 0), Action::Close(Failure::PeerSilent));
        assert_eq!(l.last_failure(), Some(Failure::PeerSilent));
        assert_eq!(l.poll(DEAD_AFTER_MS, 0), Action::Wait { until: DEAD_AFTER_MS + 125 });
        assert_eq!(l.poll(DEAD_AFTER_MS + 125, 0), Action::Connect);
    }

    #[test]
    fn connects_and_handshakes_time_out() {
        let mut l = Link::new();
        l.connecting(100);
        assert_eq!(l.poll(100 + CONNECT_TIMEOUT_MS, 0), Action::Close(Failure::ConnectTimeout));
        l.connecting(50_000);
        l.tcp_up(50_001);
        assert_eq!(l.poll(50_001 + HANDSHAKE_TIMEOUT_MS, 0), Action::Close(Failure::HandshakeTimeout));
        assert_eq!(l.failures(), 2);
        // A success resets the backoff and the recorded failure.
        if let State::Down { retry_at } = l.state() {
            l.connecting(retry_at);
            l.tcp_up(retry_at);
            l.authenticated(retry_at);
        }
        assert_eq!(l.failures(), 0);
        assert_eq!(l.last_failure(), None);
    }

    #[test]
    fn late_events_of_an_old_connection_change_nothing() {
        let mut l = Link::new();
        l.connecting(0);
        let _ = l.fail(1, Failure::Io(111), 0);
        let before = l;
        l.tcp_up(2);
        l.authenticated(3);
        l.received(4);
        assert_eq!(l, before);
    }
}
