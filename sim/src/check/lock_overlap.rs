//! `lock_overlap`: two handlers holding the lock of one key at the same virtual time.
//!
//! A handler holds the lock from its `handler_start` (after an `acquire` with outcome
//! `acquired`) until its `handler_end`, or until its worker crashes, or the end of the run. A
//! paused worker still holds it: that is the GC-pause case. Reported with both workers and
//! both intervals, at the second handler's start.

use super::{Input, Severity, Violation};
use std::collections::BTreeMap;

struct Held {
    worker: String,
    event_id: String,
    start_us: u64,
    end_us: u64,
    start_index: usize,
}

type Running = BTreeMap<String, Held>;
type ByKey = BTreeMap<String, Vec<Held>>;

/// Ends `worker`'s running handler (if any) at `t`.
fn close(running: &mut Running, by_key: &mut ByKey, worker: &str, key_of: &BTreeMap<String, String>, t: u64) {
    if let Some(mut h) = running.remove(worker) {
        h.end_us = t;
        if let Some(key) = key_of.get(worker) {
            by_key.entry(key.clone()).or_default().push(h);
        }
    }
}

/// The violations in `input`.
pub fn check(input: &Input<'_>) -> Vec<Violation> {
    let trace = input.trace;
    let end_of_run = trace.last().map_or(0, |e| e.t_us);
    // Per worker: the key its current call acquired, and the handler it runs.
    let mut acquired: BTreeMap<&str, String> = BTreeMap::new();
    let mut running = Running::new();
    let mut by_key = ByKey::new();
    let mut key_of: BTreeMap<String, String> = BTreeMap::new();
    for (i, e) in trace.iter().enumerate() {
        let worker = e.node.as_str();
        match e.kind {
            "acquire" => {
                if e.str("outcome") == Some("acquired") {
                    acquired.insert(worker, e.str("key").unwrap_or("").to_owned());
                } else {
                    acquired.remove(worker);
                }
            }
            "handler_start" => {
                close(&mut running, &mut by_key, worker, &key_of, e.t_us);
                if let Some(key) = acquired.remove(worker) {
                    key_of.insert(worker.to_owned(), key);
                    running.insert(
                        worker.to_owned(),
                        Held {
                            worker: worker.to_owned(),
                            event_id: e.str("event_id").unwrap_or("").to_owned(),
                            start_us: e.t_us,
                            end_us: end_of_run,
                            start_index: i,
                        },
                    );
                }
            }
            "handler_end" => close(&mut running, &mut by_key, worker, &key_of, e.t_us),
            "fault" if e.str("fault") == Some("crash") => {
                if let Some(node) = e.str("node") {
                    close(&mut running, &mut by_key, node, &key_of, e.t_us);
                }
            }
            _ => {}
        }
    }
    let open: Vec<String> = running.keys().cloned().collect();
    for w in open {
        close(&mut running, &mut by_key, &w, &key_of, end_of_run);
    }
    let mut out = Vec::new();
    for held in by_key.values_mut() {
        held.sort_by_key(|h| (h.start_us, h.start_index));
        'key: for (i, a) in held.iter().enumerate() {
            for b in &held[i + 1..] {
                if b.start_us < a.end_us && a.start_us < b.end_us {
                    out.push(Violation {
                        kind: "lock_overlap",
                        severity: Severity::Correctness,
                        event_id: a.event_id.clone(),
                        detail: format!(
                            "{} held it {}..{}ms while {} held it {}..{}ms",
                            a.worker,
                            a.start_us / 1000,
                            a.end_us / 1000,
                            b.worker,
                            b.start_us / 1000,
                            b.end_us / 1000
                        ),
                        first_event: Some(b.start_index),
                    });
                    break 'key;
                }
            }
        }
    }
    out
}
