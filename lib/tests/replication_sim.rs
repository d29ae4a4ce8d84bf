//! A seeded, deterministic simulation of a resource replicating: one primary writing
//! sequence-numbered blocks into its log, one to three secondaries fetching and replaying it.
//!
//! The secondaries run the decisions of `mars_core::fetch` the way `bricks/fetch.rs` drives
//! them: `next_fetch` with requests in flight (`pipeline::Pipeline`), replies appended only at a
//! copy's length, `next_replay` over the copies, whole records only; the primary deletes
//! logfiles by `deletable` over the positions it last heard (possibly stale). The world is
//! unkind: partitions cut connections with requests in flight, secondaries lose power (appends
//! not yet synced are lost, the last position store may be lost), the primary flushes and
//! rotates at random, pieces are of random size (records straddle them).
//!
//! Syncs run too (`mars_core::sync`, as `bricks/copy.rs` and `bricks/fetch.rs` drive them): the
//! primary's data device lags its log (a write-back applies records at random), secondaries
//! join late or are left behind by a log-delete that ignores them (emergency mode), and then
//! copy the primary's device block by block while it goes on writing and writing back, from
//! the primary's replay position as they last heard it, with power cuts that lose the copy's
//! unstored progress.
//!
//! After every step: every copy is a prefix of the primary's logfile, and a secondary whose
//! `consistency` says `Consistent` holds exactly the primary's history up to its replay position
//! (a prefix). After the heal every secondary is consistent and equals the primary.
//!
//! Every run prints its seed; `MARS_SIM_SEED=N cargo test -p mars-core --test replication_sim`
//! replays it.

use std::collections::BTreeMap;

use mars_core::fetch::{deletable, next_fetch, next_replay, past_closed, Fetch, LogFile, LogPosition, Replay};
use mars_core::gossip::Rng;
use mars_core::pipeline::Pipeline;
use mars_core::sync::{consistency, differing, sync_start, Consistency};

/// Blocks of the simulated device.
const BLOCKS: u64 = 64;
/// Bytes of a record's header: its total length and the number of the write it carries.
const HEADER: usize = 8;

/// One logfile of the primary.
struct PrimaryLog {
    seq: u32,
    bytes: Vec<u8>,
    /// What is durable, and so served.
    durable: usize,
}

/// The primary: its log, the archive of every logfile it ever wrote, and its device.
struct Primary {
    logs: Vec<PrimaryLog>,
    archive: BTreeMap<u32, Vec<u8>>,
    writes: u64,
    device: BTreeMap<u64, u64>,
    /// The data device, which the write-back brings up to `applied`.
    disk: BTreeMap<u64, u64>,
    applied: LogPosition,
    /// `applied` as published in the tree (what a secondary beginning a sync hears).
    published: LogPosition,
    /// Replay positions as the primary last heard them from each secondary.
    heard: Vec<LogPosition>,
}

impl Primary {
    fn write(&mut self, rng: &mut Rng) {
        self.writes += 1;
        let k = self.writes;
        let payload = 1 + rng.below(60);
        let len = HEADER + payload;
        let mut rec = Vec::with_capacity(len);
        rec.extend_from_slice(&(len as u32).to_le_bytes());
        rec.extend_from_slice(&(k as u32).to_le_bytes());
        rec.extend(std::iter::repeat_n(k as u8, payload));
        let cur = self.logs.last_mut().expect("a current logfile");
        cur.bytes.extend_from_slice(&rec);
        self.archive.insert(cur.seq, cur.bytes.clone());
        self.device.insert(block_of(k), k);
    }

    fn flush(&mut self) {
        let cur = self.logs.last_mut().expect("a current logfile");
        cur.durable = cur.bytes.len();
    }

    fn rotate(&mut self) {
        self.flush();
        let next = self.logs.last().map_or(1, |l| l.seq + 1);
        self.logs.push(PrimaryLog { seq: next, bytes: Vec::new(), durable: 0 });
        self.archive.insert(next, Vec::new());
    }

