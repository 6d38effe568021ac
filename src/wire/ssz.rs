//! SSZ encoding of execution payloads in the four op-node layouts, and the V3/V4 envelope.
//!
//! Sits between snappy decompression / signature check and the block-hash check on the gossip
//! path, and between the framed-snappy reader and the quarantine on the req/resp path.
//!
//! Hand-written rather than `ethereum_ssz` + alloy types for three reasons, all on the hot
//! validation path: (1) verdicts must equal op-node's, whose decoder has its own rules (extra
//! data bounded by `txOffset ≤ extraDataOffset + 32`, a first transaction offset that must be a
//! multiple of 4, an all-zero first offset meaning "no transactions" whatever follows, V4's
//! `withdrawalsRoot` in the fixed part); (2) transactions are sliced out of the message buffer
//! instead of copied one allocation each; (3) every count is bounded before it sizes anything.
//! Reference: `shared/spec/op-p2p.md` §2.2; op-node `op-service/eth/ssz.go`.

use alloy_primitives::{Address, B256, Bloom, Bytes, U256};

use super::payload::{ExecutionPayload, ExecutionPayloadEnvelope, Transactions, Withdrawal};
use super::version::BlockVersion;

/// Consensus-spec `MAX_TRANSACTIONS_PER_PAYLOAD` (op-node `maxTransactionsPerPayload`).
pub const MAX_TRANSACTIONS_PER_PAYLOAD: usize = 1 << 20;
/// Consensus-spec `MAX_WITHDRAWALS_PER_PAYLOAD` (op-node `maxWithdrawalsPerPayload`).
pub const MAX_WITHDRAWALS_PER_PAYLOAD: usize = 1 << 4;
/// Header `extraData` limit enforced by op-node's decoder (`BytesMax32`).
pub const MAX_EXTRA_DATA_BYTES: usize = 32;
/// SSZ size of one withdrawal: index u64, validator u64, address 20, amount u64.
pub const WITHDRAWAL_BYTES: usize = 8 + 8 + 20 + 8;
/// Size of the parent beacon block root that prefixes V3/V4 payloads.
const PARENT_BEACON_ROOT_BYTES: usize = 32;
/// SSZ offsets are 4-byte little-endian integers.
const OFFSET_BYTES: usize = 4;

/// Why a payload failed to decode (every variant is a REJECT in gossip validation).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs)] // variant fields are named for what they carry
pub enum SszError {
    /// Fewer bytes than the version's fixed part (or than the 32-byte beacon root).
    #[error("payload of {len} bytes is smaller than the {version} fixed part of {fixed} bytes")]
    ScopeTooSmall {
        version: BlockVersion,
        len: usize,
        fixed: usize,
    },
    /// Larger than any SSZ offset can address.
    #[error("payload of {len} bytes exceeds the 4 GiB SSZ offset range")]
    ScopeTooLarge { len: usize },
    /// The extra-data offset must equal the fixed size exactly; this is what makes a payload on
    /// the wrong topic fail.
    #[error("extra data offset {got} is not the {version} fixed size {expected}")]
    BadExtraDataOffset {
        version: BlockVersion,
        got: u32,
        expected: u32,
    },
    /// The transactions offset precedes the extra data.
    #[error("transactions offset {tx_offset} precedes the extra data offset {extra_offset}")]
    BadTransactionsOffset { tx_offset: u32, extra_offset: u32 },
    /// The withdrawals offset precedes the transactions.
    #[error("withdrawals offset {withdrawals_offset} precedes the transactions offset {tx_offset}")]
    BadWithdrawalsOffset {
        withdrawals_offset: u32,
        tx_offset: u32,
    },
    /// The withdrawals offset points past the end.
    #[error("withdrawals offset {withdrawals_offset} is beyond the payload end {len}")]
    WithdrawalsOffsetOutOfRange { withdrawals_offset: u32, len: usize },
    /// Extra data longer than 32 bytes, or its end past the payload.
    #[error("extra data of {len} bytes exceeds {MAX_EXTRA_DATA_BYTES} bytes or the payload")]
    ExtraDataTooLarge { len: u64 },
    /// Not even one 4-byte offset in a non-empty transaction list.
    #[error("transaction list of {len} bytes cannot hold its first offset")]
    TransactionsTooShort { len: usize },
    /// First transaction offset not a multiple of 4.
    #[error("first transaction offset {offset} is not a multiple of 4")]
    MisalignedFirstTransactionOffset { offset: u32 },
    /// First transaction offset past the end of the list.
    #[error("first transaction offset {offset} is beyond the list end {len}")]
    FirstTransactionOffsetOutOfRange { offset: u32, len: usize },
    /// More than 2^20 transactions.
    #[error("{count} transactions exceed the limit of {MAX_TRANSACTIONS_PER_PAYLOAD}")]
    TooManyTransactions { count: usize },
    /// A transaction offset going backwards or past the end.
    #[error("transaction {index} has a bad end offset {offset} (start {start}, list end {len})")]
    BadTransactionOffset {
        index: usize,
        offset: u32,
        start: u32,
        len: usize,
    },
    /// Withdrawals bytes not a multiple of 44.
    #[error("withdrawals list of {len} bytes is not a multiple of {WITHDRAWAL_BYTES}")]
    BadWithdrawalsLength { len: usize },
    /// More than 16 withdrawals.
    #[error("{count} withdrawals exceed the limit of {MAX_WITHDRAWALS_PER_PAYLOAD}")]
    TooManyWithdrawals { count: usize },
}

