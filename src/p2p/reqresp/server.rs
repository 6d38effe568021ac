//! The payload_by_number server: accepts streams on both protocol ids and answers each request
//! from the block store.
//!
//! Per stream: a free place among `max_streams` concurrent streams (else code 3 at once) and
//! among the peer's [`MAX_STREAMS_PER_PEER`] (else code 3 at once, a refusal) → the
//! 8-byte request within `read_timeout` → range check (before genesis or beyond the block the
//! chain clock allows: code 2) → one global and one per-peer token, waiting at most
//! `max_throttle` (else code 3) → the canonical block, or else the only one stored at that
//! number (none: code 1) → the response written within `write_timeout` (a slow reader is cut
//! off) → close. Every outcome is counted in [`ServerStats`], and each stream's result code,
//! duration and rate-limit wait in the node's [`Metrics`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::{AsyncReadExt, AsyncWriteExt};
use governor::DefaultDirectRateLimiter;
use libp2p::{PeerId, Stream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::inbound::InboundStreams;
use super::limits::{PeerLimiters, Rate, Tokens, acquire};
use super::{MAX_THROTTLE_DELAY, REQUEST_TIMEOUT, RESPONSE_TIMEOUT, protocols};
use crate::chain::ChainSpec;
use crate::metrics::{Metrics, RateLimitRefusal, ReqRole};
use crate::p2p::peers::app_score::{AppScores, PeerOutcome};
use crate::store::Store;
use crate::wire::reqresp::{
    REQUEST_BYTES, ResultCode, decode_request, encode_error, encode_success, response_version_for,
};
use crate::wire::ssz::encode_envelope;

/// op-node `globalServerBlocksRateLimit` / `globalServerBlocksBurst`.
pub const GLOBAL_RATE: Rate = Rate {
    per_second: 20,
    burst: 40,
};
/// op-node `peerServerBlocksRateLimit` / `peerServerBlocksBurst`.
pub const PEER_RATE: Rate = Rate {
    per_second: 4,
    burst: 15,
};
/// op-node's per-peer limiter table size.
pub const PEER_TABLE: usize = 1000;
/// Inbound streams served at once; more are answered code 3 without being read. op-node has no
/// such cap; 64 is above what the global rate (40 burst) can keep busy.
pub const MAX_INBOUND_STREAMS: usize = 64;
/// Inbound streams served at once for one peer; more are answered code 3 at once and count as
/// refused. Without it one peer could hold all [`MAX_INBOUND_STREAMS`] places while it waits
/// for its tokens. op-node's client (and ours) asks one peer one number at a time, so an honest
/// peer never has more than a few open.
pub const MAX_STREAMS_PER_PEER: usize = 8;

/// Server settings (op-node's values by default; tests shorten the timeouts).
#[derive(Debug, Clone, Copy)]
pub struct ServerConfig {
    /// All peers together.
    pub global: Rate,
    /// Each peer.
    pub per_peer: Rate,
    /// Peers whose limiter is remembered.
    pub peer_table: usize,
    /// Streams served at once.
    pub max_streams: usize,
    /// Reading the request.
    pub read_timeout: Duration,
    /// Writing the response.
    pub write_timeout: Duration,
    /// Waiting for rate-limit tokens.
    pub max_throttle: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            global: GLOBAL_RATE,
            per_peer: PEER_RATE,
            peer_table: PEER_TABLE,
            max_streams: MAX_INBOUND_STREAMS,
            read_timeout: REQUEST_TIMEOUT,
            write_timeout: RESPONSE_TIMEOUT,
            max_throttle: MAX_THROTTLE_DELAY,
        }
    }
}

