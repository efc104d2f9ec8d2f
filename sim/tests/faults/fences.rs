//! Points 10 and 11 of "every verdict tells the truth": the default scenario's lock overlaps
//! (seed 608 since joins and fetches are long polls; 2592 before) are Redis losing the lock in a crash under `everysec`,
//! reported as a note with that cause; and fencing tokens stay above every token a fenced
//! database has accepted, across Redis losing its counter while its clock is behind (seed 425).

use sim::check::Severity;
use sim::model::db::DbMode;
use sim::run::{self, Verdict};
use sim::scenario;
use sim::trace::Typed;

#[test]
fn a_default_seeds_overlap_is_only_because_a_redis_crash_lost_the_lock() {
    let config = scenario::load("default").expect("default scenario");
    let seed = 608;
    let r = run::run(seed, &config);
    assert!(matches!(r.verdict, Verdict::Pass), "seed {seed}: {:?}", r.verdict);
    let overlap: Vec<_> = r.notes.iter().filter(|n| n.kind == "lock_overlap").collect();
    assert_eq!(overlap.len(), 1, "seed {seed}: {:?}", r.notes);
    assert_eq!(overlap[0].severity, Severity::Note);
    assert!(
        overlap[0]
            .detail
            .contains("Redis lost the lock's record in its crash at")
            && overlap[0].detail.contains("(everysec persistence)"),
        "seed {seed}: {}",
        overlap[0].detail
    );
}

#[test]
fn seed_425_on_a_fenced_database_hands_out_no_token_below_an_accepted_one() {
    let mut config = scenario::load("default").expect("default scenario");
    config.database = DbMode::Fenced;
    let r = run::run(425, &config);
    let regressions: Vec<_> = r
        .verdict
        .violations()
        .iter()
        .filter(|v| v.kind == "fence_regression")
        .collect();
    assert!(regressions.is_empty(), "{regressions:?}");
    let stale: Vec<_> = r
        .events
        .iter()
        .filter(|e| matches!(e.typed(), Typed::EffectAttempt { result, .. } if result == "stale_fence"))
        .map(|e| e.human())
        .collect();
    assert!(stale.is_empty(), "legitimate holders rejected: {stale:#?}");
    // Every acquire asked the database for its floor first.
    let floors = r
        .events
        .iter()
        .filter(|e| matches!(e.typed(), Typed::FenceFloor { .. }))
        .count();
    assert!(floors > 0);
    // What is left is true: the fenced database does not dedupe, and two events were
    // processed again after their first holder's effect (a fail-open run; a worker crash
    // before confirming whose lock Redis then lost).
    let kinds: std::collections::BTreeSet<_> = r.verdict.violations().iter().map(|v| v.kind).collect();
    assert_eq!(
        kinds,
        ["duplicate_effect"].into_iter().collect(),
        "{:?}",
        r.verdict
    );
}
