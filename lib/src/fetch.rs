//! What a secondary fetches of its primary's logfiles, and which logfiles the primary may delete.
//!
//! Pure: the kernel lists the primary's logfiles (a log-list reply) and its own copies, and asks
//! [`next_fetch`] for the next piece to ask for; the primary asks [`deletable`] which logfiles
//! every member is done with. A secondary's copy of a logfile is a prefix of the primary's: it
//! only ever appends what it fetched at its own length, so it resumes at that length after any
//! interruption.

/// A logfile by its sequence number and its length in bytes (on the primary: the bytes that
/// hold records; its preallocated tail does not count).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogFile {
    /// Sequence number (the `SSSSSSSSS` of its name).
    pub seq: u32,
    /// Length in bytes.
    pub len: u64,
}

/// A position in a log: logfile `seq`, `offset` bytes into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogPosition {
    /// Sequence number of the logfile.
    pub seq: u32,
    /// Bytes into it.
    pub offset: u64,
}

/// The next thing a secondary's fetch does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fetch {
    /// Ask for `len` bytes of logfile `seq` at `offset` and append them to the local copy.
    Piece {
        /// Logfile.
        seq: u32,
        /// Where in it: the local copy's length, or the end of what is already asked for.
        offset: u64,
        /// How much (at most the caller's limit per request).
        len: u32,
    },
    /// The local copies hold everything the primary listed.
    UpToDate,
    /// The local copy of `seq` is longer than the primary's logfile: the two do not share a
    /// history (a split brain, or a primary that lost its log tail). Nothing is fetched or
    /// replayed from it until the administrator decides.
    Diverged {
        /// Logfile.
        seq: u32,
    },
    /// The logfile the secondary needs next (`seq`) is gone on the primary and not here: the
    /// log cannot bring this secondary up to date any more; it needs a sync.
    NeedsSync {
        /// The logfile that is missing.
        seq: u32,
    },
}

/// The next piece to fetch. `remote`: the primary's logfiles in ascending order; `local`: this
/// host's copies in ascending order; `needed`: where replay stands here (logfiles before its
/// `seq` are no longer needed); `asked_to`: the end of the requests in flight, if any (the
/// next piece starts there); `max_len`: the most bytes one request asks for.
pub fn next_fetch(
    remote: &[LogFile],
    local: &[LogFile],
    needed: LogPosition,
    asked_to: Option<LogPosition>,
    max_len: u32,
) -> Fetch {
    let local_len = |seq: u32| local.iter().find(|l| l.seq == seq).map_or(0, |l| l.len);
    // The logfile replay stands in must be on the primary, unless it was never written (replay
    // waits at the start of the next number and the primary has nothing newer). Otherwise the
    // primary dropped it (emergency mode) or deleted it leaving this host behind: the records
    // between are lost to this host.
    if !remote.iter().any(|r| r.seq == needed.seq) && (needed.offset > 0 || remote.iter().any(|r| r.seq > needed.seq)) {
        return Fetch::NeedsSync { seq: needed.seq };
    }
    let wanted = remote.iter().filter(|r| r.seq >= needed.seq);
    for r in wanted {
        let have = local_len(r.seq);
        if have > r.len {
            return Fetch::Diverged { seq: r.seq };
        }
        let from = match asked_to {
            Some(a) if a.seq > r.seq => continue,
            Some(a) if a.seq == r.seq => a.offset.max(have),
            _ => have,
        };
        if from < r.len {
            let len = u32::try_from((r.len - from).min(u64::from(max_len))).unwrap_or(max_len);
            return Fetch::Piece { seq: r.seq, offset: from, len };
        }
    }
    Fetch::UpToDate
}

/// What a secondary's replay does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replay {
    /// Apply the records of logfile `seq` from `offset` (a record boundary) on.
    From {
        /// Logfile.
        seq: u32,
        /// Where replay stands in it.
        offset: u64,
    },
    /// Logfile `pos.seq` is replayed to its end and the next one is here: go on at its start.
    Advance {
        /// The start of the next logfile.
        to: LogPosition,
    },
    /// Nothing here to replay beyond `pos` yet.
    Wait,
}

/// The next replay step from position `pos`, given this host's copies `local` (ascending).
///
/// A copy is a prefix of the primary's logfile, and the fetch asks for a logfile only once the
/// primary has begun it, after the ones before were closed and fetched whole (`next_fetch` goes
/// in order). So a copy of a later logfile means that the current one is complete, and a
/// logfile between without a copy held nothing (the primary rotated past it before writing to
/// it): replay moves on only when it has reached the current copy's end and a later copy
/// exists, to the next one. A position at the start of a logfile never fetched moves on too;
/// one inside a copy that is gone never skips ahead.
pub fn next_replay(local: &[LogFile], pos: LogPosition) -> Replay {
    let here = local.iter().find(|l| l.seq == pos.seq);
    match here {
        Some(l) if l.len > pos.offset => Replay::From { seq: pos.seq, offset: pos.offset },
        _ if here.is_none() && pos.offset > 0 => Replay::Wait,
        _ => match local.iter().find(|l| l.seq > pos.seq) {
            Some(next) => Replay::Advance { to: LogPosition { seq: next.seq, offset: 0 } },
            None => Replay::Wait,
        },
    }
}

