//! Focus: the events of a run that are about one event (its own steps, the Redis commands on
//! its keys, the offset commits that move past its records) and the context around them, so a
//! long run's diagram can tell one event's story at a size GitHub still draws.

use super::text::short_id;
use super::FOCUS_CHARS_MIN;
use crate::trace::Event;
use serde_json::Value;
use std::collections::BTreeSet;

/// The events about the event `prefix` names, and the note that says what it matched.
pub(super) fn select<'a>(events: &'a [Event], prefix: &str) -> (Vec<&'a Event>, String) {
    let prefix = prefix.trim().to_lowercase();
    let context = |e: &Event| matches!(e.kind, "fault" | "heal" | "phase" | "verdict");
    if prefix.chars().count() < FOCUS_CHARS_MIN {
        let note =
            format!("focus {prefix}: too short, give at least {FOCUS_CHARS_MIN} characters of an event id");
        return (events.iter().filter(|e| context(e)).collect(), note);
    }
    let about = |e: &Event| {
        e.str("event_id")
            .is_some_and(|id| id.to_lowercase().starts_with(&prefix))
    };
    let mut ids = BTreeSet::new();
    let mut keys = BTreeSet::new();
    let mut records = BTreeSet::new();
    for e in events.iter().filter(|e| about(e)) {
        let id = e.str("event_id").unwrap_or("");
        ids.insert(id.split('/').next().unwrap_or(id));
        match (e.kind, e.str("key"), e.u64("partition"), e.u64("offset")) {
            ("acquire", Some(key), ..) if !key.is_empty() => {
                keys.insert(key);
            }
            ("deliver" | "produce", _, Some(p), Some(o)) => {
                records.insert((p, o));
            }
            _ => {}
        }
    }
    // Faults and heals only while the event is around: from its first to its last step.
    let window = {
        let times: Vec<u64> = events.iter().filter(|e| about(e)).map(|e| e.t_us).collect();
        times.first().copied().unwrap_or(0)..=times.last().copied().unwrap_or(u64::MAX)
    };
    let context = |e: &Event| e.kind == "verdict" || (context(e) && window.contains(&e.t_us));
    let mut covered = BTreeSet::new();
    let mut kept = Vec::new();
    for e in events {
        let keep = if e.kind == "offset_commit" {
            let (p, o) = (e.u64("partition"), e.u64("offset"));
            let moves_past: Vec<(u64, u64)> = records
                .iter()
                .filter(|&&(rp, ro)| Some(rp) == p && o.is_some_and(|o| ro < o))
                .filter(|r| !covered.contains(*r))
                .copied()
                .collect();
            if e.fields.get("accepted") != Some(&Value::Bool(false)) {
                covered.extend(moves_past.iter().copied());
            }
            !moves_past.is_empty()
        } else {
            about(e) || context(e) || (e.kind == "redis" && e.str("key").is_some_and(|k| keys.contains(k)))
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
