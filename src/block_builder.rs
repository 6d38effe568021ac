//! Builds well-formed OP blocks without an execution engine: an L1-info deposit first, optional
//! filler transactions up to a target size, every header field filled, and the block hash
//! computed, so the block passes gossip validation.
//!
//! Used by the embedded block producer (devnets, benchmarks, tests); with an execution engine
//! attached the engine builds blocks instead. The state and receipt roots are derived from the
//! block number (no EVM runs here), which the gossip layer never checks.
//! Reference: `shared/spec/engine-api.md` (L1-info deposit layout) and `shared/spec/op-p2p.md` §2.

use alloy_primitives::{Address, B256, Bloom, Bytes, U256, address, keccak256};
use alloy_rlp::{Encodable, Header as RlpHeader};

use crate::chain::ChainSpec;
use crate::wire::block_hash::compute_block_hash;
use crate::wire::{BlockVersion, ExecutionPayload, ExecutionPayloadEnvelope, Transactions};

/// EIP-2718 type byte of an OP deposit transaction.
pub const DEPOSIT_TX_TYPE: u8 = 0x7e;
/// The depositor account of the L1-info transaction.
pub const L1_INFO_DEPOSITOR: Address = address!("DeaDDEaDDeAdDeAdDEAdDEaddeAddEAdDEAd0001");
/// The L1Block predeploy, target of the L1-info transaction.
pub const L1_BLOCK_PREDEPLOY: Address = address!("4200000000000000000000000000000000000015");
/// The SequencerFeeVault predeploy, the fee recipient of OP blocks.
pub const SEQUENCER_FEE_VAULT: Address = address!("4200000000000000000000000000000000000011");
/// Gas the L1-info deposit is given (as op-node's `RegolithSystemTxGas`).
pub const L1_INFO_GAS: u64 = 1_000_000;
/// Gas limit of built blocks (30 M, the OP Stack default).
pub const DEFAULT_GAS_LIMIT: u64 = 30_000_000;
/// Largest `target_tx_bytes` a built block may have: the 10 MiB gossip cap less 16 KiB for the
/// signature, beacon root, SSZ fixed part, transaction offsets (4 B each, ~80 fillers at 10 MiB)
/// and the last filler's overshoot, so every built block fits one gossip message.
pub const MAX_TARGET_TX_BYTES: usize = crate::wire::MAX_GOSSIP_SIZE_BYTES - 16 * 1024;
/// Calldata bytes of one filler transaction at most (128 KiB, the usual tx-pool size limit).
const MAX_FILLER_DATA_BYTES: usize = 128 * 1024;

/// L1 origin data carried in the L1-info deposit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs)] // field names follow the L1Block predeploy's setL1BlockValues arguments
pub struct L1Info {
    pub number: u64,
    pub timestamp: u64,
    pub base_fee: U256,
    pub blob_base_fee: U256,
    pub hash: B256,
    pub batcher_hash: B256,
    pub sequence_number: u64,
    pub base_fee_scalar: u32,
    pub blob_base_fee_scalar: u32,
    pub operator_fee_scalar: u32,
    pub operator_fee_constant: u64,
    pub da_footprint_gas_scalar: u16,
}

impl L1Info {
    /// `setL1BlockValues*` calldata for the fork at `timestamp`: Ecotone (selector 0x440a5e20,
    /// 160 bytes of arguments), Isthmus (0x098999be, +operator fee = 172) or Jovian (0x3db6be2b,
    /// +DA footprint scalar = 174). Pre-Ecotone chains get the Ecotone form; the gossip layer
    /// does not look inside it.
    pub fn calldata(&self, chain: &ChainSpec, timestamp: u64) -> Vec<u8> {
        let (selector, args_len): ([u8; 4], usize) = if chain.is_jovian(timestamp) {
            ([0x3d, 0xb6, 0xbe, 0x2b], 174)
        } else if chain.block_version_at(timestamp) >= BlockVersion::V4 {
            ([0x09, 0x89, 0x99, 0xbe], 172)
        } else {
            ([0x44, 0x0a, 0x5e, 0x20], 160)
        };
        let mut out = Vec::with_capacity(4 + 174);
        out.extend_from_slice(&selector);
        out.extend_from_slice(&self.base_fee_scalar.to_be_bytes());
        out.extend_from_slice(&self.blob_base_fee_scalar.to_be_bytes());
        out.extend_from_slice(&self.sequence_number.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.number.to_be_bytes());
        out.extend_from_slice(&self.base_fee.to_be_bytes::<32>());
        out.extend_from_slice(&self.blob_base_fee.to_be_bytes::<32>());
        out.extend_from_slice(self.hash.as_slice());
        out.extend_from_slice(self.batcher_hash.as_slice());
        out.extend_from_slice(&self.operator_fee_scalar.to_be_bytes());
        out.extend_from_slice(&self.operator_fee_constant.to_be_bytes());
        out.extend_from_slice(&self.da_footprint_gas_scalar.to_be_bytes());
        out.truncate(4 + args_len);
        out
    }

