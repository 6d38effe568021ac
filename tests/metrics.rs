//! Metrics between real nodes on 127.0.0.1: things happen (connections, a valid block and the gap
//! before it filled over payload_by_number, an invalid block rejected and its forwarder banned,
//! refused and later unbanned), then `/metrics` is scraped over real HTTP, the OpenMetrics text is
//! parsed, and the values, names, buckets and label sets are checked.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::http::request;
use common::net::*;
use common::wait::wait_until;
use common::*;
use op_gossip::chain::ChainSpec;
use op_gossip::http::Refusal;
use op_gossip::http::table::DropCause;
use op_gossip::metrics::MetricsConfig;
use op_gossip::node::{NodeConfig, NodeError, NodeEvent, RunningNode, start};
use op_gossip::p2p::BanConfig;
use op_gossip::p2p::metrics as gossip_metrics;
use op_gossip::validate::ValidationError;
use op_gossip::wire::BlockVersion;
use tokio::sync::broadcast;

const WAIT: Duration = Duration::from_secs(30);
/// B's ban duration: long enough to see the refused redial, short enough to see the unban.
const BAN: Duration = Duration::from_secs(4);

/// op-node's gossip event types (go-libp2p-pubsub trace events, spec §10.2).
const OP_NODE_EVENT_TYPES: [&str; 13] = [
    "PUBLISH_MESSAGE",
    "REJECT_MESSAGE",
    "DUPLICATE_MESSAGE",
    "DELIVER_MESSAGE",
    "ADD_PEER",
    "REMOVE_PEER",
    "RECV_RPC",
    "SEND_RPC",
    "DROP_RPC",
    "JOIN",
    "LEAVE",
    "GRAFT",
    "PRUNE",
];
/// op-node's `peer_scores` components (spec §10.2).
const OP_NODE_SCORE_TYPES: [&str; 10] = [
    "total",
    "ipColocation",
    "behavioralPenalty",
    "blocksFirstMessage",
    "blocksTimeInMesh",
    "blocksMessageDeliveries",
    "blocksInvalidMessageDeliveries",
    "reqRespValidResponses",
    "reqRespErrorResponses",
    "reqRespRejectedPayloads",
];
/// op-node's `peer_scores` buckets as OpenMetrics writes them, `+Inf` last.
const OP_NODE_SCORE_BUCKETS: [&str; 19] = [
    "-100.0", "-40.0", "-20.0", "-10.0", "-5.0", "-2.0", "-1.0", "-0.5", "-0.05", "0.0", "0.05",
    "0.5", "1.0", "2.0", "5.0", "10.0", "20.0", "40.0", "+Inf",
];

fn with_metrics(mut config: NodeConfig) -> NodeConfig {
    config.metrics = MetricsConfig {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        // Sampled often, so a test need not wait op-node's 15 s.
        score_sample_interval: Duration::from_millis(300),
        ..MetricsConfig::default()
    };
    config
}

// ---------------------------------------------------------------------------------------------
// A small OpenMetrics text parser.

#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

#[derive(Debug, Default)]
struct Exposition {
    /// Family name → type.
    types: BTreeMap<String, String>,
    samples: Vec<Sample>,
}

impl Exposition {
    fn parse(text: &str) -> Self {
        let mut out = Self::default();
        let mut saw_eof = false;
        for line in text.lines() {
            assert!(!saw_eof, "text after # EOF: {line}");
            if line == "# EOF" {
                saw_eof = true;
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("# TYPE name type");
                assert!(
                    ["counter", "gauge", "histogram", "unknown", "info"].contains(&kind),
                    "type {kind}"
                );
                assert!(
                    out.types.insert(name.to_owned(), kind.to_owned()).is_none(),
                    "family {name} declared twice"
                );
                continue;
            }
            if line.starts_with("# HELP ") || line.starts_with("# UNIT ") {
                continue;
            }
            assert!(!line.starts_with('#'), "unknown comment line {line}");
            out.samples.push(parse_sample(line));
        }
        assert!(saw_eof, "no # EOF");
        for s in &out.samples {
            let family = out
                .family_of(&s.name)
                .unwrap_or_else(|| panic!("{} has no family", s.name));
            let kind = &out.types[&family];
            let suffix = &s.name[family.len()..];
            let allowed: &[&str] = match kind.as_str() {
                "counter" => &["_total", "_created"],
                "histogram" => &["_bucket", "_count", "_sum", "_created"],
                "info" => &["_info"],
                _ => &[""],
            };
            assert!(allowed.contains(&suffix), "{} in a {kind} family", s.name);
        }
        out
    }

