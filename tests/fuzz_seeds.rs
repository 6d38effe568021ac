//! The seed corpora of the cargo-fuzz targets (`fuzz/seeds/<target>/`), built here from the
//! library's own block builder and signer and the test vectors, so every target starts from valid
//! inputs of every layout (and their edge cases) and reaches its accept path in seconds.
//! `scripts/fuzz.sh` runs each target with its seeds as a corpus directory.
//!
//! The test fails when the committed seeds differ from what this file builds; rewrite them with
//! `OP_GOSSIP_WRITE_FUZZ_SEEDS=1 cargo test --locked --test fuzz_seeds`. Each target's input
//! layout (the selector bytes used below) is described at the top of its file in
//! `fuzz/fuzz_targets/`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use alloy_primitives::{B256, Bytes, U256, hex};
use common::{NOW, block, chain_up_to, dev_signer, other_signer, rehash, signed, vector};
use op_gossip::engine::json::new_payload_params;
use op_gossip::wire::reqresp::{ResultCode, encode_error, encode_success, response_version_for};
use op_gossip::wire::signature::SIGNATURE_BYTES;
use op_gossip::wire::snappy::{compress_block, compress_framed};
use op_gossip::wire::ssz::{encode_envelope, encode_payload};
use op_gossip::wire::{BlockVersion, ExecutionPayloadEnvelope, Withdrawal};
use serde_json::json;

/// Set to rewrite the committed seeds instead of checking them.
const WRITE_ENV: &str = "OP_GOSSIP_WRITE_FUZZ_SEEDS";
/// Transaction bytes of the seed blocks: the deposit alone, and with fillers (small: seeds are
/// mutated byte by byte, and small inputs run fastest).
const TX_SIZES: [usize; 3] = [0, 300, 1500];
/// The clock `recent_messages` judges messages at (its `NOW`).
const RECENT_MESSAGES_NOW: u64 = 1_700_000_000;

type Corpus = BTreeMap<String, Vec<u8>>;

fn version_index(v: BlockVersion) -> u8 {
    BlockVersion::ALL.iter().position(|x| *x == v).unwrap() as u8
}

/// A valid block of `version`'s layout (chain with the forks up to it from genesis).
fn block_of(
    version: BlockVersion,
    number: u64,
    timestamp: u64,
    tx: usize,
) -> ExecutionPayloadEnvelope {
    block(&chain_up_to(version), number, timestamp, tx)
}

fn with(selector: u8, bytes: &[u8]) -> Vec<u8> {
    [&[selector], bytes].concat()
}

/// Edge cases of one layout: the longest extra data, non-empty withdrawals (V2 and later), a
/// base fee beyond u64, a non-zero blob gas used (V3 and later).
fn edge_blocks(v: BlockVersion) -> Vec<(&'static str, ExecutionPayloadEnvelope)> {
    let base = block_of(v, 9, NOW, 300);
    let mut out = Vec::new();
    let mut e = base.clone();
    e.payload.extra_data = Bytes::from(vec![0xab; 32]);
    out.push(("extra32", rehash(e)));
    let mut e = base.clone();
    e.payload.base_fee_per_gas = U256::MAX;
    out.push(("basefee_u256", rehash(e)));
    let mut e = base.clone();
    e.payload.transactions =
        op_gossip::wire::Transactions::from_slices([&[][..], &[0x7e][..]]).unwrap();
    out.push(("empty_tx", rehash(e)));
    if v.has_withdrawals() {
        let mut e = base.clone();
        e.payload.withdrawals = Some(
            (0..16)
                .map(|i| Withdrawal {
                    index: i,
                    validator_index: i * 3,
                    address: alloy_primitives::Address::repeat_byte(i as u8),
                    amount: 1_000_000 + i,
                })
                .collect(),
        );
        out.push(("withdrawals16", rehash(e)));
    }
    if v.has_blob_fields() {
        let mut e = base;
        e.payload.blob_gas_used = Some(131_072);
        out.push(("blob_gas", rehash(e)));
    }
    out
}

