//! An Engine API server for the tests, on 127.0.0.1: real HTTP/1.1 (keep-alive), a real JWT
//! check (HS256 with the shared secret, `iat` within ±60 s: anything else is HTTP 401), and
//! block-hash verification of every payload it receives (a payload whose fields do not hash to
//! its `blockHash` is INVALID). It keeps a chain (parent must be known, else SYNCING), moves its
//! head on `forkchoiceUpdated`, builds payloads from payload attributes (the attributes'
//! transactions, fee recipient, randao, gas limit and beacon root on top of the head), and can be
//! taken down and brought back with its chain kept.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use alloy_primitives::{B256, Bytes};
use alloy_rpc_types_engine::JwtSecret;
use op_gossip::block_builder::{BlockSpec, L1Info, build_block};
use op_gossip::chain::ChainSpec;
use op_gossip::engine::json::{new_payload_params, payload_from_get_payload};
use op_gossip::store::BlockRef;
use op_gossip::wire::BlockVersion;
use op_gossip::wire::block_hash::compute_block_hash;
use op_gossip::wire::payload::{ExecutionPayloadEnvelope, Transactions};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest request body read (a 10 MiB payload is ~20 MiB of JSON hex).
const MAX_BODY: usize = 32 << 20;

#[derive(Default)]
struct State {
    /// hash → (number, timestamp).
    blocks: HashMap<B256, (u64, u64)>,
    /// Payloads made the head, in order.
    inserted: Vec<BlockRef>,
    head: Option<(BlockRef, u64)>,
    invalid_numbers: HashSet<u64>,
    built: HashMap<u64, (BlockVersion, ExecutionPayloadEnvelope)>,
    next_id: u64,
    calls: Vec<String>,
    rejected_auth: u64,
    down: bool,
}

/// The server.
#[derive(Clone)]
pub struct FakeEngine {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    chain: Arc<ChainSpec>,
}

