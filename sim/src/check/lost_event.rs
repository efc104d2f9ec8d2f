//! `lost_event`: an event produced (a record of it reached the Kafka log) that the database
//! never applied, judged after the liveness phase. An event the producer had not published
//! when the run ended is not lost: nothing was lost.

use super::{Severity, Violation};
use crate::model::db::DbModel;

/// An event of `produced` (those with a record in the log) never applied.
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