/// A payload whose transaction list starts with a zero offset followed by bytes (op-node's quirk:
/// an empty list; `ssz_payload` expects the re-encoding without those bytes).
fn zero_first_offset(v: BlockVersion) -> Vec<u8> {
    let mut e = block_of(v, 3, NOW, 0);
    e.payload.transactions = Default::default();
    let bare = encode_payload(v, &e.payload).unwrap();
    let fixed = v.fixed_part_bytes();
    let junk = [0u8, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef];
    // Extra data is empty, so the transactions start right after the fixed part.
    let mut out = bare[..fixed].to_vec();
    out.extend_from_slice(&junk);
    out.extend_from_slice(&bare[fixed..]);
    if v.has_withdrawals() {
        // The withdrawals offset (after the transactions offset at 504) moves past the junk.
        let at = 508;
        let offset = u32::from_le_bytes(out[at..at + 4].try_into().unwrap()) + junk.len() as u32;
        out[at..at + 4].copy_from_slice(&offset.to_le_bytes());
    }
    out
}

fn gossip_message() -> Corpus {
    let mut c = Corpus::new();
    let chain = op_gossip::chain_config::load_chain("devnet").unwrap();
    for v in BlockVersion::ALL {
        let n = version_index(v);
        for tx in TX_SIZES {
            let msg = signed(&chain, v, &block_of(v, 5, NOW, tx), &dev_signer());
            c.insert(format!("v{}_tx{tx}", n + 1), with(n, &msg));
        }
        let msg = signed(&chain, v, &block_of(v, 6, NOW, 300), &dev_signer());
        // Bit 7: the seen cache (duplicate, then variants at the height).
        c.insert(format!("v{}_replay", n + 1), with(n | 0x80, &msg));
        // Bit 6: the signature as sent (the dev key's, which the chain accepts).
        c.insert(format!("v{}_own_signature", n + 1), with(n | 0x40, &msg));
        // Bits 3–5: the clock on both edges of the window and one second past them.
        for clock in 4..8u8 {
            c.insert(
                format!("v{}_clock{clock}", n + 1),
                with(n | clock << 3, &msg),
            );
        }
        for (name, e) in edge_blocks(v) {
            let msg = signed(&chain, v, &e, &dev_signer());
            // Bit 2: Jovian (the blob-gas exception) for the blob-gas edge.
            c.insert(format!("v{}_{name}", n + 1), with(n | 4, &msg));
        }
        // Signed by a key the chain does not accept (kept with bit 6).
        let msg = signed(&chain, v, &block_of(v, 7, NOW, 0), &other_signer());
        c.insert(format!("v{}_other_signer", n + 1), with(n | 0x40, &msg));
    }
    // The smallest message: a signature and one byte.
    c.insert(
        "min_size".into(),
        with(3, &compress_block(&[0u8; SIGNATURE_BYTES + 1])),
    );
    for (name, v) in [
        ("opalloy_golden.v1.hex", BlockVersion::V1),
        ("opalloy_golden.v2.hex", BlockVersion::V2),
        ("opalloy_golden.v3.hex", BlockVersion::V3),
        ("opalloy_golden.v4.hex", BlockVersion::V4),
        ("hildr_invalid_nonzero_withdrawals.v2.hex", BlockVersion::V2),
        (
            "hildr_invalid_nonzero_excess_blob_gas.v3.hex",
            BlockVersion::V3,
        ),
        (
            "hildr_invalid_bare_payload_on_v3_topic.v3.hex",
            BlockVersion::V3,
        ),
    ] {
        c.insert(
            format!("vector_{name}"),
            with(version_index(v), &vector(name)),
        );
    }
    c
}

/// Bare payloads and envelopes of every layout (selector ‖ bytes), shared by `ssz_payload` and
/// `block_hash`.
fn payloads() -> Corpus {
    let mut c = Corpus::new();
    for v in BlockVersion::ALL {
        let n = version_index(v);
        let mut blocks: Vec<(String, ExecutionPayloadEnvelope)> = TX_SIZES
            .iter()
            .map(|&tx| (format!("tx{tx}"), block_of(v, 5, NOW, tx)))
            .collect();
        blocks.extend(
            edge_blocks(v)
                .into_iter()
                .map(|(name, e)| (name.to_string(), e)),
        );
        for (name, e) in blocks {
            c.insert(
                format!("v{}_envelope_{name}", n + 1),
                with(n, &encode_envelope(v, &e).unwrap()),
            );
            if v.has_parent_beacon_root() {
                c.insert(
                    format!("v{}_bare_{name}", n + 1),
                    with(n, &encode_payload(v, &e.payload).unwrap()),
                );
            }
        }
        c.insert(
            format!("v{}_zero_first_offset", n + 1),
            with(n, &zero_first_offset(v)),
        );
    }
    let v3 = vector("opalloy_execution_payload_envelope_ssz.v3.ssz.hex");
    c.insert("vector_opalloy_envelope.v3".into(), with(2, &v3));
    c
}

