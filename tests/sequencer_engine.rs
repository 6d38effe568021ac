//! A sequencer on its chain's clock (`Schedule::ChainTime`, 1 s blocks) whose engine
//! (`common::fake_engine`, with op-reth's behaviours: SYNCING and no payload id for a build on a
//! head it lacks, a restart that loses the newest blocks, rising timestamps) restarts, starts
//! late, or is down for a while, and a rollup config on another genesis. Each test checks the
//! chain afterwards: every height from 1 up, the same hash in the sequencer's store, its engine
//! and (where there is one) the follower's engine, and every timestamp its parent's plus the
//! block time.
//!
//! The pauses between retries are shortened through `EngineConfig::retry` (50 ms up to 1 s, the
//! late start up to 2 s) so the tests take the outage plus a few seconds.

mod common;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use alloy_primitives::B256;
use alloy_rpc_types_engine::JwtSecret;
use common::fake_engine::FakeEngine;
use common::net::*;
use op_gossip::chain::ChainSpec;
use op_gossip::engine::EngineConfig;
use op_gossip::engine::retry::RetryConfig;
use op_gossip::node::{NodeConfig, RunningNode, start};
use op_gossip::producer::Schedule;
use op_gossip::store::BlockRef;

fn secret() -> JwtSecret {
    JwtSecret::from_hex("7365637265742d666f722d7465737473".repeat(2)).unwrap()
}

const FAST: RetryConfig = RetryConfig {
    min: Duration::from_millis(50),
    max: Duration::from_secs(1),
};

/// The devnet chain with 1 s blocks whose genesis was `behind` seconds ago (the sequencer
/// starts that many blocks behind and builds them back to back).
fn chain_behind(behind: u64) -> Arc<ChainSpec> {
    let mut chain = op_gossip::chain_config::load_chain("devnet").unwrap();
    chain.block_time = 1;
    chain.genesis.l2_time = op_gossip::clock::unix_now() - behind;
    chain.genesis.l2.hash = B256::repeat_byte(0x67);
    Arc::new(chain)
}

fn with_engine(mut cfg: NodeConfig, engine: &FakeEngine, retry: RetryConfig) -> NodeConfig {
    cfg.engine = Some(EngineConfig {
        url: engine.url(),
        jwt_secret: secret(),
        timeout: Duration::from_secs(5),
        retry,
    });
    cfg
}

/// A sequencer on the chain's clock.
fn sequencer(
    chain: &Arc<ChainSpec>,
    dir: &std::path::Path,
    engine: &FakeEngine,
    retry: RetryConfig,
) -> NodeConfig {
    let mut cfg = with_engine(config(chain, 0, dir, true), engine, retry);
    cfg.sequencer.as_mut().unwrap().schedule = Schedule::ChainTime;
    cfg
}

/// Log lines of the whole test binary (tests run in parallel: each filters on its engine's URL).
fn logs() -> Arc<Mutex<Vec<String>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<String>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = lines.clone();
        tracing_subscriber::fmt()
            .with_env_filter("op_gossip=info")
            .with_ansi(false)
            .with_writer(move || Capture(sink.clone()))
            .init();
        lines
    })
    .clone()
}

struct Capture(Arc<Mutex<Vec<String>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap()
            .push(String::from_utf8_lossy(buf).into_owned());
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Prints the lines about `engine` (shown by the harness when a test fails, or with
/// `--nocapture`).
fn dump(engine: &FakeEngine) {
    let url = engine.url();
    for line in logs().lock().unwrap().iter().filter(|l| l.contains(&url)) {
        eprint!("{line}");
    }
}

/// Lines about `engine` that contain `message`.
fn count_lines(engine: &FakeEngine, message: &str) -> usize {
    let url = engine.url();
    logs()
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(&url) && l.contains(message))
        .count()
}

async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    assert!(
        common::wait::wait_until(timeout, async || done()).await,
        "timed out waiting for {what}"
    );
}

/// Waits until the engine's head is at `number` or above.
async fn wait_engine(engine: &FakeEngine, number: u64) {
    wait_until(
        &format!("engine head {number}"),
        Duration::from_secs(60),
        || engine.head().number >= number,
    )
    .await;
}

