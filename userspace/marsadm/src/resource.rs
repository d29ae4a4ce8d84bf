//! Resource commands on this host: create-resource, primary, secondary, up, down, log-rotate,
//! log-delete, delete-resource, wait-resource.
//!
//! Each command checks everything it can before writing (docs/resource-control.md), writes its
//! switch keys, then waits for the kernel's status keys ([`crate::wait`]). The environment checks
//! (root, module loaded, /mars mounted) are the caller's; the rest is here, against the tree.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use mars_core::resource_keys::{Status, Switch};
use mars_core::sync::SyncStatus;
use mars_core::token_bucket::{parse_rate, Rate};
use mars_core::tree::Key;
use serde::Serialize;

use crate::checks::{self, unknown_resource, Target};
use crate::tree::{key, Tree};
use crate::view::{read_resource, ResourceView, NO_PRIMARY};
use crate::wait::{Goal, Waiter};

/// How long `secondary` and `down` look again at a non-zero open count before refusing: three
/// rounds of the kernel's default strategy interval (1 s).
const IN_USE_GRACE: Duration = Duration::from_secs(3);

/// What a resource command works with: the tree, this host, and how long to wait for the kernel.
pub struct Ctx {
    /// The /mars tree.
    pub tree: Tree,
    /// This host.
    pub host: String,
    /// How long to wait for the kernel's status keys.
    pub timeout: Duration,
}

/// What a command did to one resource.
#[derive(Debug, Serialize)]
pub struct Done {
    /// The command, e.g. `primary`.
    pub command: &'static str,
    /// The resource.
    pub resource: String,
    /// This host.
    pub host: String,
    /// One line for people.
    pub message: String,
    /// The resource's state afterwards (absent once it is deleted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<ResourceView>,
}

/// What one command line did: one result per resource (`all` can give none or several).
#[derive(Debug, Serialize)]
pub struct Report {
    /// The results, in the order the resources were handled.
    pub results: Vec<Done>,
}

impl From<Done> for Report {
    fn from(done: Done) -> Report {
        Report { results: vec![done] }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.results.is_empty() {
            return writeln!(f, "nothing to do: no resource has a data device on this host");
        }
        for d in &self.results {
            writeln!(f, "{}", d.message)?;
        }
        Ok(())
    }
}

impl Ctx {
    /// The value of `k` unless missing or deleted.
    fn get(&mut self, k: Key<'_>) -> Result<Option<String>> {
        self.tree.value(&key(k)?)
    }

    /// Sets `k` to `value` unless it holds that value already; durably, so that a power cut
    /// after the command returns does not take the switch back.
    fn set(&mut self, k: Key<'_>, value: &str) -> Result<()> {
        let k = key(k)?;
        if self.tree.value(&k)?.as_deref() != Some(value) {
            self.tree.set(&k, value)?;
            self.tree.sync()?;
        }
        Ok(())
    }

    /// The kernel's status `item` of `res` on this host.
    fn status(&mut self, res: &str, item: Status) -> Result<Option<String>> {
        let k = key(item.key(res, &self.host))?;
        self.tree.value(&k)
    }

    /// True if the kernel reports status flag `item` of `res` as `1`.
    fn is(&mut self, res: &str, item: Status) -> Result<bool> {
        Ok(self.status(res, item)?.as_deref() == Some("1"))
    }

    /// True if this host is the designated primary of `res`.
    fn designated_primary(&mut self, res: &str) -> Result<bool> {
        Ok(self.get(Key::Primary { resource: res })?.as_deref() == Some(self.host.as_str()))
    }

    /// True if the attach switch of `res` on this host is on.
    fn switched_up(&mut self, res: &str) -> Result<bool> {
        let host = self.host.clone();
        Ok(self.get(Switch::Attach.key(res, &host))?.as_deref() == Some("1"))
    }

    /// Waits for `goals` of `res` on this host.
    fn wait(&mut self, res: &str, goals: &[Goal]) -> Result<()> {
        Waiter { resource: res, host: &self.host, timeout: self.timeout }.until(&mut self.tree, goals)
    }

    /// The result of `command` on `res`, with the state it left.
    fn done(&mut self, command: &'static str, res: &str, message: String) -> Result<Done> {
        let state = read_resource(&mut self.tree, res, &self.host)?;
        Ok(Done { command, resource: res.to_string(), host: self.host.clone(), message, state: Some(state) })
    }

    /// Fails unless this host is a member of the cluster in the tree (`ips/ip-HOST`).
    fn require_member(&mut self) -> Result<()> {
        let host = self.host.clone();
        if self.get(Key::HostAddress { host: &host })?.is_none() {
            bail!(
                "host {host} is not a member of the cluster in /mars: run `marsadm create-cluster` first \
                 (or give this host's MARS name with --host)"
            );
        }
        Ok(())
    }

