//! Which Engine API method version a block of each fork uses (execution-apis, with the OP Stack's
//! variants; `shared/spec/op-p2p.md` §2): the gossip topic version of a block names its fork, so
//! the mapping is from [`BlockVersion`].
//!
//! | block (topic) | fork | newPayload | forkchoiceUpdated | getPayload |
//! |---|---|---|---|---|
//! | V1 | Bedrock (before Canyon) | V2 | V2 | V2 |
//! | V2 | Canyon, Delta | V2 | V2 | V2 |
//! | V3 | Ecotone, Fjord, Granite, Holocene | V3 | V3 | V3 |
//! | V4 | Isthmus and later | V4 | V3 | V4 |
//!
//! op-node sends `newPayloadV2` for Bedrock blocks too (V1 has no withdrawals field; V2 accepts
//! both shapes before Shanghai), and `forkchoiceUpdatedV3` from Ecotone on.

use crate::wire::BlockVersion;

/// `engine_newPayload*` for a block of `version`.
pub fn new_payload(version: BlockVersion) -> &'static str {
    match version {
        BlockVersion::V1 | BlockVersion::V2 => "engine_newPayloadV2",
        BlockVersion::V3 => "engine_newPayloadV3",
        BlockVersion::V4 => "engine_newPayloadV4",
    }
}

/// `engine_forkchoiceUpdated*` when the head (or the block to build) is of `version`.
pub fn forkchoice_updated(version: BlockVersion) -> &'static str {
    match version {
        BlockVersion::V1 | BlockVersion::V2 => "engine_forkchoiceUpdatedV2",
        BlockVersion::V3 | BlockVersion::V4 => "engine_forkchoiceUpdatedV3",
    }
}

/// `engine_getPayload*` for a payload of `version`.
pub fn get_payload(version: BlockVersion) -> &'static str {
    match version {
        BlockVersion::V1 | BlockVersion::V2 => "engine_getPayloadV2",
        BlockVersion::V3 => "engine_getPayloadV3",
        BlockVersion::V4 => "engine_getPayloadV4",
    }
}

/// Every method this node may call, for `engine_exchangeCapabilities`.
pub const CAPABILITIES: [&str; 8] = [
    "engine_newPayloadV2",
    "engine_newPayloadV3",
    "engine_newPayloadV4",
    "engine_forkchoiceUpdatedV2",
    "engine_forkchoiceUpdatedV3",
    "engine_getPayloadV2",
    "engine_getPayloadV3",
    "engine_getPayloadV4",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_follow_the_fork() {
        assert_eq!(new_payload(BlockVersion::V1), "engine_newPayloadV2");
        assert_eq!(new_payload(BlockVersion::V3), "engine_newPayloadV3");
        assert_eq!(new_payload(BlockVersion::V4), "engine_newPayloadV4");
        assert_eq!(
            forkchoice_updated(BlockVersion::V2),
            "engine_forkchoiceUpdatedV2"
        );
        assert_eq!(
            forkchoice_updated(BlockVersion::V4),
            "engine_forkchoiceUpdatedV3"
        );
        assert_eq!(get_payload(BlockVersion::V4), "engine_getPayloadV4");
        for v in [
            BlockVersion::V1,
            BlockVersion::V2,
            BlockVersion::V3,
            BlockVersion::V4,
        ] {
            for m in [new_payload(v), forkchoice_updated(v), get_payload(v)] {
                assert!(CAPABILITIES.contains(&m), "{m}");
            }
        }
    }
}
