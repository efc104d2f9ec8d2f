//! The product is determinism: the same seed and build give the same trace, byte for byte —
//! in one process, in two processes, and across many seeds; different seeds differ.

use sim::internal::run;
use sim::internal::scenario::config::SimConfig;
use std::collections::BTreeSet;
use std::process::Command;

/// Runs seeds two at a time (each run is on a fresh thread of its own anyway).
fn fingerprints(seeds: std::ops::Range<u64>, config: &SimConfig) -> Vec<(u64, String, String)> {
    let seeds: Vec<u64> = seeds.collect();
    seeds
        .chunks(2)
        .flat_map(|pair| {
            std::thread::scope(|s| {
                let hs: Vec<_> = pair
                    .iter()
                    .map(|&seed| {
                        s.spawn(move || {
                            let r = run::run(seed, config);
                            (seed, r.fingerprint(), r.verdict.name().to_owned())
                        })
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).collect::<Vec<_>>()
            })
        })
        .collect()
}

#[test]
fn a_hundred_and_fifty_seeds_give_the_same_trace_twice_and_differ_from_each_other() {
    let config = SimConfig::default();
    let first = fingerprints(0..150, &config);
    let second = fingerprints(0..150, &config);
    for (a, b) in first.iter().zip(&second) {
        assert_eq!(
            a, b,
            "seed {} is not deterministic: cargo run -p sim -- --seed {} --check-determinism",
            a.0, a.0
        );
    }
    let distinct: BTreeSet<&String> = first.iter().map(|(_, f, _)| f).collect();
    assert_eq!(distinct.len(), first.len(), "two seeds gave the same trace");
    let failing: Vec<_> = first.iter().filter(|(_, _, v)| v != "pass").collect();
    assert!(
        failing.is_empty(),
        "the default scenario (fenced + unique) failed: {failing:?}"
    );
}

#[test]
fn the_same_seed_gives_a_byte_identical_trace_in_two_processes() {
    let dir = std::env::temp_dir().join(format!("sim-determinism-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut traces = Vec::new();
    for i in 0..2 {
        let path = dir.join(format!("trace-{i}.jsonl"));
        let out = Command::new(env!("CARGO_BIN_EXE_sim"))
            .args(["--seed", "7", "--protocol", "v2", "--trace"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.code().is_some(), "the process was killed");
        traces.push(std::fs::read(&path).unwrap());
    }
    std::fs::remove_dir_all(&dir).ok();
    assert!(traces[0].len() > 10_000, "a real trace was written");
    assert!(
        traces[0] == traces[1],
        "two processes wrote different traces for seed 7"
    );
}

#[test]
fn check_determinism_reports_the_same_trace() {
    let out = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(["--seed", "3", "--check-determinism"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("determinism: the same trace twice"), "{text}");
}

/// The canonical line, written straight from the event (no `serde_json::Value` in between),
/// is the line the fingerprint always hashed: `t_us`, `node`, `kind`, then the fields as a
/// `Value` writes them (objects sorted by key, nested ones too). Every kind of event of every
/// embedded scenario's pinned seed, and of the swarm's first seeds, is held to it.
#[test]
fn the_canonical_line_is_the_sorted_value_of_the_event() {
    fn through_value(e: &sim::Event) -> String {
        let serde_json::Value::Object(mut fields) = serde_json::to_value(&e.what).unwrap() else {
            panic!("an event is an object")
        };
        let kind = fields.remove("kind").unwrap();
        let mut line = format!(
            "{{\"t_us\":{},\"node\":{},\"kind\":{kind}",
            e.t_us,
            serde_json::Value::from(e.node.as_str())
        );
        for (k, v) in &fields {
            line.push_str(&format!(",{}:{v}", serde_json::Value::from(k.as_str())));
        }
        line + "}"
    }
    let mut kinds = BTreeSet::new();
    let mut configs: Vec<(u64, SimConfig)> = sim::internal::scenario::EMBEDDED
        .iter()
        .map(|(name, _)| {
            let c = sim::internal::scenario::load(name).unwrap();
            (c.seed, c)
        })
        .collect();
    let swarm = sim::internal::scenario::load("swarm").unwrap();
    configs.extend((0..20).map(|seed| (seed, swarm.clone())));
    for (seed, config) in &configs {
        for e in run::run(*seed, config).events {
            assert_eq!(e.json(), through_value(&e), "{} seed {seed}", config.name);
            kinds.insert(e.kind());
        }
    }
    assert!(kinds.len() >= 30, "every kind met: {kinds:?}");
}
