//! A seeded, deterministic simulation of planned handovers: three hosts, one designated primary
//! at a time, the designation moving at random while the primary writes, rotates and deletes
//! logfiles and the others fetch, replay and delete their copies.
//!
//! The hosts run the decisions the kernel runs (drivers/strategy.rs, bricks/fetch.rs,
//! bricks/log_source.rs): `reconcile::follow` picks whose log to fetch, `fetch::next_fetch`,
//! `past_closed`, `next_replay` and `copies_unneeded_below` drive the fetch and replay,
//! `fetch::deletable` the primary's log-delete over positions heard (stale), and
//! `handover::switchover` says when a designated host may begin logging, on facts it learned
//! by gossip (another host's `is-primary` as last heard). A host serves its own logfiles and
//! its copies of others' that a later logfile follows there.
//!
//! After every step: at most one host logs; every logfile anywhere is a prefix of the one
//! history (one origin per number); every host's device is the history's image up to its
//! replay position; a host that begins logging holds every write acknowledged before. After
//! the designation stops moving, every host catches up with the primary.
//!
//! Every run prints its seed; `MARS_SIM_SEED=N cargo test -p mars-core --test handover_sim`
//! replays it.

use std::collections::BTreeMap;

use mars_core::fetch::{
    copies_unneeded_below, deletable, next_fetch, next_replay, past_closed, Fetch, LogFile, LogPosition, Replay,
};
use mars_core::gossip::Rng;
use mars_core::handover::{newest_writer, switchover, Facts, Switchover};
use mars_core::names::HostName;
use mars_core::reconcile::{follow, Leads, Local};

const HOSTS: usize = 3;
const NAMES: [&str; HOSTS] = ["a", "b", "c"];
/// Bytes of one record (a write of one block).
const REC: u64 = 8;
const BLOCKS: u64 = 16;

/// One logfile: its origin and its records (the numbers of the writes it carries).
#[derive(Clone, Debug)]
struct Log {
    origin: usize,
    recs: Vec<u64>,
}

struct Host {
    copies: BTreeMap<u32, Log>,
    /// Replay position and the origin of the logfile it lies in.
    pos: LogPosition,
    pos_origin: usize,
    device: BTreeMap<u64, u64>,
    /// The logfile this host writes, when primary.
    logging: Option<u32>,
    /// Whether each host logs, and its published replay position with the origin of its
    /// logfile, as this host last heard.
    heard_logging: [Option<bool>; HOSTS],
    heard_pos: [(LogPosition, usize); HOSTS],
    /// The host whose final log (listed after it was heard stopped) this host has fetched whole.
    fetched_final: Option<usize>,
    /// The last listing fetched, which replay goes by past closed logfiles.
    last_remote: Vec<LogFile>,
}

impl Host {
    fn local(&self) -> Vec<LogFile> {
        self.copies.iter().map(|(&seq, l)| file(seq, l)).collect()
    }

    /// What this host's log-list answers.
    fn served(&self, me: usize) -> Vec<LogFile> {
        let newest = self.copies.keys().last().copied().unwrap_or(0);
        self.copies.iter().filter(|(&seq, l)| l.origin == me || seq < newest).map(|(&seq, l)| file(seq, l)).collect()
    }

    fn replay_idle(&self) -> bool {
        next_replay(&self.local(), self.pos) == Replay::Wait && past_closed(&self.last_remote, self.pos) == self.pos
    }

    /// The history's newest writer as this host knows it (its own position is current).
    fn newest_writer(&self, me: usize) -> usize {
        let heard = (0..HOSTS).map(|o| {
            if o == me {
                (self.pos, NAMES[self.pos_origin])
            } else {
                (self.heard_pos[o].0, NAMES[self.heard_pos[o].1])
            }
        });
        let name = newest_writer(heard).expect("positions");
        NAMES.iter().position(|n| *n == name).expect("a host")
    }
}

fn file(seq: u32, l: &Log) -> LogFile {
    LogFile {
        seq,
        origin: HostName::new(NAMES[l.origin].as_bytes()).expect("host name"),
        len: l.recs.len() as u64 * REC,
    }
}

fn block_of(write: u64) -> u64 {
    write.wrapping_mul(7919) % BLOCKS
}

struct World {
    hosts: Vec<Host>,
    /// Every logfile any primary began, with all its records: the one history.
    history: BTreeMap<u32, Log>,
    designated: usize,
    writes: u64,
    /// Replay positions as last published in the tree (what a log-delete goes by).
    published: [LogPosition; HOSTS],
    handovers: u32,
}

