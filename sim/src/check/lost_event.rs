//! `lost_event`: an event the workload produced that the database never applied, judged after
//! the liveness phase.

use super::{Severity, Violation};
use crate::model::db::DbModel;

/// An event produced but never applied.
pub fn check(db: &DbModel, produced: &[String]) -> Vec<Violation> {
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
