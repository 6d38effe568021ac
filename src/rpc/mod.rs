//! The admin JSON-RPC server (HTTP, jsonrpsee): op-node's `opp2p_*` namespace (spec §9) with its
//! JSON shapes ([`types`]), plus `opgossip_*` methods for temporary bans, which op-node keeps
//! internal. It sits beside the network, never inside it: peer state comes from the event loop
//! through the [`NetworkHandle`]'s bounded commands, and the ban books and operator lists are
//! shared structures whose disk writes run on the blocking pool.
//!
//! ```text
//! HTTP ─► jsonrpsee ─► opp2p handler ─► NetworkHandle command ─► EventLoop (snapshot / close)
//!                                    └► PeerLists / BanList (persisted) ─► gate
//! ```

pub mod payloads;
pub mod types;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use jsonrpsee::server::{RpcModule, Server, ServerConfig};
use jsonrpsee::types::{ErrorObjectOwned, Params};
use libp2p::{Multiaddr, PeerId};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::clock::unix_now;
use crate::p2p::NetworkHandle;
use crate::p2p::peers::bans::BanList;
use crate::p2p::peers::book::DisconnectReason;
use crate::p2p::peers::lists::PeerLists;
use crate::p2p::peers::subnet::Subnet;
use types::{PeerDump, PeerInfo, PeerStats, TempBan};

/// op-node's default RPC port (`--rpc.port`).
pub const DEFAULT_RPC_PORT: u16 = 9545;
/// Largest request accepted. Every method takes at most two short strings; 64 KiB leaves room
/// for a batch of a few hundred calls and keeps a hostile caller from making us buffer megabytes.
pub const MAX_REQUEST_BYTES: u32 = 64 * 1024;
/// Largest response. A peer dump of 1,000 known peers is about 1.5 MB.
pub const MAX_RESPONSE_BYTES: u32 = 16 * 1024 * 1024;
/// Concurrent HTTP connections (jsonrpsee's default is 100; an admin API needs few).
pub const MAX_CONNECTIONS: u32 = 32;
/// op-node's `opp2p_connectPeer` timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// JSON-RPC "invalid params".
const INVALID_PARAMS: i32 = -32602;
/// Server error code for a failed operation (the network stopped, a dial failed, a full list).
const SERVER_ERROR: i32 = -32000;

/// Where the server listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RpcConfig {
    /// `--rpc.addr`.
    pub addr: IpAddr,
    /// `--rpc.port` (0 = any free port).
    pub port: u16,
}

/// What the handlers work on.
#[derive(Clone)]
pub struct AdminContext {
    /// The network.
    pub network: NetworkHandle,
    /// The operator's lists.
    pub lists: Arc<PeerLists>,
    /// The ban books.
    pub bans: Arc<BanList>,
    /// Posting and publishing payloads.
    pub payloads: payloads::PayloadContext,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// Binding failed.
    #[error("cannot start the admin RPC on {addr}: {reason}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
}

/// Starts the server; it stops when `shutdown` is cancelled. Returns the bound address.
pub async fn start(
    config: RpcConfig,
    context: AdminContext,
    shutdown: CancellationToken,
) -> Result<SocketAddr, RpcError> {
    let addr = SocketAddr::new(config.addr, config.port);
    let bind = |e: std::io::Error| RpcError::Bind {
        addr,
        reason: e.to_string(),
    };
    let limits = ServerConfig::builder()
        .http_only()
        .max_request_body_size(MAX_REQUEST_BYTES)
        .max_response_body_size(MAX_RESPONSE_BYTES)
        .max_connections(MAX_CONNECTIONS)
        .build();
    let server = Server::builder()
        .set_config(limits)
        .build(addr)
        .await
        .map_err(bind)?;
    let bound = server.local_addr().map_err(bind)?;
    let handle = server.start(module(context));
    tracing::info!(addr = %bound, "admin RPC listening");
    tokio::spawn(async move {
        shutdown.cancelled().await;
        let _ = handle.stop();
        handle.stopped().await;
    });
    Ok(bound)
}

type RpcResult = Result<Value, ErrorObjectOwned>;

fn invalid(message: impl std::fmt::Display) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(INVALID_PARAMS, message.to_string(), None::<()>)
}

fn failed(message: impl std::fmt::Display) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(SERVER_ERROR, message.to_string(), None::<()>)
}

fn payload_error(e: payloads::PayloadError) -> ErrorObjectOwned {
    match e {
        payloads::PayloadError::Invalid(_) => invalid(e),
        payloads::PayloadError::Unavailable(_) => failed(e),
    }
}

fn json(value: impl serde::Serialize) -> RpcResult {
    serde_json::to_value(value).map_err(failed)
}

/// The first positional parameter.
fn first<T: DeserializeOwned>(params: &Params<'_>) -> Result<T, ErrorObjectOwned> {
    params.sequence().next().map_err(|e| invalid(e.message()))
}

