//! When a host the tree designates primary may begin logging: at once, after a planned
//! handover, or forced.
//!
//! Pure: mars.ko's strategy gathers the facts each round (drivers/strategy.rs) and begins
//! logging only on [`Switchover::Now`]. The rule (docs/replication.md, "Handover"):
//!
//! - The history's newest writer is the origin of the furthest replay position any host
//!   published ([`newest_writer`]; a primary publishes its own, in its log). If that is this host
//!   (or nobody: a new resource) and no other host is known to log, it begins at once.
//! - Otherwise the history's newest logfiles are another host's, the previous primary's. A
//!   planned handover waits until that host has stopped logging (its `is-primary` is 0) and
//!   this host has fetched and replayed all of its log, as listed after it stopped: no
//!   acknowledged write is lost.
//! - With fetch switched off here (`marsadm primary --force` does that), the host begins with
//!   what its device holds: a forced failover. The previous primary's writes not replayed here
//!   are not in the new history; if it goes on writing, the histories fork (split brain).
//! - Never on a device that is not a consistent image (a sync not finished), forced or not.
//!
//! What a host knows of the others comes with the tree exchange, a round late: a designation
//! made before the tree has carried the previous primary's start to this host is not covered
//! (docs/replication.md, "Handover and failover").

use super::fetch::LogPosition;

/// What a designated primary observed, for [`switchover`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Facts<'a> {
    /// This host.
    pub host: &'a str,
    /// The history's newest writer ([`newest_writer`]); `None`: no host has a position.
    pub previous: Option<&'a str>,
    /// Another host than `previous` (or this one) whose `is-primary` is 1 here.
    pub others_logging: Option<&'a str>,
    /// Fetch is switched off here (`todo-HOST/fetch` = 0): take over with what the device holds.
    pub forced: bool,
    /// The previous primary's `actual-HOST/is-primary` in this host's tree; `None`: not there.
    pub old_logging: Option<bool>,
    /// The device is a consistent image of the history (`sync::consistency`).
    pub consistent: bool,
    /// The fetch from the previous primary listed its log after this host had seen it stopped,
    /// and has fetched and replayed all of it.
    pub caught_up: bool,
}

/// Whether to begin logging now, and if not, why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Switchover<'a> {
    /// Begin logging now.
    Now,
    /// The previous primary still logs, or is not known to have stopped.
    OldPrimaryLogging {
        /// The previous primary.
        old: &'a str,
    },
    /// The previous primary has stopped; the rest of its log is being fetched and replayed.
    CatchingUp {
        /// The previous primary.
        old: &'a str,
    },
    /// The device is not a consistent image: it may not become primary.
    NotConsistent,
}

/// The rule of the module documentation.
pub fn switchover<'a>(f: &Facts<'a>) -> Switchover<'a> {
    let old = f.previous.filter(|p| *p != f.host);
    if old.is_none() && f.others_logging.is_none() {
        return Switchover::Now;
    }
    if !f.consistent {
        return Switchover::NotConsistent;
    }
    if f.forced {
        return Switchover::Now;
    }
    if let Some(other) = f.others_logging {
        return Switchover::OldPrimaryLogging { old: other };
    }
    let Some(old) = old else {
        return Switchover::Now;
    };
    if f.old_logging != Some(false) {
        return Switchover::OldPrimaryLogging { old };
    }
    if !f.caught_up {
        return Switchover::CatchingUp { old };
    }
    Switchover::Now
}

/// The origin of the furthest of `positions` (each host's published replay position and the
/// origin of the logfile it lies in): the host whose log the history ends with, as far as this
/// host knows. Numbers are the history's, so the furthest position is in its newest logfile.
pub fn newest_writer<'a>(positions: impl IntoIterator<Item = (LogPosition, &'a str)>) -> Option<&'a str> {
    positions.into_iter().max_by_key(|(pos, _)| *pos).map(|(_, origin)| origin)
}

impl core::fmt::Display for Switchover<'_> {
    /// The words `actual-HOST/switchover` shows (docs/replication.md).
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Switchover::Now => f.write_str("now"),
            Switchover::OldPrimaryLogging { old } => write!(f, "waiting for {old} to stop being primary"),
            Switchover::CatchingUp { old } => write!(f, "fetching and replaying the rest of {old}'s log"),
            Switchover::NotConsistent => f.write_str("refused: the data device is not consistent (sync not finished)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLANNED: Facts<'static> = Facts {
        host: "b",
        previous: Some("a"),
        others_logging: None,
        forced: false,
        old_logging: Some(false),
        consistent: true,
        caught_up: true,
    };

    #[test]
    fn the_newest_writer_begins_at_once() {
        assert_eq!(switchover(&Facts { previous: None, consistent: false, ..PLANNED }), Switchover::Now);
        assert_eq!(switchover(&Facts { previous: Some("b"), old_logging: None, ..PLANNED }), Switchover::Now);
    }

    #[test]
    fn a_planned_handover_waits_for_the_old_primary_and_its_whole_log() {
        assert_eq!(switchover(&PLANNED), Switchover::Now);
        let logging = Facts { old_logging: Some(true), caught_up: false, ..PLANNED };
        assert_eq!(switchover(&logging), Switchover::OldPrimaryLogging { old: "a" });
        assert_eq!(switchover(&Facts { old_logging: None, ..PLANNED }), Switchover::OldPrimaryLogging { old: "a" });
        assert_eq!(switchover(&Facts { caught_up: false, ..PLANNED }), Switchover::CatchingUp { old: "a" });
    }

    #[test]
    fn forced_takes_what_is_here_but_never_an_inconsistent_device() {
        let forced = Facts { forced: true, old_logging: Some(true), caught_up: false, ..PLANNED };
        assert_eq!(switchover(&forced), Switchover::Now);
        assert_eq!(switchover(&Facts { consistent: false, ..forced }), Switchover::NotConsistent);
        assert_eq!(switchover(&Facts { consistent: false, ..PLANNED }), Switchover::NotConsistent);
    }

    #[test]
    fn another_host_logging_is_waited_for_even_by_the_newest_writer() {
        let back = Facts { host: "a", previous: Some("a"), others_logging: Some("c"), ..PLANNED };
        assert_eq!(switchover(&back), Switchover::OldPrimaryLogging { old: "c" });
        assert_eq!(switchover(&Facts { forced: true, ..back }), Switchover::Now);
        assert_eq!(switchover(&Facts { others_logging: None, consistent: false, ..back }), Switchover::Now);
    }

    #[test]
    fn the_newest_writer_is_the_origin_of_the_furthest_position() {
        let at = |seq, offset| LogPosition { seq, offset };
        assert_eq!(newest_writer([(at(5, 100), "a"), (at(6, 0), "c"), (at(5, 40), "a")]), Some("c"));
        assert_eq!(newest_writer([(at(5, 100), "a"), (at(5, 40), "a")]), Some("a"));
        assert_eq!(newest_writer(core::iter::empty()), None);
    }

    #[test]
    fn every_combination_waits_unless_safe_or_forced() {
        for bits in 0..32u32 {
            let bit = |i: u32| bits >> i & 1 == 1;
            let f = Facts {
                forced: bit(0),
                old_logging: if bit(1) { None } else { Some(bit(2)) },
                consistent: bit(3),
                caught_up: bit(4),
                ..PLANNED
            };
            let now = switchover(&f) == Switchover::Now;
            let safe = f.old_logging == Some(false) && f.caught_up;
            assert_eq!(now, f.consistent && (f.forced || safe), "{f:?}");
        }
    }
}
