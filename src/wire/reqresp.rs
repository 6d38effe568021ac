//! `payload_by_number` request and response frames (sans-IO; the streams live in `p2p/`).
//!
//! ```text
//! request:  u64 LE block number (8 bytes), then the client half-closes
//! success:  0x00 ‖ version u32 LE ‖ snappy_FRAMED(SSZ body)
//! error:    one result-code byte (1 not found, 2 invalid request, 3 other), nothing else
//! ```
//! Versions sent follow op-node: 0 = bare payload (V1/V2 layout, by Canyon), 1 = envelope
//! (V3/V4 layout, by Isthmus). Version 2 (the public spec's Isthmus envelope) is accepted too.
//! Reference: `shared/spec/op-p2p.md` §6.1 and project decisions 1–2.

use alloy_primitives::Bytes;

use super::snappy::{SnappyError, compress_framed, decompress_framed};
use super::ssz::{SszError, decode_envelope};
use super::{BlockVersion, ExecutionPayloadEnvelope, MAX_GOSSIP_SIZE_BYTES};

/// Size of a request.
pub const REQUEST_BYTES: usize = 8;
/// Largest response stream a client reads (op-node wraps the stream in a 10 MiB `LimitReader`).
pub const MAX_RESPONSE_BYTES: usize = MAX_GOSSIP_SIZE_BYTES;
/// Largest decompressed body (op-node's second 10 MiB `LimitReader`).
pub const MAX_BODY_BYTES: usize = MAX_GOSSIP_SIZE_BYTES;
/// Response header on success: code byte + u32 version.
pub const SUCCESS_HEADER_BYTES: usize = 5;

/// op-node's protocol id (no trailing slash); the one we dial first.
pub fn protocol_id(chain_id: u64) -> String {
    format!("/opstack/req/payload_by_number/{chain_id}/0")
}

/// The public spec's protocol id (trailing slash), served as well for kona-style clients.
pub fn protocol_id_spec_form(chain_id: u64) -> String {
    format!("/opstack/req/payload_by_number/{chain_id}/0/")
}

/// Result codes of a response's first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResultCode {
    /// 0: a payload follows.
    Success,
    /// 1: the server does not have the block (cancels the range without penalty).
    NotFound,
    /// 2: before genesis or beyond the expected head for the current time.
    InvalidRequest,
    /// 3: anything else, including rate-limit waits that ran out.
    Unknown,
    /// 4..=255: not defined by op-node (≥128 reserved by the spec).
    Other(u8),
}

impl ResultCode {
    /// The byte on the wire.
    pub fn byte(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::NotFound => 1,
            Self::InvalidRequest => 2,
            Self::Unknown => 3,
            Self::Other(b) => b,
        }
    }

    /// Parses the byte on the wire.
    pub fn from_byte(b: u8) -> Self {
        match b {
            0 => Self::Success,
            1 => Self::NotFound,
            2 => Self::InvalidRequest,
            3 => Self::Unknown,
            other => Self::Other(other),
        }
    }
}

/// A decoded response, before the body is interpreted for a block.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // variant fields are named for what they carry
pub enum Response {
    /// Code 0: version and the decompressed SSZ body.
    Payload { version: u32, body: Bytes },
    /// Any non-zero code.
    Error(ResultCode),
}

