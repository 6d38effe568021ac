//! Node records: our identity as a discv5 key, the local ENR, what a found ENR dials to, and
//! the bootnode forms an operator writes (`enr:` and `enode://`).
//!
//! Sits at both ends of discovery: [`local_enr`] is what the service announces; [`DialTarget`]
//! is what a found record becomes before the event loop dials it. One key for both identities
//! (as op-node): the libp2p secp256k1 secret becomes the discv5 key, so a peer's ENR and its
//! libp2p peer id name the same node. Keys cross from libp2p's k256 to the one `enr` uses as
//! bytes only (spec rust-deps: two k256 versions in the tree).

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use discv5::Enr;
use enr::{CombinedKey, CombinedPublicKey};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

use super::opstack::OpStackId;

/// Why a key or record could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// discv5 needs a secp256k1 node key (op-node's identity scheme v4).
    #[error("discovery needs a secp256k1 node key")]
    NotSecp256k1,
    /// The ENR could not be built or signed.
    #[error("cannot build the local ENR: {0}")]
    Build(#[source] enr::Error),
    /// A bootnode string is neither a valid `enr:` nor `enode://` record.
    #[error("bad bootnode {text:?}: {reason}")]
    Bootnode {
        /// What was given (cut to 80 characters).
        text: String,
        /// Why.
        reason: String,
    },
}

/// The discv5 key of a libp2p identity (the same secp256k1 secret).
pub fn discv5_key(keypair: &libp2p::identity::Keypair) -> Result<CombinedKey, RecordError> {
    let secp = keypair
        .clone()
        .try_into_secp256k1()
        .map_err(|_| RecordError::NotSecp256k1)?;
    let mut secret = secp.secret().to_bytes();
    CombinedKey::secp256k1_from_bytes(&mut secret).map_err(|_| RecordError::NotSecp256k1)
}

/// What goes into our ENR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalRecord {
    /// `ip`/`ip6`: the advertised or learned public address (`None`: not known yet).
    pub ip: Option<IpAddr>,
    /// `udp`: the discv5 port others reach.
    pub udp: u16,
    /// `tcp`: the libp2p port others dial (0: none, as a bootnode's record).
    pub tcp: u16,
    /// Our chain.
    pub chain_id: u64,
}

/// Builds and signs our ENR with sequence number `seq`.
pub fn local_enr(key: &CombinedKey, record: &LocalRecord, seq: u64) -> Result<Enr, RecordError> {
    let mut builder = Enr::builder();
    builder.seq(seq);
    let tcp = (record.tcp != 0).then_some(record.tcp);
    match record.ip {
        Some(IpAddr::V6(ip)) => {
            builder.ip6(ip).udp6(record.udp);
            if let Some(tcp) = tcp {
                builder.tcp6(tcp);
            }
        }
        // No address yet (`None`): ports only, as geth's local node before it learns one;
        // discv5's votes or identify's fill the address in.
        ip => {
            if let Some(IpAddr::V4(ip)) = ip {
                builder.ip4(ip);
            }
            builder.udp4(record.udp);
            if let Some(tcp) = tcp {
                builder.tcp4(tcp);
            }
        }
    }
    builder.add_value(
        super::opstack::OPSTACK_KEY,
        &OpStackId::for_chain(record.chain_id).to_enr_value(),
    );
    builder.build(key).map_err(RecordError::Build)
}

/// A libp2p peer id from a record's secp256k1 key.
pub fn peer_id_of(enr: &Enr) -> Option<PeerId> {
    match enr.public_key() {
        CombinedPublicKey::Secp256k1(key) => {
            let sec1 = key.to_sec1_point(true);
            let public =
                libp2p::identity::secp256k1::PublicKey::try_from_bytes(sec1.as_bytes()).ok()?;
            Some(libp2p::identity::PublicKey::from(public).to_peer_id())
        }
        _ => None,
    }
}

/// What the event loop dials for a found record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialTarget {
    /// The record's peer id.
    pub peer: PeerId,
    /// Its TCP address (`/ip4|ip6/<ip>/tcp/<port>`).
    pub addr: Multiaddr,
    /// Its IP (for the ban and block lists, and the per-IP bounds).
    pub ip: IpAddr,
    /// The record, base64 (`enr:…`), for the peer book.
    pub enr: String,
    /// Its `opstack` chain id.
    pub chain_id: u64,
}

