//! `op-gossip devnet --adversary <kind>`: each hostile node is banned by every node it reaches
//! within a bounded number of messages (or, the req/resp spammer, rate limited), while honest
//! delivery stays complete and no honest peer is banned.
//!
//! The library form runs in-process next to a `RunningNode` as well (first test).
//!
//! Each devnet run: 4 nodes (sequencer + 3 followers, full mesh), 40 blocks at 4 a second, the adversary
//! at 20 messages (or requests per node) a second. The runs take turns (a lock), so the timing
//! bounds below hold for one devnet on the machine, not five.

mod common;

use std::sync::Mutex;
use std::time::Duration;

use common::devnet::run_devnet;
use common::net::*;
use common::wait::wait_until;
use op_gossip::devnet::adversary::{
    self, AdversaryConfig, AdversaryKind, EQUIVOCATIONS_PER_HEIGHT, REDIAL_INTERVAL,
};
use op_gossip::node::{NodeEvent, start};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// Taken by each run, so the devnets do not compete for the CPU.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const NODES: u64 = 4;
const BLOCKS: u64 = 40;
/// Adversary messages per second (and requests per second to each node).
const RATE: f64 = 20.0;
/// How often the event loop pushes application scores into gossipsub (`APP_SCORE_PUSH`).
const APP_SCORE_PUSH_SECS: f64 = 1.0;
/// The ban monitor checks one connected peer per second, round robin (`BAN_MONITOR_INTERVAL`).
const MONITOR_SECS_PER_PEER: f64 = 1.0;
/// Scheduling delays on a loaded two-core machine: timers firing late, validation queued.
const SLACK_SECS: f64 = 1.0;

