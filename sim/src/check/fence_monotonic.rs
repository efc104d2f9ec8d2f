//! `fence_regression`: a fencing token handed out that is not above one the database had
//! already accepted for the event.
//!
//! A fenced database rejects a commit whose token is below the highest it has accepted for the
//! key, so such a token makes a legitimate holder's commit fail (and, if it equals an accepted
//! one, lets two leases commit). "Already accepted" means applied (`effect_attempt` with
//! `result=applied`) before the call that got the token began (its `deliver`): a commit that
//! lands while an acquire is in flight cannot bound it, and the database rejecting the
//! newcomer then is what fencing is for. Judged only when the database is `fenced`, the only
//! mode in which tokens decide anything.

use super::{Input, Severity, Violation};
use crate::model::db::DbMode;
use crate::trace::{AcquireOutcome, Typed};
use std::collections::BTreeMap;

/// The violations in `input`.
pub fn check(input: &Input<'_>) -> Vec<Violation> {
    if input.params.database != DbMode::Fenced {
        return Vec::new();
    }
    // Per event: the highest token applied so far, the trace index that applied it, and who.
    let mut accepted: BTreeMap<&str, (u64, usize, &str)> = BTreeMap::new();
    // Per worker: the highest token applied for the event its current call delivers, as of
    // the delivery.
    let mut known: BTreeMap<&str, Option<(u64, usize, &str)>> = BTreeMap::new();
    let mut out = Vec::new();
    let typed = crate::trace::typed(input.trace);
    for (i, (e, t)) in input.trace.iter().zip(&typed).enumerate() {
        match t {
            Typed::EffectAttempt {
                event_id,
                worker,
                fence: Some(f),
                result,
                ..
            } if result == "applied" => {
                let best = accepted.entry(event_id).or_insert((*f, i, worker.as_str()));
                if *f > best.0 {
                    *best = (*f, i, worker.as_str());
                }
            }
            Typed::Deliver { event_id, .. } => {
                known.insert(e.node.as_str(), accepted.get(event_id.as_str()).copied());
            }
            Typed::Acquire {
                event_id,
                outcome:
                    AcquireOutcome::Acquired {
                        fence: Some(fence), ..
                    },
                ..
            } => {
                let Some(Some((highest, at, worker))) = known.get(e.node.as_str()) else {
                    continue;
                };
                if fence <= highest {
                    out.push(Violation {
                        kind: "fence_regression",
                        severity: Severity::Correctness,
                        event_id: event_id.clone(),
                        detail: format!(
                            "{} was handed token {fence}, not above {highest} that the database \
                             accepted from {worker} at {}ms",
                            e.node,
                            input.trace[*at].t_us / 1000
                        ),
                        first_event: Some(i),
                    });
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::history::{acquired, deliver, effect_attempt};
    use crate::check::test_event as ev;
    use crate::check::Params;
    use crate::trace::Event;

    /// worker-2 commits token 500 for `e`; later worker-3 is handed `token` for `e`.
    fn history(token: u64) -> Vec<Event> {
        vec![
            ev(1, "worker-2", deliver("e")),
            ev(2, "worker-2", acquired("e", "k", Some(500))),
            ev(3, "db", effect_attempt("e", "worker-2", Some(500), "applied")),
            ev(10, "worker-3", deliver("e")),
            ev(11, "worker-3", acquired("e", "k", Some(token))),
            ev(
                12,
                "db",
                effect_attempt("e", "worker-3", Some(token), "stale_fence"),
            ),
        ]
    }

    fn judge(trace: &[Event], database: DbMode) -> Vec<Violation> {
        let config = Params {
            database,
            ..Params::default()
        };
        crate::check::judge_history(trace, &config, check)
    }

    #[test]
    fn a_token_below_or_equal_to_an_accepted_one_is_a_regression() {
        for token in [400, 500] {
            let v = judge(&history(token), DbMode::Fenced);
            assert_eq!(v.len(), 1, "{v:?}");
            assert_eq!(
                (v[0].kind, v[0].severity),
                ("fence_regression", Severity::Correctness)
            );
            assert_eq!(v[0].first_event, Some(4));
            assert!(
                v[0].detail.contains(&format!(
                    "worker-3 was handed token {token}, not above 500 that the database accepted from worker-2 at 3ms"
                )),
                "{}",
                v[0].detail
            );
        }
    }

    #[test]
    fn a_higher_token_a_commit_during_the_acquire_and_an_unfenced_database_are_fine() {
        assert!(judge(&history(501), DbMode::Fenced).is_empty());
        assert!(
            judge(&history(400), DbMode::Unique).is_empty(),
            "tokens decide nothing there"
        );
        // worker-2's commit lands after worker-3's delivery began: it cannot bound the token.
        let mut h = history(400);
        h.swap(2, 3);
        assert!(judge(&h, DbMode::Fenced).is_empty());
    }
}
