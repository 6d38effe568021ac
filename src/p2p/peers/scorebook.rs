//! The scorebook (op-node's, spec §7.1): a snapshot of every connected peer's score, taken by
//! the event loop every [`SNAPSHOT_INTERVAL`], kept in memory for the admin RPC and written to
//! the embedded database so scores survive a restart. On start, the application counters of
//! recent records go back into [`AppScores`], so a peer penalised before a restart is still
//! penalised after it (gossipsub's own terms restart from zero: rust-libp2p cannot be seeded).
//!
//! Records use op-node's JSON shape (`{"lastUpdate", "peerScores": {"gossip", "reqResp"}}`)
//! plus our attribution counters under `"app"`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::PeerId;
use serde::{Deserialize, Serialize};

use super::app_score::{AppCounters, AppScores};
use super::breakdown::ScoreBreakdown;
use crate::store::Store;

/// op-node snapshots peer scores into its scorebook every 15 s.
pub const SNAPSHOT_INTERVAL: Duration = Duration::from_secs(15);
/// Records kept at most; beyond it the oldest is dropped (op-node caches 100 and keeps the rest
/// on disk; we keep them all in memory, so the bound is on both).
pub const MAX_RECORDS: usize = 4_096;

/// op-node's `TopicScores` (summed over the block topics; always 0 at the light level, which
/// scores no topic).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicScores {
    /// Seconds in the mesh.
    pub time_in_mesh: f64,
    /// First deliveries.
    pub first_message_deliveries: f64,
    /// Mesh deliveries.
    pub mesh_message_deliveries: f64,
    /// Invalid deliveries.
    pub invalid_message_deliveries: f64,
}

/// op-node's `GossipScores`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct GossipScores {
    /// gossipsub's total.
    pub total: f64,
    /// The block topics.
    pub blocks: TopicScores,
    /// The IP colocation factor (unweighted: peers beyond the threshold, squared).
    #[serde(rename = "IPColocationFactor")]
    pub ip_colocation_factor: f64,
    /// The behaviour penalty counter (unweighted), derived from its contribution.
    #[serde(rename = "behavioralPenalty")]
    pub behavioral_penalty: f64,
}

/// op-node's `ReqRespScores`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReqRespScores {
    /// Valid responses.
    pub valid_responses: f64,
    /// Error responses.
    pub error_responses: f64,
    /// Rejected payloads.
    pub rejected_payloads: f64,
}

/// op-node's `PeerScores`: the `scores` object of a peer in the admin RPC.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerScores {
    /// Gossip part.
    pub gossip: GossipScores,
    /// Req/resp part.
    pub req_resp: ReqRespScores,
}

impl From<&ScoreBreakdown> for PeerScores {
    fn from(b: &ScoreBreakdown) -> Self {
        use crate::p2p::scoring::{
            BEHAVIOUR_PENALTY_THRESHOLD, BEHAVIOUR_PENALTY_WEIGHT, IP_COLOCATION_WEIGHT,
        };
        Self {
            gossip: GossipScores {
                total: b.total,
                blocks: TopicScores::default(),
                ip_colocation_factor: if b.ip_colocation < 0.0 {
                    b.ip_colocation / IP_COLOCATION_WEIGHT
                } else {
                    0.0
                },
                behavioral_penalty: if b.behavioural_penalty < 0.0 {
                    BEHAVIOUR_PENALTY_THRESHOLD
                        + (b.behavioural_penalty / BEHAVIOUR_PENALTY_WEIGHT).sqrt()
                } else {
                    0.0
                },
            },
            req_resp: ReqRespScores {
                valid_responses: b.app.valid_responses,
                error_responses: b.app.error_responses,
                rejected_payloads: b.app.rejected_payloads,
            },
        }
    }
}

/// Our counters beyond op-node's req/resp ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AppExtra {
    invalid_blocks: f64,
    invalid_signatures: f64,
    rate_limited_responses: f64,
    #[serde(default)]
    refused_requests: f64,
}

/// One record as stored.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    last_update: u64,
    peer_scores: PeerScores,
    #[serde(default)]
    app: AppExtra,
    /// The breakdown the record was made from (not stored).
    #[serde(skip)]
    breakdown: ScoreBreakdown,
}

impl Record {
    fn app_counters(&self) -> AppCounters {
        let r = &self.peer_scores.req_resp;
        AppCounters {
            valid_responses: r.valid_responses,
            error_responses: r.error_responses,
            rejected_payloads: r.rejected_payloads,
            invalid_blocks: self.app.invalid_blocks,
            invalid_signatures: self.app.invalid_signatures,
            rate_limited_responses: self.app.rate_limited_responses,
            refused_requests: self.app.refused_requests,
        }
    }
}

/// The scorebook.
#[derive(Debug, Default)]
pub struct ScoreBook {
    records: Mutex<HashMap<PeerId, Record>>,
    store: Option<Arc<Store>>,
    retention: u64,
}

