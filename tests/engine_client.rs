//! The Engine API client against the specification, over real HTTP on 127.0.0.1: a capturing
//! server records each request's `Authorization` header and JSON body, so the test checks the
//! JWT (HS256 with the shared secret, a fresh `iat`), the method name for each fork (V2/V3/V4 and
//! OP's V4 form) and the exact parameter shapes; then the answers (status, payload, errors) are
//! decoded back.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy_primitives::{Address, B64, B256, Bytes};
use alloy_rpc_types_engine::{ForkchoiceState, JwtSecret, PayloadAttributes, PayloadStatusEnum};
use common::*;
use op_gossip::engine::json::{OpPayloadAttributes, new_payload_params};
use op_gossip::engine::{EngineClient, EngineError};
use op_gossip::wire::BlockVersion;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "0x2b5bd2bc1b4e1bd3ef8e41dd3bea9cd1c06d26b1dbb2a7f1c7d9bdbe0d4f8a11";

/// One captured request.
#[derive(Debug, Clone)]
struct Captured {
    authorization: String,
    body: Value,
}

/// Answers every request with `(status, body)` from `answer` and records it.
struct CapturingServer {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Captured>>>,
}

impl CapturingServer {
    async fn start(answer: fn(&Value) -> (u16, Value)) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests: Arc<Mutex<Vec<Captured>>> = Arc::default();
        let seen = requests.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let seen = seen.clone();
                tokio::spawn(async move {
                    // Keep-alive: serve requests on this connection until it closes.
                    let mut buf = Vec::new();
                    loop {
                        let Some((head_end, len)) = (loop {
                            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                                let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                                let len = head
                                    .lines()
                                    .find_map(|l| l.strip_prefix("content-length:"))
                                    .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                                break Some((end + 4, len));
                            }
                            let mut chunk = [0u8; 8192];
                            match socket.read(&mut chunk).await {
                                Ok(0) | Err(_) => break None,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }) else {
                            return;
                        };
                        while buf.len() < head_end + len {
                            let mut chunk = [0u8; 8192];
                            match socket.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                        let body: Value =
                            serde_json::from_slice(&buf[head_end..head_end + len]).unwrap();
                        buf.drain(..head_end + len);
                        let authorization = head
                            .lines()
                            .find_map(|l| {
                                l.split_once(':')
                                    .filter(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                                    .map(|(_, v)| v.trim().to_owned())
                            })
                            .unwrap_or_default();
                        seen.lock().unwrap().push(Captured {
                            authorization,
                            body: body.clone(),
                        });
                        let (status, result) = answer(&body);
                        let text = if status == 200 {
                            json!({"jsonrpc": "2.0", "id": body["id"], "result": result})
                                .to_string()
                        } else {
                            result.to_string()
                        };
                        let response = format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{text}",
                            text.len()
                        );
                        if socket.write_all(response.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self { addr, requests }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn last(&self) -> Captured {
        self.requests.lock().unwrap().last().cloned().unwrap()
    }
}

fn valid_status(_: &Value) -> (u16, Value) {
    (
        200,
        json!({"status": "VALID", "latestValidHash": B256::repeat_byte(1), "validationError": null}),
    )
}

fn client(url: &str, secret: &str) -> EngineClient {
    EngineClient::new(
        url,
        JwtSecret::from_hex(secret).unwrap(),
        Duration::from_secs(5),
    )
    .unwrap()
}

#[tokio::test]
async fn new_payload_methods_params_and_jwt_follow_the_spec_per_fork() {
    let server = CapturingServer::start(valid_status).await;
    let engine = client(&server.url(), SECRET);
    let secret = JwtSecret::from_hex(SECRET).unwrap();
    for (version, method, len) in [
        (BlockVersion::V1, "engine_newPayloadV2", 1),
        (BlockVersion::V2, "engine_newPayloadV2", 1),
        (BlockVersion::V3, "engine_newPayloadV3", 3),
        (BlockVersion::V4, "engine_newPayloadV4", 4),
    ] {
        let chain = chain_up_to(version);
        let env = block(&chain, 5, 1_000, 300);
        let status = engine.new_payload(version, &env).await.unwrap();
        assert_eq!(status.status, PayloadStatusEnum::Valid);
        let req = server.last();
        // A fresh HS256 token with our secret.
        let token = req
            .authorization
            .strip_prefix("Bearer ")
            .expect("bearer token");
        secret.validate(token).expect("valid JWT");
        assert!(
            JwtSecret::from_hex("11".repeat(32))
                .unwrap()
                .validate(token)
                .is_err()
        );
        assert_eq!(req.body["jsonrpc"], json!("2.0"));
        assert_eq!(req.body["method"], json!(method), "{version}");
        let params = req.body["params"].as_array().unwrap();
        assert_eq!(params.len(), len, "{version}: {params:?}");
        let payload = params[0].as_object().unwrap();
        // Quantities are hex strings without leading zeros; hashes 32-byte hex.
        assert_eq!(payload["blockNumber"], json!("0x5"));
        assert_eq!(payload["timestamp"], json!("0x3e8"));
        assert_eq!(payload["blockHash"], json!(env.payload.block_hash));
        assert!(
            payload["transactions"][0]
                .as_str()
                .unwrap()
                .starts_with("0x7e"),
            "deposit first"
        );
        assert_eq!(
            payload.contains_key("withdrawals"),
            version >= BlockVersion::V2,
            "{version}"
        );
        assert_eq!(
            payload.contains_key("blobGasUsed"),
            version >= BlockVersion::V3
        );
        assert_eq!(
            payload.contains_key("excessBlobGas"),
            version >= BlockVersion::V3
        );
        assert_eq!(
            payload.contains_key("withdrawalsRoot"),
            version == BlockVersion::V4
        );
        if version >= BlockVersion::V2 {
            assert_eq!(payload["withdrawals"], json!([]));
        }
        if version >= BlockVersion::V3 {
            assert_eq!(params[1], json!([]), "no blob versioned hashes");
            assert_eq!(params[2], json!(env.parent_beacon_block_root.unwrap()));
        }
        if version == BlockVersion::V4 {
            assert_eq!(params[3], json!([]), "no execution requests");
            assert_eq!(
                payload["withdrawalsRoot"],
                json!(env.payload.withdrawals_root.unwrap())
            );
        }
    }
}

#[tokio::test]
async fn forkchoice_attributes_and_get_payload_round_trip() {
    fn answer(body: &Value) -> (u16, Value) {
        match body["method"].as_str().unwrap() {
            "engine_forkchoiceUpdatedV2" | "engine_forkchoiceUpdatedV3" => (
                200,
                json!({"payloadStatus": {"status": "VALID", "latestValidHash": B256::repeat_byte(2), "validationError": null},
                       "payloadId": "0x0102030405060708"}),
            ),
            "engine_getPayloadV4" => {
                let chain = chain_up_to(BlockVersion::V4);
                let env = block(&chain, 9, 2_000, 200);
                let mut params = new_payload_params(BlockVersion::V4, &env).unwrap();
                (
                    200,
                    json!({"executionPayload": params[0].take(), "blockValue": "0x0",
                           "blobsBundle": {"commitments": [], "proofs": [], "blobs": []},
                           "shouldOverrideBuilder": false,
                           "parentBeaconBlockRoot": env.parent_beacon_block_root, "executionRequests": []}),
                )
            }
            _ => (200, Value::Null),
        }
    }
    let server = CapturingServer::start(answer).await;
    let engine = client(&server.url(), SECRET);
    let state = ForkchoiceState {
        head_block_hash: B256::repeat_byte(3),
        safe_block_hash: B256::ZERO,
        finalized_block_hash: B256::ZERO,
    };
    let attributes = OpPayloadAttributes {
        payload_attributes: PayloadAttributes {
            timestamp: 2_000,
            prev_randao: B256::repeat_byte(4),
            suggested_fee_recipient: Address::repeat_byte(0x42),
            withdrawals: Some(vec![]),
            parent_beacon_block_root: Some(B256::repeat_byte(5)),
            ..PayloadAttributes::default()
        },
        transactions: Some(vec![Bytes::from_static(&[0x7e, 0x01])]),
        no_tx_pool: Some(true),
        gas_limit: Some(30_000_000),
        eip1559_params: Some(B64::from_slice(&[0, 0, 0, 250, 0, 0, 0, 6])),
        min_base_fee: Some(0),
    };
    let updated = engine
        .forkchoice_updated(BlockVersion::V4, state, Some(&attributes))
        .await
        .unwrap();
    let id = updated.payload_id.expect("payload id");
    let req = server.last();
    assert_eq!(req.body["method"], json!("engine_forkchoiceUpdatedV3"));
    let params = req.body["params"].as_array().unwrap();
    assert_eq!(
        params[0],
        json!({"headBlockHash": B256::repeat_byte(3), "safeBlockHash": B256::ZERO, "finalizedBlockHash": B256::ZERO})
    );
    let a = params[1].as_object().unwrap();
    assert_eq!(a["timestamp"], json!("0x7d0"));
    assert_eq!(a["gasLimit"], json!("0x1c9c380"));
    assert_eq!(a["eip1559Params"], json!("0x000000fa00000006"));
    assert_eq!(
        a["minBaseFee"],
        json!(0),
        "a JSON number, as op-reth requires"
    );
    assert_eq!(a["noTxPool"], json!(true));
    assert_eq!(a["withdrawals"], json!([]));
    assert_eq!(a["transactions"], json!(["0x7e01"]));

    // Without attributes the second parameter is null.
    engine
        .forkchoice_updated(BlockVersion::V2, state, None)
        .await
        .unwrap();
    let req = server.last();
    assert_eq!(req.body["method"], json!("engine_forkchoiceUpdatedV2"));
    assert_eq!(req.body["params"][1], Value::Null);

    let built = engine.get_payload(BlockVersion::V4, id).await.unwrap();
    assert_eq!(server.last().body["params"], json!(["0x0102030405060708"]));
    let chain = chain_up_to(BlockVersion::V4);
    assert_eq!(
        built,
        block(&chain, 9, 2_000, 200),
        "decoded back to the same block"
    );
}

#[tokio::test]
async fn errors_are_typed() {
    fn unauthorized(_: &Value) -> (u16, Value) {
        (401, json!({"error": "bad token"}))
    }
    fn rpc_error(body: &Value) -> (u16, Value) {
        let _ = body;
        (200, Value::Null)
    }
    let server = CapturingServer::start(unauthorized).await;
    let chain = chain_up_to(BlockVersion::V4);
    let env = block(&chain, 1, 10, 0);
    let err = client(&server.url(), SECRET)
        .new_payload(BlockVersion::V4, &env)
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Unauthorized(_)), "{err}");
    assert!(!err.is_transient());

    // Nobody listening: unreachable, worth retrying.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let err = client(&url, SECRET)
        .new_payload(BlockVersion::V4, &env)
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");

    // A null result where a status is expected does not decode.
    let server = CapturingServer::start(rpc_error).await;
    let err = client(&server.url(), SECRET)
        .new_payload(BlockVersion::V4, &env)
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Decode(_)), "{err}");

    // A payload missing a field of its version is refused before sending.
    let mut v3 = env.clone();
    v3.parent_beacon_block_root = None;
    let err = client(&server.url(), SECRET)
        .new_payload(BlockVersion::V4, &v3)
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Payload(_)), "{err}");
}
