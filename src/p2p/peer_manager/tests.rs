//! The peer manager's decisions, driven without a swarm: reports in, actions out, time passed
//! in.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::{Address, B256};
use libp2p::{Multiaddr, PeerId};

use super::*;
use crate::p2p::peers::app_score::INVALID_BLOCK_WEIGHT;
use crate::p2p::peers::book::Direction;
use crate::p2p::peers::equivocation::HONEST_BLOCKS_PER_HEIGHT;
use crate::validate::{PeerFault, ValidBlock, ValidationError};

const NOW: u64 = 1_000_000;

fn manager(static_ids: &[PeerId], limits: ConnectionLimits) -> PeerManager {
    PeerManager::new(PeerManagerConfig {
        scores: AppScores::new(),
        bans: Arc::new(BanList::in_memory()),
        lists: Arc::new(PeerLists::in_memory()),
        scorebook: Arc::new(ScoreBook::in_memory(Duration::from_secs(1200))),
        static_ids: static_ids.iter().copied().collect::<HashSet<_>>(),
        ban: BanConfig::default(),
        limits,
    })
}

/// Connects `peer` from `ip` at `at` in the manager's book.
fn connect(m: &mut PeerManager, peer: PeerId, ip: &str, at: u64) {
    let addr: Multiaddr = format!("/ip4/{ip}/tcp/9222").parse().unwrap();
    m.book_mut()
        .on_connected(peer, Direction::Inbound, addr, at);
}

/// What the gossipsub total would be after the pushes in `actions` (no other terms).
fn pushed(actions: &[PeerAction], peer: PeerId) -> Option<f64> {
    actions.iter().rev().find_map(|a| match a {
        PeerAction::PushScore { peer: p, score } if *p == peer => Some(*score),
        _ => None,
    })
}

fn judgement(result: Result<ValidBlock, ValidationError>) -> GossipJudgement {
    GossipJudgement::of(&result)
}

#[test]
fn a_provable_fault_is_pushed_judged_at_once_and_bans_the_forwarder() {
    let mut m = manager(&[], ConnectionLimits::default());
    let peer = PeerId::random();
    connect(&mut m, peer, "10.0.0.1", NOW);

    let (charged, actions) = m.on_gossip(
        peer,
        GossipJudgement::Fault(PeerFault::WrongBlockHash),
        true,
    );
    assert_eq!(charged, Some(PeerOutcome::InvalidBlock));
    assert_eq!(pushed(&actions, peer), Some(INVALID_BLOCK_WEIGHT));
    assert_eq!(actions.last(), Some(&PeerAction::Judge(peer)));

    let actions = m.judge(peer, Some(INVALID_BLOCK_WEIGHT), NOW);
    let until = NOW + crate::p2p::DEFAULT_BAN_DURATION.as_secs();
    assert!(actions.contains(&PeerAction::Banned {
        peer,
        score: INVALID_BLOCK_WEIGHT,
        until
    }));
    assert!(actions.contains(&PeerAction::Disconnect {
        peer,
        reason: DisconnectReason::ScoreBelowThreshold
    }));
    assert!(
        m.refusal(Some(peer), None, NOW + 1)
            .is_some_and(|r| r.is_ban()),
        "the gate refuses it from now on"
    );
    assert!(
        m.judge(peer, Some(-500.0), NOW + 2).is_empty(),
        "banned once"
    );
}

#[test]
fn rejects_that_depend_on_our_clock_or_settings_cost_nothing() {
    let mut m = manager(&[], ConnectionLimits::default());
    let peer = PeerId::random();
    let clock_dependent = [
        ValidationError::TimestampTooOld {
            timestamp: 1,
            now: NOW,
            window_secs: 60,
        },
        ValidationError::TimestampTooNew {
            timestamp: NOW + 100,
            now: NOW,
            window_secs: 5,
        },
        ValidationError::UnknownSigner {
            recovered: Address::ZERO,
        },
        ValidationError::SignerUnset,
    ];
    for error in clock_dependent {
        let (charged, actions) = m.on_gossip(peer, judgement(Err(error)), true);
        assert_eq!(charged, None);
        assert!(actions.is_empty());
    }
    assert_eq!(m.counters(&peer).score(), 0.0);
}

