//! Waiting on a condition instead of sleeping: a test polls what it waits for (a counter, a
//! head, an RPC answer) until it holds or a deadline passes, so it goes on as soon as the event
//! happened and fails with its own message when it never does.

use std::time::Duration;

/// How often a condition is polled: short next to the events tests wait for (a gossip hop, an
/// RPC round trip, a timer of the node), long enough not to load the node under observation.
pub const POLL: Duration = Duration::from_millis(50);

/// Polls `done` every [`POLL`] until it returns `true` (then `true`) or `timeout` has passed
/// (then `false`, so the caller asserts with a message showing the state it waited on).
pub async fn wait_until(timeout: Duration, mut done: impl AsyncFnMut() -> bool) -> bool {
    wait_for(timeout, async || done().await.then_some(()))
        .await
        .is_some()
}

/// Polls `ready` every [`POLL`] until it returns a value (then that value) or `timeout` has
/// passed (then `None`).
pub async fn wait_for<T>(
    timeout: Duration,
    mut ready: impl AsyncFnMut() -> Option<T>,
) -> Option<T> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = ready().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(POLL).await;
    }
}
