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
//! strings; see `assign`) and the group is `Stable`. A change while a round is open joins that
//! round (same generation), as in Kafka. The last member leaving closes the round at once with
//! an empty assignment and the group is `Empty`.
//!
//! Requests and replies (`G` is the group's generation; errors are [`KafkaReply::Error`]):
//!
//! | request | reply |
//! |---|---|
//! | `JoinGroup { member_id: None, client }` | a new member `{client}-{n}` (`n` counts from 1 over the broker's life); opens a round unless one is open; `Joined { member_id, generation }` if that closed the round, else `JoinPending` |
//! | `JoinGroup { member_id: Some(id), .. }` | unknown id: `UnknownMemberId` (join again without an id). Otherwise joins the open round; `Joined` once the round is closed (or if the group is `Stable`, without a rebalance), `JoinPending` while others have not joined (held instead, see below) |
//! | `SyncGroup { member_id, generation }` | `UnknownMemberId`; `RebalanceInProgress` while a round is open; `IllegalGeneration` if `generation != G`; else `Assignment { generation, partitions }` |
//! | `Heartbeat { member_id, generation }` | `UnknownMemberId`; `RebalanceInProgress` while a round is open (rejoin); `IllegalGeneration`; else `HeartbeatOk` |
//! | `LeaveGroup { member_id }` | `UnknownMemberId`; else the member is removed (reason `leave`) and `Left` |
//! | `FetchGroup { member_id, generation, partitions, max, max_wait_ms }` | `Records`: per partition, in the request's order, up to `max` records from its offset, whoever asks: like Kafka's Fetch it checks neither membership nor generation, so a zombie still reads. `UnknownTopicOrPartition` if a partition does not exist |
//! | `CommitGroup { member_id, generation, partition, offset }` | `UnknownMemberId`; `RebalanceInProgress` while a round is open; `IllegalGeneration` if `generation != G`; `UnknownTopicOrPartition`; else stored and `Committed` |
//! | `CommittedGroup` | `GroupOffsets`: per partition the committed offset (the next offset to read), `None` if never committed (start from the earliest offset, 0) |
//!
//! # Long polls
//! [`KafkaModel::handle`] answers every request at once. [`KafkaModel::request`] is the broker
//! the node runs, which holds two requests as Kafka's does (the bookkeeping is `park`):
//! - a `JoinGroup` that would be `JoinPending` waits until its round closes: every member that
//!   waits gets `Joined` at once then (its session and poll timers start again), or
//!   `UnknownMemberId` if it was removed meanwhile. A member waiting in a join is not expired
//!   (Kafka's coordinator keeps it alive); the rebalance timeout closes the round, so no join
//!   waits longer than that.
//! - a `FetchGroup` that finds no record waits up to its `max_wait_ms`, and is answered as
//!   soon as a record lands on one of its partitions. A fetch by a member of the group is also
//!   answered (with what there is) when the member leaves the group or a round opens, so a
//!   rebalance does not wait for it; a stranger's (a zombie's) waits for records or its time.
//!
//! A held request is answered through [`KafkaModel::take_answers`], under the ticket it came
//! with; a caller that gave up is [cancelled](KafkaModel::cancel); a restart drops them all.
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
//!   is a `FetchGroup` by a current member (of any partitions, even none: a member that owns
//!   no partition polls that way or with `SyncGroup`), a `JoinGroup` or such a `SyncGroup`.
//! - rebalance: a round open longer than `session_timeout_ms` closes without the members that
//!   did not join it (`rebalance_timeout`).
//!
//! Neither session nor poll expiry touches a member waiting in a held join (see "Long polls").
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
//! - A new member gets its id at once (no `MEMBER_ID_REQUIRED` round trip, KIP-394); ids are `{client}-{n}`, not
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
mod park;
mod protocol;

pub use assign::{assign, partition_of};
pub use config::{Assignor, KafkaConfig};
pub use event::GroupEvent;
pub use group::GroupState;
pub use park::{Ticket, MAX_HELD};
pub use protocol::{Fetched, GroupError, KafkaReply, KafkaRequest, Record, GROUP};

use group::Group;
use park::{Broker, Held, Park};
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
    /// The requests held (only [`KafkaModel::request`] holds any).
    park: Park,
    /// Held requests answered since the last [`KafkaModel::take_answers`], in order.
    answers: Vec<(Ticket, KafkaReply)>,
    /// The latest time seen: time passed in never goes back.
    now_ms: u64,
}

/// The broker as its held requests see it: the group and the log (every field but the park).
struct View<'a> {
    group: &'a Group,
    partitions: &'a [Vec<Record>],
}

