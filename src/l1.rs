//! The unsafe-block signer from L1 (`--l1`, spec §2.5, project decision 4): the chain's
//! `SystemConfig` keeps it in storage slot `keccak256("systemconfig.unsafeblocksigner")`. Read
//! at start (up to [`START_TRIES`] tries, [`START_RETRY`] apart, as op-node), then every
//! `--l1.runtime-config-reload-interval` (10 min). A change rotates the validator's signer set:
//! the previous signer stays accepted for op-node's 3 h grace, ended early by the first block
//! from the new one; the zero address unsets the signer (blocks are then IGNOREd, as op-node).
//!
//! op-node reads the slot at the L1 block of its unsafe head minus its confirmation depth; this
//! node derives nothing from L1, so it reads at `latest`. A rotation therefore takes effect as
//! soon as it is in an L1 block (a reorged-out rotation is undone at the next reload).
//!
//! The node builds one [`SignerSource`] (one HTTP client and its connection pool) and shares it:
//! the signer reload above, and a sequencer's [`OriginTracker`] reading L1's latest block.

use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::{Address, B256, b256};
use jsonrpsee::core::client::{ClientT, Error as RpcClientError};
use jsonrpsee::rpc_params;
use jsonrpsee_http_client::{HttpClient, HttpClientBuilder};
use tokio_util::sync::CancellationToken;

use crate::clock::unix_now;
use crate::validate::{BlockValidator, DEFAULT_SIGNER_GRACE_SECS};

/// `keccak256("systemconfig.unsafeblocksigner")`.
pub const UNSAFE_BLOCK_SIGNER_SLOT: B256 =
    b256!("65a7ed542fb37fe237fdfbdd70b31598523fe5b32879e307bae27a0bd9581c08");
/// op-node `--l1.runtime-config-reload-interval`.
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(10 * 60);
/// Tries at start (op-node: 5).
pub const START_TRIES: u32 = 5;
/// Between start tries (op-node: 10 s).
pub const START_RETRY: Duration = Duration::from_secs(10);
/// Deadline of one L1 call.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// `--l1` settings.
#[derive(Debug, Clone)]
pub struct L1Config {
    /// The L1 RPC (http://…).
    pub url: String,
    /// The chain's SystemConfig contract.
    pub system_config: Address,
    /// How often the signer is read again.
    pub reload_interval: Duration,
    /// Between start tries.
    pub start_retry: Duration,
}

/// Why the L1 signer could not be read.
#[derive(Debug, thiserror::Error)]
#[error("L1 {url}: {source}")]
pub struct L1Error {
    url: String,
    source: RpcClientError,
}

/// Reads the signer from L1.
#[derive(Debug, Clone)]
pub struct SignerSource {
    client: HttpClient,
    config: L1Config,
}

impl SignerSource {
    /// A source reading `config.system_config` through `config.url`.
    pub fn new(config: L1Config) -> Result<Self, L1Error> {
        let client = HttpClientBuilder::default()
            .request_timeout(CALL_TIMEOUT)
            .build(&config.url)
            .map_err(|source| L1Error {
                url: config.url.clone(),
                source,
            })?;
        Ok(Self { client, config })
    }

    /// The signer in the SystemConfig at L1's latest block.
    pub async fn read(&self) -> Result<Address, L1Error> {
        let word: B256 = self
            .client
            .request(
                "eth_getStorageAt",
                rpc_params![
                    self.config.system_config,
                    UNSAFE_BLOCK_SIGNER_SLOT,
                    "latest"
                ],
            )
            .await
            .map_err(|e| self.error(e))?;
        // An address is stored right-aligned in its 32-byte slot.
        Ok(Address::from_word(word))
    }