/// The dial target of a record: op-node dials `/ip4|ip6/<ip>/tcp/<tcp>` with the peer id from
/// the record's key. `None` when the record has no TCP endpoint or no secp256k1 key.
pub fn dial_target(enr: &Enr, chain_id: u64) -> Option<DialTarget> {
    let peer = peer_id_of(enr)?;
    let (ip, port) = match (enr.tcp4_socket(), enr.tcp6_socket()) {
        (Some(v4), _) => (IpAddr::V4(*v4.ip()), v4.port()),
        (None, Some(v6)) => (IpAddr::V6(*v6.ip()), v6.port()),
        (None, None) => return None,
    };
    if port == 0 || ip.is_unspecified() {
        return None;
    }
    let addr = Multiaddr::empty()
        .with(match ip {
            IpAddr::V4(v4) => Protocol::Ip4(v4),
            IpAddr::V6(v6) => Protocol::Ip6(v6),
        })
        .with(Protocol::Tcp(port));
    Some(DialTarget {
        peer,
        addr,
        ip,
        enr: enr.to_base64(),
        chain_id,
    })
}

/// A bootnode as given on the command line or in a chain file.
#[derive(Debug, Clone)]
pub enum Bootnode {
    /// A signed record: added to the table as is.
    Enr(Box<Enr>),
    /// An `enode://` URL: its signed record is requested from it over discv5.
    Enode {
        /// The node's peer id (from its public key).
        peer: PeerId,
        /// Host name or IP (names are resolved at start).
        host: String,
        /// Its discovery (UDP) port: `discport`, else the TCP port.
        udp: u16,
    },
}

impl Bootnode {
    /// The `/ip4|ip6/<ip>/udp/<port>/p2p/<id>` discv5 asks for the record of an `enode://`.
    pub fn enode_multiaddr(peer: PeerId, addr: SocketAddr) -> Multiaddr {
        Multiaddr::empty()
            .with(match addr.ip() {
                IpAddr::V4(v4) => Protocol::Ip4(v4),
                IpAddr::V6(v6) => Protocol::Ip6(v6),
            })
            .with(Protocol::Udp(addr.port()))
            .with(Protocol::P2p(peer))
    }
}

