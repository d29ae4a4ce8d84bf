//! `marsadm view`: the module's status and, per resource, its state on this host from the tree.

use std::fmt;

use anyhow::{bail, Context, Result};
use mars_core::resource_keys::{Status, Switch, CAUSE_SEPARATOR};
use mars_core::token_bucket::Rate;
use mars_core::tree::Key;
use serde::Serialize;

use crate::checks::{unknown_resource, Target};
use crate::members::MemberView;
use crate::module_status::ModuleStatus;
use crate::tree::{key, Tree};

/// The value of `resource-RES/primary` when no host is primary.
pub const NO_PRIMARY: &str = "(none)";

/// The state of one resource on one host, as the tree holds it. `None`: the key is not set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceView {
    /// The resource.
    pub name: String,
    /// The host whose state this is.
    pub host: String,
    /// Size in bytes (`size`).
    pub size: Option<u64>,
    /// The host's backing block device (`data-HOST`).
    pub data_device: Option<String>,
    /// The device the resource appears as on the host, `/dev/mars/NAME` (`device-HOST`).
    pub device: Option<String>,
    /// The designated primary host; `None` also for `(none)` (`primary`).
    pub primary: Option<String>,
    /// The attach switch (`todo-HOST/attach`).
    pub attach: Option<bool>,
    /// The kernel attached the backing device and replayed the log (`actual-HOST/is-attached`).
    pub is_attached: Option<bool>,
    /// The device exists on the host (`actual-HOST/is-primary`).
    pub is_primary: Option<bool>,
    /// Openers of the device (`actual-HOST/open-count`).
    pub open_count: Option<u64>,
    /// The logfile being written (`actual-HOST/log`, before the comma).
    pub log_file: Option<String>,
    /// Bytes in that logfile (`actual-HOST/log`, after the comma).
    pub log_bytes: Option<u64>,
    /// Bytes logged but not yet durable on the backing device (`actual-HOST/writeback-lag`).
    pub writeback_lag: Option<u64>,
    /// /mars ran full and the resource stopped logging (`actual-HOST/emergency`).
    pub emergency: Option<bool>,
    /// How far the data device holds the log, `LOGFILE,BYTES` (`replay-HOST`): on a secondary,
    /// in the primary's logfiles.
    pub replay: Option<String>,
    /// A secondary's newest copy of the primary's logfiles, `LOGFILE,BYTES` (`actual-HOST/fetch`).
    pub fetch: Option<String>,
    /// What a secondary's fetch is doing (`actual-HOST/fetch-state`): `starting`, `fetching`,
    /// `up-to-date`, or why it cannot go on (`needs-sync: ...`, `diverged: ...`, `damaged: ...`).
    pub fetch_state: Option<String>,
    /// A secondary's sync as stored (`syncstatus-HOST`): `wanted`, or `DONE/TOTAL`, maybe with
    /// ` full`.
    pub sync_status: Option<String>,
    /// A secondary's copy as it runs (`actual-HOST/sync`).
    pub sync: Option<SyncProgress>,
    /// What a secondary's data device may be claimed to be (`actual-HOST/consistency`):
    /// `consistent`, or `inconsistent: ` and why.
    pub consistency: Option<String>,
    /// How far a secondary's replay is behind its primary's log (`actual-HOST/lag`).
    pub lag: Option<ReplayLag>,
    /// This host's sync rate limit in bytes per second, 0: none (`todo-HOST/sync-rate`).
    pub sync_rate: u64,
    /// This host's fetch rate limit in bytes per second, 0: none (`todo-HOST/fetch-rate`).
    pub fetch_rate: u64,
    /// What the kernel refuses or failed to do (`actual-HOST/error`); `None` when empty.
    pub error: Option<String>,
    /// `todo-global/delete-RES` is set: the resource is being deleted.
    pub deleting: bool,
}

