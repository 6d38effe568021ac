#!/usr/bin/env bash
# Catch-up benchmark (issue 4): a follower that joins 1,000 blocks late fills the gap with
# payload_by_number from its 5 peers (1 sequencer + 4 followers, full topology), under the
# default client limits: global 20/s burst 40, per peer 4/s burst 15.
# Bound: min(20, 5 × 4) = 20 blocks/s sustained; the first min(40, 5 × 15) = 40 requests go at
# once, so 1,000 blocks take at least (1000 − 40) / 20 = 48 s, i.e. 20.8 blocks/s on average.
# Target: the achieved rate (blocks fetched / time from the first request to the last block
# stored) is ≥ 90% of that bound.
#
#   scripts/bench-catchup.sh [REPORT_FILE] [extra devnet flags]
set -euo pipefail
cd "$(dirname "$0")/.."
report="${1:-target/catchup-report.json}"
shift || true
cargo build --release --quiet
RUST_LOG="${RUST_LOG:-warn}" target/release/op-gossip devnet \
    --nodes 6 --topology full --blocks 1010 --block-time 10ms --block-size 1KiB \
    --late-joiner 1000 --report "$report" "$@"
python3 - "$report" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
late = r["per_node"][-1]
s = late["sync"]
print(f"late joiner: fetched {s['fetched']} blocks from {s['peers']} peers, all blocks stored: {late['has_all_blocks']}")
print(f"achieved {s['fetch_rate_per_sec']:.2f} blocks/s; bound {s['rate_bound_with_burst_per_sec']:.2f} blocks/s "
      f"({s['rate_bound_per_sec']:.0f}/s sustained + burst) -> {100 * s['fraction_of_bound']:.1f}% of the bound")
print(f"catch-up time (joined -> head past the gap): {s['catch_up_secs']:.1f} s; errors {s['errors']}, not found {s['not_found']}, rejected {s['rejected']}")
ok = late["has_all_blocks"] and s["fetched"] >= 1000 and s["fraction_of_bound"] >= 0.9
print("target met" if ok else "TARGET MISSED")
sys.exit(0 if ok else 1)
PY
