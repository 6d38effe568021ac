//! Metrics flags (op-node's `--metrics.*`), into [`MetricsConfig`].

use std::net::{IpAddr, SocketAddr};

use crate::metrics::MetricsConfig;

/// Metrics flags.
#[derive(Debug, Clone, clap::Args)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics at http://<metrics.addr>:<metrics.port>/metrics.
    #[arg(long = "metrics.enabled", env = "OP_NODE_METRICS_ENABLED", default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub metrics_enabled: bool,

    /// Address of the metrics endpoint (op-node's default: every interface).
    #[arg(
        long = "metrics.addr",
        default_value = "0.0.0.0",
        env = "OP_NODE_METRICS_ADDR"
    )]
    pub metrics_addr: IpAddr,

    /// Port of the metrics endpoint (0 = any free port; the bound address is logged).
    #[arg(long = "metrics.port", default_value_t = crate::metrics::DEFAULT_METRICS_PORT, env = "OP_NODE_METRICS_PORT")]
    pub metrics_port: u16,
}

impl From<&MetricsArgs> for MetricsConfig {
    fn from(args: &MetricsArgs) -> Self {
        MetricsConfig {
            listen: args
                .metrics_enabled
                .then(|| SocketAddr::new(args.metrics_addr, args.metrics_port)),
            ..MetricsConfig::default()
        }
    }
}
