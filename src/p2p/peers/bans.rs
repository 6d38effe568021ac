//! Temporary bans of peers and IPs (op-node's peer-ban and IP-ban books, spec §7.2): who is
//! banned until when, kept in memory and in the embedded database so bans survive a restart.
//! Read by the connection gate on every connection attempt, the admin RPC and the metrics;
//! written only by the peer manager (its ban rule and the operator's changes), which changes
//! memory at once and hands the disk write ([`RecordWrite`]) to the event loop's blocking pool.
//!
//! Expiry is checked lazily against the `now` passed in: an expired ban is dropped from memory
//! the next time it is looked at, as op-node does, and queued for the peer manager's next
//! expiry sweep, which hands the disk removal to the event loop's record queue (the gate looks
//! on the network loop, which never waits on the database).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use libp2p::PeerId;

use crate::store::{PeerRecords, RecordWrite, Store};

/// Bans kept at most, per book. Beyond it the ban expiring soonest is dropped first: bans come
/// from the monitor (one peer per second at most) or the operator, so this bound is never
/// reached in practice; it only keeps a pathological run from growing the table without limit.
pub const MAX_BANS: usize = 100_000;

/// Expired bans remembered per book until the peer manager takes them (it clears those peers'
/// scores and removes the records from disk); beyond it the oldest are dropped (their scores
/// then decay as usual, and their records are dropped when the bans are next loaded).
pub const MAX_EXPIRED: usize = 1024;

/// A key of a ban book and how it is stored.
trait BanKey: Copy + Eq + Hash + std::fmt::Display {
    const RECORDS: PeerRecords;
    fn encode(&self) -> Vec<u8>;
    fn decode(bytes: &[u8]) -> Option<Self>;
}

impl BanKey for PeerId {
    const RECORDS: PeerRecords = PeerRecords::PeerBans;
    fn encode(&self) -> Vec<u8> {
        self.to_bytes()
    }
    fn decode(bytes: &[u8]) -> Option<Self> {
        PeerId::from_bytes(bytes).ok()
    }
}

impl BanKey for IpAddr {
    const RECORDS: PeerRecords = PeerRecords::IpBans;
    fn encode(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }
    fn decode(bytes: &[u8]) -> Option<Self> {
        std::str::from_utf8(bytes).ok()?.parse().ok()
    }
}

/// One book: key → expiry (unix seconds), with its counters.
#[derive(Debug)]
struct Book<K> {
    entries: Mutex<HashMap<K, u64>>,
    store: Option<Arc<Store>>,
    bans: AtomicU64,
    unbans: AtomicU64,
    /// Keys whose ban expired, not yet taken (≤ [`MAX_EXPIRED`]).
    expired: Mutex<std::collections::VecDeque<K>>,
}

