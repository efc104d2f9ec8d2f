//! Everything that describes a run except the seed: topology, protocol, database, timing,
//! faults and limits. One documented struct; every field has a default, and every knob
//! (flattened, `name=value`) is printed by `sim -v` and is the trace's first event.
//!
//! The subsystems' own config types live beside their subsystems and are re-exported here, so
//! a scenario's whole description is named from one place. So are each knob's range and the
//! limits (defined in `scenario/ranges.rs`); [`SimConfig::validate`] is in
//! `scenario/validate.rs`.
//!
//! ```
//! use sim::config::{DbMode, FaultConfig, ProtocolKind, SimConfig};
//!
//! // A scenario written in code: v2 on a plain database, 5 events, no faults.
//! let config = SimConfig {
//!     name: "v2-calm".into(),
//!     description: "v2 without faults".into(),
//!     protocol: ProtocolKind::V2,
//!     database: DbMode::Plain,
//!     events: 5,
//!     faults: FaultConfig { random: false, ..FaultConfig::default() },
//!     ..SimConfig::default()
//! };
//! assert_eq!(config.validate(), Ok(()));
//! // Without faults v2 does no harm: every event applied once.
//! let r = sim::Sim::from_config(config).run(7);
//! assert!(r.verdict.is_pass());
//! assert_eq!((r.applied, r.duplicates), (5, 0));
//! ```

pub use super::ranges::{
    ranges, Range, MAX_EVENT_TYPES, MAX_OUTAGE_WINDOWS, MAX_RECORDS, MAX_SCHEDULE, MAX_VIRTUAL_MS,
    MAX_VIRTUAL_S,
};
pub use crate::fault::nemesis::FaultConfig;
pub use crate::fault::schedule::ScheduledFault;
pub use crate::model::db::DbMode;
pub use crate::model::kafka::{Assignor, KafkaConfig};
pub use crate::model::redis::Persistence;
pub use crate::net::transport::LinkLatency;
pub use crate::node::worker::{BusyPolicy, FailurePolicyKind, OffsetCommit, ProtocolKind};
use serde::{Deserialize, Serialize};

/// What a scenario expects of every seed: `"pass"`, or the violations it demonstrates (at
/// least one of them must show, and no other kind).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Expect {
    /// `"pass"` or one violation's name.
    One(String),
    /// Any of these violations.
    Any(Vec<String>),
}

impl Expect {
    /// The violation kinds expected (empty: pass).
    pub fn kinds(&self) -> Vec<String> {
        match self {
            Expect::One(s) if s == "pass" => Vec::new(),
            Expect::One(s) => vec![s.clone()],
            Expect::Any(v) => v.clone(),
        }
    }
}

impl Default for Expect {
    fn default() -> Self {
        Expect::One("pass".into())
    }
}