/// Why a payload cannot be encoded in the requested layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs)] // variant fields are named for what they carry
pub enum EncodeError {
    /// A field the layout needs is absent, or a field it cannot carry is present.
    #[error("payload does not fit the {version} layout: {reason}")]
    Shape {
        version: BlockVersion,
        reason: &'static str,
    },
    /// Extra data longer than any decoder accepts.
    #[error("extra data of {len} bytes exceeds {MAX_EXTRA_DATA_BYTES} bytes")]
    ExtraDataTooLarge { len: usize },
    /// Too many transactions or withdrawals, or more than 4 GiB in total.
    #[error("payload exceeds an SSZ list or offset limit")]
    TooLarge,
}

/// Decodes a V3/V4 envelope (`parentBeaconBlockRoot ‖ payload`) or, for V1/V2, a bare payload.
///
/// `bytes` is everything after the 65-byte signature of a gossip message, or a req/resp body.
pub fn decode_envelope(
    version: BlockVersion,
    bytes: &Bytes,
) -> Result<ExecutionPayloadEnvelope, SszError> {
    decode_envelope_form(version, bytes).map(|(envelope, _)| envelope)
}

/// [`decode_envelope`], also telling whether `bytes` are in canonical form: exactly what
/// [`encode_envelope`] writes for the decoded envelope. Found as a by-product of decoding (see
/// [`decode_payload_form`]), never by re-encoding; [`super::canonical`] builds on it.
pub(super) fn decode_envelope_form(
    version: BlockVersion,
    bytes: &Bytes,
) -> Result<(ExecutionPayloadEnvelope, bool), SszError> {
    if !version.has_parent_beacon_root() {
        let (payload, canonical) = decode_payload_form(version, bytes)?;
        let envelope = ExecutionPayloadEnvelope {
            parent_beacon_block_root: None,
            payload,
        };
        return Ok((envelope, canonical));
    }
    let root = bytes
        .get(..PARENT_BEACON_ROOT_BYTES)
        .map(B256::from_slice)
        .ok_or(SszError::ScopeTooSmall {
            version,
            len: bytes.len(),
            fixed: PARENT_BEACON_ROOT_BYTES,
        })?;
    // The root is any 32 bytes, so the envelope is canonical exactly when its payload is.
    let (payload, canonical) =
        decode_payload_form(version, &bytes.slice(PARENT_BEACON_ROOT_BYTES..))?;
    let envelope = ExecutionPayloadEnvelope {
        parent_beacon_block_root: Some(root),
        payload,
    };
    Ok((envelope, canonical))
}

/// Decodes a bare payload in the given layout, following op-node's `UnmarshalSSZ` check for check.
pub fn decode_payload(version: BlockVersion, bytes: &Bytes) -> Result<ExecutionPayload, SszError> {
    decode_payload_form(version, bytes).map(|(payload, _)| payload)
}

