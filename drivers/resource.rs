// SPDX-License-Identifier: GPL-2.0

//! One resource on this host: its brick graph, built and torn down by the strategy.
//!
//! Attached: the data device is open (a bio brick) and the log has been replayed onto it (replay
//! from each logfile's sio brick). Primary: `/dev/mars/NAME` (an if brick) in front of a
//! trans_logger, which appends to a new logfile and hands batches to a write-back onto the bio
//! brick (docs/architecture.md draws it). Teardown order is the reverse: the if brick goes first
//! (no new bios), then the logger thread (it drains its queue), then the write-back, then the
//! data device.

use kernel::prelude::*;
use kernel::sync::Arc;

use crate::bricks::bio::BioBrick;
use crate::bricks::brick::Brick;
use crate::bricks::client::Client;
use crate::bricks::copy::{CopyView, SyncCopy};
use crate::bricks::fetch::{FetchView, LogFetch, Replayer};
use crate::bricks::log_writer::LogWriter;
use crate::bricks::r#if::IfBrick;
use crate::bricks::replay::{replay, ReplayBuffers};
use crate::bricks::sio::SioBrick;
use crate::bricks::trans_logger::{Logger, LoggerStats};
use crate::bricks::write_back::{LogPos, WriteBack};
use crate::kx::kthread::KThread;
use crate::kx::net::SockAddr;
use crate::kx::vfs::KPath;
use crate::logfiles;
use crate::mars_core::fetch::{deletable, LogPosition};
use crate::replay_position;
use crate::status::ModuleStatus;
use crate::tree_store::{self, ROOT};

/// The primary side of a resource: its device, logger and write-back.
struct Primary {
    /// Removed before the logger is quiesced, freed after.
    disk: IfBrick<Logger>,
    /// Stopped after the disk is gone.
    logger_thread: KThread<Logger>,
    /// Stopped after the logger thread.
    write_back_thread: KThread<WriteBack>,
    logger: Arc<Logger>,
    wb: Arc<WriteBack>,
}

/// One resource this host has a data device for.
pub(crate) struct Resource {
    name: KVec<u8>,
    primary: Option<Primary>,
    /// The fetch and replay of a secondary: a client of the primary's replication channel.
    /// Stopped before the data device closes and before this host becomes primary.
    follower: Option<KThread<Client<LogFetch>>>,
    /// The replay thread of the follower's fetch; stopped before the follower.
    replayer: Option<KThread<Replayer>>,
    /// The sync of a secondary: a client of the primary's sync channel, started and stopped
    /// with the follower.
    copier: Option<KThread<Client<SyncCopy>>>,
    /// The data device.
    dev: Option<Arc<BioBrick>>,
    /// The logfile whose damage stopped the replay at attach; reported until detach.
    damaged: Option<KVec<u8>>,
    /// The newest `marsadm log-rotate` request a rotation was asked for.
    rotation_asked: u64,
}

/// The switches a secondary's fetch and copy follow (`todo-HOST/replay`, `todo-HOST/sync`,
/// `todo-HOST/fetch-rate`, `todo-HOST/sync-rate`).
#[derive(Clone, Copy)]
pub(crate) struct Following {
    /// Replay fetched logfiles onto the data device.
    pub(crate) replay: bool,
    /// Sync when a sync is due.
    pub(crate) sync: bool,
    /// Bytes per second the fetch may ask for (0: no limit).
    pub(crate) fetch_rate: u64,
    /// Bytes per second of block data the copy may ask for (0: no limit).
    pub(crate) sync_rate: u64,
}

impl Following {
    /// Hands the switches to a running fetch and copy.
    fn apply(&self, fetch: &LogFetch, copy: &SyncCopy) {
        fetch.set_replay(self.replay);
        fetch.set_sync(self.sync);
        fetch.set_rate(self.fetch_rate);
        copy.set_on(self.sync);
        copy.set_rate(self.sync_rate);
    }
}

