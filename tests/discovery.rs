//! Discovery on 127.0.0.1: nodes that know only a bootnode find each other and exchange blocks;
//! records of other chains (or without `opstack`) stay in the table and are never dialled; the
//! ENR and the table survive a restart with a sequence number that only grows; malformed
//! packets and records are dropped without harm; `--p2p.no-discovery` opens no UDP socket.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::net::*;
use discv5::Enr;
use op_gossip::discovery::metrics::{CandidateResult, DiscoveryStats};
use op_gossip::discovery::opstack::OpStackId;
use op_gossip::discovery::persist::TableStore;
use op_gossip::discovery::records::{Bootnode, discv5_key};
use op_gossip::discovery::{DiscoveryConfig, DiscoveryHandle, start as start_discovery};
use op_gossip::node::start;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);
const LOCALHOST: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// A discovery-only instance (a bootnode, or a fake peer whose record we choose).
async fn discovery_only(
    key: &libp2p::identity::Keypair,
    chain_id: u64,
    tcp: Option<u16>,
    bootnodes: Vec<Bootnode>,
    store: TableStore,
) -> (
    DiscoveryHandle,
    CancellationToken,
    tokio::task::JoinHandle<()>,
) {
    let mut config = DiscoveryConfig::new(chain_id, LOCALHOST);
    // The socket is on a fresh port each start; the record names a fixed one (as an operator
    // behind a port mapping would), so a restart changes nothing in it.
    config.advertise_udp = tcp.map(|t| t + 1);
    config.advertise_tcp = tcp;
    config.bootnodes = bootnodes;
    config.store = store;
    config.lookup_interval = Duration::from_millis(500);
    let token = CancellationToken::new();
    let (handle, task) = start_discovery(
        config,
        key,
        None,
        Arc::new(DiscoveryStats::default()),
        token.clone(),
    )
    .await
    .unwrap();
    (handle, token, task)
}

fn discovery_config(chain_id: u64, bootnode: &Enr) -> DiscoveryConfig {
    let mut config = DiscoveryConfig::new(chain_id, LOCALHOST);
    config.bootnodes = vec![Bootnode::Enr(Box::new(bootnode.clone()))];
    config.lookup_interval = Duration::from_millis(500);
    config
}

async fn wait_until(what: &str, check: impl AsyncFnMut() -> bool) {
    assert!(
        common::wait::wait_until(WAIT, check).await,
        "timed out waiting for {what}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_knowing_only_a_bootnode_find_each_other_and_exchange_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let (boot, boot_stop, boot_task) = discovery_only(
        &node_key(50),
        chain.chain_id,
        None,
        vec![],
        TableStore::Memory,
    )
    .await;
    let boot_enr = boot.local_enr().await.unwrap();
    let mut nodes = Vec::new();
    for i in 0..4u8 {
        let mut cfg = config(&chain, i, dir.path(), i == 0);
        cfg.discovery = Some(discovery_config(chain.chain_id, &boot_enr));
        cfg.rpc = Some(op_gossip::rpc::RpcConfig {
            addr: LOCALHOST,
            port: 0,
            ..op_gossip::rpc::RpcConfig::default()
        });
        nodes.push(start(cfg).await.unwrap());
    }
    let all: Vec<_> = nodes.iter().collect();
    // No static peers and no dials from the test: only discovery connects them.
    wait_for_peers(&all, 3).await;
    for (i, node) in nodes.iter().enumerate() {
        let stats = node.discovery().unwrap().stats();
        assert!(
            stats.discovered() >= 3,
            "node {i} found {}",
            stats.discovered()
        );
        // The peer book keeps the records of the peers discovery dialled (op-node's metadata).
        let views = node.network().peers(true).await.unwrap();
        assert!(
            views
                .iter()
                .any(|v| v.record.enr.is_some() && v.record.chain_id == chain.chain_id),
            "node {i}: no peer with an ENR and chain id"
        );
    }
    // The admin RPC: our ENR and chain id (op-node's fields), the table, the peers' records.
    let rpc = nodes[1].rpc_addr().unwrap();
    let me = common::http::call(rpc, "opp2p_self", serde_json::json!([])).await;
    let enr: Enr = me["ENR"].as_str().unwrap().parse().unwrap();
    assert_eq!(me["chainID"], chain.chain_id);
    assert_eq!(
        enr.node_id(),
        nodes[1]
            .discovery()
            .unwrap()
            .local_enr()
            .await
            .unwrap()
            .node_id()
    );
    let table = common::http::call(rpc, "opp2p_discoveryTable", serde_json::json!([])).await;
    assert!(
        table
            .as_array()
            .unwrap()
            .contains(&serde_json::json!(boot_enr.to_base64())),
        "{table}"
    );
    let stats = common::http::call(rpc, "opp2p_peerStats", serde_json::json!([])).await;
    assert!(stats["table"].as_u64().unwrap() >= 1, "{stats}");
    let dump = common::http::call(rpc, "opp2p_peers", serde_json::json!([true])).await;
    assert!(
        dump["peers"]
            .as_object()
            .unwrap()
            .values()
            .any(|p| p["ENR"].as_str().is_some_and(|e| e.starts_with("enr:"))
                && p["chainID"] == chain.chain_id),
        "{dump}"
    );
    nodes[0]
        .produce(5, Duration::from_millis(100), 1000)
        .await
        .unwrap();
    let expected = nodes[0].wait_for_head(5, WAIT).await.unwrap();
    for (i, f) in nodes.iter().enumerate().skip(1) {
        assert_eq!(f.wait_for_head(5, WAIT).await, Some(expected), "node {i}");
    }
    for node in nodes {
        node.shutdown().await;
    }
    boot_stop.cancel();
    boot_task.await.unwrap();
}