    /// Applies the next `n` records of the log to the disk, as the write-back does.
    fn write_back(&mut self, n: usize) {
        for _ in 0..n {
            let Some(l) = self.logs.iter().find(|l| l.seq == self.applied.seq) else { return };
            let at = self.applied.offset as usize;
            if at + HEADER <= l.bytes.len() {
                let len = u32::from_le_bytes(l.bytes[at..at + 4].try_into().unwrap()) as usize;
                let k = u64::from(u32::from_le_bytes(l.bytes[at + 4..at + 8].try_into().unwrap()));
                self.disk.insert(block_of(k), k);
                self.applied.offset += len as u64;
            } else if let Some(next) = self.logs.iter().find(|n| n.seq > l.seq) {
                self.applied = LogPosition { seq: next.seq, offset: 0 };
            } else {
                return;
            }
        }
    }

    /// log-delete: what the disk and every member (`leave_behind`: but one) have done with.
    fn delete(&mut self, leave_behind: Option<usize>) {
        let seqs: Vec<u32> = self.logs.iter().map(|l| l.seq).collect();
        let mut positions: Vec<LogPosition> =
            self.heard.iter().enumerate().filter(|(i, _)| Some(*i) != leave_behind).map(|(_, p)| *p).collect();
        positions.push(LogPosition { seq: self.applied.seq, offset: 0 });
        let n = deletable(&seqs, &positions);
        self.logs.drain(..n);
    }

    /// Where the log ends, durable or not: what a sync reply reports (`logged`).
    fn logged(&self) -> LogPosition {
        self.logs
            .last()
            .map_or(LogPosition { seq: 0, offset: 0 }, |l| LogPosition { seq: l.seq, offset: l.bytes.len() as u64 })
    }

    /// What a log-list answers: every logfile with its servable length.
    fn list(&self) -> Vec<LogFile> {
        self.logs.iter().map(|l| LogFile { seq: l.seq, len: l.durable as u64 }).collect()
    }

    /// A log-fetch's reply: the bytes of `seq` from `offset`, at most `len`; `None` if gone.
    fn fetch(&self, seq: u32, offset: u64, len: u32) -> Option<Vec<u8>> {
        let l = self.logs.iter().find(|l| l.seq == seq)?;
        let from = (offset as usize).min(l.durable);
        let to = (from + len as usize).min(l.durable);
        Some(l.bytes[from..to].to_vec())
    }
}

fn block_of(write: u64) -> u64 {
    write.wrapping_mul(7919) % BLOCKS
}

/// One local copy of a secondary.
struct Copy {
    bytes: Vec<u8>,
    /// Bytes an fdatasync made durable.
    synced: usize,
}

/// A secondary's sync: `syncstatus` (blocks done, `None`: wanted) and `syncpos`.
#[derive(Clone, Copy, Debug)]
struct Sync {
    done: Option<u64>,
    /// Blocks done as stored (a power cut goes back to it).
    stored: Option<u64>,
    mark: Option<LogPosition>,
    full: bool,
}

/// A secondary: copies, device, replay position (stored and in memory), sync.
struct Secondary {
    copies: BTreeMap<u32, Copy>,
    device: BTreeMap<u64, u64>,
    pos: LogPosition,
    stored: LogPosition,
    /// The end of the local copies at the last restart, until replay passes it.
    restart_mark: Option<LogPosition>,
    connected: bool,
    sync: Sync,
}

impl Secondary {
    fn local(&self) -> Vec<LogFile> {
        self.copies.iter().map(|(&seq, c)| LogFile { seq, len: c.bytes.len() as u64 }).collect()
    }

    fn copied(&self) -> bool {
        self.sync.done == Some(BLOCKS)
    }

    /// What this secondary may claim, by the rule of `mars_core::sync`.
    fn consistency(&self) -> Consistency {
        use mars_core::sync::SyncStatus;
        let status = match self.sync.done {
            None => SyncStatus::Wanted { full: self.sync.full },
            Some(done) => SyncStatus::Copying { done, total: BLOCKS, full: self.sync.full },
        };
        consistency(Some(status), self.sync.mark, self.pos, self.restart_mark)
    }