fn ssz_payload() -> Corpus {
    let mut c = payloads();
    let crash =
        std::fs::read(common::fixture_path("fuzz").join("ssz_payload-crash-49b4a4b7.bin")).unwrap();
    c.insert("regression_crash_49b4a4b7".into(), crash);
    c
}

fn reqresp_response() -> Corpus {
    let mut c = Corpus::new();
    let number: u64 = 7;
    for fork in BlockVersion::ALL {
        let n = version_index(fork);
        for tx in [0, 1500] {
            let e = block_of(fork, number, NOW, tx);
            let body = encode_envelope(fork, &e).unwrap();
            let response = encode_success(response_version_for(fork), &body);
            let input = [&[n][..], &number.to_le_bytes(), &response].concat();
            c.insert(format!("v{}_tx{tx}", n + 1), input);
            if tx == 0 {
                // The same block asked for under another number.
                let wrong = [&[n][..], &(number + 1).to_le_bytes(), &response].concat();
                c.insert(format!("v{}_wrong_number", n + 1), wrong);
                // A claimed hash that does not match.
                let mut bad = e.clone();
                bad.payload.block_hash = B256::repeat_byte(0xbb);
                let body = encode_envelope(fork, &bad).unwrap();
                let response = encode_success(response_version_for(fork), &body);
                let input = [&[n][..], &number.to_le_bytes(), &response].concat();
                c.insert(format!("v{}_bad_hash", n + 1), input);
            }
        }
    }
    // Version 2 (the spec's Isthmus envelope) before Isthmus.
    let e = block_of(BlockVersion::V4, number, NOW, 300);
    let response = encode_success(2, &encode_envelope(BlockVersion::V4, &e).unwrap());
    c.insert(
        "v3_fork_version2".into(),
        [&[2u8][..], &number.to_le_bytes(), &response].concat(),
    );
    for code in [
        ResultCode::NotFound,
        ResultCode::Unknown,
        ResultCode::Other(200),
    ] {
        c.insert(
            format!("error_{}", code.byte()),
            [&[3u8][..], &number.to_le_bytes(), &encode_error(code)].concat(),
        );
    }
    c
}

fn signature_recovery() -> Corpus {
    let mut c = Corpus::new();
    let signer = dev_signer();
    for i in 0..4u8 {
        let hash = alloy_primitives::keccak256([i]);
        let mut sig = signer.sign_hash(&hash);
        c.insert(
            format!("raw_{i}"),
            [&[0u8][..], hash.as_slice(), &sig].concat(),
        );
        // The other recovery ids, and Ethereum's 27.
        for v in [sig[64] ^ 1, sig[64] | 2, 27] {
            sig[64] = v;
            c.insert(
                format!("raw_{i}_v{v}"),
                [&[0u8][..], hash.as_slice(), &sig].concat(),
            );
        }
    }
    let dev = hex::decode(common::DEV_KEY).unwrap();
    let other = hex::decode(common::OTHER_KEY).unwrap();
    for (name, secret) in [("dev", dev), ("other", other)] {
        // Bit 0: sign; bit 1: high s; bits 2–3: recovery id flips.
        for selector in [1u8, 3, 5, 7, 9, 15] {
            let hash = alloy_primitives::keccak256([selector]);
            c.insert(
                format!("signed_{name}_{selector}"),
                [&[selector][..], &secret, hash.as_slice()].concat(),
            );
        }
    }
    c
}

/// Pieces with u16 little-endian lengths (the `recent_messages` input layout).
fn pieces(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(&u16::try_from(p.len()).unwrap().to_le_bytes());
        out.extend_from_slice(p);
    }
    out
}

