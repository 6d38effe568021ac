//! `op-gossip check-message`: an operator's tool to see what the node would do with a captured
//! gossip message, and why.
//!
//! Input: one message as carried in gossipsub (snappy block compressed), as hex (optional `0x`,
//! whitespace ignored) or raw bytes, from a file or `-` for stdin. The message goes through the
//! very [`BlockValidator`] the node uses; the output is one JSON object on stdout with the
//! verdict, the reason, and whatever of the block could be decoded (fields that could not are
//! `null`). Exit status 0 whenever a verdict was printed, 2 for usage errors.

use std::io::Read;
use std::sync::Arc;

use alloy_primitives::{Address, hex};
use serde_json::{Value, json};

use super::{ChainArgs, CliError, parse_duration_secs};
use crate::chain::ChainSpec;
use crate::validate::{BlockValidator, SignerSet, ValidatorConfig};
use crate::wire::block_hash::compute_block_hash;
use crate::wire::envelope::SignedBytes;
use crate::wire::message_id::message_id;
use crate::wire::signature::{payload_hash, recover_signer, signing_hash};
use crate::wire::snappy::decompress_gossip;
use crate::wire::ssz::decode_envelope;
use crate::wire::{BlockVersion, MAX_GOSSIP_SIZE_BYTES};

/// Largest input accepted: a hex dump of the largest gossip RPC (10 MiB → 20 MiB of hex) plus
/// whitespace and line breaks.
const MAX_INPUT_BYTES: usize = 3 * MAX_GOSSIP_SIZE_BYTES;

/// Flags of `check-message`.
#[derive(Debug, clap::Args)]
pub struct CheckMessageArgs {
    /// Which chain the message belongs to.
    #[command(flatten)]
    pub chain: ChainArgs,

    /// Topic version (v1..v4) or the full topic string (`/optimism/<chain id>/<N>/blocks`).
    #[arg(long, value_name = "v1..v4|TOPIC")]
    pub topic: String,

    /// The validator's clock, unix seconds (default: the wall clock).
    #[arg(long, value_name = "UNIX_SECONDS")]
    pub now: Option<u64>,

    /// Accepted signer (repeatable); replaces the chain's signers.
    #[arg(long = "signer", value_name = "0xADDR")]
    pub signers: Vec<Address>,

    /// How old a block may be (op-node `--p2p.gossip.timestamp.threshold`).
    #[arg(long = "p2p.gossip.timestamp.threshold", value_name = "DURATION",
          default_value = "60s", value_parser = parse_duration_secs)]
    pub past_window_secs: u64,

    /// The message: a file with hex or raw bytes, or `-` for stdin.
    #[arg(value_name = "FILE|-")]
    pub input: String,
}

/// Runs the command, printing one JSON object.
pub fn run(args: &CheckMessageArgs, signer_override: Option<Address>) -> Result<(), CliError> {
    let chain = Arc::new(args.chain.load(signer_override)?);
    let (version, topic) = resolve_topic(&chain, &args.topic)?;
    let data = decode_input(&read_input(&args.input)?);
    let now = args.now.unwrap_or_else(crate::clock::unix_now);

    let mut accepted: Vec<Address> = chain.unsafe_block_signers.clone();
    if !args.signers.is_empty() {
        accepted = args.signers.clone();
        accepted.extend(signer_override);
    }
    let config = ValidatorConfig {
        past_window_secs: args.past_window_secs,
        ..ValidatorConfig::default()
    };
    let validator = BlockValidator::with_signers(
        chain.clone(),
        config,
        SignerSet::new(accepted.iter().copied()),
    );
    let report = inspect(&validator, version, &topic, &data, now);
    println!("{report}");
    Ok(())
}

