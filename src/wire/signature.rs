//! Block signatures: the signing hash, signing with the sequencer key, and recovery of the signer.
//!
//! Second step of the gossip-in path (right after decompression, as in op-node), and the last
//! step before compression on the publish path. Reference: `shared/spec/op-p2p.md` §2.3–§2.4.
//!
//! Recovery follows go-ethereum's `crypto.SigToPub` exactly: `v` is the raw recovery id 0..=3
//! (27/28 are refused), and high-`s` signatures are accepted (the formula below recovers the same
//! key for `s` and `n − s` with the other parity, as libsecp256k1 does).

use alloy_primitives::{Address, B256, keccak256};
use k256::ecdsa::{RecoveryId, Signature, SigningKey, VerifyingKey};
use k256::elliptic_curve::bigint::{ArrayEncoding, CheckedAdd};
use k256::elliptic_curve::ops::{Invert, LinearCombination, Reduce};
use k256::elliptic_curve::point::DecompressPoint;
use k256::elliptic_curve::subtle::Choice;
use k256::elliptic_curve::{Curve, PrimeField};
use k256::{AffinePoint, FieldBytes, ProjectivePoint, Scalar, Secp256k1, U256};

/// Length of a block signature: r (32) ‖ s (32) ‖ v (1).
pub const SIGNATURE_BYTES: usize = 65;

/// op-node `SigningDomainBlocksV1`: 32 zero bytes.
pub const SIGNING_DOMAIN_BLOCKS_V1: [u8; 32] = [0; 32];

/// Why a signature could not be recovered (a REJECT in gossip validation).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// `v` outside 0..=3 (e.g. Ethereum's 27/28, which op-node does not accept).
    #[error("recovery id {0} is not 0..=3 (op-node signatures carry the raw y parity, not 27/28)")]
    BadRecoveryId(u8),
    /// `r` or `s` zero or not below the curve order.
    #[error("r or s is not a valid scalar")]
    BadScalars,
    /// No public key recovers from this signature and hash.
    #[error("no public key recovers from the signature")]
    RecoveryFailed,
}

/// keccak256 of everything after the signature: the payload hash op-node signs.
pub fn payload_hash(signed_bytes: &[u8]) -> B256 {
    super::keccak::keccak256(signed_bytes)
}

/// `keccak256(domain ‖ chain_id as u256 big-endian ‖ payload_hash)` (op-node
/// `BlockSigningMessage.ToSigningHash`).
pub fn signing_hash(chain_id: u64, payload_hash: B256) -> B256 {
    let mut preimage = [0u8; 96];
    preimage[..32].copy_from_slice(&SIGNING_DOMAIN_BLOCKS_V1);
    preimage[56..64].copy_from_slice(&chain_id.to_be_bytes());
    preimage[64..].copy_from_slice(payload_hash.as_slice());
    keccak256(preimage)
}

/// Checks what can be checked of `sig` without the message: `v` in 0..=3, `r` and `s` non-zero
/// scalars below the curve order. A signature failing here can never recover, whatever it
/// signs, so the validator checks this before hashing the payload (up to 10 MiB): junk
/// signatures, as compression bombs carry, are refused for the cost of two comparisons.
pub fn check_form(sig: &[u8; SIGNATURE_BYTES]) -> Result<(Signature, RecoveryId), SignatureError> {
    let v = sig[64];
    if v > 3 {
        return Err(SignatureError::BadRecoveryId(v));
    }
    let signature = Signature::from_slice(&sig[..64]).map_err(|_| SignatureError::BadScalars)?;
    let recid = RecoveryId::from_byte(v).ok_or(SignatureError::BadRecoveryId(v))?;
    Ok((signature, recid))
}

/// Recovers the address that produced `sig` over `signing_hash`.
pub fn recover_signer(
    sig: &[u8; SIGNATURE_BYTES],
    signing_hash: &B256,
) -> Result<Address, SignatureError> {
    let (signature, recid) = check_form(sig)?;
    let key =
        recover_key(&signing_hash.0, &signature, recid).ok_or(SignatureError::RecoveryFailed)?;
    Ok(address_of(&key))
}

