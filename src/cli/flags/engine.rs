//! L1 and execution-engine flags: `--l1` (the signer read from the chain's SystemConfig) and
//! `--l2` with its JWT secret. Checked against the chain into [`crate::l1::L1Config`]; the
//! engine's secret is a file, read by [`EngineArgs::engine_config`] when the node starts.

use std::path::PathBuf;

use crate::chain::ChainSpec;
use crate::cli::{CliError, parse_duration};

/// L1 and engine flags.
#[derive(Debug, Clone, clap::Args)]
pub struct EngineArgs {
    /// L1 RPC: the unsafe block signer is read from the chain's SystemConfig (and reloaded).
    #[arg(long = "l1", env = "OP_NODE_L1_ETH_RPC")]
    pub l1: Option<String>,

    /// How often the signer is read again from L1 (e.g. 10m).
    #[arg(long = "l1.runtime-config-reload-interval", default_value = "10m", value_parser = parse_duration, env = "OP_NODE_L1_RUNTIME_CONFIG_RELOAD_INTERVAL")]
    pub l1_reload: std::time::Duration,

    /// The execution engine's authenticated RPC (http://host:8551): accepted blocks are
    /// inserted into it in order. Needs --l2.jwt-secret.
    #[arg(long = "l2", env = "OP_NODE_L2_ENGINE_RPC", requires = "l2_jwt_secret")]
    pub l2: Option<String>,

    /// File with the engine's JWT secret (32 bytes hex, op-node's format).
    #[arg(
        long = "l2.jwt-secret",
        env = "OP_NODE_L2_ENGINE_AUTH",
        requires = "l2"
    )]
    pub l2_jwt_secret: Option<PathBuf>,
}

impl EngineArgs {
    /// `--l1`: the chain must name its SystemConfig.
    pub fn l1_config(&self, chain: &ChainSpec) -> Result<Option<crate::l1::L1Config>, CliError> {
        let Some(url) = &self.l1 else {
            return Ok(None);
        };
        Ok(Some(crate::l1::L1Config {
            url: url.clone(),
            system_config: chain.l1_system_config_address.ok_or_else(|| {
                CliError::Usage(format!(
                    "--l1 needs the chain's l1_system_config_address (chain {})",
                    chain.name
                ))
            })?,
            reload_interval: self.l1_reload,
            start_retry: crate::l1::START_RETRY,
        }))
    }

    /// `--l2`: reads the JWT secret file.
    pub fn engine_config(&self) -> Result<Option<crate::engine::EngineConfig>, CliError> {
        let (Some(url), Some(path)) = (&self.l2, &self.l2_jwt_secret) else {
            return Ok(None);
        };
        Ok(Some(crate::engine::EngineConfig {
            url: url.clone(),
            jwt_secret: crate::engine::read_jwt_secret(path)
                .map_err(|e| CliError::Usage(e.to_string()))?,
            timeout: crate::engine::client::CALL_TIMEOUT,
            retry: crate::engine::retry::RetryConfig::default(),
        }))
    }
}
