//! Cluster commands: create-cluster.

use std::net::IpAddr;

use anyhow::{anyhow, bail, Result};
use mars_core::tree::Key;
use serde::Serialize;

use crate::tree::{key, Tree};

/// What create-cluster did.
#[derive(Debug, Serialize)]
pub struct Created {
    /// The new cluster's identity.
    pub cluster: String,
    /// Its first member.
    pub host: String,
    /// That member's address.
    pub address: String,
}

impl std::fmt::Display for Created {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "created cluster {} with host {} at {}", self.cluster, self.host, self.address)
    }
}

/// Creates a new cluster in `tree` whose first member is `host` at `address`.
pub fn create_cluster(tree: &mut Tree, host: &str, address: &str, now_secs: u64) -> Result<Created> {
    let address: IpAddr = address.parse().map_err(|_| anyhow!("{address:?} is not an IPv4 or IPv6 address"))?;
    let uuid_key = key(Key::ClusterId)?;
    if let Some(existing) = tree.get(&uuid_key)? {
        if !existing.deleted {
            bail!(
                "a cluster ({}) exists already in this /mars: use join-cluster to join another host, or leave-cluster first",
                existing.value
            );
        }
    }
    let cluster = format!("{host}-{now_secs}");
    tree.set(&key(Key::HostAddress { host })?, &address.to_string())?;
    tree.set(&uuid_key, &cluster)?;
    Ok(Created { cluster, host: host.to_string(), address: address.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mars_core::lamport::Stamp;

    #[test]
    fn creates_uuid_and_member_address_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut tree = Tree::new(dir.path(), "node1", Stamp::ZERO);
        let c = create_cluster(&mut tree, "node1", "10.0.0.1", 1700).expect("creates");
        assert_eq!(c.cluster, "node1-1700");
        assert_eq!(tree.get("ips/ip-node1").unwrap().unwrap().value, "10.0.0.1");
        assert_eq!(tree.get("uuid").unwrap().unwrap().value, "node1-1700");
        let e = create_cluster(&mut tree, "node1", "10.0.0.1", 1800).unwrap_err();
        assert!(e.to_string().contains("exists already"), "{e}");
    }

    #[test]
    fn rejects_bad_addresses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut tree = Tree::new(dir.path(), "node1", Stamp::ZERO);
        let e = create_cluster(&mut tree, "node1", "10.0.0.300", 1).unwrap_err();
        assert!(e.to_string().contains("not an IPv4 or IPv6 address"), "{e}");
        assert!(create_cluster(&mut tree, "node1", "2001:db8::7", 1).is_ok());
    }
}
