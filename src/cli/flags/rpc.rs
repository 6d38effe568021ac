//! Admin JSON-RPC flags (op-node's `--rpc.*`, plus `--rpc.enable-admin` and `--rpc.vhosts`),
//! checked into [`RpcConfig`] (`None`: not served).

use crate::cli::CliError;
use crate::rpc::RpcConfig;

/// Admin RPC flags.
#[derive(Debug, Clone, clap::Args)]
pub struct RpcArgs {
    /// Address of the admin JSON-RPC (opp2p_*).
    #[arg(
        long = "rpc.addr",
        default_value = "127.0.0.1",
        env = "OP_NODE_RPC_ADDR"
    )]
    pub rpc_addr: std::net::IpAddr,

    /// Port of the admin JSON-RPC (0 = any free port; the bound address is logged).
    #[arg(long = "rpc.port", default_value_t = crate::rpc::DEFAULT_RPC_PORT, env = "OP_NODE_RPC_PORT")]
    pub rpc_port: u16,

    /// Do not serve the admin JSON-RPC.
    #[arg(long = "rpc.disable", default_value_t = false)]
    pub rpc_disable: bool,

    /// Also serve the methods that store or sign blocks and ban peers (admin_postUnsafePayload,
    /// opgossip_publishPayload, opgossip_{ban,unban}{Peer,Addr}); off: "method not found".
    #[arg(long = "rpc.enable-admin", env = "OP_NODE_RPC_ENABLE_ADMIN", default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub rpc_enable_admin: bool,

    /// Host names the admin RPC answers (comma-separated; `localhost` = localhost, 127.0.0.1 and
    /// `[::1]`; `*` = any); a request with another Host header gets 403.
    #[arg(
        long = "rpc.vhosts",
        value_name = "HOSTS",
        value_delimiter = ',',
        default_value = crate::rpc::DEFAULT_VHOSTS,
        env = "OP_GOSSIP_RPC_VHOSTS"
    )]
    pub rpc_vhosts: Vec<String>,
}

impl TryFrom<&RpcArgs> for Option<RpcConfig> {
    type Error = CliError;

    fn try_from(args: &RpcArgs) -> Result<Self, CliError> {
        crate::rpc::host_filter(&args.rpc_vhosts).map_err(|e| CliError::Usage(e.to_string()))?;
        Ok((!args.rpc_disable).then(|| RpcConfig {
            addr: args.rpc_addr,
            port: args.rpc_port,
            enable_admin: args.rpc_enable_admin,
            vhosts: args.rpc_vhosts.clone(),
            http: crate::rpc::RPC_HTTP_LIMITS,
        }))
    }
}
