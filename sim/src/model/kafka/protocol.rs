//! The broker's wire protocol: the requests it takes ([`KafkaRequest`]), the replies it gives
//! ([`KafkaReply`], [`GroupError`]) and the records it stores ([`Record`]). Plain data; what each
//! request does is the [module documentation](super)'s table.

use std::sync::Arc;

/// The consumer group's name (the only one).
pub const GROUP: &str = "workers";

/// A record as produced. Its headers and value are shared, not copied: a record is copied
/// for every produce attempt, into the log, and into every fetch that returns it, and is never
/// changed (a producer's copy with other headers gets headers of its own).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The record key (the event id).
    pub key: String,
    /// Headers in order.
    pub headers: Arc<[(String, Vec<u8>)]>,
    /// The value (a v2 envelope).
    pub value: Arc<[u8]>,
}

/// A fetch's records: per partition, the records with their offsets.
pub type Fetched = Vec<(u32, Vec<(u64, Record)>)>;

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
    /// A poll: up to `max` records of each partition from its offset. Neither membership nor
    /// generation is checked; it counts as a poll for a current member. A broker that holds
    /// requests ([`KafkaModel::request`](super::KafkaModel::request)) holds one that finds no
    /// record for up to `max_wait_ms` (Kafka's `fetch.max.wait.ms`).
    FetchGroup {
        /// The member.
        member_id: String,
        /// The generation it is in (not checked).
        generation: u64,
        /// Each partition with the first offset wanted, in the order the reply keeps.
        partitions: Vec<(u32, u64)>,
        /// At most this many records per partition.
        max: usize,
        /// How long the broker may hold the request while none of its partitions has a
        /// record; 0: answer at once.
        max_wait_ms: u64,
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

impl KafkaRequest {
    /// The name of the Kafka API the request stands for (`Produce`, `JoinGroup`, `Fetch`, ...).
    pub fn api_name(&self) -> &'static str {
        match self {
            KafkaRequest::ProduceSeq { .. } => "Produce",
            KafkaRequest::JoinGroup { .. } => "JoinGroup",
            KafkaRequest::SyncGroup { .. } => "SyncGroup",
            KafkaRequest::Heartbeat { .. } => "Heartbeat",
            KafkaRequest::LeaveGroup { .. } => "LeaveGroup",
            KafkaRequest::FetchGroup { .. } => "Fetch",
            KafkaRequest::CommitGroup { .. } => "OffsetCommit",
            KafkaRequest::CommittedGroup => "OffsetFetch",
        }
    }
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
    /// Fetched records with their offsets, per partition of the request, in its order.
    Records(Fetched),
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
    /// Only [`KafkaModel::handle`](super::KafkaModel::handle) answers it; a broker that holds
    /// requests answers `Joined` when the round closes.
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
