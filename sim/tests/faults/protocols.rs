//! The protocols side by side on the same seeds: `python-v2` (the Python original's exception
//! path, v2's weakness A) calls a failed handler a second time in one `process()` call, which
//! the `double_invocation` checker catches and `handler_called_twice` explains, while the
//! library's v2 on the same seeds never does.

use sim::check::why::{self, Mechanism};
use sim::model::db::DbMode;
use sim::run;
use sim::scenario::config::{ProtocolKind, SimConfig};

/// The mechanisms of every repeated effect of a run, and whether it showed `double_invocation`.
fn findings(seed: u64, config: &SimConfig) -> (bool, Vec<Mechanism>) {
    let r = run::run(seed, config);
    let double = r
        .verdict
        .violations()
        .iter()
        .any(|v| v.kind == "double_invocation");
    let mechanisms = r
        .verdict
        .violations()
        .iter()
        .chain(&r.notes)
        .filter_map(|v| why::explain(&r.events, v))
        .map(|w| w.mechanism)
        .collect();
    (double, mechanisms)
}

#[test]
fn python_v2_calls_a_failed_handler_twice_at_random_and_v2_on_the_same_seeds_never_does() {
    let python = SimConfig {
        protocol: ProtocolKind::PythonV2,
        database: DbMode::Plain,
        ..SimConfig::default()
    };
    let v2 = SimConfig {
        protocol: ProtocolKind::V2,
        ..python.clone()
    };
    let (mut doubles, mut twice) = (Vec::new(), Vec::new());
    for seed in 0..20 {
        let (double, mechanisms) = findings(seed, &python);
        if double {
            doubles.push(seed);
        }
        if mechanisms.contains(&Mechanism::HandlerCalledTwice) {
            twice.push(seed);
        }
        let (double, mechanisms) = findings(seed, &v2);
        assert!(
            !double,
            "seed {seed}: v2 (the library) ran a handler twice in one call"
        );
        assert!(
            !mechanisms.contains(&Mechanism::HandlerCalledTwice),
            "seed {seed}: v2 (the library) shows handler_called_twice"
        );
    }
    println!("python-v2, seeds 0..20: double_invocation on {doubles:?}, handler_called_twice on {twice:?}");
    assert!(doubles.len() >= 5, "double_invocation on {doubles:?}");
    assert!(!twice.is_empty(), "handler_called_twice on no seed");
}

#[test]
fn the_python_v2_scenario_run_by_the_library_s_v2_is_a_late_write_and_one_run_per_call() {
    let scenario = sim::scenario::load("python-v2-exception").unwrap();
    let (double, mechanisms) = findings(scenario.seed, &scenario);
    assert!(double);
    assert_eq!(mechanisms, [Mechanism::HandlerCalledTwice]);
    let v2 = SimConfig {
        protocol: ProtocolKind::V2,
        ..scenario.clone()
    };
    let (double, mechanisms) = findings(v2.seed, &v2);
    assert!(!double, "v2 ran the handler twice in one call");
    assert_eq!(mechanisms, [Mechanism::DbTimeoutLateWrite]);
}

/// The protocol each worker's acquires show: fenced ones carry a token, v2 ones none.
fn acquire_kinds(config: &SimConfig, seed: u64) -> std::collections::BTreeMap<String, bool> {
    use sim::trace::{AcquireOutcome, Typed};
    let r = run::run(seed, config);
    r.events
        .iter()
        .filter_map(|e| match e.typed() {
            Typed::Acquire {
                outcome: AcquireOutcome::Acquired { fence, .. },
                ..
            } => Some((e.node.clone(), fence.is_some())),
            _ => None,
        })
        .collect()
}

#[test]
fn worker_protocols_gives_each_worker_its_own_protocol() {
    let config = SimConfig {
        worker_protocols: vec![ProtocolKind::Fenced, ProtocolKind::V2, ProtocolKind::Fenced],
        faults: sim::scenario::config::FaultConfig {
            random: false,
            ..Default::default()
        },
        ..SimConfig::default()
    };
    let fenced = acquire_kinds(&config, 3);
    let expected: std::collections::BTreeMap<String, bool> = [
        ("worker-1".to_owned(), true),
        ("worker-2".to_owned(), false),
        ("worker-3".to_owned(), true),
    ]
    .into();
    assert_eq!(fenced, expected);
    // Empty: every worker runs `protocol`.
    let all_v2 = SimConfig {
        protocol: ProtocolKind::V2,
        worker_protocols: Vec::new(),
        ..config.clone()
    };
    assert!(acquire_kinds(&all_v2, 3).values().all(|fenced| !fenced));
}

#[test]
fn a_v2_worker_taking_over_a_fenced_lease_doubles_the_effect_on_a_fenced_database_not_on_a_unique_one() {
    let scenario = sim::scenario::load("mixed-fleet-v2-takeover").unwrap();
    let (_, mechanisms) = findings(scenario.seed, &scenario);
    assert!(
        mechanisms.contains(&Mechanism::V2TookFencedLease),
        "{mechanisms:?}"
    );
    let r = run::run(scenario.seed, &scenario);
    assert!(r
        .verdict
        .violations()
        .iter()
        .any(|v| v.kind == "duplicate_effect"));
    // The event id as the effect store's unique key keeps one effect whatever the fleet.
    let unique = SimConfig {
        database: DbMode::Unique,
        ..scenario.clone()
    };
    let r = run::run(unique.seed, &unique);
    let kinds: Vec<&str> = r.verdict.violations().iter().map(|v| v.kind).collect();
    assert_eq!(kinds, ["lock_overlap"], "{kinds:?}");
    // The same fleet all fenced: the fast clock takes nothing over.
    let fenced = SimConfig {
        worker_protocols: vec![ProtocolKind::Fenced, ProtocolKind::Fenced],
        ..scenario.clone()
    };
    let r = run::run(fenced.seed, &fenced);
    assert!(r.verdict.violations().is_empty(), "{:?}", r.verdict.violations());
}
