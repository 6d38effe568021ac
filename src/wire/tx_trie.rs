//! The transactions root of a block header (go-ethereum `DeriveSha`: an ordered Merkle-Patricia
//! trie keyed by `rlp(index)`), with the hashing of its large leaves split out so it can run in
//! one [`keccak256_all`] batch, alongside other hashes (the validator adds the payload hash).
//!
//! Part of the block-hash check ([`super::block_hash`]). A leaf node whose RLP is 32 bytes or
//! more is referenced from its parent by its keccak256 — for a transaction of more than a few
//! bytes that hash covers the whole transaction, so hashing leaves is most of the trie's cost.
//! [`TransactionLeaves`] works out where each leaf sits in the trie (from the keys alone) and the
//! RLP header bytes its hash starts with; after the batch, alloy's `HashBuilder` assembles the
//! root from those hashes (`add_branch`: a node given by its hash) and from the remaining small
//! leaves (`add_leaf`). The result equals `alloy_trie::root::ordered_trie_root_encoded`, which
//! the tests check over every transaction count up to 300 and mixed sizes.
//!
//! Bound: only leaves of at least [`MIN_BATCHED_TX_BYTES`] go into the batch, so what is kept
//! per batched leaf (28 B of index, position, depth and header, then its 32 B hash) is at most 45%
//! of the transaction bytes it stands for, and is freed with the check; smaller leaves are hashed
//! by the `HashBuilder` as before.

use alloy_primitives::B256;
use alloy_rlp::{Encodable, Header};
use alloy_trie::root::adjust_index_for_rlp;
use alloy_trie::{EMPTY_ROOT_HASH, HashBuilder, Nibbles};

use super::Transactions;
use super::keccak::{Message, RATE_BYTES, keccak256_all};

/// Transactions of at least this many bytes have their leaf hashed in the batch: one keccak
/// block, the size from which two-lane hashing pays for its bookkeeping.
pub const MIN_BATCHED_TX_BYTES: usize = RATE_BYTES;

/// Longest leaf header: a list header for up to 10 MiB (4 B), the hex-prefix path of at most 7
/// nibbles as an RLP string (5 B; keys are `rlp(index)` of at most 4 bytes for the 2^20
/// transactions SSZ allows) and the transaction's string header (4 B).
const MAX_HEAD_BYTES: usize = 16;

/// The trie key of one transaction: `rlp(index)`, at most 9 bytes for a `usize`.
#[derive(Clone, Copy)]
struct Key {
    bytes: [u8; 9],
    len: usize,
}

impl Key {
    /// The key at sorted position `position` of `count` (alloy's `adjust_index_for_rlp` order:
    /// 1..=127, then 0, then 128.., which is the byte order of the keys), and its index.
    fn at(position: usize, count: usize) -> (usize, Self) {
        let index = adjust_index_for_rlp(position, count);
        (index, Self::of(index))
    }

    /// The sorted position of the key of transaction `index` of `count` (the inverse of
    /// [`Self::at`]): key 0x80 (index 0) follows 1..=127, or closes the list when it is shorter.
    fn position_of(index: usize, count: usize) -> usize {
        match index {
            0 => 0x7f.min(count.saturating_sub(1)),
            1..=0x7f => index - 1,
            _ => index,
        }
    }

    /// `rlp(index)`, encoded by alloy-rlp (at most 9 bytes: a length byte and 8 value bytes).
    fn of(index: usize) -> Self {
        let mut bytes = [0u8; 9];
        let mut out: &mut [u8] = &mut bytes;
        index.encode(&mut out);
        Self {
            bytes,
            len: index.length(),
        }
    }

    fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

/// Length of the common prefix of two keys, in nibbles.
fn common_nibbles(a: &[u8], b: &[u8]) -> usize {
    let bytes = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let next_high_nibble_equal = match (a.get(bytes), b.get(bytes)) {
        (Some(x), Some(y)) => x >> 4 == y >> 4,
        _ => false,
    };
    2 * bytes + usize::from(next_high_nibble_equal)
}

/// One batched leaf: which transaction, and its RLP header (`head ‖ transaction` is the node).
struct BatchedLeaf {
    index: u32,
    /// Rank of the key among all keys.
    position: u32,
    /// Nibbles of the key above the leaf (the path of its parent branch, plus one).
    depth: u8,
    head: [u8; MAX_HEAD_BYTES],
    head_len: u8,
}

/// The leaves of one block's transaction trie that go into a keccak batch, in key order.
pub struct TransactionLeaves {
    batched: Vec<BatchedLeaf>,
}

impl TransactionLeaves {
    /// Works out the batched leaves of `txs`: for each transaction of at least
    /// [`MIN_BATCHED_TX_BYTES`], its depth in the trie and its leaf node's header.
    ///
    /// Visits only those transactions (their neighbours' keys follow from the count), so a block
    /// of many small transactions costs one pass over its offsets here, not one per key.
    pub fn new(txs: &Transactions) -> Self {
        let count = txs.len();
        let mut batched: Vec<BatchedLeaf> = txs
            .iter()
            .enumerate()
            .filter(|(_, tx)| tx.len() >= MIN_BATCHED_TX_BYTES)
            .filter_map(|(index, tx)| {
                let position = Key::position_of(index, count);
                let this = Key::of(index);
                // A lone leaf is the root and keeps its whole key; otherwise it sits one nibble
                // below the longest prefix it shares with a neighbour.
                let depth = if count == 1 {
                    0
                } else {
                    let shared_with = |other: usize| {
                        let (_, key) = Key::at(other, count);
                        common_nibbles(this.as_slice(), key.as_slice())
                    };
                    let before = position.checked_sub(1).map_or(0, shared_with);
                    let after = (position + 1 < count).then(|| shared_with(position + 1));
                    before.max(after.unwrap_or(0)) + 1
                };
                BatchedLeaf::new(index, position, this, depth, tx.len())
            })
            .collect();
        // Index order is key order except for index 0 (key 0x80, after 1..=127).
        batched.sort_unstable_by_key(|leaf| leaf.position);
        Self { batched }
    }

    /// The messages to hash, in key order: one per batched leaf.
    pub fn messages<'a>(&'a self, txs: &'a Transactions) -> impl Iterator<Item = Message<'a>> {
        self.batched.iter().map(|leaf| {
            let head = leaf
                .head
                .get(..usize::from(leaf.head_len))
                .unwrap_or_default();
            Message::with_head(head, txs.get(leaf.index as usize).unwrap_or_default())
        })
    }

    /// Number of batched leaves (the hashes [`Self::root`] expects).
    pub fn len(&self) -> usize {
        self.batched.len()
    }

    /// True when no leaf is batched.
    pub fn is_empty(&self) -> bool {
        self.batched.is_empty()
    }

