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
//! - Engine unreachable: retried with exponential backoff ([`MIN_BACKOFF`]..[`MAX_BACKOFF`] by
//!   default, [`super::retry`]), logged once when the failures begin and once when they end.
//! - The store's chain no longer contains the engine's head (a reorg of the unsafe chain): the
//!   driver walks back (at most [`MAX_REORG_WALK`] blocks) to the last block both share and
//!   inserts from there.
//!
//! The driver is the only owner of the engine's head: it publishes what it knows through
//! [`super::head`], and a sequencer's producer, whose blocks reach the engine only through this
//! driver (one `newPayload` per block), asks it to read the head again when a build shows the
//! engine is elsewhere (an engine restarted without its newest blocks, one that was down). The
//! driver then reads the head and re-inserts from the store what the engine lacks.

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
use super::head::HeadPublisher;
use super::retry::{Change, Retry, RetryConfig};
use crate::chain::ChainSpec;
use crate::store::{BlockRef, Store, StoredBlock};

/// First retry delay after the engine could not be reached ([`super::retry::MIN_BACKOFF`]).
pub const MIN_BACKOFF: Duration = super::retry::MIN_BACKOFF;
/// Longest retry delay (the engine is checked at least this often while it is down).
pub const MAX_BACKOFF: Duration = super::retry::MAX_BACKOFF;
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

/// The driver: the engine's client and head, the store it reads from, and its counters.
pub struct InsertionDriver {
    /// The engine.
    client: EngineClient,
    /// Where accepted blocks are.
    store: Arc<Store>,
    /// For the block version of each block.
    chain: Arc<ChainSpec>,
    /// Bumped by the store writer after every write.
    store_writes: watch::Receiver<u64>,
    /// The engine's head when the node started (`None`: it could not be read; the driver
    /// reads it once the engine answers).
    start_head: Option<BlockRef>,
    /// Safe and finalized hashes as the engine reported them (zero if unknown).
    safe: B256,
    /// Finalized hash.
    finalized: B256,
    /// Counters.
    stats: Arc<EngineStats>,
    /// Stop signal.
    shutdown: CancellationToken,
    /// Blocks to step back at the next reorg (doubles while the engine lacks the parent).
    reorg_depth: u64,
    /// Where the head is published, and re-read requests come from.
    head: HeadPublisher,
    /// Pauses between retries.
    retry: RetryConfig,
}

impl InsertionDriver {
    /// A driver for the engine as [`super::attach`] found it, inserting `store`'s canonical
    /// chain (woken by `store_writes`, the store writer's write counter), publishing the head
    /// through `head` and pausing by `retry` after failures, until `shutdown`.
    pub fn new(
        engine: super::Attached,
        store: Arc<Store>,
        chain: Arc<ChainSpec>,
        store_writes: watch::Receiver<u64>,
        head: HeadPublisher,
        retry: RetryConfig,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            client: engine.client,
            store,
            chain,
            store_writes,
            start_head: engine.head,
            safe: engine.safe,
            finalized: engine.finalized,
            stats: Arc::new(EngineStats::default()),
            shutdown,
            reorg_depth: 1,
            head,
            retry,
        }
    }

    /// The driver's counters (shared: they stay readable while it runs).
    pub fn stats(&self) -> Arc<EngineStats> {
        self.stats.clone()
    }
}

enum Step {
    /// Something was done: look again at once.
    Progress,
    /// Nothing to insert until the store changes.
    Idle,
    /// The engine took a block without making it the head (it is syncing): wait, then look again.
    Backoff,
    /// A call failed: wait, then look again.
    Failed(EngineError),
}

