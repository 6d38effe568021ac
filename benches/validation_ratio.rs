//! Paired measurement of validation against its floor: the two are timed alternately, round by
//! round (order swapped every round), and the median per-round ratio is reported. Machines here
//! drift by ±20% over a criterion run, which swamps a 1.25× target when the two sides are measured
//! minutes apart; pairing cancels the drift. `benches/validation.rs` gives the absolute figures.
//!
//! Run: `cargo bench --bench validation_ratio` (or `scripts/bench-validation.sh`).

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use op_gossip::validate::{BlockValidator, ValidatorConfig};
use op_gossip::wire::BlockVersion;

/// Rounds per case: enough for a stable median at each size within about a minute in total.
fn rounds(case: &common::Case) -> usize {
    match case.decompressed_len {
        n if n > 4 * 1024 * common::KIB => 15,
        n if n > 512 * common::KIB => 60,
        _ => 300,
    }
}

fn main() {
    // `cargo test --benches` runs bench binaries without `--bench`; do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let chain = common::chain();
    println!(
        "| message | decompressed | validate median (µs) | floor median (µs) | median paired ratio | rounds |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for case in common::cases(&chain) {
        let validate = || {
            let v = BlockValidator::new(chain.clone(), ValidatorConfig::default());
            let start = Instant::now();
            let ok = v
                .validate(BlockVersion::V4, black_box(&case.message), common::NOW)
                .is_ok();
            let took = start.elapsed();
            assert_eq!(ok, case.valid, "{}", case.name);
            took
        };
        let floor = || {
            let start = Instant::now();
            black_box(common::floor(&case));
            start.elapsed()
        };
        let rounds = rounds(&case);
        for _ in 0..(rounds / 10).max(3) {
            validate();
            floor();
        }
        let (mut v_times, mut f_times, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let (v, f) = if round % 2 == 0 {
                let v = validate();
                (v, floor())
            } else {
                let f = floor();
                (validate(), f)
            };
            ratios.push(v.as_secs_f64() / f.as_secs_f64());
            v_times.push(v);
            f_times.push(f);
        }
        let median_us = |xs: &mut Vec<Duration>| {
            xs.sort();
            xs[xs.len() / 2].as_secs_f64() * 1e6
        };
        ratios.sort_by(f64::total_cmp);
        println!(
            "| {} | {} B | {:.1} | {:.1} | {:.3} | {rounds} |",
            case.name,
            case.decompressed_len,
            median_us(&mut v_times),
            median_us(&mut f_times),
            ratios[ratios.len() / 2]
        );
    }
}