#[test]
fn the_height_limit_is_charged_only_to_a_peer_that_delivered_too_many_itself() {
    let mut m = manager(&[], ConnectionLimits::default());
    let honest = PeerId::random();
    let equivocator = PeerId::random();
    let over = |i: u8| GossipJudgement::OverHeight {
        number: 7,
        hash: B256::repeat_byte(i),
    };
    // An honest forwarder's 7th block at a height is our REJECT, but it only forwarded what it
    // accepted: not charged.
    for i in 0..HONEST_BLOCKS_PER_HEIGHT as u8 - 1 {
        let seen = GossipJudgement::Seen {
            number: 7,
            hash: B256::repeat_byte(i),
        };
        assert_eq!(m.on_gossip(honest, seen, true).0, None);
    }
    assert_eq!(m.on_gossip(honest, over(100), true).0, None);
    // A peer delivering more distinct blocks at one height than an honest node may is charged.
    let mut charged = None;
    for i in 0..=HONEST_BLOCKS_PER_HEIGHT as u8 {
        charged = m.on_gossip(equivocator, over(i), true).0;
    }
    assert_eq!(charged, Some(PeerOutcome::InvalidBlock));
    assert_eq!(m.counters(&honest).invalid_blocks, 0.0);
}

#[test]
fn static_peers_unscored_peers_and_disabled_bans_are_never_banned() {
    let fixed = PeerId::random();
    let mut m = manager(&[fixed], ConnectionLimits::default());
    assert!(m.judge(fixed, Some(-1000.0), NOW).is_empty(), "static");
    let other = PeerId::random();
    assert!(m.judge(other, None, NOW).is_empty(), "no scoring: no score");
    assert!(
        m.judge(other, Some(-99.0), NOW).is_empty(),
        "above the threshold"
    );

    let mut off = manager(&[], ConnectionLimits::default());
    off.ban.enabled = false;
    assert!(off.judge(other, Some(-1000.0), NOW).is_empty());
}

#[test]
fn a_penalty_of_a_disconnected_peer_is_recorded_without_actions() {
    let mut m = manager(&[], ConnectionLimits::default());
    let peer = PeerId::random();
    assert!(
        m.report(peer, PeerOutcome::RejectedPayload, false)
            .is_empty()
    );
    assert_eq!(m.counters(&peer).rejected_payloads, 1.0);
    let actions = m.report(peer, PeerOutcome::ValidResponse, true);
    assert_eq!(actions.len(), 1, "a valid response is pushed, not judged");
}

#[test]
fn an_expired_ban_lets_the_peer_start_afresh() {
    let mut m = manager(&[], ConnectionLimits::default());
    let peer = PeerId::random();
    m.report(peer, PeerOutcome::InvalidSignature, true);
    m.judge(peer, Some(INVALID_BLOCK_WEIGHT), NOW);
    let until = NOW + crate::p2p::DEFAULT_BAN_DURATION.as_secs();
    assert!(m.expire_bans().is_empty(), "still banned");
    // The gate finds the ban expired at the peer's next attempt.
    assert!(m.refusal(Some(peer), None, until).is_none());
    let actions = m.expire_bans();
    assert!(actions.contains(&PeerAction::PushScore { peer, score: 0.0 }));
    assert!(actions.contains(&PeerAction::ForgetRecords(vec![peer])));
    assert_eq!(m.counters(&peer).score(), 0.0);
}

#[test]
fn an_expired_ban_is_removed_from_disk_by_the_sweep_unless_banned_again() {
    let dir = tempfile::tempdir().unwrap();
    let chain = crate::chain_config::load_chain("devnet").unwrap();
    let store =
        Arc::new(crate::store::Store::open(&dir.path().join("store.redb"), 100, &chain).unwrap());
    let mut m = PeerManager::new(PeerManagerConfig {
        scores: AppScores::new(),
        bans: Arc::new(BanList::load(store, NOW)),
        lists: Arc::new(PeerLists::in_memory()),
        scorebook: Arc::new(ScoreBook::in_memory(Duration::from_secs(1200))),
        static_ids: HashSet::new(),
        ban: BanConfig::default(),
        limits: ConnectionLimits::default(),
    });
    let removal = |peer: PeerId| {
        PeerAction::Persist(crate::store::RecordWrite {
            records: crate::store::PeerRecords::PeerBans,
            key: peer.to_bytes(),
            value: None,
        })
    };
    let (served, again) = (PeerId::random(), PeerId::random());
    for peer in [served, again] {
        m.report(peer, PeerOutcome::InvalidSignature, true);
        m.judge(peer, Some(INVALID_BLOCK_WEIGHT), NOW);
    }
    let until = NOW + crate::p2p::DEFAULT_BAN_DURATION.as_secs();
    // The gate finds both bans expired (no disk write on its path)...
    assert!(m.refusal(Some(served), None, until).is_none());
    assert!(m.refusal(Some(again), None, until).is_none());
    // ...and `again` is banned anew before the sweep: its new record must stay.
    m.report(again, PeerOutcome::InvalidSignature, true);
    let rebanned = m.judge(again, Some(INVALID_BLOCK_WEIGHT), until);
    assert!(
        rebanned
            .iter()
            .any(|a| matches!(a, PeerAction::Banned { .. }))
    );
    let actions = m.expire_bans();
    assert!(actions.contains(&removal(served)));
    assert!(
        !actions.contains(&removal(again)),
        "a new ban is not removed"
    );
}

