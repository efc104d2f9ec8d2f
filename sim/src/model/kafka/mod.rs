//! The Kafka broker: one topic, its partitions, an (idempotent or not) producer path, and the
//! consumer group `workers` with its coordinator, offsets and eager rebalances.
//!
//! [`KafkaModel`] is a pure state machine: no madsim, no I/O, no randomness, `BTreeMap`s only,
//! and time passed in as `now_ms` to [`KafkaModel::handle`] and [`KafkaModel::tick`]. The thin
//! [`serve`] adapter at the bottom puts it on the network and turns what happened (the
//! [`GroupEvent`]s drained by [`KafkaModel::take_events`]) into trace events. madsim's own
//! simulated Kafka has no consumer groups, commits or rebalances; this follows Kafka's real
//! protocol (the classic `GroupCoordinator`, eager rebalancing) closely enough for a consumer
//! to meet the same hazards: rebalances, redeliveries, zombies and duplicate records.
//!
//! # Topic and records
//! A record's partition is a deterministic hash of its key ([`partition_of`], FNV-1a); order is
//! kept per partition; offsets start at 0 and have no gaps. The log, the committed offsets and
//! the group live in the world, not in the broker task, so they survive a broker restart.
//!
//! # Producer
//! [`KafkaRequest::ProduceSeq`] carries the producer's name and a sequence number, one per
//! record, increasing. The broker remembers where each `(producer, sequence)` was first
//! appended. Without `idempotent_producer` every request appends (a retry after a lost ack
//! appends a duplicate record, which [`GroupEvent::Produced`] marks `retry: true`); with it a
//! retried sequence is answered with its original partition and offset and appends nothing, as
//! Kafka's idempotent producer does. Either way the reply is [`KafkaReply::Produced`]: like
//! Kafka's ProduceResponse it does not tell the producer whether it was a retry; the
//! [`GroupEvent`]s (and so the trace) do.
//!
//! # The consumer group
//! States: `Empty` (no members), `PreparingRebalance` (a round of joins is open) and `Stable`.
//! A membership change (a new member joins, a member leaves or is removed) while `Empty` or
//! `Stable` opens a round: the generation goes up by one, the group is `PreparingRebalance`, and
//! every member must (re)join for the new generation with `JoinGroup` and its member id. The
//! round closes when every member has joined it, or at the rebalance timeout (the round's start
//! plus `session_timeout_ms`), which removes the members that did not. The coordinator then
//! assigns the partitions with the configured [`Assignor`] (members sorted by member id as
//! strings; see [`assign`]) and the group is `Stable`. A change while a round is open joins that
//! round (same generation), as in Kafka. The last member leaving closes the round at once with
//! an empty assignment and the group is `Empty`.
//!
//! Requests and replies (`G` is the group's generation; errors are [`KafkaReply::Error`]):
//!
//! | request | reply |
//! |---|---|
//! | `JoinGroup { member_id: None, client }` | a new member `{client}-{n}` (`n` counts from 1 over the broker's life); opens a round unless one is open; `Joined { member_id, generation }` if that closed the round, else `JoinPending` |
//! | `JoinGroup { member_id: Some(id), .. }` | unknown id: `UnknownMemberId` (join again without an id). Otherwise joins the open round; `Joined` once the round is closed (or if the group is `Stable`, without a rebalance), `JoinPending` while others have not joined: call `JoinGroup` again to wait (Kafka's JoinGroup blocks instead) |
//! | `SyncGroup { member_id, generation }` | `UnknownMemberId`; `RebalanceInProgress` while a round is open; `IllegalGeneration` if `generation != G`; else `Assignment { generation, partitions }` |
//! | `Heartbeat { member_id, generation }` | `UnknownMemberId`; `RebalanceInProgress` while a round is open (rejoin); `IllegalGeneration`; else `HeartbeatOk` |
//! | `LeaveGroup { member_id }` | `UnknownMemberId`; else the member is removed (reason `leave`) and `Left` |
//! | `FetchGroup { member_id, generation, partition, from, max }` | `Records`, whoever asks: like Kafka's Fetch it checks neither membership nor generation, so a zombie still reads. `UnknownTopicOrPartition` for a partition that does not exist |
//! | `CommitGroup { member_id, generation, partition, offset }` | `UnknownMemberId`; `RebalanceInProgress` while a round is open; `IllegalGeneration` if `generation != G`; `UnknownTopicOrPartition`; else stored and `Committed` |
//! | `CommittedGroup` | `GroupOffsets`: per partition the committed offset (the next offset to read), `None` if never committed (start from the earliest offset, 0) |
//!
//! A new owner of a partition starts from its committed offset, so records after the last
//! commit are delivered again. Commits are stored as given (Kafka does not require them to go
//! forward; the history checker does).
//!
//! # Timeouts
//! Expiry is evaluated at the start of every request and by [`KafkaModel::tick`]:
//! - session: a member whose last heartbeat is more than `session_timeout_ms` old is removed
//!   (`session_timeout`). A heartbeat is a `Heartbeat`, `JoinGroup` or `SyncGroup` that is not
//!   refused with `UnknownMemberId`/`IllegalGeneration`, or an accepted `CommitGroup`.
//! - poll: a member whose last poll is more than `max_poll_interval_ms` old is removed
//!   (`max_poll_interval`) while its process may still be working: it becomes a zombie. A poll
//!   is a `FetchGroup` by a current member (any partition, even `max: 0`: a member that owns no
//!   partition polls that way or with `SyncGroup`), a `JoinGroup` or such a `SyncGroup`.
//! - rebalance: a round open longer than `session_timeout_ms` closes without the members that
//!   did not join it (`rebalance_timeout`).
//!
//! # Simplifications versus Kafka
//! - One topic and one group (`workers`); one coordinator that never moves (no
//!   `NotCoordinator`, no `CoordinatorLoadInProgress`); no replication, no ISR, no
//!   `acks`: an append is durable at once. `Fetch` past the log end returns nothing instead of
//!   `OFFSET_OUT_OF_RANGE`; there is no retention, so offset 0 is always the earliest.
//! - The generation goes up when a round opens, not when its join phase completes as in
//!   Kafka. So members learn of a rebalance at once, and commits are refused during the whole
//!   round (`RebalanceInProgress`); Kafka still accepts commits of the old generation while
//!   `PreparingRebalance` (that is how `onPartitionsRevoked` commits). Errors are checked in the
//!   order unknown member, open round, generation.
//! - `JoinGroup` does not block: it answers `JoinPending` and is called again. A new member gets
//!   its id at once (no `MEMBER_ID_REQUIRED` round trip, KIP-394); ids are `{client}-{n}`, not
//!   `{client.id}-{uuid}`. No static membership, no `group.initial.rebalance.delay.ms`.
//! - No group leader: the coordinator computes the assignment itself (Kafka's leader does it
//!   client-side and ships it in its `SyncGroup`); only eager `range` and `round_robin`, for
//!   one topic (no cooperative or sticky assignors, no incremental rebalance).
//! - The rebalance timeout is `session_timeout_ms` (Kafka: the members' largest
//!   `max.poll.interval.ms`).
//! - `max_poll_interval_ms` is enforced by the coordinator (in Kafka the client's heartbeat
//!   thread notices it and sends `LeaveGroup`): the effect on the group is the same, but the
//!   member is not told until its next group request.
//! - A broker (re)start restarts every member's session and poll timers and an open round's
//!   deadline ([`KafkaModel::restarted`]), as Kafka's coordinator does for the session when it
//!   loads a group; in Kafka the poll timer is the client's and runs on through a broker outage,
//!   while clients keep polling.
//! - Commits are not checked against the assignment (neither are they in Kafka); offsets carry
//!   no metadata and never expire.
//! - The idempotent producer remembers every `(producer, sequence)`, not the last 5 batches
//!   per partition (for an older duplicate Kafka answers `DUPLICATE_SEQUENCE_NUMBER`, which its
//!   producer also treats as success); sequences count over the producer's records, not per
//!   partition, so a gap between two sequences of one partition is no error
//!   (`OUT_OF_ORDER_SEQUENCE_NUMBER` is not modelled), and there are no producer epochs or
//!   transactions.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The consumer group's name (the only one).
pub const GROUP: &str = "workers";

