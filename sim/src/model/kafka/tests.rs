//! The broker's behaviour through [`KafkaModel::handle`] and [`KafkaModel::tick`]: the log and
//! producer path, the group coordinator's rounds, timeouts and commits, as one client sees them.
//! (The assignors' own tests are in `assign.rs`, the trace fields' in `event.rs`.)

use super::*;
use std::collections::BTreeSet;

fn rec(key: &str) -> Record {
    Record {
        key: key.into(),
        headers: std::sync::Arc::new([]),
        value: key.as_bytes().into(),
    }
}

fn config(assignor: Assignor) -> KafkaConfig {
    KafkaConfig {
        assignor,
        session_timeout_ms: 10_000,
        heartbeat_interval_ms: 3_000,
        max_poll_interval_ms: 30_000,
        fetch_max_wait_ms: 500,
        idempotent_producer: false,
    }
}

fn model(partitions: u32) -> KafkaModel {
    KafkaModel::with_config(partitions, &config(Assignor::Range))
}

/// Joins as a new member: (its id, the generation, whether the round closed).
fn join_new(k: &mut KafkaModel, client: &str, now: u64) -> (String, u64, bool) {
    let req = KafkaRequest::JoinGroup {
        member_id: None,
        client: client.into(),
    };
    match k.handle(req, now) {
        KafkaReply::Joined {
            member_id,
            generation,
        } => (member_id, generation, true),
        KafkaReply::JoinPending {
            member_id,
            generation,
        } => (member_id, generation, false),
        other => panic!("join: {other:?}"),
    }
}

fn rejoin(k: &mut KafkaModel, id: &str, now: u64) -> KafkaReply {
    k.handle(
        KafkaRequest::JoinGroup {
            member_id: Some(id.into()),
            client: "w".into(),
        },
        now,
    )
}

fn sync(k: &mut KafkaModel, id: &str, generation: u64, now: u64) -> Result<Vec<u32>, GroupError> {
    let req = KafkaRequest::SyncGroup {
        member_id: id.into(),
        generation,
    };
    match k.handle(req, now) {
        KafkaReply::Assignment {
            partitions,
            generation: g,
        } => {
            assert_eq!(g, generation);
            Ok(partitions)
        }
        KafkaReply::Error(e) => Err(e),
        other => panic!("sync: {other:?}"),
    }
}

fn heartbeat(k: &mut KafkaModel, id: &str, generation: u64, now: u64) -> KafkaReply {
    k.handle(
        KafkaRequest::Heartbeat {
            member_id: id.into(),
            generation,
        },
        now,
    )
}

fn commit(
    k: &mut KafkaModel,
    id: &str,
    generation: u64,
    partition: u32,
    offset: u64,
    now: u64,
) -> KafkaReply {
    k.handle(
        KafkaRequest::CommitGroup {
            member_id: id.into(),
            generation,
            partition,
            offset,
        },
        now,
    )
}

/// A fetch of one partition: its records, `None` for an error.
fn fetch(
    k: &mut KafkaModel,
    id: &str,
    generation: u64,
    partition: u32,
    from: u64,
    now: u64,
) -> Option<Vec<(u64, Record)>> {
    let req = KafkaRequest::FetchGroup {
        member_id: id.into(),
        generation,
        partitions: vec![(partition, from)],
        max: 100,
        max_wait_ms: 500,
    };
    match k.handle(req, now) {
        KafkaReply::Records(mut parts) => {
            assert_eq!(parts.len(), 1);
            let (p, records) = parts.pop().expect("one partition");
            assert_eq!(p, partition);
            Some(records)
        }
        _ => None,
    }
}

fn committed(k: &mut KafkaModel, now: u64) -> Vec<Option<u64>> {
    match k.handle(KafkaRequest::CommittedGroup, now) {
        KafkaReply::GroupOffsets(o) => o,
        other => panic!("committed: {other:?}"),
    }
}

fn removed(events: &[GroupEvent]) -> Vec<(String, &'static str)> {
    events
        .iter()
        .filter_map(|e| match e {
            GroupEvent::MemberRemoved { member, reason } => Some((member.clone(), *reason)),
            _ => None,
        })
        .collect()
}

/// Two members A (first id) and B, both stable in generation 2, partitions as assigned.
fn two_stable_members(k: &mut KafkaModel) -> (String, String, u64) {
    let (a, g1, done) = join_new(k, "worker-1", 0);
    assert!(done);
    assert_eq!(g1, 1);
    let (b, g2, done) = join_new(k, "worker-2", 10);
    assert!(!done, "A has not rejoined yet");
    assert_eq!(
        rejoin(k, &a, 20),
        KafkaReply::Joined {
            member_id: a.clone(),
            generation: g2
        }
    );
    (a, b, g2)
}

