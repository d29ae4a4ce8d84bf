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
use mars_core::tree::EntryRef;
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
    fn malformed_entries_are_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::os::unix::fs::symlink("no stamp here", dir.path().join("uuid")).unwrap();
        let mut tree = Tree::new(dir.path(), "node1", Stamp::ZERO);
        let e = tree.get("uuid").unwrap_err();
        assert!(e.to_string().contains("is not a valid tree entry"), "{e}");
    }
}
