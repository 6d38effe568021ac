//! Nodes attached to an Engine API server on 127.0.0.1 (`common::fake_engine`: real HTTP, real
//! JWT check, block-hash verification): a follower inserts every accepted block in order, an
//! INVALID block is recorded and never retried (and its sender not blamed), an engine that is
//! down for a while loses nothing, a restarted node resumes from the engine's head, and a
//! sequencer whose engine builds its blocks feeds a follower that inserts them into its own
//! engine.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use alloy_rpc_types_engine::JwtSecret;
use common::fake_engine::FakeEngine;
use common::net::*;
use common::wait::wait_until;
use op_gossip::chain::ChainSpec;
use op_gossip::engine::EngineConfig;
use op_gossip::node::{NodeConfig, RunningNode, start};

const WAIT: Duration = Duration::from_secs(40);

fn secret() -> JwtSecret {
    JwtSecret::from_hex("7365637265742d666f722d7465737473".repeat(2)).unwrap()
}

fn with_engine(mut cfg: NodeConfig, engine: &FakeEngine) -> NodeConfig {
    cfg.engine = Some(EngineConfig {
        url: engine.url(),
        jwt_secret: secret(),
        timeout: Duration::from_secs(5),
        retry: Default::default(),
    });
    cfg
}

async fn wait_inserted(node: &RunningNode, engine: &FakeEngine, number: u64) {
    let inserted = wait_until(WAIT, async || engine.head().number >= number).await;
    assert!(
        inserted,
        "engine head {} < {number}; {:?}",
        engine.head().number,
        node.engine_stats().unwrap().snapshot()
    );
}

/// The engine made every block 1..=n its head, in order, each the sequencer's.
fn assert_in_order(engine: &FakeEngine, seq: &RunningNode, n: u64) {
    let inserted = engine.inserted();
    let numbers: Vec<u64> = inserted.iter().map(|b| b.number).collect();
    assert_eq!(numbers, (1..=n).collect::<Vec<_>>());
    for b in inserted {
        let ours = seq.store().canonical_block(b.number).unwrap().unwrap();
        assert_eq!(ours.id(), b);
    }
}

