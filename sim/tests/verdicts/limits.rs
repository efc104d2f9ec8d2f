//! Verdicts that tell the truth: a run cut short by a limit still judges what happened, and
//! correctness outranks liveness in the exit code.

use sim::model::db::DbMode;
use sim::run::{self, Verdict};
use sim::scenario::config::{ProtocolKind, SimConfig};

fn kinds(v: &Verdict) -> Vec<&'static str> {
    v.violations().iter().map(|v| v.kind).collect()
}

/// v2 on a plain database double-applies under the default faults; a step limit that stops
/// the run midway must not hide the duplicates that already happened. (Seed 3 since joins and
/// fetches are long polls: seed 7 reaches the limit before its first duplicate now.)
#[test]
fn a_step_limit_still_judges_the_history_so_far() {
    let config = SimConfig {
        protocol: ProtocolKind::V2,
        database: DbMode::Plain,
        steps_max: 4000,
        ..SimConfig::default()
    };
    let r = run::run(3, &config);
    assert!(r.duplicates > 0, "seed 3 double-applies before the limit: {r:?}");
    let k = kinds(&r.verdict);
    assert_eq!(k.first(), Some(&"step_limit"), "{k:?}");
    assert!(
        k.contains(&"duplicate_effect"),
        "the duplicates are judged: {k:?}"
    );
    assert!(
        !k.contains(&"lost_event"),
        "end-state checks do not judge a run cut short: {k:?}"
    );
    assert!(
        matches!(r.verdict, Verdict::Correctness(_)),
        "correctness outranks liveness"
    );
    assert_eq!(r.verdict.exit_code(), 3);
}

/// The watchdog stops a run that overruns its real time; its verdict keeps the trace recorded
/// so far and judges it, and the run's thread is told to stop.
#[test]
fn a_watchdog_verdict_keeps_and_judges_the_trace_so_far() {
    let config = SimConfig {
        protocol: ProtocolKind::V2,
        database: DbMode::Plain,
        events: 20_000,
        watchdog_s: 1,
        ..SimConfig::default()
    };
    let r = run::run(7, &config);
    let k = kinds(&r.verdict);
    assert_eq!(k.first(), Some(&"watchdog"), "{k:?}");
    assert!(
        r.events.len() > 100,
        "the trace so far is kept: {} events",
        r.events.len()
    );
}
