//! # op-gossip
//!
//! A node for the block-gossip layer of OP Stack rollups, wire-compatible with op-node.
//!
//! ## Tasks and channels of a running node ([`node::start`])
//!
//! ```text
//!  p2p::EventLoop (sole owner of the Swarm) ◄── NetworkHandle commands (bounded)
//!     │ gossipsub message (topic, bytes)
//!     ▼
//!  validation task ≤ 256 queued (≤ 5 per peer), ≤ 4 running, ≤ 12 MiB decompressed, 3 s each
//!     │ ACCEPT          ──► verdict back to the loop ──► gossipsub (only ACCEPT is forwarded)
//!     ▼
//!  node forward task ──► store writer (batches → one durable redb transaction) ──► head (watch)
//!     (the block's signed SSZ bytes go along and are written as they are: wire::canonical)
//!                              ▲
//!  producer (sequencer) ───────┘ and ──publish──► NetworkHandle
//!
//!  store writer ──"wrote" (watch)──► sync coordinator ──Store::holes──► sync::plan::SyncPlan
//!                                       one worker per peer: global + peer limiter → request
//!  payload_by_number (p2p::reqresp::client) ──► plan: quarantine → promote along parent
//!  hashes from a trusted (gossip-signed) block ──► store writer; outcomes ──► PeerReporter
//!  (sync::quarantine: ≤ 100 payloads, ≤ 32 MiB, ≤ 8 MiB per peer)
//!
//!  p2p::peer_manager (sans-IO, inside the swarm's first behaviour, p2p::gate): sole owner of
//!  application scores, the equivocation tracker, the peer book, bans, the operator's lists and
//!  the scorebook. In: typed outcomes (PeerReporter from the sync client and the req/resp server,
//!  GossipJudgement from validation: a REJECT charges the forwarder only for a fault in the bytes,
//!  ValidationError::peer_fault, a height-limit one only an equivocator), the operator's changes
//!  (admin RPC command), the event loop's timers (ban monitor one peer a second, trim every 10 s
//!  above peers.hi down to peers.lo, slot decay, ban expiry). Out: PeerActions the event loop
//!  carries out (push a score into gossipsub, judge now, close, announce a ban, ban and list
//!  records to disk in order through p2p::record_queue, score records on the blocking pool).
//!  Bans, lists and scores are persisted in the store and restored on start.
//!
//!  connection ──► p2p::gate (banned/blocked peer, IP or subnet refused) ──► p2p::conn_caps (per
//!  IP and subnet, pending, inbound ≤ peers.hi + 5, per peer, memory) ──► gossipsub (op-node
//!  light scoring; application scores pushed in every second and at once after a penalty)
//!
//!  start (with --l2): engine::startup waits for the engine (backoff), checks its genesis and
//!  chain id against the rollup config
//!  store writer ──"wrote" (watch)──► engine::driver (with --l2), the engine head's one owner:
//!  the store's canonical block above the engine's head ──► newPayload + forkchoiceUpdated
//!  (engine::client, fresh JWT each) ── unreachable: backoff; INVALID: remembered, never resent;
//!  the store is the queue ── the head it knows ──► engine::head (watch)
//!  l1 (with --l1; one l1::SignerSource, one HTTP client, built once at start and shared):
//!  SystemConfig signer slot at start and every 10 min ──► validator signer set (rotation with
//!  3 h grace); latest L1 block ──► the sequencer's L1 origin (l1::OriginTracker)
//!  producer (with --l2): waits for engine::head to be its tip ──► engine::builder:
//!  forkchoiceUpdated+attributes, getPayload ──► sign, publish, store (the driver inserts it);
//!  a failed build asks the driver to re-read the engine's head (it re-inserts what the engine
//!  lost) and backs off; block n+1 = block n + block time (producer::pace)
//!
//!  http (one accept loop per server: ≤ 64 connections, longest-idle evicted when full, read /
//!  idle / write deadlines, in-flight cap) ──► admin RPC (rpc: Host allow-list, jsonrpsee;
//!  admin_* and opgossip_* only with --rpc.enable-admin)
//!      ──► NetworkHandle commands (peer snapshots from the p2p::peers::book, connect; bans,
//!          blocks, protection and disconnects as OperatorChanges to the peer manager)
//!      └─► p2p::peers::{lists, bans} (read only)
//!
//!  inbound payload_by_number ──► p2p::reqresp::server: ≤ 128 streams, ≤ 2 per peer, per-peer, per-IP
//!  + global limiter (≤ 20 s wait) ──► Store::block_by_number ──► its stored bytes, framed snappy
//!
//!  discovery (own task; discv5 on its own UDP socket; off with --p2p.no-discovery): bootnodes +
//!  persisted table ──► lookups, table walks ──► `opstack` filter (our chain, v0) ──► gate and
//!  --p2p.netrestrict ──► bounded dial queue ──DialTarget (bounded)──► EventLoop dials
//!  ──outcome, identify's observed IP (try_send)──► discovery; ENR + table ──► discovery file
//!
//!  metrics::Metrics (one registry) ◄── each concern registers its own metrics, defined beside
//!  it: p2p::metrics (gossip events, verdicts, validation queue), p2p::peer_manager::metrics
//!  (score samples every 15 s, penalties; gate and ban counters read at scrape time),
//!  p2p::reqresp::metrics (server and sync client: result code, duration, rate limits),
//!  engine::collector (with --l2), gossipsub's own, the HTTP servers' counters ──►
//!  metrics::http: GET /metrics (--metrics.enabled; served by http like the admin RPC)
//! ```
//!
//! ## Gossip in, byte by byte
//!
//! ```text
//!  chain_config ──► chain::ChainSpec            (start-up: chain file or rollup.json)
//!
//!  wire::message_id  op-node's id: SHA-256(domain ‖ topic ‖ decompressed)[..20]
//!  wire::snappy      bounded decompression (66 B .. 10 MiB, checked before allocating)
//!  wire::signature   payload hash → signing hash → signer recovery (v ∈ {0,1,2,3}, high-s ok)
//!  wire::ssz         payload layout of the topic's version (V1..V4), zero-copy transactions
//!  wire::canonical   the signed bytes, kept (shared) when canonical: stored and served as is
//!  wire::block_hash  header rebuilt from the payload, keccak(rlp) compared to the claim
//!  wire::tx_trie     its transactions root; the large leaves are hashed in one batch
//!  wire::keccak      batch keccak: payload hash and trie leaves two at a time (AVX-512)
//!  validate          op-node's rules and verdicts (ACCEPT / IGNORE / REJECT), seen cache
//! ```
//!
//! Publishing runs `wire` backwards: [`wire::ssz::encode_envelope`] → sign
//! ([`wire::signature::BlockSigner`]) → [`wire::snappy::compress_block`], all in
//! [`wire::envelope::encode_signed`]. The `payload_by_number` frames are in [`wire::reqresp`].
//!
//! Operator tools: [`cli::check_message`] runs a captured message through the same validator;
//! [`devnet`] runs a local network of node processes and reports delivery, latency and memory,
//! optionally with a hostile node ([`devnet::adversary`]) whose ban it reports:
//!
//! ```text
//!  devnet::scenario (start, join, adversary, produce, late joiner, stop)
//!     ──ControlCommand (stdin)──► devnet::processes: op-gossip node ×N (cli::control)
//!     ◄──ControlEvent (stdout)─── devnet::collect: events ──► per-node stats ──► devnet::report
//! ```
//!
//! Errors are `thiserror` enums, one per concern, carrying the underlying library's error as
//! their source rather than its text; [`node::NodeError`] wraps each start step's typed error
//! (store, network setup with libp2p's own error, engine, L1, discovery, RPC) and the
//! producer's ([`producer::ProduceError`]); the CLI prints it once.
//!
//! Everything in `wire` and `validate` is sans-IO: no sockets, no clocks (time is an argument),
//! no panics on input, and every allocation sized from the wire is bounded first.
//! The protocol reference is `shared/spec/op-p2p.md`.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![warn(missing_docs)]

pub mod block_builder;
pub mod chain;
pub mod chain_config;
pub mod cli;
pub mod clock;
pub mod devnet;
pub mod discovery;
pub mod engine;
pub mod events;
pub mod http;
pub mod l1;
pub mod log_limit;
pub mod metrics;
pub mod node;
pub mod p2p;
pub mod producer;
pub mod rpc;
pub mod store;
pub mod sync;
pub mod validate;
pub mod wire;
