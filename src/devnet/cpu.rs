//! CPU accounting for the devnet report: how much CPU the node processes used while the blocks
//! were produced, and how much the hypervisor took from this machine meanwhile (`steal`).
//!
//! The scenario ([`super::scenario`]) samples before it asks for the first block and again when
//! collection ends; [`CpuReport`] goes into the report next to the latencies. Latency on a
//! shared machine moves with the host's load, while CPU per block is a property of the code:
//! the pair tells a regression from a busy host. Read from Linux `/proc`; elsewhere the report
//! has no `cpu` section.

use serde::Serialize;

/// CPU counters at one moment, in clock ticks.
#[derive(Debug, Clone, Default)]
pub struct CpuSample {
    /// user + system ticks of each node process (`None`: not running or not readable).
    pub nodes: Vec<Option<u64>>,
    /// The host's `steal` ticks (all CPUs), when readable.
    pub steal: Option<u64>,
}

/// What the report says about CPU.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CpuReport {
    /// CPU time (user + system) of all node processes between the first block request and the
    /// end of collection, in seconds.
    pub node_cpu_secs: f64,
    /// `node_cpu_secs` per published block, in milliseconds.
    pub node_cpu_ms_per_block: f64,
    /// Logical cores the nodes shared.
    pub cores: usize,
    /// CPU time the hypervisor gave elsewhere over the same window, in seconds (summed over the
    /// cores). Latency figures taken with seconds of steal describe the host more than the node.
    pub host_steal_secs: f64,
}

/// Samples the processes `pids` (in node order) and the host.
pub fn sample(pids: &[Option<u32>]) -> CpuSample {
    CpuSample {
        nodes: pids
            .iter()
            .map(|pid| {
                pid.and_then(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok())
                    .and_then(|s| process_ticks(&s))
            })
            .collect(),
        steal: std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| steal_ticks(&s)),
    }
}

/// The report for the window `start..end`, over `published` blocks; `None` when the counters
/// or the tick rate cannot be read (not Linux). A node missing from `start` (a late joiner
/// started inside the window) counts from zero; one missing from `end` counts nothing.
pub fn report(start: &CpuSample, end: &CpuSample, published: u64) -> Option<CpuReport> {
    let per_sec = ticks_per_second()?;
    let steal = end.steal?.saturating_sub(start.steal?);
    if end.nodes.iter().all(Option::is_none) {
        return None;
    }
    let node_ticks: u64 = end
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(i, after)| {
            let before = start.nodes.get(i).copied().flatten().unwrap_or(0);
            after.map(|after| after.saturating_sub(before))
        })
        .sum();
    let node_cpu_secs = node_ticks as f64 / per_sec as f64;
    Some(CpuReport {
        node_cpu_secs,
        node_cpu_ms_per_block: if published == 0 {
            0.0
        } else {
            1000.0 * node_cpu_secs / published as f64
        },
        cores: cores(),
        host_steal_secs: steal as f64 / per_sec as f64,
    })
}

/// Logical cores of this machine, which all the devnet's nodes share (1 when unknown).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// utime + stime from a `/proc/<pid>/stat` line. The command name (field 2) is in parentheses
/// and may itself hold spaces or parentheses, so the fields are counted after the last `)`:
/// there field 3 (state) comes first and utime, stime (fields 14, 15) are the 12th and 13th.
fn process_ticks(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// `steal` from `/proc/stat`'s aggregate line: `cpu user nice system idle iowait irq softirq
/// steal …`, the 8th number.
fn steal_ticks(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    line.split_whitespace().nth(8)?.parse().ok()
}

/// The kernel's clock tick rate for `/proc` counters (`_SC_CLK_TCK`, 100 on common kernels).
fn ticks_per_second() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: sysconf takes an integer name and touches no memory of ours.
        let rate = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        u64::try_from(rate).ok().filter(|r| *r > 0)
    }
    #[cfg(not(target_os = "linux"))]
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_ticks_count_fields_after_the_last_parenthesis() {
        // A command name with a space and a parenthesis must not shift the fields.
        let stat = "4242 (op (gossip) x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 \
                    150 37 0 0 20 0 5 0 100 200000000 9000 18446744073709551615";
        assert_eq!(process_ticks(stat), Some(187));
        assert_eq!(process_ticks("4242 (truncated) S 1 2"), None);
        assert_eq!(process_ticks("no parenthesis"), None);
    }

    #[test]
    fn steal_is_the_eighth_number_of_the_aggregate_line() {
        let stat = "cpu  100 2 30 4000 5 0 6 77 0 0\ncpu0 50 1 15 2000 2 0 3 40 0 0\n";
        assert_eq!(steal_ticks(stat), Some(77));
        assert_eq!(steal_ticks("cpu0 1 2 3\n"), None);
    }

    #[test]
    fn the_window_counts_late_starters_from_zero_and_ignores_the_unreadable() {
        let Some(per_sec) = ticks_per_second() else {
            return; // not Linux: no report, nothing to check
        };
        let start = CpuSample {
            nodes: vec![Some(1_000), None, Some(50)],
            steal: Some(10),
        };
        let end = CpuSample {
            nodes: vec![Some(1_000 + per_sec), Some(per_sec), None],
            steal: Some(10 + per_sec / 2),
        };
        let r = report(&start, &end, 4).expect("linux counters");
        assert!((r.node_cpu_secs - 2.0).abs() < 1e-9, "{r:?}");
        assert!((r.node_cpu_ms_per_block - 500.0).abs() < 1e-9, "{r:?}");
        assert!((r.host_steal_secs - 0.5).abs() < 0.02, "{r:?}");
        assert!(r.cores >= 1);
        // Nothing readable at the end: no report rather than a zero.
        let blank = CpuSample {
            nodes: vec![None, None, None],
            steal: Some(10),
        };
        assert_eq!(report(&start, &blank, 4), None);
    }

    #[test]
    fn this_process_can_be_sampled_on_linux() {
        if ticks_per_second().is_none() {
            return;
        }
        let now = sample(&[Some(std::process::id()), None]);
        assert!(now.nodes[0].is_some());
        assert_eq!(now.nodes[1], None);
        assert!(now.steal.is_some());
    }
}