/// [`decode_payload`], also telling whether `bytes` are in canonical form (what
/// [`encode_payload`] writes for the result).
///
/// Every field but one is read back from exactly the bytes the encoder writes for it: the fixed
/// fields are raw bytes and integers of every value, the extra-data offset must equal the fixed
/// size, the transaction offset bounds the extra data, the first transaction offset fixes the
/// count and every later one the end of a body that the encoder writes back in place, the
/// withdrawals offset ends the transaction list, and withdrawals are fixed-size. The exception is
/// op-node's quirk in [`decode_transactions`]: a transaction list whose first offset is 0 reads
/// as empty however many bytes it spans, while the encoder writes an empty list as no bytes. So
/// the form is canonical unless the list decoded empty from a non-empty span (one comparison;
/// the `ssz_canonical` tests and the `ssz_payload` fuzz target check it against re-encoding).
fn decode_payload_form(
    version: BlockVersion,
    bytes: &Bytes,
) -> Result<(ExecutionPayload, bool), SszError> {
    let len = bytes.len();
    let scope = u32::try_from(len).map_err(|_| SszError::ScopeTooLarge { len })?;
    let fixed = version.fixed_part_bytes();
    if len < fixed {
        return Err(SszError::ScopeTooSmall {
            version,
            len,
            fixed,
        });
    }
    let mut r = FixedReader { buf: bytes, pos: 0 };
    let parent_hash = B256::from(r.array::<32>());
    let fee_recipient = Address::from(r.array::<20>());
    let state_root = B256::from(r.array::<32>());
    let receipts_root = B256::from(r.array::<32>());
    let logs_bloom = Bloom::from(r.array::<256>());
    let prev_randao = B256::from(r.array::<32>());
    let block_number = r.u64();
    let gas_limit = r.u64();
    let gas_used = r.u64();
    let timestamp = r.u64();
    let extra_offset = r.u32();
    // `fixed` is at most 560, so the cast is lossless.
    let fixed_u32 = fixed as u32;
    if extra_offset != fixed_u32 {
        return Err(SszError::BadExtraDataOffset {
            version,
            got: extra_offset,
            expected: fixed_u32,
        });
    }
    let base_fee_per_gas = U256::from_le_bytes(r.array::<32>());
    let block_hash = B256::from(r.array::<32>());
    let tx_offset = r.u32();
    if tx_offset < extra_offset {
        return Err(SszError::BadTransactionsOffset {
            tx_offset,
            extra_offset,
        });
    }
    let mut withdrawals_offset = scope;
    if version.has_withdrawals() {
        withdrawals_offset = r.u32();
        if withdrawals_offset < tx_offset {
            return Err(SszError::BadWithdrawalsOffset {
                withdrawals_offset,
                tx_offset,
            });
        }
        if withdrawals_offset > scope {
            return Err(SszError::WithdrawalsOffsetOutOfRange {
                withdrawals_offset,
                len,
            });
        }
    }
    let (blob_gas_used, excess_blob_gas) = if version.has_blob_fields() {
        (Some(r.u64()), Some(r.u64()))
    } else {
        (None, None)
    };
    let withdrawals_root = version
        .has_withdrawals_root()
        .then(|| B256::from(r.array::<32>()));
    debug_assert_eq!(r.pos, fixed);

    // u64 arithmetic: `extra_offset + 32` cannot overflow.
    if u64::from(tx_offset) > u64::from(extra_offset) + MAX_EXTRA_DATA_BYTES as u64
        || tx_offset > scope
    {
        return Err(SszError::ExtraDataTooLarge {
            len: u64::from(tx_offset) - u64::from(extra_offset),
        });
    }
    // All offsets are now ordered: fixed == extra ≤ tx ≤ withdrawals ≤ scope.
    // Copied (at most 32 bytes), not sliced: a slice would keep the whole message buffer alive
    // for a payload that otherwise holds none of it (one whose transaction list took op-node's
    // zero-offset quirk), unseen by the memory accounting that counts a payload's own bytes.
    let extra_data = Bytes::copy_from_slice(
        bytes
            .get(extra_offset as usize..tx_offset as usize)
            .unwrap_or_default(),
    );
    let transactions =
        decode_transactions(&bytes.slice(tx_offset as usize..withdrawals_offset as usize))?;
    let canonical = !transactions.is_empty() || tx_offset == withdrawals_offset;
    let withdrawals = if version.has_withdrawals() {
        Some(decode_withdrawals(
            bytes.get(withdrawals_offset as usize..).unwrap_or_default(),
        )?)
    } else {
        None
    };
    let payload = ExecutionPayload {
        parent_hash,
        fee_recipient,
        state_root,
        receipts_root,
        logs_bloom,
        prev_randao,
        block_number,
        gas_limit,
        gas_used,
        timestamp,
        extra_data,
        base_fee_per_gas,
        block_hash,
        transactions,
        withdrawals,
        blob_gas_used,
        excess_blob_gas,
        withdrawals_root,
    };
    Ok((payload, canonical))
}

