//! Collection: every node's control-channel events ([`ControlEvent`]) arrive on one bounded
//! channel, tagged with the node's index, and are folded into that node's [`NodeStats`], from
//! which the report is built ([`super::report`], [`super::report_html`]).

use std::time::{Instant, SystemTime};

use tokio::sync::mpsc;

use super::DevnetError;
use super::report::NodeStats;
use crate::cli::control_event::ControlEvent;
use crate::clock::unix_millis;

/// Waits for one child event until `deadline`, and applies it to `stats`.
pub(super) async fn next_event(
    events: &mut mpsc::Receiver<(usize, ControlEvent)>,
    stats: &mut [NodeStats],
    deadline: Instant,
    waiting_for: &str,
) -> Result<(), DevnetError> {
    let timeout = deadline.saturating_duration_since(Instant::now());
    match tokio::time::timeout(timeout, events.recv()).await {
        Ok(Some((i, event))) => {
            if let Some(s) = stats.get_mut(i) {
                apply(s, event);
            }
            Ok(())
        }
        Ok(None) => Err(DevnetError::Io("every node exited".into())),
        Err(_) => Err(DevnetError::Timeout(format!(
            "timed out waiting for {waiting_for}"
        ))),
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
