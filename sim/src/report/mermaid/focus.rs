//! Focus: the events of a run that are about one event (its own steps, the Redis commands on
//! its keys, the offset commits that move past its records) and the context around them, so a
//! long run's diagram can tell one event's story at a size GitHub still draws.

use super::text::short_id;
use super::FOCUS_CHARS_MIN;
use crate::trace::{Event, Typed};
use std::collections::BTreeSet;

/// The events about the event `prefix` names, and the note that says what it matched.
pub(super) fn select<'a>(events: &'a [Event], prefix: &str) -> (Vec<&'a Event>, String) {
    let prefix = prefix.trim().to_lowercase();
    let context = |t: &Typed| matches!(t, Typed::Fault { .. } | Typed::Heal { .. } | Typed::Phase { .. });
    if prefix.chars().count() < FOCUS_CHARS_MIN {
        let note =
            format!("focus {prefix}: too short, give at least {FOCUS_CHARS_MIN} characters of an event id");
        let kept = events.iter().filter(|e| context(e.typed())).collect();
        return (kept, note);
    }
    let about = |t: &Typed| {
        t.event_id()
            .is_some_and(|id| id.to_lowercase().starts_with(&prefix))
    };
    let mut ids = BTreeSet::new();
    let mut keys = BTreeSet::new();
    let mut records = BTreeSet::new();
    for t in events.iter().map(Event::typed).filter(|t| about(t)) {
        let id = t.event_id().unwrap_or("");
        ids.insert(id.split('/').next().unwrap_or(id));
        match t {
            Typed::Acquire { outcome, .. } => {
                if let Some((_, key)) = outcome.running().filter(|(_, k)| !k.is_empty()) {
                    keys.insert(key);
                }
            }
            Typed::Deliver {
                partition, offset, ..
            }
            | Typed::Produce {
                partition, offset, ..
            } => {
                records.insert((*partition, *offset));
            }
            _ => {}
        }
    }
    // Faults and heals only while the event is around: from its first to its last step.
    let window = {
        let times: Vec<u64> = events
            .iter()
            .filter(|e| about(e.typed()))
            .map(|e| e.t_us)
            .collect();
        times.first().copied().unwrap_or(0)..=times.last().copied().unwrap_or(u64::MAX)
    };
    let context = |t: &Typed, t_us: u64| context(t) && window.contains(&t_us);
    let mut covered = BTreeSet::new();
    let mut kept = Vec::new();
    for e in events {
        let keep = match e.typed() {
            Typed::OffsetCommit {
                partition,
                offset,
                accepted,
                ..
            } => {
                let moves_past: Vec<(u32, u64)> = records
                    .iter()
                    .filter(|&&(rp, ro)| rp == *partition && ro < *offset)
                    .filter(|r| !covered.contains(*r))
                    .copied()
                    .collect();
                if *accepted {
                    covered.extend(moves_past.iter().copied());
                }
                !moves_past.is_empty()
            }
            t => {
                about(t)
                    || context(t, e.t_us)
                    || matches!(t, Typed::Redis { key, .. } if keys.contains(key.as_str()))
            }
        };
        if keep {
            kept.push(e);
        }
    }
    let note = match ids.len() {
        0 => format!("focus {prefix}: no event has this id"),
        1 => format!("focus on event {}", ids.first().expect("one id")),
        n => format!(
            "focus {prefix}: {n} events ({})",
            ids.iter().map(|id| short_id(id)).collect::<Vec<_>>().join(", ")
        ),
    };
    (kept, note)
}
