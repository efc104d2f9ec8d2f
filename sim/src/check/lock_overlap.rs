//! `lock_overlap`: two handlers holding the lock of one key at the same virtual time.
//!
//! A handler holds the lock from its `handler_start` (after an `acquire` with outcome
//! `acquired`) until its `handler_end`, or until its worker crashes, or the end of the run. A
//! paused worker still holds it: that is the GC-pause case. Reported with both workers and
//! both intervals, at the second handler's start.
//!
//! An overlap that a Redis crash explains is a note, not a violation: when Redis crashed
//! after the first holder's acquire and before the second's, and the crash lost that key's
//! record (the crash's `lost_keys`: under `everysec` the writes since the last fsync, under
//! `none` everything), the second acquire found the key free. No lock kept only in Redis
//! survives losing its own record; what keeps the effect single then is the database (its
//! unique key or its fencing check). With `always` persistence a crash loses nothing, and an
//! overlap stays a violation.

use super::{Input, Severity, Violation};
use crate::fault::Fault;
use crate::net::topology::NodeName;
use crate::trace::{AcquireOutcome, Typed};
use std::collections::BTreeMap;

// Everything borrows from the trace: judging copies no names, ids or keys.
struct Held<'a> {
    worker: &'a str,
    event_id: &'a str,
    /// When the acquire that gave this handler its lock returned.
    acquired_us: u64,
    start_us: u64,
    end_us: u64,
    start_index: usize,
}

type Running<'a> = BTreeMap<&'a str, Held<'a>>;
type ByKey<'a> = BTreeMap<&'a str, Vec<Held<'a>>>;

/// Ends `worker`'s running handler (if any) at `t`.
fn close<'a>(
    running: &mut Running<'a>,
    by_key: &mut ByKey<'a>,
    worker: &str,
    key_of: &BTreeMap<&'a str, &'a str>,
    t: u64,
) {
    if let Some(mut h) = running.remove(worker) {
        h.end_us = t;
        if let Some(key) = key_of.get(worker) {
            by_key.entry(key).or_default().push(h);
        }
    }
}

