//! Cluster commands: create-cluster, join-cluster, leave-cluster, and the cluster secret.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use mars_core::session::SECRET_LEN;
use mars_core::tree::{EntryRef, Key};
use serde::Serialize;

use crate::peer::PeerTree;
use crate::tree::{key, Tree};

/// The secret's file name in /mars (a dot name: never a tree key, never exchanged).
pub const SECRET_FILE: &str = ".secret";

/// What create-cluster did.
#[derive(Debug, Serialize)]
pub struct Created {
    /// The new cluster's identity.
    pub cluster: String,
    /// Its first member.
    pub host: String,
    /// That member's address.
    pub address: String,
    /// Where the cluster secret is.
    pub secret_file: String,
}

impl std::fmt::Display for Created {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "created cluster {} with host {} at {}", self.cluster, self.host, self.address)?;
        writeln!(
            f,
            "cluster secret: {} (root only); copy it to each host that is to join, then run there \
             `marsadm join-cluster {} --secret-file FILE`",
            self.secret_file, self.address
        )
    }
}

/// Reads a cluster secret from `path`: exactly [`SECRET_LEN`] bytes.
pub fn read_secret(path: &Path) -> Result<Vec<u8>> {
    let bytes = fs::read(path).with_context(|| format!("cannot read the cluster secret {}", path.display()))?;
    if bytes.len() != SECRET_LEN {
        bail!(
            "{} holds {} bytes, a cluster secret has {SECRET_LEN}: give the /mars/{SECRET_FILE} of a member",
            path.display(),
            bytes.len()
        );
    }
    Ok(bytes)
}

/// Writes `secret` as `root/.secret`, mode 0600, atomically (a temporary file renamed over it).
pub fn write_secret(root: &Path, secret: &[u8]) -> Result<()> {
    let path = root.join(SECRET_FILE);
    let tmp = root.join(format!("{SECRET_FILE}.{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    f.write_all(secret).and_then(|()| f.sync_all()).with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot make {} root-only", tmp.display()))?;
    fs::rename(&tmp, &path).with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

/// Parses an address given for this host.
fn parse_address(address: &str) -> Result<IpAddr> {
    address.parse().map_err(|_| anyhow!("{address:?} is not an IPv4 or IPv6 address"))
}

/// Creates a new cluster in `tree` whose first member is `host` at `address`, with `secret`.
pub fn create_cluster(tree: &mut Tree, host: &str, address: &str, now_secs: u64, secret: &[u8]) -> Result<Created> {
    let address = parse_address(address)?;
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
    write_secret(tree.root(), secret)?;
    tree.set(&uuid_key, &cluster)?;
    tree.set(&key(Key::HostAddress { host })?, &address.to_string())?;
    tree.sync()?;
    Ok(Created {
        cluster,
        host: host.to_string(),
        address: address.to_string(),
        secret_file: tree.root().join(SECRET_FILE).display().to_string(),
    })
}

/// What join-cluster did.
#[derive(Debug, Serialize)]
pub struct Joined {
    /// The cluster joined.
    pub cluster: String,
    /// This host.
    pub host: String,
    /// Its address.
    pub address: String,
    /// The member the tree came from.
    pub peer: String,
    /// Entries received and stored.
    pub entries: usize,
}

impl std::fmt::Display for Joined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "host {} at {} joined cluster {} (tree of {} entries from {})",
            self.host, self.address, self.cluster, self.entries, self.peer
        )
    }
}

