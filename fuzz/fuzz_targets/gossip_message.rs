//! The whole gossip-in path on arbitrary bytes: message id, plain decode, and the validator
//! (with a fixed clock), on every topic version. Must never panic; a message that decodes must
//! re-encode to bytes that decode to the same envelope.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use op_gossip::chain_config::load_chain;
use op_gossip::validate::{BlockValidator, ValidatorConfig};
use op_gossip::wire::BlockVersion;
use op_gossip::wire::envelope::{decode_message, encode_with_signature};
use op_gossip::wire::message_id::message_id;
use op_gossip::wire::ssz::encode_envelope;

fn validator() -> &'static BlockValidator {
    static V: OnceLock<BlockValidator> = OnceLock::new();
    V.get_or_init(|| {
        let chain = load_chain("devnet").expect("embedded chain");
        BlockValidator::new(Arc::new(chain), ValidatorConfig::default())
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, data)) = data.split_first() else {
        return;
    };
    let version = BlockVersion::ALL[usize::from(selector % 4)];
    let _ = message_id("/optimism/901/3/blocks", data);
    let _ = validator().validate(version, data, 1_700_000_000);
    if let Ok(decoded) = decode_message(version, data) {
        let body =
            encode_envelope(version, &decoded.envelope).expect("decoded envelope re-encodes");
        let again = decode_message(version, &encode_with_signature(&decoded.signature, &body))
            .expect("re-encoded message decodes");
        assert_eq!(again.envelope, decoded.envelope);
    }
});
