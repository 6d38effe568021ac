#!/usr/bin/env bash
# Compression bombs against a node (release build): 6 peers publish 360 messages of 480 KiB that
# decompress to 10 MiB (tests/bomb_flood.rs). Targets: the admin RPC answers within 250 ms
# throughout, and the node's peak RSS stays within 64 MiB.
#
#   scripts/bench-bombs.sh [RUNS] [WELL_FORMED]     (default 3 runs; WELL_FORMED=1: every bomb
#                                                   carries a well-formed signature, so each
#                                                   costs the full payload hash)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
well_formed="${2:-0}"
missed=0
for i in $(seq "$runs"); do
    line=$(BOMB_FLOOD_WELL_FORMED=$well_formed BOMB_FLOOD_PER_ATTACKER=60 BOMB_FLOOD_DECLARED_MIB=10 cargo test --release --locked --test bomb_flood -- --nocapture 2>&1 | grep '^bombs:' || true)
    [ -n "$line" ] || { echo "run $i: no figures (test failed?)"; exit 1; }
    echo "run $i: $line"
    rpc=$(sed -E 's/.*slowest_rpc_ms ([0-9]+).*/\1/' <<<"$line")
    rss=$(sed -E 's/.*peak_rss_mib ([0-9.]+).*/\1/' <<<"$line")
    awk -v r="$rpc" -v m="$rss" 'BEGIN { exit !(r <= 250 && m <= 64) }' || missed=1
done
if [ "$missed" = 0 ]; then echo "targets met"; else echo "targets missed (admin RPC ≤ 250 ms, peak RSS ≤ 64 MiB)"; fi
