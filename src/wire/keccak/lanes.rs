//! The two-lane keccak256 sponge: feeds a batch of messages through two Keccak states that are
//! permuted together, each lane taking the next message as soon as its current one is done.
//!
//! Safe code over a plain state array; the permutation is passed in ([`super::avx512`] in
//! production, a reference permutation in tests), so this scheduling is tested on any CPU.
//! With messages of unequal length the lanes stay busy until the batch runs out; only the tail of
//! the longest message leaves one lane idle.

use alloy_primitives::B256;

use super::{Message, RATE_BYTES};

/// Two Keccak-f[1600] states, word by word: `state[i][lane]` is word `i` of lane `lane`.
pub(super) type State2 = [[u64; 2]; 25];

/// Words absorbed per block (the rate in 64-bit words).
const RATE_WORDS: usize = RATE_BYTES / 8;

/// Where one lane is in its message.
struct Cursor<'a> {
    /// Index of the message in the batch (where its hash goes).
    index: usize,
    message: Message<'a>,
    /// Bytes of the message absorbed so far.
    offset: usize,
}

impl Cursor<'_> {
    /// Fills `block` (all zeros on entry) with the next block to absorb; for the last block,
    /// with keccak's padding (`0x01`, zeros, `0x80`, the two sharing a byte when one is left).
    /// Returns true when this was the last block.
    fn next_block(&mut self, block: &mut [u8; RATE_BYTES]) -> bool {
        let remaining = self.message.len().saturating_sub(self.offset);
        if remaining >= RATE_BYTES {
            self.message.copy_to(self.offset, block);
            self.offset = self.offset.saturating_add(RATE_BYTES);
            return false;
        }
        // remaining < RATE_BYTES here, so every index below is in range.
        let (data, padding) = block.split_at_mut(remaining);
        self.message.copy_to(self.offset, data);
        if let Some(first) = padding.first_mut() {
            *first ^= 0x01;
        }
        if let Some(last) = padding.last_mut() {
            *last ^= 0x80;
        }
        self.offset = self.message.len();
        true
    }
}

/// keccak256 of each message, two lanes at a time, with `permute` applying Keccak-f[1600] to
/// both states.
pub(super) fn hash_two_at_a_time<'a>(
    messages: impl IntoIterator<Item = Message<'a>>,
    mut permute: impl FnMut(&mut State2),
) -> Vec<B256> {
    let messages = messages.into_iter();
    let mut hashes = Vec::with_capacity(messages.size_hint().0);
    let mut queue = messages.enumerate().map(|(index, message)| Cursor {
        index,
        message,
        offset: 0,
    });
    let mut lanes: [Option<Cursor<'_>>; 2] = [queue.next(), queue.next()];
    let mut state: State2 = [[0; 2]; 25];
    while lanes.iter().any(Option::is_some) {
        let mut finished = [false; 2];
        for (lane, cursor) in lanes.iter_mut().enumerate() {
            let Some(cursor) = cursor else { continue };
            let mut block = [0u8; RATE_BYTES];
            finished[lane] = cursor.next_block(&mut block);
            let (words, _) = block.as_chunks::<8>();
            for (word, bytes) in state.iter_mut().zip(words.iter().take(RATE_WORDS)) {
                word[lane] ^= u64::from_le_bytes(*bytes);
            }
        }
        permute(&mut state);
        for (lane, cursor) in lanes.iter_mut().enumerate() {
            if !finished[lane] {
                continue;
            }
            if let Some(done) = cursor.take() {
                // Lanes finish out of order: make room up to this message's slot.
                if hashes.len() <= done.index {
                    hashes.resize(done.index + 1, B256::ZERO);
                }
                if let Some(hash) = hashes.get_mut(done.index) {
                    *hash = squeeze(&state, lane);
                }
            }
            for word in state.iter_mut() {
                word[lane] = 0;
            }
            *cursor = queue.next();
        }
    }
    hashes
}

/// The 256-bit output of `lane`: its first four words, little-endian.
fn squeeze(state: &State2, lane: usize) -> B256 {
    let mut out = B256::ZERO;
    for (chunk, word) in out.0.chunks_exact_mut(8).zip(state.iter()) {
        chunk.copy_from_slice(&word[lane].to_le_bytes());
    }
    out
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Keccak-f[1600] on each lane with RustCrypto's portable implementation.
    pub(in crate::wire::keccak) fn reference_permute(state: &mut State2) {
        for lane in 0..2 {
            let mut one: [u64; 25] = std::array::from_fn(|i| state[i][lane]);
            keccak::Keccak::new().with_f1600(|f1600| f1600(&mut one));
            for (word, value) in state.iter_mut().zip(one) {
                word[lane] = value;
            }
        }
    }

    #[test]
    fn lanes_are_independent_and_reset_between_messages() {
        // Three messages on two lanes: the third reuses a lane, which must start from zero.
        let a = vec![1u8; 500];
        let b = vec![2u8; 10];
        let c = vec![3u8; 300];
        let batch = [Message::new(&a), Message::new(&b), Message::new(&c)];
        let hashes = hash_two_at_a_time(batch, reference_permute);
        let expected: Vec<_> = [&a, &b, &c]
            .iter()
            .map(alloy_primitives::keccak256)
            .collect();
        assert_eq!(hashes, expected);
    }
}