async fn pair(
    chain: &Arc<ChainSpec>,
    dir: &std::path::Path,
    engine: &FakeEngine,
) -> (RunningNode, RunningNode) {
    let seq = start(config(chain, 0, dir, true)).await.unwrap();
    let follower = start(with_engine(config(chain, 1, dir, false), engine))
        .await
        .unwrap();
    connect(&follower, &seq).await;
    wait_for_peers(&[&seq, &follower], 1).await;
    (seq, follower)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_inserts_every_block_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let engine = FakeEngine::start(secret(), chain.clone()).await;
    let (seq, follower) = pair(&chain, dir.path(), &engine).await;
    seq.produce(20, Duration::from_millis(50), 500)
        .await
        .unwrap();
    wait_inserted(&follower, &engine, 20).await;
    assert_in_order(&engine, &seq, 20);
    let stats = follower.engine_stats().unwrap().snapshot();
    assert_eq!(stats.inserted, 20);
    assert_eq!(stats.head_hash, seq.head().unwrap().hash);
    assert_eq!(
        engine.rejected_auth(),
        0,
        "every request carried a valid token"
    );
    // newPayload then forkchoiceUpdated, V4 / V3 for this chain's fork.
    let calls = engine.calls();
    assert!(calls.iter().filter(|c| *c == "engine_newPayloadV4").count() >= 20);
    assert!(
        calls
            .iter()
            .filter(|c| *c == "engine_forkchoiceUpdatedV3")
            .count()
            >= 20
    );
    follower.shutdown().await;
    seq.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_block_is_recorded_never_retried_and_its_sender_not_blamed() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let engine = FakeEngine::start(secret(), chain.clone()).await;
    engine.invalid_at(5);
    let (seq, follower) = pair(&chain, dir.path(), &engine).await;
    seq.produce(10, Duration::from_millis(50), 0).await.unwrap();
    follower.wait_for_head(10, WAIT).await.unwrap();
    wait_inserted(&follower, &engine, 4).await;
    let stats = follower.engine_stats().unwrap();
    assert!(
        wait_until(WAIT, async || stats.invalid.load(Ordering::Relaxed) >= 1).await,
        "block 5 was never judged: {:?}",
        stats.snapshot()
    );
    // Time passing is the point here: a retry of block 5 (after the driver's 250 ms first
    // backoff, or at the next store write) would show within these 2 s.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stats = follower.engine_stats().unwrap().snapshot();
    assert_eq!(stats.invalid, 1);
    assert_eq!(engine.head().number, 4, "nothing above the INVALID block");
    let new_payloads = engine
        .calls()
        .iter()
        .filter(|c| c.starts_with("engine_newPayload"))
        .count();
    assert_eq!(
        new_payloads, 5,
        "blocks 1..=5 sent once each; 5 is not retried"
    );
    assert_eq!(
        follower.app_counters(&seq.peer_id()).await.score(),
        0.0,
        "the sender is not blamed"
    );
    assert!(
        follower
            .bans()
            .list(op_gossip::clock::unix_now())
            .is_empty()
    );
    follower.shutdown().await;
    seq.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_down_for_a_while_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let engine = FakeEngine::start(secret(), chain.clone()).await;
    let (seq, follower) = pair(&chain, dir.path(), &engine).await;
    seq.produce(5, Duration::from_millis(50), 0).await.unwrap();
    wait_inserted(&follower, &engine, 5).await;
    engine.set_down(true);
    seq.produce(10, Duration::from_millis(50), 0).await.unwrap();
    follower.wait_for_head(15, WAIT).await.unwrap();
    // The driver tried block 6 and failed: it knows the engine is down.
    let stats = follower.engine_stats().unwrap();
    assert!(
        wait_until(WAIT, async || stats.errors.load(Ordering::Relaxed) >= 1).await,
        "the driver never tried the engine while it was down: {:?}",
        stats.snapshot()
    );
    assert_eq!(engine.head().number, 5);
    engine.set_down(false);
    wait_inserted(&follower, &engine, 15).await;
    assert_in_order(&engine, &seq, 15);
    let stats = follower.engine_stats().unwrap().snapshot();
    assert!(stats.errors >= 1, "{stats:?}");
    assert_eq!(stats.inserted, 15);
    follower.shutdown().await;
    seq.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_resumes_from_the_engine_head() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let engine = FakeEngine::start(secret(), chain.clone()).await;
    let (seq, follower) = pair(&chain, dir.path(), &engine).await;
    seq.produce(8, Duration::from_millis(50), 0).await.unwrap();
    wait_inserted(&follower, &engine, 8).await;
    follower.shutdown().await;
    // A new follower with an empty store on the same engine starts at the engine's head: it
    // fetches nothing below it and inserts what comes next.
    let other_dir = tempfile::tempdir().unwrap();
    let fresh = start(with_engine(
        config(&chain, 2, other_dir.path(), false),
        &engine,
    ))
    .await
    .unwrap();
    assert_eq!(
        fresh.head(),
        Some(engine.head()),
        "the store resumes from the engine's head"
    );
    connect(&fresh, &seq).await;
    wait_for_peers(&[&fresh, &seq], 1).await;
    seq.produce(4, Duration::from_millis(50), 0).await.unwrap();
    wait_inserted(&fresh, &engine, 12).await;
    assert_in_order(&engine, &seq, 12);
    assert_eq!(fresh.sync_stats().unwrap().snapshot().fetched, 0);
    assert_eq!(fresh.engine_stats().unwrap().snapshot().inserted, 4);
    fresh.shutdown().await;
    seq.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_built_sequencer_feeds_a_follower_engine() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let seq_engine = FakeEngine::start(secret(), chain.clone()).await;
    let follower_engine = FakeEngine::start(secret(), chain.clone()).await;
    let seq = start(with_engine(
        config(&chain, 0, dir.path(), true),
        &seq_engine,
    ))
    .await
    .unwrap();
    let follower = start(with_engine(
        config(&chain, 1, dir.path(), false),
        &follower_engine,
    ))
    .await
    .unwrap();
    connect(&follower, &seq).await;
    wait_for_peers(&[&seq, &follower], 1).await;
    seq.produce(6, Duration::from_millis(100), 0).await.unwrap();
    wait_inserted(&follower, &follower_engine, 6).await;
    assert_eq!(follower_engine.head(), seq_engine.head());
    assert_eq!(seq.head(), Some(seq_engine.head()));
    let calls = seq_engine.calls();
    assert!(
        calls.iter().filter(|c| *c == "engine_getPayloadV4").count() >= 6,
        "{calls:?}"
    );
    // One insertion path: the sequencer's engine got each of its blocks once (from the
    // insertion driver; the producer only builds), and the follower's engine once too.
    for engine in [&seq_engine, &follower_engine] {
        let sent = engine.new_payloads();
        assert_eq!(sent.len() as u64, engine.head().number, "{sent:?}");
        assert!(sent.values().all(|&n| n == 1), "{sent:?}");
    }
    // Blocks built by the engine carry the L1-info deposit first.
    let block = follower.store().canonical_block(3).unwrap().unwrap();
    assert_eq!(
        block.envelope.payload.transactions.iter().next().unwrap()[0],
        0x7e
    );
    assert!(
        follower
            .engine_stats()
            .unwrap()
            .inserted
            .load(Ordering::Relaxed)
            >= 6
    );
    follower.shutdown().await;
    seq.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_refuses_a_wrong_or_stale_token_and_a_tampered_payload() {
    let chain = devnet_now();
    let engine = FakeEngine::start(secret(), chain.clone()).await;
    // Wrong secret: HTTP 401, a typed error that is not worth retrying.
    let wrong = op_gossip::engine::EngineClient::new(
        &engine.url(),
        JwtSecret::from_hex("11".repeat(32)).unwrap(),
        Duration::from_secs(5),
    )
    .unwrap();
    let err = wrong.latest_block().await.unwrap_err();
    assert!(
        matches!(err, op_gossip::engine::EngineError::Unauthorized(_)),
        "{err}"
    );
    assert!(!err.is_transient());
    // A token issued two minutes ago (the engine allows ±60 s).
    let stale = secret()
        .encode(&alloy_rpc_types_engine::Claims {
            iat: op_gossip::clock::unix_now() - 120,
            exp: None,
        })
        .unwrap();
    let addr: std::net::SocketAddr = engine.url().trim_start_matches("http://").parse().unwrap();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body =
        r#"{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":["latest",false]}"#;
    let request = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {stale}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 401");
    assert_eq!(engine.rejected_auth(), 2);

    // A payload whose fields do not hash to its blockHash is INVALID.
    let client =
        op_gossip::engine::EngineClient::new(&engine.url(), secret(), Duration::from_secs(5))
            .unwrap();
    let mut env = common::block(&chain, 1, op_gossip::clock::unix_now(), 0);
    env.payload.parent_hash = chain.genesis.l2.hash;
    let mut env = common::rehash(env);
    env.payload.gas_used += 1;
    let status = client
        .new_payload(chain.block_version_at(env.payload.timestamp), &env)
        .await
        .unwrap();
    assert!(status.status.is_invalid(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devnet_attaches_its_first_follower_to_an_engine() {
    let chain = devnet_now();
    let engine = FakeEngine::start(secret(), chain).await;
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("jwt.hex");
    std::fs::write(
        &secret_file,
        format!("0x{}\n", "7365637265742d666f722d7465737473".repeat(2)),
    )
    .unwrap();
    let url = engine.url();
    let html = dir.path().join("report.html");
    let html_arg = html.to_string_lossy().to_string();
    let report = tokio::task::spawn_blocking(move || {
        let secret_file = secret_file.to_string_lossy().to_string();
        common::devnet::run_devnet(&[
            "--nodes",
            "3",
            "--blocks",
            "15",
            "--block-time",
            "100ms",
            "--l2",
            &url,
            "--l2.jwt-secret",
            &secret_file,
            "--report-html",
            &html_arg,
        ])
    })
    .await
    .unwrap();
    // The HTML report draws the insertions the node reported while it ran.
    let html = std::fs::read_to_string(&html).unwrap();
    let section = &html[html.find("<h2 id=\"engine\">").unwrap()..];
    let section = &section[..section.find("</figure>").expect("an engine plot")];
    assert!(section.contains("<svg") && section.contains("node 1: blocks inserted"));
    let nodes = report["per_node"].as_array().unwrap();
    let attached = &nodes[1]["engine"];
    assert_eq!(attached["inserted"], serde_json::json!(15), "{attached}");
    assert_eq!(attached["invalid"], serde_json::json!(0));
    assert_eq!(attached["head_number"], serde_json::json!(15));
    assert_eq!(attached["head_hash"], serde_json::json!(engine.head().hash));
    assert!(
        nodes[2].get("engine").is_none(),
        "only the first follower is attached"
    );
    assert_eq!(engine.head().number, 15);
}
