//! The start steps of the engine path and the sequencer: attaching the engine (`--l2`), where
//! the sequencer resumes, and its producer. Part of [`super::start`].

use tokio::sync::{broadcast, mpsc};

use super::start::{Tasks, genesis};
use super::{NodeConfig, NodeError, PRODUCE_QUEUE, ProducerClient};
use crate::engine::metrics::EngineMetrics;
use crate::events::NodeEvent;
use crate::p2p::NetworkHandle;
use crate::producer::{Producer, ProducerLinks};
use crate::store::writer::StoreOp;
use crate::store::{BlockRef, Store};
use crate::validate::BlockValidator;
use std::sync::Arc;

/// Attaches the engine (`--l2`); its head is where this node resumes: a fresh store starts
/// there, and a store behind it jumps to it (the sync client fills the gap above).
/// It waits for an engine that is not up yet and refuses one on another chain.
pub(super) async fn attach_engine(
    config: &NodeConfig,
    store: &Store,
    engine_metrics: &EngineMetrics,
) -> Result<Option<crate::engine::Attached>, NodeError> {
    let Some(engine_config) = &config.engine else {
        return Ok(None);
    };
    let attached = crate::engine::attach(engine_config, &config.chain, engine_metrics.clone())
        .await
        .map_err(NodeError::Engine)?;
    if let Some(engine_head) = attached.head
        && store.head()?.is_none_or(|h| h.number < engine_head.number)
    {
        let head = store.anchor_at(engine_head)?;
        tracing::info!(
            engine = engine_head.number,
            head = head.number,
            "store resumes from the engine's head"
        );
    }
    Ok(Some(attached))
}

/// Where a sequencer resumes (the engine's head when it has one); a sequencer on the chain's
/// clock too far behind it does not start.
pub(super) fn sequencer_tip(
    config: &NodeConfig,
    store: &Store,
    initial_head: Option<BlockRef>,
    engine: Option<&crate::engine::Attached>,
) -> Result<crate::producer::pace::Tip, NodeError> {
    let engine_head = engine.and_then(|a| a.head.map(|h| (h, a.head_timestamp)));
    let tip = crate::producer::pace::Tip::resume(
        store,
        &config.chain,
        initial_head.unwrap_or(genesis(config)),
        engine_head,
    );
    if config.sequencer.as_ref().map(|s| s.schedule) == Some(crate::producer::Schedule::ChainTime) {
        crate::producer::pace::check_start(&tip, &config.chain, crate::clock::unix_now())
            .map_err(crate::producer::ProduceError::from)?;
    }
    Ok(tip)
}

/// What the producer is built from besides the config.
pub(super) struct ProducerInputs<'a> {
    pub(super) validator: &'a Arc<BlockValidator>,
    pub(super) network: &'a NetworkHandle,
    pub(super) store_tx: &'a mpsc::Sender<StoreOp>,
    pub(super) events: &'a broadcast::Sender<NodeEvent>,
    pub(super) tip: crate::producer::pace::Tip,
    pub(super) engine: Option<crate::producer::engine::SequencerEngine>,
    /// The L1 source the signer set follows (`--l1`): the producer follows L1 through it too.
    pub(super) l1: Option<Arc<crate::l1::SignerSource>>,
}

/// A sequencer's producer (`None` for a follower).
pub(super) fn start_producer(
    config: &NodeConfig,
    inputs: ProducerInputs<'_>,
    tasks: &mut Tasks,
) -> Option<ProducerClient> {
    let sequencer = config.sequencer.clone()?;
    let (tx, rx) = mpsc::channel(PRODUCE_QUEUE);
    tracing::info!(signer = %sequencer.signer.address(), schedule = ?sequencer.schedule, "sequencing");
    let links = ProducerLinks {
        validator: inputs.validator.clone(),
        network: inputs.network.clone(),
        store_tx: inputs.store_tx.clone(),
        events: inputs.events.clone(),
        requests: rx,
        shutdown: tasks.shutdown.clone(),
    };
    let producer = Producer::new(
        config.chain.clone(),
        sequencer,
        links,
        inputs.tip,
        inputs.engine,
        inputs.l1,
    );
    tasks.spawn(producer.run());
    Some(ProducerClient(tx))
}