/// The violations in `input`.
pub fn check(input: &Input<'_>) -> Vec<Violation> {
    let trace = input.trace;
    let end_of_run = trace.last().map_or(0, |e| e.t_us);
    // Per worker: the key its current call acquired, and the handler it runs.
    let mut acquired: BTreeMap<&str, (&str, u64)> = BTreeMap::new();
    // Redis crashes: when, and the keys each lost.
    let mut crashes: Vec<(u64, Vec<&str>)> = Vec::new();
    let mut running = Running::new();
    let mut by_key = ByKey::new();
    let mut key_of: BTreeMap<&str, &str> = BTreeMap::new();
    let typed = crate::trace::typed(trace);
    for (i, (e, t)) in trace.iter().zip(&typed).enumerate() {
        let worker = e.node.as_str();
        match t {
            Typed::Acquire { outcome, .. } => {
                if let AcquireOutcome::Acquired { key, .. } = outcome {
                    acquired.insert(worker, (key.as_str(), e.t_us));
                } else {
                    acquired.remove(worker);
                }
            }
            Typed::HandlerStart { event_id, .. } => {
                close(&mut running, &mut by_key, worker, &key_of, e.t_us);
                if let Some((key, acquired_us)) = acquired.remove(worker) {
                    key_of.insert(worker, key);
                    running.insert(
                        worker,
                        Held {
                            worker,
                            event_id: event_id.as_str(),
                            acquired_us,
                            start_us: e.t_us,
                            end_us: end_of_run,
                            start_index: i,
                        },
                    );
                }
            }
            Typed::HandlerEnd { .. } => close(&mut running, &mut by_key, worker, &key_of, e.t_us),
            Typed::Fault {
                fault: Fault::Crash { node: Some(node) },
                lost_keys,
                ..
            } => {
                close(&mut running, &mut by_key, &node.to_string(), &key_of, e.t_us);
                if *node == NodeName::Redis {
                    let lost = lost_keys.iter().flatten().map(String::as_str).collect();
                    crashes.push((e.t_us, lost));
                }
            }
            _ => {}
        }
    }
    let open: Vec<&str> = running.keys().copied().collect();
    for w in open {
        close(&mut running, &mut by_key, w, &key_of, end_of_run);
    }
    let mut out = Vec::new();
    for (key, held) in by_key.iter_mut() {
        held.sort_by_key(|h| (h.start_us, h.start_index));
        'key: for (i, a) in held.iter().enumerate() {
            for b in &held[i + 1..] {
                if b.start_us < a.end_us && a.start_us < b.end_us {
                    let mut detail = format!(
                        "{} held it {}..{}ms while {} held it {}..{}ms",
                        a.worker,
                        a.start_us / 1000,
                        a.end_us / 1000,
                        b.worker,
                        b.start_us / 1000,
                        b.end_us / 1000
                    );
                    let lost_in = crashes
                        .iter()
                        .find(|(t, lost)| a.acquired_us <= *t && *t <= b.acquired_us && lost.contains(key));
                    let severity = match lost_in {
                        Some((t, _)) => {
                            detail.push_str(&format!(
                                ": Redis lost the lock's record in its crash at {}ms ({} persistence), \
                                 so the second acquire found the key free; no lock kept in Redis \
                                 alone survives that, only the database keeps the effect single",
                                t / 1000,
                                input.params.redis_persistence.name()
                            ));
                            Severity::Note
                        }
                        None => Severity::Correctness,
                    };
                    out.push(Violation {
                        kind: "lock_overlap",
                        severity,
                        event_id: a.event_id.to_owned(),
                        detail,
                        first_event: Some(b.start_index),
                    });
                    break 'key;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::history::{acquired, crash, handler_end, handler_start};
    use crate::check::test_event as ev;
    use crate::check::Params;
    use crate::model::redis::Persistence;
    use crate::trace::Event;

    const KEY: &str = "p:s:t:abcdef12";

    /// worker-1 takes the lock at 1 s and holds it (paused) to 30 s; Redis crashes at 1.1 s
    /// losing `lost`; worker-2 takes the lock at 10 s.
    fn history(lost: &[&str]) -> Vec<Event> {
        let lost: Vec<String> = lost.iter().map(|k| k.to_string()).collect();
        vec![
            ev(1000, "worker-1", acquired("e", KEY, Some(1))),
            ev(1000, "worker-1", handler_start("e", 1)),
            ev(1100, "nemesis", crash(NodeName::Redis, Some(lost))),
            ev(10_000, "worker-2", acquired("e", KEY, Some(2))),
            ev(10_000, "worker-2", handler_start("e", 1)),
            ev(10_100, "worker-2", handler_end("e")),
            ev(30_000, "worker-1", handler_end("e")),
        ]
    }

    fn judge(trace: &[Event], persistence: Persistence) -> Vec<Violation> {
        let config = Params {
            redis_persistence: persistence,
            ..Params::default()
        };
        crate::check::judge_history(trace, &config, check)
    }

    #[test]
    fn an_overlap_nothing_explains_is_a_violation() {
        let v = judge(&history(&[]), Persistence::Always);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(
            (v[0].kind, v[0].severity),
            ("lock_overlap", Severity::Correctness)
        );
        assert_eq!(v[0].first_event, Some(4));
        let other_key = judge(&history(&["p:s:t:other"]), Persistence::Everysec);
        assert_eq!(
            other_key[0].severity,
            Severity::Correctness,
            "the crash lost another key"
        );
    }

    #[test]
    fn an_overlap_after_a_redis_crash_lost_the_lock_is_a_note_naming_the_crash() {
        let v = judge(&history(&[KEY]), Persistence::Everysec);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!((v[0].kind, v[0].severity), ("lock_overlap", Severity::Note));
        assert!(
            v[0].detail
                .contains("Redis lost the lock's record in its crash at 1100ms (everysec persistence)"),
            "{}",
            v[0].detail
        );
        // A crash before the first acquire explains nothing about its lock.
        let mut early = history(&[KEY]);
        early[2].t_us = 500_000;
        early.swap(0, 2);
        early.swap(1, 2);
        assert_eq!(
            judge(&early, Persistence::Everysec)[0].severity,
            Severity::Correctness
        );
    }
}