    /// The fetch's part of a sync (bricks/fetch.rs): begin a wanted one from the primary's
    /// published position.
    fn sync_step(&mut self, p: &Primary) {
        if self.sync.done.is_none() {
            if let Some(start) = sync_start(p.published, &p.list()) {
                self.pos = start;
                self.stored = start;
                self.restart_mark = None;
                self.sync = Sync { done: Some(0), stored: Some(0), mark: None, ..self.sync };
            }
        }
    }

    /// A run of the copy brick: up to `n` blocks from the primary's disk as it is now, fast
    /// (only differing blocks) unless full; sometimes its progress is stored.
    fn copy(&mut self, p: &Primary, n: u64, rng: &mut Rng) {
        let Some(mut done) = self.sync.done.filter(|&d| d < BLOCKS) else { return };
        let end = (done + n).min(BLOCKS);
        let local: Vec<[u8; 32]> = (done..end).map(|b| digest(self.device.get(&b))).collect();
        let remote: Vec<[u8; 32]> = (done..end).map(|b| digest(p.disk.get(&b))).collect();
        for i in differing(self.sync.full, &local, &remote, (end - done) as usize) {
            let b = done + i as u64;
            match p.disk.get(&b) {
                Some(&k) => self.device.insert(b, k),
                None => self.device.remove(&b),
            };
        }
        done = end;
        self.sync.done = Some(done);
        if done == BLOCKS {
            // The last reply's log end, stored with the completion (bricks/copy.rs).
            self.sync.mark = Some(p.logged().max(self.pos));
            self.sync.stored = Some(done);
        } else if rng.below(2) == 0 {
            self.sync.stored = Some(done);
        }
    }

    /// One run of the fetch work: pieces with up to 4 in flight, answered in order; sometimes
    /// the connection breaks with requests in flight. `sync`: the run gets to its fdatasync.
    fn fetch(&mut self, p: &Primary, rng: &mut Rng, sync: bool) {
        let remote = p.list();
        let mut pipeline: Pipeline<(u32, u64, u32), 4> = Pipeline::new();
        let mut order = std::collections::VecDeque::new();
        let mut asked_to = None;
        let max_len = 1 + rng.below(300) as u32;
        let cut_after = if rng.below(4) == 0 { rng.below(6) } else { usize::MAX };
        let mut replies = 0usize;
        let mut drain = false;
        loop {
            while !drain && pipeline.has_room() {
                match next_fetch(&remote, &self.local(), self.pos, asked_to, max_len) {
                    Fetch::Piece { seq, offset, len } => {
                        order.push_back(pipeline.issue((seq, offset, len), 0).expect("room"));
                        asked_to = Some(LogPosition { seq, offset: offset + u64::from(len) });
                    }
                    Fetch::UpToDate => break,
                    Fetch::NeedsSync { .. } => {
                        // Left behind: a fast sync brings it up (bricks/fetch.rs).
                        if self.copied() {
                            self.sync = Sync { done: None, stored: None, mark: None, full: false };
                        }
                        break;
                    }
                    other => panic!("secondary at {:?} cannot follow: {other:?}", self.pos),
                }
            }
            let Some(id) = order.pop_front() else { break };
            if replies == cut_after {
                // The connection breaks: what is in flight is lost.
                pipeline.abandon(|_| {});
                break;
            }
            replies += 1;
            let (seq, offset, len) = pipeline.complete(id).expect("in flight");
            // After a short or refused piece nothing more is appended (bricks/fetch.rs).
            let Some(data) = p.fetch(seq, offset, len).filter(|_| !drain) else {
                drain = true;
                continue;
            };
            if data.len() < len as usize {
                drain = true;
            }
            let have = self.copies.get(&seq).map_or(0, |c| c.bytes.len() as u64);
            if have != offset || data.is_empty() {
                drain = true;
                continue;
            }
            if !self.copies.contains_key(&seq) {
                // Before a new copy is begun the ones before it are synced (bricks/fetch.rs), so
                // a later copy always means that the earlier ones are whole.
                for c in self.copies.values_mut() {
                    c.synced = c.bytes.len();
                }
            }
            self.copies.entry(seq).or_insert(Copy { bytes: Vec::new(), synced: 0 }).bytes.extend_from_slice(&data);
        }
        if sync {
            for c in self.copies.values_mut() {
                c.synced = c.bytes.len();
            }
        }
    }