impl World {
    fn new() -> World {
        let start = LogPosition { seq: 1, offset: 0 };
        let mut hosts: Vec<Host> = (0..HOSTS)
            .map(|_| Host {
                copies: BTreeMap::new(),
                pos: start,
                pos_origin: 0,
                device: BTreeMap::new(),
                logging: None,
                heard_logging: [None; HOSTS],
                heard_pos: [(start, 0); HOSTS],
                fetched_final: None,
                last_remote: vec![],
            })
            .collect();
        hosts[0].logging = Some(1);
        hosts[0].copies.insert(1, Log { origin: 0, recs: vec![] });
        let mut history = BTreeMap::new();
        history.insert(1, Log { origin: 0, recs: vec![] });
        World { hosts, history, designated: 0, writes: 0, published: [start; HOSTS], handovers: 0 }
    }

    fn primary(&self) -> Option<usize> {
        self.hosts.iter().position(|h| h.logging.is_some())
    }

    fn write(&mut self) {
        let Some(p) = self.primary() else { return };
        self.writes += 1;
        let w = self.writes;
        let h = &mut self.hosts[p];
        let seq = h.logging.expect("logging");
        let log = h.copies.get_mut(&seq).expect("the current logfile");
        log.recs.push(w);
        h.device.insert(block_of(w), w);
        h.pos = LogPosition { seq, offset: log.recs.len() as u64 * REC };
        h.pos_origin = p;
        self.history.get_mut(&seq).expect("in the history").recs.push(w);
    }

    fn rotate(&mut self) {
        let Some(p) = self.primary() else { return };
        let h = &mut self.hosts[p];
        let next = h.logging.expect("logging") + 1;
        assert!(!self.history.contains_key(&next), "logfile {next} begun twice");
        h.copies.insert(next, Log { origin: p, recs: vec![] });
        h.logging = Some(next);
        self.history.insert(next, Log { origin: p, recs: vec![] });
    }

    /// The primary's log-delete over the positions published.
    fn log_delete(&mut self) {
        let Some(p) = self.primary() else { return };
        let h = &mut self.hosts[p];
        let numbers: Vec<u32> = h.copies.keys().copied().collect();
        let mut positions: Vec<LogPosition> = (0..HOSTS).filter(|&o| o != p).map(|o| self.published[o]).collect();
        positions.push(h.pos);
        for seq in numbers.iter().take(deletable(&numbers, &positions)) {
            h.copies.remove(seq);
        }
    }

    /// Host `me` hears host `o`'s state, and the tree hears `o`'s position.
    fn gossip(&mut self, me: usize, o: usize) {
        let logging = self.hosts[o].logging.is_some();
        self.hosts[me].heard_logging[o] = Some(logging);
        // Seen logging again: listings made before no longer count as its final log
        // (`set_origin_stopped` in bricks/fetch.rs).
        if logging && self.hosts[me].fetched_final == Some(o) {
            self.hosts[me].fetched_final = None;
        }
        self.hosts[me].heard_pos[o] = (self.hosts[o].pos, self.hosts[o].pos_origin);
        self.published[o] = self.hosts[o].pos;
    }

    /// One fetch round of `me`: list, then up to a few pieces of at most `max` records.
    fn fetch(&mut self, me: usize, pieces: usize, max: u64, rng: &mut Rng) {
        let h = &self.hosts[me];
        let local = Local { attached: true, primary: h.logging.is_some(), ..Local::default() };
        let d = self.designated;
        let leads = Leads {
            designated: Some(NAMES[d]),
            designated_logging: h.heard_logging[d] == Some(true),
            designated_at: Some(if d == me { h.pos.seq } else { h.heard_pos[d].0.seq }),
            newest: Some(NAMES[h.newest_writer(me)]),
            own_at: Some(h.pos.seq),
        };
        let Some(followed) = follow(&leads, NAMES[me], &local, true) else {
            return;
        };
        let src = NAMES.iter().position(|n| *n == followed).expect("a host");
        let listed_final = h.heard_logging[src] == Some(false);
        let remote = self.hosts[src].served(src);
        let h = &mut self.hosts[me];
        if !listed_final {
            h.fetched_final = None;
        }
        let moved = past_closed(&remote, h.pos);
        if moved != h.pos {
            h.pos = moved;
            h.pos_origin = src_origin(&remote, moved.seq).unwrap_or(src);
        }
        for _ in 0..pieces {
            let h = &mut self.hosts[me];
            match next_fetch(&remote, &h.local(), h.pos, None, (max * REC) as u32) {
                Fetch::Piece { seq, offset, len } => {
                    h.fetched_final = None;
                    let theirs = &self.hosts[src].copies[&seq];
                    let (from, n) = ((offset / REC) as usize, (u64::from(len) / REC) as usize);
                    let part = theirs.recs[from..from + n].to_vec();
                    let origin = theirs.origin;
                    let h = &mut self.hosts[me];
                    let copy = h.copies.entry(seq).or_insert(Log { origin, recs: vec![] });
                    assert_eq!(copy.recs.len(), from, "a piece appended at the copy's length");
                    copy.recs.extend(part);
                }
                Fetch::Empty { seq } => {
                    let origin = src_origin(&remote, seq).expect("listed");
                    h.copies.insert(seq, Log { origin, recs: vec![] });
                }
                Fetch::UpToDate => {
                    if listed_final {
                        h.fetched_final = Some(src);
                    }
                    break;
                }
                other => panic!(
                    "host {} following {followed}: {other:?} (remote {remote:?}, local {:?})",
                    NAMES[me],
                    h.local()
                ),
            }
            if rng.below(4) == 0 {
                break;
            }
        }
        let h = &mut self.hosts[me];
        let below = copies_unneeded_below(&remote, h.pos);
        h.copies.retain(|&seq, _| seq >= below);
        h.last_remote = remote;
    }

