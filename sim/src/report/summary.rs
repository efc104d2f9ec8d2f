//! The one-line summary every run prints (verdict and counts, and the trace's fingerprint) and,
//! for `--check-determinism`, where two runs of one seed first part. Both the single run and
//! the sweep print them, and the READMEs quote them, so there is one definition of each.

use crate::run::RunResult;

/// One line: verdict and counts.
pub(crate) fn summary(r: &RunResult) -> String {
    let faults: Vec<String> = r.faults.iter().map(|(k, n)| format!("{k}:{n}")).collect();
    format!(
        "verdict={} events={} produced={} applied={} duplicates={} faults={} rebalances={} redeliveries={} rejected_commits={} duplicate_records={} virtual_s={:.3} wall_ms={} trace_events={} trace_sha256={}",
        r.verdict.name(),
        r.events_total,
        r.produced,
        r.applied,
        r.duplicates,
        if faults.is_empty() { "none".to_owned() } else { faults.join(",") },
        r.kafka.rebalances,
        r.kafka.redeliveries,
        r.kafka.rejected_commits,
        r.kafka.producer_duplicates,
        r.virtual_us as f64 / 1e6,
        r.wall.as_millis(),
        r.events.len(),
        r.fingerprint()
    )
}

/// Where two runs' traces first differ, if they do.
pub(crate) fn first_difference(a: &RunResult, b: &RunResult) -> Option<String> {
    for (i, (x, y)) in a.events.iter().zip(&b.events).enumerate() {
        // Equal events give equal lines (a line is made of its event alone); lines are made
        // only to show a difference.
        if x != y {
            let (x, y) = (x.json(), y.json());
            return Some(format!("event #{i} differs:\n  first:  {x}\n  second: {y}"));
        }
    }
    (a.events.len() != b.events.len())
        .then(|| format!("the traces have {} and {} events", a.events.len(), b.events.len()))
}
