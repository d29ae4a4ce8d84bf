// SPDX-License-Identifier: GPL-2.0

//! The strategy thread: one per host, reconciling the /mars tree with what the module does.
//!
//! Each round (every `interval_ms`) it reads the tree, publishes this host's status keys and
//! records what it saw in [`ModuleStatus`]: cluster membership, the host's heartbeat
//! (`actual-HOST/alive`), and for every resource with a data device here the switches of
//! docs/resource-control.md (attach, primary), carried out on the resource's brick graph.

use core::fmt::Write;

use kernel::prelude::*;
use kernel::sync::{Arc, Mutex};

use crate::kx::kthread::Rounds;
use crate::kx::vfs::{self, KPath};
use crate::logfiles;
use crate::mars_core::errno::describe;
use crate::mars_core::fetch::LogPosition;
use crate::mars_core::proto::Channel;
use crate::mars_core::reconcile::{self, Local, Settings as ReconcileSettings, Step, Wanted};
use crate::mars_core::resource_keys::{Status, Switch, CAUSE_SEPARATOR};
use crate::mars_core::sync::Consistency;
use crate::mars_core::tree::{EntryRef, Key};
use crate::peers::Peers;
use crate::replay_position;
use crate::resource::{Following, Resource};
use crate::status::{Membership, ModuleStatus, LEAVE_GRACE_NS};
use crate::tree_store::{self, TargetBuf, TextBuf};

/// What one round found out.
pub(crate) struct RoundResult {
    /// Whether this host is a cluster member.
    pub(crate) membership: Membership,
    /// Resource directories under /mars.
    pub(crate) resources: usize,
}

/// The strategy of this host.
#[pin_data]
pub(crate) struct Strategy {
    status: Arc<ModuleStatus>,
    interval_ms: u32,
    /// Resources with a data device on this host; only the strategy thread uses them.
    #[pin]
    resources: Mutex<KVec<Resource>>,
    /// The tree server and the clients of the peers; only the strategy thread uses them.
    #[pin]
    peers: Mutex<Peers>,
}

impl Strategy {
    /// Creates the strategy publishing into `status`, running a round every `interval_ms`.
    pub(crate) fn new(status: Arc<ModuleStatus>, interval_ms: u32) -> impl PinInit<Strategy> {
        pin_init!(Strategy {
            status,
            interval_ms,
            resources <- kernel::new_mutex!(KVec::new(), "mars_resources"),
            peers <- kernel::new_mutex!(Peers::new(), "mars_peers"),
        })
    }

    fn try_round(&self) -> Result<RoundResult> {
        let mut resources = 0usize;
        match tree_store::for_each_resource(|_| {
            resources = resources.saturating_add(1);
            Ok(())
        }) {
            Ok(()) => {}
            Err(e) if e == ENOENT || e == ENOTDIR => {
                self.leave_network();
                return Ok(RoundResult { membership: Membership::NoMars, resources: 0 });
            }
            Err(e) => return Err(e),
        }
        // What marsadm or an administrator stored since the last round, for the pulls of peers.
        self.status.scan_tree()?;
        let host = self.status.host_str().ok_or(EINVAL)?;
        match self.membership(host)? {
            Membership::Member => {}
            Membership::Leaving => return Ok(RoundResult { membership: Membership::Leaving, resources }),
            other => {
                self.leave_network();
                return Ok(RoundResult { membership: other, resources });
            }
        }
        self.publish_host_status(host, "alive", "1")?;
        if let Err(e) = self.peers.lock().round(host, &self.status) {
            pr_warn!("cannot keep up the peer connections: {}\n", crate::shown::Shown(&describe(e.to_errno())));
        }
        self.reconcile_resources(host)?;
        Ok(RoundResult { membership: Membership::Member, resources })
    }

    /// Stops the server and the clients, if they run.
    fn leave_network(&self) {
        self.peers.lock().stop();
        self.status.set_network(None);
    }

    /// Carries out the switches of every resource directory under /mars.
    fn reconcile_resources(&self, host: &str) -> Result {
        let mut names: KVec<KVec<u8>> = KVec::new();
        tree_store::for_each_resource(|name| {
            let mut owned = KVec::with_capacity(name.len(), GFP_KERNEL)?;
            owned.extend_from_slice(name, GFP_KERNEL)?;
            names.push(owned, GFP_KERNEL)?;
            Ok(())
        })?;
        let mut resources = self.resources.lock();
        for name in names.iter() {
            let Ok(res) = core::str::from_utf8(name) else { continue };
            self.reconcile(&mut resources, res, host)?;
        }
        Ok(())
    }

