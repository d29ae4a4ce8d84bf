// SPDX-License-Identifier: GPL-2.0

//! The replication channel's work of a client brick: a secondary following its primary's log.
//!
//! Two threads share it. The client's thread fetches: each run lists the primary's logfiles of
//! the resource, asks for what the local copies lack ([`next_fetch`]) with up to [`PIPELINE`]
//! requests in flight, appends every reply at the local copy's length only (so a copy is always
//! a prefix of the primary's logfile and a fetch resumes at that length after any interruption),
//! and every [`PUBLISH_BYTES`] makes the copy durable and hands its new length to the replay
//! thread ([`Replayer`]). That one replays the durable part of the copies onto the data device
//! in log order ([`next_replay`]) while the fetch goes on, and stores where replay stands
//! (`replay-HOST`, `replay_position.rs`). So the link and the data device work at the same
//! time, and catch-up runs at the slower of the two, not at their serial sum. Replay applies
//! only whole records with good checksums; a copy whose record does not check is cut back (by
//! the fetch thread, which alone writes the copies) to its last good record and fetched again.
//! The primary never waits for any of it: it only answers requests.
//!
//! It also begins a secondary's sync (`copy.rs` copies): when `syncstatus-HOST` asks for one,
//! or the log can no longer bring this host up to date, it stores where replay is to start
//! afterwards (`sync_start`: the primary's own replay position) and holds replay back until the
//! copy is complete (the copy stores the mark replay must pass before the device is consistent,
//! `syncpos-HOST`, `sync_record.rs`).

use kernel::prelude::*;
use kernel::sync::{Arc, CondVar, Mutex};

use super::bio::BioBrick;
use super::client::{Client, Conn, ErrorWords, Failed, Next, Work};
use super::replay::{replay, ReplayBuffers};
use super::sio::SioBrick;
use crate::bricks::write_back::LogPos;
use crate::kx::file::{KFile, OpenMode};
use crate::kx::kthread::Rounds;
use crate::kx::time::{monotonic_ms, monotonic_ns, real_time_nanos, thread_cpu_ns};
use crate::kx::vfs::KPath;
use crate::logfiles;
use crate::mars_core::errno::describe;
use crate::mars_core::fetch::{behind, next_fetch, next_replay, past_closed, Fetch, LogFile, LogPosition, Replay};
use crate::mars_core::names::parse_logfile_name;
use crate::mars_core::peer_link::Failure;
use crate::mars_core::pipeline::Pipeline;
use crate::mars_core::proto::{Channel, MessageType};
use crate::mars_core::proto_msg::Message;
use crate::mars_core::sync::{consistency, sync_start, Consistency, SyncStatus};
use crate::mars_core::session;
use crate::mars_core::token_bucket::{TokenBucket, BURST};
use crate::replay_position;
use crate::sync_record;
use crate::status::ModuleStatus;
use crate::tree_store::{self, TextBuf, ROOT};

/// Requests in flight: 8 MiB, enough to keep a 54 ms link busy at 150 MB/s.
pub(crate) const PIPELINE: usize = 8;
/// Bytes one log-fetch asks for.
const PIECE: u32 = 1 << 20;
/// Bytes fetched before a run lists again.
const RUN_BYTES: u64 = 32 << 20;
/// Bytes appended to a copy before it is made durable and handed to replay.
const PUBLISH_BYTES: u64 = 4 << 20;
/// How long the replay thread sleeps when nothing new is durable (a fetch wakes it earlier).
const REPLAY_IDLE_MS: u32 = 1000;
/// How often an up-to-date secondary asks its primary for more.
const POLL_MS: u64 = 1000;

/// What a secondary's log is doing, for status.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum FetchState {
    /// Not yet connected and listed.
    Starting,
    /// Fetching or replaying.
    Busy,
    /// Everything the primary listed is here and replayed (as far as replay is switched on).
    UpToDate,
    /// The logfile replay needs is gone on the primary: only a sync can bring this copy up.
    NeedsSync(u32),
    /// The local copy of this logfile is longer than the primary's: the histories forked.
    Diverged(u32),
    /// A record of this logfile fails its checksum again after it was fetched anew: the
    /// primary's logfile itself is damaged there.
    Damaged(LogPosition),
}

impl FetchView {
    /// The words in `fetch-state` (docs/replication.md).
    pub(crate) fn words(&self, out: &mut TextBuf) {
        use core::fmt::Write;
        let _ = match self.state {
            FetchState::Starting => write!(out, "starting"),
            FetchState::Busy => write!(out, "fetching"),
            FetchState::UpToDate => write!(out, "up-to-date"),
            FetchState::NeedsSync(seq) => write!(out, "needs-sync: logfile {seq} is gone on the primary"),
            FetchState::Diverged(seq) => {
                write!(out, "diverged: the copy of logfile {seq} is longer than the primary's")
            }
            FetchState::Damaged(p) => {
                write!(out, "damaged: logfile {} of the primary fails its checksum at {}", p.seq, p.offset)
            }
        };
        if self.replay_paused {
            let _ = write!(out, ", replay paused");
        }
    }
}