#[test]
fn records_keep_their_order_per_partition_and_a_fetch_resumes_from_an_offset() {
    let mut k = KafkaModel::new(3);
    let mut placed = Vec::new();
    for i in 0..20 {
        let req = KafkaRequest::ProduceSeq {
            producer: "p".into(),
            sequence: i,
            record: rec(&format!("e{i}")),
        };
        let KafkaReply::Produced { partition, offset } = k.handle(req, 0) else {
            panic!()
        };
        assert_eq!(partition, partition_of(&format!("e{i}"), 3));
        placed.push((partition, offset));
    }
    let p = placed[0].0;
    // Fetch checks neither membership nor generation.
    let Some(all) = fetch(&mut k, "anyone", 0, p, 0, 0) else {
        panic!()
    };
    assert_eq!(all.len() as u64, k.log_len(p));
    assert!(all.windows(2).all(|w| w[0].0 + 1 == w[1].0));
    let Some(tail) = fetch(&mut k, "anyone", 0, p, 1, 0) else {
        panic!()
    };
    assert_eq!(tail, all[1..].to_vec());
    let events = k.take_events();
    assert_eq!(events.len(), 20);
    assert!(events
        .iter()
        .all(|e| matches!(e, GroupEvent::Produced { retry: false, .. })));
}

#[test]
fn a_first_member_joins_an_empty_group_syncs_every_partition_and_heartbeats() {
    let mut k = model(3);
    assert_eq!(k.group_state(), GroupState::Empty);
    let (a, generation, done) = join_new(&mut k, "worker-2", 0);
    assert_eq!(a, "worker-2-1");
    assert_eq!(generation, 1);
    assert!(done);
    assert_eq!(k.group_state(), GroupState::Stable);
    assert_eq!(sync(&mut k, &a, 1, 5), Ok(vec![0, 1, 2]));
    assert_eq!(heartbeat(&mut k, &a, 1, 3_000), KafkaReply::HeartbeatOk);
    assert_eq!(
        heartbeat(&mut k, &a, 0, 3_001),
        KafkaReply::Error(GroupError::IllegalGeneration)
    );
    assert_eq!(
        heartbeat(&mut k, "worker-9-9", 1, 3_002),
        KafkaReply::Error(GroupError::UnknownMemberId)
    );
    assert_eq!(sync(&mut k, &a, 2, 3_003), Err(GroupError::IllegalGeneration));
    // Heartbeats every 3 s keep it in the group well past the session timeout.
    for t in (6_000..60_000).step_by(3_000) {
        assert_eq!(heartbeat(&mut k, &a, 1, t), KafkaReply::HeartbeatOk);
        assert_eq!(fetch(&mut k, &a, 1, 0, 0, t), Some(vec![]));
    }
    assert_eq!(k.members(), vec![a.clone()]);
    assert_eq!(
        k.take_events(),
        vec![
            GroupEvent::Rebalance {
                generation: 1,
                reason: "join",
                members: vec![a.clone()]
            },
            GroupEvent::Join {
                member: a.clone(),
                generation: 1
            },
            GroupEvent::Assignment {
                generation: 1,
                assignment: BTreeMap::from([(a, vec![0, 1, 2])])
            },
        ]
    );
}

#[test]
fn a_second_member_joining_makes_the_first_rejoin_and_both_end_with_a_disjoint_cover() {
    for assignor in [Assignor::Range, Assignor::RoundRobin] {
        let mut k = KafkaModel::with_config(5, &config(assignor));
        let (a, _, _) = join_new(&mut k, "worker-1", 0);
        assert_eq!(sync(&mut k, &a, 1, 1), Ok(vec![0, 1, 2, 3, 4]));
        let (b, g, done) = join_new(&mut k, "worker-2", 10);
        assert_eq!(g, 2);
        assert!(!done);
        assert_eq!(k.group_state(), GroupState::PreparingRebalance);
        // A learns of the rebalance from its heartbeat, its sync and its commit.
        assert_eq!(
            heartbeat(&mut k, &a, 1, 11),
            KafkaReply::Error(GroupError::RebalanceInProgress)
        );
        assert_eq!(sync(&mut k, &a, 1, 12), Err(GroupError::RebalanceInProgress));
        assert_eq!(
            commit(&mut k, &a, 1, 0, 3, 13),
            KafkaReply::Error(GroupError::RebalanceInProgress)
        );
        // B waits: joining again still pends.
        assert_eq!(
            rejoin(&mut k, &b, 14),
            KafkaReply::JoinPending {
                member_id: b.clone(),
                generation: 2
            }
        );
        assert_eq!(
            rejoin(&mut k, &a, 15),
            KafkaReply::Joined {
                member_id: a.clone(),
                generation: 2
            }
        );
        assert_eq!(k.group_state(), GroupState::Stable);
        let pa = sync(&mut k, &a, 2, 16).unwrap();
        let pb = sync(&mut k, &b, 2, 17).unwrap();
        let expected = match assignor {
            Assignor::Range => (vec![0, 1, 2], vec![3, 4]),
            Assignor::RoundRobin => (vec![0, 2, 4], vec![1, 3]),
        };
        assert_eq!((pa.clone(), pb.clone()), expected);
        let all: BTreeSet<u32> = pa.iter().chain(&pb).copied().collect();
        assert_eq!(all.len(), 5);
        let events = k.take_events();
        assert!(events.contains(&GroupEvent::Rebalance {
            generation: 2,
            reason: "join",
            members: vec![a.clone(), b.clone()]
        }));
        assert_eq!(
            events.last(),
            Some(&GroupEvent::Assignment {
                generation: 2,
                assignment: BTreeMap::from([(a, pa), (b, pb)])
            })
        );
    }
}

