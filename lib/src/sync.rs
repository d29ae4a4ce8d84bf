//! What a secondary's sync copies, where its replay starts afterwards, and when its data device
//! is consistent (docs/replication.md).
//!
//! Pure: the kernel's copy brick asks [`next_window`] for the next range to compare or copy and
//! [`differing`] which blocks of it to fetch; the fetch asks [`sync_start`] where replay begins
//! once the copy is done; status asks [`consistency`] what to claim.
//!
//! Why a sync followed by a replay gives a consistent image: the sync begins at a log position
//! `start` up to which everything is on the primary's data device (the primary's own replay
//! position). Every block copied later holds a value written by a record before the primary's log
//! end at the time of the copy (the write-back only writes what the log holds), hence before the
//! log end `mark` the primary reported with the last blocks it sent (appended, not necessarily
//! durable yet: its write-back runs ahead of the log's flushes). Replaying every record from
//! `start` to `mark` then leaves each block with its last value before `mark`: the device is the
//! primary's image at `mark`, and a prefix of its history from then on. The simulation
//! (`tests/replication_sim.rs`) fails if the mark is taken from the durable end instead.

use core::fmt;

use super::fetch::{LogFile, LogPosition};

/// Bytes of one sync block: the unit compared by digest and copied.
pub const BLOCK: u32 = 1 << 20;

/// Blocks per window: compared with one checksum request, then copied.
pub const WINDOW_BLOCKS: u32 = 8;

/// What `resource-RES/syncstatus-HOST` says about HOST's sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncStatus {
    /// A sync is to start: after join-resource, `invalidate`, or a log that can no longer bring
    /// this host up to date. `full`: copy every block (else only blocks whose digests differ).
    Wanted {
        /// Copy every block, without comparing digests first.
        full: bool,
    },
    /// The sync began; the first `done` of `total` bytes are copied and durable here.
    Copying {
        /// Bytes copied, from the device's start.
        done: u64,
        /// Bytes to copy: the resource's size.
        total: u64,
        /// Copy every block.
        full: bool,
    },
}

impl SyncStatus {
    /// The status in `value`; `None` if malformed.
    pub fn parse(value: &str) -> Option<SyncStatus> {
        let mut words = value.split(' ');
        let first = words.next()?;
        let full = match words.next() {
            None => false,
            Some("full") => true,
            Some(_) => return None,
        };
        if words.next().is_some() {
            return None;
        }
        if first == "wanted" {
            return Some(SyncStatus::Wanted { full });
        }
        let (done, total) = first.split_once('/')?;
        let (done, total) = (parse_u64(done)?, parse_u64(total)?);
        (done <= total).then_some(SyncStatus::Copying { done, total, full })
    }

    /// Whether the copy is complete.
    pub fn is_done(&self) -> bool {
        matches!(*self, SyncStatus::Copying { done, total, .. } if done == total)
    }
}

impl fmt::Display for SyncStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let full = match *self {
            SyncStatus::Wanted { full } | SyncStatus::Copying { full, .. } => full,
        };
        match *self {
            SyncStatus::Wanted { .. } => write!(f, "wanted")?,
            SyncStatus::Copying { done, total, .. } => write!(f, "{done}/{total}")?,
        }
        if full {
            write!(f, " full")?;
        }
        Ok(())
    }
}

/// Decimal digits only (no sign, no spaces), as the values the module writes.
fn parse_u64(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The next window of the copy: `(position, bytes)` from `done` on, at most
/// [`WINDOW_BLOCKS`] blocks, the last one cut at `total`; `None` once `done` reaches `total`.
pub fn next_window(done: u64, total: u64) -> Option<(u64, u64)> {
    if done >= total {
        return None;
    }
    let window = u64::from(BLOCK) * u64::from(WINDOW_BLOCKS);
    Some((done, (total - done).min(window)))
}

/// The blocks of a window `(pos, len)` as `(position, bytes)`: [`BLOCK`] each, the last one
/// shorter if `len` ends within it.
pub fn blocks(pos: u64, len: u64) -> impl Iterator<Item = (u64, u32)> {
    let block = u64::from(BLOCK);
    (0..len.div_ceil(block)).map(move |i| {
        let at = i * block;
        (pos + at, u32::try_from((len - at).min(block)).unwrap_or(BLOCK))
    })
}

/// Which blocks of a window to copy: all of them in a full sync, else those whose local digest
/// differs from the primary's (a block without a digest on either side is copied).
pub fn differing<'a>(
    full: bool,
    local: &'a [[u8; 32]],
    remote: &'a [[u8; 32]],
    count: usize,
) -> impl Iterator<Item = usize> + 'a {
    (0..count).filter(move |&i| full || local.get(i).is_none() || local.get(i) != remote.get(i))
}