/// Counters of what the server did (for metrics and tests).
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Payloads sent.
    pub served: AtomicU64,
    /// Code 1 answers.
    pub not_found: AtomicU64,
    /// Code 2 answers.
    pub invalid: AtomicU64,
    /// Code 3 answers because the rate-limit wait ran out.
    pub rate_limited: AtomicU64,
    /// Code 3 answers because too many streams were open.
    pub over_capacity: AtomicU64,
    /// Requests not read in time, or malformed.
    pub bad_requests: AtomicU64,
    /// Responses not written in time (slow readers cut off).
    pub write_timeouts: AtomicU64,
    /// Store failures (answered code 3).
    pub errors: AtomicU64,
}

struct Shared {
    chain: Arc<ChainSpec>,
    store: Arc<Store>,
    config: ServerConfig,
    global: DefaultDirectRateLimiter,
    peers: PeerLimiters,
    streams: Arc<Semaphore>,
    /// Open streams per peer (only peers with one open: ≤ `max_streams` entries).
    per_peer_streams: std::sync::Mutex<std::collections::HashMap<PeerId, usize>>,
    stats: Arc<ServerStats>,
    /// Requests refused for rate count against the requester's application score.
    scores: Arc<AppScores>,
    metrics: Arc<Metrics>,
}

/// A peer's place among its open streams, given back on drop.
struct PeerStream<'a> {
    shared: &'a Shared,
    peer: PeerId,
}

impl<'a> PeerStream<'a> {
    fn open(shared: &'a Shared, peer: PeerId) -> Option<Self> {
        let mut open = shared
            .per_peer_streams
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let count = open.entry(peer).or_default();
        if *count >= MAX_STREAMS_PER_PEER {
            return None;
        }
        *count += 1;
        Some(Self { shared, peer })
    }
}

impl Drop for PeerStream<'_> {
    fn drop(&mut self) {
        let mut open = self
            .shared
            .per_peer_streams
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.peer) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.peer);
            }
        }
    }
}

/// Starts serving on both protocol ids; returns the counters. Stops with `shutdown`.
pub fn spawn(
    inbound: InboundStreams,
    chain: Arc<ChainSpec>,
    store: Arc<Store>,
    config: ServerConfig,
    scores: Arc<AppScores>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<Arc<ServerStats>, String> {
    let stats = Arc::new(ServerStats::default());
    let shared = Arc::new(Shared {
        global: config.global.limiter(),
        peers: PeerLimiters::new(config.per_peer, config.peer_table),
        streams: Arc::new(Semaphore::new(config.max_streams.max(1))),
        chain: chain.clone(),
        store,
        config,
        per_peer_streams: std::sync::Mutex::default(),
        stats: stats.clone(),
        scores,
        metrics,
    });
    for protocol in protocols(chain.chain_id) {
        let mut incoming = inbound
            .accept(protocol.clone())
            .map_err(|e| format!("cannot serve {protocol}: {e}"))?;
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    () = shutdown.cancelled() => return,
                    next = incoming.recv() => next,
                };
                let Some((peer, stream)) = next else { return };
                // Never wait here: incoming streams must keep being polled.
                tokio::spawn(serve_stream(shared.clone(), peer, stream));
            }
        });
    }
    Ok(stats)
}

/// Answers code 3 to a peer over its rate or stream limit, counts it, and charges the peer.
async fn refuse_for_rate(
    shared: &Shared,
    peer: PeerId,
    stream: &mut Stream,
    cause: RateLimitRefusal,
) {
    shared.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
    shared.metrics.rate_limit_refusal(cause);
    shared.scores.record(peer, PeerOutcome::RequestRefused);
    respond_error(shared, stream, ResultCode::Unknown).await;
}

/// Serves one stream and records its result code and duration.
async fn serve_stream(shared: Arc<Shared>, peer: PeerId, stream: Stream) {
    let started = Instant::now();
    let (code, number) = serve(&shared, peer, stream).await;
    shared
        .metrics
        .server_request(code, number, started.elapsed());
}