#[test]
fn a_member_silent_past_the_session_timeout_is_removed_and_the_others_rebalance() {
    let mut k = model(4);
    let (a, b, g) = two_stable_members(&mut k);
    k.take_events();
    // B heartbeats; A goes silent after t=20 (its rejoin).
    for t in (3_000..=9_000).step_by(3_000) {
        assert_eq!(heartbeat(&mut k, &b, g, t), KafkaReply::HeartbeatOk);
    }
    k.tick(10_020); // exactly the session timeout: still in
    assert_eq!(k.members().len(), 2);
    assert_eq!(
        heartbeat(&mut k, &b, g, 10_021),
        KafkaReply::Error(GroupError::RebalanceInProgress)
    );
    let events = k.take_events();
    assert_eq!(removed(&events), vec![(a.clone(), "session_timeout")]);
    assert!(events.contains(&GroupEvent::Rebalance {
        generation: g + 1,
        reason: "session_timeout",
        members: vec![b.clone()]
    }));
    assert_eq!(
        rejoin(&mut k, &b, 10_022),
        KafkaReply::Joined {
            member_id: b.clone(),
            generation: g + 1
        }
    );
    assert_eq!(sync(&mut k, &b, g + 1, 10_023), Ok(vec![0, 1, 2, 3]));
    // A is gone: it must join again as a new member.
    assert_eq!(
        heartbeat(&mut k, &a, g, 10_024),
        KafkaReply::Error(GroupError::UnknownMemberId)
    );
    assert_eq!(
        rejoin(&mut k, &a, 10_025),
        KafkaReply::Error(GroupError::UnknownMemberId)
    );
}

#[test]
fn tick_expires_a_member_without_any_request() {
    let mut k = model(2);
    let (a, _, _) = join_new(&mut k, "w", 0);
    k.take_events();
    k.tick(10_001);
    assert!(k.members().is_empty());
    assert_eq!(k.group_state(), GroupState::Empty);
    assert_eq!(
        k.take_events(),
        vec![
            GroupEvent::MemberRemoved {
                member: a,
                reason: "session_timeout"
            },
            GroupEvent::Rebalance {
                generation: 2,
                reason: "session_timeout",
                members: vec![]
            },
            GroupEvent::Assignment {
                generation: 2,
                assignment: BTreeMap::new()
            },
        ]
    );
}

