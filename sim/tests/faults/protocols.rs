//! The protocols side by side on the same seeds: `python-v2` (the Python original's exception
//! path, v2's weakness A) calls a failed handler a second time in one `process()` call, which
//! the `double_invocation` checker catches and `handler_called_twice` explains, while the
//! library's v2 on the same seeds never does. Mixed fleets (`worker_protocols`, a rolling
//! migration): each worker runs its own protocol, a v2 worker takes over a live fenced lease
//! (`v2_took_fenced_lease`) and doubles the effect on a fenced database but not on a unique
//! one, and the command line and `sim shrink` keep the fleet.

use sim::internal::check::why::{self, Mechanism};
use sim::internal::model::db::DbMode;
use sim::internal::run;
use sim::internal::scenario::config::{ProtocolKind, SimConfig};

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
    let scenario = sim::internal::scenario::load("python-v2-exception").unwrap();
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
    use sim::internal::trace::{AcquireOutcome, Typed};
    let r = run::run(seed, config);
    r.events
        .iter()
        .filter_map(|e| match e.typed() {
            Typed::Acquire {
                outcome: AcquireOutcome::Acquired { fence, .. },
                ..
            } => Some((e.node.to_string(), fence.is_some())),
            _ => None,
        })
        .collect()
}

#[test]
fn worker_protocols_gives_each_worker_its_own_protocol() {
    let config = SimConfig {
        worker_protocols: vec![ProtocolKind::Fenced, ProtocolKind::V2, ProtocolKind::Fenced],
        faults: sim::internal::scenario::config::FaultConfig {
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
    let scenario = sim::internal::scenario::load("mixed-fleet-v2-takeover").unwrap();
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

#[test]
fn the_command_line_takes_a_fleet_prints_it_and_reproduces_it() {
    use std::process::Command;
    let sim = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_sim"))
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), text)
    };
    let (code, text) = sim(&[
        "--seed",
        "0",
        "--database",
        "plain",
        "--worker-protocols",
        "v2,fenced,python-v2",
        "-v",
    ]);
    assert_eq!(code, Some(3), "{text}");
    assert!(
        text.contains("\nworker_protocols=[\"v2\",\"fenced\",\"python-v2\"]\n"),
        "{text}"
    );
    assert!(
        text.contains("overrides: database=plain worker_protocols=[\"v2\",\"fenced\",\"python-v2\"]"),
        "{text}"
    );
    assert_eq!(
        text.lines().last().unwrap(),
        "reproduce: cargo run -p sim -- --seed 0 --worker-protocols v2,fenced,python-v2 --database plain"
    );
    let (code, text) = sim(&["--seed", "0", "--worker-protocols", "v2,fenced"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("`worker_protocols` has 2 entries but `workers` = 3"),
        "{text}"
    );
    let (code, text) = sim(&["--seed", "0", "--worker-protocols", "v2,fenzed,v2"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("possible values: v2, fenced, python-v2"), "{text}");
}

#[test]
fn shrinking_a_fleet_keeps_one_protocol_per_worker_and_both_kinds() {
    let out = std::env::temp_dir().join(format!("sim-fleet-shrink-{}.toml", std::process::id()));
    let ran = std::process::Command::new(env!("CARGO_BIN_EXE_sim"))
        .args([
            "shrink",
            "--scenario",
            "mixed-fleet-harsh",
            "--max-runs",
            "80",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&ran.stdout).into_owned() + &String::from_utf8_lossy(&ran.stderr);
    // The shrunk run's own code: a correctness violation.
    assert_eq!(ran.status.code(), Some(3), "{text}");
    assert!(
        text.contains("shrunk: still fails with lock_overlap/v2_took_fenced_lease"),
        "{text}"
    );
    let shrunk = sim::internal::scenario::load(out.to_str().unwrap()).unwrap();
    std::fs::remove_file(&out).ok();
    assert!(shrunk.workers < 4, "{text}");
    assert_eq!(shrunk.worker_protocols.len(), shrunk.workers as usize);
    assert!(shrunk.worker_protocols.contains(&ProtocolKind::V2));
    assert!(shrunk.worker_protocols.contains(&ProtocolKind::Fenced));
}