/// A record as produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The record key (the event id).
    pub key: String,
    /// Headers in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The value (a v2 envelope).
    pub value: Vec<u8>,
}

/// A request to the broker.
#[derive(Clone, Debug)]
pub enum KafkaRequest {
    /// Append a record as `producer`'s record number `sequence`; the reply is
    /// [`KafkaReply::Produced`] (for a deduplicated retry, the original's partition and offset).
    ProduceSeq {
        /// The producer's name (Kafka: its producer id).
        producer: String,
        /// The record's sequence number, one per record, increasing.
        sequence: u64,
        /// The record.
        record: Record,
    },
    /// Join the group: as a new member (`None`) or for the open round (`Some(id)`).
    JoinGroup {
        /// The member's id, `None` for a new member.
        member_id: Option<String>,
        /// The client's name; a new member's id starts with it.
        client: String,
    },
    /// The member's assignment for `generation`.
    SyncGroup {
        /// The member.
        member_id: String,
        /// The generation it joined.
        generation: u64,
    },
    /// The member is alive.
    Heartbeat {
        /// The member.
        member_id: String,
        /// The generation it is in.
        generation: u64,
    },
    /// The member leaves the group.
    LeaveGroup {
        /// The member.
        member_id: String,
    },
    /// A poll: up to `max` records of `partition` from `from`. Neither membership nor
    /// generation is checked; it counts as a poll for a current member.
    FetchGroup {
        /// The member.
        member_id: String,
        /// The generation it is in (not checked).
        generation: u64,
        /// The partition.
        partition: u32,
        /// The first offset wanted.
        from: u64,
        /// At most this many.
        max: usize,
    },
    /// The group's next offset to read for `partition` becomes `offset`, if `member_id` is a
    /// current member of the current generation and the group is stable.
    CommitGroup {
        /// The member.
        member_id: String,
        /// The generation it is in.
        generation: u64,
        /// The partition.
        partition: u32,
        /// The next offset to read.
        offset: u64,
    },
    /// The group's committed offsets, per partition.
    CommittedGroup,
}

/// Why the coordinator refused a group request (Kafka's error codes of the same names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum GroupError {
    /// Not a member (never was, left, or was removed): join again without a member id.
    UnknownMemberId,
    /// A member, but the request's generation is not the group's: join again.
    IllegalGeneration,
    /// A rebalance round is open: join again with the member id.
    RebalanceInProgress,
    /// The partition does not exist.
    UnknownTopicOrPartition,
}

impl GroupError {
    /// Its name in traces: `unknown_member_id`, `illegal_generation`,
    /// `rebalance_in_progress`, `unknown_topic_or_partition`.
    pub fn name(self) -> &'static str {
        match self {
            GroupError::UnknownMemberId => "unknown_member_id",
            GroupError::IllegalGeneration => "illegal_generation",
            GroupError::RebalanceInProgress => "rebalance_in_progress",
            GroupError::UnknownTopicOrPartition => "unknown_topic_or_partition",
        }
    }
}