#[test]
fn a_member_that_stops_polling_becomes_a_zombie_whose_fetch_works_but_whose_commit_is_rejected() {
    let mut k = model(2);
    let (a, b, g) = two_stable_members(&mut k);
    let pa = sync(&mut k, &a, g, 30).unwrap();
    let pb = sync(&mut k, &b, g, 30).unwrap();
    assert_eq!((pa.clone(), pb), (vec![0], vec![1]));
    for i in 0..10 {
        k.handle(
            KafkaRequest::ProduceSeq {
                producer: "p".into(),
                sequence: i,
                record: rec(&format!("e{i}")),
            },
            40,
        );
    }
    let p = pa[0];
    assert!(matches!(fetch(&mut k, &a, g, p, 0, 50), Some(r) if !r.is_empty()));
    // A is stuck in its handler: its heartbeat thread goes on, it does not poll. B polls.
    let mut t = 3_000;
    while t <= 30_000 {
        assert_eq!(heartbeat(&mut k, &a, g, t), KafkaReply::HeartbeatOk);
        assert_eq!(heartbeat(&mut k, &b, g, t), KafkaReply::HeartbeatOk);
        assert!(fetch(&mut k, &b, g, 1, 0, t).is_some());
        t += 3_000;
    }
    // 30 s after its last poll (t=50) A is still in; just past it, it is removed.
    k.tick(30_050);
    assert_eq!(k.members().len(), 2);
    k.tick(30_051);
    assert_eq!(k.members(), vec![b.clone()]);
    let events = k.take_events();
    assert_eq!(removed(&events), vec![(a.clone(), "max_poll_interval")]);
    assert!(events.contains(&GroupEvent::Rebalance {
        generation: g + 1,
        reason: "max_poll_interval",
        members: vec![b.clone()]
    }));
    // The zombie finishes its record and commits: refused, the group's offset unmoved.
    assert_eq!(
        commit(&mut k, &a, g, p, 1, 30_100),
        KafkaReply::Error(GroupError::UnknownMemberId)
    );
    assert_eq!(committed(&mut k, 30_100), vec![None, None]);
    assert_eq!(
        k.take_events(),
        vec![GroupEvent::CommitRejected {
            member: a.clone(),
            generation: g,
            partition: p,
            offset: 1,
            error: GroupError::UnknownMemberId
        }]
    );
    // It can still fetch (Fetch is no group request), and that does not bring it back.
    assert!(matches!(fetch(&mut k, &a, g, p, 1, 30_200), Some(r) if r.len() as u64 + 1 == k.log_len(p)));
    assert_eq!(k.members(), vec![b.clone()]);
    // B takes over partition 0 and starts from the committed offset (none: 0).
    assert!(matches!(rejoin(&mut k, &b, 30_300), KafkaReply::Joined { .. }));
    assert_eq!(sync(&mut k, &b, g + 1, 30_301), Ok(vec![0, 1]));
    // A commit from B's old generation is refused too.
    assert_eq!(
        commit(&mut k, &b, g, 1, 1, 30_302),
        KafkaReply::Error(GroupError::IllegalGeneration)
    );
}

#[test]
fn commits_need_a_current_member_in_the_current_generation_of_a_stable_group() {
    let mut k = model(2);
    let (a, g1, _) = join_new(&mut k, "w", 0);
    assert_eq!(commit(&mut k, &a, g1, 0, 3, 1), KafkaReply::Committed);
    assert_eq!(
        commit(&mut k, &a, g1 + 1, 0, 4, 2),
        KafkaReply::Error(GroupError::IllegalGeneration)
    );
    assert_eq!(
        commit(&mut k, &a, g1 - 1, 0, 4, 3),
        KafkaReply::Error(GroupError::IllegalGeneration)
    );
    assert_eq!(
        commit(&mut k, "nobody", g1, 0, 4, 4),
        KafkaReply::Error(GroupError::UnknownMemberId)
    );
    assert_eq!(
        commit(&mut k, &a, g1, 7, 4, 5),
        KafkaReply::Error(GroupError::UnknownTopicOrPartition)
    );
    let (b, g2, _) = join_new(&mut k, "w", 6);
    for (id, g) in [(&a, g1), (&a, g2), (&b, g2)] {
        assert_eq!(
            commit(&mut k, id, g, 0, 9, 7),
            KafkaReply::Error(GroupError::RebalanceInProgress)
        );
    }
    assert!(matches!(rejoin(&mut k, &a, 8), KafkaReply::Joined { .. }));
    assert_eq!(
        commit(&mut k, &a, g1, 0, 9, 9),
        KafkaReply::Error(GroupError::IllegalGeneration)
    );
    assert_eq!(commit(&mut k, &b, g2, 1, 2, 10), KafkaReply::Committed);
    assert_eq!(committed(&mut k, 11), vec![Some(3), Some(2)]);
    let rejected = k
        .take_events()
        .iter()
        .filter(|e| matches!(e, GroupEvent::CommitRejected { .. }))
        .count();
    assert_eq!(rejected, 8);
}

#[test]
fn a_leaving_member_triggers_a_rebalance_and_the_last_to_leave_empties_the_group() {
    let mut k = model(3);
    let (a, b, g) = two_stable_members(&mut k);
    k.take_events();
    assert_eq!(
        k.handle(KafkaRequest::LeaveGroup { member_id: a.clone() }, 100),
        KafkaReply::Left
    );
    assert_eq!(
        k.handle(KafkaRequest::LeaveGroup { member_id: a.clone() }, 101),
        KafkaReply::Error(GroupError::UnknownMemberId)
    );
    assert_eq!(k.group_state(), GroupState::PreparingRebalance);
    assert!(matches!(rejoin(&mut k, &b, 102), KafkaReply::Joined { generation, .. } if generation == g + 1));
    assert_eq!(sync(&mut k, &b, g + 1, 103), Ok(vec![0, 1, 2]));
    assert_eq!(
        k.handle(KafkaRequest::LeaveGroup { member_id: b.clone() }, 104),
        KafkaReply::Left
    );
    assert_eq!(k.group_state(), GroupState::Empty);
    assert_eq!(k.generation(), g + 2);
    let events = k.take_events();
    assert_eq!(removed(&events), vec![(a, "leave"), (b, "leave")]);
    assert_eq!(
        events.last(),
        Some(&GroupEvent::Assignment {
            generation: g + 2,
            assignment: BTreeMap::new()
        })
    );
    // A new member afterwards starts the next generation.
    let (_, g3, done) = join_new(&mut k, "w", 200);
    assert_eq!((g3, done), (g + 3, true));
}

