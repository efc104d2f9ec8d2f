//! A run's nemesis decisions are data: written back as a scenario (`--save-scenario`), they
//! replay the same run.

use sim::internal::model::db::DbMode;
use sim::internal::run;
use sim::internal::scenario::config::{ProtocolKind, SimConfig};
use sim::internal::trace::Typed;

#[test]
fn every_seeds_saved_scenario_replays_the_same_verdict_and_effects() {
    let config = SimConfig {
        protocol: ProtocolKind::V2,
        database: DbMode::Plain,
        ..SimConfig::default()
    };
    let mut faults = 0;
    for seed in 0..100 {
        let first = run::run(seed, &config);
        let saved = config.with_faults_explicit(seed, &first.drawn);
        // Through the file form, as a user would replay it.
        let text = saved.to_toml();
        let replayed_config = sim::internal::scenario::parse(&text, "saved.toml")
            .unwrap_or_else(|e| panic!("seed {seed}: the saved scenario does not load: {e}\n{text}"));
        assert!(!replayed_config.faults.random);
        let again = run::run(seed, &replayed_config);
        assert_eq!(first.verdict, again.verdict, "seed {seed}");
        assert_eq!(first.effects, again.effects, "seed {seed}");
        assert_eq!(first.faults, again.faults, "seed {seed}: the faults carried out");
        assert!(again.drawn.is_empty(), "seed {seed}: random faults were off");
        // More than asked: the whole history is the same but for who asked for each fault
        // (and the config it starts with, whose faults are now a schedule).
        let unsigned = |r: &run::RunResult| {
            let mut events = r.events.clone();
            assert!(matches!(events.remove(0).what, Typed::Config { .. }));
            for e in &mut events {
                if let Typed::Fault { by, .. } = &mut e.what {
                    by.clear();
                }
            }
            sim::internal::trace::jsonl(&events)
        };
        assert!(
            unsigned(&first) == unsigned(&again),
            "seed {seed}: the histories differ"
        );
        faults += first.drawn.len();
    }
    assert!(
        faults > 1000,
        "the nemesis drew only {faults} faults over 100 seeds"
    );
}
