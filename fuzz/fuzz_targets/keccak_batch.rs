//! The two-lane keccak and the batched transaction trie against alloy's single-message keccak and
//! trie root. The input is cut into messages (each a head and a body) and into transactions; every
//! hash and the root must equal alloy's.
#![no_main]

use alloy_primitives::keccak256;
use alloy_trie::root::ordered_trie_root_encoded;
use libfuzzer_sys::fuzz_target;
use op_gossip::wire::Transactions;
use op_gossip::wire::keccak::{Message, keccak256_all};
use op_gossip::wire::tx_trie::transactions_root;

/// Cuts `data` into pieces: each piece is preceded by one length byte (scaled so single pieces
/// span several keccak blocks).
fn pieces(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let Some((&len, rest)) = data.split_first() {
        let len = (usize::from(len) * 3).min(rest.len());
        let (piece, rest) = rest.split_at(len);
        out.push(piece);
        data = rest;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let parts = pieces(data);
    let messages: Vec<Message<'_>> = parts
        .chunks(2)
        .map(|pair| match pair {
            [head, body] => Message::with_head(head, body),
            [body] => Message::new(body),
            _ => Message::default(),
        })
        .collect();
    let hashes = keccak256_all(messages.iter().copied());
    assert_eq!(hashes.len(), messages.len());
    for (pair, hash) in parts.chunks(2).zip(&hashes) {
        assert_eq!(*hash, keccak256(pair.concat()));
    }

    let txs = Transactions::from_slices(parts.iter().copied()).expect("small input");
    assert_eq!(transactions_root(&txs), ordered_trie_root_encoded(&parts));
});