#[test]
fn trimming_closes_the_lowest_scores_beyond_grace_and_keeps_protected_peers() {
    let limits = ConnectionLimits {
        lo: 2,
        hi: 3,
        grace: Duration::from_secs(30),
    };
    let fixed = PeerId::random();
    let mut m = manager(&[fixed], limits);
    let [low, mid, high, fresh] = [(); 4].map(|()| PeerId::random());
    for peer in [fixed, low, mid, high] {
        connect(&mut m, peer, "10.0.0.2", NOW - 60);
    }
    connect(&mut m, fresh, "10.0.0.3", NOW - 5);
    let scored = [
        (fixed, -50.0),
        (low, -10.0),
        (mid, -1.0),
        (high, 3.0),
        (fresh, -90.0),
    ];
    let actions = m.trim(&scored, NOW);
    let closed: Vec<PeerId> = actions
        .iter()
        .filter_map(|a| match a {
            PeerAction::Disconnect { peer, .. } => Some(*peer),
            _ => None,
        })
        .collect();
    // 5 connected, down to 2: three closed, lowest first, never the static or the fresh one.
    assert_eq!(closed, vec![low, mid, high]);
    assert!(
        m.trim(&scored[..3], NOW).is_empty(),
        "at or under hi: nothing"
    );
}

#[test]
fn an_operator_block_or_ban_closes_the_connections_the_gate_now_refuses() {
    let mut m = manager(&[], ConnectionLimits::default());
    let [a, b] = [(); 2].map(|()| PeerId::random());
    connect(&mut m, a, "10.1.0.1", NOW);
    connect(&mut m, b, "10.2.0.1", NOW);
    let connected = [a, b];

    let change = OperatorChange::List(ListChange::BlockSubnet("10.1.0.0/16".parse().unwrap()));
    let actions = m.operator(change, &connected, NOW).unwrap();
    assert_eq!(
        actions,
        vec![PeerAction::Disconnect {
            peer: a,
            reason: DisconnectReason::Blocked
        }]
    );
    let actions = m
        .operator(
            OperatorChange::BanPeer {
                peer: b,
                until: NOW + 10,
            },
            &connected,
            NOW,
        )
        .unwrap();
    assert!(actions.contains(&PeerAction::Disconnect {
        peer: b,
        reason: DisconnectReason::Banned
    }));
    // Lifting changes nothing open; protection keeps a peer from trimming.
    assert!(
        m.operator(OperatorChange::UnbanPeer(b), &connected, NOW)
            .unwrap()
            .is_empty()
    );
    m.operator(
        OperatorChange::List(ListChange::Protect(b)),
        &connected,
        NOW,
    )
    .unwrap();
    assert!(m.is_protected(&b));
    // opp2p_disconnectPeer: closed, addresses forgotten, unblocked.
    m.operator(OperatorChange::List(ListChange::BlockPeer(b)), &[], NOW)
        .unwrap();
    let actions = m
        .operator(OperatorChange::Disconnect(b), &connected, NOW)
        .unwrap();
    assert!(actions.contains(&PeerAction::Disconnect {
        peer: b,
        reason: DisconnectReason::Operator
    }));
    assert!(m.refusal(Some(b), None, NOW).is_none(), "unblocked");
}

#[test]
fn the_monitor_visits_every_connected_peer_in_turn() {
    let mut m = manager(&[], ConnectionLimits::default());
    let peers: Vec<PeerId> = (0..5).map(|_| PeerId::random()).collect();
    let visited: HashSet<PeerId> = (0..5)
        .filter_map(|_| m.next_to_check(peers.clone()))
        .collect();
    assert_eq!(visited.len(), 5);
    assert_eq!(m.next_to_check(Vec::new()), None);
}
