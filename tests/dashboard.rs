//! The compose stack's monitoring: the Grafana dashboard (`docker/grafana/dashboards`) only
//! queries metrics the node exports, and the Prometheus and Grafana provisioning files fit the
//! compose stack (no Docker engine is needed: the files are parsed).
//!
//! The exported names come from real scrapes: a sequencer and a follower attached to an engine
//! (`common::fake_engine`) on 127.0.0.1, after the follower filled a gap by payload_by_number,
//! validated a gossip block, inserted it into the engine and had its peers' scores sampled, so
//! every family the dashboard reads has series.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use alloy_rpc_types_engine::JwtSecret;
use common::fake_engine::FakeEngine;
use common::http::request;
use common::net::*;
use common::wait::wait_until;
use op_gossip::engine::EngineConfig;
use op_gossip::metrics::MetricsConfig;
use op_gossip::node::{NodeConfig, RunningNode, start};
use serde_json::Value;
use yaml_rust2::{Yaml, YamlLoader};

const WAIT: Duration = Duration::from_secs(30);

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn yaml(path: &str) -> Yaml {
    let text = std::fs::read_to_string(repo(path)).unwrap();
    YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .remove(0)
}

fn dashboard() -> Value {
    let text = std::fs::read_to_string(repo("docker/grafana/dashboards/op-gossip.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Metric names in PromQL.

/// PromQL words that are not metric names where an identifier may stand.
const KEYWORDS: [&str; 11] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
];

/// Removes everything between `open` and its matching `close` (not nested in PromQL for the
/// brackets used here: label matchers and ranges).
fn strip(text: &str, open: char, close: char) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in text.chars() {
        if c == open {
            depth += 1;
        } else if c == close && depth > 0 {
            depth -= 1;
        } else if depth == 0 {
            out.push(c);
        }
    }
    out
}

/// The metric names a PromQL expression (or a Grafana `label_values(metric, label)` query)
/// reads: identifiers left once strings, label matchers, ranges and `by (...)`-style label lists
/// are removed, that are not functions (followed by `(`), keywords or numbers.
fn metric_names(expr: &str) -> BTreeSet<String> {
    if let Some(args) = expr.trim().strip_prefix("label_values(") {
        let metric = args.split([',', ')']).next().unwrap_or_default();
        return metric_names(metric);
    }
    // Strings first (a label value may hold brackets), then matchers and ranges.
    let mut text = String::new();
    let mut in_string = false;
    for c in expr.chars() {
        if c == '"' {
            in_string = !in_string;
        } else if !in_string {
            text.push(c);
        }
    }
    let text = strip(&strip(&text, '{', '}'), '[', ']');
    let mut names = BTreeSet::new();
    // Tokens: runs of identifier characters (a number or duration like `0.99` or `5m` is one).
    let mut tokens: Vec<(&str, usize)> = Vec::new();
    let mut start = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        let word_char = c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '.';
        match (start, word_char) {
            (None, true) => start = Some(i),
            (Some(s), false) => {
                tokens.push((&text[s..i], i));
                start = None;
            }
            _ => {}
        }
    }
    let grouping = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let mut in_label_list = false;
    for (k, &(word, end)) in tokens.iter().enumerate() {
        let next = text[end..].trim_start();
        if in_label_list {
            // Label names of `by (...)` up to the closing parenthesis.
            in_label_list = !next.starts_with(')');
            continue;
        }
        if grouping.contains(&word) {
            in_label_list = next.starts_with('(');
            continue;
        }
        let before_grouping = tokens
            .get(k + 1)
            .is_some_and(|(w, _)| grouping.contains(w) && next.starts_with(w));
        let number = word.starts_with(|c: char| c.is_ascii_digit());
        if number || before_grouping || next.starts_with('(') || KEYWORDS.contains(&word) {
            continue;
        }
        names.insert(word.to_owned());
    }
    names
}