/// What the strategy publishes about a resource.
pub(crate) struct ResourceView<'a> {
    /// Data device open and log replayed.
    pub(crate) attached: bool,
    /// `/dev/mars/NAME` exists here.
    pub(crate) primary: bool,
    /// Openers of `/dev/mars/NAME`.
    pub(crate) openers: u32,
    /// Logger counters, if primary.
    pub(crate) stats: Option<LoggerStats>,
    /// The logfile whose damage stopped the replay at attach, if any.
    pub(crate) damaged: Option<&'a [u8]>,
    /// The fetch of a secondary, and whom it follows.
    pub(crate) fetch: Option<(FetchView, &'a [u8])>,
    /// The copy of a secondary.
    pub(crate) copy: Option<CopyView>,
}

impl Resource {
    /// A resource known by name, not attached.
    pub(crate) fn new(name: &[u8]) -> Result<Resource> {
        let mut owned = KVec::with_capacity(name.len(), GFP_KERNEL)?;
        owned.extend_from_slice(name, GFP_KERNEL)?;
        Ok(Resource {
            name: owned,
            primary: None,
            follower: None,
            replayer: None,
            copier: None,
            dev: None,
            damaged: None,
            rotation_asked: 0,
        })
    }

    /// The resource's name.
    pub(crate) fn name(&self) -> &[u8] {
        &self.name
    }

