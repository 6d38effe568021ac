//! What the engine path measures, registered by this concern itself into the node's registry
//! ([`crate::metrics::Metrics::register_op_node`] and `register_under("engine")`):
//!
//! ```text
//!  EngineClient::call ── every call ──► rpc_client_requests_total{method},
//!                                       rpc_client_request_duration_seconds{method},
//!                                       rpc_client_responses_total{method,error}
//!                    ── payload status ► op_gossip_engine_payload_status_total{method,status}
//!  insertion driver ── head moved/read ► refs_number{layer="l2",type="l2_unsafe"}
//!                   ── store − engine ─► unsafe_payloads_buffer_len
//!  producer ── failed build ───────────► sequencing_errors_total,
//!                                        op_gossip_engine_build_failures_total{kind}
//! ```
//!
//! The op-node names (under `op_node_default_`) are op-node's own (`op-service/metrics`
//! `RPCMetrics` and `RefMetrics`, op-node's `sequencing_errors` and `unsafe_payloads_buffer_len`,
//! which counts the unsafe payloads waiting to be inserted, as the store's blocks above the engine's
//! head are here), so op-node's dashboards read them. Labels are bounded: `method` is one of
//! [`METHODS`], `error` one of [`error_label`]'s fixed strings, `status` one of the four payload
//! statuses, `kind` one of [`BUILD_FAILURE_KINDS`].

use std::time::Duration;

use alloy_rpc_types_engine::PayloadStatusEnum;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::client::EngineError;
use super::methods::CAPABILITIES;
use crate::store::BlockRef;

type Labels1 = [(&'static str, &'static str); 1];
type Labels2 = [(&'static str, &'static str); 2];

/// Every method the client calls: the Engine API's ([`CAPABILITIES`]) and the `eth_` reads.
pub const METHODS: [&str; 11] = [
    CAPABILITIES[0],
    CAPABILITIES[1],
    CAPABILITIES[2],
    CAPABILITIES[3],
    CAPABILITIES[4],
    CAPABILITIES[5],
    CAPABILITIES[6],
    CAPABILITIES[7],
    "engine_exchangeCapabilities",
    "eth_getBlockByNumber",
    "eth_chainId",
];

/// Why a sequencer's build failed (the `kind` label and the producer's log states).
pub const BUILD_FAILURE_KINDS: [&str; 6] = [
    // No answer (connection refused, reset, deadline).
    "unreachable",
    // forkchoiceUpdated answered SYNCING or ACCEPTED with no payload id: the engine lacks the head.
    "syncing",
    // The engine declared the head or the built block INVALID.
    "invalid",
    // getPayload: the engine no longer knows the payload id (-38001).
    "unknown_payload",
    // Any other error answer, a malformed answer, or a refused token.
    "engine_error",
    // Our side: signing, our own validator, the store.
    "local",
];

fn duration_histogram() -> Histogram {
    Histogram::new(crate::metrics::GO_DEFAULT_BUCKETS)
}

/// The engine metrics. Cheap to clone (every field is shared).
#[derive(Debug, Clone)]
pub struct EngineMetrics {
    requests: Family<Labels1, Counter>,
    durations: Family<Labels1, Histogram, fn() -> Histogram>,
    responses: Family<Labels2, Counter>,
    payload_status: Family<Labels2, Counter>,
    refs_number: Family<Labels2, Gauge>,
    buffer_len: Gauge,
    sequencing_errors: Counter,
    build_failures: Family<Labels1, Counter>,
}

impl Default for EngineMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            durations: Family::new_with_constructor(duration_histogram),
            responses: Family::default(),
            payload_status: Family::default(),
            refs_number: Family::default(),
            buffer_len: Gauge::default(),
            sequencing_errors: Counter::default(),
            build_failures: Family::default(),
        }
    }
}

/// op-node's label for a call's outcome (`op-service/metrics` `RecordRPCClientResponse`):
/// `<nil>`, `rpc_<code>` for the Engine API's and JSON-RPC's own codes (any other code is
/// `rpc_other`, so an engine cannot grow the label set), `http_401` for a refused token,
/// `<unknown>` for the rest.
pub fn error_label(result: Result<(), &EngineError>) -> &'static str {
    match result {
        Ok(()) => "<nil>",
        Err(EngineError::Rpc { code, .. }) => match code {
            -32700 => "rpc_-32700",
            -32600 => "rpc_-32600",
            -32601 => "rpc_-32601",
            -32602 => "rpc_-32602",
            -32603 => "rpc_-32603",
            -32000 => "rpc_-32000",
            -38001 => "rpc_-38001",
            -38002 => "rpc_-38002",
            -38003 => "rpc_-38003",
            -38004 => "rpc_-38004",
            -38005 => "rpc_-38005",
            _ => "rpc_other",
        },
        Err(EngineError::Unauthorized(_)) => "http_401",
        Err(_) => "<unknown>",
    }
}

fn status_label(status: &PayloadStatusEnum) -> &'static str {
    match status {
        PayloadStatusEnum::Valid => "VALID",
        PayloadStatusEnum::Invalid { .. } => "INVALID",
        PayloadStatusEnum::Syncing => "SYNCING",
        PayloadStatusEnum::Accepted => "ACCEPTED",
    }
}

