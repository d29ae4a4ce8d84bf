// SPDX-License-Identifier: GPL-2.0

//! This host's part in the cluster's network: its server bricks (one per channel) and the
//! client bricks of the peers it pulls the tree from, kept in line with the members in the tree
//! (`ips/ip-HOST`) by the strategy, once per round.
//!
//! Whom to pull from is `mars_core::gossip::pick_peers`: every other member while the cluster
//! has at most four, else three at random each round; a client not picked for
//! [`IDLE_ROUNDS`] rounds is closed, so a host keeps a handful of connections whatever the
//! cluster's size.

use core::fmt::Write;

use kernel::prelude::*;
use kernel::sync::Arc;

use crate::bricks::client::{Client, ClientView};
use crate::bricks::server::ServerBrick;
use crate::bricks::tree_pull::TreePull;
use crate::kx::kthread::KThread;
use crate::kx::net::SockAddr;
use crate::kx::random;
use crate::kx::vfs::{self, KPath};
use crate::mars_core::addr::IpAddress;
use crate::mars_core::gossip::{pick_peers, Rng, FANOUT};
use crate::mars_core::proto::Channel;
use crate::mars_core::tree::Key;
use crate::status::ModuleStatus;
use crate::tree_store::{self, TargetBuf, TextBuf};

/// The channels a member serves: the tree now; replication and sync answer `busy` until their
/// requests are served (issue 12), so peers can already prove themselves on every channel.
const SERVED: [Channel; 3] = [Channel::Tree, Channel::Replication, Channel::Sync];

/// Rounds a client may go unpicked before its connection is closed.
const IDLE_ROUNDS: u32 = 30;

/// A member of the cluster as the tree has it.
struct Member {
    name: KVec<u8>,
    /// Its address, if `ips/ip-NAME` holds one that parses.
    addr: Option<IpAddress>,
}

/// One peer this host pulls from.
struct Peer {
    name: KVec<u8>,
    client: KThread<Client<TreePull>>,
    /// Rounds since the peer was last picked.
    idle: u32,
}

/// The server and clients of this host.
pub(crate) struct Peers {
    /// One server per channel, all on this host's address (empty: none runs).
    servers: KVec<ServerBrick>,
    /// Why the servers do not run, for status (empty while they run).
    server_error: TextBuf,
    peers: KVec<Peer>,
    rng: Rng,
}

impl Peers {
    /// No server, no clients.
    pub(crate) fn new() -> Peers {
        Peers { servers: KVec::new(), server_error: TextBuf::new(), peers: KVec::new(), rng: Rng::new(random::u64()) }
    }

    /// Stops everything (this host left the cluster, or the module unloads).
    pub(crate) fn stop(&mut self) {
        self.peers.clear();
        self.servers.clear();
    }

    /// One round: the server on this host's address, clients for the peers picked, a pull
    /// asked of each; the state of each goes to `status`.
    pub(crate) fn round(&mut self, host: &str, status: &Arc<ModuleStatus>) -> Result {
        let members = members()?;
        // The first port; each channel's is at its offset (docs/protocol.md, "Connections and ports").
        let base = u16::try_from(status.settings().port).map_err(|_| EINVAL)?;
        let port = base + Channel::Tree.port_offset();
        let me = members.iter().position(|m| m.name == host.as_bytes());
        self.keep_servers(me.and_then(|i| members.get(i)).and_then(|m| m.addr), base, status);
        let mut picked = [0usize; FANOUT + 1];
        let n = match me {
            Some(me) if members.len() <= FANOUT + 1 => {
                let mut n = 0;
                for i in (0..members.len()).filter(|&i| i != me) {
                    if let Some(slot) = picked.get_mut(n) {
                        *slot = i;
                        n += 1;
                    }
                }
                n
            }
            Some(me) => pick_peers(members.len(), me, &mut self.rng, &mut picked),
            None => 0,
        };
        for p in self.peers.iter_mut() {
            p.idle = p.idle.saturating_add(1);
        }
        // The digest that all this round's pulls send.
        let digest = (n > 0).then(|| status.tree_digest());
        for &i in picked.get(..n).unwrap_or(&[]) {
            let Some(member) = members.get(i) else { continue };
            let Some(ip) = member.addr else { continue };
            let addr = sock_addr(ip, port);
            // A member whose address changed gets a new client.
            self.peers.retain(|p| p.name != member.name || p.client.body().addr() == addr);
            match self.peers.iter_mut().find(|p| p.name == member.name) {
                Some(p) => {
                    p.idle = 0;
                    p.client.body().pull_soon(digest);
                }
                None => {
                    let client =
                        Arc::pin_init(Client::new(&member.name, addr, status.clone(), TreePull::new())?, GFP_KERNEL)?;
                    client.pull_soon(digest);
                    let thread = KThread::spawn(c"mars_client", client)?;
                    let mut name = KVec::with_capacity(member.name.len(), GFP_KERNEL)?;
                    name.extend_from_slice(&member.name, GFP_KERNEL)?;
                    self.peers.push(Peer { name, client: thread, idle: 0 }, GFP_KERNEL)?;
                }
            }
        }
        // Members that left, and peers not picked for long.
        self.peers.retain(|p| p.idle <= IDLE_ROUNDS && members.iter().any(|m| m.name == p.name));
        self.publish(status)
    }