    /// Replays the copies as `bricks/fetch.rs` does (after the copies are synced), then stores
    /// the position.
    fn replay(&mut self, p: &Primary, rng: &mut Rng) {
        // Nothing is replayed before the copy is complete: the copy would overwrite it.
        if !self.copied() {
            return;
        }
        loop {
            match next_replay(&self.local(), self.pos) {
                Replay::Wait => break,
                Replay::Advance { to } => self.pos = to,
                Replay::From { seq, offset } => {
                    let bytes = &self.copies[&seq].bytes;
                    let mut at = offset as usize;
                    while at + HEADER <= bytes.len() {
                        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
                        if at + len > bytes.len() {
                            break;
                        }
                        let k = u64::from(u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()));
                        self.device.insert(block_of(k), k);
                        at += len;
                    }
                    if at as u64 == offset {
                        break;
                    }
                    self.pos = LogPosition { seq, offset: at as u64 };
                }
            }
        }
        self.pos = past_closed(&p.list(), self.pos);
        if self.restart_mark.is_some_and(|m| self.pos >= m) {
            self.restart_mark = None;
        }
        // A power cut between the device flush and the store leaves the older position.
        if rng.below(8) != 0 {
            self.stored = self.pos;
        }
    }

    /// A power cut: appends not yet synced are lost, some or all; replay goes back to the
    /// stored position (stored durably, after the device flush: the device may hold more).
    fn crash(&mut self, rng: &mut Rng) {
        for c in self.copies.values_mut() {
            let keep = c.synced + rng.below(c.bytes.len() - c.synced + 1);
            c.bytes.truncate(keep);
        }
        self.pos = self.stored;
        self.sync.done = self.sync.stored;
        // The fetch starts again: the device may hold records up to the copies' end.
        let end = self.local().last().map(|l| LogPosition { seq: l.seq, offset: l.len });
        self.restart_mark = end.filter(|&e| e > self.pos);
    }
}

/// A block's digest: of the write it holds (0: never written).
fn digest(write: Option<&u64>) -> [u8; 32] {
    let mut d = [0u8; 32];
    d[..8].copy_from_slice(&write.copied().unwrap_or(0).to_le_bytes());
    d
}

/// The primary's history up to `pos`, applied to an empty device.
fn history_to(archive: &BTreeMap<u32, Vec<u8>>, pos: LogPosition) -> BTreeMap<u64, u64> {
    let mut device = BTreeMap::new();
    for (&seq, bytes) in archive.range(..=pos.seq) {
        let end = if seq == pos.seq { pos.offset as usize } else { bytes.len() };
        let mut at = 0usize;
        while at + HEADER <= end {
            let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            let k = u64::from(u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()));
            device.insert(block_of(k), k);
            at += len;
        }
    }
    device
}

fn check(p: &Primary, secondaries: &[Secondary], step: usize, seed: u64) {
    for (i, s) in secondaries.iter().enumerate() {
        for (seq, c) in &s.copies {
            let original = &p.archive[seq];
            assert!(
                original.starts_with(&c.bytes),
                "seed {seed} step {step}: secondary {i}'s copy of logfile {seq} is no prefix of the primary's"
            );
        }
        // Checked whenever it claims to be consistent.
        if s.consistency() == Consistency::Consistent {
            assert_eq!(
                s.device,
                history_to(&p.archive, s.pos),
                "seed {seed} step {step}: secondary {i}'s device is not the primary's history up to {:?}",
                s.pos
            );
        }
    }
}

