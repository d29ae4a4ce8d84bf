// SPDX-License-Identifier: GPL-2.0

//! The cluster tree in memory: every entry stored under /mars, the time this host learned it,
//! and the tree's digest, kept up to date as entries are stored.
//!
//! Pulls are served, digests taken and received entries judged from here, so their cost grows
//! with what changed, not with the size of the tree (reading every link of a 20,000-key tree
//! for each pull took longer than a peer waits for a reply). The module notes its own writes as
//! it makes them; writes by others (marsadm, an administrator's `ln -s`) are found by
//! [`TreeIndex::scan`], which lists again only the directories whose change time moved since
//! the last scan (creating, renaming or removing a link in a directory moves it) and reads only
//! the links there whose inode is not the one it read before.
//!
//! Why inodes: the module's own writes move the change time of their directory too, so a
//! directory that peers fill (6,000 keys pulled into one) is listed again every round, and
//! reading all its links each time held the tree's lock for longer than the merges could bear.
//! A link is never changed in place: a write makes a new link and renames it over the old one,
//! whose inode is freed only then, so a replaced link always shows another inode number. Only
//! when the same key is replaced twice between two scans can its inode number come back (the
//! file system reuses the number freed by the first rename); every [`VERIFY_EVERY`]th scan
//! therefore reads every link of the directories changed since the last such scan.

use kernel::prelude::*;
use kernel::rbtree::{RBTree, RBTreeNode};

use crate::kx::time::real_time_nanos;
use crate::kx::vfs::{self, KPath};
use crate::mars_core::gossip::{bucket_wanted, TreeDigest};
use crate::mars_core::lamport::Stamp;
use crate::mars_core::tree::{EntryRef, MAX_KEY_DEPTH, MAX_KEY_LEN};
use crate::mars_core::tree_codec::ChunkWriter;
use crate::tree_store::{self, TargetBuf, ROOT};

/// How far before the last scan a directory's change time still counts as a change: more than
/// the granularity of file system timestamps (a coarse clock, one tick behind at most).
const CTIME_MARGIN_NS: u64 = 1_000_000_000;

/// Every this many scans, one reads every link of the directories changed since the last such
/// scan, whatever their inode numbers (about once a minute at the default interval).
const VERIFY_EVERY: u32 = 60;

/// Directory entry type of a symlink (`DT_LNK`).
const DT_LNK: u32 = 10;

/// A key or a directory path relative to /mars (`a/b`; the root is empty), ordered bytewise.
struct Name(KVec<u8>);

impl Name {
    fn new(bytes: &[u8]) -> Result<Name> {
        let mut v = KVec::with_capacity(bytes.len(), GFP_KERNEL)?;
        v.extend_from_slice(bytes, GFP_KERNEL)?;
        Ok(Name(v))
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        self.0.as_slice() == other.0.as_slice()
    }
}

impl Eq for Name {}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Name) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Name) -> core::cmp::Ordering {
        self.0.as_slice().cmp(other.0.as_slice())
    }
}

/// One entry as the index holds it.
///
/// # Invariants
///
/// `value` is valid UTF-8 (it was copied from an `EntryRef`'s `&str`).
struct Stored {
    value: KVec<u8>,
    stamp: Stamp,
    deleted: bool,
    /// This host's real time when it stored the entry or found it stored.
    learned_ns: u64,
    /// The scan that last saw the entry's link (see [`TreeIndex::mark`]).
    mark: u32,
    /// Inode number of the link this entry was read from (0: not known, the module wrote it
    /// or it was learned otherwise; the next listing reads the link).
    ino: u64,
}

impl Stored {
    fn value(&self) -> &str {
        // INVARIANT (type): `value` is valid UTF-8, so this never falls back.
        core::str::from_utf8(&self.value).unwrap_or("")
    }

    fn entry<'a>(&'a self, key: &'a str) -> EntryRef<'a> {
        EntryRef { key, value: self.value(), stamp: self.stamp, deleted: self.deleted }
    }

    fn is(&self, entry: &EntryRef<'_>) -> bool {
        self.stamp == entry.stamp && self.deleted == entry.deleted && self.value() == entry.value
    }
}