    /// Reads the value of `key` into an owned copy; `None` if missing or deleted.
    fn value(&self, key: Key<'_>) -> Result<Option<KVec<u8>>> {
        let key = key.to_buf()?;
        let mut buf = TargetBuf::new()?;
        match tree_store::get(key.as_str(), &mut buf)? {
            Some(entry) if !entry.deleted => {
                self.status.observe(entry.stamp);
                let mut v = KVec::with_capacity(entry.value.len(), GFP_KERNEL)?;
                v.extend_from_slice(entry.value.as_bytes(), GFP_KERNEL)?;
                Ok(Some(v))
            }
            _ => Ok(None),
        }
    }

    /// What the tree asks of this host for `res`, and the data device named there.
    fn wanted(&self, res: &str, host: &str, causes: &mut Causes) -> Result<(Wanted, Option<KVec<u8>>)> {
        let mut request = TextBuf::new();
        let _ = write!(request, "delete-{res}");
        let delete = self.value(Key::GlobalRequest { item: request.as_str() })?.is_some_and(|v| v == b"1");
        let data = self.value(Key::DataDevice { resource: res, host })?;
        let wanted = Wanted {
            delete,
            data_device: data.is_some(),
            attach: self.value(Switch::Attach.key(res, host))?.is_some_and(|v| v == b"1"),
            primary: self.value(Key::Primary { resource: res })?.is_some_and(|v| v == host.as_bytes()),
            // A request counter that does not parse asks for nothing (and is reported).
            log_rotate: self.counter(Switch::LogRotate.key(res, host), causes)?.unwrap_or(0),
            log_delete: self.counter(Switch::LogDelete.key(res, host), causes)?.unwrap_or(0),
        };
        Ok((wanted, data))
    }

    /// What this host does with `res` (`r`: its brick graph, if it has one).
    fn local(&self, res: &str, host: &str, r: Option<&Resource>, causes: &mut Causes) -> Result<Local> {
        let view = r.map(|r| r.view());
        let stats = view.as_ref().and_then(|v| v.stats);
        Ok(Local {
            attached: view.as_ref().is_some_and(|v| v.attached),
            primary: view.as_ref().is_some_and(|v| v.primary),
            emergency: stats.is_some_and(|s| s.emergency),
            logfile_bytes: stats.map(|s| s.logged.offset),
            // A done counter that does not parse leaves no request pending (and is reported),
            // rather than carrying every earlier request out again.
            log_rotated: self.counter(Status::LogRotate.key(res, host), causes)?.unwrap_or(u64::MAX),
            log_deleted: self.counter(Status::LogDelete.key(res, host), causes)?.unwrap_or(u64::MAX),
        })
    }

    /// One resource: the steps `mars_core::reconcile` decides, carried out, then its status.
    fn reconcile(&self, list: &mut KVec<Resource>, res: &str, host: &str) -> Result {
        let mut causes = Causes::new();
        let (wanted, data) = self.wanted(res, host, &mut causes)?;
        let found = list.iter().position(|r| r.name() == res.as_bytes());
        // Counters that do not parse are reported once, from the second look below.
        let local = self.local(res, host, found.and_then(|i| list.get(i)), &mut Causes::new())?;
        let plan = reconcile::transitions(&wanted, &local);
        if wanted.delete {
            return if plan.as_slice().contains(&Step::Delete) { self.delete(list, res) } else { Ok(()) };
        }
        let Some(data) = data else {
            return Ok(()); // No data device here: not our resource.
        };
        // The size is needed to attach and to become primary; a missing or malformed one is
        // reported, never taken as 0.
        let size = match self.value(Key::Size { resource: res })? {
            Some(v) => {
                let size = core::str::from_utf8(&v).ok().and_then(|t| t.parse::<u64>().ok());
                if size.is_none() {
                    let _ = write!(
                        causes.next(),
                        "resource-{res}/size holds \"{}\", not a size in bytes: not attaching",
                        tree_store::text(&v)
                    );
                }
                size
            }
            None => {
                let _ = write!(causes.next(), "resource-{res}/size is missing: not attaching");
                None
            }
        };
        let index = match found {
            Some(i) => i,
            None => {
                list.push(Resource::new(res.as_bytes())?, GFP_KERNEL)?;
                list.len() - 1
            }
        };
        let r = list.get_mut(index).ok_or(EINVAL)?;
        for step in &plan {
            if self.transition(*step, res, host, r, &data, size, &mut causes).is_err() {
                break; // The later transitions build on this one.
            }
        }
        let local = self.local(res, host, Some(r), &mut causes)?;
        self.follow(res, host, r, (&local, size), &mut causes)?;
        let settings = ReconcileSettings { rotate_at: self.status.settings().log_rotate_bytes };
        for step in &reconcile::upkeep(&wanted, &local, &settings) {
            self.upkeep(*step, res, host, r, &mut causes)?;
        }
        self.publish_resource(res, host, r, causes)
    }

