//! Log lines that a remote party can cause, summarised: at most one line per interval from each
//! place that logs, carrying how many events it stands for. A peer that triggers the same error a
//! thousand times a second then costs one line per interval, not a thousand, at any log level.
//!
//! Two tools: [`LogEvery`], one `static` per place in our code where an event is caused by a
//! request or message from outside (the req/resp server's store errors), which summarises in the
//! line it writes; and [`callsite::CallsiteLimit`], a tracing layer that caps every WARN and
//! ERROR and every line of the networking crates per call site, for the places we do not own.

pub mod callsite;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One place's allowance: a line at most every `interval`.
#[derive(Debug)]
pub struct LogEvery {
    interval_ms: u64,
    /// Milliseconds since [`epoch`] before which no line is written.
    next_ms: AtomicU64,
    /// Events since the last line.
    pending: AtomicU64,
}

/// The process's monotonic reference point.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl LogEvery {
    /// An allowance of one line per `interval`.
    pub const fn new(interval: Duration) -> Self {
        Self {
            interval_ms: interval.as_millis() as u64,
            next_ms: AtomicU64::new(0),
            pending: AtomicU64::new(0),
        }
    }

    /// Counts an event. Returns `Some(n)` when a line may be written now, `n` being the events it
    /// stands for (this one and those not logged since the last line); `None` otherwise.
    pub fn event(&self) -> Option<u64> {
        self.pending.fetch_add(1, Ordering::Relaxed);
        let now = u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX);
        let next = self.next_ms.load(Ordering::Relaxed);
        if now < next {
            return None;
        }
        // One thread wins the slot; the others count and wait for the next interval.
        self.next_ms
            .compare_exchange(
                next,
                now.saturating_add(self.interval_ms),
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .ok()?;
        Some(self.pending.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_carries_the_count() {
        let every = LogEvery::new(Duration::from_secs(3600));
        assert_eq!(every.event(), Some(1));
        for _ in 0..999 {
            assert_eq!(every.event(), None);
        }
        // Next interval (forced): the line stands for the 999 not logged plus this one.
        every.next_ms.store(0, Ordering::Relaxed);
        assert_eq!(every.event(), Some(1000));
    }
}
