// SPDX-License-Identifier: GPL-2.0

//! The strategy thread: one per host, reconciling the /mars tree with what the module does.
//!
//! Each round (every `interval_ms`) it reads the tree, publishes this host's status keys and
//! records what it saw in [`ModuleStatus`]. At this stage it handles cluster membership and the
//! host's heartbeat (`actual-HOST/alive`); resources are counted, their brick graphs come next.

use kernel::prelude::*;
use kernel::sync::Arc;

use crate::kx::kthread::Rounds;
use crate::mars_core::tree::{EntryRef, Key};
use crate::status::{Membership, ModuleStatus};
use crate::tree_store::{self, TargetBuf};

/// What one round found out.
pub(crate) struct RoundResult {
    /// Whether this host is a cluster member.
    pub(crate) membership: Membership,
    /// Resource directories under /mars.
    pub(crate) resources: usize,
}

/// The strategy of this host.
pub(crate) struct Strategy {
    status: Arc<ModuleStatus>,
    interval_ms: u32,
}

impl Strategy {
    /// Creates the strategy publishing into `status`, running a round every `interval_ms`.
    pub(crate) fn new(status: Arc<ModuleStatus>, interval_ms: u32) -> Strategy {
        Strategy { status, interval_ms }
    }

    fn try_round(&self) -> Result<RoundResult> {
        let mut resources = 0usize;
        match tree_store::for_each_resource(|_| {
            resources = resources.saturating_add(1);
            Ok(())
        }) {
            Ok(()) => {}
            Err(e) if e == ENOENT || e == ENOTDIR => {
                return Ok(RoundResult { membership: Membership::NoMars, resources: 0 })
            }
            Err(e) => return Err(e),
        }
        let host = self.status.host_str().ok_or(EINVAL)?;
        if !self.is_member(host)? {
            return Ok(RoundResult { membership: Membership::NotMember, resources });
        }
        self.publish_host_status(host, "alive", "1")?;
        Ok(RoundResult { membership: Membership::Member, resources })
    }

    /// True if `ips/ip-HOST` exists (and is not deleted).
    fn is_member(&self, host: &str) -> Result<bool> {
        let key = Key::HostAddress { host }.to_buf().map_err(|_| EINVAL)?;
        let mut buf = TargetBuf::new()?;
        match tree_store::get(key.as_str(), &mut buf)? {
            Some(entry) => {
                self.status.observe(entry.stamp);
                Ok(!entry.deleted)
            }
            None => Ok(false),
        }
    }

    /// Writes `actual-HOST/ITEM` = `value` with a fresh stamp (the refresh is the heartbeat).
    fn publish_host_status(&self, host: &str, item: &str, value: &str) -> Result {
        let key = Key::HostStatus { host, item }.to_buf().map_err(|_| EINVAL)?;
        let entry = EntryRef::live(key.as_str(), value, self.status.tick()).map_err(|_| EINVAL)?;
        tree_store::put(&entry, &mut TargetBuf::new()?)
    }
}

impl Rounds for Strategy {
    fn round(&self) -> u32 {
        let result = self.try_round();
        self.status.record_round(result);
        self.interval_ms
    }

    fn finish(&self) {
        // A clean stop says so, so peers need not wait for the heartbeat to age.
        if self.status.membership() == Membership::Member {
            if let Some(host) = self.status.host_str() {
                if let Err(e) = self.publish_host_status(host, "alive", "0") {
                    pr_warn!("cannot publish actual-{}/alive=0 on unload: error {}\n", host, e.to_errno());
                }
            }
        }
    }
}