fn recent_messages() -> Corpus {
    let mut c = Corpus::new();
    let chain = op_gossip::chain_config::load_chain("devnet").unwrap();
    let v4 = signed(
        &chain,
        BlockVersion::V4,
        &block_of(BlockVersion::V4, 5, RECENT_MESSAGES_NOW, 300),
        &dev_signer(),
    );
    let v3 = signed(
        &chain,
        BlockVersion::V3,
        &block_of(BlockVersion::V3, 6, RECENT_MESSAGES_NOW, 0),
        &dev_signer(),
    );
    let body = b"a body that is compressed by the target".repeat(4);
    let junk = [0xffu8; 80];
    // Script bytes: message (b >> 3), topic (b & 3), compress first (b & 4).
    let script: Vec<u8> = vec![
        3,
        3,
        3 | 8 << 3,
        2 | 1 << 3,
        3,
        4 | 2 << 3,
        4 | 2 << 3,
        3 << 3,
        1 | 3 << 3,
    ];
    c.insert(
        "blocks_and_junk".into(),
        pieces(&[&script, &v4, &v3, &body, &junk]),
    );
    // More distinct messages than the cache keeps (64): equal lengths, then the first again.
    let script: Vec<u8> = (0..70u8)
        .map(|i| 4 | i << 3)
        .chain([4, 3 << 3 | 4])
        .collect();
    let many: Vec<Vec<u8>> = (0..70u8).map(|i| vec![i; 40]).collect();
    let mut parts: Vec<&[u8]> = vec![&script];
    parts.extend(many.iter().map(Vec::as_slice));
    // Only the first 32 fit the 5-bit message index; the rest are reached by mutation.
    c.insert("evictions".into(), pieces(&parts[..33]));
    c
}

fn sync_plan() -> Corpus {
    let mut c = Corpus::new();
    // Ops: (code, arg); see fuzz/fuzz_targets/sync_plan.rs.
    let replan = [0u8, 0];
    let ask = |peer: u8| [1u8, peer];
    let answer = |kind: u8| [2u8, kind];
    // The first byte sets max_gap = 1 + byte % 48: 41, 46 and 43 cover the 39-block hole below
    // the gossiped top block, 5 makes the head jump over it.
    let mut walk = vec![40u8];
    walk.extend(replan);
    for i in 0..40u8 {
        walk.extend(ask(i % 4));
        walk.extend(answer(0));
        if i % 8 == 7 {
            walk.extend(replan);
        }
    }
    c.insert("walk_back_true".into(), walk);
    let mut mixed = vec![45u8];
    mixed.extend(replan);
    for i in 0..24u8 {
        mixed.extend(ask(i));
        mixed.extend(ask(i + 1));
        mixed.extend(answer(i % 8));
        mixed.extend(answer(3));
        if i % 5 == 0 {
            mixed.extend([5u8, 5]); // time passes
            mixed.extend(replan);
        }
        if i % 7 == 0 {
            mixed.extend([6u8, 20 + i]); // a true block by gossip
            mixed.extend([3u8, 0]); // a request handed back
        }
    }
    c.insert("fakes_errors_gaps".into(), mixed);
    let mut not_found = vec![42u8, 4, 2];
    not_found.extend(replan);
    for i in 0..8u8 {
        not_found.extend(ask(i));
        not_found.extend(answer(5));
    }
    not_found.extend([5u8, 10]);
    not_found.extend(replan);
    not_found.extend([7u8, 40 << 2]);
    c.insert("not_found_pause".into(), not_found);
    let mut jump = vec![4u8];
    jump.extend(replan);
    for i in 0..6u8 {
        jump.extend([6u8, 30 + i]); // true blocks by gossip below the top
        jump.extend(replan);
        jump.extend(ask(i));
        jump.extend(answer(i % 4));
    }
    c.insert("short_gap_reanchor".into(), jump);
    c
}

fn engine_json() -> Corpus {
    let mut c = Corpus::new();
    for v in BlockVersion::ALL {
        let n = version_index(v);
        for tx in [0, 300] {
            let e = block_of(v, 5, NOW, tx);
            let params = new_payload_params(v, &e).unwrap();
            let mut answer = json!({ "executionPayload": params[0], "blockValue": "0x1" });
            if v >= BlockVersion::V3 {
                answer["parentBeaconBlockRoot"] = params[2].clone();
            }
            c.insert(
                format!("v{}_tx{tx}", n + 1),
                with(n, &serde_json::to_vec_pretty(&answer).unwrap()),
            );
        }
    }
    c
}

