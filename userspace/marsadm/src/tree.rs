//! The cluster tree under /mars, as marsadm reads and writes it.
//!
//! Same format as the kernel's (docs/tree.md, `mars_core::tree_codec`): one symlink per key,
//! replaced atomically by creating it under a temporary name (`.u-NAME.PID`) and renaming it over
//! the key.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use mars_core::lamport::{HostId, LamportClock, Stamp};
use mars_core::tree::{supersedes, validate_resource_name, EntryRef, Key};
use mars_core::tree_codec::{format_link_target, parse_link_target, MAX_LINK_TARGET_LEN};

/// One entry read from the tree, owning its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key.
    pub key: String,
    /// The value (empty for a deleted key).
    pub value: String,
    /// When and by whom it was written.
    pub stamp: Stamp,
    /// True if the key was deleted.
    pub deleted: bool,
}

/// What the directory of one resource holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResourceContents {
    /// Keys that are not deleted, in the directory and its subdirectories (`todo-HOST/`, ...).
    pub live_keys: usize,
    /// Logfiles (regular files named `log-...`).
    pub logfiles: usize,
}

/// The text of a key.
pub fn key(k: Key<'_>) -> Result<String> {
    Ok(k.to_buf().map_err(|e| anyhow!("invalid key: {e}"))?.as_str().to_string())
}

/// The tree rooted at a /mars directory.
pub struct Tree {
    root: PathBuf,
    clock: LamportClock,
}

impl Tree {
    /// Opens the tree at `root` for host `host`, whose Lamport clock starts past `seen`.
    pub fn new(root: &Path, host: &str, seen: Stamp) -> Tree {
        let mut clock = LamportClock::new(HostId::from_name(host.as_bytes()));
        clock.observe(seen);
        Tree { root: root.to_path_buf(), clock }
    }

    /// Reads the entry of `key`, if any.
    pub fn get(&mut self, key: &str) -> Result<Option<Entry>> {
        let path = self.root.join(key);
        let target = match fs::read_link(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let entry = parse_link_target(key, target.as_os_str().as_bytes())
            .map_err(|e| anyhow!("{} is not a valid tree entry: {e}", path.display()))?;
        self.clock.observe(entry.stamp);
        Ok(Some(Entry {
            key: key.to_string(),
            value: entry.value.to_string(),
            stamp: entry.stamp,
            deleted: entry.deleted,
        }))
    }

    /// Sets `key` to `value` with a fresh stamp, later than anything this tree has seen.
    pub fn set(&mut self, key: &str, value: &str) -> Result<Stamp> {
        // Observe the current entry first, so the new stamp is later than it.
        self.get(key)?;
        let stamp = self.clock.tick(now_nanos());
        let entry = EntryRef::live(key, value, stamp).map_err(|e| anyhow!("cannot set {key}: {e}"))?;
        self.write(&entry)?;
        Ok(stamp)
    }

    /// Stores `entry` (received from a peer, with its own stamp) if it supersedes what is stored,
    /// by the Lamport rule of docs/tree.md; returns whether it did.
    pub fn merge(&mut self, entry: &EntryRef<'_>) -> Result<bool> {
        self.clock.observe(entry.stamp);
        let stored = self.get(entry.key)?;
        let stored_ref = match &stored {
            Some(e) if e.deleted => Some(EntryRef::tombstone(&e.key, e.stamp)),
            Some(e) => Some(EntryRef::live(&e.key, &e.value, e.stamp)),
            None => None,
        }
        .transpose()
        .map_err(|e| anyhow!("stored entry {} is invalid: {e}", entry.key))?;
        if !supersedes(entry, stored_ref.as_ref()) {
            return Ok(false);
        }
        self.write(entry)?;
        Ok(true)
    }

    /// Deletes `key`: a tombstone with a fresh stamp, so that peers learn of the deletion.
    pub fn delete(&mut self, key: &str) -> Result<Stamp> {
        self.get(key)?;
        let stamp = self.clock.tick(now_nanos());
        let entry = EntryRef::tombstone(key, stamp).map_err(|e| anyhow!("cannot delete {key}: {e}"))?;
        self.write(&entry)?;
        Ok(stamp)
    }

    /// Makes every entry written so far durable: an fsync of the root directory, which on the
    /// /mars filesystem (ext4, xfs) commits the journal with every change of the tree, so that
    /// a power cut right after a command does not take back what it reported done.
    pub fn sync(&self) -> Result<()> {
        fs::File::open(&self.root)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("cannot make the changes in {} durable", self.root.display()))
    }