/// Where a secondary's replay begins after its sync: the primary's replay position `applied`
/// (everything before it is on the primary's data device before the copy reads it), moved to the
/// start of the oldest logfile the primary still has if `applied`'s logfile is gone (deleted
/// logfiles were applied whole). `None` if the primary lists no logfile at or after `applied`
/// (nothing to start from yet: it has not begun logging).
pub fn sync_start(applied: LogPosition, remote: &[LogFile]) -> Option<LogPosition> {
    if remote.iter().any(|r| r.seq == applied.seq) {
        return Some(applied);
    }
    let next = remote.iter().map(|r| r.seq).filter(|&seq| seq > applied.seq).min()?;
    Some(LogPosition { seq: next, offset: 0 })
}

/// What a secondary may claim about its data device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consistency {
    /// The device is the primary's image at some point of its history.
    Consistent,
    /// A sync is wanted and has not begun.
    SyncWanted,
    /// The sync copies; `done` of `total` bytes are here.
    Syncing {
        /// Bytes copied.
        done: u64,
        /// Bytes in all.
        total: u64,
    },
    /// The copy is complete; replay must pass `mark` (`None`: not stored, so a new sync is due)
    /// first.
    ReplayToMark {
        /// The primary's log end reported with the copy's last blocks.
        mark: Option<LogPosition>,
    },
    /// The device may hold writes up to `mark` that replay has not passed since this host
    /// restarted (a replay cut by a crash leaves any mix of its records).
    ReplayToRestartMark {
        /// The end of the local copies at the restart.
        mark: LogPosition,
    },
}

/// What this secondary may claim: `status` its syncstatus (`None`: never synced, so a sync is
/// wanted), `mark` its syncpos, `replayed` where replay stands, `restart_mark` the end of the local
/// copies when replay last (re)started after a restart, if replay has not passed it since.
pub fn consistency(
    status: Option<SyncStatus>,
    mark: Option<LogPosition>,
    replayed: LogPosition,
    restart_mark: Option<LogPosition>,
) -> Consistency {
    match status {
        None | Some(SyncStatus::Wanted { .. }) => return Consistency::SyncWanted,
        Some(SyncStatus::Copying { done, total, .. }) if done < total => return Consistency::Syncing { done, total },
        Some(SyncStatus::Copying { .. }) => {}
    }
    match mark {
        Some(m) if replayed >= m => {}
        _ => return Consistency::ReplayToMark { mark },
    }
    match restart_mark {
        Some(m) if replayed < m => Consistency::ReplayToRestartMark { mark: m },
        _ => Consistency::Consistent,
    }
}

