//! How the broker and its consumer group are set up: [`KafkaConfig`] and the [`Assignor`] it
//! names (what the assignors do is [`assign`](super::assign)).

use serde::{Deserialize, Serialize};

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
    /// How long the broker holds a member's fetch while none of its partitions has a new
    /// record (Kafka's `fetch.max.wait.ms`, which the consumer sends in each fetch).
    pub fetch_max_wait_ms: u64,
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
            fetch_max_wait_ms: 500,
            idempotent_producer: false,
        }
    }
}
