//! Peer records in the embedded database, beside the blocks, restored when the node starts so a
//! restart lets no banned or blocked peer back in and forgets no score:
//!
//! | table | key | value |
//! |---|---|---|
//! | `peer_bans` | peer id bytes | ban expiry (unix s) |
//! | `ip_bans` | IP, text form | ban expiry (unix s) |
//! | `blocked_peers` | peer id bytes | 0 (permanent) |
//! | `blocked_addrs` | IP, text form | 0 |
//! | `blocked_subnets` | CIDR, text form | 0 |
//! | `protected_peers` | peer id bytes | 0 |
//! | `peer_scores` | peer id bytes | scorebook record (JSON, see `p2p::peers::scorebook`) |
//!
//! Keys are opaque bytes here; the owners in `p2p::peers` encode and decode them and skip (with
//! a warning) a record they cannot read, so a damaged file never stops the node.

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use super::{Store, StoreError, db_err, guarded};

/// A table of keyed peer records with a `u64` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRecords {
    /// Temporary peer bans → expiry.
    PeerBans,
    /// Temporary IP bans → expiry.
    IpBans,
    /// Permanently blocked peers.
    BlockedPeers,
    /// Permanently blocked IPs.
    BlockedAddrs,
    /// Permanently blocked subnets.
    BlockedSubnets,
    /// Peers protected by the operator (`opp2p_protectPeer`).
    ProtectedPeers,
}

impl PeerRecords {
    /// Every record table (created when the store opens).
    pub const ALL: [Self; 6] = [
        Self::PeerBans,
        Self::IpBans,
        Self::BlockedPeers,
        Self::BlockedAddrs,
        Self::BlockedSubnets,
        Self::ProtectedPeers,
    ];

    fn table(self) -> TableDefinition<'static, &'static [u8], u64> {
        TableDefinition::new(match self {
            Self::PeerBans => "peer_bans",
            Self::IpBans => "ip_bans",
            Self::BlockedPeers => "blocked_peers",
            Self::BlockedAddrs => "blocked_addrs",
            Self::BlockedSubnets => "blocked_subnets",
            Self::ProtectedPeers => "protected_peers",
        })
    }
}

/// One write to a peer record table, decided in memory (by the peer manager) and carried out
/// off the network loop: put `key → value`, or remove `key` when `value` is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordWrite {
    /// The table.
    pub records: PeerRecords,
    /// The record's key.
    pub key: Vec<u8>,
    /// The value to put; `None` removes the record.
    pub value: Option<u64>,
}

impl Store {
    /// Carries out `write`.
    pub fn write_peer_record(&self, write: &RecordWrite) -> Result<(), StoreError> {
        match write.value {
            Some(value) => self.put_peer_record(write.records, &write.key, value),
            None => self.remove_peer_record(write.records, &write.key),
        }
    }

    /// Carries out `write`, logging a failure: a ban or list entry that could not be written
    /// stays in force in memory until the node stops, so the caller has nothing else to do.
    pub fn persist_peer_record(&self, write: &RecordWrite) {
        if let Err(e) = self.write_peer_record(write) {
            tracing::error!(records = ?write.records, error = %e, "cannot write a peer record");
        }
    }
}

/// Peer id bytes → scorebook record.
pub(super) const PEER_SCORES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("peer_scores");

/// Score records as raw rows: (peer id bytes, JSON record).
pub type ScoreRows = Vec<(Vec<u8>, Vec<u8>)>;

/// Creates the peer tables (inside the store's opening transaction).
pub(super) fn create_tables(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    for records in PeerRecords::ALL {
        txn.open_table(records.table()).map_err(db_err)?;
    }
    txn.open_table(PEER_SCORES).map_err(db_err)?;
    Ok(())
}

impl Store {
    /// Records (or replaces) `key → value` in `records`.
    pub fn put_peer_record(
        &self,
        records: PeerRecords,
        key: &[u8],
        value: u64,
    ) -> Result<(), StoreError> {
        guarded(|| {
            let txn = self.db.begin_write().map_err(db_err)?;
            {
                let mut table = txn.open_table(records.table()).map_err(db_err)?;
                table.insert(key, value).map_err(db_err)?;
            }
            txn.commit().map_err(db_err)
        })
    }

    /// Forgets `key` in `records`.
    pub fn remove_peer_record(&self, records: PeerRecords, key: &[u8]) -> Result<(), StoreError> {
        guarded(|| {
            let txn = self.db.begin_write().map_err(db_err)?;
            {
                let mut table = txn.open_table(records.table()).map_err(db_err)?;
                table.remove(key).map_err(db_err)?;
            }
            txn.commit().map_err(db_err)
        })
    }

    /// Every record of `records`.
    pub fn peer_records(&self, records: PeerRecords) -> Result<Vec<(Vec<u8>, u64)>, StoreError> {
        guarded(|| {
            let txn = self.db.begin_read().map_err(db_err)?;
            let table = txn.open_table(records.table()).map_err(db_err)?;
            let mut out = Vec::new();
            for entry in table.iter().map_err(db_err)? {
                let (k, v) = entry.map_err(db_err)?;
                out.push((k.value().to_vec(), v.value()));
            }
            Ok(out)
        })
    }

    /// Replaces the score records: writes `put` and deletes `remove`, in one transaction.
    pub fn save_peer_scores(
        &self,
        put: &[(Vec<u8>, Vec<u8>)],
        remove: &[Vec<u8>],
    ) -> Result<(), StoreError> {
        guarded(|| {
            let txn = self.db.begin_write().map_err(db_err)?;
            {
                let mut table = txn.open_table(PEER_SCORES).map_err(db_err)?;
                for (k, v) in put {
                    table.insert(k.as_slice(), v.as_slice()).map_err(db_err)?;
                }
                for k in remove {
                    table.remove(k.as_slice()).map_err(db_err)?;
                }
            }
            txn.commit().map_err(db_err)
        })
    }

    /// Every score record.
    pub fn peer_scores(&self) -> Result<ScoreRows, StoreError> {
        guarded(|| {
            let txn = self.db.begin_read().map_err(db_err)?;
            let table = txn.open_table(PEER_SCORES).map_err(db_err)?;
            let mut out = Vec::new();
            for entry in table.iter().map_err(db_err)? {
                let (k, v) = entry.map_err(db_err)?;
                out.push((k.value().to_vec(), v.value().to_vec()));
            }
            Ok(out)
        })
    }
}