    /// Runs a server per channel on `addr` (restarting them if the address changed), or none.
    fn keep_servers(&mut self, addr: Option<IpAddress>, base: u16, status: &Arc<ModuleStatus>) {
        let Some(ip) = addr else {
            self.servers.clear();
            self.server_error = TextBuf::new();
            let _ = write!(self.server_error, "ips/ip-{} holds no IP address", status.host_str().unwrap_or("?"));
            return;
        };
        let tree = sock_addr(ip, base + Channel::Tree.port_offset());
        if self.servers.len() == SERVED.len() && self.servers.first().is_some_and(|s| s.addr() == tree) {
            return;
        }
        self.servers.clear();
        let mut text = TextBuf::new();
        for channel in SERVED {
            let want = sock_addr(ip, base + channel.port_offset());
            let started = ServerBrick::start(want, channel, status.clone())
                .and_then(|s| self.servers.push(s, GFP_KERNEL).map_err(Error::from));
            if let Err(e) = started {
                let _ = write!(text, "cannot listen on {}: {}", want, crate::mars_core::errno::describe(e.to_errno()));
                self.servers.clear();
                break;
            }
        }
        if !text.as_str().is_empty() && text.as_str() != self.server_error.as_str() {
            pr_warn!("{}\n", text.as_str());
        }
        self.server_error = text;
    }

    /// Hands the state of the server and of every client to `status`.
    fn publish(&self, status: &ModuleStatus) -> Result {
        let mut lines = KVec::with_capacity(self.peers.len(), GFP_KERNEL)?;
        for p in self.peers.iter() {
            let mut name = KVec::with_capacity(p.name.len(), GFP_KERNEL)?;
            name.extend_from_slice(&p.name, GFP_KERNEL)?;
            let body = p.client.body();
            let (pulls, merged) = body.work().counts();
            lines.push(PeerLine { name, addr: body.addr(), view: body.view(), pulls, merged }, GFP_KERNEL)?;
        }
        let mut listen = KVec::with_capacity(self.servers.len(), GFP_KERNEL)?;
        for s in self.servers.iter() {
            listen.push(s.addr(), GFP_KERNEL)?;
        }
        let mut error = TextBuf::new();
        let _ = error.write_str(self.server_error.as_str());
        status.set_network(Some(NetworkView { listen, listen_error: error, peers: lines }));
        Ok(())
    }
}

/// One peer's line in `/proc/mars/status`.
pub(crate) struct PeerLine {
    pub(crate) name: KVec<u8>,
    pub(crate) addr: SockAddr,
    pub(crate) view: ClientView,
    /// Complete pulls, and the entries pulls stored (complete or not).
    pub(crate) pulls: u64,
    pub(crate) merged: u64,
}

/// What `/proc/mars/status` shows about the network.
pub(crate) struct NetworkView {
    /// Where the servers listen, one address per channel (tree first).
    pub(crate) listen: KVec<SockAddr>,
    /// Why it does not, if it does not.
    pub(crate) listen_error: TextBuf,
    pub(crate) peers: KVec<PeerLine>,
}

/// A socket address from a tree address and a port.
pub(crate) fn sock_addr(ip: IpAddress, port: u16) -> SockAddr {
    match ip {
        IpAddress::V4(o) => SockAddr::v4(o, port),
        IpAddress::V6(o) => SockAddr::v6(o, port),
    }
}

/// The address of member `host` on `channel` (`None`: not a member, or no valid address).
pub(crate) fn channel_addr(host: &str, channel: Channel, status: &ModuleStatus) -> Result<Option<SockAddr>> {
    let key = Key::HostAddress { host }.to_buf()?;
    let mut buf = TargetBuf::new()?;
    let ip = match tree_store::get(key.as_str(), &mut buf)? {
        Some(e) if !e.deleted => IpAddress::parse(e.value),
        _ => None,
    };
    let base = u16::try_from(status.settings().port).map_err(|_| EINVAL)?;
    Ok(ip.map(|ip| sock_addr(ip, base + channel.port_offset())))
}

/// The members in `ips/`, each with its address.
fn members() -> Result<KVec<Member>> {
    let mut names: KVec<KVec<u8>> = KVec::new();
    let dir = KPath::join(&[tree_store::ROOT, b"/ips"])?;
    match vfs::list(&dir, |vfs::DirEntry { name, .. }| {
        if let Some(host) = name.strip_prefix(b"ip-") {
            let mut owned = KVec::with_capacity(host.len(), GFP_KERNEL)?;
            owned.extend_from_slice(host, GFP_KERNEL)?;
            names.push(owned, GFP_KERNEL)?;
        }
        Ok(())
    }) {
        Ok(()) => {}
        Err(e) if e == ENOENT => return Ok(KVec::new()),
        Err(e) => return Err(e),
    }
    let mut members = KVec::with_capacity(names.len(), GFP_KERNEL)?;
    let mut buf = TargetBuf::new()?;
    for name in names {
        let Ok(host) = core::str::from_utf8(&name) else { continue };
        let key = Key::HostAddress { host }.to_buf()?;
        let addr = match tree_store::get(key.as_str(), &mut buf) {
            Ok(Some(e)) if !e.deleted => IpAddress::parse(e.value),
            // Deleted (left the cluster) or unreadable: not a member.
            _ => continue,
        };
        members.push(Member { name, addr }, GFP_KERNEL)?;
    }
    Ok(members)
}