/// The checks of join-cluster against this host's /mars and the tree fetched from the peer.
/// Nothing is written; the error says what is in the way.
pub fn check_join(tree: &mut Tree, me: &str, address: &str, peer: &PeerTree) -> Result<(IpAddr, String)> {
    let address = parse_address(address)?;
    let own_key = key(Key::HostAddress { host: me })?;
    let uuid_key = key(Key::ClusterId)?;
    let local_cluster = tree.value(&uuid_key)?;
    if let Some(addr) = tree.value(&own_key)? {
        bail!(
            "this /mars already holds a cluster ({}) with this host ({me} at {addr}) as a member: \
             leave-cluster first to join another one",
            local_cluster.as_deref().unwrap_or("?")
        );
    }
    let live = |k: &str| peer.entries.iter().find(|e| e.key == k && !e.deleted);
    let Some(cluster) = live(&uuid_key).map(|e| e.value.clone()) else {
        bail!("{} holds no cluster (no uuid in its tree): run create-cluster there first", peer.name);
    };
    if let Some(local) = local_cluster.filter(|l| *l != cluster) {
        bail!(
            "this /mars holds the tree of cluster {local}, which this host left; {} is in cluster {cluster}: \
             make a new /mars filesystem to join another cluster",
            peer.name
        );
    }
    if let Some(taken) = live(&own_key) {
        bail!(
            "host name {me} is taken in cluster {cluster} (ips/ip-{me} = {}): give this host another \
             name with --host, or run leave-cluster on that host first",
            taken.value
        );
    }
    Ok((address, cluster))
}

/// Joins: writes the secret (if given), every entry of the peer's tree (the Lamport rule decides
/// against what /mars holds), then this host's address, the entry that makes it a member and
/// that mars.ko acts on. Call [`check_join`] first.
pub fn join_cluster(
    tree: &mut Tree,
    me: &str,
    address: IpAddr,
    cluster: String,
    peer: &PeerTree,
    secret: Option<&[u8]>,
) -> Result<Joined> {
    if let Some(secret) = secret {
        write_secret(tree.root(), secret)?;
    }
    let mut stored = 0;
    for e in &peer.entries {
        let entry =
            if e.deleted { EntryRef::tombstone(&e.key, e.stamp) } else { EntryRef::live(&e.key, &e.value, e.stamp) }
                .map_err(|err| anyhow!("{} sent an invalid entry {}: {err}", peer.name, e.key))?;
        if tree.merge(&entry)? {
            stored += 1;
        }
    }
    tree.set(&key(Key::HostAddress { host: me })?, &address.to_string())?;
    tree.sync()?;
    Ok(Joined { cluster, host: me.to_string(), address: address.to_string(), peer: peer.name.clone(), entries: stored })
}

/// What leave-cluster did.
#[derive(Debug, Serialize)]
pub struct Left {
    /// The cluster left.
    pub cluster: String,
    /// This host.
    pub host: String,
}

impl std::fmt::Display for Left {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "host {} left cluster {}", self.host, self.cluster)
    }
}