    /// The root directory (normally /mars).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The hosts with a live `ips/ip-HOST`, with their addresses, sorted by name.
    pub fn members(&mut self) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for (name, kind) in list_dir(&self.root.join("ips"))? {
            let Some(host) = name.strip_prefix("ip-") else { continue };
            if !kind.is_symlink() {
                continue;
            }
            if let Some(addr) = self.value(&format!("ips/{name}"))? {
                out.push((host.to_string(), addr));
            }
        }
        out.sort();
        Ok(out)
    }

    /// The value of `key` unless it is missing or deleted.
    pub fn value(&mut self, key: &str) -> Result<Option<String>> {
        Ok(self.get(key)?.filter(|e| !e.deleted).map(|e| e.value))
    }

    /// The names of the resource directories (`resource-NAME`) under the root, sorted; none if
    /// the root does not exist.
    pub fn resource_dirs(&self) -> Result<Vec<String>> {
        resource_dirs(&self.root)
    }

    /// What `resource-RES/` holds; `None` if there is no such directory.
    pub fn resource_contents(&mut self, res: &str) -> Result<Option<ResourceContents>> {
        let top = format!("resource-{res}");
        if !self.root.join(&top).is_dir() {
            return Ok(None);
        }
        let mut contents = ResourceContents::default();
        let mut dirs = vec![top];
        while let Some(dir) = dirs.pop() {
            for (name, kind) in list_dir(&self.root.join(&dir))? {
                let key = format!("{dir}/{name}");
                if name.starts_with('.') {
                    // Temporary names of atomic updates, never keys.
                } else if kind.is_symlink() {
                    if self.value(&key)?.is_some() {
                        contents.live_keys += 1;
                    }
                } else if kind.is_dir() {
                    dirs.push(key);
                } else if kind.is_file() && name.starts_with("log-") {
                    contents.logfiles += 1;
                }
            }
        }
        Ok(Some(contents))
    }

    /// True if resource `res` has at least one live key (a directory holding only deleted
    /// keys is what a deleted resource leaves behind).
    pub fn resource_exists(&mut self, res: &str) -> Result<bool> {
        Ok(self.resource_contents(res)?.is_some_and(|c| c.live_keys > 0))
    }

    fn write(&self, entry: &EntryRef<'_>) -> Result<()> {
        let mut buf = vec![0u8; MAX_LINK_TARGET_LEN];
        let n = format_link_target(entry, &mut buf).map_err(|e| anyhow!("cannot encode {}: {e}", entry.key))?;
        let target = std::ffi::OsStr::from_bytes(&buf[..n]);
        let path = self.root.join(entry.key);
        let dir = path.parent().ok_or_else(|| anyhow!("key {} has no directory", entry.key))?;
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let name = path.file_name().ok_or_else(|| anyhow!("key {} has no name", entry.key))?;
        let tmp = dir.join(format!(".u-{}.{}", name.to_string_lossy(), std::process::id()));
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(target, &tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        fs::rename(&tmp, &path).with_context(|| format!("cannot replace {}", path.display()))?;
        Ok(())
    }
}

