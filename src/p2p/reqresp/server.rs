//! The payload_by_number server: accepts streams on both protocol ids and answers each request
//! from the block store.
//!
//! Per stream: a free place among `max_streams` concurrent streams (else code 3 at once) → a free
//! place among the peer's `max_streams_per_peer` (else code 3 at once, counted as rate limited)
//! → the 8-byte request within `read_timeout` → range check (before genesis or beyond the block
//! the chain clock allows: code 2) → one per-peer, one per-IP ([`IP_RATE`], not for loopback)
//! and one global token, waiting at most
//! `max_throttle` (else code 3) → the canonical block, or else the only one stored at that
//! number (none: code 1) → the response written within `write_timeout` (a slow reader is cut
//! off) → close. Every outcome is counted in [`ServerStats`], and each stream's result code,
//! duration and rate-limit wait in the node's [`super::metrics::ReqRespMetrics`].
//!
//! The per-peer cap and the peer-first token order are ours (op-node has neither): without them
//! one flooding peer holds every stream place waiting for its own tokens and takes the global
//! tokens, and honest peers are refused (measured: a 20 req/s spammer against each devnet node
//! left a late joiner with 6 of the 20 blocks it had to fetch).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::{AsyncReadExt, AsyncWriteExt};
use governor::DefaultDirectRateLimiter;
use libp2p::{PeerId, Stream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::inbound::{InboundStream, InboundStreams};
use super::limits::{IpLimiters, PeerLimiters, PeerSlots, Rate, Tokens, acquire};
use super::metrics::{RateLimitRefusal, ReqRespMetrics, ReqRole};
use super::{MAX_THROTTLE_DELAY, REQUEST_TIMEOUT, RESPONSE_TIMEOUT, protocols};
use crate::chain::ChainSpec;
use crate::log_limit::LogEvery;
use crate::p2p::peer_manager::PeerReporter;
use crate::p2p::peers::app_score::PeerOutcome;
use crate::store::Store;
use crate::wire::reqresp::{
    REQUEST_BYTES, ResultCode, decode_request, encode_error, encode_success, response_version_for,
};

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
/// Ours: the rate one IP may take in total, whatever the number of peer ids behind it: two
/// peers' worth (a node and its neighbour behind one NAT get their full rate). Loopback is exempt,
/// as from the other IP bounds (tests and devnets put every node there).
pub const IP_RATE: Rate = Rate {
    per_second: 2 * PEER_RATE.per_second,
    burst: 2 * PEER_RATE.burst,
};
/// Inbound streams served at once; more are answered code 3 without being read. op-node has no
/// such cap. 128 is [`MAX_STREAMS_PER_PEER`] places for each of the most peers the connection
/// bounds admit (`p2p::conn_caps`: 30 + 5 inbound + 10 outbound = 45, 90 places) with room for
/// static peers: however many peer ids flood, each connected peer keeps its own places.
pub const MAX_INBOUND_STREAMS: usize = 128;
/// Streams one peer may have open at once; more are answered code 3 without being read, and
/// cost it a little score. An honest client has one request in flight per peer (op-node's
/// per-peer loop, our sync worker); two covers a new request overlapping one that timed out.
/// Beyond it a stream would only hold a place (waiting for its request, or for tokens its own
/// limit will not grant soon) that another peer needs.
pub const MAX_STREAMS_PER_PEER: usize = 2;

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
    /// Streams of one peer served at once.
    pub max_streams_per_peer: usize,
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
            max_streams_per_peer: MAX_STREAMS_PER_PEER,
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
    /// Code 3 answers from the rate limits: the peer already had `max_streams_per_peer` streams
    /// open, or the wait for tokens ran out.
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

/// A copy of [`ServerStats`]; also the `server` object of the devnet's exit line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
#[allow(missing_docs)] // the fields mirror `ServerStats`
pub struct ServerCounters {
    pub served: u64,
    pub not_found: u64,
    pub invalid: u64,
    pub rate_limited: u64,
    pub over_capacity: u64,
    pub bad_requests: u64,
    pub write_timeouts: u64,
    pub errors: u64,
}

impl ServerStats {
    /// The counters now.
    pub fn snapshot(&self) -> ServerCounters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ServerCounters {
            served: get(&self.served),
            not_found: get(&self.not_found),
            invalid: get(&self.invalid),
            rate_limited: get(&self.rate_limited),
            over_capacity: get(&self.over_capacity),
            bad_requests: get(&self.bad_requests),
            write_timeouts: get(&self.write_timeouts),
            errors: get(&self.errors),
        }
    }
}

struct Shared {
    chain: Arc<ChainSpec>,
    store: Arc<Store>,
    config: ServerConfig,
    global: DefaultDirectRateLimiter,
    peers: PeerLimiters,
    /// Per IP ([`IP_RATE`]), as many entries as the peer table.
    ips: IpLimiters,
    streams: Arc<Semaphore>,
    peer_streams: PeerSlots,
    stats: Arc<ServerStats>,
    /// Requests refused for rate count against the requester's application score.
    scores: PeerReporter,
    metrics: Arc<ReqRespMetrics>,
}

