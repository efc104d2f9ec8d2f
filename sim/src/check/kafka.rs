//! `kafka`: the topic's and the consumer group's history, read from the trace alone (the
//! broker's `produce`, `offset_commit`, `rebalance`, `assignment` and `member_removed` events and
//! the workers' `deliver`, `assigned`, `revoked` and `seek`), never from the broker's state.
//! Anomalies are named as Jepsen names a queue's:
//!
//! - `lost` (liveness): a produced record (a `produce` event's partition and offset) that no
//!   `deliver` shows by the end of the trace.
//! - `nonmonotonic_commit` (correctness): the group's accepted committed offset for a partition
//!   moving backwards.
//! - `stale_commit_accepted` (correctness): an accepted `offset_commit` whose generation is
//!   older than the newest `rebalance`/`assignment` generation before it (generation 0, a commit
//!   made outside any group, is not judged).
//! - `poll_skip` (correctness): while a member owns a partition (from its `assigned` until a
//!   `revoked` of it or the member's next `assigned`), a first delivery (`attempt` 1) of an
//!   offset above `k + 1`, where `k` is the highest offset it first-delivered there since it got
//!   the partition or its last `seek` of it: offsets `k + 1..` were jumped over. (Going back
//!   without a seek is not judged.) Deliveries of a partition the member does not own, such as
//!   a zombie's, are not judged either.
//!
//! Besides the violations, [`KafkaStats`] counts what is expected under faults but worth
//! watching.

use super::{Severity, Violation};
use crate::trace::{Event, Typed};
use std::collections::{BTreeMap, BTreeSet};

/// What the history shows that is no violation in itself.
///
/// ```
/// // Two copies of one event, each its own record on its own partition, to two workers.
/// let sim = sim::Sim::new("duplicate-detection").unwrap();
/// let stats: sim::KafkaStats = sim.run(sim.config().seed).kafka;
/// assert_eq!(stats.duplicate_deliveries, 1); // the second copy: a record of an event delivered before
/// assert_eq!(stats.redeliveries, 0); // no record was delivered twice
/// assert_eq!(stats.rebalances, 2); // worker-1 joined, then worker-2
/// assert_eq!(stats.rejected_commits, 0); // no faults, no rejected offset commit
///
/// // Summed over runs with `+=`.
/// let mut total = sim::KafkaStats::default();
/// total += &stats;
/// total += &stats;
/// assert_eq!(total.duplicate_deliveries, 2);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KafkaStats {
    /// `rebalance` events (rounds opened).
    pub rebalances: usize,
    /// First deliveries (`attempt` 1) of a record (partition, offset) already delivered
    /// before, to any member.
    pub redeliveries: usize,
    /// First deliveries of a record not delivered before whose event id was already delivered
    /// from another record (a duplicate record, from a producer's retry).
    pub duplicate_deliveries: usize,
    /// `offset_commit` events with `accepted: false`.
    pub rejected_commits: usize,
    /// Records appended with `retry: true` (a duplicate of an already appended sequence).
    pub producer_duplicates: usize,
    /// Rejected commits from a member already removed (`member_removed`) or with a generation
    /// older than the newest seen.
    pub zombie_commits_rejected: usize,
}

impl std::ops::AddAssign<&KafkaStats> for KafkaStats {
    fn add_assign(&mut self, other: &KafkaStats) {
        self.rebalances += other.rebalances;
        self.redeliveries += other.redeliveries;
        self.duplicate_deliveries += other.duplicate_deliveries;
        self.rejected_commits += other.rejected_commits;
        self.producer_duplicates += other.producer_duplicates;
        self.zombie_commits_rejected += other.zombie_commits_rejected;
    }
}

