//! Every fault heals at its inject time plus its duration, whoever injected it: the schedule's
//! timer, or a worker reaching a trigger (`point`, `on_delivery`, `while_holding`).

use sim::internal::run;
use sim::internal::trace::Typed;

const DURATION_MS: u64 = 2_000;

/// Each fault kind with a heal, its scenario fields, and the heal's name in the trace.
const FAULTS: &[(&str, &str, &str)] = &[
    ("crash", "", "restart"),
    ("pause", "", "resume"),
    ("clog", "", "unclog"),
    ("partition", "peer = \"redis\"", "unpartition"),
    ("latency", "latency_ms = 50", "latency"),
    ("redis_errors", "share = 0.5", "redis_errors"),
    ("clock", "offset_ms = 5000", "clock"),
];

const TRIGGERS: &[(&str, &str)] = &[
    ("at_ms", "at_ms = 400"),
    ("point", "point = \"after_acquire\"\nevent = 0"),
    ("on_delivery", "on_delivery = 1\nevent = 0"),
    ("while_holding", "while_holding = \"worker-1\"\nevent = 0"),
];

#[test]
fn every_fault_kind_heals_on_time_from_every_trigger_kind() {
    let mut checked = 0;
    for (fault, extra, heal) in FAULTS {
        for (trigger, trigger_fields) in TRIGGERS {
            // A timer meets no worker: name the node, for the faults that act on one.
            let node = if *trigger == "at_ms" && !matches!(*fault, "latency" | "redis_errors") {
                "node = \"worker-1\"\n"
            } else {
                ""
            };
            let trigger_fields = format!("{trigger_fields}\n{node}");
            let toml = format!(
                "name = \"heal-{fault}-{trigger}\"\nworkers = 1\npartitions = 1\nevents = 3\nsafety_s = 30\n\n\
                 [faults]\nrandom = false\n\n[[schedule]]\n{trigger_fields}\nfault = \"{fault}\"\n{extra}\nduration_ms = {DURATION_MS}\n"
            );
            let config =
                sim::internal::scenario::parse(&toml, "heals.rs").unwrap_or_else(|e| panic!("{e}\n{toml}"));
            let r = run::run(1, &config);
            let what = format!("{fault} by {trigger}");
            let (i, injected) = r
                .events
                .iter()
                .enumerate()
                .find(|(_, e)| {
                    matches!(e.typed(), Typed::Fault { fault: f, by, .. } if f.kind() == *fault && by == "schedule")
                })
                .unwrap_or_else(|| panic!("{what}: the fault never fired"));
            let Typed::Fault { lasts_ms, .. } = injected.typed() else {
                unreachable!("found as a fault")
            };
            assert_eq!(*lasts_ms, Some(DURATION_MS), "{what}");
            let healed = r.events[i..]
                .iter()
                .find(|e| matches!(e.typed(), Typed::Heal { heal: h, .. } if h == heal))
                .unwrap_or_else(|| panic!("{what}: never healed"));
            let late_us = healed.t_us as i64 - (injected.t_us + DURATION_MS * 1000) as i64;
            assert!(
                (0..=1_000).contains(&late_us),
                "{what}: injected at {} µs, healed at {} µs ({late_us} µs off)",
                injected.t_us,
                healed.t_us
            );
            checked += 1;
        }
    }
    assert_eq!(checked, FAULTS.len() * TRIGGERS.len());
}
