//! Node wiring of discovery and the admin RPC, split from [`super::start`]: discovery starts
//! once the network listens (its ENR names the bound TCP port), and the admin RPC answers from
//! the network, discovery, the peer books and the store writer.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::start::{PeerBooks, Tasks};
use super::{NodeConfig, NodeError};
use crate::metrics::Metrics;
use crate::p2p::NetworkHandle;
use crate::store::writer::StoreOp;
use crate::validate::BlockValidator;

/// Discovery, once the network listens (its ENR names the bound TCP port); `None` with
/// `--p2p.no-discovery`.
pub(super) async fn start_discovery(
    config: &NodeConfig,
    network: &NetworkHandle,
    books: &PeerBooks,
    link: Option<crate::discovery::link::ServiceLink>,
    metrics: &Arc<Metrics>,
    tasks: &mut Tasks,
) -> Result<Option<crate::discovery::DiscoveryHandle>, NodeError> {
    let (Some(discovery), Some(link)) = (config.discovery.clone(), link) else {
        return Ok(None);
    };
    let admission = crate::p2p::gate::Admission::new(books.bans.clone(), books.lists.clone());
    let dialling = crate::discovery::Dialling::new(link, admission, config.limits.lo);
    let (handle, task) = crate::discovery::start_for_node(
        discovery,
        &config.keypair,
        network,
        dialling,
        metrics,
        tasks.shutdown.clone(),
    )
    .await?;
    tasks.spawn(async move {
        let _ = task.await;
    });
    Ok(Some(handle))
}

/// What the admin RPC answers from.
pub(super) struct RpcSources<'a> {
    pub(super) network: &'a NetworkHandle,
    pub(super) discovery: Option<&'a crate::discovery::DiscoveryHandle>,
    pub(super) books: &'a PeerBooks,
    pub(super) store_tx: &'a mpsc::Sender<StoreOp>,
    pub(super) validator: &'a Arc<BlockValidator>,
}

/// The admin RPC (`None`: not served).
pub(super) async fn start_rpc(
    config: &NodeConfig,
    sources: RpcSources<'_>,
    http: Arc<crate::http::HttpStats>,
    tasks: &mut Tasks,
) -> Result<Option<SocketAddr>, NodeError> {
    let Some(rpc) = config.rpc.clone() else {
        return Ok(None);
    };
    let context = crate::rpc::AdminContext {
        network: sources.network.clone(),
        discovery: sources.discovery.cloned(),
        lists: sources.books.lists.clone(),
        bans: sources.books.bans.clone(),
        payloads: crate::rpc::payloads::PayloadContext {
            chain: config.chain.clone(),
            store_tx: sources.store_tx.clone(),
            network: sources.network.clone(),
            validator: sources.validator.clone(),
            signer: config.sequencer.as_ref().map(|s| s.signer.clone()),
        },
    };
    let (addr, task) = crate::rpc::start(rpc, context, http, tasks.shutdown.clone()).await?;
    tasks.spawn(async move {
        let _ = task.await;
    });
    Ok(Some(addr))
}