    /// Source hash of the L1-info deposit: keccak256(u256(1) ‖ keccak256(l1 hash ‖ u256(seq))).
    pub fn source_hash(&self) -> B256 {
        let mut inner = [0u8; 64];
        inner[..32].copy_from_slice(self.hash.as_slice());
        inner[56..].copy_from_slice(&self.sequence_number.to_be_bytes());
        let mut outer = [0u8; 64];
        outer[31] = 1; // L1-info deposit source domain
        outer[32..].copy_from_slice(keccak256(inner).as_slice());
        keccak256(outer)
    }
}

/// A deposit transaction (type 0x7e).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // field names follow the deposit transaction spec
pub struct Deposit {
    pub source_hash: B256,
    pub from: Address,
    pub to: Option<Address>,
    pub mint: U256,
    pub value: U256,
    pub gas: u64,
    pub is_system_tx: bool,
    pub data: Bytes,
}

impl Deposit {
    /// The L1-info deposit for a block at `timestamp` with this L1 origin.
    pub fn l1_info(chain: &ChainSpec, l1: &L1Info, timestamp: u64) -> Self {
        Self {
            source_hash: l1.source_hash(),
            from: L1_INFO_DEPOSITOR,
            to: Some(L1_BLOCK_PREDEPLOY),
            mint: U256::ZERO,
            value: U256::ZERO,
            gas: L1_INFO_GAS,
            is_system_tx: false,
            data: l1.calldata(chain, timestamp).into(),
        }
    }

    /// EIP-2718 encoding: `0x7e ‖ rlp([sourceHash, from, to, mint, value, gas, isSystemTx, data])`.
    pub fn encode_2718(&self) -> Vec<u8> {
        let to_len = self.to.map_or(1, |a| a.length());
        let payload_length = self.source_hash.length()
            + self.from.length()
            + to_len
            + self.mint.length()
            + self.value.length()
            + self.gas.length()
            + self.is_system_tx.length()
            + self.data.length();
        let mut out = Vec::with_capacity(1 + payload_length + 9);
        out.push(DEPOSIT_TX_TYPE);
        RlpHeader {
            list: true,
            payload_length,
        }
        .encode(&mut out);
        self.source_hash.encode(&mut out);
        self.from.encode(&mut out);
        match self.to {
            Some(to) => to.encode(&mut out),
            None => out.push(alloy_rlp::EMPTY_STRING_CODE),
        }
        self.mint.encode(&mut out);
        self.value.encode(&mut out);
        self.gas.encode(&mut out);
        self.is_system_tx.encode(&mut out);
        self.data.encode(&mut out);
        out
    }
}

/// `len` deterministic, incompressible-looking bytes for transaction `nonce` (so compressed
/// sizes are realistic): a splitmix64 stream seeded from keccak(nonce). Not cryptographic, and
/// need not be: one keccak per 32 bytes cost the devnet's sequencer 1.9 ms of CPU per 100 KiB
/// (~190 ms for a 10 MiB block) on the cores its peers validate on; this stream takes 32 µs.
pub(crate) fn filler_data(nonce: u64, len: usize) -> Vec<u8> {
    /// splitmix64's increment (the golden-ratio constant) and output mixing multipliers
    /// (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", 2014).
    const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;
    const MIX1: u64 = 0xbf58_476d_1ce4_e5b9;
    const MIX2: u64 = 0x94d0_49bb_1331_11eb;
    let [b0, b1, b2, b3, b4, b5, b6, b7, ..] = keccak256(nonce.to_be_bytes()).0;
    let mut state = u64::from_be_bytes([b0, b1, b2, b3, b4, b5, b6, b7]);
    let mut data = Vec::with_capacity(len + 8);
    while data.len() < len {
        state = state.wrapping_add(GAMMA);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(MIX1);
        z = (z ^ (z >> 27)).wrapping_mul(MIX2);
        data.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    data.truncate(len);
    data
}

/// An EIP-1559 (type 2) transaction of `data_len` calldata bytes with a placeholder signature:
/// the right shape and size for filling blocks; the gossip layer never decodes it.
pub fn filler_transaction(chain_id: u64, nonce: u64, data_len: usize) -> Vec<u8> {
    let data = Bytes::from(filler_data(nonce, data_len));
    let to = address!("000000000000000000000000000000000000dEaD");
    let (tip, fee_cap, gas) = (
        1_000_000u64,
        2_000_000_000u64,
        21_000 + 16 * data_len as u64,
    );
    let one = U256::from(1);
    let fields_len = chain_id.length() + nonce.length() + tip.length() + fee_cap.length()
        + gas.length() + to.length() + 0u64.length() + data.length()
        + 1 /* empty access list */ + 0u64.length() + one.length() + one.length();
    let mut out = Vec::with_capacity(1 + fields_len + 9);
    out.push(0x02);
    RlpHeader {
        list: true,
        payload_length: fields_len,
    }
    .encode(&mut out);
    chain_id.encode(&mut out);
    nonce.encode(&mut out);
    tip.encode(&mut out);
    fee_cap.encode(&mut out);
    gas.encode(&mut out);
    to.encode(&mut out);
    0u64.encode(&mut out);
    data.encode(&mut out);
    out.push(alloy_rlp::EMPTY_LIST_CODE);
    0u64.encode(&mut out); // y parity
    one.encode(&mut out); // r (placeholder)
    one.encode(&mut out); // s (placeholder)
    out
}

/// What to build on top of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockSpec {
    /// Parent block hash.
    pub parent_hash: B256,
    /// Number of the new block.
    pub number: u64,
    /// Timestamp of the new block.
    pub timestamp: u64,
    /// Target size of all transactions together; filler transactions are added until it is
    /// reached (0 = the deposit only). Capped at [`MAX_TARGET_TX_BYTES`].
    pub target_tx_bytes: usize,
    /// L1 origin for the deposit.
    pub l1: L1Info,
}