/// What the strategy and status see of a fetch.
#[derive(Clone, Copy)]
pub(crate) struct FetchView {
    pub(crate) state: FetchState,
    /// The end of the newest local copy.
    pub(crate) fetched: LogPosition,
    /// The end of the primary's newest logfile, as last listed.
    pub(crate) primary_end: LogPosition,
    /// Where replay stands.
    pub(crate) replayed: LogPosition,
    /// Bytes fetched since the fetch started.
    pub(crate) bytes: u64,
    /// Replay is switched off (`marsadm pause-replay`) and no replay runs.
    pub(crate) replay_paused: bool,
    /// What the device may be claimed to be.
    pub(crate) consistency: Consistency,
    /// Bytes and logfiles of the primary's log (as last listed) replay has not reached.
    pub(crate) behind: (u64, u32),
    /// When (wall clock, seconds since the epoch) the primary was last listed at a moment whose
    /// whole log replay then reached: the device holds every write logged before it. `None`
    /// if that did not happen since the fetch started.
    pub(crate) caught_up_s: Option<u64>,
    /// Where the fetch and replay threads spent their time since the fetch started.
    pub(crate) work: FetchWork,
}

/// Time the fetch and replay threads spent in each stage since the fetch started
/// (`actual-HOST/fetch-work`): what a secondary that cannot keep up with its link is busy with,
/// and whether it works or waits there.
#[derive(Clone, Copy, Default)]
pub(crate) struct FetchWork {
    /// Waiting for and receiving log-data replies (the network stack and the frame checksum).
    pub(crate) recv: Spent,
    /// Appending them to the copies (the page cache).
    pub(crate) store: Spent,
    /// Making the copies durable (fdatasync every [`PUBLISH_BYTES`]).
    pub(crate) sync: Spent,
    /// Replaying durable copies onto the data device (reading, checking, writing, flushing).
    pub(crate) replay: Spent,
}

impl FetchWork {
    /// The value of `fetch-work`: `recv=W/C store=W/C sync=W/C replay=W/C` in milliseconds.
    pub(crate) fn words(&self, out: &mut TextBuf) {
        use core::fmt::Write;
        let stages = [("recv", self.recv), ("store", self.store), ("sync", self.sync), ("replay", self.replay)];
        for (i, (name, spent)) in stages.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            let _ = write!(out, "{sep}{name}={}/{}", spent.wall_ns / 1_000_000, spent.cpu_ns / 1_000_000);
        }
    }
}

/// Wall-clock and CPU nanoseconds spent in one stage.
#[derive(Clone, Copy, Default)]
pub(crate) struct Spent {
    /// Monotonic-clock nanoseconds in the stage, working or waiting.
    pub(crate) wall_ns: u64,
    /// CPU nanoseconds of the thread in the stage (tick-sampled, [`thread_cpu_ns`]).
    pub(crate) cpu_ns: u64,
}

impl Spent {
    /// Adds what passed since `start`.
    fn add(&mut self, start: Stopwatch) {
        self.wall_ns = self.wall_ns.saturating_add(monotonic_ns().saturating_sub(start.wall));
        self.cpu_ns = self.cpu_ns.saturating_add(thread_cpu_ns().saturating_sub(start.cpu));
    }
}

/// When a stage began, on both clocks (of the thread that reads them).
#[derive(Clone, Copy)]
struct Stopwatch {
    wall: u64,
    cpu: u64,
}

impl Stopwatch {
    /// Now, for a stage the calling thread begins.
    fn start() -> Stopwatch {
        Stopwatch { wall: monotonic_ns(), cpu: thread_cpu_ns() }
    }
}

/// What the strategy, status, the fetch thread and the replay thread share.
struct Shared {
    view: FetchView,
    /// Whether replay is switched on (`todo-HOST/replay`).
    replay_on: bool,
    /// Whether a sync may begin (`todo-HOST/sync`).
    sync_on: bool,
    /// The rate limit of log-fetch requests (`todo-HOST/fetch-rate`).
    limit: TokenBucket,
    /// Replay may run: switched on, the copy complete, the log not forked (set by the fetch).
    gate: bool,
    /// The copies and how much of each is durable: what replay may read (set by the fetch).
    durable: KVec<LogFile>,
    /// Bumped whenever `durable` or `gate` changes: the replay thread compares it with what it
    /// last worked from.
    generation: u64,
    /// The primary's logfiles as last listed, and when (seconds since the epoch).
    remote: KVec<LogFile>,
    listed_at: u64,
    /// The stored sync status and mark, as the fetch last read them.
    sync: Option<SyncStatus>,
    mark: Option<LogPosition>,
    /// The end of the local copies when this fetch started, if replay had not reached it: a
    /// replay cut by a crash may have left any mix of the records up to there on the device.
    restart_mark: Option<LogPosition>,
    /// Why the log cannot be followed further, as the last fetch found.
    problem: Option<FetchState>,
    /// Where a record failed its checksum again after the cut: the primary's logfile is
    /// damaged there, replay does not go past it.
    damaged: Option<LogPosition>,
    /// The last fetch found nothing to fetch.
    fetch_idle: bool,
    /// Replay has gone as far as the durable copies let it, and nothing new came since.
    replay_idle: bool,
    /// A replay is running now.
    replaying: bool,
    /// Where replay found a record that does not check: the fetch thread cuts the copy back to
    /// there before it appends again.
    cut_request: Option<LogPosition>,
    /// The replay thread is being stopped.
    stopping: bool,
}

