//! The execution engine (op-reth, op-geth) behind the Engine API: where accepted blocks go when
//! `--l2` is given, and where a sequencer's blocks are built.
//!
//! ```text
//!  start: attach ──wait (backoff), genesis + chain id check──► engine
//!  store writer ──► insertion driver (ordered, the engine head's only owner) ──► EngineClient ──HTTP+JWT──► engine
//!                        │ HeadState (watch) ▲ re-read requests
//!                        ▼                   │
//!  producer ──forkchoiceUpdated+attributes / getPayload (on the driver's head)──► EngineClient
//! ```
//!
//! Every block reaches the engine through the insertion driver, the sequencer's own too: the
//! producer only builds ([`builder`]) on the head the driver publishes ([`head`]), and stores
//! what it built like any accepted block. [`methods`] picks the method version per fork,
//! [`json`] converts payloads between our wire type and the Engine API's JSON, [`client`] sends
//! them and records [`metrics`]; [`retry`] paces every retry; [`startup`] checks the engine at
//! start.

pub mod builder;
pub mod client;
pub mod collector;
pub mod driver;
pub mod head;
pub mod json;
pub mod methods;
pub mod metrics;
pub mod retry;
pub mod startup;

pub use alloy_rpc_types_engine::JwtSecret;
pub use client::{EngineClient, EngineError, EngineHead};

/// `--l2`, `--l2.jwt-secret`.
#[derive(Clone)]
pub struct EngineConfig {
    /// The engine's authenticated RPC (http://…).
    pub url: String,
    /// The shared secret.
    pub jwt_secret: JwtSecret,
    /// Deadline of each call.
    pub timeout: std::time::Duration,
    /// Pauses between retries of failed calls (start-up wait, insertion, sequencer builds).
    pub retry: retry::RetryConfig,
}

impl std::fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret stays out of logs.
        f.debug_struct("EngineConfig")
            .field("url", &self.url)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// What the node learns from the engine at start.
#[derive(Debug, Clone)]
pub struct Attached {
    /// The client.
    pub client: EngineClient,
    /// The engine's head (`None` when it could not be reached: the driver keeps trying).
    pub head: Option<crate::store::BlockRef>,
    /// The head's timestamp (0 when unknown).
    pub head_timestamp: u64,
    /// Its safe block hash (zero when unknown).
    pub safe: alloy_primitives::B256,
    /// Its finalized block hash (zero when unknown).
    pub finalized: alloy_primitives::B256,
}

/// Connects to the engine: waits until it answers and checks that its genesis and chain id are
/// `chain`'s ([`startup`]), exchanges capabilities (warning about methods it lacks) and reads its
/// latest, safe and finalized blocks. Every call is recorded in `metrics`.
pub async fn attach(
    config: &EngineConfig,
    chain: &crate::chain::ChainSpec,
    metrics: metrics::EngineMetrics,
) -> Result<Attached, startup::StartupError> {
    let client = EngineClient::new(&config.url, config.jwt_secret, config.timeout)
        .map_err(|source| startup::StartupError::Engine {
            url: config.url.clone(),
            source,
        })?
        .with_metrics(metrics);
    startup::wait_and_check(&client, chain, config.retry).await?;
    match client.exchange_capabilities().await {
        Ok(theirs) => {
            let missing: Vec<&str> = methods::CAPABILITIES
                .iter()
                .copied()
                .filter(|m| !theirs.iter().any(|t| t == m))
                .collect();
            if !missing.is_empty() {
                tracing::warn!(
                    ?missing,
                    "the engine lacks Engine API methods this node may call"
                );
            }
        }
        Err(e) => tracing::warn!(url = %config.url, error = %e, "engine capabilities unknown"),
    }
    let mut head_timestamp = 0;
    let head = match client.latest_block().await {
        Ok(h) => {
            head_timestamp = h.timestamp;
            Some(crate::store::BlockRef {
                number: h.number,
                hash: h.hash,
            })
        }
        Err(e) => {
            tracing::warn!(url = %config.url, error = %e, "engine unreachable after the start-up check; the driver retries");
            None
        }
    };
    let tag = |t| {
        let client = client.clone();
        async move {
            client
                .block_by_tag(t)
                .await
                .map(|b| b.hash)
                .unwrap_or_default()
        }
    };
    let (safe, finalized) = if head.is_some() {
        (tag("safe").await, tag("finalized").await)
    } else {
        Default::default()
    };
    Ok(Attached {
        client,
        head,
        head_timestamp,
        safe,
        finalized,
    })
}

/// Reads a JWT secret file in op-node's format: 32 bytes as hex, with or without `0x`,
/// surrounding whitespace ignored.
pub fn read_jwt_secret(path: &std::path::Path) -> Result<JwtSecret, JwtSecretError> {
    JwtSecret::from_file(path).map_err(|source| JwtSecretError {
        path: path.to_owned(),
        source,
    })
}

/// Why a JWT secret file could not be used.
#[derive(Debug, thiserror::Error)]
#[error("JWT secret {}: {source}", path.display())]
pub struct JwtSecretError {
    /// The file.
    pub path: std::path::PathBuf,
    /// What was wrong with it (unreadable, not 32 bytes of hex).
    pub source: alloy_rpc_types_engine::JwtError,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_secret_files_in_op_node_format() {
        let dir = tempfile::tempdir().unwrap();
        let hex = "2b5bd2bc1b4e1bd3ef8e41dd3bea9cd1c06d26b1dbb2a7f1c7d9bdbe0d4f8a11";
        for text in [hex.to_owned(), format!("0x{hex}\n"), format!("  {hex}  ")] {
            let path = dir.path().join("jwt.hex");
            std::fs::write(&path, text).unwrap();
            assert_eq!(
                read_jwt_secret(&path).unwrap(),
                JwtSecret::from_hex(hex).unwrap()
            );
        }
        for bad in ["", "0x1234", "zz"] {
            let path = dir.path().join("bad.hex");
            std::fs::write(&path, bad).unwrap();
            assert!(read_jwt_secret(&path).is_err(), "{bad:?}");
        }
        assert!(read_jwt_secret(&dir.path().join("missing")).is_err());
    }
}
