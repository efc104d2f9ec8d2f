//! What the broker and its group coordinator did ([`GroupEvent`]), drained by
//! [`KafkaModel::take_events`](super::KafkaModel::take_events), and how each becomes a trace
//! event's kind and fields ([`GroupEvent::trace`]).

use super::GroupError;
use serde_json::Value;
use std::collections::BTreeMap;

/// What the broker and its group coordinator did, in order; drained by
/// [`KafkaModel::take_events`]. [`GroupEvent::trace`] turns one into a trace event.
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

impl GroupEvent {
    /// The trace event's kind and fields (node `kafka`), or `None` for an event the trace
    /// shows otherwise (a duplicate append is the `produce` event with `retry: true`).
    pub fn trace(&self) -> Option<(&'static str, BTreeMap<&'static str, Value>)> {
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
                BTreeMap::from([
                    ("event_id", Value::from(event_id.as_str())),
                    ("partition", Value::from(*partition)),
                    ("offset", Value::from(*offset)),
                    ("producer", Value::from(producer.as_str())),
                    ("sequence", Value::from(*sequence)),
                    ("retry", Value::from(*retry)),
                ]),
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
                BTreeMap::from([
                    ("event_id", Value::from(event_id.as_str())),
                    ("partition", Value::from(*partition)),
                    ("offset", Value::from(*original_offset)),
                    ("producer", Value::from(producer.as_str())),
                    ("sequence", Value::from(*sequence)),
                ]),
            ),
            GroupEvent::Join { member, generation } => (
                "join",
                BTreeMap::from([
                    ("member", Value::from(member.as_str())),
                    ("generation", Value::from(*generation)),
                ]),
            ),
            GroupEvent::Rebalance {
                generation,
                reason,
                members,
            } => (
                "rebalance",
                BTreeMap::from([
                    ("generation", Value::from(*generation)),
                    ("reason", Value::from(*reason)),
                    ("members", Value::from(members.clone())),
                ]),
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
                    BTreeMap::from([
                        ("generation", Value::from(*generation)),
                        ("assignment", Value::Object(object)),
                    ]),
                )
            }
            GroupEvent::MemberRemoved { member, reason } => (
                "member_removed",
                BTreeMap::from([
                    ("member", Value::from(member.as_str())),
                    ("reason", Value::from(*reason)),
                ]),
            ),
            GroupEvent::CommitAccepted {
                member,
                generation,
                partition,
                offset,
            } => (
                "offset_commit",
                BTreeMap::from([
                    ("member", Value::from(member.as_str())),
                    ("generation", Value::from(*generation)),
                    ("partition", Value::from(*partition)),
                    ("offset", Value::from(*offset)),
                    ("accepted", Value::from(true)),
                ]),
            ),
            GroupEvent::CommitRejected {
                member,
                generation,
                partition,
                offset,
                error,
            } => (
                "offset_commit",
                BTreeMap::from([
                    ("member", Value::from(member.as_str())),
                    ("generation", Value::from(*generation)),
                    ("partition", Value::from(*partition)),
                    ("offset", Value::from(*offset)),
                    ("accepted", Value::from(false)),
                    ("error", Value::from(error.name())),
                ]),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
