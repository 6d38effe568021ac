//! The `node` and `devnet` commands as processes: data survives SIGKILL, SIGTERM stops
//! gracefully, and the devnet delivers every block and reports it.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::devnet::run_devnet;
use common::net::*;
use op_gossip::node::start;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

struct NodeProcess {
    child: Child,
    stdin: ChildStdin,
    events: mpsc::Receiver<Value>,
}

impl NodeProcess {
    fn start(rollup: &std::path::Path, datadir: &std::path::Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_op-gossip"))
            .args([
                "--p2p.unsafe.block.signer",
                common::DEV_ADDRESS,
                "node",
                "--rollup.config",
            ])
            .arg(rollup)
            .arg("--datadir")
            .arg(datadir)
            .args([
                "--p2p.listen.ip",
                "127.0.0.1",
                "--p2p.listen.tcp",
                "0",
                "--rpc.port",
                "0",
                "--control",
                "stdio",
            ])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        // Bounded: the reader thread waits when the test falls 1024 events behind.
        let (tx, events) = mpsc::sync_channel(1024);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send(v).is_err()
                {
                    return;
                }
            }
        });
        Self {
            child,
            stdin,
            events,
        }
    }

    /// The next event of `kind`, skipping others.
    fn wait_for(&self, kind: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let event = self
                .events
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {kind} event"));
            if event["event"] == kind && pred(&event) {
                return event;
            }
        }
    }

    fn send(&mut self, command: Value) {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_data_survives_sigkill_and_sigterm_is_graceful() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let rollup = dir.path().join("rollup.json");
    std::fs::write(
        &rollup,
        op_gossip::devnet::devnet_rollup_json(chain.genesis.l2_time).to_string(),
    )
    .unwrap();
    let seq = start(config(&chain, 0, dir.path(), true)).await.unwrap();
    let seq_addr = seq.dial_address().await.unwrap().to_string();
    let datadir = dir.path().join("follower");

    let mut follower = NodeProcess::start(&rollup, &datadir);
    let listening = follower.wait_for("listening", |_| true);
    assert_eq!(
        listening["head"], 0,
        "a fresh store starts at the genesis anchor"
    );
    follower.send(serde_json::json!({"cmd": "dial", "addr": seq_addr}));
    follower.wait_for("peers", |e| e["count"].as_u64() >= Some(1));
    // The sequencer's mesh takes the follower once its subscription arrives.
    wait_for_mesh(&[&seq], 1).await;
    seq.produce(12, Duration::from_millis(50), 5_000)
        .await
        .unwrap();
    follower.wait_for("head", |e| e["number"] == 12);

    // SIGKILL: nothing graceful happens, yet every committed block and the head survive.
    follower.child.kill().unwrap();
    follower.child.wait().unwrap();
    let mut follower = NodeProcess::start(&rollup, &datadir);
    let listening = follower.wait_for("listening", |_| true);
    assert_eq!(listening["head"], 12, "head restored after SIGKILL");

    // It keeps following from there.
    follower.send(serde_json::json!({"cmd": "dial", "addr": seq_addr}));
    follower.wait_for("peers", |e| e["count"].as_u64() >= Some(1));
    wait_for_mesh(&[&seq], 1).await;
    seq.produce(3, Duration::from_millis(50), 5_000)
        .await
        .unwrap();
    follower.wait_for("head", |e| e["number"] == 15);

    // SIGTERM: a clean exit with status 0 and the exit report.
    let pid = follower.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let exit = follower.wait_for("exit", |_| true);
    assert!(exit["peak_rss_kib"].as_u64().unwrap() > 0);
    assert_eq!(
        exit["head"]["number"], 15,
        "the exit line carries the final head"
    );
    assert_eq!(exit["head"]["hash"], seq.head().unwrap().hash.to_string());
    assert!(follower.child.wait().unwrap().success());
    seq.shutdown().await;
}

#[test]
fn devnet_command_delivers_every_block_and_writes_its_report() {
    let r = run_devnet(&[
        "--nodes",
        "5",
        "--blocks",
        "15",
        "--block-time",
        "100ms",
        "--block-size",
        "20KiB",
        "--topology",
        "ring",
    ]);
    assert_eq!(r["published"], 15);
    assert_eq!(r["all_delivered"], true);
    assert_eq!(r["per_node"].as_array().unwrap().len(), 5);
    if cfg!(target_os = "linux") {
        // Five nodes cannot validate, forward and store 15 blocks of 20 KiB for free, nor in
        // more CPU than the cores had over the run.
        let cpu = &r["cpu"];
        let secs = cpu["node_cpu_secs"].as_f64().unwrap();
        let cores = cpu["cores"].as_f64().unwrap();
        let wall = r["duration_secs"].as_f64().unwrap();
        assert!(secs > 0.0 && secs <= cores * wall + 0.5, "{cpu}");
        let per_block = cpu["node_cpu_ms_per_block"].as_f64().unwrap();
        assert!((per_block - 1000.0 * secs / 15.0).abs() < 1e-6, "{cpu}");
        assert!(cpu["host_steal_secs"].as_f64().unwrap() >= 0.0);
    }
    for node in r["per_node"].as_array().unwrap().iter().skip(1) {
        assert_eq!(node["received"], 15);
        assert_eq!(node["delivery_ratio"], 1.0);
        assert_eq!(node["head"], 15);
        assert!(node["peak_rss_mib"].as_f64().unwrap() > 0.0);
        for p in ["p50", "p95", "p99", "max"] {
            assert!(node["latency_ms"][p].is_u64(), "{p}");
        }
    }
}

#[test]
fn devnet_late_joiner_and_lost_gossip_are_filled_and_reported() {
    let r = run_devnet(&[
        "--nodes",
        "4",
        "--blocks",
        "60",
        "--block-time",
        "50ms",
        "--block-size",
        "1KiB",
        "--late-joiner",
        "40",
        "--drop",
        "0.1",
    ]);
    assert_eq!(r["all_stored"], true);
    assert_eq!(r["late_joiner_after"], 40);
    assert_eq!(r["drop_fraction"], 0.1);
    let nodes = r["per_node"].as_array().unwrap();
    for node in nodes.iter().skip(1) {
        // At least 60: tail blocks follow if a follower lost the last ones.
        assert!(node["head"].as_u64().unwrap() >= 60, "{node}");
        assert_eq!(node["has_all_blocks"], true);
    }
    // The late joiner missed the first 40 blocks entirely and fetched them.
    let late = &nodes[3];
    assert!(late["received"].as_u64().unwrap() <= 20, "{late}");
    let sync = &late["sync"];
    assert!(sync["fetched"].as_u64().unwrap() >= 40, "{sync}");
    assert!(sync["catch_up_secs"].as_f64().unwrap() > 0.0, "{sync}");
    assert!(sync["fetch_rate_per_sec"].as_f64().unwrap() > 0.0, "{sync}");
    assert_eq!(sync["rate_bound_per_sec"], 12.0, "3 peers × 4/s: {sync}");
}

#[test]
fn devnet_usage_errors_exit_2() {
    for args in [
        ["--nodes", "1"],
        ["--topology", "star"],
        ["--block-time", "0s"],
        ["--late-joiner", "0"],
        ["--drop", "1.5"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_op-gossip"))
            .arg("devnet")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}
