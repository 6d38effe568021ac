//! Gap filling: finds the holes between the unsafe head and the blocks that arrived early, and
//! fetches the missing numbers from peers with `payload_by_number`, within client-side rate
//! limits that mirror the server's (spec §6.2, §6.3).
//!
//! ```text
//!  store writer ──"wrote a batch" (watch)──► coordinator ──Store::holes──► SyncPlan
//!       ▲                                       │ every recheck interval, and peer changes
//!       │ StoreOp::Insert / Reanchor            ▼
//!       └────────────── actions ◄──── one worker per eligible peer:
//!                                      global limiter → peer limiter → next number → request
//!                                      → SyncPlan::on_response → actions; error: back off
//! ```
//!
//! The plan ([`plan::SyncPlan`]) is shared under a mutex that is never held across an await.
//! Workers exist for connected peers (only static ones with `--p2p.sync.onlyreqtostatic`); a
//! peer that does not speak the protocol fails its requests like any erring peer.

pub mod plan;
pub mod quarantine;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::chain::ChainSpec;
use crate::clock::unix_millis;
use crate::p2p::NetworkHandle;
use crate::p2p::peer_manager::PeerReporter;
use crate::p2p::reqresp::client::{RequestError, RequestTimeouts, fetch_payload};
use crate::p2p::reqresp::limits::{PeerLimiters, Rate, take_tokens};
use crate::p2p::reqresp::metrics::{ReqRespMetrics, ReqRole};
use crate::store::writer::{BlockSource, StoreOp, StoreRequest};
use crate::store::{Store, StoredBlock};
use plan::{PlanConfig, SyncAction, SyncPlan};

/// Client global rate: op-node's client shares one limiter across peers with the server's
/// global rate (20/s burst 40).
pub const DEFAULT_CLIENT_GLOBAL_RATE: Rate = crate::p2p::reqresp::server::GLOBAL_RATE;
/// Client per-peer rate: op-node mirrors the server's (4/s burst 15).
pub const DEFAULT_CLIENT_PEER_RATE: Rate = crate::p2p::reqresp::server::PEER_RATE;
/// Tokens a peer's limiter pays after a failed request (op-node `clientErrRateCost`: 15 tokens,
/// ≈ 3.75 s at 4/s).
pub const ERROR_COST_TOKENS: u32 = 15;
/// Longest hole filled by default: the default store retention, since fetching blocks that
/// retention would prune at once is wasted. A longer hole makes the head jump.
pub const DEFAULT_MAX_GAP_BLOCKS: u64 = crate::store::DEFAULT_RETENTION_BLOCKS;
/// Stored blocks above the head examined per re-plan (bounds the scan when many blocks arrived
/// early).
const MAX_HOLE_SCAN_ENTRIES: usize = 8192;
/// How often the set of peers with a worker is reconciled with the connected peers.
const PEER_RECONCILE: Duration = Duration::from_secs(1);
/// Per-peer client limiters kept (as the server's table).
const CLIENT_PEER_TABLE: usize = 1000;
/// A worker with nothing to do re-checks the queue at least this often.
const IDLE_POLL: Duration = Duration::from_millis(500);

/// Settings of the sync client (`--syncmode.req-resp` on).
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// Global client rate.
    pub global: Rate,
    /// Per-peer client rate.
    pub per_peer: Rate,
    /// Ask only static peers (`--p2p.sync.onlyreqtostatic`).
    pub only_static: bool,
    /// Longest hole filled; longer ones make the head jump.
    pub max_gap: u64,
    /// Deadlines of each request.
    pub timeouts: RequestTimeouts,
    /// How often the holes are re-planned without a store write (op-node: 2 block times); also
    /// the pause after a "not found".
    pub recheck: Duration,
}

impl SyncConfig {
    /// op-node's defaults for a chain with `block_time` seconds per block.
    pub fn for_block_time(block_time: u64) -> Self {
        Self {
            global: DEFAULT_CLIENT_GLOBAL_RATE,
            per_peer: DEFAULT_CLIENT_PEER_RATE,
            only_static: false,
            max_gap: DEFAULT_MAX_GAP_BLOCKS,
            timeouts: RequestTimeouts::default(),
            recheck: Duration::from_secs(2 * block_time.max(1)),
        }
    }