/// What one [`TreeIndex::scan`] did, for status.
#[derive(Clone, Copy, Default)]
pub(crate) struct ScanReport {
    /// Newest stamp among the entries found changed, for the host's clock.
    pub(crate) newest: Stamp,
    /// Directories listed again, and links read.
    pub(crate) listed: u32,
    pub(crate) links_read: u32,
}

/// Where a [`TreeIndex::fill`] stopped.
pub(crate) enum Filled {
    /// Every wanted entry is in the chunk.
    Done,
    /// The chunk is full; the next one starts at this key.
    Full(KVec<u8>),
}

/// The tree in memory.
///
/// # Invariants
///
/// Every key in `entries` is a valid tree key (valid UTF-8); `digest` is the digest of exactly
/// the entries in `entries`.
pub(crate) struct TreeIndex {
    entries: RBTree<Name, Stored>,
    /// Directories under /mars that hold entries or may (the root is the empty name), each with
    /// the mark of the scan that last saw it.
    dirs: RBTree<Name, u32>,
    digest: TreeDigest,
    /// Real time at the start of the last complete scan (`None`: none yet, the next one reads
    /// everything), and of the last one that read every link of a changed directory.
    scanned_at: Option<u64>,
    verified_at: Option<u64>,
    /// Complete scans since the last verifying one.
    since_verify: u32,
    /// Number of the scan in progress; what a listing saw carries it, what it did not see keeps
    /// an older one and is dropped.
    mark: u32,
}

impl TreeIndex {
    /// An empty index: the first scan fills it.
    pub(crate) fn new() -> TreeIndex {
        TreeIndex {
            entries: RBTree::new(),
            dirs: RBTree::new(),
            digest: TreeDigest::new(),
            scanned_at: None,
            verified_at: None,
            since_verify: 0,
            mark: 0,
        }
    }

    /// The digest of the tree as stored now.
    pub(crate) fn digest(&self) -> TreeDigest {
        self.digest
    }

    /// Whether `entry` would replace what the index holds for its key (the Lamport rule). The
    /// caller reads the stored link before writing, as a writer other than the module may have
    /// stored a newer entry the index has not seen yet.
    pub(crate) fn would_take(&self, entry: &EntryRef<'_>) -> Result<bool> {
        let name = Name::new(entry.key.as_bytes())?;
        Ok(crate::mars_core::tree::supersedes(entry, self.entries.get(&name).map(|s| s.entry(entry.key)).as_ref()))
    }

    /// Takes note of `entry`, just stored under /mars or found there.
    pub(crate) fn note(&mut self, entry: &EntryRef<'_>) -> Result {
        let mark = self.mark;
        self.note_at(entry, real_time_nanos(), mark, 0)
    }

    /// Notes `entry`, read from the link with inode number `ino` (0: not known).
    fn note_at(&mut self, entry: &EntryRef<'_>, now: u64, mark: u32, ino: u64) -> Result {
        let name = Name::new(entry.key.as_bytes())?;
        if let Some(stored) = self.entries.get_mut(&name) {
            stored.mark = mark;
            stored.ino = ino;
            if stored.is(entry) {
                return Ok(());
            }
            let mut value = KVec::with_capacity(entry.value.len(), GFP_KERNEL)?;
            value.extend_from_slice(entry.value.as_bytes(), GFP_KERNEL)?;
            self.digest.remove(&stored.entry(entry.key));
            // INVARIANT: `value` is copied from a `&str`; the digest swaps the old entry for the
            // new one.
            stored.value = value;
            stored.stamp = entry.stamp;
            stored.deleted = entry.deleted;
            stored.learned_ns = now;
            self.digest.add(entry);
            return Ok(());
        }
        let mut value = KVec::with_capacity(entry.value.len(), GFP_KERNEL)?;
        value.extend_from_slice(entry.value.as_bytes(), GFP_KERNEL)?;
        let stored = Stored { value, stamp: entry.stamp, deleted: entry.deleted, learned_ns: now, mark, ino };
        let node = RBTreeNode::new(name, stored, GFP_KERNEL)?;
        // INVARIANT: the key was validated as part of `entry`; the digest counts the new entry.
        self.entries.insert(node);
        self.digest.add(entry);
        Ok(())
    }

