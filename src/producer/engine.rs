//! The sequencer's side of the engine: it builds only on the head the insertion driver (the
//! engine head's one owner, [`crate::engine::head`]) says the engine has, and that head must be
//! the sequencer's own tip. When it is not (the driver is still inserting the last block, or the
//! engine restarted without its newest blocks and the driver is re-inserting them from the store)
//! the producer waits, asking the driver to re-read the engine when the wait drags on. It never
//! inserts anything itself: its blocks reach the engine through the store and the driver, once.

use alloy_primitives::B256;
use tokio_util::sync::CancellationToken;

use crate::block_builder::L1Info;
use crate::chain::ChainSpec;
use crate::engine::EngineClient;
use crate::engine::builder::{self, BuildError};
use crate::engine::head::HeadFollower;
use crate::engine::retry::RetryConfig;
use crate::store::BlockRef;
use crate::wire::BlockVersion;
use crate::wire::payload::ExecutionPayloadEnvelope;

/// A sequencer's engine.
#[derive(Debug, Clone)]
pub struct SequencerEngine {
    /// The client (builds only).
    pub client: EngineClient,
    /// The driver's view of the engine's head.
    pub head: HeadFollower,
    /// Safe block hash as the engine reported it at start (zero if unknown).
    pub safe: B256,
    /// Finalized block hash.
    pub finalized: B256,
    /// Pauses between retries, and how long to wait for the driver before asking it to re-read.
    pub retry: RetryConfig,
}

impl SequencerEngine {
    /// Waits until the engine's head is `tip`. Asks the driver to re-read the engine after
    /// each wait that ends without it (from four minimum pauses up to the longest pause), and
    /// logs once when the wait starts to drag and once when it ends. False on shutdown.
    pub async fn wait_for_tip(&mut self, tip: BlockRef, shutdown: &CancellationToken) -> bool {
        let mut patience = self.retry.min * 4;
        let mut waited = false;
        loop {
            if self.head.head() == Some(tip) {
                if waited {
                    tracing::info!(number = tip.number, hash = %tip.hash, url = self.client.url(), "the engine has the sequencer's tip again; building on it");
                }
                return true;
            }
            let reached = tokio::select! {
                () = shutdown.cancelled() => return false,
                reached = self.head.wait_for(tip, patience) => reached,
            };
            if reached {
                continue;
            }
            if !waited {
                let engine = self.head.head();
                tracing::warn!(
                    tip = tip.number,
                    url = self.client.url(),
                    engine = ?engine.map(|h| h.number),
                    engine_hash = ?engine.map(|h| h.hash),
                    "the engine is not at the sequencer's tip: re-reading its head and re-inserting stored blocks before building (logged once)"
                );
                waited = true;
            }
            self.head.request_resync();
            patience = (patience * 2).min(self.retry.max.max(self.retry.min));
        }
    }

    /// Has the engine build the block at `timestamp` on `tip` (which [`Self::wait_for_tip`]
    /// found to be the engine's head). A failure asks the driver to re-read the head.
    pub async fn build(
        &self,
        chain: &ChainSpec,
        tip: BlockRef,
        l1: &L1Info,
        timestamp: u64,
    ) -> Result<(BlockVersion, ExecutionPayloadEnvelope), BuildError> {
        let built = builder::build(
            &self.client,
            chain,
            tip,
            self.safe,
            self.finalized,
            l1,
            timestamp,
        )
        .await;
        if built.is_err() {
            // SYNCING, an unknown payload, an engine that was down: its head may not be ours.
            self.head.request_resync();
        }
        built
    }

    /// Counts a failed build in the engine metrics.
    pub fn count_failure(&self, kind: &'static str) {
        if let Some(metrics) = self.client.metrics() {
            metrics.build_failed(kind);
        }
    }
}
