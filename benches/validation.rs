//! Gossip validation cost next to its floor (criterion, absolute figures), for V4 messages of
//! 1 KiB, 100 KiB, 1 MiB, 10 MiB and a 100 KiB message signed by the wrong key.
//!
//! The floor is the work no validator can skip for the same bytes (see `common::floor`).
//! The target (issue 2: valid 100 KiB ≤ 1.25× its floor) is judged on the paired figure of
//! `benches/validation_ratio.rs`; run both with `scripts/bench-validation.sh`.

mod common;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use op_gossip::validate::{BlockValidator, ValidatorConfig};
use op_gossip::wire::BlockVersion;

/// Above this size criterion takes 10 samples instead of 30 (a 10 MiB validation is ~0.1 s).
const LARGE_MESSAGE_BYTES: usize = 1024 * common::KIB;

fn bench(c: &mut Criterion) {
    let chain = common::chain();
    let mut group = c.benchmark_group("validation");
    for case in common::cases(&chain) {
        // Sanity: the validator's verdict is the one the case is named for.
        let v = BlockValidator::new(chain.clone(), ValidatorConfig::default());
        assert_eq!(
            v.validate(BlockVersion::V4, &case.message, common::NOW)
                .is_ok(),
            case.valid,
            "{}",
            case.name
        );

        group.throughput(Throughput::Bytes(case.decompressed_len as u64));
        group.sample_size(if case.decompressed_len > LARGE_MESSAGE_BYTES {
            10
        } else {
            30
        });
        group.bench_with_input(
            BenchmarkId::new("validate", case.name),
            &case.message,
            |b, msg| {
                b.iter_batched(
                    || BlockValidator::new(chain.clone(), ValidatorConfig::default()),
                    |v| v.validate(BlockVersion::V4, msg, common::NOW).is_ok(),
                    BatchSize::SmallInput,
                )
            },
        );
        group.bench_with_input(BenchmarkId::new("floor", case.name), &case, |b, case| {
            b.iter(|| common::floor(case))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
