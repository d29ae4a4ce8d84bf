// SPDX-License-Identifier: GPL-2.0

//! The module's liveness status, shown in `/proc/mars/status`.
//!
//! Format: one `key value` pair per line (documented in docs/marsadm.md); readers ignore keys
//! they do not know, so keys may be added but never change meaning.

use kernel::prelude::*;
use kernel::seq_file::SeqFile;
use kernel::seq_print;
use kernel::str::BStr;
use kernel::sync::{Arc, Mutex};
use kernel::time::{Instant, Monotonic};

use crate::bricks::bio::BioBrick;
use crate::bricks::write_back::LogPos;
use crate::kx;
use crate::kx::file::{KFile, OpenMode};
use crate::kx::vfs::KPath;
use crate::mars_core::gossip::TreeDigest;
use crate::mars_core::lamport::{HostId, LamportClock, Stamp};
use crate::mars_core::tree::{supersedes, validate_host_name, EntryRef};
use crate::mars_core::tree_codec::ChunkWriter;
use crate::mars_core::VERSION;
use crate::peers::NetworkView;
use crate::shown::Shown;
use crate::strategy::RoundResult;
use crate::tree_index::{Filled, ScanReport, TreeIndex};
use crate::tree_store::{self, TargetBuf};
use crate::Settings;

/// This host's place in a cluster, as the last strategy round saw it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Membership {
    /// No strategy round has run yet.
    Unknown,
    /// There is no /mars directory (no /mars filesystem mounted).
    NoMars,
    /// /mars exists, but this host is not in its cluster (`marsadm create-cluster` or
    /// `join-cluster` not run).
    NotMember,
    /// This host is a member of the cluster in /mars.
    Member,
    /// This host left the cluster moments ago: its server still answers, so that its peers
    /// learn of the deletion of its `ips/ip-HOST` (for [`LEAVE_GRACE_NS`]).
    Leaving,
}

/// How long a host that left still serves its tree.
pub(crate) const LEAVE_GRACE_NS: u64 = 30_000_000_000;

impl Membership {
    /// The word shown in `/proc/mars/status`.
    fn as_str(self) -> &'static str {
        match self {
            Membership::Unknown => "unknown",
            Membership::NoMars => "no-mars",
            Membership::NotMember => "not-member",
            Membership::Member => "member",
            Membership::Leaving => "leaving",
        }
    }
}

/// Mutable module-wide state.
struct State {
    /// This host's Lamport clock.
    clock: LamportClock,
    /// Number of resources this host knows.
    resources: usize,
    /// Cluster membership.
    membership: Membership,
    /// Errno of the last failed strategy round, 0 if it succeeded.
    last_error: i32,
    /// Strategy rounds run so far.
    rounds: u64,
    /// The last scan of the tree, and how long it held the tree's lock.
    scan: ScanReport,
    scan_ms: u64,
}

/// What the module publishes about itself.
#[pin_data]
pub(crate) struct ModuleStatus {
    /// When the module was loaded.
    loaded: Instant<Monotonic>,
    /// This host's name, as it was at load time.
    host: kx::host::HostName,
    /// Validated load-time parameters.
    settings: Settings,
    /// Clock and counters.
    #[pin]
    state: Mutex<State>,
    /// The tree in memory. Its lock also serialises the module's writes of tree entries (the
    /// strategy's own and those merged from peers), so that a read-compare-write of one key is
    /// never interleaved with another's. A leaf lock: nothing else is taken while it is held.
    #[pin]
    tree: Mutex<TreeIndex>,
    /// The server and the peers as the strategy's last round saw them (`None`: not a member).
    #[pin]
    network: Mutex<Option<NetworkView>>,
    /// What the loggers of this host's primaries let secondaries fetch, per resource. A leaf
    /// lock: loggers update it after releasing their own.
    #[pin]
    served_logs: Mutex<KVec<ServedLog>>,
}

