//! payload_by_number between real nodes on 127.0.0.1: both protocol ids, op-node's result codes,
//! rate limiting per peer, slow readers cut off, and peers that do not speak the protocol.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::net::*;
use common::wait::wait_until;
use futures::{AsyncReadExt, AsyncWriteExt};
use op_gossip::node::start;
use op_gossip::p2p::reqresp::client::{RequestError, RequestTimeouts, request_payload};
use op_gossip::p2p::reqresp::limits::Rate;
use op_gossip::p2p::reqresp::protocols;
use op_gossip::p2p::reqresp::server::ServerConfig;
use op_gossip::wire::reqresp::{Response, decode_payload_body, decode_response, encode_request};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_are_served_under_both_protocol_ids_with_op_node_codes() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let server = start(config(&chain, 0, dir.path(), true)).await.unwrap();
    let client = start(config(&chain, 1, dir.path(), false)).await.unwrap();
    connect(&client, &server).await;
    wait_for_peers(&[&server, &client], 1).await;
    server
        .produce(3, Duration::from_millis(20), 50_000)
        .await
        .unwrap();
    server.wait_for_head(3, WAIT).await.unwrap();
    let mut control = client.network().stream_control();

    // op-node's id (what the client tries first): the block, verified.
    let got = request_payload(
        &mut control,
        &chain,
        server.peer_id(),
        2,
        RequestTimeouts::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        got,
        server.store().canonical_block(2).unwrap().unwrap().envelope
    );

    // The spec's id, spoken by a client that knows only that one.
    let [_, spec_form] = protocols(chain.chain_id);
    let mut stream = control
        .open_stream(server.peer_id(), spec_form)
        .await
        .unwrap();
    stream.write_all(&encode_request(3)).await.unwrap();
    stream.close().await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let Response::Payload { version, body } = decode_response(&raw).unwrap() else {
        panic!("payload expected")
    };
    assert_eq!(version, 1, "op-node sends version 1 for Isthmus blocks");
    let envelope = decode_payload_body(version, op_gossip::wire::BlockVersion::V4, &body).unwrap();
    assert_eq!(envelope.payload.block_number, 3);

    // Not stored yet (but possible by the clock): 1, without penalty. Far future: 2.
    let now = op_gossip::clock::unix_now();
    let possible = chain.target_block_number(now);
    assert!(possible > 3);
    let err = request_payload(
        &mut control,
        &chain,
        server.peer_id(),
        possible,
        RequestTimeouts::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RequestError::NotFound), "{err}");
    let err = request_payload(
        &mut control,
        &chain,
        server.peer_id(),
        possible + 1000,
        RequestTimeouts::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RequestError::ErrorCode(2)), "{err}");
    let stats = server.server_stats().unwrap();
    assert_eq!(
        (
            stats.served.load(Ordering::Relaxed),
            stats.not_found.load(Ordering::Relaxed),
            stats.invalid.load(Ordering::Relaxed)
        ),
        (2, 1, 1)
    );
    client.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hammering_peer_is_limited_while_another_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let mut server_config = config(&chain, 0, dir.path(), true);
    server_config.reqresp_server = Some(ServerConfig {
        per_peer: Rate {
            per_second: 2,
            burst: 5,
        },
        max_throttle: Duration::from_millis(300),
        ..ServerConfig::default()
    });
    let server = start(server_config).await.unwrap();
    // No gap filling on the hammer: its own requests would take tokens from the counted burst.
    let mut hammer_config = config(&chain, 1, dir.path(), false);
    hammer_config.sync = None;
    let hammer = start(hammer_config).await.unwrap();
    let polite = start(config(&chain, 2, dir.path(), false)).await.unwrap();
    connect(&hammer, &server).await;
    connect(&polite, &server).await;
    wait_for_peers(&[&server, &hammer, &polite], 1).await;
    server
        .produce(2, Duration::from_millis(20), 1000)
        .await
        .unwrap();
    server.wait_for_head(2, WAIT).await.unwrap();

    // 30 requests at once: the burst of 5 (plus what refills in 300 ms) is served, the rest
    // waits 300 ms for tokens and gets code 3.
    let mut tasks = Vec::new();
    for _ in 0..30 {
        let mut control = hammer.network().stream_control();
        let chain = chain.clone();
        let peer = server.peer_id();
        tasks.push(tokio::spawn(async move {
            request_payload(&mut control, &chain, peer, 1, RequestTimeouts::default()).await
        }));
    }
    // Meanwhile the other peer is served at once.
    let mut control = polite.network().stream_control();
    let started = std::time::Instant::now();
    assert!(
        request_payload(
            &mut control,
            &chain,
            server.peer_id(),
            2,
            RequestTimeouts::default()
        )
        .await
        .is_ok()
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    let mut ok = 0;
    let mut limited = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(RequestError::ErrorCode(3)) => limited += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!((5..=7).contains(&ok), "served {ok}");
    assert_eq!(ok + limited, 30);
    assert_eq!(
        server
            .server_stats()
            .unwrap()
            .rate_limited
            .load(Ordering::Relaxed),
        limited as u64
    );
    // Every refusal counts against the hammer (capped at 10, and at most one slot's decay since),
    // none against the polite peer.
    use op_gossip::p2p::peers::app_score::{DECAY_PER_SLOT, REFUSED_REQUEST_CAP};
    assert!(limited as f64 > REFUSED_REQUEST_CAP);
    let refused = server
        .app_counters(&hammer.peer_id())
        .await
        .refused_requests;
    assert!(
        (REFUSED_REQUEST_CAP * DECAY_PER_SLOT - 1e-9..=REFUSED_REQUEST_CAP).contains(&refused),
        "{refused}"
    );
    assert_eq!(
        server
            .app_counters(&polite.peer_id())
            .await
            .refused_requests,
        0.0
    );
    for n in [hammer, polite, server] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_peer_holds_neither_every_stream_nor_the_global_rate() {
    // op-node's limits and waits (global 20/s burst 40, per peer 4/s burst 15, 20 s).
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let server = start(config(&chain, 0, dir.path(), true)).await.unwrap();
    let mut hammer_config = config(&chain, 1, dir.path(), false);
    hammer_config.sync = None;
    let hammer = start(hammer_config).await.unwrap();
    let polite = start(config(&chain, 2, dir.path(), false)).await.unwrap();
    connect(&hammer, &server).await;
    connect(&polite, &server).await;
    wait_for_peers(&[&server, &hammer, &polite], 1).await;
    server
        .produce(2, Duration::from_millis(20), 1000)
        .await
        .unwrap();
    server.wait_for_head(2, WAIT).await.unwrap();

    // A sustained flood, 50 requests a second for 4 s: more than the server's 64 stream places
    // and its 40-token global burst. Without a per-peer cap the waiting requests would hold every
    // place (each for up to 20 s) and take the global tokens.
    let started = std::time::Instant::now();
    let flood = {
        let control = hammer.network().stream_control();
        let (chain, peer) = (chain.clone(), server.peer_id());
        tokio::spawn(async move {
            let mut tasks = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            for _ in 0..200 {
                tick.tick().await;
                let mut control = control.clone();
                let chain = chain.clone();
                tasks.push(tokio::spawn(async move {
                    request_payload(&mut control, &chain, peer, 1, RequestTimeouts::default()).await
                }));
            }
            tasks
        })
    };
    // Once the flood is on (the server refuses the hammer), another peer fetches 20 blocks one
    // after another, as a sync worker does: 15 from its burst and 5 more at its 4/s, none
    // refused.
    let server_stats = server.server_stats().unwrap();
    assert!(
        wait_until(WAIT, async || {
            server_stats.rate_limited.load(Ordering::Relaxed) > 0
        })
        .await,
        "the flood never reached the per-peer limit"
    );
    let mut control = polite.network().stream_control();
    for i in 0..20 {
        let number = 1 + i % 2;
        let timeouts = RequestTimeouts::default();
        let result =
            request_payload(&mut control, &chain, server.peer_id(), number, timeouts).await;
        assert!(result.is_ok(), "request {i}: {result:?}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let (mut ok, mut limited) = (0u64, 0u64);
    for t in flood.await.unwrap() {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(RequestError::ErrorCode(3)) => limited += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    // The hammer gets its burst and its 4/s over the run, the rest is refused code 3 at once.
    let elapsed = started.elapsed().as_secs_f64();
    assert!(
        ok >= 15 && (ok as f64) <= 15.0 + 4.0 * elapsed + 1.0,
        "served {ok} in {elapsed:.1} s"
    );
    assert_eq!(ok + limited, 200);
    let stats = server.server_stats().unwrap();
    assert_eq!(stats.rate_limited.load(Ordering::Relaxed), limited);
    assert_eq!(stats.over_capacity.load(Ordering::Relaxed), 0);
    for n in [hammer, polite, server] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_is_cut_off_at_the_write_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let mut server_config = config(&chain, 0, dir.path(), true);
    server_config.reqresp_server = Some(ServerConfig {
        write_timeout: Duration::from_millis(500),
        ..ServerConfig::default()
    });
    let server = start(server_config).await.unwrap();
    let client = start(config(&chain, 1, dir.path(), false)).await.unwrap();
    connect(&client, &server).await;
    wait_for_peers(&[&server, &client], 1).await;
    // A block far larger than the stream windows, so the write blocks on a reader that never reads.
    server
        .produce(1, Duration::from_millis(10), 4 << 20)
        .await
        .unwrap();
    server.wait_for_head(1, WAIT).await.unwrap();
    let mut control = client.network().stream_control();
    let [op_node_form, _] = protocols(chain.chain_id);
    let mut stream = control
        .open_stream(server.peer_id(), op_node_form)
        .await
        .unwrap();
    stream.write_all(&encode_request(1)).await.unwrap();
    stream.close().await.unwrap();
    let stats = server.server_stats().unwrap().clone();
    assert!(
        wait_until(Duration::from_secs(10), async || {
            stats.write_timeouts.load(Ordering::Relaxed) > 0
        })
        .await,
        "the server never gave up on the slow reader"
    );
    // What the reader gets afterwards is cut short: no valid payload.
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut raw)).await;
    assert!(decode_response(&raw).is_err() || raw.len() < 4 << 20);
    assert_eq!(stats.served.load(Ordering::Relaxed), 0);
    client.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_without_the_protocol_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let mut no_server = config(&chain, 0, dir.path(), false);
    no_server.reqresp_server = None;
    let quiet = start(no_server).await.unwrap();
    let client = start(config(&chain, 1, dir.path(), false)).await.unwrap();
    connect(&client, &quiet).await;
    wait_for_peers(&[&quiet, &client], 1).await;
    let mut control = client.network().stream_control();
    let started = std::time::Instant::now();
    let err = request_payload(
        &mut control,
        &chain,
        quiet.peer_id(),
        1,
        RequestTimeouts::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RequestError::Open(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    client.shutdown().await;
    quiet.shutdown().await;
}

/// Requests block `number` from `peer`: true when served (and it is that block), false when
/// answered code 3; any other outcome fails the test.
async fn served_or_code_3(
    control: &mut libp2p_stream::Control,
    chain: &op_gossip::chain::ChainSpec,
    peer: libp2p::PeerId,
    number: u64,
) -> bool {
    match request_payload(control, chain, peer, number, RequestTimeouts::default()).await {
        Ok(envelope) => {
            assert_eq!(envelope.payload.block_number, number);
            true
        }
        Err(RequestError::ErrorCode(3)) => false,
        Err(e) => panic!("block {number}: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_damaged_while_serving_answers_code_3_and_the_node_stays_up() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let mut server_config = config(&chain, 0, dir.path(), true);
    // Limits wide enough that no answer below is a rate-limit refusal.
    server_config.reqresp_server = Some(ServerConfig {
        per_peer: Rate {
            per_second: 1000,
            burst: 1000,
        },
        ..ServerConfig::default()
    });
    let server = start(server_config).await.unwrap();
    let mut client_config = config(&chain, 1, dir.path(), false);
    client_config.sync = None;
    let client = start(client_config).await.unwrap();
    connect(&client, &server).await;
    wait_for_peers(&[&server, &client], 1).await;
    // 40 blocks of 150 KB: 6 MB, more than the store's 4 MiB page cache, so reads reach the file.
    const N: u64 = 40;
    server
        .produce(N, Duration::from_millis(10), 150_000)
        .await
        .unwrap();
    server.wait_for_head(N, WAIT).await.unwrap();

    // Damage every page after the header region, in place, under the running node.
    let path = dir.path().join("node0").join(op_gossip::node::STORE_FILE);
    let len = std::fs::metadata(&path).unwrap().len() as usize;
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(&vec![0xFF; len - 8192], 8192).unwrap();
    drop(file);

    let mut control = client.network().stream_control();
    let mut code_3 = 0;
    for number in 1..=N {
        if !served_or_code_3(&mut control, &chain, server.peer_id(), number).await {
            code_3 += 1;
        }
    }
    let stats = server.server_stats().unwrap();
    assert!(code_3 > 0, "every block came from the page cache");
    assert_eq!(stats.errors.load(Ordering::Relaxed), code_3);
    assert_eq!(stats.rate_limited.load(Ordering::Relaxed), 0);
    // Still up: it answers the next request (with whatever it can read) and keeps its peer.
    let _ = request_payload(
        &mut control,
        &chain,
        server.peer_id(),
        N,
        RequestTimeouts::default(),
    )
    .await;
    assert_eq!(server.network().connected_peers().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_flooded_streams_from_many_peers_leave_honest_requests_served() {
    // Issue 18's stream attack: 7 peers each hold 13 streams open without a request, and keep
    // opening and dropping more, while an honest peer fetches 18 blocks one after another.
    use op_gossip::p2p::reqresp::server::MAX_STREAMS_PER_PEER;
    const ATTACKERS: u8 = 7;
    const IDLE_PER_ATTACKER: usize = 13;
    const HONEST_REQUESTS: u64 = 18;
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let server = start(config(&chain, 0, dir.path(), true)).await.unwrap();
    let mut honest_config = config(&chain, 1, dir.path(), false);
    honest_config.sync = None;
    let honest = start(honest_config).await.unwrap();
    connect(&honest, &server).await;
    let mut attackers = Vec::new();
    for i in 0..ATTACKERS {
        let mut cfg = config(&chain, 10 + i, dir.path(), false);
        cfg.sync = None;
        let attacker = start(cfg).await.unwrap();
        connect(&attacker, &server).await;
        attackers.push(attacker);
    }
    // Connections are what the attackers need (they attack over req/resp, not gossip).
    wait_for_connections(&[&server], 1 + usize::from(ATTACKERS)).await;
    server
        .produce(3, Duration::from_millis(20), 1000)
        .await
        .unwrap();
    server.wait_for_head(3, WAIT).await.unwrap();

    let [protocol, _] = protocols(chain.chain_id);
    let stop = tokio_util::sync::CancellationToken::new();
    let mut held = Vec::new();
    let mut floods = Vec::new();
    for attacker in &attackers {
        let mut control = attacker.network().stream_control();
        for _ in 0..IDLE_PER_ATTACKER {
            if let Ok(stream) = control
                .open_stream(server.peer_id(), protocol.clone())
                .await
            {
                held.push(stream);
            }
        }
        let (mut control, protocol, peer, stop) = (
            control.clone(),
            protocol.clone(),
            server.peer_id(),
            stop.clone(),
        );
        floods.push(tokio::spawn(async move {
            let mut opened = 0u64;
            while !stop.is_cancelled() {
                if let Ok(stream) = control.open_stream(peer, protocol.clone()).await {
                    drop(stream);
                    opened += 1;
                }
                tokio::task::yield_now().await;
            }
            opened
        }));
    }
    let mut control = honest.network().stream_control();
    let mut refused = 0;
    for i in 0..HONEST_REQUESTS {
        if !served_or_code_3(&mut control, &chain, server.peer_id(), 1 + i % 3).await {
            refused += 1;
        }
    }
    stop.cancel();
    let mut flooded = 0;
    for f in floods {
        flooded += f.await.unwrap();
    }
    drop(held);
    let stats = server.server_stats().unwrap().snapshot();
    eprintln!(
        "{refused} of {HONEST_REQUESTS} honest requests refused; attackers held {} idle streams \
         and opened {flooded} more; server: {stats:?}",
        usize::from(ATTACKERS) * IDLE_PER_ATTACKER
    );
    assert!(flooded > 100, "the flood ran");
    assert!(refused * 10 <= HONEST_REQUESTS, "{refused} refused");
    // Each attacker kept at most its own places; what it tried beyond them cost it score.
    assert!(
        stats.rate_limited
            >= u64::from(ATTACKERS) * (IDLE_PER_ATTACKER - MAX_STREAMS_PER_PEER) as u64
    );
    for attacker in &attackers {
        assert!(server.app_counters(&attacker.peer_id()).await.score() < 0.0);
    }
    assert_eq!(server.app_counters(&honest.peer_id()).await.score(), 0.0);
}
