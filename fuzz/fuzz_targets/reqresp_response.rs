//! payload_by_number frames: request decoding, response decoding (framed snappy, bounded) and
//! the body interpretation for every fork. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use op_gossip::wire::BlockVersion;
use op_gossip::wire::reqresp::{Response, decode_payload_body, decode_request, decode_response};

fuzz_target!(|data: &[u8]| {
    let _ = decode_request(data);
    let Some((&selector, data)) = data.split_first() else {
        return;
    };
    let fork = BlockVersion::ALL[usize::from(selector % 4)];
    if let Ok(Response::Payload { version, body }) = decode_response(data) {
        let _ = decode_payload_body(version, fork, &body);
    }
});
