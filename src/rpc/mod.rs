//! The admin JSON-RPC server (HTTP, jsonrpsee): op-node's `opp2p_*` namespace (spec §9) with its
//! JSON shapes ([`types`]); with `--rpc.enable-admin` (op-node's flag) also op-node's
//! `admin_postUnsafePayload`, our `opgossip_publishPayload` ([`payloads`]) and `opgossip_*` methods
//! for temporary bans, which op-node keeps internal ([`ADMIN_METHODS`]). It sits beside the
//! network, never inside it: peer state comes from the event loop through the
//! [`NetworkHandle`]'s bounded commands, and the ban books and operator lists are shared
//! structures whose disk writes run on the blocking pool.
//!
//! ```text
//! TCP ─► crate::http (connection table, deadlines, in-flight cap) ─► Host allow-list (403)
//!     ─► jsonrpsee ─► opp2p handler ─► NetworkHandle command ─► EventLoop (snapshot / close)
//!                                   └► PeerLists / BanList (persisted) ─► gate
//! ```
//!
//! Security model: the server listens on 127.0.0.1 by default and has no authentication, so it
//! must not face anyone who is not the operator. A web page in the operator's browser can still
//! send requests to loopback (by DNS rebinding, under its own host name), so every request's
//! `Host` must be on `--rpc.vhosts` (geth's convention; default `localhost`, which allows
//! `localhost`, `127.0.0.1` and `[::1]` on any port) or it gets 403; there is no CORS. What
//! signs with the sequencer key, stores unsigned blocks or bans peers is not even registered
//! without `--rpc.enable-admin` (callers get -32601, method not found). The HTTP bounds
//! ([`RPC_HTTP_LIMITS`]) keep slow and idle clients from locking other callers out.

pub mod payloads;
pub mod types;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use jsonrpsee::server::middleware::http::{AuthorityError, HostFilterLayer};
use jsonrpsee::server::{RpcModule, Server, ServerConfig};
use jsonrpsee::types::{ErrorObjectOwned, Params};
use libp2p::{Multiaddr, PeerId};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::unix_now;
use crate::http::{HttpLimits, HttpStats};
use crate::log_limit::LogEvery;
use crate::p2p::NetworkHandle;
use crate::p2p::peer_manager::OperatorChange;
use crate::p2p::peers::bans::BanList;
use crate::p2p::peers::lists::{ListChange, PeerLists};
use crate::p2p::peers::subnet::Subnet;
use types::{PeerDump, PeerInfo, PeerStats, TempBan};

/// op-node's default RPC port (`--rpc.port`).
pub const DEFAULT_RPC_PORT: u16 = 9545;
/// Largest request accepted. Every `opp2p_*` method takes at most two short strings; 64 KiB
/// leaves room for a batch of a few hundred calls and keeps a hostile caller from making us
/// buffer megabytes.
pub const MAX_REQUEST_BYTES: u32 = 64 * 1024;
/// Largest response. A peer dump of 1,000 known peers is about 1.5 MB.
pub const MAX_RESPONSE_BYTES: u32 = 16 * 1024 * 1024;
/// op-node's `opp2p_connectPeer` timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Shortest time a failed `opp2p_connectPeer` takes to answer. A refused port fails in well under
/// a millisecond and a port that does not speak libp2p a few milliseconds later; waiting out a
/// floor hides that difference (with the single error message, the caller cannot tell an open
/// port from a closed one), and slows a port scan through the node to one port per second per
/// request in flight.
pub const CONNECT_FAILURE_FLOOR: Duration = Duration::from_secs(1);
/// What every failed `opp2p_connectPeer` answers, whatever the cause; the cause goes to the log.
pub const CONNECT_FAILED: &str = "cannot connect to the peer";
/// `--rpc.vhosts` by default: loopback names only.
pub const DEFAULT_VHOSTS: &str = "localhost";
/// The methods registered only with `--rpc.enable-admin`: what stores a block (and so sends it to
/// the engine and serves it to peers), signs with the sequencer key, or bans. op-node keeps its
/// `admin_*` methods behind the same flag; `opp2p_*` stay as op-node has them.
pub const ADMIN_METHODS: [&str; 6] = [
    "admin_postUnsafePayload",
    "opgossip_publishPayload",
    "opgossip_banPeer",
    "opgossip_unbanPeer",
    "opgossip_banAddr",
    "opgossip_unbanAddr",
];
/// The admin RPC's HTTP bounds ([`crate::http`]).
pub const RPC_HTTP_LIMITS: HttpLimits = HttpLimits {
    // An operator's tools open a few connections; a full table closes its longest-idle one for
    // a new caller, so 64 only bounds memory (a task and a read buffer each).
    max_connections: 64,
    // Admin calls take milliseconds, except `opp2p_connectPeer` (up to 30 s); 32 was the former
    // cap on connections, now spent only on requests whose body is in.
    max_in_flight: 32,
    // A 64 KiB body from a local tool arrives in milliseconds; 10 s also covers a remote one on
    // a slow link (geth allows 30 s, for bodies of up to 5 MB).
    read_timeout: Duration::from_secs(10),
    // Reconnecting costs a local tool one handshake; half a minute spares a polling script that.
    idle_timeout: Duration::from_secs(30),
    // The largest response (16 MiB) at about 0.5 MB/s.
    write_timeout: Duration::from_secs(30),
    // Above `opp2p_connectPeer`'s 30 s timeout and failure floor.
    handler_timeout: Duration::from_secs(60),
    max_body_bytes: MAX_REQUEST_BYTES as usize,
};
/// JSON-RPC "invalid params".
const INVALID_PARAMS: i32 = -32602;
/// Server error code for a failed operation (the network stopped, a dial failed, a full list).
const SERVER_ERROR: i32 = -32000;
/// One line per interval for failed `opp2p_connectPeer` calls (a caller could spam them).
static CONNECT_FAILURES: LogEvery = LogEvery::new(Duration::from_secs(10));

