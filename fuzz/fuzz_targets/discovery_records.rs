//! Discovery's decoders of network and operator input (`src/discovery/`): the `opstack` ENR value
//! (RLP from any record on the DHT, which is shared with L1), the discovery file (read at start),
//! and bootnode strings (`--p2p.bootnodes`, chain files). Must never panic; an `opstack` value
//! that parses re-encodes to one that parses to the same entry; whatever the file parser keeps
//! renders and parses back to the same records, within the file's bound.
//!
//! Input: the first byte selects the decoder (0: `opstack` value as RLP, 1: discovery file text,
//! 2: a bootnode string), the rest is its input. Seeds: `fuzz/seeds/discovery_records/`, written
//! by `tests/fuzz_seeds.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use op_gossip::discovery::opstack::OpStackId;
use op_gossip::discovery::persist;
use op_gossip::discovery::records::Bootnode;

fuzz_target!(|data: &[u8]| {
    let Some((selector, input)) = data.split_first() else {
        return;
    };
    match selector % 3 {
        0 => {
            if let Ok(id) = OpStackId::from_rlp(input) {
                assert_eq!(OpStackId::from_rlp(&id.rlp()), Ok(id));
            }
        }
        1 => {
            let kept = persist::parse(&String::from_utf8_lossy(input));
            assert!(kept.nodes.len() <= persist::MAX_PERSISTED_NODES);
            if let Some(local) = &kept.local {
                let again = persist::parse(&persist::render(local, &kept.nodes));
                assert_eq!(again.local.as_ref(), Some(local));
                assert_eq!(again.nodes, kept.nodes);
            }
        }
        _ => {
            let _ = String::from_utf8_lossy(input).parse::<Bootnode>();
        }
    }
});
