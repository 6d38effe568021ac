//! The embedded block store (redb): every accepted payload by (number, hash), the canonical chain
//! along the unsafe head, and the head itself.
//!
//! Written only by the store writer thread ([`writer`]: gossip blocks, the sequencer's own,
//! blocks fetched by the sync client, the admin RPC's); read by the payload_by_number server,
//! the sync client ([`Store::holes`]), the engine driver and the admin RPC. A record is the
//! block's SSZ bytes as its source had them when canonical ([`StoredBlock::ssz`]: the signed
//! bytes of a gossip block, no re-encoding), else its canonical encoding; a read decodes it once
//! and keeps the bytes, which the payload_by_number server sends as they are. Writes are batched
//! into one durable transaction (fsync) per batch, so a SIGKILL loses at most the batch being
//! written and never corrupts what was committed.
//!
//! Head rule: the unsafe head is the highest block that links by parent hash to what the store
//! already has. An empty store takes the first block it gets as its head; from then on a block
//! extends the head only if its number is head + 1 and its parent is the head, and blocks that
//! arrived early (a later number) are linked in as soon as the gap closes.
//!
//! Retention: blocks more than `retention` below the head are pruned on every write.
//!
//! Identity and damage: a store records the chain it belongs to and is refused for any other
//! (`store/open.rs`); a damaged file is an error at open (redb's integrity check) and, should damage
//! appear while the node runs, an error for the read that meets it (`store/guard.rs`), never a panic.
//! Every failure is a [`StoreError`] (`store/error.rs`) carrying redb's or the OS's error.

mod error;
mod guard;
mod holes;
use holes::stored_parent_hash;
mod open;
mod peers;
pub mod writer;

use error::db_err;
pub use error::{Record, StoreError, Unproven};
use guard::guarded;
pub use holes::{BlockLink, Hole, Holes};
pub use open::{ChainRecord, STORE_FORMAT};
pub use peers::{PeerRecords, RecordWrite};

use std::path::Path;

use alloy_primitives::{B256, Bytes};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use crate::chain::ChainSpec;
use crate::wire::canonical::{CanonicalSsz, decode_envelope_canonical};
use crate::wire::ssz::{EncodeError, encode_envelope};
use crate::wire::{BlockVersion, ExecutionPayloadEnvelope};

/// Default number of blocks kept below the head (about 2.3 h of 2 s blocks).
pub const DEFAULT_RETENTION_BLOCKS: u64 = 4096;
/// redb page cache (its default is 1 GiB; a few MiB hold the hot tail of the chain).
const CACHE_BYTES: usize = 4 << 20;

/// `number (u64 BE) ‖ hash (32)` → `version byte ‖ SSZ envelope`. Big-endian numbers keep the
/// keys in block order for range scans and pruning.
const BLOCKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("blocks");
/// `number` → hash of the block at that number on the head chain.
const CANONICAL: TableDefinition<u64, &[u8]> = TableDefinition::new("canonical");
/// `"head"` → `number (u64 BE) ‖ hash`; `"format"` and `"chain"`: see [`open`].
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const HEAD_KEY: &str = "head";
const KEY_BYTES: usize = 8 + 32;

/// A block's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockRef {
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: B256,
}

/// A block as stored.
///
/// Equality is by version and envelope: `ssz`, when present, is by its type their canonical
/// encoding, a cache of what the store writes and the payload_by_number server sends.
#[derive(Debug, Clone)]
pub struct StoredBlock {
    /// The layout it is encoded in (the version of its fork).
    pub version: BlockVersion,
    /// The payload and beacon root.
    pub envelope: ExecutionPayloadEnvelope,
    /// The envelope's SSZ bytes where the block's source already had them in canonical form
    /// (the signed bytes of a gossip block or of our own, a fetched body, a stored record):
    /// written and served as they are. `None` (or bytes of another layout): encoded when needed.
    pub ssz: Option<CanonicalSsz>,
}

impl PartialEq for StoredBlock {
    fn eq(&self, other: &Self) -> bool {
        self.version == other.version && self.envelope == other.envelope
    }
}

impl Eq for StoredBlock {}

impl StoredBlock {
    /// A block without its SSZ bytes (they are encoded when it is stored or served).
    pub fn new(version: BlockVersion, envelope: ExecutionPayloadEnvelope) -> Self {
        Self {
            version,
            envelope,
            ssz: None,
        }
    }

    /// The SSZ bytes to store or serve: the carried ones when they are in the block's layout
    /// (shared, no copy), else the envelope encoded in it.
    pub fn ssz_bytes(&self) -> Result<Bytes, EncodeError> {
        match &self.ssz {
            Some(ssz) if ssz.version() == self.version => Ok(ssz.bytes().clone()),
            _ => encode_envelope(self.version, &self.envelope).map(Bytes::from),
        }
    }