/// Builds a valid block for `chain` in the layout of the fork active at `spec.timestamp`.
pub fn build_block(chain: &ChainSpec, spec: &BlockSpec) -> ExecutionPayloadEnvelope {
    let version = chain.block_version_at(spec.timestamp);
    let deposit = Deposit::l1_info(chain, &spec.l1, spec.timestamp).encode_2718();
    let mut txs = vec![deposit];
    let mut total = txs.iter().map(Vec::len).sum::<usize>();
    let mut nonce = spec.number.wrapping_mul(1 << 20);
    let target = spec.target_tx_bytes.min(MAX_TARGET_TX_BYTES);
    while total < target {
        // ~120 bytes of envelope around the calldata.
        let data_len = (target - total)
            .saturating_sub(120)
            .clamp(1, MAX_FILLER_DATA_BYTES);
        let tx = filler_transaction(chain.chain_id, nonce, data_len);
        total += tx.len();
        txs.push(tx);
        nonce = nonce.wrapping_add(1);
    }
    let gas_used = L1_INFO_GAS.min(DEFAULT_GAS_LIMIT);
    let mut payload = ExecutionPayload::empty(version);
    payload.parent_hash = spec.parent_hash;
    payload.fee_recipient = SEQUENCER_FEE_VAULT;
    payload.state_root = keccak256([b"state".as_slice(), &spec.number.to_be_bytes()].concat());
    payload.receipts_root =
        keccak256([b"receipts".as_slice(), &spec.number.to_be_bytes()].concat());
    payload.logs_bloom = Bloom::ZERO;
    payload.prev_randao = keccak256(spec.l1.hash);
    payload.block_number = spec.number;
    payload.gas_limit = DEFAULT_GAS_LIMIT;
    payload.gas_used = gas_used;
    payload.timestamp = spec.timestamp;
    payload.base_fee_per_gas = U256::from(1_000_000u64);
    // Cannot fail: the target is capped far below the 4 GiB an SSZ list can hold.
    payload.transactions =
        Transactions::from_slices(txs.iter().map(Vec::as_slice)).unwrap_or_default();
    if version.has_withdrawals_root() {
        payload.withdrawals_root = Some(keccak256(b"L2ToL1MessagePasser storage root"));
    }
    let mut envelope = ExecutionPayloadEnvelope {
        parent_beacon_block_root: version
            .has_parent_beacon_root()
            .then(|| keccak256([b"beacon".as_slice(), &spec.l1.number.to_be_bytes()].concat())),
        payload,
    };
    envelope.payload.block_hash = compute_block_hash(&envelope);
    envelope
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filler_data_is_deterministic_exact_and_incompressible() {
        for len in [0, 1, 7, 8, 9, 100 * 1024 + 3] {
            let data = filler_data(5, len);
            assert_eq!(data.len(), len);
            assert_eq!(data, filler_data(5, len), "deterministic");
        }
        let a = filler_data(1, 100 * 1024);
        assert_ne!(a, filler_data(2, 100 * 1024), "each nonce its own bytes");
        // Snappy cannot shrink it (its frame overhead makes it slightly larger).
        let compressed = snap::raw::Encoder::new().compress_vec(&a).unwrap();
        assert!(
            compressed.len() >= a.len(),
            "{} < {}",
            compressed.len(),
            a.len()
        );
    }
}