/// Validates `data` and describes it as JSON. Public so tests and tools share the exact output.
pub fn inspect(
    validator: &BlockValidator,
    version: BlockVersion,
    topic: &str,
    data: &[u8],
    now: u64,
) -> Value {
    let result = validator.validate(version, data, now);
    let (verdict, reason, error) = match &result {
        Ok(_) => ("accept", Value::Null, Value::Null),
        Err(e) => (
            e.verdict().as_str(),
            json!(e.reason()),
            json!(e.to_string()),
        ),
    };
    let mut out = json!({
        "verdict": verdict,
        "reason": reason,
        "error": error,
        "chain_id": validator.chain().chain_id,
        "topic": topic,
        "version": version.name(),
        "now": now,
        "message_id": format!("0x{}", hex::encode(message_id(topic, data))),
        "compressed_size": data.len(),
        "decompressed_size": null,
        "signer": null,
        "payload_hash": null,
        "signing_hash": null,
        "block_number": null,
        "block_hash": null,
        "computed_block_hash": null,
        "parent_hash": null,
        "timestamp": null,
        "transactions": null,
        "transactions_bytes": null,
        "deposit_transactions": null,
        "gas_used": null,
        "gas_limit": null,
        "fee_recipient": null,
        "extra_data": null,
        "parent_beacon_block_root": null,
        "withdrawals_root": null,
        "blob_gas_used": null,
        "excess_blob_gas": null,
    });
    // Best-effort decoding of whatever the bytes allow, independent of the verdict.
    let Ok(decompressed) = decompress_gossip(data) else {
        return out;
    };
    out["decompressed_size"] = json!(decompressed.len());
    let Some(parts) = SignedBytes::split(decompressed.into()) else {
        return out;
    };
    let hash = payload_hash(&parts.signed);
    let to_sign = signing_hash(validator.chain().chain_id, hash);
    out["payload_hash"] = json!(hash);
    out["signing_hash"] = json!(to_sign);
    if let Ok(signer) = recover_signer(&parts.signature, &to_sign) {
        out["signer"] = json!(signer);
    }
    let Ok(envelope) = decode_envelope(version, &parts.signed) else {
        return out;
    };
    let p = &envelope.payload;
    out["block_number"] = json!(p.block_number);
    out["block_hash"] = json!(p.block_hash);
    out["computed_block_hash"] = json!(compute_block_hash(&envelope));
    out["parent_hash"] = json!(p.parent_hash);
    out["timestamp"] = json!(p.timestamp);
    out["transactions"] = json!(p.transactions.len());
    out["transactions_bytes"] = json!(p.transactions.total_bytes());
    // 0x7e is the OP deposit transaction type (the L1-info deposit opens every real block).
    out["deposit_transactions"] = json!(
        p.transactions
            .iter()
            .filter(|tx| tx.first() == Some(&0x7e))
            .count()
    );
    out["gas_used"] = json!(p.gas_used);
    out["gas_limit"] = json!(p.gas_limit);
    out["fee_recipient"] = json!(p.fee_recipient);
    out["extra_data"] = json!(p.extra_data);
    out["parent_beacon_block_root"] = json!(envelope.parent_beacon_block_root);
    out["withdrawals_root"] = json!(p.withdrawals_root);
    out["blob_gas_used"] = json!(p.blob_gas_used);
    out["excess_blob_gas"] = json!(p.excess_blob_gas);
    out
}

/// `v1`..`v4`, or one of the chain's four topic strings.
fn resolve_topic(chain: &ChainSpec, topic: &str) -> Result<(BlockVersion, String), CliError> {
    if let Some(version) = BlockVersion::from_name(topic) {
        return Ok((version, chain.topic(version)));
    }
    match chain.version_of_topic(topic) {
        Some(version) => Ok((version, topic.to_owned())),
        None => Err(CliError::Usage(format!(
            "topic {topic:?} is not a block topic of chain {} (expected v1..v4 or one of {})",
            chain.chain_id,
            chain.topics().join(", ")
        ))),
    }
}

fn read_input(input: &str) -> Result<Vec<u8>, CliError> {
    let mut buf = Vec::new();
    let limit = MAX_INPUT_BYTES as u64 + 1;
    let read = if input == "-" {
        std::io::stdin().lock().take(limit).read_to_end(&mut buf)
    } else {
        std::fs::File::open(input).and_then(|f| f.take(limit).read_to_end(&mut buf))
    };
    read.map_err(|e| CliError::Usage(format!("cannot read {input}: {e}")))?;
    if buf.len() > MAX_INPUT_BYTES {
        return Err(CliError::Usage(format!(
            "{input} is larger than {MAX_INPUT_BYTES} bytes"
        )));
    }
    Ok(buf)
}

/// Hex (optional `0x`, ASCII whitespace anywhere ignored) if the whole input is hex digits of
/// even length; raw bytes otherwise.
pub fn decode_input(raw: &[u8]) -> Vec<u8> {
    let compact: Vec<u8> = raw
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let digits = compact
        .strip_prefix(b"0x")
        .or_else(|| compact.strip_prefix(b"0X"))
        .unwrap_or(&compact);
    if !digits.is_empty()
        && digits.len().is_multiple_of(2)
        && digits.iter().all(u8::is_ascii_hexdigit)
        && let Ok(bytes) = hex::decode(digits)
    {
        return bytes;
    }
    raw.to_vec()
}
