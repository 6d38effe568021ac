//! Peers with any identity key type go-libp2p (op-node) accepts connect to our node: secp256k1
//! (op-node's own), Ed25519 (go-libp2p's and js-libp2p's default), ECDSA and RSA (js-libp2p
//! interop peers). Each dials the node over TCP + noise + yamux and is seen connected.
//! `tests/fixtures/rsa-2048.pk8` is a throwaway RSA key made for this test (PKCS#8 DER, from
//! `openssl genrsa -traditional 2048 | openssl pkcs8 -topk8 -nocrypt -outform DER`).

mod common;

use std::time::Duration;

use common::net::*;
use common::wait::wait_until;
use futures::StreamExt;
use libp2p::identity::Keypair;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, ping};
use op_gossip::node::start;

const WAIT: Duration = Duration::from_secs(30);

/// A bare peer with `key` that dials `addr` and waits until the connection is established.
async fn connects(key: Keypair, addr: Multiaddr) -> PeerId {
    let mut swarm = bare_swarm(key, |_| ping::Behaviour::default());
    let id = *swarm.local_peer_id();
    swarm.dial(addr).unwrap();
    tokio::time::timeout(WAIT, async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::ConnectionEstablished { .. } => return,
                SwarmEvent::OutgoingConnectionError { error, .. } => panic!("{error}"),
                _ => {}
            }
        }
    })
    .await
    .expect("connected");
    // Keep the swarm alive (and polled) until the node has seen the connection.
    tokio::spawn(async move {
        loop {
            swarm.select_next_some().await;
        }
    });
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_with_every_key_type_op_node_accepts_connect() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let node = start(config(&chain, 0, dir.path(), false)).await.unwrap();
    let addr = node.dial_address().await.unwrap();
    let mut rsa_der = std::fs::read(common::fixture_path("rsa-2048.pk8")).unwrap();
    let keys = [
        ("secp256k1", Keypair::generate_secp256k1()),
        ("ed25519", Keypair::generate_ed25519()),
        ("ecdsa", Keypair::generate_ecdsa()),
        ("rsa", Keypair::rsa_from_pkcs8(&mut rsa_der).unwrap()),
    ];
    for (name, key) in keys {
        let peer = connects(key, addr.clone()).await;
        let seen = wait_until(WAIT, async || {
            node.network()
                .connected_peers()
                .await
                .unwrap()
                .contains(&peer)
        })
        .await;
        assert!(seen, "{name} peer not seen");
    }
    node.shutdown().await;
}