    /// Starts, keeps or stops the fetch of the primary's log, as `reconcile::follow` decides.
    fn follow(
        &self,
        res: &str,
        host: &str,
        r: &mut Resource,
        (local, size): (&Local, Option<u64>),
        causes: &mut Causes,
    ) -> Result {
        let on = |v: Option<KVec<u8>>| v.is_some_and(|v| v == b"1");
        let primary = self.value(Key::Primary { resource: res })?;
        let fetch_on = on(self.value(Switch::Fetch.key(res, host))?);
        let name = primary.as_deref().and_then(|p| core::str::from_utf8(p).ok());
        let Some(primary) = reconcile::follow(name, host, local, fetch_on) else {
            r.unfollow();
            return Ok(());
        };
        let addrs = (
            crate::peers::channel_addr(primary, Channel::Replication, &self.status)?,
            crate::peers::channel_addr(primary, Channel::Sync, &self.status)?,
        );
        let (Some(fetch_addr), Some(sync_addr)) = addrs else {
            let _ = write!(causes.next(), "the primary {primary} has no address in ips/: not fetching");
            r.unfollow();
            return Ok(());
        };
        let Some(size) = size else {
            r.unfollow();
            return Ok(());
        };
        let switches = Following {
            replay: on(self.value(Switch::Replay.key(res, host))?),
            sync: on(self.value(Switch::Sync.key(res, host))?),
            fetch_rate: self.counter(Switch::FetchRate.key(res, host), causes)?.unwrap_or(0),
            sync_rate: self.counter(Switch::SyncRate.key(res, host), causes)?.unwrap_or(0),
        };
        if let Err(e) = r.follow(primary, (fetch_addr, sync_addr), switches, size, &self.status) {
            let _ = write!(causes.next(), "cannot fetch from {primary}: {}", describe(e.to_errno()));
        }
        Ok(())
    }

    /// Carries out one step of the transitions phase; a failure goes into `causes`. `size` is
    /// `None` if the size key is missing or malformed (reported already).
    #[allow(clippy::too_many_arguments)]
    fn transition(
        &self,
        step: Step,
        res: &str,
        host: &str,
        r: &mut Resource,
        data: &[u8],
        size: Option<u64>,
        causes: &mut Causes,
    ) -> core::result::Result<(), ()> {
        let result = match (step, size) {
            (Step::Attach | Step::BecomePrimary, None) => return Err(()),
            (Step::Attach, Some(size)) => r.attach(data, size, host, &self.status),
            (Step::BecomePrimary, Some(size)) => r.become_primary(size, host, &self.status),
            (Step::StopPrimary, _) => r.stop_primary(host, &self.status),
            _ => Ok(()),
        };
        let Err(e) = result else { return Ok(()) };
        let out = causes.next();
        let _ = match step {
            Step::Attach => {
                write!(out, "cannot attach data device {}: {}", tree_store::text(data), describe(e.to_errno()))
            }
            Step::BecomePrimary if e == crate::kx::errno::unclean() => write!(
                out,
                "cannot become primary: logfile {} is damaged: replay stopped at its last good record, \
                 the data device lacks the rest (see dmesg)",
                tree_store::text(r.view().damaged.unwrap_or(b"?"))
            ),
            Step::BecomePrimary => write!(out, "cannot become primary: {}", describe(e.to_errno())),
            Step::StopPrimary if e == EBUSY => {
                write!(out, "/dev/mars/{res} is in use ({} openers): close or unmount it first", r.view().openers)
            }
            _ => write!(out, "cannot publish the replay position: {}", describe(e.to_errno())),
        };
        Err(())
    }

