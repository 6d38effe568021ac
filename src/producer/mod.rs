//! The embedded block producer of a sequencer: builds a block on top of its tip (with `--l2`, the
//! engine builds it, [`engine`]; without, the embedded builder: L1-info deposit, optional
//! fillers), signs it with the sequencer key, checks it with the node's own validator (which also
//! marks it seen, so echoes are IGNOREd), publishes it on its fork's topic, and hands it to the
//! store like an accepted gossip block. With an engine the store is also how the block reaches
//! the engine: the insertion driver inserts it, as it inserts every stored block, and the
//! producer builds the next one when the driver reports the engine at this block.
//!
//! Two schedules: [`Schedule::ChainTime`] (what `op-gossip node` runs) builds block n+1 with
//! block n's timestamp plus the block time, never before that time and back to back while behind
//! it ([`pace`]); failed builds are retried with backoff and logged once per change of state
//! ([`crate::engine::retry`]). [`Schedule::OnRequest`] builds a requested number of blocks at a
//! requested interval with the wall clock as timestamp (strictly increasing with an engine): a
//! mode for the devnet's benchmarks and tests, which produce faster than any block time.

pub mod engine;
pub mod pace;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use engine::SequencerEngine;
use pace::{CatchUp, CatchUpChange, Tip, wait_for_slot};

use alloy_primitives::{B256, keccak256};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::block_builder::{BlockSpec, L1Info, build_block};
use crate::chain::ChainSpec;
use crate::clock::{unix_millis, unix_now};
use crate::engine::builder::BuildError;
use crate::engine::retry::{Change, Retry, RetryConfig};
use crate::events::NodeEvent;
use crate::p2p::NetworkHandle;
use crate::store::writer::{BlockSource, StoreOp, StoreRequest};
use crate::store::{BlockRef, StoredBlock};
use crate::validate::{BlockValidator, ValidationError};
use crate::wire::envelope::encode_signed;
use crate::wire::signature::BlockSigner;
use crate::wire::ssz::EncodeError;

/// When blocks are built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Block n+1 at block n's timestamp plus the block time ([`pace`]).
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
    /// Answered when the last block is published, or with the failure that ended the request.
    pub done: oneshot::Sender<Result<(), ProduceError>>,
}

/// Why a block was not produced, or a sequencer could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    /// The engine built nothing.
    #[error("engine build: {0}")]
    Build(#[from] BuildError),
    /// The engine built a block other than the one asked for (it is elsewhere: the driver
    /// re-syncs it).
    #[error(
        "the engine built block {} on {} at {}, not {} on {} at {}",
        built.number, built.parent, built.timestamp, asked.number, asked.parent, asked.timestamp
    )]
    WrongBlock {
        /// What the engine built.
        built: BlockSlot,
        /// What was asked for.
        asked: BlockSlot,
    },
    /// The block could not be encoded for its topic.
    #[error("{0}")]
    Encode(#[from] EncodeError),
    /// Our own validator rejected the block (op-node validates its own blocks too).
    #[error("own block rejected: {0}")]
    OwnBlockRejected(#[source] ValidationError),
    /// The blocking task that signs and checks the block panicked or was cancelled.
    #[error("{0}")]
    Task(#[from] tokio::task::JoinError),
    /// The store writer has stopped (the node is shutting down).
    #[error("store closed")]
    StoreClosed,
    /// The producer has stopped (the node is shutting down): the request was not answered.
    #[error("producer stopped")]
    Stopped,
    /// The sequencer's next block is due too long ago to catch up to ([`pace::check_start`]).
    #[error(transparent)]
    TooFarBehind(#[from] pace::TooFarBehind),
}

/// A block's place: its number, its parent and its timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockSlot {
    /// Block number.
    pub number: u64,
    /// Parent hash.
    pub parent: B256,
    /// Timestamp (unix seconds).
    pub timestamp: u64,
}

impl ProduceError {
    /// The failure's kind, one of [`crate::engine::metrics::BUILD_FAILURE_KINDS`]: the engine's
    /// own kind for a failed build, "local" for a failure on our side.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Build(e) => e.kind(),
            Self::WrongBlock { .. }
            | Self::Encode(_)
            | Self::OwnBlockRejected(_)
            | Self::Task(_)
            | Self::StoreClosed
            | Self::Stopped
            | Self::TooFarBehind(_) => "local",
        }
    }
}

