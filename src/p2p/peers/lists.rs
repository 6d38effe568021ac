//! The operator's peer lists (spec §7.2–7.4, §9): permanently blocked peers, IPs and subnets
//! (op-node's basic connection gater, `opp2p_block*`), and peers protected from the connection
//! manager's trimming (`opp2p_protectPeer`, tag `api-protected`). Changed through the admin RPC
//! by the peer manager alone (memory at once, the disk write off the network loop), read by the
//! connection gate, the connection manager and the RPC's listings; restored on start.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use libp2p::PeerId;

use super::subnet::Subnet;
use crate::store::{PeerRecords, RecordWrite, Store};

/// Entries kept at most per list. The operator adds them one RPC call at a time; the bound only
/// keeps a runaway script from growing memory and the gate's subnet scan without limit. A call
/// beyond it is refused with [`ListFull`].
pub const MAX_LIST_ENTRIES: usize = 10_000;

/// A list is at [`MAX_LIST_ENTRIES`].
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("the list already holds {MAX_LIST_ENTRIES} entries")]
pub struct ListFull;

/// One change the operator makes to the lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListChange {
    /// Block a peer permanently.
    BlockPeer(PeerId),
    /// Lift a peer's block.
    UnblockPeer(PeerId),
    /// Block an IP permanently.
    BlockIp(IpAddr),
    /// Lift an IP's block.
    UnblockIp(IpAddr),
    /// Block every IP of a subnet permanently.
    BlockSubnet(Subnet),
    /// Lift a subnet's block.
    UnblockSubnet(Subnet),
    /// Protect a peer from trimming.
    Protect(PeerId),
    /// Lift a peer's protection.
    Unprotect(PeerId),
}

impl ListChange {
    /// Whether the change can close open connections (a new block).
    pub fn blocks(&self) -> bool {
        matches!(
            self,
            Self::BlockPeer(_) | Self::BlockIp(_) | Self::BlockSubnet(_)
        )
    }
}

#[derive(Debug, Default)]
struct Lists {
    blocked_peers: HashSet<PeerId>,
    blocked_ips: HashSet<IpAddr>,
    blocked_subnets: HashSet<Subnet>,
    protected: HashSet<PeerId>,
}

/// What the operator blocked that holds an IP ([`PeerLists::ip_block`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IpBlock {
    /// The address itself.
    #[error("address {0} is blocked")]
    Address(IpAddr),
    /// A subnet holding it.
    #[error("subnet {0} is blocked")]
    Subnet(Subnet),
}

/// The lists: written by the peer manager, read by the gate and the admin RPC.
#[derive(Debug, Default)]
pub struct PeerLists {
    lists: Mutex<Lists>,
    store: Option<Arc<Store>>,
}

impl PeerLists {
    /// The lists recorded in `store`.
    pub fn load(store: Arc<Store>) -> Self {
        let mut lists = Lists::default();
        let read = |records| {
            store.peer_records(records).unwrap_or_else(|e| {
                tracing::error!(?records, error = %e, "cannot read a peer list; starting without");
                Vec::new()
            })
        };
        let text = |k: &[u8]| std::str::from_utf8(k).ok().map(str::to_owned);
        for (k, _) in read(PeerRecords::BlockedPeers) {
            insert_or_warn(&mut lists.blocked_peers, PeerId::from_bytes(&k).ok());
        }
        for (k, _) in read(PeerRecords::ProtectedPeers) {
            insert_or_warn(&mut lists.protected, PeerId::from_bytes(&k).ok());
        }
        for (k, _) in read(PeerRecords::BlockedAddrs) {
            insert_or_warn(
                &mut lists.blocked_ips,
                text(&k).and_then(|t| t.parse().ok()),
            );
        }
        for (k, _) in read(PeerRecords::BlockedSubnets) {
            insert_or_warn(
                &mut lists.blocked_subnets,
                text(&k).and_then(|t| t.parse().ok()),
            );
        }
        Self {
            lists: Mutex::new(lists),
            store: Some(store),
        }
    }

