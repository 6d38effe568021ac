//! Hostile inputs to every decoder: none may panic, and none may allocate more than its bound.
//!
//! A counting global allocator records the largest single allocation made by the current thread,
//! so each test asserts the allocation bound directly instead of trusting the code's comments.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use alloy_primitives::Bytes;
use common::*;
use op_gossip::validate::{Verdict, verdict_of};
use op_gossip::wire::reqresp::{
    ReqRespError, Response, decode_payload_body, decode_request, decode_response, encode_success,
};
use op_gossip::wire::snappy::{
    SnappyError, compress_block, compress_framed, decompress_framed, decompress_gossip,
};
use op_gossip::wire::ssz::{
    MAX_TRANSACTIONS_PER_PAYLOAD, SszError, decode_payload, encode_payload,
};
use op_gossip::wire::{BlockVersion, ExecutionPayload, MAX_GOSSIP_SIZE_BYTES};

struct PeakTracking;

thread_local! {
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for PeakTracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = PEAK.try_with(|p| p.set(p.get().max(layout.size())));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = PEAK.try_with(|p| p.set(p.get().max(new_size)));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: PeakTracking = PeakTracking;

/// Runs `f` and returns its result with the largest single allocation it made.
fn peak_alloc<T>(f: impl FnOnce() -> T) -> (T, usize) {
    PEAK.with(|p| p.set(0));
    let out = f();
    (out, PEAK.with(Cell::get))
}

const KIB: usize = 1024;

#[test]
fn snappy_header_claiming_4_gib_is_refused_without_allocating() {
    // uvarint 0xffff_ffff: the largest length golang/snappy accepts.
    let bomb = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x01, 0x02];
    let (result, peak) = peak_alloc(|| decompress_gossip(&bomb));
    assert_eq!(
        result,
        Err(SnappyError::TooLarge {
            declared: 0xffff_ffff,
            limit: MAX_GOSSIP_SIZE_BYTES
        })
    );
    assert!(peak < KIB, "allocated {peak} bytes");
    // And through the validator.
    let v = validator(chain_up_to(BlockVersion::V4));
    let (result, peak) = peak_alloc(|| v.validate(BlockVersion::V4, &bomb, NOW));
    assert_eq!(result.unwrap_err().reason(), "too_large");
    assert!(peak < KIB, "allocated {peak} bytes");
    // A length beyond 32 bits is a malformed header.
    let over = [0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
    assert!(matches!(
        decompress_gossip(&over),
        Err(SnappyError::BadHeader(_) | SnappyError::TooLarge { .. })
    ));
}

#[test]
fn truncated_snappy_is_rejected_within_its_declared_size() {
    let chain = chain_up_to(BlockVersion::V4);
    let msg = signed_dev(&chain, &block(&chain, 1, NOW, 50 * KIB));
    let declared = decompress_gossip(&msg).unwrap().len();
    let v = validator(chain);
    for cut in [1, 2, 10, msg.len() / 2, msg.len() - 1] {
        let (result, peak) = peak_alloc(|| v.validate(BlockVersion::V4, &msg[..cut], NOW));
        assert_eq!(verdict_of(&result), Verdict::Reject, "cut at {cut}");
        assert!(
            peak <= declared + KIB,
            "cut at {cut}: allocated {peak} for a {declared}-byte message"
        );
    }
}

#[test]
fn wrong_topic_payloads_are_rejected() {
    for published in BlockVersion::ALL {
        let chain = chain_up_to(published);
        let msg = signed_dev(&chain, &block(&chain, 1, NOW, 1000));
        let v = validator(chain);
        for topic in BlockVersion::ALL.into_iter().filter(|&t| t != published) {
            let err = v.validate(topic, &msg, NOW).unwrap_err();
            assert!(
                matches!(err, op_gossip::validate::ValidationError::Ssz(_)),
                "{published} on {topic}: {err}"
            );
        }
    }
}

#[test]
fn legacy_v_27_and_28_are_rejected() {
    let chain = chain_up_to(BlockVersion::V4);
    let env = block(&chain, 1, NOW, 0);
    let body = op_gossip::wire::ssz::encode_envelope(BlockVersion::V4, &env).unwrap();
    let mut sig = dev_signer().sign_payload(chain.chain_id, &body);
    sig[64] += 27;
    let v = validator(chain);
    for v_byte in [sig[64], sig[64] ^ 1 /* the other of 27/28 */] {
        sig[64] = v_byte;
        let msg = with_raw_signature(BlockVersion::V4, &env, sig);
        assert_eq!(
            v.validate(BlockVersion::V4, &msg, NOW)
                .unwrap_err()
                .reason(),
            "invalid_signature"
        );
    }
}

/// A valid V4 payload's bytes, for offset surgery.
fn v4_payload_bytes() -> Vec<u8> {
    let chain = chain_up_to(BlockVersion::V4);
    encode_payload(BlockVersion::V4, &block(&chain, 1, NOW, 500).payload).unwrap()
}

/// Byte offsets of the offset fields in the V4 fixed part.
const EXTRA_OFFSET_AT: usize = 32 + 20 + 32 + 32 + 256 + 32 + 8 * 4;
const TX_OFFSET_AT: usize = EXTRA_OFFSET_AT + 4 + 32 + 32;
const WITHDRAWALS_OFFSET_AT: usize = TX_OFFSET_AT + 4;

fn with_u32(mut bytes: Vec<u8>, at: usize, value: u32) -> Bytes {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
    Bytes::from(bytes)
}

#[test]
fn ssz_offsets_out_of_range_are_rejected() {
    let good = v4_payload_bytes();
    let len = good.len() as u32;
    type Expect = fn(&SszError) -> bool;
    let cases: Vec<(Bytes, Expect)> = vec![
        (with_u32(good.clone(), EXTRA_OFFSET_AT, 559), |e| {
            matches!(e, SszError::BadExtraDataOffset { .. })
        }),
        (with_u32(good.clone(), EXTRA_OFFSET_AT, u32::MAX), |e| {
            matches!(e, SszError::BadExtraDataOffset { .. })
        }),
        (with_u32(good.clone(), TX_OFFSET_AT, 100), |e| {
            matches!(e, SszError::BadTransactionsOffset { .. })
        }),
        (with_u32(good.clone(), TX_OFFSET_AT, len + 1), |e| {
            matches!(
                e,
                SszError::BadWithdrawalsOffset { .. } | SszError::ExtraDataTooLarge { .. }
            )
        }),
        (
            with_u32(good.clone(), WITHDRAWALS_OFFSET_AT, len + 1),
            |e| matches!(e, SszError::WithdrawalsOffsetOutOfRange { .. }),
        ),
        (
            with_u32(good.clone(), WITHDRAWALS_OFFSET_AT, u32::MAX),
            |e| matches!(e, SszError::WithdrawalsOffsetOutOfRange { .. }),
        ),
        (with_u32(good.clone(), WITHDRAWALS_OFFSET_AT, 600), |e| {
            matches!(
                e,
                SszError::BadTransactionOffset { .. }
                    | SszError::FirstTransactionOffsetOutOfRange { .. }
            )
        }),
        // The first transaction offset (right after the empty extra data) pointing past the end.
        (with_u32(good.clone(), 560, (len + 4) & !3), |e| {
            matches!(e, SszError::FirstTransactionOffsetOutOfRange { .. })
        }),
        (with_u32(good.clone(), 560, 6), |e| {
            matches!(e, SszError::MisalignedFirstTransactionOffset { .. })
        }),
        (Bytes::from(good[..559].to_vec()), |e| {
            matches!(e, SszError::ScopeTooSmall { .. })
        }),
    ];
    for (i, (bytes, expected)) in cases.into_iter().enumerate() {
        let (result, peak) = peak_alloc(|| decode_payload(BlockVersion::V4, &bytes));
        let err = result.unwrap_err();
        assert!(expected(&err), "case {i}: {err}");
        assert!(peak < KIB, "case {i}: allocated {peak}");
    }
}

#[test]
fn extra_data_over_32_bytes_is_rejected_and_exactly_32_accepted() {
    let mut p = ExecutionPayload::empty(BlockVersion::V2);
    p.extra_data = vec![7; 32].into();
    let mut bytes = encode_payload(BlockVersion::V2, &p).unwrap();
    assert_eq!(
        decode_payload(BlockVersion::V2, &Bytes::from(bytes.clone()))
            .unwrap()
            .extra_data
            .len(),
        32
    );
    // Move the transactions (and withdrawals) offsets one byte further: 33 bytes of extra data.
    bytes.push(0);
    let tx_offset_at = EXTRA_OFFSET_AT + 4 + 32 + 32;
    let bytes = with_u32(bytes, tx_offset_at, 512 + 33);
    let bytes = with_u32(bytes.to_vec(), tx_offset_at + 4, 512 + 33);
    assert_eq!(
        decode_payload(BlockVersion::V2, &bytes).unwrap_err(),
        SszError::ExtraDataTooLarge { len: 33 }
    );
    // And the encoder refuses to produce what no decoder accepts.
    p.extra_data = vec![7; 33].into();
    assert!(encode_payload(BlockVersion::V2, &p).is_err());
}

#[test]
fn two_to_the_20_plus_1_transactions_are_rejected_before_any_index_is_allocated() {
    let mut p = ExecutionPayload::empty(BlockVersion::V1);
    p.extra_data = Bytes::new();
    let mut bytes = encode_payload(BlockVersion::V1, &p).unwrap();
    let count = MAX_TRANSACTIONS_PER_PAYLOAD + 1;
    // An offset table of 2^20 + 1 empty transactions: first offset = 4 · count, all equal.
    let table = (4 * count) as u32;
    for _ in 0..count {
        bytes.extend_from_slice(&table.to_le_bytes());
    }
    let bytes = Bytes::from(bytes);
    let (result, peak) = peak_alloc(|| decode_payload(BlockVersion::V1, &bytes));
    assert_eq!(result.unwrap_err(), SszError::TooManyTransactions { count });
    assert!(peak < KIB, "allocated {peak} bytes");

    // Exactly 2^20 empty transactions decode, with a 4 MiB index (4 bytes per transaction).
    let mut p = ExecutionPayload::empty(BlockVersion::V1);
    p.transactions = op_gossip::wire::Transactions::from_slices(std::iter::repeat_n(
        &[][..],
        MAX_TRANSACTIONS_PER_PAYLOAD,
    ))
    .unwrap();
    let bytes = Bytes::from(encode_payload(BlockVersion::V1, &p).unwrap());
    let (result, peak) = peak_alloc(|| decode_payload(BlockVersion::V1, &bytes));
    assert_eq!(
        result.unwrap().transactions.len(),
        MAX_TRANSACTIONS_PER_PAYLOAD
    );
    assert!(
        peak <= 4 * MAX_TRANSACTIONS_PER_PAYLOAD,
        "allocated {peak} bytes"
    );

    // The same as a gossip message (4 MiB of offsets compress to a few hundred KiB) is rejected
    // on the signature without decoding anything: a non-sequencer cannot make us build the index.
    let mut message = vec![1u8; 65];
    message.extend_from_slice(&bytes);
    let compressed = compress_block(&message);
    let v = validator(chain_up_to(BlockVersion::V1));
    let (result, peak) = peak_alloc(|| v.validate(BlockVersion::V1, &compressed, NOW));
    assert_eq!(verdict_of(&result), Verdict::Reject);
    assert!(
        peak <= message.len() + KIB,
        "allocated {peak} for a {}-byte message",
        message.len()
    );
}

#[test]
fn first_transaction_offset_zero_means_no_transactions_like_op_node() {
    // op-node's unmarshalTransactions reads a first offset of 0 as an empty list and ignores the
    // rest of the list bytes; verdicts must match, so ours does too.
    let mut bytes =
        encode_payload(BlockVersion::V1, &ExecutionPayload::empty(BlockVersion::V1)).unwrap();
    bytes.extend_from_slice(&[0, 0, 0, 0, 0xde, 0xad]);
    let p = decode_payload(BlockVersion::V1, &Bytes::from(bytes)).unwrap();
    assert!(p.transactions.is_empty());
    assert_eq!(
        p.transactions.total_bytes(),
        0,
        "the ignored bytes are not transaction bytes"
    );
    // Re-encoding gives a payload that decodes to the same value (what the store relies on).
    let again = encode_payload(BlockVersion::V1, &p).unwrap();
    assert_eq!(
        decode_payload(BlockVersion::V1, &Bytes::from(again)).unwrap(),
        p
    );
}

/// Found by `fuzz/ssz_payload`: a V2 payload whose transaction list starts with a zero offset
/// followed by junk, then withdrawals. Decoding kept the junk as the (empty) list's bodies, so
/// re-encoding wrote a withdrawals offset 116 bytes too far and the result no longer decoded.
#[test]
fn regression_fuzz_ssz_payload_crash_49b4a4b7() {
    let data = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/fuzz/ssz_payload-crash-49b4a4b7.bin"
    ))
    .unwrap();
    let (&selector, body) = data.split_first().unwrap();
    let version = BlockVersion::ALL[usize::from(selector % 4)];
    let payload = decode_payload(version, &Bytes::copy_from_slice(body)).unwrap();
    let encoded = encode_payload(version, &payload).unwrap();
    assert_eq!(
        decode_payload(version, &Bytes::from(encoded)).unwrap(),
        payload
    );
}