/// Waits until the engine's head is the block of the current slot (the sequencer caught up). A
/// block is built once its slot has begun, so the head is the current slot's block for most of
/// each slot; one behind is not caught up (with it, a head read after 30 s of outage could be
/// 29 slots on).
async fn wait_caught_up(engine: &FakeEngine, chain: &ChainSpec) {
    wait_until("the sequencer to catch up", Duration::from_secs(60), || {
        let target = chain.target_block_number(op_gossip::clock::unix_now());
        engine.head().number >= target
    })
    .await;
}

/// Every height 1..=top: the same block in the sequencer's store and in each engine, and each
/// timestamp its parent's plus the block time (so block n is at `l2_time + n`).
fn assert_chain(seq: &RunningNode, engines: &[&FakeEngine], chain: &ChainSpec, top: u64) {
    let mut parent = BlockRef {
        number: 0,
        hash: chain.genesis.l2.hash,
    };
    for n in 1..=top {
        let stored = seq.store().canonical_block(n).unwrap().unwrap();
        let p = &stored.envelope.payload;
        assert_eq!(
            p.parent_hash,
            parent.hash,
            "block {n} builds on block {}",
            n - 1
        );
        assert_eq!(
            p.timestamp,
            chain.genesis.l2_time + n * chain.block_time,
            "block {n}: parent + block time"
        );
        for engine in engines {
            let (theirs, ts) = engine
                .canonical(n)
                .unwrap_or_else(|| panic!("engine lacks block {n}"));
            assert_eq!(theirs, stored.id(), "block {n}");
            assert_eq!(ts, p.timestamp);
        }
        parent = stored.id();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_that_restarts_without_its_last_10_blocks_gets_them_back_and_the_chain_goes_on() {
    let _ = logs();
    let dir = tempfile::tempdir().unwrap();
    let chain = chain_behind(14);
    let seq_engine = FakeEngine::start(secret(), chain.clone()).await;
    let follower_engine = FakeEngine::start(secret(), chain.clone()).await;
    seq_engine.set_strict();
    follower_engine.set_strict();
    let seq = start(sequencer(&chain, dir.path(), &seq_engine, FAST))
        .await
        .unwrap();
    let follower = start(with_engine(
        config(&chain, 1, dir.path(), false),
        &follower_engine,
        FAST,
    ))
    .await
    .unwrap();
    connect(&follower, &seq).await;
    wait_for_peers(&[&seq, &follower], 1).await;
    wait_engine(&seq_engine, 18).await;

    // op-reth SIGKILLed with its newest blocks in memory: it comes back 10 blocks behind.
    seq_engine.set_down(true);
    let head = seq_engine.head();
    let lost: Vec<BlockRef> = (head.number - 9..=head.number)
        .map(|n| seq_engine.canonical(n).unwrap().0)
        .collect();
    seq_engine.restart_losing(10);
    assert_eq!(seq_engine.head().number, head.number - 10);
    // Down until the sequencer has met the outage (a refused call).
    let refused = seq_engine.refused();
    wait_until("a call to the down engine", Duration::from_secs(60), || {
        seq_engine.refused() > refused
    })
    .await;
    seq_engine.set_down(false);

    // The sequencer re-inserts the lost blocks from its store, then builds on them.
    wait_engine(&seq_engine, head.number + 5).await;
    for block in &lost {
        assert_eq!(
            seq_engine.canonical(block.number).unwrap().0,
            *block,
            "re-inserted as it was"
        );
    }
    let top = seq_engine.head().number;
    wait_engine(&follower_engine, top).await;
    assert_chain(&seq, &[&seq_engine, &follower_engine], &chain, top);
    // One insertion path: each block sent once, the lost ones once more after the restart.
    let sent = seq_engine.new_payloads();
    for n in 1..=top {
        let block = seq_engine.canonical(n).unwrap().0;
        let expected = if lost.contains(&block) { 2 } else { 1 };
        assert_eq!(
            sent.get(&block.hash),
            Some(&expected),
            "newPayload for block {n}"
        );
    }
    assert_eq!(sent.len() as u64, top, "no other block was sent");
    dump(&seq_engine);
    // The build on the lost head was answered SYNCING with no payload id; recovered once.
    assert!(count_lines(&seq_engine, "block production failing") >= 1);
    assert_eq!(count_lines(&seq_engine, "block production recovered"), 1);
    follower.shutdown().await;
    seq.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_that_starts_20_s_after_the_node() {
    let _ = logs();
    let dir = tempfile::tempdir().unwrap();
    let chain = chain_behind(1);
    let engine = FakeEngine::start(secret(), chain.clone()).await;
    engine.set_strict();
    engine.set_down(true);
    let retry = RetryConfig {
        min: Duration::from_millis(50),
        max: Duration::from_secs(2),
    };
    let starting = tokio::spawn(start(sequencer(&chain, dir.path(), &engine, retry)));
    // Time passing is the point: the node must keep waiting, retrying at its pace, for 20 s.
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert!(!starting.is_finished(), "the node waits for its engine");
    let tries = engine.refused();
    // 50 ms doubling to 2 s: 6 tries in the first 3.15 s, then one every 2 s.
    assert!((2..=20).contains(&tries), "{tries} tries in 20 s");
    engine.set_down(false);
    let seq = tokio::time::timeout(Duration::from_secs(10), starting)
        .await
        .expect("started once the engine answers")
        .unwrap()
        .unwrap();
    wait_caught_up(&engine, &chain).await;
    let top = engine.head().number;
    assert!(top >= 20, "about 21 slots passed: {top}");
    assert_chain(&seq, &[&engine], &chain, top);
    dump(&engine);
    assert_eq!(count_lines(&engine, "waiting for the engine to answer"), 1);
    assert_eq!(count_lines(&engine, "engine reached"), 1);
    // Behind by the 20 s wait: one line, then one when caught up (more only if a loaded
    // machine makes it fall a slot behind again).
    assert!(count_lines(&engine, "behind the wall clock") >= 1);
    assert!(count_lines(&engine, "caught up with the wall clock") >= 1);
    seq.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_down_for_30_s_is_retried_a_few_times_a_second_and_the_sequencer_catches_up() {
    let _ = logs();
    let dir = tempfile::tempdir().unwrap();
    let chain = chain_behind(2);
    let engine = FakeEngine::start(secret(), chain.clone()).await;
    engine.set_strict();
    let seq = start(sequencer(&chain, dir.path(), &engine, FAST))
        .await
        .unwrap();
    wait_engine(&engine, 4).await;
    engine.set_down(true);
    let stopped_at = engine.head().number;
    // Time passing is the point: 30 s of outage, and how often the node calls in it.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let tries = engine.refused();
    // A loaded machine can make the sequencer fall a slot behind before the outage too: count
    // the lines from here.
    let behind_before = count_lines(&engine, "behind the wall clock");
    let caught_up_before = count_lines(&engine, "caught up with the wall clock");
    engine.set_down(false);
    // The producer's builds and the driver's head reads, each at most one per second once the
    // backoff reached its 1 s cap.
    assert!(tries <= 2 * 30 + 20, "{tries} requests in 30 s");
    wait_caught_up(&engine, &chain).await;
    let top = engine.head().number;
    assert!(
        top >= stopped_at + 30,
        "no slot skipped: {stopped_at} → {top}"
    );
    assert_chain(&seq, &[&engine], &chain, top);
    dump(&engine);
    // One line when production began failing, one when it recovered; one when it fell behind
    // the wall clock and one when it caught up, having built the missed slots back to back.
    assert_eq!(count_lines(&engine, "block production failing"), 1);
    assert_eq!(count_lines(&engine, "block production recovered"), 1);
    assert!(count_lines(&engine, "behind the wall clock") > behind_before);
    // The insertion driver's head reads (asked for after each failed build) log the same way.
    assert_eq!(count_lines(&engine, "engine unreachable; retrying"), 1);
    assert!(count_lines(&engine, "engine calls succeed again") <= 1);
    let caught_up = logs()
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(&engine.url()) && l.contains("caught up with the wall clock"))
        .cloned()
        .collect::<Vec<_>>();
    assert!(caught_up.len() > caught_up_before, "{caught_up:?}");
    let built: u64 = caught_up[caught_up_before]
        .split("built=")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|t| t.parse().ok())
        .unwrap();
    assert!(built >= 25, "{built} blocks built back to back");
    // The driver's head is the engine's (both move on every 1 s slot, the driver's just after
    // the engine's: compared once the driver has recorded the engine's latest head).
    let stats = seq.engine_stats().unwrap();
    wait_until(
        "the driver's head to be the engine's",
        Duration::from_secs(60),
        || stats.snapshot().head_number == engine.head().number,
    )
    .await;
    assert!(stats.snapshot().head_number >= top);
    // The engine metrics, under op-node's names where it has them.
    let metrics = seq.metrics().encode().unwrap();
    let value = |series: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in {metrics}"))
    };
    let failures = value("op_gossip_engine_build_failures_total{kind=\"unreachable\"}");
    assert!(failures >= 5.0, "{failures}");
    assert!(value("op_node_default_sequencing_errors_total") >= failures);
    assert!(
        value("op_node_default_rpc_client_requests_total{method=\"engine_forkchoiceUpdatedV3\"}")
            >= top as f64
    );
    assert!(
        value(
            "op_node_default_rpc_client_responses_total{method=\"engine_newPayloadV4\",error=\"<nil>\"}"
        ) >= top as f64
    );
    assert!(
        value(
            "op_gossip_engine_payload_status_total{method=\"engine_newPayloadV4\",status=\"VALID\"}"
        ) >= top as f64
    );
    assert!(metrics.contains("op_node_default_rpc_client_request_duration_seconds_bucket"));
    let engine_head = value("op_node_default_refs_number{layer=\"l2\",type=\"l2_unsafe\"}");
    assert!(engine_head >= top as f64, "{engine_head}");
    assert!(value("op_node_default_unsafe_payloads_buffer_len") <= 2.0);
    seq.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollup_config_on_another_genesis_or_chain_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let chain = chain_behind(0);
    let engine = FakeEngine::start(secret(), chain.clone()).await;
    let mut other = (*chain).clone();
    other.genesis.l2.hash = B256::repeat_byte(0x11);
    let error = start(sequencer(&Arc::new(other), dir.path(), &engine, FAST))
        .await
        .err()
        .expect("refused");
    let text = error.to_string();
    assert!(
        text.contains(&format!("{}", chain.genesis.l2.hash)),
        "{text}"
    );
    assert!(
        text.contains(&format!("{}", B256::repeat_byte(0x11))),
        "{text}"
    );
    assert!(text.contains("another chain"), "{text}");
    let mut other = (*chain).clone();
    other.chain_id = 902;
    let error = start(sequencer(&Arc::new(other), dir.path(), &engine, FAST))
        .await
        .err()
        .expect("refused");
    let text = error.to_string();
    assert!(text.contains("902") && text.contains("901"), "{text}");
    // The same through `op-gossip node --rollup.config`: it exits with the error.
    let mut rollup = op_gossip::devnet::devnet_rollup_json(chain.genesis.l2_time);
    rollup["genesis"]["l2"]["hash"] = serde_json::json!(B256::repeat_byte(0x11));
    rollup["block_time"] = serde_json::json!(1);
    let rollup_path = dir.path().join("rollup.json");
    std::fs::write(&rollup_path, rollup.to_string()).unwrap();
    let secret_path = dir.path().join("jwt.hex");
    std::fs::write(&secret_path, "7365637265742d666f722d7465737473".repeat(2)).unwrap();
    let url = engine.url();
    let datadir = dir.path().join("cli");
    let args = [
        "--rollup.config",
        rollup_path.to_str().unwrap(),
        "--datadir",
        datadir.to_str().unwrap(),
        "--l2",
        &url,
        "--l2.jwt-secret",
        secret_path.to_str().unwrap(),
    ];
    let mut node = common::process::NodeProcess::start(&args);
    let line = node.wait_for("another chain");
    assert!(
        line.contains(&format!("{}", chain.genesis.l2.hash)),
        "{line}"
    );
    assert!(
        line.contains(&format!("{}", B256::repeat_byte(0x11))),
        "{line}"
    );
    let status = tokio::task::spawn_blocking(move || node.child.wait().unwrap())
        .await
        .unwrap();
    assert!(!status.success());
    // Nothing was built on the wrong genesis.
    assert!(
        !engine
            .calls()
            .iter()
            .any(|c| c.starts_with("engine_forkchoiceUpdated"))
    );
}