fn run(kind: &str, extra: &[&str]) -> Value {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let mut args = vec![
        "--nodes",
        "4",
        "--blocks",
        "40",
        "--block-time",
        "250ms",
        "--block-size",
        "1KiB",
        "--adversary",
        kind,
        "--adversary-rate",
        "20",
    ];
    args.extend_from_slice(extra);
    run_devnet(&args)
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Every follower accepted every published block from gossip, and no honest peer was banned.
fn assert_honest_delivery(r: &Value) {
    assert_eq!(r["published"], BLOCKS);
    assert_eq!(r["all_delivered"], true, "{r}");
    for node in r["per_node"].as_array().unwrap().iter().skip(1) {
        assert_eq!(node["received"], BLOCKS, "{node}");
        assert_eq!(node["delivery_ratio"], 1.0);
    }
    assert_eq!(r["adversary"]["honest_peers_banned"], 0);
}

/// Every node was reached and banned the adversary, after at most `before_charge` messages that
/// carried no penalty (its first charged REJECT is its `before_charge`-th message) plus what
/// arrives until gossipsub ignores it.
///
/// The charged REJECT costs −140 in the application score at once; the event loop pushes that
/// into gossipsub within `APP_SCORE_PUSH` (1 s), and below the graylist threshold (−40) gossipsub
/// drops the peer's messages before validation. So a node validates at most
/// `before_charge + RATE × (1 s + slack)` of its messages. The ban itself needs the ban monitor
/// to reach the adversary among the node's 4 peers (3 honest + it) at one per second: at most
/// 4 s after the push.
fn assert_banned_within(r: &Value, before_charge: f64) {
    let adv = &r["adversary"];
    assert_eq!(adv["should_be_banned"], true);
    assert_eq!(adv["targets"], NODES, "every node is a target");
    assert_eq!(adv["reached"], NODES, "{adv}");
    assert_eq!(adv["banned_by"], NODES, "{adv}");
    assert_eq!(adv["contained"], true);
    let seen_bound = before_charge + RATE * (APP_SCORE_PUSH_SECS + SLACK_SECS);
    let ban_ms_bound = 1000.0
        * ((before_charge - 1.0) / RATE
            + APP_SCORE_PUSH_SECS
            + NODES as f64 * MONITOR_SECS_PER_PEER
            + SLACK_SECS);
    for n in adv["per_node"].as_array().unwrap() {
        assert_eq!(n["banned"], true, "{n}");
        assert!(u(&n["rejected"]) >= 1, "{n}");
        let before_ban = u(&n["seen_before_ban"]) as f64;
        assert!(
            before_ban >= 1.0 && before_ban <= seen_bound,
            "node {}: {before_ban} messages before the ban, bound {seen_bound}",
            n["node"]
        );
        let after = u(&n["banned_after_ms"]) as f64;
        assert!(
            after <= ban_ms_bound,
            "node {}: banned {after} ms after its first message, bound {ban_ms_bound}",
            n["node"]
        );
    }
}

#[test]
fn an_invalid_signature_sender_is_banned_by_every_node() {
    let r = run("invalid-sig", &[]);
    assert_honest_delivery(&r);
    assert_banned_within(&r, 1.0);
    for n in r["adversary"]["per_node"].as_array().unwrap() {
        assert_eq!(n["accepted"], 0);
    }
}

#[test]
fn a_sequencer_signed_invalid_block_sender_is_banned_by_every_node() {
    let r = run("invalid-block", &[]);
    assert_honest_delivery(&r);
    assert_banned_within(&r, 1.0);
    for n in r["adversary"]["per_node"].as_array().unwrap() {
        assert_eq!(n["accepted"], 0);
    }
}

#[test]
fn an_oversize_sender_is_banned_by_every_node() {
    let r = run("oversize", &[]);
    assert_honest_delivery(&r);
    assert_banned_within(&r, 1.0);
}

#[test]
fn an_equivocator_is_banned_and_no_honest_forwarder_is() {
    let r = run("equivocate", &[]);
    assert_honest_delivery(&r);
    // At the attacked height a node accepts the adversary's first blocks until the height holds
    // 6 (the honest one + 5), then REJECTs; the REJECT is charged only once the adversary itself
    // delivered 7 distinct blocks there, i.e. at its 7th message at that height (it stays at one
    // height for 16 messages, and only it ever delivers the REJECTed ones).
    assert_banned_within(&r, 7.0);
    // Its equivocations were real blocks: nodes accepted some (at most 5 per height, over the
    // heights its messages before the ban span).
    let seen_bound = 7.0 + RATE * (APP_SCORE_PUSH_SECS + SLACK_SECS);
    let heights = (seen_bound / EQUIVOCATIONS_PER_HEIGHT as f64).ceil() as u64;
    let per_node = r["adversary"]["per_node"].as_array().unwrap();
    for n in per_node {
        assert!(u(&n["accepted"]) <= 5 * heights, "{n}");
    }
    assert!(per_node.iter().map(|n| u(&n["accepted"])).sum::<u64>() >= 1);
}

#[test]
fn a_reqresp_spammer_is_rate_limited_while_honest_sync_and_gossip_are_served() {
    // The last follower joins after 20 blocks and must fetch them from the three spammed nodes.
    let r = run("spam-reqresp", &["--late-joiner", "20"]);
    let nodes = r["per_node"].as_array().unwrap();
    assert_eq!(r["all_stored"], true, "{r}");
    for node in &nodes[1..3] {
        assert_eq!(node["received"], BLOCKS, "gossip unaffected: {node}");
    }
    let late = &nodes[3];
    assert_eq!(late["has_all_blocks"], true);
    assert!(u(&late["sync"]["fetched"]) >= 20, "{late}");
    assert_eq!(late["sync"]["errors"], 0, "no request refused: {late}");

    let adv = &r["adversary"];
    assert_eq!(adv["should_be_banned"], false);
    assert_eq!(adv["banned_by"], 0, "op-node's rules never ban a client");
    assert_eq!(adv["honest_peers_banned"], 0);
    assert_eq!(
        adv["targets"],
        NODES - 1,
        "the late joiner started after it"
    );
    assert_eq!(adv["reached"], NODES - 1);
    assert_eq!(adv["contained"], true);
    let c = &adv["counters"];
    let span_secs = (u(&c["last_sent_ms"]) - u(&c["first_sent_ms"])) as f64 / 1000.0;
    // op-node's server limits: 4/s per peer, burst 15; and ours: at most 15 streams per peer.
    let (peer_rate, burst, open_cap) = (4.0, 15.0, 15.0);
    // By the time it has sent N requests (N / RATE s), a node has admitted at most its burst, its
    // rate over that time and the open cap; the next one is refused: N ≤ (burst + cap) / (1 −
    // peer_rate / RATE) = 37.5. The count is read when the refusal arrives, so add what is sent
    // meanwhile (half a second).
    let first_refusal_bound = ((burst + open_cap) / (1.0 - peer_rate / RATE)).ceil() + RATE / 2.0;
    for n in adv["per_node"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["targeted"] == true)
    {
        let req = &n["requests"];
        assert!(u(&req["requests"]) as f64 >= RATE * span_secs * 0.5, "{n}");
        let limited = u(&req["answers"]["rate_limited"]);
        assert!(limited > 0, "{n}");
        // Only the spammer is refused (the late joiner asks once at a time, within its rate):
        // every refusal it saw was counted by the server, and the server may have refused a few
        // more whose answers were still on the way when the spammer stopped counting (at most
        // its requests left without an answer).
        let answers = &req["answers"];
        let answered: u64 = [
            "served",
            "not_found",
            "invalid",
            "rate_limited",
            "other_code",
            "open_failed",
            "stream_errors",
        ]
        .iter()
        .map(|k| u(&answers[*k]))
        .sum();
        let unanswered = u(&req["requests"]).saturating_sub(answered);
        let server = u(&n["server_rate_limited"]);
        assert!(
            (limited..=limited + unanswered).contains(&server),
            "server refused {server}, spammer saw {limited} with {unanswered} unanswered: {n}"
        );
        let first = u(&req["requests_before_first_limit"]) as f64;
        assert!(
            first <= first_refusal_bound,
            "{first} > {first_refusal_bound}: {n}"
        );
        // Served: the burst plus 4/s while it ran (answers may land up to a second later).
        let served = u(&req["answers"]["served"]) + u(&req["answers"]["not_found"]);
        assert!(served as f64 >= burst, "{n}");
        assert!(
            served as f64 <= burst + peer_rate * (span_secs + 1.0 + SLACK_SECS),
            "{served} served in {span_secs:.1} s: {n}"
        );
    }
}

#[test]
fn the_adversary_runs_in_process_next_to_a_node_and_is_refused_after_its_ban() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(in_process());
}