/// The handles a producer works through, all decided by the node that starts it.
pub(crate) struct ProducerLinks {
    /// The node's validator: the producer checks its own blocks with it (marking them seen).
    pub validator: Arc<BlockValidator>,
    /// Where blocks are published.
    pub network: NetworkHandle,
    /// The store writer: produced blocks are stored like accepted gossip blocks.
    pub store_tx: mpsc::Sender<StoreOp>,
    /// Node events (each produced block is announced).
    pub events: broadcast::Sender<NodeEvent>,
    /// Build requests ([`Schedule::OnRequest`]).
    pub requests: mpsc::Receiver<ProduceRequest>,
    /// Stop signal.
    pub shutdown: CancellationToken,
}

pub(crate) struct Producer {
    chain: Arc<ChainSpec>,
    config: SequencerConfig,
    validator: Arc<BlockValidator>,
    network: NetworkHandle,
    store_tx: mpsc::Sender<StoreOp>,
    events: broadcast::Sender<NodeEvent>,
    requests: mpsc::Receiver<ProduceRequest>,
    shutdown: CancellationToken,
    /// The block the next one builds on.
    tip: Tip,
    /// With `--l2`, the engine builds the blocks (else the embedded builder does).
    engine: Option<SequencerEngine>,
    /// With `--l1`, the L1 origin of each block follows L1 (else a deterministic devnet origin).
    l1: Option<crate::l1::OriginTracker>,
    /// Blocks built in a row too old to publish (see [`Self::produce_one`]).
    unpublished: u64,
}

impl Producer {
    /// A producer for `chain` resuming from `tip` (where the node's start found the chain),
    /// building with `engine` when there is one and following L1 through `l1` when given.
    pub(crate) fn new(
        chain: Arc<ChainSpec>,
        config: SequencerConfig,
        links: ProducerLinks,
        tip: Tip,
        engine: Option<SequencerEngine>,
        l1: Option<Arc<crate::l1::SignerSource>>,
    ) -> Self {
        let ProducerLinks {
            validator,
            network,
            store_tx,
            events,
            requests,
            shutdown,
        } = links;
        Self {
            chain,
            config,
            validator,
            network,
            store_tx,
            events,
            requests,
            shutdown,
            tip,
            engine,
            l1: l1.map(crate::l1::OriginTracker::new),
            unpublished: 0,
        }
    }

    pub async fn run(mut self) {
        match self.config.schedule {
            Schedule::ChainTime => self.run_chain_time().await,
            Schedule::OnRequest => self.run_on_request().await,
        }
    }

    /// The engine's URL for log lines ("none": the embedded builder).
    fn engine_url(&self) -> &str {
        self.engine.as_ref().map_or("none", |e| e.client.url())
    }

    fn retry_config(&self) -> RetryConfig {
        self.engine.as_ref().map(|e| e.retry).unwrap_or_default()
    }

    async fn run_chain_time(&mut self) {
        let mut failures = Retry::new(self.retry_config());
        let mut pace = CatchUp::default();
        loop {
            let timestamp = self.tip.next_timestamp(&self.chain);
            let wait = wait_for_slot(timestamp, unix_millis(SystemTime::now()));
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            if !self.engine_at_tip().await {
                return;
            }
            let number = self.tip.next_number();
            let target = self.config.target_tx_bytes;
            match self.produce_one(timestamp, target).await {
                Ok(()) => {
                    recovered(&mut failures, self.engine_url());
                    let late =
                        pace.before_build(number, timestamp, self.chain.block_time, unix_now());
                    match late {
                        Some(CatchUpChange::FellBehind {
                            number,
                            behind_secs,
                        }) => tracing::warn!(
                            number,
                            behind_secs,
                            engine = self.engine_url(),
                            "the sequencer is behind the wall clock: building back to back until caught up (timestamps stay parent + block time)"
                        ),
                        Some(CatchUpChange::CaughtUp { built }) => {
                            tracing::info!(
                                number,
                                built,
                                engine = self.engine_url(),
                                "the sequencer caught up with the wall clock"
                            )
                        }
                        None => {}
                    }
                }
                Err(e) => {
                    let delay = self.failed(&mut failures, number, &e);
                    if !self.pause(delay).await {
                        return;
                    }
                }
            }
        }
    }

