//! Everything that describes a run except the seed: topology, protocol, database, timing,
//! faults and limits. One documented struct; every field has a default, and every knob is
//! printed (flattened, `name=value`) at the start of a run.

use crate::db::DbMode;
use crate::schedule::ScheduledFault;
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

/// Which idempotency protocol the workers run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProtocolKind {
    /// The Python services' protocol.
    V2,
    /// The safe protocol (the default).
    Fenced,
}

impl ProtocolKind {
    /// The library's protocol.
    pub fn to_lib(self) -> idempotency::Protocol {
        match self {
            ProtocolKind::V2 => idempotency::Protocol::V2,
            ProtocolKind::Fenced => idempotency::Protocol::Fenced,
        }
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

/// What survives a Redis crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Persistence {
    /// Nothing: restart empty.
    None,
    /// The state as of the last whole-second fsync: the last second's writes are lost.
    Everysec,
    /// Everything.
    Always,
}

impl Persistence {
    /// The setting's name as written in configuration.
    pub fn name(self) -> &'static str {
        match self {
            Persistence::None => "none",
            Persistence::Everysec => "everysec",
            Persistence::Always => "always",
        }
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

/// The nemesis's random faults. Gaps, durations and sizes are drawn uniformly from the ranges;
/// the kind of each fault by weight (0 disables a kind).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Inject random faults during the safety phase.
    pub random: bool,
    /// Shortest gap between two random faults.
    pub gap_ms_min: u64,
    /// Longest gap between two random faults.
    pub gap_ms_max: u64,
    /// Weight of: crash a node (worker, redis, database or broker) and restart it later.
    pub crash_weight: u32,
    /// Weight of: pause a node (a GC pause), then resume it.
    pub pause_weight: u32,
    /// Weight of: cut a node off the network, then heal it.
    pub clog_weight: u32,
    /// Weight of: cut the link between two nodes (both ways), then heal it.
    pub partition_weight: u32,
    /// Weight of: raise the network latency for a while.
    pub latency_weight: u32,
    /// Weight of: make a share of Redis commands fail for a while.
    pub redis_errors_weight: u32,
    /// Weight of: skew or jump a node's wall clock.
    pub clock_weight: u32,
    /// Weight of: crash a worker at the next named point of its handler path.
    pub fault_point_weight: u32,
    /// Weight of: pause a worker past `kafka.max_poll_interval_ms`, so the group removes it
    /// while it is still working, then resume it (the zombie).
    pub zombie_weight: u32,
    /// Weight of: lose 1 to 3 of the broker's produce acks (the producer retries).
    pub ack_loss_weight: u32,
    /// Longest a crashed node stays down.
    pub down_ms_max: u64,
    /// Longest pause.
    pub pause_ms_max: u64,
    /// Longest clog or partition.
    pub clog_ms_max: u64,
    /// Highest latency during a spike.
    pub latency_ms_max: u64,
    /// Longest latency spike.
    pub latency_spike_ms_max: u64,
    /// Largest share of Redis commands that fail during an error window.
    pub redis_error_share_max: f64,
    /// Longest Redis error window.
    pub redis_errors_ms_max: u64,
    /// Largest clock offset (either way) a skew or jump sets on a worker.
    pub clock_offset_ms_max: u64,
    /// Largest clock offset (either way) on the Redis node. Redis expires keys by its own
    /// clock: a jump beyond the lock's TTL expires every lock at once, so two workers hold one
    /// (the `redis-clock-jump` scenario shows it); the default stays below the 300 s TTL.
    pub redis_clock_offset_ms_max: u64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            random: true,
            gap_ms_min: 100,
            gap_ms_max: 2_000,
            crash_weight: 3,
            pause_weight: 2,
            clog_weight: 2,
            partition_weight: 2,
            latency_weight: 1,
            redis_errors_weight: 2,
            clock_weight: 2,
            fault_point_weight: 3,
            zombie_weight: 1,
            ack_loss_weight: 1,
            down_ms_max: 5_000,
            pause_ms_max: 8_000,
            clog_ms_max: 3_000,
            latency_ms_max: 300,
            latency_spike_ms_max: 3_000,
            redis_error_share_max: 0.5,
            redis_errors_ms_max: 3_000,
            clock_offset_ms_max: 600_000,
            redis_clock_offset_ms_max: 60_000,
        }
    }
}