/// Serves one stream. Returns the code answered (for a request that could not be read or a
/// response that could not be written: 3, what op-node records) and the number asked for.
async fn serve(shared: &Shared, peer: PeerId, mut stream: Stream) -> (ResultCode, Option<u64>) {
    let Ok(_permit) = shared.streams.clone().try_acquire_owned() else {
        shared.stats.over_capacity.fetch_add(1, Ordering::Relaxed);
        shared
            .metrics
            .rate_limit_refusal(RateLimitRefusal::OverCapacity);
        respond_error(shared, &mut stream, ResultCode::Unknown).await;
        return (ResultCode::Unknown, None);
    };
    let Some(_peer_stream) = PeerStream::open(shared, peer) else {
        refuse_for_rate(shared, peer, &mut stream, RateLimitRefusal::PeerStreams).await;
        return (ResultCode::Unknown, None);
    };
    let mut request = [0u8; REQUEST_BYTES];
    let read =
        tokio::time::timeout(shared.config.read_timeout, stream.read_exact(&mut request)).await;
    let number = match read.map(|r| r.map(|()| decode_request(&request))) {
        Ok(Ok(Ok(number))) => number,
        _ => {
            shared.stats.bad_requests.fetch_add(1, Ordering::Relaxed);
            let _ = stream.close().await;
            return (ResultCode::Unknown, None);
        }
    };
    let chain = &shared.chain;
    let now = crate::clock::unix_now();
    if number < chain.genesis.l2.number || number > chain.target_block_number(now) {
        shared.stats.invalid.fetch_add(1, Ordering::Relaxed);
        respond_error(shared, &mut stream, ResultCode::InvalidRequest).await;
        return (ResultCode::InvalidRequest, Some(number));
    }
    let peer_limiter = shared.peers.get(peer);
    let tokens = acquire(&shared.global, &peer_limiter, shared.config.max_throttle).await;
    if tokens != Tokens::Ready {
        shared.metrics.rate_limit_wait(ReqRole::Server);
    }
    if tokens == Tokens::TimedOut {
        refuse_for_rate(shared, peer, &mut stream, RateLimitRefusal::WaitTimeout).await;
        return (ResultCode::Unknown, Some(number));
    }
    let store = shared.store.clone();
    let block = tokio::task::spawn_blocking(move || store.block_by_number(number)).await;
    let frame = match block {
        Ok(Ok(Some(block))) => match encode_envelope(block.version, &block.envelope) {
            Ok(body) => encode_success(response_version_for(block.version), &body),
            Err(_) => {
                shared.stats.errors.fetch_add(1, Ordering::Relaxed);
                encode_error(ResultCode::Unknown).to_vec()
            }
        },
        Ok(Ok(None)) => {
            shared.stats.not_found.fetch_add(1, Ordering::Relaxed);
            encode_error(ResultCode::NotFound).to_vec()
        }
        Ok(Err(_)) | Err(_) => {
            shared.stats.errors.fetch_add(1, Ordering::Relaxed);
            encode_error(ResultCode::Unknown).to_vec()
        }
    };
    let code = ResultCode::from_byte(frame.first().copied().unwrap_or(3));
    let served = code == ResultCode::Success;
    match tokio::time::timeout(shared.config.write_timeout, async {
        stream.write_all(&frame).await?;
        stream.close().await
    })
    .await
    {
        Ok(Ok(())) => {
            if served {
                shared.stats.served.fetch_add(1, Ordering::Relaxed);
            }
            (code, Some(number))
        }
        Ok(Err(_)) => (ResultCode::Unknown, Some(number)),
        Err(_) => {
            shared.stats.write_timeouts.fetch_add(1, Ordering::Relaxed);
            (ResultCode::Unknown, Some(number))
        }
    }
}

async fn respond_error(shared: &Shared, stream: &mut Stream, code: ResultCode) {
    let _ = tokio::time::timeout(shared.config.write_timeout, async {
        stream.write_all(&encode_error(code)).await?;
        stream.close().await
    })
    .await;
}
