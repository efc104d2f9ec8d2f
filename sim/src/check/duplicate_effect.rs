//! `duplicate_effect`: an event's effect applied more than once, read from the database's
//! record (the ground truth), pointing at the second `effect_applied` in the trace.

use super::{Severity, Violation};
use crate::db::DbModel;
use crate::trace::Event;
use std::collections::BTreeMap;

/// An event's effect applied more than once.
pub fn check(trace: &[Event], db: &DbModel) -> Vec<Violation> {
    // Where each event's n-th application shows in the trace.
    let mut applied_at: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, e) in trace.iter().enumerate() {
        if e.kind == "effect_applied" {
            if let Some(id) = e.str("event_id") {
                applied_at.entry(id).or_default().push(i);
            }
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
                        "{}@{}ms{}",
                        e.worker,
                        e.t_us / 1000,
                        e.fence.map(|f| format!("/fence {f}")).unwrap_or_default()
                    )
                })
                .collect();
            Violation {
                kind: "duplicate_effect",
                severity: Severity::Correctness,
                event_id: id.clone(),
                detail: format!("applied {} times: {}", effects.len(), who.join(", ")),
                first_event: applied_at.get(id.as_str()).and_then(|v| v.get(1).copied()),
            }
        })
        .collect()
}