impl ScoreBook {
    /// The records in `store` updated within `retention` before `now` (older ones are deleted);
    /// their application counters are put back into `app`.
    pub fn load(store: Arc<Store>, retention: Duration, now: u64, app: &mut AppScores) -> Self {
        let retention = retention.as_secs();
        let mut records = HashMap::new();
        let mut stale = Vec::new();
        match store.peer_scores() {
            Ok(rows) => {
                for (key, value) in rows {
                    let peer = PeerId::from_bytes(&key).ok();
                    let record = serde_json::from_slice::<Record>(&value).ok();
                    match (peer, record) {
                        (Some(peer), Some(mut r)) if r.last_update + retention >= now => {
                            r.breakdown = ScoreBreakdown {
                                total: r.peer_scores.gossip.total,
                                app: r.app_counters(),
                                ..ScoreBreakdown::default()
                            };
                            app.restore(peer, r.app_counters());
                            records.insert(peer, r);
                        }
                        (Some(_), Some(_)) => stale.push(key),
                        _ => {
                            tracing::warn!("dropping a damaged score record");
                            stale.push(key);
                        }
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read the peer scores; starting without"),
        }
        if !stale.is_empty()
            && let Err(e) = store.save_peer_scores(&[], &stale)
        {
            tracing::warn!(error = %e, "cannot drop stale score records");
        }
        Self {
            records: Mutex::new(records),
            store: Some(store),
            retention,
        }
    }

    /// A book that is not persisted.
    pub fn in_memory(retention: Duration) -> Self {
        Self {
            retention: retention.as_secs(),
            ..Self::default()
        }
    }

    /// Records a snapshot taken at `now`, drops records older than the retention, and writes
    /// the changes through. Blocking (disk): call it off the event loop.
    pub fn snapshot(&self, now: u64, scores: Vec<(PeerId, ScoreBreakdown)>) {
        let mut put = Vec::with_capacity(scores.len());
        let mut remove = Vec::new();
        {
            let mut records = self.lock();
            for (peer, breakdown) in scores {
                let a = &breakdown.app;
                let record = Record {
                    last_update: now,
                    peer_scores: PeerScores::from(&breakdown),
                    app: AppExtra {
                        invalid_blocks: a.invalid_blocks,
                        invalid_signatures: a.invalid_signatures,
                        rate_limited_responses: a.rate_limited_responses,
                        refused_requests: a.refused_requests,
                    },
                    breakdown,
                };
                if let Ok(json) = serde_json::to_vec(&record) {
                    put.push((peer.to_bytes(), json));
                }
                records.insert(peer, record);
            }
            records.retain(|peer, r| {
                let keep = r.last_update + self.retention >= now;
                if !keep {
                    remove.push(peer.to_bytes());
                }
                keep
            });
            while records.len() > MAX_RECORDS {
                let Some(oldest) = records
                    .iter()
                    .min_by_key(|(_, r)| r.last_update)
                    .map(|(p, _)| *p)
                else {
                    break;
                };
                records.remove(&oldest);
                remove.push(oldest.to_bytes());
            }
        }
        if let Some(store) = &self.store
            && let Err(e) = store.save_peer_scores(&put, &remove)
        {
            tracing::error!(error = %e, "cannot persist peer scores");
        }
    }

    /// Forgets `peer`'s record (its ban expired). Blocking (disk).
    pub fn forget(&self, peer: &PeerId) {
        if self.lock().remove(peer).is_some()
            && let Some(store) = &self.store
            && let Err(e) = store.save_peer_scores(&[], &[peer.to_bytes()])
        {
            tracing::warn!(%peer, error = %e, "cannot drop a score record");
        }
    }

    /// The last recorded breakdown of `peer` and when it was taken.
    pub fn get(&self, peer: &PeerId) -> Option<(u64, ScoreBreakdown)> {
        self.lock().get(peer).map(|r| (r.last_update, r.breakdown))
    }

    /// Every record: peer → (last update, breakdown).
    pub fn records(&self) -> Vec<(PeerId, (u64, ScoreBreakdown))> {
        self.lock()
            .iter()
            .map(|(p, r)| (*p, (r.last_update, r.breakdown)))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PeerId, Record>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_node_shape() {
        let b = ScoreBreakdown {
            total: -3.0,
            app: AppCounters {
                error_responses: 3.0,
                ..AppCounters::default()
            },
            ..ScoreBreakdown::default()
        };
        let json = serde_json::to_value(PeerScores::from(&b)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "gossip": {"total": -3.0, "blocks": {"timeInMesh": 0.0, "firstMessageDeliveries": 0.0,
                    "meshMessageDeliveries": 0.0, "invalidMessageDeliveries": 0.0},
                    "IPColocationFactor": 0.0, "behavioralPenalty": 0.0},
                "reqResp": {"validResponses": 0.0, "errorResponses": 3.0, "rejectedPayloads": 0.0}
            })
        );
    }

    #[test]
    fn records_expire_after_the_retention() {
        let book = ScoreBook::in_memory(Duration::from_secs(100));
        let peer = PeerId::random();
        book.snapshot(1_000, vec![(peer, ScoreBreakdown::default())]);
        assert_eq!(book.get(&peer).map(|(t, _)| t), Some(1_000));
        book.snapshot(1_100, Vec::new());
        assert!(book.get(&peer).is_some());
        book.snapshot(1_101, Vec::new());
        assert!(book.get(&peer).is_none());
    }
}