    /// Lists that are not persisted.
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// Makes `change` in memory now (the gate applies it from here on) and returns the disk
    /// write for the caller to run off its thread, if the change changed anything.
    pub fn apply(&self, change: ListChange) -> Result<Option<RecordWrite>, ListFull> {
        let mut lists = self.lock();
        let (changed, records, key, put) = match change {
            ListChange::BlockPeer(peer) => (
                add(&mut lists.blocked_peers, peer)?,
                PeerRecords::BlockedPeers,
                peer.to_bytes(),
                true,
            ),
            ListChange::UnblockPeer(peer) => (
                lists.blocked_peers.remove(&peer),
                PeerRecords::BlockedPeers,
                peer.to_bytes(),
                false,
            ),
            ListChange::BlockIp(ip) => (
                add(&mut lists.blocked_ips, ip)?,
                PeerRecords::BlockedAddrs,
                ip.to_string().into_bytes(),
                true,
            ),
            ListChange::UnblockIp(ip) => (
                lists.blocked_ips.remove(&ip),
                PeerRecords::BlockedAddrs,
                ip.to_string().into_bytes(),
                false,
            ),
            ListChange::BlockSubnet(subnet) => (
                add(&mut lists.blocked_subnets, subnet)?,
                PeerRecords::BlockedSubnets,
                subnet.to_string().into_bytes(),
                true,
            ),
            ListChange::UnblockSubnet(subnet) => (
                lists.blocked_subnets.remove(&subnet),
                PeerRecords::BlockedSubnets,
                subnet.to_string().into_bytes(),
                false,
            ),
            ListChange::Protect(peer) => (
                add(&mut lists.protected, peer)?,
                PeerRecords::ProtectedPeers,
                peer.to_bytes(),
                true,
            ),
            ListChange::Unprotect(peer) => (
                lists.protected.remove(&peer),
                PeerRecords::ProtectedPeers,
                peer.to_bytes(),
                false,
            ),
        };
        Ok((changed && self.store.is_some()).then(|| RecordWrite {
            records,
            key,
            value: put.then_some(0),
        }))
    }

    /// Makes `change` and writes it through at once (start-up and tests; the running node goes
    /// through the peer manager, which writes off the network loop).
    pub fn apply_now(&self, change: ListChange) -> Result<(), ListFull> {
        if let (Some(write), Some(store)) = (self.apply(change)?, &self.store) {
            store.persist_peer_record(&write);
        }
        Ok(())
    }

    /// Whether `peer` is blocked.
    pub fn is_peer_blocked(&self, peer: &PeerId) -> bool {
        self.lock().blocked_peers.contains(peer)
    }

    /// Why `ip` is blocked (the IP itself, or a subnet holding it), if it is.
    pub fn ip_block(&self, ip: &IpAddr) -> Option<IpBlock> {
        let lists = self.lock();
        if lists.blocked_ips.contains(ip) {
            return Some(IpBlock::Address(*ip));
        }
        // Linear over ≤ MAX_LIST_ENTRIES subnets, once per connection attempt.
        lists
            .blocked_subnets
            .iter()
            .find(|s| s.contains(ip))
            .map(|s| IpBlock::Subnet(*s))
    }

    /// Whether the operator protected `peer`.
    pub fn is_protected(&self, peer: &PeerId) -> bool {
        self.lock().protected.contains(peer)
    }

    /// The blocked peers.
    pub fn blocked_peers(&self) -> Vec<PeerId> {
        self.lock().blocked_peers.iter().copied().collect()
    }

    /// The blocked IPs.
    pub fn blocked_ips(&self) -> Vec<IpAddr> {
        self.lock().blocked_ips.iter().copied().collect()
    }

    /// The blocked subnets.
    pub fn blocked_subnets(&self) -> Vec<Subnet> {
        self.lock().blocked_subnets.iter().copied().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lists> {
        self.lists.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Adds `item`; `Ok(true)` when it was new.
fn add<T: Eq + std::hash::Hash>(set: &mut HashSet<T>, item: T) -> Result<bool, ListFull> {
    if set.contains(&item) {
        return Ok(false);
    }
    if set.len() >= MAX_LIST_ENTRIES {
        return Err(ListFull);
    }
    Ok(set.insert(item))
}

fn insert_or_warn<T: Eq + std::hash::Hash>(set: &mut HashSet<T>, item: Option<T>) {
    match item {
        Some(item) => {
            set.insert(item);
        }
        None => tracing::warn!("skipping a damaged peer list record"),
    }
}