async fn in_process() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let node = start(config(&chain, 0, dir.path(), false)).await.unwrap();
    let mut events = node.subscribe();
    let shutdown = CancellationToken::new();
    let adv = adversary::spawn(
        AdversaryConfig {
            kind: AdversaryKind::InvalidSig,
            chain: chain.clone(),
            targets: vec![node.dial_address().await.unwrap()],
            rate: 20,
            sequencer_key: None,
            keypair: libp2p::identity::Keypair::generate_secp256k1(),
        },
        &shutdown,
    )
    .unwrap();
    let banned = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Ok(NodeEvent::PeerBanned { peer, .. }) = events.recv().await {
                return peer;
            }
        }
    })
    .await
    .expect("the adversary was banned");
    assert_eq!(banned, adv.peer_id());
    assert!(adv.joined());
    // Its next dial (every 2 s) is refused by the node's gate.
    assert!(
        wait_until(3 * REDIAL_INTERVAL, async || {
            adv.counters().connections_refused > 0
        })
        .await,
        "no refused redial"
    );
    let counters = adv.stop().await;
    assert!(counters.sent >= 1);
    assert_eq!(counters.max_connected, 1);
    assert_eq!(counters.connected, 0);
    assert!(counters.targets[0].connections_refused >= 1);
    assert!(
        node.gate_stats()
            .accepts_refused
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
    node.shutdown().await;
}
