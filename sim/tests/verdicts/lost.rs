//! `lost_event` counts only events that were produced: an event is lost when a record of it
//! reached the Kafka log and the database never applied it (the README's definition), not when
//! the run ended before the producer published it.

use sim::internal::run::{self, Verdict};
use sim::internal::scenario::config::SimConfig;

/// A producer far slower than the run: 20 events, up to a minute apart, in a run of 70 s.
/// The run ends (at the end of its liveness phase, not at a limit, so the end-state checks
/// judge it) with most events never published: none of them is lost, and every published one
/// was applied.
#[test]
fn an_event_never_published_is_not_lost() {
    let mut config = SimConfig {
        events: 20,
        produce_gap_ms_max: 60_000,
        safety_s: 10,
        liveness_s_max: 60,
        ..SimConfig::default()
    };
    config.faults.random = false;
    let r = run::run(1, &config);
    assert!(
        r.produced > 0 && r.produced < r.events_total,
        "the run ends while the producer is still publishing: produced {} of {}",
        r.produced,
        r.events_total
    );
    assert_eq!(r.applied, r.produced, "every published event is applied");
    assert!(
        matches!(r.verdict, Verdict::Pass),
        "nothing produced was lost: {:?}",
        r.verdict
    );
}

/// The same slow producer with consumers that never get Redis (fail_closed, every command
/// fails): the events that were published are lost, the rest are not.
#[test]
fn a_published_event_never_applied_is_lost() {
    let mut config = SimConfig {
        events: 20,
        produce_gap_ms_max: 60_000,
        safety_s: 10,
        liveness_s_max: 60,
        on_redis_failure: sim::internal::scenario::config::FailurePolicyKind::FailClosed,
        redis_timeout_ms: 1,
        latency_ms_min: 5,
        ..SimConfig::default()
    };
    config.faults.random = false;
    let r = run::run(1, &config);
    let lost: Vec<&str> = r
        .verdict
        .violations()
        .iter()
        .filter(|v| v.kind == "lost_event")
        .map(|v| v.event_id.as_str())
        .collect();
    assert!(r.produced > 0 && r.produced < r.events_total, "{r:?}");
    assert_eq!(r.applied, 0);
    assert_eq!(
        lost.len(),
        r.produced,
        "exactly the published events are lost: {lost:?}"
    );
}
