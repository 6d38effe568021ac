//! Start-up against the engine: wait until it answers, then check that it runs the chain of the
//! rollup config before anything is anchored on it or built on it.
//!
//! - **Wait**: an engine that is not up yet (compose starts everything at once; op-reth takes a
//!   few seconds to open its database) is asked again with [`super::retry`]'s backoff, with one
//!   log line when the wait begins and one when it ends. A refused token or an error answer is not
//!   waited on: it will not change by itself.
//! - **Genesis**: the engine's block at the rollup config's L2 genesis number must have the
//!   config's L2 genesis hash, and the chain id must match where the engine reports it
//!   (`eth_chainId` on the authenticated port; an engine without the method is not checked).
//!   A config with the wrong hash (an all-zero placeholder, another chain's) made the sequencer
//!   build on a block the engine did not have and get -38002 "Invalid forkchoice state" some
//!   10,900 times in 23 s (issue 21); now the node does not start, and says why.

use alloy_primitives::B256;

use super::client::{EngineClient, EngineError};
use super::retry::{Change, Retry, RetryConfig};
use crate::chain::ChainSpec;

/// Why the node cannot use this engine.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The engine refused the call (wrong JWT secret, an error answer) or answered nonsense.
    #[error("engine at {url}: {source}")]
    Engine {
        /// The engine's URL.
        url: String,
        /// What failed.
        source: EngineError,
    },
    /// The engine's genesis is not the rollup config's.
    #[error(
        "the engine at {url} is on another chain: its block {number} is {engine}, the rollup config's L2 genesis is {config}"
    )]
    WrongGenesis {
        /// The engine's URL.
        url: String,
        /// The genesis block number.
        number: u64,
        /// The engine's hash at that number.
        engine: B256,
        /// The rollup config's `genesis.l2.hash`.
        config: B256,
    },
    /// The engine has no block at the genesis number.
    #[error("the engine at {url} has no block {number}, the rollup config's L2 genesis ({config})")]
    MissingGenesis {
        /// The engine's URL.
        url: String,
        /// The genesis block number.
        number: u64,
        /// The rollup config's `genesis.l2.hash`.
        config: B256,
    },
    /// The engine's chain id is not the rollup config's.
    #[error(
        "the engine at {url} reports chain id {engine}, the rollup config's l2_chain_id is {config}"
    )]
    WrongChainId {
        /// The engine's URL.
        url: String,
        /// `eth_chainId`.
        engine: u64,
        /// The config's.
        config: u64,
    },
}

/// Waits until the engine answers (backing off, one log line per change), then checks its
/// genesis and chain id against `chain`.
pub async fn wait_and_check(
    client: &EngineClient,
    chain: &ChainSpec,
    retry: RetryConfig,
) -> Result<(), StartupError> {
    let url = client.url().to_owned();
    let number = chain.genesis.l2.number;
    let mut waiting = Retry::new(retry);
    let genesis = loop {
        match client.block_by_number(number).await {
            Ok(genesis) => {
                if let Some((_, failures)) = waiting.succeeded() {
                    tracing::info!(%url, failures, "engine reached");
                }
                break genesis;
            }
            Err(e) if e.is_transient() => {
                let (delay, change) = waiting.failed("unreachable");
                if let Change::Began { .. } = change {
                    tracing::warn!(%url, error = %e, "waiting for the engine to answer (retrying with backoff, logged once)");
                }
                tokio::time::sleep(delay).await;
            }
            Err(source) => return Err(StartupError::Engine { url, source }),
        }
    };
    let config = chain.genesis.l2.hash;
    match genesis {
        None => {
            return Err(StartupError::MissingGenesis {
                url,
                number,
                config,
            });
        }
        Some(block) if block.hash != config => {
            return Err(StartupError::WrongGenesis {
                url,
                number,
                engine: block.hash,
                config,
            });
        }
        Some(_) => {}
    }
    match client.chain_id().await {
        Ok(Some(id)) if id != chain.chain_id => Err(StartupError::WrongChainId {
            url,
            engine: id,
            config: chain.chain_id,
        }),
        Ok(_) => {
            tracing::info!(%url, number, hash = %config, "the engine's genesis is the rollup config's");
            Ok(())
        }
        Err(source) => Err(StartupError::Engine { url, source }),
    }
}
