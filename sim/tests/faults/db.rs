//! The database's own fault, `db_errors`: from a scenario file and from the nemesis. (It was
//! added as a test of the fault design: the vocabulary, the nemesis's row and the node that
//! acts, three files.)

use sim::internal::run::{self, Verdict};
use sim::internal::scenario::config::SimConfig;
use sim::internal::trace::Typed;

#[test]
fn a_scheduled_database_outage_aborts_transactions_and_heals_and_every_event_lands() {
    let text = r#"
name = "db-outage"
events = 5
workers = 2
partitions = 2
protocol = "v2"
database = "unique"
[faults]
random = false
[[schedule]]
at_ms = 0
duration_ms = 3000
fault = "db_errors"
share = 1.0
"#;
    let config = sim::internal::scenario::parse(text, "db-outage.toml").expect("the scenario loads");
    let r = run::run(1, &config);
    assert_eq!(r.verdict, Verdict::Pass, "{:?}", r.verdict);
    assert_eq!(r.applied, 5);
    let aborted: Vec<u64> = r.events.iter().filter(|e| aborted(e)).map(|e| e.t_us).collect();
    assert!(!aborted.is_empty(), "no transaction failed");
    assert!(aborted.iter().all(|t| *t <= 3_000_000), "{aborted:?}");
    let heal = r
        .events
        .iter()
        .find(|e| matches!(e.typed(), Typed::Heal { heal, .. } if heal == "db_errors"));
    assert_eq!(heal.map(|e| e.t_us), Some(3_000_000));
    assert_eq!(r.faults.get("db_errors"), Some(&1));
}

#[test]
fn the_nemesis_draws_database_errors_when_weighed_and_saved_runs_replay_them() {
    let mut config = SimConfig::default();
    config.faults.db_errors_weight = 20;
    let seed = (0..20)
        .find(|&s| {
            let r = run::run(s, &config);
            r.faults.contains_key("db_errors") && r.events.iter().any(aborted)
        })
        .expect("a seed in 0..20 with random database errors that abort a transaction");
    let first = run::run(seed, &config);
    let again = run::run(seed, &config.with_faults_explicit(seed, &first.drawn));
    assert_eq!(first.verdict, again.verdict);
    assert_eq!(first.effects, again.effects);
}

/// A transaction the database aborted (its fault in force).
fn aborted(e: &sim::internal::trace::Event) -> bool {
    matches!(e.typed(), Typed::EffectAttempt { result, .. } if result == "aborted")
}

/// Each database effect names the worker's incarnation and `process()` call that wrote it: a
/// worker whose write landed twice (seed 7 of v2 on a plain database: before a crash, and
/// again after a restart) shows two different calls, each of them a delivery of that event.
#[test]
fn database_effects_name_the_call_whose_write_landed() {
    use std::collections::{BTreeMap, BTreeSet};
    let config = SimConfig {
        protocol: sim::internal::scenario::config::ProtocolKind::V2,
        database: sim::internal::scenario::config::DbMode::Plain,
        ..SimConfig::default()
    };
    let r = run::run(7, &config);
    let mut incarnation: BTreeMap<String, u64> = BTreeMap::new();
    let mut deliveries = BTreeSet::new();
    let mut applied: BTreeMap<(String, String), Vec<(u64, u64)>> = BTreeMap::new();
    let mut attempts = 0;
    for e in &r.events {
        match e.typed() {
            Typed::Start { incarnation: n } => {
                incarnation.insert(e.node.to_string(), *n);
            }
            Typed::Deliver { event_id, call, .. } => {
                deliveries.insert((
                    e.node.to_string(),
                    incarnation[e.node.as_str()],
                    *call,
                    event_id.clone(),
                ));
            }
            Typed::EffectAttempt {
                event_id,
                worker,
                incarnation: n,
                call,
                ..
            }
            | Typed::EffectApplied {
                event_id,
                worker,
                incarnation: n,
                call,
                ..
            } => {
                let whose = (worker.clone(), *n, *call, event_id.clone());
                assert!(deliveries.contains(&whose), "{whose:?} is no delivery");
                if matches!(e.typed(), Typed::EffectAttempt { .. }) {
                    attempts += 1;
                } else {
                    applied
                        .entry((worker.clone(), event_id.clone()))
                        .or_default()
                        .push((*n, *call));
                }
            }
            _ => {}
        }
    }
    assert!(attempts >= 100, "{attempts}");
    let twice: Vec<_> = applied.iter().filter(|(_, calls)| calls.len() > 1).collect();
    assert!(
        !twice.is_empty(),
        "seed 7 no longer has one worker's write landing twice"
    );
    for ((worker, event_id), calls) in twice {
        let distinct: BTreeSet<_> = calls.iter().collect();
        assert_eq!(distinct.len(), calls.len(), "{worker} {event_id}: {calls:?}");
    }
}