#[test]
fn a_member_that_never_rejoins_is_removed_at_the_rebalance_timeout() {
    let mut k = model(2);
    let (a, _, _) = join_new(&mut k, "worker-1", 0);
    let (b, g, _) = join_new(&mut k, "worker-2", 1_000);
    k.take_events();
    // A's heartbeat thread keeps its session alive, but it is busy and never rejoins.
    for t in (2_000..=11_000).step_by(3_000) {
        assert_eq!(
            heartbeat(&mut k, &a, 1, t),
            KafkaReply::Error(GroupError::RebalanceInProgress)
        );
        assert!(matches!(rejoin(&mut k, &b, t), KafkaReply::JoinPending { .. }));
    }
    k.tick(11_000); // the round opened at 1 000: its deadline is 11 000
    assert_eq!(k.group_state(), GroupState::PreparingRebalance);
    k.tick(11_001);
    assert_eq!(k.group_state(), GroupState::Stable);
    assert_eq!(k.members(), vec![b.clone()]);
    assert_eq!(
        k.take_events(),
        vec![
            GroupEvent::MemberRemoved {
                member: a.clone(),
                reason: "rebalance_timeout"
            },
            GroupEvent::Assignment {
                generation: g,
                assignment: BTreeMap::from([(b.clone(), vec![0, 1])])
            },
        ]
    );
    assert!(matches!(rejoin(&mut k, &b, 11_002), KafkaReply::Joined { .. }));
    assert_eq!(sync(&mut k, &b, g, 11_003), Ok(vec![0, 1]));
    assert_eq!(
        heartbeat(&mut k, &a, 1, 11_004),
        KafkaReply::Error(GroupError::UnknownMemberId)
    );
}

#[test]
fn a_join_during_an_open_round_joins_that_round_without_a_new_generation() {
    let mut k = model(3);
    let (a, _, _) = join_new(&mut k, "w", 0);
    let (b, g, _) = join_new(&mut k, "w", 1);
    let (c, g_c, done) = join_new(&mut k, "w", 2);
    assert_eq!((g_c, done), (g, false));
    assert!(matches!(rejoin(&mut k, &a, 3), KafkaReply::Joined { generation, .. } if generation == g));
    assert_eq!(sync(&mut k, &a, g, 4), Ok(vec![0]));
    assert_eq!(sync(&mut k, &b, g, 4), Ok(vec![1]));
    assert_eq!(sync(&mut k, &c, g, 4), Ok(vec![2]));
    let rebalances = k
        .take_events()
        .iter()
        .filter(|e| matches!(e, GroupEvent::Rebalance { .. }))
        .count();
    assert_eq!(rebalances, 2, "generations 1 and 2 only");
}

#[test]
fn a_known_member_rejoining_a_stable_group_gets_the_same_generation_without_a_rebalance() {
    let mut k = model(2);
    let (a, b, g) = two_stable_members(&mut k);
    k.take_events();
    assert_eq!(
        rejoin(&mut k, &b, 100),
        KafkaReply::Joined {
            member_id: b.clone(),
            generation: g
        }
    );
    assert_eq!(k.generation(), g);
    assert_eq!(k.take_events(), vec![]);
    assert_eq!(sync(&mut k, &a, g, 101), Ok(vec![0]));
}

#[test]
fn a_broker_restart_restarts_the_members_timers() {
    let mut k = model(1);
    let (a, g, _) = join_new(&mut k, "w", 0);
    k.restarted(9_000);
    k.tick(18_000);
    assert_eq!(heartbeat(&mut k, &a, g, 18_500), KafkaReply::HeartbeatOk);
    k.tick(28_501);
    assert!(k.members().is_empty());
}