impl fmt::Display for Consistency {
    /// The words of `actual-HOST/consistency` (docs/replication.md).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Consistency::Consistent => write!(f, "consistent"),
            Consistency::SyncWanted => write!(f, "inconsistent: sync not begun"),
            Consistency::Syncing { done, total } => write!(f, "inconsistent: syncing, {done} of {total} bytes"),
            Consistency::ReplayToMark { mark: None } => write!(f, "inconsistent: synced without a mark, syncing again"),
            Consistency::ReplayToMark { mark: Some(m) } | Consistency::ReplayToRestartMark { mark: m } => {
                write!(f, "inconsistent: replaying to logfile {} offset {}", m.seq, m.offset)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::ToString;
    use std::vec::Vec;

    use super::*;

    fn pos(seq: u32, offset: u64) -> LogPosition {
        LogPosition { seq, offset }
    }

    #[test]
    fn status_round_trips_and_refuses_garbage() {
        for s in [
            SyncStatus::Wanted { full: false },
            SyncStatus::Wanted { full: true },
            SyncStatus::Copying { done: 0, total: 1 << 30, full: false },
            SyncStatus::Copying { done: 7, total: 7, full: true },
        ] {
            assert_eq!(SyncStatus::parse(&s.to_string()), Some(s));
        }
        for bad in ["", "wanted fast", "5/4", "-1/4", "1/", "/1", "1/2 full x", " 1/2", "1/2  full", "+1/2"] {
            assert_eq!(SyncStatus::parse(bad), None, "{bad:?}");
        }
        assert!(SyncStatus::parse("9/9").is_some_and(|s| s.is_done()));
        assert!(!SyncStatus::parse("8/9").is_some_and(|s| s.is_done()));
    }

    #[test]
    fn windows_and_blocks_cover_the_device_exactly() {
        let total = 20 * u64::from(BLOCK) + 4096;
        let mut done = 0;
        let mut seen = Vec::new();
        while let Some((at, len)) = next_window(done, total) {
            assert_eq!(at, done);
            for (p, l) in blocks(at, len) {
                seen.push((p, l));
            }
            done += len;
        }
        assert_eq!(done, total);
        assert_eq!(seen.len(), 21);
        assert_eq!(seen.last(), Some(&(20 * u64::from(BLOCK), 4096)));
        let mut expect = 0;
        for (p, l) in seen {
            assert_eq!(p, expect);
            expect += u64::from(l);
        }
        assert_eq!(next_window(total, total), None);
    }

    #[test]
    fn only_differing_blocks_are_copied_unless_full() {
        let a = [[1u8; 32], [2; 32], [3; 32]];
        let b = [[1u8; 32], [9; 32], [3; 32]];
        assert_eq!(differing(false, &a, &b, 3).collect::<Vec<_>>(), [1]);
        assert_eq!(differing(true, &a, &a, 3).collect::<Vec<_>>(), [0, 1, 2]);
        // Digests missing on one side: copy.
        assert_eq!(differing(false, &a[..1], &b, 3).collect::<Vec<_>>(), [1, 2]);
    }

    #[test]
    fn replay_starts_at_the_primarys_position_or_its_oldest_logfile() {
        let remote = [LogFile { seq: 4, len: 100 }, LogFile { seq: 5, len: 10 }];
        assert_eq!(sync_start(pos(4, 60), &remote), Some(pos(4, 60)));
        assert_eq!(sync_start(pos(2, 60), &remote), Some(pos(4, 0)));
        assert_eq!(sync_start(pos(6, 0), &remote), None);
        assert_eq!(sync_start(pos(1, 0), &[]), None);
    }

    #[test]
    fn consistency_is_claimed_only_past_both_marks() {
        let done = Some(SyncStatus::Copying { done: 8, total: 8, full: false });
        assert_eq!(consistency(None, None, pos(9, 0), None), Consistency::SyncWanted);
        assert_eq!(
            consistency(Some(SyncStatus::Copying { done: 4, total: 8, full: false }), Some(pos(1, 0)), pos(9, 0), None),
            Consistency::Syncing { done: 4, total: 8 }
        );
        assert_eq!(consistency(done, None, pos(9, 0), None), Consistency::ReplayToMark { mark: None });
        assert_eq!(
            consistency(done, Some(pos(3, 10)), pos(3, 9), None),
            Consistency::ReplayToMark { mark: Some(pos(3, 10)) }
        );
        assert_eq!(consistency(done, Some(pos(3, 10)), pos(3, 10), None), Consistency::Consistent);
        assert_eq!(
            consistency(done, Some(pos(3, 10)), pos(3, 10), Some(pos(4, 0))),
            Consistency::ReplayToRestartMark { mark: pos(4, 0) }
        );
        assert_eq!(consistency(done, Some(pos(3, 10)), pos(4, 0), Some(pos(4, 0))), Consistency::Consistent);
        assert!(Consistency::Consistent.to_string() == "consistent");
        assert!(Consistency::Syncing { done: 1, total: 2 }.to_string().starts_with("inconsistent"));
    }
}
