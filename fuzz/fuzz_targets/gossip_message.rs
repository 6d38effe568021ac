//! The whole gossip-in path with a signature the chain accepts, so every check after the signature
//! (timestamp window, fork fields, block hash, seen cache) is reached on fuzzed payloads.
//!
//! Input: `selector ‖ compressed gossip message` (seeds: `fuzz/seeds/gossip_message/`, written by
//! `tests/fuzz_seeds.rs`). Selector bits:
//! - 0–1: topic version V1..V4;
//! - 2: Jovian active (the blob-gas exception) or not;
//! - 3–5: the clock, relative to the decoded block's timestamp (inside the window, on both edges,
//!   one second past both edges);
//! - 6: keep the input's own signature instead of signing with the devnet key (recovery and the
//!   unknown-signer path);
//! - 7: deliver the message again, then variants at the same height (the seen cache's duplicate
//!   IGNORE and its five-per-height REJECT).
//!
//! Each input gets a fresh validator (and a fresh recent-message cache), so verdicts depend on the
//! input alone. Checks: the verdict equals the one derived independently from the plain decoder
//! and the check functions; the message id is stable and the cached id equals the uncached one;
//! a decoded envelope re-encodes to bytes that decode to the same envelope.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use op_gossip::chain::ChainSpec;
use op_gossip::chain_config::load_chain;
use op_gossip::p2p::recent_messages::RecentMessages;
use op_gossip::validate::{
    BlockValidator, MAX_BLOCKS_PER_HEIGHT, ValidationError, ValidatorConfig, Verdict,
    check_block_hash, check_fork_fields, check_timestamp, verdict_of,
};
use op_gossip::wire::block_hash::compute_block_hash;
use op_gossip::wire::envelope::{
    MessageError, decode_message, encode_signed, encode_with_signature,
};
use op_gossip::wire::message_id::message_id;
use op_gossip::wire::signature::{BlockSigner, SIGNATURE_BYTES};
use op_gossip::wire::snappy::decompress_gossip;
use op_gossip::wire::ssz::encode_envelope;
use op_gossip::wire::{BlockVersion, ExecutionPayloadEnvelope};

/// The devnet chain's sequencer key (chains/devnet.toml): Anvil/Hardhat test account #5, a
/// published test key, never used on a real chain.
const DEVNET_SEQUENCER_KEY: &str =
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba";
/// The clock when the message does not decode (any value: the timestamp is never looked at).
const FALLBACK_NOW: u64 = 1_700_000_000;

struct Fixture {
    /// Devnet (every fork from genesis) without Jovian, and with Jovian.
    chains: [Arc<ChainSpec>; 2],
    signer: BlockSigner,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let jovian = load_chain("devnet").expect("embedded chain");
        let mut before = jovian.clone();
        before.forks.jovian = None;
        let signer = BlockSigner::from_hex(DEVNET_SEQUENCER_KEY).expect("valid key");
        assert!(jovian.unsafe_block_signers.contains(&signer.address()));
        Fixture {
            chains: [Arc::new(before), Arc::new(jovian)],
            signer,
        }
    })
}

/// The message with its signature replaced by the devnet key's over the same signed bytes
/// (`None` if it does not decompress to at least a signature).
fn resigned(chain: &ChainSpec, signer: &BlockSigner, data: &[u8]) -> Option<Vec<u8>> {
    let body = decompress_gossip(data).ok()?;
    let signed = body.get(SIGNATURE_BYTES..)?;
    Some(encode_with_signature(
        &signer.sign_payload(chain.chain_id, signed),
        signed,
    ))
}

/// The clock for selector bits 3–5, relative to the block's timestamp `ts`.
fn clock(choice: u8, ts: u64, config: &ValidatorConfig) -> u64 {
    match choice {
        0..=3 => ts,
        4 => ts.saturating_add(config.past_window_secs),
        5 => ts.saturating_add(config.past_window_secs + 1),
        6 => ts.saturating_sub(config.future_window_secs),
        _ => ts.saturating_sub(config.future_window_secs + 1),
    }
}