    /// Up to `n` records of replay on `me`.
    fn replay(&mut self, me: usize, n: usize) {
        let h = &mut self.hosts[me];
        if h.logging.is_some() {
            return;
        }
        match next_replay(&h.local(), h.pos) {
            Replay::From { seq, offset } => {
                let log = &h.copies[&seq];
                let from = (offset / REC) as usize;
                let to = log.recs.len().min(from + n);
                for &w in &log.recs[from..to] {
                    h.device.insert(block_of(w), w);
                }
                h.pos = LogPosition { seq, offset: to as u64 * REC };
                h.pos_origin = log.origin;
            }
            Replay::Advance { to } => {
                h.pos_origin = h.copies[&to.seq].origin;
                h.pos = to;
            }
            Replay::Wait => {}
        }
        let moved = past_closed(&h.last_remote, h.pos);
        if moved != h.pos {
            h.pos_origin = src_origin(&h.last_remote, moved.seq).unwrap_or(h.pos_origin);
            h.pos = moved;
        }
    }

    /// The primary stops once it sees another host designated; the designated host begins once
    /// the switchover rule says so.
    fn strategy(&mut self, me: usize) {
        let h = &self.hosts[me];
        if h.logging.is_some() {
            if self.designated != me {
                self.hosts[me].logging = None;
            }
            return;
        }
        if self.designated != me {
            return;
        }
        let previous = h.newest_writer(me);
        let others_logging = (0..HOSTS).find(|&o| o != me && o != previous && h.heard_logging[o] == Some(true));
        let facts = Facts {
            host: NAMES[me],
            previous: Some(NAMES[previous]),
            others_logging: others_logging.map(|o| NAMES[o]),
            forced: false,
            old_logging: if previous != me { h.heard_logging[previous] } else { None },
            consistent: true,
            caught_up: h.fetched_final == Some(previous) && h.replay_idle(),
        };
        if switchover(&facts) != Switchover::Now {
            return;
        }
        assert_eq!(self.primary(), None, "{} begins while another host logs", NAMES[me]);
        let image = self.image(LogPosition { seq: u32::MAX, offset: 0 });
        if h.device != image {
            for (i, o) in self.hosts.iter().enumerate() {
                eprintln!(
                    "{}: logging {:?} pos {:?}/{} heard {:?} {:?} copies {:?}",
                    NAMES[i],
                    o.logging,
                    o.pos,
                    NAMES[o.pos_origin],
                    o.heard_logging,
                    o.heard_pos,
                    o.local().iter().map(|l| (l.seq, l.origin.as_str().to_string(), l.len)).collect::<Vec<_>>()
                );
            }
            panic!("{} begins without every acknowledged write; {facts:?}", NAMES[me]);
        }
        // Replay stands at the start of a logfile the previous primary began and left empty,
        // its last: an empty copy of it, served like the rest, keeps that number in the history
        // for members that stand there too.
        let (at, origin) = (h.pos, h.pos_origin);
        if at.offset == 0 && !h.copies.contains_key(&at.seq) {
            let empty = Log { origin, recs: vec![] };
            self.history.entry(at.seq).or_insert_with(|| empty.clone());
            self.hosts[me].copies.insert(at.seq, empty);
        }
        let h = &self.hosts[me];
        let next = h.copies.keys().last().copied().unwrap_or(0).max(h.pos.seq) + 1;
        assert!(
            !self.history.contains_key(&next),
            "{} begins logfile {next}, which exists (at {:?} of {}, copies {:?}, history {:?})",
            NAMES[me],
            h.pos,
            NAMES[h.pos_origin],
            h.local(),
            self.history.iter().map(|(s, l)| (s, l.origin, l.recs.len())).collect::<Vec<_>>()
        );
        self.history.insert(next, Log { origin: me, recs: vec![] });
        let h = &mut self.hosts[me];
        h.copies.insert(next, Log { origin: me, recs: vec![] });
        h.logging = Some(next);
        // A primary fetches nothing: its fetch (and what it knew) is gone.
        h.fetched_final = None;
        // The write-back starts there: the position the new primary publishes.
        (h.pos, h.pos_origin) = (LogPosition { seq: next, offset: 0 }, me);
        self.handovers += 1;
    }