#[test]
fn a_new_owner_resumes_from_the_last_committed_offset_so_uncommitted_records_come_again() {
    let mut k = model(1);
    for i in 0..6 {
        k.handle(
            KafkaRequest::ProduceSeq {
                producer: "p".into(),
                sequence: i,
                record: rec(&format!("e{i}")),
            },
            0,
        );
    }
    let (a, g, _) = join_new(&mut k, "worker-1", 0);
    assert_eq!(committed(&mut k, 0), vec![None], "no commit: start from 0");
    let Some(r) = fetch(&mut k, &a, g, 0, 0, 10) else {
        panic!()
    };
    assert_eq!(r.len(), 6);
    // A processes 0..=3, commits "next is 3" after 0..=2, then dies without committing more.
    assert_eq!(commit(&mut k, &a, g, 0, 3, 20), KafkaReply::Committed);
    k.tick(10_021);
    assert!(k.members().is_empty());
    let (b, g2, _) = join_new(&mut k, "worker-2", 10_100);
    assert_eq!(sync(&mut k, &b, g2, 10_101), Ok(vec![0]));
    let from = committed(&mut k, 10_102)[0].unwrap_or(0);
    assert_eq!(from, 3);
    let Some(again) = fetch(&mut k, &b, g2, 0, from, 10_103) else {
        panic!()
    };
    let keys: Vec<&str> = again.iter().map(|(_, r)| r.key.as_str()).collect();
    assert_eq!(
        keys,
        vec!["e3", "e4", "e5"],
        "e3 was processed but is delivered again"
    );
}

fn produce_seq(k: &mut KafkaModel, seq: u64, key: &str) -> (u32, u64) {
    let req = KafkaRequest::ProduceSeq {
        producer: "producer".into(),
        sequence: seq,
        record: rec(key),
    };
    match k.handle(req, 0) {
        KafkaReply::Produced { partition, offset } => (partition, offset),
        other => panic!("{other:?}"),
    }
}

#[test]
fn without_idempotence_a_retried_sequence_appends_a_duplicate_marked_as_a_retry() {
    let mut k = model(1);
    assert_eq!(produce_seq(&mut k, 1, "a"), (0, 0));
    assert_eq!(
        produce_seq(&mut k, 1, "a"),
        (0, 1),
        "the ack was lost; the retry appends"
    );
    assert_eq!(produce_seq(&mut k, 2, "b"), (0, 2));
    assert_eq!(k.log_len(0), 3);
    let events = k.take_events();
    let retries: Vec<bool> = events
        .iter()
        .filter_map(|e| match e {
            GroupEvent::Produced { retry, .. } => Some(*retry),
            _ => None,
        })
        .collect();
    assert_eq!(retries, vec![false, true, false]);
    assert!(events.contains(&GroupEvent::ProduceDuplicate {
        event_id: "a".into(),
        partition: 0,
        producer: "producer".into(),
        sequence: 1,
        original_offset: 0,
        appended_offset: Some(1)
    }));
}

#[test]
fn with_idempotence_a_retried_sequence_gets_its_original_offset_and_appends_nothing() {
    let mut c = config(Assignor::Range);
    c.idempotent_producer = true;
    let mut k = KafkaModel::with_config(1, &c);
    assert_eq!(produce_seq(&mut k, 1, "a"), (0, 0));
    assert_eq!(produce_seq(&mut k, 2, "b"), (0, 1));
    assert_eq!(
        produce_seq(&mut k, 1, "a"),
        (0, 0),
        "a late duplicate of an older sequence"
    );
    assert_eq!(produce_seq(&mut k, 2, "b"), (0, 1));
    assert_eq!(k.log_len(0), 2);
    let events = k.take_events();
    assert_eq!(events.len(), 4);
    assert_eq!(
        events[3],
        GroupEvent::ProduceDuplicate {
            event_id: "b".into(),
            partition: 0,
            producer: "producer".into(),
            sequence: 2,
            original_offset: 1,
            appended_offset: None
        }
    );
}

// Long polls: the broker as the node runs it, holding joins and fetches (`KafkaModel::request`).

fn join_req(id: Option<&str>, client: &str) -> KafkaRequest {
    KafkaRequest::JoinGroup {
        member_id: id.map(Into::into),
        client: client.into(),
    }
}

fn fetch_req(id: &str, generation: u64, partitions: &[(u32, u64)], max_wait_ms: u64) -> KafkaRequest {
    KafkaRequest::FetchGroup {
        member_id: id.into(),
        generation,
        partitions: partitions.to_vec(),
        max: 100,
        max_wait_ms,
    }
}

/// A key whose record lands on `partition` of `partitions`.
fn key_on(partition: u32, partitions: u32) -> String {
    (0..1_000)
        .map(|i| format!("k{i}"))
        .find(|k| partition_of(k, partitions) == partition)
        .expect("a key for every partition")
}

