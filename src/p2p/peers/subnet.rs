//! An IP subnet for `opp2p_blockSubnet` (spec §9): parsed from CIDR text (`10.0.0.0/8`) or from
//! Go's `net.IPNet` JSON (`{"IP":"10.0.0.0","Mask":"/wAAAA=="}`, the mask as base64 bytes, which
//! is what op-node's tooling sends and returns), and written back in Go's form so existing
//! tooling reads it unchanged. Hand-written because it is 100 lines and the gate's only need.

use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

/// A network: its address (host bits cleared) and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subnet {
    network: IpAddr,
    prefix: u8,
}

/// Why a subnet does not parse.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid subnet {0:?}: expected CIDR (10.0.0.0/8) or {{\"IP\":\"10.0.0.0\",\"Mask\":\"/wAAAA==\"}}"
)]
pub struct SubnetError(pub String);

impl Subnet {
    /// `ip/prefix`, with the host bits of `ip` cleared.
    pub fn new(ip: IpAddr, prefix: u8) -> Result<Self, SubnetError> {
        let bits = bits_of(&ip);
        if u32::from(prefix) > bits {
            return Err(SubnetError(format!("{ip}/{prefix}")));
        }
        Ok(Self {
            network: mask(ip, prefix),
            prefix,
        })
    }

    /// Whether `ip` is inside (an IPv4 address is never inside an IPv6 subnet, nor the reverse;
    /// IPv4-mapped IPv6 addresses are compared as IPv4).
    pub fn contains(&self, ip: &IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(*ip, IpAddr::V4),
            IpAddr::V4(_) => *ip,
        };
        bits_of(&ip) == bits_of(&self.network) && mask(ip, self.prefix) == self.network
    }

    /// The mask as bytes (4 for IPv4, 16 for IPv6), Go's `net.IPMask`.
    fn mask_bytes(&self) -> Vec<u8> {
        let len = (bits_of(&self.network) / 8) as usize;
        (0..len)
            .map(|i| {
                let bits_here = (i32::from(self.prefix) - 8 * i as i32).clamp(0, 8);
                // 0xff << (8 − bits): the top `bits_here` bits set.
                (0xffu16 << (8 - bits_here)) as u8
            })
            .collect()
    }
}

fn bits_of(ip: &IpAddr) -> u32 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(v4) & m).into())
        }
        IpAddr::V6(v6) => {
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & m).into())
        }
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl std::str::FromStr for Subnet {
    type Err = SubnetError;
    fn from_str(s: &str) -> Result<Self, SubnetError> {
        let err = || SubnetError(s.to_owned());
        let (ip, prefix) = s.split_once('/').ok_or_else(err)?;
        let ip: IpAddr = ip.parse().map_err(|_| err())?;
        let prefix: u8 = prefix.parse().map_err(|_| err())?;
        Self::new(ip, prefix).map_err(|_| err())
    }
}

/// Go's `net.IPNet` JSON.
#[derive(Serialize, Deserialize)]
struct GoIpNet {
    #[serde(rename = "IP")]
    ip: String,
    #[serde(rename = "Mask")]
    mask: String,
}

impl Serialize for Subnet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        GoIpNet {
            ip: self.network.to_string(),
            mask: BASE64.encode(self.mask_bytes()),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Subnet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Cidr(String),
            Go(GoIpNet),
        }
        use serde::de::Error;
        match Form::deserialize(d)? {
            Form::Cidr(text) => text.parse().map_err(D::Error::custom),
            Form::Go(go) => {
                let bad = || D::Error::custom(SubnetError(format!("{}/{}", go.ip, go.mask)));
                let ip: IpAddr = go.ip.parse().map_err(|_| bad())?;
                let mask = BASE64.decode(&go.mask).map_err(|_| bad())?;
                // A 4-byte mask on an IPv4 address (Go also allows 16 bytes for IPv4-in-IPv6).
                let mask = match (ip, mask.len()) {
                    (IpAddr::V4(_), 16) => mask.get(12..).map(<[u8]>::to_vec).ok_or_else(bad)?,
                    _ => mask,
                };
                if mask.len() as u32 * 8 != bits_of(&ip) {
                    return Err(bad());
                }
                // A canonical mask is ones then zeros; anything else is refused.
                let ones: u32 = mask.iter().map(|b| b.count_ones()).sum();
                let subnet = Subnet::new(ip, ones as u8).map_err(|_| bad())?;
                if subnet.mask_bytes() != mask {
                    return Err(bad());
                }
                Ok(subnet)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_and_go_forms_round_trip() {
        let s: Subnet = "10.1.2.3/8".parse().unwrap();
        assert_eq!(s.to_string(), "10.0.0.0/8");
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, r#"{"IP":"10.0.0.0","Mask":"/wAAAA=="}"#);
        assert_eq!(serde_json::from_str::<Subnet>(&json).unwrap(), s);
        assert_eq!(
            serde_json::from_str::<Subnet>(r#""10.0.0.0/8""#).unwrap(),
            s
        );
        assert!(s.contains(&"10.200.0.1".parse().unwrap()));
        assert!(!s.contains(&"11.0.0.1".parse().unwrap()));
        assert!(s.contains(&"::ffff:10.0.0.9".parse().unwrap()));
        let v6: Subnet = "fd00::/8".parse().unwrap();
        assert!(v6.contains(&"fd12::1".parse().unwrap()));
        assert!(!v6.contains(&"10.0.0.1".parse().unwrap()));
        let all: Subnet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(&"1.2.3.4".parse().unwrap()));
    }

    #[test]
    fn bad_subnets_are_errors() {
        for bad in ["10.0.0.0", "10.0.0.0/33", "x/8", "10.0.0.0/-1", "::/129"] {
            assert!(bad.parse::<Subnet>().is_err(), "{bad}");
        }
        for bad in [
            r#"{"IP":"10.0.0.0","Mask":"/w=="}"#,
            r#"{"IP":"10.0.0.0","Mask":"AP8AAA=="}"#,
            r#"{"IP":"nope","Mask":"/wAAAA=="}"#,
            r#"{"IP":"10.0.0.0","Mask":"!!"}"#,
        ] {
            assert!(serde_json::from_str::<Subnet>(bad).is_err(), "{bad}");
        }
    }
}