    /// The sustained fetch rate these limits allow with `peers` peers (blocks per second).
    pub fn rate_bound(&self, peers: usize) -> f64 {
        let per_peer = f64::from(self.per_peer.per_second) * peers as f64;
        per_peer.min(f64::from(self.global.per_second))
    }
}

/// What the sync client did, readable while it runs ([`SyncStats::snapshot`]).
#[derive(Debug, Default)]
pub struct SyncStats {
    /// Requests sent.
    requests: AtomicU64,
    /// Unix ms of the first request (0 = none yet).
    first_request_ms: AtomicU64,
    /// Unix ms of the latest promotion (0 = none yet).
    last_fetched_ms: AtomicU64,
    /// The plan's own counters, copied after each change (the plan's owner holds its lock).
    plan: Mutex<plan::PlanStats>,
    /// Peers with a worker, as of the last reconcile.
    workers: AtomicU64,
}

/// A copy of the sync client's counters; also the `sync` object of the devnet's exit line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SyncCounters {
    /// Requests sent.
    pub requests: u64,
    /// Payloads promoted into the store.
    pub fetched: u64,
    /// Valid responses.
    pub valid: u64,
    /// Failed requests (error codes, transport, decoding, wrong number or hash).
    pub errors: u64,
    /// "Not found" answers.
    pub not_found: u64,
    /// Payloads rejected (never linked).
    pub rejected: u64,
    /// Head jumps over holes longer than the maximum gap.
    pub reanchored: u64,
    /// Unix ms of the first request (0: none).
    pub first_request_ms: u64,
    /// Unix ms of the last fetched block (0: none).
    pub last_fetched_ms: u64,
}

impl SyncStats {
    /// How many peers have a worker (asking them for blocks when there is work), as of the last
    /// reconcile with the connected peers (once a second).
    pub fn workers(&self) -> u64 {
        self.workers.load(Ordering::Relaxed)
    }

    /// The counters now.
    pub fn snapshot(&self) -> SyncCounters {
        let plan = *self.plan.lock().unwrap_or_else(|p| p.into_inner());
        SyncCounters {
            requests: self.requests.load(Ordering::Relaxed),
            fetched: plan.promoted,
            valid: plan.valid,
            errors: plan.errors,
            not_found: plan.not_found,
            rejected: plan.rejected,
            reanchored: plan.reanchored,
            first_request_ms: self.first_request_ms.load(Ordering::Relaxed),
            last_fetched_ms: self.last_fetched_ms.load(Ordering::Relaxed),
        }
    }

    fn absorb(&self, actions: &[SyncAction]) {
        if actions
            .iter()
            .any(|a| matches!(a, SyncAction::Store { .. }))
        {
            self.last_fetched_ms
                .store(unix_millis(std::time::SystemTime::now()), Ordering::Relaxed);
        }
    }

    fn sync_plan(&self, plan: &plan::PlanStats) {
        *self.plan.lock().unwrap_or_else(|p| p.into_inner()) = *plan;
    }
}

/// Everything the sync tasks share.
struct Shared {
    chain: Arc<ChainSpec>,
    config: SyncConfig,
    network: NetworkHandle,
    plan: Mutex<SyncPlan>,
    work: Notify,
    global: governor::DefaultDirectRateLimiter,
    peers: PeerLimiters,
    store_tx: mpsc::Sender<StoreOp>,
    scores: PeerReporter,
    stats: Arc<SyncStats>,
    metrics: Arc<ReqRespMetrics>,
}