    /// Number and hash.
    pub fn id(&self) -> BlockRef {
        BlockRef {
            number: self.envelope.payload.block_number,
            hash: self.envelope.payload.block_hash,
        }
    }
}

/// The block store. Cheap to share behind an `Arc`; redb serialises writers internally.
pub struct Store {
    db: Database,
    retention: u64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) the store of `chain` at `path`. A store of another chain, of an
    /// unknown format, or a damaged file is refused with an error that says what to do; a refused
    /// store is not written to (see `store/open.rs`).
    pub fn open(path: &Path, retention: u64, chain: &ChainSpec) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
                dir: dir.to_owned(),
                source,
            })?;
        }
        let db = open::open_database(path, chain)?;
        guarded(|| {
            let txn = db.begin_write().map_err(db_err)?;
            {
                // Create the tables so that readers never see them missing.
                txn.open_table(BLOCKS).map_err(db_err)?;
                txn.open_table(CANONICAL).map_err(db_err)?;
                txn.open_table(META).map_err(db_err)?;
                peers::create_tables(&txn)?;
                open::record_chain(&txn, chain)?;
            }
            txn.commit().map_err(db_err)
        })?;
        Ok(Self {
            db,
            retention: retention.max(1),
        })
    }

    /// The unsafe head, if any block was ever stored.
    pub fn head(&self) -> Result<Option<BlockRef>, StoreError> {
        guarded(|| {
            let txn = self.db.begin_read().map_err(db_err)?;
            let meta = txn.open_table(META).map_err(db_err)?;
            read_head(&meta)
        })
    }

    /// Stores a batch of blocks in one durable transaction and moves the head as far as they
    /// (and blocks stored earlier) link. Returns the head after the batch.
    pub fn insert_batch(&self, blocks: &[StoredBlock]) -> Result<Option<BlockRef>, StoreError> {
        guarded(|| {
            let txn = self.db.begin_write().map_err(db_err)?;
            let head = {
                let mut table = txn.open_table(BLOCKS).map_err(db_err)?;
                let mut canonical = txn.open_table(CANONICAL).map_err(db_err)?;
                let mut meta = txn.open_table(META).map_err(db_err)?;
                let mut head = read_head(&meta)?;
                // One buffer for the batch: redb takes the record as one slice.
                let mut value = Vec::new();
                for block in blocks {
                    let id = block.id();
                    let body = block.ssz_bytes()?;
                    value.clear();
                    value.push(block.version.topic_index());
                    value.extend_from_slice(&body);
                    table
                        .insert(key(id).as_slice(), value.as_slice())
                        .map_err(db_err)?;
                    if head.is_none() {
                        head = Some(id);
                        canonical
                            .insert(id.number, id.hash.as_slice())
                            .map_err(db_err)?;
                    }
                }
                // Extend the head along stored children, possibly several (a gap just closed).
                if let Some(current) = head {
                    head = Some(extend_head(&table, &mut canonical, current)?);
                }
                if let Some(h) = head {
                    meta.insert(HEAD_KEY, encode_ref(h).as_slice())
                        .map_err(db_err)?;
                    self.prune(&mut table, &mut canonical, h.number)?;
                }
                head
            };
            txn.commit().map_err(db_err)?;
            Ok(head)
        })
    }

    /// Makes `anchor` the head of an empty store without storing a block for it (the sync
    /// client anchors a fresh store at the chain's genesis so that it fetches the chain from
    /// there). Returns false, changing nothing, when the store already has a head.
    pub fn anchor_if_empty(&self, anchor: BlockRef) -> Result<bool, StoreError> {
        guarded(|| {
            let txn = self.db.begin_write().map_err(db_err)?;
            let set = {
                let mut meta = txn.open_table(META).map_err(db_err)?;
                let empty = read_head(&meta)?.is_none();
                if empty {
                    meta.insert(HEAD_KEY, encode_ref(anchor).as_slice())
                        .map_err(db_err)?;
                }
                empty
            };
            txn.commit().map_err(db_err)?;
            Ok(set)
        })
    }

    /// Makes `anchor` the head whether or not it is stored (the execution engine's head, where a
    /// node attached to an engine resumes), then moves it along stored children. The blocks below
    /// stay until retention prunes them; the sync client fills what is missing above.
    pub fn anchor_at(&self, anchor: BlockRef) -> Result<BlockRef, StoreError> {
        guarded(|| {
            let txn = self.db.begin_write().map_err(db_err)?;
            let head = {
                let table = txn.open_table(BLOCKS).map_err(db_err)?;
                let mut canonical = txn.open_table(CANONICAL).map_err(db_err)?;
                let mut meta = txn.open_table(META).map_err(db_err)?;
                let head = extend_head(&table, &mut canonical, anchor)?;
                meta.insert(HEAD_KEY, encode_ref(head).as_slice())
                    .map_err(db_err)?;
                head
            };
            txn.commit().map_err(db_err)?;
            Ok(head)
        })
    }

    /// Moves the head to the stored block `to` (a gap too long to fill: the head jumps and the
    /// blocks in between are never fetched), then along its stored children. Blocks of the old
    /// chain stay until retention prunes them. Returns the new head, or `None` (nothing changed)
    /// when `to` is not stored.
    pub fn reanchor(&self, to: BlockRef) -> Result<Option<BlockRef>, StoreError> {
        guarded(|| {
            let txn = self.db.begin_write().map_err(db_err)?;
            let head = {
                let mut table = txn.open_table(BLOCKS).map_err(db_err)?;
                if table.get(key(to).as_slice()).map_err(db_err)?.is_none() {
                    return Ok(None);
                }
                let mut canonical = txn.open_table(CANONICAL).map_err(db_err)?;
                let mut meta = txn.open_table(META).map_err(db_err)?;
                canonical
                    .insert(to.number, to.hash.as_slice())
                    .map_err(db_err)?;
                let head = extend_head(&table, &mut canonical, to)?;
                meta.insert(HEAD_KEY, encode_ref(head).as_slice())
                    .map_err(db_err)?;
                self.prune(&mut table, &mut canonical, head.number)?;
                head
            };
            txn.commit().map_err(db_err)?;
            Ok(Some(head))
        })
    }

    /// Removes blocks more than `retention` below the head.
    fn prune(
        &self,
        table: &mut redb::Table<&[u8], &[u8]>,
        canonical: &mut redb::Table<u64, &[u8]>,
        head_number: u64,
    ) -> Result<(), StoreError> {
        let Some(cutoff) = head_number.checked_sub(self.retention) else {
            return Ok(());
        };
        let end = cutoff.to_be_bytes();
        let stale: Vec<Vec<u8>> = table
            .range::<&[u8]>(..end.as_slice())
            .map_err(db_err)?
            .map(|entry| entry.map(|(k, _)| k.value().to_vec()))
            .collect::<Result<_, _>>()
            .map_err(db_err)?;
        for k in stale {
            table.remove(k.as_slice()).map_err(db_err)?;
        }
        let stale: Vec<u64> = canonical
            .range(..cutoff)
            .map_err(db_err)?
            .map(|entry| entry.map(|(k, _)| k.value()))
            .collect::<Result<_, _>>()
            .map_err(db_err)?;
        for n in stale {
            canonical.remove(n).map_err(db_err)?;
        }
        Ok(())
    }

    /// The block at `number` on the head chain.
    pub fn canonical_block(&self, number: u64) -> Result<Option<StoredBlock>, StoreError> {
        guarded(|| {
            let txn = self.db.begin_read().map_err(db_err)?;
            let canonical = txn.open_table(CANONICAL).map_err(db_err)?;
            let Some(hash) = canonical
                .get(number)
                .map_err(db_err)?
                .map(|v| B256::from_slice(v.value()))
            else {
                return Ok(None);
            };
            drop(canonical);
            let table = txn.open_table(BLOCKS).map_err(db_err)?;
            let value = table
                .get(key(BlockRef { number, hash }).as_slice())
                .map_err(db_err)?;
            value.map(|v| decode_block(v.value(), number)).transpose()
        })
    }

    /// The block to serve for `number`: the canonical one, or else the only block stored at
    /// that number (it arrived above a hole the head has not crossed yet; every stored block was
    /// accepted from gossip or linked to one, and the asking client checks the hash chain).
    /// `None` when there is none, or several and none canonical.
    pub fn block_by_number(&self, number: u64) -> Result<Option<StoredBlock>, StoreError> {
        guarded(|| {
            if let Some(block) = self.canonical_block(number)? {
                return Ok(Some(block));
            }
            let txn = self.db.begin_read().map_err(db_err)?;
            let table = txn.open_table(BLOCKS).map_err(db_err)?;
            let mut found = None;
            // At most two entries are read: a second block at the number makes the answer ambiguous.
            for entry in blocks_at(&table, number)?.take(2) {
                let (_, v) = entry.map_err(db_err)?;
                if found.is_some() {
                    return Ok(None);
                }
                found = Some(decode_block(v.value(), number)?);
            }
            Ok(found)
        })
    }

    /// A block by number and hash (canonical or not).
    pub fn block(&self, id: BlockRef) -> Result<Option<StoredBlock>, StoreError> {
        guarded(|| {
            let txn = self.db.begin_read().map_err(db_err)?;
            let table = txn.open_table(BLOCKS).map_err(db_err)?;
            let value = table.get(key(id).as_slice()).map_err(db_err)?;
            value
                .map(|v| decode_block(v.value(), id.number))
                .transpose()
        })
    }

    /// Number of stored blocks (all heights, canonical or not).
    pub fn len(&self) -> Result<u64, StoreError> {
        guarded(|| {
            let txn = self.db.begin_read().map_err(db_err)?;
            let table = txn.open_table(BLOCKS).map_err(db_err)?;
            table.len().map_err(db_err)
        })
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }
}