/// Starts serving on both protocol ids; returns the counters. Stops with `shutdown`. Fails if
/// another server already takes either protocol's streams.
pub fn spawn(
    inbound: InboundStreams,
    chain: Arc<ChainSpec>,
    store: Arc<Store>,
    config: ServerConfig,
    scores: PeerReporter,
    metrics: Arc<ReqRespMetrics>,
    shutdown: CancellationToken,
) -> Result<Arc<ServerStats>, super::inbound::AlreadyAccepted> {
    let stats = Arc::new(ServerStats::default());
    let shared = Arc::new(Shared {
        global: config.global.limiter(),
        peers: PeerLimiters::new(config.per_peer, config.peer_table),
        ips: IpLimiters::new(IP_RATE, config.peer_table),
        streams: Arc::new(Semaphore::new(config.max_streams.max(1))),
        peer_streams: PeerSlots::new(config.max_streams_per_peer),
        chain: chain.clone(),
        store,
        config,
        stats: stats.clone(),
        scores,
        metrics,
    });
    for protocol in protocols(chain.chain_id) {
        let mut incoming = inbound.accept(protocol)?;
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    () = shutdown.cancelled() => return,
                    next = incoming.recv() => next,
                };
                let Some(inbound) = next else { return };
                // Never wait here: incoming streams must keep being polled.
                tokio::spawn(serve_stream(shared.clone(), inbound));
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
    shared.scores.report(peer, PeerOutcome::RequestRefused);
    respond_error(shared, stream, ResultCode::Unknown).await;
}

/// Serves one stream and records its result code and duration.
async fn serve_stream(shared: Arc<Shared>, inbound: InboundStream) {
    let started = Instant::now();
    let (code, number) = serve(&shared, inbound.peer, inbound.ip, inbound.stream).await;
    shared
        .metrics
        .server_request(code, number, started.elapsed());
}

/// Serves one stream. Returns the code answered (for a request that could not be read or a
/// response that could not be written: 3, what op-node records) and the number asked for.
async fn serve(
    shared: &Shared,
    peer: PeerId,
    ip: Option<IpAddr>,
    mut stream: Stream,
) -> (ResultCode, Option<u64>) {
    let Ok(permit) = shared.streams.clone().try_acquire_owned() else {
        shared.stats.over_capacity.fetch_add(1, Ordering::Relaxed);
        shared
            .metrics
            .rate_limit_refusal(RateLimitRefusal::OverCapacity);
        // Every connected peer has its own places within the capacity, so a peer refused here
        // is one of those holding too many: the small, capped refusal penalty.
        shared.scores.report(peer, PeerOutcome::RequestRefused);
        respond_error(shared, &mut stream, ResultCode::Unknown).await;
        return (ResultCode::Unknown, None);
    };
    let Some(_slot) = shared.peer_streams.try_take(peer) else {
        // The shared place is not held while the refusal is written.
        drop(permit);
        refuse_for_rate(shared, peer, &mut stream, RateLimitRefusal::PeerStreams).await;
        return (ResultCode::Unknown, None);
    };
    let _permit = permit;
    let mut request = [0u8; REQUEST_BYTES];
    let read =
        tokio::time::timeout(shared.config.read_timeout, stream.read_exact(&mut request)).await;
    let number = match read.map(|r| r.map(|()| decode_request(&request))) {
        Ok(Ok(Ok(number))) => number,
        _ => {
            // A stream opened and left without its request (or with a bad one) held a place
            // for up to the read timeout: the same small, capped penalty as a refusal.
            shared.stats.bad_requests.fetch_add(1, Ordering::Relaxed);
            shared.scores.report(peer, PeerOutcome::RequestRefused);
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
    let ip_limiter = ip
        .filter(|ip| !ip.is_loopback())
        .map(|ip| shared.ips.get(ip));
    let tokens = acquire(
        &shared.global,
        &peer_limiter,
        ip_limiter.as_deref(),
        shared.config.max_throttle,
    )
    .await;
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
        // The stored bytes as read (canonical by `StoredBlock::ssz`'s type), encoded only when a
        // record somehow is not.
        Ok(Ok(Some(block))) => match block.ssz_bytes() {
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
        Ok(Err(e)) => {
            store_failed(shared, number, &e);
            encode_error(ResultCode::Unknown).to_vec()
        }
        Err(e) => {
            store_failed(shared, number, &e);
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

/// A store read failed (a damaged file, or the read task died): counted, and logged at most
/// once every [`STORE_ERROR_LOG`] interval with the number of failures it stands for, since any
/// peer can ask for the same damaged block again and again.
fn store_failed(shared: &Shared, number: u64, error: &dyn std::fmt::Display) {
    shared.stats.errors.fetch_add(1, Ordering::Relaxed);
    if let Some(failures) = STORE_ERROR_LOG.event() {
        tracing::error!(
            number,
            failures,
            %error,
            "payload_by_number: store read failed, answered code 3"
        );
    }
}

/// One line per 10 s for store failures while serving.
static STORE_ERROR_LOG: LogEvery = LogEvery::new(Duration::from_secs(10));

async fn respond_error(shared: &Shared, stream: &mut Stream, code: ResultCode) {
    let _ = tokio::time::timeout(shared.config.write_timeout, async {
        stream.write_all(&encode_error(code)).await?;
        stream.close().await
    })
    .await;
}
