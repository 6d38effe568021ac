//! Gossip validation between the event loop and gossipsub: a small scheduler that finds a
//! message its place (the forwarder's share, the queue, the decompression budget, a running
//! slot, the timeout) and a pure judging function that maps the validator's result to what
//! gossipsub, the metrics and the peer manager are told.
//!
//! ```text
//!  EventLoop ──schedule──► share + queue place (else IGNORE at once, counted)
//!                            └► task: decompression budget ─► running slot ─► validate
//!                               (inline ≤ INLINE_VALIDATION_MAX_BYTES, else blocking pool;
//!                               VALIDATION_TIMEOUT in all) ─► judge ─► Judged ─► EventLoop
//!                               ACCEPTed block ─► NetworkEvent::BlockAccepted (back-pressure
//!                               lands here, never on the loop)
//! ```

use std::sync::Arc;
use std::time::SystemTime;

use libp2p::PeerId;
use libp2p::gossipsub::{MessageAcceptance, MessageId};
use tokio::sync::{Semaphore, mpsc};

use super::metrics::GossipMetrics;
use super::peers::equivocation::GossipJudgement;
use super::recent_messages::RecentMessages;
use super::validation_shares::{Refused, ValidationShares};
use super::{INLINE_VALIDATION_MAX_BYTES, NetworkEvent, VALIDATION_TIMEOUT};
use crate::clock::unix_now;
use crate::validate::{BlockValidator, ValidBlock, ValidationError, Verdict};
use crate::wire::snappy::declared_len;
use crate::wire::{BlockVersion, MAX_GOSSIP_SIZE_BYTES};

/// KiB of bodies decompressed at once by validations (those the message-id cache did not keep,
/// over 4 MiB less their raw size): one of the largest messages (10 MiB) with room to spare, so
/// that four validations of 10 MiB bombs at once cannot take 40 MiB of the node's 64 MiB memory
/// target (measured with `tests/bomb_flood.rs`, release: 20 MiB here left a 64.9 MiB peak).
/// Blocks whose body the cache kept never wait for it. A validation waiting here counts against
/// its 3 s timeout.
pub const DECOMPRESS_BUDGET_KIB: u32 = 12 * 1024;

/// A finished validation, on its way back to the event loop.
pub(crate) struct Judged {
    pub message_id: MessageId,
    pub source: PeerId,
    pub acceptance: MessageAcceptance,
    /// What the verdict says about the forwarder, for the peer manager.
    pub judgement: GossipJudgement,
}

/// What one validation result means for gossipsub, the metrics and the forwarder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judgement {
    /// gossipsub's acceptance (only ACCEPT is forwarded).
    pub acceptance: MessageAcceptance,
    /// Our verdict.
    pub verdict: Verdict,
    /// The reason code (`None` on ACCEPT).
    pub reason: Option<&'static str>,
    /// What it proves against the forwarder.
    pub forwarder: GossipJudgement,
}

/// Judges a validation result; `None` is a validation that did not finish in time (IGNOREd,
/// nothing charged: a slow node proves nothing about its peer).
pub fn judge(result: Option<&Result<ValidBlock, ValidationError>>) -> Judgement {
    let (verdict, reason) = match result {
        Some(Ok(_)) => (Verdict::Accept, None),
        Some(Err(e)) => (e.verdict(), Some(e.reason())),
        None => (Verdict::Ignore, Some("validation_timeout")),
    };
    Judgement {
        acceptance: match verdict {
            Verdict::Accept => MessageAcceptance::Accept,
            Verdict::Ignore => MessageAcceptance::Ignore,
            Verdict::Reject => MessageAcceptance::Reject,
        },
        verdict,
        reason,
        forwarder: result.map_or(GossipJudgement::Nothing, GossipJudgement::of),
    }
}

/// Why a message found no place to wait for validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unqueued {
    /// Its forwarder's share of the queue (messages or bytes) is used up.
    ShareUsed,
    /// The queue is full (places or bytes).
    QueueFull,
}

impl From<Refused> for Unqueued {
    fn from(r: Refused) -> Self {
        match r {
            Refused::ShareUsed => Self::ShareUsed,
            Refused::QueueFull => Self::QueueFull,
        }
    }
}

/// Everything a validation task needs, shared by all of them.
pub(crate) struct Scheduler {
    pub validator: Arc<BlockValidator>,
    /// Recent messages' ids and decompressed bodies, filled by gossipsub's id function.
    pub recent: Arc<RecentMessages>,
    /// Free places in the validation queue.
    pub queue: Arc<Semaphore>,
    /// Each peer's share of the queue.
    pub shares: Arc<ValidationShares>,
    /// KiB of message bodies being decompressed for validation ([`DECOMPRESS_BUDGET_KIB`]).
    pub decompress_budget: Arc<Semaphore>,
    /// Validations allowed to run at once.
    pub running: Arc<Semaphore>,
    pub judged: mpsc::Sender<Judged>,
    pub events: mpsc::Sender<NetworkEvent>,
    pub metrics: Arc<GossipMetrics>,
}

