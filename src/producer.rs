//! The embedded block producer of a sequencer without an execution engine: builds a valid block
//! on top of its last one (L1-info deposit, optional fillers), signs it with the sequencer key,
//! checks it with the node's own validator (which also marks it seen, so echoes are IGNOREd),
//! publishes it on its fork's topic, and hands it to the store like an accepted gossip block.
//!
//! Two schedules: [`Schedule::ChainTime`] builds block n at `genesis.l2_time + n × block_time`
//! (what `op-gossip node` runs, so peers with the same rollup.json agree on timestamps), and
//! [`Schedule::OnRequest`] builds a requested number of blocks at a requested interval with the
//! wall clock as timestamp (the devnet and tests drive it).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use alloy_primitives::{B256, keccak256};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::block_builder::{BlockSpec, L1Info, build_block};
use crate::chain::ChainSpec;
use crate::clock::unix_now;
use crate::events::NodeEvent;
use crate::p2p::NetworkHandle;
use crate::store::writer::{BlockSource, StoreOp, StoreRequest};
use crate::store::{BlockRef, StoredBlock};
use crate::validate::BlockValidator;
use crate::wire::envelope::encode_signed;
use crate::wire::signature::BlockSigner;

/// When blocks are built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Block n at `genesis.l2_time + (n − genesis.number) × block_time`.
    ChainTime,
    /// Only when asked through [`ProduceRequest`].
    OnRequest,
}

/// Sequencer settings.
#[derive(Debug, Clone)]
pub struct SequencerConfig {
    /// The unsafe-block signing key (`--p2p.sequencer.key`).
    pub signer: BlockSigner,
    /// When to build.
    pub schedule: Schedule,
    /// Transactions per block in bytes (filler transactions after the deposit); 0 = deposit only.
    pub target_tx_bytes: usize,
}

/// A request to build `count` blocks, one every `interval`.
#[derive(Debug)]
pub struct ProduceRequest {
    /// How many blocks.
    pub count: u64,
    /// Time between blocks.
    pub interval: Duration,
    /// Transaction bytes per block (overrides the configured size).
    pub target_tx_bytes: usize,
    /// Answered when the last block is published.
    pub done: oneshot::Sender<Result<(), String>>,
}

/// Blocks older than this when their slot comes are not built (peers would reject them as older
/// than op-node's 60 s window); the producer jumps to the current slot instead.
const STALE_SLOT_SECS: u64 = 30;

pub(crate) struct Producer {
    pub chain: Arc<ChainSpec>,
    pub config: SequencerConfig,
    pub validator: Arc<BlockValidator>,
    pub network: NetworkHandle,
    pub store_tx: mpsc::Sender<StoreOp>,
    pub events: broadcast::Sender<NodeEvent>,
    pub requests: mpsc::Receiver<ProduceRequest>,
    pub shutdown: CancellationToken,
    /// The block the next one builds on.
    pub last: BlockRef,
    /// With `--l2`, the engine builds the blocks (else the embedded builder does).
    pub engine: Option<crate::engine::Attached>,
    /// With `--l1`, the L1 origin of each block follows L1 (else a deterministic devnet origin).
    pub l1: Option<crate::l1::OriginTracker>,
}

impl Producer {
    pub async fn run(mut self) {
        match self.config.schedule {
            Schedule::ChainTime => self.run_chain_time().await,
            Schedule::OnRequest => self.run_on_request().await,
        }
    }

    async fn run_chain_time(&mut self) {
        loop {
            let now = unix_now();
            let mut number = self.last.number.saturating_add(1);
            let slot = self.chain.timestamp_for_block(number).unwrap_or(now);
            if slot.saturating_add(STALE_SLOT_SECS) < now {
                number = self.chain.target_block_number(now).saturating_add(1);
                tracing::warn!(
                    from = self.last.number,
                    to = number,
                    "sequencer is behind the chain clock; skipping to the current slot"
                );
            }
            let timestamp = self.chain.timestamp_for_block(number).unwrap_or(now);
            let wait = Duration::from_secs(timestamp.saturating_sub(now));
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            let target = self.config.target_tx_bytes;
            if let Err(e) = self.produce_one(number, timestamp, target).await {
                tracing::error!(number, error = %e, "failed to produce block");
            }
        }
    }