    /// Copies into `chunk` the entries learned at or after `since_ns` whose digest bucket is in
    /// `buckets`, in key order from `from` on (inclusive), until the chunk is full.
    pub(crate) fn fill(
        &mut self,
        from: &[u8],
        since_ns: u64,
        buckets: u64,
        chunk: &mut ChunkWriter<'_>,
    ) -> Result<Filled> {
        let Some(mut cursor) = self.entries.cursor_lower_bound_mut(&Name::new(from)?) else {
            return Ok(Filled::Done);
        };
        loop {
            let (name, stored) = cursor.current();
            let key = core::str::from_utf8(&name.0).map_err(|_| EINVAL)?;
            let wanted = stored.learned_ns >= since_ns && bucket_wanted(key, buckets);
            if wanted && !chunk.push(&stored.entry(key))? {
                let mut next = KVec::with_capacity(name.0.len(), GFP_KERNEL)?;
                next.extend_from_slice(&name.0, GFP_KERNEL)?;
                return Ok(Filled::Full(next));
            }
            match cursor.move_next() {
                Some(c) => cursor = c,
                None => return Ok(Filled::Done),
            }
        }
    }

    /// Brings the index in line with /mars: lists again the directories changed since the last
    /// scan and reads their new links.
    pub(crate) fn scan(&mut self) -> Result<ScanReport> {
        let now = real_time_nanos();
        let verify = self.since_verify.saturating_add(1) >= VERIFY_EVERY;
        let since = if verify { self.verified_at } else { self.scanned_at };
        // After a step of the clock backwards change times no longer compare: read everything.
        let changed_after = match since {
            Some(t) if t <= now => t.saturating_sub(CTIME_MARGIN_NS),
            _ => 0,
        };
        self.mark = self.mark.wrapping_add(1);
        let mut scan = Scan {
            changed_after,
            trust_ino: !verify && changed_after > 0,
            now,
            report: ScanReport::default(),
            target: TargetBuf::new()?,
            key: KVec::with_capacity(MAX_KEY_LEN, GFP_KERNEL)?,
        };
        let mut dir = KVec::with_capacity(MAX_KEY_LEN, GFP_KERNEL)?;
        self.scan_dir(&mut dir, 1, &mut scan)?;
        self.scanned_at = Some(now);
        if scan.trust_ino {
            self.since_verify = self.since_verify.saturating_add(1);
        } else {
            self.verified_at = Some(now);
            self.since_verify = 0;
        }
        Ok(scan.report)
    }

    /// Scans the directory `dir` (relative), whose entries have `depth` key components.
    fn scan_dir(&mut self, dir: &mut KVec<u8>, depth: usize, scan: &mut Scan) -> Result {
        let path = if dir.is_empty() { KPath::join(&[ROOT])? } else { KPath::join(&[ROOT, b"/", dir])? };
        let ctime = match vfs::dir_ctime(&path) {
            Ok(t) => t,
            // Removed meanwhile (a resource being deleted): nothing of it is stored any more.
            Err(e) if e == ENOENT || e == ENOTDIR => return self.drop_dir(dir),
            Err(e) => return Err(e),
        };
        let known = self.dirs.get(&Name::new(dir)?).is_some();
        if known && scan.changed_after > 0 && ctime < scan.changed_after {
            // The same names as at the last scan: only its subdirectories can hold changes.
            for sub in self.subdirs(dir, false)? {
                self.scan_subdir(dir, &sub, depth, scan)?;
            }
            return Ok(());
        }
        scan.report.listed = scan.report.listed.saturating_add(1);
        let names = match list_names(&path, depth) {
            Ok(names) => names,
            Err(e) if e == ENOENT || e == ENOTDIR => return self.drop_dir(dir),
            Err(e) => return Err(e),
        };
        if !known {
            self.dirs.insert(RBTreeNode::new(Name::new(dir)?, self.mark, GFP_KERNEL)?);
        }
        let mut at = 0usize;
        while let (Some(&is_link), Some(&len)) = (names.get(at), names.get(at + 1)) {
            let ino = names.get(at + 2..at + 10).and_then(|b| b.try_into().ok()).map_or(0, u64::from_ne_bytes);
            let name = names.get(at + 10..at + 10 + usize::from(len)).ok_or(EINVAL)?;
            at += 10 + usize::from(len);
            if is_link == 1 {
                if !(scan.trust_ino && ino != 0 && self.same_link(dir, name, ino, scan)?) {
                    self.read_link(dir, name, ino, scan)?;
                }
            } else {
                self.scan_subdir(dir, name, depth, scan)?;
            }
        }
        // What the listing did not show is gone.
        let mark = self.mark;
        for stale in self.keys_below(dir, |key, s| s.mark != mark && child_of(key, dir).is_some())? {
            self.remove_entry(&stale)?;
        }
        for stale in self.subdirs(dir, true)? {
            self.drop_dir(&join(dir, &stale)?)?;
        }
        Ok(())
    }