/// The broker's reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KafkaReply {
    /// Where a produced record went (or, for a deduplicated retry, where it had gone).
    Produced {
        /// Its partition.
        partition: u32,
        /// Its offset.
        offset: u64,
    },
    /// Fetched records with their offsets.
    Records(Vec<(u64, Record)>),
    /// The commit was stored.
    Committed,
    /// Joined; the round is closed: `SyncGroup` for the assignment.
    Joined {
        /// The member's id (new, or as given).
        member_id: String,
        /// The generation joined.
        generation: u64,
    },
    /// Joined the open round; others have not yet: `JoinGroup` again (with this id) to wait.
    JoinPending {
        /// The member's id (new, or as given).
        member_id: String,
        /// The generation joined.
        generation: u64,
    },
    /// The member's partitions in `generation`.
    Assignment {
        /// The generation.
        generation: u64,
        /// Its partitions, ascending.
        partitions: Vec<u32>,
    },
    /// The heartbeat was taken; the group is stable.
    HeartbeatOk,
    /// The member left.
    Left,
    /// Committed offsets, per partition, `None` where never committed.
    GroupOffsets(Vec<Option<u64>>),
    /// A group request was refused.
    Error(GroupError),
}

/// Where the group is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupState {
    /// No members.
    Empty,
    /// A round of joins is open.
    PreparingRebalance,
    /// Every member has its assignment for the current generation.
    Stable,
}

/// What the broker and its group coordinator did, in order; drained by
/// [`KafkaModel::take_events`]. [`GroupEvent::trace`] turns one into a trace event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupEvent {
    /// A record was appended.
    Produced {
        /// The record key.
        event_id: String,
        /// Its partition.
        partition: u32,
        /// Its offset.
        offset: u64,
        /// The producer.
        producer: String,
        /// The sequence number.
        sequence: u64,
        /// This sequence was appended before: the record is a duplicate.
        retry: bool,
    },
    /// A sequence came again: appended again (`appended_offset`) or deduplicated (`None`).
    ProduceDuplicate {
        /// The record key.
        event_id: String,
        /// Its partition.
        partition: u32,
        /// The producer.
        producer: String,
        /// The sequence number.
        sequence: u64,
        /// Where the sequence was first appended.
        original_offset: u64,
        /// Where it was appended this time, `None` if deduplicated.
        appended_offset: Option<u64>,
    },
    /// A member joined a round (a new member, or one rejoining).
    Join {
        /// The member.
        member: String,
        /// The round's generation.
        generation: u64,
    },
    /// A round opened.
    Rebalance {
        /// The new generation.
        generation: u64,
        /// What opened it: `join`, `leave`, `session_timeout` or `max_poll_interval`.
        reason: &'static str,
        /// The members when it opened, sorted.
        members: Vec<String>,
    },
    /// A round closed: the group is stable (or empty, with no members).
    Assignment {
        /// The generation.
        generation: u64,
        /// Each member's partitions.
        assignment: BTreeMap<String, Vec<u32>>,
    },
    /// A member left the group or was removed.
    MemberRemoved {
        /// The member.
        member: String,
        /// `session_timeout`, `max_poll_interval`, `leave` or `rebalance_timeout`.
        reason: &'static str,
    },
    /// A commit was stored.
    CommitAccepted {
        /// Who committed.
        member: String,
        /// The generation it gave.
        generation: u64,
        /// The partition.
        partition: u32,
        /// The next offset to read.
        offset: u64,
    },
    /// A commit was refused.
    CommitRejected {
        /// Who committed.
        member: String,
        /// The generation it gave.
        generation: u64,
        /// The partition.
        partition: u32,
        /// The offset it tried to commit.
        offset: u64,
        /// Why.
        error: GroupError,
    },
}

impl GroupEvent {
    /// The trace event's kind and fields (node `kafka`), or `None` for an event the trace
    /// shows otherwise (a duplicate append is the `produce` event with `retry: true`).
    pub fn trace(&self) -> Option<(&'static str, BTreeMap<&'static str, Value>)> {
        use crate::fields;
        Some(match self {
            GroupEvent::Produced {
                event_id,
                partition,
                offset,
                producer,
                sequence,
                retry,
            } => (
                "produce",
                fields! {"event_id" => event_id.as_str(), "partition" => *partition, "offset" => *offset,
                "producer" => producer.as_str(), "sequence" => *sequence, "retry" => *retry},
            ),
            GroupEvent::ProduceDuplicate {
                appended_offset: Some(_),
                ..
            } => return None,
            GroupEvent::ProduceDuplicate {
                event_id,
                partition,
                producer,
                sequence,
                original_offset,
                appended_offset: None,
            } => (
                "produce_deduplicated",
                fields! {"event_id" => event_id.as_str(), "partition" => *partition,
                "offset" => *original_offset, "producer" => producer.as_str(), "sequence" => *sequence},
            ),
            GroupEvent::Join { member, generation } => (
                "join",
                fields! {"member" => member.as_str(), "generation" => *generation},
            ),
            GroupEvent::Rebalance {
                generation,
                reason,
                members,
            } => (
                "rebalance",
                fields! {"generation" => *generation, "reason" => *reason, "members" => members.clone()},
            ),
            GroupEvent::Assignment {
                generation,
                assignment,
            } => {
                let object: serde_json::Map<String, Value> = assignment
                    .iter()
                    .map(|(m, ps)| (m.clone(), Value::from(ps.clone())))
                    .collect();
                (
                    "assignment",
                    fields! {"generation" => *generation, "assignment" => Value::Object(object)},
                )
            }
            GroupEvent::MemberRemoved { member, reason } => (
                "member_removed",
                fields! {"member" => member.as_str(), "reason" => *reason},
            ),
            GroupEvent::CommitAccepted {
                member,
                generation,
                partition,
                offset,
            } => (
                "offset_commit",
                fields! {"member" => member.as_str(), "generation" => *generation, "partition" => *partition,
                "offset" => *offset, "accepted" => true},
            ),
            GroupEvent::CommitRejected {
                member,
                generation,
                partition,
                offset,
                error,
            } => (
                "offset_commit",
                fields! {"member" => member.as_str(), "generation" => *generation, "partition" => *partition,
                "offset" => *offset, "accepted" => false, "error" => error.name()},
            ),
        })
    }
}

