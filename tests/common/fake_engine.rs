//! An Engine API server for the tests, on 127.0.0.1: real HTTP/1.1 (keep-alive), a real JWT
//! check (HS256 with the shared secret, `iat` within ±60 s: anything else is HTTP 401), and
//! block-hash verification of every payload it receives (a payload whose fields do not hash to
//! its `blockHash` is INVALID). It keeps a chain (parent must be known, else SYNCING), moves its
//! head on `forkchoiceUpdated`, builds payloads from payload attributes (the attributes'
//! transactions, fee recipient, randao, gas limit and beacon root on top of the head), and can be
//! taken down and brought back with its chain kept.
//!
//! It behaves as op-reth 1.9.4 was seen to: `forkchoiceUpdated` with attributes on a head it does
//! not have answers `{"payloadStatus":{"status":"SYNCING"},"payloadId":null}`; a restart can lose
//! the newest blocks (op-reth keeps the newest blocks in memory, `--engine.persistence-threshold`,
//! so a SIGKILL loses them: [`FakeEngine::restart_losing`]); with [`FakeEngine::set_strict`], a
//! payload whose timestamp is not above its parent's is INVALID and attributes with such a
//! timestamp are refused (-38003);
//! `eth_chainId` and `eth_getBlockByNumber` by number are served on the authenticated port.

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
    /// hash → parent hash.
    parents: HashMap<B256, B256>,
    /// newPayload calls per block hash.
    new_payloads: HashMap<B256, u64>,
    /// Payloads made the head, in order.
    inserted: Vec<BlockRef>,
    head: Option<(BlockRef, u64)>,
    invalid_numbers: HashSet<u64>,
    built: HashMap<u64, (BlockVersion, ExecutionPayloadEnvelope)>,
    next_id: u64,
    calls: Vec<String>,
    rejected_auth: u64,
    down: bool,
    /// Requests (and new connections) dropped unanswered while down.
    refused: u64,
    /// Timestamps must rise from parent to child (op-reth's rule; the embedded producer's
    /// on-request blocks share a second, so the older tests leave it off).
    strict: bool,
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

    /// Requests dropped unanswered while the engine was down (each try of a client counts once;
    /// a connection that was idle when the engine went down counts once more).
    pub fn refused(&self) -> u64 {
        self.lock().refused
    }

    /// Refuses timestamps that do not rise from parent to child, as op-reth does.
    pub fn set_strict(&self) {
        self.lock().strict = true;
    }

    /// Restarts having lost its newest `n` blocks (as op-reth does after a SIGKILL with blocks
    /// not yet persisted): the head steps back `n` blocks and the blocks above it, and every
    /// payload being built, are forgotten.
    pub fn restart_losing(&self, n: u64) {
        let mut s = self.lock();
        let (mut head, _) = s.head.unwrap();
        for _ in 0..n {
            let Some(&parent) = s.parents.get(&head.hash) else {
                break;
            };
            s.blocks.remove(&head.hash);
            s.parents.remove(&head.hash);
            head = BlockRef {
                number: head.number - 1,
                hash: parent,
            };
        }
        let ts = s.blocks[&head.hash].1;
        s.head = Some((head, ts));
        s.built.clear();
    }

    /// How many times each block was sent with newPayload.
    pub fn new_payloads(&self) -> HashMap<B256, u64> {
        self.lock().new_payloads.clone()
    }

    /// The engine's block at `number` on its canonical chain, with its timestamp.
    pub fn canonical(&self, number: u64) -> Option<(BlockRef, u64)> {
        let s = self.lock();
        let (mut head, _) = s.head.unwrap();
        loop {
            let &(n, ts) = s.blocks.get(&head.hash)?;
            if n == number {
                return Some((head, ts));
            }
            if n < number {
                return None;
            }
            head = BlockRef {
                number: n - 1,
                hash: *s.parents.get(&head.hash)?,
            };
        }
    }

    async fn serve(self, mut socket: tokio::net::TcpStream, secret: JwtSecret) {
        let mut buf = Vec::new();
        loop {
            let (head_end, len) = loop {
                if self.lock().down {
                    self.lock().refused += 1;
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
                self.lock().refused += 1;
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
            *s.new_payloads.entry(p.block_hash).or_default() += 1;
            let Some(&(parent_number, parent_time)) = s.blocks.get(&p.parent_hash) else {
                return Ok(
                    json!({"status": "SYNCING", "latestValidHash": null, "validationError": null}),
                );
            };
            if s.strict && (p.timestamp <= parent_time || p.block_number != parent_number + 1) {
                return Ok(
                    json!({"status": "INVALID", "latestValidHash": p.parent_hash, "validationError": "timestamp or number does not follow the parent"}),
                );
            }
            s.blocks.insert(p.block_hash, (p.block_number, p.timestamp));
            s.parents.insert(p.block_hash, p.parent_hash);
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
                if s.strict && ts <= timestamp {
                    return Err((-38003, "Invalid payload attributes: timestamp".into()));
                }
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
            "eth_chainId" => Ok(json!(format!("0x{:x}", self.chain.chain_id))),
            "eth_getBlockByNumber" => {
                let s = self.lock();
                let (head, ts) = s.head.unwrap();
                let block = |hash: B256, (number, ts): (u64, u64)| json!({"number": format!("0x{number:x}"), "hash": hash, "timestamp": format!("0x{ts:x}")});
                match params.first().and_then(Value::as_str) {
                    Some("latest" | "safe" | "finalized") => {
                        Ok(block(head.hash, (head.number, ts)))
                    }
                    Some(tag) => {
                        let number = u64::from_str_radix(tag.trim_start_matches("0x"), 16)
                            .map_err(|_| bad("block number"))?;
                        // Walk the canonical chain back from the head.
                        let mut hash = head.hash;
                        loop {
                            let Some(&(n, t)) = s.blocks.get(&hash) else {
                                return Ok(Value::Null);
                            };
                            if n == number {
                                return Ok(block(hash, (n, t)));
                            }
                            match s.parents.get(&hash) {
                                Some(parent) if n > number => hash = *parent,
                                _ => return Ok(Value::Null),
                            }
                        }
                    }
                    None => Err(bad("block number")),
                }
            }
            _ => Err((-32601, format!("method {method} not found"))),
        }
    }
}