impl Shared {
    /// Derives the view's state, lag and consistency from what the two threads last set.
    fn refresh(&mut self) {
        let pos = self.view.replayed;
        if self.restart_mark.is_some_and(|m| pos >= m) {
            self.restart_mark = None;
        }
        let lag = behind(&self.remote, pos);
        if lag.0 == 0 && self.listed_at != 0 {
            self.view.caught_up_s = Some(self.listed_at);
        }
        self.view.behind = lag;
        let replayed_all = !self.replay_on || self.replay_idle;
        self.view.state = match (self.problem, self.damaged) {
            (Some(problem), _) => problem,
            (None, Some(at)) => FetchState::Damaged(at),
            (None, None) if self.fetch_idle && replayed_all => FetchState::UpToDate,
            (None, None) => FetchState::Busy,
        };
        self.view.consistency = consistency(self.sync, self.mark, pos, self.restart_mark);
        // Paused once no replay runs with the switch off.
        self.view.replay_paused = !self.replay_on && !self.replaying;
    }

    /// Something new for replay: wake it (the caller notifies the condition variable).
    fn bump(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        self.replay_idle = false;
    }
}

/// The local copy being appended to.
struct Copy {
    seq: u32,
    file: KFile,
    /// Bytes appended since it was last made durable.
    unsynced: u64,
}

/// What only the fetch thread uses.
struct Own {
    /// Receive buffer for log-data frames (allocated at the first connection).
    rx: KVVec<u8>,
}

/// What the replay thread uses (and the fetch thread, to set where replay starts).
struct ReplayState {
    /// Where replay stands (loaded from the tree at the first fetch run).
    pos: Option<LogPosition>,
    /// The `Shared::generation` the last replay worked from.
    seen: u64,
    /// A replay that stopped short of the copy's end, and the copy's length then: not tried
    /// again until the copy grew.
    stuck: Option<(LogPosition, u64)>,
    /// Where a record that failed its checksum made the copy be cut back, once.
    cut: Option<LogPosition>,
    /// The last replay error, reported once until replay works again.
    failed: bool,
    /// The memory replay reads and stages in, kept from run to run.
    mem: ReplayBuffers,
}

/// Following the log of `primary` for `resource` into this host's copies and data device.
#[pin_data]
pub(crate) struct LogFetch {
    resource: KVec<u8>,
    primary: KVec<u8>,
    dir: KPath,
    dev: Arc<BioBrick>,
    /// The resource's size: what a sync copies.
    size: u64,
    /// Lock order: `own` before `replay` before `shared`; `shared` is never held across I/O,
    /// and the replay thread never takes `own`.
    #[pin]
    shared: Mutex<Shared>,
    #[pin]
    own: Mutex<Own>,
    /// Held by the replay thread for a whole replay, so the fetch thread taking it (to move
    /// where replay starts) waits for a replay in progress.
    #[pin]
    replay: Mutex<ReplayState>,
    /// Wakes the replay thread (with `shared`): new durable data, the gate opened, a stop.
    #[pin]
    replay_wake: CondVar,
}

impl LogFetch {
    /// Following `primary`'s log of `resource` onto `dev`.
    pub(crate) fn new(
        resource: &[u8],
        primary: &[u8],
        dev: Arc<BioBrick>,
        size: u64,
    ) -> Result<impl PinInit<LogFetch, Error>> {
        let (res, origin) = (tree_store::owned(resource)?, tree_store::owned(primary)?);
        let dir = KPath::join(&[ROOT, b"/resource-", resource])?;
        let start = LogPosition { seq: 0, offset: 0 };
        let view = FetchView {
            state: FetchState::Starting,
            fetched: start,
            primary_end: start,
            replayed: start,
            bytes: 0,
            replay_paused: false,
            consistency: Consistency::SyncWanted,
            behind: (0, 0),
            caught_up_s: None,
            work: FetchWork::default(),
        };
        Ok(try_pin_init!(LogFetch {
            resource: res,
            primary: origin,
            dir,
            dev,
            size,
            shared <- kernel::new_mutex!(
                Shared {
                    view,
                    replay_on: true,
                    sync_on: true,
                    limit: TokenBucket::new(0, BURST, monotonic_ns()),
                    gate: false,
                    durable: KVec::new(),
                    generation: 0,
                    remote: KVec::new(),
                    listed_at: 0,
                    sync: None,
                    mark: None,
                    restart_mark: None,
                    problem: None,
                    damaged: None,
                    fetch_idle: false,
                    replay_idle: false,
                    replaying: false,
                    cut_request: None,
                    stopping: false,
                },
                "mars_fetch"
            ),
            own <- kernel::new_mutex!(Own { rx: KVVec::new() }, "mars_fetch_own"),
            replay <- kernel::new_mutex!(
                ReplayState { pos: None, seen: 0, stuck: None, cut: None, failed: false, mem: ReplayBuffers::new() },
                "mars_fetch_replay"
            ),
            replay_wake <- kernel::new_condvar!("mars_fetch_replay_wake"),
        }? Error))
    }

