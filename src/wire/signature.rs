//! Block signatures: the signing hash, signing with the sequencer key, and recovery of the signer.
//!
//! Second step of the gossip-in path (right after decompression, as in op-node), and the last
//! step before compression on the publish path. Reference: `shared/spec/op-p2p.md` §2.3–§2.4.
//!
//! Recovery follows go-ethereum's `crypto.SigToPub` exactly: `v` is the raw recovery id 0..=3
//! (27/28 are refused), and high-`s` signatures are accepted. k256 refuses high-`s` during
//! recovery, so such signatures are normalised first (`s → n − s` flips the y parity), which
//! recovers the same key.

use alloy_primitives::{Address, B256, keccak256};
use k256::ecdsa::{RecoveryId, Signature, SigningKey, VerifyingKey};

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
    keccak256(signed_bytes)
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

/// Recovers the address that produced `sig` over `signing_hash`.
pub fn recover_signer(
    sig: &[u8; SIGNATURE_BYTES],
    signing_hash: &B256,
) -> Result<Address, SignatureError> {
    let v = sig[64];
    if v > 3 {
        return Err(SignatureError::BadRecoveryId(v));
    }
    let signature = Signature::from_slice(&sig[..64]).map_err(|_| SignatureError::BadScalars)?;
    let mut recid = RecoveryId::from_byte(v).ok_or(SignatureError::BadRecoveryId(v))?;
    let signature = match signature.normalize_s() {
        Some(low_s) => {
            recid = RecoveryId::new(!recid.is_y_odd(), recid.is_x_reduced());
            low_s
        }
        None => signature,
    };
    let key = VerifyingKey::recover_from_prehash(signing_hash.as_slice(), &signature, recid)
        .map_err(|_| SignatureError::RecoveryFailed)?;
    Ok(address_of(&key))
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
    /// Not 32 bytes of hex.
    #[error("a private key is 32 bytes of hex (64 hex digits, optional 0x): {0}")]
    BadHex(String),
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
            .ok_or_else(|| KeyError::BadHex(format!("got {} characters", text.len())))?;
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
