//! The wall clock, read in one place. Everything below the CLI and the node's tasks takes time as
//! an argument (`now`), so tests drive it; these helpers are where a running node gets it.
//! A clock before 1970 reads as 0.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in unix seconds (the validator's `now`, block timestamps).
pub fn unix_now() -> u64 {
    unix_secs(SystemTime::now())
}

/// `at` in unix seconds.
pub fn unix_secs(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `at` in unix milliseconds (event times in devnet reports).
pub fn unix_millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
