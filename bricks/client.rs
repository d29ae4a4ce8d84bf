// SPDX-License-Identifier: GPL-2.0

//! The client brick: one connection to one peer on one channel, in its own thread, opened as
//! the strategy asks and kept up by `mars_core::peer_link::Link` (deadlines, keepalives,
//! silent peers, capped exponential backoff with jitter).
//!
//! What it does on the connection is its [`Work`], one implementation per channel: pulling the
//! tree (`tree_pull.rs`), fetching a primary's logfiles (`fetch.rs`). The client connects,
//! authenticates, keeps the link alive and records failures; the work runs whenever the link is
//! up and it is due (woken by [`Client::wake`], or at the time its last run asked for). Its
//! state (connected since, last contact, last error) is shown through [`Client::view`].

use core::fmt::Write;
use core::sync::atomic::{AtomicBool, Ordering};

use kernel::prelude::*;
use kernel::sync::{Arc, CondVar, Mutex};
use kernel::time::Delta;

use crate::handshake::{self, Refusal};
use crate::kx::kthread::Rounds;
use crate::kx::net::{SockAddr, Socket};
use crate::kx::random;
use crate::kx::time::monotonic_ms;
use crate::mars_core::errno::{describe, Described};
use crate::mars_core::peer_link::{
    Action, Failure, Link, State, CONNECT_TIMEOUT_MS, DEAD_AFTER_MS, HANDSHAKE_TIMEOUT_MS, KEEPALIVE_MS,
};
use crate::mars_core::proto::{Channel, ProtoError, Role};
use crate::mars_core::proto_msg::Message;
use crate::mars_core::session::{self, SessionError};
use crate::shown::Shown;
use crate::status::ModuleStatus;
use crate::tree_store::TextBuf;
use crate::wire::Wire;

/// Why a work's run ended the connection: the link failure and the words for status and logs.
pub(crate) struct Failed {
    pub(crate) why: Failure,
    pub(crate) words: TextBuf,
}

impl Failed {
    /// A failure with its words.
    pub(crate) fn new(why: Failure, words: &dyn core::fmt::Display) -> Failed {
        let mut text = TextBuf::new();
        let _ = write!(text, "{words}");
        Failed { why, words: text }
    }

    /// The failure a session error stands for.
    pub(crate) fn session(e: &SessionError<Described>) -> Failed {
        let why = match e {
            SessionError::Io(errno) => Failure::Io(errno.0.abs()),
            SessionError::Proto(p) => Failure::Protocol(p.code().0),
            SessionError::Refused { code, .. } => Failure::Protocol(code.0),
        };
        Failed::new(why, e)
    }

    /// The reply named another request than the one waited for: the connection is broken.
    pub(crate) fn wrong_id(wire: &mut Wire<'_>) -> Failed {
        let e = ProtoError::Invalid { field: "request id", why: "does not match the request" };
        session::send_error(wire, &e, 0);
        Failed::new(Failure::Protocol(e.code().0), &e)
    }

    /// A local operation failed with `e`.
    pub(crate) fn io(e: Error) -> Failed {
        Failed::new(Failure::Io(-e.to_errno()), &describe(e.to_errno()))
    }

    /// This host ran out of memory.
    pub(crate) fn nomem() -> Failed {
        Failed::new(Failure::Io(12), &"out of memory")
    }
}

/// A peer's error reply, for logs.
pub(crate) struct ErrorWords<'a>(pub(crate) u16, pub(crate) &'a str);

impl core::fmt::Display for ErrorWords<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "the peer answered: {}: {}", crate::mars_core::proto::ErrorCode(self.0), self.1)
    }
}

/// What a run of a [`Work`] asks for next.
pub(crate) enum Next {
    /// Run again when woken ([`Client::wake`]).
    WhenWoken,
    /// Run again after this many milliseconds, or when woken.
    After(u64),
}

/// What a client does on its connection: one implementation per channel.
pub(crate) trait Work: Send + Sync {
    /// The channel it works on.
    const CHANNEL: Channel;

    /// Runs once the connection is authenticated, before the link counts as up.
    fn connected(&self, _conn: &mut Conn<'_>) -> core::result::Result<(), Failed> {
        Ok(())
    }

