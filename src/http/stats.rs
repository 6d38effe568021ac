//! What the bounds of an HTTP server ([`super::serve`]) did, counted where it happens and read
//! by the `/metrics` scrape through [`HttpCollector`]:
//!
//! - `op_gossip_http_open_connections{server}`: connections in the server's table now (an
//!   evicted one leaves it at once, its socket closes a moment later);
//! - `op_gossip_http_connections_dropped_total{server,cause}`: connections closed by the server's
//!   bounds ([`DropCause`]: `idle_timeout`, `read_timeout`, `write_timeout`, `evicted`) or not
//!   taken (`refused`);
//! - `op_gossip_http_requests_refused_total{server,cause}`: requests answered by the server
//!   itself ([`Refusal`]: `in_flight` 429, `too_large` 413, `handler_timeout` 503).
//!
//! `server` is `rpc` or `metrics`; every label comes from these fixed sets.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;

use super::table::DropCause;

/// A request the server answered itself, without the inner service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every in-flight permit was taken (429).
    InFlight,
    /// The body was larger than allowed (413).
    TooLarge,
    /// The handler did not answer within its timeout (503).
    HandlerTimeout,
}

impl Refusal {
    /// Every refusal, in the order of the counters.
    pub const ALL: [Refusal; 3] = [
        Refusal::InFlight,
        Refusal::TooLarge,
        Refusal::HandlerTimeout,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::InFlight => "in_flight",
            Refusal::TooLarge => "too_large",
            Refusal::HandlerTimeout => "handler_timeout",
        }
    }
}

/// The counters of one server.
#[derive(Debug)]
pub struct HttpStats {
    server: &'static str,
    open: AtomicU64,
    dropped: [AtomicU64; DropCause::ALL.len()],
    refused: [AtomicU64; Refusal::ALL.len()],
}

impl HttpStats {
    /// Counters for the server labelled `server` (`rpc`, `metrics`).
    pub fn new(server: &'static str) -> Arc<Self> {
        Arc::new(Self {
            server,
            open: AtomicU64::new(0),
            dropped: Default::default(),
            refused: Default::default(),
        })
    }

    /// The server's label.
    pub fn server(&self) -> &'static str {
        self.server
    }

    /// Connections in the table now.
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    pub(super) fn set_open(&self, open: usize) {
        self.open
            .store(u64::try_from(open).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Connections dropped for `cause` so far.
    pub fn dropped_count(&self, cause: DropCause) -> u64 {
        self.dropped[cause as usize].load(Ordering::Relaxed)
    }

    /// Requests refused for `refusal` so far.
    pub fn refused_count(&self, refusal: Refusal) -> u64 {
        self.refused[refusal as usize].load(Ordering::Relaxed)
    }

    pub(super) fn dropped(&self, cause: DropCause) {
        self.dropped[cause as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn refused(&self, refusal: Refusal) {
        self.refused[refusal as usize].fetch_add(1, Ordering::Relaxed);
    }
}

/// Encodes the counters of every server at scrape time (one collector for all of them, so each
/// metric family is described once).
#[derive(Debug)]
pub struct HttpCollector(pub Vec<Arc<HttpStats>>);

impl Collector for HttpCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let mut open = encoder.encode_descriptor(
            "op_gossip_http_open_connections",
            "HTTP connections open on the admin RPC and the metrics endpoint.",
            None,
            MetricType::Gauge,
        )?;
        for stats in &self.0 {
            let labels = [("server", stats.server)];
            open.encode_family(&labels)?.encode_gauge(&stats.open())?;
        }
        let mut dropped = encoder.encode_descriptor(
            "op_gossip_http_connections_dropped",
            "HTTP connections closed or not taken because of the server's bounds.",
            None,
            MetricType::Counter,
        )?;
        for stats in &self.0 {
            for cause in DropCause::ALL {
                let labels = [("server", stats.server), ("cause", cause.label())];
                ConstCounter::new(stats.dropped_count(cause))
                    .encode(dropped.encode_family(&labels)?)?;
            }
        }
        let mut refused = encoder.encode_descriptor(
            "op_gossip_http_requests_refused",
            "HTTP requests the server answered itself (429, 413, 503).",
            None,
            MetricType::Counter,
        )?;
        for stats in &self.0 {
            for refusal in Refusal::ALL {
                let labels = [("server", stats.server), ("cause", refusal.label())];
                ConstCounter::new(stats.refused_count(refusal))
                    .encode(refused.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}
