//! The follower's insertion driver: hands the store's canonical chain to the engine in order,
//! one `newPayload` then `forkchoiceUpdated` (moving only the unsafe head; safe and finalized
//! stay as the engine reported them at start) per block.
//!
//! The store is the queue: the driver keeps the engine's head and asks the store for the
//! canonical block above it, so nothing is lost when the engine is down (blocks wait in the
//! store, up to its retention) and the queue is bounded by the store itself. Outcomes:
//! - VALID: the head moves on.
//! - ACCEPTED / SYNCING: the engine took the payload without executing it yet (a side chain, or
//!   it lacks the parent); the forkchoice update tells it to make it the head (and to sync), and
//!   the driver moves on only once the update answers VALID, re-reading the engine's head after
//!   a backoff otherwise.
//! - INVALID: recorded and never sent again; its gossip sender is not blamed (the block was
//!   correctly signed by the sequencer, so the fault is upstream). The driver waits for the store
//!   to hold another block at that height.
//! - Engine unreachable: retried with exponential backoff ([`MIN_BACKOFF`]..[`MAX_BACKOFF`]).
//! - The store's chain no longer contains the engine's head (a reorg of the unsafe chain): the
//!   driver walks back (at most [`MAX_REORG_WALK`] blocks) to the last block both share and
//!   inserts from there.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use alloy_primitives::B256;
use alloy_rpc_types_engine::{ForkchoiceState, PayloadStatusEnum};
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::client::{EngineClient, EngineError};
use crate::chain::ChainSpec;
use crate::store::{BlockRef, Store, StoredBlock};

/// First retry delay after the engine could not be reached.
pub const MIN_BACKOFF: Duration = Duration::from_millis(250);
/// Longest retry delay (the engine is checked at least this often while it is down).
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Blocks walked back to find the engine's head on the store's chain after a reorg; a deeper
/// divergence re-reads the engine's head instead (an unsafe reorg this deep means the engine
/// and the store disagree about more than gossip can settle).
pub const MAX_REORG_WALK: u64 = 64;
/// Longest a clean shutdown waits for the engine to take the blocks already stored.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(5);
/// At shutdown, how long the driver waits for the store writer's next write before it stops.
pub const DRAIN_SETTLE: Duration = Duration::from_millis(500);
/// INVALID block hashes remembered (each is a signed block the engine refused: rare).
pub const MAX_INVALID: usize = 1024;

/// What the driver did (for the devnet report, metrics and tests).
#[derive(Debug, Default)]
pub struct EngineStats {
    /// Blocks the engine made its head.
    pub inserted: AtomicU64,
    /// Blocks the engine declared INVALID.
    pub invalid: AtomicU64,
    /// Calls that failed (unreachable, refused, malformed).
    pub errors: AtomicU64,
    /// The engine's head number as last seen.
    pub head_number: AtomicU64,
    head_hash: std::sync::Mutex<B256>,
}

/// A copy of [`EngineStats`] for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct EngineCounters {
    /// Blocks the engine made its head.
    pub inserted: u64,
    /// Blocks declared INVALID.
    pub invalid: u64,
    /// Failed calls.
    pub errors: u64,
    /// The engine's head.
    pub head_number: u64,
    /// Its hash.
    pub head_hash: B256,
}

impl EngineStats {
    fn set_head(&self, head: BlockRef) {
        self.head_number.store(head.number, Ordering::Relaxed);
        *self.head_hash.lock().unwrap_or_else(|p| p.into_inner()) = head.hash;
    }

    /// The counters now.
    pub fn snapshot(&self) -> EngineCounters {
        EngineCounters {
            inserted: self.inserted.load(Ordering::Relaxed),
            invalid: self.invalid.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            head_number: self.head_number.load(Ordering::Relaxed),
            head_hash: *self.head_hash.lock().unwrap_or_else(|p| p.into_inner()),
        }
    }
}

/// The driver's inputs.
pub struct InsertionDriver {
    /// The engine.
    pub client: EngineClient,
    /// Where accepted blocks are.
    pub store: Arc<Store>,
    /// For the block version of each block.
    pub chain: Arc<ChainSpec>,
    /// Bumped by the store writer after every write.
    pub store_writes: watch::Receiver<u64>,
    /// The engine's head when the node started (`None`: it could not be read; the driver
    /// reads it once the engine answers).
    pub start_head: Option<BlockRef>,
    /// Safe and finalized hashes as the engine reported them (zero if unknown).
    pub safe: B256,
    /// Finalized hash.
    pub finalized: B256,
    /// Counters.
    pub stats: Arc<EngineStats>,
    /// Stop signal.
    pub shutdown: CancellationToken,
    /// Blocks to step back at the next reorg (doubles while the engine lacks the parent).
    pub reorg_depth: u64,
}

enum Step {
    /// Something was done: look again at once.
    Progress,
    /// Nothing to insert until the store changes.
    Idle,
    /// The engine failed: wait, then look again.
    Backoff,
}

