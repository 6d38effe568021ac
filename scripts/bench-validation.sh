#!/usr/bin/env bash
# Runs the validation benchmark (benches/validation.rs) and prints validate vs floor per message
# size, with the ratio. Issue 2's target: valid_100KiB ratio ≤ 1.25.
#
#   scripts/bench-validation.sh [extra criterion args]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --bench validation -- "$@" >&2
python3 - <<'PY'
import json, os
base = "target/criterion/validation"
def mean_us(kind, case):
    with open(os.path.join(base, kind, case, "new", "estimates.json")) as f:
        return json.load(f)["mean"]["point_estimate"] / 1000.0
cases = ["valid_1KiB", "valid_100KiB", "valid_1MiB", "valid_10MiB", "invalid_sig_100KiB"]
print("| message | validate (µs) | floor (µs) | ratio |")
print("|---|---:|---:|---:|")
for c in cases:
    v, f = mean_us("validate", c), mean_us("floor", c)
    print(f"| {c} | {v:,.1f} | {f:,.1f} | {v / f:.3f} |")
PY
