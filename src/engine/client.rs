//! The Engine API client: JSON-RPC over HTTP to the execution client (`--l2`), each request with
//! a fresh HS256 JWT (`--l2.jwt-secret`; the engine accepts `iat` within ±60 s, so tokens are
//! never reused), a deadline per call, and the method version each fork needs
//! ([`super::methods`]). Errors are typed ([`EngineError`]) so the insertion driver can tell an
//! engine that is down (retry with backoff) from one that refused the call (never retry).

use std::time::Duration;

use alloy_primitives::B256;
use alloy_rpc_types_engine::{
    Claims, ForkchoiceState, ForkchoiceUpdated, JwtSecret, PayloadId, PayloadStatus,
};
use http::HeaderValue;
use http::header::AUTHORIZATION;
use jsonrpsee::core::client::{ClientT, Error as RpcClientError};
use jsonrpsee::core::params::ArrayParams;
use jsonrpsee_http_client::{HttpClient, HttpClientBuilder, HttpRequest};
use serde::Deserialize;
use serde_json::Value;
use tower_http::set_header::{MakeHeaderValue, SetRequestHeaderLayer};

use super::json::{
    OpPayloadAttributes, PayloadJsonError, new_payload_params, payload_from_get_payload,
};
use super::methods;
use super::metrics::EngineMetrics;
use crate::wire::BlockVersion;
use crate::wire::payload::ExecutionPayloadEnvelope;

/// Deadline of one call (op-node waits up to 10 s for newPayload and forkchoiceUpdated).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response accepted: a payload is at most 10 MiB in gossip; JSON hex doubles it.
pub const MAX_RESPONSE_BYTES: u32 = 32 * 1024 * 1024;

