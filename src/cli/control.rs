//! JSON-lines control channel of `op-gossip node --control stdio`, which `op-gossip devnet` uses
//! to drive its child nodes: one JSON object per line each way.
//!
//! Events (stdout): `listening {addr, head, rpc}` (`rpc`: the admin RPC address or null),
//! `peers {count}`, `accepted {number, hash, from, at_ms}`, `published {number, hash, at_ms}`, `fetched {number, at_ms}` (stored from
//! payload_by_number), `head {number, hash, at_ms}`, `judged {verdict, reason, from, at_ms}`
//! (non-ACCEPT only), `banned {peer, score, until, at_ms}` (the ban monitor banned `peer` until
//! unix second `until`), `produced {ok, error}`, `lagged {missed}`, `exit {head, peak_rss_kib,
//! sync, server, engine, discovery}` (`head`: `{number, hash}` the node stopped on, or null;
//! `sync`: the sync client's counters; `server`: the payload_by_number server's; `engine`: the
//! engine insertion driver's, with `--l2`; `discovery`: `{discovered, table}`, or null without
//! discovery).
//! `topology {peers, mesh}` (answer to `topology`: connected peer ids, and those in our gossipsub
//! mesh), `engine {inserted, head, at_ms}` (with `--l2`: the engine's insertions, written when
//! they change, at most every `ENGINE_POLL`).
//! `from` is the peer that forwarded the message to this node.
//! Commands (stdin): `dial {addr}`, `produce {count, interval_ms, block_size}`, `topology`,
//! `shutdown`.
//! End of stdin counts as `shutdown`, so a node never outlives its orchestrator.

use std::time::Duration;

use super::control_event::{ControlEvent, DiscoveryExit, ExitHead, NodeExit};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::clock::unix_millis;
use crate::engine::driver::EngineStats;
use crate::node::{BlockSource, NodeEvent, ProducerClient, RunningNode};
use crate::p2p::reqresp::server::ServerStats;
use crate::store::BlockRef;
use crate::sync::SyncStats;
use crate::validate::Verdict;
use std::time::SystemTime;

/// Lines waiting to be written to stdout.
const OUTPUT_QUEUE: usize = 1024;
/// Longest command line accepted (a multiaddr is under 200 bytes).
const MAX_COMMAND_BYTES: usize = 4096;
/// How often the engine's insertion counter is checked for an `engine` line: fine enough for the
/// devnet report's insertion curve, and at most four lines a second.
const ENGINE_POLL: Duration = Duration::from_millis(250);

/// A command from the orchestrator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum ControlCommand {
    /// Dial a multiaddr.
    Dial {
        /// `/ip4/…/tcp/…/p2p/…`.
        addr: String,
    },
    /// Produce blocks (sequencer only).
    Produce {
        /// How many.
        count: u64,
        /// Milliseconds between blocks.
        interval_ms: u64,
        /// Transaction bytes per block.
        block_size: usize,
    },
    /// Report the connected peers and the mesh (`topology` event).
    Topology,
    /// Stop the node.
    Shutdown,
}

/// Starts the channel; the returned receiver resolves when a shutdown is requested.
pub fn serve(node: &RunningNode) -> oneshot::Receiver<()> {
    let (out_tx, out_rx) = mpsc::channel::<String>(OUTPUT_QUEUE);
    let (stop_tx, stop_rx) = oneshot::channel();
    tokio::spawn(write_lines(out_rx));
    tokio::spawn(forward_events(
        node.subscribe(),
        out_tx.clone(),
        node.network().clone(),
    ));
    if let Some(engine) = node.engine_stats() {
        tokio::spawn(watch_engine(engine.clone(), out_tx.clone()));
    }
    let network = node.network().clone();
    let producer = node.producer();
    let head = node.head().map(|h| h.number);
    let rpc = node.rpc_addr().map(|a| a.to_string());
    tokio::spawn(async move {
        if let Ok(addr) = dial_address(&network).await {
            let line = ControlEvent::Listening { addr, head, rpc }.line();
            let _ = out_tx.send(line).await;
        }
        read_commands(network, producer, out_tx).await;
        let _ = stop_tx.send(());
    });
    stop_rx
}

/// Writes the final `exit` line with the head the node stopped on, the process's peak resident
/// memory and the sync client's and payload_by_number server's counters. The head is in the line
/// itself because `head` events still queued when the node stops may never be written.
pub async fn report_exit(
    enabled: bool,
    head: Option<BlockRef>,
    sync: Option<&SyncStats>,
    server: Option<&ServerStats>,
    engine: Option<&crate::engine::driver::EngineStats>,
    discovery: Option<&crate::discovery::metrics::DiscoveryStats>,
) {
    if enabled {
        let line = ControlEvent::Exit(Box::new(NodeExit {
            head: head.map(|h| ExitHead {
                number: h.number,
                hash: h.hash,
            }),
            peak_rss_kib: peak_rss_kib(),
            sync: sync.map(SyncStats::snapshot),
            server: server.map(ServerStats::snapshot),
            engine: engine.map(crate::engine::driver::EngineStats::snapshot),
            discovery: discovery.map(|d| DiscoveryExit {
                discovered: d.discovered(),
                table: d.table(),
            }),
        }))
        .line();
        let mut out = tokio::io::stdout();
        let _ = out.write_all(format!("{line}\n").as_bytes()).await;
        let _ = out.flush().await;
    }
}

/// Peak resident set size of this process in KiB (Linux `VmHWM`), 0 where unavailable.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

