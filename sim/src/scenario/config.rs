//! Everything that describes a run except the seed: topology, protocol, database, timing,
//! faults and limits. One documented struct; every field has a default, and every knob is
//! printed (flattened, `name=value`) at the start of a run.

pub use crate::fault::nemesis::FaultConfig;
pub use crate::fault::schedule::ScheduledFault;
pub use crate::model::db::DbMode;
pub use crate::model::kafka::{Assignor, KafkaConfig};
pub use crate::model::redis::Persistence;
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
    /// Faults at chosen moments (see [`crate::fault::schedule`]).
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

    /// Virtual µs at which the safety phase ends (`safety_s`, checked).
    pub fn safety_end_us(&self) -> u64 {
        self.safety_s.saturating_mul(1_000_000)
    }

    /// This config with the nemesis's decisions of a run made explicit: `drawn` appended to
    /// the schedule, random faults off, and `seed` pinned. Running it gives the same run.
    pub fn with_faults_explicit(&self, seed: u64, drawn: &[ScheduledFault]) -> SimConfig {
        let mut c = self.clone();
        c.seed = seed;
        c.schedule.extend(drawn.iter().cloned());
        c.faults.random = false;
        c
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

    /// Checks that the run can be built and stays bounded: every numeric knob within its
    /// [`RANGES`] entry, then the rules between knobs. The error names the field (in
    /// backticks, first) and the allowed range.
    pub fn validate(&self) -> Result<(), String> {
        let json = serde_json::to_value(self).expect("config serializes");
        for (name, range) in RANGES {
            let path: Vec<&str> = name.split('.').collect();
            let mut found = Vec::new();
            values_at(&json, &path, String::new(), &mut found);
            for (field, value) in found {
                if !range.contains(value) {
                    return Err(format!("`{field}` = {value} is outside its range {range}"));
                }
            }
        }
        for (name, len, max) in [
            ("event_types", self.event_types.len(), MAX_EVENT_TYPES),
            ("schedule", self.schedule.len(), MAX_SCHEDULE),
            (
                "outage_windows_ms",
                self.outage_windows_ms.len(),
                MAX_OUTAGE_WINDOWS,
            ),
        ] {
            if len > max {
                return Err(format!("`{name}` has {len} entries; at most {max} are allowed"));
            }
        }
        let records = u64::from(self.events) * u64::from(self.copies);
        if records > MAX_RECORDS {
            return Err(format!(
                "`events` × `copies` = {records} records: at most {MAX_RECORDS} are allowed"
            ));
        }
        if self.event_types.is_empty() {
            return Err("`event_types` must not be empty".into());
        }
        for (lo, hi, low, high) in [
            (
                self.handler_ms_min,
                self.handler_ms_max,
                "handler_ms_min",
                "handler_ms_max",
            ),
            (
                self.latency_ms_min,
                self.latency_ms_max,
                "latency_ms_min",
                "latency_ms_max",
            ),
            (
                self.faults.gap_ms_min,
                self.faults.gap_ms_max,
                "faults.gap_ms_min",
                "faults.gap_ms_max",
            ),
        ] {
            if lo > hi {
                return Err(format!(
                    "`{low}` ({lo}) must be <= `{high}` ({hi}): `{low} <= {high}` does not hold"
                ));
            }
        }
        if self.kafka.heartbeat_interval_ms >= self.kafka.session_timeout_ms {
            return Err(format!(
                "`kafka.session_timeout_ms` ({}) must be above `kafka.heartbeat_interval_ms` ({}): every member would be removed between two heartbeats",
                self.kafka.session_timeout_ms, self.kafka.heartbeat_interval_ms
            ));
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
        for (i, &p) in self.copy_partitions.iter().enumerate() {
            if p >= self.partitions {
                return Err(format!(
                    "`copy_partitions[{i}]` = {p} is outside its range 0..={} (`partitions` = {}, numbered from 0)",
                    self.partitions - 1,
                    self.partitions
                ));
            }
        }
        for (name, len) in [
            ("copy_partitions", self.copy_partitions.len()),
            ("copy_headers", self.copy_headers.len()),
        ] {
            if len > self.copies as usize {
                return Err(format!(
                    "`{name}` has {len} entries but `copies` = {}: one per copy at most",
                    self.copies
                ));
            }
        }
        let known = crate::check::registry::expectable();
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
        for (i, entry) in self.schedule.iter().enumerate() {
            entry
                .validate(self.workers, self.events)
                .map_err(|e| format!("`schedule[{i}]`: {e}"))?;
            if let Some(at) = entry.at_ms {
                if at >= self.safety_s.saturating_mul(1000) {
                    return Err(format!(
                        "`schedule[{i}].at_ms` = {at} is outside the safety phase: it must be below `safety_s` × 1000 = {}",
                        self.safety_s.saturating_mul(1000)
                    ));
                }
            }
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

/// The longest virtual time any knob in ms may say: three days (the `ttl-lifecycle` scenario
/// needs more than one). Every µs computed from a knob stays far inside `u64` and `i64`.
pub const MAX_VIRTUAL_MS: u64 = 3 * 86_400_000;
/// [`MAX_VIRTUAL_MS`] in seconds, for the knobs in seconds.
pub const MAX_VIRTUAL_S: u64 = MAX_VIRTUAL_MS / 1000;
/// Most records a run publishes (`events` × `copies`): bounds the run and its report.
pub const MAX_RECORDS: u64 = 100_000;
/// Most entries of `event_types`.
pub const MAX_EVENT_TYPES: usize = 64;
/// Most entries of `schedule`.
pub const MAX_SCHEDULE: usize = 10_000;
/// Most entries of `outage_windows_ms`.
pub const MAX_OUTAGE_WINDOWS: usize = 100;

/// The values a numeric knob may take.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Range {
    /// An integer within `min..=max`.
    Int(i64, i64),
    /// A real number within `min..=max` (not NaN).
    Real(f64, f64),
    /// `0` (off), or an integer within `min..=max`.
    ZeroOr(i64, i64),
    /// Any `u64`.
    AnyU64,
}

impl Range {
    /// Whether the JSON value (a knob as [`SimConfig::knobs`] sees it) is inside the range.
    pub fn contains(&self, value: &serde_json::Value) -> bool {
        let int = value
            .as_i64()
            .map(i128::from)
            .or_else(|| value.as_u64().map(i128::from));
        match (self, int) {
            (Range::Int(lo, hi), Some(v)) => (i128::from(*lo)..=i128::from(*hi)).contains(&v),
            (Range::Real(lo, hi), _) => value.as_f64().is_some_and(|v| (*lo..=*hi).contains(&v)),
            (Range::ZeroOr(lo, hi), Some(v)) => v == 0 || (i128::from(*lo)..=i128::from(*hi)).contains(&v),
            (Range::AnyU64, _) => value.is_u64(),
            (Range::Int(..) | Range::ZeroOr(..), None) => false,
        }
    }
}

/// `1_000` style: what a scenario file may write too.
fn grouped(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    let head = match digits.len() % 3 {
        0 => 3,
        n => n,
    };
    let mut groups = vec![&digits[..head]];
    groups.extend(
        digits.as_bytes()[head..]
            .chunks(3)
            .map(|g| std::str::from_utf8(g).expect("digits")),
    );
    let sign = if v < 0 { "-" } else { "" };
    format!("{sign}{}", groups.join("_"))
}

impl std::fmt::Display for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Range::Int(lo, hi) => write!(f, "{}..={}", grouped(*lo), grouped(*hi)),
            Range::Real(lo, hi) => write!(f, "{lo:?}..={hi:?}"),
            Range::ZeroOr(lo, hi) => write!(f, "0 or {}..={}", grouped(*lo), grouped(*hi)),
            Range::AnyU64 => write!(f, "any u64"),
        }
    }
}