    async fn run_on_request(&mut self) {
        loop {
            let request = tokio::select! {
                () = self.shutdown.cancelled() => return,
                r = self.requests.recv() => match r { Some(r) => r, None => return },
            };
            let mut ticker = tokio::time::interval(request.interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut result = Ok(());
            for _ in 0..request.count {
                tokio::select! {
                    () = self.shutdown.cancelled() => return,
                    _ = ticker.tick() => {}
                }
                let number = self.last.number.saturating_add(1);
                if let Err(e) = self
                    .produce_one(number, unix_now(), request.target_tx_bytes)
                    .await
                {
                    result = Err(e);
                    break;
                }
            }
            let _ = request.done.send(result);
        }
    }

    async fn produce_one(
        &mut self,
        number: u64,
        timestamp: u64,
        target_tx_bytes: usize,
    ) -> Result<(), String> {
        let followed = match &mut self.l1 {
            Some(tracker) => tracker.next(timestamp).await,
            None => None,
        };
        let l1 = match followed {
            Some((block, sequence_number)) => L1Info {
                number: block.number,
                timestamp: block.timestamp,
                hash: block.hash,
                base_fee: block.base_fee_per_gas.unwrap_or_default(),
                // Not read from L1 yet; the deposit carries the minimum blob base fee.
                blob_base_fee: alloy_primitives::U256::from(1u64),
                sequence_number,
                ..L1Info::default()
            },
            None => devnet_l1_origin(timestamp),
        };
        let built = match &self.engine {
            Some(engine) => Some(
                crate::engine::builder::build(
                    &engine.client,
                    &self.chain,
                    self.last,
                    engine.safe,
                    engine.finalized,
                    &l1,
                    timestamp,
                )
                .await
                .map_err(|e| format!("engine build: {e}"))?,
            ),
            None => None,
        };
        let spec = BlockSpec {
            parent_hash: self.last.hash,
            number,
            timestamp,
            target_tx_bytes,
            l1,
        };
        let chain = self.chain.clone();
        let signer = self.config.signer.clone();
        let validator = self.validator.clone();
        let (version, envelope, data) = tokio::task::spawn_blocking(move || {
            let (version, envelope) = match built {
                Some(built) => built,
                None => (
                    chain.block_version_at(timestamp),
                    build_block(&chain, &spec),
                ),
            };
            let data = encode_signed(chain.chain_id, version, &envelope, &signer)
                .map_err(|e| e.to_string())?;
            // Our own validator must accept what we publish (op-node validates its own blocks too).
            validator
                .validate(version, &data, unix_now())
                .map_err(|e| format!("own block rejected: {e}"))?;
            Ok::<_, String>((version, envelope, data))
        })
        .await
        .map_err(|e| e.to_string())??;
        let id = BlockRef {
            number: envelope.payload.block_number,
            hash: envelope.payload.block_hash,
        };
        let published_at = SystemTime::now();
        if let Err(e) = self.network.publish(version, data).await {
            // No peers yet is normal at start-up; the block is still ours and is stored.
            tracing::warn!(number, error = %e, "publish failed");
        }
        if let Some(engine) = &self.engine {
            // The sequencer cycle ends with the engine on the new block (spec order: sign,
            // publish, newPayload, forkchoiceUpdated).
            crate::engine::builder::insert(
                &engine.client,
                version,
                &envelope,
                engine.safe,
                engine.finalized,
            )
            .await
            .map_err(|e| format!("engine insert: {e}"))?;
        }
        let _ = self.events.send(NodeEvent::Published {
            id,
            at: published_at,
        });
        tracing::debug!(number, hash = %id.hash, "published block");
        self.last = id;
        self.store_tx
            .send(StoreOp::Insert(Box::new(StoreRequest {
                block: StoredBlock { version, envelope },
                source: BlockSource::Local,
                at: published_at,
            })))
            .await
            .map_err(|_| "store closed".to_owned())
    }
}

/// A deterministic L1 origin for engine-less production: one L1 block per 12 s of L2 time.
fn devnet_l1_origin(timestamp: u64) -> L1Info {
    let number = timestamp / 12;
    L1Info {
        number,
        timestamp: number * 12,
        hash: keccak256(number.to_be_bytes()),
        base_fee: alloy_primitives::U256::from(1_000_000_000u64),
        blob_base_fee: alloy_primitives::U256::from(1u64),
        batcher_hash: B256::ZERO,
        sequence_number: timestamp % 12,
        ..L1Info::default()
    }
}