/// The names of the resource directories (`resource-NAME`) under `root`, sorted; none if `root`
/// does not exist.
pub fn resource_dirs(root: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for (name, kind) in list_dir(root)? {
        if let Some(res) = name.strip_prefix("resource-") {
            if kind.is_dir() && validate_resource_name(res.as_bytes()).is_ok() {
                names.push(res.to_string());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// The UTF-8 names in `dir` with their file types; nothing if `dir` does not exist (any more).
fn list_dir(dir: &Path) -> Result<Vec<(String, fs::FileType)>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
        };
        let kind = match entry.file_type() {
            Ok(k) => k,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot stat {}", entry.path().display())),
        };
        if let Ok(name) = entry.file_name().into_string() {
            out.push((name, kind));
        }
    }
    Ok(out)
}

/// Real time in nanoseconds since the Unix epoch.
fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_then_get_round_trips_and_stamps_increase() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut tree = Tree::new(dir.path(), "node1", Stamp::ZERO);
        assert_eq!(tree.get("ips/ip-node1").expect("reads"), None);
        let s1 = tree.set("ips/ip-node1", "10.0.0.1").expect("sets");
        let s2 = tree.set("ips/ip-node1", "10.0.0.2").expect("sets");
        assert!(s2 > s1);
        let e = tree.get("ips/ip-node1").expect("reads").expect("exists");
        assert_eq!((e.value.as_str(), e.stamp, e.deleted), ("10.0.0.2", s2, false));
        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(dir.path().join("ips")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("ip-node1")]);
    }

    #[test]
    fn a_later_writer_wins_even_with_a_slow_clock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let future = Stamp::new(u64::MAX / 2, HostId::from_name(b"node2"));
        std::os::unix::fs::symlink(format!("x|{future}"), dir.path().join("uuid")).unwrap();
        let mut tree = Tree::new(dir.path(), "node1", Stamp::ZERO);
        let s = tree.set("uuid", "y").expect("sets");
        assert!(s > future);
    }

    #[test]
    fn lists_resources_and_counts_live_keys_and_logfiles() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut tree = Tree::new(dir.path(), "node1", Stamp::ZERO);
        assert_eq!(tree.resource_dirs().unwrap(), Vec::<String>::new());
        assert_eq!(tree.resource_contents("r0").unwrap(), None);
        tree.set("resource-r1/size", "4096").unwrap();
        tree.set("resource-r0/size", "4096").unwrap();
        tree.set("resource-r0/todo-node1/attach", "1").unwrap();
        fs::write(dir.path().join("resource-r0/log-000000001-node1"), b"").unwrap();
        fs::write(dir.path().join("resource-r0/.u-size.1"), b"").unwrap();
        fs::create_dir(dir.path().join("resource-BAD")).unwrap();
        fs::write(dir.path().join("resource-r2"), b"not a directory").unwrap();
        assert_eq!(tree.resource_dirs().unwrap(), vec!["r0".to_string(), "r1".to_string()]);
        assert_eq!(tree.resource_contents("r0").unwrap(), Some(ResourceContents { live_keys: 2, logfiles: 1 }));
        assert!(tree.resource_exists("r0").unwrap());
        assert!(!tree.resource_exists("r9").unwrap());
    }

    #[test]
    fn tombstones_are_not_live() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir(dir.path().join("resource-r0")).unwrap();
        let stone = format!("|{},deleted", Stamp::new(5, HostId(1)));
        std::os::unix::fs::symlink(&stone, dir.path().join("resource-r0/size")).unwrap();
        let mut tree = Tree::new(dir.path(), "node1", Stamp::ZERO);
        assert!(tree.get("resource-r0/size").unwrap().expect("entry").deleted);
        assert_eq!(tree.value("resource-r0/size").unwrap(), None);
        assert_eq!(tree.resource_contents("r0").unwrap(), Some(ResourceContents::default()));
        assert!(!tree.resource_exists("r0").unwrap());
    }

    #[test]
    fn malformed_entries_are_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::os::unix::fs::symlink("no stamp here", dir.path().join("uuid")).unwrap();
        let mut tree = Tree::new(dir.path(), "node1", Stamp::ZERO);
        let e = tree.get("uuid").unwrap_err();
        assert!(e.to_string().contains("is not a valid tree entry"), "{e}");
    }
}
