//! The store writer: the one thread that writes blocks into the [`Store`].
//!
//! ```text
//!  forward task (gossip) ─┐
//!  producer (local) ──────┼─ StoreOp (bounded, STORE_QUEUE) ─► writer thread ─► Store (redb)
//!  sync client (req/resp) ┤                                       ├─► head (watch)
//!  admin RPC (payloads) ──┘                                       ├─► writes (watch)
//!                                                                 └─► NodeEvent::{Stored, HeadChanged}
//! ```
//!
//! It writes blocks in batches (one durable transaction each), publishes head changes, and exits
//! once every sender is gone and the queue is drained, so a graceful shutdown stores everything
//! already accepted.

use std::sync::Arc;
use std::time::SystemTime;

use libp2p::PeerId;
use tokio::sync::{broadcast, mpsc, watch};

use super::{BlockRef, Store, StoredBlock};
use crate::events::NodeEvent;

/// Capacity of the queue into the store writer.
pub const STORE_QUEUE: usize = 256;
/// Blocks written in one transaction at most (one fsync per batch).
const STORE_BATCH: usize = 64;

/// Where a stored block came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockSource {
    /// Accepted from gossip, forwarded by this peer.
    Gossip(PeerId),
    /// Built by this node's producer.
    Local,
    /// Fetched by the sync client from this peer (trusted through its child's parent hash).
    ReqResp(PeerId),
}

/// What the store writer is asked to do.
#[derive(Debug)]
pub enum StoreOp {
    /// Store a block.
    Insert(Box<StoreRequest>),
    /// Move the head to this stored block (a hole too long to fill).
    Reanchor(BlockRef),
}

/// A block on its way into the store.
#[derive(Debug)]
pub struct StoreRequest {
    /// The block.
    pub block: StoredBlock,
    /// Where it came from.
    pub source: BlockSource,
    /// When it was accepted (gossip) or published (local).
    pub at: SystemTime,
}

/// Where the store writer reports.
pub struct StoreOutputs {
    /// The unsafe head.
    pub head: watch::Sender<Option<BlockRef>>,
    /// Counts write batches (the sync client re-plans on every tick).
    pub writes: watch::Sender<u64>,
    /// Observers.
    pub events: broadcast::Sender<NodeEvent>,
}

/// The running writer: its queue and its thread.
pub struct StoreWriter {
    /// Where blocks are sent to be stored.
    pub tx: mpsc::Sender<StoreOp>,
    /// The writer thread; it exits once every sender is dropped and the queue is drained.
    pub thread: std::thread::JoinHandle<()>,
}

impl StoreWriter {
    /// Starts the writer thread over `store`.
    pub fn spawn(store: Arc<Store>, out: StoreOutputs) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel(STORE_QUEUE);
        let thread = spawn_store_writer(store, rx, out)?;
        Ok(Self { tx, thread })
    }
}

/// Nice value of the store writer thread: below the network and validation threads, so that
/// durable writes (not on the propagation path) yield the CPU to validating and forwarding the
/// next hop. Measured on the 20-node devnet: with equal priority the writes sit inside every
/// block's CPU burst and add ~10 ms to p99 publish→accept.
const STORE_WRITER_NICE: i32 = 10;

/// Starts the store writer on its own OS thread.
fn spawn_store_writer(
    store: Arc<Store>,
    mut ops: mpsc::Receiver<StoreOp>,
    out: StoreOutputs,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || {
            lower_thread_priority(STORE_WRITER_NICE);
            let mut pending = None;
            loop {
                let first = match pending.take() {
                    Some(op) => op,
                    None => match ops.blocking_recv() {
                        Some(op) => op,
                        None => break,
                    },
                };
                let mut batch = match first {
                    StoreOp::Insert(r) => vec![*r],
                    StoreOp::Reanchor(to) => {
                        match store.reanchor(to) {
                            Ok(Some(head)) => publish_head(Some(head), &out),
                            Ok(None) => {
                                tracing::warn!(number = to.number, "reanchor target not stored")
                            }
                            Err(e) => tracing::error!(error = %e, "failed to move the head"),
                        }
                        out.writes.send_modify(|n| *n = n.wrapping_add(1));
                        continue;
                    }
                };
                while batch.len() < STORE_BATCH {
                    match ops.try_recv() {
                        Ok(StoreOp::Insert(r)) => batch.push(*r),
                        Ok(other) => {
                            pending = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                write_batch(&store, batch, &out);
            }
        })
}

fn write_batch(store: &Store, batch: Vec<StoreRequest>, out: &StoreOutputs) {
    let meta: Vec<(BlockRef, BlockSource)> =
        batch.iter().map(|r| (r.block.id(), r.source)).collect();
    let blocks: Vec<StoredBlock> = batch.into_iter().map(|r| r.block).collect();
    match store.insert_batch(&blocks) {
        Ok(new_head) => {
            for (id, source) in meta {
                let _ = out.events.send(NodeEvent::Stored { id, source });
            }
            publish_head(new_head, out);
        }
        Err(e) => tracing::error!(error = %e, "failed to store blocks"),
    }
    out.writes.send_modify(|n| *n = n.wrapping_add(1));
}

fn publish_head(new_head: Option<BlockRef>, out: &StoreOutputs) {
    if new_head != *out.head.borrow() {
        out.head.send_replace(new_head);
        if let Some(h) = new_head {
            tracing::debug!(number = h.number, hash = %h.hash, "new unsafe head");
            let _ = out.events.send(NodeEvent::HeadChanged(h));
        }
    }
}

/// Raises the calling thread's nice value (Linux: nice is per thread). Best effort: on failure
/// or elsewhere the thread keeps its priority.
fn lower_thread_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority take plain integers and touch no memory of ours.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        if libc::setpriority(libc::PRIO_PROCESS, tid, nice) != 0 {
            tracing::debug!("could not lower the store writer's priority");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}