impl Scheduler {
    /// Takes the message's places and spawns its validation, or says why it has none (the
    /// caller IGNOREs it at once).
    pub fn schedule(
        &self,
        source: PeerId,
        message_id: MessageId,
        version: BlockVersion,
        data: Vec<u8>,
    ) -> Result<(), Unqueued> {
        // The forwarder's share first: a flooding peer fills its own share, not the queue.
        let share = self.shares.try_take(source, data.len())?;
        let slot = self
            .queue
            .clone()
            .try_acquire_owned()
            .map_err(|_| Unqueued::QueueFull)?;
        let depth = self.metrics.validation_queue().entered();
        let entered_at = std::time::Instant::now();
        // Small blocks are validated on this task's worker, big ones on the blocking pool (see
        // `INLINE_VALIDATION_MAX_BYTES`). Invalid snappy fails validation at once: small.
        let declared = declared_len(&data).ok();
        let inline = declared.is_none_or(|n| n <= INLINE_VALIDATION_MAX_BYTES);
        // A body the id function did not keep is decompressed again by the validator: its
        // declared size (bodies over the 10 MiB limit are refused before decompressing) is
        // taken from the decompression budget first.
        let decompress_kib = match declared {
            Some(n)
                if n <= MAX_GOSSIP_SIZE_BYTES
                    && self.recent.decompressed(&message_id.0).is_none() =>
            {
                u32::try_from(n.div_ceil(1024)).unwrap_or(u32::MAX)
            }
            _ => 0,
        };
        let (validator, recent) = (self.validator.clone(), self.recent.clone());
        let (running, budget) = (self.running.clone(), self.decompress_budget.clone());
        let (judged, events, metrics) = (
            self.judged.clone(),
            self.events.clone(),
            self.metrics.clone(),
        );
        tokio::spawn(async move {
            let _places = (slot, share, depth);
            let id = message_id.0.clone();
            let work = async {
                // The permits move into the validation, so a timed-out one keeps its place until
                // it really ends and concurrency never exceeds the bound.
                let memory = match decompress_kib {
                    0 => None,
                    kib => Some(budget.acquire_many_owned(kib).await.ok()?),
                };
                let permit = running.acquire_owned().await.ok()?;
                let validate = move || {
                    let _permits = (permit, memory);
                    recent.validate(&validator, version, &id, &data, unix_now())
                };
                if inline {
                    return Some(validate());
                }
                tokio::task::spawn_blocking(validate).await.ok()
            };
            let result = tokio::time::timeout(VALIDATION_TIMEOUT, work)
                .await
                .ok()
                .flatten();
            let judgement = judge(result.as_ref());
            metrics.validated(judgement.verdict, judgement.reason);
            metrics.validation_queue().judged(entered_at.elapsed());
            if let Some(Err(e)) = &result {
                tracing::debug!(%source, verdict = judgement.verdict.as_str(), error = %e,
                    "gossip block not accepted");
            }
            let _ = judged
                .send(Judged {
                    message_id,
                    source,
                    acceptance: judgement.acceptance,
                    judgement: judgement.forwarder,
                })
                .await;
            let _ = events.try_send(NetworkEvent::MessageValidated {
                from: source,
                verdict: judgement.verdict,
                reason: judgement.reason,
            });
            if let Some(Ok(block)) = result {
                if block.ssz.is_none() {
                    metrics.noncanonical_block();
                    let number = block.envelope.payload.block_number;
                    tracing::debug!(%source, number, hash = %block.envelope.payload.block_hash,
                        "accepted block in a non-canonical SSZ form; the store re-encodes it");
                }
                let _ = events
                    .send(NetworkEvent::BlockAccepted {
                        block: Box::new(block),
                        from: source,
                        accepted_at: SystemTime::now(),
                    })
                    .await;
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::PeerFault;

    #[test]
    fn judging_maps_verdicts_and_charges_only_provable_faults() {
        let timeout = judge(None);
        assert_eq!(timeout.acceptance, MessageAcceptance::Ignore);
        assert_eq!(timeout.reason, Some("validation_timeout"));
        assert_eq!(timeout.forwarder, GossipJudgement::Nothing);

        let bad_hash: Result<ValidBlock, ValidationError> =
            Err(ValidationError::BlockHashMismatch {
                claimed: Default::default(),
                computed: Default::default(),
            });
        let j = judge(Some(&bad_hash));
        assert_eq!(j.acceptance, MessageAcceptance::Reject);
        assert_eq!(
            j.forwarder,
            GossipJudgement::Fault(PeerFault::WrongBlockHash)
        );

        let too_old: Result<ValidBlock, ValidationError> = Err(ValidationError::TimestampTooOld {
            timestamp: 1,
            now: 100,
            window_secs: 60,
        });
        assert_eq!(judge(Some(&too_old)).forwarder, GossipJudgement::Nothing);
    }
}