    /// Carries out one step of the upkeep phase; a failure goes into `causes`.
    fn upkeep(&self, step: Step, res: &str, host: &str, r: &mut Resource, causes: &mut Causes) -> Result {
        match step {
            Step::PublishReplayPosition => {
                if let Err(e) = r.publish_replay_position(host, &self.status) {
                    let _ = write!(causes.next(), "cannot publish the replay position: {}", describe(e.to_errno()));
                }
            }
            Step::Rotate { request } => match r.rotate_for(host, request) {
                Ok(false) => {} // published once the logger has switched, in a later round
                Ok(true) => self.publish_counter(res, host, Status::LogRotate, request)?,
                Err(e) => {
                    let _ = write!(causes.next(), "cannot rotate the logfile: {}", describe(e.to_errno()));
                }
            },
            Step::RotateNotNeeded { request } => self.publish_counter(res, host, Status::LogRotate, request)?,
            Step::RotateFull => {
                if let Err(e) = r.rotate(host) {
                    let _ = write!(causes.next(), "cannot rotate the full logfile: {}", describe(e.to_errno()));
                }
            }
            Step::DeleteLogs { request } => match self.delete_logs(res, host, r) {
                Ok((n, complete)) => {
                    if n > 0 || complete {
                        pr_info!(
                            "resource {}: deleted {} logfile(s) fully applied to the data device and replayed by every member\n",
                            res,
                            n
                        );
                    }
                    // Done once every logfile before the current one is gone: a primary's
                    // write-back may need a round or more to flush; the strategy does not wait.
                    if complete {
                        self.publish_counter(res, host, Status::LogDelete, request)?;
                    }
                }
                Err(e) => {
                    let _ = write!(causes.next(), "cannot delete logfiles: {}", describe(e.to_errno()));
                }
            },
            Step::Detach => {
                if r.detach().is_err() {
                    let _ = write!(causes.next(), "cannot detach while primary: run marsadm secondary first");
                }
            }
            Step::Delete | Step::Attach | Step::BecomePrimary | Step::StopPrimary => {}
        }
        Ok(())
    }

    /// `marsadm log-delete` on `r`: deletes the logfiles this host's data device and every other
    /// member hold (a secondary's position in this host's log counts; `replay_position::others`).
    /// Logs the members that keep logfiles back.
    fn delete_logs(&self, res: &str, host: &str, r: &Resource) -> Result<(u32, bool)> {
        let mut others = replay_position::others(res, host)?;
        // Members the administrator leaves behind (`marsadm log-delete --leave-behind`): their
        // positions do not count; they need a sync once their logfiles are gone.
        if let Some(left) = self.value(Switch::LeaveBehind.key(res, host))? {
            others.retain(|(member, _)| !left.split(|&b| b == b',').any(|name| name == member.as_slice()));
        }
        let mut positions = KVec::with_capacity(others.len(), GFP_KERNEL)?;
        for (_, p) in others.iter() {
            positions.push(LogPosition { seq: p.file, offset: p.offset }, GFP_KERNEL)?;
        }
        let (n, complete) = r.delete_logs(host, &positions)?;
        if let Some(oldest) = positions.iter().map(|p| p.seq).min() {
            for (member, p) in others.iter().filter(|(_, p)| p.file == oldest) {
                if r.view().primary && n == 0 {
                    pr_info!(
                        "resource {}: keeping logfile {} and later for {}, which has replayed up to offset {} of it\n",
                        res,
                        oldest,
                        tree_store::text(member),
                        p.offset
                    );
                }
            }
        }
        Ok((n, complete))
    }

    /// `marsadm delete-resource`: remove the resource's directory (its keys and logfiles) and
    /// forget it; `transitions` asks for this only once it is detached here.
    fn delete(&self, list: &mut KVec<Resource>, res: &str) -> Result {
        if let Some(i) = list.iter().position(|r| r.name() == res.as_bytes()) {
            let _ = list.remove(i);
        }
        let root = KPath::join(&[tree_store::ROOT])?;
        let mut dir = TextBuf::new();
        let _ = write!(dir, "resource-{res}");
        vfs::remove_tree(&root, dir.as_str().as_bytes(), 3)?;
        pr_info!("resource {}: deleted\n", res);
        Ok(())
    }

