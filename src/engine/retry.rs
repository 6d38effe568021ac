//! Backoff and quiet logs for calls to the engine that fail: the sequencer's builds, the insertion
//! driver's head reads and the start-up wait all retry through a [`Retry`], which doubles the
//! pause from [`RetryConfig::min`] up to [`RetryConfig::max`] and tells its caller when to log:
//! once when a kind of failure begins (with how many failures of the previous kind came before),
//! and once when calls succeed again (with the count). Sans-IO: the caller sleeps and logs.
//!
//! Without it, a failure whose slot had already passed was retried at once: about 6,000 errors in
//! 11 s against an engine that was down (issue 21).

use std::time::Duration;

/// First pause after a failure (op-node's engine client retries after 250 ms too; the follower's
/// insertion driver has always used this value).
pub const MIN_BACKOFF: Duration = Duration::from_millis(250);
/// Longest pause: an engine that is down is still tried every 10 s, so a restarted engine is
/// noticed within one block time of a slow chain and within five of a 2 s chain.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// The pauses between retries (`--l2` callers use the defaults; tests shorten them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryConfig {
    /// The pause after the first failure.
    pub min: Duration,
    /// The longest pause.
    pub max: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            min: MIN_BACKOFF,
            max: MAX_BACKOFF,
        }
    }
}

/// What the caller should log after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Same kind of failure as the last one: nothing to log.
    Same,
    /// A new kind of failure began. `previous`: the kind that ended and how many times it failed.
    Began {
        /// The previous failing state and its count, if calls were already failing.
        previous: Option<(&'static str, u64)>,
    },
}

/// One retrying caller's state: the next pause and the failing state.
#[derive(Debug, Clone)]
pub struct Retry {
    config: RetryConfig,
    delay: Duration,
    /// The kind of failure being repeated and how many times it happened.
    failing: Option<(&'static str, u64)>,
    total: u64,
}

impl Retry {
    /// A caller that has not failed yet.
    pub fn new(config: RetryConfig) -> Self {
        Self {
            delay: config.min,
            config,
            failing: None,
            total: 0,
        }
    }

    /// Records a failure of `kind` (a short fixed name, e.g. `"unreachable"`): returns how long
    /// to wait before the next try and whether a log line is due.
    pub fn failed(&mut self, kind: &'static str) -> (Duration, Change) {
        self.total = self.total.saturating_add(1);
        let change = match &mut self.failing {
            Some((current, count)) if *current == kind => {
                *count = count.saturating_add(1);
                Change::Same
            }
            previous => {
                let before = previous.replace((kind, 1));
                Change::Began { previous: before }
            }
        };
        let delay = self.delay;
        self.delay = (self.delay * 2).min(self.config.max).max(self.config.min);
        (delay, change)
    }

    /// Records a success: the pause starts again from the minimum. Returns the failing state
    /// that ended (kind and count), so the caller logs the recovery once.
    pub fn succeeded(&mut self) -> Option<(&'static str, u64)> {
        self.delay = self.config.min;
        self.failing.take()
    }

    /// Whether the last call failed.
    pub fn is_failing(&self) -> bool {
        self.failing.is_some()
    }

    /// Failures since this caller was created.
    pub fn total_failures(&self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_cap_and_restart_after_a_success() {
        let mut retry = Retry::new(RetryConfig::default());
        let delays: Vec<u64> = (0..8)
            .map(|_| retry.failed("unreachable").0.as_millis() as u64)
            .collect();
        assert_eq!(
            delays,
            [250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000],
            "250 ms doubling up to 10 s"
        );
        assert_eq!(retry.succeeded(), Some(("unreachable", 8)));
        assert_eq!(retry.failed("unreachable").0, MIN_BACKOFF);
        assert_eq!(retry.total_failures(), 9);
    }

    #[test]
    fn one_log_line_per_change_of_state() {
        let mut retry = Retry::new(RetryConfig {
            min: Duration::from_millis(1),
            max: Duration::from_millis(4),
        });
        assert_eq!(
            retry.failed("unreachable").1,
            Change::Began { previous: None }
        );
        for _ in 0..99 {
            assert_eq!(retry.failed("unreachable").1, Change::Same);
        }
        assert_eq!(
            retry.failed("syncing").1,
            Change::Began {
                previous: Some(("unreachable", 100))
            }
        );
        assert_eq!(retry.failed("syncing").1, Change::Same);
        assert!(retry.is_failing());
        assert_eq!(retry.succeeded(), Some(("syncing", 2)));
        assert!(!retry.is_failing());
        assert_eq!(retry.succeeded(), None, "a second success logs nothing");
    }
}
