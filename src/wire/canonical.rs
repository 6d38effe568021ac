//! [`CanonicalSsz`]: a block's SSZ bytes, known to be the canonical encoding of its envelope, so
//! that they can be stored and served as they are instead of encoded again.
//!
//! Made by the decoder ([`decode_envelope_canonical`]: the gossip validator, the sync client, the
//! store's reads) when the bytes it decoded are canonical, or by [`CanonicalSsz::encode`]. A
//! validated gossip block thus carries the very bytes its producer signed (shared with the
//! message buffer, not copied) through the store writer into the store, and the
//! payload_by_number server answers with the stored bytes. Bytes in a form op-node accepts but
//! that is not canonical (a zero first transaction offset with bytes after it,
//! [`super::ssz::decode_payload`]) get no `CanonicalSsz`: the store writes the envelope's
//! canonical encoding instead, so the node never serves a non-canonical form.

use alloy_primitives::Bytes;

use super::ssz::{EncodeError, SszError, decode_envelope_form, encode_envelope};
use super::{BlockVersion, ExecutionPayloadEnvelope};

/// SSZ bytes (beacon root ‖ payload for V3/V4, the bare payload before) that are exactly what
/// [`encode_envelope`] writes, in the layout of [`Self::version`], for the envelope they came
/// with. Cheap to clone (shared bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalSsz {
    version: BlockVersion,
    bytes: Bytes,
}

impl CanonicalSsz {
    /// Encodes `envelope` in the layout of `version`.
    pub fn encode(
        version: BlockVersion,
        envelope: &ExecutionPayloadEnvelope,
    ) -> Result<Self, EncodeError> {
        let bytes = encode_envelope(version, envelope)?.into();
        Ok(Self { version, bytes })
    }

    /// The layout the bytes are in.
    pub fn version(&self) -> BlockVersion {
        self.version
    }

    /// The bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }
}