/// The public key Q = r⁻¹·(s·R − z·G), where R is the curve point with x = r (+ n when `recid`
/// says x was reduced) and the y parity `recid` gives, and z the prehash as a scalar.
///
/// Written here, on k256's arithmetic, rather than calling `VerifyingKey::recover_from_prehash`
/// because that function (ecdsa 0.16) ends by verifying the signature against the key it just
/// recovered: a second double-scalar multiplication, about half of each block's signature cost,
/// that cannot fail (the verification point z·s⁻¹·G + r·s⁻¹·Q is R, whose x is r by
/// construction) except on high `s`, which k256 refuses and go-ethereum accepts. A test compares
/// this function with k256's on many keys, hashes, both parities and high `s`.
fn recover_key(
    prehash: &[u8; 32],
    signature: &Signature,
    recid: RecoveryId,
) -> Option<VerifyingKey> {
    let (r, s) = signature.split_scalars();
    let z = <Scalar as Reduce<U256>>::reduce_bytes(&FieldBytes::from(*prehash));
    let mut x = r.to_repr();
    if recid.is_x_reduced() {
        let restored: Option<U256> = U256::from_be_slice(&x)
            .checked_add(&Secp256k1::ORDER)
            .into();
        x = restored?.to_be_byte_array();
    }
    let big_r: Option<AffinePoint> =
        AffinePoint::decompress(&x, Choice::from(u8::from(recid.is_y_odd()))).into();
    let r_inv = *r.invert();
    let u1 = -(r_inv * z);
    let u2 = r_inv * *s;
    let q = ProjectivePoint::lincomb(
        &ProjectivePoint::GENERATOR,
        &u1,
        &ProjectivePoint::from(big_r?),
        &u2,
    );
    VerifyingKey::from_affine(q.to_affine()).ok()
}

/// The Ethereum address of a public key: the last 20 bytes of keccak256 of the uncompressed point.
pub fn address_of(key: &VerifyingKey) -> Address {
    let point = key.to_encoded_point(false);
    // Uncompressed SEC1 = 0x04 ‖ x ‖ y; the address hashes x ‖ y.
    Address::from_raw_public_key(point.as_bytes().get(1..).unwrap_or_default())
}

/// Why a private key could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not 32 bytes of hex (the text itself is not repeated: it may be a key).
    #[error(
        "a private key is 32 bytes of hex (64 hex digits, optional 0x): got {chars} characters"
    )]
    BadHex {
        /// Length of the text given (trimmed).
        chars: usize,
    },
    /// Zero or not below the curve order.
    #[error("the private key is not a valid secp256k1 scalar")]
    BadScalar,
}

/// The sequencer's signing key (op-node `--p2p.sequencer.key`).
#[derive(Clone)]
pub struct BlockSigner {
    key: SigningKey,
    address: Address,
}

impl std::fmt::Debug for BlockSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("BlockSigner")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl BlockSigner {
    /// Loads a key from 32 raw bytes.
    pub fn from_bytes(secret: &[u8; 32]) -> Result<Self, KeyError> {
        let key = SigningKey::from_slice(secret).map_err(|_| KeyError::BadScalar)?;
        let address = address_of(key.verifying_key());
        Ok(Self { key, address })
    }