/// The head recorded in the meta table.
fn read_head(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<Option<BlockRef>, StoreError> {
    let value = meta.get(HEAD_KEY).map_err(db_err)?;
    value.map(|v| decode_ref(v.value())).transpose()
}

/// Every stored block at `number` (keys are number ‖ hash, so they are adjacent).
fn blocks_at<'t>(
    table: &'t impl ReadableTable<&'static [u8], &'static [u8]>,
    number: u64,
) -> Result<redb::Range<'t, &'static [u8], &'static [u8]>, StoreError> {
    let start = number.to_be_bytes();
    match number.checked_add(1).map(u64::to_be_bytes) {
        Some(end) => table.range::<&[u8]>(start.as_slice()..end.as_slice()),
        None => table.range::<&[u8]>(start.as_slice()..),
    }
    .map_err(db_err)
}

/// Follows stored children from `head`, marking each canonical; returns the last one.
fn extend_head(
    table: &redb::Table<&[u8], &[u8]>,
    canonical: &mut redb::Table<u64, &[u8]>,
    mut head: BlockRef,
) -> Result<BlockRef, StoreError> {
    while let Some(next) = child_of(table, head)? {
        canonical
            .insert(next.number, next.hash.as_slice())
            .map_err(db_err)?;
        head = next;
    }
    Ok(head)
}

