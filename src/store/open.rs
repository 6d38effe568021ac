//! Opening the block store: which chain a store belongs to, and whether its file is whole.
//!
//! Runs once, in [`super::Store::open`], before the node reads or writes anything else. The steps:
//!
//! 1. An existing file is first opened **read-only** and its chain record compared with the
//!    chain the node runs; a store of another chain (chain id, L2 genesis block or genesis time)
//!    or of an unknown format is refused with both named, the file left byte for byte as it was.
//!    A file redb cannot open read-only because it was not closed cleanly (a SIGKILL) skips this
//!    step: redb's repair in step 2 must run first, and the record is checked after it.
//! 2. The file is opened for writing with redb's integrity check: the checksum of every page of
//!    the committed trees is verified, so damage is a clear error at start instead of a panic on
//!    some later read. It reads the whole file once (measured: `benches/store_open.rs`).
//! 3. A new store gets its record (format, chain) in the same transaction that creates the
//!    tables; an existing one is checked again (the case step 1 skipped).
//!
//! Stores written before the record existed (format "none") are **adopted** when their content
//! proves the chain: the newest stored block sits at the timestamp the chain's genesis and block
//! time give its number (the OP Stack's rule `genesis time + (n − genesis n) × block time`,
//! which no other chain's blocks meet unless its genesis time and block time are the same), or
//! the store holds no block and its head is empty or the chain's genesis. Anything else is
//! refused: it cannot be told from another chain's store.

use std::fmt;
use std::path::Path;

use alloy_primitives::B256;
use redb::{Builder, Database, ReadableDatabase, ReadableTable};

use super::{
    BLOCKS, BlockRef, CACHE_BYTES, CANONICAL, META, Record, StoreError, Unproven, decode_block,
    guarded, read_head,
};
use crate::chain::ChainSpec;

/// The format this build writes and reads. Bump it when a table's layout changes.
pub const STORE_FORMAT: u32 = 1;
/// `"format"` → [`STORE_FORMAT`] of the writer (u32 BE).
const FORMAT_KEY: &str = "format";
/// `"chain"` → [`ChainRecord`] (56 bytes, see [`ChainRecord::encode`]).
const CHAIN_KEY: &str = "chain";

/// What identifies the chain a store belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainRecord {
    /// The L2 chain id.
    pub chain_id: u64,
    /// The L2 genesis block (rollup.json's `genesis.l2`).
    pub genesis: BlockRef,
    /// The L2 genesis time: the devnet's genesis hash is zero, its time tells its runs apart.
    pub genesis_time: u64,
}

impl ChainRecord {
    const BYTES: usize = 8 + 8 + 32 + 8;

    /// The record of `chain`.
    pub fn of(chain: &ChainSpec) -> Self {
        Self {
            chain_id: chain.chain_id,
            genesis: BlockRef {
                number: chain.genesis.l2.number,
                hash: chain.genesis.l2.hash,
            },
            genesis_time: chain.genesis.l2_time,
        }
    }

    /// `chain id ‖ genesis number ‖ genesis hash ‖ genesis time`, integers big-endian.
    fn encode(&self) -> [u8; Self::BYTES] {
        let mut out = [0u8; Self::BYTES];
        out[..8].copy_from_slice(&self.chain_id.to_be_bytes());
        out[8..16].copy_from_slice(&self.genesis.number.to_be_bytes());
        out[16..48].copy_from_slice(self.genesis.hash.as_slice());
        out[48..].copy_from_slice(&self.genesis_time.to_be_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; Self::BYTES] = bytes.try_into().ok()?;
        let u64_at = |i: usize| u64::from_be_bytes(bytes[i..i + 8].try_into().unwrap_or_default());
        Some(Self {
            chain_id: u64_at(0),
            genesis: BlockRef {
                number: u64_at(8),
                hash: B256::from_slice(&bytes[16..48]),
            },
            genesis_time: u64_at(48),
        })
    }
}

impl fmt::Display for ChainRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "chain id {}, L2 genesis #{} {} at time {}",
            self.chain_id, self.genesis.number, self.genesis.hash, self.genesis_time
        )
    }
}

/// What the meta table says about the store's origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recorded {
    /// A store of this format and chain.
    Chain(ChainRecord),
    /// Written by a build with another format.
    Format(u32),
    /// No record: a new store, or one written before records existed.
    Nothing,
}

/// Opens the database at `path` for `chain`, refusing another chain's store or a damaged file.
pub(super) fn open_database(path: &Path, chain: &ChainSpec) -> Result<Database, StoreError> {
    let expected = ChainRecord::of(chain);
    let exists = std::fs::metadata(path).is_ok_and(|m| m.len() > 0);
    let mut checked = false;
    if exists {
        let read_only = guarded(|| {
            match Builder::new()
                .set_cache_size(CACHE_BYTES)
                .open_read_only(path)
            {
                Ok(db) => Ok(Some(db)),
                // Needs redb's repair, which only a writable open does; checked after it.
                Err(redb::DatabaseError::RepairAborted) => Ok(None),
                Err(e) => Err(StoreError::Db(e.into())),
            }
        })
        .map_err(|e| damaged(path, e))?;
        if let Some(db) = read_only {
            check(path, &db, chain, expected)?;
            checked = true;
        }
    }
    let db = guarded(|| {
        Builder::new()
            .set_cache_size(CACHE_BYTES)
            .set_check_integrity_on_open(true)
            .create(path)
            .map_err(|e| StoreError::Db(e.into()))
    })
    .map_err(|e| damaged(path, e))?;
    if exists && !checked {
        check(path, &db, chain, expected)?;
    }
    Ok(db)
}