/// How far secondaries may fetch the logfiles of one primary resource here.
struct ServedLog {
    resource: KVec<u8>,
    /// The current logfile, durable up to this position.
    synced: LogPos,
    /// The logfile the last rotation closed, with its final length.
    closed: Option<LogPos>,
    /// The data device the logger writes back to, which secondaries sync from.
    dev: Arc<BioBrick>,
    /// Where the log ends, durable or not. Updated before the write-back gets a batch, so
    /// every write on `dev` comes from a record before it.
    logged: LogPos,
}

impl ModuleStatus {
    /// Creates the status of a module loaded now with `settings`.
    pub(crate) fn new(settings: Settings) -> impl PinInit<Self> {
        let host = kx::host::HostName::current();
        let mut clock = LamportClock::new(HostId::from_name(host.as_bytes()));
        // The load itself is the first event of this host's clock.
        clock.tick(kx::time::real_time_nanos());
        pin_init!(ModuleStatus {
            loaded: Instant::now(),
            host,
            settings,
            state <- kernel::new_mutex!(
                State {
                    clock,
                    resources: 0,
                    membership: Membership::Unknown,
                    last_error: 0,
                    rounds: 0,
                    scan: ScanReport::default(),
                    scan_ms: 0,
                },
                "mars_status"
            ),
            tree <- kernel::new_mutex!(TreeIndex::new(), "mars_tree"),
            network <- kernel::new_mutex!(None, "mars_network"),
            served_logs <- kernel::new_mutex!(KVec::new(), "mars_served_logs"),
        })
    }

    /// This host's name.
    pub(crate) fn host_name(&self) -> &BStr {
        BStr::from_bytes(self.host.as_bytes())
    }

    /// This host's name as text, if it is a valid MARS host name.
    pub(crate) fn host_str(&self) -> Option<&str> {
        validate_host_name(self.host.as_bytes()).ok()
    }

    /// Issues a Lamport stamp for a local event now.
    pub(crate) fn tick(&self) -> Stamp {
        self.state.lock().clock.tick(kx::time::real_time_nanos())
    }

    /// Issues `count` consecutive stamps for events that happen together (the records of one
    /// logged batch: one lock round trip per batch, not per record); returns the first.
    pub(crate) fn tick_many(&self, count: u64) -> Stamp {
        self.state.lock().clock.tick_many(kx::time::real_time_nanos(), count)
    }

    /// Stores `entry` in the tree (the caller has decided it is to replace what is stored).
    pub(crate) fn store_entry(&self, entry: &EntryRef<'_>) -> Result {
        let mut tree = self.tree.lock();
        tree_store::put(entry, &mut TargetBuf::new()?)?;
        tree.note(entry)
    }

    /// Stores `entry` and makes it durable (an fsync of `dir`, the directory it is in, commits
    /// the file system's journal) before peers can pull it: what a peer acts on (a primary
    /// deleting the logfiles a secondary has replayed) must not be undone by a power cut here.
    pub(crate) fn store_entry_durable(&self, entry: &EntryRef<'_>, dir: &KPath) -> Result {
        let mut tree = self.tree.lock();
        tree_store::put(entry, &mut TargetBuf::new()?)?;
        KFile::open(dir, OpenMode::Read)?.sync_all()?;
        tree.note(entry)
    }

    /// Stores `entry`, received from a peer, if it supersedes what is stored (the Lamport rule
    /// of docs/tree.md), and takes note of its stamp; returns whether it was stored.
    pub(crate) fn merge_entry(&self, entry: &EntryRef<'_>, buf: &mut TargetBuf) -> Result<bool> {
        self.observe(entry.stamp);
        let mut tree = self.tree.lock();
        // Most received entries are known already: judged in memory, without reading the link.
        if !tree.would_take(entry)? {
            return Ok(false);
        }
        // The link itself decides: marsadm may have stored a newer entry the index has not seen.
        match tree_store::get(entry.key, buf)? {
            Some(stored) if !supersedes(entry, Some(&stored)) => {
                tree.note(&stored)?;
                Ok(false)
            }
            _ => {
                tree_store::put(entry, buf)?;
                tree.note(entry)?;
                Ok(true)
            }
        }
    }