    /// Does what is due on the connection.
    fn run(&self, conn: &mut Conn<'_>) -> core::result::Result<Next, Failed>;
}

/// The connection as a work sees it.
pub(crate) struct Conn<'a> {
    sock: &'a Socket,
    shared: &'a Mutex<Shared>,
    wake: &'a CondVar,
    stopping: &'a AtomicBool,
    status: &'a ModuleStatus,
    /// Protocol version the peer speaks on this connection.
    pub(crate) version: u16,
    /// Id of the last request sent on the connection.
    request_id: &'a mut u64,
    /// When this side last sent something.
    sent_ms: u64,
}

impl<'a> Conn<'a> {
    /// A wire whose transfers may each take `timeout_ms`.
    pub(crate) fn wire(&self, timeout_ms: u64) -> Wire<'a> {
        Wire::new(self.sock, Delta::from_millis(i64::try_from(timeout_ms).unwrap_or(i64::MAX)))
    }

    /// A wire with the silence limit of a live link.
    pub(crate) fn live_wire(&self) -> Wire<'a> {
        self.wire(DEAD_AFTER_MS)
    }

    /// A fresh request id (never 0).
    pub(crate) fn next_id(&mut self) -> u64 {
        *self.request_id = self.request_id.wrapping_add(1).max(1);
        *self.request_id
    }

    /// Records that a frame went out.
    pub(crate) fn sent(&mut self) {
        self.sent_ms = monotonic_ms();
        self.shared.lock().link.sent(self.sent_ms);
    }

    /// Records that a frame came in.
    pub(crate) fn received(&self) {
        self.shared.lock().link.received(monotonic_ms());
    }

    /// Sends a keepalive if nothing went out for [`KEEPALIVE_MS`]: long work between frames (a
    /// large reply being stored) must not look like silence to the peer.
    pub(crate) fn keepalive_if_due(&mut self, wire: &mut Wire<'_>) -> core::result::Result<(), Failed> {
        if monotonic_ms().saturating_sub(self.sent_ms) < KEEPALIVE_MS {
            return Ok(());
        }
        let stamp = self.status.tick();
        let mut scratch = [0u8; 64];
        session::send(wire, &Message::Keepalive { stamp_nanos: stamp.nanos }, 0, &mut scratch)
            .map_err(|e| Failed::session(&e))?;
        self.sent();
        Ok(())
    }

    /// The module's status.
    pub(crate) fn status(&self) -> &'a ModuleStatus {
        self.status
    }

    /// Waits `ms` milliseconds (a rate limit's pause), at most until the client is stopped;
    /// sends a keepalive first if one is due. Fails once the client is stopping.
    pub(crate) fn idle(&mut self, wire: &mut Wire<'_>, ms: u64) -> core::result::Result<(), Failed> {
        self.keepalive_if_due(wire)?;
        let ms = u32::try_from(ms.clamp(1, KEEPALIVE_MS)).unwrap_or(1000);
        let mut shared = self.shared.lock();
        if !self.stopping.load(Ordering::Acquire) {
            let _ = self.wake.wait_interruptible_timeout(&mut shared, kernel::time::msecs_to_jiffies(ms));
        }
        drop(shared);
        if self.stopping.load(Ordering::Acquire) {
            return Err(Failed::new(Failure::Closed, &"stopping"));
        }
        Ok(())
    }
}

/// What others may look at and change while the thread runs.
pub(crate) struct Shared {
    link: Link,
    /// The work is due: woken, or its time came.
    kicked: bool,
    /// When the work asked to run again (`None`: only when woken).
    due_ms: Option<u64>,
    /// The connection (or the connect in progress), for `stop` to shut down.
    sock: Option<Arc<Socket>>,
    /// Why the last connection ended or attempt failed, in words.
    last_error: TextBuf,
}

/// What only the client's thread uses.
struct Own {
    /// Id of the last request sent.
    request_id: u64,
    /// Protocol version of the current connection.
    version: u16,
}

/// A client of one peer on one channel, doing `W`.
#[pin_data]
pub(crate) struct Client<W: Work> {
    peer: KVec<u8>,
    addr: SockAddr,
    status: Arc<ModuleStatus>,
    #[pin]
    work: W,
    stopping: AtomicBool,
    /// Lock order: `own` before `shared`; `shared` is never held across network I/O.
    #[pin]
    shared: Mutex<Shared>,
    #[pin]
    own: Mutex<Own>,
    /// Woken for work, a stop.
    #[pin]
    wake: CondVar,
}

