//! keccak256 of several messages at once: two at a time on CPUs with AVX-512, one by one
//! (alloy's assembly keccak) elsewhere.
//!
//! Sits on the gossip-in hot path, under [`crate::validate`] and [`super::tx_trie`]: validating a
//! block hashes its whole payload (the hash op-node signs) and every transaction leaf of its trie
//! (for the block hash), about twice the block's size. With alloy's single-message assembly
//! keccak that was 19% of a follower's CPU in the 20-node propagation benchmark
//! (`scripts/bench-propagation.sh`, perf), the largest single item.
//!
//! The two hashes do not depend on each other, so [`keccak256_all`] runs them side by side: two
//! Keccak states sit in the two 64-bit halves of 25 128-bit registers (`avx512.rs`), where a round
//! is about 90 vector operations for both states (three-input XOR and the χ step are one
//! `vpternlogq` each, rotations one `vprolq`) against about 100 scalar ones for a single state.
//! Measured with `cargo bench --bench keccak` on this project's 2-core Xeon (a shared host whose
//! figures move by ±20%): two 100 KiB messages in 477 µs against 1,258 µs for alloy's assembly
//! keccak (2.6×); a lone message, one lane idle, in 475 µs against 669 µs (1.4×).
//!
//! Written here rather than taken from a crate because none fits: `keccak-asm` (alloy's) and
//! `tiny-keccak` hash one message at a time, and RustCrypto's `keccak` runs several states only
//! with nightly Rust (`portable_simd`). The risk of hand-written hashing is a wrong hash, which
//! the tests rule out against alloy's keccak over every length up to several blocks and random
//! batches, and the `keccak_batch` fuzz target keeps checking.

#[cfg(target_arch = "x86_64")]
mod avx512;
mod lanes;

use alloy_primitives::B256;

/// Bytes absorbed per permutation by keccak256 (the sponge rate: 1600 − 2 × 256 bits).
pub const RATE_BYTES: usize = 136;

/// One message to hash: `head ‖ body`, so a trie leaf's few RLP header bytes need not be copied
/// in front of its transaction to be hashed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Message<'a> {
    head: &'a [u8],
    body: &'a [u8],
}

impl<'a> Message<'a> {
    /// The message `body`.
    pub fn new(body: &'a [u8]) -> Self {
        Self { head: &[], body }
    }

    /// The message `head ‖ body`.
    pub fn with_head(head: &'a [u8], body: &'a [u8]) -> Self {
        Self { head, body }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.head.len().saturating_add(self.body.len())
    }

    /// True for the empty message.
    pub fn is_empty(&self) -> bool {
        self.head.is_empty() && self.body.is_empty()
    }

    /// Copies the bytes at `offset..offset + out.len()` into `out`; bytes past the end are left
    /// as they are (the caller only asks for bytes that exist).
    fn copy_to(&self, offset: usize, out: &mut [u8]) {
        let head = self.head.get(offset..).unwrap_or_default();
        let from_head = head.len().min(out.len());
        let (out_head, out_body) = out.split_at_mut(from_head);
        out_head.copy_from_slice(head.get(..from_head).unwrap_or_default());
        let body_offset = offset.saturating_sub(self.head.len());
        let end = body_offset.saturating_add(out_body.len());
        if let Some(src) = self.body.get(body_offset..end) {
            out_body.copy_from_slice(src);
        }
    }
}

/// keccak256 of each message, in order. Messages are taken from the iterator as lanes free up,
/// so a batch needs no list of its own.
pub fn keccak256_all<'a>(messages: impl IntoIterator<Item = Message<'a>>) -> Vec<B256> {
    #[cfg(target_arch = "x86_64")]
    if let Some(avx512) = avx512::Avx512::detect() {
        return lanes::hash_two_at_a_time(messages, |state| avx512.permute(state));
    }
    messages
        .into_iter()
        .map(|m| keccak256_one_by_one(&m))
        .collect()
}

/// keccak256 of `bytes`: in the two-lane engine where there is one (one lane idle, still about
/// 1.4× alloy's assembly keccak on long inputs), else alloy's.
pub fn keccak256(bytes: &[u8]) -> B256 {
    keccak256_all([Message::new(bytes)])
        .pop()
        .unwrap_or_else(|| alloy_primitives::keccak256(bytes))
}

