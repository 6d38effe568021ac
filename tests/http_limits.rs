//! The HTTP bounds of the admin RPC and the metrics endpoint (`op_gossip::http`) against clients
//! that try to lock everyone else out, on 127.0.0.1: 40 slow request bodies and 50 idle
//! keep-alive connections leave a normal caller answered within 2 s, and the server closes the
//! idle ones itself; 200 idle sockets on the metrics port leave a scrape answered within 2 s.
//! Timeouts are shortened through the config structs; the node's defaults are the same code.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::http::{request, rpc};
use common::net::*;
use op_gossip::http::HttpLimits;
use op_gossip::metrics::MetricsConfig;
use op_gossip::node::start;
use op_gossip::rpc::{RPC_HTTP_LIMITS, RpcConfig};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout, timeout_at};

/// The acceptance bound: a normal caller is answered within 2 s whatever else is open.
const ANSWER: Duration = Duration::from_secs(2);
/// Shortened deadlines (production: 10 s and 30 s, `RPC_HTTP_LIMITS`).
const READ_TIMEOUT: Duration = Duration::from_secs(2);
const IDLE_TIMEOUT: Duration = Duration::from_secs(3);
/// Scheduling slack on top of a server deadline before the test gives up waiting for the close.
const SLACK: Duration = Duration::from_secs(5);

/// `opp2p_self` answered within [`ANSWER`].
async fn answered_in_time(at: SocketAddr) {
    let response = timeout(ANSWER, rpc(at, "opp2p_self", json!([])))
        .await
        .expect("a normal caller is answered within 2 s");
    assert!(response.get("result").is_some(), "{response}");
}

/// Reads one HTTP response off a kept-alive connection (head, then a `content-length` body).
async fn read_response(stream: &mut TcpStream) -> String {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).await.unwrap(), 1, "response head");
        raw.push(byte[0]);
    }
    let head = String::from_utf8(raw).unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .expect("content-length");
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.unwrap();
    head
}

/// Waits until the server closes `stream` (EOF, or a reset when it closed with our bytes
/// unread), reading and discarding whatever it says first; panics at `deadline`.
async fn closed_by_server(mut stream: TcpStream, deadline: Instant, what: &str) {
    let mut sink = Vec::new();
    match timeout_at(deadline, stream.read_to_end(&mut sink)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{what}: {e}"),
        Err(_) => panic!("{what}: still open"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_and_idle_connections_do_not_lock_out_a_caller() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let mut cfg = config(&chain, 0, dir.path(), false);
    cfg.rpc = Some(RpcConfig {
        addr: "127.0.0.1".parse().unwrap(),
        port: 0,
        http: HttpLimits {
            read_timeout: READ_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            ..RPC_HTTP_LIMITS
        },
        ..RpcConfig::default()
    });
    let node = start(cfg).await.unwrap();
    let at = node.rpc_addr().unwrap();

    // 40 requests whose body never comes: the head and the first byte of 1,000, then nothing.
    // (Before: each held one of 32 request slots, and every other caller got 429.)
    let mut slow = Vec::new();
    for _ in 0..40 {
        let mut s = TcpStream::connect(at).await.unwrap();
        let head = format!(
            "POST / HTTP/1.1\r\nHost: {at}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        slow.push(s);
    }
    let slow_since = Instant::now();
    answered_in_time(at).await;

    // 50 keep-alive connections: one request each, answered, then silence.
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "opp2p_self", "params": []}).to_string();
    let mut idle = Vec::new();
    for _ in 0..50 {
        let mut s = TcpStream::connect(at).await.unwrap();
        let request = format!(
            "POST / HTTP/1.1\r\nHost: {at}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(request.as_bytes()).await.unwrap();
        let head = read_response(&mut s).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        idle.push((s, Instant::now()));
    }
    // 90 open and unproductive, more than the table's 64: a newcomer is still answered.
    answered_in_time(at).await;

    // The server closes the idle ones itself, once idle for the idle timeout.
    for (i, (s, since)) in idle.into_iter().enumerate() {
        closed_by_server(
            s,
            since + IDLE_TIMEOUT + SLACK,
            &format!("idle connection {i}"),
        )
        .await;
    }
    // And the slow senders, once their read deadline passed (if not evicted before).
    for (i, s) in slow.into_iter().enumerate() {
        closed_by_server(
            s,
            slow_since + READ_TIMEOUT + SLACK,
            &format!("slow body {i}"),
        )
        .await;
    }
    answered_in_time(at).await;
    node.shutdown().await;
}

/// The value of the sample `name{labels}` in an OpenMetrics text.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_is_answered_with_200_idle_sockets_open() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let mut cfg = config(&chain, 0, dir.path(), false);
    cfg.metrics = MetricsConfig {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        ..MetricsConfig::default()
    };
    let node = start(cfg).await.unwrap();
    let addr = node.metrics_addr().unwrap();

    // 200 sockets that never send a byte (before: 16 slots of 10 s each, scrapes timed out).
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    let scrape = timeout(ANSWER, request(addr, "GET", "/metrics", ""))
        .await
        .expect("a scrape is answered within 2 s");
    assert_eq!(scrape.status, 200);
    assert!(scrape.body.ends_with("# EOF\n"));
    // The table (64) made room by closing the longest-idle sockets, and counted it.
    let limit = op_gossip::metrics::http::METRICS_HTTP_LIMITS.max_connections;
    let evicted = sample(
        &scrape.body,
        r#"op_gossip_http_connections_dropped_total{server="metrics",cause="evicted"}"#,
    );
    assert!(evicted >= (200 - limit) as f64, "evicted {evicted}");
    let open = sample(
        &scrape.body,
        r#"op_gossip_http_open_connections{server="metrics"}"#,
    );
    assert!(open <= limit as f64, "open {open}");
    // The first sockets were closed by the server.
    let first = idle.remove(0);
    closed_by_server(first, Instant::now() + SLACK, "the oldest idle socket").await;
    drop(idle);
    node.shutdown().await;
}
