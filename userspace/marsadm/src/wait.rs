//! Waiting for the kernel's status keys after marsadm has written a switch.
//!
//! The tree is polled every [`POLL_INTERVAL`] until every goal holds or the timeout passes. On
//! timeout the error quotes the kernel's `actual-HOST/error` if it is set.

use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use mars_core::resource_keys::Status;

use crate::tree::{key, Tree};

/// How often the tree is read while waiting.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Something about one resource on one host that marsadm waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Goal {
    /// `resource-RES/actual-HOST/ITEM` holds exactly this value.
    Status {
        /// The status item, e.g. `is-attached`.
        item: Status,
        /// The value waited for, e.g. `1`.
        value: &'static str,
    },
    /// `resource-RES/actual-HOST/ITEM` is a decimal counter that has reached at least this.
    Counter {
        /// The status item, e.g. `log-rotate`.
        item: Status,
        /// The least value waited for.
        at_least: u64,
    },
    /// The resource directory is gone, or holds neither live keys nor logfiles.
    Deleted,
}

/// Where to wait: the resource, the host whose status counts, and for how long.
pub struct Waiter<'a> {
    /// The resource.
    pub resource: &'a str,
    /// The host whose kernel reports.
    pub host: &'a str,
    /// How long to wait in all.
    pub timeout: Duration,
}

