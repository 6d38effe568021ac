#!/usr/bin/env bash
# Where the node's memory goes under the compression-bomb flood: runs a release node under
# heaptrack, points tests/bomb_flood.rs at it (BOMB_FLOOD_NODE) with the measurement's settings
# (6 peers × 60 bombs of 480 KiB declaring 10 MiB), stops the node and prints the peak heap's
# largest consumers. Needs heaptrack (`apt install heaptrack`). The figures the targets are
# judged by come from scripts/bench-bombs.sh, without heaptrack's overhead.
#
#   scripts/profile-bombs.sh [WELL_FORMED]      (1: every bomb's signature is well formed)
set -euo pipefail
cd "$(dirname "$0")/.."
well_formed="${1:-1}"
command -v heaptrack >/dev/null || { echo "heaptrack is not installed"; exit 1; }
cargo build --release --locked --quiet
test_bin=$(cargo test --release --locked --test bomb_flood --no-run --message-format=json 2>/dev/null \
    | sed -n 's/.*"executable":"\([^"]*bomb_flood[^"]*\)".*/\1/p' | tail -1)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
RUST_LOG=info heaptrack -o "$work/heap" target/release/op-gossip node --chain devnet \
    --datadir "$work/data" --rpc.addr 127.0.0.1 --rpc.port 0 \
    --p2p.listen.ip 127.0.0.1 --p2p.listen.tcp 0 >"$work/heaptrack.log" 2>"$work/node.log" &
for _ in $(seq 100); do
    grep -q "admin RPC listening" "$work/node.log" 2>/dev/null && grep -q "listening address=" "$work/node.log" && break
    sleep 0.3
done
p2p=$(grep -a "listening address=" "$work/node.log" | head -1 | sed -E 's/.*listening address=([^ ]+) peer_id=([^ ]+).*/\1\/p2p\/\2/')
rpc=$(grep -a "admin RPC listening" "$work/node.log" | head -1 | sed -E 's/.*addr=([^ ]+).*/\1/')
BOMB_FLOOD_NODE="$p2p,$rpc" BOMB_FLOOD_WELL_FORMED=$well_formed BOMB_FLOOD_PER_ATTACKER=60 \
    BOMB_FLOOD_DECLARED_MIB=10 "$test_bin" --nocapture 2>&1 | grep -a '^bombs:' || true
node=$(pgrep -f -- "--datadir $work/data" | while read -r pid; do
    [ "$(cat /proc/"$pid"/comm)" = op-gossip ] && echo "$pid"; done | head -1)
grep VmHWM "/proc/$node/status"
kill -INT "$node"
while kill -0 "$node" 2>/dev/null; do sleep 0.2; done
sleep 2
heaptrack_print -f "$work/heap.zst" --print-peaks 1 --print-allocators 0 --print-temporary 0 \
    --print-leaks 0 --peak-limit 6 --sub-peak-limit 5 2>/dev/null >"$work/peaks.txt"
# Each consumer with the first frames that are not allocator or runtime plumbing.
awk '/consumed over/ { print; n = 0; next }
     /^ *at / { if (n < 4 && $0 !~ /rustc|raw_vec|alloc.rs|futures-|tokio-|poll_fn|instrument|prost|bytes-1|bytes_mut|alloy-primitives|asynchronous-codec/) { print "      " $0; n++ } }' \
    "$work/peaks.txt"
grep "peak heap\|peak RSS" "$work/peaks.txt"