fn subnet_json() -> Corpus {
    let mut c = Corpus::new();
    for (name, text) in [
        ("cidr_v4", "10.1.2.3/8"),
        ("cidr_v4_json", r#""192.168.0.0/16""#),
        ("cidr_v6", "fd00::1/64"),
        ("cidr_all", "0.0.0.0/0"),
        ("go_v4", r#"{"IP":"10.0.0.0","Mask":"/wAAAA=="}"#),
        (
            "go_v4_16byte_mask",
            r#"{"IP":"10.0.0.0","Mask":"/////////////////wAAAA=="}"#,
        ),
        (
            "go_v6",
            r#"{"IP":"fd00::","Mask":"//8AAAAAAAAAAAAAAAAAAA=="}"#,
        ),
        ("go_bad_mask", r#"{"IP":"10.0.0.0","Mask":"AP8AAA=="}"#),
    ] {
        c.insert(name.into(), text.as_bytes().to_vec());
    }
    c
}

/// Records signed once by op-gossip (keys 1–4 of `common::net::node_key`, chain 901; ENR
/// signatures take a random nonce, so they are kept as text and checked to parse).
const SEED_ENRS: [&str; 4] = [
    "enr:-Je4QL6CoKSGuoqnNgYdHrv7Z-PXvcnCJguGwt7wJ_tyHweDFa4ySG25CQ5sUPnm_uXvVfUbMeAnv9xDc-I5Fh_xkV4BgmlkgnY0gmlwhH8AAAGHb3BzdGFja4OFBwCJc2VjcDI1NmsxoQMULvyrlOI9Ea3ofSoJTvEOTybnpm7NHF5rOWGOnZgf04N0Y3CCJAaDdWRwgnZf",
    "enr:-Je4QK8Jorzae_BJZOfWfLoKBRNu_Ym5L6pZao1CdmKgsQ1_Fg57GhIotIgjKPF5fsootk23YoKKFP6ScgNcFtWgNqEBgmlkgnY0gmlwhH8AAAGHb3BzdGFja4OFBwCJc2VjcDI1NmsxoQO6aZq4BimzbqyRh6iDMak5-vosjuUH5wWP-PNWpysj_IN0Y3CCIyiDdWRwgnZf",
    "enr:-JC4QIJ5Z3qZAf3y_qz0vrXgLRtRr8uQ4cXIEDjAv1a1ft2WU3qAoHSoLFgmXrFzXuYLUVJ0-i0QvygbrqkDWkwJbHABgmlkgnY0gmlwhH8AAAGHb3BzdGFja4OFBwCJc2VjcDI1NmsxoQMj9o2EW4HSf2AhfTk1Gse1U-MQofdeMN9KgxeNWmXbU4N1ZHCCdl8",
    "enr:-Je4QDwDs9T6SlrN0Nr4it6VCibK1hgwKxpZ9z2aIJdVyF7DYYi4klYnDsT9wP7DFDL7NY7-9aD8gXQABd1d07KXd3ABgmlkgnY0gmlwhH8AAAGHb3BzdGFja4OFBwCJc2VjcDI1NmsxoQP95T6z8-gypia8P67EPyTOdAUG1xAWtFGFAIGoBv6lmYN0Y3CCJAaDdWRwgnZf",
];

fn discovery_records() -> Corpus {
    use op_gossip::discovery::opstack::OpStackId;
    use op_gossip::discovery::persist::{parse, render};
    let enrs: Vec<discv5::Enr> = SEED_ENRS.iter().map(|e| e.parse().unwrap()).collect();
    let mut c = Corpus::new();
    for (name, chain) in [
        ("opstack_10", 10u64),
        ("opstack_8453", 8453),
        ("opstack_901", 901),
    ] {
        c.insert(name.into(), with(0, &OpStackId::for_chain(chain).rlp()));
    }
    c.insert("opstack_list".into(), with(0, &[0xc2, 0x0a, 0x00]));
    let file = render(&enrs[0], &enrs[1..3]);
    assert_eq!(parse(&file).nodes.len(), 2);
    c.insert("file".into(), with(1, file.as_bytes()));
    c.insert(
        "file_garbage".into(),
        with(1, b"# x\nlocal enr:\nnode enr:-Je4Q\nbogus\n"),
    );
    c.insert("bootnode_enr".into(), with(2, SEED_ENRS[3].as_bytes()));
    let enode = "enode://869d07b5932f17e8490990f75a3f94195e9504ddb6b85f7189e5a9c0a8fff8b00aecf6f3ac450ecba6cdabdb5858788a94bde2b613e0f2d82e9b395355f76d1a@34.65.67.101:0?discport=30305";
    c.insert("bootnode_enode".into(), with(2, enode.as_bytes()));
    c
}

fn keccak_batch() -> Corpus {
    let mut c = Corpus::new();
    let e = block_of(BlockVersion::V4, 5, NOW, 1500);
    // Pieces with one length byte scaled ×3 (see fuzz/fuzz_targets/keccak_batch.rs).
    let mut input = Vec::new();
    for tx in e.payload.transactions.iter() {
        let len = tx.len().min(255 * 3) / 3 * 3;
        input.push((len / 3) as u8);
        input.extend_from_slice(&tx[..len]);
    }
    c.insert("block_transactions".into(), input);
    // Pieces around the 136-byte keccak rate.
    let mut input = Vec::new();
    for len in [0u8, 45, 46, 90, 91, 255] {
        input.push(len);
        input.extend(std::iter::repeat_n(len, usize::from(len) * 3));
    }
    c.insert("rate_edges".into(), input);
    c
}

fn snappy_block() -> Corpus {
    let mut c = Corpus::new();
    let chain = op_gossip::chain_config::load_chain("devnet").unwrap();
    for v in BlockVersion::ALL {
        let msg = signed(&chain, v, &block_of(v, 5, NOW, 300), &dev_signer());
        c.insert(format!("gossip_v{}", version_index(v) + 1), msg);
    }
    let body = encode_envelope(BlockVersion::V4, &block_of(BlockVersion::V4, 5, NOW, 300)).unwrap();
    c.insert("framed_v4".into(), compress_framed(&body));
    c.insert(
        "min_size".into(),
        compress_block(&[0u8; SIGNATURE_BYTES + 1]),
    );
    c
}

fn all_seeds() -> BTreeMap<&'static str, Corpus> {
    let payloads = payloads();
    BTreeMap::from([
        ("block_hash", payloads),
        ("discovery_records", discovery_records()),
        ("engine_json", engine_json()),
        ("gossip_message", gossip_message()),
        ("keccak_batch", keccak_batch()),
        ("recent_messages", recent_messages()),
        ("reqresp_response", reqresp_response()),
        ("signature_recovery", signature_recovery()),
        ("snappy_block", snappy_block()),
        ("ssz_payload", ssz_payload()),
        ("subnet_json", subnet_json()),
        ("sync_plan", sync_plan()),
    ])
}

fn seeds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join("seeds")
}

fn read_dir(dir: &Path) -> Corpus {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Corpus::new();
    };
    entries
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect()
}