/// Counts TCP connections accepted on a loopback port (a peer's claimed libp2p port).
async fn counting_listener() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::Relaxed);
            drop(stream);
        }
    });
    (port, accepted)
}

/// A raw discv5 node on loopback with the record we choose (`opstack` raw RLP or none).
async fn raw_discv5(secret: u8, tcp: u16, opstack_rlp: Option<Vec<u8>>) -> discv5::Discv5 {
    let key = discv5_key(&node_key(secret)).unwrap();
    let socket = tokio::net::UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let udp = socket.local_addr().unwrap().port();
    let mut builder = Enr::builder();
    builder
        .ip4(std::net::Ipv4Addr::LOCALHOST)
        .udp4(udp)
        .tcp4(tcp);
    if let Some(rlp) = opstack_rlp {
        builder.add_value_rlp("opstack", rlp.into());
    }
    let enr = builder.build(&key).unwrap();
    let listen = discv5::ListenConfig::FromSockets {
        ipv4: Some(Arc::new(socket)),
        ipv6: None,
    };
    let mut d = discv5::Discv5::new(enr, key, discv5::ConfigBuilder::new(listen).build()).unwrap();
    d.start().await.unwrap();
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_chains_bad_records_and_blocked_peers_are_never_dialled() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let (other_port, other_dials) = counting_listener().await;
    let (missing_port, missing_dials) = counting_listener().await;
    let (bad_port, bad_dials) = counting_listener().await;
    let (ours_port, ours_dials) = counting_listener().await;
    // Another chain (OP Mainnet), no `opstack`, a malformed one (a list, not bytes), and ours.
    let other = raw_discv5(60, other_port, Some(OpStackId::for_chain(10).rlp())).await;
    let missing = raw_discv5(61, missing_port, None).await;
    let bad = raw_discv5(62, bad_port, Some(vec![0xc2, 0x0a, 0x00])).await;
    let ours = raw_discv5(
        63,
        ours_port,
        Some(OpStackId::for_chain(chain.chain_id).rlp()),
    )
    .await;
    // Our chain too, but the operator blocked its peer id (kept in the store across restarts).
    let (blocked_port, blocked_dials) = counting_listener().await;
    let blocked = raw_discv5(
        64,
        blocked_port,
        Some(OpStackId::for_chain(chain.chain_id).rlp()),
    )
    .await;
    let mut cfg = config(&chain, 1, dir.path(), false);
    {
        std::fs::create_dir_all(&cfg.data_dir).unwrap();
        let store = op_gossip::store::Store::open(
            &cfg.data_dir.join(op_gossip::node::STORE_FILE),
            cfg.retention,
            &chain,
        )
        .unwrap();
        let lists = op_gossip::p2p::peers::lists::PeerLists::load(Arc::new(store));
        lists
            .apply_now(op_gossip::p2p::peers::lists::ListChange::BlockPeer(
                node_key(64).public().to_peer_id(),
            ))
            .unwrap();
    }
    let mut d = discovery_config(chain.chain_id, &other.local_enr());
    d.bootnodes = [&other, &missing, &bad, &ours, &blocked]
        .iter()
        .map(|n| Bootnode::Enr(Box::new(n.local_enr())))
        .collect();
    cfg.discovery = Some(d);
    let node = start(cfg).await.unwrap();
    let discovery = node.discovery().unwrap().clone();
    // Our chain's record is dialled (its "libp2p port" is our listener): the filter is not
    // simply refusing everything.
    wait_until("the record of our chain to be dialled", async || {
        ours_dials.load(Ordering::Relaxed) > 0
    })
    .await;
    // The others are in the table (shared DHT) …
    let table: Vec<_> = discovery
        .table()
        .await
        .unwrap()
        .iter()
        .map(Enr::node_id)
        .collect();
    for n in [&other, &missing, &bad] {
        assert!(table.contains(&n.local_enr().node_id()), "{table:?}");
    }
    // … classified at every table walk and lookup, and never dialled.
    let stats = discovery.stats();
    wait_until("the table walk", async || {
        stats.candidates(CandidateResult::OtherChain) > 0
            && stats.candidates(CandidateResult::NoOpstack) > 0
            && stats.candidates(CandidateResult::Malformed) > 0
            && stats.candidates(CandidateResult::Refused) > 0
    })
    .await;
    // Time passing is the point: more table walks and lookups (every 500 ms), none may dial.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        (
            other_dials.load(Ordering::Relaxed),
            missing_dials.load(Ordering::Relaxed),
            bad_dials.load(Ordering::Relaxed),
            blocked_dials.load(Ordering::Relaxed)
        ),
        (0, 0, 0, 0)
    );
    // Ours and the blocked one are records of our chain.
    assert_eq!(stats.discovered(), 2);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enr_and_table_survive_a_restart_and_the_sequence_only_grows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("discovery.txt");
    let store = TableStore::File(path.clone());
    let (peer, peer_stop, _peer_task) =
        discovery_only(&node_key(70), 901, None, vec![], TableStore::Memory).await;
    let peer_enr = peer.local_enr().await.unwrap();
    let key = node_key(71);
    let boot = vec![Bootnode::Enr(Box::new(peer_enr.clone()))];
    let (first, stop, task) = discovery_only(&key, 901, Some(9000), boot, store.clone()).await;
    let seq1 = first.local_enr().await.unwrap().seq();
    wait_until("the peer in the table", async || {
        !first.table().await.unwrap().is_empty()
    })
    .await;
    stop.cancel();
    task.await.unwrap();
    // Restart with no bootnode: the table comes from the file; same record, same number.
    let (second, stop, task) = discovery_only(&key, 901, Some(9000), vec![], store.clone()).await;
    let again = second.local_enr().await.unwrap();
    assert_eq!(again.seq(), seq1);
    let table = second.table().await.unwrap();
    assert!(
        table.iter().any(|e| e.node_id() == peer_enr.node_id()),
        "restored table: {table:?}"
    );
    stop.cancel();
    task.await.unwrap();
    // A changed record (another advertised TCP port) takes the next number, and keeps it.
    let (third, stop, task) = discovery_only(&key, 901, Some(9001), vec![], store.clone()).await;
    let changed = third.local_enr().await.unwrap();
    assert!(changed.seq() > seq1, "{} after {seq1}", changed.seq());
    assert_eq!(changed.tcp4(), Some(9001));
    stop.cancel();
    task.await.unwrap();
    let (fourth, stop, task) = discovery_only(&key, 901, Some(9001), vec![], store).await;
    assert_eq!(fourth.local_enr().await.unwrap().seq(), changed.seq());
    stop.cancel();
    task.await.unwrap();
    // A damaged file is not fatal: unreadable lines are skipped.
    std::fs::write(&path, "garbage\nnode enr:!!!\n").unwrap();
    let (fifth, stop, task) =
        discovery_only(&key, 901, Some(9001), vec![], TableStore::File(path)).await;
    assert_eq!(fifth.local_enr().await.unwrap().seq(), 1);
    stop.cancel();
    task.await.unwrap();
    peer_stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_packets_and_records_are_dropped_without_harm() {
    let chain_id = 901;
    let (target, target_stop, target_task) =
        discovery_only(&node_key(80), chain_id, None, vec![], TableStore::Memory).await;
    let addr = target.udp_addr();
    // 2,000 datagrams of garbage: empty, short, random, discv5-sized, oversized.
    let socket = tokio::net::UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..2000usize {
        let len = [0, 1, 16, 63, 200, 1280, 1500, 4000][i % 8];
        let data: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        let _ = socket.send_to(&data, addr).await;
    }
    // Records with a bad `opstack`, no TCP port, or another chain reach it through a session.
    // A byte string holding a varint that never ends.
    let bad = raw_discv5(81, 9001, Some(vec![0x83, 0xff, 0xff, 0xff])).await;
    let no_tcp = raw_discv5(82, 0, Some(OpStackId::for_chain(chain_id).rlp())).await;
    for n in [&bad, &no_tcp] {
        let _ = n.add_enr(target.local_enr().await.unwrap());
        let _ = n.find_node(enr::NodeId::random()).await;
    }
    // Read and counted, never dialled (a bootnode-mode instance dials nothing anyway).
    wait_until("the malformed opstack to be seen", async || {
        target.stats().candidates(CandidateResult::Malformed) > 0
    })
    .await;
    // Still answering, and a well-behaved node still finds it.
    let (fresh, fresh_stop, fresh_task) = discovery_only(
        &node_key(83),
        chain_id,
        None,
        vec![Bootnode::Enr(Box::new(target.local_enr().await.unwrap()))],
        TableStore::Memory,
    )
    .await;
    wait_until("the fresh node to reach the target", async || {
        fresh
            .table()
            .await
            .unwrap()
            .iter()
            .any(|e| e.udp4_socket().map(SocketAddr::V4) == Some(addr))
    })
    .await;
    assert!(target.table().await.is_ok());
    fresh_stop.cancel();
    fresh_task.await.unwrap();
    target_stop.cancel();
    target_task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enode_bootnode_is_asked_for_its_signed_record() {
    let key = node_key(90);
    let (boot, boot_stop, boot_task) =
        discovery_only(&key, 901, None, vec![], TableStore::Memory).await;
    let public = key.public().try_into_secp256k1().unwrap();
    let hex = alloy_primitives::hex::encode(&public.to_bytes_uncompressed()[1..]);
    // op-node's form for a discovery-only node: TCP port 0, the UDP port in `discport`.
    let enode = format!(
        "enode://{hex}@127.0.0.1:0?discport={}",
        boot.udp_addr().port()
    );
    let (node, stop, task) = discovery_only(
        &node_key(91),
        901,
        None,
        vec![enode.parse::<Bootnode>().unwrap()],
        TableStore::Memory,
    )
    .await;
    let wanted = boot.local_enr().await.unwrap();
    wait_until("the bootnode's record", async || {
        node.table().await.unwrap().contains(&wanted)
    })
    .await;
    stop.cancel();
    task.await.unwrap();
    boot_stop.cancel();
    boot_task.await.unwrap();
}

/// UDP sockets a process holds (its fds matched against the kernel's UDP tables).
fn udp_sockets(pid: u32) -> usize {
    let mut inodes = std::collections::HashSet::new();
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            for line in text.lines().skip(1) {
                if let Some(inode) = line.split_whitespace().nth(9) {
                    inodes.insert(inode.to_owned());
                }
            }
        }
    }
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            l.to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')
                .map(str::to_owned)
        })
        .filter(|inode| inodes.contains(inode))
        .count()
}

#[test]
fn no_discovery_opens_no_udp_socket() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    // A public chain (its bootnodes would be contacted with discovery on).
    let off = common::process::NodeProcess::start(&[
        "--chain",
        "op-mainnet",
        "--p2p.no-discovery",
        "--datadir",
        &d("off"),
        "--rpc.disable",
    ]);
    off.wait_for("listening");
    // The devnet chain has no bootnodes: with discovery on it binds a socket and sends nothing.
    let on = common::process::NodeProcess::start(&[
        "--chain",
        "devnet",
        "--datadir",
        &d("on"),
        "--rpc.disable",
    ]);
    on.wait_for("discovery started");
    assert_eq!(udp_sockets(off.child.id()), 0);
    assert_eq!(udp_sockets(on.child.id()), 1);
}