/// keccak256 of one message with alloy's single-message (assembly) keccak.
fn keccak256_one_by_one(message: &Message<'_>) -> B256 {
    let mut hasher = alloy_primitives::Keccak256::new();
    hasher.update(message.head);
    hasher.update(message.body);
    hasher.finalize()
}

/// True when [`keccak256_all`] hashes two messages in about the time of one, so adding a
/// message to a batch that has a longer one costs next to nothing.
pub fn hashes_in_pairs() -> bool {
    #[cfg(target_arch = "x86_64")]
    if avx512::Avx512::detect().is_some() {
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::keccak256;
    use proptest::prelude::*;

    fn bytes(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn empty_batch_and_empty_message() {
        assert!(keccak256_all([]).is_empty());
        let hashes = keccak256_all([Message::default(), Message::new(&[])]);
        assert_eq!(hashes, vec![keccak256([]), keccak256([])]);
    }

    #[test]
    fn every_length_around_the_block_boundaries() {
        // Lengths 0..=4 blocks + 1 cover: a final block with 0..135 bytes, a message ending
        // exactly on a block (padding-only final block), and the 0x01/0x80 padding sharing a byte.
        let data = bytes(4 * RATE_BYTES + 1, 7);
        let messages: Vec<_> = (0..=data.len()).map(|n| Message::new(&data[..n])).collect();
        let hashes = keccak256_all(messages);
        for (n, hash) in hashes.iter().enumerate() {
            assert_eq!(*hash, keccak256(&data[..n]), "length {n}");
        }
    }

    #[test]
    fn head_and_body_hash_as_their_concatenation() {
        let data = bytes(3 * RATE_BYTES, 3);
        for split in [0, 1, 8, 135, 136, 137, 300, data.len()] {
            let (head, body) = data.split_at(split);
            let hashes = keccak256_all([Message::with_head(head, body), Message::new(&data)]);
            assert_eq!(
                hashes,
                vec![keccak256(&data), keccak256(&data)],
                "split {split}"
            );
        }
    }

    #[test]
    fn the_known_answer() {
        // keccak256("") and keccak256("abc"), the standard Keccak-256 test vectors.
        let hashes = keccak256_all([Message::new(b""), Message::new(b"abc")]);
        assert_eq!(
            hashes[0].to_string(),
            "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
        assert_eq!(
            hashes[1].to_string(),
            "0x4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"
        );
    }

    #[test]
    fn the_two_lane_engine_matches_alloy_whatever_the_cpu() {
        // The scheduler with a reference permutation, so it is checked on CPUs without AVX-512.
        let data = bytes(2000, 9);
        let lens = [0, 135, 136, 1000, 1, 2000, 272, 50];
        let messages: Vec<_> = lens.iter().map(|&n| Message::new(&data[..n])).collect();
        let hashes = lanes::hash_two_at_a_time(messages, lanes::tests::reference_permute);
        for (n, hash) in lens.iter().zip(&hashes) {
            assert_eq!(*hash, keccak256(&data[..*n]), "length {n}");
        }
    }

    #[test]
    fn the_fallback_matches_alloy() {
        // alloy's keccak over head ‖ body: what CPUs without AVX-512 run.
        let data = bytes(500, 1);
        for split in [0, 7, 136, 500] {
            let (head, body) = data.split_at(split);
            let message = Message::with_head(head, body);
            assert_eq!(
                keccak256_one_by_one(&message),
                keccak256(&data),
                "split {split}"
            );
        }
    }

    #[test]
    fn reports_whether_it_pairs() {
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            hashes_in_pairs(),
            std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512vl")
        );
    }

    proptest! {
        #[test]
        fn random_batches_match_alloy(
            messages in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 0..20),
                 proptest::collection::vec(any::<u8>(), 0..700)),
                0..9,
            )
        ) {
            let batch: Vec<_> = messages.iter().map(|(h, b)| Message::with_head(h, b)).collect();
            let hashes = keccak256_all(batch);
            prop_assert_eq!(hashes.len(), messages.len());
            for ((head, body), hash) in messages.iter().zip(&hashes) {
                prop_assert_eq!(*hash, keccak256([head.as_slice(), body].concat()));
            }
        }
    }
}
