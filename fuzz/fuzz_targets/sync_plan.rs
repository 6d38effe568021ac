//! The sync plan (`src/sync/plan.rs`) driven by random sequences of store views, requests and peer
//! answers, against a model of the store. Must never panic; after every step the plan's state
//! stays within its stated bounds; and every payload it hands to the store is on the chain the
//! sequencer signed (the true chain) and links by parent hash to a block already stored above it.
//!
//! The world: a true chain of [`CHAIN_LEN`] blocks on genesis, whose top block arrived by gossip,
//! and [`FAKE_CHAINS`] self-consistent fake chains with the same numbers (what any peer can make).
//! Peers answer requests with true or fake blocks, "not found", error codes or timeouts; the
//! answers always carry the number asked for, as the client's checks (`check_response`) guarantee,
//! except in one step that feeds an answer nobody asked for.
//!
//! Input: `max_gap byte ‖ (op, arg) pairs`. Ops: 0 re-plan from the store's view, 1 a peer takes
//! a request, 2 an in-flight request is answered, 3 a request is handed back, 4 the peer count
//! changes, 5 time passes, 6 a true block arrives by gossip, 7 an unasked-for answer. Seeds:
//! `fuzz/seeds/sync_plan/`, written by `tests/fuzz_seeds.rs`.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use alloy_primitives::B256;
use libfuzzer_sys::fuzz_target;
use libp2p::PeerId;
use op_gossip::block_builder::{BlockSpec, L1Info, build_block};
use op_gossip::chain_config::load_chain;
use op_gossip::p2p::reqresp::client::RequestError;
use op_gossip::store::{BlockLink, BlockRef, Hole, Holes, StoredBlock};
use op_gossip::sync::plan::{
    PlanConfig, QUARANTINE_CAPACITY, QUARANTINE_MAX_BYTES, SyncAction, SyncPlan, TRUSTED_CAPACITY,
};
use op_gossip::wire::BlockVersion;

/// Blocks in the true chain (numbers 1..=CHAIN_LEN). With the fake chains that is more payloads
/// than the quarantine holds, so its eviction is reached.
const CHAIN_LEN: u64 = 40;
/// Fake chains with the same numbers.
const FAKE_CHAINS: u64 = 3;
/// Peers that answer.
const PEERS: usize = 4;
/// The store's scan limit per re-plan (the node's is larger than any hole here).
const MAX_SCAN: usize = 8192;

struct World {
    /// `chains[0]` is the true chain, the rest fakes; `chains[c][n - 1]` is block `n`.
    chains: Vec<Vec<StoredBlock>>,
    peers: [PeerId; PEERS],
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let chain = load_chain("devnet").expect("embedded chain");
        let chains = (0..=FAKE_CHAINS)
            .map(|salt| {
                let mut parent = chain.genesis.l2.hash;
                (1..=CHAIN_LEN)
                    .map(|number| {
                        let envelope = build_block(
                            &chain,
                            &BlockSpec {
                                parent_hash: parent,
                                number,
                                timestamp: 1_000 + number * 2 + salt,
                                target_tx_bytes: 0,
                                l1: L1Info::default(),
                            },
                        );
                        parent = envelope.payload.block_hash;
                        StoredBlock {
                            version: BlockVersion::V4,
                            envelope,
                            ssz: None,
                        }
                    })
                    .collect()
            })
            .collect();
        // Identity multihashes: deterministic peer ids.
        let peers = std::array::from_fn(|i| {
            PeerId::from_bytes(&[0, 4, 0xf0, 0x0d, 0, i as u8]).expect("identity multihash")
        });
        World { chains, peers }
    })
}

fn block(chain: usize, number: u64) -> &'static StoredBlock {
    &world().chains[chain][number as usize - 1]
}

fn link(block: &StoredBlock) -> BlockLink {
    BlockLink {
        id: block.id(),
        parent: block.envelope.payload.parent_hash,
    }
}

/// The store as the plan sees it: the head rule and `Store::holes`, in memory.
struct Model {
    head: BlockRef,
    stored: BTreeMap<u64, Vec<BlockLink>>,
}

impl Model {
    fn insert(&mut self, block: &StoredBlock) {
        let at = self.stored.entry(block.id().number).or_default();
        if !at.iter().any(|l| l.id == block.id()) {
            at.push(link(block));
        }
        self.extend_head();
    }

    fn extend_head(&mut self) {
        while let Some(next) = self
            .stored
            .get(&(self.head.number + 1))
            .and_then(|at| at.iter().find(|l| l.parent == self.head.hash))
        {
            self.head = next.id;
        }
    }

    fn holes(&self) -> Holes {
        let mut out = Holes {
            head: Some(self.head),
            ..Holes::default()
        };
        let mut below = self.head.number;
        let links = self
            .stored
            .range(self.head.number + 1..)
            .flat_map(|(_, at)| at.iter().copied())
            .take(MAX_SCAN);
        for link in links {
            let number = link.id.number;
            if number == self.head.number + 1 {
                out.unlinked_next.get_or_insert(link);
            } else if number > below + 1 {
                out.holes.push(Hole {
                    after: below,
                    before: number,
                    above: vec![link],
                });
            } else if let Some(hole) = out.holes.last_mut().filter(|h| h.before == number) {
                hole.above.push(link);
            }
            below = number;
        }
        out
    }
}

