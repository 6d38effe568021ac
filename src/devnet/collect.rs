//! Collection: every node's control-channel events ([`ControlEvent`]) arrive on one bounded
//! channel, tagged with the node's index (the reader [`super::processes`] starts beside each
//! child), and are folded into that node's [`NodeStats`]. The scenario ([`super::scenario`])
//! waits on them; at the end the report is built from them ([`super::report`],
//! [`super::report_html`]).

use std::time::{Instant, SystemTime};

use tokio::sync::mpsc;

use super::DevnetError;
use super::report::NodeStats;
use crate::cli::control_event::ControlEvent;
use crate::clock::unix_millis;

/// Child events buffered for the orchestrator. A full queue holds the children's stdout readers
/// back (each child then blocks on its own stdout) until the orchestrator catches up; nothing
/// is dropped.
const EVENT_QUEUE: usize = 8192;

/// Where a child's reader sends its events: the node's index and the event.
pub(super) type EventSender = mpsc::Sender<(usize, ControlEvent)>;

/// Every node's events and what they add up to.
pub(super) struct Collector {
    events: mpsc::Receiver<(usize, ControlEvent)>,
    /// Per node, in node order.
    pub(super) stats: Vec<NodeStats>,
}

impl Collector {
    /// A collector for `nodes` nodes, and the sender their readers share. Once every sender is
    /// dropped and every reader ended, waiting fails with "every node exited".
    pub(super) fn new(nodes: usize) -> (Self, EventSender) {
        let (tx, events) = mpsc::channel(EVENT_QUEUE);
        let stats = (0..nodes).map(|_| NodeStats::default()).collect();
        (Self { events, stats }, tx)
    }

    /// Waits for one child event until `deadline`, and applies it to its node's stats.
    /// `waiting_for` names what the caller waits for in the timeout error.
    pub(super) async fn next(
        &mut self,
        deadline: Instant,
        waiting_for: &str,
    ) -> Result<(), DevnetError> {
        let timeout = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(timeout, self.events.recv()).await {
            Ok(Some((i, event))) => {
                if let Some(s) = self.stats.get_mut(i) {
                    apply(s, event);
                }
                Ok(())
            }
            Ok(None) => Err(DevnetError::Run("every node exited".into())),
            Err(_) => Err(DevnetError::Timeout(format!(
                "timed out waiting for {waiting_for}"
            ))),
        }
    }

    /// Applies events until `deadline` (errors end it early).
    pub(super) async fn until(&mut self, deadline: Instant) {
        while Instant::now() < deadline {
            if self.next(deadline, "").await.is_err() {
                break;
            }
        }
    }
}

fn apply(s: &mut NodeStats, event: ControlEvent) {
    match event {
        ControlEvent::Listening { addr, .. } => {
            s.peer_id = addr.rsplit('/').next().unwrap_or_default().to_owned();
            s.listening = Some(addr);
        }
        ControlEvent::Peers { count } => {
            s.peers = count;
            s.max_peers = s.max_peers.max(s.peers);
            if s.peers > 0 && s.joined_ms.is_none() {
                s.joined_ms = Some(unix_millis(SystemTime::now()));
            }
        }
        ControlEvent::Fetched { number, at_ms } => {
            s.fetched.entry(number).or_insert(at_ms);
        }
        ControlEvent::Accepted {
            number,
            hash,
            from,
            at_ms,
        } => {
            s.accepted.entry(number).or_insert(at_ms);
            s.adversary.on_message(&from, "accept", at_ms);
            s.accepted_hashes.insert(format!("{hash:#x}"));
        }
        ControlEvent::Published {
            number,
            hash,
            at_ms,
        } => {
            s.published.insert(number, at_ms);
            s.published_hashes.insert(number, format!("{hash:#x}"));
        }
        ControlEvent::Head { number, at_ms, .. } => {
            s.head = Some(number);
            s.head_at.push((number, at_ms));
        }
        ControlEvent::Judged {
            verdict,
            from,
            at_ms,
            ..
        } => {
            match verdict.as_str() {
                "reject" => s.rejected += 1,
                _ => s.ignored += 1,
            }
            s.adversary.on_message(&from, &verdict, at_ms);
        }
        ControlEvent::Banned { peer, at_ms, .. } => s.adversary.on_ban(&peer, at_ms),
        ControlEvent::Topology { peers, mesh } => {
            s.connected_to = peers;
            s.mesh = mesh;
            s.topology_reported = true;
        }
        ControlEvent::Engine {
            inserted, at_ms, ..
        } => s.engine_at.push((at_ms, inserted)),
        ControlEvent::Produced { ok, error } => {
            s.produced = Some(if ok {
                Ok(())
            } else {
                Err(error.unwrap_or_else(|| "unknown".to_owned()))
            });
        }
        ControlEvent::Exit(exit) => {
            let crate::cli::control_event::NodeExit {
                head,
                peak_rss_kib,
                sync,
                server,
                engine,
                discovery,
            } = *exit;
            // The head the node stopped on; its last `head` events may not have been written.
            if let Some(h) = head {
                s.head = Some(h.number);
            }
            s.peak_rss_kib = Some(peak_rss_kib);
            s.sync = sync;
            s.server = server;
            s.engine = engine;
            s.discovered = discovery.map(|d| d.discovered);
            s.exited = true;
        }
        ControlEvent::Lagged { .. } | ControlEvent::Error { .. } => {}
    }
}