#[test]
fn a_held_join_is_answered_when_its_round_closes() {
    let mut k = model(2);
    let (a, g1, _) = join_new(&mut k, "worker-1", 0);
    assert_eq!(sync(&mut k, &a, g1, 1), Ok(vec![0, 1]));
    // B opens a round: its join waits for A.
    assert_eq!(k.request(join_req(None, "worker-2"), 100, 1), None);
    assert_eq!(k.held(), 1);
    assert!(k.take_answers().is_empty());
    assert_eq!(
        heartbeat(&mut k, &a, g1, 200),
        KafkaReply::Error(GroupError::RebalanceInProgress)
    );
    // A's join closes the round: it is answered at once, and B's held join with it.
    assert_eq!(
        k.request(join_req(Some(&a), "worker-1"), 300, 2),
        Some(KafkaReply::Joined {
            member_id: a.clone(),
            generation: 2
        })
    );
    assert_eq!(
        k.take_answers(),
        vec![(
            1,
            KafkaReply::Joined {
                member_id: "worker-2-2".into(),
                generation: 2
            }
        )]
    );
    assert_eq!(k.held(), 0);
    assert_eq!(sync(&mut k, "worker-2-2", 2, 310), Ok(vec![1]));
}

#[test]
fn a_member_waiting_in_a_join_outlives_its_session_until_the_rebalance_timeout() {
    let mut k = model(2);
    let (a, b, g2) = two_stable_members(&mut k);
    assert_eq!(sync(&mut k, &a, g2, 30), Ok(vec![0]));
    assert_eq!(sync(&mut k, &b, g2, 30), Ok(vec![1]));
    // A third member opens round 3 at 1 000, and A waits in its join from then.
    assert_eq!(k.request(join_req(None, "worker-3"), 1_000, 1), None);
    assert_eq!(k.request(join_req(Some(&a), "worker-1"), 1_000, 2), None);
    assert_eq!(k.round_deadline(), Some(11_000), "the round times out at 11 000");
    assert_eq!(
        k.next_deadline(),
        Some(10_031),
        "before that, B's session runs out (its last heartbeat was its sync at 30)"
    );
    // B heartbeats but never rejoins.
    for t in [3_000, 6_000, 9_000] {
        assert_eq!(
            heartbeat(&mut k, &b, g2, t),
            KafkaReply::Error(GroupError::RebalanceInProgress)
        );
    }
    // At 11 001 A and C have sent nothing for more than 10 s: still members, as they wait.
    k.tick(11_000);
    assert!(k.take_answers().is_empty());
    assert_eq!(k.members().len(), 3);
    k.tick(11_001);
    assert_eq!(removed(&k.take_events()), vec![(b.clone(), "rebalance_timeout")]);
    let answers = k.take_answers();
    assert_eq!(
        answers,
        vec![
            (
                1,
                KafkaReply::Joined {
                    member_id: "worker-3-3".into(),
                    generation: 3
                }
            ),
            (
                2,
                KafkaReply::Joined {
                    member_id: a.clone(),
                    generation: 3
                }
            ),
        ]
    );
    // Answered, their session timers start again: 10 s from now, not from their joins.
    k.tick(21_001);
    assert_eq!(k.members(), vec![a.clone(), "worker-3-3".to_owned()]);
    k.tick(21_002);
    assert_eq!(
        removed(&k.take_events()).len(),
        2,
        "neither synced nor heartbeat since"
    );
}

#[test]
fn a_held_fetch_is_answered_when_a_record_lands_on_one_of_its_partitions() {
    let mut k = model(3);
    let (a, g, _) = join_new(&mut k, "worker-1", 0);
    let parts = [(0, 0), (2, 0)];
    assert_eq!(k.request(fetch_req(&a, g, &parts, 500), 10, 1), None);
    assert_eq!(k.next_deadline(), Some(510));
    // A record on partition 1 is not one it waits for.
    let on1 = key_on(1, 3);
    let req = KafkaRequest::ProduceSeq {
        producer: "p".into(),
        sequence: 0,
        record: rec(&on1),
    };
    assert!(k.request(req, 20, 2).is_some());
    assert!(k.take_answers().is_empty());
    let on2 = key_on(2, 3);
    let req = KafkaRequest::ProduceSeq {
        producer: "p".into(),
        sequence: 1,
        record: rec(&on2),
    };
    assert!(k.request(req, 30, 3).is_some());
    assert_eq!(
        k.take_answers(),
        vec![(
            1,
            KafkaReply::Records(vec![(0, vec![]), (2, vec![(0, rec(&on2))])])
        )]
    );
    // Records there already: answered at once.
    assert_eq!(
        k.request(fetch_req(&a, g, &[(1, 0)], 500), 40, 4),
        Some(KafkaReply::Records(vec![(1, vec![(0, rec(&on1))])]))
    );
    assert_eq!(k.held(), 0);
}