/// A secondary's copy as mars.ko reports it (`actual-HOST/sync`: `DONE TOTAL RATE TRANSFERRED`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SyncProgress {
    /// Bytes of the device compared or copied.
    pub done: u64,
    /// Bytes in all (the resource's size).
    pub total: u64,
    /// Bytes done per second lately.
    pub rate: u64,
    /// Block data received over the link since the copy brick started.
    pub transferred: u64,
}

/// How far a secondary's replay is behind (`actual-HOST/lag`: `BYTES LOGFILES SINCE`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReplayLag {
    /// Bytes of the primary's log (as last listed) not replayed here.
    pub bytes: u64,
    /// Logfiles of it after the one replay is in.
    pub logfiles: u32,
    /// Since when (seconds since the epoch) the device lacks writes of the primary: the last
    /// listing of its log that replay had wholly reached; `None` if none since the fetch started.
    pub since: Option<u64>,
    /// Seconds behind: now minus `since` (0 when nothing is missing; `None` if unknown).
    pub seconds: Option<u64>,
}

impl ReplayLag {
    /// The lag in `value`, with `now` in seconds since the epoch; `None` if malformed.
    pub fn parse(value: &str, now: u64) -> Option<ReplayLag> {
        let mut w = value.split(' ');
        let bytes = w.next()?.parse().ok()?;
        let logfiles = w.next()?.parse().ok()?;
        let since = match w.next()? {
            "-" => None,
            s => Some(s.parse().ok()?),
        };
        if w.next().is_some() {
            return None;
        }
        let seconds = if bytes == 0 { Some(0) } else { since.map(|s: u64| now.saturating_sub(s)) };
        Some(ReplayLag { bytes, logfiles, since, seconds })
    }
}

impl SyncProgress {
    /// The progress in `value`; `None` if it is not four numbers.
    pub fn parse(value: &str) -> Option<SyncProgress> {
        let mut n = value.split(' ').map(|w| w.parse::<u64>().ok());
        let p = SyncProgress { done: n.next()??, total: n.next()??, rate: n.next()??, transferred: n.next()?? };
        (n.next().is_none() && p.done <= p.total).then_some(p)
    }

    /// Seconds left at the current rate, if it moves.
    pub fn eta_secs(&self) -> Option<u64> {
        (self.rate > 0).then(|| (self.total - self.done).div_ceil(self.rate))
    }
}

/// Reads the state of resource `res` on `host` from `tree`.
pub fn read_resource(tree: &mut Tree, res: &str, host: &str) -> Result<ResourceView> {
    let mut r = Reader { tree };
    let status = |item: Status| item.key(res, host);
    let (log_file, log_bytes) = match r.text(status(Status::Log))? {
        None => (None, None),
        Some(v) if v.is_empty() => (None, None),
        Some(v) => {
            let (file, bytes) = v
                .rsplit_once(',')
                .with_context(|| format!("resource-{res}/actual-{host}/log holds {v:?}, expected LOGFILE,BYTES"))?;
            (Some(file.to_string()), Some(parse_number(status(Status::Log), bytes)?))
        }
    };
    Ok(ResourceView {
        name: res.to_string(),
        host: host.to_string(),
        size: r.number(Key::Size { resource: res })?,
        data_device: r.text(Key::DataDevice { resource: res, host })?,
        device: r.text(Key::DeviceName { resource: res, host })?.map(|d| format!("/dev/mars/{d}")),
        primary: r.text(Key::Primary { resource: res })?.filter(|p| p != NO_PRIMARY),
        attach: r.flag(Switch::Attach.key(res, host))?,
        is_attached: r.flag(status(Status::IsAttached))?,
        is_primary: r.flag(status(Status::IsPrimary))?,
        open_count: r.number(status(Status::OpenCount))?,
        log_file,
        log_bytes,
        writeback_lag: r.number(status(Status::WritebackLag))?,
        emergency: r.flag(status(Status::Emergency))?,
        replay: r.text(Key::ReplayPosition { resource: res, host })?.filter(|v| !v.is_empty()),
        fetch: r.text(status(Status::Fetch))?.filter(|v| !v.is_empty()),
        fetch_state: r.text(status(Status::FetchState))?.filter(|v| !v.is_empty()),
        sync_status: r.text(Key::SyncStatus { resource: res, host })?.filter(|v| !v.is_empty()),
        sync: match r.text(status(Status::Sync))?.filter(|v| !v.is_empty()) {
            None => None,
            Some(v) => Some(SyncProgress::parse(&v).with_context(|| {
                format!("resource-{res}/actual-{host}/sync holds {v:?}, expected DONE TOTAL RATE TRANSFERRED")
            })?),
        },
        consistency: r.text(status(Status::Consistency))?.filter(|v| !v.is_empty()),
        lag: match r.text(status(Status::Lag))?.filter(|v| !v.is_empty()) {
            None => None,
            Some(v) => {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
                Some(ReplayLag::parse(&v, now).with_context(|| {
                    format!("resource-{res}/actual-{host}/lag holds {v:?}, expected BYTES LOGFILES SINCE")
                })?)
            }
        },
        sync_rate: r.number(Switch::SyncRate.key(res, host))?.unwrap_or(0),
        fetch_rate: r.number(Switch::FetchRate.key(res, host))?.unwrap_or(0),
        error: r.text(status(Status::Error))?.filter(|e| !e.is_empty()),
        deleting: r.text(Key::GlobalRequest { item: &format!("delete-{res}") })?.as_deref() == Some("1"),
    })
}

