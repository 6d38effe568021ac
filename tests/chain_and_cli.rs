//! Chain loading (embedded chain files, chain files on disk, op-node's rollup.json) and the
//! `check-message` command line: clear errors for bad input, exit status 2 for usage errors.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use alloy_primitives::hex;
use common::*;
use op_gossip::chain_config::{ChainConfigError, load_chain, parse_chain_file, parse_rollup_json};
use op_gossip::wire::BlockVersion;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_op-gossip"))
}

/// Writes `contents` to `name` in a fresh temporary directory, removed when the returned guard
/// drops (keep it alive while the path is used).
fn temp_file(name: &str, contents: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, contents).unwrap();
    (dir, path)
}

#[test]
fn embedded_chains_carry_the_registry_values() {
    let op = load_chain("op-mainnet").unwrap();
    assert_eq!(
        (
            op.chain_id,
            op.block_time,
            op.genesis.l2.number,
            op.genesis.l2_time
        ),
        (10, 2, 105235063, 1686068903)
    );
    assert_eq!(op.forks.isthmus, Some(1746806401));
    assert_eq!(op.forks.jovian, Some(1764691201));
    assert_eq!(op.topic(BlockVersion::V4), "/optimism/10/3/blocks");
    assert_eq!(op.block_version_at(1746806400), BlockVersion::V3);
    assert_eq!(op.block_version_at(1746806401), BlockVersion::V4);
    assert_eq!(op.block_version_at(1704992400), BlockVersion::V1);
    let base = load_chain("base-mainnet").unwrap();
    assert_eq!((base.chain_id, base.forks.karst), (8453, None));
    assert_eq!(
        base.unsafe_block_signers[0].to_string(),
        "0xAf6E19BE0F9cE7f8afd49a1824851023A8249e8a"
    );
    assert_eq!(load_chain("op-sepolia").unwrap().chain_id, 11155420);
    assert_eq!(load_chain("base-sepolia").unwrap().chain_id, 84532);
    let dev = load_chain("devnet").unwrap();
    assert_eq!(dev.block_version_at(0), BlockVersion::V4);
    assert!(dev.is_jovian(0));
    assert_eq!(dev.unsafe_block_signers, vec![dev_address()]);
    // Every chain is on the V4 topic today.
    for name in ["op-mainnet", "base-mainnet", "op-sepolia", "base-sepolia"] {
        assert_eq!(
            load_chain(name).unwrap().block_version_at(1_790_000_000),
            BlockVersion::V4
        );
    }
}

#[test]
fn timestamp_and_target_block_math_follow_op_node() {
    let op = load_chain("op-mainnet").unwrap();
    assert_eq!(op.timestamp_for_block(105235063), Some(1686068903));
    assert_eq!(op.timestamp_for_block(105235064), Some(1686068905));
    assert_eq!(op.timestamp_for_block(1), None, "before genesis");
    assert_eq!(op.target_block_number(1686068903 + 21), 105235063 + 10);
}

const ROLLUP_JSON: &str = r#"{
  "genesis": {
    "l1": {"hash": "0x438335a20d98863a4c0c97999eb2481921ccd28553eac6f913af7c12aec04108", "number": 17422590},
    "l2": {"hash": "0xdbf6a80fef073de06add9b0d14026d6e5a86c85f6d102c36d3d8e9cf89c2afd3", "number": 105235063},
    "l2_time": 1686068903,
    "system_config": {"batcherAddr": "0x6887246668a3b87f54deb3b94ba47a6f63f32985", "gasLimit": 30000000}
  },
  "block_time": 2, "max_sequencer_drift": 600, "seq_window_size": 3600, "channel_timeout": 300,
  "l1_chain_id": 1, "l2_chain_id": 10,
  "regolith_time": 0, "canyon_time": 1704992401, "delta_time": 1708560000, "ecotone_time": 1710374401,
  "fjord_time": 1720627201, "granite_time": 1726070401, "holocene_time": 1736445601,
  "isthmus_time": 1746806401, "jovian_time": 1764691201,
  "batch_inbox_address": "0xff00000000000000000000000000000000000010",
  "deposit_contract_address": "0xbeb5fc579115071764c7423a4f12edde41f106ed",
  "l1_system_config_address": "0x229047fed2591dbec1ef1118d64f7af3db9eb290"
}"#;