    /// The primary followed.
    pub(crate) fn primary(&self) -> &[u8] {
        &self.primary
    }

    /// The fetch's state now.
    pub(crate) fn view(&self) -> FetchView {
        self.shared.lock().view
    }

    /// Switches replay on or off (`todo-HOST/replay`); fetching goes on either way.
    pub(crate) fn set_replay(&self, on: bool) {
        let mut shared = self.shared.lock();
        shared.replay_on = on;
        shared.refresh();
    }

    /// Lets a sync begin or not (`todo-HOST/sync`).
    pub(crate) fn set_sync(&self, on: bool) {
        self.shared.lock().sync_on = on;
    }

    /// Limits the log-fetch requests to `rate` bytes per second from now on (0: no limit;
    /// `todo-HOST/fetch-rate`).
    pub(crate) fn set_rate(&self, rate: u64) {
        let mut shared = self.shared.lock();
        if shared.limit.rate() != rate {
            shared.limit.set_rate(rate, monotonic_ns());
        }
    }

    /// The resource's size this fetch was started for.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Begins a sync (`full`: of every block) if the primary's replay position is known here and
    /// it still has a logfile from there on: replay will start at that position
    /// ([`sync_start`]). Returns the start, if the sync began.
    fn begin_sync(&self, host: &str, remote: &[LogFile], full: bool, status: &ModuleStatus) -> Result<Option<LogPosition>> {
        let Some(applied) = replay_position::load(self.res(), self.origin(), self.origin())? else {
            return Ok(None);
        };
        let Some(start) = sync_start(LogPosition { seq: applied.file, offset: applied.offset }, remote) else {
            return Ok(None);
        };
        let at = LogPos { file: start.seq, offset: start.offset };
        // In this order: a crash between leaves a sync that is still wanted or that copies
        // from a start that is stored already.
        replay_position::store_durable(self.res(), host, self.origin(), at, status)?;
        sync_record::store_mark(self.res(), host, self.origin(), None, status)?;
        sync_record::store_status(self.res(), host, SyncStatus::Copying { done: 0, total: self.size, full }, status)?;
        pr_info!(
            "resource {}: {} sync from {} begins; replay will start at logfile {} offset {}\n",
            self.res(),
            if full { "full" } else { "fast" },
            self.origin(),
            start.seq,
            start.offset
        );
        Ok(Some(start))
    }

    fn res(&self) -> &str {
        tree_store::text(&self.resource)
    }

    fn origin(&self) -> &str {
        tree_store::text(&self.primary)
    }

    /// The primary's logfiles of the resource (only its own: log-N-PRIMARY), oldest first.
    fn list(&self, conn: &mut Conn<'_>, rx: &mut KVVec<u8>) -> core::result::Result<KVec<LogFile>, Failed> {
        let mut wire = conn.live_wire();
        let id = conn.next_id();
        let mut scratch = [0u8; 256];
        session::send(&mut wire, &Message::LogListRequest { resource: self.res() }, id, &mut scratch)
            .map_err(|e| Failed::session(&e))?;
        conn.sent();
        let (header, message) =
            session::recv(&mut wire, rx, |k| k == MessageType::LogList).map_err(|e| Failed::session(&e))?;
        conn.received();
        if header.request_id != id {
            return Err(Failed::wrong_id(&mut wire));
        }
        let entries = match message {
            Message::LogList { entries, .. } => entries,
            Message::Error { code, message } => {
                return Err(Failed::new(Failure::Protocol(code.0), &ErrorWords(code.0, message)))
            }
            _ => return Err(Failed::new(Failure::Closed, &"unexpected reply")),
        };
        let mut remote = KVec::new();
        for entry in entries.iter() {
            match parse_logfile_name(entry.name.as_bytes()) {
                Ok((seq, origin)) if origin.as_bytes() == self.primary.as_slice() => {
                    remote.push(LogFile { seq, len: entry.size }, GFP_KERNEL).map_err(|_| Failed::nomem())?;
                }
                _ => {}
            }
        }
        Ok(remote)
    }

