//! The bounds of a scenario: every numeric knob's [`Range`] by its dotted name ([`RANGES`]),
//! and the limits on virtual time, records and list lengths. They keep every run finite and
//! every µs computed from a knob far inside `u64`; `scenarios/README.md` shows each range next
//! to its field (a test checks both ways).

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
    /// Whether the JSON value (a knob as [`SimConfig::knobs`](super::config::SimConfig::knobs) sees it) is inside the range.
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
/// `at_ms`, and a list's range holds for each element. [`SimConfig::validate`](super::config::SimConfig::validate) checks them
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