    /// The pause after a failure: `delay`, cut short when the engine's head moves away from
    /// the tip (the driver found the engine elsewhere and is re-inserting: the next build waits
    /// for it instead). False on shutdown.
    async fn pause(&mut self, delay: Duration) -> bool {
        let tip = self.tip.id;
        let moved = async {
            match &mut self.engine {
                Some(engine) => engine.head.moved_from(tip).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = self.shutdown.cancelled() => false,
            () = tokio::time::sleep(delay) => true,
            () = moved => true,
        }
    }

    async fn run_on_request(&mut self) {
        let mut failures = Retry::new(self.retry_config());
        loop {
            let request = tokio::select! {
                () = self.shutdown.cancelled() => return,
                r = self.requests.recv() => match r { Some(r) => r, None => return },
            };
            let mut ticker = tokio::time::interval(request.interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut result = Ok(());
            'blocks: for _ in 0..request.count {
                tokio::select! {
                    () = self.shutdown.cancelled() => return,
                    _ = ticker.tick() => {}
                }
                loop {
                    if !self.engine_at_tip().await {
                        return;
                    }
                    // The wall clock; an engine needs each timestamp above its parent's.
                    let timestamp = match self.engine {
                        Some(_) => unix_now().max(self.tip.timestamp.saturating_add(1)),
                        None => unix_now(),
                    };
                    let number = self.tip.next_number();
                    match self.produce_one(timestamp, request.target_tx_bytes).await {
                        Ok(()) => {
                            recovered(&mut failures, self.engine_url());
                            break;
                        }
                        // An engine's failures pass (it restarts, it catches up): retry.
                        Err(e) if self.engine.is_some() => {
                            let delay = self.failed(&mut failures, number, &e);
                            if !self.pause(delay).await {
                                return;
                            }
                        }
                        Err(e) => {
                            result = Err(e);
                            break 'blocks;
                        }
                    }
                }
            }
            let _ = request.done.send(result);
        }
    }

    /// With an engine: waits until the engine's head is the tip. False on shutdown.
    async fn engine_at_tip(&mut self) -> bool {
        match &mut self.engine {
            Some(engine) => engine.wait_for_tip(self.tip.id, &self.shutdown).await,
            None => true,
        }
    }

    /// Counts a failure, logs it if it begins a new state, and returns the pause before the
    /// next try.
    fn failed(&self, failures: &mut Retry, number: u64, e: &ProduceError) -> Duration {
        let kind = e.kind();
        if let Some(engine) = &self.engine {
            engine.count_failure(kind);
        }
        let (delay, change) = failures.failed(kind);
        if let Change::Began { previous } = change {
            tracing::warn!(
                number,
                kind,
                engine = self.engine_url(),
                error = %e,
                previous = ?previous.map(|(kind, _)| kind),
                previous_failures = previous.map_or(0, |(_, n)| n),
                "block production failing: retrying with backoff (logged once per change of state)"
            );
        }
        delay
    }

    /// Builds the block after the tip with `timestamp`, signs, checks, publishes and stores it,
    /// and makes it the tip. A block older than the gossip window (built while catching up after
    /// a long stall) is stored, and so inserted and served by payload_by_number, but not
    /// published: peers would reject it as too old.
    async fn produce_one(
        &mut self,
        timestamp: u64,
        target_tx_bytes: usize,
    ) -> Result<(), ProduceError> {
        let number = self.tip.next_number();
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
            Some(engine) => {
                let (version, envelope) = engine
                    .build(&self.chain, self.tip.id, &l1, timestamp)
                    .await?;
                let p = &envelope.payload;
                if p.block_number != number
                    || p.parent_hash != self.tip.id.hash
                    || p.timestamp != timestamp
                {
                    engine.head.request_resync();
                    return Err(ProduceError::WrongBlock {
                        built: BlockSlot {
                            number: p.block_number,
                            parent: p.parent_hash,
                            timestamp: p.timestamp,
                        },
                        asked: BlockSlot {
                            number,
                            parent: self.tip.id.hash,
                            timestamp,
                        },
                    });
                }
                Some((version, envelope))
            }
            None => None,
        };
        let spec = BlockSpec {
            parent_hash: self.tip.id.hash,
            number,
            timestamp,
            target_tx_bytes,
            l1,
        };
        let chain = self.chain.clone();
        let signer = self.config.signer.clone();
        let validator = self.validator.clone();
        let (version, envelope, data, too_old, ssz) = tokio::task::spawn_blocking(move || {
            let (version, envelope) = match built {
                Some(built) => built,
                None => (
                    chain.block_version_at(timestamp),
                    build_block(&chain, &spec),
                ),
            };
            let data = encode_signed(chain.chain_id, version, &envelope, &signer)?;
            // Our own validator must accept what we publish (op-node validates its own blocks
            // too); a block too old for the gossip window is checked as of its own time. What
            // it accepts carries the signed bytes, which go to the store as they are.
            let (too_old, accepted) = match validator.validate(version, &data, unix_now()) {
                Ok(accepted) => (false, accepted),
                Err(ValidationError::TimestampTooOld { .. }) => {
                    let accepted = validator
                        .validate(version, &data, timestamp)
                        .map_err(ProduceError::OwnBlockRejected)?;
                    (true, accepted)
                }
                Err(e) => return Err(ProduceError::OwnBlockRejected(e)),
            };
            Ok::<_, ProduceError>((version, envelope, data, too_old, accepted.ssz))
        })
        .await??;
        let id = BlockRef {
            number: envelope.payload.block_number,
            hash: envelope.payload.block_hash,
        };
        let published_at = SystemTime::now();
        if too_old {
            if self.unpublished == 0 {
                tracing::warn!(
                    number,
                    timestamp,
                    "blocks older than the gossip window are stored and inserted but not published (peers would reject them; followers fetch them by payload_by_number)"
                );
            }
            self.unpublished += 1;
        } else {
            if self.unpublished > 0 {
                tracing::info!(number, unpublished = self.unpublished, "publishing again");
                self.unpublished = 0;
            }
            if let Err(e) = self.network.publish(version, data).await {
                // No peers yet is normal at start-up; the block is still ours and is stored.
                tracing::warn!(number, error = %e, "publish failed");
            }
        }
        let _ = self.events.send(NodeEvent::Published {
            id,
            at: published_at,
        });
        tracing::debug!(number = id.number, hash = %id.hash, timestamp, "published block");
        self.tip = Tip { id, timestamp };
        // With an engine, the store is the way in: the insertion driver inserts it from there.
        self.store_tx
            .send(StoreOp::Insert(Box::new(StoreRequest {
                block: StoredBlock {
                    version,
                    envelope,
                    ssz,
                },
                source: BlockSource::Local,
                at: published_at,
            })))
            .await
            .map_err(|_| ProduceError::StoreClosed)
    }
}

/// Logs once that production works again after failures.
fn recovered(failures: &mut Retry, engine: &str) {
    if let Some((kind, count)) = failures.succeeded() {
        tracing::info!(
            failures = count,
            last = kind,
            engine,
            "block production recovered"
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_engine_block_names_both_blocks_and_counts_as_local() {
        let e = ProduceError::WrongBlock {
            built: BlockSlot {
                number: 7,
                parent: B256::repeat_byte(1),
                timestamp: 100,
            },
            asked: BlockSlot {
                number: 8,
                parent: B256::repeat_byte(2),
                timestamp: 102,
            },
        };
        assert_eq!(
            e.to_string(),
            format!(
                "the engine built block 7 on {} at 100, not 8 on {} at 102",
                B256::repeat_byte(1),
                B256::repeat_byte(2)
            )
        );
        assert_eq!(e.kind(), "local");
        assert_eq!(ProduceError::StoreClosed.kind(), "local");
    }
}