/// The stored block at `parent.number + 1` whose parent hash is `parent.hash`, if any. Reads only
/// the parent hash of each candidate, not the whole payload.
fn child_of(
    table: &redb::Table<&[u8], &[u8]>,
    parent: BlockRef,
) -> Result<Option<BlockRef>, StoreError> {
    let Some(number) = parent.number.checked_add(1) else {
        return Ok(None);
    };
    for entry in blocks_at(table, number)? {
        let (k, v) = entry.map_err(db_err)?;
        let claimed =
            stored_parent_hash(v.value()).ok_or(StoreError::Corrupt(Record::Block(number)))?;
        if claimed == parent.hash {
            return Ok(Some(decode_ref(k.value())?));
        }
    }
    Ok(None)
}

fn key(id: BlockRef) -> [u8; KEY_BYTES] {
    encode_ref(id)
}

fn encode_ref(id: BlockRef) -> [u8; KEY_BYTES] {
    let mut out = [0u8; KEY_BYTES];
    out[..8].copy_from_slice(&id.number.to_be_bytes());
    out[8..].copy_from_slice(id.hash.as_slice());
    out
}

fn decode_ref(bytes: &[u8]) -> Result<BlockRef, StoreError> {
    let corrupt = || StoreError::Corrupt(Record::BlockReference);
    let number = u64::from_be_bytes(
        bytes
            .get(..8)
            .ok_or_else(corrupt)?
            .try_into()
            .map_err(|_| corrupt())?,
    );
    let hash =
        B256::try_from(bytes.get(8..KEY_BYTES).ok_or_else(corrupt)?).map_err(|_| corrupt())?;
    Ok(BlockRef { number, hash })
}

fn decode_block(value: &[u8], number: u64) -> Result<StoredBlock, StoreError> {
    let corrupt = || StoreError::Corrupt(Record::Block(number));
    let (&version_byte, body) = value.split_first().ok_or_else(corrupt)?;
    let version = BlockVersion::from_topic_index(version_byte).ok_or_else(corrupt)?;
    // One copy out of redb's page, one decode; the copy is kept as the block's bytes (the
    // transactions share it), so serving it encodes nothing.
    let (envelope, ssz) =
        decode_envelope_canonical(version, &Bytes::copy_from_slice(body)).map_err(|_| corrupt())?;
    Ok(StoredBlock {
        version,
        envelope,
        ssz,
    })
}

#[cfg(test)]
mod tests;