#[test]
fn rollup_json_loads_as_is_and_matches_the_chain_file() {
    let from_json = parse_rollup_json(ROLLUP_JSON, "op", "rollup.json").unwrap();
    let from_file = load_chain("op-mainnet").unwrap();
    assert_eq!(from_json.chain_id, from_file.chain_id);
    assert_eq!(from_json.genesis, from_file.genesis);
    assert_eq!(from_json.forks.isthmus, from_file.forks.isthmus);
    assert_eq!(
        from_json.l1_system_config_address,
        from_file.l1_system_config_address
    );
    assert!(
        from_json.unsafe_block_signers.is_empty(),
        "rollup.json has no signer"
    );
}

#[test]
fn malformed_configs_give_clear_errors() {
    let missing = ROLLUP_JSON.replace(r#""block_time": 2,"#, "");
    let err = parse_rollup_json(&missing, "op", "rollup.json")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("rollup.json") && err.contains("block_time"),
        "{err}"
    );
    let bad_addr = ROLLUP_JSON.replace("0x229047fed2591dbec1ef1118d64f7af3db9eb290", "0x1234");
    let err = parse_rollup_json(&bad_addr, "op", "rollup.json")
        .unwrap_err()
        .to_string();
    assert!(err.contains("rollup.json"), "{err}");
    let zero_time = ROLLUP_JSON.replace(r#""block_time": 2"#, r#""block_time": 0"#);
    assert!(
        parse_rollup_json(&zero_time, "op", "r")
            .unwrap_err()
            .to_string()
            .contains("block_time")
    );
    let out_of_order = ROLLUP_JSON.replace(r#""isthmus_time": 1746806401"#, r#""isthmus_time": 1"#);
    let err = parse_rollup_json(&out_of_order, "op", "r")
        .unwrap_err()
        .to_string();
    assert!(err.contains("isthmus") && err.contains("holocene"), "{err}");

    let typo = include_str!("../chains/devnet.toml").replace("isthmus = 0", "isthmuss = 0");
    let err = parse_chain_file(&typo, "devnet.toml")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("devnet.toml") && err.contains("isthmuss"),
        "{err}"
    );
    let bad_signer = include_str!("../chains/devnet.toml")
        .replace("0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc", "nope");
    assert!(matches!(
        parse_chain_file(&bad_signer, "d"),
        Err(ChainConfigError::ChainFile { .. })
    ));
    let err = load_chain("op-mainet").unwrap_err().to_string();
    assert!(
        err.contains("op-mainnet") && err.contains("rollup.json"),
        "{err}"
    );
}

fn check(args: &[&str], stdin: Option<&[u8]>) -> (i32, serde_json::Value, String) {
    let mut child = bin()
        .arg("check-message")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(data) = stdin {
        child.stdin.take().unwrap().write_all(data).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (
        out.status.code().unwrap(),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_message_reads_hex_raw_and_stdin_on_a_devnet_block() {
    let chain = load_chain("devnet").unwrap();
    let mut chain_now = chain.clone();
    chain_now.genesis.l2_time = NOW;
    let env = block(&chain_now, 3, NOW, 20_000);
    let wire = signed_dev(&chain, &env);
    let now = NOW.to_string();
    let hex_text = format!("0x{}\n", hex::encode(&wire));
    // Hex from stdin, with the full topic string.
    let (code, json, err) = check(
        &[
            "--chain",
            "devnet",
            "--topic",
            "/optimism/901/3/blocks",
            "--now",
            &now,
            "-",
        ],
        Some(hex_text.as_bytes()),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(json["verdict"], "accept");
    assert_eq!(json["reason"], serde_json::Value::Null);
    assert_eq!(json["block_number"], 3);
    assert_eq!(json["timestamp"], NOW);
    assert_eq!(json["block_hash"], env.payload.block_hash.to_string());
    assert_eq!(json["parent_hash"], env.payload.parent_hash.to_string());
    assert_eq!(json["signer"], dev_address().to_string().to_lowercase());
    assert_eq!(json["deposit_transactions"], 1);
    assert!(json["transactions"].as_u64().unwrap() > 1);
    assert_eq!(json["message_id"].as_str().unwrap().len(), 2 + 40);
    assert_eq!(json["payload_hash"].as_str().unwrap().len(), 2 + 64);
    // Raw bytes from a file, short topic name.
    let (_dir, path) = temp_file("raw.bin", &wire);
    let (code, json, _) = check(
        &[
            "--chain",
            "devnet",
            "--topic",
            "v4",
            "--now",
            &now,
            path.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!((code, json["verdict"].as_str()), (0, Some("accept")));
    // Hex split over lines, without 0x.
    let wrapped: String = hex::encode(&wire)
        .as_bytes()
        .chunks(64)
        .map(|c| format!("{}\n", std::str::from_utf8(c).unwrap()))
        .collect();
    let (_dir, path) = temp_file("wrapped.hex", wrapped.as_bytes());
    let (code, json, _) = check(
        &[
            "--chain",
            "devnet",
            "--topic",
            "v4",
            "--now",
            &now,
            path.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!((code, json["verdict"].as_str()), (0, Some("accept")));
    // Another signer via --signer: now the dev key is unknown → reject, still exit 0.
    let (code, json, _) = check(
        &[
            "--chain",
            "devnet",
            "--topic",
            "v4",
            "--now",
            &now,
            "--signer",
            "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
            path.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(
        (code, json["verdict"].as_str(), json["reason"].as_str()),
        (0, Some("reject"), Some("unknown_signer"))
    );
    // The global override works the same way.
    let (code, json, _) = check(
        &[
            "--p2p.unsafe.block.signer",
            "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
            "--chain",
            "devnet",
            "--topic",
            "v4",
            "--now",
            &now,
            path.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!((code, json["reason"].as_str()), (0, Some("unknown_signer")));
    // Without --now the wall clock applies: a block from 2023 is stale.
    let old = signed_dev(&chain, &block(&chain, 4, 1_700_000_000, 0));
    let (_old_dir, old_path) = temp_file("old.bin", &old);
    let (code, json, _) = check(
        &[
            "--chain",
            "devnet",
            "--topic",
            "v4",
            old_path.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(
        (code, json["reason"].as_str()),
        (0, Some("timestamp_too_old"))
    );
    // Garbage still gets a verdict.
    let (code, json, _) = check(
        &["--chain", "devnet", "--topic", "v4", "-"],
        Some(b"not a message"),
    );
    assert_eq!(
        (
            code,
            json["verdict"].as_str(),
            json["block_number"].is_null()
        ),
        (0, Some("reject"), true)
    );
}

#[test]
fn check_message_with_rollup_json_takes_the_signer_from_the_flag() {
    let (_dir, path) = temp_file("rollup.json", ROLLUP_JSON.as_bytes());
    let vector = vector_path("opalloy_golden.v1.hex");
    // No signer anywhere: IGNORE, as op-node with a zero signer.
    let (code, json, err) = check(
        &[
            "--rollup.config",
            path.to_str().unwrap(),
            "--topic",
            "v1",
            "--now",
            "1725271882",
            vector.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(json["reason"], "signer_unset");
    assert_eq!(json["verdict"], "ignore");
}

#[test]
fn check_message_usage_errors_exit_2() {
    let vector = vector_path("opalloy_golden.v1.hex");
    let v = vector.to_str().unwrap();
    for args in [
        vec!["--chain", "nope", "--topic", "v1", v],
        vec!["--chain", "devnet", "--topic", "v5", v],
        vec!["--chain", "devnet", "--topic", "/optimism/10/0/blocks", v],
        vec!["--chain", "devnet", "--topic", "v1", "/does/not/exist"],
        vec![
            "--chain",
            "devnet",
            "--topic",
            "v1",
            "--now",
            "yesterday",
            v,
        ],
        vec!["--chain", "devnet", "--topic", "v1", "--signer", "0x12", v],
        vec!["--topic", "v1", v],
    ] {
        let (code, json, err) = check(&args, None);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(json.is_null(), "{args:?}: nothing on stdout");
        assert!(!err.is_empty(), "{args:?}: an explanation on stderr");
    }
}

#[test]
fn duration_flags_parse_like_op_node() {
    use op_gossip::cli::parse_duration_secs;
    assert_eq!(parse_duration_secs("60s"), Ok(60));
    assert_eq!(parse_duration_secs("2m"), Ok(120));
    assert_eq!(parse_duration_secs("1h"), Ok(3600));
    assert_eq!(parse_duration_secs("90"), Ok(90));
    assert!(parse_duration_secs("soon").is_err());
    assert!(parse_duration_secs("5d").is_err());
    assert_eq!(
        op_gossip::cli::parse_duration("100ms"),
        Ok(Duration::from_millis(100))
    );
    use op_gossip::cli::parse_size;
    assert_eq!(parse_size("100KiB"), Ok(102_400));
    assert_eq!(parse_size("1MiB"), Ok(1 << 20));
    assert_eq!(parse_size("10KB"), Ok(10_000));
    assert_eq!(parse_size("512"), Ok(512));
    assert!(parse_size("lots").is_err());
    assert!(parse_size("99999999999999999999MiB").is_err());
}