    /// Marks the subdirectory `dir/name` as seen and scans it.
    fn scan_subdir(&mut self, dir: &[u8], name: &[u8], depth: usize, scan: &mut Scan) -> Result {
        let mut sub = join(dir, name)?;
        if let Some(mark) = self.dirs.get_mut(&Name::new(&sub)?) {
            *mark = self.mark;
        }
        self.scan_dir(&mut sub, depth + 1, scan)
    }

    /// Whether the index holds `dir/name` as read from the link with inode number `ino`, the
    /// one the listing shows: then the link is the same and is only marked as seen.
    fn same_link(&mut self, dir: &[u8], name: &[u8], ino: u64, scan: &mut Scan) -> Result<bool> {
        // The key is built in the scan's buffer: a lookup per listed link allocates nothing.
        let mut key = Name(core::mem::replace(&mut scan.key, KVec::new()));
        key.0.clear();
        if !dir.is_empty() {
            key.0.extend_from_slice(dir, GFP_KERNEL)?;
            key.0.push(b'/', GFP_KERNEL)?;
        }
        key.0.extend_from_slice(name, GFP_KERNEL)?;
        let same = match self.entries.get_mut(&key) {
            Some(stored) if stored.ino == ino => {
                stored.mark = self.mark;
                true
            }
            _ => false,
        };
        scan.key = key.0;
        Ok(same)
    }

    /// Reads the link `dir/name` (inode number `ino` in the listing) and notes its entry; a
    /// link that is gone or does not parse is left unmarked, so the sweep after the listing
    /// drops it. The listing came first: if the link was replaced since, the entry read is the
    /// newer one and `ino` the older, which only makes the next listing read it again.
    fn read_link(&mut self, dir: &[u8], name: &[u8], ino: u64, scan: &mut Scan) -> Result {
        let key = join(dir, name)?;
        let Ok(key) = core::str::from_utf8(&key) else { return Ok(()) };
        scan.report.links_read = scan.report.links_read.saturating_add(1);
        let Some(entry) = tree_store::get_valid(key, &mut scan.target)? else { return Ok(()) };
        scan.report.newest = scan.report.newest.max(entry.stamp);
        let mark = self.mark;
        self.note_at(&entry, scan.now, mark, ino)
    }

    /// Names of the known directories directly below `dir`; with `stale`, only those the scan
    /// in progress has not seen.
    fn subdirs(&self, dir: &[u8], stale: bool) -> Result<KVec<KVec<u8>>> {
        let mut out = KVec::new();
        for (name, &mark) in self.dirs.iter() {
            if let Some(child) = child_of(&name.0, dir).filter(|_| !stale || mark != self.mark) {
                out.push(Name::new(child)?.0, GFP_KERNEL)?;
            }
        }
        Ok(out)
    }

    /// Keys of the entries below the directory `dir` for which `pred(key, stored)` holds.
    fn keys_below(&mut self, dir: &[u8], pred: impl Fn(&[u8], &Stored) -> bool) -> Result<KVec<KVec<u8>>> {
        let mut out = KVec::new();
        // Keys below `dir` all start with `dir/`, so they follow each other in byte order.
        let start = if dir.is_empty() { Name::new(b"")? } else { Name(join(dir, b"")?) };
        let Some(mut cursor) = self.entries.cursor_lower_bound_mut(&start) else { return Ok(out) };
        loop {
            let (name, stored) = cursor.current();
            if !is_below(&name.0, dir) {
                break;
            }
            if pred(&name.0, stored) {
                out.push(Name::new(&name.0)?.0, GFP_KERNEL)?;
            }
            match cursor.move_next() {
                Some(c) => cursor = c,
                None => break,
            }
        }
        Ok(out)
    }

