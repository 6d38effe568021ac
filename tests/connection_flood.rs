//! A flood of fresh peer ids against a node process on 127.0.0.1 (row 1 of issue 18's attack
//! table): 1,000 peers, each its own identity, dial in waves and stay as long as they can. The
//! node keeps its established peers within `--p2p.peers.hi` + `INBOUND_SLACK`, its admin RPC
//! answers throughout, and its peak memory stays within the 64 MiB target.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::http::call;
use common::net::bare_swarm;
use common::process::NodeProcess;
use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, identity, ping};
use op_gossip::p2p::DEFAULT_PEERS_HI;
use op_gossip::p2p::conn_caps::INBOUND_SLACK;
use serde_json::json;
use tokio_util::sync::CancellationToken;

const ATTACKERS: usize = 1000;
const WAVE: usize = 100;
/// The node's resident memory target (README, `scripts/bench-propagation.sh`).
const RSS_TARGET_BYTES: u64 = 64 << 20;

/// One attacker: a fresh identity that dials `addr` and keeps its connection as long as the
/// node lets it (it never closes idle connections itself). Counts established connections.
async fn attacker(addr: Multiaddr, established: Arc<AtomicUsize>, stop: CancellationToken) {
    let mut swarm = bare_swarm(identity::Keypair::generate_ed25519(), |_| {
        ping::Behaviour::default()
    });
    if swarm.dial(addr).is_err() {
        return;
    }
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            event = swarm.select_next_some() => {
                if let SwarmEvent::ConnectionEstablished { .. } = event {
                    established.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_fresh_peer_ids_stay_within_the_connection_bound() {
    // The attackers' sockets live in this process too.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let dir = tempfile::tempdir().unwrap();
    let (node, addr, rpc) = NodeProcess::devnet_with_rpc(dir.path());
    let bound = DEFAULT_PEERS_HI + INBOUND_SLACK;

    let stop = CancellationToken::new();
    let established = Arc::new(AtomicUsize::new(0));
    let mut attackers = Vec::new();
    let mut most_connected = 0;
    let mut samples = 0;
    for wave in 0..ATTACKERS / WAVE {
        for _ in 0..WAVE {
            attackers.push(tokio::spawn(attacker(
                addr.clone(),
                established.clone(),
                stop.clone(),
            )));
        }
        // The admin RPC answers while the wave lands, and the node holds its bound: four
        // samples 100 ms apart (a sampling pace, not a wait for an event).
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let stats = tokio::time::timeout(
                Duration::from_secs(5),
                call(rpc, "opp2p_peerStats", json!([])),
            )
            .await
            .unwrap_or_else(|_| panic!("the admin RPC did not answer during wave {wave}"));
            let connected = stats["connected"].as_u64().unwrap() as usize;
            most_connected = most_connected.max(connected);
            samples += 1;
            assert!(
                connected <= bound,
                "{connected} peers connected, bound {bound}"
            );
        }
    }
    // The flood keeps up its pressure a second longer, so the peak memory read next covers the
    // last wave's handshakes (a high-water mark: there is no event to wait on).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let peak_rss = node.peak_rss_bytes();
    stop.cancel();
    for a in attackers {
        let _ = a.await;
    }
    eprintln!(
        "{ATTACKERS} attackers: {} connections established at some point, at most {most_connected} \
         peers connected over {samples} samples (bound {bound}), node peak RSS {:.1} MiB",
        established.load(Ordering::Relaxed),
        peak_rss as f64 / (1 << 20) as f64
    );
    assert!(
        most_connected >= DEFAULT_PEERS_HI,
        "the flood did reach the node"
    );
    assert!(
        peak_rss <= RSS_TARGET_BYTES,
        "peak RSS {peak_rss} B over the 64 MiB target"
    );
}
