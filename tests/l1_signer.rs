//! The unsafe-block signer from L1 (`--l1`), against a JSON-RPC server on 127.0.0.1 playing the
//! L1 node: the signer is read from the SystemConfig slot at start, a rotation found at a reload
//! keeps the previous signer for the grace period, and an L1 that cannot be reached leaves the
//! configured signer in place.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy_primitives::{Address, B256};
use common::net::*;
use common::wait::wait_until;
use common::*;
use op_gossip::l1::{L1Config, UNSAFE_BLOCK_SIGNER_SLOT};
use op_gossip::node::start;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SYSTEM_CONFIG: Address = Address::repeat_byte(0x5c);
/// The L1 block the fake L1 reports as latest.
const L1_HASH: B256 = B256::repeat_byte(0xab);

/// Answers `eth_getStorageAt(SYSTEM_CONFIG, slot, "latest")` with the signer in `signer`, and
/// records the parameters it was asked.
async fn fake_l1(signer: Arc<Mutex<Address>>, asked: Arc<Mutex<Vec<Value>>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let signer = signer.clone();
            let asked = asked.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        let mut chunk = [0u8; 4096];
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    while buf.len() < end + 4 + len {
                        let mut chunk = [0u8; 4096];
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let request: Value =
                        serde_json::from_slice(&buf[end + 4..end + 4 + len]).unwrap();
                    buf.drain(..end + 4 + len);
                    let result = if request["method"] == "eth_getBlockByNumber" {
                        json!({"number": "0x64", "hash": L1_HASH,
                               "timestamp": format!("0x{:x}", op_gossip::clock::unix_now() - 30),
                               "baseFeePerGas": "0x3b9aca00"})
                    } else {
                        asked.lock().unwrap().push(request["params"].clone());
                        json!(B256::left_padding_from(signer.lock().unwrap().as_slice()))
                    };
                    let text = json!({"jsonrpc": "2.0", "id": request["id"], "result": result})
                        .to_string();
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{text}",
                        text.len()
                    );
                    if socket.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

fn l1_config(url: String) -> L1Config {
    L1Config {
        url,
        system_config: SYSTEM_CONFIG,
        reload_interval: Duration::from_millis(500),
        start_retry: Duration::from_millis(50),
    }
}

fn current(node: &op_gossip::node::RunningNode) -> Vec<Address> {
    node.validator().signers().current().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signer_comes_from_l1_and_rotates_with_a_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let configured = dev_address();
    let from_l1 = other_signer().address();
    let signer = Arc::new(Mutex::new(from_l1));
    let asked = Arc::default();
    let url = fake_l1(signer.clone(), Arc::clone(&asked)).await;
    let mut cfg = config(&chain, 0, dir.path(), false);
    cfg.l1 = Some(l1_config(url));
    let node = start(cfg).await.unwrap();

    // Read at start: the L1 signer is current, the configured one only within its grace.
    assert_eq!(current(&node), vec![from_l1]);
    let signers = node.validator().signers();
    assert!(signers.has_previous());
    let now = op_gossip::clock::unix_now();
    assert!(matches!(
        signers.check(configured, now),
        op_gossip::validate::SignerMatch::Previous
    ));
    assert_eq!(
        asked.lock().unwrap()[0],
        json!([SYSTEM_CONFIG, UNSAFE_BLOCK_SIGNER_SLOT, "latest"])
    );

    // A rotation on L1 is picked up at the next reload.
    let rotated = Address::repeat_byte(0x77);
    *signer.lock().unwrap() = rotated;
    assert!(
        wait_until(Duration::from_secs(10), async || {
            current(&node) == vec![rotated]
        })
        .await,
        "rotation not picked up"
    );
    let now = op_gossip::clock::unix_now();
    assert!(matches!(
        node.validator().signers().check(from_l1, now),
        op_gossip::validate::SignerMatch::Previous
    ));
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_l1_leaves_the_configured_signer() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut cfg = config(&chain, 0, dir.path(), false);
    cfg.l1 = Some(l1_config(url));
    let node = start(cfg).await.unwrap();
    assert_eq!(current(&node), vec![dev_address()]);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sequencer_follows_the_l1_origin() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let signer = Arc::new(Mutex::new(dev_address()));
    let url = fake_l1(signer, Arc::default()).await;
    let mut cfg = config(&chain, 0, dir.path(), true);
    cfg.l1 = Some(l1_config(url));
    let seq = start(cfg).await.unwrap();
    seq.produce(3, Duration::from_millis(20), 0).await.unwrap();
    let head = seq.wait_for_head(3, Duration::from_secs(20)).await.unwrap();
    // Each block's L1-info deposit names the L1 block, with sequence numbers 0, 1, 2.
    for n in 1..=head.number {
        let block = seq.store().canonical_block(n).unwrap().unwrap();
        let deposit = block
            .envelope
            .payload
            .transactions
            .iter()
            .next()
            .unwrap()
            .to_vec();
        assert_eq!(deposit[0], 0x7e);
        let at = deposit
            .windows(32)
            .position(|w| w == L1_HASH.as_slice())
            .expect("the L1 origin's hash is in the deposit");
        assert!(at > 0);
        let seq_bytes = (n - 1).to_be_bytes();
        assert!(
            deposit.windows(8).any(|w| w == seq_bytes),
            "sequence number {} in the deposit",
            n - 1
        );
    }
    seq.shutdown().await;
}
