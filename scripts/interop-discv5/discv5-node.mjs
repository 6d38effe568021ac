// A discv5 node from lodestar's implementation (@chainsafe/discv5) on 127.0.0.1, for interop
// checks against op-gossip. It announces an `opstack` entry for --chain-id, a TCP port where it
// counts connections (so a node that dials it as a chain peer is seen), runs a random lookup
// every second, and prints JSON lines: `enr` (its record, first), `discovered`, `added`, then
// `summary` (its table and the TCP connections it saw) after --seconds, and exits.
//
//   node discv5-node.mjs --chain-id 901 [--bootnode enr:...] [--seconds 20]
import dgram from "node:dgram";
import net from "node:net";
import { Discv5 } from "@chainsafe/discv5";
import { SignableENR } from "@chainsafe/enr";
import { generateKeyPair } from "@libp2p/crypto/keys";
import { multiaddr } from "@multiformats/multiaddr";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, a, i, all) => (a.startsWith("--") ? [...pairs, [a.slice(2), all[i + 1]]] : pairs), [])
);
const chainId = BigInt(args["chain-id"] ?? "901");
const seconds = Number(args.seconds ?? "20");
const print = (o) => process.stdout.write(JSON.stringify(o) + "\n");

// uvarint(chain id) ‖ uvarint(0): op-node's `opstack` entry (stored as an RLP byte string).
function opstack(id) {
  const out = [];
  let v = id;
  while (v >= 0x80n) {
    out.push(Number((v & 0x7fn) | 0x80n));
    v >>= 7n;
  }
  out.push(Number(v), 0);
  return Uint8Array.from(out);
}

// A free UDP port on loopback (the record must name the port before the socket opens).
const udpPort = await new Promise((resolve) => {
  const s = dgram.createSocket("udp4");
  s.bind(0, "127.0.0.1", () => {
    const p = s.address().port;
    s.close(() => resolve(p));
  });
});
let tcpConnections = 0;
const tcp = net.createServer((socket) => {
  tcpConnections += 1;
  socket.destroy();
});
await new Promise((resolve) => tcp.listen(0, "127.0.0.1", resolve));

const privateKey = await generateKeyPair("secp256k1");
const enr = SignableENR.createFromPrivateKey(privateKey);
enr.ip = "127.0.0.1";
enr.udp = udpPort;
enr.tcp = tcp.address().port;
enr.set("opstack", opstack(chainId));

const discv5 = Discv5.create({
  enr,
  privateKey,
  bindAddrs: { ip4: multiaddr(`/ip4/127.0.0.1/udp/${udpPort}`) },
  config: { enrUpdate: false },
});
const hex = (b) => (b ? Buffer.from(b).toString("hex") : null);
discv5.on("discovered", (e) => print({ event: "discovered", enr: e.encodeTxt(), nodeId: e.nodeId, opstack: hex(e.kvs.get("opstack")) }));
discv5.on("enrAdded", (e) => print({ event: "added", enr: e.encodeTxt(), nodeId: e.nodeId }));
await discv5.start();
print({ event: "enr", enr: discv5.enr.toENR().encodeTxt(), nodeId: discv5.enr.nodeId, udp: udpPort, tcp: tcp.address().port });
if (args.bootnode) discv5.addEnr(args.bootnode);

const lookups = setInterval(() => {
  discv5.findRandomNode().catch((e) => print({ event: "lookup_error", error: String(e) }));
}, 1000);
setTimeout(async () => {
  clearInterval(lookups);
  print({
    event: "summary",
    table: discv5.kadValues().map((e) => ({ nodeId: e.nodeId, enr: e.encodeTxt(), opstack: hex(e.kvs.get("opstack")) })),
    tcpConnections,
  });
  await discv5.stop();
  tcp.close();
  process.exit(0);
}, seconds * 1000);