    /// Forgets the entry `key`.
    fn remove_entry(&mut self, key: &[u8]) -> Result {
        let Some(stored) = self.entries.remove(&Name::new(key)?) else { return Ok(()) };
        let key = core::str::from_utf8(key).map_err(|_| EINVAL)?;
        // INVARIANT: the digest stops counting the entry that left `entries`.
        self.digest.remove(&stored.entry(key));
        Ok(())
    }

    /// Forgets the directory `dir` and everything below it.
    fn drop_dir(&mut self, dir: &[u8]) -> Result {
        for key in self.keys_below(dir, |_, _| true)?.iter() {
            self.remove_entry(key)?;
        }
        let mut gone = KVec::new();
        for (name, _) in self.dirs.iter() {
            if name.0.as_slice() == dir || is_below(&name.0, dir) {
                gone.push(Name::new(&name.0)?, GFP_KERNEL)?;
            }
        }
        for name in gone.iter() {
            self.dirs.remove(name);
        }
        Ok(())
    }
}

/// What one [`TreeIndex::scan`] carries along.
struct Scan {
    /// Directories changed at or after this real time are listed again (0: all).
    changed_after: u64,
    /// Whether a listed link whose inode number the index holds is taken as read (not in a
    /// verifying scan, nor when everything is read).
    trust_ino: bool,
    /// The scan's start, the learned time of what it finds changed.
    now: u64,
    report: ScanReport,
    target: TargetBuf,
    /// Room for one key, for lookups.
    key: KVec<u8>,
}

/// `dir/name` (just `name` at the root).
fn join(dir: &[u8], name: &[u8]) -> Result<KVec<u8>> {
    let mut key = KVec::with_capacity(dir.len() + 1 + name.len(), GFP_KERNEL)?;
    if !dir.is_empty() {
        key.extend_from_slice(dir, GFP_KERNEL)?;
        key.push(b'/', GFP_KERNEL)?;
    }
    key.extend_from_slice(name, GFP_KERNEL)?;
    Ok(key)
}

/// Whether `path` lies below the directory `dir`, at any depth.
fn is_below(path: &[u8], dir: &[u8]) -> bool {
    if dir.is_empty() {
        return !path.is_empty();
    }
    path.strip_prefix(dir).is_some_and(|rest| rest.first() == Some(&b'/'))
}

/// The last component of `path` if `path` lies directly in the directory `dir`.
fn child_of<'a>(path: &'a [u8], dir: &[u8]) -> Option<&'a [u8]> {
    let rest = if dir.is_empty() { path } else { path.strip_prefix(dir)?.strip_prefix(b"/")? };
    (!rest.is_empty() && !rest.contains(&b'/')).then_some(rest)
}

/// The names in the directory `path` whose entries have `depth` key components that can be
/// keys (symlinks) or hold keys (directories), each as its type (1 for a link), its length, its
/// inode number (8 bytes, native order) and its bytes. Names starting with `.` (temporary links, the secret) and `lost+found` are not
/// keys. The names are taken first and looked up after: nothing looks up names in a directory
/// while it is being iterated.
fn list_names(path: &KPath, depth: usize) -> Result<KVec<u8>> {
    let mut names: KVec<u8> = KVec::new();
    vfs::list(path, |vfs::DirEntry { name, dt_type, ino }| {
        let wanted = (dt_type == vfs::DT_DIR && depth < MAX_KEY_DEPTH) || dt_type == DT_LNK;
        if !wanted || name.starts_with(b".") || name == b"lost+found" || name.len() > MAX_KEY_LEN {
            return Ok(());
        }
        names.push(u8::from(dt_type == DT_LNK), GFP_KERNEL)?;
        names.push(u8::try_from(name.len()).map_err(|_| EINVAL)?, GFP_KERNEL)?;
        names.extend_from_slice(&ino.to_ne_bytes(), GFP_KERNEL)?;
        names.extend_from_slice(name, GFP_KERNEL)?;
        Ok(())
    })?;
    Ok(names)
}
