//! When the sequencer builds its next block, and what it tells the operator about it. Sans-IO:
//! the producer passes the wall clock in.
//!
//! The chain's rule is that block n+1's timestamp is block n's plus the block time, always: the
//! derivation pipeline accepts nothing else from batches. So the next timestamp is fixed by the
//! tip, and the only choice is when to build it: not before its time (peers refuse blocks more
//! than 5 s ahead, and the L2 clock must not run ahead of the wall clock), and at once when its
//! time has passed. A sequencer that was stalled (its engine down, the node stopped) is behind
//! the wall clock and builds back to back until it has caught up, as op-node's sequencer does;
//! it never skips slots. (It once jumped to the current slot after a 30 s stall, giving block 74
//! the timestamp parent + 60 s: issue 21.)

use std::time::Duration;

use crate::chain::ChainSpec;
use crate::store::{BlockRef, Store};

/// The block the next one builds on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tip {
    /// Its number and hash.
    pub id: BlockRef,
    /// Its timestamp (unix seconds).
    pub timestamp: u64,
}

impl Tip {
    /// Where a sequencer resumes: `head` with its stored block's timestamp. For a head the store
    /// only anchors: the rollup config's genesis time at the genesis (an engine's genesis block
    /// may carry another: op-reth's dev chain's is from 2023), the engine's timestamp for an
    /// engine head adopted at start (`engine`: that head and its timestamp), else the chain's
    /// timestamp for that number (`genesis.l2_time + (n − genesis) × block_time`, which every
    /// block of a chain that kept the rule has).
    pub fn resume(
        store: &Store,
        chain: &ChainSpec,
        head: BlockRef,
        engine: Option<(BlockRef, u64)>,
    ) -> Self {
        let stored = store
            .canonical_block(head.number)
            .ok()
            .flatten()
            .filter(|b| b.id() == head)
            .map(|b| b.envelope.payload.timestamp);
        let from_engine = engine
            .filter(|(id, ts)| *id == head && *ts > 0 && head.number > chain.genesis.l2.number)
            .map(|(_, ts)| ts);
        let timestamp = stored
            .or(from_engine)
            .or_else(|| chain.timestamp_for_block(head.number))
            .unwrap_or(chain.genesis.l2_time);
        Self {
            id: head,
            timestamp,
        }
    }

    /// The next block's number.
    pub fn next_number(&self) -> u64 {
        self.id.number.saturating_add(1)
    }

    /// The next block's timestamp: this one's plus the block time.
    pub fn next_timestamp(&self, chain: &ChainSpec) -> u64 {
        self.timestamp.saturating_add(chain.block_time)
    }
}

/// How far behind the wall clock a sequencer may start: OP Mainnet's sequencing window, 3,600 L1
/// blocks of 12 s. A block further behind than that could no longer be batched in time (the
/// derivation pipeline would already have put default blocks in its place), so catching up to
/// it is pointless, and a start that far behind is a wrong genesis time (a chain file's
/// placeholder 0 would be 56 years of blocks).
pub const MAX_START_BEHIND_SECS: u64 = 3_600 * 12;

/// A sequencer on the chain's clock whose next block is due too long ago to catch up to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the sequencer's next block {number} is due at {due}, {behind_secs} s before now: more than the {MAX_START_BEHIND_SECS} s a sequencer may catch up (blocks follow their parent by the block time, never skipping slots); check the genesis time (rollup.json l2_time)"
)]
pub struct TooFarBehind {
    /// The next block's number.
    pub number: u64,
    /// When it is due (unix seconds).
    pub due: u64,
    /// How long ago that was.
    pub behind_secs: u64,
}

/// Refuses a sequencer on the chain's clock whose next block is due more than
/// [`MAX_START_BEHIND_SECS`] before `now`.
pub fn check_start(tip: &Tip, chain: &ChainSpec, now: u64) -> Result<(), TooFarBehind> {
    let due = tip.next_timestamp(chain);
    let behind_secs = now.saturating_sub(due);
    if behind_secs > MAX_START_BEHIND_SECS {
        return Err(TooFarBehind {
            number: tip.next_number(),
            due,
            behind_secs,
        });
    }
    Ok(())
}