impl<K: BanKey> Book<K> {
    fn new(store: Option<Arc<Store>>, now: u64) -> Self {
        let mut entries = HashMap::new();
        let mut expired = std::collections::VecDeque::new();
        if let Some(store) = &store {
            match store.peer_records(K::RECORDS) {
                Ok(records) => {
                    for (key, until) in records {
                        match K::decode(&key) {
                            Some(k) if until > now => {
                                entries.insert(k, until);
                            }
                            Some(k) => {
                                if expired.len() < MAX_EXPIRED {
                                    expired.push_back(k);
                                }
                            }
                            None => {
                                tracing::warn!(records = ?K::RECORDS, "skipping a damaged ban record")
                            }
                        }
                        if until <= now
                            && let Err(e) = store.remove_peer_record(K::RECORDS, &key)
                        {
                            tracing::warn!(error = %e, "cannot drop an expired ban");
                        }
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot read the bans; starting without"),
            }
        }
        Self {
            entries: Mutex::new(entries),
            store,
            bans: AtomicU64::new(0),
            unbans: AtomicU64::new(0),
            expired: Mutex::new(expired),
        }
    }

    #[cfg(test)]
    fn ban(&self, key: K, until: u64) {
        self.record(key, until);
        self.persist(key, until);
    }

    fn record(&self, key: K, until: u64) {
        {
            let mut entries = self.lock();
            if !entries.contains_key(&key)
                && entries.len() >= MAX_BANS
                && let Some(soonest) = entries.iter().min_by_key(|(_, u)| **u).map(|(k, _)| *k)
            {
                entries.remove(&soonest);
            }
            entries.insert(key, until);
        }
        self.bans.fetch_add(1, Ordering::Relaxed);
    }

    /// The disk write that records `key`'s ban (none for an in-memory book).
    fn write(&self, key: K, until: Option<u64>) -> Option<RecordWrite> {
        self.store.as_ref().map(|_| RecordWrite {
            records: K::RECORDS,
            key: key.encode(),
            value: until,
        })
    }

    #[cfg(test)]
    fn persist(&self, key: K, until: u64) {
        if let Some(store) = &self.store
            && let Err(e) = store.put_peer_record(K::RECORDS, &key.encode(), until)
        {
            tracing::error!(%key, error = %e, "cannot persist a ban");
        }
    }

    #[cfg(test)]
    fn unban(&self, key: &K) {
        if self.lock().remove(key).is_some() {
            self.forget(key);
        }
    }

    fn banned_until(&self, key: &K, now: u64) -> Option<u64> {
        {
            let mut entries = self.lock();
            match entries.get(key) {
                None => return None,
                Some(&until) if until > now => return Some(until),
                Some(_) => {
                    entries.remove(key);
                }
            }
        }
        // Expired: the record is removed from disk by the next expiry sweep, off this path.
        self.unbans.fetch_add(1, Ordering::Relaxed);
        let mut expired = self.expired.lock().unwrap_or_else(|p| p.into_inner());
        if expired.len() >= MAX_EXPIRED {
            expired.pop_front();
        }
        expired.push_back(*key);
        None
    }

    /// The disk removal of `key`'s expired ban record: none for an in-memory book, or when the
    /// key has been banned again since (the new ban's write replaced the record).
    fn expiry_write(&self, key: K) -> Option<RecordWrite> {
        if self.lock().contains_key(&key) {
            return None;
        }
        self.write(key, None)
    }

    fn take_expired(&self) -> Vec<K> {
        self.expired
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect()
    }

    fn list(&self, now: u64) -> Vec<(K, u64)> {
        self.lock()
            .iter()
            .filter(|(_, until)| **until > now)
            .map(|(k, u)| (*k, *u))
            .collect()
    }

    #[cfg(test)]
    fn forget(&self, key: &K) {
        if let Some(store) = &self.store
            && let Err(e) = store.remove_peer_record(K::RECORDS, &key.encode())
        {
            tracing::warn!(%key, error = %e, "cannot remove a ban record");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, u64>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The ban books: peers and IPs.
#[derive(Debug)]
pub struct BanList {
    peers: Book<PeerId>,
    ips: Book<IpAddr>,
}

impl Default for BanList {
    fn default() -> Self {
        Self::in_memory()
    }
}

impl BanList {
    /// Books backed by `store`, holding the bans recorded there that have not expired at `now`
    /// (expired ones are deleted).
    pub fn load(store: Arc<Store>, now: u64) -> Self {
        Self {
            peers: Book::new(Some(store.clone()), now),
            ips: Book::new(Some(store), now),
        }
    }

    /// Books that are not persisted.
    pub fn in_memory() -> Self {
        Self {
            peers: Book::new(None, 0),
            ips: Book::new(None, 0),
        }
    }

    /// Bans `peer` until `until` (unix seconds), replacing any earlier expiry. Written through at once: for
    /// tests; the running node bans through the peer manager.
    #[cfg(test)]
    pub fn ban(&self, peer: PeerId, until: u64) {
        self.peers.ban(peer, until);
    }

    /// Bans `peer` in memory now (the gate refuses it from here on) and returns the disk write
    /// for the caller to run off its thread (the event loop must not wait on the database).
    pub fn record_peer(&self, peer: PeerId, until: u64) -> Option<RecordWrite> {
        self.peers.record(peer, until);
        self.peers.write(peer, Some(until))
    }

    /// Lifts `peer`'s ban in memory now; returns the disk write (if it was banned).
    pub fn lift_peer(&self, peer: &PeerId) -> Option<RecordWrite> {
        self.peers.lock().remove(peer)?;
        self.peers.write(*peer, None)
    }

    /// Bans `ip` in memory now; returns the disk write.
    pub fn record_ip(&self, ip: IpAddr, until: u64) -> Option<RecordWrite> {
        self.ips.record(ip, until);
        self.ips.write(ip, Some(until))
    }

    /// Lifts `ip`'s ban in memory now; returns the disk write (if it was banned).
    pub fn lift_ip(&self, ip: &IpAddr) -> Option<RecordWrite> {
        self.ips.lock().remove(ip)?;
        self.ips.write(*ip, None)
    }

    /// Lifts the ban of `peer` now. Written through at once: for
    /// tests; the running node bans through the peer manager.
    #[cfg(test)]
    pub fn unban(&self, peer: &PeerId) {
        self.peers.unban(peer);
    }

    /// The expiry of `peer`'s ban, if it is banned at `now`.
    pub fn banned_until(&self, peer: &PeerId, now: u64) -> Option<u64> {
        self.peers.banned_until(peer, now)
    }

    /// Every peer ban still in force at `now`.
    pub fn list(&self, now: u64) -> Vec<(PeerId, u64)> {
        self.peers.list(now)
    }

    /// The peers whose ban expired since the last call (found expired at a connection attempt,
    /// or when the bans were loaded). A ban is the whole punishment: the event loop clears these
    /// peers' scores, so a peer that served its ban is not banned again at once for the same
    /// faults. (With op-node's defaults the score has aged out of its scorebook by then: a 1 h
    /// ban outlasts the 20 min score retention.)
    pub fn take_expired(&self) -> Vec<PeerId> {
        self.peers.take_expired()
    }

    /// The IPs whose ban expired since the last call.
    pub fn take_expired_ips(&self) -> Vec<IpAddr> {
        self.ips.take_expired()
    }

    /// The disk removal of `peer`'s expired ban record, unless it is banned again.
    pub fn expired_peer_write(&self, peer: PeerId) -> Option<RecordWrite> {
        self.peers.expiry_write(peer)
    }

    /// The disk removal of `ip`'s expired ban record, unless it is banned again.
    pub fn expired_ip_write(&self, ip: IpAddr) -> Option<RecordWrite> {
        self.ips.expiry_write(ip)
    }

    /// Bans `ip` until `until` (unix seconds). Written through at once: for
    /// tests; the running node bans through the peer manager.
    #[cfg(test)]
    pub fn ban_ip(&self, ip: IpAddr, until: u64) {
        self.ips.ban(ip, until);
    }

    /// Lifts the ban of `ip` now. Written through at once: for
    /// tests; the running node bans through the peer manager.
    #[cfg(test)]
    pub fn unban_ip(&self, ip: &IpAddr) {
        self.ips.unban(ip);
    }

    /// The expiry of `ip`'s ban, if it is banned at `now`.
    pub fn ip_banned_until(&self, ip: &IpAddr, now: u64) -> Option<u64> {
        self.ips.banned_until(ip, now)
    }

    /// Every IP ban still in force at `now`.
    pub fn list_ips(&self, now: u64) -> Vec<(IpAddr, u64)> {
        self.ips.list(now)
    }

    /// Counters: (peer bans, peer unbans, IP bans, IP unbans) since start.
    pub fn counts(&self) -> BanCounts {
        BanCounts {
            peer_bans: self.peers.bans.load(Ordering::Relaxed),
            peer_unbans: self.peers.unbans.load(Ordering::Relaxed),
            ip_bans: self.ips.bans.load(Ordering::Relaxed),
            ip_unbans: self.ips.unbans.load(Ordering::Relaxed),
        }
    }
}

/// Ban counters since start (metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BanCounts {
    /// Peer bans recorded.
    pub peer_bans: u64,
    /// Peer bans that expired.
    pub peer_unbans: u64,
    /// IP bans recorded.
    pub ip_bans: u64,
    /// IP bans that expired.
    pub ip_unbans: u64,
}
