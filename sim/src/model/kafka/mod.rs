//! The Kafka broker: one topic, its partitions, an (idempotent or not) producer path, and the
//! consumer group `workers` with its coordinator, offsets and eager rebalances.
//!
//! [`KafkaModel`] is a pure state machine: no madsim, no I/O, no randomness, `BTreeMap`s only,
//! and time passed in as `now_ms` to [`KafkaModel::handle`] and [`KafkaModel::tick`]. The thin
//! adapter `node/kafka.rs` puts it on the network and turns what happened (the
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

mod assign;
mod config;
mod event;
mod group;
mod log;
mod protocol;

pub use assign::{assign, partition_of};
pub use config::{Assignor, KafkaConfig};
pub use event::GroupEvent;
pub use group::GroupState;
pub use protocol::{GroupError, KafkaReply, KafkaRequest, Record, GROUP};

use group::Group;
use std::collections::BTreeMap;

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
            group: Group::new(),
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
            } => self.sync(&member_id, generation, now),
            KafkaRequest::Heartbeat {
                member_id,
                generation,
            } => self.heartbeat(&member_id, generation, now),
            KafkaRequest::LeaveGroup { member_id } => self.leave(member_id, now),
            KafkaRequest::FetchGroup {
                member_id,
                partition,
                from,
                max,
                ..
            } => self.fetch(&member_id, partition, from, max, now),
            KafkaRequest::CommitGroup {
                member_id,
                generation,
                partition,
                offset,
            } => self.commit(member_id, generation, partition, offset, now),
            KafkaRequest::CommittedGroup => KafkaReply::GroupOffsets(self.committed.clone()),
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
}

#[cfg(test)]
mod tests;