    /// What is up, for status keys.
    pub(crate) fn view(&self) -> ResourceView<'_> {
        ResourceView {
            attached: self.dev.is_some(),
            primary: self.primary.is_some(),
            openers: self.primary.as_ref().map_or(0, |p| p.disk.openers()),
            stats: self.primary.as_ref().map(|p| p.logger.stats()),
            damaged: self.damaged.as_deref(),
            fetch: self.follower.as_ref().map(|f| (f.body().work().view(), f.body().work().primary())),
            copy: self.copier.as_ref().map(|c| c.body().work().view()),
        }
    }

    /// Follows `primary`'s log, its replication channel at `addrs.0` and sync channel at
    /// `addrs.1`: syncs from it when a sync is due, fetches and (if `switches.replay`) replays its
    /// log onto the data device. A fetch of another primary, address or size is replaced.
    /// `ENODEV` when not attached; `EBUSY` when primary.
    pub(crate) fn follow(
        &mut self,
        primary: &str,
        addrs: (SockAddr, SockAddr),
        switches: Following,
        size: u64,
        status: &Arc<ModuleStatus>,
    ) -> Result {
        if self.primary.is_some() {
            return Err(EBUSY);
        }
        let dev = self.dev.clone().ok_or(ENODEV)?;
        if let (Some(f), Some(c)) = (&self.follower, &self.copier) {
            let fetch = f.body().work();
            if fetch.primary() == primary.as_bytes() && f.body().addr() == addrs.0 && fetch.size() == size && c.body().addr() == addrs.1 {
                switches.apply(fetch, c.body().work());
                return Ok(());
            }
        }
        self.unfollow();
        let work = LogFetch::new(&self.name, primary.as_bytes(), dev.clone(), size)?;
        let client = Arc::pin_init(Client::new(primary.as_bytes(), addrs.0, status.clone(), work)?, GFP_KERNEL)?;
        let copy = Arc::pin_init(Client::new(primary.as_bytes(), addrs.1, status.clone(), SyncCopy::new(&self.name, primary.as_bytes(), dev)?)?, GFP_KERNEL)?;
        switches.apply(client.work(), copy.work());
        self.replayer = Some(KThread::spawn(c"mars_replay", Arc::new(Replayer::new(client.clone()), GFP_KERNEL)?)?);
        self.follower = Some(KThread::spawn(c"mars_fetch", client)?);
        self.copier = Some(KThread::spawn(c"mars_copy", copy)?);
        pr_info!(
            "resource {}: secondary of {}, fetching its log from {}\n",
            kernel::str::BStr::from_bytes(&self.name),
            primary,
            crate::shown::Shown(&addrs.0)
        );
        Ok(())
    }

    /// Stops fetching and replaying (waits for a replay in progress to end).
    pub(crate) fn unfollow(&mut self) {
        // The copy first: it writes the device and its progress, and stops within a window.
        drop(self.copier.take());
        // Replay ends within a replay call; the fetch no longer has anyone to hand data to.
        drop(self.replayer.take());
        if let Some(f) = self.follower.take() {
            drop(f);
            pr_info!("resource {}: no longer fetching\n", kernel::str::BStr::from_bytes(&self.name));
        }
    }

    /// The directory `/mars/resource-NAME`.
    fn dir(&self) -> Result<KPath> {
        KPath::join(&[ROOT, b"/resource-", &self.name])
    }

    /// Opens the data device at `path` and replays this host's log onto it from the stored
    /// replay position on, oldest logfile first, then stores where the replay ended. A damaged
    /// logfile stops the replay at its last good record: reported (see
    /// [`ResourceView::damaged`]), not fatal.
    pub(crate) fn attach(&mut self, path: &[u8], size: u64, host: &str, status: &ModuleStatus) -> Result {
        if self.dev.is_some() {
            return Ok(());
        }
        let dev = BioBrick::open(&KPath::join(&[path])?)?;
        let have = dev.size();
        if have < size {
            pr_err!(
                "resource {}: data device {} has {} bytes, less than the resource size {}\n",
                kernel::str::BStr::from_bytes(&self.name),
                kernel::str::BStr::from_bytes(path),
                have,
                size
            );
            return Err(ENOSPC);
        }
        let res = tree_store::text(&self.name);
        let from = replay_position::load(res, host, host)?.unwrap_or_default();
        let dir = self.dir()?;
        let mut problem = None;
        let mut end = from;
        let mut mem = ReplayBuffers::new();
        for number in logfiles::numbers(&dir, host)? {
            if number < from.file {
                continue;
            }
            let start = if number == from.file { from.offset } else { 0 };
            let name = logfiles::name(number, host)?;
            let log = SioBrick::open(&logfiles::path(&dir, number, host)?)?;
            let done = replay(&log, start, &dev, &mut mem)?;
            pr_info!(
                "resource {}: replayed {} records of {} from offset {}, {}\n",
                kernel::str::BStr::from_bytes(&self.name),
                done.records,
                kernel::str::BStr::from_bytes(&name),
                start,
                crate::shown::Shown(&done.stop)
            );
            end = LogPos { file: number, offset: done.stop.offset as u64 };
            if !done.stop.reason.is_clean_end() {
                pr_err!(
                    "resource {}: logfile {} is damaged {}; replay stopped at its last good record\n",
                    kernel::str::BStr::from_bytes(&self.name),
                    kernel::str::BStr::from_bytes(&name),
                    crate::shown::Shown(&done.stop)
                );
                problem = Some(name);
                break;
            }
        }
        if problem.is_none() && end != from {
            replay_position::store(res, host, host, end, status)?;
        }
        self.dev = Some(Arc::new(dev, GFP_KERNEL)?);
        self.damaged = problem;
        Ok(())
    }

    /// Number for a new logfile: above every logfile present and the stored replay position.
    fn next_logfile(&self, host: &str) -> Result<u32> {
        let present = logfiles::numbers(&self.dir()?, host)?.last().copied().unwrap_or(0);
        let replayed = replay_position::load(tree_store::text(&self.name), host, host)?.map_or(0, |p| p.file);
        present.max(replayed).checked_add(1).ok_or(EOVERFLOW)
    }

    /// Starts logging into a new logfile and creates `/dev/mars/NAME` of `size` bytes.
    pub(crate) fn become_primary(&mut self, size: u64, host: &str, status: &Arc<ModuleStatus>) -> Result {
        if self.primary.is_some() {
            return Ok(());
        }
        if self.dev.is_none() {
            return Err(ENODEV);
        }
        // No replay of another host's log onto the device /dev/mars is about to write.
        self.unfollow();
        let next = self.next_logfile(host)?;
        let log_name = logfiles::name(next, host)?;
        if let Some(name) = &self.damaged {
            pr_err!(
                "resource {}: not becoming primary: logfile {} is damaged, so the data device lacks its records from the damage on\n",
                kernel::str::BStr::from_bytes(&self.name),
                kernel::str::BStr::from_bytes(name)
            );
            return Err(crate::kx::errno::unclean());
        }
        // Before the logfile exists: secondaries fetch it only as far as the logger says it is
        // durable, never its preallocated zeros. Forgotten again if the logger does not start
        // (once its thread runs, the thread forgets it when it stops).
        let dev = self.dev.clone().ok_or(ENODEV)?;
        status.register_served_log(&self.name, LogPos { file: next, offset: 0 }, dev)?;
        let started = self.start_primary(next, size, status);
        if started.is_err() {
            status.forget_served_log(&self.name);
        }
        started?;
        pr_info!(
            "resource {}: primary, logging to {}\n",
            kernel::str::BStr::from_bytes(&self.name),
            kernel::str::BStr::from_bytes(&log_name)
        );
        Ok(())
    }

    /// The bricks of a primary logging into the new logfile `next`.
    fn start_primary(&mut self, next: u32, size: u64, status: &Arc<ModuleStatus>) -> Result {
        let dev = self.dev.clone().ok_or(ENODEV)?;
        let host = status.host_str().ok_or(EINVAL)?;
        let dir = self.dir()?;
        let log = self.create_logfile(next, host)?;
        let wb = Arc::pin_init(WriteBack::new(dev, LogPos { file: next, offset: 0 })?, GFP_KERNEL)?;
        let write_back_thread = KThread::spawn(c"mars_writeback", wb.clone())?;
        let logger = Arc::pin_init(Logger::new(&self.name, dir, wb.clone(), log, status.clone())?, GFP_KERNEL)?;
        let logger_thread = KThread::spawn(c"mars_logger", logger.clone())?;
        let disk = IfBrick::create(&self.name, size, logger.clone())?;
        self.primary = Some(Primary { disk, logger_thread, write_back_thread, logger, wb });
        Ok(())
    }

    /// Has the primary's logger continue in a new logfile after its current batch (`marsadm
    /// log-rotate`, or the size limit); does nothing while an earlier rotation is still pending.
    /// `ENODEV` if not primary.
    pub(crate) fn rotate(&mut self, host: &str) -> Result {
        match &self.primary {
            None => return Err(ENODEV),
            Some(p) if p.logger.rotation_pending() => return Ok(()),
            Some(_) => {}
        }
        let next = self.next_logfile(host)?;
        let name = logfiles::name(next, host)?;
        let log = self.create_logfile(next, host)?;
        let p = self.primary.as_ref().ok_or(ENODEV)?;
        p.logger.request_rotation(log)?;
        pr_info!(
            "resource {}: continuing in {}\n",
            kernel::str::BStr::from_bytes(&self.name),
            kernel::str::BStr::from_bytes(&name)
        );
        Ok(())
    }

    /// Carries out `marsadm log-rotate` request number `request`: asks for a rotation once, then
    /// returns true once it has taken effect. `ENODEV` if not primary.
    pub(crate) fn rotate_for(&mut self, host: &str, request: u64) -> Result<bool> {
        if self.rotation_asked < request {
            self.rotate(host)?;
            self.rotation_asked = request;
        }
        Ok(self.primary.as_ref().is_some_and(|p| !p.logger.rotation_pending()))
    }

    /// Creates logfile `number`, preallocated; removes it again if that fails (a full /mars), so
    /// failed attempts leave nothing behind.
    fn create_logfile(&self, number: u32, host: &str) -> Result<LogWriter> {
        let dir = self.dir()?;
        LogWriter::create(&logfiles::path(&dir, number, host)?, number).inspect_err(|e| {
            if *e != EEXIST {
                let _ = logfiles::unlink(&dir, number, host);
            }
        })
    }

    /// Publishes how far the primary's write-back has flushed (a no-op when unchanged or not
    /// primary).
    pub(crate) fn publish_replay_position(&self, host: &str, status: &ModuleStatus) -> Result {
        match &self.primary {
            Some(p) => replay_position::store(tree_store::text(&self.name), host, host, p.wb.stats().flushed, status),
            None => Ok(()),
        }
    }

    /// Removes `/dev/mars/NAME` after draining the logger and the write-back, and publishes the
    /// final replay position; `EBUSY` while the device is open.
    pub(crate) fn stop_primary(&mut self, host: &str, status: &ModuleStatus) -> Result {
        if let Some(p) = &self.primary {
            if p.disk.openers() > 0 {
                return Err(EBUSY);
            }
        }
        if let Some(p) = self.primary.take() {
            let Primary { mut disk, logger_thread, write_back_thread, logger, wb } = p;
            // First no new bios (even if someone opened the device since the check above), then
            // finish those that came before the disk is freed (the block layer does not wait for
            // bios a bio-based driver holds) and before the data device may close (reads sent on
            // to it must be done).
            disk.remove();
            if let Err(e) = logger.quiesce() {
                pr_err!(
                    "resource {}: the data device misses writes (error {}); the next attach replays them from the log\n",
                    kernel::str::BStr::from_bytes(&self.name),
                    e.to_errno()
                );
            }
            drop(disk);
            drop(logger_thread);
            drop(write_back_thread);
            let last = logger.stats().logged.file;
            drop(logger);
            let flushed = wb.stats().flushed;
            drop(wb);
            replay_position::store(tree_store::text(&self.name), host, host, flushed, status)?;
            pr_info!("resource {}: secondary, logfile {} closed\n", kernel::str::BStr::from_bytes(&self.name), last);
        }
        Ok(())
    }

    /// Deletes this host's logfiles whose records are all durable on the data device: when
    /// secondary every one (attach replayed them all, and a stopping primary drained its
    /// write-back), when primary those before the logfile the write-back has flushed up to. A
    /// primary asks its write-back to flush but does not wait for it: returns how many were
    /// deleted, and whether every logfile before the current one is gone (else call again later).
    /// `ENODEV` when not attached.
    pub(crate) fn delete_logs(&self, host: &str, members: &[LogPosition]) -> Result<(u32, bool)> {
        if self.dev.is_none() {
            return Err(ENODEV);
        }
        let dir = self.dir()?;
        let Some(p) = &self.primary else {
            // A secondary's own logfiles (from when it was primary) are nobody's source.
            return Ok((logfiles::delete_below(&dir, host, u32::MAX)?, true));
        };
        let _ = p.wb.request_flush();
        let (flushed, current) = (p.wb.stats().flushed.file, p.logger.stats().logged.file);
        let numbers = logfiles::numbers(&dir, host)?;
        // Fully applied here, and fetched and replayed by every other member.
        let mut positions = KVec::with_capacity(members.len() + 1, GFP_KERNEL)?;
        positions.push(LogPosition { seq: flushed, offset: 0 }, GFP_KERNEL)?;
        positions.extend_from_slice(members, GFP_KERNEL)?;
        let n = deletable(&numbers, &positions);
        let limit = numbers.get(n).copied().unwrap_or(u32::MAX);
        // Done as far as this host goes once the write-back is in the current logfile; what
        // members still need stays, and is deleted by a later log-delete.
        Ok((logfiles::delete_below(&dir, host, limit)?, flushed >= current))
    }

    /// Releases the data device; `EBUSY` while primary.
    pub(crate) fn detach(&mut self) -> Result {
        if self.primary.is_some() {
            return Err(EBUSY);
        }
        self.unfollow();
        self.dev = None;
        self.damaged = None;
        Ok(())
    }
}