/// Every PromQL query of the dashboard: panel targets and templating queries.
fn queries(dashboard: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let panels = dashboard["panels"].as_array().unwrap();
    for panel in panels {
        for target in panel["targets"].as_array().into_iter().flatten() {
            out.push(target["expr"].as_str().unwrap().to_owned());
        }
    }
    for var in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let query = &var["query"];
        out.push(
            query["query"]
                .as_str()
                .or(query.as_str())
                .unwrap()
                .to_owned(),
        );
    }
    out
}

#[test]
fn promql_names_are_found() {
    let names = metric_names(
        "histogram_quantile(0.99, sum by (instance, le) (rate(op_x_bucket{instance=~\"$i\", a=\"}b\"}[$__rate_interval]))) / ignoring(le) op_y offset 5m",
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["op_x_bucket", "op_y"]
    );
    let names = metric_names("label_values(op_node_default_p2p_peer_count, instance)");
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["op_node_default_p2p_peer_count"]
    );
}

// ---------------------------------------------------------------------------------------------
// What the node exports.

fn secret() -> JwtSecret {
    JwtSecret::from_hex("7365637265742d666f722d7465737473".repeat(2)).unwrap()
}

fn with_metrics(mut config: NodeConfig) -> NodeConfig {
    config.metrics = MetricsConfig {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        // Sampled often, so the test need not wait op-node's 15 s.
        score_sample_interval: Duration::from_millis(300),
        ..MetricsConfig::default()
    };
    config
}

/// Every series name a scrape of `node` holds, as Prometheus stores it: each sample's name, with
/// its `_total` (counter), `_bucket`/`_sum`/`_count` (histogram) suffix. A family's bare name
/// (its `# TYPE` line) is not one: a query of `op_gossip_validation` would find nothing.
async fn exported(node: &RunningNode) -> BTreeSet<String> {
    let response = request(node.metrics_addr().unwrap(), "GET", "/metrics", "").await;
    assert_eq!(response.status, 200);
    response
        .body
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| line.split(['{', ' ']).next().unwrap().to_owned())
        .collect()
}

