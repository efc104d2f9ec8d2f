//! Effects and confirmations, matched at quiescence.
//!
//! - `confirm_without_effect` (correctness): a handler confirmed an event whose effect the
//!   database has not applied (by anyone) at that moment.
//! - `effect_without_confirm` (note): an event whose effect is applied but whose Redis record
//!   at the end does not say completed, with the cause the trace shows: a crash of the worker
//!   after its effect, a lost lease, a Redis error at confirm, Redis losing data in a crash, or
//!   the completed record's TTL running out. Such an event is processed again if it is
//!   delivered again; only a deduplicating effect store keeps that harmless.

use super::{Input, Severity, Violation};
use crate::fault::Fault;
use crate::net::topology::NodeName;
use crate::trace::Typed;
use idempotency::record::RecordState;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// The violations and notes in `input`.
pub fn check(input: &Input<'_>) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut applied: BTreeMap<&str, usize> = BTreeMap::new();
    let mut keys: BTreeMap<&str, &str> = BTreeMap::new();
    // A cause is most often fixed text or a result read from the trace: borrowed, not copied
    // (a Redis crash names one for every event applied so far).
    let mut causes: BTreeMap<&str, Cow<'_, str>> = BTreeMap::new();
    // Per worker: the event whose effect it applied and has not confirmed yet.
    let mut pending: BTreeMap<&str, &str> = BTreeMap::new();
    let typed = crate::trace::typed(input.trace);
    for (i, (e, t)) in input.trace.iter().zip(&typed).enumerate() {
        match t {
            Typed::Acquire {
                event_id, outcome, ..
            } => {
                if let Some((_, k)) = outcome.running().filter(|(_, k)| !k.is_empty()) {
                    keys.insert(event_id, k);
                }
            }
            Typed::EffectApplied { event_id, worker, .. } => {
                *applied.entry(event_id).or_default() += 1;
                pending.insert(worker, event_id);
            }
            Typed::Confirm { event_id, result, .. } => {
                let id = event_id.as_str();
                pending.remove(e.node.as_str());
                if result == "confirmed" && !applied.contains_key(id) {
                    out.push(Violation {
                        kind: "confirm_without_effect",
                        severity: Severity::Correctness,
                        event_id: id.to_owned(),
                        detail: format!("{} confirmed before any effect was applied", e.node),
                        first_event: Some(i),
                    });
                }
                if result != "confirmed" && result != "noop" {
                    causes.insert(id, Cow::Borrowed(result.as_str()));
                }
            }
            Typed::Fault {
                fault: Fault::Crash { node: Some(node) },
                ..
            } => {
                if let Some(id) = pending.remove(node.to_string().as_str()) {
                    causes.insert(
                        id,
                        Cow::Owned(format!("{node} crashed after the effect, before confirming")),
                    );
                }
                if *node == NodeName::Redis {
                    for id in applied.keys() {
                        causes
                            .entry(id)
                            .or_insert(Cow::Borrowed("Redis lost its data in a crash"));
                    }
                }
            }
            _ => {}
        }
    }
    for (id, _) in applied {
        let record = keys.get(id).and_then(|k| input.records.get(*k));
        if record.is_some_and(|r| r.state == RecordState::Completed) {
            continue;
        }
        let cause = causes
            .get(id)
            .map(|c| c.to_string())
            .unwrap_or_else(|| match record {
                None => "the completed record expired or was never written".to_owned(),
                Some(_) => "the record still says processing".to_owned(),
            });
        out.push(Violation {
            kind: "effect_without_confirm",
            severity: Severity::Note,
            event_id: id.to_owned(),
            detail: cause,
            first_event: None,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::history::{acquired, confirm, crash, effect_applied};
    use crate::check::test_event as ev;
    use crate::check::Params;

    #[test]
    fn a_confirm_before_any_effect_fires_and_one_after_it_does_not() {
        let early = [
            ev(1, "worker-1", acquired("e-1", "k1", None)),
            ev(2, "worker-1", confirm("e-1", "confirmed")),
            ev(3, "db", effect_applied("e-1", "worker-1")),
        ];
        let v: Vec<_> = crate::check::judge_history(&early, &Params::default(), check)
            .into_iter()
            .filter(|v| v.severity == Severity::Correctness)
            .collect();
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!((v[0].kind, v[0].first_event), ("confirm_without_effect", Some(1)));
        let in_order = [early[0].clone(), early[2].clone(), early[1].clone()];
        let v = crate::check::judge_history(&in_order, &Params::default(), check);
        assert!(v.iter().all(|v| v.kind != "confirm_without_effect"), "{v:?}");
    }

    #[test]
    fn an_effect_whose_record_is_not_completed_is_a_note_with_its_cause() {
        let crashed = [
            ev(1, "worker-1", acquired("e-1", "k1", None)),
            ev(2, "db", effect_applied("e-1", "worker-1")),
            ev(3, "nemesis", crash(NodeName::Worker(1), None)),
        ];
        let v = crate::check::judge_history(&crashed, &Params::default(), check);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(
            (v[0].kind, v[0].severity),
            ("effect_without_confirm", Severity::Note)
        );
        assert!(
            v[0].detail.contains("worker-1 crashed after the effect"),
            "{}",
            v[0].detail
        );
    }
}