impl Shared {
    fn plan(&self) -> std::sync::MutexGuard<'_, SyncPlan> {
        self.plan.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Carries out the plan's actions (outside the plan's lock).
    async fn apply(&self, actions: Vec<SyncAction>) {
        self.stats.absorb(&actions);
        let mut more_work = false;
        for action in actions {
            match action {
                SyncAction::Store { block, from } => {
                    more_work = true;
                    let op = StoreOp::Insert(Box::new(StoreRequest {
                        block: *block,
                        source: BlockSource::ReqResp(from),
                        at: std::time::SystemTime::now(),
                    }));
                    if self.store_tx.send(op).await.is_err() {
                        return;
                    }
                }
                SyncAction::Score { peer, outcome } => self.scores.report(peer, outcome),
                SyncAction::Reanchor(to) => {
                    tracing::warn!(
                        number = to.number,
                        hash = %to.hash,
                        "gap longer than the fill limit (or a re-organised chain): the head jumps"
                    );
                    if self.store_tx.send(StoreOp::Reanchor(to)).await.is_err() {
                        return;
                    }
                }
            }
        }
        if more_work {
            // A promotion may have queued the number below.
            self.work.notify_waiters();
        }
    }
}

/// Inputs of the sync client.
pub struct SyncContext {
    /// The chain.
    pub chain: Arc<ChainSpec>,
    /// Settings.
    pub config: SyncConfig,
    /// Opens streams, lists peers.
    pub network: NetworkHandle,
    /// Read for holes.
    pub store: Arc<Store>,
    /// Into the store writer.
    pub store_tx: mpsc::Sender<StoreOp>,
    /// Ticks after every store write.
    pub store_writes: watch::Receiver<u64>,
    /// Peer ids of the static peers.
    pub static_peers: HashSet<PeerId>,
    /// Where outcomes are reported to the peer manager.
    pub scores: PeerReporter,
    /// Where requests, their results and rate-limit waits are counted.
    pub metrics: Arc<ReqRespMetrics>,
}

/// Starts the sync client; it stops with `shutdown`.
pub fn spawn(ctx: SyncContext, shutdown: CancellationToken) -> (Arc<SyncStats>, JoinHandle<()>) {
    let stats = Arc::new(SyncStats::default());
    let shared = Arc::new(Shared {
        chain: ctx.chain,
        plan: Mutex::new(SyncPlan::new(PlanConfig {
            max_gap: ctx.config.max_gap,
            replan_after_not_found: ctx.config.recheck,
        })),
        global: ctx.config.global.limiter(),
        peers: PeerLimiters::new(ctx.config.per_peer, CLIENT_PEER_TABLE),
        config: ctx.config,
        network: ctx.network,
        work: Notify::new(),
        store_tx: ctx.store_tx,
        scores: ctx.scores,
        stats: stats.clone(),
        metrics: ctx.metrics,
    });
    let task = tokio::spawn(coordinate(
        shared,
        ctx.store,
        ctx.store_writes,
        ctx.static_peers,
        shutdown,
    ));
    (stats, task)
}

async fn coordinate(
    shared: Arc<Shared>,
    store: Arc<Store>,
    mut writes: watch::Receiver<u64>,
    static_peers: HashSet<PeerId>,
    shutdown: CancellationToken,
) {
    let mut workers: HashMap<PeerId, (CancellationToken, JoinHandle<()>)> = HashMap::new();
    let mut recheck = tokio::time::interval(shared.config.recheck);
    let mut reconcile = tokio::time::interval(PEER_RECONCILE);
    for timer in [&mut recheck, &mut reconcile] {
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    }
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            changed = writes.changed() => {
                if changed.is_err() {
                    break;
                }
                replan(&shared, &store).await;
            }
            _ = recheck.tick() => replan(&shared, &store).await,
            _ = reconcile.tick() => {
                reconcile_workers(&shared, &static_peers, &mut workers, &shutdown).await;
            }
        }
    }
    for (_, (token, task)) in workers {
        token.cancel();
        let _ = task.await;
    }
}

