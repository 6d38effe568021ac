//! Peer records in the embedded database, beside the blocks: temporary bans with their expiry,
//! restored when the node starts so a restart does not let a banned peer back in.

use libp2p::PeerId;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use super::{Store, StoreError, db_err};

/// Peer id (multihash bytes) → ban expiry (unix seconds).
pub(super) const PEER_BANS: TableDefinition<&[u8], u64> = TableDefinition::new("peer_bans");

impl Store {
    /// Records (or replaces) a ban of `peer` until `until` (unix seconds).
    pub fn save_peer_ban(&self, peer: &PeerId, until: u64) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut table = txn.open_table(PEER_BANS).map_err(db_err)?;
            table
                .insert(peer.to_bytes().as_slice(), until)
                .map_err(db_err)?;
        }
        txn.commit().map_err(db_err)
    }

    /// Forgets the ban of `peer`.
    pub fn remove_peer_ban(&self, peer: &PeerId) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut table = txn.open_table(PEER_BANS).map_err(db_err)?;
            table.remove(peer.to_bytes().as_slice()).map_err(db_err)?;
        }
        txn.commit().map_err(db_err)
    }

    /// Every recorded ban. A record whose key is not a peer id (a damaged file) is skipped with
    /// a warning rather than failing the start.
    pub fn peer_bans(&self) -> Result<Vec<(PeerId, u64)>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(PEER_BANS).map_err(db_err)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            match PeerId::from_bytes(k.value()) {
                Ok(peer) => out.push((peer, v.value())),
                Err(e) => tracing::warn!(error = %e, "skipping a damaged peer ban record"),
            }
        }
        Ok(out)
    }
}