    /// The declared family a sample name belongs to (the longest declared prefix).
    fn family_of(&self, sample: &str) -> Option<String> {
        self.types
            .keys()
            .filter(|f| sample.starts_with(f.as_str()))
            .max_by_key(|f| f.len())
            .cloned()
    }

    fn all(&self, name: &str) -> Vec<&Sample> {
        self.samples.iter().filter(|s| s.name == name).collect()
    }

    /// The value of the one sample `name` with exactly `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let found: Vec<_> = self
            .samples
            .iter()
            .filter(|s| s.name == name && s.labels == want)
            .collect();
        assert_eq!(found.len(), 1, "{name}{labels:?}: {found:?}");
        found[0].value
    }
}

fn parse_sample(line: &str) -> Sample {
    let name_end = line
        .find(['{', ' '])
        .unwrap_or_else(|| panic!("sample without value: {line}"));
    let name = &line[..name_end];
    assert!(
        name.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
        "metric name {name}"
    );
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices();
        let mut key = String::new();
        loop {
            let (i, c) = chars.next().expect("unterminated label set");
            match c {
                '}' => {
                    rest = &inner[i + 1..];
                    break;
                }
                ',' => {}
                '=' => {
                    assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "label value quote");
                    let mut value = String::new();
                    loop {
                        match chars.next().expect("unterminated label value").1 {
                            '"' => break,
                            '\\' => match chars.next().expect("escape").1 {
                                'n' => value.push('\n'),
                                other => value.push(other),
                            },
                            other => value.push(other),
                        }
                    }
                    assert!(
                        labels.insert(std::mem::take(&mut key), value).is_none(),
                        "label repeated in {line}"
                    );
                }
                other => key.push(other),
            }
        }
    }
    let value_text = rest
        .trim_start()
        .split(' ')
        .next()
        .unwrap_or_else(|| panic!("no value: {line}"));
    let value = match value_text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other
            .parse()
            .unwrap_or_else(|_| panic!("value {other:?} in {line}")),
    };
    Sample {
        name: name.to_owned(),
        labels,
        value,
    }
}

// ---------------------------------------------------------------------------------------------

async fn scrape(node: &RunningNode) -> Exposition {
    let addr = node.metrics_addr().expect("metrics are served");
    let response = request(addr, "GET", "/metrics", "").await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.headers.get("content-type").map(String::as_str),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    Exposition::parse(&response.body)
}

