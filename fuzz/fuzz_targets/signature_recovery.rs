//! The block-signature recovery of `src/wire/signature.rs` (our own formula, without k256's closing
//! verification) against k256's `VerifyingKey::recover_from_prehash`, with high `s` normalised
//! first (go-ethereum accepts high `s`, k256 does not: `(r, n − s)` with the other parity recovers
//! the same key). Both must recover the same key or both fail, and the errors must name the
//! right cause (recovery id, scalars, no key).
//!
//! Input: `selector ‖ …`. Selector bit 0 clear: `hash(32) ‖ signature(65)` as received. Bit 0 set:
//! `secret(32) ‖ hash(32)`, signed with that key, then (bit 1) turned into its high-`s` twin and
//! (bits 2–3) its recovery id XORed, so valid signatures and their near misses are reached from
//! any input. Seeds: `fuzz/seeds/signature_recovery/`, written by `tests/fuzz_seeds.rs`.
#![no_main]

use alloy_primitives::{Address, B256, keccak256};
use k256::ecdsa::{RecoveryId, Signature, SigningKey, VerifyingKey};
use libfuzzer_sys::fuzz_target;
use op_gossip::wire::signature::{SIGNATURE_BYTES, SignatureError, recover_signer};

fn address(key: &VerifyingKey) -> Address {
    let point = key.to_encoded_point(false);
    Address::from_slice(&keccak256(&point.as_bytes()[1..])[12..])
}

/// What k256 says the signer is (high `s` normalised to its low twin first).
fn k256_signer(hash: &B256, wire: &[u8; SIGNATURE_BYTES]) -> Result<Address, SignatureError> {
    let v = wire[64];
    let recid = RecoveryId::from_byte(v).ok_or(SignatureError::BadRecoveryId(v))?;
    let sig = Signature::from_slice(&wire[..64]).map_err(|_| SignatureError::BadScalars)?;
    let (sig, recid) = match sig.normalize_s() {
        Some(low) => (
            low,
            RecoveryId::new(!recid.is_y_odd(), recid.is_x_reduced()),
        ),
        None => (sig, recid),
    };
    VerifyingKey::recover_from_prehash(hash.as_slice(), &sig, recid)
        .map(|key| address(&key))
        .map_err(|_| SignatureError::RecoveryFailed)
}

/// Signs `hash` with `secret` (if it is a valid key), then applies the selector's changes.
fn signed(selector: u8, data: &[u8]) -> Option<(B256, [u8; SIGNATURE_BYTES], Option<Address>)> {
    let secret = data.get(..32)?;
    let hash = B256::from_slice(data.get(32..64)?);
    let key = SigningKey::from_slice(secret).ok()?;
    let (sig, recid) = key.sign_prehash_recoverable(hash.as_slice()).ok()?;
    let (sig, recid) = if selector & 2 != 0 {
        let (r, s) = sig.split_scalars();
        let high = Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).ok()?;
        (
            high,
            RecoveryId::new(!recid.is_y_odd(), recid.is_x_reduced()),
        )
    } else {
        (sig, recid)
    };
    let flip = (selector >> 2) & 3;
    let mut wire = [0u8; SIGNATURE_BYTES];
    wire[..64].copy_from_slice(&sig.to_bytes());
    wire[64] = recid.to_byte() ^ flip;
    let signer = (flip == 0).then(|| address(key.verifying_key()));
    Some((hash, wire, signer))
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, data)) = data.split_first() else {
        return;
    };
    let (hash, wire, signer) = if selector & 1 == 0 {
        let (Some(hash), Some(wire)) = (
            data.get(..32).map(B256::from_slice),
            data.get(32..32 + SIGNATURE_BYTES)
                .and_then(|w| <[u8; SIGNATURE_BYTES]>::try_from(w).ok()),
        ) else {
            return;
        };
        (hash, wire, None)
    } else {
        let Some(signed) = signed(selector, data) else {
            return;
        };
        signed
    };
    let ours = recover_signer(&wire, &hash);
    assert_eq!(ours, k256_signer(&hash, &wire));
    if let Some(signer) = signer {
        assert_eq!(ours, Ok(signer), "a fresh signature recovers its key");
    }
});