/// `pos` moved past logfiles the primary has closed and replay has finished: while the
/// primary lists `pos.seq` with exactly `pos.offset` bytes and a later logfile too (so the list,
/// read newest first, gives `pos.seq`'s final length), replay stands at the start of the next
/// listed one. This is how replay passes logfiles the primary rotated away from (empty ones
/// among them, which are never fetched) to reach a position such as a sync's mark.
pub fn past_closed(remote: &[LogFile], mut pos: LogPosition) -> LogPosition {
    while remote.iter().any(|r| r.seq == pos.seq && r.len == pos.offset) {
        match remote.iter().map(|r| r.seq).filter(|&s| s > pos.seq).min() {
            Some(next) => pos = LogPosition { seq: next, offset: 0 },
            None => break,
        }
    }
    pos
}

/// How far replay at `pos` is behind the primary's logfiles `remote` (as listed): the bytes not
/// yet replayed and the logfiles after the one replay is in. Logfiles the primary no longer
/// lists (deleted) are not counted.
pub fn behind(remote: &[LogFile], pos: LogPosition) -> (u64, u32) {
    let mut bytes = 0u64;
    let mut files = 0u32;
    for r in remote {
        if r.seq == pos.seq {
            bytes = bytes.saturating_add(r.len.saturating_sub(pos.offset));
        } else if r.seq > pos.seq {
            bytes = bytes.saturating_add(r.len);
            files = files.saturating_add(1);
        }
    }
    (bytes, files)
}