/// How many times `node` sampled its peers' scores: the largest count of its score histogram.
async fn score_samples(node: &RunningNode) -> f64 {
    let response = request(node.metrics_addr().unwrap(), "GET", "/metrics", "").await;
    response
        .body
        .lines()
        .filter(|line| line.starts_with("op_node_default_peer_scores_count"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(0.0, f64::max)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_queries_is_exported() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let engine = FakeEngine::start(secret(), chain.clone()).await;
    let seq = start(with_metrics(config(&chain, 0, dir.path(), true)))
        .await
        .unwrap();
    let mut follower_config = with_metrics(config(&chain, 1, dir.path(), false));
    follower_config.engine = Some(EngineConfig {
        url: engine.url(),
        jwt_secret: secret(),
        timeout: Duration::from_secs(5),
        retry: Default::default(),
    });
    let follower = start(follower_config).await.unwrap();
    // Two blocks before the follower listens (fetched by payload_by_number), one by gossip.
    seq.produce(2, Duration::from_millis(20), 0).await.unwrap();
    seq.wait_for_head(2, WAIT).await.unwrap();
    connect(&follower, &seq).await;
    wait_for_peers(&[&seq, &follower], 1).await;
    seq.produce(1, Duration::from_millis(20), 0).await.unwrap();
    follower.wait_for_head(3, WAIT).await.unwrap();
    assert!(
        wait_until(WAIT, async || engine.head().number >= 3).await,
        "engine did not insert"
    );
    // Two score samples (every 300 ms) with the peer connected, on both nodes.
    for node in [&seq, &follower] {
        assert!(
            wait_until(WAIT, async || score_samples(node).await >= 2.0).await,
            "{} score samples",
            score_samples(node).await
        );
    }

    let mut names = exported(&seq).await;
    names.extend(exported(&follower).await);
    let dashboard = dashboard();
    let queries = queries(&dashboard);
    assert!(queries.len() >= 20, "{} queries", queries.len());
    let mut used = BTreeSet::new();
    for query in &queries {
        let found = metric_names(query);
        assert!(!found.is_empty(), "no metric in {query}");
        for name in found {
            assert!(
                names.contains(&name),
                "the dashboard queries {name} ({query}), which the node does not export; it exports:\n{names:#?}"
            );
            used.insert(name);
        }
    }
    // What the issue asks the dashboard to show.
    for name in [
        "op_node_default_p2p_peer_count",
        "op_gossip_validation_total",
        "op_gossip_validation_queue_depth",
        "op_gossip_validation_duration_seconds_bucket",
        "op_node_default_p2p_req_total",
        "op_gossip_p2p_rate_limit_refusals_total",
        "op_gossip_p2p_peer_bans_total",
        "op_node_default_peer_scores_bucket",
        "op_gossip_engine_head_lag_blocks",
    ] {
        assert!(used.contains(name), "no panel shows {name}");
    }
}

// ---------------------------------------------------------------------------------------------
// The provisioning files and the compose stack.

#[test]
fn the_dashboard_is_well_formed() {
    let d = dashboard();
    assert_eq!(d["uid"], "op-gossip");
    let mut ids = BTreeSet::new();
    for panel in d["panels"].as_array().unwrap() {
        assert!(
            ids.insert(panel["id"].as_u64().unwrap()),
            "duplicate panel id"
        );
        let pos = &panel["gridPos"];
        let (x, w) = (pos["x"].as_u64().unwrap(), pos["w"].as_u64().unwrap());
        assert!(
            x + w <= 24,
            "panel {} is wider than the grid",
            panel["title"]
        );
        if panel["type"] != "row" {
            assert_eq!(
                panel["datasource"]["uid"], "prometheus",
                "{}",
                panel["title"]
            );
            assert!(!panel["targets"].as_array().unwrap().is_empty());
        }
    }
}

#[test]
fn prometheus_and_grafana_are_provisioned_for_the_compose_stack() {
    let compose = yaml("docker-compose.yml");
    let services = compose["services"].as_hash().unwrap();
    let service = |name: &str| &compose["services"][name];

    // Prometheus scrapes every node that serves metrics, on the metrics port.
    let prometheus = yaml("docker/prometheus/prometheus.yml");
    let targets: BTreeSet<String> = prometheus["scrape_configs"][0]["static_configs"][0]["targets"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    let serving: BTreeSet<String> = services
        .iter()
        .filter(|(_, s)| {
            s["command"]
                .as_str()
                .is_some_and(|c| c.contains("--metrics.enabled"))
        })
        .map(|(name, _)| format!("{}:7300", name.as_str().unwrap()))
        .collect();
    assert_eq!(serving.len(), 3, "sequencer and two followers");
    assert_eq!(targets, serving);

    // The mounted files exist, and Grafana's provider reads where the dashboards are mounted.
    for name in ["prometheus", "grafana"] {
        for volume in service(name)["volumes"].as_vec().unwrap() {
            let volume = volume.as_str().unwrap();
            if let Some(local) = volume.strip_prefix("./") {
                let local = local.split(':').next().unwrap();
                assert!(
                    repo(local).exists(),
                    "{name} mounts {local}, which is missing"
                );
            }
        }
        let ports = service(name)["ports"].as_vec().unwrap();
        assert!(
            ports
                .iter()
                .all(|p| p.as_str().unwrap().starts_with("127.0.0.1:")),
            "{name} is published on the host's loopback only"
        );
    }
    let provider = yaml("docker/grafana/provisioning/dashboards/op-gossip.yml");
    let path = provider["providers"][0]["options"]["path"]
        .as_str()
        .unwrap();
    assert!(
        service("grafana")["volumes"]
            .as_vec()
            .unwrap()
            .iter()
            .any(|v| v.as_str().unwrap().ends_with(&format!(":{path}:ro"))),
        "dashboards mounted at {path}"
    );
    let datasource = yaml("docker/grafana/provisioning/datasources/prometheus.yml");
    let ds = &datasource["datasources"][0];
    assert_eq!(
        ds["uid"].as_str(),
        Some("prometheus"),
        "the uid the panels name"
    );
    assert_eq!(ds["url"].as_str(), Some("http://prometheus:9090"));
    assert!(services.contains_key(&Yaml::String("prometheus".into())));
}