/// How the group coordinator assigns partitions to members (sorted by member id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Assignor {
    /// Kafka's `range`: each member gets a contiguous run of partitions, the first
    /// `partitions % members` members one more.
    Range,
    /// Kafka's `roundrobin`: partition `p` goes to member `p % members`.
    RoundRobin,
}

/// The Kafka broker and its consumer group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// How partitions are assigned on every membership change.
    pub assignor: Assignor,
    /// A member that sends no heartbeat for this long is removed from the group.
    pub session_timeout_ms: u64,
    /// How often members heartbeat.
    pub heartbeat_interval_ms: u64,
    /// A member that does not poll for this long is removed while it may still be working
    /// (the zombie case).
    pub max_poll_interval_ms: u64,
    /// Producers send sequence numbers and the broker drops a retried append (Kafka's
    /// idempotent producer); without it a lost ack makes the retry append the record again.
    pub idempotent_producer: bool,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            assignor: Assignor::Range,
            session_timeout_ms: 10_000,
            heartbeat_interval_ms: 3_000,
            max_poll_interval_ms: 30_000,
            idempotent_producer: false,
        }
    }
}

/// The partition of `key` among `n`: FNV-1a, stable across builds and platforms.
pub fn partition_of(key: &str, n: u32) -> u32 {
    assert!(n > 0, "a topic has at least one partition");
    let mut h: u64 = 0xcbf29ce484222325;
    for b in key.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    (h % n as u64) as u32
}

/// Assigns `partitions` partitions to `members` as Kafka's assignors do for one topic, members
/// sorted by id (as strings); every member gets an entry, maybe empty.
/// - `range`: with `n = partitions / members` and `extra = partitions % members`, the `i`-th
///   member gets the contiguous run of `n` partitions (one more for the first `extra`) that
///   starts at `i * n + min(i, extra)`. 3 members, 10 partitions: `[0..=3], [4..=6], [7..=9]`.
/// - `round_robin`: partition `p` goes to the `p % members`-th member.
pub fn assign(assignor: Assignor, members: &[String], partitions: u32) -> BTreeMap<String, Vec<u32>> {
    let mut sorted: Vec<&String> = members.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut out: BTreeMap<String, Vec<u32>> = sorted.iter().map(|m| ((*m).clone(), Vec::new())).collect();
    let count = sorted.len() as u32;
    if count == 0 {
        return out;
    }
    match assignor {
        Assignor::Range => {
            let (n, extra) = (partitions / count, partitions % count);
            for (i, m) in sorted.iter().enumerate() {
                let i = i as u32;
                let start = i * n + i.min(extra);
                let len = n + u32::from(i < extra);
                out.insert((*m).clone(), (start..start + len).collect());
            }
        }
        Assignor::RoundRobin => {
            for p in 0..partitions {
                out.get_mut(sorted[(p % count) as usize])
                    .expect("every member has an entry")
                    .push(p);
            }
        }
    }
    debug_assert_eq!(out.values().map(Vec::len).sum::<usize>(), partitions as usize);
    out
}

/// A member as the coordinator sees it.
#[derive(Clone, Debug)]
struct Member {
    /// The last generation it joined.
    joined_generation: u64,
    /// Its last heartbeat (or join, sync, accepted commit).
    heartbeat_ms: u64,
    /// Its last poll (fetch, join or sync).
    poll_ms: u64,
}

/// The group coordinator's state for `workers`.
#[derive(Clone, Debug)]
struct Group {
    state: GroupState,
    generation: u64,
    /// When the open round times out.
    round_deadline_ms: u64,
    members: BTreeMap<String, Member>,
    /// The current generation's assignment (empty unless stable).
    assignment: BTreeMap<String, Vec<u32>>,
    /// Member ids handed out so far.
    members_created: u64,
}

/// The broker's state: a pure state machine.
#[derive(Clone, Debug)]
pub struct KafkaModel {
    config: KafkaConfig,
    partitions: Vec<Vec<Record>>,
    committed: Vec<Option<u64>>,
    /// Where each `(producer, sequence)` was first appended: partition and offset.
    sequences: BTreeMap<(String, u64), (u32, u64)>,
    group: Group,
    events: Vec<GroupEvent>,
    /// The latest time seen: time passed in never goes back.
    now_ms: u64,
}

impl KafkaModel {
    /// An empty topic of `partitions` partitions with the default [`KafkaConfig`].
    pub fn new(partitions: u32) -> Self {
        Self::with_config(partitions, &KafkaConfig::default())
    }