const MS: i64 = MAX_VIRTUAL_MS as i64;
const S: i64 = MAX_VIRTUAL_S as i64;
const WEIGHT: Range = Range::Int(0, 1_000);

/// Every numeric knob's range, by its dotted name: `schedule.at_ms` is each schedule entry's
/// `at_ms`, and a list's range holds for each element. [`SimConfig::validate`] checks them
/// first (so the rules between knobs compute inside `u64`); `scenarios/README.md` shows each
/// next to its field (a test checks both ways).
pub const RANGES: &[(&str, Range)] = &[
    ("seed", Range::AnyU64),
    // 10.0.1.N: N is one byte, .0 and .255 excluded.
    ("workers", Range::Int(1, 254)),
    ("partitions", Range::Int(1, 1_000)),
    ("events", Range::Int(1, MAX_RECORDS as i64)),
    ("headers_share", Range::Real(0.0, 1.0)),
    ("produce_gap_ms_max", Range::Int(0, MS)),
    ("copies", Range::Int(1, 1_000)),
    ("copy_gap_ms", Range::Int(0, MS)),
    ("copy_partitions", Range::Int(0, 999)),
    ("processing_ttl_s", Range::Int(1, S)),
    ("offset_commit_every", Range::Int(1, 10_000)),
    ("ttl_probe_ms", Range::ZeroOr(1_000, MS)),
    ("handler_ms_min", Range::Int(0, MS)),
    ("handler_ms_max", Range::Int(0, MS)),
    ("confirm_delay_ms", Range::Int(0, MS)),
    ("poll_idle_ms", Range::Int(10, 600_000)),
    ("redis_timeout_ms", Range::Int(1, 600_000)),
    ("call_timeout_ms", Range::Int(1, 600_000)),
    ("latency_ms_min", Range::Int(0, 60_000)),
    ("latency_ms_max", Range::Int(0, 60_000)),
    ("safety_s", Range::Int(0, S)),
    ("liveness_s_max", Range::Int(1, S)),
    ("steps_max", Range::Int(1_000, 1_000_000_000)),
    ("watchdog_s", Range::Int(1, 86_400)),
    ("panic_at_ms", Range::Int(0, MS)),
    ("outage_windows_ms", Range::Int(0, MS)),
    ("kafka.session_timeout_ms", Range::Int(1, 3_600_000)),
    ("kafka.heartbeat_interval_ms", Range::Int(100, 600_000)),
    ("kafka.max_poll_interval_ms", Range::Int(1, 86_400_000)),
    ("faults.gap_ms_min", Range::Int(10, MS)),
    ("faults.gap_ms_max", Range::Int(10, MS)),
    ("faults.crash_weight", WEIGHT),
    ("faults.pause_weight", WEIGHT),
    ("faults.clog_weight", WEIGHT),
    ("faults.partition_weight", WEIGHT),
    ("faults.latency_weight", WEIGHT),
    ("faults.redis_errors_weight", WEIGHT),
    ("faults.clock_weight", WEIGHT),
    ("faults.fault_point_weight", WEIGHT),
    ("faults.zombie_weight", WEIGHT),
    ("faults.ack_loss_weight", WEIGHT),
    ("faults.down_ms_max", Range::Int(0, MS)),
    ("faults.pause_ms_max", Range::Int(0, MS)),
    ("faults.clog_ms_max", Range::Int(0, MS)),
    ("faults.latency_ms_max", Range::Int(0, 60_000)),
    ("faults.latency_spike_ms_max", Range::Int(0, MS)),
    ("faults.redis_error_share_max", Range::Real(0.0, 1.0)),
    ("faults.redis_errors_ms_max", Range::Int(0, MS)),
    ("faults.clock_offset_ms_max", Range::Int(0, MS)),
    ("faults.redis_clock_offset_ms_max", Range::Int(0, MS)),
    ("schedule.at_ms", Range::Int(0, MS)),
    ("schedule.on_delivery", Range::Int(1, 1_000)),
    ("schedule.event", Range::Int(0, MAX_RECORDS as i64 - 1)),
    ("schedule.duration_ms", Range::Int(0, MS)),
    ("schedule.after_ms", Range::Int(0, MS)),
    ("schedule.latency_ms_max", Range::Int(0, 60_000)),
    ("schedule.share", Range::Real(0.0, 1.0)),
    ("schedule.offset_ms", Range::Int(-MS, MS)),
    ("schedule.acks", Range::Int(1, 100)),
];

/// The values at `path` under `v`, each with its name as errors give it (`schedule[2].at_ms`,
/// `copy_partitions[1]`, `outage_windows_ms[0][1]`); lists are entered element by element.
fn values_at<'a>(
    v: &'a serde_json::Value,
    path: &[&str],
    name: String,
    out: &mut Vec<(String, &'a serde_json::Value)>,
) {
    match v {
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                values_at(item, path, format!("{name}[{i}]"), out);
            }
        }
        _ if path.is_empty() => out.push((name, v)),
        serde_json::Value::Object(m) => {
            if let Some(child) = m.get(path[0]) {
                let name = if name.is_empty() {
                    path[0].to_owned()
                } else {
                    format!("{name}.{}", path[0])
                };
                values_at(child, &path[1..], name, out);
            }
        }
        _ => {}
    }
}