/// The parameter at `index`, or `default` when absent.
fn optional<T: DeserializeOwned>(
    params: &Params<'_>,
    index: usize,
    default: T,
) -> Result<T, ErrorObjectOwned> {
    let values: Vec<Value> = params.parse().unwrap_or_default();
    match values.get(index) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => serde_json::from_value(v.clone()).map_err(invalid),
    }
}

fn peer_param(params: &Params<'_>) -> Result<PeerId, ErrorObjectOwned> {
    let text: String = first(params)?;
    text.parse()
        .map_err(|e| invalid(format!("invalid peer id {text:?}: {e}")))
}

fn ip_param(params: &Params<'_>) -> Result<IpAddr, ErrorObjectOwned> {
    let text: String = first(params)?;
    text.parse()
        .map_err(|_| invalid(format!("invalid IP address {text:?}")))
}

/// Runs a blocking list or ban update (it writes the database) off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ErrorObjectOwned> {
    tokio::task::spawn_blocking(f).await.map_err(failed)
}

/// Fixes a handler's result type (a handler ending in `Ok(..)` after `?` leaves it open).
fn typed<F: std::future::Future<Output = RpcResult>>(f: F) -> F {
    f
}

macro_rules! method {
    ($module:ident, $name:literal, |$params:ident, $ctx:ident| $body:expr) => {
        // Registration fails only for a duplicate name, which is a programming error caught by
        // the tests; log it rather than panic.
        if let Err(e) = $module.register_async_method($name, |$params, $ctx, _| {
            typed(async move {
                let _ = (&$params, &$ctx);
                $body
            })
        }) {
            tracing::error!(method = $name, error = %e, "cannot register an RPC method");
        }
    };
}