/// Decodes the SSZ list of byte lists. Mirrors op-node's `unmarshalTransactions`, including its
/// quirk that a first offset of 0 means an empty list and whatever follows is ignored.
fn decode_transactions(list: &Bytes) -> Result<Transactions, SszError> {
    let len = list.len();
    if len == 0 {
        return Ok(Transactions::default());
    }
    let first = read_u32(list, 0).ok_or(SszError::TransactionsTooShort { len })?;
    if first % OFFSET_BYTES as u32 != 0 {
        return Err(SszError::MisalignedFirstTransactionOffset { offset: first });
    }
    if first as usize > len {
        return Err(SszError::FirstTransactionOffsetOutOfRange { offset: first, len });
    }
    let count = first as usize / OFFSET_BYTES;
    if count == 0 {
        // op-node's quirk: the bytes after a zero first offset are ignored. Keep none of them, or
        // re-encoding (e.g. into the store) would count them as transaction bytes.
        return Ok(Transactions::default());
    }
    if count > MAX_TRANSACTIONS_PER_PAYLOAD {
        return Err(SszError::TooManyTransactions { count });
    }
    // Bounded: count ≤ 2^20 and count·4 ≤ len, so the index is at most 4 MiB.
    let mut ends = Vec::with_capacity(count);
    let mut start = first;
    for index in 0..count {
        let end = if index + 1 < count {
            // In range: (index + 1) · 4 < first ≤ len.
            read_u32(list, (index + 1) * OFFSET_BYTES).unwrap_or(0)
        } else {
            len as u32
        };
        if end < start || end as usize > len {
            return Err(SszError::BadTransactionOffset {
                index,
                offset: end,
                start,
                len,
            });
        }
        ends.push(end - first);
        start = end;
    }
    Ok(Transactions::from_parts(list.slice(first as usize..), ends))
}

/// Decodes the fixed-size withdrawal list (at most 16 entries).
fn decode_withdrawals(bytes: &[u8]) -> Result<Vec<Withdrawal>, SszError> {
    if !bytes.len().is_multiple_of(WITHDRAWAL_BYTES) {
        return Err(SszError::BadWithdrawalsLength { len: bytes.len() });
    }
    let count = bytes.len() / WITHDRAWAL_BYTES;
    if count > MAX_WITHDRAWALS_PER_PAYLOAD {
        return Err(SszError::TooManyWithdrawals { count });
    }
    Ok(bytes
        .chunks_exact(WITHDRAWAL_BYTES)
        .map(|w| {
            let mut r = FixedReader { buf: w, pos: 0 };
            Withdrawal {
                index: r.u64(),
                validator_index: r.u64(),
                address: Address::from(r.array::<20>()),
                amount: r.u64(),
            }
        })
        .collect())
}

/// Encodes `envelope` for `version`: V3/V4 get the beacon root prefix, V1/V2 do not.
pub fn encode_envelope(
    version: BlockVersion,
    envelope: &ExecutionPayloadEnvelope,
) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(encoded_len_hint(&envelope.payload, version));
    match (
        version.has_parent_beacon_root(),
        envelope.parent_beacon_block_root,
    ) {
        (true, Some(root)) => out.extend_from_slice(root.as_slice()),
        (true, None) => {
            return Err(EncodeError::Shape {
                version,
                reason: "parent beacon block root missing",
            });
        }
        (false, Some(_)) => {
            return Err(EncodeError::Shape {
                version,
                reason: "parent beacon block root not carried before V3",
            });
        }
        (false, None) => {}
    }
    encode_payload_into(version, &envelope.payload, &mut out)?;
    Ok(out)
}

/// Encodes a bare payload in the given layout.
pub fn encode_payload(
    version: BlockVersion,
    payload: &ExecutionPayload,
) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(encoded_len_hint(payload, version));
    encode_payload_into(version, payload, &mut out)?;
    Ok(out)
}

fn encoded_len_hint(payload: &ExecutionPayload, version: BlockVersion) -> usize {
    PARENT_BEACON_ROOT_BYTES
        + version.fixed_part_bytes()
        + payload.extra_data.len()
        + payload.transactions.len() * OFFSET_BYTES
        + payload.transactions.total_bytes()
}

