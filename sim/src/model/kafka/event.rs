//! What the broker and its group coordinator did ([`GroupEvent`]), drained by
//! [`KafkaModel::take_events`](super::KafkaModel::take_events). The broker node
//! (`node/kafka.rs`) turns each into a trace event: the model knows nothing of the trace.

use super::GroupError;
use std::collections::BTreeMap;

/// What the broker and its group coordinator did, in order; drained by
/// [`KafkaModel::take_events`].
///
/// [`KafkaModel::take_events`]: super::KafkaModel::take_events
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