impl EngineMetrics {
    /// Registers the op-node metrics into `op_node` (the `op_node_default_` registry), with the
    /// known label sets at 0.
    pub fn register_op_node(&self, op_node: &mut Registry) {
        op_node.register(
            "rpc_client_requests",
            "Total RPC requests initiated by the node's RPC client (the engine's)",
            self.requests.clone(),
        );
        op_node.register(
            "rpc_client_request_duration_seconds",
            "Histogram of RPC client request durations",
            self.durations.clone(),
        );
        op_node.register(
            "rpc_client_responses",
            "Total RPC request responses received by the node's RPC client",
            self.responses.clone(),
        );
        op_node.register(
            "refs_number",
            "Gauge representing the different L1/L2 reference block numbers",
            self.refs_number.clone(),
        );
        op_node.register(
            "unsafe_payloads_buffer_len",
            "Number of buffered L2 unsafe payloads (stored, not yet inserted into the engine)",
            self.buffer_len.clone(),
        );
        op_node.register(
            "sequencing_errors",
            "Count of sequencing errors",
            self.sequencing_errors.clone(),
        );
        for method in METHODS {
            let _ = self.requests.get_or_create(&[("method", method)]);
        }
        let _ = self.unsafe_head_gauge();
    }

    /// Registers ours into `own` (the `op_gossip_engine_` registry).
    pub fn register_own(&self, own: &mut Registry) {
        own.register(
            "payload_status",
            "Engine answers carrying a payload status, by method and status",
            self.payload_status.clone(),
        );
        own.register(
            "build_failures",
            "Sequencer builds that failed, by kind",
            self.build_failures.clone(),
        );
        for kind in BUILD_FAILURE_KINDS {
            let _ = self.build_failures.get_or_create(&[("kind", kind)]);
        }
    }

    fn unsafe_head_gauge(&self) -> Gauge {
        self.refs_number
            .get_or_create(&[("layer", "l2"), ("type", "l2_unsafe")])
            .clone()
    }

    /// One call to `method` took `elapsed` and ended with `result`.
    pub fn call(&self, method: &'static str, elapsed: Duration, result: Result<(), &EngineError>) {
        let method = METHODS
            .iter()
            .copied()
            .find(|m| *m == method)
            .unwrap_or("other");
        self.requests.get_or_create(&[("method", method)]).inc();
        self.durations
            .get_or_create(&[("method", method)])
            .observe(elapsed.as_secs_f64());
        self.responses
            .get_or_create(&[("method", method), ("error", error_label(result))])
            .inc();
    }

    /// `method` answered with a payload status.
    pub fn payload_status(&self, method: &'static str, status: &PayloadStatusEnum) {
        let method = METHODS
            .iter()
            .copied()
            .find(|m| *m == method)
            .unwrap_or("other");
        self.payload_status
            .get_or_create(&[("method", method), ("status", status_label(status))])
            .inc();
    }

    /// The engine's head (as the insertion driver knows it) and how many stored blocks lie
    /// above it (`store_head`: the store's head number, if any).
    pub fn engine_head(&self, head: BlockRef, store_head: Option<u64>) {
        self.unsafe_head_gauge()
            .set(i64::try_from(head.number).unwrap_or(i64::MAX));
        let pending = store_head.map_or(0, |n| n.saturating_sub(head.number));
        self.buffer_len
            .set(i64::try_from(pending).unwrap_or(i64::MAX));
    }

    /// A sequencer build failed for `kind` (one of [`BUILD_FAILURE_KINDS`]).
    pub fn build_failed(&self, kind: &'static str) {
        self.sequencing_errors.inc();
        let kind = if BUILD_FAILURE_KINDS.contains(&kind) {
            kind
        } else {
            "local"
        };
        self.build_failures.get_or_create(&[("kind", kind)]).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_stay_in_their_fixed_sets() {
        let rpc = |code| EngineError::Rpc {
            code,
            message: String::new(),
        };
        assert_eq!(error_label(Ok(())), "<nil>");
        assert_eq!(error_label(Err(&rpc(-38002))), "rpc_-38002");
        assert_eq!(error_label(Err(&rpc(12345))), "rpc_other");
        assert_eq!(
            error_label(Err(&EngineError::Unauthorized(
                jsonrpsee::core::client::Error::Transport("401".into())
            ))),
            "http_401"
        );
        assert_eq!(
            error_label(Err(&EngineError::Unreachable(
                jsonrpsee::core::client::Error::RequestTimeout
            ))),
            "<unknown>"
        );
        let metrics = EngineMetrics::default();
        let mut op_node = Registry::default();
        let mut own = Registry::default();
        metrics.register_op_node(&mut op_node);
        metrics.register_own(&mut own);
        metrics.call("engine_newPayloadV4", Duration::from_millis(3), Ok(()));
        metrics.build_failed("syncing");
        metrics.build_failed("made up");
        metrics.engine_head(
            BlockRef {
                number: 7,
                hash: Default::default(),
            },
            Some(10),
        );
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &op_node).unwrap();
        assert!(text.contains("rpc_client_requests_total{method=\"engine_newPayloadV4\"} 1"));
        assert!(text.contains("refs_number{layer=\"l2\",type=\"l2_unsafe\"} 7"));
        assert!(text.contains("unsafe_payloads_buffer_len 3"));
        assert!(text.contains("sequencing_errors_total 2"));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &own).unwrap();
        assert!(
            text.contains("build_failures_total{kind=\"local\"} 1"),
            "{text}"
        );
    }
}
