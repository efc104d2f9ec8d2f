//! A worker's settings: the protocol, the failure, offset-commit and busy policies, and the
//! timings. Plain data, read from the scenario (see `scenario::config`, which re-exports the
//! policy enums) and copied into each worker's lasting state.

use crate::model::db::DbMode;
use serde::{Deserialize, Serialize};

/// Which idempotency protocol the workers run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProtocolKind {
    /// The Python services' protocol, as the library runs it (the handler called at most once).
    V2,
    /// The safe protocol (the default).
    Fenced,
    /// The Python original's control flow: v2, except that a handler error falls into the
    /// decorator's outer fail-open branch, which calls the handler a second time without a
    /// lock and with a no-op confirm (v2's weakness A). Simulated by the worker
    /// (`delivery`), never by the library.
    #[serde(rename = "python-v2")]
    PythonV2,
}

impl ProtocolKind {
    /// Every protocol, in the order the README lists them.
    pub const ALL: [ProtocolKind; 3] = [ProtocolKind::V2, ProtocolKind::Fenced, ProtocolKind::PythonV2];

    /// The library's protocol (`python-v2` runs the library's v2).
    pub fn to_lib(self) -> idempotency::Protocol {
        match self {
            ProtocolKind::V2 | ProtocolKind::PythonV2 => idempotency::Protocol::V2,
            ProtocolKind::Fenced => idempotency::Protocol::Fenced,
        }
    }

    /// Its name as scenario files and `--protocol` spell it.
    pub fn name(self) -> &'static str {
        match self {
            ProtocolKind::V2 => "v2",
            ProtocolKind::Fenced => "fenced",
            ProtocolKind::PythonV2 => "python-v2",
        }
    }

    /// The protocol named `name`, if any.
    pub fn from_name(name: &str) -> Option<ProtocolKind> {
        ProtocolKind::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Whether a handler error calls the handler again, unprotected (the Python original).
    pub fn calls_handler_again_on_error(self) -> bool {
        self == ProtocolKind::PythonV2
    }
}

/// What workers do when Redis fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailurePolicyKind {
    /// Run unprotected (v2's behaviour).
    FailOpen,
    /// Retry later without committing the offset.
    FailClosed,
}

impl FailurePolicyKind {
    /// The library's policy.
    pub fn to_lib(self) -> idempotency::FailurePolicy {
        match self {
            FailurePolicyKind::FailOpen => idempotency::FailurePolicy::FailOpen,
            FailurePolicyKind::FailClosed => idempotency::FailurePolicy::FailClosed,
        }
    }
}

/// When a worker commits its Kafka offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OffsetCommit {
    /// After each record is processed (at-least-once).
    AfterEach,
    /// After every `offset_commit_every` records.
    EveryN,
    /// Before processing (at-most-once: a crash loses the record).
    BeforeProcessing,
}

/// What a worker does when the event is busy (another worker holds it) or the race is lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BusyPolicy {
    /// Wait and deliver it again until it is processed or a duplicate.
    Retry,
    /// Skip it and move on, as v2's consumers do (the event is lost if the holder died).
    Skip,
}

/// A worker's own settings.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// The idempotency protocol.
    pub protocol: ProtocolKind,
    /// What to do when Redis fails.
    pub on_redis_failure: FailurePolicyKind,
    /// The processing lock's TTL.
    pub processing_ttl_s: u64,
    /// The database's mode (a fenced one is the floor of fencing tokens).
    pub database: DbMode,
    /// How often to heartbeat the group.
    pub heartbeat_interval_ms: u64,
    /// The longest the broker holds a join (the group's rebalance timeout): a join call waits
    /// this much longer than other calls.
    pub rebalance_timeout_ms: u64,
    /// How long the broker may hold a fetch that finds nothing (Kafka's `fetch.max.wait.ms`,
    /// sent in each fetch): a fetch call waits this much longer than other calls.
    pub fetch_max_wait_ms: u64,
    /// How long a Kafka or database call may take.
    pub call_timeout_ms: u64,
    /// How long a Redis command may take.
    pub redis_timeout_ms: u64,
    /// When to commit offsets.
    pub offset_commit: OffsetCommit,
    /// For `every_n`: how many records between commits.
    pub offset_commit_every: u32,
    /// What to do with a busy event.
    pub on_busy: BusyPolicy,
    /// When a poll brings nothing, the next starts no sooner than this long after it began.
    pub poll_idle_ms: u64,
    /// The shortest handler.
    pub handler_ms_min: u64,
    /// The longest handler.
    pub handler_ms_max: u64,
    /// A pause between the effect's commit and the confirm.
    pub confirm_delay_ms: u64,
}