/// What the validator must say about a message the plain decoder decoded, from the check
/// functions alone (the signature is the devnet key's).
fn expected_verdict(
    chain: &ChainSpec,
    config: &ValidatorConfig,
    version: BlockVersion,
    envelope: &ExecutionPayloadEnvelope,
    now: u64,
) -> Result<(), ValidationError> {
    check_timestamp(config, envelope.payload.timestamp, now)?;
    check_fork_fields(chain, version, envelope)?;
    check_block_hash(envelope)
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, data)) = data.split_first() else {
        return;
    };
    let fixture = fixture();
    let version = BlockVersion::ALL[usize::from(selector & 3)];
    let chain = &fixture.chains[usize::from((selector >> 2) & 1)];
    let keep_signature = selector & 0x40 != 0;
    let replay = selector & 0x80 != 0;
    let config = ValidatorConfig::default();

    let resigned = (!keep_signature)
        .then(|| resigned(chain, &fixture.signer, data))
        .flatten();
    let message = resigned.as_deref().unwrap_or(data);
    let decoded = decode_message(version, message);
    let now = decoded.as_ref().map_or(FALLBACK_NOW, |d| {
        clock((selector >> 3) & 7, d.envelope.payload.timestamp, &config)
    });

    // Message ids: stable, and the cache's equals the plain function's.
    let topic = chain.topic(version);
    let id = message_id(&topic, message);
    assert_eq!(id, message_id(&topic, message), "message id is stable");
    let cache = RecentMessages::default();
    assert_eq!(cache.message_id(&topic, message), id);
    assert_eq!(cache.message_id(&topic, message), id, "cached copy");

    let validator = BlockValidator::new(chain.clone(), config);
    let result = cache.validate(&validator, version, &id, message, now);
    // The raw path (no cached body) on a fresh validator says the same.
    let uncached = BlockValidator::new(chain.clone(), config).validate(version, message, now);
    assert_eq!(
        result.as_ref().map(|b| &b.envelope),
        uncached.as_ref().map(|b| &b.envelope),
        "cached and uncached validation agree"
    );
    assert_eq!(result.as_ref().err(), uncached.as_ref().err());

    match &decoded {
        Err(MessageError::Snappy(e)) => {
            assert_eq!(
                result.as_ref().err(),
                Some(&ValidationError::Snappy(e.clone()))
            );
            return;
        }
        Err(MessageError::Ssz(_)) => {
            assert!(
                result.is_err(),
                "the validator accepted what the decoder refuses"
            );
            return;
        }
        Ok(_) => {}
    }
    let Ok(decoded) = decoded else { return };
    if let Ok(valid) = &result {
        assert_eq!(valid.envelope, decoded.envelope);
        assert_eq!(valid.payload_hash, decoded.payload_hash);
        assert_eq!(valid.signature, decoded.signature);
        assert!(chain.unsafe_block_signers.contains(&valid.signer));
    }
    if resigned.is_some() {
        let expected = expected_verdict(chain, &config, version, &decoded.envelope, now);
        assert_eq!(result.as_ref().err(), expected.as_ref().err());
    }

    // The codec round trip.
    let body = encode_envelope(version, &decoded.envelope).expect("decoded envelope re-encodes");
    let again = decode_message(version, &encode_with_signature(&decoded.signature, &body))
        .expect("re-encoded message decodes");
    assert_eq!(again.envelope, decoded.envelope);

    if replay && result.is_ok() {
        replay_at_height(
            &validator,
            chain,
            &fixture.signer,
            version,
            &decoded.envelope,
            message,
            now,
        );
    }
});

/// The seen cache: the same message again is an IGNORE; distinct valid blocks at the height are
/// accepted up to the limit, then REJECTed.
fn replay_at_height(
    validator: &BlockValidator,
    chain: &ChainSpec,
    signer: &BlockSigner,
    version: BlockVersion,
    envelope: &ExecutionPayloadEnvelope,
    message: &[u8],
    now: u64,
) {
    let again = validator.validate(version, message, now);
    assert!(
        matches!(again, Err(ValidationError::AlreadySeen { .. })),
        "{again:?}"
    );
    assert_eq!(verdict_of(&again), Verdict::Ignore);
    // op-node refuses a block once more than MAX_BLOCKS_PER_HEIGHT distinct hashes were seen at
    // its height: the first block and MAX_BLOCKS_PER_HEIGHT variants pass, the next is refused.
    for variant in 1..=MAX_BLOCKS_PER_HEIGHT + 1 {
        let mut other = envelope.clone();
        other.payload.state_root.0[0] ^= variant as u8;
        other.payload.block_hash = compute_block_hash(&other);
        let message = encode_signed(chain.chain_id, version, &other, signer).expect("encodes");
        let result = validator.validate(version, &message, now);
        if variant <= MAX_BLOCKS_PER_HEIGHT {
            assert!(result.is_ok(), "variant {variant}: {result:?}");
        } else {
            assert!(
                matches!(result, Err(ValidationError::TooManyBlocksAtHeight { .. })),
                "{result:?}"
            );
            assert_eq!(verdict_of(&result), Verdict::Reject);
        }
    }
}