    /// Loads the signer into `validator` (up to [`START_TRIES`] tries), then keeps it current
    /// every reload interval until `shutdown`. Returns after the start tries whatever happened
    /// (the caller decides whether a failed start is fatal) with the reload task spawned.
    pub async fn start(
        self: Arc<Self>,
        validator: Arc<BlockValidator>,
        shutdown: CancellationToken,
    ) -> Result<Address, L1Error> {
        let mut attempt = 1;
        let result = loop {
            match self.read().await {
                Ok(signer) => break Ok(signer),
                Err(e) => {
                    tracing::warn!(attempt, error = %e, "cannot read the unsafe block signer from L1");
                    if attempt >= START_TRIES {
                        break Err(e);
                    }
                    attempt += 1;
                    tokio::time::sleep(self.config.start_retry).await;
                }
            }
        };
        if let Ok(signer) = result {
            apply(&validator, signer);
        }
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(self.config.reload_interval);
            ticker.tick().await;
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = ticker.tick() => {}
                }
                match self.read().await {
                    Ok(signer) => apply(&validator, signer),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot reload the unsafe block signer; keeping the current one")
                    }
                }
            }
        });
        result
    }
}

/// An L1 block header as the sequencer needs it for the L1-info deposit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct L1Block {
    /// Number.
    #[serde(with = "alloy_serde::quantity")]
    pub number: u64,
    /// Hash.
    pub hash: B256,
    /// Timestamp.
    #[serde(with = "alloy_serde::quantity")]
    pub timestamp: u64,
    /// EIP-1559 base fee.
    #[serde(default)]
    pub base_fee_per_gas: Option<alloy_primitives::U256>,
    /// The randao of the block (`mixHash`).
    #[serde(default)]
    pub mix_hash: Option<B256>,
}

impl SignerSource {
    /// L1's latest block (`eth_getBlockByNumber("latest", false)`).
    pub async fn latest_block(&self) -> Result<L1Block, L1Error> {
        self.client
            .request("eth_getBlockByNumber", rpc_params!["latest", false])
            .await
            .map_err(|e| self.error(e))
    }

    fn error(&self, source: RpcClientError) -> L1Error {
        L1Error {
            url: self.config.url.clone(),
            source,
        }
    }
}

/// The sequencer's L1 origin, followed from `--l1`: the latest L1 block no newer than the L2
/// block being built (an L2 block may not precede its origin), its sequence number counting the
/// L2 blocks built on the same origin. When L1 cannot be read, the previous origin is kept (the
/// sequence number goes on), as op-node's sequencer does while its L1 view is stale.
#[derive(Debug)]
pub struct OriginTracker {
    source: Arc<SignerSource>,
    current: Option<(L1Block, u64)>,
}

impl OriginTracker {
    /// A tracker reading from `source` (shared with the signer's reload: one client, one
    /// connection pool).
    pub fn new(source: Arc<SignerSource>) -> Self {
        Self {
            source,
            current: None,
        }
    }

    /// The origin and sequence number for an L2 block at `l2_timestamp` (`None` until L1 has
    /// been read once).
    pub async fn next(&mut self, l2_timestamp: u64) -> Option<(L1Block, u64)> {
        match self.source.latest_block().await {
            Ok(latest) if latest.timestamp <= l2_timestamp => {
                let next = match self.current {
                    Some((block, seq)) if block.hash == latest.hash => (block, seq + 1),
                    _ => (latest, 0),
                };
                self.current = Some(next);
            }
            Ok(_) => {
                // L1 is ahead of this L2 block's time: keep the previous origin.
                self.current = self.current.map(|(b, seq)| (b, seq + 1));
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read L1; keeping the previous origin");
                self.current = self.current.map(|(b, seq)| (b, seq + 1));
            }
        }
        self.current
    }
}

fn apply(validator: &BlockValidator, signer: Address) {
    let before: Vec<Address> = validator.signers().current().collect();
    validator.rotate_signer(signer, unix_now(), DEFAULT_SIGNER_GRACE_SECS);
    if !before.contains(&signer) {
        tracing::info!(%signer, previous = ?before, "unsafe block signer from L1");
    }
}
