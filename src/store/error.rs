//! Why the block store failed ([`StoreError`]): a database call, a damaged file or record, a
//! store that belongs to another chain or format. Every store method returns it; the node's
//! start refuses to run on it, a running node logs it and answers the read that needed the data
//! with an error (never a panic, `store/guard.rs`).

use std::fmt;
use std::path::PathBuf;

use super::BlockRef;
use super::open::{ChainRecord, STORE_FORMAT};
use crate::wire::ssz::EncodeError;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened, read or written.
    #[error("block store: {0}")]
    Db(#[from] redb::Error),
    /// redb panicked on the file (caught by `store/guard.rs`); `message` is the panic's text,
    /// all a panic carries.
    #[error("block store: the database file is damaged (redb failed reading it: {message})")]
    Panicked {
        /// The panic message.
        message: String,
    },
    /// The store's directory cannot be created.
    #[error("block store: cannot create the directory {}: {source}", dir.display())]
    Dir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The store writer's thread cannot be started.
    #[error("block store: cannot start the store writer: {0}")]
    WriterThread(#[source] std::io::Error),
    /// A stored record does not decode (the file was damaged or written by something else).
    #[error("block store record {0} is corrupt")]
    Corrupt(Record),
    /// The block cannot be encoded in its version's layout.
    #[error("block cannot be stored: {0}")]
    Encode(#[from] EncodeError),
    /// The file cannot be opened or fails redb's integrity check.
    #[error(
        "block store {path} is damaged ({cause}). Move its directory away (or delete it) and start \
         again: the node then begins with an empty store, fetches recent blocks from its peers \
         and forgets its peer bans and scores"
    )]
    Damaged {
        /// The store file.
        path: String,
        /// What redb said.
        #[source]
        cause: Box<StoreError>,
    },
    /// The store was created for another chain.
    #[error(
        "block store {path} belongs to {found}, not to {chain} ({expected}). Give this chain its \
         own --datadir, or move that directory away to start {chain}'s store afresh"
    )]
    OtherChain {
        /// The store file.
        path: String,
        /// What the store records.
        found: Box<ChainRecord>,
        /// The chain the node runs.
        chain: String,
        /// That chain's record.
        expected: Box<ChainRecord>,
    },
    /// The store was written by a build with another store format.
    #[error(
        "block store {path} has format {found}; this op-gossip reads format {STORE_FORMAT}. Run the \
         op-gossip that wrote it, or move its directory away to start afresh"
    )]
    UnknownFormat {
        /// The store file.
        path: String,
        /// Its format.
        found: u32,
    },
    /// A store from before chain records whose content does not prove it is this chain's.
    #[error(
        "block store {path} was written before stores recorded their chain, and it is not \
         {chain}'s: {reason}. Give {chain} its own --datadir, or move that directory away"
    )]
    Unproven {
        /// The store file.
        path: String,
        /// The chain the node runs.
        chain: String,
        /// Why its content does not fit the chain.
        reason: Unproven,
    },
}

/// A record of the store ([`StoreError::Corrupt`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// The store format in the meta table.
    Format,
    /// The chain record in the meta table.
    Chain,
    /// An entry of the canonical table.
    CanonicalEntry,
    /// A (number, hash) key.
    BlockReference,
    /// The block at this number.
    Block(u64),
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Format => f.write_str("format record"),
            Self::Chain => f.write_str("chain record"),
            Self::CanonicalEntry => f.write_str("canonical entry"),
            Self::BlockReference => f.write_str("block reference"),
            Self::Block(number) => write!(f, "block {number}"),
        }
    }
}

/// Why a store without a chain record is not the running chain's ([`StoreError::Unproven`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unproven {
    /// Its newest block's timestamp is not where the chain puts that number.
    #[error(
        "its block #{number} has timestamp {timestamp}, where {chain} puts that number at {expected}"
    )]
    Timestamp {
        /// The block number.
        number: u64,
        /// Its timestamp.
        timestamp: u64,
        /// The running chain's name.
        chain: String,
        /// The chain's timestamp for that number.
        expected: u64,
    },
    /// Its newest block is below the chain's genesis.
    #[error("its block #{number} is below {chain}'s genesis #{genesis}")]
    BelowGenesis {
        /// The block number.
        number: u64,
        /// The running chain's name.
        chain: String,
        /// The chain's genesis number.
        genesis: u64,
    },
    /// No block is stored and the head is not the chain's genesis.
    #[error(
        "its head #{} {} is not {chain}'s genesis and no block is stored to check it",
        head.number, head.hash
    )]
    Head {
        /// The stored head.
        head: BlockRef,
        /// The running chain's name.
        chain: String,
    },
}

/// A redb call's error as a [`StoreError::Db`].
pub(super) fn db_err(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Db(e.into())
}