impl InsertionDriver {
    /// Runs until shutdown.
    pub async fn run(mut self) {
        let mut failures = Retry::new(self.retry);
        let mut head = loop {
            if let Some(head) = self.start_head {
                break head;
            }
            match self.client.latest_block().await {
                Ok(latest) => {
                    tracing::info!(number = latest.number, hash = %latest.hash, failures = failures.total_failures(), "engine reached");
                    failures.succeeded();
                    self.start_head = Some(BlockRef {
                        number: latest.number,
                        hash: latest.hash,
                    });
                }
                Err(e) => {
                    let delay = self.failed(&mut failures, &e, None);
                    tokio::select! {
                        () = self.shutdown.cancelled() => return,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        };
        self.set_head(head, true);
        let mut invalid: HashSet<B256> = HashSet::new();
        // Pauses while the engine takes blocks without making them its head (it is syncing):
        // not failures, so they neither log nor end a failing state.
        let mut pending = Retry::new(self.retry);
        loop {
            if self.shutdown.is_cancelled() {
                return self.drain(&mut head, &mut invalid).await;
            }
            let delay = match self.step(&mut head, &mut invalid).await {
                Step::Progress => {
                    self.recovered(&mut failures);
                    pending.succeeded();
                    continue;
                }
                // Nothing to insert says nothing about the engine: a failing state stays.
                Step::Idle => None,
                Step::Failed(e) => Some(self.failed(&mut failures, &e, Some(head.number + 1))),
                Step::Backoff => Some(pending.failed("pending").0),
            };
            let resync = tokio::select! {
                () = self.shutdown.cancelled() => false,
                () = self.head.resync_requested() => true,
                changed = self.store_writes.changed(), if delay.is_none() => {
                    if changed.is_err() { return }
                    false
                }
                () = tokio::time::sleep(delay.unwrap_or_default()), if delay.is_some() => false,
            };
            if resync {
                self.refresh_head(&mut head, &mut failures).await;
            }
        }
    }

    /// Counts a failed call and logs it if it begins a new kind of failure; returns the pause.
    fn failed(&self, failures: &mut Retry, e: &EngineError, number: Option<u64>) -> Duration {
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        let kind = if e.is_transient() {
            "unreachable"
        } else {
            "error"
        };
        let (delay, change) = failures.failed(kind);
        if let Change::Began { previous } = change {
            let before = previous.map_or(0, |(_, n)| n);
            if e.is_transient() {
                tracing::warn!(?number, url = self.client.url(), error = %e, failures_before = before, "engine unreachable; retrying with backoff (logged once until it answers)");
            } else {
                tracing::error!(?number, url = self.client.url(), error = %e, failures_before = before, "engine call failed; retrying with backoff (logged once until it succeeds)");
            }
        }
        delay
    }

    fn recovered(&self, failures: &mut Retry) {
        if let Some((_, count)) = failures.succeeded() {
            tracing::info!(
                url = self.client.url(),
                failures = count,
                "engine calls succeed again"
            );
        }
    }

    /// The head moved (`read`: it was read from the engine): counters, the published view, and
    /// the metrics (with the stored blocks still above it).
    fn set_head(&self, head: BlockRef, read: bool) {
        self.stats.set_head(head);
        if read {
            self.head.read(head);
        } else {
            self.head.moved(head);
        }
        if let Some(metrics) = self.client.metrics() {
            let store_head = self.store.head().ok().flatten().map(|h| h.number);
            metrics.engine_head(head, store_head);
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
                Ok(Step::Backoff | Step::Failed(_)) | Err(_) => return,
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
            if let Some(metrics) = self.client.metrics() {
                let store_head = self.store.head().ok().flatten().map(|h| h.number);
                metrics.engine_head(*head, store_head);
            }
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
                self.set_head(id, false);
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
            Err(e) => Step::Failed(e),
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
            return self.read_head(head).await;
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
            None => self.read_head(head).await,
        }
    }

    /// Takes the engine's word for its head; [`Step::Backoff`] so the engine gets a pause
    /// before the next insertion.
    async fn read_head(&self, head: &mut BlockRef) -> Step {
        match self.client.latest_block().await {
            Ok(latest) => {
                *head = BlockRef {
                    number: latest.number,
                    hash: latest.hash,
                };
                self.set_head(*head, true);
                Step::Backoff
            }
            Err(e) => Step::Failed(e),
        }
    }

    /// A reader asked (the sequencer's build found the engine elsewhere): reads the head, so
    /// the next step re-inserts what the engine lacks.
    async fn refresh_head(&mut self, head: &mut BlockRef, failures: &mut Retry) {
        self.reorg_depth = 1;
        match self.read_head(head).await {
            Step::Failed(e) => {
                self.failed(failures, &e, None);
            }
            _ => {
                tracing::debug!(number = head.number, hash = %head.hash, "engine head re-read");
                self.recovered(failures);
            }
        }
    }
}

enum Inserted {
    Head,
    Invalid(String),
    Pending,
}