async fn replan(shared: &Shared, store: &Store) {
    let view = match store.holes(MAX_HOLE_SCAN_ENTRIES) {
        Ok(view) => view,
        Err(e) => {
            tracing::error!(error = %e, "sync: cannot read the store");
            return;
        }
    };
    let actions = {
        let mut plan = shared.plan();
        let actions = plan.on_holes(&view, Instant::now());
        shared.stats.sync_plan(&plan.stats());
        actions
    };
    shared.apply(actions).await;
    shared.work.notify_waiters();
}

async fn reconcile_workers(
    shared: &Arc<Shared>,
    static_peers: &HashSet<PeerId>,
    workers: &mut HashMap<PeerId, (CancellationToken, JoinHandle<()>)>,
    shutdown: &CancellationToken,
) {
    let Ok(connected) = shared.network.connected_peers().await else {
        return;
    };
    let eligible: HashSet<PeerId> = connected
        .into_iter()
        .filter(|p| !shared.config.only_static || static_peers.contains(p))
        .collect();
    workers.retain(|peer, (token, task)| {
        let keep = eligible.contains(peer) && !task.is_finished();
        if !keep {
            token.cancel();
        }
        keep
    });
    shared.plan().set_peer_count(eligible.len());
    for peer in eligible {
        workers.entry(peer).or_insert_with(|| {
            let token = shutdown.child_token();
            let task = tokio::spawn(worker(shared.clone(), peer, token.clone()));
            (token, task)
        });
    }
    shared
        .stats
        .workers
        .store(workers.len() as u64, Ordering::Relaxed);
}

/// Asks one peer for blocks, one request at a time, as long as the peer is eligible.
async fn worker(shared: Arc<Shared>, peer: PeerId, stop: CancellationToken) {
    let limiter = shared.peers.get(peer);
    let mut control = shared.network.stream_control();
    let error_cost = std::num::NonZeroU32::new(ERROR_COST_TOKENS.min(shared.config.per_peer.burst))
        .unwrap_or(std::num::NonZeroU32::MIN);
    loop {
        // Wait for work, then for tokens (op-node: global limiter, then the peer's).
        loop {
            let notified = shared.work.notified();
            if shared.plan().has_work_for(&peer) {
                break;
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = notified => {}
                () = tokio::time::sleep(IDLE_POLL) => {}
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            waited = take_tokens(&shared.global, &limiter) => {
                if waited {
                    shared.metrics.rate_limit_wait(ReqRole::Client);
                }
            }
        }
        let Some(number) = shared.plan().next_request(&peer) else {
            continue;
        };
        let _ = shared.stats.first_request_ms.compare_exchange(
            0,
            unix_millis(std::time::SystemTime::now()),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        shared.stats.requests.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let result = tokio::select! {
            () = stop.cancelled() => {
                shared.plan().return_request(number);
                return;
            }
            r = fetch_payload(&mut control, &shared.chain, peer, number, shared.config.timeouts) => r,
        };
        let elapsed = started.elapsed();
        shared
            .metrics
            .client_request(number, result.as_ref().map(|_| ()), elapsed);
        let failed = matches!(&result, Err(e) if !matches!(e, RequestError::NotFound));
        if let Err(e) = &result {
            tracing::debug!(%peer, number, error = %e, "payload_by_number request failed");
        }
        // The body goes to the store as received when canonical and in the layout the block is
        // stored in (`StoredBlock::ssz_bytes` re-encodes otherwise).
        let answer = result.map(|fetched| StoredBlock {
            version: shared
                .chain
                .block_version_at(fetched.envelope.payload.timestamp),
            envelope: fetched.envelope,
            ssz: fetched.ssz,
        });
        let actions = {
            let mut plan = shared.plan();
            let actions = plan.on_response(peer, number, answer, Instant::now());
            shared.stats.sync_plan(&plan.stats());
            actions
        };
        shared.apply(actions).await;
        if failed {
            // op-node `clientErrRateCost`: an erring peer pays extra tokens before its next
            // request, while other peers take over its numbers.
            shared.work.notify_waiters();
            tokio::select! {
                () = stop.cancelled() => return,
                _ = limiter.until_n_ready(error_cost) => {}
            }
        }
    }
}