    /// `marsadm primary` on `me`: it waits for a tree exchange with every host first (see the
    /// module documentation of `handover`: a designation on a tree older than the previous
    /// primary's start is not covered).
    fn designate(&mut self, me: usize) {
        for o in 0..HOSTS {
            self.gossip(me, o);
        }
        self.designated = me;
    }

    /// The device the history gives up to `pos`.
    fn image(&self, pos: LogPosition) -> BTreeMap<u64, u64> {
        let mut device = BTreeMap::new();
        for (&seq, log) in self.history.range(..=pos.seq) {
            let n = if seq < pos.seq { log.recs.len() } else { (pos.offset / REC) as usize };
            for &w in &log.recs[..n.min(log.recs.len())] {
                device.insert(block_of(w), w);
            }
        }
        device
    }

    fn check(&self) {
        assert!(self.hosts.iter().filter(|h| h.logging.is_some()).count() <= 1, "two primaries");
        for (i, h) in self.hosts.iter().enumerate() {
            for (seq, l) in &h.copies {
                let t =
                    self.history.get(seq).unwrap_or_else(|| panic!("{} holds logfile {seq}, never begun", NAMES[i]));
                assert_eq!(l.origin, t.origin, "{}'s logfile {seq} has another origin", NAMES[i]);
                assert!(t.recs.starts_with(&l.recs), "{}'s logfile {seq} is not a prefix", NAMES[i]);
            }
            assert_eq!(h.device, self.image(h.pos), "{}'s device is not the history at {:?}", NAMES[i], h.pos);
        }
    }
}

/// The origin of logfile `seq` in a listing.
fn src_origin(remote: &[LogFile], seq: u32) -> Option<usize> {
    let r = remote.iter().find(|r| r.seq == seq)?;
    NAMES.iter().position(|n| *n == r.origin.as_str())
}

fn run(seed: u64) {
    let mut rng = Rng::new(seed);
    let mut w = World::new();
    for _ in 0..4000 {
        let me = rng.below(HOSTS);
        match rng.below(20) {
            0..=5 => w.write(),
            6 => w.rotate(),
            7 => w.log_delete(),
            8..=10 => w.gossip(me, rng.below(HOSTS)),
            11..=13 => w.fetch(me, 1 + rng.below(3), 1 + rng.below(6) as u64, &mut rng),
            14..=16 => w.replay(me, 1 + rng.below(5)),
            17 | 18 => w.strategy(me),
            _ => {
                if rng.below(8) == 0 {
                    w.designate(me);
                }
            }
        }
        w.check();
    }
    // The designation rests: the designated host begins, and everybody catches up with it.
    for _ in 0..100 {
        for me in 0..HOSTS {
            for o in 0..HOSTS {
                w.gossip(me, o);
            }
            w.strategy(me);
            w.fetch(me, 8, 8, &mut rng);
            w.replay(me, 64);
            w.check();
        }
    }
    assert_eq!(w.primary(), Some(w.designated), "seed {seed}: the designated host does not log");
    let end =
        w.history.iter().rev().find(|(_, l)| !l.recs.is_empty()).map_or(
            LogPosition { seq: 1, offset: 0 },
            |(&seq, l)| LogPosition { seq, offset: l.recs.len() as u64 * REC },
        );
    for (i, h) in w.hosts.iter().enumerate() {
        assert!(h.pos >= end, "seed {seed}: {} stays at {:?}, the history ends at {end:?}", NAMES[i], h.pos);
    }
    assert!(w.handovers > 0 || seed == 0, "seed {seed}: no handover happened");
}

#[test]
fn planned_handovers_lose_no_write_and_keep_one_history() {
    let seed = std::env::var("MARS_SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    });
    eprintln!("handover_sim seed {seed} (replay: MARS_SIM_SEED={seed})");
    for k in 0..200 {
        run(seed.wrapping_add(k));
    }
}