/// Every method.
pub fn module(context: AdminContext) -> RpcModule<AdminContext> {
    let mut m = RpcModule::new(context);
    method!(m, "opp2p_self", |p, ctx| {
        let view = ctx.network.self_view().await.map_err(failed)?;
        json(PeerInfo::of_self(&view))
    });
    method!(m, "opp2p_peers", |p, ctx| {
        let connected_only: bool = first(&p)?;
        let views = ctx.network.peers(connected_only).await.map_err(failed)?;
        let now = unix_now();
        let temp = |list: Vec<(String, u64)>| {
            list.into_iter()
                .map(|(id, until)| TempBan { id, until })
                .collect()
        };
        json(PeerDump {
            total_connected: views.iter().filter(|v| v.record.is_connected()).count(),
            peers: views
                .iter()
                .map(|v| (v.peer.to_string(), PeerInfo::of_peer(v)))
                .collect::<BTreeMap<_, _>>(),
            banned_peers: ctx
                .lists
                .blocked_peers()
                .iter()
                .map(|p| p.to_string())
                .collect(),
            banned_ips: ctx
                .lists
                .blocked_ips()
                .iter()
                .map(|ip| ip.to_string())
                .collect(),
            banned_subnets: ctx.lists.blocked_subnets(),
            temp_banned_peers: temp(
                ctx.bans
                    .list(now)
                    .into_iter()
                    .map(|(p, u)| (p.to_string(), u))
                    .collect(),
            ),
            temp_banned_ips: temp(
                ctx.bans
                    .list_ips(now)
                    .into_iter()
                    .map(|(ip, u)| (ip.to_string(), u))
                    .collect(),
            ),
        })
    });
    method!(m, "opp2p_peerStats", |p, ctx| {
        let stats = ctx.network.stats().await.map_err(failed)?;
        let [v1, v2, v3, v4] = stats.block_topics;
        json(PeerStats {
            connected: stats.connected,
            table: 0,
            blocks_topic: v1,
            blocks_topic_v2: v2,
            blocks_topic_v3: v3,
            blocks_topic_v4: v4,
            banned: ctx.lists.blocked_peers().len(),
            known: stats.known,
        })
    });
    method!(m, "opp2p_discoveryTable", |p, ctx| {
        // op-node's answer when discovery is off; discv5 is not part of this node yet.
        Err::<Value, _>(failed("discovery disabled"))
    });
    method!(m, "opp2p_blockPeer", |p, ctx| {
        let peer = peer_param(&p)?;
        let lists = ctx.lists.clone();
        blocking(move || lists.block_peer(peer))
            .await?
            .map_err(failed)?;
        ctx.network.close_refused().await.map_err(failed)?;
        Ok(Value::Null)
    });
    method!(m, "opp2p_unblockPeer", |p, ctx| {
        let peer = peer_param(&p)?;
        let lists = ctx.lists.clone();
        blocking(move || lists.unblock_peer(&peer)).await?;
        Ok(Value::Null)
    });
    method!(m, "opp2p_listBlockedPeers", |p, ctx| {
        json(
            ctx.lists
                .blocked_peers()
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>(),
        )
    });
    method!(m, "opp2p_blockAddr", |p, ctx| {
        let ip = ip_param(&p)?;
        let lists = ctx.lists.clone();
        blocking(move || lists.block_ip(ip))
            .await?
            .map_err(failed)?;
        ctx.network.close_refused().await.map_err(failed)?;
        Ok(Value::Null)
    });
    method!(m, "opp2p_unblockAddr", |p, ctx| {
        let ip = ip_param(&p)?;
        let lists = ctx.lists.clone();
        blocking(move || lists.unblock_ip(&ip)).await?;
        Ok(Value::Null)
    });
    method!(m, "opp2p_listBlockedAddrs", |p, ctx| {
        json(
            ctx.lists
                .blocked_ips()
                .iter()
                .map(|ip| ip.to_string())
                .collect::<Vec<_>>(),
        )
    });
    method!(m, "opp2p_blockSubnet", |p, ctx| {
        let subnet: Subnet = first(&p)?;
        let lists = ctx.lists.clone();
        blocking(move || lists.block_subnet(subnet))
            .await?
            .map_err(failed)?;
        ctx.network.close_refused().await.map_err(failed)?;
        Ok(Value::Null)
    });
    method!(m, "opp2p_unblockSubnet", |p, ctx| {
        let subnet: Subnet = first(&p)?;
        let lists = ctx.lists.clone();
        blocking(move || lists.unblock_subnet(&subnet)).await?;
        Ok(Value::Null)
    });
    method!(m, "opp2p_listBlockedSubnets", |p, ctx| {
        json(ctx.lists.blocked_subnets())
    });
    method!(m, "opp2p_protectPeer", |p, ctx| {
        let peer = peer_param(&p)?;
        let lists = ctx.lists.clone();
        blocking(move || lists.protect(peer))
            .await?
            .map_err(failed)?;
        Ok(Value::Null)
    });
    method!(m, "opp2p_unprotectPeer", |p, ctx| {
        let peer = peer_param(&p)?;
        let lists = ctx.lists.clone();
        blocking(move || lists.unprotect(&peer)).await?;
        Ok(Value::Null)
    });
    method!(m, "opp2p_connectPeer", |p, ctx| {
        let text: String = first(&p)?;
        let addr: Multiaddr = text
            .parse()
            .map_err(|e| invalid(format!("invalid multiaddr {text:?}: {e}")))?;
        match tokio::time::timeout(CONNECT_TIMEOUT, ctx.network.connect(addr)).await {
            Ok(Ok(())) => Ok(Value::Null),
            Ok(Err(e)) => Err(failed(e)),
            Err(_) => Err(failed("timed out connecting")),
        }
    });
    method!(m, "opp2p_disconnectPeer", |p, ctx| {
        // op-node: close, forget the addresses, and unblock.
        let peer = peer_param(&p)?;
        ctx.network
            .disconnect(peer, DisconnectReason::Operator, true)
            .await
            .map_err(failed)?;
        let lists = ctx.lists.clone();
        blocking(move || lists.unblock_peer(&peer)).await?;
        Ok(Value::Null)
    });
    method!(m, "admin_postUnsafePayload", |p, ctx| {
        let envelope: Value = first(&p)?;
        let block = ctx.payloads.decode(envelope).map_err(payload_error)?;
        ctx.payloads.store(block).await.map_err(payload_error)?;
        Ok(Value::Null)
    });
    method!(m, "opgossip_publishPayload", |p, ctx| {
        let envelope: Value = first(&p)?;
        let block = ctx.payloads.decode(envelope).map_err(payload_error)?;
        json(ctx.payloads.publish(block).await.map_err(payload_error)?)
    });
    method!(m, "opgossip_banPeer", |p, ctx| {
        let peer = peer_param(&p)?;
        let secs: u64 = optional(&p, 1, crate::p2p::DEFAULT_BAN_DURATION.as_secs())?;
        let bans = ctx.bans.clone();
        let until = unix_now().saturating_add(secs);
        blocking(move || bans.ban(peer, until)).await?;
        ctx.network.close_refused().await.map_err(failed)?;
        json(until)
    });
    method!(m, "opgossip_unbanPeer", |p, ctx| {
        let peer = peer_param(&p)?;
        let bans = ctx.bans.clone();
        blocking(move || bans.unban(&peer)).await?;
        Ok(Value::Null)
    });
    method!(m, "opgossip_banAddr", |p, ctx| {
        let ip = ip_param(&p)?;
        let secs: u64 = optional(&p, 1, crate::p2p::DEFAULT_BAN_DURATION.as_secs())?;
        let bans = ctx.bans.clone();
        let until = unix_now().saturating_add(secs);
        blocking(move || bans.ban_ip(ip, until)).await?;
        ctx.network.close_refused().await.map_err(failed)?;
        json(until)
    });
    method!(m, "opgossip_unbanAddr", |p, ctx| {
        let ip = ip_param(&p)?;
        let bans = ctx.bans.clone();
        blocking(move || bans.unban_ip(&ip)).await?;
        Ok(Value::Null)
    });
    m
}
