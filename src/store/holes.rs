//! What lies above the head: the holes between it and the blocks stored early (above a gap),
//! read in one pass over the block table. The sync client plans its payload_by_number requests
//! from them ([`crate::sync::plan`]).

use alloy_primitives::B256;
use redb::ReadableDatabase;

use super::{BLOCKS, BlockRef, META, Store, StoreError, db_err, decode_ref, guarded, read_head};
use crate::wire::BlockVersion;

impl Store {
    /// The holes between the head and the blocks stored above it (which arrived early and wait
    /// for the numbers below them), lowest first, looking at no more than `max_entries` stored
    /// blocks. Each hole carries the parent hashes claimed by the blocks just above it: a
    /// gossip-accepted block is signed by the sequencer, so its parent is what the hole must end
    /// with (the sync client's trusted hash).
    pub fn holes(&self, max_entries: usize) -> Result<Holes, StoreError> {
        guarded(|| {
            let txn = self.db.begin_read().map_err(db_err)?;
            let meta = txn.open_table(META).map_err(db_err)?;
            let Some(head) = read_head(&meta)? else {
                return Ok(Holes::default());
            };
            let mut out = Holes {
                head: Some(head),
                ..Holes::default()
            };
            let table = txn.open_table(BLOCKS).map_err(db_err)?;
            let Some(first) = head.number.checked_add(1) else {
                return Ok(out);
            };
            let start = first.to_be_bytes();
            let holes = &mut out.holes;
            let mut below = head.number;
            for entry in table
                .range::<&[u8]>(start.as_slice()..)
                .map_err(db_err)?
                .take(max_entries)
            {
                let (k, v) = entry.map_err(db_err)?;
                let id = decode_ref(k.value())?;
                let parent = stored_parent_hash(v.value())
                    .ok_or(StoreError::Corrupt(super::Record::Block(id.number)))?;
                let link = BlockLink { id, parent };
                if id.number == first {
                    // Stored at head + 1 yet not the head's child (the head is extended at every
                    // write): the chain above was re-organised under the head.
                    out.unlinked_next.get_or_insert(link);
                } else if id.number > below.saturating_add(1) {
                    holes.push(Hole {
                        after: below,
                        before: id.number,
                        above: vec![link],
                    });
                } else if let Some(hole) = holes.last_mut().filter(|h| h.before == id.number) {
                    // Another block at the same height above the hole (equivocation): each parent
                    // is a candidate; only the one that links wins.
                    hole.above.push(link);
                }
                below = id.number;
            }
            Ok(out)
        })
    }
}

/// What lies above the head: the holes, lowest first ([`Store::holes`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holes {
    /// The head (`None` for an empty store).
    pub head: Option<BlockRef>,
    /// Missing ranges between the head and the blocks stored above it.
    pub holes: Vec<Hole>,
    /// A block stored at head + 1 that is not the head's child (the chain re-organised).
    pub unlinked_next: Option<BlockLink>,
}

/// A stored block and the parent it claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockLink {
    /// The block.
    pub id: BlockRef,
    /// Its parent hash.
    pub parent: B256,
}

/// Missing block numbers `after + 1 ..= before − 1` between two present ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hole {
    /// The highest present number below the hole (the head, or a stored block).
    pub after: u64,
    /// The lowest present number above the hole.
    pub before: u64,
    /// The blocks stored at `before` (usually one) with the parents they claim.
    pub above: Vec<BlockLink>,
}

impl Hole {
    /// How many numbers are missing.
    pub fn len(&self) -> u64 {
        self.before.saturating_sub(self.after).saturating_sub(1)
    }

    /// True when nothing is missing (never returned by [`Store::holes`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The parent hash of a stored record without decoding it: the payload's first field, after
/// the version byte and (V3 and later) the 32-byte parent beacon block root.
pub(super) fn stored_parent_hash(value: &[u8]) -> Option<B256> {
    let (&version_byte, body) = value.split_first()?;
    let version = BlockVersion::from_topic_index(version_byte)?;
    let skip = if version.has_parent_beacon_root() {
        32
    } else {
        0
    };
    body.get(skip..skip + 32).map(B256::from_slice)
}