    /// This host's copies of the primary's logfiles, oldest first.
    fn local(&self) -> Result<KVec<LogFile>> {
        let mut local = KVec::new();
        for seq in logfiles::numbers(&self.dir, self.origin())? {
            let len = KFile::open(&logfiles::path(&self.dir, seq, self.origin())?, OpenMode::Read)?.size();
            local.push(LogFile { seq, len }, GFP_KERNEL)?;
        }
        Ok(local)
    }

    /// Fetches what the copies lack, up to [`RUN_BYTES`] and as far as the rate limit lets it,
    /// handing every durable piece to replay; returns the bytes appended, why the log cannot be
    /// followed further (if it cannot), and the milliseconds the rate limit asks to wait before
    /// the next request (0: none).
    fn fetch(
        &self,
        conn: &mut Conn<'_>,
        own: &mut Own,
        remote: &[LogFile],
        local: &mut KVec<LogFile>,
        needed: LogPosition,
    ) -> core::result::Result<(u64, Option<FetchState>, u64), Failed> {
        let io = Failed::io;
        let mut pipeline: Pipeline<(u32, u64, u32), PIPELINE> = Pipeline::new();
        let mut asked_to: Option<LogPosition> = None;
        let mut asked = 0u64;
        let mut appended = 0u64;
        // Set when the list no longer describes the primary (a short reply, an error reply) or
        // replay wants a copy cut back: what is in flight is taken as it comes, then the next
        // run lists again.
        let mut drain = false;
        let mut problem = None;
        let mut throttled_ms = 0;
        let mut copy: Option<Copy> = None;
        let mut wire = conn.live_wire();
        loop {
            while !drain && throttled_ms == 0 && pipeline.has_room() && asked < RUN_BYTES {
                let step = next_fetch(remote, local, needed, asked_to, PIECE);
                let Fetch::Piece { seq, offset, len } = step else {
                    problem = match step {
                        Fetch::NeedsSync { seq } => Some(FetchState::NeedsSync(seq)),
                        Fetch::Diverged { seq } => Some(FetchState::Diverged(seq)),
                        _ => None,
                    };
                    break;
                };
                if let Err(ns) = self.shared.lock().limit.take(u64::from(len), monotonic_ns()) {
                    // The replies in flight are taken; the next run asks once the tokens are there.
                    throttled_ms = ns.div_ceil(1_000_000).max(1);
                    break;
                }
                let Some(id) = pipeline.issue((seq, offset, len), monotonic_ms()) else { break };
                let name = logfiles::name(seq, self.origin()).map_err(io)?;
                let request =
                    Message::LogFetch { resource: self.res(), file: tree_store::text(&name), offset, length: len };
                let mut scratch = [0u8; 256];
                session::send(&mut wire, &request, id, &mut scratch).map_err(|e| Failed::session(&e))?;
                conn.sent();
                asked_to = Some(LogPosition { seq, offset: offset + u64::from(len) });
                asked += u64::from(len);
            }
            if pipeline.is_empty() {
                break;
            }
            let recv_start = Stopwatch::start();
            let (header, message) = session::recv(&mut wire, &mut own.rx, |k| k == MessageType::LogData)
                .map_err(|e| Failed::session(&e))?;
            conn.received();
            let Ok((seq, offset, len)) = pipeline.complete(header.request_id) else {
                return Err(Failed::wrong_id(&mut wire));
            };
            let asked_for = |file: &str| parse_logfile_name(file.as_bytes()) == Ok((seq, self.origin()));
            let data = match message {
                Message::LogData { file, offset: at, data, .. } if at == offset && asked_for(file) => data,
                Message::LogData { .. } => {
                    return Err(Failed::new(Failure::Protocol(1), &"log data of another logfile or offset"))
                }
                Message::Error { .. } => {
                    // Deleted or cut meanwhile on the primary: list again.
                    drain = true;
                    continue;
                }
                _ => return Err(Failed::new(Failure::Closed, &"unexpected reply")),
            };
            {
                let mut shared = self.shared.lock();
                shared.view.work.recv.add(recv_start);
                if shared.cut_request.is_some() {
                    drain = true;
                }
            }
            // After a short or refused piece nothing more is appended: a later piece (of the
            // next logfile, say) would leave a gap, and a copy of the next logfile must mean
            // that this one is complete.
            if drain {
                continue;
            }
            if data.len() < len as usize {
                drain = true;
            }
            let have = local.iter().find(|l| l.seq == seq).map_or(0, |l| l.len);
            // Only at the copy's end: a copy stays a prefix of the primary's logfile.
            if have != offset || data.is_empty() {
                drain = true;
                continue;
            }
            if copy.as_ref().is_none_or(|c| c.seq != seq) {
                if let Some(c) = copy.take() {
                    self.publish(&c, local).map_err(io)?;
                }
                let file = KFile::open(&logfiles::path(&self.dir, seq, self.origin()).map_err(io)?, OpenMode::Write)
                    .map_err(io)?;
                copy = Some(Copy { seq, file, unsynced: 0 });
            }
            let Some(c) = copy.as_mut() else { continue };
            let store_start = Stopwatch::start();
            c.file.write_all_at(data, offset).map_err(io)?;
            c.unsynced += data.len() as u64;
            let grown = offset + data.len() as u64;
            match local.iter_mut().find(|l| l.seq == seq) {
                Some(l) => l.len = grown,
                None => push_sorted(local, LogFile { seq, len: grown }).map_err(io)?,
            }
            appended += data.len() as u64;
            {
                let mut shared = self.shared.lock();
                shared.view.bytes = shared.view.bytes.saturating_add(data.len() as u64);
                shared.view.fetched = LogPosition { seq, offset: grown };
                shared.view.work.store.add(store_start);
            }
            if c.unsynced >= PUBLISH_BYTES {
                self.publish(c, local).map_err(io)?;
                c.unsynced = 0;
            }
        }
        if let Some(c) = copy.take() {
            self.publish(&c, local).map_err(io)?;
        }
        Ok((appended, problem, throttled_ms))
    }

