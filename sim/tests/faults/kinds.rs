//! What the default world does across many seeds: every fault kind happens, v2 on a plain
//! database double-applies effects (and the printed command shows it again), and the fenced
//! protocol with a unique database never does.

use sim::internal::model::db::DbMode;
use sim::internal::run::{self, Verdict};
use sim::internal::scenario::config::{ProtocolKind, SimConfig};
use sim::internal::trace::Typed;
use std::collections::BTreeSet;
use std::process::Command;

const KINDS: [&str; 9] = [
    "ack_loss",
    "clock",
    "clog",
    "crash",
    "fault_point",
    "latency",
    "partition",
    "pause",
    "redis_errors",
];

#[test]
fn every_fault_kind_is_injected_within_a_thousand_seeds() {
    let config = SimConfig::default();
    let mut seen = BTreeSet::new();
    let mut seeds = 0;
    for seed in 0..1000 {
        let r = run::run(seed, &config);
        seen.extend(r.faults.keys().cloned());
        // The nemesis's fault points are crashes where a worker stood: the event names the point.
        if r.events
            .iter()
            .any(|e| matches!(e.typed(), Typed::Fault { point: Some(_), .. }))
        {
            seen.insert("fault_point".to_owned());
        }
        // Faults show in the trace as what the nemesis did, and the nodes' reactions.
        assert!(
            r.events.iter().any(|e| matches!(e.typed(), Typed::Heal { .. })),
            "seed {seed}: faults were never healed"
        );
        seeds += 1;
        if KINDS.iter().all(|k| seen.contains(*k)) {
            break;
        }
    }
    println!("all {} fault kinds seen within {seeds} seeds", KINDS.len());
    assert_eq!(
        seen.iter().map(String::as_str).collect::<Vec<_>>(),
        KINDS.to_vec()
    );
}

#[test]
fn v2_on_a_plain_database_applies_an_effect_twice_and_the_reproduce_command_shows_it_again() {
    let config = SimConfig {
        protocol: ProtocolKind::V2,
        database: DbMode::Plain,
        ..SimConfig::default()
    };
    let (seed, result) = (0..1000)
        .map(|seed| (seed, run::run(seed, &config)))
        .find(|(_, r)| matches!(r.verdict, Verdict::Correctness(_)))
        .expect("some seed in 0..1000 shows a duplicate effect under v2 + plain");
    let v = &result.verdict.violations()[0];
    assert_eq!(v.kind, "duplicate_effect");
    let shown = &result.events[v.first_event.expect("the violation points into the trace")];
    assert!(
        matches!(shown.typed(), Typed::EffectApplied { event_id, .. } if *event_id == v.event_id),
        "{}",
        shown.json()
    );
    println!("seed {seed}: {v}");

    let out = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args([
            "--seed",
            &seed.to_string(),
            "--protocol",
            "v2",
            "--database",
            "plain",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains(&format!("violation: duplicate_effect event={}", v.event_id)),
        "{text}"
    );
    assert!(
        text.contains(&result.fingerprint()),
        "the command line reproduced a different run:\n{text}"
    );
    let last = text.lines().last().unwrap();
    assert_eq!(
        last,
        format!("reproduce: cargo run -p sim -- --seed {seed} --protocol v2 --database plain")
    );
}

#[test]
fn fenced_with_a_unique_database_never_applies_an_effect_twice() {
    let config = SimConfig::default();
    for seed in 1000..1300 {
        let r = run::run(seed, &config);
        assert_eq!(
            r.verdict,
            Verdict::Pass,
            "seed {seed}: cargo run -p sim -- --seed {seed}"
        );
        assert_eq!(r.duplicates, 0);
        assert_eq!(r.applied, r.events_total);
    }
}