#[test]
fn a_held_fetch_is_answered_empty_when_its_wait_runs_out_and_counts_as_a_poll() {
    let mut k = model(1);
    let (a, g, _) = join_new(&mut k, "worker-1", 0);
    // Heartbeats keep its session; only polls count for the poll timer.
    for t in (3_000..=27_000).step_by(3_000) {
        assert_eq!(heartbeat(&mut k, &a, g, t), KafkaReply::HeartbeatOk);
    }
    assert_eq!(k.request(fetch_req(&a, g, &[(0, 0)], 500), 29_000, 1), None);
    k.tick(29_499);
    assert!(k.take_answers().is_empty());
    k.tick(29_500);
    assert_eq!(
        k.take_answers(),
        vec![(1, KafkaReply::Records(vec![(0, vec![])]))]
    );
    // Its poll was at 29 000: removed 30 s after it, not before.
    for t in (30_000..=59_000).step_by(3_000) {
        assert_eq!(heartbeat(&mut k, &a, g, t), KafkaReply::HeartbeatOk);
    }
    assert_eq!(k.members(), vec![a.clone()]);
    heartbeat(&mut k, &a, g, 59_001);
    assert_eq!(removed(&k.take_events()), vec![(a, "max_poll_interval")]);
    // A fetch without wait, or of no partition at all, is answered at once.
    assert_eq!(
        k.request(fetch_req("x", 0, &[(0, 0)], 0), 60_000, 2),
        Some(KafkaReply::Records(vec![(0, vec![])]))
    );
    assert_eq!(k.request(fetch_req("x", 0, &[], 100), 60_000, 3), None);
    k.tick(60_100);
    assert_eq!(k.take_answers(), vec![(3, KafkaReply::Records(vec![]))]);
    assert_eq!(
        k.request(fetch_req("x", 0, &[(5, 0)], 100), 60_200, 4),
        Some(KafkaReply::Error(GroupError::UnknownTopicOrPartition))
    );
}

#[test]
fn a_members_held_fetch_is_answered_when_a_round_opens_and_a_zombies_is_not() {
    let mut k = model(2);
    let (a, b, g2) = two_stable_members(&mut k);
    assert_eq!(k.request(fetch_req(&a, g2, &[(0, 0)], 500), 100, 1), None);
    assert_eq!(k.request(fetch_req("zombie-1", 1, &[(1, 0)], 500), 100, 2), None);
    // B leaves: a round opens, and A's fetch is answered so A can rejoin at once.
    assert_eq!(
        k.handle(KafkaRequest::LeaveGroup { member_id: b.clone() }, 200),
        KafkaReply::Left
    );
    assert_eq!(
        k.take_answers(),
        vec![(1, KafkaReply::Records(vec![(0, vec![])]))]
    );
    assert_eq!(k.held(), 1, "the zombie's fetch waits for records or its time");
    k.tick(600);
    assert_eq!(
        k.take_answers(),
        vec![(2, KafkaReply::Records(vec![(1, vec![])]))]
    );
}

#[test]
fn a_cancelled_request_is_never_answered_and_a_restart_drops_them_all() {
    let mut k = model(1);
    let (a, g, _) = join_new(&mut k, "worker-1", 0);
    assert_eq!(k.request(fetch_req(&a, g, &[(0, 0)], 500), 10, 1), None);
    assert!(k.cancel(1));
    assert!(!k.cancel(1));
    assert_eq!(
        k.next_deadline(),
        Some(10_001),
        "nothing held: only A's session falls due (a fetch is no heartbeat; its join at 0 was)"
    );
    k.tick(1_000);
    assert!(k.take_answers().is_empty());
    // A held join and a held fetch, then the broker restarts.
    assert_eq!(k.request(join_req(None, "worker-2"), 1_000, 2), None);
    assert_eq!(k.request(fetch_req(&a, g, &[(0, 0)], 500), 1_000, 3), None);
    assert_eq!(k.held(), 2);
    k.restarted(2_000);
    assert_eq!(k.held(), 0);
    // A's join closes the round (B joined it before the restart); B's held join is gone.
    assert_eq!(
        k.request(join_req(Some(&a), "worker-1"), 2_100, 4),
        Some(KafkaReply::Joined {
            member_id: a.clone(),
            generation: 2
        })
    );
    k.tick(2_600);
    assert!(
        k.take_answers().is_empty(),
        "nothing held before the restart is answered"
    );
    assert_eq!(
        rejoin(&mut k, "worker-2-2", 2_700),
        KafkaReply::Joined {
            member_id: "worker-2-2".into(),
            generation: 2
        }
    );
}