    /// Brings the tree in memory in line with /mars (see [`TreeIndex::scan`]); the host's clock
    /// takes note of the newest stamp found.
    pub(crate) fn scan_tree(&self) -> Result {
        let start = kx::time::monotonic_ms();
        let report = self.tree.lock().scan()?;
        let mut state = self.state.lock();
        state.clock.observe(report.newest);
        state.scan = report;
        state.scan_ms = kx::time::monotonic_ms().saturating_sub(start);
        Ok(())
    }

    /// The digest of the tree as stored now.
    pub(crate) fn tree_digest(&self) -> TreeDigest {
        self.tree.lock().digest()
    }

    /// Copies the entries a pull asks for into `chunk`, from the key `from` on, until it is full
    /// (see [`TreeIndex::fill`]).
    pub(crate) fn fill_tree(
        &self,
        from: &[u8],
        since_ns: u64,
        buckets: u64,
        chunk: &mut ChunkWriter<'_>,
    ) -> Result<Filled> {
        self.tree.lock().fill(from, since_ns, buckets, chunk)
    }

    /// A logger of `resource` starts, its current logfile durable up to `synced`: until it is
    /// forgotten, secondaries fetch that logfile only up to what the logger reports.
    pub(crate) fn register_served_log(&self, resource: &[u8], synced: LogPos, dev: Arc<BioBrick>) -> Result {
        let mut name = KVec::with_capacity(resource.len(), GFP_KERNEL)?;
        name.extend_from_slice(resource, GFP_KERNEL)?;
        let mut logs = self.served_logs.lock();
        logs.retain(|l| l.resource.as_slice() != resource);
        logs.push(ServedLog { resource: name, synced, closed: None, dev, logged: synced }, GFP_KERNEL)?;
        Ok(())
    }

    /// The logger of `resource` made its log durable up to `synced` (a rotation: and closed
    /// `closed`).
    pub(crate) fn update_served_log(&self, resource: &[u8], synced: LogPos, closed: Option<LogPos>) {
        if let Some(l) = self.served_logs.lock().iter_mut().find(|l| l.resource.as_slice() == resource) {
            l.synced = synced;
            l.closed = closed;
        }
    }

    /// The logger of `resource` stopped; its logfiles are closed, durable and served whole.
    pub(crate) fn forget_served_log(&self, resource: &[u8]) {
        self.served_logs.lock().retain(|l| l.resource.as_slice() != resource);
    }

    /// How far logfile `number` of this host's log of `resource` may be fetched: `Some(len)` if
    /// a logger here decides it (the current logfile, the one it just closed, or 0 for one it has
    /// not begun), `None` if the logfile is closed and served whole.
    pub(crate) fn served_len(&self, resource: &[u8], number: u32) -> Option<u64> {
        let logs = self.served_logs.lock();
        let l = logs.iter().find(|l| l.resource.as_slice() == resource)?;
        match l.closed {
            Some(c) if c.file == number => Some(c.offset),
            _ if number == l.synced.file => Some(l.synced.offset),
            _ if number > l.synced.file => Some(0),
            _ => None,
        }
    }

    /// The logger of `resource` appended up to `logged` and is about to hand the batch to the
    /// write-back.
    pub(crate) fn note_logged(&self, resource: &[u8], logged: LogPos) {
        if let Some(l) = self.served_logs.lock().iter_mut().find(|l| l.resource.as_slice() == resource) {
            l.logged = logged;
        }
    }

    /// The data device of `resource` if a logger of this host writes it (this host is its
    /// primary).
    pub(crate) fn served_device(&self, resource: &[u8]) -> Option<Arc<BioBrick>> {
        self.served_logs.lock().iter().find(|l| l.resource.as_slice() == resource).map(|l| l.dev.clone())
    }

    /// Where the log of `resource` ends, durable or not, if a logger of this host writes it:
    /// read after blocks of the device, a position every write in them comes before.
    pub(crate) fn served_logged(&self, resource: &[u8]) -> Option<LogPos> {
        self.served_logs.lock().iter().find(|l| l.resource.as_slice() == resource).map(|l| l.logged)
    }