/// The logfiles of `logfiles` (ascending) that may be deleted: those that every member in
/// `positions` has replayed past (its position lies in a later logfile), and never the newest,
/// which the primary may still write. The caller leaves out the positions of members the
/// administrator named to be left behind. Returns how many logfiles from the start of
/// `logfiles` may go.
pub fn deletable(logfiles: &[u32], positions: &[LogPosition]) -> usize {
    let Some(oldest_needed) = positions.iter().map(|p| p.seq).min() else {
        // No member reports a position: nothing is known to be done with anything.
        return 0;
    };
    let keep_newest = logfiles.len().saturating_sub(1);
    logfiles.iter().take(keep_newest).take_while(|&&seq| seq < oldest_needed).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behind_counts_the_bytes_and_logfiles_replay_lacks() {
        let remote = [LogFile { seq: 3, len: 100 }, LogFile { seq: 4, len: 50 }, LogFile { seq: 6, len: 7 }];
        assert_eq!(behind(&remote, LogPosition { seq: 3, offset: 40 }), (60 + 50 + 7, 2));
        assert_eq!(behind(&remote, LogPosition { seq: 4, offset: 50 }), (7, 1));
        assert_eq!(behind(&remote, LogPosition { seq: 6, offset: 7 }), (0, 0));
        // Past what the primary listed (it was cut back, or listed before a rotation).
        assert_eq!(behind(&remote, LogPosition { seq: 7, offset: 0 }), (0, 0));
        // In a logfile the primary deleted already: everything listed is still to come.
        assert_eq!(behind(&remote, LogPosition { seq: 1, offset: 9 }), (157, 3));
        assert_eq!(behind(&[], LogPosition { seq: 1, offset: 0 }), (0, 0));
    }

    const MIB: u32 = 1 << 20;

    fn pos(seq: u32, offset: u64) -> LogPosition {
        LogPosition { seq, offset }
    }

    fn file(seq: u32, len: u64) -> LogFile {
        LogFile { seq, len }
    }

    #[test]
    fn fetches_from_the_local_length_in_pieces() {
        let remote = [file(3, 3 * u64::from(MIB) + 10)];
        assert_eq!(next_fetch(&remote, &[], pos(3, 0), None, MIB), Fetch::Piece { seq: 3, offset: 0, len: MIB });
        let local = [file(3, 3 * u64::from(MIB))];
        assert_eq!(
            next_fetch(&remote, &local, pos(3, 0), None, MIB),
            Fetch::Piece { seq: 3, offset: 3 * u64::from(MIB), len: 10 }
        );
        let local = [file(3, 3 * u64::from(MIB) + 10)];
        assert_eq!(next_fetch(&remote, &local, pos(3, 0), None, MIB), Fetch::UpToDate);
    }

    #[test]
    fn pieces_in_flight_are_not_asked_for_again() {
        let remote = [file(1, 100), file(2, 50)];
        let local = [file(1, 10)];
        assert_eq!(
            next_fetch(&remote, &local, pos(1, 0), Some(pos(1, 60)), 40),
            Fetch::Piece { seq: 1, offset: 60, len: 40 }
        );
        assert_eq!(
            next_fetch(&remote, &local, pos(1, 0), Some(pos(1, 100)), 40),
            Fetch::Piece { seq: 2, offset: 0, len: 40 }
        );
        assert_eq!(next_fetch(&remote, &local, pos(1, 0), Some(pos(2, 50)), 40), Fetch::UpToDate);
    }

    #[test]
    fn logfiles_replayed_past_are_not_fetched() {
        let remote = [file(1, 100), file(2, 100), file(3, 40)];
        assert_eq!(next_fetch(&remote, &[], pos(3, 0), None, 1000), Fetch::Piece { seq: 3, offset: 0, len: 40 });
    }

    #[test]
    fn a_local_copy_longer_than_the_primarys_is_diverged() {
        let remote = [file(4, 100)];
        let local = [file(4, 120)];
        assert_eq!(next_fetch(&remote, &local, pos(4, 0), None, 1000), Fetch::Diverged { seq: 4 });
    }

    #[test]
    fn a_needed_logfile_gone_on_the_primary_means_sync() {
        // Replay stands in logfile 2; the primary deleted it (emergency mode) and writes 3.
        let remote = [file(3, 500)];
        assert_eq!(next_fetch(&remote, &[], pos(2, 10), None, 1000), Fetch::NeedsSync { seq: 2 });
        assert_eq!(next_fetch(&remote, &[], pos(2, 0), None, 1000), Fetch::NeedsSync { seq: 2 });
        // Even with a copy here: whether it is whole, only the primary could tell.
        let local = [file(2, 10)];
        assert_eq!(next_fetch(&remote, &local, pos(2, 10), None, 1000), Fetch::NeedsSync { seq: 2 });
        // Position at the start of a logfile not written yet: nothing is lost.
        assert_eq!(next_fetch(&[], &[], pos(5, 0), None, 1000), Fetch::UpToDate);
    }

    #[test]
    fn replay_follows_the_copies_in_order() {
        let local = [file(1, 100), file(2, 30)];
        assert_eq!(next_replay(&local, pos(1, 0)), Replay::From { seq: 1, offset: 0 });
        assert_eq!(next_replay(&local, pos(1, 60)), Replay::From { seq: 1, offset: 60 });
        assert_eq!(next_replay(&local, pos(1, 100)), Replay::Advance { to: pos(2, 0) });
        assert_eq!(next_replay(&local, pos(2, 30)), Replay::Wait);
        // The current copy replayed to its end, no next one yet: wait for more.
        assert_eq!(next_replay(&[file(1, 100)], pos(1, 100)), Replay::Wait);
        // Nothing fetched yet.
        assert_eq!(next_replay(&[], pos(1, 0)), Replay::Wait);
        // A position at the start of a logfile never fetched (the primary had not begun it)
        // moves on once the next one is here.
        assert_eq!(next_replay(&[file(4, 10)], pos(3, 0)), Replay::Advance { to: pos(4, 0) });
        // Mid-way into a copy that is gone: never skip to the next logfile.
        assert_eq!(next_replay(&[file(4, 10)], pos(3, 5)), Replay::Wait);
        // A logfile the primary rotated past before writing to it has no copy: skipped.
        assert_eq!(next_replay(&[file(1, 100), file(3, 10)], pos(1, 100)), Replay::Advance { to: pos(3, 0) });
    }

    #[test]
    fn replay_passes_closed_logfiles_only() {
        let remote = [file(4, 100), file(5, 0), file(6, 0), file(7, 30)];
        assert_eq!(past_closed(&remote, pos(4, 100)), pos(7, 0));
        assert_eq!(past_closed(&remote, pos(4, 99)), pos(4, 99));
        assert_eq!(past_closed(&remote, pos(7, 30)), pos(7, 30));
        assert_eq!(past_closed(&[file(4, 100)], pos(4, 100)), pos(4, 100));
        assert_eq!(past_closed(&remote, pos(5, 0)), pos(7, 0));
    }

    #[test]
    fn deletion_waits_for_every_member_and_keeps_the_newest() {
        let logs = [1, 2, 3, 4];
        assert_eq!(deletable(&logs, &[pos(4, 0), pos(3, 100)]), 2);
        assert_eq!(deletable(&logs, &[pos(9, 0)]), 3);
        assert_eq!(deletable(&logs, &[pos(1, 5), pos(4, 0)]), 0);
        assert_eq!(deletable(&logs, &[]), 0);
        assert_eq!(deletable(&[], &[pos(1, 0)]), 0);
    }
}