impl Waiter<'_> {
    /// Polls `tree` until every goal holds; fails when the timeout passes first.
    pub fn until(&self, tree: &mut Tree, goals: &[Goal]) -> Result<()> {
        let start = Instant::now();
        loop {
            let Some(missing) = self.first_unmet(tree, goals)? else {
                return Ok(());
            };
            let elapsed = start.elapsed();
            if elapsed >= self.timeout {
                let error = self.kernel_error(tree)?;
                bail!(self.timeout_message(&missing, error.as_deref()));
            }
            sleep(POLL_INTERVAL.min(self.timeout - elapsed));
        }
    }

    /// Describes the first goal that does not hold yet; `None` if all hold.
    fn first_unmet(&self, tree: &mut Tree, goals: &[Goal]) -> Result<Option<String>> {
        for goal in goals {
            let missing = match *goal {
                Goal::Status { item, value } => {
                    let k = self.status_key(item)?;
                    match tree.value(&k)? {
                        Some(v) if v == value => None,
                        Some(v) => Some(format!("{k} to be {value} (it is {v})")),
                        None => Some(format!("{k} to be {value} (it is not set)")),
                    }
                }
                Goal::Counter { item, at_least } => {
                    let k = self.status_key(item)?;
                    let now = match tree.value(&k)? {
                        Some(v) => v.parse::<u64>().with_context(|| format!("{k} holds {v:?}, not a number"))?,
                        None => 0,
                    };
                    (now < at_least).then(|| format!("{k} to reach {at_least} (it is {now})"))
                }
                Goal::Deleted => match tree.resource_contents(self.resource)? {
                    Some(c) if c.live_keys > 0 || c.logfiles > 0 => Some(format!(
                        "resource-{} to be removed ({} keys and {} logfiles are left)",
                        self.resource, c.live_keys, c.logfiles
                    )),
                    _ => None,
                },
            };
            if missing.is_some() {
                return Ok(missing);
            }
        }
        Ok(None)
    }

    /// The kernel's error text for the resource on this host, if it reports one.
    fn kernel_error(&self, tree: &mut Tree) -> Result<Option<String>> {
        let k = self.status_key(Status::Error)?;
        Ok(tree.value(&k)?.filter(|e| !e.is_empty()))
    }

    /// The error of a timed-out wait for `missing`, quoting the kernel's `error` if there is one.
    fn timeout_message(&self, missing: &str, error: Option<&str>) -> String {
        let (res, host, secs) = (self.resource, self.host, self.timeout.as_secs_f64());
        let stays = "the request stays in /mars and mars.ko keeps trying";
        match error {
            Some(e) => {
                format!("{res}: mars.ko on {host} says: {e} (gave up after {secs} s waiting for {missing}; {stays})")
            }
            None => format!(
                "{res}: timed out after {secs} s waiting for {missing}; mars.ko reported no error: see dmesg and \
                 `marsadm view {res}`, or allow more time with --timeout ({stays})"
            ),
        }
    }

    fn status_key(&self, item: Status) -> Result<String> {
        key(item.key(self.resource, self.host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mars_core::lamport::Stamp;

    fn waiter(timeout_ms: u64) -> Waiter<'static> {
        Waiter { resource: "r0", host: "node1", timeout: Duration::from_millis(timeout_ms) }
    }

    #[test]
    fn returns_at_once_when_the_goals_hold() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut tree = Tree::new(dir.path(), "node1", Stamp::ZERO);
        tree.set("resource-r0/actual-node1/is-attached", "1").unwrap();
        tree.set("resource-r0/actual-node1/log-rotate", "3").unwrap();
        let goals = [
            Goal::Status { item: Status::IsAttached, value: "1" },
            Goal::Counter { item: Status::LogRotate, at_least: 2 },
        ];
        let start = Instant::now();
        waiter(0).until(&mut tree, &goals).expect("holds");
        assert!(start.elapsed() < POLL_INTERVAL);
        // A resource directory with live keys is not deleted; one that is gone is.
        waiter(0).until(&mut tree, &[Goal::Deleted]).unwrap_err();
        std::fs::remove_dir_all(dir.path().join("resource-r0")).unwrap();
        waiter(0).until(&mut tree, &[Goal::Deleted]).expect("gone");
    }

    #[test]
    fn sees_a_key_written_while_it_waits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        let kernel = std::thread::spawn(move || {
            sleep(Duration::from_millis(250));
            let mut tree = Tree::new(&root, "node1", Stamp::ZERO);
            tree.set("resource-r0/actual-node1/is-primary", "1").expect("kernel writes");
        });
        let mut tree = Tree::new(dir.path(), "node1", Stamp::ZERO);
        let start = Instant::now();
        waiter(5000).until(&mut tree, &[Goal::Status { item: Status::IsPrimary, value: "1" }]).expect("sees the key");
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(250) && took < Duration::from_millis(250) + 3 * POLL_INTERVAL,
            "{took:?}"
        );
        kernel.join().expect("kernel thread");
    }

    #[test]
    fn times_out_quoting_the_kernel_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut tree = Tree::new(dir.path(), "node1", Stamp::ZERO);
        tree.set("resource-r0/actual-node1/is-primary", "1").unwrap();
        tree.set("resource-r0/actual-node1/error", "/dev/mars/r0 is in use (1 openers)").unwrap();
        let start = Instant::now();
        let e = waiter(300).until(&mut tree, &[Goal::Status { item: Status::IsPrimary, value: "0" }]).unwrap_err();
        assert!(start.elapsed() >= Duration::from_millis(300));
        let e = e.to_string();
        assert!(e.starts_with("r0: mars.ko on node1 says: /dev/mars/r0 is in use (1 openers)"), "{e}");
        assert!(e.contains("waiting for resource-r0/actual-node1/is-primary to be 0 (it is 1)"), "{e}");
    }

    #[test]
    fn times_out_saying_what_was_awaited() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut tree = Tree::new(dir.path(), "node1", Stamp::ZERO);
        tree.set("resource-r0/actual-node1/error", "").unwrap();
        let e = waiter(100).until(&mut tree, &[Goal::Status { item: Status::IsAttached, value: "1" }]).unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains(
                "timed out after 0.1 s waiting for resource-r0/actual-node1/is-attached to be 1 (it is not set)"
            ),
            "{e}"
        );
        assert!(e.contains("mars.ko reported no error"), "{e}");
        tree.set("resource-r0/actual-node1/log-delete", "1").unwrap();
        let e = waiter(0).until(&mut tree, &[Goal::Counter { item: Status::LogDelete, at_least: 2 }]).unwrap_err();
        assert!(e.to_string().contains("log-delete to reach 2 (it is 1)"), "{e}");
        std::fs::write(dir.path().join("resource-r0/log-000000001-node1"), b"").unwrap();
        let e = waiter(0).until(&mut tree, &[Goal::Deleted]).unwrap_err();
        assert!(e.to_string().contains("resource-r0 to be removed (2 keys and 1 logfiles are left)"), "{e}");
    }
}