fn encode_payload_into(
    version: BlockVersion,
    p: &ExecutionPayload,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    check_shape(version, p)?;
    if p.extra_data.len() > MAX_EXTRA_DATA_BYTES {
        return Err(EncodeError::ExtraDataTooLarge {
            len: p.extra_data.len(),
        });
    }
    let withdrawals = p.withdrawals.as_deref().unwrap_or_default();
    if p.transactions.len() > MAX_TRANSACTIONS_PER_PAYLOAD
        || withdrawals.len() > MAX_WITHDRAWALS_PER_PAYLOAD
    {
        return Err(EncodeError::TooLarge);
    }
    let fixed = version.fixed_part_bytes();
    let tx_list_bytes = p.transactions.len() * OFFSET_BYTES + p.transactions.total_bytes();
    let extra_offset = fixed;
    let tx_offset = extra_offset + p.extra_data.len();
    let withdrawals_offset = tx_offset + tx_list_bytes;
    let total = withdrawals_offset + withdrawals.len() * WITHDRAWAL_BYTES;
    let to_u32 = |v: usize| u32::try_from(v).map_err(|_| EncodeError::TooLarge);
    to_u32(total)?;

    out.extend_from_slice(p.parent_hash.as_slice());
    out.extend_from_slice(p.fee_recipient.as_slice());
    out.extend_from_slice(p.state_root.as_slice());
    out.extend_from_slice(p.receipts_root.as_slice());
    out.extend_from_slice(p.logs_bloom.as_slice());
    out.extend_from_slice(p.prev_randao.as_slice());
    for v in [p.block_number, p.gas_limit, p.gas_used, p.timestamp] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&to_u32(extra_offset)?.to_le_bytes());
    out.extend_from_slice(&p.base_fee_per_gas.to_le_bytes::<32>());
    out.extend_from_slice(p.block_hash.as_slice());
    out.extend_from_slice(&to_u32(tx_offset)?.to_le_bytes());
    if version.has_withdrawals() {
        out.extend_from_slice(&to_u32(withdrawals_offset)?.to_le_bytes());
    }
    if version.has_blob_fields() {
        out.extend_from_slice(&p.blob_gas_used.unwrap_or_default().to_le_bytes());
        out.extend_from_slice(&p.excess_blob_gas.unwrap_or_default().to_le_bytes());
    }
    if let Some(root) = p
        .withdrawals_root
        .filter(|_| version.has_withdrawals_root())
    {
        out.extend_from_slice(root.as_slice());
    }
    out.extend_from_slice(&p.extra_data);
    let mut next = p.transactions.len() * OFFSET_BYTES;
    for tx in p.transactions.iter() {
        out.extend_from_slice(&to_u32(next)?.to_le_bytes());
        next += tx.len();
    }
    for tx in p.transactions.iter() {
        out.extend_from_slice(tx);
    }
    for w in withdrawals {
        out.extend_from_slice(&w.index.to_le_bytes());
        out.extend_from_slice(&w.validator_index.to_le_bytes());
        out.extend_from_slice(w.address.as_slice());
        out.extend_from_slice(&w.amount.to_le_bytes());
    }
    Ok(())
}

/// The optional fields present must be exactly those of the layout, so that encoding and then
/// decoding gives back the same payload.
fn check_shape(version: BlockVersion, p: &ExecutionPayload) -> Result<(), EncodeError> {
    let shape = |ok: bool, reason| {
        if ok {
            Ok(())
        } else {
            Err(EncodeError::Shape { version, reason })
        }
    };
    shape(
        p.withdrawals.is_some() == version.has_withdrawals(),
        "withdrawals list present exactly from V2 on",
    )?;
    shape(
        p.blob_gas_used.is_some() == version.has_blob_fields()
            && p.excess_blob_gas.is_some() == version.has_blob_fields(),
        "blob gas fields present exactly from V3 on",
    )?;
    shape(
        p.withdrawals_root.is_some() == version.has_withdrawals_root(),
        "withdrawals root present exactly in V4",
    )
}

/// Reads little-endian integers and fixed arrays from a buffer whose length was checked against
/// the fixed part up front; an out-of-range read (a bug, not bad input) yields zeros, not a panic.
struct FixedReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl FixedReader<'_> {
    fn array<const N: usize>(&mut self) -> [u8; N] {
        let out = self
            .buf
            .get(self.pos..self.pos + N)
            .and_then(|s| <[u8; N]>::try_from(s).ok())
            .unwrap_or([0; N]);
        self.pos += N;
        out
    }

    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.array::<8>())
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.array::<4>())
    }
}

fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    let bytes = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}