    /// An empty topic of `partitions` partitions, its group run as `config` says.
    pub fn with_config(partitions: u32, config: &KafkaConfig) -> Self {
        assert!(partitions > 0, "a topic has at least one partition");
        KafkaModel {
            config: config.clone(),
            partitions: vec![Vec::new(); partitions as usize],
            committed: vec![None; partitions as usize],
            sequences: BTreeMap::new(),
            group: Group {
                state: GroupState::Empty,
                generation: 0,
                round_deadline_ms: 0,
                members: BTreeMap::new(),
                assignment: BTreeMap::new(),
                members_created: 0,
            },
            events: Vec::new(),
            now_ms: 0,
        }
    }

    /// Handles one request at `now_ms`, after expiring what is due.
    pub fn handle(&mut self, req: KafkaRequest, now_ms: u64) -> KafkaReply {
        self.tick(now_ms);
        let now = self.now_ms;
        match req {
            KafkaRequest::ProduceSeq {
                producer,
                sequence,
                record,
            } => self.produce_seq(producer, sequence, record),
            KafkaRequest::JoinGroup { member_id, client } => self.join(member_id, &client, now),
            KafkaRequest::SyncGroup {
                member_id,
                generation,
            } => match self.check_member(&member_id, generation) {
                Err(e) => KafkaReply::Error(e),
                Ok(()) => {
                    let m = self.group.members.get_mut(&member_id).expect("checked");
                    m.heartbeat_ms = now;
                    m.poll_ms = now;
                    if self.group.state == GroupState::PreparingRebalance {
                        return KafkaReply::Error(GroupError::RebalanceInProgress);
                    }
                    KafkaReply::Assignment {
                        generation,
                        partitions: self.group.assignment.get(&member_id).cloned().unwrap_or_default(),
                    }
                }
            },
            KafkaRequest::Heartbeat {
                member_id,
                generation,
            } => match self.check_member(&member_id, generation) {
                Err(e) => KafkaReply::Error(e),
                Ok(()) => {
                    self.group
                        .members
                        .get_mut(&member_id)
                        .expect("checked")
                        .heartbeat_ms = now;
                    if self.group.state == GroupState::PreparingRebalance {
                        KafkaReply::Error(GroupError::RebalanceInProgress)
                    } else {
                        KafkaReply::HeartbeatOk
                    }
                }
            },
            KafkaRequest::LeaveGroup { member_id } => {
                if self.group.members.remove(&member_id).is_none() {
                    return KafkaReply::Error(GroupError::UnknownMemberId);
                }
                self.events.push(GroupEvent::MemberRemoved {
                    member: member_id,
                    reason: "leave",
                });
                self.membership_changed("leave", now);
                KafkaReply::Left
            }
            KafkaRequest::FetchGroup {
                member_id,
                partition,
                from,
                max,
                ..
            } => {
                if let Some(m) = self.group.members.get_mut(&member_id) {
                    m.poll_ms = now;
                }
                match self.read(partition, from, max) {
                    Some(records) => KafkaReply::Records(records),
                    None => KafkaReply::Error(GroupError::UnknownTopicOrPartition),
                }
            }
            KafkaRequest::CommitGroup {
                member_id,
                generation,
                partition,
                offset,
            } => self.commit(member_id, generation, partition, offset, now),
            KafkaRequest::CommittedGroup => KafkaReply::GroupOffsets(self.committed.clone()),
        }
    }