/// Reads typed values from the tree; a value of the wrong form is an error naming its key.
struct Reader<'t> {
    tree: &'t mut Tree,
}

impl Reader<'_> {
    /// The value of `k` unless missing or deleted.
    fn text(&mut self, k: Key<'_>) -> Result<Option<String>> {
        self.tree.value(&key(k)?)
    }

    /// The value of `k` as a decimal number.
    fn number(&mut self, k: Key<'_>) -> Result<Option<u64>> {
        self.text(k)?.map(|v| parse_number(k, &v)).transpose()
    }

    /// The value of `k` as a flag, `1` or `0`.
    fn flag(&mut self, k: Key<'_>) -> Result<Option<bool>> {
        match self.text(k)?.as_deref() {
            None => Ok(None),
            Some("1") => Ok(Some(true)),
            Some("0") => Ok(Some(false)),
            Some(v) => bail!("{} holds {v:?}, expected 1 or 0", key(k)?),
        }
    }
}

/// `value` of key `k` as a decimal number.
fn parse_number(k: Key<'_>, value: &str) -> Result<u64> {
    value.parse().with_context(|| format!("{} holds {value:?}, not a number", key(k).unwrap_or_default()))
}

/// What `marsadm view` shows: the module, then the resources.
#[derive(Debug, Serialize)]
pub struct View {
    /// `/proc/mars/status`.
    #[serde(flatten)]
    pub module: ModuleStatus,
    /// The cluster's members (`view all` only).
    pub members: Vec<MemberView>,
    /// The state of each resource shown, on this host.
    pub resource_states: Vec<ResourceView>,
}

/// The view of `target` on `host`: one resource (which must exist), or every existing one.
pub fn view(module: ModuleStatus, tree: &mut Tree, host: &str, target: &Target) -> Result<View> {
    let names = match target {
        Target::One(name) => {
            if !tree.resource_exists(name)? {
                return Err(unknown_resource(name));
            }
            vec![name.clone()]
        }
        Target::All => {
            let mut names = Vec::new();
            for name in tree.resource_dirs()? {
                if tree.resource_exists(&name)? {
                    names.push(name);
                }
            }
            names
        }
    };
    let resource_states = names.iter().map(|n| read_resource(tree, n, host)).collect::<Result<_>>()?;
    Ok(View { module, members: Vec::new(), resource_states })
}

impl fmt::Display for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.module)?;
        if !self.members.is_empty() {
            writeln!(f, "members ({}):", self.members.len())?;
            for m in &self.members {
                writeln!(f, "{m}")?;
            }
        }
        for r in &self.resource_states {
            write!(f, "\n{r}")?;
        }
        Ok(())
    }
}

