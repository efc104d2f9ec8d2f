//! The bounds of a scenario: every numeric knob's [`Range`] by its dotted name ([`ranges`]),
//! and the limits on virtual time, records and list lengths. They keep every run finite and
//! every µs computed from a knob far inside `u64`; `scenarios/README.md` shows each range next
//! to its field (a test checks both ways).

pub use crate::knob::{MAX_VIRTUAL_MS, MAX_VIRTUAL_S};
/// Most records a run publishes (`events` × `copies`): bounds the run and its report.
pub const MAX_RECORDS: u64 = 100_000;
/// Most entries of `event_types`.
pub const MAX_EVENT_TYPES: usize = 64;
/// Most entries of `schedule`.
pub const MAX_SCHEDULE: usize = 10_000;
/// Most entries of `outage_windows_ms`.
pub const MAX_OUTAGE_WINDOWS: usize = 100;
/// Most entries of `link_latency`.
pub const MAX_LINK_LATENCIES: usize = 100;

pub use crate::knob::Range;

const MS: i64 = MAX_VIRTUAL_MS as i64;
const S: i64 = MAX_VIRTUAL_S as i64;

/// Every numeric knob's range, by its dotted name: `schedule.at_ms` is each schedule entry's
/// `at_ms`, and a list's range holds for each element. [`SimConfig::validate`](super::config::SimConfig::validate) checks them
/// first (so the rules between knobs compute inside `u64`); `scenarios/README.md` shows each
/// next to its field (a test checks both ways).
const OWN_RANGES: &[(&str, Range)] = &[
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
    ("link_latency.ms_min", Range::Int(0, 60_000)),
    ("link_latency.ms_max", Range::Int(0, 60_000)),
    ("safety_s", Range::Int(0, S)),
    ("liveness_s_max", Range::Int(1, S)),
    ("steps_max", Range::Int(1_000, 1_000_000_000)),
    ("watchdog_s", Range::Int(1, 86_400)),
    ("panic_at_ms", Range::Int(0, MS)),
    ("outage_windows_ms", Range::Int(0, MS)),
    ("kafka.session_timeout_ms", Range::Int(1, 3_600_000)),
    ("kafka.heartbeat_interval_ms", Range::Int(100, 600_000)),
    ("kafka.max_poll_interval_ms", Range::Int(1, 86_400_000)),
    ("kafka.fetch_max_wait_ms", Range::Int(0, 600_000)),
    ("schedule.at_ms", Range::Int(0, MS)),
    ("schedule.on_delivery", Range::Int(1, 1_000)),
    ("schedule.event", Range::Int(0, MAX_RECORDS as i64 - 1)),
    ("schedule.duration_ms", Range::Int(0, MS)),
    ("schedule.after_ms", Range::Int(0, MS)),
    ("schedule.latency_ms_max", Range::Int(0, 60_000)),
    ("schedule.share", Range::Real(0.0, 1.0)),
    ("schedule.offset_ms", Range::Int(-MS, MS)),
    ("schedule.acks", Range::Int(1, 100)),
    (
        "schedule.lag_ms",
        Range::Int(0, crate::fault::nemesis::MAX_LAG_MS),
    ),
];

/// Every numeric knob's range, by its dotted name: the scenario's own, then the nemesis's
/// (`faults.*`, kept beside the knobs in [`crate::fault::nemesis`]).
pub fn ranges() -> impl Iterator<Item = (&'static str, Range)> {
    OWN_RANGES.iter().chain(crate::fault::nemesis::RANGES).copied()
}
