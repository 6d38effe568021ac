//! The engine's head, owned by one task: the insertion driver ([`super::driver`]) is the only one
//! that reads the head from the engine, inserts blocks and so moves it; it publishes what it
//! knows here. A sequencer's producer only reads it, builds on it, and asks the driver to read the
//! engine again when a build shows the head is not what the driver believed (SYNCING with no
//! payload id, an unknown payload, an unreachable engine that came back).
//!
//! ```text
//!  producer ──request_resync()──► driver ──eth_getBlockByNumber / newPayload+fcU──► engine
//!     ▲                             │
//!     └──────── HeadState (watch) ◄─┘
//! ```

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::store::BlockRef;

/// What the driver knows of the engine's head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeadState {
    /// The head (`None` until the engine was first read).
    pub head: Option<BlockRef>,
    /// How many times the driver read the head from the engine (a waiter sees a fresh read even
    /// when the head did not change).
    pub reads: u64,
}

/// The driver's side: publishes the head and takes re-read requests.
#[derive(Debug)]
pub struct HeadPublisher {
    tx: watch::Sender<HeadState>,
    resync: Arc<Notify>,
}

/// A reader's side (the sequencer's producer). Cheap to clone.
#[derive(Debug, Clone)]
pub struct HeadFollower {
    rx: watch::Receiver<HeadState>,
    resync: Arc<Notify>,
}

/// A publisher and its follower, starting at `head`.
pub fn channel(head: Option<BlockRef>) -> (HeadPublisher, HeadFollower) {
    let (tx, rx) = watch::channel(HeadState { head, reads: 0 });
    let resync = Arc::new(Notify::new());
    (
        HeadPublisher {
            tx,
            resync: resync.clone(),
        },
        HeadFollower { rx, resync },
    )
}

impl HeadPublisher {
    /// The head moved (a block inserted, or a reorg walked back).
    pub fn moved(&self, head: BlockRef) {
        self.tx.send_modify(|s| s.head = Some(head));
    }

    /// The head was read from the engine.
    pub fn read(&self, head: BlockRef) {
        self.tx.send_modify(|s| {
            s.head = Some(head);
            s.reads = s.reads.wrapping_add(1);
        });
    }

    /// Resolves when a reader asked for the head to be read again (a request made while the
    /// driver was busy is kept, so none is lost).
    pub async fn resync_requested(&self) {
        self.resync.notified().await;
    }
}

impl HeadFollower {
    /// The driver's view now.
    pub fn state(&self) -> HeadState {
        *self.rx.borrow()
    }

    /// The head as the driver knows it.
    pub fn head(&self) -> Option<BlockRef> {
        self.state().head
    }

    /// Asks the driver to read the engine's head again (and so re-insert what it lacks).
    pub fn request_resync(&self) {
        self.resync.notify_one();
    }

    /// Waits until the head is `target`, at most `timeout`. True if it is.
    pub async fn wait_for(&mut self, target: BlockRef, timeout: Duration) -> bool {
        let reached =
            tokio::time::timeout(timeout, self.rx.wait_for(|s| s.head == Some(target))).await;
        matches!(reached, Ok(Ok(_)))
    }

    /// Resolves once the head is something other than `head` (at once if it already is).
    pub async fn moved_from(&mut self, head: BlockRef) {
        let _ = self.rx.wait_for(|s| s.head != Some(head)).await;
    }

    /// Waits for any change of the view (a move or a fresh read), at most `timeout`. False if
    /// nothing changed (or the driver stopped).
    pub async fn changed(&mut self, timeout: Duration) -> bool {
        self.rx.mark_unchanged();
        matches!(
            tokio::time::timeout(timeout, self.rx.changed()).await,
            Ok(Ok(()))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::B256;

    fn block(n: u64) -> BlockRef {
        BlockRef {
            number: n,
            hash: B256::with_last_byte(n as u8),
        }
    }

    #[tokio::test]
    async fn a_follower_sees_moves_reads_and_its_requests_reach_the_driver() {
        let (driver, mut follower) = channel(Some(block(3)));
        assert_eq!(follower.head(), Some(block(3)));
        follower.request_resync();
        // The request made before the driver waited is kept.
        tokio::time::timeout(Duration::from_secs(1), driver.resync_requested())
            .await
            .unwrap();
        driver.read(block(2));
        assert_eq!(follower.state().reads, 1);
        let waiter = tokio::spawn(async move {
            let reached = follower.wait_for(block(3), Duration::from_secs(5)).await;
            (reached, follower)
        });
        driver.moved(block(3));
        let (reached, mut follower) = waiter.await.unwrap();
        assert!(reached);
        assert!(!follower.changed(Duration::from_millis(20)).await);
        driver.read(block(3));
        assert_eq!(follower.state().reads, 2);
    }
}
