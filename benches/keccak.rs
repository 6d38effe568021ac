//! keccak256 of 100 KiB messages (a block's payload and its transactions): alloy's assembly
//! keccak one message at a time against `wire::keccak::keccak256_all`, for two messages and for
//! one. On CPUs without AVX-512 both sides run alloy's keccak.
//!
//! Run: `cargo bench --bench keccak`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use op_gossip::wire::keccak::{Message, keccak256_all};

/// The benchmark propagation block's size.
const MESSAGE_BYTES: usize = 100 * 1024;

fn bench(c: &mut Criterion) {
    let a: Vec<u8> = (0..MESSAGE_BYTES).map(|i| (i * 7 + 3) as u8).collect();
    let b: Vec<u8> = (0..MESSAGE_BYTES).map(|i| (i * 13 + 5) as u8).collect();
    let mut group = c.benchmark_group("keccak256");
    group.throughput(Throughput::Bytes(2 * MESSAGE_BYTES as u64));
    group.bench_function("two_100KiB/alloy", |bench| {
        bench.iter(|| {
            (
                alloy_primitives::keccak256(std::hint::black_box(&a)),
                alloy_primitives::keccak256(std::hint::black_box(&b)),
            )
        })
    });
    group.bench_function("two_100KiB/batch", |bench| {
        bench.iter(|| keccak256_all([Message::new(std::hint::black_box(&a)), Message::new(&b)]))
    });
    group.throughput(Throughput::Bytes(MESSAGE_BYTES as u64));
    group.bench_function("one_100KiB/alloy", |bench| {
        bench.iter(|| alloy_primitives::keccak256(std::hint::black_box(&a)))
    });
    group.bench_function("one_100KiB/batch", |bench| {
        bench.iter(|| keccak256_all([Message::new(std::hint::black_box(&a))]))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