impl InsertionDriver {
    /// Runs until shutdown.
    pub async fn run(mut self) {
        let mut backoff = MIN_BACKOFF;
        let mut head = loop {
            if let Some(head) = self.start_head {
                break head;
            }
            match self.client.latest_block().await {
                Ok(latest) => {
                    tracing::info!(number = latest.number, hash = %latest.hash, "engine reached");
                    self.start_head = Some(BlockRef {
                        number: latest.number,
                        hash: latest.hash,
                    });
                }
                Err(e) => {
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "engine unreachable; will retry");
                    tokio::select! {
                        () = self.shutdown.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        };
        self.stats.set_head(head);
        let mut invalid: HashSet<B256> = HashSet::new();
        backoff = MIN_BACKOFF;
        loop {
            if self.shutdown.is_cancelled() {
                return self.drain(&mut head, &mut invalid).await;
            }
            match self.step(&mut head, &mut invalid).await {
                Step::Progress => backoff = MIN_BACKOFF,
                Step::Idle => {
                    backoff = MIN_BACKOFF;
                    tokio::select! {
                        () = self.shutdown.cancelled() => {}
                        changed = self.store_writes.changed() => if changed.is_err() { return },
                    }
                }
                Step::Backoff => {
                    tokio::select! {
                        () = self.shutdown.cancelled() => {}
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// At shutdown: hands the engine what the store holds, including blocks the store writer is
    /// still writing (it drains its queue during shutdown: the driver waits up to
    /// [`DRAIN_SETTLE`] for each next write), for at most [`DRAIN_DEADLINE`] in all, so a clean
    /// stop leaves the engine at the node's head; stops at the first call that fails (the rest
    /// waits in the store for the next start).
    async fn drain(&mut self, head: &mut BlockRef, invalid: &mut HashSet<B256>) {
        let deadline = tokio::time::Instant::now() + DRAIN_DEADLINE;
        while tokio::time::Instant::now() < deadline {
            match tokio::time::timeout_at(deadline, self.step(head, invalid)).await {
                Ok(Step::Progress) => {}
                Ok(Step::Idle) => {
                    let settle = tokio::time::timeout(DRAIN_SETTLE, self.store_writes.changed());
                    if !matches!(settle.await, Ok(Ok(()))) {
                        return;
                    }
                }
                Ok(Step::Backoff) | Err(_) => return,
            }
        }
    }

    fn canonical(&self, number: u64) -> Option<StoredBlock> {
        match self.store.canonical_block(number) {
            Ok(block) => block,
            Err(e) => {
                tracing::error!(number, error = %e, "store read failed");
                None
            }
        }
    }

    async fn step(&mut self, head: &mut BlockRef, invalid: &mut HashSet<B256>) -> Step {
        let Some(next) = self.canonical(head.number.saturating_add(1)) else {
            return Step::Idle;
        };
        if next.envelope.payload.parent_hash != head.hash {
            return self.rewind(head).await;
        }
        let id = next.id();
        if invalid.contains(&id.hash) {
            return Step::Idle;
        }
        match self.insert(&next).await {
            Ok(Inserted::Head) => {
                *head = id;
                self.reorg_depth = 1;
                self.stats.inserted.fetch_add(1, Ordering::Relaxed);
                self.stats.set_head(id);
                tracing::debug!(number = id.number, hash = %id.hash, "engine head moved");
                Step::Progress
            }
            Ok(Inserted::Invalid(reason)) => {
                tracing::warn!(number = id.number, hash = %id.hash, reason, "engine declared the block INVALID; not retried");
                if invalid.len() >= MAX_INVALID {
                    invalid.clear();
                }
                invalid.insert(id.hash);
                self.stats.invalid.fetch_add(1, Ordering::Relaxed);
                Step::Progress
            }
            Ok(Inserted::Pending) => {
                // The engine lacks the parent (a reorg deeper than our step) or is syncing:
                // step back further, or take its word for its head after a pause.
                self.rewind(head).await
            }
            Err(e) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                if e.is_transient() {
                    tracing::warn!(number = id.number, error = %e, "engine unreachable; will retry");
                } else {
                    tracing::error!(number = id.number, error = %e, "engine call failed; will retry");
                }
                Step::Backoff
            }
        }
    }

    async fn insert(&self, block: &StoredBlock) -> Result<Inserted, EngineError> {
        let version = self
            .chain
            .block_version_at(block.envelope.payload.timestamp);
        let status = self.client.new_payload(version, &block.envelope).await?;
        if let PayloadStatusEnum::Invalid { validation_error } = &status.status {
            return Ok(Inserted::Invalid(validation_error.clone()));
        }
        let state = ForkchoiceState {
            head_block_hash: block.envelope.payload.block_hash,
            safe_block_hash: self.safe,
            finalized_block_hash: self.finalized,
        };
        let updated = self.client.forkchoice_updated(version, state, None).await?;
        Ok(match updated.payload_status.status {
            PayloadStatusEnum::Valid => Inserted::Head,
            PayloadStatusEnum::Invalid { validation_error } => Inserted::Invalid(validation_error),
            PayloadStatusEnum::Syncing | PayloadStatusEnum::Accepted => Inserted::Pending,
        })
    }

    /// The store's chain does not continue from `head` (the unsafe chain reorganised): step
    /// back `reorg_depth` blocks on the store's chain and insert from there, doubling the step
    /// while the engine does not know the parent (at most [`MAX_REORG_WALK`]); beyond that,
    /// take the engine's own head again.
    async fn rewind(&mut self, head: &mut BlockRef) -> Step {
        if self.reorg_depth > MAX_REORG_WALK {
            self.reorg_depth = 1;
            self.refresh_head(head).await;
            return Step::Backoff;
        }
        let target = head.number.saturating_sub(self.reorg_depth);
        self.reorg_depth *= 2;
        match self.canonical(target) {
            Some(block) => {
                tracing::info!(
                    from = head.number,
                    to = target,
                    "unsafe reorg: re-inserting from an earlier block"
                );
                *head = block.id();
                Step::Progress
            }
            None => {
                self.refresh_head(head).await;
                Step::Backoff
            }
        }
    }

    async fn refresh_head(&self, head: &mut BlockRef) {
        match self.client.latest_block().await {
            Ok(latest) => {
                *head = BlockRef {
                    number: latest.number,
                    hash: latest.hash,
                };
                self.stats.set_head(*head);
            }
            Err(e) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "cannot read the engine's head");
            }
        }
    }
}

enum Inserted {
    Head,
    Invalid(String),
    Pending,
}