    /// `name`, checked to be a valid name of an existing resource that is not being deleted.
    fn existing<'n>(&mut self, name: &'n str) -> Result<&'n str> {
        let res = checks::resource_name(name)?;
        if !self.tree.resource_exists(res)? {
            return Err(unknown_resource(res));
        }
        if self.deleting(res)? {
            bail!("resource {res} is being deleted: wait until `marsadm view all` no longer lists it");
        }
        Ok(res)
    }

    /// True if `todo-global/delete-RES` asks for the deletion of `res`.
    fn deleting(&mut self, res: &str) -> Result<bool> {
        Ok(self.get(Key::GlobalRequest { item: &format!("delete-{res}") })?.as_deref() == Some("1"))
    }

    /// `name`, checked like [`Ctx::existing`], and to have a data device on this host.
    fn local<'n>(&mut self, name: &'n str) -> Result<&'n str> {
        let res = self.existing(name)?;
        let host = self.host.clone();
        if self.get(Key::DataDevice { resource: res, host: &host })?.is_none() {
            bail!("resource {res} has no data device on host {host}: it is not set up on this host");
        }
        Ok(res)
    }

    /// The resources `target` names: one (checked by [`Ctx::local`]), or for `all` every
    /// resource with a data device on this host that is not being deleted.
    fn targets(&mut self, target: &Target) -> Result<Vec<String>> {
        match target {
            Target::One(name) => Ok(vec![self.local(name)?.to_string()]),
            Target::All => {
                let host = self.host.clone();
                let mut names = Vec::new();
                for res in self.tree.resource_dirs()? {
                    if self.tree.resource_exists(&res)?
                        && !self.deleting(&res)?
                        && self.get(Key::DataDevice { resource: &res, host: &host })?.is_some()
                    {
                        names.push(res);
                    }
                }
                Ok(names)
            }
        }
    }

    /// Fails if `/dev/mars/RES` exists here and is open: the kernel would refuse to remove it.
    fn refuse_in_use(&mut self, res: &str, command: &str) -> Result<()> {
        if !self.is(res, Status::IsPrimary)? {
            return Ok(());
        }
        // The kernel publishes the open count once per strategy round, so a program that closed
        // the device a moment ago may still be counted: look again for a few rounds (bounded by
        // --timeout) before refusing.
        let deadline = std::time::Instant::now() + self.timeout.min(IN_USE_GRACE);
        let openers = loop {
            let openers = match self.status(res, Status::OpenCount)? {
                Some(v) => {
                    v.parse::<u64>().with_context(|| format!("the open count of {res} is {v:?}, not a number"))?
                }
                None => 0,
            };
            if openers == 0 || std::time::Instant::now() >= deadline {
                break openers;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        if openers > 0 {
            bail!(
                "/dev/mars/{res} is in use on {} ({openers} opener(s)): unmount it or stop the programs using it, \
                 then run `marsadm {command} {res}` again",
                self.host
            );
        }
        Ok(())
    }

    /// The resource already using the data device `device` on this host, if any.
    fn resource_using(&mut self, device: &Path) -> Result<Option<String>> {
        let host = self.host.clone();
        let wanted = std::fs::canonicalize(device).ok();
        for res in self.tree.resource_dirs()? {
            let Some(other) = self.get(Key::DataDevice { resource: &res, host: &host })? else {
                continue;
            };
            let other = Path::new(&other);
            if other == device || (wanted.is_some() && std::fs::canonicalize(other).ok() == wanted) {
                return Ok(Some(res));
            }
        }
        Ok(None)
    }

    /// Asks the kernel for one more request of counter `switch` (log-rotate, log-delete) of
    /// `res`, which it reports carried out in `done`; returns the counter value to wait for.
    fn bump_counter(&mut self, res: &str, switch: Switch, done: Status) -> Result<u64> {
        let host = self.host.clone();
        let item = switch.name();
        let switch = switch.key(res, &host);
        let counter = |k: String, v: Option<String>| -> Result<u64> {
            v.map_or(Ok(0), |v| v.parse::<u64>().with_context(|| format!("{k} holds {v:?}, not a number")))
        };
        let asked = counter(key(switch)?, self.get(switch)?)?;
        let carried_out = counter(key(done.key(res, &host))?, self.status(res, done)?)?;
        let next =
            asked.max(carried_out).checked_add(1).ok_or_else(|| anyhow!("the {item} counter of {res} overflows"))?;
        self.set(switch, &next.to_string())?;
        Ok(next)
    }
}

/// `marsadm create-resource NAME DEVICE [--size BYTES]`: creates resource `name` with this host
/// as primary, its data on `device`, and waits until `/dev/mars/NAME` is there.
/// `device_size` finds the size of the block device after checking it (see
/// [`checks::block_device_size`]).
pub fn create_resource(
    ctx: &mut Ctx,
    name: &str,
    device: &Path,
    size: Option<u64>,
    device_size: impl FnOnce(&Path) -> Result<u64>,
) -> Result<Done> {
    ctx.require_member()?;
    let res = checks::resource_name(name)?;
    if ctx.tree.resource_exists(res)? {
        if ctx.deleting(res)? {
            bail!("resource {res} is still being deleted: wait until `marsadm view all` no longer lists it");
        }
        bail!("resource {res} exists already: choose another name, or remove it with `marsadm delete-resource {res}`");
    }
    let device = std::path::absolute(device).with_context(|| format!("cannot make {} absolute", device.display()))?;
    let path = device.to_str().ok_or_else(|| anyhow!("{} is not a UTF-8 path", device.display()))?;
    if let Some(other) = ctx.resource_using(&device)? {
        bail!("{path} is the data device of resource {other} on this host already: choose another device");
    }
    let size = checks::resource_size(size, device_size(&device)?, &device)?;

    let host = ctx.host.clone();
    let delete = format!("delete-{res}");
    if ctx.get(Key::GlobalRequest { item: &delete })?.is_some() {
        // Left over from an earlier resource of this name: it would delete the new one.
        ctx.set(Key::GlobalRequest { item: &delete }, "0")?;
    }
    ctx.set(Key::Size { resource: res }, &size.to_string())?;
    ctx.set(Key::DeviceName { resource: res, host: &host }, res)?;
    ctx.set(Key::Primary { resource: res }, &host)?;
    ctx.set(Switch::Attach.key(res, &host), "1")?;
    // Last: the kernel takes up a resource once it has a data device here.
    ctx.set(Key::DataDevice { resource: res, host: &host }, path)?;
    ctx.wait(
        res,
        &[Goal::Status { item: Status::IsAttached, value: "1" }, Goal::Status { item: Status::IsPrimary, value: "1" }],
    )?;
    ctx.done(
        "create-resource",
        res,
        format!("created resource {res}: {size} bytes on {path}, /dev/mars/{res} is ready on {host}"),
    )
}

/// `marsadm join-resource NAME DEVICE`: this host becomes a secondary of resource `name`, its
/// copy on `device` (at least the resource's size), and waits until the device is attached
/// here. Sync, fetch and replay are switched on; the copy is inconsistent until they are done.
pub fn join_resource(
    ctx: &mut Ctx,
    name: &str,
    device: &Path,
    device_size: impl FnOnce(&Path) -> Result<u64>,
) -> Result<Done> {
    ctx.require_member()?;
    let res = ctx.existing(name)?;
    let host = ctx.host.clone();
    if let Some(current) = ctx.get(Key::DataDevice { resource: res, host: &host })? {
        bail!(
            "{host} belongs to resource {res} already, its data on {current}: \
             to use another device run `marsadm leave-resource {res}` first"
        );
    }
    let device = std::path::absolute(device).with_context(|| format!("cannot make {} absolute", device.display()))?;
    let path = device.to_str().ok_or_else(|| anyhow!("{} is not a UTF-8 path", device.display()))?;
    if let Some(other) = ctx.resource_using(&device)? {
        bail!("{path} is the data device of resource {other} on this host already: choose another device");
    }
    let size = match ctx.get(Key::Size { resource: res })? {
        Some(v) => v.parse::<u64>().map_err(|_| {
            anyhow!("resource {res} has the size {v:?}, not a number of bytes: its tree is damaged (see `marsadm view {res}`)")
        })?,
        None => bail!("resource {res} has no size yet: its creation has not reached this host; try again in a moment"),
    };
    let have = device_size(&device)?;
    if have < size {
        bail!("{path} holds {have} bytes, resource {res} needs {size}: choose a device at least that large");
    }
    for switch in [Switch::Attach, Switch::Sync, Switch::Fetch, Switch::Replay] {
        ctx.set(switch.key(res, &host), "1")?;
    }
    // A joining host syncs, whatever an earlier membership left.
    ctx.set(Key::SyncStatus { resource: res, host: &host }, &SyncStatus::Wanted { full: false }.to_string())?;
    // Last: the kernel takes up a resource once it has a data device here.
    ctx.set(Key::DataDevice { resource: res, host: &host }, path)?;
    ctx.wait(res, &[Goal::Status { item: Status::IsAttached, value: "1" }])?;
    ctx.done("join-resource", res, format!("{host} joined {res} as a secondary, its copy on {path} ({size} bytes)"))
}

/// `marsadm leave-resource NAME`: this host no longer holds a copy of `name` (refused on its
/// primary). Its data device is closed and left as it is; the resource's keys about this host go.
pub fn leave_resource(ctx: &mut Ctx, name: &str) -> Result<Done> {
    ctx.require_member()?;
    let res = ctx.local(name)?;
    let host = ctx.host.clone();
    if ctx.designated_primary(res)? || ctx.is(res, Status::IsPrimary)? {
        bail!(
            "{host} is the primary of {res}: make another host primary first (`marsadm primary {res}` there), \
             or remove the whole resource with `marsadm delete-resource {res}`"
        );
    }
    ctx.set(Switch::Attach.key(res, &host), "0")?;
    ctx.wait(res, &[Goal::Status { item: Status::IsAttached, value: "0" }])?;
    let keys = [
        key(Key::DataDevice { resource: res, host: &host })?,
        key(Key::DeviceName { resource: res, host: &host })?,
        key(Switch::Attach.key(res, &host))?,
        key(Switch::Sync.key(res, &host))?,
        key(Switch::Fetch.key(res, &host))?,
        key(Switch::Replay.key(res, &host))?,
        key(Key::SyncStatus { resource: res, host: &host })?,
        key(Key::SyncPosition { resource: res, host: &host })?,
        key(Key::ReplayPosition { resource: res, host: &host })?,
    ];
    for k in &keys {
        if ctx.tree.value(k)?.is_some() {
            ctx.tree.delete(k)?;
        }
    }
    ctx.tree.sync()?;
    Ok(Done {
        command: "leave-resource",
        resource: res.to_string(),
        host: host.clone(),
        message: format!("{host} left {res}; its data device is closed and kept as it was"),
        state: None,
    })
}

/// `marsadm primary [--force] NAME`: makes this host primary, so `/dev/mars/NAME` appears here.
/// Without `force` it refuses while another host is the designated primary.
pub fn primary(ctx: &mut Ctx, name: &str, force: bool) -> Result<Done> {
    ctx.require_member()?;
    let res = ctx.local(name)?;
    let host = ctx.host.clone();
    if let Some(other) = ctx.get(Key::Primary { resource: res })? {
        if other != host && other != NO_PRIMARY && !force {
            bail!(
                "{other} is the designated primary of {res}: run `marsadm secondary {res}` first, \
                 or `marsadm primary --force {res}`"
            );
        }
    }
    if !ctx.switched_up(res)? {
        bail!("{res} is down on {host}: run `marsadm up {res}` first");
    }
    ctx.set(Key::Primary { resource: res }, &host)?;
    ctx.wait(
        res,
        &[Goal::Status { item: Status::IsAttached, value: "1" }, Goal::Status { item: Status::IsPrimary, value: "1" }],
    )?;
    ctx.done("primary", res, format!("{res}: {host} is primary, /dev/mars/{res} is ready"))
}

/// `marsadm secondary NAME`: no host is primary any more; `/dev/mars/NAME` goes away here.
pub fn secondary(ctx: &mut Ctx, name: &str) -> Result<Done> {
    ctx.require_member()?;
    let res = ctx.local(name)?;
    ctx.refuse_in_use(res, "secondary")?;
    ctx.set(Key::Primary { resource: res }, NO_PRIMARY)?;
    ctx.wait(res, &[Goal::Status { item: Status::IsPrimary, value: "0" }])?;
    let host = ctx.host.clone();
    ctx.done("secondary", res, format!("{res}: {host} is secondary, /dev/mars/{res} is gone"))
}

/// `marsadm up NAME|all`: attaches the data device (and the device comes back if this host is
/// the designated primary).
pub fn up(ctx: &mut Ctx, target: &Target) -> Result<Report> {
    ctx.require_member()?;
    let names = ctx.targets(target)?;
    let host = ctx.host.clone();
    let mut results = Vec::new();
    for res in &names {
        ctx.set(Switch::Attach.key(res, &host), "1")?;
        let mut goals = vec![Goal::Status { item: Status::IsAttached, value: "1" }];
        let primary = ctx.designated_primary(res)?;
        if primary {
            goals.push(Goal::Status { item: Status::IsPrimary, value: "1" });
        }
        ctx.wait(res, &goals)?;
        let also = if primary { format!(", /dev/mars/{res} is ready") } else { String::new() };
        results.push(ctx.done("up", res, format!("{res}: attached on {host}{also}"))?);
    }
    Ok(Report { results })
}

/// `marsadm down NAME|all`: makes a primary secondary first, then detaches the data device.
pub fn down(ctx: &mut Ctx, target: &Target) -> Result<Report> {
    ctx.require_member()?;
    let names = ctx.targets(target)?;
    for res in &names {
        ctx.refuse_in_use(res, "down")?;
    }
    let host = ctx.host.clone();
    let mut results = Vec::new();
    for res in &names {
        if ctx.designated_primary(res)? || ctx.is(res, Status::IsPrimary)? {
            ctx.set(Key::Primary { resource: res }, NO_PRIMARY)?;
            ctx.wait(res, &[Goal::Status { item: Status::IsPrimary, value: "0" }])?;
        }
        ctx.set(Switch::Attach.key(res, &host), "0")?;
        ctx.wait(res, &[Goal::Status { item: Status::IsAttached, value: "0" }])?;
        results.push(ctx.done("down", res, format!("{res}: detached on {host}"))?);
    }
    Ok(Report { results })
}

/// `marsadm log-rotate NAME`: the primary starts a new logfile.
pub fn log_rotate(ctx: &mut Ctx, name: &str) -> Result<Done> {
    ctx.require_member()?;
    let res = ctx.local(name)?;
    if !ctx.is(res, Status::IsPrimary)? {
        bail!("{res} is not primary on {}: only the primary writes logfiles", ctx.host);
    }
    if ctx.is(res, Status::Emergency)? {
        bail!(
            "{res} is in emergency mode on {}: logging stopped when /mars ran full, so there is no logfile to rotate; \
             `marsadm secondary {res}` and `marsadm primary {res}` resume logging once /mars has room",
            ctx.host
        );
    }
    let n = ctx.bump_counter(res, Switch::LogRotate, Status::LogRotate)?;
    ctx.wait(res, &[Goal::Counter { item: Status::LogRotate, at_least: n }])?;
    let mut done = ctx.done("log-rotate", res, String::new())?;
    done.message = match done.state.as_ref().and_then(|s| s.log_file.as_deref()) {
        Some(file) => format!("{res}: logfile rotated, now writing {file}"),
        None => format!("{res}: logfile rotated"),
    };
    Ok(done)
}

/// `marsadm log-delete NAME [--leave-behind HOST]...`: deletes the logfiles whose every record
/// is on the data device and, on the primary, that every member has replayed but those left
/// behind (`todo-HOST/leave-behind`, written for each request).
pub fn log_delete(ctx: &mut Ctx, name: &str, leave_behind: &[String]) -> Result<Done> {
    ctx.require_member()?;
    let res = ctx.local(name)?;
    if !ctx.is(res, Status::IsAttached)? {
        bail!("{res} is not attached on {}: run `marsadm up {res}` first", ctx.host);
    }
    for member in leave_behind {
        if *member == ctx.host {
            bail!("log-delete: {member} is this host: only other members can be left behind");
        }
        if ctx.tree.value(&key(Key::DataDevice { resource: res, host: member })?)?.is_none() {
            bail!("log-delete: {member} is not a member of {res} (no data-{member}): nothing to leave behind");
        }
    }
    let host = ctx.host.clone();
    ctx.set(Switch::LeaveBehind.key(res, &host), &leave_behind.join(","))?;
    let n = ctx.bump_counter(res, Switch::LogDelete, Status::LogDelete)?;
    ctx.wait(res, &[Goal::Counter { item: Status::LogDelete, at_least: n }])?;
    let left = ctx.tree.resource_contents(res)?.map_or(0, |c| c.logfiles);
    ctx.done("log-delete", res, format!("{res}: deleted the logfiles that are written back; {left} logfile(s) left"))
}

/// `marsadm delete-resource NAME`: removes the resource on every host; it must be down here.
pub fn delete_resource(ctx: &mut Ctx, name: &str) -> Result<Done> {
    ctx.require_member()?;
    let res = checks::resource_name(name)?;
    if !ctx.tree.resource_exists(res)? {
        return Err(unknown_resource(res));
    }
    if ctx.switched_up(res)? || ctx.is(res, Status::IsAttached)? || ctx.is(res, Status::IsPrimary)? {
        bail!("{res} is still up on {}: run `marsadm down {res}` first", ctx.host);
    }
    ctx.set(Key::GlobalRequest { item: &format!("delete-{res}") }, "1")?;
    ctx.wait(res, &[Goal::Deleted])?;
    Ok(Done {
        command: "delete-resource",
        resource: res.to_string(),
        host: ctx.host.clone(),
        message: format!("deleted resource {res}"),
        state: None,
    })
}

/// `marsadm pause-replay NAME` (`on` false) / `resume-replay NAME` (`on` true): switches this
/// secondary's replay off or on (`todo-HOST/replay`) and waits until mars.ko says so in
/// `fetch-state` (`..., replay paused`). Fetching goes on either way; while paused, the data
/// device stays at the prefix of the primary's history it holds.
pub fn set_replay(ctx: &mut Ctx, name: &str, on: bool) -> Result<Done> {
    ctx.require_member()?;
    let res = ctx.local(name)?;
    let host = ctx.host.clone();
    let command = if on { "resume-replay" } else { "pause-replay" };
    if ctx.designated_primary(res)? || ctx.is(res, Status::IsPrimary)? {
        bail!("{host} is the primary of {res}: it replays no one's log, there is nothing to {command}");
    }
    ctx.set(Switch::Replay.key(res, &host), if on { "1" } else { "0" })?;
    let state_key = key(Status::FetchState.key(res, &host))?;
    let start = std::time::Instant::now();
    loop {
        let state = ctx.tree.value(&state_key)?.unwrap_or_default();
        if !state.is_empty() && state.ends_with(", replay paused") != on {
            let message =
                if on { format!("{res}: replay resumed on {host}") } else { format!("{res}: replay paused on {host}") };
            return ctx.done(command, res, message);
        }
        if start.elapsed() >= ctx.timeout {
            let shown = if state.is_empty() { "nothing (is this host fetching from a primary?)" } else { &state };
            bail!(
                "{res}: timed out after {} s waiting for mars.ko to {} replay (fetch-state says {shown}); \
                 the switch stays set and mars.ko keeps trying",
                ctx.timeout.as_secs(),
                if on { "resume" } else { "pause" }
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The host's own secondary copy of `name`, refused on its primary with `what` in the message.
fn secondary_here<'a>(ctx: &mut Ctx, name: &'a str, what: &str) -> Result<&'a str> {
    ctx.require_member()?;
    let res = ctx.local(name)?;
    let host = ctx.host.clone();
    if ctx.designated_primary(res)? || ctx.is(res, Status::IsPrimary)? {
        bail!("{host} is the primary of {res}: {what} is for secondaries");
    }
    Ok(res)
}

/// `marsadm invalidate NAME [--full]`: this secondary syncs again from its primary (a fast sync:
/// only blocks whose digests differ; `full`: every block). Its device is inconsistent from now
/// until the sync and the replay after it are done.
pub fn invalidate(ctx: &mut Ctx, name: &str, full: bool) -> Result<Done> {
    let res = secondary_here(ctx, name, "invalidate")?;
    let host = ctx.host.clone();
    ctx.set(Key::SyncStatus { resource: res, host: &host }, &SyncStatus::Wanted { full }.to_string())?;
    let kind = if full { "full" } else { "fast" };
    ctx.done("invalidate", res, format!("{res}: {host} syncs again from its primary ({kind} sync)"))
}

/// `marsadm pause-sync NAME` (`on` false) / `resume-sync NAME`: switches this secondary's sync
/// off or on (`todo-HOST/sync`). A copy in progress stops after the window it is in (8 MiB) and
/// resumes at its stored position.
pub fn set_sync(ctx: &mut Ctx, name: &str, on: bool) -> Result<Done> {
    let command = if on { "resume-sync" } else { "pause-sync" };
    let res = secondary_here(ctx, name, command)?;
    let host = ctx.host.clone();
    ctx.set(Switch::Sync.key(res, &host), if on { "1" } else { "0" })?;
    let message = if on { format!("{res}: sync resumed on {host}") } else { format!("{res}: sync paused on {host}") };
    ctx.done(command, res, message)
}

/// `marsadm pause-fetch NAME` (`on` false) / `resume-fetch NAME`: switches this secondary's
/// fetch off or on (`todo-HOST/fetch`) and waits until mars.ko has stopped or started it. With
/// the fetch, the sync and the replay stop too (they work on what the fetch brings); every
/// position is kept.
pub fn set_fetch(ctx: &mut Ctx, name: &str, on: bool) -> Result<Done> {
    let command = if on { "resume-fetch" } else { "pause-fetch" };
    let res = secondary_here(ctx, name, command)?;
    let host = ctx.host.clone();
    ctx.set(Switch::Fetch.key(res, &host), if on { "1" } else { "0" })?;
    let state_key = key(Status::FetchState.key(res, &host))?;
    let start = std::time::Instant::now();
    loop {
        let state = ctx.tree.value(&state_key)?.unwrap_or_default();
        if state.is_empty() != on {
            let message =
                if on { format!("{res}: fetch resumed on {host}") } else { format!("{res}: fetch paused on {host}") };
            return ctx.done(command, res, message);
        }
        if start.elapsed() >= ctx.timeout {
            bail!(
                "{res}: timed out after {} s waiting for mars.ko to {} the fetch (fetch-state says {:?}); \
                 the switch stays set and mars.ko keeps trying",
                ctx.timeout.as_secs(),
                if on { "start" } else { "stop" },
                state
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `marsadm set-sync-rate NAME RATE` / `set-fetch-rate NAME RATE`: the rate limit of this
/// host's sync or fetch of the resource (`todo-HOST/sync-rate`, `fetch-rate`, in bytes per
/// second; 0: none). Taken up by a running sync or fetch at the next strategy round. Allowed on
/// the primary too: it applies once this host follows another.
pub fn set_rate(ctx: &mut Ctx, name: &str, switch: Switch, rate: &str) -> Result<Done> {
    let (command, what) = match switch {
        Switch::SyncRate => ("set-sync-rate", "sync"),
        Switch::FetchRate => ("set-fetch-rate", "fetch"),
        other => bail!("{other:?} is not a rate switch"),
    };
    let Some(bytes) = parse_rate(rate) else {
        bail!(
            "{command}: {rate:?} is not a rate: give bytes per second as digits with an optional \
             k, M or G (binary units), or 0 or unlimited for no limit"
        );
    };
    ctx.require_member()?;
    let res = ctx.local(name)?;
    let host = ctx.host.clone();
    ctx.set(switch.key(res, &host), &bytes.to_string())?;
    ctx.done(command, res, format!("{res}: {what} rate on {host} limited to {}", Rate(bytes)))
}

/// `marsadm wait-sync NAME`: waits until this secondary's sync has copied the whole device
/// (the replay that makes it consistent may still run: `wait-replay` waits for that too).
pub fn wait_sync(ctx: &mut Ctx, name: &str) -> Result<Done> {
    let res = secondary_here(ctx, name, "wait-sync")?;
    let host = ctx.host.clone();
    let status_key = key(Key::SyncStatus { resource: res, host: &host })?;
    let start = std::time::Instant::now();
    loop {
        let value = ctx.tree.value(&status_key)?;
        let sync = value.as_deref().and_then(SyncStatus::parse);
        if let Some(SyncStatus::Copying { done, total, .. }) = sync {
            if done == total {
                return ctx.done("wait-sync", res, format!("{res}: {host} has synced all {total} bytes"));
            }
        }
        if ctx.get(Switch::Sync.key(res, &host))?.as_deref() == Some("0") {
            bail!("{res}: the sync on {host} is paused: run `marsadm resume-sync {res}` first");
        }
        if start.elapsed() >= ctx.timeout {
            let stands = match sync {
                Some(SyncStatus::Copying { done, total, .. }) => format!("{done} of {total} bytes copied"),
                _ => "the sync has not begun (is the primary reachable?)".to_string(),
            };
            bail!("{res}: timed out after {} s: {stands}; allow more time with --timeout", ctx.timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A position in a log: logfile sequence number and bytes into it.
type LogPoint = (u32, u64);

/// `marsadm wait-replay NAME`: waits until this secondary's data device holds what the primary
/// had logged when the call began. `log_end(primary, address, resource)` asks the primary for its
/// newest logfile and the bytes it serves of it (`None`: it has none). Fails at once when the
/// secondary cannot get there (it needs a sync, its log diverged or is damaged), and after the
/// timeout with where replay stands.
pub fn wait_replay(
    ctx: &mut Ctx,
    name: &str,
    log_end: impl FnOnce(&str, std::net::IpAddr, &str) -> Result<Option<LogPoint>>,
) -> Result<Done> {
    ctx.require_member()?;
    let res = ctx.local(name)?;
    let host = ctx.host.clone();
    let primary = match ctx.get(Key::Primary { resource: res })? {
        Some(p) if p != NO_PRIMARY => p,
        _ => bail!("resource {res} has no primary: there is no log to wait for"),
    };
    if primary == host {
        bail!("{host} is the primary of {res}: its data device holds its own log; wait-replay is for secondaries");
    }
    let ip = match ctx.get(Key::HostAddress { host: &primary })? {
        Some(a) => {
            a.parse::<std::net::IpAddr>().map_err(|_| anyhow!("ips/ip-{primary} holds {a:?}, not an IP address"))?
        }
        None => bail!("the primary {primary} of {res} is not a member (no ips/ip-{primary})"),
    };
    let Some(target) = log_end(&primary, ip, res)? else {
        return ctx.done(
            "wait-replay",
            res,
            format!("{res}: the primary {primary} has logged nothing: nothing to wait for"),
        );
    };
    let start = std::time::Instant::now();
    let replay_key = key(Key::ReplayPosition { resource: res, host: &host })?;
    let state_key = key(Status::FetchState.key(res, &host))?;
    let consistency_key = key(Status::Consistency.key(res, &host))?;
    loop {
        let at = ctx.tree.value(&replay_key)?.and_then(|v| replay_point(&v, &primary));
        let consistent = ctx.tree.value(&consistency_key)?.as_deref() == Some("consistent");
        if consistent && at.is_some_and(|at| at >= target) {
            let (seq, off) = target;
            return ctx.done(
                "wait-replay",
                res,
                format!("{res}: {host} has replayed {primary}'s log up to logfile {seq} at {off} bytes"),
            );
        }
        let state = ctx.tree.value(&state_key)?.unwrap_or_default();
        if ["needs-sync", "diverged", "damaged"].iter().any(|p| state.starts_with(p)) {
            bail!("{res}: {host} cannot replay {primary}'s log: {state}");
        }
        if start.elapsed() >= ctx.timeout {
            let stands = at.map_or_else(|| "nowhere yet".to_string(), |(s, o)| format!("at logfile {s}, {o} bytes"));
            let consistency = ctx.tree.value(&consistency_key)?.unwrap_or_else(|| "not reported".to_string());
            bail!(
                "{res}: timed out after {} s: replay stands {stands}, the primary's log ended at logfile {}, {} bytes \
                 when the call began (fetch: {}; {consistency}); allow more time with --timeout",
                ctx.timeout.as_secs(),
                target.0,
                target.1,
                if state.is_empty() { "not reported" } else { &state }
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `log-N-ORIGIN,OFFSET` as (N, OFFSET) if ORIGIN is `origin`.
fn replay_point(value: &str, origin: &str) -> Option<LogPoint> {
    let (file, offset) = value.rsplit_once(',')?;
    let (seq, from) = mars_core::names::parse_logfile_name(file.as_bytes()).ok()?;
    (from == origin).then_some(())?;
    Some((seq, offset.parse().ok()?))
}

/// `marsadm wait-resource NAME|all`: waits until the kernel's status matches the switches
/// (attached when up, `/dev/mars/NAME` present when up and designated primary here).
pub fn wait_resource(ctx: &mut Ctx, target: &Target) -> Result<Report> {
    ctx.require_member()?;
    let names = ctx.targets(target)?;
    let mut results = Vec::new();
    for res in &names {
        let up = ctx.switched_up(res)?;
        let primary = up && ctx.designated_primary(res)?;
        let flag = |b: bool| if b { "1" } else { "0" };
        ctx.wait(
            res,
            &[
                Goal::Status { item: Status::IsAttached, value: flag(up) },
                Goal::Status { item: Status::IsPrimary, value: flag(primary) },
            ],
        )?;
        let what = match (up, primary) {
            (true, true) => "attached and primary",
            (true, false) => "attached",
            _ => "detached",
        };
        results.push(ctx.done("wait-resource", res, format!("{res}: {what} on {}", ctx.host))?);
    }
    Ok(Report { results })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::thread::JoinHandle;

    use mars_core::lamport::Stamp;
    use mars_core::reconcile::{self, Local, Settings, Step, Wanted};

    const GIB: u64 = 1 << 30;

    /// A stand-in for mars.ko's strategy thread: carries out the switches of
    /// docs/resource-control.md every 10 ms by writing the status keys.
    struct FakeKernel {
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<()>>,
    }

    impl FakeKernel {
        fn start(root: &Path) -> FakeKernel {
            FakeKernel::start_as(root, "node1")
        }

        /// The module of `host`.
        fn start_as(root: &Path, host: &'static str) -> FakeKernel {
            let stop = Arc::new(AtomicBool::new(false));
            let (root, flag) = (root.to_path_buf(), stop.clone());
            let thread = std::thread::spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    round(&root, host).expect("fake kernel round");
                    std::thread::sleep(Duration::from_millis(10));
                }
            });
            FakeKernel { stop, thread: Some(thread) }
        }
    }

    impl Drop for FakeKernel {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
            if let Some(t) = self.thread.take() {
                t.join().expect("fake kernel thread");
            }
        }
    }

    /// One round of the simulated module: the decisions are mars.ko's own
    /// (`mars_core::reconcile`); carrying them out always succeeds, and the module's state lives
    /// in the status keys it publishes.
    fn round(root: &Path, host: &str) -> Result<()> {
        let mut tree = Tree::new(root, host, Stamp::ZERO);
        for res in tree.resource_dirs()? {
            let res = res.as_str();
            let on =
                |tree: &mut Tree, k: Key<'_>| -> Result<bool> { Ok(tree.value(&key(k)?)?.as_deref() == Some("1")) };
            let counter = |tree: &mut Tree, k: Key<'_>| -> Result<u64> {
                Ok(tree.value(&key(k)?)?.map(|v| v.parse()).transpose()?.unwrap_or(0))
            };
            let wanted = Wanted {
                delete: on(&mut tree, Key::GlobalRequest { item: &format!("delete-{res}") })?,
                data_device: tree.value(&key(Key::DataDevice { resource: res, host })?)?.is_some(),
                attach: on(&mut tree, Switch::Attach.key(res, host))?,
                primary: tree.value(&key(Key::Primary { resource: res })?)?.as_deref() == Some(host),
                log_rotate: counter(&mut tree, Switch::LogRotate.key(res, host))?,
                log_delete: counter(&mut tree, Switch::LogDelete.key(res, host))?,
            };
            let mut local = Local {
                attached: on(&mut tree, Status::IsAttached.key(res, host))?,
                primary: on(&mut tree, Status::IsPrimary.key(res, host))?,
                emergency: false,
                logfile_bytes: None,
                log_rotated: counter(&mut tree, Status::LogRotate.key(res, host))?,
                log_deleted: counter(&mut tree, Status::LogDelete.key(res, host))?,
            };
            for step in &reconcile::transitions(&wanted, &local) {
                match step {
                    Step::Delete => std::fs::remove_dir_all(root.join(format!("resource-{res}")))?,
                    Step::Attach => local.attached = true,
                    Step::BecomePrimary => local.primary = true,
                    Step::StopPrimary => local.primary = false,
                    _ => {}
                }
            }
            if wanted.delete {
                continue;
            }
            let mut rotated = None;
            for step in &reconcile::upkeep(&wanted, &local, &Settings::default()) {
                match *step {
                    Step::Rotate { request } | Step::RotateNotNeeded { request } => {
                        local.log_rotated = request;
                        rotated = Some(request);
                    }
                    Step::DeleteLogs { request } => local.log_deleted = request,
                    Step::Detach if !local.primary => local.attached = false,
                    _ => {}
                }
            }
            let flag = |b: bool| if b { "1" } else { "0" };
            let mut put = |item: Status, v: &str| -> Result<()> {
                let k = key(item.key(res, host))?;
                if tree.value(&k)?.as_deref() != Some(v) {
                    tree.set(&k, v)?;
                }
                Ok(())
            };
            put(Status::IsAttached, flag(local.attached))?;
            put(Status::IsPrimary, flag(local.primary))?;
            put(Status::Error, "")?;
            if let Some(n) = rotated {
                put(Status::Log, &format!("log-{:09}-{host},0", n + 1))?;
                put(Status::LogRotate, &n.to_string())?;
            }
            if local.log_deleted > 0 {
                put(Status::LogDelete, &local.log_deleted.to_string())?;
            }
        }
        Ok(())
    }

    /// A tree in which node1 is a cluster member.
    fn member(dir: &Path) -> Ctx {
        let mut tree = Tree::new(dir, "node1", Stamp::ZERO);
        tree.set("ips/ip-node1", "192.0.2.1").expect("member");
        Ctx { tree, host: "node1".into(), timeout: Duration::from_secs(5) }
    }

    fn gib(_: &Path) -> Result<u64> {
        Ok(GIB)
    }

    /// Every entry and file under `dir`, to check that nothing was written.
    fn snapshot(dir: &Path) -> Vec<(PathBuf, String)> {
        let mut out = Vec::new();
        let mut dirs = vec![dir.to_path_buf()];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                let target = std::fs::read_link(&p).map(|t| t.display().to_string()).unwrap_or_default();
                if p.is_dir() && target.is_empty() {
                    dirs.push(p.clone());
                }
                out.push((p, target));
            }
        }
        out.sort();
        out
    }

    fn value(ctx: &mut Ctx, k: &str) -> Option<String> {
        ctx.tree.value(k).unwrap()
    }

    /// A second member, node2, in the same tree as `member`'s node1.
    fn second_member(dir: &Path) -> Ctx {
        let mut tree = Tree::new(dir, "node2", Stamp::ZERO);
        tree.set("ips/ip-node2", "192.0.2.2").expect("member");
        Ctx { tree, host: "node2".into(), timeout: Duration::from_secs(5) }
    }

    #[test]
    fn a_secondary_joins_and_leaves() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut node1 = member(dir.path());
        let mut node2 = second_member(dir.path());
        let _kernel1 = FakeKernel::start(dir.path());
        let _kernel2 = FakeKernel::start_as(dir.path(), "node2");
        create_resource(&mut node1, "r0", Path::new("/dev/vda"), Some(128 << 20), gib).expect("creates");

        let d = join_resource(&mut node2, "r0", Path::new("/dev/vdc"), gib).expect("joins");
        assert!(d.message.contains("node2 joined r0 as a secondary"), "{}", d.message);
        for (k, v) in [
            ("resource-r0/data-node2", "/dev/vdc"),
            ("resource-r0/todo-node2/attach", "1"),
            ("resource-r0/todo-node2/sync", "1"),
            ("resource-r0/todo-node2/fetch", "1"),
            ("resource-r0/todo-node2/replay", "1"),
            ("resource-r0/actual-node2/is-attached", "1"),
            ("resource-r0/actual-node2/is-primary", "0"),
        ] {
            assert_eq!(value(&mut node2, k).as_deref(), Some(v), "{k}");
        }
        // The primary stays primary.
        assert_eq!(value(&mut node2, "resource-r0/primary").as_deref(), Some("node1"));

        let e = join_resource(&mut node2, "r0", Path::new("/dev/vdd"), gib).unwrap_err();
        assert!(e.to_string().contains("belongs to resource r0 already"), "{e}");
        let e = leave_resource(&mut node1, "r0").unwrap_err();
        assert!(e.to_string().contains("node1 is the primary of r0"), "{e}");

        let d = leave_resource(&mut node2, "r0").expect("leaves");
        assert!(d.message.contains("node2 left r0"), "{}", d.message);
        assert_eq!(value(&mut node2, "resource-r0/actual-node2/is-attached").as_deref(), Some("0"));
        for k in ["resource-r0/data-node2", "resource-r0/todo-node2/attach", "resource-r0/todo-node2/sync"] {
            assert_eq!(value(&mut node2, k), None, "{k}");
        }
        let e = leave_resource(&mut node2, "r0").unwrap_err();
        assert!(e.to_string().contains("has no data device on host node2"), "{e}");
        // And back again.
        join_resource(&mut node2, "r0", Path::new("/dev/vdc"), gib).expect("joins again");
    }

    /// node1 primary of r0 (with its simulated module), node2 holding a copy of r0 (no
    /// module: the tests write its status keys), waiting at most 300 ms.
    fn primary_and_secondary(dir: &Path) -> (Ctx, FakeKernel, Ctx) {
        let mut node1 = member(dir);
        let kernel1 = FakeKernel::start(dir);
        create_resource(&mut node1, "r0", Path::new("/dev/vda"), Some(128 << 20), gib).expect("creates");
        let mut node2 = second_member(dir);
        node2.timeout = Duration::from_millis(300);
        node2.tree.set("resource-r0/data-node2", "/dev/vdc").expect("joined");
        (node1, kernel1, node2)
    }

    #[test]
    fn wait_replay_waits_for_the_primarys_log_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut node1, _kernel1, mut node2) = primary_and_secondary(dir.path());
        let end = |_: &str, ip: std::net::IpAddr, res: &str| {
            assert_eq!((ip.to_string().as_str(), res), ("192.0.2.1", "r0"));
            Ok(Some((2, 4096)))
        };
        // Replay behind: a timeout that says where it stands.
        node2.tree.set("resource-r0/replay-node2", "log-000000002-node1,512").unwrap();
        let e = wait_replay(&mut node2, "r0", end).unwrap_err().to_string();
        assert!(e.contains("replay stands at logfile 2, 512 bytes, the primary's log ended at logfile 2, 4096"), "{e}");
        // Replay there (or in a later logfile) but the device not consistent yet: not done.
        node2.tree.set("resource-r0/replay-node2", "log-000000003-node1,0").unwrap();
        node2.tree.set("resource-r0/actual-node2/consistency", "inconsistent: syncing, 1 of 2 bytes").unwrap();
        let e = wait_replay(&mut node2, "r0", end).unwrap_err().to_string();
        assert!(e.contains("inconsistent: syncing"), "{e}");
        // Both: done.
        node2.tree.set("resource-r0/actual-node2/consistency", "consistent").unwrap();
        wait_replay(&mut node2, "r0", end).expect("replayed");
        // A position in another host's log does not count.
        node2.tree.set("resource-r0/replay-node2", "log-000000009-node2,0").unwrap();
        wait_replay(&mut node2, "r0", end).unwrap_err();
        // A secondary that needs a sync fails at once.
        node2.timeout = Duration::from_secs(30);
        node2.tree.set("resource-r0/actual-node2/fetch-state", "needs-sync: logfile 1 is gone on the primary").unwrap();
        let e = wait_replay(&mut node2, "r0", end).unwrap_err().to_string();
        assert!(e.contains("cannot replay node1's log: needs-sync"), "{e}");
        // The primary itself, and a resource without a primary, are refused.
        let e = wait_replay(&mut node1, "r0", end).unwrap_err().to_string();
        assert!(e.contains("node1 is the primary of r0"), "{e}");
        node2.tree.set("resource-r0/primary", "(none)").unwrap();
        let e = wait_replay(&mut node2, "r0", end).unwrap_err().to_string();
        assert!(e.contains("has no primary"), "{e}");
    }

    #[test]
    fn replay_pauses_and_resumes_on_a_secondary_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut node1, _kernel1, mut node2) = primary_and_secondary(dir.path());
        node2.tree.set("resource-r0/actual-node2/fetch-state", "up-to-date").unwrap();
        // The kernel has not paused yet: the switch is set, the wait times out saying so.
        let e = set_replay(&mut node2, "r0", false).unwrap_err().to_string();
        assert!(e.contains("waiting for mars.ko to pause replay (fetch-state says up-to-date)"), "{e}");
        assert_eq!(node2.tree.value("resource-r0/todo-node2/replay").unwrap().as_deref(), Some("0"));
        node2.tree.set("resource-r0/actual-node2/fetch-state", "up-to-date, replay paused").unwrap();
        set_replay(&mut node2, "r0", false).expect("paused");
        node2.tree.set("resource-r0/actual-node2/fetch-state", "fetching").unwrap();
        set_replay(&mut node2, "r0", true).expect("resumed");
        assert_eq!(node2.tree.value("resource-r0/todo-node2/replay").unwrap().as_deref(), Some("1"));
        let e = set_replay(&mut node1, "r0", false).unwrap_err().to_string();
        assert!(e.contains("node1 is the primary of r0"), "{e}");
    }

    #[test]
    fn log_delete_leaves_behind_only_other_members() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut node1, _kernel1, _node2) = primary_and_secondary(dir.path());
        node1.tree.set("resource-r0/actual-node1/is-attached", "1").unwrap();
        let e = log_delete(&mut node1, "r0", &["node3".to_string()]).unwrap_err().to_string();
        assert!(e.contains("node3 is not a member of r0"), "{e}");
        let e = log_delete(&mut node1, "r0", &["node1".to_string()]).unwrap_err().to_string();
        assert!(e.contains("node1 is this host"), "{e}");
        assert_eq!(node1.tree.value("resource-r0/todo-node1/leave-behind").unwrap(), None);
        // Accepted: the list goes with the request (the simulated kernel carries it out).
        let _ = log_delete(&mut node1, "r0", &["node2".to_string()]);
        assert_eq!(node1.tree.value("resource-r0/todo-node1/leave-behind").unwrap().as_deref(), Some("node2"));
    }

    #[test]
    fn rate_limits_are_set_in_bytes_per_second() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_node1, _kernel1, mut node2) = primary_and_secondary(dir.path());
        let done = set_rate(&mut node2, "r0", Switch::SyncRate, "10M").expect("set");
        assert!(done.message.contains("r0: sync rate on node2 limited to 10 MiB/s"), "{}", done.message);
        assert_eq!(node2.tree.value("resource-r0/todo-node2/sync-rate").unwrap().as_deref(), Some("10485760"));
        set_rate(&mut node2, "r0", Switch::FetchRate, "unlimited").expect("set");
        assert_eq!(node2.tree.value("resource-r0/todo-node2/fetch-rate").unwrap().as_deref(), Some("0"));
        for bad in ["fast", "-1", "1.5M"] {
            let e = set_rate(&mut node2, "r0", Switch::FetchRate, bad).unwrap_err().to_string();
            assert!(e.contains("is not a rate"), "{e}");
        }
        assert_eq!(node2.tree.value("resource-r0/todo-node2/fetch-rate").unwrap().as_deref(), Some("0"));
        let e = set_rate(&mut node2, "r9", Switch::SyncRate, "1M").unwrap_err().to_string();
        assert!(e.contains("r9"), "{e}");
    }

    #[test]
    fn join_resource_checks_before_writing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut node1 = member(dir.path());
        let _kernel1 = FakeKernel::start(dir.path());
        create_resource(&mut node1, "r0", Path::new("/dev/vda"), Some(128 << 20), gib).expect("creates");
        create_resource(&mut node1, "r1", Path::new("/dev/vdb"), Some(128 << 20), gib).expect("creates");
        let mut node2 = second_member(dir.path());
        node2.tree.set("resource-r1/data-node2", "/dev/vdc").expect("r1 here");
        let before = snapshot(dir.path());
        let small = |_: &Path| -> Result<u64> { Ok(64 << 20) };
        // Resource, device, its size, the refusal expected.
        type Case<'a> = (&'a str, &'a str, &'a dyn Fn(&Path) -> Result<u64>, &'a str);
        let cases: [Case<'_>; 4] = [
            ("r9", "/dev/vdd", &gib, "unknown resource r9"),
            ("r0", "/dev/vdd", &small, "/dev/vdd holds 67108864 bytes, resource r0 needs 134217728"),
            ("r0", "/dev/vdc", &gib, "/dev/vdc is the data device of resource r1 on this host already"),
            ("r0", "/dev/vdd", &|_: &Path| bail!("/dev/vdd is no block device"), "no block device"),
        ];
        for (res, device, size, expected) in cases {
            let e = join_resource(&mut node2, res, Path::new(device), size).unwrap_err();
            assert!(format!("{e:#}").contains(expected), "{res} {device}: {e:#}");
        }
        assert_eq!(snapshot(dir.path()), before, "a refused join wrote something");
        let mut stranger =
            Ctx { tree: Tree::new(dir.path(), "node3", Stamp::ZERO), host: "node3".into(), timeout: Duration::ZERO };
        let e = join_resource(&mut stranger, "r0", Path::new("/dev/vdd"), gib).unwrap_err();
        assert!(e.to_string().contains("host node3 is not a member"), "{e}");
    }

    #[test]
    fn a_resource_from_creation_to_deletion() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ctx = member(dir.path());
        let _kernel = FakeKernel::start(dir.path());

        let d = create_resource(&mut ctx, "r0", Path::new("/dev/vda"), Some(128 << 20), gib).expect("creates");
        assert_eq!(d.message, "created resource r0: 134217728 bytes on /dev/vda, /dev/mars/r0 is ready on node1");
        for (k, v) in [
            ("resource-r0/size", "134217728"),
            ("resource-r0/data-node1", "/dev/vda"),
            ("resource-r0/device-node1", "r0"),
            ("resource-r0/primary", "node1"),
            ("resource-r0/todo-node1/attach", "1"),
        ] {
            assert_eq!(value(&mut ctx, k).as_deref(), Some(v), "{k}");
        }
        let state = d.state.expect("state");
        assert_eq!((state.is_attached, state.is_primary), (Some(true), Some(true)));

        let d = secondary(&mut ctx, "r0").expect("secondary");
        assert_eq!(d.message, "r0: node1 is secondary, /dev/mars/r0 is gone");
        assert_eq!(value(&mut ctx, "resource-r0/primary").as_deref(), Some("(none)"));
        assert_eq!(d.state.expect("state").is_primary, Some(false));
        let d = primary(&mut ctx, "r0", false).expect("primary");
        assert_eq!(d.message, "r0: node1 is primary, /dev/mars/r0 is ready");

        ctx.tree.set("resource-r0/actual-node1/emergency", "1").unwrap();
        let e = log_rotate(&mut ctx, "r0").unwrap_err();
        assert!(e.to_string().contains("r0 is in emergency mode on node1"), "{e}");
        assert_eq!(value(&mut ctx, "resource-r0/todo-node1/log-rotate"), None, "nothing asked");
        ctx.tree.set("resource-r0/actual-node1/emergency", "0").unwrap();
        let d = log_rotate(&mut ctx, "r0").expect("rotates");
        assert_eq!(d.message, "r0: logfile rotated, now writing log-000000002-node1");
        log_rotate(&mut ctx, "r0").expect("rotates again");
        assert_eq!(value(&mut ctx, "resource-r0/todo-node1/log-rotate").as_deref(), Some("2"));
        let d = log_delete(&mut ctx, "r0", &[]).expect("deletes logs");
        assert_eq!(d.message, "r0: deleted the logfiles that are written back; 0 logfile(s) left");
        assert_eq!(value(&mut ctx, "resource-r0/actual-node1/log-delete").as_deref(), Some("1"));

        let e = delete_resource(&mut ctx, "r0").unwrap_err();
        assert!(e.to_string().contains("is still up on node1: run `marsadm down r0` first"), "{e}");
        let report = down(&mut ctx, &Target::One("r0".into())).expect("down");
        assert_eq!(report.to_string(), "r0: detached on node1\n");
        assert_eq!(value(&mut ctx, "resource-r0/primary").as_deref(), Some("(none)"));
        assert_eq!(value(&mut ctx, "resource-r0/todo-node1/attach").as_deref(), Some("0"));
        let e = primary(&mut ctx, "r0", false).unwrap_err();
        assert!(e.to_string().contains("r0 is down on node1: run `marsadm up r0` first"), "{e}");
        let e = log_delete(&mut ctx, "r0", &[]).unwrap_err();
        assert!(e.to_string().contains("is not attached on node1"), "{e}");

        let d = delete_resource(&mut ctx, "r0").expect("deletes");
        assert_eq!(d.message, "deleted resource r0");
        assert!(!dir.path().join("resource-r0").exists());
        let e = secondary(&mut ctx, "r0").unwrap_err();
        assert!(e.to_string().contains("unknown resource r0"), "{e}");

        // The old delete request must not delete a new resource of the same name.
        create_resource(&mut ctx, "r0", Path::new("/dev/vda"), None, gib).expect("creates again");
        assert_eq!(value(&mut ctx, "todo-global/delete-r0").as_deref(), Some("0"));
        assert_eq!(value(&mut ctx, "resource-r0/size").as_deref(), Some("1073741824"));
    }

    #[test]
    fn up_and_down_all() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ctx = member(dir.path());
        let _kernel = FakeKernel::start(dir.path());
        create_resource(&mut ctx, "r0", Path::new("/dev/vda"), None, gib).expect("creates r0");
        create_resource(&mut ctx, "r1", Path::new("/dev/vdc"), None, gib).expect("creates r1");
        secondary(&mut ctx, "r1").expect("secondary");
        // A resource without a data device here is not part of `all`.
        ctx.tree.set("resource-other/size", "1048576").unwrap();

        let report = down(&mut ctx, &Target::All).expect("down all");
        assert_eq!(report.to_string(), "r0: detached on node1\nr1: detached on node1\n");
        let report = up(&mut ctx, &Target::All).expect("up all");
        assert_eq!(report.to_string(), "r0: attached on node1\nr1: attached on node1\n");
        let json = serde_json::to_value(&report).expect("json");
        assert_eq!(json["results"][0]["command"], "up");
        assert_eq!(json["results"][1]["state"]["is_attached"], true);
        let report = wait_resource(&mut ctx, &Target::One("r0".into())).expect("waits");
        assert_eq!(report.to_string(), "r0: attached on node1\n");
        primary(&mut ctx, "r0", false).expect("primary");
        let report = wait_resource(&mut ctx, &Target::All).expect("waits");
        assert_eq!(report.to_string(), "r0: attached and primary on node1\nr1: attached on node1\n");
        // up on the designated primary brings the device back.
        down(&mut ctx, &Target::One("r1".into())).expect("down r1");
        ctx.tree.set("resource-r1/primary", "node1").unwrap();
        let report = up(&mut ctx, &Target::One("r1".into())).expect("up r1");
        assert_eq!(report.to_string(), "r1: attached on node1, /dev/mars/r1 is ready\n");

        let e = up(&mut ctx, &Target::One("other".into())).unwrap_err();
        assert!(e.to_string().contains("resource other has no data device on host node1"), "{e}");
    }

    #[test]
    fn empty_all_reports_nothing_to_do() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ctx = member(dir.path());
        let report = up(&mut ctx, &Target::All).expect("nothing to do");
        assert!(report.results.is_empty());
        assert_eq!(report.to_string(), "nothing to do: no resource has a data device on this host\n");
    }

    #[test]
    fn create_resource_checks_before_writing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut not_member =
            Ctx { tree: Tree::new(dir.path(), "node1", Stamp::ZERO), host: "node1".into(), timeout: Duration::ZERO };
        let e = create_resource(&mut not_member, "r0", Path::new("/dev/vda"), None, gib).unwrap_err();
        assert!(e.to_string().contains("host node1 is not a member of the cluster"), "{e}");
        assert!(snapshot(dir.path()).is_empty());

        let mut ctx = member(dir.path());
        ctx.tree.set("resource-r1/size", "1048576").unwrap();
        ctx.tree.set("resource-r1/data-node1", "/dev/vdc").unwrap();
        let before = snapshot(dir.path());
        let refused =
            |ctx: &mut Ctx, name: &str, dev: &str, size: Option<u64>, device_size: fn(&Path) -> Result<u64>| {
                create_resource(ctx, name, Path::new(dev), size, device_size).unwrap_err().to_string()
            };
        let e = refused(&mut ctx, "R0", "/dev/vda", None, gib);
        assert!(e.contains("cannot be used as a resource name"), "{e}");
        let e = refused(&mut ctx, &"r".repeat(27), "/dev/vda", None, gib);
        assert!(e.contains("the limit is 26"), "{e}");
        let e = refused(&mut ctx, "r1", "/dev/vda", None, gib);
        assert!(e.contains("resource r1 exists already"), "{e}");
        let e = refused(&mut ctx, "r0", "/dev/vdc", None, gib);
        assert!(e.contains("/dev/vdc is the data device of resource r1"), "{e}");
        let e = refused(&mut ctx, "r0", "/dev/vda", None, |p| Err(anyhow!("{} is in use (mounted)", p.display())));
        assert!(e.contains("/dev/vda is in use"), "{e}");
        let e = refused(&mut ctx, "r0", "/dev/vda", Some(2 * GIB), gib);
        assert!(e.contains("--size 2147483648 is larger than /dev/vda"), "{e}");
        let e = refused(&mut ctx, "r0", "/dev/vda", None, |_| Ok(4096));
        assert!(e.contains("at least 1048576 bytes"), "{e}");
        assert_eq!(snapshot(dir.path()), before);
        ctx.tree.set("todo-global/delete-r1", "1").unwrap();
        let before = snapshot(dir.path());
        let e = refused(&mut ctx, "r1", "/dev/vda", None, gib);
        assert!(e.contains("resource r1 is still being deleted"), "{e}");
        assert_eq!(snapshot(dir.path()), before);
    }

    #[test]
    fn relative_device_paths_are_stored_absolute() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ctx = member(dir.path());
        ctx.timeout = Duration::ZERO;
        let e = create_resource(&mut ctx, "r0", Path::new("vda"), None, gib).unwrap_err();
        assert!(e.to_string().contains("timed out"), "{e}");
        let stored = value(&mut ctx, "resource-r0/data-node1").expect("stored");
        assert!(Path::new(&stored).is_absolute() && stored.ends_with("/vda"), "{stored}");
    }

    #[test]
    fn a_timeout_says_what_was_awaited_and_keeps_the_request() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ctx = member(dir.path());
        ctx.timeout = Duration::from_millis(200);
        let e = create_resource(&mut ctx, "r0", Path::new("/dev/vda"), None, gib).unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains("r0: timed out after 0.2 s waiting for resource-r0/actual-node1/is-attached to be 1"),
            "{e}"
        );
        assert_eq!(value(&mut ctx, "resource-r0/data-node1").as_deref(), Some("/dev/vda"));
        ctx.tree.set("resource-r0/actual-node1/error", "cannot attach data device /dev/vda: error -16").unwrap();
        let e = up(&mut ctx, &Target::One("r0".into())).unwrap_err();
        assert!(
            e.to_string().starts_with("r0: mars.ko on node1 says: cannot attach data device /dev/vda: error -16"),
            "{e}"
        );
    }

    #[test]
    fn secondary_and_down_refuse_while_the_device_is_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ctx = member(dir.path());
        for (k, v) in [
            ("resource-r0/size", "1048576"),
            ("resource-r0/data-node1", "/dev/vda"),
            ("resource-r0/primary", "node1"),
            ("resource-r0/todo-node1/attach", "1"),
            ("resource-r0/actual-node1/is-attached", "1"),
            ("resource-r0/actual-node1/is-primary", "1"),
            ("resource-r0/actual-node1/open-count", "1"),
        ] {
            ctx.tree.set(k, v).unwrap();
        }
        let before = snapshot(dir.path());
        let e = secondary(&mut ctx, "r0").unwrap_err();
        assert!(e.to_string().contains("/dev/mars/r0 is in use on node1 (1 opener(s))"), "{e}");
        assert!(e.to_string().contains("then run `marsadm secondary r0` again"), "{e}");
        let e = down(&mut ctx, &Target::All).unwrap_err();
        assert!(e.to_string().contains("is in use"), "{e}");
        let e = delete_resource(&mut ctx, "r0").unwrap_err();
        assert!(e.to_string().contains("still up"), "{e}");
        assert_eq!(snapshot(dir.path()), before);
    }

    #[test]
    fn primary_respects_another_designated_primary_unless_forced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ctx = member(dir.path());
        let _kernel = FakeKernel::start(dir.path());
        create_resource(&mut ctx, "r0", Path::new("/dev/vda"), None, gib).expect("creates");
        secondary(&mut ctx, "r0").expect("secondary");
        ctx.tree.set("resource-r0/primary", "node2").unwrap();
        let e = primary(&mut ctx, "r0", false).unwrap_err();
        assert!(e.to_string().contains("node2 is the designated primary of r0"), "{e}");
        let e = log_rotate(&mut ctx, "r0").unwrap_err();
        assert!(e.to_string().contains("r0 is not primary on node1"), "{e}");
        primary(&mut ctx, "r0", true).expect("forced");
        assert_eq!(value(&mut ctx, "resource-r0/primary").as_deref(), Some("node1"));
    }

    #[test]
    fn commands_on_unknown_or_deleting_resources_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ctx = member(dir.path());
        ctx.tree.set("resource-r0/size", "1048576").unwrap();
        ctx.tree.set("resource-r0/data-node1", "/dev/vda").unwrap();
        ctx.tree.set("todo-global/delete-r0", "1").unwrap();
        let before = snapshot(dir.path());
        let unknown: [fn(&mut Ctx) -> Result<()>; 7] = [
            |c| primary(c, "nope", false).map(drop),
            |c| secondary(c, "nope").map(drop),
            |c| up(c, &Target::One("nope".into())).map(drop),
            |c| down(c, &Target::One("nope".into())).map(drop),
            |c| log_rotate(c, "nope").map(drop),
            |c| log_delete(c, "nope", &[]).map(drop),
            |c| delete_resource(c, "nope").map(drop),
        ];
        for cmd in unknown {
            let e = cmd(&mut ctx).unwrap_err();
            assert!(e.to_string().starts_with("unknown resource nope: `marsadm view all` lists"), "{e}");
        }
        let e = primary(&mut ctx, "r0", false).unwrap_err();
        assert!(e.to_string().contains("resource r0 is being deleted"), "{e}");
        let e = primary(&mut ctx, "all", false).unwrap_err();
        assert!(e.to_string().contains("takes the name of one resource"), "{e}");
        assert!(up(&mut ctx, &Target::All).expect("skips r0").results.is_empty());
        assert_eq!(snapshot(dir.path()), before);
    }

    #[test]
    fn counters_continue_from_what_the_kernel_carried_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ctx = member(dir.path());
        ctx.tree.set("resource-r0/actual-node1/log-rotate", "7").unwrap();
        assert_eq!(ctx.bump_counter("r0", Switch::LogRotate, Status::LogRotate).unwrap(), 8);
        assert_eq!(ctx.bump_counter("r0", Switch::LogRotate, Status::LogRotate).unwrap(), 9);
        assert_eq!(value(&mut ctx, "resource-r0/todo-node1/log-rotate").as_deref(), Some("9"));
        ctx.tree.set("resource-r0/todo-node1/log-delete", "x").unwrap();
        let e = ctx.bump_counter("r0", Switch::LogDelete, Status::LogDelete).unwrap_err();
        assert!(e.to_string().contains("resource-r0/todo-node1/log-delete holds \"x\", not a number"), "{e}");
    }
}
