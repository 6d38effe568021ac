//! Temporary peer bans (op-node's peer-ban book, spec §7.2): who is banned until when, written
//! through to the embedded database so bans survive a restart. Read by the connection gate on
//! every connection attempt and written by the ban monitor.
//!
//! Expiry is checked lazily against the `now` passed in: an expired ban is dropped (from memory
//! and disk) the next time it is looked at, as op-node does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use libp2p::PeerId;

use crate::store::Store;

/// Bans kept at most. Beyond it the ban expiring soonest is dropped first: bans come from the
/// monitor (one peer per second at most) or the operator, so this bound is never reached in
/// practice; it only keeps a pathological run from growing the table without limit.
pub const MAX_BANS: usize = 100_000;

/// The ban book.
#[derive(Debug, Default)]
pub struct BanList {
    peers: Mutex<HashMap<PeerId, u64>>,
    store: Option<Arc<Store>>,
    /// Bans recorded.
    pub bans: AtomicU64,
    /// Bans that expired (peer unbans).
    pub unbans: AtomicU64,
}

impl BanList {
    /// A book backed by `store`, holding the bans it recorded that have not expired at `now`.
    pub fn load(store: Arc<Store>, now: u64) -> Self {
        let mut peers = HashMap::new();
        match store.peer_bans() {
            Ok(bans) => {
                for (peer, until) in bans {
                    if until > now {
                        peers.insert(peer, until);
                    } else if let Err(e) = store.remove_peer_ban(&peer) {
                        tracing::warn!(error = %e, "cannot drop an expired ban");
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read the peer bans; starting without"),
        }
        Self {
            peers: Mutex::new(peers),
            store: Some(store),
            ..Self::default()
        }
    }

    /// A book that is not persisted.
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// Bans `peer` until `until` (unix seconds), replacing any earlier expiry.
    pub fn ban(&self, peer: PeerId, until: u64) {
        {
            let mut peers = self.lock();
            if !peers.contains_key(&peer)
                && peers.len() >= MAX_BANS
                && let Some(soonest) = peers.iter().min_by_key(|(_, u)| **u).map(|(p, _)| *p)
            {
                peers.remove(&soonest);
            }
            peers.insert(peer, until);
        }
        self.bans.fetch_add(1, Ordering::Relaxed);
        if let Some(store) = &self.store
            && let Err(e) = store.save_peer_ban(&peer, until)
        {
            tracing::error!(%peer, error = %e, "cannot persist a peer ban");
        }
    }

    /// Lifts the ban of `peer` now.
    pub fn unban(&self, peer: &PeerId) {
        if self.lock().remove(peer).is_some() {
            self.forget(peer);
        }
    }

    /// The expiry of `peer`'s ban, if it is banned at `now`.
    pub fn banned_until(&self, peer: &PeerId, now: u64) -> Option<u64> {
        {
            let mut peers = self.lock();
            match peers.get(peer) {
                None => return None,
                Some(&until) if until > now => return Some(until),
                Some(_) => {
                    peers.remove(peer);
                }
            }
        }
        // Expired: forgotten here, outside the lock (the disk write may take a while).
        self.unbans.fetch_add(1, Ordering::Relaxed);
        self.forget(peer);
        None
    }

    /// Every ban still in force at `now`.
    pub fn list(&self, now: u64) -> Vec<(PeerId, u64)> {
        self.lock()
            .iter()
            .filter(|(_, until)| **until > now)
            .map(|(p, u)| (*p, *u))
            .collect()
    }

    fn forget(&self, peer: &PeerId) {
        if let Some(store) = &self.store
            && let Err(e) = store.remove_peer_ban(peer)
        {
            tracing::warn!(%peer, error = %e, "cannot remove a peer ban record");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PeerId, u64>> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }
}
