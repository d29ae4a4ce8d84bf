//! The members of the cluster as `marsadm view` shows them: from the tree (address, heartbeat)
//! and from the module (this host's connection to each, last contact).

use std::fmt;

use anyhow::Result;
use mars_core::tree::Key;
use serde::Serialize;

use crate::module_status::ModuleStatus;
use crate::tree::{key, Tree};

/// One member.
#[derive(Debug, Serialize)]
pub struct MemberView {
    /// Its host name.
    pub name: String,
    /// Its address (`ips/ip-NAME`).
    pub address: String,
    /// True for the host marsadm runs on.
    pub this_host: bool,
    /// This host's tree connection to it (`up`, `down`, `connecting`, `handshaking`), if this
    /// host talks to it directly.
    pub tree: Option<String>,
    /// Milliseconds since the connection came up.
    pub connected_ms: Option<u64>,
    /// Milliseconds since anything arrived from it over that connection.
    pub last_contact_ms_ago: Option<u64>,
    /// Why the last connection to it ended, if it did.
    pub error: Option<String>,
    /// Its heartbeat (`actual-NAME/alive`): `1` while its module runs, `0` after a clean stop.
    pub alive: Option<String>,
    /// Seconds since it last wrote its heartbeat, by the stamp's clock (hosts' clocks may differ
    /// by a few seconds).
    pub heartbeat_age_s: Option<u64>,
}

/// The members in `tree`, with what `module` knows of each.
pub fn members(tree: &mut Tree, module: &ModuleStatus, me: &str, now_nanos: u64) -> Result<Vec<MemberView>> {
    let mut out = Vec::new();
    // Directories the kernel made are root-only (mode 0700): a user's view may show no members.
    for (name, address) in tree.members().unwrap_or_default() {
        // The kernel's status directories are root-only: a user's view shows no heartbeats.
        let heartbeat =
            tree.get(&key(Key::HostStatus { host: &name, item: "alive" })?).ok().flatten().filter(|e| !e.deleted);
        let peer = module.peer(&name);
        out.push(MemberView {
            this_host: name == me,
            tree: peer.map(|p| p.tree.clone()),
            connected_ms: peer.and_then(|p| p.up_ms),
            last_contact_ms_ago: peer.and_then(|p| p.contact_ago_ms),
            error: peer.map(|p| p.error.clone()).filter(|e| !e.is_empty()),
            alive: heartbeat.as_ref().map(|h| h.value.clone()),
            heartbeat_age_s: heartbeat.map(|h| now_nanos.saturating_sub(h.stamp.nanos) / 1_000_000_000),
            name,
            address,
        });
    }
    Ok(out)
}

/// Milliseconds as seconds with one decimal.
fn secs(ms: u64) -> String {
    format!("{}.{} s", ms / 1000, (ms % 1000) / 100)
}

impl fmt::Display for MemberView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "  {:<16} {:<24}", self.name, self.address)?;
        if self.this_host {
            write!(f, " this host")?;
        } else {
            match self.tree.as_deref() {
                Some("up") => {
                    write!(f, " tree up {}", self.connected_ms.map(|m| format!("for {}", secs(m))).unwrap_or_default())?
                }
                Some(state) => write!(f, " tree {state}")?,
                None => write!(f, " (no direct connection)")?,
            }
            match self.last_contact_ms_ago {
                Some(ms) => write!(f, ", last contact {} ago", secs(ms))?,
                None if self.tree.is_some() => write!(f, ", never reached")?,
                None => {}
            }
            if let Some(e) = &self.error {
                if self.tree.as_deref() != Some("up") {
                    write!(f, ": {e}")?;
                }
            }
        }
        match (self.alive.as_deref(), self.heartbeat_age_s) {
            (Some("0"), _) => write!(f, "; stopped cleanly"),
            (Some(_), Some(age)) => write!(f, "; heartbeat {age} s ago"),
            _ => write!(f, "; no heartbeat yet"),
        }
    }
}