/// Writes the format and chain record if the store has none (called in the transaction that
/// creates the tables, after [`open_database`] accepted the file).
pub(super) fn record_chain(
    txn: &redb::WriteTransaction,
    chain: &ChainSpec,
) -> Result<(), StoreError> {
    let mut meta = txn.open_table(META).map_err(super::db_err)?;
    if meta.get(FORMAT_KEY).map_err(super::db_err)?.is_none() {
        meta.insert(FORMAT_KEY, STORE_FORMAT.to_be_bytes().as_slice())
            .map_err(super::db_err)?;
        meta.insert(CHAIN_KEY, ChainRecord::of(chain).encode().as_slice())
            .map_err(super::db_err)?;
    }
    Ok(())
}

/// Compares the store's record with `expected`; a store without one must prove its chain.
fn check(
    path: &Path,
    db: &impl ReadableDatabase,
    chain: &ChainSpec,
    expected: ChainRecord,
) -> Result<(), StoreError> {
    let recorded = guarded(|| read_record(db)).map_err(|e| damaged(path, e))?;
    match recorded {
        Recorded::Chain(found) if found == expected => Ok(()),
        Recorded::Chain(found) => Err(StoreError::OtherChain {
            path: path.display().to_string(),
            found: Box::new(found),
            chain: chain.name.clone(),
            expected: Box::new(expected),
        }),
        Recorded::Format(found) => Err(StoreError::UnknownFormat {
            path: path.display().to_string(),
            found,
        }),
        Recorded::Nothing => guarded(|| legacy_fits(db, chain))
            .map_err(|e| damaged(path, e))?
            .map_err(|reason| StoreError::Unproven {
                path: path.display().to_string(),
                chain: chain.name.clone(),
                reason,
            }),
    }
}

fn read_record(db: &impl ReadableDatabase) -> Result<Recorded, StoreError> {
    let txn = db.begin_read().map_err(super::db_err)?;
    let meta = match txn.open_table(META) {
        Ok(meta) => meta,
        // A file with no tables yet (created, never written).
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Recorded::Nothing),
        Err(e) => return Err(super::db_err(e)),
    };
    let Some(format) = meta.get(FORMAT_KEY).map_err(super::db_err)? else {
        return Ok(Recorded::Nothing);
    };
    let format = <[u8; 4]>::try_from(format.value())
        .map(u32::from_be_bytes)
        .map_err(|_| StoreError::Corrupt(Record::Format))?;
    if format != STORE_FORMAT {
        return Ok(Recorded::Format(format));
    }
    let chain = meta
        .get(CHAIN_KEY)
        .map_err(super::db_err)?
        .and_then(|v| ChainRecord::decode(v.value()))
        .ok_or_else(|| StoreError::Corrupt(Record::Chain))?;
    Ok(Recorded::Chain(chain))
}

/// Whether a store without a record belongs to `chain` (see the module doc): `Err` says why not.
fn legacy_fits(
    db: &impl ReadableDatabase,
    chain: &ChainSpec,
) -> Result<Result<(), Unproven>, StoreError> {
    let txn = db.begin_read().map_err(super::db_err)?;
    let (Ok(meta), Ok(canonical), Ok(blocks)) = (
        txn.open_table(META),
        txn.open_table(CANONICAL),
        txn.open_table(BLOCKS),
    ) else {
        // Not every table exists: nothing was ever stored.
        return Ok(Ok(()));
    };
    // The newest block on the head chain, or failing that the newest stored block.
    let newest = match canonical.last().map_err(super::db_err)? {
        Some((number, hash)) => {
            let id = BlockRef {
                number: number.value(),
                hash: B256::try_from(hash.value())
                    .map_err(|_| StoreError::Corrupt(Record::CanonicalEntry))?,
            };
            blocks
                .get(super::key(id).as_slice())
                .map_err(super::db_err)?
                .map(|v| decode_block(v.value(), id.number))
                .transpose()?
        }
        None => None,
    };
    let newest = match newest {
        Some(block) => Some(block),
        None => blocks
            .last()
            .map_err(super::db_err)?
            .map(|(k, v)| {
                let id = super::decode_ref(k.value())?;
                decode_block(v.value(), id.number)
            })
            .transpose()?,
    };
    if let Some(block) = newest {
        let payload = &block.envelope.payload;
        return Ok(match chain.timestamp_for_block(payload.block_number) {
            Some(t) if t == payload.timestamp => Ok(()),
            Some(expected) => Err(Unproven::Timestamp {
                number: payload.block_number,
                timestamp: payload.timestamp,
                chain: chain.name.clone(),
                expected,
            }),
            None => Err(Unproven::BelowGenesis {
                number: payload.block_number,
                chain: chain.name.clone(),
                genesis: chain.genesis.l2.number,
            }),
        });
    }
    // No block stored: only an empty head or the genesis anchor is provably this chain's.
    let genesis = ChainRecord::of(chain).genesis;
    Ok(match read_head(&meta)? {
        None => Ok(()),
        Some(head) if head == genesis => Ok(()),
        Some(head) => Err(Unproven::Head {
            head,
            chain: chain.name.clone(),
        }),
    })
}

/// The error for a file redb cannot read, with what the operator can do.
fn damaged(path: &Path, cause: StoreError) -> StoreError {
    StoreError::Damaged {
        path: path.display().to_string(),
        cause: Box::new(cause),
    }
}