/// A client's state for status.
pub(crate) struct ClientView {
    /// `down`, `connecting`, `handshaking` or `up`.
    pub(crate) state: &'static str,
    /// Milliseconds since the connection came up (up only).
    pub(crate) up_ms: Option<u64>,
    /// Milliseconds since anything arrived from the peer (`None`: never).
    pub(crate) contact_ago_ms: Option<u64>,
    /// Failed attempts in a row.
    pub(crate) failures: u32,
    /// Why the last connection ended, or empty.
    pub(crate) last_error: TextBuf,
}

impl<W: Work> Client<W> {
    /// A client for `peer` at `addr`, not yet running (see `KThread::spawn`).
    pub(crate) fn new(
        peer: &[u8],
        addr: SockAddr,
        status: Arc<ModuleStatus>,
        work: impl PinInit<W, Error>,
    ) -> Result<impl PinInit<Self, Error>> {
        let mut name = KVec::with_capacity(peer.len(), GFP_KERNEL)?;
        name.extend_from_slice(peer, GFP_KERNEL)?;
        Ok(try_pin_init!(Client {
            peer: name,
            addr,
            status,
            work <- work,
            stopping: AtomicBool::new(false),
            shared <- kernel::new_mutex!(
                Shared { link: Link::new(), kicked: false, due_ms: None, sock: None, last_error: TextBuf::new() },
                "mars_client"
            ),
            own <- kernel::new_mutex!(Own { request_id: 0, version: 1 }, "mars_client_own"),
            wake <- kernel::new_condvar!("mars_client_wake"),
        }? Error))
    }

    /// The peer's address.
    pub(crate) fn addr(&self) -> SockAddr {
        self.addr
    }

    /// The client's work.
    pub(crate) fn work(&self) -> &W {
        &self.work
    }

    /// The module's status the client reports to.
    pub(crate) fn status(&self) -> &ModuleStatus {
        &self.status
    }

    /// Makes the work due: it runs as soon as the connection is up.
    pub(crate) fn wake(&self) {
        self.shared.lock().kicked = true;
        self.wake.notify_all();
    }

    /// The client's state now.
    pub(crate) fn view(&self) -> ClientView {
        let now = monotonic_ms();
        let shared = self.shared.lock();
        let link = &shared.link;
        let (state, up_ms) = match link.state() {
            State::Down { .. } => ("down", None),
            State::Connecting { .. } => ("connecting", None),
            State::Handshaking { .. } => ("handshaking", None),
            State::Up { since } => ("up", Some(now.saturating_sub(since))),
        };
        let mut last_error = TextBuf::new();
        let _ = last_error.write_str(shared.last_error.as_str());
        ClientView {
            state,
            up_ms,
            contact_ago_ms: (link.last_contact() != 0).then(|| now.saturating_sub(link.last_contact())),
            failures: link.failures(),
            last_error,
        }
    }

    fn peer_str(&self) -> &str {
        crate::tree_store::text(&self.peer)
    }

    /// Records a failure: the link goes down (and waits its backoff), the socket is closed.
    fn fail(&self, failed: Failed) {
        let mut shared = self.shared.lock();
        let was_up = shared.link.is_up();
        shared.link.fail(monotonic_ms(), failed.why, random::u64());
        shared.sock = None;
        let changed = failed.words.as_str() != shared.last_error.as_str();
        let mut words = TextBuf::new();
        let _ = words.write_str(failed.words.as_str());
        shared.last_error = failed.words;
        drop(shared);
        if self.stopping.load(Ordering::Acquire) {
            return;
        }
        let words = Shown(words.as_str());
        let channel = W::CHANNEL.name();
        if was_up {
            pr_warn!("peer {}: {} channel: connection lost: {}\n", self.peer_str(), channel, words);
        } else if changed {
            pr_warn!(
                "peer {} at {}: {} channel: cannot connect: {}\n",
                self.peer_str(),
                Shown(&self.addr),
                channel,
                words
            );
        }
    }