/// Leaves the cluster: refused while this host has a data device for any resource; otherwise
/// deletes `ips/ip-HOST` (a tombstone the other members learn of).
pub fn leave_cluster(tree: &mut Tree, me: &str) -> Result<Left> {
    let own_key = key(Key::HostAddress { host: me })?;
    if tree.value(&own_key)?.is_none() {
        bail!("host {me} is not a member of the cluster in /mars: nothing to leave");
    }
    let mut held = Vec::new();
    for res in tree.resource_dirs()? {
        if tree.value(&key(Key::DataDevice { resource: &res, host: me })?)?.is_some() {
            held.push(res);
        }
    }
    if !held.is_empty() {
        bail!(
            "host {me} still belongs to resource(s) {}: leave or delete them first (marsadm down, then delete-resource)",
            held.join(", ")
        );
    }
    let cluster = tree.value(&key(Key::ClusterId)?)?.unwrap_or_else(|| "?".to_string());
    tree.delete(&own_key)?;
    tree.sync()?;
    Ok(Left { cluster, host: me.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::Fetched;
    use mars_core::lamport::{HostId, Stamp};

    const SECRET: [u8; 32] = [7; 32];

    #[test]
    fn creates_uuid_member_address_and_secret_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut tree = Tree::new(dir.path(), "node1", Stamp::ZERO);
        let c = create_cluster(&mut tree, "node1", "10.0.0.1", 1700, &SECRET).expect("creates");
        assert_eq!(c.cluster, "node1-1700");
        assert_eq!(tree.get("ips/ip-node1").unwrap().unwrap().value, "10.0.0.1");
        assert_eq!(tree.get("uuid").unwrap().unwrap().value, "node1-1700");
        let secret = dir.path().join(SECRET_FILE);
        assert_eq!(read_secret(&secret).unwrap(), SECRET);
        assert_eq!(fs::metadata(&secret).unwrap().permissions().mode() & 0o777, 0o600);
        let e = create_cluster(&mut tree, "node1", "10.0.0.1", 1800, &SECRET).unwrap_err();
        assert!(e.to_string().contains("exists already"), "{e}");
    }

    #[test]
    fn rejects_bad_addresses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut tree = Tree::new(dir.path(), "node1", Stamp::ZERO);
        let e = create_cluster(&mut tree, "node1", "10.0.0.300", 1, &SECRET).unwrap_err();
        assert!(e.to_string().contains("not an IPv4 or IPv6 address"), "{e}");
        assert!(create_cluster(&mut tree, "node1", "2001:db8::7", 1, &SECRET).is_ok());
    }

    #[test]
    fn a_secret_of_the_wrong_length_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("s");
        fs::write(&f, b"short").unwrap();
        assert!(read_secret(&f).unwrap_err().to_string().contains("holds 5 bytes"));
    }

    fn fetched(key: &str, value: &str, nanos: u64) -> Fetched {
        Fetched { key: key.into(), value: value.into(), stamp: Stamp::new(nanos, HostId(1)), deleted: false }
    }

    fn peer_tree() -> PeerTree {
        PeerTree {
            name: "node1".into(),
            entries: vec![fetched("uuid", "node1-1700", 5), fetched("ips/ip-node1", "10.0.0.1", 6)],
        }
    }

    #[test]
    fn joins_once_and_refuses_what_is_in_the_way() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut tree = Tree::new(dir.path(), "node2", Stamp::ZERO);
        let peer = peer_tree();
        let (addr, cluster) = check_join(&mut tree, "node2", "10.0.0.2", &peer).expect("checks");
        let j = join_cluster(&mut tree, "node2", addr, cluster, &peer, Some(&SECRET)).expect("joins");
        assert_eq!((j.entries, j.cluster.as_str()), (2, "node1-1700"));
        assert_eq!(tree.value("ips/ip-node1").unwrap().as_deref(), Some("10.0.0.1"));
        assert_eq!(tree.value("ips/ip-node2").unwrap().as_deref(), Some("10.0.0.2"));
        assert!(tree.get("ips/ip-node2").unwrap().unwrap().stamp > Stamp::new(6, HostId(1)));
        // Now a member: a second join is refused.
        let e = check_join(&mut tree, "node2", "10.0.0.2", &peer).unwrap_err();
        assert!(e.to_string().contains("already holds a cluster"), "{e}");
    }

    #[test]
    fn a_taken_name_a_peer_without_a_cluster_and_another_cluster_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut tree = Tree::new(dir.path(), "node1", Stamp::ZERO);
        let e = check_join(&mut tree, "node1", "10.0.0.9", &peer_tree()).unwrap_err();
        assert!(e.to_string().contains("host name node1 is taken"), "{e}");
        let empty = PeerTree { name: "node1".into(), entries: vec![] };
        let e = check_join(&mut tree, "node2", "10.0.0.2", &empty).unwrap_err();
        assert!(e.to_string().contains("holds no cluster"), "{e}");
        tree.set("uuid", "other-1").unwrap();
        let e = check_join(&mut tree, "node2", "10.0.0.2", &peer_tree()).unwrap_err();
        assert!(e.to_string().contains("which this host left"), "{e}");
        // Nothing was written by the refusals but the uuid set above.
        assert_eq!(tree.members().unwrap(), vec![]);
    }

    #[test]
    fn leave_is_refused_while_a_resource_has_data_here() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut tree = Tree::new(dir.path(), "node1", Stamp::ZERO);
        create_cluster(&mut tree, "node1", "10.0.0.1", 1700, &SECRET).unwrap();
        tree.set("resource-r0/data-node1", "/dev/vda").unwrap();
        let e = leave_cluster(&mut tree, "node1").unwrap_err();
        assert!(e.to_string().contains("still belongs to resource(s) r0"), "{e}");
        tree.delete("resource-r0/data-node1").unwrap();
        leave_cluster(&mut tree, "node1").expect("leaves");
        assert_eq!(tree.members().unwrap(), vec![]);
        assert!(tree.get("ips/ip-node1").unwrap().unwrap().deleted);
        assert!(leave_cluster(&mut tree, "node1").unwrap_err().to_string().contains("not a member"));
    }
}