/// How the server is set up (`--rpc.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcConfig {
    /// `--rpc.addr`.
    pub addr: IpAddr,
    /// `--rpc.port` (0 = any free port).
    pub port: u16,
    /// `--rpc.enable-admin`: also register [`ADMIN_METHODS`].
    pub enable_admin: bool,
    /// `--rpc.vhosts`: the `Host` names allowed (`localhost` stands for `localhost`, `127.0.0.1`
    /// and `[::1]`; `*` for any; a name allows any port, `name:port` one).
    pub vhosts: Vec<String>,
    /// HTTP bounds ([`RPC_HTTP_LIMITS`]; tests shorten the timeouts).
    pub http: HttpLimits,
}

impl Default for RpcConfig {
    /// 127.0.0.1:9545, no admin methods, `localhost` only, [`RPC_HTTP_LIMITS`].
    fn default() -> Self {
        Self {
            addr: IpAddr::from([127, 0, 0, 1]),
            port: DEFAULT_RPC_PORT,
            enable_admin: false,
            vhosts: vec![DEFAULT_VHOSTS.to_owned()],
            http: RPC_HTTP_LIMITS,
        }
    }
}

/// What the handlers work on.
#[derive(Clone)]
pub struct AdminContext {
    /// The network.
    pub network: NetworkHandle,
    /// Discovery (`None` with `--p2p.no-discovery`: `opp2p_discoveryTable` answers op-node's
    /// "discovery disabled").
    pub discovery: Option<crate::discovery::DiscoveryHandle>,
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
    #[error("cannot start the admin RPC on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A `--rpc.vhosts` entry is not a host name.
    #[error("--rpc.vhosts: {entry:?}: {source}")]
    VirtualHost {
        /// The entry as given.
        entry: String,
        /// Why it is not a host name.
        source: AuthorityError,
    },
    /// `--rpc.vhosts` names no host.
    #[error("--rpc.vhosts: no host name given (`*` allows any)")]
    NoVirtualHosts,
    /// The host filter refused the list (each entry passed alone).
    #[error("--rpc.vhosts: {0}")]
    HostFilter(#[source] AuthorityError),
    /// The HTTP bounds contradict each other.
    #[error("admin RPC: {0}")]
    Limits(#[from] crate::http::HttpError),
}

/// The `Host` filter for `vhosts` (see [`RpcConfig::vhosts`]): jsonrpsee's, which answers 403
/// to a name not on the list and 400 to a request without one.
pub fn host_filter(vhosts: &[String]) -> Result<HostFilterLayer, RpcError> {
    let mut allowed = Vec::new();
    for entry in vhosts {
        let name = entry.trim().to_ascii_lowercase();
        match name.as_str() {
            "" => {}
            "*" => return Ok(HostFilterLayer::disable()),
            "localhost" => {
                allowed.extend(["localhost", "127.0.0.1", "[::1]"].map(|h| format!("{h}:*")));
            }
            _ => {
                // A bare IPv6 address gets the brackets a Host header carries.
                let name = match name.parse::<std::net::Ipv6Addr>() {
                    Ok(ip) => format!("[{ip}]"),
                    Err(_) => name,
                };
                let has_port = match name.strip_prefix('[') {
                    Some(rest) => rest.contains("]:"),
                    None => name.contains(':'),
                };
                let pattern = if has_port { name } else { format!("{name}:*") };
                // Checked one by one, to name the entry at fault.
                HostFilterLayer::new([pattern.as_str()]).map_err(|source| {
                    RpcError::VirtualHost {
                        entry: entry.clone(),
                        source,
                    }
                })?;
                allowed.push(pattern);
            }
        }
    }
    if allowed.is_empty() {
        return Err(RpcError::NoVirtualHosts);
    }
    HostFilterLayer::new(allowed).map_err(RpcError::HostFilter)
}

/// Starts the server; it stops when `shutdown` is cancelled (the returned task ends then, within
/// [`crate::http::SHUTDOWN_GRACE`]). Returns the bound address; what the HTTP bounds did is
/// counted in `stats`.
pub async fn start(
    config: RpcConfig,
    context: AdminContext,
    stats: std::sync::Arc<HttpStats>,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, JoinHandle<()>), RpcError> {
    let addr = SocketAddr::new(config.addr, config.port);
    let bind = |source| RpcError::Bind { addr, source };
    let hosts = host_filter(&config.vhosts)?;
    config.http.validate()?;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(bind)?;
    let bound = listener.local_addr().map_err(bind)?;
    let limits = ServerConfig::builder()
        .http_only()
        .max_request_body_size(MAX_REQUEST_BYTES)
        .max_response_body_size(MAX_RESPONSE_BYTES)
        // jsonrpsee counts requests in progress; ours are counted (and capped) first.
        .max_connections(u32::try_from(config.http.max_in_flight).unwrap_or(u32::MAX))
        .build();
    let (stop, handle) = jsonrpsee::server::stop_channel();
    let service = Server::builder()
        .set_config(limits)
        .set_http_middleware(tower::ServiceBuilder::new().layer(hosts))
        .to_service_builder()
        .build(module(context, config.enable_admin), stop);
    let served = crate::http::serve(listener, config.http, stats, service, shutdown)?;
    tracing::info!(
        addr = %bound,
        admin = config.enable_admin,
        vhosts = %config.vhosts.join(","),
        "admin RPC listening"
    );
    let task = tokio::spawn(async move {
        let _ = served.await;
        let _ = handle.stop();
    });
    Ok((bound, task))
}

type RpcResult = Result<Value, ErrorObjectOwned>;

fn invalid(message: impl std::fmt::Display) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(INVALID_PARAMS, message.to_string(), None::<()>)
}

fn failed(message: impl std::fmt::Display) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(SERVER_ERROR, message.to_string(), None::<()>)
}