    /// A connection as the work sees it.
    fn conn<'a>(&'a self, sock: &'a Socket, own: &'a mut Own) -> Conn<'a> {
        Conn {
            sock,
            shared: &self.shared,
            wake: &self.wake,
            stopping: &self.stopping,
            status: &self.status,
            version: own.version,
            request_id: &mut own.request_id,
            sent_ms: monotonic_ms(),
        }
    }

    /// Connects and authenticates.
    fn connect(&self, own: &mut Own) {
        let sock = match Socket::for_address(&self.addr).and_then(|s| Arc::new(s, GFP_KERNEL).map_err(Error::from)) {
            Ok(s) => s,
            Err(e) => return self.fail(Failed::io(e)),
        };
        {
            let mut shared = self.shared.lock();
            shared.sock = Some(sock.clone());
            shared.link.connecting(monotonic_ms());
        }
        if self.stopping.load(Ordering::Acquire) {
            return;
        }
        if let Err(e) = sock.connect(&self.addr, Delta::from_millis(CONNECT_TIMEOUT_MS as i64)) {
            let why = if e == EAGAIN { Failure::ConnectTimeout } else { Failure::Io(-e.to_errno()) };
            return self.fail(Failed::new(why, &describe(e.to_errno())));
        }
        self.shared.lock().link.tcp_up(monotonic_ms());
        let Some(host) = self.status.host_str() else { return };
        let mut wire = Wire::new(&sock, Delta::from_millis(HANDSHAKE_TIMEOUT_MS as i64));
        let peer = match handshake::authenticate(&mut wire, Role::Client, host, Some(self.peer_str())) {
            Ok(p) => p,
            Err(why) => {
                let failure = match (&why, why.code()) {
                    (_, Some(code)) => Failure::Protocol(code),
                    (Refusal::Session(SessionError::Io(e)), None) => Failure::Io(e.0.abs()),
                    _ => Failure::Closed,
                };
                return self.fail(Failed::new(failure, &why));
            }
        };
        own.version = peer.version;
        let connected = self.work.connected(&mut self.conn(&sock, own));
        if let Err(failed) = connected {
            return self.fail(failed);
        }
        let mut shared = self.shared.lock();
        shared.link.authenticated(monotonic_ms());
        shared.last_error = TextBuf::new();
        // A new connection starts with the work due.
        shared.kicked = true;
        drop(shared);
        pr_info!("peer {}: connected to {} ({} channel)\n", self.peer_str(), Shown(&self.addr), W::CHANNEL.name());
    }

    /// Sends a keepalive.
    fn keepalive(&self) {
        let Some(sock) = self.shared.lock().sock.clone() else { return };
        let mut wire = Wire::new(&sock, Delta::from_millis(DEAD_AFTER_MS as i64));
        let mut scratch = [0u8; 64];
        let stamp = self.status.tick();
        match session::send(&mut wire, &Message::Keepalive { stamp_nanos: stamp.nanos }, 0, &mut scratch) {
            Ok(()) => self.shared.lock().link.sent(monotonic_ms()),
            Err(e) => self.fail(Failed::session(&e)),
        }
    }

    /// Runs the work on the connection.
    fn run_work(&self, own: &mut Own) {
        let Some(sock) = self.shared.lock().sock.clone() else { return };
        let next = self.work.run(&mut self.conn(&sock, own));
        match next {
            Ok(Next::WhenWoken) => self.shared.lock().due_ms = None,
            Ok(Next::After(ms)) => self.shared.lock().due_ms = Some(monotonic_ms().saturating_add(ms)),
            Err(failed) => self.fail(failed),
        }
    }
}

impl<W: Work> Rounds for Client<W> {
    fn round(&self) -> u32 {
        let mut own = self.own.lock();
        if self.stopping.load(Ordering::Acquire) {
            return 1000;
        }
        let now = monotonic_ms();
        let action = self.shared.lock().link.poll(now, random::u64());
        match action {
            Action::Connect => self.connect(&mut own),
            Action::SendKeepalive => self.keepalive(),
            Action::Close(_) => {
                self.shared.lock().sock = None;
            }
            Action::Wait { until } => {
                let mut shared = self.shared.lock();
                let due = shared.kicked || shared.due_ms.is_some_and(|t| t <= now);
                if shared.link.is_up() && due {
                    shared.kicked = false;
                    shared.due_ms = None;
                    drop(shared);
                    self.run_work(&mut own);
                } else {
                    drop(own);
                    let until = match shared.due_ms {
                        Some(t) if shared.link.is_up() => until.min(t),
                        _ => until,
                    };
                    let ms = until.saturating_sub(now).clamp(1, 60_000);
                    let jiffies = kernel::time::msecs_to_jiffies(u32::try_from(ms).unwrap_or(60_000));
                    if !self.stopping.load(Ordering::Acquire) {
                        let _ = self.wake.wait_interruptible_timeout(&mut shared, jiffies);
                    }
                }
            }
        }
        0
    }

    fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        let shared = self.shared.lock();
        if let Some(sock) = &shared.sock {
            sock.shutdown();
        }
        drop(shared);
        self.wake.notify_all();
    }

    fn finish(&self) {
        self.shared.lock().sock = None;
    }
}