/// Decodes like [`super::ssz::decode_envelope`], and keeps `bytes` (shared, not copied) as the
/// envelope's [`CanonicalSsz`] when they are in canonical form; `None` when they are in a form
/// op-node accepts that re-encodes differently.
pub fn decode_envelope_canonical(
    version: BlockVersion,
    bytes: &Bytes,
) -> Result<(ExecutionPayloadEnvelope, Option<CanonicalSsz>), SszError> {
    let (envelope, canonical) = decode_envelope_form(version, bytes)?;
    let ssz = canonical.then(|| CanonicalSsz {
        version,
        bytes: bytes.clone(),
    });
    Ok((envelope, ssz))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly
pub(crate) mod tests {
    use super::*;
    use crate::wire::ssz::decode_envelope;
    use crate::wire::{ExecutionPayload, Transactions};
    use alloy_primitives::B256;

    fn envelope(version: BlockVersion, txs: &[&[u8]], extra: &[u8]) -> ExecutionPayloadEnvelope {
        let mut payload = ExecutionPayload::empty(version);
        payload.block_number = 7;
        payload.extra_data = Bytes::copy_from_slice(extra);
        payload.transactions = Transactions::from_slices(txs.iter().copied()).unwrap();
        ExecutionPayloadEnvelope {
            parent_beacon_block_root: version
                .has_parent_beacon_root()
                .then_some(B256::repeat_byte(9)),
            payload,
        }
    }

    /// Where the transaction list starts and where it ends (the withdrawals offset, or the end).
    fn tx_span(version: BlockVersion, bytes: &[u8]) -> (usize, usize) {
        let base = if version.has_parent_beacon_root() {
            32
        } else {
            0
        };
        // Offsets of the fixed part: after 32+20+32+32+256+32 bytes of hashes and the bloom, four
        // u64s, the extra-data offset, the 32-byte base fee and the 32-byte block hash.
        let tx_offset_at = base + 404 + 32 + 4 + 32 + 32;
        let read = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let start = base + read(tx_offset_at);
        let end = if version.has_withdrawals() {
            base + read(tx_offset_at + 4)
        } else {
            bytes.len()
        };
        (start, end)
    }

    /// The form op-node accepts: the (empty) transaction list of the envelope encoded as
    /// `canonical` spelled as `0u32 ‖ junk` (also used by the store's tests).
    pub(crate) fn zero_offset_form(
        version: BlockVersion,
        canonical: &[u8],
        junk: &[u8],
    ) -> Vec<u8> {
        let (start, end) = tx_span(version, canonical);
        assert_eq!(start, end, "the list must be empty to take the quirk");
        let mut out = canonical[..start].to_vec();
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(junk);
        out.extend_from_slice(&canonical[end..]);
        if version.has_withdrawals() {
            let base = if version.has_parent_beacon_root() {
                32
            } else {
                0
            };
            let at = base + 404 + 32 + 4 + 32 + 32 + 4;
            let moved =
                u32::from_le_bytes(out[at..at + 4].try_into().unwrap()) + 4 + junk.len() as u32;
            out[at..at + 4].copy_from_slice(&moved.to_le_bytes());
        }
        out
    }

    #[test]
    fn encoded_bytes_are_canonical_and_kept_without_a_copy() {
        for version in BlockVersion::ALL {
            for txs in [&[][..], &[&b"\x7e\x01"[..], b"", b"abc"][..]] {
                let env = envelope(version, txs, b"extra");
                let bytes = Bytes::from(encode_envelope(version, &env).unwrap());
                let (decoded, ssz) = decode_envelope_canonical(version, &bytes).unwrap();
                assert_eq!(decoded, env);
                let ssz = ssz.unwrap();
                assert_eq!(ssz.version(), version);
                assert_eq!(ssz.bytes().as_ptr(), bytes.as_ptr(), "shared, not copied");
                assert_eq!(ssz, CanonicalSsz::encode(version, &env).unwrap());
            }
        }
    }

    #[test]
    fn zero_first_offset_with_trailing_bytes_is_not_canonical() {
        for version in BlockVersion::ALL {
            let env = envelope(version, &[], b"x");
            let canonical = encode_envelope(version, &env).unwrap();
            for junk in [&b""[..], b"\x01\x02\x03\x04", &[0xff; 100]] {
                let odd = Bytes::from(zero_offset_form(version, &canonical, junk));
                let (decoded, ssz) = decode_envelope_canonical(version, &odd).unwrap();
                assert_eq!(decoded, env, "{version}: read as no transactions");
                assert!(ssz.is_none(), "{version}: {} junk bytes", junk.len());
                assert_eq!(encode_envelope(version, &decoded).unwrap(), canonical);
            }
        }
    }

    /// The flag agrees with re-encoding, both ways, over every single-byte change of every offset
    /// and length-carrying byte and a spread of other mutations of several encodings.
    #[test]
    fn canonical_flag_agrees_with_re_encoding() {
        let mut checked = 0;
        let mut check = |version: BlockVersion, bytes: Vec<u8>| {
            let bytes = Bytes::from(bytes);
            let Ok((decoded, ssz)) = decode_envelope_canonical(version, &bytes) else {
                return;
            };
            assert_eq!(decode_envelope(version, &bytes).unwrap(), decoded);
            let again = encode_envelope(version, &decoded).unwrap();
            assert_eq!(ssz.is_some(), again == bytes, "{version}: {bytes:?}");
            checked += 1;
        };
        for version in BlockVersion::ALL {
            for txs in [
                &[][..],
                &[&b"\x7e"[..]][..],
                &[&b"ab"[..], b"", b"cdef"][..],
            ] {
                let env = envelope(version, txs, b"ex");
                let base = encode_envelope(version, &env).unwrap();
                if txs.is_empty() {
                    check(version, zero_offset_form(version, &base, b"\x05"));
                }
                // Every byte from the last u64 of the fixed part on (the offsets, the extra
                // data, the list), set to a spread of values; every truncation; one more byte.
                for at in 428..base.len() {
                    for value in [0u8, 1, 3, 4, 8, 0x10, 0x7e, 0xff] {
                        let mut b = base.clone();
                        b[at] = value;
                        check(version, b);
                    }
                }
                for len in 0..base.len() {
                    check(version, base[..len].to_vec());
                }
                let mut longer = base.clone();
                longer.push(0);
                check(version, longer);
            }
        }
        assert!(checked > 1000, "only {checked} mutations decoded");
    }
}
