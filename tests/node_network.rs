//! Several nodes on 127.0.0.1: a sequencer publishes, followers validate, forward and store.

mod common;

use std::time::Duration;

use common::net::*;
use common::*;
use op_gossip::node::{NodeEvent, start};
use op_gossip::validate::Verdict;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_every_follower_stores_every_block() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let sequencer = start(config(&chain, 0, dir.path(), true)).await.unwrap();
    let mut followers = Vec::new();
    for i in 1..5 {
        followers.push(start(config(&chain, i, dir.path(), false)).await.unwrap());
    }
    // A line: 0 - 1 - 2 - 3 - 4, so blocks must be forwarded hop by hop.
    connect(&followers[0], &sequencer).await;
    for i in 1..4 {
        connect(&followers[i], &followers[i - 1]).await;
    }
    let all: Vec<_> = std::iter::once(&sequencer).chain(followers.iter()).collect();
    wait_for_peers(&all, 1).await;

    sequencer.produce(20, Duration::from_millis(100), 10_000).await.unwrap();
    let expected = sequencer.wait_for_head(20, WAIT).await.unwrap();
    assert_eq!(expected.number, 20);
    for (i, f) in followers.iter().enumerate() {
        assert_eq!(f.wait_for_head(20, WAIT).await, Some(expected), "follower {i}");
        for n in 1..=20 {
            let stored = f.store().canonical_block(n).unwrap().unwrap_or_else(|| panic!("follower {i} misses {n}"));
            assert_eq!(stored, sequencer.store().canonical_block(n).unwrap().unwrap());
        }
    }
    for node in followers {
        node.shutdown().await;
    }
    sequencer.shutdown().await;
}