/// How long to wait before building a block with `timestamp`, at `now_ms` (unix milliseconds):
/// zero once its time has come.
pub fn wait_for_slot(timestamp: u64, now_ms: u64) -> Duration {
    Duration::from_millis(timestamp.saturating_mul(1000).saturating_sub(now_ms))
}

/// What the operator hears about being behind the wall clock: one line when the sequencer falls
/// more than one slot behind, one when it has caught up.
#[derive(Debug, Default)]
pub struct CatchUp {
    /// Since which block the sequencer has been behind, and how many it has built since.
    behind: Option<(u64, u64)>,
}

/// A change worth one log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatchUpChange {
    /// Building `number` more than a slot late: back to back from here.
    FellBehind {
        /// The block about to be built.
        number: u64,
        /// How far its timestamp lies behind the wall clock.
        behind_secs: u64,
    },
    /// Caught up after `built` blocks built back to back.
    CaughtUp {
        /// Blocks built while behind.
        built: u64,
    },
}

impl CatchUp {
    /// Called before building `number` with `timestamp` at `now` (seconds).
    pub fn before_build(
        &mut self,
        number: u64,
        timestamp: u64,
        block_time: u64,
        now: u64,
    ) -> Option<CatchUpChange> {
        let late = now.saturating_sub(timestamp);
        match &mut self.behind {
            None if late > block_time => {
                self.behind = Some((number, 0));
                Some(CatchUpChange::FellBehind {
                    number,
                    behind_secs: late,
                })
            }
            Some((_, built)) if late <= block_time => {
                let built = *built;
                self.behind = None;
                Some(CatchUpChange::CaughtUp { built })
            }
            Some((_, built)) => {
                *built = built.saturating_add(1);
                None
            }
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_waited_for_to_the_millisecond_and_not_at_all_once_past() {
        assert_eq!(wait_for_slot(100, 98_250), Duration::from_millis(1750));
        assert_eq!(wait_for_slot(100, 100_000), Duration::ZERO);
        assert_eq!(wait_for_slot(100, 160_000), Duration::ZERO);
    }

    #[test]
    fn timestamps_follow_the_tip_however_late_the_clock() {
        let mut chain = crate::chain_config::load_chain("devnet").unwrap();
        chain.block_time = 2;
        let mut tip = Tip {
            id: BlockRef {
                number: 73,
                hash: Default::default(),
            },
            timestamp: 1_000,
        };
        // A stall of a minute changes nothing: 74 is 73 + 2, 75 is 74 + 2.
        for n in 74..=80 {
            let ts = tip.next_timestamp(&chain);
            assert_eq!(ts, 1_000 + 2 * (n - 73));
            tip = Tip {
                id: BlockRef {
                    number: tip.next_number(),
                    hash: Default::default(),
                },
                timestamp: ts,
            };
            assert_eq!(tip.id.number, n);
        }
    }

    #[test]
    fn a_start_further_behind_than_the_sequencing_window_is_refused() {
        let mut chain = crate::chain_config::load_chain("devnet").unwrap();
        chain.block_time = 2;
        let tip = Tip {
            id: BlockRef {
                number: 0,
                hash: Default::default(),
            },
            timestamp: 0,
        };
        let now = 1_800_000_000;
        let error = check_start(&tip, &chain, now).unwrap_err().to_string();
        assert!(error.contains("l2_time"), "{error}");
        let recent = Tip {
            timestamp: now - MAX_START_BEHIND_SECS,
            ..tip
        };
        assert_eq!(check_start(&recent, &chain, now), Ok(()));
    }

    #[test]
    fn one_line_when_falling_behind_and_one_when_caught_up() {
        let mut pace = CatchUp::default();
        // On time: nothing.
        assert_eq!(pace.before_build(1, 100, 2, 100), None);
        assert_eq!(pace.before_build(2, 102, 2, 103), None);
        // 30 s late: one line, then silence while catching up back to back.
        assert_eq!(
            pace.before_build(3, 104, 2, 134),
            Some(CatchUpChange::FellBehind {
                number: 3,
                behind_secs: 30
            })
        );
        for (i, ts) in (106..132).step_by(2).enumerate() {
            assert_eq!(pace.before_build(4 + i as u64, ts, 2, 134), None);
        }
        assert_eq!(
            pace.before_build(17, 132, 2, 134),
            Some(CatchUpChange::CaughtUp { built: 13 })
        );
        assert_eq!(pace.before_build(18, 134, 2, 134), None);
    }
}
