//! Snapshots of every embedded scenario on its pinned seed, so that a change of behaviour shows
//! as a reviewable diff in `tests/snapshots/`: a header (scenario, seed, verdict, violations,
//! notes, counts), then the human trace. A trace longer than [`SNAPSHOT_BYTES_MAX`] keeps its
//! first [`HEAD_LINES`] and last [`TAIL_LINES`] lines. Two sequence diagrams
//! ([`sim::internal::report::mermaid`]) are snapshotted too: the whole of `gc-pause-v2`, and `default`
//! focused on the first event with an applied effect.
//!
//! Nothing real-time is in a snapshot (not the run's `wall` time): the same build gives the same
//! files on every machine. After an intended change, regenerate and review the diff:
//!
//! ```text
//! INSTA_UPDATE=always cargo test -p sim --test snapshots
//! git diff sim/tests/snapshots/
//! ```
//!
//! Under `CI=true` a missing or different snapshot fails the test.

use sim::internal::report;
use sim::internal::run::{self, RunResult, Verdict};
use sim::internal::scenario::{self, EMBEDDED};
use sim::internal::trace;
use sim::internal::trace::Typed;

/// The largest snapshot kept whole, in bytes.
const SNAPSHOT_BYTES_MAX: usize = 400_000;

/// Trace lines kept from the start of a trace that is cut.
const HEAD_LINES: usize = 400;

/// Trace lines kept from the end of a trace that is cut.
const TAIL_LINES: usize = 50;

/// The scenario the whole diagram is snapshotted for.
const DIAGRAM_SCENARIO: &str = "gc-pause-v2";

/// The scenario a focused diagram is snapshotted for.
const FOCUS_SCENARIO: &str = "default";

/// Runs `name` on its pinned seed.
fn run(name: &str) -> (u64, RunResult) {
    let config = scenario::load(name).unwrap_or_else(|e| panic!("{e}"));
    (config.seed, run::run(config.seed, &config))
}

/// The header: what the run was and how it ended, one fact a line.
fn header(name: &str, seed: u64, r: &RunResult) -> String {
    let mut out = format!("scenario: {name}\nseed: {seed}\nverdict: {}\n", r.verdict.name());
    if let Verdict::Crash(why) = &r.verdict {
        out.push_str(&format!("crash: {why}\n"));
    }
    // Each repeated effect with its mechanism (`why:`), as `sim` prints it.
    let why = |v| {
        sim::internal::check::why::explain(&r.events, v).map_or(String::new(), |w| format!("    why: {w}\n"))
    };
    for v in r.verdict.violations() {
        out.push_str(&format!("violation: {v}\n{}", why(v)));
    }
    for n in &r.notes {
        out.push_str(&format!("note: {n}\n{}", why(n)));
    }
    let faults: Vec<String> = r.faults.iter().map(|(k, n)| format!("{k}:{n}")).collect();
    out.push_str(&format!(
        "counts: events={} produced={} applied={} duplicates={} faults={} virtual_us={} trace_events={}\n",
        r.events_total,
        r.produced,
        r.applied,
        r.duplicates,
        if faults.is_empty() {
            "none".into()
        } else {
            faults.join(",")
        },
        r.virtual_us,
        r.events.len()
    ));
    out
}

/// The snapshot of one run: the header, a blank line, the human trace (cut if too long).
fn snapshot(name: &str, seed: u64, r: &RunResult) -> String {
    let header = header(name, seed, r);
    let human = trace::human(&r.events);
    if header.len() + 1 + human.len() <= SNAPSHOT_BYTES_MAX {
        return format!("{header}\n{human}");
    }
    let lines: Vec<&str> = human.lines().collect();
    assert!(
        lines.len() > HEAD_LINES + TAIL_LINES,
        "{name}: long lines, not many"
    );
    let cut = lines.len() - HEAD_LINES - TAIL_LINES;
    format!(
        "{header}\n{}\n... {cut} of {} trace lines cut here; the whole trace: \
         cargo run -p sim -- --scenario {name} --seed {seed} -v ...\n{}\n",
        lines[..HEAD_LINES].join("\n"),
        lines.len(),
        lines[lines.len() - TAIL_LINES..].join("\n")
    )
}

#[test]
fn every_scenario_on_its_pinned_seed_matches_its_snapshot() {
    let runs: Vec<(&str, u64, RunResult)> = std::thread::scope(|scope| {
        let handles: Vec<_> = EMBEDDED
            .iter()
            .map(|(name, _)| {
                scope.spawn(move || {
                    let (seed, r) = run(name);
                    (*name, seed, r)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (name, seed, r) in &runs {
        let text = snapshot(name, *seed, r);
        assert!(
            text.len() <= SNAPSHOT_BYTES_MAX + 1_000,
            "{name}: {} bytes",
            text.len()
        );
        insta::assert_snapshot!(*name, text);
    }
}

#[test]
fn the_diagrams_match_their_snapshots() {
    let (_, small) = run(DIAGRAM_SCENARIO);
    insta::assert_snapshot!(
        format!("mermaid-{DIAGRAM_SCENARIO}"),
        report::mermaid(&small.events, Some(&report::Ending::of(&small)), None)
    );
    let (_, long) = run(FOCUS_SCENARIO);
    let id = long
        .events
        .iter()
        .find_map(|e| match e.typed() {
            Typed::EffectApplied { event_id, .. } => Some(event_id.as_str()),
            _ => None,
        })
        .expect("the default scenario applies an effect");
    let focused = report::mermaid(&long.events, Some(&report::Ending::of(&long)), Some(id));
    assert!(focused.contains(&format!("focus on event {id}")), "{focused}");
    insta::assert_snapshot!(format!("mermaid-{FOCUS_SCENARIO}-focused"), focused);
}