impl FakeEngine {
    /// Starts an engine whose chain begins at the chain's genesis.
    pub async fn start(secret: JwtSecret, chain: Arc<ChainSpec>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let genesis = BlockRef {
            number: chain.genesis.l2.number,
            hash: chain.genesis.l2.hash,
        };
        let mut state = State::default();
        state
            .blocks
            .insert(genesis.hash, (genesis.number, chain.genesis.l2_time));
        state.head = Some((genesis, chain.genesis.l2_time));
        let engine = Self {
            addr,
            state: Arc::new(Mutex::new(state)),
            chain,
        };
        let server = engine.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(server.clone().serve(socket, secret));
            }
        });
        engine
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// The engine's head.
    pub fn head(&self) -> BlockRef {
        self.lock().head.unwrap().0
    }

    /// Blocks made the head, in order.
    pub fn inserted(&self) -> Vec<BlockRef> {
        self.lock().inserted.clone()
    }

    /// Methods called, in order.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// Requests refused for their token.
    pub fn rejected_auth(&self) -> u64 {
        self.lock().rejected_auth
    }

    /// Declares every payload at `number` INVALID.
    pub fn invalid_at(&self, number: u64) {
        self.lock().invalid_numbers.insert(number);
    }

    /// Takes the engine down (connections are dropped unanswered) or brings it back.
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    async fn serve(self, mut socket: tokio::net::TcpStream, secret: JwtSecret) {
        let mut buf = Vec::new();
        loop {
            let (head_end, len) = loop {
                if self.lock().down {
                    return;
                }
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    break (end + 4, len.min(MAX_BODY));
                }
                let mut chunk = [0u8; 65536];
                match socket.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            while buf.len() < head_end + len {
                let mut chunk = [0u8; 65536];
                match socket.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            if self.lock().down {
                return;
            }
            let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
            let body = buf[head_end..head_end + len].to_vec();
            buf.drain(..head_end + len);
            let token = head.lines().find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                    .and_then(|(_, v)| v.trim().strip_prefix("Bearer ").map(str::to_owned))
            });
            let (status, text) = match token.map(|t| secret.validate(&t)) {
                Some(Ok(())) => (200, self.answer(&body).to_string()),
                _ => {
                    self.lock().rejected_auth += 1;
                    (401, "{\"error\":\"invalid token\"}".to_owned())
                }
            };
            let response = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{text}",
                text.len()
            );
            if socket.write_all(response.as_bytes()).await.is_err() {
                return;
            }
        }
    }

    fn answer(&self, body: &[u8]) -> Value {
        let Ok(request) = serde_json::from_slice::<Value>(body) else {
            return json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "parse error"}});
        };
        let id = request["id"].clone();
        let method = request["method"].as_str().unwrap_or_default().to_owned();
        let params = request["params"].as_array().cloned().unwrap_or_default();
        self.lock().calls.push(method.clone());
        match self.call(&method, &params) {
            Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
            Err((code, message)) => {
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
            }
        }
    }

    fn call(&self, method: &str, params: &[Value]) -> Result<Value, (i32, String)> {
        let version_of = |v: &str| match v {
            "V2" => Some(BlockVersion::V2),
            "V3" => Some(BlockVersion::V3),
            "V4" => Some(BlockVersion::V4),
            _ => None,
        };
        let bad = |m: &str| (-32602, m.to_owned());
        if let Some(v) = method.strip_prefix("engine_newPayload") {
            let mut version = version_of(v).ok_or((-32601, "no such method".into()))?;
            let want = match version {
                BlockVersion::V4 => 4,
                BlockVersion::V3 => 3,
                _ => 1,
            };
            if params.len() != want {
                return Err(bad("wrong number of params"));
            }
            if version == BlockVersion::V2 && params[0].get("withdrawals").is_none() {
                version = BlockVersion::V1;
            }
            let envelope = payload_from_get_payload(
                version,
                json!({"executionPayload": params[0], "parentBeaconBlockRoot": params.get(2)}),
            )
            .map_err(|e| bad(&e.to_string()))?;
            let expected = self.chain.block_version_at(envelope.payload.timestamp);
            if expected != version && !(version == BlockVersion::V1 && expected == BlockVersion::V1)
            {
                return Err((-38005, "Unsupported fork".into()));
            }
            let p = &envelope.payload;
            let mut s = self.lock();
            if compute_block_hash(&envelope) != p.block_hash {
                return Ok(
                    json!({"status": "INVALID", "latestValidHash": null, "validationError": "block hash mismatch"}),
                );
            }
            if s.invalid_numbers.contains(&p.block_number) {
                return Ok(
                    json!({"status": "INVALID", "latestValidHash": p.parent_hash, "validationError": "declared invalid by the test"}),
                );
            }
            if !s.blocks.contains_key(&p.parent_hash) {
                return Ok(
                    json!({"status": "SYNCING", "latestValidHash": null, "validationError": null}),
                );
            }
            s.blocks.insert(p.block_hash, (p.block_number, p.timestamp));
            return Ok(
                json!({"status": "VALID", "latestValidHash": p.block_hash, "validationError": null}),
            );
        }
        if let Some(v) = method.strip_prefix("engine_forkchoiceUpdated") {
            if !matches!(v, "V2" | "V3") || params.len() != 2 {
                return Err(bad("forkchoiceUpdated takes [state, attributes]"));
            }
            let head: B256 = serde_json::from_value(params[0]["headBlockHash"].clone())
                .map_err(|e| bad(&e.to_string()))?;
            let mut s = self.lock();
            let Some(&(number, timestamp)) = s.blocks.get(&head) else {
                return Ok(
                    json!({"payloadStatus": {"status": "SYNCING", "latestValidHash": null, "validationError": null}, "payloadId": null}),
                );
            };
            let head_ref = BlockRef { number, hash: head };
            if s.head.map(|h| h.0) != Some(head_ref) {
                s.head = Some((head_ref, timestamp));
                if s.inserted.last() != Some(&head_ref) {
                    s.inserted.push(head_ref);
                }
            }
            let mut payload_id = Value::Null;
            if !params[1].is_null() {
                let a = &params[1];
                if a.get("minBaseFee").is_some_and(|m| !m.is_u64()) {
                    return Err((-38003, "minBaseFee must be a number".into()));
                }
                let quantity = |k: &str| {
                    a[k].as_str()
                        .and_then(|t| u64::from_str_radix(t.trim_start_matches("0x"), 16).ok())
                };
                let ts = quantity("timestamp").ok_or((-38003, "timestamp".into()))?;
                let version = self.chain.block_version_at(ts);
                let mut env = build_block(
                    &self.chain,
                    &BlockSpec {
                        parent_hash: head,
                        number: number + 1,
                        timestamp: ts,
                        target_tx_bytes: 0,
                        l1: L1Info::default(),
                    },
                );
                let txs: Vec<Bytes> = serde_json::from_value(a["transactions"].clone())
                    .map_err(|e| (-38003, e.to_string()))?;
                env.payload.transactions =
                    Transactions::from_slices(txs.iter().map(|t| t.as_ref())).unwrap();
                env.payload.fee_recipient =
                    serde_json::from_value(a["suggestedFeeRecipient"].clone())
                        .map_err(|e| (-38003, e.to_string()))?;
                env.payload.prev_randao = serde_json::from_value(a["prevRandao"].clone())
                    .map_err(|e| (-38003, e.to_string()))?;
                if let Some(gas) = quantity("gasLimit") {
                    env.payload.gas_limit = gas;
                }
                if version >= BlockVersion::V3 {
                    env.parent_beacon_block_root = Some(
                        serde_json::from_value(a["parentBeaconBlockRoot"].clone())
                            .map_err(|e| (-38003, e.to_string()))?,
                    );
                }
                env.payload.block_hash = compute_block_hash(&env);
                s.next_id += 1;
                let id = s.next_id;
                s.built.insert(id, (version, env));
                payload_id = json!(format!("0x{id:016x}"));
            }
            return Ok(
                json!({"payloadStatus": {"status": "VALID", "latestValidHash": head, "validationError": null}, "payloadId": payload_id}),
            );
        }
        if let Some(v) = method.strip_prefix("engine_getPayload") {
            let wanted = version_of(v).ok_or((-32601, "no such method".into()))?;
            let id = params
                .first()
                .and_then(Value::as_str)
                .and_then(|t| u64::from_str_radix(t.trim_start_matches("0x"), 16).ok())
                .ok_or_else(|| bad("payload id"))?;
            let s = self.lock();
            let (version, env) = s.built.get(&id).ok_or((-38001, "Unknown payload".into()))?;
            if wanted != *version && !(wanted == BlockVersion::V2 && *version == BlockVersion::V1) {
                return Err((-38005, "Unsupported fork".into()));
            }
            let mut params = new_payload_params(*version, env).map_err(|e| bad(&e.to_string()))?;
            return Ok(
                json!({"executionPayload": params[0].take(), "blockValue": "0x0",
                "blobsBundle": {"commitments": [], "proofs": [], "blobs": []},
                "shouldOverrideBuilder": false, "parentBeaconBlockRoot": env.parent_beacon_block_root,
                "executionRequests": []}),
            );
        }
        match method {
            "engine_exchangeCapabilities" => Ok(json!([
                "engine_newPayloadV2",
                "engine_newPayloadV3",
                "engine_newPayloadV4",
                "engine_forkchoiceUpdatedV2",
                "engine_forkchoiceUpdatedV3",
                "engine_getPayloadV2",
                "engine_getPayloadV3",
                "engine_getPayloadV4"
            ])),
            "eth_getBlockByNumber" => {
                let s = self.lock();
                let (head, ts) = s.head.unwrap();
                let (number, hash, ts) = match params.first().and_then(Value::as_str) {
                    Some("latest") => (head.number, head.hash, ts),
                    _ => (
                        self.chain.genesis.l2.number,
                        self.chain.genesis.l2.hash,
                        self.chain.genesis.l2_time,
                    ),
                };
                Ok(
                    json!({"number": format!("0x{number:x}"), "hash": hash, "timestamp": format!("0x{ts:x}")}),
                )
            }
            _ => Err((-32601, format!("method {method} not found"))),
        }
    }
}