fn run(seed: u64, secondaries: usize, steps: usize) {
    let mut rng = Rng::new(seed);
    let start = LogPosition { seq: 1, offset: 0 };
    let mut p = Primary {
        logs: vec![PrimaryLog { seq: 1, bytes: Vec::new(), durable: 0 }],
        archive: BTreeMap::from([(1, Vec::new())]),
        writes: 0,
        device: BTreeMap::new(),
        disk: BTreeMap::new(),
        applied: start,
        published: start,
        heard: vec![start; secondaries],
    };
    let mut s: Vec<Secondary> = (0..secondaries)
        .map(|_| Secondary {
            copies: BTreeMap::new(),
            device: BTreeMap::new(),
            pos: start,
            stored: start,
            restart_mark: None,
            connected: true,
            // Some join before the first write, all of them sync.
            sync: Sync { done: None, stored: None, mark: None, full: rng.below(4) == 0 },
        })
        .collect();
    for step in 0..steps {
        match rng.below(100) {
            0..=44 => p.write(&mut rng),
            45..=52 => {
                let n = rng.below(20);
                p.write_back(n);
                if rng.below(2) == 0 {
                    p.published = p.applied;
                }
            }
            53..=59 => p.flush(),
            60..=61 => p.rotate(),
            62..=63 => p.delete(None),
            64 => {
                // Emergency mode, or the admin leaving a secondary behind.
                let i = rng.below(secondaries);
                p.delete(Some(i));
            }
            65..=69 => {
                let i = rng.below(secondaries);
                s[i].connected = !s[i].connected;
            }
            70..=71 => {
                let i = rng.below(secondaries);
                s[i].crash(&mut rng);
            }
            72..=73 => {
                // Power lost in the middle of a fetch, before its fdatasync.
                let i = rng.below(secondaries);
                if s[i].connected {
                    s[i].fetch(&p, &mut rng, false);
                    s[i].crash(&mut rng);
                }
            }
            74..=79 => {
                let i = rng.below(secondaries);
                if s[i].connected {
                    let n = 1 + rng.below(16) as u64;
                    s[i].copy(&p, n, &mut rng);
                }
            }
            _ => {
                let i = rng.below(secondaries);
                if s[i].connected {
                    s[i].sync_step(&p);
                    s[i].fetch(&p, &mut rng, true);
                    s[i].replay(&p, &mut rng);
                    // The primary hears of it through the tree, sometimes late.
                    if rng.below(2) == 0 {
                        p.heard[i] = s[i].stored;
                    }
                }
            }
        }
        check(&p, &s, step, seed);
    }
    // The heal: every link up, writes stop, everything flushed and written back.
    p.flush();
    p.write_back(usize::MAX);
    p.published = p.applied;
    for (i, sec) in s.iter_mut().enumerate() {
        sec.connected = true;
        for _ in 0..10_000 {
            let before = (sec.pos, sec.local(), sec.sync.done, sec.sync.mark);
            sec.sync_step(&p);
            sec.copy(&p, BLOCKS, &mut rng);
            sec.fetch(&p, &mut rng, true);
            sec.replay(&p, &mut rng);
            p.heard[i] = sec.stored;
            if (sec.pos, sec.local(), sec.sync.done, sec.sync.mark) == before
                && next_fetch(&p.list(), &sec.local(), sec.pos, None, 1 << 20) == Fetch::UpToDate
            {
                break;
            }
        }
        assert_eq!(
            sec.consistency(),
            Consistency::Consistent,
            "seed {seed}: secondary {i} not consistent after the heal (replay at {:?}, sync {:?}, copies {:?}, primary {:?})",
            sec.pos,
            sec.sync,
            sec.local(),
            p.list()
        );
        assert_eq!(
            sec.device,
            p.device,
            "seed {seed}: secondary {i} (replay at {:?}, copies {:?}) differs from the primary (logfiles {:?}) after the heal",
            sec.pos,
            sec.local(),
            p.list()
        );
    }
    check(&p, &s, steps, seed);
}

fn base_seed() -> u64 {
    let seed = std::env::var("MARS_SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
    });
    eprintln!("replication_sim seed {seed} (replay: MARS_SIM_SEED={seed})");
    seed
}

#[test]
fn secondaries_hold_a_prefix_and_equal_the_primary_after_the_heal() {
    let seed = base_seed();
    let mut rng = Rng::new(seed);
    // 10^5 steps in all, over runs with one to three secondaries.
    for run_no in 0..20 {
        let s = rng.next_u64();
        eprintln!("run {run_no}: seed {s}");
        run(s, 1 + run_no % 3, 5_000);
    }
}
