#!/usr/bin/env bash
# Runs the validation benchmarks and prints validate vs floor per message size:
#  1. benches/validation_ratio.rs: paired, interleaved timing; its median paired ratio is the
#     figure the target is judged on (issue 2: valid_100KiB ≤ 1.25);
#  2. benches/validation.rs (criterion): absolute figures with confidence intervals.
#
#   scripts/bench-validation.sh [extra criterion args]
set -euo pipefail
cd "$(dirname "$0")/.."
echo "## Paired (judged figure)"
cargo bench --bench validation_ratio
echo
echo "## Criterion (absolute figures; the two columns are measured minutes apart)"
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