fn payload_error(e: payloads::PayloadError) -> ErrorObjectOwned {
    if e.is_invalid() {
        invalid(e)
    } else {
        failed(e)
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

/// Hands an operator's change to the peer manager; answers once it is written.
async fn operator(ctx: &AdminContext, change: OperatorChange) -> RpcResult {
    ctx.network.operator(change).await.map_err(failed)?;
    Ok(Value::Null)
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

/// Every `opp2p_*` method, and [`ADMIN_METHODS`] when `enable_admin`.
pub fn module(context: AdminContext, enable_admin: bool) -> RpcModule<AdminContext> {
    let mut m = RpcModule::new(context);
    method!(m, "opp2p_self", |p, ctx| {
        let view = ctx.network.self_view().await.map_err(failed)?;
        let mut info = PeerInfo::of_self(&view);
        if let Some(discovery) = &ctx.discovery {
            // op-node: the local ENR and the chain id of its `opstack` entry.
            let enr = discovery.local_enr().await.map_err(failed)?;
            info.enr = enr.to_base64();
            info.chain_id = crate::discovery::opstack::OpStackId::of_enr(&enr)
                .and_then(Result::ok)
                .map_or(0, |id| id.chain_id);
        }
        json(info)
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
            table: ctx.discovery.as_ref().map_or(0, |d| {
                usize::try_from(d.stats().table()).unwrap_or(usize::MAX)
            }),
            blocks_topic: v1,
            blocks_topic_v2: v2,
            blocks_topic_v3: v3,
            blocks_topic_v4: v4,
            banned: ctx.lists.blocked_peers().len(),
            known: stats.known,
        })
    });
    method!(m, "opp2p_discoveryTable", |p, ctx| {
        // op-node's answer when discovery is off.
        let discovery = ctx
            .discovery
            .as_ref()
            .ok_or_else(|| failed("discovery disabled"))?;
        let table = discovery.table().await.map_err(failed)?;
        json(table.iter().map(|e| e.to_base64()).collect::<Vec<_>>())
    });
    method!(m, "opp2p_blockPeer", |p, ctx| {
        let x = peer_param(&p)?;
        operator(&ctx, OperatorChange::List(ListChange::BlockPeer(x))).await
    });
    method!(m, "opp2p_unblockPeer", |p, ctx| {
        let x = peer_param(&p)?;
        operator(&ctx, OperatorChange::List(ListChange::UnblockPeer(x))).await
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
        let x = ip_param(&p)?;
        operator(&ctx, OperatorChange::List(ListChange::BlockIp(x))).await
    });
    method!(m, "opp2p_unblockAddr", |p, ctx| {
        let x = ip_param(&p)?;
        operator(&ctx, OperatorChange::List(ListChange::UnblockIp(x))).await
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
        operator(&ctx, OperatorChange::List(ListChange::BlockSubnet(subnet))).await
    });
    method!(m, "opp2p_unblockSubnet", |p, ctx| {
        let subnet: Subnet = first(&p)?;
        operator(
            &ctx,
            OperatorChange::List(ListChange::UnblockSubnet(subnet)),
        )
        .await
    });
    method!(m, "opp2p_listBlockedSubnets", |p, ctx| {
        json(ctx.lists.blocked_subnets())
    });
    method!(m, "opp2p_protectPeer", |p, ctx| {
        let x = peer_param(&p)?;
        operator(&ctx, OperatorChange::List(ListChange::Protect(x))).await
    });
    method!(m, "opp2p_unprotectPeer", |p, ctx| {
        let x = peer_param(&p)?;
        operator(&ctx, OperatorChange::List(ListChange::Unprotect(x))).await
    });
    method!(m, "opp2p_connectPeer", |p, ctx| {
        let text: String = first(&p)?;
        let addr: Multiaddr = text
            .parse()
            .map_err(|e| invalid(format!("invalid multiaddr {text:?}: {e}")))?;
        if crate::p2p::peer_id_of(&addr).is_none() {
            return Err(invalid(format!("{text:?} must end in /p2p/<peer id>")));
        }
        // Whatever goes wrong past this point, the caller gets one answer, after the same
        // floor: the node must not tell its callers which ports are open where.
        let started = tokio::time::Instant::now();
        let reason =
            match tokio::time::timeout(CONNECT_TIMEOUT, ctx.network.connect(addr.clone())).await {
                Ok(Ok(())) => return Ok(Value::Null),
                Ok(Err(e)) => e.to_string(),
                Err(_) => "timed out".to_owned(),
            };
        if let Some(events) = CONNECT_FAILURES.event() {
            tracing::info!(%addr, %reason, events, "opp2p_connectPeer failed");
        }
        tokio::time::sleep_until(started + CONNECT_FAILURE_FLOOR).await;
        Err::<Value, _>(failed(CONNECT_FAILED))
    });
    method!(m, "opp2p_disconnectPeer", |p, ctx| {
        // op-node: close, forget the addresses, and unblock.
        let peer = peer_param(&p)?;
        operator(&ctx, OperatorChange::Disconnect(peer)).await
    });
    if enable_admin {
        admin_methods(&mut m);
    }
    m
}

/// [`ADMIN_METHODS`].
fn admin_methods(m: &mut RpcModule<AdminContext>) {
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
        let until = unix_now().saturating_add(secs);
        operator(&ctx, OperatorChange::BanPeer { peer, until }).await?;
        json(until)
    });
    method!(m, "opgossip_unbanPeer", |p, ctx| {
        let peer = peer_param(&p)?;
        operator(&ctx, OperatorChange::UnbanPeer(peer)).await
    });
    method!(m, "opgossip_banAddr", |p, ctx| {
        let ip = ip_param(&p)?;
        let secs: u64 = optional(&p, 1, crate::p2p::DEFAULT_BAN_DURATION.as_secs())?;
        let until = unix_now().saturating_add(secs);
        operator(&ctx, OperatorChange::BanIp { ip, until }).await?;
        json(until)
    });
    method!(m, "opgossip_unbanAddr", |p, ctx| {
        let ip = ip_param(&p)?;
        operator(&ctx, OperatorChange::UnbanIp(ip)).await
    });
}