/// Every label of every sample comes from a bounded, known set; nothing looks like a peer id,
/// an address or a hash.
fn assert_bounded_labels(m: &Exposition, chain: &ChainSpec) {
    let roles = ["client", "server"];
    let codes = ["0", "1", "2", "3", "4", "5"];
    let bools = ["true", "false"];
    let verdicts = ["accept", "ignore", "reject"];
    let mut reasons: Vec<&str> = ValidationError::REASONS.to_vec();
    reasons.extend(gossip_metrics::LOOP_REASONS);
    reasons.extend([gossip_metrics::ACCEPT_REASON, gossip_metrics::OTHER_REASON]);
    let causes = [
        "wait_timeout",
        "over_capacity",
        "peer_streams",
        "answered_code_3",
    ];
    let penalty_kinds = ["invalid_block", "invalid_signature"];
    let failure_kinds = op_gossip::p2p::reqresp::metrics::CLIENT_FAILURE_KINDS;
    let topics = chain.topics();
    for s in &m.samples {
        let family = m.family_of(&s.name).unwrap();
        for (key, value) in &s.labels {
            assert!(
                !value.starts_with("12D3Koo")
                    && !value.starts_with("16Uiu2")
                    && !value.starts_with("0x")
                    && !value.contains("/ip4/")
                    && value.len() <= 64,
                "unbounded-looking label {key}={value} on {}",
                s.name
            );
            let ok = match (family.as_str(), key.as_str()) {
                (_, "le") => value == "+Inf" || value.parse::<f64>().is_ok(),
                ("op_node_default_p2p_gossip_events", "type") => {
                    OP_NODE_EVENT_TYPES.contains(&value.as_str())
                }
                ("op_node_default_peer_scores", "type") => {
                    OP_NODE_SCORE_TYPES.contains(&value.as_str())
                }
                (_, "p2p_role") => roles.contains(&value.as_str()),
                (_, "p2p_method") => value == "payload_by_number",
                (_, "result_code") => codes.contains(&value.as_str()),
                ("op_node_default_p2p_dials" | "op_node_default_p2p_accepts", "allow") => {
                    bools.contains(&value.as_str())
                }
                ("op_gossip_validation", "verdict") => verdicts.contains(&value.as_str()),
                ("op_gossip_validation", "reason") => reasons.contains(&value.as_str()),
                ("op_gossip_p2p_rate_limit_refusals", "cause") => causes.contains(&value.as_str()),
                ("op_gossip_invalid_block_penalties", "kind") => {
                    penalty_kinds.contains(&value.as_str())
                }
                ("op_gossip_p2p_client_request_failures", "kind") => {
                    failure_kinds.contains(&value.as_str())
                }
                // The HTTP servers' bounds (op_gossip::http::stats).
                (f, "server") if f.starts_with("op_gossip_http_") => {
                    ["metrics", "rpc"].contains(&value.as_str())
                }
                ("op_gossip_http_connections_dropped", "cause") => {
                    DropCause::ALL.iter().any(|c| c.label() == value)
                }
                ("op_gossip_http_requests_refused", "cause") => {
                    Refusal::ALL.iter().any(|r| r.label() == value)
                }
                // gossipsub's own metrics: labelled by our topics and small enums of its own.
                (f, "hash" | "topic") if f.starts_with("op_gossip_gossipsub_") => {
                    topics.iter().any(|t| t == value)
                }
                (f, _) if f.starts_with("op_gossip_gossipsub_") => value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_/.-".contains(c)),
                _ => false,
            };
            assert!(
                ok,
                "label {key}={value} on {} is not in its bounded set",
                s.name
            );
        }
    }
}

async fn publish_invalid(from: &RunningNode, chain: &ChainSpec, number: u64) {
    let env = block(chain, number, op_gossip::clock::unix_now(), 500);
    let data = broken_signature(chain, BlockVersion::V4, &env);
    from.network()
        .publish(BlockVersion::V4, data)
        .await
        .unwrap();
}

async fn wait_banned(events: &mut broadcast::Receiver<NodeEvent>) {
    tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await {
                Ok(NodeEvent::PeerBanned { .. }) => return,
                Err(broadcast::error::RecvError::Closed) => panic!("node stopped"),
                _ => {}
            }
        }
    })
    .await
    .expect("the forwarder of the invalid block is banned");
}