#[test]
fn committed_fuzz_seeds_are_the_generated_ones() {
    let seeds = all_seeds();
    let root = seeds_dir();
    if std::env::var_os(WRITE_ENV).is_some() {
        let _ = std::fs::remove_dir_all(&root);
        for (target, corpus) in &seeds {
            let dir = root.join(target);
            std::fs::create_dir_all(&dir).unwrap();
            for (name, bytes) in corpus {
                std::fs::write(dir.join(name), bytes).unwrap();
            }
        }
        return;
    }
    let mut stale = Vec::new();
    for (target, corpus) in &seeds {
        let on_disk = read_dir(&root.join(target));
        for (name, bytes) in corpus {
            if on_disk.get(name) != Some(bytes) {
                stale.push(format!("{target}/{name} missing or different"));
            }
        }
        stale.extend(
            on_disk
                .keys()
                .filter(|name| !corpus.contains_key(*name))
                .map(|name| format!("{target}/{name} not generated")),
        );
    }
    let targets: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    stale.extend(
        targets
            .iter()
            .filter(|t| !seeds.contains_key(t.as_str()))
            .map(|t| format!("{t}/ has no generator")),
    );
    assert!(
        stale.is_empty(),
        "fuzz/seeds is out of date (rewrite with {WRITE_ENV}=1 cargo test --locked --test fuzz_seeds):\n{}",
        stale.join("\n")
    );
}

#[test]
fn every_fuzz_target_has_seeds_and_seeds_stay_small() {
    let seeds = all_seeds();
    let manifest = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz")
            .join("Cargo.toml"),
    )
    .unwrap();
    let targets: Vec<&str> = manifest
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .filter(|name| *name != "op-gossip-fuzz")
        .collect();
    assert_eq!(targets.len(), seeds.len(), "{targets:?}");
    for target in targets {
        let corpus = seeds
            .get(target)
            .unwrap_or_else(|| panic!("no seeds for {target}"));
        assert!(!corpus.is_empty(), "{target}");
        // Small inputs mutate and run fast; libFuzzer's default -max_len follows the largest seed.
        for (name, bytes) in corpus {
            assert!(
                bytes.len() <= 8 * 1024,
                "{target}/{name}: {} bytes",
                bytes.len()
            );
        }
    }
}