    /// Expires members and rounds that are due at `now_ms` (time never goes back: an earlier
    /// `now_ms` counts as the latest seen).
    pub fn tick(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
        let now = self.now_ms;
        let (session_ms, poll_ms) = (self.config.session_timeout_ms, self.config.max_poll_interval_ms);
        let expired: Vec<(String, &'static str)> = self
            .group
            .members
            .iter()
            .filter_map(|(id, m)| {
                if now.saturating_sub(m.heartbeat_ms) > session_ms {
                    Some((id.clone(), "session_timeout"))
                } else if now.saturating_sub(m.poll_ms) > poll_ms {
                    Some((id.clone(), "max_poll_interval"))
                } else {
                    None
                }
            })
            .collect();
        if let Some(&(_, first_reason)) = expired.first() {
            for (id, reason) in expired {
                self.group.members.remove(&id);
                self.events.push(GroupEvent::MemberRemoved { member: id, reason });
            }
            self.membership_changed(first_reason, now);
        }
        if self.group.state == GroupState::PreparingRebalance && now > self.group.round_deadline_ms {
            let generation = self.group.generation;
            let laggards: Vec<String> = self
                .group
                .members
                .iter()
                .filter(|(_, m)| m.joined_generation != generation)
                .map(|(id, _)| id.clone())
                .collect();
            for id in laggards {
                self.group.members.remove(&id);
                self.events.push(GroupEvent::MemberRemoved {
                    member: id,
                    reason: "rebalance_timeout",
                });
            }
            self.close_round_if_complete();
            assert_ne!(
                self.group.state,
                GroupState::PreparingRebalance,
                "a timed-out round closes"
            );
        }
    }

    /// The broker (re)started at `now_ms`: every member's session and poll timers and an open
    /// round's deadline start again from now (see the module doc).
    pub fn restarted(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
        let now = self.now_ms;
        for m in self.group.members.values_mut() {
            m.heartbeat_ms = now;
            m.poll_ms = now;
        }
        if self.group.state == GroupState::PreparingRebalance {
            self.group.round_deadline_ms = now + self.config.session_timeout_ms;
        }
    }

    /// What happened since the last call, in order.
    pub fn take_events(&mut self) -> Vec<GroupEvent> {
        std::mem::take(&mut self.events)
    }

    /// True when the group has committed every partition up to its end: every record
    /// consumed. The run's quiescence needs it.
    pub fn drained(&self) -> bool {
        self.partitions
            .iter()
            .zip(&self.committed)
            .all(|(log, c)| c.unwrap_or(0) >= log.len() as u64)
    }

    /// The number of records in `partition`.
    pub fn log_len(&self, partition: u32) -> u64 {
        self.partitions
            .get(partition as usize)
            .map_or(0, |l| l.len() as u64)
    }

    /// The group's state.
    pub fn group_state(&self) -> GroupState {
        self.group.state
    }

    /// The group's generation (0 before the first round).
    pub fn generation(&self) -> u64 {
        self.group.generation
    }

    /// The group's members, sorted.
    pub fn members(&self) -> Vec<String> {
        self.group.members.keys().cloned().collect()
    }

    fn append(&mut self, record: Record) -> (u32, u64) {
        let partition = partition_of(&record.key, self.partitions.len() as u32);
        let log = &mut self.partitions[partition as usize];
        log.push(record);
        (partition, log.len() as u64 - 1)
    }

    fn produce_seq(&mut self, producer: String, sequence: u64, record: Record) -> KafkaReply {
        let key = (producer, sequence);
        let Some(&(partition, original_offset)) = self.sequences.get(&key) else {
            let event_id = record.key.clone();
            let (partition, offset) = self.append(record);
            self.sequences.insert(key.clone(), (partition, offset));
            self.events.push(GroupEvent::Produced {
                event_id,
                partition,
                offset,
                producer: key.0,
                sequence: key.1,
                retry: false,
            });
            return KafkaReply::Produced { partition, offset };
        };
        let (producer, sequence) = key;
        let event_id = record.key.clone();
        if self.config.idempotent_producer {
            self.events.push(GroupEvent::ProduceDuplicate {
                event_id,
                partition,
                producer,
                sequence,
                original_offset,
                appended_offset: None,
            });
            return KafkaReply::Produced {
                partition,
                offset: original_offset,
            };
        }
        let (partition, offset) = self.append(record);
        self.events.push(GroupEvent::Produced {
            event_id: event_id.clone(),
            partition,
            offset,
            producer: producer.clone(),
            sequence,
            retry: true,
        });
        self.events.push(GroupEvent::ProduceDuplicate {
            event_id,
            partition,
            producer,
            sequence,
            original_offset,
            appended_offset: Some(offset),
        });
        KafkaReply::Produced { partition, offset }
    }

    /// Records of `partition` from `from`, at most `max`; `None` if there is no such partition.
    fn read(&self, partition: u32, from: u64, max: usize) -> Option<Vec<(u64, Record)>> {
        let log = self.partitions.get(partition as usize)?;
        Some(
            log.iter()
                .enumerate()
                .skip(usize::try_from(from).unwrap_or(usize::MAX))
                .take(max)
                .map(|(o, r)| (o as u64, r.clone()))
                .collect(),
        )
    }

    /// `Ok` if `member_id` is a member and, outside an open round, of `generation`.
    fn check_member(&self, member_id: &str, generation: u64) -> Result<(), GroupError> {
        if !self.group.members.contains_key(member_id) {
            return Err(GroupError::UnknownMemberId);
        }
        if self.group.state != GroupState::PreparingRebalance && generation != self.group.generation {
            return Err(GroupError::IllegalGeneration);
        }
        Ok(())
    }

    fn join(&mut self, member_id: Option<String>, client: &str, now: u64) -> KafkaReply {
        let id = match member_id {
            Some(id) => {
                let Some(m) = self.group.members.get_mut(&id) else {
                    return KafkaReply::Error(GroupError::UnknownMemberId);
                };
                m.heartbeat_ms = now;
                m.poll_ms = now;
                id
            }
            None => {
                self.group.members_created += 1;
                let id = format!("{client}-{}", self.group.members_created);
                let fresh = Member {
                    joined_generation: 0,
                    heartbeat_ms: now,
                    poll_ms: now,
                };
                assert!(
                    self.group.members.insert(id.clone(), fresh).is_none(),
                    "member ids are fresh"
                );
                self.membership_changed("join", now);
                id
            }
        };
        let generation = self.group.generation;
        let m = self.group.members.get_mut(&id).expect("a member");
        if self.group.state == GroupState::PreparingRebalance && m.joined_generation != generation {
            m.joined_generation = generation;
            self.events.push(GroupEvent::Join {
                member: id.clone(),
                generation,
            });
            self.close_round_if_complete();
        }
        if self.group.state == GroupState::Stable {
            KafkaReply::Joined {
                member_id: id,
                generation,
            }
        } else {
            KafkaReply::JoinPending {
                member_id: id,
                generation,
            }
        }
    }

    fn commit(
        &mut self,
        member: String,
        generation: u64,
        partition: u32,
        offset: u64,
        now: u64,
    ) -> KafkaReply {
        let verdict = self.check_member(&member, generation).and_then(|()| {
            if self.group.state == GroupState::PreparingRebalance {
                Err(GroupError::RebalanceInProgress)
            } else if (partition as usize) >= self.committed.len() {
                Err(GroupError::UnknownTopicOrPartition)
            } else {
                Ok(())
            }
        });
        match verdict {
            Ok(()) => {
                self.committed[partition as usize] = Some(offset);
                self.group.members.get_mut(&member).expect("checked").heartbeat_ms = now;
                self.events.push(GroupEvent::CommitAccepted {
                    member,
                    generation,
                    partition,
                    offset,
                });
                KafkaReply::Committed
            }
            Err(error) => {
                self.events.push(GroupEvent::CommitRejected {
                    member,
                    generation,
                    partition,
                    offset,
                    error,
                });
                KafkaReply::Error(error)
            }
        }
    }

    /// Opens a round (unless one is open), then closes it if it is complete.
    fn membership_changed(&mut self, reason: &'static str, now: u64) {
        if self.group.state != GroupState::PreparingRebalance {
            self.group.generation += 1;
            self.group.state = GroupState::PreparingRebalance;
            self.group.round_deadline_ms = now + self.config.session_timeout_ms;
            self.group.assignment.clear();
            self.events.push(GroupEvent::Rebalance {
                generation: self.group.generation,
                reason,
                members: self.members(),
            });
        }
        self.close_round_if_complete();
    }

    /// Closes the open round if every member has joined it.
    fn close_round_if_complete(&mut self) {
        let generation = self.group.generation;
        if self.group.state != GroupState::PreparingRebalance
            || self
                .group
                .members
                .values()
                .any(|m| m.joined_generation != generation)
        {
            return;
        }
        let members = self.members();
        self.group.assignment = assign(self.config.assignor, &members, self.partitions.len() as u32);
        self.group.state = if members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
        self.events.push(GroupEvent::Assignment {
            generation,
            assignment: self.group.assignment.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn rec(key: &str) -> Record {
        Record {
            key: key.into(),
            headers: vec![],
            value: key.as_bytes().to_vec(),
        }
    }

    fn config(assignor: Assignor) -> KafkaConfig {
        KafkaConfig {
            assignor,
            session_timeout_ms: 10_000,
            heartbeat_interval_ms: 3_000,
            max_poll_interval_ms: 30_000,
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

    fn fetch(
        k: &mut KafkaModel,
        id: &str,
        generation: u64,
        partition: u32,
        from: u64,
        now: u64,
    ) -> KafkaReply {
        k.handle(
            KafkaRequest::FetchGroup {
                member_id: id.into(),
                generation,
                partition,
                from,
                max: 100,
            },
            now,
        )
    }

    fn committed(k: &mut KafkaModel, now: u64) -> Vec<Option<u64>> {
        match k.handle(KafkaRequest::CommittedGroup, now) {
            KafkaReply::GroupOffsets(o) => o,
            other => panic!("committed: {other:?}"),
        }
    }

    fn names(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| s.to_string()).collect()
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
        let KafkaReply::Records(all) = fetch(&mut k, "anyone", 0, p, 0, 0) else {
            panic!()
        };
        assert_eq!(all.len() as u64, k.log_len(p));
        assert!(all.windows(2).all(|w| w[0].0 + 1 == w[1].0));
        let KafkaReply::Records(tail) = fetch(&mut k, "anyone", 0, p, 1, 0) else {
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
            assert_eq!(fetch(&mut k, &a, 1, 0, 0, t), KafkaReply::Records(vec![]));
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
    fn range_matches_kafkas_examples() {
        // RangeAssignor javadoc: C0, C1 and a topic of 3 partitions: C0 [p0, p1], C1 [p2].
        let two = names(&["C0", "C1"]);
        assert_eq!(
            assign(Assignor::Range, &two, 3),
            BTreeMap::from([("C0".into(), vec![0, 1]), ("C1".into(), vec![2])])
        );
        // 10 partitions over 3 consumers: 4, 3, 3.
        let three = names(&["C2", "C0", "C1"]);
        assert_eq!(
            assign(Assignor::Range, &three, 10),
            BTreeMap::from([
                ("C0".into(), vec![0, 1, 2, 3]),
                ("C1".into(), vec![4, 5, 6]),
                ("C2".into(), vec![7, 8, 9])
            ])
        );
        // More members than partitions: the last ones get nothing.
        assert_eq!(
            assign(Assignor::Range, &three, 2),
            BTreeMap::from([
                ("C0".into(), vec![0]),
                ("C1".into(), vec![1]),
                ("C2".into(), vec![])
            ])
        );
    }

    #[test]
    fn round_robin_matches_kafkas_examples() {
        // RoundRobinAssignor javadoc: C0, C1, topics t0 and t1 of 3 partitions each, laid out in
        // order as 0..6 (t1pX is 3 + X): C0 [t0p0, t0p2, t1p1], C1 [t0p1, t1p0, t1p2].
        let two = names(&["C1", "C0"]);
        assert_eq!(
            assign(Assignor::RoundRobin, &two, 6),
            BTreeMap::from([("C0".into(), vec![0, 2, 4]), ("C1".into(), vec![1, 3, 5])])
        );
        let three = names(&["C0", "C1", "C2"]);
        assert_eq!(
            assign(Assignor::RoundRobin, &three, 7),
            BTreeMap::from([
                ("C0".into(), vec![0, 3, 6]),
                ("C1".into(), vec![1, 4]),
                ("C2".into(), vec![2, 5])
            ])
        );
    }

    #[test]
    fn members_are_sorted_as_strings_so_worker_10_comes_before_worker_2() {
        let members = names(&["worker-2-1", "worker-10-2"]);
        assert_eq!(
            assign(Assignor::Range, &members, 3),
            BTreeMap::from([("worker-10-2".into(), vec![0, 1]), ("worker-2-1".into(), vec![2])])
        );
    }

    #[test]
    fn both_assignors_give_every_member_a_balanced_disjoint_share_that_covers_every_partition() {
        for assignor in [Assignor::Range, Assignor::RoundRobin] {
            for m in 1..=7u32 {
                let members: Vec<String> = (0..m).map(|i| format!("m{i}")).collect();
                for partitions in 0..=13u32 {
                    let a = assign(assignor, &members, partitions);
                    assert_eq!(a.len(), m as usize);
                    let mut seen = BTreeSet::new();
                    for ps in a.values() {
                        assert!(ps.windows(2).all(|w| w[0] < w[1]), "ascending");
                        for p in ps {
                            assert!(seen.insert(*p), "{assignor:?} {m}x{partitions}: {p} twice");
                        }
                    }
                    assert_eq!(seen, (0..partitions).collect::<BTreeSet<u32>>());
                    let sizes: Vec<usize> = a.values().map(Vec::len).collect();
                    let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                    assert!(hi - lo <= 1, "{assignor:?} {m}x{partitions}: {sizes:?}");
                }
            }
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
        assert!(matches!(fetch(&mut k, &a, g, p, 0, 50), KafkaReply::Records(r) if !r.is_empty()));
        // A is stuck in its handler: its heartbeat thread goes on, it does not poll. B polls.
        let mut t = 3_000;
        while t <= 30_000 {
            assert_eq!(heartbeat(&mut k, &a, g, t), KafkaReply::HeartbeatOk);
            assert_eq!(heartbeat(&mut k, &b, g, t), KafkaReply::HeartbeatOk);
            assert!(matches!(fetch(&mut k, &b, g, 1, 0, t), KafkaReply::Records(_)));
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
        assert!(
            matches!(fetch(&mut k, &a, g, p, 1, 30_200), KafkaReply::Records(r) if r.len() as u64 + 1 == k.log_len(p))
        );
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
        assert!(
            matches!(rejoin(&mut k, &b, 102), KafkaReply::Joined { generation, .. } if generation == g + 1)
        );
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
        let KafkaReply::Records(r) = fetch(&mut k, &a, g, 0, 0, 10) else {
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
        let KafkaReply::Records(again) = fetch(&mut k, &b, g2, 0, from, 10_103) else {
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

    #[test]
    fn events_become_the_trace_fields_the_checkers_read() {
        let json = |e: &GroupEvent| {
            let (kind, fields) = e.trace().expect("traced");
            let fields: BTreeMap<&str, String> = fields.iter().map(|(k, v)| (*k, v.to_string())).collect();
            format!("{kind} {fields:?}")
        };
        let produced = GroupEvent::Produced {
            event_id: "e1".into(),
            partition: 2,
            offset: 7,
            producer: "producer".into(),
            sequence: 4,
            retry: true,
        };
        assert_eq!(
            json(&produced),
            r#"produce {"event_id": "\"e1\"", "offset": "7", "partition": "2", "producer": "\"producer\"", "retry": "true", "sequence": "4"}"#
        );
        let dup = GroupEvent::ProduceDuplicate {
            event_id: "e1".into(),
            partition: 2,
            producer: "producer".into(),
            sequence: 4,
            original_offset: 6,
            appended_offset: Some(7),
        };
        assert_eq!(dup.trace(), None);
        let dedup = GroupEvent::ProduceDuplicate {
            event_id: "e1".into(),
            partition: 2,
            producer: "producer".into(),
            sequence: 4,
            original_offset: 6,
            appended_offset: None,
        };
        assert_eq!(
            json(&dedup),
            r#"produce_deduplicated {"event_id": "\"e1\"", "offset": "6", "partition": "2", "producer": "\"producer\"", "sequence": "4"}"#
        );
        let assignment = GroupEvent::Assignment {
            generation: 3,
            assignment: BTreeMap::from([("a".into(), vec![0, 1]), ("b".into(), vec![])]),
        };
        assert_eq!(
            json(&assignment),
            r#"assignment {"assignment": "{\"a\":[0,1],\"b\":[]}", "generation": "3"}"#
        );
        let rebalance = GroupEvent::Rebalance {
            generation: 3,
            reason: "join",
            members: vec!["a".into(), "b".into()],
        };
        assert_eq!(
            json(&rebalance),
            r#"rebalance {"generation": "3", "members": "[\"a\",\"b\"]", "reason": "\"join\""}"#
        );
        let rejected = GroupEvent::CommitRejected {
            member: "a".into(),
            generation: 2,
            partition: 1,
            offset: 5,
            error: GroupError::IllegalGeneration,
        };
        assert_eq!(
            json(&rejected),
            r#"offset_commit {"accepted": "false", "error": "\"illegal_generation\"", "generation": "2", "member": "\"a\"", "offset": "5", "partition": "1"}"#
        );
        let accepted = GroupEvent::CommitAccepted {
            member: "worker-1".into(),
            generation: 0,
            partition: 1,
            offset: 5,
        };
        assert_eq!(
            json(&accepted),
            r#"offset_commit {"accepted": "true", "generation": "0", "member": "\"worker-1\"", "offset": "5", "partition": "1"}"#
        );
        let removed = GroupEvent::MemberRemoved {
            member: "a".into(),
            reason: "max_poll_interval",
        };
        assert_eq!(
            json(&removed),
            r#"member_removed {"member": "\"a\"", "reason": "\"max_poll_interval\""}"#
        );
        let join = GroupEvent::Join {
            member: "a".into(),
            generation: 3,
        };
        assert_eq!(json(&join), r#"join {"generation": "3", "member": "\"a\""}"#);
    }
}
