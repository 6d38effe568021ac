//! The `node` command's flags by concern, each group flattened into
//! [`super::node::NodeArgs`] and turned into its validated config by its own conversion, so
//! `to_config` only composes them (and reads the files: keys, JWT secret, chain file).

pub mod engine;
pub mod gossip;
pub mod metrics;
pub mod peers;
pub mod rpc;
pub mod sync;
