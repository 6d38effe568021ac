//! The subnet parser of `opp2p_blockSubnet` (`src/p2p/peers/subnet.rs`): CIDR text and Go's
//! `net.IPNet` JSON, both operator input over the admin RPC. Must never panic; whatever parses
//! writes back (as CIDR text and as Go's JSON) to the same subnet, and contains its own network
//! address.
//!
//! Input: the bytes, tried as CIDR text and as JSON. Seeds: `fuzz/seeds/subnet_json/`, written by
//! `tests/fuzz_seeds.rs`.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use op_gossip::p2p::peers::subnet::Subnet;

fn check(subnet: Subnet) {
    let text = subnet.to_string();
    assert_eq!(
        text.parse::<Subnet>(),
        Ok(subnet),
        "CIDR round trip of {text}"
    );
    let json = serde_json::to_string(&subnet).expect("a subnet serialises");
    assert_eq!(
        serde_json::from_str::<Subnet>(&json).ok(),
        Some(subnet),
        "Go JSON round trip of {json}"
    );
    let (network, _) = text.split_once('/').expect("CIDR form");
    let network: IpAddr = network.parse().expect("an address");
    assert!(subnet.contains(&network), "{text} contains its network");
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(subnet) = text.parse::<Subnet>()
    {
        check(subnet);
    }
    if let Ok(subnet) = serde_json::from_slice::<Subnet>(data) {
        check(subnet);
    }
});