impl FromStr for Bootnode {
    type Err = RecordError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let bad = |reason: &str| RecordError::Bootnode {
            text: text.chars().take(80).collect(),
            reason: reason.to_owned(),
        };
        if text.starts_with("enr:") {
            let enr = Enr::from_str(text).map_err(|e| bad(&e))?;
            return Ok(Self::Enr(Box::new(enr)));
        }
        let rest = text
            .strip_prefix("enode://")
            .ok_or_else(|| bad("must start with enr: or enode://"))?;
        let (key_hex, location) = rest.split_once('@').ok_or_else(|| bad("no @host:port"))?;
        let key = alloy_primitives::hex::decode(key_hex).map_err(|_| bad("key is not hex"))?;
        if key.len() != 64 {
            return Err(bad("key must be 64 bytes (uncompressed, no 04 prefix)"));
        }
        let mut sec1 = Vec::with_capacity(65);
        sec1.push(0x04);
        sec1.extend_from_slice(&key);
        let public = libp2p::identity::secp256k1::PublicKey::try_from_bytes(&sec1)
            .map_err(|_| bad("not a secp256k1 public key"))?;
        let peer = libp2p::identity::PublicKey::from(public).to_peer_id();
        let (hostport, query) = match location.split_once('?') {
            Some((hp, q)) => (hp, Some(q)),
            None => (location, None),
        };
        let (host, tcp) = hostport.rsplit_once(':').ok_or_else(|| bad("no port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let tcp: u16 = tcp.parse().map_err(|_| bad("bad port"))?;
        let discport = query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .find_map(|kv| kv.strip_prefix("discport="))
            .map(|p| p.parse::<u16>().map_err(|_| bad("bad discport")))
            .transpose()?;
        let udp = discport.unwrap_or(tcp);
        if udp == 0 || host.is_empty() {
            return Err(bad("no discovery port or host"));
        }
        Ok(Self::Enode {
            peer,
            host: host.to_owned(),
            udp,
        })
    }
}

/// Parses a comma-separated list (`--p2p.bootnodes`); empty items are skipped.
pub fn parse_bootnodes<S: AsRef<str>>(items: &[S]) -> Result<Vec<Bootnode>, RecordError> {
    items
        .iter()
        .flat_map(|s| s.as_ref().split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(Bootnode::from_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u8) -> libp2p::identity::Keypair {
        let mut secret = [i; 32];
        libp2p::identity::Keypair::from(libp2p::identity::secp256k1::Keypair::from(
            libp2p::identity::secp256k1::SecretKey::try_from_bytes(&mut secret).unwrap(),
        ))
    }

    #[test]
    fn one_key_for_both_identities() {
        let kp = key(7);
        let enr = local_enr(
            &discv5_key(&kp).unwrap(),
            &LocalRecord {
                ip: Some("127.0.0.1".parse().unwrap()),
                udp: 9001,
                tcp: 9222,
                chain_id: 10,
            },
            3,
        )
        .unwrap();
        assert_eq!(peer_id_of(&enr), Some(kp.public().to_peer_id()));
        assert_eq!(enr.seq(), 3);
        assert_eq!(enr.id().as_deref(), Some("v4"));
        assert_eq!(OpStackId::of_enr(&enr), Some(Ok(OpStackId::for_chain(10))));
        let target = dial_target(&enr, 10).unwrap();
        assert_eq!(target.addr.to_string(), "/ip4/127.0.0.1/tcp/9222");
        assert_eq!(target.peer, kp.public().to_peer_id());
        // The base64 form parses back to the same record.
        assert_eq!(Enr::from_str(&target.enr).unwrap(), enr);
        assert!(discv5_key(&libp2p::identity::Keypair::generate_ed25519()).is_err());
    }

    #[test]
    fn op_node_default_bootnodes_parse() {
        let chain = crate::chain_config::load_chain("op-mainnet").unwrap();
        let nodes = parse_bootnodes(&chain.bootnodes).unwrap();
        assert_eq!(nodes.len(), 13);
        // Base's records carry opstack chain 8453 v0, tcp = udp = 9222 (spec §8).
        let base: Vec<_> = nodes
            .iter()
            .filter_map(|n| match n {
                Bootnode::Enr(e) => Some(e),
                Bootnode::Enode { .. } => None,
            })
            .collect();
        assert_eq!(base.len(), 5);
        for enr in base {
            assert_eq!(OpStackId::of_enr(enr), Some(Ok(OpStackId::for_chain(8453))));
            assert_eq!((enr.tcp4(), enr.udp4()), (Some(9222), Some(9222)));
        }
        match &nodes[0] {
            Bootnode::Enode { host, udp, .. } => {
                assert_eq!((host.as_str(), *udp), ("34.65.67.101", 30305))
            }
            other => panic!("{other:?}"),
        }
        match nodes
            .iter()
            .find(|n| matches!(n, Bootnode::Enode { host, .. } if host == "bootnode.conduit.xyz"))
        {
            Some(Bootnode::Enode { udp, .. }) => assert_eq!(*udp, 30301),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_bootnodes_are_clear_errors() {
        for text in [
            "enr:notbase64!",
            "enode://zz@1.2.3.4:30303",
            "enode://00@1.2.3.4:30303",
            "http://x",
            "enode://869d07b5932f17e8490990f75a3f94195e9504ddb6b85f7189e5a9c0a8fff8b00aecf6f3ac450ecba6cdabdb5858788a94bde2b613e0f2d82e9b395355f76d1a@1.2.3.4",
            "enode://869d07b5932f17e8490990f75a3f94195e9504ddb6b85f7189e5a9c0a8fff8b00aecf6f3ac450ecba6cdabdb5858788a94bde2b613e0f2d82e9b395355f76d1a@1.2.3.4:0",
        ] {
            assert!(text.parse::<Bootnode>().is_err(), "{text}");
        }
        assert!(parse_bootnodes(&["", " , "]).unwrap().is_empty());
    }
}
