// Interop check, all on 127.0.0.1: op-gossip's discv5 (sigp's Rust implementation) against
// lodestar's (@chainsafe/discv5).
//
//   A  op-gossip node (chain 901), no bootnodes
//   J  js discv5 node (opstack 901), bootnode = A's ENR        → J finds A; A finds J and dials it
//   B  op-gossip node, bootnode = J's ENR only                 → B finds J, and A through J
//
// Usage: npm ci && node run.mjs [path/to/op-gossip]   (default: ../../target/debug/op-gossip)
// Prints each check and exits non-zero if one fails. Nothing leaves the machine.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import readline from "node:readline";

const bin = process.argv[2] ?? new URL("../../target/debug/op-gossip", import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), "op-gossip-interop-"));
const children = [];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function opGossip(name, extra) {
  const args = ["node", "--chain", "devnet", "--datadir", join(work, name), "--p2p.listen.ip", "127.0.0.1",
    "--p2p.listen.tcp", "0", "--rpc.addr", "127.0.0.1", "--rpc.port", "0", "--p2p.discovery.path", "memory", ...extra];
  const child = spawn(bin, args, { env: { ...process.env, RUST_LOG: "info" }, stdio: ["ignore", "ignore", "pipe"] });
  children.push(child);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: no RPC address`)), 30000);
    readline.createInterface({ input: child.stderr }).on("line", (line) => {
      const m = line.match(/admin RPC listening addr=(\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ name, rpc: `http://${m[1]}` });
      }
    });
  });
}

async function rpc(node, method, params = []) {
  const res = await fetch(node.rpc, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
  });
  const body = await res.json();
  if (body.error) throw new Error(`${node.name} ${method}: ${JSON.stringify(body.error)}`);
  return body.result;
}

function jsNode(bootnode, seconds) {
  const child = spawn("node", [new URL("discv5-node.mjs", import.meta.url).pathname, "--chain-id", "901",
    "--bootnode", bootnode, "--seconds", String(seconds)], { stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  const lines = [];
  let onEnr;
  const enr = new Promise((r) => (onEnr = r));
  const done = new Promise((r) => child.on("exit", r));
  readline.createInterface({ input: child.stdout }).on("line", (line) => {
    const event = JSON.parse(line);
    lines.push(event);
    if (event.event === "enr") onEnr(event);
  });
  return { enr, lines, done };
}

const checks = [];
const check = (what, ok, detail) => {
  checks.push(ok);
  console.log(`${ok ? "PASS" : "FAIL"}  ${what}${detail ? `  (${detail})` : ""}`);
};

try {
  const a = await opGossip("a", []);
  const aSelf = await rpc(a, "opp2p_self");
  console.log(`A (op-gossip)  nodeID ${aSelf.nodeID}  chainID ${aSelf.chainID}\n   ${aSelf.ENR}`);
  const js = jsNode(aSelf.ENR, 25);
  const jEnr = await js.enr;
  console.log(`J (js discv5)  nodeID ${jEnr.nodeId}\n   ${jEnr.enr}`);
  const b = await opGossip("b", ["--p2p.bootnodes", jEnr.enr]);
  const bSelf = await rpc(b, "opp2p_self");
  console.log(`B (op-gossip)  nodeID ${bSelf.nodeID}, bootnode: J only\n   ${bSelf.ENR}`);
  await sleep(15000);
  const aTable = await rpc(a, "opp2p_discoveryTable");
  const bTable = await rpc(b, "opp2p_discoveryTable");
  const bPeers = await rpc(b, "opp2p_peers", [true]);
  await js.done;
  const summary = js.lines.find((l) => l.event === "summary");
  const jsKnows = new Set([...summary.table.map((e) => e.nodeId), ...js.lines.filter((l) => l.nodeId).map((l) => l.nodeId)]);
  console.log(`\nA's table: ${aTable.length} records; B's table: ${bTable.length}; J's table: ${summary.table.length}`);
  check("J (js) found A (op-gossip), its bootnode", summary.table.some((e) => e.nodeId === aSelf.nodeID));
  check("J (js) found B (op-gossip), which only knew J", jsKnows.has(bSelf.nodeID));
  check("J (js) read A's opstack entry as chain 901 v0", summary.table.some((e) => e.nodeId === aSelf.nodeID && e.opstack === "850700"), "raw 0x850700");
  check("A (op-gossip) found J (js) in its table", aTable.includes(jEnr.enr));
  check("B (op-gossip) found J (js), its only bootnode", bTable.includes(jEnr.enr));
  check("B (op-gossip) found A through J's table", bTable.includes(aSelf.ENR));
  check("B connected to A over libp2p (found only through the js node)", Object.keys(bPeers.peers).includes(aSelf.peerID));
  const peerInfo = bPeers.peers[aSelf.peerID];
  check("B's peer book holds A's ENR and chain id", peerInfo?.ENR === aSelf.ENR && peerInfo?.chainID === 901, peerInfo ? `chainID ${peerInfo.chainID}` : "");
  check("op-gossip dialled J's TCP port (J's record is of chain 901)", summary.tcpConnections > 0, `${summary.tcpConnections} connections`);
} catch (e) {
  console.log(`FAIL  ${e.message}`);
  checks.push(false);
} finally {
  for (const c of children) c.kill("SIGTERM");
  await sleep(500);
  rmSync(work, { recursive: true, force: true });
}
const failed = checks.filter((ok) => !ok).length;
console.log(`\n${checks.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