    /// The trie root, given `hashes` of [`Self::messages`] in the same order. `None` if
    /// `hashes` does not have one hash per batched leaf.
    pub fn root(&self, txs: &Transactions, hashes: &[B256]) -> Option<B256> {
        if hashes.len() != self.batched.len() {
            return None;
        }
        let count = txs.len();
        if count == 0 {
            return Some(EMPTY_ROOT_HASH);
        }
        let mut builder = HashBuilder::default();
        let mut batched = self.batched.iter().zip(hashes).peekable();
        for position in 0..count {
            let (index, key) = Key::at(position, count);
            let nibbles = Nibbles::unpack(key.as_slice());
            match batched.next_if(|(leaf, _)| leaf.index as usize == index) {
                // A lone batched leaf is the whole trie: its node hash is the root.
                Some((_, hash)) if count == 1 => return Some(*hash),
                Some((leaf, hash)) => {
                    builder.add_branch(nibbles.slice(..usize::from(leaf.depth)), *hash, false)
                }
                None => builder.add_leaf(nibbles, txs.get(index).unwrap_or_default()),
            }
        }
        Some(builder.root())
    }
}

impl BatchedLeaf {
    /// The leaf of transaction `index` (of `tx_len` bytes) whose key is `key`, placed `depth`
    /// nibbles down; the header lengths are alloy-rlp's own. `None` if a header would
    /// not fit [`MAX_HEAD_BYTES`] (which the bounds on keys and messages rule out); the leaf is
    /// then left to the `HashBuilder`, like a small one, and the root is the same.
    fn new(index: usize, position: usize, key: Key, depth: usize, tx_len: usize) -> Option<Self> {
        let nibbles = Nibbles::unpack(key.as_slice());
        let path = alloy_trie::nodes::encode_path_leaf(&nibbles.slice(depth..), true);
        let path = path.as_slice();
        let string = Header {
            list: false,
            payload_length: tx_len,
        };
        let list = Header {
            list: true,
            payload_length: path.length().checked_add(string.length_with_payload())?,
        };
        let head_len = list.length() + path.length() + string.length();
        if head_len > MAX_HEAD_BYTES {
            return None;
        }
        // Encoded straight into the fixed array: it has room for `head_len` bytes (checked above).
        let mut head = [0u8; MAX_HEAD_BYTES];
        let mut out: &mut [u8] = &mut head;
        list.encode(&mut out);
        path.encode(&mut out);
        string.encode(&mut out);
        Some(Self {
            index: u32::try_from(index).ok()?,
            position: u32::try_from(position).ok()?,
            depth: u8::try_from(depth).ok()?,
            head,
            head_len: u8::try_from(head_len).ok()?,
        })
    }
}

/// Ordered trie root over the raw transaction bytes, its large leaves hashed in one batch.
pub fn transactions_root(txs: &Transactions) -> B256 {
    let leaves = TransactionLeaves::new(txs);
    let hashes = keccak256_all(leaves.messages(txs));
    leaves.root(txs, &hashes).unwrap_or_else(|| {
        alloy_trie::root::ordered_trie_root_encoded(&txs.iter().collect::<Vec<_>>())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_trie::root::ordered_trie_root_encoded;

    fn expected(txs: &Transactions) -> B256 {
        ordered_trie_root_encoded(&txs.iter().collect::<Vec<_>>())
    }

    /// `count` transactions whose sizes cycle through `sizes`.
    fn transactions(count: usize, sizes: &[usize]) -> Transactions {
        let bodies: Vec<Vec<u8>> = (0..count)
            .map(|i| {
                let len = sizes[i % sizes.len()];
                (0..len)
                    .map(|b| (b as u8) ^ (i as u8).wrapping_mul(13))
                    .collect()
            })
            .collect();
        Transactions::from_slices(bodies.iter().map(Vec::as_slice)).unwrap()
    }

    #[test]
    fn equals_alloys_root_for_every_count_up_to_300() {
        // Sizes on both sides of the batching threshold and of the 32-byte inline limit, with
        // one- and two-byte RLP lengths (≥ 56 B, ≥ 256 B).
        let sizes = [136, 1, 31, 200, 135, 300, 56, 137, 40];
        for count in 0..=300 {
            let txs = transactions(count, &sizes);
            assert_eq!(
                transactions_root(&txs),
                expected(&txs),
                "{count} transactions"
            );
        }
    }

    #[test]
    fn equals_alloys_root_when_every_leaf_is_batched_or_none_is() {
        for count in [1, 2, 3, 16, 17, 127, 128, 129, 255, 256, 257, 1000] {
            for sizes in [&[140usize][..], &[40], &[10], &[300, 140]] {
                let txs = transactions(count, sizes);
                assert_eq!(
                    transactions_root(&txs),
                    expected(&txs),
                    "{count} × {sizes:?}"
                );
            }
        }
    }

    #[test]
    fn equals_alloys_root_with_transactions_over_64_kib() {
        // Three-byte RLP lengths in the leaf's string and list headers.
        for count in [1, 2, 3, 130] {
            let txs = transactions(count, &[70_000, 20, 300]);
            assert_eq!(
                transactions_root(&txs),
                expected(&txs),
                "{count} transactions"
            );
        }
    }

    #[test]
    fn a_lone_transaction_is_the_root() {
        for len in [0, 1, 40, 136, 10_000] {
            let txs = transactions(1, &[len]);
            assert_eq!(transactions_root(&txs), expected(&txs), "{len} bytes");
        }
        assert_eq!(transactions_root(&Transactions::default()), EMPTY_ROOT_HASH);
    }

    #[test]
    fn the_batch_holds_exactly_the_large_leaves() {
        let txs = transactions(10, &[10, 200]);
        let leaves = TransactionLeaves::new(&txs);
        assert_eq!(leaves.len(), 5);
        assert!(leaves.messages(&txs).all(|m| m.len() > 200));
    }

    #[test]
    fn keys_are_the_rlp_of_the_index() {
        for index in [0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 1 << 20, usize::MAX] {
            assert_eq!(
                Key::of(index).as_slice(),
                alloy_rlp::encode(index),
                "{index}"
            );
        }
    }

    #[test]
    fn a_batched_leaf_takes_28_bytes() {
        assert_eq!(std::mem::size_of::<BatchedLeaf>(), 28);
    }

    #[test]
    fn position_of_inverts_the_key_order() {
        for count in 1..=300 {
            for position in 0..count {
                let (index, _) = Key::at(position, count);
                assert_eq!(Key::position_of(index, count), position, "{count}");
            }
        }
    }

    #[test]
    fn a_wrong_number_of_hashes_gives_no_root() {
        let txs = transactions(4, &[200]);
        let leaves = TransactionLeaves::new(&txs);
        assert_eq!(leaves.root(&txs, &[B256::ZERO; 3]), None);
        assert_eq!(leaves.root(&txs, &[B256::ZERO; 5]), None);
    }
}