async fn dial_address(network: &crate::p2p::NetworkHandle) -> Result<String, ()> {
    for _ in 0..500 {
        if let Ok(addrs) = network.listen_addrs().await
            && let Some(addr) = addrs.first()
        {
            return Ok(crate::p2p::with_peer_id(addr, network.local_peer_id()).to_string());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(())
}

async fn read_commands(
    network: crate::p2p::NetworkHandle,
    producer: Option<ProducerClient>,
    out: mpsc::Sender<String>,
) {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.len() > MAX_COMMAND_BYTES {
            let _ = out
                .send(
                    ControlEvent::Error {
                        message: "command line too long".into(),
                    }
                    .line(),
                )
                .await;
            continue;
        }
        match serde_json::from_str::<ControlCommand>(&line) {
            Ok(ControlCommand::Dial { addr }) => {
                let result = match addr.parse() {
                    Ok(addr) => network.dial(addr).await.map_err(|e| e.to_string()),
                    Err(e) => Err(format!("bad multiaddr: {e}")),
                };
                if let Err(message) = result {
                    let _ = out.send(ControlEvent::Error { message }.line()).await;
                }
            }
            Ok(ControlCommand::Produce {
                count,
                interval_ms,
                block_size,
            }) => {
                let producer = producer.clone();
                let out = out.clone();
                tokio::spawn(async move {
                    let result = match producer {
                        Some(p) => p
                            .produce(count, Duration::from_millis(interval_ms), block_size)
                            .await
                            .map_err(|e| e.to_string()),
                        None => Err("this node has no sequencer key".to_owned()),
                    };
                    let line = ControlEvent::Produced {
                        ok: result.is_ok(),
                        error: result.err(),
                    }
                    .line();
                    let _ = out.send(line).await;
                });
            }
            Ok(ControlCommand::Topology) => {
                let ids = |p: Result<Vec<libp2p::PeerId>, _>| -> Vec<String> {
                    p.unwrap_or_default()
                        .iter()
                        .map(|p| p.to_string())
                        .collect()
                };
                let peers = ids(network.connected_peers().await);
                let mesh = ids(network.mesh_peers().await);
                let line = ControlEvent::Topology { peers, mesh }.line();
                let _ = out.send(line).await;
            }
            Ok(ControlCommand::Shutdown) => return,
            Err(e) => {
                let _ = out
                    .send(
                        ControlEvent::Error {
                            message: format!("bad command: {e}"),
                        }
                        .line(),
                    )
                    .await;
            }
        }
    }
}

async fn forward_events(
    mut events: broadcast::Receiver<NodeEvent>,
    out: mpsc::Sender<String>,
    network: crate::p2p::NetworkHandle,
) {
    loop {
        let line = match events.recv().await {
            Ok(NodeEvent::Accepted { id, from, at }) => ControlEvent::Accepted {
                number: id.number,
                hash: id.hash,
                from: from.to_string(),
                at_ms: unix_millis(at),
            },
            Ok(NodeEvent::Published { id, at }) => ControlEvent::Published {
                number: id.number,
                hash: id.hash,
                at_ms: unix_millis(at),
            },
            Ok(NodeEvent::HeadChanged(h)) => ControlEvent::Head {
                number: h.number,
                hash: h.hash,
                at_ms: unix_millis(SystemTime::now()),
            },
            Ok(NodeEvent::Stored {
                id,
                source: BlockSource::ReqResp(_),
            }) => ControlEvent::Fetched {
                number: id.number,
                at_ms: unix_millis(SystemTime::now()),
            },
            Ok(NodeEvent::Validated {
                from,
                verdict,
                reason,
            }) if verdict != Verdict::Accept => ControlEvent::Judged {
                verdict: verdict.as_str().to_owned(),
                reason: reason.map(str::to_owned),
                from: from.to_string(),
                at_ms: unix_millis(SystemTime::now()),
            },
            Ok(NodeEvent::PeerBanned { peer, score, until }) => ControlEvent::Banned {
                peer: peer.to_string(),
                score,
                until,
                at_ms: unix_millis(SystemTime::now()),
            },
            Ok(NodeEvent::PeerConnected(_) | NodeEvent::PeerDisconnected(_)) => {
                let count = network
                    .connected_peers()
                    .await
                    .map(|p| p.len())
                    .unwrap_or(0);
                ControlEvent::Peers { count }
            }
            Ok(_) => continue,
            Err(broadcast::error::RecvError::Lagged(missed)) => ControlEvent::Lagged { missed },
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if out.send(line.line()).await.is_err() {
            return;
        }
    }
}

/// Writes an `engine` line whenever the engine's insertion count changed, until stdout closes.
async fn watch_engine(engine: std::sync::Arc<EngineStats>, out: mpsc::Sender<String>) {
    let mut last = 0;
    loop {
        tokio::time::sleep(ENGINE_POLL).await;
        let now = engine.snapshot();
        if now.inserted == last {
            continue;
        }
        last = now.inserted;
        let line = ControlEvent::Engine {
            inserted: now.inserted,
            head: now.head_number,
            at_ms: unix_millis(SystemTime::now()),
        }
        .line();
        if out.send(line).await.is_err() {
            return;
        }
    }
}

async fn write_lines(mut lines: mpsc::Receiver<String>) {
    let mut out = tokio::io::stdout();
    while let Some(line) = lines.recv().await {
        if out.write_all(format!("{line}\n").as_bytes()).await.is_err()
            || out.flush().await.is_err()
        {
            return;
        }
    }
}