async fn wait_peer_count(node: &RunningNode, n: usize) {
    assert!(
        wait_until(WAIT, async || {
            node.network().connected_peers().await.unwrap().len() == n
        })
        .await,
        "never {n} peers"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_scraped_over_http_and_hold_what_happened() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    // A: the sequencer (serves payload_by_number). B: a follower that fills a gap from A and
    // bans C. C: forwards an invalid block (metrics off).
    let a = start(with_metrics(config(&chain, 0, dir.path(), true)))
        .await
        .unwrap();
    let mut b_config = with_metrics(config(&chain, 1, dir.path(), false));
    b_config.ban = BanConfig {
        duration: BAN,
        ..BanConfig::default()
    };
    let b = start(b_config).await.unwrap();
    let c = start(config(&chain, 2, dir.path(), false)).await.unwrap();
    assert!(c.metrics_addr().is_none(), "off unless enabled");

    // Three blocks before anyone listens, then B joins: block 4 arrives by gossip and 1..=3
    // are fetched from A.
    a.produce(3, Duration::from_millis(20), 0).await.unwrap();
    a.wait_for_head(3, WAIT).await.unwrap();
    connect(&b, &a).await;
    wait_for_peers(&[&a, &b], 1).await;
    a.produce(1, Duration::from_millis(20), 0).await.unwrap();
    assert_eq!(b.wait_for_head(4, WAIT).await.unwrap().number, 4);

    // C joins B and forwards a block signed by the wrong key: REJECTed, C banned.
    let mut b_events = b.subscribe();
    connect(&c, &b).await;
    wait_for_peers(&[&c], 1).await;
    publish_invalid(&c, &chain, 5).await;
    wait_banned(&mut b_events).await;
    wait_peer_count(&b, 1).await;
    // C's redial while banned is refused by B's gate.
    redial_refused(&c, &b).await;
    // The score sampler (every 300 ms) has seen A with its valid responses.
    assert!(
        wait_until(WAIT, async || {
            scrape(&b)
                .await
                .all("op_node_default_peer_scores_sum")
                .iter()
                .any(|s| s.labels["type"] == "reqRespValidResponses" && s.value > 0.0)
        })
        .await,
        "B never sampled A's score"
    );

    // --- A, the sequencer and server ------------------------------------------------------
    let ma = scrape(&a).await;
    assert_bounded_labels(&ma, &chain);
    let events = "op_node_default_p2p_gossip_events_total";
    assert_eq!(ma.value("op_node_default_p2p_peer_count", &[]), 1.0);
    // Blocks 1..=3 had no peer to go to; gossipsub took block 4.
    assert_eq!(ma.value(events, &[("type", "PUBLISH_MESSAGE")]), 1.0);
    assert_eq!(ma.value(events, &[("type", "DELIVER_MESSAGE")]), 1.0);
    assert_eq!(
        ma.value(events, &[("type", "JOIN")]),
        4.0,
        "four block topics"
    );
    assert!(ma.value("op_node_default_p2p_accepts", &[("allow", "true")]) >= 1.0);
    let server_ok = [
        ("p2p_role", "server"),
        ("p2p_method", "payload_by_number"),
        ("result_code", "0"),
    ];
    let served = ma.value("op_node_default_p2p_req_total", &server_ok);
    assert!(served >= 3.0, "blocks 1..=3 served to B: {served}");
    assert_eq!(
        ma.value("op_node_default_p2p_req_duration_seconds_count", &server_ok),
        served,
        "one duration per request"
    );
    let last_asked = ma.value(
        "op_node_default_p2p_payload_by_number",
        &[("p2p_role", "server")],
    );
    assert!(
        (1.0..=3.0).contains(&last_asked),
        "last number asked {last_asked}"
    );
    assert_eq!(
        ma.value(
            "op_gossip_p2p_rate_limit_refusals_total",
            &[("p2p_role", "server"), ("cause", "wait_timeout")]
        ),
        0.0
    );

    // --- B, the follower and client -------------------------------------------------------
    let mb = scrape(&b).await;
    assert_bounded_labels(&mb, &chain);
    assert_eq!(
        mb.value("op_node_default_p2p_peer_count", &[]),
        b.network().connected_peers().await.unwrap().len() as f64
    );
    assert_eq!(
        mb.value("op_node_default_p2p_peer_count", &[]),
        1.0,
        "C is gone"
    );
    assert_eq!(
        mb.value(events, &[("type", "DELIVER_MESSAGE")]),
        1.0,
        "block 4"
    );
    assert_eq!(
        mb.value(events, &[("type", "REJECT_MESSAGE")]),
        1.0,
        "C's block"
    );
    assert_eq!(mb.value(events, &[("type", "PUBLISH_MESSAGE")]), 0.0);
    assert!(mb.value(events, &[("type", "ADD_PEER")]) >= 2.0);
    assert!(mb.value(events, &[("type", "REMOVE_PEER")]) >= 1.0);
    let validation = "op_gossip_validation_total";
    assert_eq!(
        mb.value(validation, &[("verdict", "accept"), ("reason", "none")]),
        1.0
    );
    assert_eq!(
        mb.value(
            validation,
            &[("verdict", "reject"), ("reason", "invalid_signature")]
        ),
        1.0
    );
    assert_eq!(
        mb.value(
            "op_gossip_invalid_block_penalties_total",
            &[("kind", "invalid_signature")]
        ),
        1.0
    );
    assert_eq!(mb.value("op_gossip_p2p_peer_bans_total", &[]), 1.0);
    assert_eq!(mb.value("op_gossip_peer_reports_dropped_total", &[]), 0.0);
    assert!(mb.value("op_node_default_p2p_dials", &[("allow", "true")]) >= 1.0);
    assert!(mb.value("op_node_default_p2p_accepts", &[("allow", "true")]) >= 1.0);
    assert!(mb.value("op_node_default_p2p_accepts", &[("allow", "false")]) >= 1.0);
    assert_eq!(mb.value("op_node_default_p2p_peer_unbans", &[]), 0.0);
    let client_ok = [
        ("p2p_role", "client"),
        ("p2p_method", "payload_by_number"),
        ("result_code", "0"),
    ];
    let fetched = mb.value("op_node_default_p2p_req_total", &client_ok);
    assert!(fetched >= 3.0, "blocks 1..=3 fetched from A: {fetched}");
    assert_eq!(
        mb.value("op_node_default_p2p_req_duration_seconds_count", &client_ok),
        fetched
    );
    assert_eq!(
        mb.value(
            "op_gossip_p2p_rate_limit_waits_total",
            &[("p2p_role", "client")]
        ),
        0.0,
        "three requests fit the bursts"
    );

    // The score histogram: op-node's buckets for every component, samples of A's score.
    let scores = "op_node_default_peer_scores";
    assert_eq!(mb.types.get(scores).map(String::as_str), Some("histogram"));
    for component in OP_NODE_SCORE_TYPES {
        let les: Vec<&str> = mb
            .all(&format!("{scores}_bucket"))
            .into_iter()
            .filter(|s| s.labels["type"] == component)
            .map(|s| s.labels["le"].as_str())
            .collect();
        assert_eq!(les, OP_NODE_SCORE_BUCKETS, "buckets of {component}");
        let count = mb.value(&format!("{scores}_count"), &[("type", component)]);
        assert!(count >= 1.0, "{component} sampled");
        let inf = mb.value(
            &format!("{scores}_bucket"),
            &[("type", component), ("le", "+Inf")],
        );
        assert_eq!(inf, count);
    }
    // A answered three requests: +1 valid response each (decaying ×0.926 per slot).
    assert!(
        mb.value(
            &format!("{scores}_sum"),
            &[("type", "reqRespValidResponses")]
        ) > 0.0
    );
    // Loopback is exempt from colocation; no topic scoring at the light level.
    for zero in [
        "ipColocation",
        "blocksFirstMessage",
        "blocksInvalidMessageDeliveries",
    ] {
        assert_eq!(
            mb.value(&format!("{scores}_sum"), &[("type", zero)]),
            0.0,
            "{zero}"
        );
    }
    // gossipsub's own metrics are there too, under our prefix.
    assert!(
        mb.types
            .keys()
            .any(|f| f.starts_with("op_gossip_gossipsub_")),
        "gossipsub's metrics registered"
    );

    // --- the ban expires; C's next dial is allowed and counts as an unban --------------------
    assert!(
        wait_until(BAN + WAIT, async || {
            b.bans()
                .banned_until(&c.peer_id(), op_gossip::clock::unix_now())
                .is_none()
        })
        .await,
        "the ban never expired"
    );
    let _ = c.network().dial(b.dial_address().await.unwrap()).await;
    assert!(
        wait_until(WAIT, async || {
            scrape(&b)
                .await
                .value("op_node_default_p2p_peer_unbans", &[])
                >= 1.0
        })
        .await,
        "no unban counted"
    );

    // Anything but GET /metrics is 404.
    let addr = b.metrics_addr().unwrap();
    for (method, path) in [("GET", "/"), ("GET", "/metrics/x"), ("POST", "/metrics")] {
        assert_eq!(
            request(addr, method, path, "").await.status,
            404,
            "{method} {path}"
        );
    }
    if std::env::var_os("PRINT_METRICS").is_some() {
        println!("{}", request(addr, "GET", "/metrics", "").await.body);
    }

    for node in [c, b, a] {
        node.shutdown().await;
    }
    // The endpoint stopped with the node.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_metrics_port_is_a_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let chain: Arc<ChainSpec> = devnet_now();
    let first = start(with_metrics(config(&chain, 0, dir.path(), false)))
        .await
        .unwrap();
    let taken = first.metrics_addr().unwrap();
    let mut second = config(&chain, 1, dir.path(), false);
    second.metrics.listen = Some(taken);
    match start(second).await {
        Err(e @ NodeError::Metrics(_)) => {
            let text = e.to_string();
            assert!(text.contains(&taken.to_string()), "{text}");
        }
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("two nodes on one metrics port"),
    }
    first.shutdown().await;
}
