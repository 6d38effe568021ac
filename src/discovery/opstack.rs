//! The `opstack` ENR entry (spec §8): which OP Stack chain a discovered record belongs to.
//!
//! Sits between discv5 and the dial queue: every record found is read here, and only records of
//! our chain with version 0 become dial candidates ([`OpStackId::matches`]); the others stay in
//! the DHT, which is shared with L1 nodes.
//!
//! Byte form (op-node `op-node/p2p/discovery.go`): the ENR value is an RLP byte string holding
//! `uvarint(chain id) ‖ uvarint(version)`, protobuf-style unsigned LEB128 varints as Go's
//! `binary.PutUvarint` writes them. The decoder reads the two varints and ignores trailing bytes,
//! as op-node's does.

use alloy_rlp::{Bytes, Decodable, Encodable};

/// The ENR key.
pub const OPSTACK_KEY: &str = "opstack";
/// The only version op-node writes and accepts (`FilterEnodes`: `version == 0`).
pub const OPSTACK_VERSION: u64 = 0;
/// A u64 takes at most 10 LEB128 bytes (7 bits each); longer varints are malformed.
const MAX_UVARINT_BYTES: usize = 10;

/// The decoded `opstack` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpStackId {
    /// L2 chain id.
    pub chain_id: u64,
    /// Entry version (0 today).
    pub version: u64,
}

/// Why an `opstack` entry could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpStackError {
    /// The ENR value is not an RLP byte string.
    #[error("opstack entry is not an RLP byte string")]
    NotBytes,
    /// A varint ends early, runs past 10 bytes or overflows a u64.
    #[error("opstack entry has a malformed varint")]
    BadVarint,
}

impl OpStackId {
    /// Our chain's entry (version 0).
    pub fn for_chain(chain_id: u64) -> Self {
        Self {
            chain_id,
            version: OPSTACK_VERSION,
        }
    }

    /// The raw bytes `uvarint(chain id) ‖ uvarint(version)` (before RLP).
    pub fn to_bytes(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 * MAX_UVARINT_BYTES);
        put_uvarint(&mut out, self.chain_id);
        put_uvarint(&mut out, self.version);
        out
    }

    /// Reads the raw bytes (trailing bytes are ignored, as op-node does).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, OpStackError> {
        let (chain_id, rest) = read_uvarint(bytes)?;
        let (version, _) = read_uvarint(rest)?;
        Ok(Self { chain_id, version })
    }

    /// The value to put in the ENR (an RLP byte string).
    pub fn to_enr_value(self) -> Bytes {
        Bytes::from(self.to_bytes())
    }

    /// Reads the entry from an ENR value given as its RLP encoding.
    pub fn from_rlp(mut rlp: &[u8]) -> Result<Self, OpStackError> {
        let bytes = Bytes::decode(&mut rlp).map_err(|_| OpStackError::NotBytes)?;
        Self::from_bytes(&bytes)
    }

    /// Reads a record's entry: `None` when it has none.
    pub fn of_enr(enr: &discv5::Enr) -> Option<Result<Self, OpStackError>> {
        enr.get_raw_rlp(OPSTACK_KEY).map(Self::from_rlp)
    }

    /// op-node's filter: our chain id and version 0 exactly.
    pub fn matches(self, chain_id: u64) -> bool {
        self.chain_id == chain_id && self.version == OPSTACK_VERSION
    }

    /// The RLP encoding of the ENR value (tests and fixtures).
    pub fn rlp(self) -> Vec<u8> {
        let mut out = Vec::new();
        self.to_enr_value().encode(&mut out);
        out
    }
}

/// What a record's `opstack` entry says about it, for the dial filter and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainMatch {
    /// Our chain, version 0: a dial candidate.
    Ours(OpStackId),
    /// Another chain or version.
    Other(OpStackId),
    /// No `opstack` entry (an L1 node, or another network).
    Missing,
    /// An entry that does not decode.
    Malformed,
}

/// Classifies a record against our chain id.
pub fn classify(enr: &discv5::Enr, chain_id: u64) -> ChainMatch {
    match OpStackId::of_enr(enr) {
        None => ChainMatch::Missing,
        Some(Err(_)) => ChainMatch::Malformed,
        Some(Ok(id)) if id.matches(chain_id) => ChainMatch::Ours(id),
        Some(Ok(id)) => ChainMatch::Other(id),
    }
}

fn put_uvarint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Go's `binary.Uvarint`: at most 10 bytes, and the 10th may only carry the top bit of a u64.
fn read_uvarint(bytes: &[u8]) -> Result<(u64, &[u8]), OpStackError> {
    let mut value: u64 = 0;
    for (i, byte) in bytes.iter().take(MAX_UVARINT_BYTES).enumerate() {
        if i == MAX_UVARINT_BYTES - 1 && *byte > 1 {
            return Err(OpStackError::BadVarint);
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, bytes.get(i + 1..).unwrap_or_default()));
        }
    }
    Err(OpStackError::BadVarint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn spec_vectors() {
        // shared spec §8 (10 and 8453 from kona's tests, the others computed).
        for (chain, rlp) in [
            (10u64, "820a00"),
            (8453, "83854200"),
            (11155420, "85dcefa80500"),
            (84532, "84b4940500"),
        ] {
            let id = OpStackId::for_chain(chain);
            assert_eq!(
                alloy_primitives::hex::encode(id.rlp()),
                rlp,
                "chain {chain}"
            );
            let bytes = alloy_primitives::hex::decode(rlp).unwrap();
            assert_eq!(OpStackId::from_rlp(&bytes), Ok(id));
        }
    }

    #[test]
    fn trailing_bytes_ignored_and_bad_input_refused() {
        assert_eq!(
            OpStackId::from_bytes(&[0x0a, 0x00, 0xff, 0xff]),
            Ok(OpStackId::for_chain(10))
        );
        assert_eq!(OpStackId::from_bytes(&[]), Err(OpStackError::BadVarint));
        assert_eq!(OpStackId::from_bytes(&[0x0a]), Err(OpStackError::BadVarint));
        assert_eq!(
            OpStackId::from_bytes(&[0x80; 11]),
            Err(OpStackError::BadVarint)
        );
        // A 10th byte above 1 overflows a u64.
        let mut over = vec![0xff; 9];
        over.push(0x02);
        over.push(0x00);
        assert_eq!(OpStackId::from_bytes(&over), Err(OpStackError::BadVarint));
        // A list instead of a byte string.
        assert_eq!(
            OpStackId::from_rlp(&[0xc2, 0x0a, 0x00]),
            Err(OpStackError::NotBytes)
        );
        assert_eq!(OpStackId::from_rlp(&[]), Err(OpStackError::NotBytes));
    }

    #[test]
    fn filter_needs_our_chain_and_version_zero() {
        assert!(OpStackId::for_chain(10).matches(10));
        assert!(!OpStackId::for_chain(10).matches(8453));
        assert!(
            !OpStackId {
                chain_id: 10,
                version: 1
            }
            .matches(10)
        );
    }

    proptest! {
        #[test]
        fn round_trip(chain_id: u64, version: u64) {
            let id = OpStackId { chain_id, version };
            prop_assert_eq!(OpStackId::from_rlp(&id.rlp()), Ok(id));
        }

        #[test]
        fn never_panics(bytes: Vec<u8>) {
            let _ = OpStackId::from_rlp(&bytes);
            let _ = OpStackId::from_bytes(&bytes);
        }
    }
}
