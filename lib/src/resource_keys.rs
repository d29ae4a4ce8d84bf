//! The per-host keys of a resource that mars.ko and marsadm both speak: the switches marsadm
//! sets (`resource-RES/todo-HOST/SWITCH`) and the status the module publishes
//! (`resource-RES/actual-HOST/ITEM`), docs/resource-control.md. Each name is spelled once, here,
//! so the two sides cannot drift apart. [`Key`] itself stays open to other names, which hosts
//! running a newer MARS may use.

use super::tree::Key;

/// Separates the causes in the value of [`Status::Error`]: a tree value holds no newline, and
/// `marsadm view` shows one cause per line.
pub const CAUSE_SEPARATOR: &str = "; ";

/// A switch of `resource-RES/todo-HOST/SWITCH`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Switch {
    /// `attach`: `1` to have the data device open (up), `0` for down.
    Attach,
    /// `log-rotate`: a counter; each increment asks the primary for a new logfile.
    LogRotate,
    /// `log-delete`: a counter; each increment asks for the fully applied logfiles to go.
    LogDelete,
    /// `sync`: `1` to copy the primary's data device here when this host's copy is not
    /// consistent (a secondary), `0` to pause that.
    Sync,
    /// `fetch`: `1` to fetch the primary's logfiles (a secondary), `0` to pause that.
    Fetch,
    /// `replay`: `1` to apply the fetched logfiles to the data device (a secondary), `0` to
    /// pause that.
    Replay,
    /// `sync-rate`: the most bytes per second of block data a sync here may fetch, as digits;
    /// `0` or missing: no limit (`token_bucket.rs`).
    SyncRate,
    /// `fetch-rate`: the most bytes per second of logfile data a fetch here may ask for, as
    /// digits; `0` or missing: no limit.
    FetchRate,
    /// `leave-behind`: the members, separated by `,`, whose replay positions the next
    /// log-delete request of the primary does not wait for (empty: it waits for every member).
    LeaveBehind,
}

impl Switch {
    /// The name in the key.
    pub const fn name(self) -> &'static str {
        match self {
            Switch::Attach => "attach",
            Switch::LogRotate => "log-rotate",
            Switch::LogDelete => "log-delete",
            Switch::Sync => "sync",
            Switch::Fetch => "fetch",
            Switch::Replay => "replay",
            Switch::SyncRate => "sync-rate",
            Switch::FetchRate => "fetch-rate",
            Switch::LeaveBehind => "leave-behind",
        }
    }

    /// The key of this switch of `resource` on `host`.
    pub const fn key<'a>(self, resource: &'a str, host: &'a str) -> Key<'a> {
        Key::Switch { resource, host, switch: self.name() }
    }
}

/// A status item of `resource-RES/actual-HOST/ITEM`, published by the module on HOST.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// `is-attached`: `1` while the data device is open.
    IsAttached,
    /// `is-primary`: `1` while `/dev/mars/RES` exists here.
    IsPrimary,
    /// `open-count`: openers of `/dev/mars/RES`.
    OpenCount,
    /// `log`: `LOGFILE,BYTES`, where the log ends; empty unless primary.
    Log,
    /// `writeback-lag`: bytes of the current logfile not yet on the data device.
    WritebackLag,
    /// `emergency`: `1` while logging has stopped on a full /mars.
    Emergency,
    /// `error`: why the module cannot do what the switches ask, causes separated by
    /// [`CAUSE_SEPARATOR`]; empty if nothing is wrong.
    Error,
    /// `log-rotate`: the newest log-rotate request carried out.
    LogRotate,
    /// `log-delete`: the newest log-delete request carried out.
    LogDelete,
    /// `fetch`: `LOGFILE,BYTES`, the end of this secondary's newest copy of the primary's
    /// logfiles; empty unless following a primary.
    Fetch,
    /// `fetch-state`: what the secondary's log is doing, in words (docs/replication.md); empty
    /// unless following a primary.
    FetchState,
    /// `sync`: `DONE TOTAL RATE TRANSFERRED`: bytes of the device compared or copied, the
    /// resource's size, bytes per second in the last run, block data received over the link
    /// since the copy brick started; empty unless following a primary.
    Sync,
    /// `consistency`: `consistent`, or `inconsistent: ` and why (docs/replication.md); empty
    /// unless following a primary.
    Consistency,
    /// `lag`: `BYTES LOGFILES SINCE`: how much of the primary's log (as last listed) replay has
    /// not reached, and since when (wall clock, seconds since the epoch) the device lacks
    /// writes: the last listing whose whole log replay had reached, `-` if none since the fetch
    /// started; empty unless following a primary.
    Lag,
    /// `fetch-work`: `recv=W/C store=W/C sync=W/C replay=W/C`: milliseconds of wall clock (W)
    /// and of CPU (C) the fetch spent receiving log data, appending it to the copies and making
    /// them durable, and replay spent applying them, since the fetch started; empty unless
    /// following a primary.
    FetchWork,
}

impl Status {
    /// The name in the key.
    pub const fn name(self) -> &'static str {
        match self {
            Status::IsAttached => "is-attached",
            Status::IsPrimary => "is-primary",
            Status::OpenCount => "open-count",
            Status::Log => "log",
            Status::WritebackLag => "writeback-lag",
            Status::Emergency => "emergency",
            Status::Error => "error",
            Status::LogRotate => "log-rotate",
            Status::LogDelete => "log-delete",
            Status::Fetch => "fetch",
            Status::FetchState => "fetch-state",
            Status::Sync => "sync",
            Status::Consistency => "consistency",
            Status::Lag => "lag",
            Status::FetchWork => "fetch-work",
        }
    }

    /// The key of this status item of `resource` on `host`.
    pub const fn key<'a>(self, resource: &'a str, host: &'a str) -> Key<'a> {
        Key::Status { resource, host, item: self.name() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_spelled_as_docs_resource_control_says() {
        let k = |key: Key<'_>| key.to_buf().expect("valid key").as_str().to_string();
        assert_eq!(k(Switch::Attach.key("r0", "node1")), "resource-r0/todo-node1/attach");
        assert_eq!(k(Switch::LogDelete.key("r0", "node1")), "resource-r0/todo-node1/log-delete");
        assert_eq!(k(Status::IsPrimary.key("r0", "node1")), "resource-r0/actual-node1/is-primary");
        assert_eq!(k(Status::WritebackLag.key("r0", "node1")), "resource-r0/actual-node1/writeback-lag");
    }

    #[test]
    fn keys_parse_back() {
        for s in [
            Status::IsAttached,
            Status::IsPrimary,
            Status::OpenCount,
            Status::Log,
            Status::WritebackLag,
            Status::Emergency,
            Status::Error,
            Status::LogRotate,
            Status::LogDelete,
            Status::Fetch,
            Status::FetchState,
            Status::Sync,
            Status::Consistency,
            Status::Lag,
            Status::FetchWork,
        ] {
            let buf = s.key("r0", "node1").to_buf().expect("valid key");
            assert_eq!(Key::parse(buf.as_str()), Some(s.key("r0", "node1")), "{s:?}");
        }
        for s in [
            Switch::Attach,
            Switch::LogRotate,
            Switch::LogDelete,
            Switch::Sync,
            Switch::Fetch,
            Switch::Replay,
            Switch::SyncRate,
            Switch::FetchRate,
            Switch::LeaveBehind,
        ] {
            let buf = s.key("r0", "node1").to_buf().expect("valid key");
            assert_eq!(Key::parse(buf.as_str()), Some(s.key("r0", "node1")), "{s:?}");
        }
    }
}
