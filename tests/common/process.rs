//! `op-gossip node` as a child process on 127.0.0.1: its stderr read line by line, the addresses
//! it logs (p2p listen address with peer id, admin RPC), and its memory as the kernel counts it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a log line may take to appear.
const WAIT: Duration = Duration::from_secs(30);

/// A running node process; killed when dropped.
pub struct NodeProcess {
    pub child: Child,
    lines: mpsc::Receiver<String>,
}

impl NodeProcess {
    /// Starts `op-gossip node` with `args` (after `node`), logging at `info`, listening on
    /// 127.0.0.1 on a free port.
    pub fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_op-gossip"))
            .arg("node")
            .args(args)
            .args(["--p2p.listen.ip", "127.0.0.1", "--p2p.listen.tcp", "0"])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Bounded: the reader waits once the test is 4096 lines behind.
        let (tx, lines) = mpsc::sync_channel(4096);
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self { child, lines }
    }

    /// A devnet node with its store in `datadir` and the admin RPC on a free loopback port;
    /// returns it with its p2p address and RPC address.
    pub fn devnet_with_rpc(datadir: &std::path::Path) -> (Self, libp2p::Multiaddr, SocketAddr) {
        let datadir = datadir.to_str().unwrap();
        let node = Self::start(&[
            "--chain",
            "devnet",
            "--datadir",
            datadir,
            "--rpc.addr",
            "127.0.0.1",
            "--rpc.port",
            "0",
        ]);
        let (p2p, rpc) = node.addresses(true);
        (node, p2p, rpc.unwrap())
    }

    /// The next line before `deadline`, if any.
    pub fn next_line(&self, deadline: Instant) -> Option<String> {
        self.lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .ok()
    }

    /// Skips lines until one contains `needle`; returns it.
    pub fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let line = self
                .next_line(deadline)
                .unwrap_or_else(|| panic!("no log line with {needle:?}"));
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// The p2p address with `/p2p/<peer id>` and, when `rpc` is true, the admin RPC address,
    /// from their start-up lines (in whichever order they come; call once, early).
    pub fn addresses(&self, rpc: bool) -> (libp2p::Multiaddr, Option<SocketAddr>) {
        let deadline = Instant::now() + WAIT;
        let (mut p2p, mut rpc_addr) = (None, None);
        while p2p.is_none() || (rpc && rpc_addr.is_none()) {
            let line = self
                .next_line(deadline)
                .unwrap_or_else(|| panic!("no listening lines (p2p {p2p:?}, rpc {rpc_addr:?})"));
            if let Some(rest) = line.split("listening address=").nth(1) {
                let (addr, peer) = rest.split_once(" peer_id=").unwrap();
                p2p = Some(format!("{addr}/p2p/{}", peer.trim()).parse().unwrap());
            } else if line.contains("admin RPC listening") {
                let addr = line.split("addr=").nth(1).unwrap();
                rpc_addr = Some(addr.split_whitespace().next().unwrap().parse().unwrap());
            }
        }
        (p2p.unwrap(), rpc_addr)
    }

    /// Peak resident memory (`VmHWM`) in bytes.
    pub fn peak_rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kib * 1024
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
