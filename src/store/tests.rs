//! What the store writes for a block: the SSZ bytes it carries as they are (for a gossip block,
//! the very bytes its producer signed), and the canonical encoding of anything else, including a
//! gossip block signed in a form op-node accepts but never writes.

#![allow(clippy::unwrap_used)] // tests fail loudly

use std::sync::Arc;

use alloy_primitives::{B256, Bytes};
use redb::ReadableDatabase;

use super::{BLOCKS, BlockRef, Store, StoredBlock, key};
use crate::block_builder::{BlockSpec, L1Info, build_block};
use crate::chain::ChainSpec;
use crate::chain_config::load_chain;
use crate::validate::{BlockValidator, SignerSet, ValidBlock, ValidatorConfig};
use crate::wire::block_hash::compute_block_hash;
use crate::wire::canonical::tests::zero_offset_form;
use crate::wire::signature::BlockSigner;
use crate::wire::ssz::{decode_envelope, encode_envelope};
use crate::wire::{ExecutionPayloadEnvelope, Transactions};

struct Rig {
    chain: Arc<ChainSpec>,
    signer: BlockSigner,
    validator: BlockValidator,
    store: Store,
    _dir: tempfile::TempDir,
}

fn rig() -> Rig {
    let chain = Arc::new(load_chain("devnet").unwrap());
    let signer = BlockSigner::from_bytes(&[7; 32]).unwrap();
    let validator = BlockValidator::with_signers(
        chain.clone(),
        ValidatorConfig::default(),
        SignerSet::new([signer.address()]),
    );
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store.redb"), 100, &chain).unwrap();
    Rig {
        chain,
        signer,
        validator,
        store,
        _dir: dir,
    }
}

impl Rig {
    fn envelope(&self, target_tx_bytes: usize) -> ExecutionPayloadEnvelope {
        let spec = BlockSpec {
            parent_hash: B256::repeat_byte(1),
            number: 7,
            timestamp: self.chain.genesis.l2_time + 1_000_000,
            target_tx_bytes,
            l1: L1Info::default(),
        };
        build_block(&self.chain, &spec)
    }

    /// Signs `signed` (the bytes after the signature), as the sequencer would, and validates
    /// the decompressed message as gossip does.
    fn accept(&self, envelope: &ExecutionPayloadEnvelope, signed: &[u8]) -> (ValidBlock, Bytes) {
        let version = self.chain.block_version_at(envelope.payload.timestamp);
        let mut message = self
            .signer
            .sign_payload(self.chain.chain_id, signed)
            .to_vec();
        message.extend_from_slice(signed);
        let message = Bytes::from(message);
        let valid = self
            .validator
            .validate_decompressed(version, message.clone(), envelope.payload.timestamp)
            .unwrap();
        assert_eq!(&valid.envelope, envelope);
        (valid, message)
    }

    /// Stores an accepted block the way the forward task hands it to the writer.
    fn store(&self, valid: ValidBlock) -> BlockRef {
        let block = StoredBlock {
            version: valid.version,
            envelope: valid.envelope,
            ssz: valid.ssz,
        };
        self.store
            .insert_batch(std::slice::from_ref(&block))
            .unwrap();
        block.id()
    }

    /// The record as written: version byte, then the SSZ body.
    fn record(&self, id: BlockRef) -> Vec<u8> {
        let txn = self.store.db.begin_read().unwrap();
        let table = txn.open_table(BLOCKS).unwrap();
        let value = table.get(key(id).as_slice()).unwrap().unwrap();
        value.value().to_vec()
    }
}

#[test]
fn a_canonical_gossip_block_is_stored_as_the_bytes_it_was_signed_with() {
    let rig = rig();
    let envelope = rig.envelope(10 * 1024);
    let version = rig.chain.block_version_at(envelope.payload.timestamp);
    let signed = encode_envelope(version, &envelope).unwrap();
    let (valid, message) = rig.accept(&envelope, &signed);

    // The validated block carries the signed bytes themselves: the message buffer, not a copy.
    let ssz = valid.ssz.clone().unwrap();
    assert_eq!(ssz.bytes().as_ptr(), message[65..].as_ptr());
    let id = rig.store(valid);

    let record = rig.record(id);
    assert_eq!(record[0], version.topic_index());
    assert_eq!(&record[1..], signed.as_slice(), "stored as signed");
    // Read back, it is the same block, and the server would send exactly the signed bytes.
    let read = rig.store.block(id).unwrap().unwrap();
    assert_eq!(read.envelope, envelope);
    assert_eq!(read.ssz_bytes().unwrap().as_ref(), signed.as_slice());
}

#[test]
fn a_non_canonical_gossip_block_is_stored_canonically_and_round_trips() {
    let rig = rig();
    // Only an empty transaction list can take op-node's zero-offset quirk.
    let mut envelope = rig.envelope(0);
    envelope.payload.transactions = Transactions::default();
    envelope.payload.block_hash = compute_block_hash(&envelope);
    let version = rig.chain.block_version_at(envelope.payload.timestamp);
    let canonical = encode_envelope(version, &envelope).unwrap();
    let odd = zero_offset_form(version, &canonical, &[0xab; 300]);
    assert_ne!(odd, canonical);

    // op-node accepts it (signed as it is): so do we, without keeping the bytes.
    let (valid, _) = rig.accept(&envelope, &odd);
    assert!(valid.ssz.is_none());
    let id = rig.store(valid);

    let record = rig.record(id);
    assert_eq!(&record[1..], canonical.as_slice(), "stored re-encoded");
    let read = rig.store.block(id).unwrap().unwrap();
    assert_eq!(read.envelope, envelope);
    let served = read.ssz_bytes().unwrap();
    assert_eq!(served.as_ref(), canonical.as_slice(), "served canonical");
    assert_eq!(decode_envelope(version, &served).unwrap(), envelope);
}

#[test]
fn a_block_without_bytes_is_encoded_and_bytes_of_another_layout_are_not_used() {
    let rig = rig();
    let envelope = rig.envelope(100);
    let version = rig.chain.block_version_at(envelope.payload.timestamp);
    let canonical = encode_envelope(version, &envelope).unwrap();
    let mut block = StoredBlock::new(version, envelope.clone());
    let id = block.id();
    rig.store
        .insert_batch(std::slice::from_ref(&block))
        .unwrap();
    assert_eq!(&rig.record(id)[1..], canonical.as_slice());

    // Bytes carried in another layout than the block's (a fetched body of the wrong layout) are
    // ignored: the record is in the block's own layout.
    let other = crate::wire::BlockVersion::ALL
        .into_iter()
        .find(|v| *v != version && v.has_parent_beacon_root() == version.has_parent_beacon_root())
        .unwrap();
    let mut shaped = envelope.clone();
    shaped.payload.withdrawals_root = other
        .has_withdrawals_root()
        .then_some(shaped.payload.withdrawals_root.unwrap_or_default());
    block.ssz = Some(crate::wire::canonical::CanonicalSsz::encode(other, &shaped).unwrap());
    rig.store
        .insert_batch(std::slice::from_ref(&block))
        .unwrap();
    assert_eq!(&rig.record(id)[1..], canonical.as_slice());
}
