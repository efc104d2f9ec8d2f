//! Checkers: verdicts from the recorded history and the database's record, never from what
//! the workers believe happened.
//!
//! For now: `duplicate_effect` (an event's effect applied more than once: a correctness
//! violation) and `lost_event` (an event produced but never applied after the liveness phase: a
//! liveness violation). Each violation points at the first trace event that shows it.

use crate::db::DbModel;
use crate::trace::Event;
use std::collections::BTreeMap;
use std::fmt;

/// Whether a violation is about safety or progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Something happened that must never happen.
    Correctness,
    /// Something that must happen did not.
    Liveness,
}

/// One thing wrong with a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The checker's name (`duplicate_effect`, `lost_event`, ...).
    pub kind: &'static str,
    /// Correctness or liveness.
    pub severity: Severity,
    /// The event concerned.
    pub event_id: String,
    /// What the checker saw.
    pub detail: String,
    /// Index in the trace of the first event that shows it, if any.
    pub first_event: Option<usize>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} event={} {}", self.kind, self.event_id, self.detail)?;
        if let Some(i) = self.first_event {
            write!(f, " (trace event #{i})")?;
        }
        Ok(())
    }
}

/// Runs every checker. `produced` is every event id the workload published.
pub fn check(trace: &[Event], db: &DbModel, produced: &[String]) -> Vec<Violation> {
    let mut out = duplicate_effect(trace, db);
    out.extend(lost_event(db, produced));
    out
}

/// An event's effect applied more than once.
pub fn duplicate_effect(trace: &[Event], db: &DbModel) -> Vec<Violation> {
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

/// An event produced but never applied.
pub fn lost_event(db: &DbModel, produced: &[String]) -> Vec<Violation> {
    produced
        .iter()
        .filter(|id| db.applied_count(id) == 0)
        .map(|id| Violation {
            kind: "lost_event",
            severity: Severity::Liveness,
            event_id: id.clone(),
            detail: "never applied".into(),
            first_event: None,
        })
        .collect()
}
