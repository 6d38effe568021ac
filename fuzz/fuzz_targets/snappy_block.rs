//! Snappy block and framed decompression under the gossip bounds. Must never panic or allocate
//! beyond the declared (and checked) length; whatever decompresses must compress back to bytes
//! that decompress to the same data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use op_gossip::wire::MAX_GOSSIP_SIZE_BYTES;
use op_gossip::wire::snappy::{
    compress_block, decompress_block_bounded, decompress_framed, decompress_gossip,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(out) = decompress_gossip(data) {
        assert!(out.len() <= MAX_GOSSIP_SIZE_BYTES);
        let again = decompress_block_bounded(&compress_block(&out), MAX_GOSSIP_SIZE_BYTES)
            .expect("round trip");
        assert_eq!(again, out);
    }
    let _ = decompress_framed(data, MAX_GOSSIP_SIZE_BYTES);
});
