#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a given time each, one after the other, and prints
# executions, coverage and findings per target.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default 600 s, all targets)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). cargo-fuzz uses nightly-only compiler flags;
# RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them. Crashes land in fuzz/artifacts/<target>/
# and must become regression tests (tests/adversarial.rs).
#
# Each target starts from its seed corpus, fuzz/seeds/<target>/ (valid messages and payloads of
# every layout, written by tests/fuzz_seeds.rs), read as a second corpus directory; what the
# fuzzer finds goes to fuzz/corpus/<target>/ (not committed), so the seeds stay as generated.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-600}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi
export RUSTC_BOOTSTRAP=1
mkdir -p logs
for t in "${targets[@]}"; do
    echo "== $t: ${secs}s"
    # -rss_limit_mb: libFuzzer's default 2 GiB; -malloc_limit_mb catches any single allocation
    # above 64 MiB, far over the 10 MiB bound (plus its 4 MiB transaction index) the decoders keep.
    mkdir -p "corpus/$t"
    if [ ! -d "seeds/$t" ]; then
        echo "   no seeds in fuzz/seeds/$t (OP_GOSSIP_WRITE_FUZZ_SEEDS=1 cargo test --test fuzz_seeds)"
        exit 1
    fi
    if cargo fuzz run "$t" "corpus/$t" "seeds/$t" -- -max_total_time="$secs" -malloc_limit_mb=64 -print_final_stats=1 \
        >"logs/$t.log" 2>&1; then
        status="no findings"
    else
        status="FINDING (see fuzz/logs/$t.log and fuzz/artifacts/$t/)"
    fi
    # After a finding libFuzzer prints no final stats: the last status line stands in.
    log="logs/$t.log"
    execs=$( (grep -E '^stat::number_of_executed_units' "$log" || true) | awk '{print $2}' | tail -1)
    last=$( (grep -E '^#[0-9]+.*cov: ' "$log" || true) | tail -1)
    [ -n "$execs" ] || execs=$(sed -E 's/^#([0-9]+).*/\1/' <<<"$last")
    cov=$(sed -E 's/.*cov: ([0-9]+).*/\1/' <<<"$last")
    # Coverage once the corpus (seeds plus earlier finds) was loaded, and at the end.
    start=$( (grep -E '^#[0-9]+.*INITED' "$log" || true) | tail -1 | sed -E 's/.*cov: ([0-9]+).*/\1/')
    echo "   executions: ${execs:-?}  coverage: ${start:-?} -> ${cov:-?}  result: $status"
done