    /// Reads a request counter (`todo-HOST/ITEM`) or a done counter (`actual-HOST/ITEM`): 0 if
    /// unset; `None`, with the cause in `causes`, if it holds something else than a number.
    fn counter(&self, key: Key<'_>, causes: &mut Causes) -> Result<Option<u64>> {
        let Some(v) = self.value(key)? else { return Ok(Some(0)) };
        let n = core::str::from_utf8(&v).ok().and_then(|t| t.parse().ok());
        if n.is_none() {
            let _ =
                write!(causes.next(), "{} holds \"{}\", not a number: ignored", KeyText(key), tree_store::text(&v));
        }
        Ok(n)
    }

    /// Publishes request `n` of a counter (`log-rotate`, `log-delete`) as done.
    fn publish_counter(&self, res: &str, host: &str, item: Status, n: u64) -> Result {
        let mut t = TextBuf::new();
        let _ = write!(t, "{n}");
        self.publish_status(res, host, item, t.as_str())
    }

    /// Publishes a resource's status keys (each only when its value changed).
    fn publish_resource(&self, res: &str, host: &str, r: &Resource, mut causes: Causes) -> Result {
        let view = r.view();
        let flag = |b: bool| if b { "1" } else { "0" };
        self.publish_status(res, host, Status::IsAttached, flag(view.attached))?;
        self.publish_status(res, host, Status::IsPrimary, flag(view.primary))?;
        let mut t = TextBuf::new();
        let _ = write!(t, "{}", view.openers);
        self.publish_status(res, host, Status::OpenCount, t.as_str())?;
        let mut log = TextBuf::new();
        let mut lag = TextBuf::new();
        let mut emergency = "0";
        // A damaged log is said once: by the refusal to become primary if there is one.
        if let (Some(damaged), true) = (view.damaged, causes.is_empty()) {
            let _ = write!(
                causes.next(),
                "logfile {} is damaged: replay stopped at its last good record (see dmesg)",
                tree_store::text(damaged)
            );
        }
        if let Some(stats) = view.stats {
            if stats.writeback_error != 0 {
                let _ = write!(
                    causes.next(),
                    "write-back to the data device fails: {}, the log keeps the data",
                    describe(stats.writeback_error)
                );
            }
            if let Ok(name) = logfiles::name(stats.logged.file, host) {
                let _ = write!(log, "{},{}", tree_store::text(&name), stats.logged.offset);
            }
            // Bytes of the current logfile not yet on the data device (all of it while an older
            // logfile is still being written back).
            let behind = if stats.written.file == stats.logged.file { stats.written.offset } else { 0 };
            let _ = write!(lag, "{}", stats.logged.offset.saturating_sub(behind));
            emergency = flag(stats.emergency);
        } else {
            let _ = write!(lag, "0");
        }
        let mut fetched = TextBuf::new();
        let mut fetch_state = TextBuf::new();
        let mut replay_lag = TextBuf::new();
        let mut fetch_work = TextBuf::new();
        if let Some((f, origin)) = view.fetch {
            let _ = write!(replay_lag, "{} {} ", f.behind.0, f.behind.1);
            let _ = match f.caught_up_s {
                Some(s) => write!(replay_lag, "{s}"),
                None => write!(replay_lag, "-"),
            };
            if f.fetched.seq > 0 {
                if let Ok(name) = logfiles::name(f.fetched.seq, tree_store::text(origin)) {
                    let _ = write!(fetched, "{},{}", tree_store::text(&name), f.fetched.offset);
                }
            }
            f.words(&mut fetch_state);
            f.work.words(&mut fetch_work);
        }
        let mut sync = TextBuf::new();
        let mut consistency = TextBuf::new();
        if let (Some(c), Some((f, _))) = (view.copy, view.fetch) {
            let _ = write!(sync, "{} {} {} {}", c.done, c.total, c.rate, c.transferred);
            // The fetch judged from the stored progress; the copy's is newer.
            let words = match f.consistency {
                Consistency::Syncing { .. } if c.active => Consistency::Syncing { done: c.done, total: c.total },
                other => other,
            };
            let _ = write!(consistency, "{words}");
        }
        // Only hosts that ever followed a primary have these keys.
        for (item, value) in [
            (Status::Fetch, &fetched),
            (Status::FetchState, &fetch_state),
            (Status::Sync, &sync),
            (Status::Consistency, &consistency),
            (Status::Lag, &replay_lag),
            (Status::FetchWork, &fetch_work),
        ] {
            if view.fetch.is_some() || self.value(item.key(res, host))?.is_some() {
                self.publish_status(res, host, item, value.as_str())?;
            }
        }
        self.publish_status(res, host, Status::Log, log.as_str())?;
        self.publish_status(res, host, Status::WritebackLag, lag.as_str())?;
        self.publish_status(res, host, Status::Emergency, emergency)?;
        self.publish_status(res, host, Status::Error, causes.0.as_str())
    }

