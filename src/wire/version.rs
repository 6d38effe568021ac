//! The four block versions of the gossip protocol and what each one carries on the wire.
//!
//! A version is chosen by the *topic* a message arrives on (validation), or by the fork active at
//! a block's timestamp (publishing, see [`crate::chain::ChainSpec::block_version_at`]).
//! Reference: `shared/spec/op-p2p.md` §1 and §2.2.

use std::fmt;

/// Block (and topic) version: V1 Bedrock/Regolith, V2 Canyon, V3 Ecotone, V4 Isthmus and later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BlockVersion {
    /// `/optimism/<id>/0/blocks`: Bellatrix-layout payload, no withdrawals.
    V1,
    /// `/optimism/<id>/1/blocks`: Capella layout (withdrawals list).
    V2,
    /// `/optimism/<id>/2/blocks`: parent beacon root ‖ Deneb layout (blob gas fields).
    V3,
    /// `/optimism/<id>/3/blocks`: parent beacon root ‖ Deneb layout + OP's `withdrawalsRoot`.
    V4,
}

impl BlockVersion {
    /// All versions, in topic order.
    pub const ALL: [BlockVersion; 4] = [Self::V1, Self::V2, Self::V3, Self::V4];

    /// The `<N>` in `/optimism/<chain>/<N>/blocks`.
    pub fn topic_index(self) -> u8 {
        match self {
            Self::V1 => 0,
            Self::V2 => 1,
            Self::V3 => 2,
            Self::V4 => 3,
        }
    }

    /// Inverse of [`Self::topic_index`].
    pub fn from_topic_index(index: u8) -> Option<Self> {
        Self::ALL.get(usize::from(index)).copied()
    }

    /// Size of the SSZ fixed part of the payload (op-node `blockV1FixedPart`..`blockV4FixedPart`):
    /// 508 = the Bellatrix fields, +4 for the withdrawals offset, +16 for the two blob-gas u64s,
    /// +32 for OP's `withdrawalsRoot`.
    pub fn fixed_part_bytes(self) -> usize {
        match self {
            Self::V1 => 508,
            Self::V2 => 512,
            Self::V3 => 528,
            Self::V4 => 560,
        }
    }

    /// V2 and later carry a withdrawals list (always empty on OP chains).
    pub fn has_withdrawals(self) -> bool {
        self >= Self::V2
    }

    /// V3 and later carry `blobGasUsed` and `excessBlobGas`.
    pub fn has_blob_fields(self) -> bool {
        self >= Self::V3
    }

    /// V3 and later prefix the payload with the 32-byte parent beacon block root.
    pub fn has_parent_beacon_root(self) -> bool {
        self >= Self::V3
    }

    /// V4 carries OP's `withdrawalsRoot` (the L2ToL1MessagePasser storage root).
    pub fn has_withdrawals_root(self) -> bool {
        self >= Self::V4
    }

    /// Short lowercase name, as used on the command line (`v1`..`v4`).
    pub fn name(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V2 => "v2",
            Self::V3 => "v3",
            Self::V4 => "v4",
        }
    }

    /// Parses `v1`..`v4` (case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|v| v.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for BlockVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