/// One run's description, except the seed: a scenario file is this struct in TOML.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// The scenario's name.
    pub name: String,
    /// One line saying what the scenario shows.
    pub description: String,
    /// What every seed must give.
    pub expect: Expect,
    /// The seed its snapshot and examples use.
    pub seed: u64,
    /// Worker nodes.
    pub workers: u32,
    /// Partitions of the topic.
    pub partitions: u32,
    /// Events the producer publishes.
    pub events: u32,
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
    /// Faults at chosen moments (see [`crate::schedule`]).
    pub schedule: Vec<ScheduledFault>,
    /// Virtual-time windows `[from_ms, to_ms]` of planned Redis outages: duplicate effects from
    /// fail-open processing inside them are expected and counted apart, not violations.
    pub outage_windows_ms: Vec<[u64; 2]>,
    /// The nemesis.
    pub faults: FaultConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            name: "default".into(),
            description:
                "3 workers, 3 partitions, 100 events, fenced protocol, unique database, random faults".into(),
            expect: Expect::default(),
            seed: 42,
            workers: 3,
            partitions: 3,
            events: 100,
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
            safety_s: 30,
            liveness_s_max: 3_600,
            steps_max: 20_000_000,
            watchdog_s: 600,
            panic_at_ms: 0,
            kafka: KafkaConfig::default(),
            schedule: Vec::new(),
            outage_windows_ms: Vec::new(),
            faults: FaultConfig::default(),
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

    /// Checks that the run can be built; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("workers", self.workers as u64),
            ("partitions", self.partitions as u64),
            ("processing_ttl_s", self.processing_ttl_s),
            ("redis_timeout_ms", self.redis_timeout_ms),
            ("poll_idle_ms", self.poll_idle_ms),
            ("call_timeout_ms", self.call_timeout_ms),
            ("liveness_s_max", self.liveness_s_max),
            ("steps_max", self.steps_max),
            ("watchdog_s", self.watchdog_s),
            ("offset_commit_every", self.offset_commit_every as u64),
            ("copies", self.copies as u64),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("`{name}` must be > 0"));
        }
        if self.workers > 200 || self.partitions > 1_000 || self.events > 1_000_000 {
            return Err("`workers` <= 200, `partitions` <= 1000 and `events` <= 1000000".into());
        }
        if !(0.0..=1.0).contains(&self.headers_share) {
            return Err("`headers_share` must be within 0..=1".into());
        }
        if !(0.0..=1.0).contains(&self.faults.redis_error_share_max) {
            return Err("`faults.redis_error_share_max` must be within 0..=1".into());
        }
        if self.event_types.is_empty() {
            return Err("`event_types` must not be empty".into());
        }
        for (lo, hi, name) in [
            (
                self.handler_ms_min,
                self.handler_ms_max,
                "handler_ms_min <= handler_ms_max",
            ),
            (
                self.latency_ms_min,
                self.latency_ms_max,
                "latency_ms_min <= latency_ms_max",
            ),
            (
                self.faults.gap_ms_min,
                self.faults.gap_ms_max,
                "faults.gap_ms_min <= faults.gap_ms_max",
            ),
        ] {
            if lo > hi {
                return Err(format!("`{name}` does not hold ({lo} > {hi})"));
            }
        }
        if self.faults.gap_ms_min == 0 {
            return Err("`faults.gap_ms_min` must be > 0".into());
        }
        if self.poll_idle_ms >= self.kafka.max_poll_interval_ms {
            return Err(format!(
                "`poll_idle_ms` ({}) must be below `kafka.max_poll_interval_ms` ({}): an idle worker would be removed from the group",
                self.poll_idle_ms, self.kafka.max_poll_interval_ms
            ));
        }
        if self.copies > self.partitions {
            return Err(format!(
                "`copies` ({}) must be <= `partitions` ({}): each copy goes to its own partition",
                self.copies, self.partitions
            ));
        }
        let known = [
            "pass",
            "duplicate_effect",
            "lost_event",
            "lock_overlap",
            "ttl_lifecycle",
            "stuck_lock",
            "double_invocation",
            "confirm_without_effect",
            "effect_without_confirm",
            "lost",
            "nonmonotonic_commit",
            "stale_commit_accepted",
            "poll_skip",
        ];
        for k in match &self.expect {
            Expect::One(s) => vec![s.clone()],
            Expect::Any(v) => v.clone(),
        } {
            if !known.contains(&k.as_str()) {
                return Err(format!("`expect`: unknown {k:?}; valid: {}", known.join(", ")));
            }
        }
        for w in &self.outage_windows_ms {
            if w[0] > w[1] {
                return Err(format!(
                    "`outage_windows_ms`: [{}, {}] ends before it starts",
                    w[0], w[1]
                ));
            }
        }
        let workers: Vec<String> = (1..=self.workers).map(|i| format!("worker-{i}")).collect();
        let mut nodes: Vec<String> = ["redis", "kafka", "db", "producer"].map(String::from).to_vec();
        nodes.extend(workers.iter().cloned());
        for (i, entry) in self.schedule.iter().enumerate() {
            entry
                .validate(&nodes, &workers, self.events)
                .map_err(|e| format!("`schedule[{i}]`: {e}"))?;
        }
        let mut lib = idempotency::Config::new("sim_worker");
        lib.processing_ttl_s = self.processing_ttl_s;
        for t in &self.event_types {
            if let Some(why) = idempotency::key::name_problem(t, false) {
                return Err(format!("`event_types`: {t:?} {why}"));
            }
        }
        lib.validate().map_err(|e| e.to_string())
    }
}
