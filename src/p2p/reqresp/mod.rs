//! `payload_by_number` request/response over libp2p streams: the server that answers from the
//! store, and the client primitive that asks one peer for one block.
//!
//! Streams are opened through a `libp2p_stream::Control` and accepted through [`inbound`] (which,
//! unlike libp2p-stream, does not drop streams that arrive in a burst), outside the swarm task, so
//! serving a block never touches the event loop. One request per stream (op-node's framing,
//! [`crate::wire::reqresp`]). Reference: `shared/spec/op-p2p.md` §6.

pub mod client;
pub mod inbound;
pub mod limits;
pub mod metrics;
pub mod server;

use std::time::Duration;

use libp2p::StreamProtocol;

/// op-node `streamTimeout`: opening a stream, negotiation included.
pub const STREAM_OPEN_TIMEOUT: Duration = Duration::from_secs(5);
/// op-node `serverReadRequestTimeout` / `clientWriteRequestTimeout`.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// op-node `serverWriteChunkTimeout` / `clientReadResponsetimeout`.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// op-node `maxThrottleDelay`: longest wait for rate-limit tokens before answering code 3.
pub const MAX_THROTTLE_DELAY: Duration = Duration::from_secs(20);

/// Both protocol ids for `chain_id`: op-node's (no trailing slash) first, then the spec's.
pub fn protocols(chain_id: u64) -> [StreamProtocol; 2] {
    [
        StreamProtocol::try_from_owned(crate::wire::reqresp::protocol_id(chain_id))
            .unwrap_or(StreamProtocol::new("/opstack/req/payload_by_number/0/0")),
        StreamProtocol::try_from_owned(crate::wire::reqresp::protocol_id_spec_form(chain_id))
            .unwrap_or(StreamProtocol::new("/opstack/req/payload_by_number/0/0/")),
    ]
}