/// One run's description, except the seed: a scenario file is this struct in TOML.
///
/// ```
/// use sim::config::SimConfig;
///
/// let mut config: SimConfig = sim::Sim::new("gc-pause-v2").unwrap().config().clone();
/// assert_eq!((config.workers, config.events, config.safety_s), (2, 1, 450));
/// config.name = "gc-pause-v2-three-workers".into();
/// config.workers = 3;
/// assert!(config.knobs().contains(&"workers=3".to_owned())); // what `sim -v` prints
///
/// // Saved as a scenario file, it reads back the same.
/// let path = std::env::temp_dir().join(format!("three-workers-{}.toml", std::process::id()));
/// std::fs::write(&path, config.to_toml()).unwrap();
/// let read = sim::Sim::new(path.to_str().unwrap());
/// std::fs::remove_file(&path).unwrap();
/// assert_eq!(read.unwrap().config(), &config);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// The scenario's name.
    pub name: String,
    /// One line saying what the scenario shows.
    pub description: String,
    /// What every seed must give.
    pub expect: Expect,
    /// Sweeps count a seed that does not show `expect`'s violations as a failure (for a canary:
    /// a planted bug that every seed must show); otherwise a seed of a scenario that expects
    /// violations may also pass, and the sweep must show them on some seed.
    pub expect_on_every_seed: bool,
    /// The seed its snapshot and examples use.
    pub seed: u64,
    /// A swarm base: each seed first draws its own faults, topology and timing from it (see
    /// [`super::swarm`]); the draw is what runs. (Left out of the trace's config line when off.)
    #[serde(skip_serializing_if = "is_false")]
    pub swarm: bool,
    /// Worker nodes.
    pub workers: u32,
    /// Partitions of the topic.
    pub partitions: u32,
    /// Events the producer publishes.
    pub events: u32,
    /// Publish only these of the `events` drawn (their places, from 0, sorted, each once);
    /// empty: every one. The workload is drawn for `events` as ever and the others are
    /// dropped, so each kept event keeps its id, key, headers, body and publishing time: what
    /// `sim shrink` writes. (Left out of the trace's config line when empty, so adding it
    /// changed no history.)
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keep_events: Vec<u32>,
    /// Share of events sent with `event_id`/`event_type` headers (the rest body-only).
    pub headers_share: f64,
    /// Longest pause before publishing the next event (drawn uniformly from 0 up to it).
    pub produce_gap_ms_max: u64,
    /// Each event is published this many times, each copy keyed to a different partition (so
    /// different workers get it): the same event delivered to several workers at once.
    pub copies: u32,
    /// Virtual time between an event's copies.
    pub copy_gap_ms: u64,
    /// The partition of each copy (copy `i` goes to `copy_partitions[i]`); empty: the first
    /// copy by its key's hash, the others to partitions no earlier copy uses.
    pub copy_partitions: Vec<u32>,
    /// Whether each copy carries the `event_id`/`event_type` headers (copy `i` by
    /// `copy_headers[i]`); empty: every copy as its event was drawn. v2 keys the header path
    /// and the body path differently (its weakness E), so mixing them makes one event two keys.
    pub copy_headers: Vec<bool>,
    /// Event types drawn for the events.
    pub event_types: Vec<String>,
    /// The protocol.
    pub protocol: ProtocolKind,
    /// Each worker's protocol, a mixed fleet as in a rolling migration: worker-N runs entry
    /// N - 1, on the same Redis keys as the others; empty: every worker runs `protocol`. (Left
    /// out of the trace's config line when empty, so adding it changed no history.)
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub worker_protocols: Vec<ProtocolKind>,
    /// What workers do when Redis fails.
    pub on_redis_failure: FailurePolicyKind,
    /// What workers do with a busy event.
    pub on_busy: BusyPolicy,
    /// The lock's (lease's) TTL.
    pub processing_ttl_s: u64,
    /// How the database guards effects.
    pub database: DbMode,
    /// When workers commit offsets.
    pub offset_commit: OffsetCommit,
    /// For `every_n`: how many records per commit.
    pub offset_commit_every: u32,
    /// What survives a Redis crash.
    pub redis_persistence: Persistence,
    /// Every this many ms the Redis node records every live key's PTTL (a `pttl_probe` trace
    /// event) so the `ttl_lifecycle` checker can follow TTLs over time; 0: never.
    pub ttl_probe_ms: u64,
    /// Shortest handler run (before its database commit).
    pub handler_ms_min: u64,
    /// Longest handler run.
    pub handler_ms_max: u64,
    /// How long the handler waits between its database commit and its confirm (the
    /// confirmation held back, as when it runs after the transaction in another task).
    pub confirm_delay_ms: u64,
    /// How long a worker waits before polling again when its partitions had nothing new.
    pub poll_idle_ms: u64,
    /// A worker's Redis command timeout.
    pub redis_timeout_ms: u64,
    /// A worker's database and broker call timeout.
    pub call_timeout_ms: u64,
    /// Lowest one-way network latency.
    pub latency_ms_min: u64,
    /// Highest one-way network latency (outside spikes).
    pub latency_ms_max: u64,
    /// Latency ranges of their own for the links of a node (a slow Redis, a slow database)
    /// or for one link: each `[[link_latency]]` entry names `node`, optionally `peer`, and
    /// `ms_min`..=`ms_max`. A link named by both ends takes the first such entry, else the
    /// first naming one end with no `peer`; any other link keeps `latency_ms_min`..=
    /// `latency_ms_max`. (Left out of the trace's config line when empty, so adding it changed
    /// no history.)
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub link_latency: Vec<LinkLatency>,
    /// Virtual time of the safety phase (faults on).
    pub safety_s: u64,
    /// Longest virtual time of the liveness phase (healed; the run must converge in it).
    pub liveness_s_max: u64,
    /// Most task polls a run may take (a livelock guard).
    pub steps_max: u64,
    /// Real seconds a run may take before the watchdog gives up on it (a hang is a bug; this
    /// keeps it from hanging CI). The only knob in real time.
    pub watchdog_s: u64,
    /// Self-test: the producer node panics at this virtual time in ms (0: never), to check that
    /// a panic inside a node becomes a `crash` verdict.
    pub panic_at_ms: u64,
    /// The broker and the consumer group.
    pub kafka: KafkaConfig,
    /// Faults at chosen moments (see [`crate::fault::schedule`]).
    pub schedule: Vec<ScheduledFault>,
    /// Virtual-time windows `[from_ms, to_ms]` of planned Redis outages: duplicate effects from
    /// fail-open processing inside them are expected and counted apart, not violations.
    pub outage_windows_ms: Vec<[u64; 2]>,
    /// The nemesis.
    pub faults: FaultConfig,
    /// For a corpus entry (`seeds/`): when and how it was found, and what it shows. Not part
    /// of the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corpus: Option<CorpusMeta>,
}

