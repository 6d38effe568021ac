//! Log lines a peer can cause are capped per call site: a peer sending hundreds of gossip
//! messages that carry a signature field (each of which rust-libp2p answers with a WARN) costs
//! the operator at most `LINES_PER_WINDOW` lines, then one summary line per window.

mod common;

use std::time::{Duration, Instant};

use common::net::AuthoredPeer;
use common::process::NodeProcess;
use common::*;
use op_gossip::log_limit::callsite::{LINES_PER_WINDOW, WINDOW};

const WAIT: Duration = Duration::from_secs(30);
/// What rust-libp2p writes for each such message (in anonymous validation mode).
const PEER_WARNING: &str = "Signature field was non-empty";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_repeating_a_warning_gets_a_capped_count_and_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(&[
        "--chain",
        "devnet",
        "--datadir",
        dir.path().to_str().unwrap(),
        "--rpc.disable",
    ]);
    let (addr, _) = node.addresses(false);

    let chain = op_gossip::chain_config::load_chain("devnet").unwrap();
    let topic = chain.topic(op_gossip::wire::BlockVersion::V4);
    let mut peer = AuthoredPeer::new(&[&topic]);
    peer.swarm.dial(addr).unwrap();
    assert!(
        peer.drive_until_subscribed(WAIT).await,
        "the node's subscription never arrived"
    );
    const SENT: u64 = 300;
    for n in 1..=SENT {
        let msg = signed_dev(&chain, &block(&chain, n, NOW, 100));
        peer.swarm
            .behaviour_mut()
            .publish(libp2p::gossipsub::IdentTopic::new(&topic), msg)
            .unwrap();
        if n % 50 == 0 {
            peer.drive(Duration::from_millis(100)).await;
        }
    }
    // Lets the last burst leave (the swarm has no task of its own; nothing to wait on).
    peer.drive(Duration::from_secs(1)).await;

    // Everything the node writes until the summary of the window the warnings fell in.
    let deadline = Instant::now() + WINDOW + WAIT;
    let (mut warnings, mut summary) = (0u32, None);
    while summary.is_none() {
        let Some(line) = node.next_line(deadline) else {
            break;
        };
        if line.contains(PEER_WARNING) {
            warnings += 1;
        }
        if line.contains("log lines suppressed") && line.contains("libp2p_gossipsub") {
            summary = Some(line);
        }
    }
    drop(node);
    eprintln!("warnings written: {warnings}; summary: {summary:?}");
    assert!(warnings >= 1, "the peer's messages reach the warning");
    assert!(
        warnings <= LINES_PER_WINDOW,
        "{warnings} warnings for {SENT} messages"
    );
    let summary = summary.expect("a summary line for the suppressed warnings");
    assert!(summary.contains("suppressed="), "{summary}");
}