/// Why a request or response frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs)] // variant fields are named for what they carry
pub enum ReqRespError {
    /// Fewer than 8 request bytes.
    #[error("request of {len} bytes is shorter than the 8-byte block number")]
    ShortRequest { len: usize },
    /// No bytes at all where a result code was expected.
    #[error("empty response")]
    EmptyResponse,
    /// Success code without a full version.
    #[error("response of {len} bytes is too short for its 5-byte header")]
    ShortResponse { len: usize },
    /// The stream was longer than a client reads.
    #[error("response of {len} bytes exceeds the {MAX_RESPONSE_BYTES}-byte limit")]
    ResponseTooLarge { len: usize },
    /// The framed-snappy body was corrupt, truncated or too large.
    #[error("response body: {0}")]
    Body(#[from] SnappyError),
    /// A version we do not know.
    #[error("unknown payload version {0} (0, 1 and 2 are accepted)")]
    UnknownVersion(u32),
    /// The body did not decode for the block's layout.
    #[error("response payload: {0}")]
    Ssz(#[from] SszError),
}

/// Encodes a request for block `number`.
pub fn encode_request(number: u64) -> [u8; REQUEST_BYTES] {
    number.to_le_bytes()
}

/// Decodes a request; like op-node's server, reads the first 8 bytes and ignores anything after.
pub fn decode_request(bytes: &[u8]) -> Result<u64, ReqRespError> {
    let head: [u8; REQUEST_BYTES] = bytes
        .get(..REQUEST_BYTES)
        .and_then(|b| b.try_into().ok())
        .ok_or(ReqRespError::ShortRequest { len: bytes.len() })?;
    Ok(u64::from_le_bytes(head))
}

/// The version op-node sends for a block of `fork` (0 before Ecotone, 1 from Ecotone on).
pub fn response_version_for(fork: BlockVersion) -> u32 {
    if fork.has_parent_beacon_root() { 1 } else { 0 }
}

/// Encodes a success response whose body is the SSZ of a bare payload (version 0) or of an
/// envelope (version 1).
pub fn encode_success(version: u32, ssz_body: &[u8]) -> Vec<u8> {
    let framed = compress_framed(ssz_body);
    let mut out = Vec::with_capacity(SUCCESS_HEADER_BYTES + framed.len());
    out.push(ResultCode::Success.byte());
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&framed);
    out
}

/// Encodes an error response: the code byte alone.
pub fn encode_error(code: ResultCode) -> [u8; 1] {
    [code.byte()]
}

/// Decodes a whole response stream (as read up to EOF, at most [`MAX_RESPONSE_BYTES`]).
pub fn decode_response(bytes: &[u8]) -> Result<Response, ReqRespError> {
    if bytes.len() > MAX_RESPONSE_BYTES {
        return Err(ReqRespError::ResponseTooLarge { len: bytes.len() });
    }
    let code = ResultCode::from_byte(*bytes.first().ok_or(ReqRespError::EmptyResponse)?);
    if code != ResultCode::Success {
        return Ok(Response::Error(code));
    }
    let version_bytes: [u8; 4] = bytes
        .get(1..SUCCESS_HEADER_BYTES)
        .and_then(|b| b.try_into().ok())
        .ok_or(ReqRespError::ShortResponse { len: bytes.len() })?;
    let version = u32::from_le_bytes(version_bytes);
    let framed = bytes.get(SUCCESS_HEADER_BYTES..).unwrap_or_default();
    let body = decompress_framed(framed, MAX_BODY_BYTES)?;
    Ok(Response::Payload {
        version,
        body: body.into(),
    })
}

/// Interprets a success body for a block whose fork (by its expected timestamp) is `fork`:
/// version 0 → V2 layout from Canyon on else V1; version 1 → V4 envelope from Isthmus on else V3;
/// version 2 → the spec's Isthmus envelope (V4 layout).
pub fn decode_payload_body(
    version: u32,
    fork: BlockVersion,
    body: &Bytes,
) -> Result<ExecutionPayloadEnvelope, ReqRespError> {
    Ok(decode_envelope(payload_layout(version, fork)?, body)?)
}

/// The layout of a success body of response `version` for a block of `fork` (see
/// [`decode_payload_body`]).
pub fn payload_layout(version: u32, fork: BlockVersion) -> Result<BlockVersion, ReqRespError> {
    Ok(match version {
        0 if fork >= BlockVersion::V2 => BlockVersion::V2,
        0 => BlockVersion::V1,
        1 if fork >= BlockVersion::V4 => BlockVersion::V4,
        1 => BlockVersion::V3,
        2 => BlockVersion::V4,
        other => return Err(ReqRespError::UnknownVersion(other)),
    })
}