/// Shows `bytes` with a binary unit, e.g. `128 MiB (134217728 bytes)`.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    let mut unit = None;
    let mut scaled = bytes as f64;
    for u in UNITS {
        if scaled < 1024.0 {
            break;
        }
        scaled /= 1024.0;
        unit = Some(u);
    }
    match unit {
        Some(u) if scaled.fract() == 0.0 => format!("{scaled} {u} ({bytes} bytes)"),
        Some(u) => format!("{scaled:.1} {u} ({bytes} bytes)"),
        None => format!("{bytes} bytes"),
    }
}

/// Shows a `LOGFILE,BYTES` position as `LOGFILE at SIZE`, or `-`.
fn log_position(v: Option<&str>) -> String {
    match v.and_then(|v| v.rsplit_once(',')) {
        Some((file, bytes)) => match bytes.parse::<u64>() {
            Ok(n) => format!("{file} at {}", human_bytes(n)),
            Err(_) => format!("{file} at {bytes}?"),
        },
        None => v.unwrap_or("-").to_string(),
    }
}

/// Shows an optional value, or `-` when it is not set.
fn or_dash<T: fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

impl fmt::Display for ResourceView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "resource {} on {}{}", self.name, self.host, if self.deleting { " (being deleted)" } else { "" })?;
        writeln!(f, "  size          {}", or_dash(self.size.map(human_bytes)))?;
        writeln!(f, "  data device   {}", or_dash(self.data_device.as_deref()))?;
        writeln!(f, "  device        {}", or_dash(self.device.as_deref()))?;
        writeln!(f, "  primary       {}", self.primary.as_deref().unwrap_or(NO_PRIMARY))?;
        let switch = match self.attach {
            Some(true) => "up (attach 1)",
            Some(false) => "down (attach 0)",
            None => "-",
        };
        writeln!(f, "  switch        {switch}")?;
        let state = match (self.is_attached, self.is_primary) {
            // No data device here: nothing for this host's module to report.
            (None, None) if self.data_device.is_none() => "not set up on this host (no data device)".to_string(),
            (None, None) => "not reported by mars.ko yet".to_string(),
            (attached, primary) => {
                let attached = if attached == Some(true) { "attached" } else { "detached" };
                match primary {
                    Some(true) => format!("{attached}, primary, {} opener(s)", or_dash(self.open_count)),
                    _ => format!("{attached}, secondary"),
                }
            }
        };
        writeln!(f, "  state         {state}")?;
        let log = match (&self.log_file, self.log_bytes) {
            (Some(file), Some(n)) => format!("{file} at {}", human_bytes(n)),
            _ => "-".to_string(),
        };
        writeln!(f, "  log           {log}")?;
        writeln!(
            f,
            "  write-back    {}",
            self.writeback_lag.map_or_else(|| "-".to_string(), |n| format!("{} behind", human_bytes(n)))
        )?;
        let emergency = match self.emergency {
            Some(true) => "YES: /mars ran full, logging stopped (a full sync is needed later)",
            Some(false) => "no",
            None => "-",
        };
        writeln!(f, "  emergency     {emergency}")?;
        if self.fetch_state.is_some() || self.fetch.is_some() {
            writeln!(
                f,
                "  fetch         {} ({})",
                log_position(self.fetch.as_deref()),
                self.fetch_state.as_deref().unwrap_or("-")
            )?;
        }
        if self.replay.is_some() {
            writeln!(f, "  replay        {}", log_position(self.replay.as_deref()))?;
        }
        if let Some(l) = &self.lag {
            let lag = match (l.bytes, l.seconds) {
                (0, _) => "none: replay has reached the primary's log as last listed".to_string(),
                (n, Some(s)) => {
                    format!("{} not replayed, {} newer logfile(s), {s} s behind", human_bytes(n), l.logfiles)
                }
                (n, None) => format!(
                    "{} not replayed, {} newer logfile(s), not caught up since the fetch started",
                    human_bytes(n),
                    l.logfiles
                ),
            };
            writeln!(f, "  lag           {lag}")?;
        }
        if self.sync_rate != 0 || self.fetch_rate != 0 {
            writeln!(f, "  rate limits   sync {}, fetch {}", Rate(self.sync_rate), Rate(self.fetch_rate))?;
        }
        if let Some(p) = &self.sync {
            let percent = p.done.saturating_mul(100).checked_div(p.total).unwrap_or(100);
            let running = match (p.done < p.total, p.eta_secs()) {
                (false, _) => "complete".to_string(),
                (true, Some(eta)) => format!("{}/s, {eta} s left", human_bytes(p.rate)),
                (true, None) => "not moving".to_string(),
            };
            writeln!(
                f,
                "  sync          {} of {} ({percent}%), {running}; {} over the link",
                human_bytes(p.done),
                human_bytes(p.total),
                human_bytes(p.transferred)
            )?;
        }
        if let Some(c) = &self.consistency {
            writeln!(f, "  consistency   {c}")?;
        }
        // One cause per line.
        let mut causes = self.error.as_deref().unwrap_or("none").split(CAUSE_SEPARATOR);
        writeln!(f, "  error         {}", causes.next().unwrap_or("none"))?;
        for cause in causes {
            writeln!(f, "                {cause}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mars_core::lamport::{HostId, Stamp};

    fn module() -> ModuleStatus {
        ModuleStatus {
            version: "0.1.0".into(),
            uptime_seconds: 42,
            resources: 1,
            cluster: "member".into(),
            lamport: Stamp::new(0, HostId(0)),
            port: None,
            listen: None,
            listen_error: None,
            peers: vec![],
        }
    }

    /// A tree with r0 primary on node1, as the kernel reports it.
    fn primary_tree(dir: &std::path::Path) -> Tree {
        let mut tree = Tree::new(dir, "node1", Stamp::ZERO);
        for (k, v) in [
            ("resource-r0/size", "134217728"),
            ("resource-r0/data-node1", "/dev/vda"),
            ("resource-r0/device-node1", "r0"),
            ("resource-r0/primary", "node1"),
            ("resource-r0/todo-node1/attach", "1"),
            ("resource-r0/actual-node1/is-attached", "1"),
            ("resource-r0/actual-node1/is-primary", "1"),
            ("resource-r0/actual-node1/open-count", "2"),
            ("resource-r0/actual-node1/log", "log-000000001-node1,4096"),
            ("resource-r0/actual-node1/writeback-lag", "0"),
            ("resource-r0/actual-node1/emergency", "0"),
            ("resource-r0/actual-node1/error", ""),
        ] {
            tree.set(k, v).unwrap();
        }
        tree
    }

    #[test]
    fn reads_a_primary_resource() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut tree = primary_tree(dir.path());
        let v = read_resource(&mut tree, "r0", "node1").expect("reads");
        assert_eq!(
            v,
            ResourceView {
                name: "r0".into(),
                host: "node1".into(),
                size: Some(134217728),
                data_device: Some("/dev/vda".into()),
                device: Some("/dev/mars/r0".into()),
                primary: Some("node1".into()),
                attach: Some(true),
                is_attached: Some(true),
                is_primary: Some(true),
                open_count: Some(2),
                log_file: Some("log-000000001-node1".into()),
                log_bytes: Some(4096),
                writeback_lag: Some(0),
                emergency: Some(false),
                replay: None,
                fetch: None,
                fetch_state: None,
                sync_status: None,
                sync: None,
                consistency: None,
                lag: None,
                sync_rate: 0,
                fetch_rate: 0,
                error: None,
                deleting: false,
            }
        );
        assert_eq!(
            v.to_string(),
            "resource r0 on node1\n\
             \x20 size          128 MiB (134217728 bytes)\n\
             \x20 data device   /dev/vda\n\
             \x20 device        /dev/mars/r0\n\
             \x20 primary       node1\n\
             \x20 switch        up (attach 1)\n\
             \x20 state         attached, primary, 2 opener(s)\n\
             \x20 log           log-000000001-node1 at 4 KiB (4096 bytes)\n\
             \x20 write-back    0 bytes behind\n\
             \x20 emergency     no\n\
             \x20 error         none\n"
        );
    }

    #[test]
    fn a_new_resource_shows_what_is_not_reported_yet() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut tree = Tree::new(dir.path(), "node1", Stamp::ZERO);
        tree.set("resource-r0/size", "1572864").unwrap();
        tree.set("resource-r0/primary", "(none)").unwrap();
        tree.set("resource-r0/data-node1", "/dev/vda").unwrap();
        tree.set("resource-r0/actual-node1/log", "").unwrap();
        tree.set("resource-r0/actual-node1/error", "cannot attach data device /dev/vda: error -16").unwrap();
        tree.set("todo-global/delete-r0", "1").unwrap();
        let v = read_resource(&mut tree, "r0", "node1").expect("reads");
        assert_eq!((v.primary.as_deref(), v.log_file.as_deref(), v.deleting), (None, None, true));
        let text = v.to_string();
        assert!(
            text.starts_with("resource r0 on node1 (being deleted)\n  size          1.5 MiB (1572864 bytes)\n"),
            "{text}"
        );
        assert!(
            text.contains("  primary       (none)\n  switch        -\n  state         not reported by mars.ko yet\n"),
            "{text}"
        );
        assert!(text.contains("  error         cannot attach data device /dev/vda: error -16\n"), "{text}");
        // A resource with no data device here has nothing to report on this host.
        let v = read_resource(&mut tree, "r0", "node2").expect("reads");
        assert!(v.to_string().contains("  state         not set up on this host (no data device)\n"));
        tree.set("resource-r0/actual-node1/error", "cannot attach data device /dev/vda: EBUSY (device or resource busy); resource-r0/size is missing: not attaching").unwrap();
        let text = read_resource(&mut tree, "r0", "node1").unwrap().to_string();
        assert!(
            text.contains("  error         cannot attach data device /dev/vda: EBUSY (device or resource busy)\n                resource-r0/size is missing: not attaching\n"),
            "{text}"
        );
    }

    #[test]
    fn a_secondary_shows_its_fetch_and_replay() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut tree = primary_tree(dir.path());
        tree.set("resource-r0/data-node2", "/dev/vdc").unwrap();
        tree.set("resource-r0/actual-node2/is-attached", "1").unwrap();
        tree.set("resource-r0/actual-node2/is-primary", "0").unwrap();
        tree.set("resource-r0/actual-node2/fetch", "log-000000003-node1,2097152").unwrap();
        tree.set("resource-r0/actual-node2/fetch-state", "fetching").unwrap();
        tree.set("resource-r0/replay-node2", "log-000000003-node1,1048576").unwrap();
        let v = read_resource(&mut tree, "r0", "node2").expect("reads");
        assert_eq!(v.fetch_state.as_deref(), Some("fetching"));
        let text = v.to_string();
        assert!(text.contains("  state         attached, secondary\n"), "{text}");
        assert!(
            text.contains(
                "  fetch         log-000000003-node1 at 2 MiB (2097152 bytes) (fetching)\n  \
                 replay        log-000000003-node1 at 1 MiB (1048576 bytes)\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_secondary_shows_its_lag_and_rate_limits() {
        assert_eq!(
            ReplayLag::parse("3145728 2 1000", 1042),
            Some(ReplayLag { bytes: 3 << 20, logfiles: 2, since: Some(1000), seconds: Some(42) })
        );
        assert_eq!(ReplayLag::parse("0 0 1000", 1042).and_then(|l| l.seconds), Some(0));
        assert_eq!(ReplayLag::parse("5 0 -", 1042).map(|l| (l.since, l.seconds)), Some((None, None)));
        for bad in ["", "1 2", "1 2 3 4", "x 0 -", "1 0 soon"] {
            assert_eq!(ReplayLag::parse(bad, 0), None, "{bad:?}");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let mut tree = primary_tree(dir.path());
        tree.set("resource-r0/data-node2", "/dev/vdc").unwrap();
        tree.set("resource-r0/actual-node2/lag", "3145728 2 -").unwrap();
        tree.set("resource-r0/todo-node2/sync-rate", "10485760").unwrap();
        let text = read_resource(&mut tree, "r0", "node2").expect("reads").to_string();
        assert!(
            text.contains(
                "  lag           3 MiB (3145728 bytes) not replayed, 2 newer logfile(s), not caught up since the \
                 fetch started
  rate limits   sync 10 MiB/s, fetch unlimited
"
            ),
            "{text}"
        );
        tree.set("resource-r0/actual-node2/lag", "0 0 1").unwrap();
        let text = read_resource(&mut tree, "r0", "node2").expect("reads").to_string();
        assert!(
            text.contains(
                "  lag           none: replay has reached the primary's log as last listed
"
            ),
            "{text}"
        );
        tree.set("resource-r0/actual-node2/lag", "soon").unwrap();
        let e = read_resource(&mut tree, "r0", "node2").unwrap_err();
        assert!(format!("{e:#}").contains("resource-r0/actual-node2/lag holds \"soon\""), "{e:#}");
    }

    #[test]
    fn malformed_status_values_name_their_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut tree = primary_tree(dir.path());
        tree.set("resource-r0/actual-node1/is-primary", "yes").unwrap();
        let e = read_resource(&mut tree, "r0", "node1").unwrap_err();
        assert!(e.to_string().contains("resource-r0/actual-node1/is-primary holds \"yes\", expected 1 or 0"), "{e}");
        tree.set("resource-r0/actual-node1/is-primary", "1").unwrap();
        tree.set("resource-r0/actual-node1/log", "log-000000001-node1").unwrap();
        let e = read_resource(&mut tree, "r0", "node1").unwrap_err();
        assert!(e.to_string().contains("expected LOGFILE,BYTES"), "{e}");
        tree.set("resource-r0/actual-node1/log", "log-000000001-node1,many").unwrap();
        let e = read_resource(&mut tree, "r0", "node1").unwrap_err();
        assert!(e.to_string().contains("actual-node1/log holds \"many\", not a number"), "{e}");
    }

    #[test]
    fn views_one_or_all_resources() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut tree = primary_tree(dir.path());
        std::fs::create_dir(dir.path().join("resource-gone")).unwrap();
        let all = view(module(), &mut tree, "node1", &Target::All).expect("views");
        assert_eq!(all.resource_states.len(), 1);
        let one = view(module(), &mut tree, "node1", &Target::One("r0".into())).expect("views");
        assert_eq!(one.resource_states, all.resource_states);
        let e = view(module(), &mut tree, "node1", &Target::One("gone".into())).unwrap_err();
        assert!(e.to_string().contains("unknown resource gone"), "{e}");
        let text = all.to_string();
        assert!(text.starts_with("mars.ko 0.1.0 loaded, up 42 s, 1 resource(s)\ncluster: this host is a cluster member\n\nresource r0 on node1\n"), "{text}");
        let json = serde_json::to_value(&all).expect("json");
        assert_eq!(json["resources"], 1);
        assert_eq!(json["cluster"], "member");
        assert_eq!(json["resource_states"][0]["name"], "r0");
        assert_eq!(json["resource_states"][0]["is_primary"], true);
        assert_eq!(json["resource_states"][0]["error"], serde_json::Value::Null);
    }

    #[test]
    fn an_empty_mars_shows_the_module_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut tree = Tree::new(&dir.path().join("missing"), "node1", Stamp::ZERO);
        let v = view(module(), &mut tree, "node1", &Target::All).expect("views");
        assert!(v.resource_states.is_empty());
        assert_eq!(v.to_string(), module().to_string());
        let json = serde_json::to_string_pretty(&v).expect("json");
        assert_eq!(json.matches("\"resources\": 1").count(), 1, "{json}");
    }
}
