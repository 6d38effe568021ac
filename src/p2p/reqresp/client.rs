//! Asking one peer for one block: the primitive the sync client (gap filling) is built on.
//!
//! Opens a stream with op-node's protocol id (falling back to the spec's form if the peer only
//! speaks that), writes the 8-byte request, half-closes, reads at most 10 MiB of response within
//! the deadline, decodes it for the block's fork, and checks the number and the block hash.
//! Every failure is a typed [`RequestError`], which the sync client maps to the peer's score.

use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::PeerId;

use super::{REQUEST_TIMEOUT, RESPONSE_TIMEOUT, STREAM_OPEN_TIMEOUT, protocols};
use crate::chain::ChainSpec;
use crate::validate::{ValidationError, check_block_hash};
use crate::wire::ExecutionPayloadEnvelope;
use crate::wire::canonical::{CanonicalSsz, decode_envelope_canonical};
use crate::wire::reqresp::{
    MAX_RESPONSE_BYTES, ReqRespError, Response, ResultCode, decode_response, encode_request,
    payload_layout,
};

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The peer does not have the block (code 1): cancel the range, no penalty.
    #[error("peer does not have the block")]
    NotFound,
    /// Any other error code.
    #[error("peer answered error code {0}")]
    ErrorCode(u8),
    /// No stream could be opened (not connected, or the protocol is not supported).
    #[error("cannot open a payload_by_number stream: {0}")]
    Open(#[source] libp2p_stream::OpenStreamError),
    /// A deadline passed.
    #[error("timed out {0}")]
    Timeout(&'static str),
    /// Reading or writing the stream failed.
    #[error("stream: {0}")]
    Io(#[from] std::io::Error),
    /// The response does not decode.
    #[error(transparent)]
    Frame(#[from] ReqRespError),
    /// The payload is not the block asked for, or its hash does not match.
    #[error("wrong payload: {0}")]
    WrongPayload(#[from] WrongPayload),
}

/// How a decoded payload is not the block asked for.
#[derive(Debug, thiserror::Error)]
pub enum WrongPayload {
    /// Another block number.
    #[error("asked for {asked}, got {got}")]
    Number {
        /// The number requested.
        asked: u64,
        /// The number in the payload.
        got: u64,
    },
    /// The payload's contents do not hash to its block hash.
    #[error(transparent)]
    Hash(ValidationError),
}

/// Deadlines of one request (op-node's by default).
#[derive(Debug, Clone, Copy)]
pub struct RequestTimeouts {
    /// Opening the stream.
    pub open: Duration,
    /// Writing the request.
    pub write: Duration,
    /// Reading the whole response.
    pub read: Duration,
}

impl Default for RequestTimeouts {
    fn default() -> Self {
        Self {
            open: STREAM_OPEN_TIMEOUT,
            write: REQUEST_TIMEOUT,
            read: RESPONSE_TIMEOUT,
        }
    }
}

/// A verified answer: the block, and the body as received when it is the block's canonical
/// encoding (the sync client stores those bytes as they are).
#[derive(Debug, Clone)]
pub struct FetchedPayload {
    /// The payload and beacon root.
    pub envelope: ExecutionPayloadEnvelope,
    /// The body, in the layout it was decoded in, when canonical ([`crate::wire::canonical`]).
    pub ssz: Option<CanonicalSsz>,
}

/// Requests block `number` from `peer` and verifies what comes back ([`fetch_payload`] without
/// the body).
pub async fn request_payload(
    control: &mut libp2p_stream::Control,
    chain: &ChainSpec,
    peer: PeerId,
    number: u64,
    timeouts: RequestTimeouts,
) -> Result<ExecutionPayloadEnvelope, RequestError> {
    let fetched = fetch_payload(control, chain, peer, number, timeouts).await?;
    Ok(fetched.envelope)
}

/// Requests block `number` from `peer`, verifies what comes back, and keeps its body when
/// canonical.
pub async fn fetch_payload(
    control: &mut libp2p_stream::Control,
    chain: &ChainSpec,
    peer: PeerId,
    number: u64,
    timeouts: RequestTimeouts,
) -> Result<FetchedPayload, RequestError> {
    let mut stream = open(control, chain.chain_id, peer, timeouts.open).await?;
    tokio::time::timeout(timeouts.write, async {
        stream.write_all(&encode_request(number)).await?;
        stream.close().await
    })
    .await
    .map_err(|_| RequestError::Timeout("writing the request"))??;

    // One byte past the limit tells "at the limit" from "over it".
    let mut response = Vec::new();
    tokio::time::timeout(
        timeouts.read,
        (&mut stream)
            .take(MAX_RESPONSE_BYTES as u64 + 1)
            .read_to_end(&mut response),
    )
    .await
    .map_err(|_| RequestError::Timeout("reading the response"))??;
    check_response(chain, number, &response)
}

/// Interprets a whole response stream (as read, at most [`MAX_RESPONSE_BYTES`] + 1 bytes) to a
/// request for block `number`: the frame, the body in the layout of the block's fork, then the
/// number and the block hash. Sans-IO, so the `reqresp_response` fuzz target runs exactly these
/// checks on arbitrary bytes.
pub fn check_response(
    chain: &ChainSpec,
    number: u64,
    response: &[u8],
) -> Result<FetchedPayload, RequestError> {
    let (version, body) = match decode_response(response)? {
        Response::Payload { version, body } => (version, body),
        Response::Error(ResultCode::NotFound) => return Err(RequestError::NotFound),
        Response::Error(code) => return Err(RequestError::ErrorCode(code.byte())),
    };
    let fork = chain.block_version_at(chain.timestamp_for_block(number).unwrap_or(0));
    let layout = payload_layout(version, fork)?;
    let (envelope, ssz) = decode_envelope_canonical(layout, &body).map_err(ReqRespError::from)?;
    if envelope.payload.block_number != number {
        return Err(WrongPayload::Number {
            asked: number,
            got: envelope.payload.block_number,
        }
        .into());
    }
    check_block_hash(&envelope).map_err(WrongPayload::Hash)?;
    Ok(FetchedPayload { envelope, ssz })
}

async fn open(
    control: &mut libp2p_stream::Control,
    chain_id: u64,
    peer: PeerId,
    timeout: Duration,
) -> Result<libp2p::Stream, RequestError> {
    let [op_node_form, spec_form] = protocols(chain_id);
    // The peer may speak only one form: an unsupported one moves on to the next.
    let mut unsupported = spec_form.clone();
    for protocol in [op_node_form, spec_form] {
        match tokio::time::timeout(timeout, control.open_stream(peer, protocol)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(libp2p_stream::OpenStreamError::UnsupportedProtocol(p))) => unsupported = p,
            Ok(Err(e)) => return Err(RequestError::Open(e)),
            Err(_) => return Err(RequestError::Timeout("opening the stream")),
        }
    }
    Err(RequestError::Open(
        libp2p_stream::OpenStreamError::UnsupportedProtocol(unsupported),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly
mod tests {
    use super::*;
    use crate::block_builder::{BlockSpec, L1Info, build_block};
    use crate::chain_config::load_chain;
    use crate::wire::Transactions;
    use crate::wire::block_hash::compute_block_hash;
    use crate::wire::canonical::tests::zero_offset_form;
    use crate::wire::reqresp::{encode_success, response_version_for};
    use crate::wire::ssz::encode_envelope;
    use alloy_primitives::B256;

    #[test]
    fn a_canonical_body_is_kept_and_a_non_canonical_one_is_not() {
        let chain = load_chain("devnet").unwrap();
        let number = 9;
        let spec = BlockSpec {
            parent_hash: B256::repeat_byte(2),
            number,
            timestamp: chain.timestamp_for_block(number).unwrap(),
            target_tx_bytes: 500,
            l1: L1Info::default(),
        };
        let envelope = build_block(&chain, &spec);
        let version = chain.block_version_at(spec.timestamp);
        let body = encode_envelope(version, &envelope).unwrap();
        let response = encode_success(response_version_for(version), &body);
        let fetched = check_response(&chain, number, &response).unwrap();
        assert_eq!(fetched.envelope, envelope);
        let ssz = fetched.ssz.unwrap();
        assert_eq!((ssz.version(), ssz.bytes().as_ref()), (version, &body[..]));

        // An empty block spelled with op-node's zero-offset quirk: accepted, the body not kept.
        let mut empty = envelope;
        empty.payload.transactions = Transactions::default();
        empty.payload.block_hash = compute_block_hash(&empty);
        let body = zero_offset_form(version, &encode_envelope(version, &empty).unwrap(), b"junk");
        let response = encode_success(response_version_for(version), &body);
        let fetched = check_response(&chain, number, &response).unwrap();
        assert_eq!(fetched.envelope, empty);
        assert!(fetched.ssz.is_none());
    }
}