    /// Loads a key from hex (optional `0x`, surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let bytes: [u8; 32] = alloy_primitives::hex::decode(text)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(KeyError::BadHex { chars: text.len() })?;
        Self::from_bytes(&bytes)
    }

    /// The address blocks signed by this key recover to.
    pub fn address(&self) -> Address {
        self.address
    }

    /// Signs a signing hash, returning r ‖ s ‖ v with v ∈ {0, 1} and low s (RFC 6979 nonces).
    pub fn sign_hash(&self, signing_hash: &B256) -> [u8; SIGNATURE_BYTES] {
        let mut out = [0u8; SIGNATURE_BYTES];
        // Signing a 32-byte prehash with a valid key only fails if RFC 6979 produced an invalid
        // nonce, which has negligible probability; the zero signature then fails validation.
        if let Ok((sig, recid)) = self.key.sign_prehash_recoverable(signing_hash.as_slice()) {
            out[..64].copy_from_slice(&sig.to_bytes());
            out[64] = recid.to_byte();
        }
        out
    }

    /// Signs the bytes that follow the signature in a gossip message, for `chain_id`.
    pub fn sign_payload(&self, chain_id: u64, signed_bytes: &[u8]) -> [u8; SIGNATURE_BYTES] {
        self.sign_hash(&signing_hash(chain_id, payload_hash(signed_bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// k256's recovery (with its closing verification) on a low-`s` signature.
    fn k256_recover(
        prehash: &[u8; 32],
        sig: &Signature,
        recid: RecoveryId,
    ) -> Option<VerifyingKey> {
        VerifyingKey::recover_from_prehash(prehash, sig, recid).ok()
    }

    #[test]
    fn recovery_matches_k256_for_every_parity_reduction_and_high_s() {
        for i in 1u64..=64 {
            let mut secret = [0u8; 32];
            secret[0] = 0x5a;
            secret[24..].copy_from_slice(&i.to_be_bytes());
            let key = SigningKey::from_slice(&secret).unwrap();
            let prehash = keccak256(i.to_le_bytes()).0;
            let (sig, recid) = key.sign_prehash_recoverable(&prehash).unwrap();
            let expected = key.verifying_key();
            assert_eq!(recover_key(&prehash, &sig, recid).as_ref(), Some(expected));
            // Every other recovery id gives what k256 gives (another key, or none).
            for byte in 0..4u8 {
                let other = RecoveryId::from_byte(byte).unwrap();
                assert_eq!(
                    recover_key(&prehash, &sig, other),
                    k256_recover(&prehash, &sig, other),
                    "key {i}, recovery id {byte}"
                );
            }
            // High s with the other parity recovers the same key, as in go-ethereum.
            let (r, s) = sig.split_scalars();
            let high = Signature::from_scalars(r.to_repr(), (-*s).to_repr()).unwrap();
            let flipped = RecoveryId::new(!recid.is_y_odd(), recid.is_x_reduced());
            assert_eq!(
                recover_key(&prehash, &high, flipped).as_ref(),
                Some(expected)
            );
            // And through the wire-level function.
            let mut wire = [0u8; SIGNATURE_BYTES];
            wire[..64].copy_from_slice(&high.to_bytes());
            wire[64] = flipped.to_byte();
            assert_eq!(
                recover_signer(&wire, &B256::from(prehash)),
                Ok(address_of(expected))
            );
        }
    }

    #[test]
    fn signatures_that_recover_nothing_are_refused() {
        let prehash = B256::repeat_byte(7);
        // Small r: some are the x of a curve point, some not, and x + n is a field element too
        // (recovery ids 2 and 3). Whatever k256 recovers, we recover.
        for r in 1u8..=20 {
            let mut wire = [0u8; SIGNATURE_BYTES];
            wire[31] = r;
            wire[63] = 1;
            for v in 0..4u8 {
                wire[64] = v;
                let sig = Signature::from_slice(&wire[..64]).unwrap();
                let recid = RecoveryId::from_byte(v).unwrap();
                let ours = recover_signer(&wire, &prehash);
                match k256_recover(&prehash.0, &sig, recid) {
                    Some(key) => assert_eq!(ours, Ok(address_of(&key)), "r {r} v {v}"),
                    None => assert_eq!(ours, Err(SignatureError::RecoveryFailed), "r {r} v {v}"),
                }
            }
        }
        let mut wire = [0u8; SIGNATURE_BYTES];
        wire[64] = 27;
        assert_eq!(
            recover_signer(&wire, &prehash),
            Err(SignatureError::BadRecoveryId(27))
        );
        wire[64] = 0;
        assert_eq!(
            recover_signer(&wire, &prehash),
            Err(SignatureError::BadScalars)
        );
    }
}