/// Why an Engine API call failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No answer: connection refused, reset, or the deadline passed. Retry later.
    #[error("engine unreachable: {0}")]
    Unreachable(#[source] RpcClientError),
    /// The engine refused our token (HTTP 401/403): the secret is wrong. Not retried blindly.
    #[error("engine refused the JWT: {0}")]
    Unauthorized(#[source] RpcClientError),
    /// No client can be built for this URL (not an http(s) URL).
    #[error("engine URL {url}: {source}")]
    Url {
        /// The URL as given.
        url: String,
        /// Why the HTTP client refused it.
        source: RpcClientError,
    },
    /// A JSON-RPC error from the engine (e.g. -38005 unsupported fork).
    #[error("engine error {code}: {message}")]
    Rpc {
        /// The JSON-RPC error code.
        code: i32,
        /// Its message.
        message: String,
    },
    /// The answer does not have the expected shape.
    #[error("engine answer: {0}")]
    Decode(#[from] serde_json::Error),
    /// What we were asked to send cannot be sent (a payload missing a field of its version).
    #[error(transparent)]
    Payload(#[from] PayloadJsonError),
}

impl EngineError {
    /// Whether retrying later may help (the engine was not reached).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unreachable(_))
    }

    fn from_client(error: RpcClientError) -> Self {
        match error {
            RpcClientError::Call(e) => Self::Rpc {
                code: e.code(),
                message: e.message().to_owned(),
            },
            RpcClientError::Transport(e) => {
                // The transport error only names the HTTP status in its text.
                let text = e.to_string();
                if text.contains("401") || text.contains("403") {
                    Self::Unauthorized(RpcClientError::Transport(e))
                } else {
                    Self::Unreachable(RpcClientError::Transport(e))
                }
            }
            RpcClientError::ParseError(e) => Self::Decode(e),
            other => Self::Unreachable(other),
        }
    }
}

/// Makes the `Authorization: Bearer <jwt>` header, fresh for every request.
#[derive(Clone)]
pub struct JwtHeader(JwtSecret);

impl MakeHeaderValue<HttpRequest> for JwtHeader {
    fn make_header_value(&mut self, _: &HttpRequest) -> Option<HeaderValue> {
        let token = self.0.encode(&Claims::with_current_timestamp()).ok()?;
        HeaderValue::from_str(&format!("Bearer {token}")).ok()
    }
}

type Transport =
    tower_http::set_header::SetRequestHeader<jsonrpsee_http_client::HttpBackend, JwtHeader>;

/// The client. Cheap to clone.
#[derive(Clone)]
pub struct EngineClient {
    http:
        HttpClient<jsonrpsee_http_client::RpcLogger<jsonrpsee_http_client::RpcService<Transport>>>,
    url: String,
    /// Where each call is counted and timed (none in tools that only read the engine once).
    metrics: Option<EngineMetrics>,
}

impl std::fmt::Debug for EngineClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineClient")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// The engine's latest block (`eth_getBlockByNumber("latest")`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct EngineHead {
    /// Number.
    #[serde(with = "alloy_serde::quantity")]
    pub number: u64,
    /// Hash.
    pub hash: B256,
    /// Timestamp.
    #[serde(with = "alloy_serde::quantity")]
    pub timestamp: u64,
}

impl EngineClient {
    /// A client of the engine at `url` (http://…) authenticating with `secret`.
    pub fn new(url: &str, secret: JwtSecret, timeout: Duration) -> Result<Self, EngineError> {
        let middleware = tower::ServiceBuilder::new().layer(SetRequestHeaderLayer::overriding(
            AUTHORIZATION,
            JwtHeader(secret),
        ));
        let http = HttpClientBuilder::default()
            .set_http_middleware(middleware)
            .request_timeout(timeout)
            .max_response_size(MAX_RESPONSE_BYTES)
            .build(url)
            .map_err(|source| EngineError::Url {
                url: url.to_owned(),
                source,
            })?;
        Ok(Self {
            http,
            url: url.to_owned(),
            metrics: None,
        })
    }

    /// The same client, counting and timing every call in `metrics`.
    pub fn with_metrics(mut self, metrics: EngineMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The metrics this client records into, if any.
    pub fn metrics(&self) -> Option<&EngineMetrics> {
        self.metrics.as_ref()
    }

    /// The engine's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    async fn call(&self, method: &'static str, params: Value) -> Result<Value, EngineError> {
        let mut array = ArrayParams::new();
        if let Value::Array(items) = params {
            for item in items {
                array.insert(item)?;
            }
        }
        let started = std::time::Instant::now();
        let result = self
            .http
            .request::<Value, _>(method, array)
            .await
            .map_err(EngineError::from_client);
        if let Some(metrics) = &self.metrics {
            metrics.call(method, started.elapsed(), result.as_ref().map(|_| ()));
        }
        result
    }

    fn decode<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, EngineError> {
        Ok(serde_json::from_value(value)?)
    }

    /// `engine_exchangeCapabilities`: what the engine supports of what we may call.
    pub async fn exchange_capabilities(&self) -> Result<Vec<String>, EngineError> {
        let ours: Vec<&str> = methods::CAPABILITIES.to_vec();
        Self::decode(
            self.call("engine_exchangeCapabilities", serde_json::json!([ours]))
                .await?,
        )
    }

    /// `engine_newPayload*` for `envelope`, a block of `version`.
    pub async fn new_payload(
        &self,
        version: BlockVersion,
        envelope: &ExecutionPayloadEnvelope,
    ) -> Result<PayloadStatus, EngineError> {
        let params = new_payload_params(version, envelope)?;
        let method = methods::new_payload(version);
        let status: PayloadStatus = Self::decode(self.call(method, params).await?)?;
        if let Some(metrics) = &self.metrics {
            metrics.payload_status(method, &status.status);
        }
        Ok(status)
    }

    /// `engine_forkchoiceUpdated*` moving the head (and, with `attributes`, starting a build).
    pub async fn forkchoice_updated(
        &self,
        version: BlockVersion,
        state: ForkchoiceState,
        attributes: Option<&OpPayloadAttributes>,
    ) -> Result<ForkchoiceUpdated, EngineError> {
        let params = serde_json::json!([state, attributes]);
        let method = methods::forkchoice_updated(version);
        let updated: ForkchoiceUpdated = Self::decode(self.call(method, params).await?)?;
        if let Some(metrics) = &self.metrics {
            metrics.payload_status(method, &updated.payload_status.status);
        }
        Ok(updated)
    }

    /// `engine_getPayload*`: the payload built for `id`, a block of `version`.
    pub async fn get_payload(
        &self,
        version: BlockVersion,
        id: PayloadId,
    ) -> Result<ExecutionPayloadEnvelope, EngineError> {
        let answer = self
            .call(methods::get_payload(version), serde_json::json!([id]))
            .await?;
        Ok(payload_from_get_payload(version, answer)?)
    }

    /// The engine's latest block (`eth_getBlockByNumber("latest", false)` on the same port, as
    /// op-node reads it on start).
    pub async fn latest_block(&self) -> Result<EngineHead, EngineError> {
        self.block_by_tag("latest").await
    }

    /// The engine's block for a tag (`latest`, `safe`, `finalized`).
    pub async fn block_by_tag(&self, tag: &str) -> Result<EngineHead, EngineError> {
        Self::decode(
            self.call("eth_getBlockByNumber", serde_json::json!([tag, false]))
                .await?,
        )
    }

    /// The engine's block `number` (`None`: the engine has no such block).
    pub async fn block_by_number(&self, number: u64) -> Result<Option<EngineHead>, EngineError> {
        let tag = format!("0x{number:x}");
        Self::decode(
            self.call("eth_getBlockByNumber", serde_json::json!([tag, false]))
                .await?,
        )
    }

    /// `eth_chainId` on the engine's authenticated port (op-reth and op-geth serve it there).
    /// `Ok(None)` when the engine does not serve the method.
    pub async fn chain_id(&self) -> Result<Option<u64>, EngineError> {
        match self.call("eth_chainId", serde_json::json!([])).await {
            Ok(value) => {
                let id: alloy_primitives::U64 = Self::decode(value)?;
                Ok(Some(id.to::<u64>()))
            }
            // -32601: method not found.
            Err(EngineError::Rpc { code: -32601, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
