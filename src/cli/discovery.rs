//! Discovery flags (op-node's names, spec §10.1), shared by `node` and `bootnode`, and their
//! validation into a [`DiscoveryConfig`].

use std::net::IpAddr;
use std::path::Path;

use crate::chain::ChainSpec;
use crate::discovery::persist::TableStore;
use crate::discovery::records::parse_bootnodes;
use crate::discovery::{DEFAULT_LOOKUP_INTERVAL, DiscoveryConfig};
use crate::p2p::peers::subnet::Subnet;

use super::CliError;

/// Flags of discv5.
#[derive(Debug, Clone, clap::Args)]
pub struct DiscoveryArgs {
    /// Disable discv5: no UDP socket; only --p2p.static peers (and inbound ones) are connected.
    #[arg(
        long = "p2p.no-discovery",
        default_value_t = false,
        env = "OP_NODE_P2P_NO_DISCOVERY"
    )]
    pub no_discovery: bool,

    /// UDP port of discv5 (0 = any free port, op-node's default; the bound port is in the ENR).
    #[arg(
        long = "p2p.listen.udp",
        default_value_t = 0,
        env = "OP_NODE_P2P_LISTEN_UDP_PORT"
    )]
    pub listen_udp: u16,

    /// Public IP to put in the ENR (default: the listen IP if specific, else learned from peers).
    #[arg(
        long = "p2p.advertise.ip",
        value_name = "IP",
        env = "OP_NODE_P2P_ADVERTISE_IP"
    )]
    pub advertise_ip: Option<IpAddr>,

    /// TCP port to put in the ENR (0 = the bound libp2p port).
    #[arg(
        long = "p2p.advertise.tcp",
        default_value_t = 0,
        env = "OP_NODE_P2P_ADVERTISE_TCP"
    )]
    pub advertise_tcp: u16,

    /// UDP port to put in the ENR (0 = the bound discv5 port).
    #[arg(
        long = "p2p.advertise.udp",
        default_value_t = 0,
        env = "OP_NODE_P2P_ADVERTISE_UDP"
    )]
    pub advertise_udp: u16,

    /// Comma-separated bootnodes (`enr:` records or `enode://` URLs; an enode's signed record is
    /// requested from it). Default: the chain file's (op-node's list for the public chains, none
    /// for a rollup.json or the devnet).
    #[arg(
        long = "p2p.bootnodes",
        value_name = "RECORDS",
        value_delimiter = ',',
        env = "OP_NODE_P2P_BOOTNODES"
    )]
    pub bootnodes: Vec<String>,

    /// File keeping our ENR (its sequence number) and the node table across restarts, or
    /// `memory` (default: `discovery.txt` in the data directory).
    #[arg(
        long = "p2p.discovery.path",
        value_name = "FILE|memory",
        env = "OP_NODE_P2P_DISCOVERY_PATH"
    )]
    pub discovery_path: Option<String>,

    /// Comma-separated CIDR networks: only peers in them are dialled from discovery.
    #[arg(
        long = "p2p.netrestrict",
        value_name = "CIDRS",
        value_delimiter = ',',
        env = "OP_NODE_P2P_NETRESTRICT"
    )]
    pub netrestrict: Vec<String>,
}

impl DiscoveryArgs {
    /// The configuration (`None` with `--p2p.no-discovery`).
    pub fn to_config(
        &self,
        chain: &ChainSpec,
        data_dir: &Path,
        listen_ip: IpAddr,
    ) -> Result<Option<DiscoveryConfig>, CliError> {
        if self.no_discovery {
            return Ok(None);
        }
        let given: Vec<&String> = self
            .bootnodes
            .iter()
            .filter(|b| !b.trim().is_empty())
            .collect();
        let bootnodes = if given.is_empty() {
            parse_bootnodes(&chain.bootnodes)
                .map_err(|e| CliError::Usage(format!("chain {}: {e}", chain.name)))?
        } else {
            parse_bootnodes(&given).map_err(|e| CliError::Usage(format!("--p2p.bootnodes: {e}")))?
        };
        let netrestrict = self
            .netrestrict
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<Subnet>().map_err(|_| {
                    CliError::Usage(format!("--p2p.netrestrict: {s:?} is not a CIDR network"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let nonzero = |p: u16| (p != 0).then_some(p);
        Ok(Some(DiscoveryConfig {
            chain_id: chain.chain_id,
            listen_ip,
            udp_port: self.listen_udp,
            tcp_port: 0,
            advertise_ip: self.advertise_ip,
            advertise_tcp: nonzero(self.advertise_tcp),
            advertise_udp: nonzero(self.advertise_udp),
            bootnodes,
            store: TableStore::from_flag(self.discovery_path.as_deref(), data_dir),
            netrestrict,
            lookup_interval: DEFAULT_LOOKUP_INTERVAL,
        }))
    }
}
