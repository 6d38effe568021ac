//! Test harness shared by the integration tests: deterministic keys, a chain with chosen forks,
//! and signed gossip messages built with the library's own block builder.
#![allow(dead_code)] // each test binary uses a different subset

pub mod devnet;
pub mod fake_engine;
pub mod fake_server;
pub mod http;
pub mod net;
pub mod process;
pub mod wait;

use std::path::PathBuf;
use std::sync::Arc;

use alloy_primitives::{Address, B256, Bytes, hex};
use op_gossip::block_builder::{BlockSpec, L1Info, build_block};
use op_gossip::chain::{BlockId, ChainSpec, ForkTimes, Genesis};
use op_gossip::validate::{BlockValidator, SignerSet, ValidatorConfig};
use op_gossip::wire::block_hash::compute_block_hash;
use op_gossip::wire::envelope::{encode_signed, encode_with_signature};
use op_gossip::wire::signature::BlockSigner;
use op_gossip::wire::ssz::encode_envelope;
use op_gossip::wire::{BlockVersion, ExecutionPayloadEnvelope};

/// Anvil/Hardhat account #5: the signer of the test vectors (`tests/fixtures/vectors/`) and of the devnet chain file.
pub const DEV_KEY: &str = "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba";
/// Its address.
pub const DEV_ADDRESS: &str = "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc";
/// Anvil account #1, used as "some other key".
pub const OTHER_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

/// A clock value well inside the test chain's history.
pub const NOW: u64 = 1_800_000_000;
/// Jovian time of [`chain_with_jovian`].
pub const JOVIAN: u64 = 1_790_000_000;

pub fn dev_signer() -> BlockSigner {
    BlockSigner::from_hex(DEV_KEY).unwrap()
}

pub fn other_signer() -> BlockSigner {
    BlockSigner::from_hex(OTHER_KEY).unwrap()
}

pub fn dev_address() -> Address {
    DEV_ADDRESS.parse().unwrap()
}

/// A chain (id 901) whose forks activate at 0 up to `last` (V1 = none of Canyon and later),
/// Jovian unscheduled, signed by the dev key.
pub fn chain_up_to(last: BlockVersion) -> ChainSpec {
    let at = |v: BlockVersion| (last >= v).then_some(0);
    ChainSpec {
        name: "test".into(),
        chain_id: 901,
        block_time: 2,
        genesis: Genesis {
            l1: BlockId {
                number: 0,
                hash: B256::ZERO,
            },
            l2: BlockId {
                number: 0,
                hash: B256::ZERO,
            },
            l2_time: 0,
        },
        forks: ForkTimes {
            regolith: Some(0),
            canyon: at(BlockVersion::V2),
            delta: at(BlockVersion::V2),
            ecotone: at(BlockVersion::V3),
            fjord: at(BlockVersion::V3),
            granite: at(BlockVersion::V3),
            holocene: at(BlockVersion::V3),
            isthmus: at(BlockVersion::V4),
            ..ForkTimes::default()
        },
        unsafe_block_signers: vec![dev_address()],
        l1_system_config_address: None,
        bootnodes: Vec::new(),
    }
}

/// All forks through Isthmus at 0, and Jovian at [`JOVIAN`].
pub fn chain_with_jovian() -> ChainSpec {
    let mut chain = chain_up_to(BlockVersion::V4);
    chain.forks.jovian = Some(JOVIAN);
    chain
}

pub fn validator(chain: ChainSpec) -> BlockValidator {
    BlockValidator::new(Arc::new(chain), ValidatorConfig::default())
}

pub fn validator_with(
    chain: ChainSpec,
    config: ValidatorConfig,
    signers: &[Address],
) -> BlockValidator {
    BlockValidator::with_signers(
        Arc::new(chain),
        config,
        SignerSet::new(signers.iter().copied()),
    )
}

/// A valid block at `number` with timestamp `timestamp`, `tx_bytes` of transactions in total
/// (an L1-info deposit first, then fillers).
pub fn block(
    chain: &ChainSpec,
    number: u64,
    timestamp: u64,
    tx_bytes: usize,
) -> ExecutionPayloadEnvelope {
    build_block(
        chain,
        &BlockSpec {
            parent_hash: B256::with_last_byte(number as u8),
            number,
            timestamp,
            target_tx_bytes: tx_bytes,
            l1: L1Info {
                number: 100 + number,
                timestamp: timestamp.saturating_sub(12),
                hash: B256::repeat_byte(7),
                ..L1Info::default()
            },
        },
    )
}

/// Recomputes the block hash after a test changed a field.
pub fn rehash(mut envelope: ExecutionPayloadEnvelope) -> ExecutionPayloadEnvelope {
    envelope.payload.block_hash = compute_block_hash(&envelope);
    envelope
}

/// Signs and compresses `envelope` for the `version` topic.
pub fn signed(
    chain: &ChainSpec,
    version: BlockVersion,
    envelope: &ExecutionPayloadEnvelope,
    signer: &BlockSigner,
) -> Vec<u8> {
    encode_signed(chain.chain_id, version, envelope, signer).unwrap()
}

/// Signs with the dev key for the topic of the block's own fork.
pub fn signed_dev(chain: &ChainSpec, envelope: &ExecutionPayloadEnvelope) -> Vec<u8> {
    let version = chain.block_version_at(envelope.payload.timestamp);
    signed(chain, version, envelope, &dev_signer())
}

/// A message whose signature is no valid secp256k1 signature (the sequencer's, with Ethereum's
/// `v = 27`): REJECTed for a fault in its bytes, so its forwarder is penalised, unlike a valid
/// signature by a key that is not the sequencer's.
pub fn broken_signature(
    chain: &ChainSpec,
    version: BlockVersion,
    envelope: &ExecutionPayloadEnvelope,
) -> Vec<u8> {
    let body = encode_envelope(version, envelope).unwrap();
    let mut sig = dev_signer().sign_payload(chain.chain_id, &body);
    sig[64] = 27;
    encode_with_signature(&sig, &body)
}

/// A message with an arbitrary 65-byte signature over the encoding of `envelope`.
pub fn with_raw_signature(
    version: BlockVersion,
    envelope: &ExecutionPayloadEnvelope,
    sig: [u8; 65],
) -> Vec<u8> {
    encode_with_signature(&sig, &encode_envelope(version, envelope).unwrap())
}

/// Path of a test vector file (`tests/fixtures/vectors/`, described by its README).
pub fn vector_path(name: &str) -> PathBuf {
    fixture_path("vectors").join(name)
}

/// Path of a file or folder under `tests/fixtures/`.
pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join(name)
}

/// Reads a `.hex` test vector.
pub fn vector(name: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(vector_path(name)).unwrap();
    hex::decode(text.trim()).unwrap()
}

pub fn bytes(v: Vec<u8>) -> Bytes {
    Bytes::from(v)
}
