//! `duplicate_effect`: an event's effect applied more than once, read from the database's
//! record (the ground truth), pointing at the second `effect_applied` in the trace. When the
//! scenario declares outage windows, a duplicate whose extra application ran unprotected
//! (fail-open) inside one is a note (`fail_open_duplicate`), counted apart.

use super::{Input, Severity, Violation};
use crate::trace::{AcquireOutcome, Typed};
use std::collections::BTreeMap;

/// An event's effect applied more than once.
pub fn check(input: &Input<'_>) -> Vec<Violation> {
    let (trace, db) = (input.trace, input.db);
    // Where each event's n-th application shows in the trace.
    let mut applied_at: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    // Whether each worker's current call runs unprotected.
    let mut unprotected: BTreeMap<&str, bool> = BTreeMap::new();
    // Events with an application that ran unprotected inside an outage window.
    let mut in_outage: BTreeMap<&str, bool> = BTreeMap::new();
    let windows = &input.params.outage_windows_ms;
    let typed = crate::trace::typed(trace);
    for (i, (e, t)) in trace.iter().zip(&typed).enumerate() {
        match t {
            Typed::Acquire { outcome, .. } if outcome.running().is_some() => {
                let open = matches!(outcome, AcquireOutcome::Unprotected { .. });
                unprotected.insert(e.node.as_str(), open);
            }
            Typed::EffectApplied { event_id, worker, .. } => {
                let id = event_id.as_str();
                applied_at.entry(id).or_default().push(i);
                let t_ms = e.t_us / 1000;
                if unprotected.get(worker.as_str()).copied().unwrap_or(false)
                    && windows.iter().any(|w| (w[0]..=w[1]).contains(&t_ms))
                {
                    in_outage.insert(id, true);
                }
            }
            _ => {}
        }
    }
    db.effects()
        .iter()
        .filter(|(_, effects)| effects.len() > 1)
        .map(|(id, effects)| {
            let who: Vec<String> = effects
                .iter()
                .map(|e| {
                    format!(
                        "{}#{}@{}ms/call {}{}",
                        e.worker,
                        e.incarnation,
                        e.t_us / 1000,
                        e.call,
                        e.fence.map(|f| format!("/fence {f}")).unwrap_or_default()
                    )
                })
                .collect();
            let fail_open = in_outage.contains_key(id.as_str());
            Violation {
                kind: if fail_open {
                    "fail_open_duplicate"
                } else {
                    "duplicate_effect"
                },
                severity: if fail_open {
                    Severity::Note
                } else {
                    Severity::Correctness
                },
                event_id: id.clone(),
                detail: format!("applied {} times: {}", effects.len(), who.join(", ")),
                first_event: applied_at.get(id.as_str()).and_then(|v| v.get(1).copied()),
            }
        })
        .collect()
}