fn is_false(b: &bool) -> bool {
    !b
}

/// The `[corpus]` table of a corpus entry (see [`super::corpus`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorpusMeta {
    /// When it was found (UTC, RFC 3339).
    pub found: String,
    /// The scenario, seed and flags it was found with (the command that first showed it).
    pub origin: String,
    /// One line on what it shows.
    pub note: String,
    /// For a finding of `sim findings`: the label (`duplicate_effect/two_keys`: the violation
    /// kind and the mechanism `why:` names) the replay must still show.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding: Option<String>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            name: "default".into(),
            description:
                "3 workers, 3 partitions, 100 events, fenced protocol, unique database, random faults".into(),
            expect: Expect::default(),
            seed: 42,
            swarm: false,
            workers: 3,
            partitions: 3,
            events: 100,
            keep_events: Vec::new(),
            headers_share: 0.5,
            produce_gap_ms_max: 400,
            copies: 1,
            copy_gap_ms: 0,
            copy_partitions: Vec::new(),
            copy_headers: Vec::new(),
            event_types: vec![
                "huleedu.essay.spellcheck.requested.v1".into(),
                "huleedu.batch.essays.registered.v1".into(),
                "huleedu.cj_assessment.completed.v1".into(),
                "huleedu.result_aggregator.batch.completed.v1".into(),
            ],
            protocol: ProtocolKind::Fenced,
            worker_protocols: Vec::new(),
            on_redis_failure: FailurePolicyKind::FailOpen,
            on_busy: BusyPolicy::Retry,
            processing_ttl_s: 300,
            database: DbMode::Unique,
            offset_commit: OffsetCommit::AfterEach,
            offset_commit_every: 5,
            redis_persistence: Persistence::Everysec,
            ttl_probe_ms: 0,
            handler_ms_min: 5,
            handler_ms_max: 200,
            confirm_delay_ms: 0,
            poll_idle_ms: 250,
            redis_timeout_ms: 500,
            call_timeout_ms: 1_000,
            latency_ms_min: 1,
            latency_ms_max: 5,
            link_latency: Vec::new(),
            safety_s: 30,
            liveness_s_max: 3_600,
            steps_max: 20_000_000,
            watchdog_s: 600,
            panic_at_ms: 0,
            kafka: KafkaConfig::default(),
            schedule: Vec::new(),
            outage_windows_ms: Vec::new(),
            faults: FaultConfig::default(),
            expect_on_every_seed: false,
            corpus: None,
        }
    }
}

impl SimConfig {
    /// Every knob as `name=value`, nested names dotted, in a stable order.
    pub fn knobs(&self) -> Vec<String> {
        fn walk(prefix: &str, v: &serde_json::Value, out: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(m) => {
                    for (k, v) in m {
                        let name = if prefix.is_empty() {
                            k.clone()
                        } else {
                            format!("{prefix}.{k}")
                        };
                        walk(&name, v, out);
                    }
                }
                serde_json::Value::String(s) => out.push(format!("{prefix}={s}")),
                serde_json::Value::Array(items) if items.iter().any(|i| i.is_object()) => {
                    for (i, item) in items.iter().enumerate() {
                        out.push(format!("{prefix}[{i}]={item}"));
                    }
                    if items.is_empty() {
                        out.push(format!("{prefix}=[]"));
                    }
                }
                other => out.push(format!("{prefix}={other}")),
            }
        }
        let mut out = Vec::new();
        walk(
            "",
            &serde_json::to_value(self).expect("config serializes"),
            &mut out,
        );
        out
    }

    /// The protocol worker `n` (from 1) runs: its `worker_protocols` entry, else `protocol`.
    pub fn protocol_of(&self, n: u32) -> ProtocolKind {
        let i = n.checked_sub(1).map(|i| i as usize);
        i.and_then(|i| self.worker_protocols.get(i))
            .copied()
            .unwrap_or(self.protocol)
    }

    /// Virtual µs at which the safety phase ends (`safety_s`, checked).
    pub fn safety_end_us(&self) -> u64 {
        self.safety_s.saturating_mul(1_000_000)
    }

    /// The workload's knobs.
    pub fn workload(&self) -> crate::workload::WorkloadConfig {
        crate::workload::WorkloadConfig {
            events: self.events,
            event_types: self.event_types.clone(),
            headers_share: self.headers_share,
            produce_gap_ms_max: self.produce_gap_ms_max,
            keep_events: self.keep_events.clone(),
        }
    }

    /// The config as a scenario file.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a config is TOML")
    }

    /// Virtual µs at which the liveness phase ends at the latest (checked).
    pub fn liveness_end_us(&self) -> u64 {
        self.safety_end_us()
            .saturating_add(self.liveness_s_max.saturating_mul(1_000_000))
    }
}
