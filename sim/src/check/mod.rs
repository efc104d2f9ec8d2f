//! Checkers: verdicts from the recorded history and the database's record, never from what
//! the workers believe happened. One module per checker, registered in [`check`]; each
//! violation points at the first trace event that shows it.
//!
//! - [`duplicate_effect`]: an event's effect applied more than once (correctness).
//! - [`lost_event`]: an event produced but never applied after the liveness phase (liveness).

pub mod duplicate_effect;
pub mod lost_event;

use crate::db::DbModel;
use crate::trace::Event;

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
    let mut out = duplicate_effect::check(trace, db);
    out.extend(lost_event::check(db, produced));
    out
}