    /// Writes `resource-RES/actual-HOST/ITEM` = `value` unless it already holds that value.
    fn publish_status(&self, resource: &str, host: &str, item: Status, value: &str) -> Result {
        let key = item.key(resource, host).to_buf()?;
        let mut buf = TargetBuf::new()?;
        if let Some(current) = tree_store::get(key.as_str(), &mut buf)? {
            if !current.deleted && current.value == value {
                return Ok(());
            }
        }
        if item == Status::Error && !value.is_empty() {
            // Logged when it changes, not every round.
            pr_err!("resource {}: {}\n", resource, value);
        }
        let entry = EntryRef::live(key.as_str(), value, self.status.tick())?;
        self.status.store_entry(&entry)
    }

    /// Member if `ips/ip-HOST` exists (and is not deleted); leaving for a while after it was
    /// deleted (the server goes on answering meanwhile), then not a member.
    fn membership(&self, host: &str) -> Result<Membership> {
        let key = Key::HostAddress { host }.to_buf()?;
        let mut buf = TargetBuf::new()?;
        match tree_store::get(key.as_str(), &mut buf)? {
            Some(entry) => {
                self.status.observe(entry.stamp);
                if !entry.deleted {
                    Ok(Membership::Member)
                } else if entry.stamp.nanos.saturating_add(LEAVE_GRACE_NS) > crate::kx::time::real_time_nanos() {
                    Ok(Membership::Leaving)
                } else {
                    Ok(Membership::NotMember)
                }
            }
            None => Ok(Membership::NotMember),
        }
    }

    /// Writes `actual-HOST/ITEM` = `value` with a fresh stamp (the refresh is the heartbeat).
    fn publish_host_status(&self, host: &str, item: &str, value: &str) -> Result {
        let key = Key::HostStatus { host, item }.to_buf()?;
        let entry = EntryRef::live(key.as_str(), value, self.status.tick())?;
        self.status.store_entry(&entry)
    }
}

/// A key as its text (`?` if it cannot be formed, which the reads before have ruled out).
struct KeyText<'a>(Key<'a>);

impl core::fmt::Display for KeyText<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0.to_buf() {
            Ok(k) => f.write_str(k.as_str()),
            Err(_) => f.write_str("?"),
        }
    }
}

/// Why the module cannot do what a resource's switches ask: causes in words, separated by
/// [`CAUSE_SEPARATOR`] (a tree value holds no newline; `marsadm view` shows one per line).
struct Causes(TextBuf);

impl Causes {
    fn new() -> Causes {
        Causes(TextBuf::new())
    }

    fn is_empty(&self) -> bool {
        self.0.as_str().is_empty()
    }

    /// The text to write the next cause into, after the separator if there is one already.
    fn next(&mut self) -> &mut TextBuf {
        if !self.is_empty() {
            let _ = self.0.write_str(CAUSE_SEPARATOR);
        }
        &mut self.0
    }
}

impl Rounds for Strategy {
    fn round(&self) -> u32 {
        let result = self.try_round();
        self.status.record_round(result);
        self.interval_ms
    }

    fn finish(&self) {
        // No more merges from peers while resources go down.
        self.leave_network();
        // Tear down every resource: devices first, then loggers (draining), then data devices.
        let mut resources = self.resources.lock();
        let host = self.status.host_str().unwrap_or("");
        for r in resources.iter_mut() {
            // At unload no device can be open (the module is pinned while one is).
            if let Err(e) = r.stop_primary(host, &self.status) {
                pr_warn!("resource {}: stopping at unload: error {}\n", tree_store::text(r.name()), e.to_errno());
            }
            let _ = r.detach();
        }
        resources.clear();
        drop(resources);
        // A clean stop says so, so peers need not wait for the heartbeat to age.
        if self.status.membership() == Membership::Member {
            if let Some(host) = self.status.host_str() {
                if let Err(e) = self.publish_host_status(host, "alive", "0") {
                    pr_warn!("cannot publish actual-{}/alive=0 on unload: error {}\n", host, e.to_errno());
                }
            }
        }
    }
}