    /// Makes the copy `c` durable and hands the copies' lengths `local` to replay: replay only
    /// ever applies what is durable here, so after a crash the copies reach at least as far as
    /// anything replay may have put on the device (what `restart_mark` relies on).
    fn publish(&self, c: &Copy, local: &[LogFile]) -> Result {
        let sync_start = Stopwatch::start();
        if c.unsynced > 0 {
            c.file.sync_data()?;
        }
        let durable = owned_list(local)?;
        let mut shared = self.shared.lock();
        shared.view.work.sync.add(sync_start);
        shared.durable = durable;
        shared.bump();
        drop(shared);
        self.replay_wake.notify_all();
        Ok(())
    }

    /// Replays the durable copies `local` from `st.pos` as far as they go; returns the new
    /// position.
    fn replay(&self, st: &mut ReplayState, local: &[LogFile], mut pos: LogPosition) -> Result<LogPosition> {
        loop {
            match next_replay(local, pos) {
                Replay::Wait => return Ok(pos),
                Replay::Advance { to } => pos = to,
                Replay::From { seq, offset } => {
                    let len = local.iter().find(|l| l.seq == seq).map_or(0, |l| l.len);
                    if st.stuck == Some((pos, len)) {
                        return Ok(pos);
                    }
                    let path = logfiles::path(&self.dir, seq, self.origin())?;
                    let log = SioBrick::open_prefix(&path, len)?;
                    let done = replay(&log, offset, &*self.dev, &mut st.mem)?;
                    let stop = LogPosition { seq, offset: done.stop.offset as u64 };
                    if !done.stop.reason.is_clean_end() {
                        let mut shared = self.shared.lock();
                        if shared.cut_request.is_some() {
                            // The copy is not cut back yet: what follows the bad record is
                            // fetched again only after that.
                            st.stuck = Some((stop, len));
                            return Ok(stop);
                        }
                        if st.cut == Some(stop) {
                            shared.damaged = Some(stop);
                            st.stuck = Some((stop, len));
                            return Ok(stop);
                        }
                        // Not what the primary wrote: the fetch cuts it off and fetches it again.
                        pr_warn!(
                            "resource {}: copy of logfile {} of {} fails at {} ({}); fetching it again from there\n",
                            self.res(),
                            seq,
                            self.origin(),
                            stop.offset,
                            crate::shown::Shown(&done.stop)
                        );
                        shared.cut_request = Some(stop);
                        st.cut = Some(stop);
                        st.stuck = Some((stop, len));
                        return Ok(stop);
                    }
                    if stop.offset < len {
                        // A record not yet whole: wait for more.
                        st.stuck = Some((stop, len));
                    }
                    if stop == pos {
                        return Ok(pos);
                    }
                    pos = stop;
                    self.shared.lock().damaged = None;
                }
            }
        }
    }

    /// Carries out a cut replay asked for: the copy of `at.seq` ends at `at.offset` again, and
    /// copies of later logfiles go (first, durably). Replay moves on to a later copy once it has
    /// reached the end of this one, which is only right while a later copy means a complete
    /// earlier one: the fetch begins a logfile only after the one before is complete.
    fn cut_copy(&self, at: LogPosition) -> Result {
        logfiles::delete_above(&self.dir, self.origin(), at.seq)?;
        let path = logfiles::path(&self.dir, at.seq, self.origin())?;
        let file = KFile::open(&path, OpenMode::Write)?;
        if file.size() > at.offset {
            file.truncate(at.offset)?;
            file.sync_data()?;
        }
        Ok(())
    }