    /// Replaces what status shows about the network (`None`: this host takes no part).
    pub(crate) fn set_network(&self, view: Option<NetworkView>) {
        let old = core::mem::replace(&mut *self.network.lock(), view);
        drop(old);
    }

    /// The module's load-time settings.
    pub(crate) fn settings(&self) -> Settings {
        self.settings
    }

    /// Takes note of a stamp read from the tree or received from a peer.
    pub(crate) fn observe(&self, stamp: Stamp) {
        self.state.lock().clock.observe(stamp);
    }

    /// Cluster membership as of the last round.
    pub(crate) fn membership(&self) -> Membership {
        self.state.lock().membership
    }

    /// Records the outcome of a strategy round; logs changes of membership and errors once.
    pub(crate) fn record_round(&self, result: Result<RoundResult>) {
        let mut state = self.state.lock();
        state.rounds = state.rounds.saturating_add(1);
        match result {
            Ok(r) => {
                if r.membership != state.membership {
                    pr_info!("host {}: cluster membership {}\n", self.host_name(), r.membership.as_str());
                }
                if state.last_error != 0 {
                    pr_info!("strategy rounds succeed again\n");
                }
                state.membership = r.membership;
                state.resources = r.resources;
                state.last_error = 0;
            }
            Err(e) => {
                if e.to_errno() != state.last_error {
                    pr_warn!("strategy round failed: error {}\n", e.to_errno());
                }
                state.last_error = e.to_errno();
            }
        }
    }
}

impl kx::proc::SeqShow for ModuleStatus {
    fn show(&self, m: &SeqFile) {
        let uptime_s = self.loaded.elapsed().as_millis() / 1000;
        let (lamport, resources, membership, last_error, rounds, scan, scan_ms) = {
            let state = self.state.lock();
            (
                state.clock.peek(kx::time::real_time_nanos()),
                state.resources,
                state.membership,
                state.last_error,
                state.rounds,
                state.scan,
                state.scan_ms,
            )
        };
        seq_print!(m, "version {}\n", VERSION);
        seq_print!(m, "host {}\n", self.host_name());
        seq_print!(m, "uptime_s {}\n", uptime_s);
        seq_print!(m, "resources {}\n", resources);
        seq_print!(m, "lamport_ns {}\n", lamport);
        seq_print!(m, "cluster {}\n", membership.as_str());
        seq_print!(m, "strategy_rounds {}\n", rounds);
        seq_print!(m, "strategy_error {}\n", last_error);
        seq_print!(m, "tree_scan ms={} listed={} links_read={}\n", scan_ms, scan.listed, scan.links_read);
        seq_print!(m, "interval_ms {}\n", self.settings.interval_ms);
        seq_print!(m, "port {}\n", self.settings.port);
        seq_print!(m, "log_rotate_mb {}\n", self.settings.log_rotate_bytes >> 20);
        let network = self.network.lock();
        let Some(net) = network.as_ref() else { return };
        if net.listen.is_empty() {
            seq_print!(m, "listen none {}\n", net.listen_error.as_str());
        } else {
            seq_print!(m, "listen");
            for addr in net.listen.iter() {
                seq_print!(m, " {}", Shown(addr));
            }
            seq_print!(m, "\n");
        }
        // One line per peer: name, address, then `field=value` pairs; the error text last, as
        // it may hold spaces.
        for p in net.peers.iter() {
            let v = &p.view;
            seq_print!(m, "peer {} {} tree={}", BStr::from_bytes(&p.name), Shown(&p.addr), v.state);
            if let Some(up) = v.up_ms {
                seq_print!(m, " up_ms={}", up);
            }
            if let Some(ago) = v.contact_ago_ms {
                seq_print!(m, " contact_ago_ms={}", ago);
            }
            seq_print!(
                m,
                " failures={} pulls={} merged={} error={}\n",
                v.failures,
                p.pulls,
                p.merged,
                v.last_error.as_str()
            );
        }
    }
}