impl Broker for View<'_> {
    fn is_member(&self, member: &str) -> bool {
        self.group.is_member(member)
    }
    fn round_open(&self) -> bool {
        self.group.round_open()
    }
    fn generation(&self) -> u64 {
        self.group.generation()
    }
    fn log_len(&self, partition: u32) -> u64 {
        self.partitions
            .get(partition as usize)
            .map_or(0, |l| l.len() as u64)
    }
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
            park: Park::default(),
            answers: Vec::new(),
            now_ms: 0,
        }
    }

    /// Handles one request at `now_ms`, after expiring what is due, and answers it at once: a
    /// join of a round still open is `JoinPending`, a fetch that finds nothing is answered with
    /// no records. (The node holds them instead: [`KafkaModel::request`].)
    pub fn handle(&mut self, req: KafkaRequest, now_ms: u64) -> KafkaReply {
        self.tick(now_ms);
        let reply = self.apply(req);
        self.settle();
        reply
    }

    /// Handles one request at `now_ms` as a broker that holds requests, as Kafka's does: a
    /// `JoinGroup` of a round still open is held until the round closes (at the latest at the
    /// rebalance timeout), a `FetchGroup` that finds no record for up to its `max_wait_ms`.
    /// `None` if the request is held under `ticket`: its reply comes out of
    /// [`KafkaModel::take_answers`] when it is due, or never if it is [cancelled](Self::cancel)
    /// or the broker restarts first. Any other request is answered at once, as by
    /// [`KafkaModel::handle`].
    pub fn request(&mut self, req: KafkaRequest, now_ms: u64, ticket: Ticket) -> Option<KafkaReply> {
        self.tick(now_ms);
        let now = self.now_ms;
        let held = match &req {
            KafkaRequest::FetchGroup {
                member_id,
                partitions,
                max,
                max_wait_ms,
                ..
            } if *max_wait_ms > 0 => {
                let view = self.view();
                let nothing = partitions
                    .iter()
                    .all(|&(p, from)| (p as usize) < self.partitions.len() && view.log_len(p) <= from);
                nothing.then(|| Held::Fetch {
                    member: member_id.clone(),
                    generation: self.group.is_member(member_id).then(|| self.group.generation()),
                    partitions: partitions.clone(),
                    max: *max,
                    deadline_ms: now.saturating_add(*max_wait_ms),
                })
            }
            _ => None,
        };
        let reply = self.apply(req);
        let held = match (held, &reply) {
            // An empty fetch is still a poll (`apply` counted it); it waits for records.
            (Some(fetch), _) => Some(fetch),
            (
                None,
                KafkaReply::JoinPending {
                    member_id,
                    generation,
                },
            ) => Some(Held::Join {
                member: member_id.clone(),
                generation: *generation,
            }),
            (None, _) => None,
        };
        let answer = match held {
            Some(h) => {
                self.park.hold(ticket, h);
                None
            }
            None => Some(reply),
        };
        self.settle();
        answer
    }

    /// Held requests answered since the last call, in the order they fell due.
    pub fn take_answers(&mut self) -> Vec<(Ticket, KafkaReply)> {
        std::mem::take(&mut self.answers)
    }

    /// The caller of held request `ticket` gave up (its connection is gone): it is never
    /// answered. False if it was not held.
    pub fn cancel(&mut self, ticket: Ticket) -> bool {
        self.park.cancel(ticket)
    }

    /// How many requests are held.
    pub fn held(&self) -> usize {
        self.park.len()
    }

    /// The earliest time something falls due by the clock alone: a held fetch's wait running
    /// out, an open round's timeout (the first ms past its deadline), or a member's session or
    /// poll interval running out. The broker wakes then and at no other time while no request
    /// comes, so expiry is on time without a periodic tick.
    pub fn next_deadline(&self) -> Option<u64> {
        let round = self.round_deadline().map(|d| d.saturating_add(1));
        [self.park.next_deadline(), round, self.member_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// The request's effect and reply now (nothing held).
    fn apply(&mut self, req: KafkaRequest) -> KafkaReply {
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
                partitions,
                max,
                ..
            } => self.fetch(&member_id, &partitions, max, now),
            KafkaRequest::CommitGroup {
                member_id,
                generation,
                partition,
                offset,
            } => self.commit(member_id, generation, partition, offset, now),
            KafkaRequest::CommittedGroup => KafkaReply::GroupOffsets(self.committed.clone()),
        }
    }

    fn view(&self) -> View<'_> {
        View {
            group: &self.group,
            partitions: &self.partitions,
        }
    }

    /// Answers the held requests that are due now.
    fn settle(&mut self) {
        let now = self.now_ms;
        let view = View {
            group: &self.group,
            partitions: &self.partitions,
        };
        for (ticket, held) in self.park.take_due(&view, now) {
            let reply = match held {
                Held::Join { member, generation } => self.join_answered(member, generation, now),
                Held::Fetch { partitions, max, .. } => match self.read_all(&partitions, max) {
                    Some(records) => KafkaReply::Records(records),
                    None => KafkaReply::Error(GroupError::UnknownTopicOrPartition),
                },
            };
            self.answers.push((ticket, reply));
        }
    }

    /// What happened since the last call, in order.
    pub fn take_events(&mut self) -> Vec<GroupEvent> {
        std::mem::take(&mut self.events)
    }

    /// Every record in the log, partition by partition, in offset order.
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.partitions.iter().flatten()
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