    /// One round of the replay thread: replays what became durable since the last one, or
    /// sleeps until something does (at most [`REPLAY_IDLE_MS`]). Returns the pause before the
    /// next round.
    fn replay_round(&self, status: &ModuleStatus) -> u32 {
        let mut st = self.replay.lock();
        let mut shared = self.shared.lock();
        if shared.stopping {
            return REPLAY_IDLE_MS;
        }
        let Some(from) = st.pos else { return self.replay_sleep(st, shared) };
        if !shared.gate || !shared.replay_on || shared.generation == st.seen {
            return self.replay_sleep(st, shared);
        }
        st.seen = shared.generation;
        let Ok(local) = owned_list(&shared.durable) else { return REPLAY_IDLE_MS };
        shared.replaying = true;
        drop(shared);
        let replay_start = Stopwatch::start();
        let done = self.replay(&mut st, &local, from).and_then(|to| {
            let to = past_closed(&self.shared.lock().remote, to);
            if to != from {
                let host = status.host_str().ok_or(EINVAL)?;
                let at = LogPos { file: to.seq, offset: to.offset };
                replay_position::store_durable(self.res(), host, self.origin(), at, status)?;
            }
            Ok(to)
        });
        let mut shared = self.shared.lock();
        shared.view.work.replay.add(replay_start);
        shared.replaying = false;
        match done {
            Ok(to) => {
                st.pos = Some(to);
                st.failed = false;
                shared.view.replayed = to;
                shared.replay_idle = shared.generation == st.seen;
            }
            Err(e) => {
                if !st.failed {
                    pr_warn!(
                        "resource {}: replay failed: {}; trying again\n",
                        self.res(),
                        crate::shown::Shown(&describe(e.to_errno()))
                    );
                }
                st.failed = true;
                // Try the same again after the pause.
                st.seen = st.seen.wrapping_sub(1);
            }
        }
        shared.refresh();
        if st.failed {
            REPLAY_IDLE_MS
        } else {
            0
        }
    }

    /// Waits (without the replay lock) until the fetch hands over something new or a stop.
    fn replay_sleep(
        &self,
        st: kernel::sync::MutexGuard<'_, ReplayState>,
        mut shared: kernel::sync::MutexGuard<'_, Shared>,
    ) -> u32 {
        drop(st);
        if !shared.stopping {
            let jiffies = kernel::time::msecs_to_jiffies(REPLAY_IDLE_MS);
            let _ = self.replay_wake.wait_interruptible_timeout(&mut shared, jiffies);
        }
        0
    }

    /// Makes the replay thread's waits end (before it is stopped).
    fn stop_replay(&self) {
        self.shared.lock().stopping = true;
        self.replay_wake.notify_all();
    }
}

/// A copy of the logfile list `files` the caller owns.
fn owned_list(files: &[LogFile]) -> Result<KVec<LogFile>> {
    let mut out = KVec::with_capacity(files.len(), GFP_KERNEL)?;
    out.extend_from_slice(files, GFP_KERNEL)?;
    Ok(out)
}

/// Inserts `file` into `local`, keeping it in ascending order.
fn push_sorted(local: &mut KVec<LogFile>, file: LogFile) -> Result {
    local.push(file, GFP_KERNEL)?;
    let mut i = local.len().saturating_sub(1);
    while i > 0 && local.get(i - 1).is_some_and(|prev| prev.seq > file.seq) {
        local.swap(i - 1, i);
        i -= 1;
    }
    Ok(())
}

impl Work for LogFetch {
    const CHANNEL: Channel = Channel::Replication;

    fn connected(&self, _conn: &mut Conn<'_>) -> core::result::Result<(), Failed> {
        let mut own = self.own.lock();
        if own.rx.is_empty() && own.rx.resize(MessageType::LogData.max_payload_len(), 0, GFP_KERNEL).is_err() {
            return Err(Failed::nomem());
        }
        Ok(())
    }

