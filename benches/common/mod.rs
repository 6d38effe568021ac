//! Messages shared by the validation benchmarks: signed V4 devnet blocks of a nominal size, each
//! with what its floor needs (the decompressed-bytes signature and signing hash, the
//! transactions for the trie).

use std::sync::Arc;

use alloy_primitives::{B256, keccak256};
use op_gossip::block_builder::{BlockSpec, L1Info, build_block};
use op_gossip::chain::ChainSpec;
use op_gossip::chain_config::load_chain;
use op_gossip::wire::envelope::encode_signed;
use op_gossip::wire::signature::{BlockSigner, SIGNATURE_BYTES, signing_hash};
use op_gossip::wire::snappy::decompress_gossip;
use op_gossip::wire::{BlockVersion, Transactions};

/// The devnet sequencer key (Anvil account #5, see chains/devnet.toml).
pub const DEV_KEY: &str = "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba";
/// Anvil account #1: "not the sequencer".
pub const OTHER_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
/// The validators' clock; every benchmark block carries this timestamp.
pub const NOW: u64 = 1_800_000_000;
pub const KIB: usize = 1024;
/// Room for the signature, beacon root, SSZ fixed part, offsets and the last filler's overshoot.
/// At 10 MiB the builder's own cap (`MAX_TARGET_TX_BYTES`, 16 KiB of room) applies instead.
const HEADROOM_BYTES: usize = 2 * KIB;

/// One benchmark message.
pub struct Case {
    pub name: &'static str,
    /// Compressed, as on the wire.
    pub message: Vec<u8>,
    pub decompressed_len: usize,
    pub signature: [u8; SIGNATURE_BYTES],
    pub signing_hash: B256,
    pub txs: Transactions,
    /// True when signed by the sequencer (the validator accepts it).
    pub valid: bool,
}

/// The devnet chain.
pub fn chain() -> Arc<ChainSpec> {
    Arc::new(load_chain("devnet").unwrap())
}

/// The five cases of the issue: valid V4 at 1 KiB, 100 KiB, 1 MiB, 10 MiB, and 100 KiB signed
/// by the wrong key.
pub fn cases(chain: &ChainSpec) -> Vec<Case> {
    vec![
        case(chain, "valid_1KiB", KIB, DEV_KEY),
        case(chain, "valid_100KiB", 100 * KIB, DEV_KEY),
        case(chain, "valid_1MiB", 1024 * KIB, DEV_KEY),
        case(chain, "valid_10MiB", 10 * 1024 * KIB, DEV_KEY),
        case(chain, "invalid_sig_100KiB", 100 * KIB, OTHER_KEY),
    ]
}

fn case(chain: &ChainSpec, name: &'static str, size: usize, key: &str) -> Case {
    let spec = BlockSpec {
        parent_hash: B256::repeat_byte(1),
        number: 500,
        timestamp: NOW,
        target_tx_bytes: size.saturating_sub(HEADROOM_BYTES.min(size / 2)),
        l1: L1Info::default(),
    };
    let env = build_block(chain, &spec);
    let signer = BlockSigner::from_hex(key).unwrap();
    let message = encode_signed(chain.chain_id, BlockVersion::V4, &env, &signer).unwrap();
    let decompressed = decompress_gossip(&message).unwrap();
    let mut signature = [0u8; SIGNATURE_BYTES];
    signature.copy_from_slice(&decompressed[..SIGNATURE_BYTES]);
    Case {
        name,
        decompressed_len: decompressed.len(),
        signing_hash: signing_hash(chain.chain_id, keccak256(&decompressed[SIGNATURE_BYTES..])),
        signature,
        message,
        txs: env.payload.transactions,
        valid: key == DEV_KEY,
    }
}

/// The work no validator can skip for `case`'s bytes: snappy decode, keccak of the payload,
/// the transaction trie (only when the block gets that far, i.e. a valid signature) and one
/// signature recovery. The payload and the trie's leaves are hashed in one batch, the fastest
/// way this crate has to hash them (two keccak lanes on CPUs with AVX-512). Returns something to
/// black-box.
pub fn floor(case: &Case) -> impl Sized {
    use op_gossip::wire::keccak::{Message, keccak256_all};
    use op_gossip::wire::signature::recover_signer;
    use op_gossip::wire::tx_trie::TransactionLeaves;
    let d = decompress_gossip(std::hint::black_box(&case.message)).unwrap();
    let payload = Message::new(&d[SIGNATURE_BYTES..]);
    let (payload_hash, root) = if case.valid {
        let leaves = TransactionLeaves::new(&case.txs);
        let hashes = keccak256_all(std::iter::once(payload).chain(leaves.messages(&case.txs)));
        (hashes[0], leaves.root(&case.txs, &hashes[1..]).unwrap())
    } else {
        (keccak256_all([payload])[0], B256::ZERO)
    };
    let signer = recover_signer(&case.signature, &case.signing_hash).ok();
    (payload_hash, root, signer, d)
}