#[test]
fn withdrawals_list_length_and_count_are_bounded() {
    let p = ExecutionPayload::empty(BlockVersion::V2);
    let base = encode_payload(BlockVersion::V2, &p).unwrap();
    let mut odd = base.clone();
    odd.extend_from_slice(&[0; 45]);
    assert_eq!(
        decode_payload(BlockVersion::V2, &Bytes::from(odd)).unwrap_err(),
        SszError::BadWithdrawalsLength { len: 45 }
    );
    let mut many = base;
    many.extend_from_slice(&vec![0; 44 * 17]);
    assert_eq!(
        decode_payload(BlockVersion::V2, &Bytes::from(many)).unwrap_err(),
        SszError::TooManyWithdrawals { count: 17 }
    );
}

#[test]
fn reqresp_frames_refuse_oversize_truncated_and_corrupt_bodies() {
    // Short request.
    assert_eq!(
        decode_request(&[1, 2, 3]),
        Err(ReqRespError::ShortRequest { len: 3 })
    );
    // Error responses are one byte.
    assert_eq!(
        decode_response(&[1]),
        Ok(Response::Error(
            op_gossip::wire::reqresp::ResultCode::NotFound
        ))
    );
    assert_eq!(decode_response(&[]), Err(ReqRespError::EmptyResponse));
    assert_eq!(
        decode_response(&[0, 1, 0]),
        Err(ReqRespError::ShortResponse { len: 3 })
    );
    // A body that decompresses past 10 MiB is cut off at the limit, not read whole.
    let huge = vec![0u8; MAX_GOSSIP_SIZE_BYTES + 1];
    let frame = encode_success(1, &huge);
    let (result, peak) = peak_alloc(|| decode_response(&frame));
    assert!(
        matches!(
            result,
            Err(ReqRespError::Body(SnappyError::TooLarge { .. }))
        ),
        "{result:?}"
    );
    assert!(
        peak <= 2 * MAX_GOSSIP_SIZE_BYTES + 64 * KIB,
        "allocated {peak}"
    );
    // Truncated framed snappy.
    let chain = chain_up_to(BlockVersion::V4);
    let body =
        op_gossip::wire::ssz::encode_envelope(BlockVersion::V4, &block(&chain, 1, NOW, 20 * KIB))
            .unwrap();
    let frame = encode_success(1, &body);
    let cut = &frame[..frame.len() - 10];
    assert!(matches!(decode_response(cut), Err(ReqRespError::Body(_))));
    // A flipped byte fails the CRC.
    let mut corrupt = frame.clone();
    let at = corrupt.len() - 3;
    corrupt[at] ^= 0x55;
    assert!(matches!(
        decode_response(&corrupt),
        Err(ReqRespError::Body(_))
    ));
    // Unknown versions are refused; 0/1/2 are understood.
    let Ok(Response::Payload { body, .. }) = decode_response(&frame) else {
        panic!("valid frame")
    };
    assert_eq!(
        decode_payload_body(7, BlockVersion::V4, &body),
        Err(ReqRespError::UnknownVersion(7))
    );
    assert!(decode_payload_body(1, BlockVersion::V4, &body).is_ok());
    assert!(decode_payload_body(2, BlockVersion::V4, &body).is_ok());
    // A V4 body read as V3 (client thinks Isthmus is not active) fails to decode.
    assert!(matches!(
        decode_payload_body(1, BlockVersion::V3, &body),
        Err(ReqRespError::Ssz(_))
    ));
    // More than the raw stream limit is refused outright.
    assert!(matches!(
        decode_response(&vec![0; MAX_GOSSIP_SIZE_BYTES + 1]),
        Err(ReqRespError::ResponseTooLarge { .. })
    ));
    assert_eq!(
        decompress_framed(&compress_framed(b"abc"), 2),
        Err(SnappyError::TooLarge {
            declared: 3,
            limit: 2
        })
    );
}

#[test]
fn random_garbage_never_panics_any_decoder() {
    // A cheap deterministic sweep next to the fuzz targets, so CI exercises the same entry points.
    let v = validator(chain_up_to(BlockVersion::V4));
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..2000 {
        let len = (round * 7) % 700;
        let data: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        for version in BlockVersion::ALL {
            let _ = v.validate(version, &data, NOW);
            let _ = decode_payload(version, &Bytes::from(data.clone()));
        }
        let _ = decode_response(&data);
        let _ = decompress_framed(&data, MAX_GOSSIP_SIZE_BYTES);
        let _ = op_gossip::wire::message_id::message_id("/optimism/901/3/blocks", &data);
    }
}