/// Judges the Kafka history in `trace`.
pub fn check(trace: &[Event]) -> (Vec<Violation>, KafkaStats) {
    let mut stats = KafkaStats::default();
    let mut out = Vec::new();
    let typed = crate::trace::typed(trace);
    // Every appended record: (partition, offset) -> (event id, trace index of its `produce`).
    let mut produced: BTreeMap<(u32, u64), (&str, usize)> = BTreeMap::new();
    let mut delivered: BTreeSet<(u32, u64)> = BTreeSet::new();
    let mut delivered_ids: BTreeSet<&str> = BTreeSet::new();
    let mut generation_max = 0u64;
    // The group's committed offset per partition and the index of the commit that set it.
    let mut committed: BTreeMap<u32, (u64, usize)> = BTreeMap::new();
    let mut removed: BTreeSet<&str> = BTreeSet::new();
    // (member, partition) it owns -> the highest offset it delivered there for the first time
    // since it got the partition or sought.
    let mut owned: BTreeMap<(&str, u32), Option<u64>> = BTreeMap::new();
    for (i, t) in typed.iter().enumerate() {
        match t {
            Typed::Produce {
                event_id,
                partition,
                offset,
                retry,
                ..
            } => {
                produced.insert((*partition, *offset), (event_id.as_str(), i));
                if *retry {
                    stats.producer_duplicates += 1;
                }
            }
            Typed::Rebalance { generation, .. } => {
                stats.rebalances += 1;
                generation_max = generation_max.max(*generation);
            }
            Typed::Assignment { generation, .. } => generation_max = generation_max.max(*generation),
            Typed::MemberRemoved { member, .. } => {
                removed.insert(member);
            }
            Typed::Assigned {
                member, partitions, ..
            } => {
                owned.retain(|(owner, _), _| owner != member);
                for p in partitions {
                    owned.insert((member.as_str(), *p), None);
                }
            }
            Typed::Revoked {
                member, partitions, ..
            } => {
                for p in partitions {
                    owned.remove(&(member.as_str(), *p));
                }
            }
            Typed::Seek {
                member, partition, ..
            } => {
                if let Some(last) = owned.get_mut(&(member.as_str(), *partition)) {
                    *last = None;
                }
            }
            Typed::OffsetCommit {
                member: who,
                generation,
                partition: p,
                offset,
                accepted,
                ..
            } => {
                let (p, offset, generation) = (*p, *offset, *generation);
                if !accepted {
                    stats.rejected_commits += 1;
                    if removed.contains(who.as_str()) || generation < generation_max {
                        stats.zombie_commits_rejected += 1;
                    }
                    continue;
                }
                if generation != 0 && generation < generation_max {
                    out.push(Violation {
                        kind: "stale_commit_accepted",
                        severity: Severity::Correctness,
                        event_id: String::new(),
                        detail: format!(
                            "{who} committed partition {p} offset {offset} in generation {generation}, \
                             accepted after generation {generation_max} began"
                        ),
                        first_event: Some(i),
                    });
                }
                if let Some(&(before, at)) = committed.get(&p) {
                    if offset < before {
                        out.push(Violation {
                            kind: "nonmonotonic_commit",
                            severity: Severity::Correctness,
                            event_id: String::new(),
                            detail: format!(
                                "partition {p}: the committed offset went back from {before} \
                                 (trace event #{at}) to {offset}, committed by {who} in generation {generation}"
                            ),
                            first_event: Some(i),
                        });
                    }
                }
                committed.insert(p, (offset, i));
            }
            Typed::Deliver {
                partition: p,
                offset: o,
                event_id: id,
                attempt,
                member: m,
                ..
            } => {
                let (p, o) = (*p, *o);
                let new_record = delivered.insert((p, o));
                if *attempt == 1 {
                    if !new_record {
                        stats.redeliveries += 1;
                    } else if delivered_ids.contains(id.as_str()) {
                        stats.duplicate_deliveries += 1;
                    }
                    if let Some(last) = owned.get_mut(&(m.as_str(), p)) {
                        if let Some(k) = *last {
                            if o > k + 1 {
                                let skipped = produced.get(&(p, k + 1)).map_or(id.as_str(), |r| r.0);
                                out.push(Violation {
                                    kind: "poll_skip",
                                    severity: Severity::Correctness,
                                    event_id: skipped.to_owned(),
                                    detail: format!(
                                        "{m} delivered partition {p} offset {k} then offset {o}, skipping {}..={} \
                                         without a seek or reassignment",
                                        k + 1,
                                        o - 1
                                    ),
                                    first_event: Some(i),
                                });
                            }
                        }
                        *last = Some(last.map_or(o, |k| k.max(o)));
                    }
                }
                // A record's id is already in the set once the record was delivered.
                if new_record {
                    delivered_ids.insert(id);
                }
            }
            _ => {}
        }
    }
    let mut lost: Vec<(usize, u32, u64, &str)> = produced
        .iter()
        .filter(|(record, _)| !delivered.contains(record))
        .map(|(&(p, o), &(id, i))| (i, p, o, id))
        .collect();
    lost.sort();
    out.extend(lost.into_iter().map(|(i, p, o, id)| Violation {
        kind: "lost",
        severity: Severity::Liveness,
        event_id: id.to_owned(),
        detail: format!("partition {p} offset {o} was produced but never delivered"),
        first_event: Some(i),
    }));
    (out, stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    struct History(Vec<Event>);

    impl History {
        fn new() -> Self {
            History(Vec::new())
        }

        fn push(&mut self, node: &str, event: Typed) -> &mut Self {
            let t_us = self.0.len() as u64 * 1000;
            self.0.push(event.event(t_us, node));
            self
        }

        fn produce(&mut self, p: u32, o: u64, id: &str) -> &mut Self {
            self.push(
                "kafka",
                Typed::Produce {
                    event_id: id.into(),
                    partition: p,
                    offset: o,
                    producer: "producer".into(),
                    sequence: o,
                    retry: false,
                },
            )
        }

        fn deliver(&mut self, m: &str, g: u64, p: u32, o: u64, id: &str, attempt: u32) -> &mut Self {
            self.push(
                "worker-1",
                Typed::Deliver {
                    topic: "events".into(),
                    partition: p,
                    offset: o,
                    event_id: id.into(),
                    attempt,
                    delivery: 1,
                    call: 1,
                    member: m.into(),
                    generation: g,
                },
            )
        }

        fn commit(&mut self, m: &str, g: u64, p: u32, o: u64, error: Option<&str>) -> &mut Self {
            self.push(
                "kafka",
                Typed::OffsetCommit {
                    member: m.into(),
                    generation: g,
                    partition: p,
                    offset: o,
                    accepted: error.is_none(),
                    error: error.map(str::to_owned),
                },
            )
        }

        fn rebalance(&mut self, g: u64, members: &[&str]) -> &mut Self {
            self.push(
                "kafka",
                Typed::Rebalance {
                    generation: g,
                    reason: "join".into(),
                    members: members.iter().map(|m| m.to_string()).collect(),
                },
            )
        }

        fn assigned(&mut self, m: &str, g: u64, ps: &[u32]) -> &mut Self {
            self.push(
                "worker-1",
                Typed::Assigned {
                    member: m.into(),
                    generation: g,
                    partitions: ps.to_vec(),
                },
            )
        }

        fn revoked(&mut self, m: &str, g: u64, ps: &[u32]) -> &mut Self {
            self.push(
                "worker-1",
                Typed::Revoked {
                    member: m.into(),
                    generation: g,
                    partitions: ps.to_vec(),
                    why: "rebalance_in_progress".into(),
                },
            )
        }

        fn seek(&mut self, m: &str, p: u32, o: u64) -> &mut Self {
            self.push(
                "worker-1",
                Typed::Seek {
                    member: m.into(),
                    partition: p,
                    offset: o,
                },
            )
        }

        fn check(&self) -> (Vec<Violation>, KafkaStats) {
            check(&self.0)
        }
    }

    fn kinds(v: &[Violation]) -> Vec<(&'static str, Option<usize>)> {
        v.iter().map(|v| (v.kind, v.first_event)).collect()
    }

    #[test]
    fn a_clean_history_with_a_rebalance_and_a_retry_gives_no_violation() {
        let mut h = History::new();
        h.produce(0, 0, "e0").produce(0, 1, "e1").produce(1, 0, "e2");
        h.rebalance(1, &["a"])
            .assigned("a", 1, &[0, 1])
            .seek("a", 0, 0)
            .seek("a", 1, 0);
        h.deliver("a", 1, 0, 0, "e0", 1).commit("a", 1, 0, 1, None);
        h.deliver("a", 1, 0, 1, "e1", 1)
            .deliver("a", 1, 0, 1, "e1", 2)
            .commit("a", 1, 0, 2, None);
        h.rebalance(2, &["a", "b"]).revoked("a", 1, &[0, 1]);
        h.commit("a", 1, 1, 0, Some("rebalance_in_progress"));
        h.assigned("a", 2, &[0])
            .seek("a", 0, 2)
            .assigned("b", 2, &[1])
            .seek("b", 1, 0);
        h.deliver("b", 2, 1, 0, "e2", 1).commit("b", 2, 1, 1, None);
        let (violations, stats) = h.check();
        assert_eq!(violations, vec![]);
        assert_eq!(
            stats,
            KafkaStats {
                rebalances: 2,
                rejected_commits: 1,
                zombie_commits_rejected: 1,
                ..KafkaStats::default()
            }
        );
    }

    #[test]
    fn a_record_never_delivered_is_lost_and_points_at_its_produce() {
        let mut h = History::new();
        h.produce(0, 0, "e0").produce(0, 1, "e1").produce(1, 0, "e2");
        h.deliver("a", 1, 0, 0, "e0", 1).deliver("a", 1, 1, 0, "e2", 3);
        let (violations, _) = h.check();
        assert_eq!(kinds(&violations), vec![("lost", Some(1))]);
        assert_eq!(violations[0].event_id, "e1");
        assert_eq!(violations[0].severity, Severity::Liveness);
    }

    #[test]
    fn a_committed_offset_moving_back_is_a_nonmonotonic_commit_even_on_the_no_group_path() {
        let mut h = History::new();
        h.rebalance(1, &["a"]);
        h.commit("a", 1, 0, 5, None)
            .commit("a", 1, 1, 2, None)
            .commit("a", 1, 0, 5, None);
        h.commit("a", 1, 0, 4, Some("illegal_generation")); // rejected: does not count
        h.commit("a", 1, 0, 3, None); // #5
        h.commit("worker-1", 0, 1, 1, None); // #6, a commit outside any group
        let (violations, _) = h.check();
        assert_eq!(
            kinds(&violations),
            vec![("nonmonotonic_commit", Some(5)), ("nonmonotonic_commit", Some(6))]
        );
        assert!(violations.iter().all(|v| v.severity == Severity::Correctness));
        assert!(
            violations[0].detail.contains("from 5 (trace event #3) to 3"),
            "{}",
            violations[0].detail
        );
    }

    #[test]
    fn an_accepted_commit_from_a_generation_older_than_the_newest_is_stale() {
        let mut h = History::new();
        h.rebalance(1, &["a"]).commit("a", 1, 0, 1, None);
        h.rebalance(2, &["a", "b"]).commit("a", 1, 0, 2, None); // #3: stale
        h.commit("a", 0, 0, 3, None); // generation 0: outside any group, not judged
        h.push(
            "kafka",
            Typed::Assignment {
                generation: 3,
                assignment: BTreeMap::new(),
            },
        );
        h.commit("b", 2, 0, 4, None); // #6: stale after assignment 3
        h.commit("b", 3, 0, 5, None);
        let (violations, _) = h.check();
        assert_eq!(
            kinds(&violations),
            vec![
                ("stale_commit_accepted", Some(3)),
                ("stale_commit_accepted", Some(6))
            ]
        );
    }

    #[test]
    fn a_first_delivery_that_jumps_over_an_offset_of_an_owned_partition_is_a_poll_skip() {
        let mut h = History::new();
        for o in 0..6 {
            h.produce(0, o, &format!("e{o}"));
        }
        h.assigned("a", 1, &[0]);
        h.deliver("a", 1, 0, 0, "e0", 1).deliver("a", 1, 0, 1, "e1", 1);
        h.deliver("a", 1, 0, 3, "e3", 1); // #9: skips 2
        h.deliver("a", 1, 0, 2, "e2", 1)
            .deliver("a", 1, 0, 4, "e4", 1)
            .deliver("a", 1, 0, 5, "e5", 1);
        let (violations, _) = h.check();
        assert_eq!(kinds(&violations), vec![("poll_skip", Some(9))]);
        assert_eq!(violations[0].event_id, "e2", "the skipped record");
        assert!(
            violations[0].detail.contains("skipping 2..=2"),
            "{}",
            violations[0].detail
        );
    }

    #[test]
    fn a_seek_a_reassignment_or_a_revoked_partition_excuses_a_jump() {
        let mut h = History::new();
        for o in 0..10 {
            h.produce(0, o, &format!("e{o}"));
        }
        h.assigned("a", 1, &[0]).deliver("a", 1, 0, 0, "e0", 1);
        h.seek("a", 0, 3).deliver("a", 1, 0, 3, "e3", 1); // a seek
        h.assigned("a", 2, &[0]).deliver("a", 2, 0, 5, "e5", 1); // a reassignment
        h.revoked("a", 2, &[0]).deliver("a", 2, 0, 7, "e7", 1); // a zombie's delivery: not owned
        h.assigned("b", 3, &[0]).deliver("b", 3, 0, 1, "e1", 1);
        h.deliver("b", 3, 0, 2, "e2", 1).deliver("b", 3, 0, 4, "e4", 1); // b skips 3: #21
        h.deliver("b", 3, 0, 6, "e6", 1)
            .deliver("b", 3, 0, 8, "e8", 1)
            .deliver("b", 3, 0, 9, "e9", 1);
        let (violations, _) = h.check();
        assert_eq!(
            kinds(&violations),
            vec![
                ("poll_skip", Some(21)),
                ("poll_skip", Some(22)),
                ("poll_skip", Some(23))
            ]
        );
        // Retries (attempt > 1) are not first deliveries and move nothing.
        let mut h = History::new();
        h.assigned("a", 1, &[0])
            .deliver("a", 1, 0, 0, "e0", 1)
            .deliver("a", 1, 0, 5, "e5", 2);
        h.deliver("a", 1, 0, 1, "e1", 1);
        assert_eq!(h.check().0, vec![]);
    }

    #[test]
    fn stats_count_redeliveries_duplicate_records_rejected_and_zombie_commits() {
        let mut h = History::new();
        h.produce(0, 0, "e0");
        h.push(
            "kafka",
            Typed::Produce {
                event_id: "e0".into(),
                partition: 0,
                offset: 1,
                producer: "producer".into(),
                sequence: 0,
                retry: true,
            },
        );
        h.push(
            "kafka",
            Typed::ProduceDeduplicated {
                event_id: "e0".into(),
                partition: 0,
                offset: 0,
                producer: "producer".into(),
                sequence: 0,
            },
        );
        h.rebalance(1, &["a"]);
        h.deliver("a", 1, 0, 0, "e0", 1).deliver("a", 1, 0, 0, "e0", 2); // a retry: nothing
        h.deliver("a", 1, 0, 1, "e0", 1); // the duplicate record: a duplicate delivery
        h.push(
            "kafka",
            Typed::MemberRemoved {
                member: "a".into(),
                reason: "max_poll_interval".into(),
            },
        );
        h.rebalance(2, &["b"]);
        h.commit("a", 1, 0, 2, Some("unknown_member_id")); // a zombie
        h.commit("b", 1, 0, 2, Some("illegal_generation")); // an old generation
        h.commit("b", 2, 0, 2, Some("rebalance_in_progress")); // neither
        h.deliver("b", 2, 0, 0, "e0", 1).deliver("b", 2, 0, 1, "e0", 1); // two redeliveries
        let (violations, stats) = h.check();
        assert_eq!(violations, vec![]);
        assert_eq!(
            stats,
            KafkaStats {
                rebalances: 2,
                redeliveries: 2,
                duplicate_deliveries: 1,
                rejected_commits: 3,
                producer_duplicates: 1,
                zombie_commits_rejected: 2,
            }
        );
    }
}