    fn run(&self, conn: &mut Conn<'_>) -> core::result::Result<Next, Failed> {
        let io = Failed::io;
        let mut own = self.own.lock();
        let own = &mut *own;
        let host = conn.status().host_str().ok_or(EINVAL).map_err(io)?;
        let listed_at = real_time_nanos() / 1_000_000_000;
        let remote = self.list(conn, &mut own.rx)?;
        let cut = self.shared.lock().cut_request;
        if let Some(at) = cut {
            self.cut_copy(at).map_err(io)?;
            self.shared.lock().cut_request = None;
        }
        let mut local = self.local().map_err(io)?;
        let end = |l: Option<&LogFile>| l.map_or(LogPosition { seq: 0, offset: 0 }, |l| LogPosition { seq: l.seq, offset: l.len });
        // The newest copy may hold appends of an earlier run (or boot) that never became
        // durable: they are made durable before replay is told about them.
        if let Some(last) = local.last() {
            let published = self.shared.lock().durable.iter().find(|l| l.seq == last.seq).map(|l| l.len);
            if published != Some(last.len) {
                let path = logfiles::path(&self.dir, last.seq, self.origin()).map_err(io)?;
                KFile::open(&path, OpenMode::Write).and_then(|f| f.sync_data()).map_err(io)?;
            }
        }
        {
            let mut st = self.replay.lock();
            if st.pos.is_none() {
                let stored = replay_position::load(self.res(), host, self.origin()).map_err(io)?;
                let at = stored.map_or(LogPosition { seq: 1, offset: 0 }, |p| LogPosition { seq: p.file, offset: p.offset });
                st.pos = Some(at);
                let here = end(local.last());
                let mut shared = self.shared.lock();
                shared.view.replayed = at;
                shared.restart_mark = (here > at).then_some(here);
            }
        }
        let (replay_on, sync_on) = {
            let shared = self.shared.lock();
            (shared.replay_on, shared.sync_on)
        };
        let mut sync = sync_record::load_status(self.res(), host).map_err(io)?;
        if let None | Some(SyncStatus::Wanted { .. }) = sync {
            let full = matches!(sync, Some(SyncStatus::Wanted { full: true }));
            if sync_on {
                // Replay stops first (and a replay in progress ends): the sync moves its start.
                self.shared.lock().gate = false;
                let mut st = self.replay.lock();
                if let Some(start) = self.begin_sync(host, &remote, full, conn.status()).map_err(io)? {
                    st.pos = Some(start);
                    st.stuck = None;
                    let mut shared = self.shared.lock();
                    shared.view.replayed = start;
                    shared.restart_mark = None;
                    sync = Some(SyncStatus::Copying { done: 0, total: self.size, full });
                }
            }
        }
        let mut copied = sync.is_some_and(|s| s.is_done());
        let mark = sync_record::load_mark(self.res(), host, self.origin())
            .map_err(io)?
            .map(|m| LogPosition { seq: m.file, offset: m.offset });
        if copied && mark.is_none() && sync_on {
            // Complete without the mark the copy stores first: another primary's, or a key
            // written by hand. Only a new sync can say what this copy is.
            sync_record::store_status(self.res(), host, SyncStatus::Wanted { full: false }, conn.status()).map_err(io)?;
            copied = false;
        }
        let pos = {
            let mut shared = self.shared.lock();
            shared.view.primary_end = end(remote.last());
            shared.view.fetched = end(local.last());
            shared.durable = owned_list(&local).map_err(|_| Failed::nomem())?;
            shared.view.replayed
        };
        let (appended, problem, throttled_ms) = self.fetch(conn, own, &remote, &mut local, pos)?;
        if let Some(FetchState::NeedsSync(_)) = problem {
            if copied && sync_on {
                // The primary no longer has what replay needs: a fast sync brings this host up.
                sync_record::store_status(self.res(), host, SyncStatus::Wanted { full: false }, conn.status())
                    .map_err(io)?;
            }
        }
        // A forked copy is not replayed at all: which of its records the primary shares, only
        // the administrator's decision settles. Nor is anything replayed before the copy is
        // complete: the copy would overwrite it.
        let diverged = matches!(problem, Some(FetchState::Diverged(_)));
        let gate = replay_on && !diverged && copied;
        let all_here = next_fetch(&remote, &local, pos, None, PIECE) == Fetch::UpToDate;
        let pos = {
            let mut shared = self.shared.lock();
            // A gate that opened, or a logfile replay has finished that the primary has now
            // closed (which only this listing shows): work for the replay thread.
            let passable = past_closed(&remote, shared.view.replayed) != shared.view.replayed;
            if shared.gate != gate || (gate && passable) {
                shared.gate = gate;
                shared.bump();
            }
            shared.remote = remote;
            shared.listed_at = listed_at;
            shared.sync = sync;
            shared.mark = mark;
            shared.problem = problem;
            shared.fetch_idle = all_here && appended == 0;
            shared.refresh();
            shared.view.replayed
        };
        self.replay_wake.notify_all();
        // Copies replay is past are not needed here any more (replay never goes back; a sync
        // starts from the primary's logfiles).
        if local.first().is_some_and(|l| l.seq < pos.seq) {
            logfiles::delete_below(&self.dir, self.origin(), pos.seq).map_err(io)?;
        }
        Ok(match (throttled_ms, appended) {
            (0, 0) => Next::After(POLL_MS),
            (0, _) => Next::After(0),
            (wait, _) => Next::After(wait.min(POLL_MS)),
        })
    }
}

/// The replay thread of a secondary: replays what its fetch made durable, while the fetch goes
/// on (see the module documentation).
pub(crate) struct Replayer {
    client: Arc<Client<LogFetch>>,
}

impl Replayer {
    /// The replay thread's work for the fetch of `client`.
    pub(crate) fn new(client: Arc<Client<LogFetch>>) -> Replayer {
        Replayer { client }
    }
}

impl Rounds for Replayer {
    fn round(&self) -> u32 {
        self.client.work().replay_round(self.client.status())
    }

    fn stop(&self) {
        self.client.work().stop_replay();
    }

    fn finish(&self) {}
}