struct Run {
    plan: SyncPlan,
    model: Model,
    max_gap: u64,
    now: Instant,
    /// Requests handed out and not yet answered or returned.
    asked: Vec<(u64, PeerId)>,
}

impl Run {
    fn apply(&mut self, actions: Vec<SyncAction>) {
        for action in actions {
            match action {
                SyncAction::Store { block, .. } => {
                    let id = block.id();
                    assert_eq!(
                        id.hash,
                        self.block_hash(0, id.number),
                        "stored a payload off the signed chain: {id:?}"
                    );
                    let links = self
                        .model
                        .stored
                        .get(&(id.number + 1))
                        .is_some_and(|above| above.iter().any(|l| l.parent == id.hash));
                    assert!(
                        links,
                        "stored {id:?}, which no stored block claims as parent"
                    );
                    self.model.insert(&block);
                }
                SyncAction::Reanchor(to) => {
                    let stored = self.model.stored.get(&to.number);
                    assert!(
                        stored.is_some_and(|at| at.iter().any(|l| l.id == to)),
                        "re-anchored to {to:?}, which is not stored"
                    );
                    assert!(to.number > self.model.head.number, "re-anchored downwards");
                    self.model.head = to;
                    self.model.extend_head();
                }
                SyncAction::Score { .. } => {}
            }
        }
    }

    fn block_hash(&self, chain: usize, number: u64) -> B256 {
        block(chain, number).envelope.payload.block_hash
    }

    fn answer(&mut self, peer: PeerId, number: u64, kind: u8) {
        let answer = match kind {
            0..=2 => Ok(block(0, number).clone()),
            3 | 4 => Ok(block(usize::from(kind - 2) % FAKE_CHAINS as usize + 1, number).clone()),
            5 => Err(RequestError::NotFound),
            6 => Err(RequestError::ErrorCode(3)),
            _ => Err(RequestError::Timeout("reading the response")),
        };
        let actions = self.plan.on_response(peer, number, answer, self.now);
        self.apply(actions);
    }

    fn check_bounds(&self) {
        let f = self.plan.footprint();
        assert!((f.queued + f.in_flight) as u64 <= self.max_gap, "{f:?}");
        assert!(f.in_flight <= self.asked.len(), "{f:?}");
        assert!(f.quarantined <= QUARANTINE_CAPACITY, "{f:?}");
        assert!(f.quarantined_bytes <= QUARANTINE_MAX_BYTES, "{f:?}");
        assert!(f.trusted <= TRUSTED_CAPACITY, "{f:?}");
        // Only numbers of the chain are ever asked for, promoted or expected.
        assert!(f.promoted as u64 <= CHAIN_LEN, "{f:?}");
        assert!(f.expected as u64 <= CHAIN_LEN, "{f:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&gap, ops)) = data.split_first() else {
        return;
    };
    let world = world();
    let max_gap = 1 + u64::from(gap) % (CHAIN_LEN + 8);
    let mut run = Run {
        plan: SyncPlan::new(PlanConfig {
            max_gap,
            replan_after_not_found: Duration::from_secs(4),
        }),
        model: Model {
            head: BlockRef {
                number: 0,
                hash: B256::ZERO,
            },
            stored: BTreeMap::new(),
        },
        max_gap,
        now: Instant::now(),
        asked: Vec::new(),
    };
    // The top of the chain arrived by gossip.
    run.model.insert(block(0, CHAIN_LEN));
    run.plan.set_peer_count(PEERS);
    for op in ops.chunks_exact(2) {
        let (code, arg) = (op[0] % 8, op[1]);
        let peer = world.peers[usize::from(arg) % PEERS];
        match code {
            0 => {
                let actions = run.plan.on_holes(&run.model.holes(), run.now);
                run.apply(actions);
            }
            1 => {
                if let Some(number) = run.plan.next_request(&peer) {
                    assert!((1..=CHAIN_LEN).contains(&number), "asked for {number}");
                    run.asked.push((number, peer));
                }
            }
            2 | 3 if !run.asked.is_empty() => {
                let (number, peer) = run.asked.remove(usize::from(arg >> 3) % run.asked.len());
                if code == 2 {
                    run.answer(peer, number, arg & 7);
                } else {
                    run.plan.return_request(number);
                }
            }
            4 => run.plan.set_peer_count(usize::from(arg) % (PEERS + 1)),
            5 => run.now += Duration::from_secs(u64::from(arg)),
            6 => run.model.insert(block(0, 1 + u64::from(arg) % CHAIN_LEN)),
            7 => run.answer(peer, 1 + u64::from(arg >> 2) % CHAIN_LEN, arg & 3),
            _ => {}
        }
        run.check_bounds();
    }
});
