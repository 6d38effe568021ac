//! Ban and list records on their way to disk, in the order the peer manager decided them.
//!
//! The peer manager changes memory at once and answers with [`RecordWrite`]s; the event loop
//! queues them here and one task writes them, a batch at a time on the blocking pool, each
//! batch finished before the next starts. Separate blocking tasks could land out of order: a
//! ban written after the operator's unban that followed it would bring the ban back at the next
//! restart. The queue is bounded ([`RECORD_QUEUE`] batches); a write that finds it full is
//! dropped with an error line (the change stays in force in memory until the node stops); an
//! operator's change is answered with [`RecordQueueFull`] instead, so the caller knows it is in
//! force but did not reach the disk.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::log_limit::LogEvery;
use crate::store::{RecordWrite, Store};

/// Batches waiting for the disk. A batch is one ban, one expiry sweep or one operator change; a
/// write takes about a millisecond, and bans come from the ban monitor (one peer per second) or
/// the operator, so 1,024 is minutes of backlog that only a stalled disk can build.
pub const RECORD_QUEUE: usize = 1024;

static DROPPED: LogEvery = LogEvery::new(Duration::from_secs(10));

/// Writes queued in one go, and who waits for them to be on disk.
struct Batch {
    writes: Vec<RecordWrite>,
    done: Option<oneshot::Sender<()>>,
}

/// The queue found full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many peer records waiting for the disk ({RECORD_QUEUE} batches); try again")]
pub struct RecordQueueFull;

/// The sending end; the writing task ends once this is dropped and the queue is drained.
#[derive(Debug)]
pub(crate) struct RecordQueue {
    tx: mpsc::Sender<Batch>,
}

impl RecordQueue {
    /// Starts the writing task for `store` (inside the tokio runtime).
    pub fn start(store: Arc<Store>) -> Self {
        let (tx, mut rx) = mpsc::channel::<Batch>(RECORD_QUEUE);
        tokio::spawn(async move {
            while let Some(Batch { writes, done }) = rx.recv().await {
                let store = store.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    for write in &writes {
                        store.persist_peer_record(write);
                    }
                })
                .await;
                if let Some(done) = done {
                    let _ = done.send(());
                }
            }
        });
        Self { tx }
    }

    /// Queues `writes`, written after everything queued before them; `done` hears once they
    /// are on disk (or failed, which is logged). Never waits.
    pub fn push(
        &self,
        writes: Vec<RecordWrite>,
        done: Option<oneshot::Sender<()>>,
    ) -> Result<(), RecordQueueFull> {
        self.tx
            .try_send(Batch { writes, done })
            .map_err(|_| RecordQueueFull)
    }

    /// Queues `writes` with no one waiting; when the queue is full they are dropped and an
    /// error line (at most one per 10 s, with the count) says so.
    pub fn push_or_log(&self, writes: Vec<RecordWrite>) {
        if self.push(writes, None).is_err()
            && let Some(n) = DROPPED.event()
        {
            tracing::error!(
                dropped = n,
                "peer records not written: the disk queue is full \
                (bans and list changes stay in force until the node stops)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::PeerRecords;

    fn write(key: u8, value: Option<u64>) -> RecordWrite {
        RecordWrite {
            records: PeerRecords::PeerBans,
            key: vec![key],
            value,
        }
    }

    #[tokio::test]
    async fn writes_land_in_the_order_they_were_queued() {
        let dir = tempfile::tempdir().unwrap();
        let chain = crate::chain_config::load_chain("devnet").unwrap();
        let store = Arc::new(Store::open(&dir.path().join("store.redb"), 100, &chain).unwrap());
        let queue = RecordQueue::start(store.clone());
        // Ban, unban, ban, unban the same key many times, each in its own batch: the last
        // write (an unban) must be what the disk holds, and a final ban likewise.
        for round in 0..200u64 {
            queue.push_or_log(vec![write(1, Some(round + 1))]);
            queue.push_or_log(vec![write(1, None)]);
        }
        let (done, heard) = oneshot::channel();
        queue.push(vec![write(2, Some(7))], Some(done)).unwrap();
        heard.await.unwrap();
        let records = store.peer_records(PeerRecords::PeerBans).unwrap();
        assert_eq!(
            records,
            vec![(vec![2], 7)],
            "the unbans came last; the waited-for write is on disk"
        );
    }
}
