//! The operator's peer lists (spec §7.2–7.4, §9): permanently blocked peers, IPs and subnets
//! (op-node's basic connection gater, `opp2p_block*`), and peers protected from the connection
//! manager's trimming (`opp2p_protectPeer`, tag `api-protected`). Set through the admin RPC,
//! read by the connection gate and the connection manager, written through to the embedded
//! database and restored on start.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use libp2p::PeerId;

use super::subnet::Subnet;
use crate::store::{PeerRecords, Store};

/// Entries kept at most per list. The operator adds them one RPC call at a time; the bound only
/// keeps a runaway script from growing memory and the gate's subnet scan without limit. A call
/// beyond it is refused with [`ListFull`].
pub const MAX_LIST_ENTRIES: usize = 10_000;

/// A list is at [`MAX_LIST_ENTRIES`].
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("the list already holds {MAX_LIST_ENTRIES} entries")]
pub struct ListFull;

#[derive(Debug, Default)]
struct Lists {
    blocked_peers: HashSet<PeerId>,
    blocked_ips: HashSet<IpAddr>,
    blocked_subnets: HashSet<Subnet>,
    protected: HashSet<PeerId>,
}

/// The lists, shared by the gate, the event loop and the admin RPC.
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

    /// Blocks `peer` permanently.
    pub fn block_peer(&self, peer: PeerId) -> Result<(), ListFull> {
        let added = add(&mut self.lock().blocked_peers, peer)?;
        self.persist(added, PeerRecords::BlockedPeers, &peer.to_bytes());
        Ok(())
    }

    /// Lifts `peer`'s block.
    pub fn unblock_peer(&self, peer: &PeerId) {
        let removed = self.lock().blocked_peers.remove(peer);
        self.unpersist(removed, PeerRecords::BlockedPeers, &peer.to_bytes());
    }

    /// Blocks `ip` permanently.
    pub fn block_ip(&self, ip: IpAddr) -> Result<(), ListFull> {
        let added = add(&mut self.lock().blocked_ips, ip)?;
        self.persist(added, PeerRecords::BlockedAddrs, ip.to_string().as_bytes());
        Ok(())
    }

    /// Lifts `ip`'s block.
    pub fn unblock_ip(&self, ip: &IpAddr) {
        let removed = self.lock().blocked_ips.remove(ip);
        self.unpersist(
            removed,
            PeerRecords::BlockedAddrs,
            ip.to_string().as_bytes(),
        );
    }

    /// Blocks every IP in `subnet` permanently.
    pub fn block_subnet(&self, subnet: Subnet) -> Result<(), ListFull> {
        let added = add(&mut self.lock().blocked_subnets, subnet)?;
        self.persist(
            added,
            PeerRecords::BlockedSubnets,
            subnet.to_string().as_bytes(),
        );
        Ok(())
    }

    /// Lifts `subnet`'s block.
    pub fn unblock_subnet(&self, subnet: &Subnet) {
        let removed = self.lock().blocked_subnets.remove(subnet);
        self.unpersist(
            removed,
            PeerRecords::BlockedSubnets,
            subnet.to_string().as_bytes(),
        );
    }

    /// Protects `peer` from trimming.
    pub fn protect(&self, peer: PeerId) -> Result<(), ListFull> {
        let added = add(&mut self.lock().protected, peer)?;
        self.persist(added, PeerRecords::ProtectedPeers, &peer.to_bytes());
        Ok(())
    }

    /// Lifts `peer`'s protection.
    pub fn unprotect(&self, peer: &PeerId) {
        let removed = self.lock().protected.remove(peer);
        self.unpersist(removed, PeerRecords::ProtectedPeers, &peer.to_bytes());
    }

    /// Whether `peer` is blocked.
    pub fn is_peer_blocked(&self, peer: &PeerId) -> bool {
        self.lock().blocked_peers.contains(peer)
    }

    /// Why `ip` is blocked (the IP itself, or a subnet holding it), if it is.
    pub fn ip_block(&self, ip: &IpAddr) -> Option<String> {
        let lists = self.lock();
        if lists.blocked_ips.contains(ip) {
            return Some(format!("address {ip} is blocked"));
        }
        // Linear over ≤ MAX_LIST_ENTRIES subnets, once per connection attempt.
        lists
            .blocked_subnets
            .iter()
            .find(|s| s.contains(ip))
            .map(|s| format!("subnet {s} is blocked"))
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

    fn persist(&self, changed: bool, records: PeerRecords, key: &[u8]) {
        if let (true, Some(store)) = (changed, &self.store)
            && let Err(e) = store.put_peer_record(records, key, 0)
        {
            tracing::error!(?records, error = %e, "cannot persist a peer list entry");
        }
    }

    fn unpersist(&self, changed: bool, records: PeerRecords, key: &[u8]) {
        if let (true, Some(store)) = (changed, &self.store)
            && let Err(e) = store.remove_peer_record(records, key)
        {
            tracing::error!(?records, error = %e, "cannot remove a peer list entry");
        }
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
